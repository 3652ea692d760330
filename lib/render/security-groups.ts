/**
 * The network wall: a host policy rendered as security-group rule specs, one per (rule, CIDR),
 * ready to become `aws_vpc_security_group_ingress_rule` / `_egress_rule` resources. Plain data:
 * this file never imports cdktf, so a CLI or another adapter can use it too.
 *
 * - Ids come from rule content only ("egress-tcp-25-to-0-0-0-0-0"), so adding a rule never
 *   renames another one in a plan.
 * - Descriptions name the role(s), service and reason, in the characters AWS accepts.
 * - Security groups never filter the AWS link-local services (the resolver at 169.254.169.253,
 *   Time Sync at .123, instance metadata at .254, and their fd00:ec2:: twins). A rule whose
 *   addresses are only such a service produces no spec: it becomes a host-only decision, listed in
 *   `hostOnly` with its provenance. A wider rule that merely contains one of them (0.0.0.0/0)
 *   keeps one spec — AWS ignores the link-local part of it anyway, and cutting the three
 *   addresses out exactly would turn 0.0.0.0/0 into 38 CIDRs and ::/0 into 137, of the 60 rules a
 *   group may hold — and the addresses it covers are listed as host-only decisions too. When one
 *   smaller block still covers the rest (169.254.169.252/31 → .252/32), the spec uses it. The
 *   instance-metadata option is a host-only decision as well.
 * - The quota of 60 rules per direction per address family is checked here, at synth.
 */
import { AddressSet, Cidr, Family } from '../address';
import { TwinwallError, show } from '../errors';
import { Direction } from '../flow';
import { AWS_LINK_LOCAL, AwsLinkLocalService } from '../peer';
import { HostPolicy, MetadataAccess, PolicyRule, Provenance } from '../policy';
import { Port, Protocol } from '../port';
import { isStringToken } from '../tokens';

/** AWS: inbound or outbound rules per security group, counted separately for IPv4 and IPv6. */
export const SG_RULES_PER_DIRECTION_PER_FAMILY = 60;

/** AWS: a security-group rule description holds at most 255 characters. */
export const SG_DESCRIPTION_MAX_LENGTH = 255;

/** Every character AWS accepts in a security-group rule description. */
export const SG_DESCRIPTION_CHARSET = /^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]*$/;

export type SgIpProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | '-1';

export interface SgRuleSpec {
  /** Stable, content-derived construct id, unique within the policy: "egress-tcp-25-to-0-0-0-0-0". */
  readonly id: string;
  readonly direction: Direction;
  readonly ipProtocol: SgIpProtocol;
  /** TCP/UDP: first port. ICMP/ICMPv6: the type, -1 for every type. Omitted for "-1". */
  readonly fromPort?: number;
  /** TCP/UDP: last port. ICMP/ICMPv6: the code, -1 for every code. Omitted for "-1". */
  readonly toPort?: number;
  /** Exactly one of the four targets is set. */
  readonly cidrIpv4?: string;
  readonly cidrIpv6?: string;
  /** May be a cdktf token (another group's `.id`); it never appears in `id`. */
  readonly referencedSecurityGroupId?: string;
  readonly prefixListId?: string;
  /** Role(s), service and reason, e.g. "mailServer: smtp - delivering mail to other mail servers". */
  readonly description: string;
}

/** Who the host wall lets reach a link-local service on this port. */
export type HostOnlyAccess = 'allow' | 'root-only' | 'deny';

/**
 * A decision only the host wall can make: traffic to or from an AWS link-local service address,
 * which security groups never filter.
 */
export interface HostOnlyDecision {
  readonly direction: Direction;
  readonly protocol: Protocol;
  /** Port part as text: "udp/53", "tcp/80", "all". */
  readonly port: string;
  /** The link-local address, e.g. "169.254.169.253". */
  readonly address: string;
  readonly family: Family;
  readonly service: AwsLinkLocalService;
  /** What the host wall does with it. */
  readonly access: HostOnlyAccess;
  /**
   * Where it comes from: a policy rule that is exactly this service ("exact": it has no
   * security-group rule at all), a rule whose CIDR merely contains it ("within": its
   * security-group rule exists but AWS does not apply it to this address), a security-group or
   * prefix-list peer whose host-side CIDRs contain it ("reference"), or a host option ("option").
   */
  readonly origin: 'exact' | 'within' | 'reference' | 'option';
  /** The policy rule, as text ("egress udp/53 to 169.254.169.253/32"); absent for options. */
  readonly rule?: string;
  /** The roles, services and reasons behind the rule; empty for options. */
  readonly because: readonly Provenance[];
  /** The host option behind it, e.g. instanceMetadata "root-only". */
  readonly option?: { readonly name: 'instanceMetadata'; readonly value: MetadataAccess };
  /** One readable sentence for reports and annotations. */
  readonly summary: string;
}

export interface SecurityGroupRendering {
  /** The network wall, in the policy's canonical rule order. */
  readonly rules: readonly SgRuleSpec[];
  /** What the host wall alone decides. */
  readonly hostOnly: readonly HostOnlyDecision[];
}

const SERVICE_NAMES: Record<AwsLinkLocalService, string> = {
  dnsResolver: 'Amazon-provided DNS resolver',
  instanceMetadata: 'instance metadata service',
  timeSync: 'Amazon Time Sync Service',
};

const LINK_LOCAL: Record<Family, { service: AwsLinkLocalService; cidr: Cidr }[]> = {
  4: (Object.keys(AWS_LINK_LOCAL) as AwsLinkLocalService[]).map((service) => ({ service, cidr: Cidr.host(AWS_LINK_LOCAL[service][4]) })),
  6: (Object.keys(AWS_LINK_LOCAL) as AwsLinkLocalService[]).map((service) => ({ service, cidr: Cidr.host(AWS_LINK_LOCAL[service][6]) })),
};

const LINK_LOCAL_SET: Record<Family, AddressSet> = {
  4: AddressSet.of(4, LINK_LOCAL[4].map((l) => l.cidr)),
  6: AddressSet.of(6, LINK_LOCAL[6].map((l) => l.cidr)),
};

/** The instance metadata service speaks HTTP on tcp/80. */
const IMDS_PORT = Port.tcp(80);

/** Render the network wall of a policy. Same policy → identical specs, in the same order. */
export function renderSecurityGroupRules(policy: HostPolicy): SecurityGroupRendering {
  const { rules, hostOnly } = build(policy);
  checkUniqueIds(policy, rules);
  checkQuota(policy, countSpecs(policy, rules));
  return Object.freeze({ rules: Object.freeze(rules.map((r) => Object.freeze(r))), hostOnly: Object.freeze(hostOnly.map((d) => Object.freeze(d))) });
}

function build(policy: HostPolicy): { rules: SgRuleSpec[]; hostOnly: HostOnlyDecision[] } {
  const rules: SgRuleSpec[] = [];
  const hostOnly: HostOnlyDecision[] = [];
  for (const rule of policy.rules) {
    const description = describe(rule.because);
    const target = rule.target;
    if (target.kind === 'cidr') {
      const cidr = target.cidr;
      const family = cidr.family;
      const own = AddressSet.of(family, [cidr]);
      const outside = own.subtract(LINK_LOCAL_SET[family]);
      const origin = outside.isEmpty ? 'exact' : 'within';
      hostOnly.push(...linkLocalDecisions(policy, rule, [cidr], origin));
      if (outside.isEmpty) continue;
      const wall = smallestBlock(outside);
      rules.push({
        id: ruleId(rule, cidrSlug(wall)),
        direction: rule.direction,
        ...protocolAndPorts(rule.port),
        ...(family === 4 ? { cidrIpv4: wall.text } : { cidrIpv6: wall.text }),
        description,
      });
      continue;
    }
    hostOnly.push(...linkLocalDecisions(policy, rule, target.hostCidrs, 'reference'));
    const slug = labelSlug(target.kind, target.label, target.kind === 'securityGroup' ? target.groupId : target.prefixListId);
    rules.push({
      id: ruleId(rule, slug),
      direction: rule.direction,
      ...protocolAndPorts(rule.port),
      ...(target.kind === 'securityGroup' ? { referencedSecurityGroupId: target.groupId } : { prefixListId: target.prefixListId }),
      description,
    });
  }
  hostOnly.push(...metadataDecisions(policy.options.instanceMetadata));
  return { rules, hostOnly };
}

// ---------------------------------------------------------------------------------------------
// Ids

/** "tcp-25", "udp-1024-65535", "tcp-all", "icmp-type-3-code-4", "icmpv6-all", "all". */
function portSlug(port: Port): string {
  const p = port.protocol;
  if (p === 'all') return 'all';
  if (p === 'tcp' || p === 'udp') {
    if (port.isAll) return `${p}-all`;
    return port.from === port.to ? `${p}-${port.from}` : `${p}-${port.from}-${port.to}`;
  }
  if (port.icmpType === undefined) return `${p}-all`;
  if (port.icmpCode === undefined) return `${p}-type-${port.icmpType}`;
  return `${p}-type-${port.icmpType}-code-${port.icmpCode}`;
}

/**
 * A CIDR as id text: "0.0.0.0/0" → "0-0-0-0-0", "2001:db8::/32" → "2001-db8-x-32", "::/0" →
 * "x-0". "x" stands for "::" (it is not a hex digit), so distinct CIDRs never share a slug: the
 * last token is the prefix, the others are the address groups.
 */
function cidrSlug(cidr: Cidr): string {
  return cidr.text
    .replace('::', '-x-')
    .replace(/[.:/]/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

/** Peers known by identity: the id comes from the label, never from a (possibly token) id. */
function labelSlug(kind: 'securityGroup' | 'prefixList', label: string, targetId: string): string {
  const what = kind === 'securityGroup' ? 'security group' : 'prefix list';
  if (isStringToken(label)) {
    throw new TwinwallError('SG_PEER_UNLABELLED', {
      value: label,
      problem: `the ${what} peer ${show(targetId)} has no label of its own (its label ${show(label)} is a Terraform token), so its security-group rules would get ids that change whenever the token numbering does.`,
      fix:
        kind === 'securityGroup'
          ? 'give it a label: Peer.securityGroup(app.id, ["10.0.2.0/24"], "app tier") (or FilteredHost.asPeer(cidrs, "app tier")).'
          : 'give it a label: Peer.prefixList(list.id, ["198.51.100.0/24"], "partners").',
    });
  }
  const slug = label.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${kind === 'securityGroup' ? 'sg' : 'pl'}-${slug === '' ? 'unnamed' : slug}`;
}

function ruleId(rule: PolicyRule, peerSlug: string): string {
  return `${rule.direction}-${portSlug(rule.port)}-${rule.direction === 'ingress' ? 'from' : 'to'}-${peerSlug}`;
}

function checkUniqueIds(policy: HostPolicy, specs: readonly SgRuleSpec[]): void {
  const seen = new Map<string, SgRuleSpec>();
  for (const spec of specs) {
    const prior = seen.get(spec.id);
    if (prior !== undefined) {
      const target = (s: SgRuleSpec) => s.cidrIpv4 ?? s.cidrIpv6 ?? s.referencedSecurityGroupId ?? s.prefixListId;
      throw new TwinwallError('SG_RULE_ID_COLLISION', {
        value: spec.id,
        path: [policy.name],
        problem: `two security-group rules would both get the id ${show(spec.id)} (targets ${show(target(prior))} and ${show(target(spec))}): their peers share a label.`,
        fix: 'give every security-group and prefix-list peer its own label, e.g. Peer.securityGroup(app.id, cidrs, "app tier").',
      });
    }
    seen.set(spec.id, spec);
  }
}

// ---------------------------------------------------------------------------------------------
// Protocols, ports, targets

function protocolAndPorts(port: Port): { ipProtocol: SgIpProtocol; fromPort?: number; toPort?: number } {
  switch (port.protocol) {
    case 'all':
      return { ipProtocol: '-1' };
    case 'tcp':
    case 'udp':
      return { ipProtocol: port.protocol, fromPort: port.from as number, toPort: port.to as number };
    case 'icmp':
    case 'icmpv6':
      return { ipProtocol: port.protocol, fromPort: port.icmpType ?? -1, toPort: port.icmpType === undefined ? -1 : (port.icmpCode ?? -1) };
  }
}

/** The smallest single CIDR block holding every address of a non-empty set. */
function smallestBlock(set: AddressSet): Cidr {
  const first = set.intervals[0][0];
  const last = set.intervals[set.intervals.length - 1][1];
  const bits = set.family === 4 ? 32 : 128;
  let prefix = bits;
  while (prefix > 0 && first >> BigInt(bits - prefix) !== last >> BigInt(bits - prefix)) prefix--;
  const network = prefix === 0 ? 0n : (first >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  return Cidr.fromParts(set.family, network, prefix);
}

// ---------------------------------------------------------------------------------------------
// Descriptions

const DASHES = /[\u2010-\u2015\u2212]/g;
const QUOTES = /[\u2018\u2019\u201a\u201b\u201c\u201d\u201e'"`]/g;
const NOT_ALLOWED = /[^a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]/g;

/**
 * Text in the characters AWS accepts in a rule description, at most 255 of them. Braces become
 * parentheses, so a description can never hold a Terraform template sequence ("${…}", "%{…}").
 */
export function awsDescription(text: string): string {
  let t = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(DASHES, '-')
    .replace(QUOTES, '')
    .replace(/\{/g, '(')
    .replace(/\}/g, ')')
    .replace(NOT_ALLOWED, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (t.length > SG_DESCRIPTION_MAX_LENGTH) t = `${t.slice(0, SG_DESCRIPTION_MAX_LENGTH - 3).trimEnd()}...`;
  return t;
}

/** "mailServer: smtp - delivering mail to other mail servers; webServer: http - serving web pages". */
function describe(because: readonly Provenance[]): string {
  const parts = because.map((p) => (p.service !== undefined ? `${p.role}: ${p.service} - ${p.reason}` : `${p.role}: ${p.reason}`));
  return awsDescription([...new Set(parts)].join('; '));
}

// ---------------------------------------------------------------------------------------------
// Host-only decisions

/**
 * The link-local service addresses a rule's CIDRs contain. Egress to the instance metadata
 * service is left out unless instanceMetadata is "all-users": the host wall then decides every
 * packet to it before the policy's rules (see `metadataDecisions`), so the rule does not apply.
 */
function linkLocalDecisions(policy: HostPolicy, rule: PolicyRule, cidrs: readonly Cidr[], origin: 'exact' | 'within' | 'reference'): HostOnlyDecision[] {
  const out: HostOnlyDecision[] = [];
  const seen = new Set<string>();
  const metadataFirst = policy.options.instanceMetadata !== 'all-users';
  for (const cidr of cidrs) {
    for (const ll of LINK_LOCAL[cidr.family]) {
      if (!cidr.contains(ll.cidr) || seen.has(ll.cidr.text)) continue;
      if (metadataFirst && rule.direction === 'egress' && ll.service === 'instanceMetadata') continue;
      seen.add(ll.cidr.text);
      const address = ll.cidr.text.slice(0, ll.cidr.text.indexOf('/'));
      const toFrom = rule.direction === 'ingress' ? 'from' : 'to';
      const why = rule.because.map((p) => `${p.role}${p.service !== undefined ? `: ${p.service}` : ''}`).join(', ');
      const how =
        origin === 'exact'
          ? 'it has no security-group rule'
          : origin === 'within'
            ? `the security-group rule for ${rule.peerLabel} does not apply to it`
            : `${rule.peerLabel} lists it among its host-side CIDRs`;
      out.push({
        direction: rule.direction,
        protocol: rule.port.protocol,
        port: rule.port.toString(),
        address,
        family: cidr.family,
        service: ll.service,
        access: 'allow',
        origin,
        rule: rule.toString(),
        because: rule.because,
        summary: `${rule.direction} ${rule.port} ${toFrom} ${address} (${SERVICE_NAMES[ll.service]}): allowed by the host wall only (${why}); security groups never filter it, so ${how}.`,
      });
    }
  }
  return out;
}

/**
 * The instance-metadata option, as the host wall applies it before the policy's egress rules:
 * "root-only" admits tcp/80 from uid 0 and drops every other packet to the service; "none" drops
 * every packet to it; "all-users" admits tcp/80 from anyone (other ports then follow the rules).
 */
function metadataDecisions(value: MetadataAccess): HostOnlyDecision[] {
  const port = value === 'none' ? Port.allTraffic() : IMDS_PORT;
  const access: HostOnlyAccess = value === 'root-only' ? 'root-only' : value === 'all-users' ? 'allow' : 'deny';
  const what =
    value === 'root-only'
      ? 'allowed for root (uid 0) only, and every other packet to it dropped,'
      : value === 'all-users'
        ? 'allowed for every local user'
        : 'denied to every local process';
  return ([4, 6] as Family[]).map((family) => {
    const address = AWS_LINK_LOCAL.instanceMetadata[family];
    return {
      direction: 'egress' as const,
      protocol: port.protocol,
      port: port.toString(),
      address,
      family,
      service: 'instanceMetadata' as const,
      access,
      origin: 'option' as const,
      because: [],
      option: { name: 'instanceMetadata' as const, value },
      summary: `egress ${port} to ${address} (${SERVICE_NAMES.instanceMetadata}): ${what} by the host wall (instanceMetadata ${show(value)}); security groups never filter it.`,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Quota

export type SecurityGroupRuleCounts = Record<Direction, Record<Family, number>>;

/**
 * Rules per direction and family as AWS counts them: a CIDR rule in its family; a security-group
 * reference once in each family; a prefix list once per entry in each family it has entries in
 * (AWS counts a customer-managed list's *maximum* entries, which is at least that).
 */
export function countSecurityGroupRules(policy: HostPolicy): SecurityGroupRuleCounts {
  return countSpecs(policy, build(policy).rules);
}

function countSpecs(policy: HostPolicy, specs: readonly SgRuleSpec[]): SecurityGroupRuleCounts {
  const counts: SecurityGroupRuleCounts = { ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 0 } };
  for (const spec of specs) {
    const c = counts[spec.direction];
    if (spec.cidrIpv4 !== undefined) c[4] += 1;
    else if (spec.cidrIpv6 !== undefined) c[6] += 1;
    else if (spec.referencedSecurityGroupId !== undefined) {
      c[4] += 1;
      c[6] += 1;
    }
  }
  for (const rule of policy.rules) {
    if (rule.target.kind !== 'prefixList') continue;
    for (const cidr of rule.target.hostCidrs) counts[rule.direction][cidr.family] += 1;
  }
  return counts;
}

function checkQuota(policy: HostPolicy, counts: SecurityGroupRuleCounts): void {
  const over: string[] = [];
  for (const direction of ['ingress', 'egress'] as Direction[]) {
    for (const family of [4, 6] as Family[]) {
      const n = counts[direction][family];
      if (n > SG_RULES_PER_DIRECTION_PER_FAMILY) over.push(`${n} IPv${family} ${direction} rules`);
    }
  }
  if (over.length === 0) return;
  const all = `ingress IPv4 ${counts.ingress[4]}, ingress IPv6 ${counts.ingress[6]}, egress IPv4 ${counts.egress[4]}, egress IPv6 ${counts.egress[6]}`;
  throw new TwinwallError('SG_QUOTA_EXCEEDED', {
    value: counts,
    path: [policy.name],
    problem: `its security group would hold ${over.join(' and ')}, but AWS allows ${SG_RULES_PER_DIRECTION_PER_FAMILY} per direction per address family (counts: ${all}).`,
    fix: 'merge peers into fewer, wider CIDRs or a managed prefix list, or move roles to a second host policy; splitting one policy across several security groups is not supported yet.',
  });
}
