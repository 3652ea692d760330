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
 * - Quotas, at synth: a group holds 60 rules per direction per address family. A policy that
 *   needs more is split across up to 5 groups (what one network interface takes), packed first-fit
 *   in canonical order, 1,000 rules in all; beyond that synth fails naming the counts. A
 *   referenced prefix list counts as its max entries, as AWS counts it.
 */
import { AddressSet, Cidr, FAMILIES, Family, bitLength, familyBits } from '../address';
import { TwinwallError, show } from '../errors';
import { DIRECTIONS, Direction } from '../flow';
import { AWS_LINK_LOCAL, AWS_LINK_LOCAL_LABEL, AwsLinkLocalService } from '../peer';
import { HostPolicy, MetadataAccess, PolicyRule, Provenance } from '../policy';
import { Port, Protocol, portSlug } from '../port';
import { isStringToken } from '../tokens';
import { awsDescription } from '../text';
import { provenanceDescription } from '../provenance';

/** AWS: inbound or outbound rules per security group, counted separately for IPv4 and IPv6. */
export const SG_RULES_PER_DIRECTION_PER_FAMILY = 60;

/** AWS: security groups per network interface. */
export const SECURITY_GROUPS_PER_ENI = 5;

/** AWS: rules per network interface, all its groups, directions and families together. */
export const SG_RULES_PER_ENI = 1000;

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
  /**
   * A security-group or prefix-list reference: the CIDRs the host wall matches for it (the
   * referenced hosts' addresses, the list's entries). Absent for a CIDR rule.
   */
  readonly hostCidrs?: readonly string[];
  /**
   * How many rules AWS counts for this one, per address family, in its direction: 1 in a CIDR's
   * family; a security-group reference 1 in each; a prefix list its maxEntries in its family (or,
   * none declared, its entries per family). The groups are packed by it; lint and reports read it.
   */
  readonly quotaCost: Readonly<Record<Family, number>>;
  /** The roles, services and reasons of the policy rule this one was rendered from. */
  readonly because: readonly Provenance[];
  /** A security-group or prefix-list reference: the peer's label as the policy names it. */
  readonly label?: string;
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
  /**
   * The security groups the rules are packed into (one unless the quota forces a split), each
   * with its rules (canonical order) and its counts as AWS counts them. Every group is attached
   * to the host; together they hold exactly `rules`.
   */
  readonly groups: readonly SecurityGroupPlan[];
}

/** One security group of a host's network wall. */
export interface SecurityGroupPlan {
  /** 0 for the first group, 1 for the second … */
  readonly index: number;
  readonly rules: readonly SgRuleSpec[];
  readonly counts: SecurityGroupRuleCounts;
}

export interface SecurityGroupRenderOptions {
  /**
   * How many security groups the network wall may use (1 to 5, default 5: all a network
   * interface takes). Lower it when the instance carries groups of its own.
   */
  readonly maxSecurityGroups?: number;
}

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
export function renderSecurityGroupRules(policy: HostPolicy, options: SecurityGroupRenderOptions = {}): SecurityGroupRendering {
  const maxGroups = options.maxSecurityGroups ?? SECURITY_GROUPS_PER_ENI;
  if (!Number.isInteger(maxGroups) || maxGroups < 1 || maxGroups > SECURITY_GROUPS_PER_ENI) {
    throw new TwinwallError('OPTION_INVALID', {
      value: maxGroups,
      path: [policy.name],
      problem: `maxSecurityGroups ${show(maxGroups)} is not a whole number from 1 to ${SECURITY_GROUPS_PER_ENI}.`,
      fix: `give 1 to ${SECURITY_GROUPS_PER_ENI} (a network interface takes at most ${SECURITY_GROUPS_PER_ENI} security groups), or leave it out.`,
    });
  }
  const { rules, costs, hostOnly } = build(policy);
  checkUniqueIds(policy, rules);
  const frozen = rules.map((r) => Object.freeze(r));
  const groups = pack(policy, frozen, costs, maxGroups);
  return Object.freeze({ rules: Object.freeze(frozen), hostOnly: Object.freeze(hostOnly.map((d) => Object.freeze(d))), groups: Object.freeze(groups) });
}

function build(policy: HostPolicy): { rules: SgRuleSpec[]; costs: SecurityGroupRuleCounts[]; hostOnly: HostOnlyDecision[] } {
  const rules: SgRuleSpec[] = [];
  const costs: SecurityGroupRuleCounts[] = [];
  const hostOnly: HostOnlyDecision[] = [];
  for (const rule of policy.rules) {
    const description = describe(rule.because);
    const target = rule.target;
    if (target.kind === 'cidr') {
      const cidr = target.cidr;
      const family = cidr.family;
      const own = AddressSet.of(family, [cidr]);
      // Most CIDRs hold no link-local service address: then the wall's block is the CIDR itself.
      const linkLocal = own.intersects(LINK_LOCAL_SET[family]);
      const outside = linkLocal ? own.subtract(LINK_LOCAL_SET[family]) : own;
      const origin = outside.isEmpty ? 'exact' : 'within';
      hostOnly.push(...linkLocalDecisions(policy, rule, [cidr], origin));
      if (outside.isEmpty) continue;
      const wall = linkLocal ? smallestBlock(outside) : cidr;
      const quotaCost = { 4: family === 4 ? 1 : 0, 6: family === 6 ? 1 : 0 };
      rules.push({
        id: ruleId(rule, cidrSlug(wall)),
        direction: rule.direction,
        ...protocolAndPorts(rule.port),
        ...(family === 4 ? { cidrIpv4: wall.text } : { cidrIpv6: wall.text }),
        description,
        quotaCost,
        because: rule.because,
      });
      costs.push(cost(rule.direction, quotaCost));
      continue;
    }
    hostOnly.push(...linkLocalDecisions(policy, rule, target.hostCidrs, 'reference'));
    const slug = labelSlug(target.kind, target.label, target.kind === 'securityGroup' ? target.groupId : target.prefixListId);
    let quotaCost: Record<Family, number>;
    if (target.kind === 'securityGroup') quotaCost = { 4: 1, 6: 1 };
    else {
      // AWS counts a referenced prefix list as its max entries, in the list's family. Without a
      // declared maxEntries, the entries given (per family) are what twinwall knows: a lower bound.
      const per = (f: Family) => target.hostCidrs.filter((c) => c.family === f).length;
      const max = target.maxEntries;
      quotaCost = max === undefined ? { 4: per(4), 6: per(6) } : { 4: per(4) > 0 ? max : 0, 6: per(6) > 0 ? max : 0 };
    }
    rules.push({
      id: ruleId(rule, slug),
      direction: rule.direction,
      ...protocolAndPorts(rule.port),
      ...(target.kind === 'securityGroup' ? { referencedSecurityGroupId: target.groupId } : { prefixListId: target.prefixListId }),
      description,
      hostCidrs: target.hostCidrs.map((c) => c.text),
      quotaCost,
      because: rule.because,
      label: target.label,
    });
    costs.push(cost(rule.direction, quotaCost));
  }
  hostOnly.push(...metadataDecisions(policy.options.instanceMetadata));
  return { rules, costs, hostOnly };
}

// ---------------------------------------------------------------------------------------------
// Ids

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
          ? 'give it a label: Peer.securityGroup(app.id, { hostCidrs: ["10.0.2.0/24"], label: "app tier" }) (or host.asPeer({ label: "app tier" })).'
          : 'give it a label: Peer.prefixList(list.id, { cidrs: ["198.51.100.0/24"], label: "partners" }).',
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
        fix: 'give every security-group and prefix-list peer its own label, e.g. Peer.securityGroup(app.id, { hostCidrs, label: "app tier" }).',
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
  const bits = familyBits(set.family);
  // The longest prefix first and last share: the bits below the highest one in which they differ go.
  const differ = first ^ last;
  const prefix = differ === 0n ? bits : bits - bitLength(differ);
  const network = prefix === 0 ? 0n : (first >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  return Cidr.fromParts(set.family, network, prefix);
}

// ---------------------------------------------------------------------------------------------
// Descriptions

/** "mailServer: smtp - delivering mail to other mail servers; webServer: http - serving web pages" (lib/provenance.ts), fitted to AWS. */
function describe(because: readonly Provenance[]): string {
  return awsDescription(provenanceDescription(because));
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
        summary: `${rule.direction} ${rule.port} ${toFrom} ${address} (${AWS_LINK_LOCAL_LABEL[ll.service]}): allowed by the host wall only (${why}); security groups never filter it, so ${how}.`,
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
  return FAMILIES.map((family) => {
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
      summary: `egress ${port} to ${address} (${AWS_LINK_LOCAL_LABEL.instanceMetadata}): ${what} by the host wall (instanceMetadata ${show(value)}); security groups never filter it.`,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Quota

export type SecurityGroupRuleCounts = Record<Direction, Record<Family, number>>;


function cost(direction: Direction, perFamily: Readonly<Record<Family, number>>): SecurityGroupRuleCounts {
  const c = zero();
  c[direction][4] = perFamily[4];
  c[direction][6] = perFamily[6];
  return c;
}

function zero(): SecurityGroupRuleCounts {
  return { ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 0 } };
}

function add(into: SecurityGroupRuleCounts, c: SecurityGroupRuleCounts): void {
  for (const d of DIRECTIONS) for (const f of FAMILIES) into[d][f] += c[d][f];
}

function fits(into: SecurityGroupRuleCounts, c: SecurityGroupRuleCounts): boolean {
  return DIRECTIONS.every((d) => FAMILIES.every((f) => into[d][f] + c[d][f] <= SG_RULES_PER_DIRECTION_PER_FAMILY));
}

function total(c: SecurityGroupRuleCounts): number {
  return c.ingress[4] + c.ingress[6] + c.egress[4] + c.egress[6];
}

function countsText(c: SecurityGroupRuleCounts): string {
  return `ingress IPv4 ${c.ingress[4]}, ingress IPv6 ${c.ingress[6]}, egress IPv4 ${c.egress[4]}, egress IPv6 ${c.egress[6]}`;
}

/**
 * Rules per direction and family as AWS counts them: a CIDR rule in its family; a security-group
 * reference once in each family; a prefix list as its declared maxEntries in its family, or
 * (none declared) once per entry in each family it has entries in, a lower bound of what AWS
 * counts. For the whole policy, before any split.
 */
export function countSecurityGroupRules(policy: HostPolicy): SecurityGroupRuleCounts {
  const counts = zero();
  for (const c of build(policy).costs) add(counts, c);
  return counts;
}

/** The fewest groups any packing could use: the busiest direction and family over 60, rounded up. */
function lowerBound(counts: SecurityGroupRuleCounts): number {
  let n = 1;
  for (const d of DIRECTIONS) for (const f of FAMILIES) n = Math.max(n, Math.ceil(counts[d][f] / SG_RULES_PER_DIRECTION_PER_FAMILY));
  return n;
}

/**
 * Pack the specs into security groups: first fit, the costliest rules (prefix lists) first, then
 * canonical order, so the same policy always gives the same groups. A rule that alone exceeds a
 * group's quota is TW221; more groups than allowed, or more than 1,000 rules, is TW261.
 */
function pack(policy: HostPolicy, specs: readonly SgRuleSpec[], costs: readonly SecurityGroupRuleCounts[], maxGroups: number): SecurityGroupPlan[] {
  const all = zero();
  for (const c of costs) add(all, c);
  for (let i = 0; i < specs.length; i++) {
    const c = costs[i];
    if (fits(zero(), c)) continue;
    const [d, f] = DIRECTIONS.flatMap((dd) => FAMILIES.map((ff) => [dd, ff] as const)).find(([dd, ff]) => c[dd][ff] > SG_RULES_PER_DIRECTION_PER_FAMILY) as [Direction, Family];
    throw new TwinwallError('SG_QUOTA_EXCEEDED', {
      value: specs[i].id,
      path: [policy.name],
      problem: `the rule ${show(specs[i].id)} alone counts as ${c[d][f]} IPv${f} ${d} rules (a prefix list counts as its max entries), but AWS allows ${SG_RULES_PER_DIRECTION_PER_FAMILY} per direction per address family in one security group, so no split can hold it.`,
      fix: `lower the prefix list's maxEntries to ${SG_RULES_PER_DIRECTION_PER_FAMILY} or less, or split it into several lists.`,
    });
  }
  const order = specs.map((_, i) => i).sort((a, b) => Math.max(...DIRECTIONS.flatMap((d) => FAMILIES.map((f) => costs[b][d][f]))) - Math.max(...DIRECTIONS.flatMap((d) => FAMILIES.map((f) => costs[a][d][f]))) || a - b);
  const bins: { counts: SecurityGroupRuleCounts; members: number[] }[] = [];
  for (const i of order) {
    let bin = bins.find((b) => fits(b.counts, costs[i]));
    if (bin === undefined) bins.push((bin = { counts: zero(), members: [] }));
    add(bin.counts, costs[i]);
    bin.members.push(i);
  }
  if (bins.length === 0) bins.push({ counts: zero(), members: [] });
  const sum = total(all);
  if (bins.length > maxGroups || sum > SG_RULES_PER_ENI) {
    const limit = maxGroups === SECURITY_GROUPS_PER_ENI ? `a network interface takes at most ${SECURITY_GROUPS_PER_ENI} security groups` : `maxSecurityGroups allows ${maxGroups} security group${maxGroups === 1 ? '' : 's'}`;
    const why =
      sum > SG_RULES_PER_ENI
        ? `${sum} rules in all (${countsText(all)}), but AWS allows ${SG_RULES_PER_ENI} rules per network interface`
        : `${bins.length} security groups for its ${sum} rules (${countsText(all)}; at least ${lowerBound(all)} groups at ${SG_RULES_PER_DIRECTION_PER_FAMILY} rules per direction per address family), but ${limit}`;
    throw new TwinwallError('ENI_QUOTA_EXCEEDED', {
      value: all,
      path: [policy.name],
      problem: `its network wall needs ${why}.`,
      fix: 'merge peers into fewer, wider CIDRs, put long address lists in a managed prefix list (each reference counts as its max entries), or move roles to a second host.',
    });
  }
  return bins.map((b, index) => {
    const members = [...b.members].sort((x, y) => x - y);
    return Object.freeze({ index, rules: Object.freeze(members.map((i) => specs[i])), counts: b.counts });
  });
}
