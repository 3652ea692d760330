/**
 * A host policy: the roles a host plays, composed (`HostPolicy.compose`: validated, attributed)
 * into a canonical list of rules that both walls are rendered from. This file is the model: the
 * rule (`PolicyRule`, its target and provenance), the host options and `HostPolicy`.
 * Normalisation — how flows become the fewest canonical rules, and why that is a function of
 * the admitted traffic alone — is lib/normalise.ts; what a flow or rule admits (the semantics
 * tests and the checker compare against) is lib/admits.ts.
 */
import { Cidr, compareCidr, familyBits } from './address';
import { TwinwallError, locate, show } from './errors';
import { requireLiteral } from './tokens';
import { Direction, Flow, Role, checkName } from './flow';
import { normalise } from './normalise';
import { Port } from './port';

/** Why a rule exists: the role, catalog service and reason of a flow that asked for it. */
export interface Provenance {
  readonly role: string;
  readonly service?: string;
  readonly reason: string;
}

export type RuleTarget =
  | { readonly kind: 'cidr'; readonly cidr: Cidr }
  | { readonly kind: 'securityGroup'; readonly groupId: string; readonly label: string; readonly hostCidrs: readonly Cidr[] }
  | { readonly kind: 'prefixList'; readonly prefixListId: string; readonly label: string; readonly hostCidrs: readonly Cidr[]; readonly maxEntries?: number };

/** One normalised rule: one direction, one protocol/port range, one target. */
export class PolicyRule {
  public readonly direction: Direction;
  public readonly port: Port;
  public readonly target: RuleTarget;
  public readonly because: readonly Provenance[];

  public constructor(direction: Direction, port: Port, target: RuleTarget, because: readonly Provenance[]) {
    this.direction = direction;
    this.port = port;
    this.target = target;
    this.because = Object.freeze([...because]);
    Object.freeze(this);
  }

  /** The CIDRs the host wall matches for this rule. */
  public get hostCidrs(): readonly Cidr[] {
    return this.target.kind === 'cidr' ? [this.target.cidr] : this.target.hostCidrs;
  }

  /** Human label of the remote end. */
  public get peerLabel(): string {
    return this.target.kind === 'cidr' ? this.target.cidr.text : this.target.label;
  }

  public toString(): string {
    return `${this.direction} ${this.port} ${this.direction === 'ingress' ? 'from' : 'to'} ${this.peerLabel}`;
  }
}

/**
 * Who may reach the instance metadata service (169.254.169.254, fd00:ec2::254) from the host.
 * 'none' blocks root too, and with it cloud-init's own reads of instance data at later boots
 * (the host wall is loaded before the network): use it only on images that do not need IMDS
 * after the first boot.
 */
export type MetadataAccess = 'root-only' | 'all-users' | 'none';

/**
 * What a host does when its real host-wall table fails to load at boot (docs/user-data.md,
 * "When loading fails"). 'lockdown' (default): each family first gets a fallback of core matches
 * only (DROP policies, loopback, replies, the admin roles' ingress, DHCP, neighbour discovery),
 * and a family whose real table fails keeps it: the host stays closed and reachable by its
 * administrators. 'open': no fallback; a family whose table fails stays as the kernel started it
 * (accepting everything), behind the security group, so every service keeps working.
 */
export type LoadFailureMode = 'lockdown' | 'open';

export const LOAD_FAILURE_MODES: readonly LoadFailureMode[] = ['lockdown', 'open'];

/** Prefix lengths AWS allows for an IPv4 subnet. */
export const SUBNET_PREFIX = { min: 16, max: 28 } as const;

export interface HostPolicyOptions {
  /** Default 'root-only': a compromised web or mail daemon cannot read instance credentials. */
  readonly instanceMetadata?: MetadataAccess;
  /** Log what enforcement would drop, and accept it (learn before you lock). Default false. */
  readonly audit?: boolean;
  /**
   * The IPv4 subnets the host's network interfaces are in (e.g. ["10.0.1.0/24"]). The host wall
   * lets the DHCP client reach each subnet's router (base + 1, where EC2's DHCP server answers
   * lease renewals) besides the broadcast address. Without them, renewals are broadcast only:
   * the unicast renewal is refused and the client rebinds by broadcast later in the lease.
   */
  readonly subnets?: readonly string[];
  /** What a failed table load leaves: 'lockdown' (default, the fallback) or 'open'. */
  readonly onLoadFailure?: LoadFailureMode;
}

export interface ResolvedHostPolicyOptions {
  readonly instanceMetadata: MetadataAccess;
  readonly audit: boolean;
  /**
   * Declared IPv4 subnets as canonical CIDR text, sorted (empty when none were declared). Plain
   * text, like every resolved option: the policy record (`twinwall:host-wall`) carries them.
   */
  readonly subnets: readonly string[];
  readonly onLoadFailure: LoadFailureMode;
}

/** The subnet's router (base + 1): where EC2's DHCP server and the VPC router answer. */
export function subnetRouter(subnet: Cidr): Cidr {
  return Cidr.fromParts(subnet.family, subnet.first + 1n, familyBits(subnet.family));
}

/** A flow with the role it came from. */
export interface AttributedFlow {
  readonly flow: Flow;
  readonly role: string;
}

export class HostPolicy {
  /**
   * Compose roles into a host policy. Role names must be unique on a host (give a second
   * instance of a role its own `name`).
   */
  public static compose(name: string, roles: readonly Role[], options: HostPolicyOptions = {}): HostPolicy {
    return locate(String(name), () => {
      checkName(name, 'The host name');
      if (!Array.isArray(roles) || roles.length === 0) {
        throw new TwinwallError('ROLE_EMPTY', {
          value: name,
          problem: `the host ${show(name)} has no roles; it would accept and send nothing, which is rarely what was meant.`,
          fix: 'give it at least one role, e.g. [sshAdmin({ from: [...] })].',
        });
      }
      const seen = new Set<string>();
      for (const r of roles) {
        if (!(r instanceof Role)) {
          throw new TwinwallError('OPTION_INVALID', { value: r, problem: `${show(r)} is not a Role.`, fix: 'build roles with webServer(), mailServer(), customRole() and so on.' });
        }
        if (seen.has(r.name)) {
          throw new TwinwallError('ROLE_DUPLICATE', {
            value: r.name,
            problem: `the role name ${show(r.name)} is used twice on this host; descriptions and reports could not tell them apart.`,
            fix: `give the second one its own name, e.g. { name: "${r.name}2" }, or merge their options into one role.`,
          });
        }
        seen.add(r.name);
      }
      const resolved = resolveHostPolicyOptions(options);
      const flows: AttributedFlow[] = roles.flatMap((r: Role) => r.flows.map((flow) => ({ flow, role: r.name })));
      return new HostPolicy(name, roles, normalise(flows), resolved);
    });
  }

  public readonly name: string;
  public readonly roles: readonly Role[];
  /** Canonical, sorted, minimal-by-construction rules. */
  public readonly rules: readonly PolicyRule[];
  public readonly options: ResolvedHostPolicyOptions;

  private constructor(name: string, roles: readonly Role[], rules: readonly PolicyRule[], options: ResolvedHostPolicyOptions) {
    this.name = name;
    this.roles = Object.freeze([...roles]);
    this.rules = Object.freeze([...rules]);
    this.options = Object.freeze({ ...options });
    Object.freeze(this);
  }

  /** Every flow of every role, with its role. */
  public get flows(): AttributedFlow[] {
    return this.roles.flatMap((r) => r.flows.map((flow) => ({ flow, role: r.name })));
  }

  /**
   * The administrative ingress (the ingress flows of roles marked admin, such as sshAdmin),
   * normalised on their own: what the host wall's fallback keeps open.
   */
  public get adminRules(): readonly PolicyRule[] {
    return normalise(this.flows.filter((a) => a.flow.direction === 'ingress' && this.roles.some((r) => r.admin && r.name === a.role)));
  }
}

/**
 * Validate host policy options and fill in the defaults. Also reads the options back from the
 * record `twinwall check` finds in the artefacts (lib/check/record.ts), so a record is held to the
 * same rules as the policy that wrote it.
 */
export function resolveHostPolicyOptions(options: HostPolicyOptions): ResolvedHostPolicyOptions {
  const instanceMetadata = options.instanceMetadata ?? 'root-only';
  if (!['root-only', 'all-users', 'none'].includes(instanceMetadata)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: instanceMetadata,
      problem: `instanceMetadata ${show(instanceMetadata)} is not one of "root-only", "all-users", "none".`,
      fix: 'use "root-only" (default), "all-users" (any local process may read instance credentials) or "none".',
    });
  }
  const audit = options.audit ?? false;
  if (typeof audit !== 'boolean') {
    throw new TwinwallError('OPTION_INVALID', { value: audit, problem: `audit ${show(audit)} is not a boolean.`, fix: 'pass audit: true or audit: false.' });
  }
  const onLoadFailure = options.onLoadFailure ?? 'lockdown';
  if (!LOAD_FAILURE_MODES.includes(onLoadFailure)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: onLoadFailure,
      problem: `onLoadFailure ${show(onLoadFailure)} is not "lockdown" or "open".`,
      fix: 'use "lockdown" (default: a failed table leaves the fallback, closed but reachable by admins) or "open" (a failed table leaves that family unfiltered on the host).',
    });
  }
  return { instanceMetadata, audit, subnets: resolveSubnets(options.subnets), onLoadFailure };
}

function resolveSubnets(subnets: readonly string[] | undefined): string[] {
  if (subnets === undefined) return [];
  if (!Array.isArray(subnets)) {
    throw new TwinwallError('OPTION_INVALID', { value: subnets, problem: `subnets ${show(subnets)} is not a list of IPv4 CIDRs.`, fix: 'pass e.g. subnets: ["10.0.1.0/24"], or leave it out.' });
  }
  const out = new Map<string, Cidr>();
  for (const text of subnets) {
    if (typeof text === 'string') requireLiteral(text, 'subnets', '"10.0.1.0/24"');
    const cidr = Cidr.ipv4(text);
    if (cidr.prefix < SUBNET_PREFIX.min || cidr.prefix > SUBNET_PREFIX.max) {
      throw new TwinwallError('OPTION_INVALID', {
        value: text,
        problem: `the subnet ${show(text)} is a /${cidr.prefix}, but an AWS subnet is a /${SUBNET_PREFIX.min} to /${SUBNET_PREFIX.max}.`,
        fix: 'give the CIDR of the subnet the host is in (aws_subnet.cidr_block), e.g. "10.0.1.0/24".',
      });
    }
    out.set(cidr.text, cidr);
  }
  return [...out.values()].sort(compareCidr).map((c) => c.text);
}

/**
 * Provenance without repeats (same role, service and reason): in canonical order (by role,
 * service, reason), or with `keepOrder` in the order first seen.
 */
export function uniqueProvenance(list: Iterable<Provenance>, options: { readonly keepOrder?: boolean } = {}): Provenance[] {
  const map = new Map<string, Provenance>();
  for (const p of list) map.set(`${p.role}\u0000${p.service ?? ''}\u0000${p.reason}`, p);
  if (options.keepOrder === true) return [...map.values()];
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}
