/**
 * The lint checks, over a LintSubject (model.ts). Pure and deterministic: the same subject gives
 * the same findings in the same order. Suppressed findings are kept, marked with their reason, so
 * reports show them; they only stop counting as errors or warnings.
 */
import { FAMILIES, Family } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { LINT_RULES, LintId, LintLevel, WORM_PORTS } from './catalog';
import { LintGroup, LintPeer, LintSgRule, LintSubject } from './model';
import { formatProvenance } from './provenance';
import { SECURITY_GROUPS_PER_ENI, SG_RULES_PER_DIRECTION_PER_FAMILY, SG_RULES_PER_ENI } from '../render/security-groups';
import { WIDE_PREFIX, isWidePrefix } from '../roles';
import { allPortsText } from '../port';

export interface LintFinding {
  readonly id: LintId;
  readonly name: string;
  readonly level: LintLevel;
  readonly stack?: string;
  readonly host: string;
  /** The rule resource, group or host the finding is about. */
  readonly location: string;
  /** One sentence naming the traffic and why it is a finding. */
  readonly message: string;
  readonly fix: string;
  readonly references: readonly string[];
  /** Present when the host suppresses this id: the reason it gave. */
  readonly suppressed?: { readonly reason: string };
}

function isWide(peer: LintPeer, v6Threshold: number = WIDE_PREFIX.v6): boolean {
  return peer.kind === 'cidr' && isWidePrefix(peer.family, peer.prefix, v6Threshold);
}

function covers(rule: LintSgRule, protocol: 'tcp' | 'udp', port: number): boolean {
  if (rule.protocol === 'all') return true;
  if (rule.protocol !== protocol) return false;
  return (rule.fromPort ?? 0) <= port && port <= (rule.toPort ?? 65535);
}

function everyPort(rule: LintSgRule): boolean {
  if (rule.protocol === 'all') return true;
  if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') return false;
  // Port 0 is never a service port, so 1-65535 is "every port" too.
  return (rule.fromPort ?? 0) <= 1 && (rule.toPort ?? 65535) === 65535;
}

/** "tcp/22", "udp/1024-65535", "tcp/all", "all traffic", "icmp", "protocol 47". */
export function trafficText(rule: Pick<LintSgRule, 'protocol' | 'fromPort' | 'toPort'>): string {
  if (rule.protocol === 'all') return 'all traffic';
  if (rule.protocol === 'tcp' || rule.protocol === 'udp') {
    const from = rule.fromPort ?? 0;
    const to = rule.toPort ?? 65535;
    if (from <= 1 && to === 65535) return allPortsText(rule.protocol);
    return from === to ? `${rule.protocol}/${from}` : `${rule.protocol}/${from}-${to}`;
  }
  if (rule.protocol === 'icmp' || rule.protocol === 'icmpv6') return rule.protocol;
  return `protocol ${rule.protocol}`;
}

export function peerText(peer: LintPeer): string {
  if (peer.kind === 'cidr') return peer.cidr;
  return peer.kind === 'securityGroup' ? `security group ${peer.id}` : `prefix list ${peer.id}`;
}

function ruleText(rule: LintSgRule): string {
  return `${rule.direction} ${trafficText(rule)} ${rule.direction === 'ingress' ? 'from' : 'to'} ${peerText(rule.peer)}`;
}

function why(rule: LintSgRule): string {
  if (rule.because.length > 0) return formatProvenance(rule.because);
  if (rule.description !== undefined && rule.description.trim() !== '') return `description "${rule.description.trim()}"`;
  return 'no description';
}

type Draft = { id: LintId; location: string; message: string };

function allRules(subject: LintSubject): LintSgRule[] {
  return subject.groups.flatMap((g) => g.rules);
}

function egressAllToAnywhere(subject: LintSubject): Draft[] {
  return allRules(subject)
    .filter((r) => r.direction === 'egress' && isWide(r.peer) && everyPort(r))
    .map((r) => ({ id: 'TWL001', location: r.source, message: `${ruleText(r)}: the host may send anything to anyone (${why(r)}).` }));
}

function adminFromAnywhere(subject: LintSubject): Draft[] {
  const out: Draft[] = [];
  for (const r of allRules(subject)) {
    if (r.direction !== 'ingress' || !isWide(r.peer, WIDE_PREFIX.adminV6)) continue;
    const what = [covers(r, 'tcp', 22) ? 'SSH (tcp/22)' : '', covers(r, 'tcp', 3389) || covers(r, 'udp', 3389) ? 'RDP (3389)' : ''].filter((s) => s !== '');
    if (what.length === 0) continue;
    out.push({ id: 'TWL002', location: r.source, message: `${ruleText(r)} admits ${what.join(' and ')} from (nearly) the whole Internet (${why(r)}).` });
  }
  return out;
}

function openResolver(subject: LintSubject): Draft[] {
  const rules = allRules(subject);
  const dns = (r: LintSgRule) => covers(r, 'udp', 53) || covers(r, 'tcp', 53);
  const answers = rules.filter((r) => r.direction === 'ingress' && isWide(r.peer) && dns(r));
  const queries = rules.filter((r) => r.direction === 'egress' && isWide(r.peer) && dns(r));
  if (answers.length === 0 || queries.length === 0) return [];
  return answers.map((r) => ({
    id: 'TWL003',
    location: r.source,
    message: `${ruleText(r)} lets (nearly) anyone query this host, and it queries port 53 anywhere (${queries.map((q) => peerText(q.peer)).join(', ')}): an open recursive resolver amplifies DDoS attacks (${why(r)}).`,
  }));
}

function imdsAllUsers(subject: LintSubject): Draft[] {
  if (subject.metadataEndpoint === 'disabled') return [];
  const reach = subject.hostWall.metadata;
  if (reach !== 'all-users' && reach !== 'some-users') return [];
  const how =
    subject.hostWall.tables[4] === 'absent'
      ? 'the host ships no host wall, so every local process'
      : reach === 'all-users'
        ? 'the host wall lets every local user'
        : 'the host wall lets users other than root';
  return [{ id: 'TWL004', location: subject.location, message: `${how} open tcp/80 to the instance metadata service (169.254.169.254, fd00:ec2::254) and read the instance role's credentials.` }];
}

function ipv6Unfiltered(subject: LintSubject): Draft[] {
  if (subject.ipv6 === undefined) return [];
  const state = subject.hostWall.tables[6];
  if (state !== 'absent' && state !== 'accept-all') return [];
  const what = state === 'absent' ? 'ships no IPv6 table' : 'has an IPv6 table that admits everything';
  return [{ id: 'TWL005', location: subject.location, message: `the host has IPv6 (${subject.ipv6}) but its host wall ${what}: IPv6 traffic the security group admits reaches every service, and the host may send IPv6 anywhere the group allows.` }];
}

function withoutDescription(subject: LintSubject): Draft[] {
  return allRules(subject)
    .filter((r) => r.description === undefined || r.description.trim() === '')
    .map((r) => ({ id: 'TWL006', location: r.source, message: `${ruleText(r)} has no description, so a reviewer cannot tell who needs it.` }));
}

function weight(rule: LintSgRule): Record<Family, number> {
  if (rule.quotaWeight !== undefined) return { ...rule.quotaWeight };
  if (rule.peer.kind === 'cidr') return rule.peer.family === 4 ? { 4: 1, 6: 0 } : { 4: 0, 6: 1 };
  return { 4: 1, 6: 1 };
}

function groupCounts(group: LintGroup): Record<Direction, Record<Family, number>> {
  const counts: Record<Direction, Record<Family, number>> = { ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 0 } };
  for (const r of group.rules) {
    const w = weight(r);
    counts[r.direction][4] += w[4];
    counts[r.direction][6] += w[6];
  }
  return counts;
}

function quota(subject: LintSubject): Draft[] {
  const out: Draft[] = [];
  const max = SG_RULES_PER_DIRECTION_PER_FAMILY;
  let total = 0;
  for (const g of subject.groups) {
    const c = groupCounts(g);
    total += c.ingress[4] + c.ingress[6] + c.egress[4] + c.egress[6];
    const over = DIRECTIONS.flatMap((d) => FAMILIES.filter((f) => c[d][f] > max).map((f) => `${c[d][f]} IPv${f} ${d} rules`));
    if (over.length > 0) out.push({ id: 'TWL007', location: g.name, message: `the group holds ${over.join(' and ')}; AWS allows ${max} per direction per address family, so the apply fails.` });
  }
  if (subject.groups.length > SECURITY_GROUPS_PER_ENI) {
    out.push({ id: 'TWL007', location: subject.location, message: `the host's network interface carries ${subject.groups.length} security groups; AWS allows ${SECURITY_GROUPS_PER_ENI}.` });
  }
  if (total > SG_RULES_PER_ENI) {
    out.push({ id: 'TWL007', location: subject.location, message: `the host's security groups hold ${total} rules together; AWS allows ${SG_RULES_PER_ENI} per network interface.` });
  }
  return out;
}

function egressToAnywhere(subject: LintSubject): Draft[] {
  return allRules(subject)
    .filter((r) => r.direction === 'egress' && isWide(r.peer) && !everyPort(r))
    .map((r) =>
      r.because.length > 0
        ? { id: 'TWL008' as const, location: r.source, message: `${ruleText(r)}, because ${formatProvenance(r.because)}.` }
        : { id: 'TWL009' as const, location: r.source, message: `${ruleText(r)} with no twinwall role behind it (${why(r)}).` },
    );
}

/** Egress to (nearly) anywhere that reaches a worm port (the all-port case is TWL001's). */
function egressWormPort(subject: LintSubject): Draft[] {
  return allRules(subject)
    .filter((r) => r.direction === 'egress' && isWide(r.peer) && !everyPort(r))
    .flatMap((r) => {
      const hit = WORM_PORTS.filter((w) => r.protocol === w.protocol && (r.fromPort ?? 0) <= w.to && (r.toPort ?? 65535) >= w.from);
      if (hit.length === 0) return [];
      const ports = hit.map((w) => `${w.protocol}/${w.from === w.to ? w.from : `${w.from}-${w.to}`} (${w.what})`).join(', ');
      return [{ id: 'TWL011' as const, location: r.source, message: `${ruleText(r)} reaches ${ports}, which worms use to spread and no server role needs (${why(r)}).` }];
    });
}

function auditMode(subject: LintSubject): Draft[] {
  const families = FAMILIES.filter((f) => subject.hostWall.tables[f] === 'audit');
  if (families.length === 0) return [];
  return [{ id: 'TWL010', location: subject.location, message: `the host wall (${families.map((f) => `IPv${f}`).join(', ')}) is in audit mode: it logs what it would drop and lets it through, so only the security group filters.` }];
}

/** Every check, with the ids it reports. */
const CHECKS: readonly { readonly ids: readonly LintId[]; readonly check: (s: LintSubject) => Draft[] }[] = [
  { ids: ['TWL001'], check: egressAllToAnywhere },
  { ids: ['TWL002'], check: adminFromAnywhere },
  { ids: ['TWL003'], check: openResolver },
  { ids: ['TWL004'], check: imdsAllUsers },
  { ids: ['TWL005'], check: ipv6Unfiltered },
  { ids: ['TWL006'], check: withoutDescription },
  { ids: ['TWL007'], check: quota },
  { ids: ['TWL008', 'TWL009'], check: egressToAnywhere },
  { ids: ['TWL010'], check: auditMode },
  { ids: ['TWL011'], check: egressWormPort },
];

/**
 * One check's findings. A check that throws (a bug, or input it cannot read) is a finding under
 * each of its ids saying the host could not be checked for it — never a crashed synth or report,
 * and never silence that reads as "nothing found".
 */
function run(entry: (typeof CHECKS)[number], subject: LintSubject): Draft[] {
  try {
    return entry.check(subject);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return entry.ids.map((id) => ({
      id,
      location: subject.location,
      message: `this host could not be checked for ${id}: the check failed (${why}); this is a bug in twinwall, please report it, and review the host for ${id} by hand until it is fixed.`,
    }));
  }
}

/** Run every check over one host. Findings are sorted by id, then location, then message. */
export function lintHost(subject: LintSubject): LintFinding[] {
  const suppressed = new Map(subject.suppressions.map((s) => [s.id, s.reason]));
  const drafts = CHECKS.flatMap((entry) => run(entry, subject));
  const seen = new Set<string>();
  const out: LintFinding[] = [];
  for (const d of drafts) {
    const key = `${d.id}|${d.location}|${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const info = LINT_RULES[d.id];
    const reason = suppressed.get(d.id);
    out.push({
      id: d.id,
      name: info.name,
      level: info.level,
      ...(subject.stack !== undefined ? { stack: subject.stack } : {}),
      host: subject.host,
      location: d.location,
      message: d.message,
      fix: info.fix,
      references: info.references,
      ...(reason !== undefined ? { suppressed: { reason } } : {}),
    });
  }
  return out.sort(compareFindings);
}

export function compareFindings(a: LintFinding, b: LintFinding): number {
  const keys: [string | number, string | number][] = [
    [a.stack ?? '', b.stack ?? ''],
    [a.host, b.host],
    [a.id, b.id],
    [a.location, b.location],
    [a.message, b.message],
  ];
  for (const [x, y] of keys) if (x !== y) return x < y ? -1 : 1;
  return 0;
}

/** Findings that still count (not suppressed) at `level`. */
export function active(findings: readonly LintFinding[], level?: LintLevel): LintFinding[] {
  return findings.filter((f) => f.suppressed === undefined && (level === undefined || f.level === level));
}

/** The one-line form used in Annotations and plain-text output. */
export function formatFinding(f: LintFinding): string {
  const head = `${f.id} ${f.name} (${f.level}) at ${f.location}: ${f.message}`;
  if (f.suppressed !== undefined) return `${head} Suppressed: ${f.suppressed.reason}`;
  return `${head} Fix: ${f.fix}`;
}
