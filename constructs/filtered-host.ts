/**
 * FilteredHost: one host policy, both walls. A thin adapter over the pure core in lib/: it
 * composes (or takes) a HostPolicy, asks lib/render for the security-group rule specs and the
 * user-data, and turns them into provider resources. No policy decision is made here.
 */
import { Annotations } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Cidr } from '../lib/address';
import { TwinwallError, locate, show } from '../lib/errors';
import { Role } from '../lib/flow';
import { Peer } from '../lib/peer';
import { HostPolicy, LoadFailureMode, MetadataAccess } from '../lib/policy';
import { HostRendering, SgRuleSpec, renderHost } from '../lib/render';
import { hostCidrsTags, hostWallTags } from '../lib/check/record';
import { Suppression, SuppressionInput, checkSuppressions, suppressionTags } from '../lib/lint';
import { HOST_BRAND, TwinwallLint } from './lint';
import { cdktfTokenIn } from '../lib/tokens';

/** Settings for the optional aws_instance FilteredHost creates. */
export interface FilteredHostInstanceProps {
  readonly ami: string;
  readonly instanceType: string;
  readonly subnetId: string;
  readonly keyName?: string;
  /**
   * A fixed private IPv4 address. When given, `asPeer()` without arguments uses it (as a /32)
   * for the host wall of the hosts that reference this one.
   */
  readonly privateIp?: string;
  readonly associatePublicIpAddress?: boolean;
  readonly iamInstanceProfile?: string;
  /** Extra tags for the instance (Name defaults to the host name). No `twinwall:` keys (TW225). */
  readonly tags?: Readonly<Record<string, string>>;
}

/** What every FilteredHost takes, whether it composes its policy or is given one. */
export interface FilteredHostCommonProps {
  /** The VPC of the security group (may be a Terraform reference). */
  readonly vpcId: string;
  /**
   * The CIDRs this host's addresses lie in (its subnet, or its fixed address as a /32). Other
   * hosts' host walls use them when they reference this host with `asPeer()`.
   */
  readonly addresses?: readonly string[];
  /** When given, FilteredHost also creates the aws_instance, wired to the group and user-data. */
  readonly instance?: FilteredHostInstanceProps;
  /**
   * Lint findings this host accepts, each with the reason why (e.g. { id: "TWL002", reason:
   * "bastion: admins connect from changing networks; sshd takes keys and MFA only" }). A
   * suppression without a reason is an error (TW251). The reasons are recorded as tags on the
   * host's security group and shown by `twinwall report`. Ids: docs/lint.md.
   */
  readonly suppressions?: readonly SuppressionInput[];
  /**
   * Extra tags for the security group and the instance. Keys starting with `twinwall:` are
   * twinwall's own (the host's identity, roles, host-side CIDRs, suppressions) and are refused
   * (TW225 TAG_RESERVED).
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * How many security groups the network wall may be split across when one group's quota (60
   * rules per direction per address family) is not enough: 1 to 5, default 5 (all a network
   * interface takes). Lower it when the instance carries groups of its own.
   */
  readonly maxSecurityGroups?: number;
  /**
   * Host wall: a set of more than this many addresses (of one family, matched with the same
   * protocol and ports) becomes an ipset `hash:net` set matched by one rule, instead of one rule
   * per address. Default 16; `Infinity` keeps every rule linear.
   */
  readonly ipsetThreshold?: number;
}

/** A host that composes its policy from the roles it plays. */
export interface FilteredHostRolesProps extends FilteredHostCommonProps {
  /** The roles this host plays. */
  readonly roles: readonly Role[];
  /** The host name used in the policy, descriptions, tags and log prefixes; default the construct id. */
  readonly name?: string;
  /** Who may reach the instance metadata service from the host (default "root-only"). */
  readonly instanceMetadata?: MetadataAccess;
  /** Log what the host wall would drop and accept it instead. */
  readonly audit?: boolean;
  /**
   * The IPv4 subnets the host's interfaces are in (literal CIDRs, e.g. ["10.0.1.0/24"]): the host
   * wall lets DHCP renewals reach each subnet's router (base + 1) besides the broadcast address.
   */
  readonly subnets?: readonly string[];
  /**
   * What a host wall that fails to load at boot leaves: "lockdown" (default: a fallback of core
   * matches, closed but reachable through the admin roles) or "open" (that family unfiltered on
   * the host, behind the security group). docs/user-data.md, "When loading fails".
   */
  readonly onLoadFailure?: LoadFailureMode;
  readonly policy?: never;
}

/** A host given a policy composed elsewhere (HostPolicy.compose), which carries its own name and options. */
export interface FilteredHostPolicyProps extends FilteredHostCommonProps {
  readonly policy: HostPolicy;
  readonly roles?: never;
  readonly name?: never;
  readonly instanceMetadata?: never;
  readonly audit?: never;
  readonly subnets?: never;
  readonly onLoadFailure?: never;
}

/** Either `roles` (with the policy options) or a prebuilt `policy`, never both. */
export type FilteredHostProps = FilteredHostRolesProps | FilteredHostPolicyProps;

/** Options of `FilteredHost.asPeer`. */
export interface AsPeerOptions {
  /**
   * The CIDRs the referencing host's wall matches for this host; default the `addresses` given
   * to this host, else its fixed private IP.
   */
  readonly hostCidrs?: readonly string[];
  /** The peer's name in rule ids, descriptions and reports; default "<host name> hosts". */
  readonly label?: string;
}

function invalid(what: string, value: unknown, fix: string): TwinwallError {
  return new TwinwallError('OPTION_INVALID', { value, problem: `${what} ${show(value)} is not valid.`, fix });
}

/** Tag keys only twinwall writes: the checker, report and diff read them back from the artefacts. */
export const RESERVED_TAG_PREFIX = 'twinwall:';

/** User tags, checked: a map of strings that sets no `twinwall:` key (TW225 TAG_RESERVED). */
function userTags(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(what, value, 'pass a map of tag keys to strings, e.g. { team: "mail" }.');
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key.toLowerCase().startsWith(RESERVED_TAG_PREFIX)) {
      throw new TwinwallError('TAG_RESERVED', {
        value: key,
        path: [what],
        problem: `the tag key ${show(key)} is reserved: only twinwall writes "${RESERVED_TAG_PREFIX}…" tags (the host's identity, roles, host-side CIDRs and lint suppressions), and twinwall check, report and diff trust them.`,
        fix: `rename the tag (e.g. ${show(key.slice(RESERVED_TAG_PREFIX.length).replace(/^[:]+/, '') || 'team')}); to rename the host set \`name\`, and to accept a lint finding use \`suppressions\` with a reason.`,
      });
    }
    if (typeof v !== 'string') throw invalid(`${what}.${key}`, v, 'give every tag a string value.');
  }
  return { ...(value as Record<string, string>) };
}

function requireText(value: unknown, what: string, example: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(what, value, `pass a non-empty string, e.g. ${example}.`);
  }
}

export class FilteredHost extends Construct {
  /** The composed, normalised policy both walls were rendered from. */
  public readonly policy: HostPolicy;
  /** Every rendering of the policy (security-group specs, iptables text, user-data). */
  public readonly rendering: HostRendering;
  /** The network wall's first group (the one `asPeer()` references); no inline rules. */
  public readonly securityGroup: SecurityGroup;
  /**
   * Every group of the network wall, all attached to the instance: one, unless the quota forced
   * a split (`rendering.securityGroups.groups` says which rule went where).
   */
  public readonly securityGroups: readonly SecurityGroup[];
  /** The groups' ids (tokens), in the order of `securityGroups`. */
  public readonly securityGroupIds: readonly string[];
  /** The rule resources, in the order of the rendered specs. */
  public readonly ingressRules: readonly VpcSecurityGroupIngressRule[];
  public readonly egressRules: readonly VpcSecurityGroupEgressRule[];
  /** The `#cloud-config` document, as text. */
  public readonly cloudConfig: string;
  /**
   * The user-data, base64 (gzip first when the renderer needed it), computed at synth: pass it
   * as `user_data_base64` of your own aws_instance or launch template, never as `user_data`.
   */
  public readonly userDataBase64: string;
  /** The instance, when `instance` was given. */
  public readonly instance?: Instance;
  /** The CIDRs `asPeer()` gives other hosts' host walls: `addresses`, else the fixed private IP. */
  public readonly addresses?: readonly string[];
  /** The lint findings this host suppresses, with their reasons (validated). */
  public readonly lintSuppressions: readonly Suppression[];

  public constructor(scope: Construct, id: string, props: FilteredHostProps) {
    super(scope, id);
    // Everything that validates runs first, located at this construct's path; nothing is
    // created before it passed.
    const checked = FilteredHost.check(this.node.path, id, props);
    this.policy = checked.policy;
    this.lintSuppressions = checked.lintSuppressions;
    this.rendering = checked.rendering;
    this.cloudConfig = this.rendering.userData.cloudConfig;
    this.userDataBase64 = this.rendering.userData.base64;
    this.addresses = checked.addresses;
    const { tags, instanceTags } = checked;
    const hostName = this.policy.name;

    // Deliberately no `ingress` / `egress` arguments: when Terraform's aws_security_group
    // creates a VPC group it revokes the allow-all egress rule AWS adds by default, and
    // leaving the inline blocks unset lets the separate rule resources below own every rule
    // without fighting them. twinwall relies on that: every egress rule is written
    // explicitly, so an egress rule missing from the policy really is denied.
    // The description stays constant (changing it replaces the group); roles go in the tags.
    // More than one group only when the quota forces a split: the first keeps its id, name
    // and description, so a host that grows past 60 rules gains groups without replacing it.
    this.securityGroups = this.rendering.securityGroups.groups.map(
      (plan) =>
        new SecurityGroup(this, plan.index === 0 ? 'SecurityGroup' : `SecurityGroup${plan.index + 1}`, {
          namePrefix: plan.index === 0 ? `twinwall-${hostName}-` : `twinwall-${hostName}-${plan.index + 1}-`,
          description: plan.index === 0 ? `twinwall network wall of host ${hostName}` : `twinwall network wall of host ${hostName}, part ${plan.index + 1}`,
          vpcId: props.vpcId,
          // twinwall's own keys last: user tags cannot hold them (TW225), and could not override them.
          tags: {
            Name: plan.index === 0 ? hostName : `${hostName}-${plan.index + 1}`,
            ...tags,
            'twinwall:host': hostName,
            'twinwall:roles': this.policy.roles.map((r) => r.name).join(' '),
            ...(plan.index === 0 ? suppressionTags(this.lintSuppressions) : {}),
            // What the host-only part of the host wall depends on, for `twinwall check`
            // (lib/check/record.ts); after the user's tags, which may not replace it.
            ...(plan.index === 0 ? hostWallTags(this.policy.options) : {}),
          },
          // A replaced group (new VPC, say) is created first, so instances can move to it.
          lifecycle: { createBeforeDestroy: true },
        }),
    );
    this.securityGroup = this.securityGroups[0];

    // Rule construct ids come from rule content alone and are children of the host, not of a
    // group: a rule that moves to another group keeps its address in the plan.
    // Each group's id is read once: every read of `.id` makes a new cdktf token, and cdktf
    // records a full stack trace for each, which is most of the construct's synth time.
    this.securityGroupIds = this.securityGroups.map((g) => g.id);
    const groupOf = new Map<string, string>();
    for (const plan of this.rendering.securityGroups.groups) for (const spec of plan.rules) groupOf.set(spec.id, this.securityGroupIds[plan.index]);
    const ingress: VpcSecurityGroupIngressRule[] = [];
    const egress: VpcSecurityGroupEgressRule[] = [];
    for (const spec of this.rendering.securityGroups.rules) {
      const config = this.ruleConfig(spec, groupOf.get(spec.id) as string);
      if (spec.direction === 'ingress') ingress.push(new VpcSecurityGroupIngressRule(this, spec.id, config));
      else egress.push(new VpcSecurityGroupEgressRule(this, spec.id, config));
    }
    this.ingressRules = ingress;
    this.egressRules = egress;

    // Surface the host-only decisions a reviewer would not guess from the security group: a
    // flow with no security-group rule at all, a referenced group whose host-side CIDRs hold a
    // link-local service, and a non-default instance-metadata choice. (The rest, such as the
    // link-local addresses inside a 0.0.0.0/0 rule, stay in rendering.securityGroups.hostOnly.)
    for (const decision of this.rendering.securityGroups.hostOnly) {
      const notable = decision.origin === 'exact' || decision.origin === 'reference' || (decision.origin === 'option' && decision.option?.value !== 'root-only');
      if (notable) Annotations.of(this).addInfo(`twinwall host-only decision: ${decision.summary}`);
    }

    if (props.instance !== undefined) this.instance = this.createInstance(props.instance, hostName, { ...tags, ...instanceTags });
    // Lint at synth (constructs/lint.ts): added once per stack, errors fail synth. The brand
    // comes last, so only a fully built host is linted.
    TwinwallLint.ensure(this);
    Object.defineProperty(this, HOST_BRAND, { value: true });
  }

  /**
   * This host as the peer of another host's flow. The network wall references this host's
   * security group; the host wall, which cannot see groups, matches `hostCidrs` — by default the
   * `addresses` given to this host, else its fixed private IP.
   */
  public asPeer(options: AsPeerOptions = {}): Peer {
    return locate(this.node.path, () =>
      Peer.securityGroup(this.securityGroup.id, { hostCidrs: options.hostCidrs ?? this.addresses ?? [], label: options.label ?? `${this.policy.name} hosts` }),
    );
  }

  private ruleConfig(spec: SgRuleSpec, securityGroupId: string) {
    const targets = [spec.cidrIpv4, spec.cidrIpv6, spec.referencedSecurityGroupId, spec.prefixListId].filter((t) => t !== undefined);
    if (targets.length !== 1) {
      // The renderer guarantees exactly one; the provider would reject anything else at apply.
      throw new Error(`twinwall bug: security-group rule spec ${spec.id} has ${targets.length} targets`);
    }
    return {
      securityGroupId,
      description: spec.description,
      ipProtocol: spec.ipProtocol,
      ...(spec.fromPort !== undefined ? { fromPort: spec.fromPort } : {}),
      ...(spec.toPort !== undefined ? { toPort: spec.toPort } : {}),
      ...(spec.cidrIpv4 !== undefined ? { cidrIpv4: spec.cidrIpv4 } : {}),
      ...(spec.cidrIpv6 !== undefined ? { cidrIpv6: spec.cidrIpv6 } : {}),
      ...(spec.referencedSecurityGroupId !== undefined ? { referencedSecurityGroupId: spec.referencedSecurityGroupId } : {}),
      ...(spec.prefixListId !== undefined ? { prefixListId: spec.prefixListId } : {}),
      // A reference's host-side CIDRs, recorded for `twinwall check` (lib/check/record.ts): the
      // host wall matches them, and the checker must find them in the artefacts alone.
      ...this.referenceRecord(spec),
    };
  }

  private referenceRecord(spec: SgRuleSpec): { tags?: Record<string, string> } {
    return spec.hostCidrs === undefined ? {} : { tags: hostCidrsTags(spec.hostCidrs) };
  }

  private createInstance(props: FilteredHostInstanceProps, hostName: string, tags: Record<string, string>): Instance {
    return new Instance(this, 'Instance', {
      ami: props.ami,
      instanceType: props.instanceType,
      subnetId: props.subnetId,
      ...(props.keyName !== undefined ? { keyName: props.keyName } : {}),
      ...(props.privateIp !== undefined ? { privateIp: props.privateIp } : {}),
      ...(props.associatePublicIpAddress !== undefined ? { associatePublicIpAddress: props.associatePublicIpAddress } : {}),
      ...(props.iamInstanceProfile !== undefined ? { iamInstanceProfile: props.iamInstanceProfile } : {}),
      // Only this host's groups: any other group would widen the network wall beyond the policy.
      vpcSecurityGroupIds: [...this.securityGroupIds],
      // The host never forwards: packets it did not originate are not its to send.
      sourceDestCheck: true,
      // IMDSv2 only (session tokens), which blunts SSRF reads of the instance credentials.
      metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
      // Computed at synth and passed base64, so Terraform never interpolates ${…} / %{…} in it.
      userDataBase64: this.userDataBase64,
      // The host wall lives in the user-data: a firewall change must replace the host, not be
      // silently ignored by an instance that already ran cloud-init.
      userDataReplaceOnChange: true,
      tags: { Name: hostName, ...tags, 'twinwall:host': hostName },
    });
  }

  /**
   * Validate the props and render the policy, every error located at the construct path (which
   * names the host, so the host name HostPolicy.compose puts first is not repeated).
   */
  private static check(path: string, id: string, props: FilteredHostProps) {
    const policyName = props?.policy instanceof HostPolicy ? props.policy.name : String(props?.name ?? id);
    return locate(
      path,
      () => {
        const policy = FilteredHost.policyFrom(id, props);
        const lintSuppressions = checkSuppressions(props.suppressions);
        requireText(props.vpcId, 'vpcId', 'vpc.id or "vpc-0123456789abcdef0"');
        const rendering = renderHost(policy, {
          ...(props.maxSecurityGroups !== undefined ? { maxSecurityGroups: props.maxSecurityGroups } : {}),
          ...(props.ipsetThreshold !== undefined ? { ipsetThreshold: props.ipsetThreshold } : {}),
        });
        const leaked = cdktfTokenIn(rendering.userData.cloudConfig);
        if (leaked !== undefined) {
          // A security-group id or label that is a Terraform reference leaked into the host wall.
          throw new TwinwallError('UNRESOLVED_TOKEN', {
            value: leaked.token,
            problem: 'the rendered user-data contains a Terraform token, which only has a value at deploy time, but user-data is computed at synth.',
            fix: 'give security-group peers a literal label (Peer.securityGroup(sg.id, { hostCidrs, label: "app tier" })) and pass literal CIDRs and names.',
          });
        }
        // Checked now (masks, host bits, tokens), so a bad value fails here rather than in asPeer.
        const fixedIp = props.instance?.privateIp;
        const addresses = props.addresses !== undefined ? [...props.addresses] : fixedIp !== undefined ? [`${fixedIp}/32`] : undefined;
        for (const cidr of addresses ?? []) Cidr.of(cidr);
        const tags = userTags(props.tags, 'tags');
        const instanceTags = userTags(props.instance?.tags, 'instance.tags');
        if (props.instance !== undefined) {
          requireText(props.instance.ami, 'instance.ami', '"ami-0123456789abcdef0"');
          requireText(props.instance.instanceType, 'instance.instanceType', '"t3.micro"');
          requireText(props.instance.subnetId, 'instance.subnetId', 'subnet.id or "subnet-0123456789abcdef0"');
        }
        return { policy, lintSuppressions, rendering, addresses, tags, instanceTags };
      },
      { replacing: policyName },
    );
  }

  private static policyFrom(id: string, props: FilteredHostProps): HostPolicy {
    if (props === undefined || props === null || typeof props !== 'object') {
      throw invalid('FilteredHost props', props, 'pass { roles: [...], vpcId: ... }.');
    }
    if (props.policy !== undefined) {
      // FilteredHostProps makes these a type error; JavaScript callers get the same answer here.
      const loose = props as Partial<Record<keyof FilteredHostRolesProps, unknown>>;
      if (loose.roles !== undefined) {
        throw invalid('roles together with policy', (props.roles as unknown as Role[]).map((r) => r?.name), 'give either roles (and name/instanceMetadata/audit/subnets/onLoadFailure) or a prebuilt policy, not both.');
      }
      if (!(props.policy instanceof HostPolicy)) {
        throw invalid('policy', props.policy, 'build it with HostPolicy.compose(name, roles, options).');
      }
      for (const key of ['name', 'instanceMetadata', 'audit', 'subnets', 'onLoadFailure'] as const) {
        if (loose[key] !== undefined) {
          throw invalid(`${key} together with policy`, loose[key], `set ${key} in HostPolicy.compose(…) instead; a prebuilt policy already carries it.`);
        }
      }
      return props.policy;
    }
    const options = {
      ...(props.instanceMetadata !== undefined ? { instanceMetadata: props.instanceMetadata } : {}),
      ...(props.audit !== undefined ? { audit: props.audit } : {}),
      ...(props.subnets !== undefined ? { subnets: props.subnets } : {}),
      ...(props.onLoadFailure !== undefined ? { onLoadFailure: props.onLoadFailure } : {}),
    };
    return HostPolicy.compose(props.name ?? id, props.roles ?? [], options);
  }
}
