import { SECURITY_GROUPS_PER_ENI, SG_RULES_PER_DIRECTION_PER_FAMILY, SG_RULES_PER_ENI } from '../render/security-groups';
/**
 * The lint catalog: every check twinwall runs over a host's walls, with a stable id, a level and
 * a fix. Ids are never renumbered or reused (users write them in suppressions and CI filters);
 * a retired check keeps its row, marked retired, rather than freeing its id.
 *
 * Levels: an `error` fails `cdktf synth` (as an error Annotation) and makes `twinwall report`
 * exit 1; a `warning` is shown but fails nothing; a `notice` records a deliberate decision a
 * reviewer should see (port-scoped egress to anywhere that a role justifies, with its reason).
 * Any finding can be suppressed per host, only with a written reason, which the report shows.
 */

export type LintLevel = 'error' | 'warning' | 'notice';

export interface LintRuleInfo {
  /** Stable id, e.g. "TWL001". */
  readonly id: string;
  /** Stable kebab-case name, e.g. "egress-all-to-anywhere". */
  readonly name: string;
  readonly level: LintLevel;
  /** One line: what the check finds. */
  readonly title: string;
  /** How to fix it (or how to record that it is intended). */
  readonly fix: string;
  /** The same check in other scanners, for readers who know those. */
  readonly references: readonly string[];
}

/** Every lint id (stable; never renumbered or reused). */
export type LintId = 'TWL001' | 'TWL002' | 'TWL003' | 'TWL004' | 'TWL005' | 'TWL006' | 'TWL007' | 'TWL008' | 'TWL009' | 'TWL010' | 'TWL011';

const rules: readonly (LintRuleInfo & { readonly id: LintId })[] = [
  {
    id: 'TWL001',
    name: 'egress-all-to-anywhere',
    level: 'error',
    title: 'all protocols, or every TCP/UDP port, may go out to (nearly) the whole Internet',
    fix: 'list the services the host sends (roles or Flow.egress per port) and their destinations; a compromised host with this rule can send anything anywhere.',
    references: ['checkov CKV_AWS_382', 'trivy AVD-AWS-0104'],
  },
  {
    id: 'TWL002',
    name: 'admin-from-anywhere',
    level: 'error',
    title: 'SSH (tcp/22) or RDP (3389) is reachable from (nearly) the whole Internet',
    fix: 'admit administration from your admin networks or a bastion only (sshAdmin({ from: [...] })).',
    references: ['checkov CKV_AWS_24', 'checkov CKV_AWS_25', 'trivy AVD-AWS-0107'],
  },
  {
    id: 'TWL003',
    name: 'open-resolver',
    level: 'error',
    title: 'an open recursive resolver: DNS answered for (nearly) anyone while querying port 53 anywhere',
    fix: 'answer recursive queries for declared clients only: dnsServer({ mode: "recursive", clients: [vpcCidr] }).',
    references: ['US-CERT TA13-088A (DNS amplification)'],
  },
  {
    id: 'TWL004',
    name: 'imds-all-users',
    level: 'warning',
    title: 'every local user may reach the instance metadata service (and read the instance role credentials)',
    fix: 'keep instanceMetadata "root-only" (the default) or "none"; a compromised daemon then cannot read the credentials.',
    references: ['AWS IMDS: limit access with local firewall rules'],
  },
  {
    id: 'TWL005',
    name: 'ipv6-unfiltered',
    level: 'error',
    title: 'the host has IPv6 but its host wall does not filter IPv6',
    fix: 'ship an ip6tables table with DROP policies (FilteredHost does) in the instance user-data, or give the host no IPv6 address.',
    references: [],
  },
  {
    id: 'TWL006',
    name: 'rule-without-description',
    level: 'warning',
    title: 'a security-group rule has no description',
    fix: 'describe every rule with the role and reason that need it (twinwall writes one on every rule it renders).',
    references: ['checkov CKV_AWS_23'],
  },
  {
    id: 'TWL007',
    name: 'sg-quota-exceeded',
    level: 'error',
    title: 'a security group, or the host\'s network interface, holds more rules or groups than AWS allows',
    fix: `merge peers into fewer, wider CIDRs or a managed prefix list, or split the roles over more host policies; AWS allows ${SG_RULES_PER_DIRECTION_PER_FAMILY} rules per direction per address family per group, ${SECURITY_GROUPS_PER_ENI} groups and ${SG_RULES_PER_ENI.toLocaleString('en-US')} rules per network interface.`,
    references: ['AWS VPC quotas'],
  },
  {
    id: 'TWL008',
    name: 'egress-to-anywhere-justified',
    level: 'notice',
    title: 'port-scoped egress to (nearly) the whole Internet, justified by a role',
    fix: 'nothing to fix if the reason holds (mail delivery, recursive DNS); narrow the destination when a relay or fixed peers will do.',
    references: [],
  },
  {
    id: 'TWL009',
    name: 'egress-to-anywhere-unexplained',
    level: 'warning',
    title: 'port-scoped egress to (nearly) the whole Internet that no twinwall role asked for',
    fix: 'express it as a role flow with a reason (customRole(…, [Flow.egress(port, peer, reason)])), or narrow the destination.',
    references: ['trivy AVD-AWS-0104'],
  },
  {
    id: 'TWL010',
    name: 'host-wall-audit-mode',
    level: 'warning',
    title: 'the host wall is in audit mode: it logs what it would drop, and drops nothing',
    fix: 'switch audit off once the logs show no legitimate traffic being caught (audit: false).',
    references: [],
  },
  {
    id: 'TWL011',
    name: 'egress-worm-port',
    level: 'error',
    title: 'egress to (nearly) the whole Internet on a port no server role needs and worms use (udp/1434, SMB/NetBIOS 135-139 and 445, telnet 23, tftp 69)',
    fix: 'drop the flow, or narrow it to the peers you mean; if a host really must, suppress TWL011 with the reason.',
    references: [],
  },
];

/**
 * Ports worms spread on and no server role needs to reach on the Internet: egress to (nearly)
 * anywhere on one of them is TWL011. Slammer (udp/1434) first, then the classics.
 */
export const WORM_PORTS: readonly { readonly protocol: 'tcp' | 'udp'; readonly from: number; readonly to: number; readonly what: string }[] = [
  { protocol: 'udp', from: 1434, to: 1434, what: 'SQL Server resolution (Slammer)' },
  { protocol: 'tcp', from: 135, to: 139, what: 'RPC and NetBIOS (Blaster)' },
  { protocol: 'udp', from: 135, to: 139, what: 'RPC and NetBIOS' },
  { protocol: 'tcp', from: 445, to: 445, what: 'SMB (WannaCry)' },
  { protocol: 'udp', from: 445, to: 445, what: 'SMB' },
  { protocol: 'tcp', from: 23, to: 23, what: 'telnet (Mirai)' },
  { protocol: 'udp', from: 69, to: 69, what: 'TFTP' },
];

/** Every lint rule, by id. */
export const LINT_RULES: Readonly<Record<LintId, LintRuleInfo>> = Object.freeze(Object.fromEntries(rules.map((r) => [r.id, Object.freeze(r)])) as unknown as Record<LintId, LintRuleInfo>);

/** Every lint id, in order. */
export const LINT_IDS: readonly LintId[] = rules.map((r) => r.id);

export function isLintId(id: unknown): id is LintId {
  return typeof id === 'string' && Object.prototype.hasOwnProperty.call(LINT_RULES, id);
}

/** Look a rule up by id or by name ("TWL001" or "egress-all-to-anywhere"). */
export function lintRule(idOrName: string): LintRuleInfo | undefined {
  if (isLintId(idOrName)) return LINT_RULES[idOrName];
  return rules.find((r) => r.name === idOrName);
}
