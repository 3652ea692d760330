/**
 * `twinwall diff BASE HEAD`: what changed, host by host, between two synth outputs — computed
 * from what each wall admits (the checker's exact models of the artefacts), not from the text of
 * the rules, so renaming or reordering rules is no change and a wider CIDR is exactly the added
 * addresses. Egress widening is high risk: a new destination, a broader destination, a new port
 * or protocol, audit mode switched on, the instance metadata service opened to more users, or
 * forged source addresses let out. New ingress is medium risk; anything removed is low.
 *
 * Hosts are matched by identity — stack and Terraform resource address, which cdktf derives from
 * the construct path and Terraform itself uses — never by the `twinwall:host` or Name tag, which
 * are labels: a host whose label changed is shown renamed and compared with its base. A host
 * with no base is new, and whatever it may send beyond its VPC (and the link-local services and
 * DHCP every host wall keeps) is widened egress too; when the VPC is not in the artefacts, every
 * destination counts.
 */
import { FAMILIES, Family, familyBits } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { AWS_LINK_LOCAL } from '../peer';
import { Provenance } from '../policy';
import { describeAddresses, parseCidrLenient } from '../check/addresses';
import { StackInput, exceptionRegions } from '../check/compare';
import { describeConditions, describeTraffic } from '../check/describe';
import { Step } from '../check/host-model';
import { Box, IntervalSet, Region, mergeBoxes } from '../check/space';
import { SgRule } from '../check/terraform';
import { MetadataReach } from '../lint/model';
import { metadataReach } from '../lint/from-artefacts';
import { mergeProvenance, provenanceFromComment, provenanceFromDescription } from '../provenance';
import { AnalysedHost, ReportFinding, ReportFlow, buildReport } from './report';
import { peerText } from './host';

export const DIFF_SCHEMA_VERSION = 2;

export type Wall = 'network' | 'host';
export type Risk = 'high' | 'medium' | 'low';

export interface FlowChange {
  readonly change: 'added' | 'removed';
  /** The walls on which this exact flow was added or removed. */
  readonly walls: readonly Wall[];
  readonly direction: Direction;
  readonly family: Family;
  /** "egress tcp/587 to any IPv4". */
  readonly flow: string;
  readonly risk: Risk;
  /** Why it is risky (egress widening), one phrase each. */
  readonly reasons: readonly string[];
  /** The roles and reasons behind it (head for added, base for removed), when twinwall wrote it. */
  readonly because: readonly Provenance[];
}

export interface AttributionChange {
  readonly direction: Direction;
  readonly traffic: string;
  readonly peers: readonly string[];
  readonly before: readonly Provenance[];
  readonly after: readonly Provenance[];
}

export interface SettingChange {
  readonly setting: 'audit-mode' | 'instance-metadata' | 'host-wall';
  readonly before: string;
  readonly after: string;
  readonly risk: Risk;
  readonly text: string;
}

export interface HostDiff {
  readonly stack: string;
  /** The host's label in head (base, for a removed host): its twinwall:host or Name tag. */
  readonly name: string;
  /** The Terraform resource address: with the stack, the identity hosts are matched by. */
  readonly address: string;
  /** The label in base, when the host was renamed (same identity, another label). */
  readonly renamedFrom?: string;
  readonly status: 'added' | 'removed' | 'changed' | 'unchanged';
  readonly flows: readonly FlowChange[];
  readonly attribution: readonly AttributionChange[];
  readonly settings: readonly SettingChange[];
  readonly lint: { readonly introduced: readonly ReportFinding[]; readonly resolved: readonly ReportFinding[] };
  /** For added and removed hosts: the flows the host admits (head, or base). */
  readonly admits?: readonly ReportFlow[];
}

export interface DiffSummary {
  readonly hostsAdded: number;
  readonly hostsRemoved: number;
  readonly hostsChanged: number;
  readonly flowsAdded: number;
  readonly flowsRemoved: number;
  readonly highRisk: number;
  /** True when anything at all changed (--fail-on any-change). */
  readonly anyChange: boolean;
  /** True when some egress was widened: on an existing host, or beyond its VPC on a new one (--fail-on widened-egress). */
  readonly widenedEgress: boolean;
}

export interface Diff {
  readonly schema: 'twinwall-diff';
  readonly version: typeof DIFF_SCHEMA_VERSION;
  readonly summary: DiffSummary;
  readonly problems: readonly string[];
  readonly hosts: readonly HostDiff[];
}

type Piece = { box: Box; because: readonly Provenance[] };

function netPieces(h: AnalysedHost, direction: Direction, family: Family): Piece[] {
  const own = Box.where(familyBits(family), { kind: IntervalSet.of(0) });
  return h.check.models.network[direction][family].admitted.flatMap((a: { box: Box; rule: SgRule }) => {
    const i = a.box.intersect(own);
    return i === undefined ? [] : [{ box: i, because: provenanceFromDescription(a.rule.description) }];
  });
}

function hostPieces(h: AnalysedHost, direction: Direction, family: Family): Piece[] {
  return h.check.models.host[direction][family].admitted.map((a: { box: Box; path: readonly Step[] }) => ({
    box: a.box,
    because: provenanceFromComment(a.path[a.path.length - 1]?.comment),
  }));
}

/** Each wall with what it admits, piece by piece. */
const WALL_PIECES = [
  ['network', netPieces],
  ['host', hostPieces],
] as const;

function region(pieces: readonly Piece[]): Region {
  return Region.of(pieces.map((p) => p.box));
}

function attributionOf(box: Box, pieces: readonly Piece[]): Provenance[] {
  return mergeProvenance(...pieces.filter((p) => p.box.intersect(box) !== undefined).map((p) => p.because));
}

const IMDS: Record<Family, string> = { 4: AWS_LINK_LOCAL.instanceMetadata[4], 6: AWS_LINK_LOCAL.instanceMetadata[6] };

/**
 * Why an added egress box widens what the host may send, compared with the wall's base region
 * (less the fixed exceptions every host wall keeps, such as DHCP): traffic (protocol and port)
 * never admitted before is a new port or protocol, and addresses never reached before with it a
 * new destination; known traffic to more addresses is a broader destination.
 */
function wideningReasons(box: Box, base: Region, family: Family, wall: Wall): string[] {
  const bits = familyBits(family);
  const clean = exceptionRegions('egress', family)
    .filter((e) => e.kind === 'host-only-part')
    .reduce((r, e) => r.subtract(e.region), base);
  const portsOf = (b: Box) => Box.where(bits, { proto: b.get('proto'), point: b.get('point') });
  const reasons: string[] = [];
  const newTraffic = Region.of([portsOf(box)]).subtract(Region.of(clean.boxes.map(portsOf)));
  if (!newTraffic.isEmpty) {
    reasons.push(`new port or protocol: ${mergeBoxes([...newTraffic.boxes]).map((b) => describeTraffic(b, family)).join(', ')}`);
    const known = clean.boxes.reduce((s, b) => s.union(b.get('remote')), IntervalSet.EMPTY);
    const newRemote = box.get('remote').subtract(known);
    if (!newRemote.isEmpty) reasons.push(`new destination: ${describeAddresses(family, newRemote)}`);
  } else {
    const before = clean.intersectBox(portsOf(box)).boxes.reduce((s, b) => s.union(b.get('remote')), IntervalSet.EMPTY);
    reasons.push(`broader destination: ${describeTraffic(box, family)} now also to ${describeAddresses(family, box.get('remote'))}${before.isEmpty ? '' : ` (before: ${describeAddresses(family, before)})`}`);
  }
  // Security groups never filter the metadata service: only the host wall opens it.
  if (wall === 'host' && !box.get('remote').intersect(parseCidrLenient(IMDS[family]).set).isEmpty) reasons.push(`instance metadata service (${IMDS[family]}) reachable by more users or ports`);
  if (!box.get('kind').intersect(IntervalSet.of(1)).isEmpty) reasons.push('packets with a forged source address let out');
  return reasons;
}

/**
 * "egress tcp/587 to any IPv4": the remote addresses as the report prints them (the AWS
 * link-local service addresses filled in when that reads shorter: security groups never filter
 * them, and each wall's decision on them is in its own region).
 */
function flowText(box: Box, direction: Direction, family: Family): string {
  const cond = describeConditions(box, direction, family);
  return `${direction} ${describeTraffic(box, family)} ${direction === 'ingress' ? 'from' : 'to'} ${peerText(family, box.get('remote'))}${cond === '' ? '' : ` ${cond}`}`;
}

function flowChanges(base: AnalysedHost, head: AnalysedHost): FlowChange[] {
  const raw: FlowChange[] = [];
  for (const [wall, pieces] of WALL_PIECES) {
    for (const direction of DIRECTIONS) {
      for (const family of FAMILIES) {
        const b = pieces(base, direction, family);
        const h = pieces(head, direction, family);
        const bR = region(b);
        const hR = region(h);
        for (const box of mergeBoxes([...hR.subtract(bR).boxes])) {
          const reasons = direction === 'egress' ? wideningReasons(box, bR, family, wall) : [];
          raw.push({ change: 'added', walls: [wall], direction, family, flow: flowText(box, direction, family), risk: direction === 'egress' ? 'high' : 'medium', reasons, because: attributionOf(box, h) });
        }
        for (const box of mergeBoxes([...bR.subtract(hR).boxes])) {
          raw.push({ change: 'removed', walls: [wall], direction, family, flow: flowText(box, direction, family), risk: 'low', reasons: [], because: attributionOf(box, b) });
        }
      }
    }
  }
  return mergeChanges(raw);
}

/** The same change on both walls is one line; high risk first. */
function mergeChanges(raw: readonly FlowChange[]): FlowChange[] {
  const merged = new Map<string, FlowChange>();
  for (const c of raw) {
    const key = `${c.change}|${c.flow}`;
    const prior = merged.get(key);
    if (prior === undefined) merged.set(key, c);
    else merged.set(key, { ...prior, walls: [...new Set([...prior.walls, ...c.walls])], reasons: [...new Set([...prior.reasons, ...c.reasons])], because: mergeProvenance(prior.because, c.because) });
  }
  const riskRank: Record<Risk, number> = { high: 0, medium: 1, low: 2 };
  return [...merged.values()].sort((x, y) => riskRank[x.risk] - riskRank[y.risk] || (x.change < y.change ? -1 : x.change > y.change ? 1 : 0) || (x.flow < y.flow ? -1 : x.flow > y.flow ? 1 : 0));
}

function flowKey(f: ReportFlow): string {
  return [f.direction, f.traffic, f.peers.join(','), f.conditions ?? '', f.networkWall.admits, f.hostWall.admits].join('|');
}

function provKey(list: readonly Provenance[]): string {
  return list.map((p) => `${p.role}/${p.service ?? ''}/${p.reason}`).join('|');
}

function attributionChanges(base: AnalysedHost, head: AnalysedHost): AttributionChange[] {
  const before = new Map(base.report.flows.map((f) => [flowKey(f), f]));
  const out: AttributionChange[] = [];
  for (const f of head.report.flows) {
    const b = before.get(flowKey(f));
    if (b === undefined || provKey(b.because) === provKey(f.because)) continue;
    out.push({ direction: f.direction, traffic: f.traffic, peers: f.peers, before: b.because, after: f.because });
  }
  return out;
}

const REACH_RANK: Record<MetadataReach, number> = { none: 0, 'root-only': 1, unknown: 2, 'some-users': 3, 'all-users': 4 };

/**
 * The head's host wall can no longer be vouched for (its walls disagree, or the checker cannot
 * read what the user-data would run: a hostile multi-part document, say): whatever its tables
 * say, high risk. `base` undefined: a new host.
 */
function hostWallChange(base: AnalysedHost | undefined, head: AnalysedHost): SettingChange[] {
  const h = head.report.consistency;
  if (h.agree || (base !== undefined && !base.report.consistency.agree)) return [];
  return [
    {
      setting: 'host-wall',
      before: base === undefined ? 'none' : 'walls agree',
      after: 'walls do not agree',
      risk: 'high',
      text: `${base === undefined ? 'new host: ' : ''}twinwall check cannot vouch for the host wall (${h.findings.length} finding(s); first: ${h.findings[0] ?? 'none'})`,
    },
  ];
}

function settingChanges(base: AnalysedHost, head: AnalysedHost): SettingChange[] {
  const out: SettingChange[] = [...hostWallChange(base, head)];
  if (base.report.auditMode !== head.report.auditMode) {
    const on = head.report.auditMode;
    out.push({
      setting: 'audit-mode',
      before: base.report.auditMode ? 'on' : 'off',
      after: on ? 'on' : 'off',
      risk: on ? 'high' : 'low',
      text: on ? 'audit mode switched ON: the host wall now logs and accepts everything it would drop; only the security group filters' : 'audit mode switched off: the host wall enforces again',
    });
  }
  const rb = metadataReach(base.check.models);
  const rh = metadataReach(head.check.models);
  if (rb !== rh) {
    const wider = REACH_RANK[rh] > REACH_RANK[rb];
    out.push({
      setting: 'instance-metadata',
      before: rb,
      after: rh,
      risk: wider ? 'high' : 'low',
      text: `instance metadata service (tcp/80 to ${IMDS[4]}) reachable by: ${rb} → ${rh}${wider ? ' (opened: more local users can read the instance role credentials)' : ''}`,
    });
  }
  return out;
}

function lintChanges(base: AnalysedHost, head: AnalysedHost): HostDiff['lint'] {
  const key = (f: ReportFinding) => `${f.id}|${f.location}|${f.suppressed !== undefined}`;
  const b = new Set(base.report.lint.map(key));
  const h = new Set(head.report.lint.map(key));
  return { introduced: head.report.lint.filter((f) => !b.has(key(f))), resolved: base.report.lint.filter((f) => !h.has(key(f))) };
}

/** A host's identity: its stack and resource address (not its name tag, which anyone can set). */
function hostKey(h: AnalysedHost): string {
  return `${h.report.stack}\u0000${h.report.address}`;
}

/** Egress a host is expected to have wherever it is: the DHCP and AWS link-local exceptions. */
function everyHostEgress(family: Family): Region {
  return Region.of(exceptionRegions('egress', family).flatMap((e) => [...e.region.boxes]));
}

/** "10.10.0.0/16 (aws_vpc.main)", or why the VPC is unknown. */
function vpcText(h: AnalysedHost): string {
  const vpc = h.check.host.vpc;
  return vpc === undefined ? 'its VPC is not in the artefacts, so every destination counts' : `its VPC ${vpc.ref} is ${vpc.cidrs.map((c) => c.text).join(', ')}`;
}

/**
 * What a host with no base may send beyond its VPC, per wall: the egress it admits less its
 * VPC's addresses (for packets with its own source address) and the DHCP and link-local service
 * exceptions every host wall keeps. Each is high-risk widening.
 */
function newHostEgress(h: AnalysedHost): FlowChange[] {
  const raw: FlowChange[] = [];
  for (const [wall, pieces] of WALL_PIECES) {
    for (const family of FAMILIES) {
      const own = pieces(h, 'egress', family);
      const vpc = (h.check.host.vpc?.cidrs ?? []).filter((c) => c.family === family).map((c) => Box.where(familyBits(family), { remote: c.set, kind: IntervalSet.of(0) }));
      const inside = Region.of([...everyHostEgress(family).boxes, ...vpc]);
      const beyond = region(own).subtract(inside);
      for (const box of mergeBoxes([...beyond.boxes])) {
        const reasons = [`new host: ${vpcText(h)}`, ...wideningReasons(box, Region.EMPTY, family, wall)];
        raw.push({ change: 'added', walls: [wall], direction: 'egress', family, flow: flowText(box, 'egress', family), risk: 'high', reasons, because: attributionOf(box, own) });
      }
    }
  }
  return mergeChanges(raw);
}

/** The settings of a host with no base, against what a new host is by default (enforcing, metadata for root). */
function newHostSettings(h: AnalysedHost): SettingChange[] {
  const out: SettingChange[] = [...hostWallChange(undefined, h)];
  if (h.report.auditMode) {
    out.push({ setting: 'audit-mode', before: 'off', after: 'on', risk: 'high', text: 'new host in audit mode: its host wall logs and accepts everything it would drop; only the security group filters' });
  }
  const reach = metadataReach(h.check.models);
  if (REACH_RANK[reach] > REACH_RANK['root-only']) {
    out.push({ setting: 'instance-metadata', before: 'root-only', after: reach, risk: 'high', text: `new host: instance metadata service (tcp/80 to ${IMDS[4]}) reachable by: ${reach} (more local users than root can read the instance role credentials)` });
  }
  return out;
}

/** Compare two sets of stacks. */
export function diffStacks(base: readonly StackInput[], head: readonly StackInput[]): Diff {
  return diffReports(buildReport(base), buildReport(head));
}

/** Compare two analysed reports (buildReport's output), e.g. to diff one base against several heads. */
export function diffReports(b: ReturnType<typeof buildReport>, h: ReturnType<typeof buildReport>): Diff {
  const problems = [...b.report.problems.map((p) => `base: ${p}`), ...h.report.problems.map((p) => `head: ${p}`)];
  const baseHosts = new Map(b.analysed.map((x) => [hostKey(x), x]));
  const headHosts = new Map(h.analysed.map((x) => [hostKey(x), x]));
  const hosts: HostDiff[] = [];
  const noLint = { introduced: [], resolved: [] };
  for (const [key, hh] of headHosts) {
    const bh = baseHosts.get(key);
    const id = { stack: hh.report.stack, name: hh.report.name, address: hh.report.address };
    if (bh === undefined) {
      hosts.push({ ...id, status: 'added', flows: newHostEgress(hh), attribution: [], settings: newHostSettings(hh), lint: { introduced: hh.report.lint, resolved: [] }, admits: hh.report.flows });
      continue;
    }
    const renamed = bh.report.name !== hh.report.name ? { renamedFrom: bh.report.name } : {};
    const flows = flowChanges(bh, hh);
    const attribution = attributionChanges(bh, hh);
    const settings = settingChanges(bh, hh);
    const lint = lintChanges(bh, hh);
    const changed = 'renamedFrom' in renamed || flows.length + attribution.length + settings.length + lint.introduced.length + lint.resolved.length > 0;
    hosts.push({ ...id, ...renamed, status: changed ? 'changed' : 'unchanged', flows, attribution, settings, lint });
  }
  for (const [key, bh] of baseHosts) {
    if (headHosts.has(key)) continue;
    hosts.push({ stack: bh.report.stack, name: bh.report.name, address: bh.report.address, status: 'removed', flows: [], attribution: [], settings: [], lint: noLint, admits: bh.report.flows });
  }
  const order = (x: HostDiff) => [x.stack, x.name, x.address];
  hosts.sort((x, y) => {
    const [a, b] = [order(x), order(y)];
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
  });
  const all = hosts.flatMap((x) => x.flows);
  const highRisk = all.filter((f) => f.risk === 'high').length + hosts.flatMap((x) => x.settings).filter((s) => s.risk === 'high').length;
  const widenedEgress = hosts.some((x) => x.flows.some((f) => f.change === 'added' && f.direction === 'egress') || x.settings.some((s) => s.risk === 'high'));
  return {
    schema: 'twinwall-diff',
    version: DIFF_SCHEMA_VERSION,
    summary: {
      hostsAdded: hosts.filter((x) => x.status === 'added').length,
      hostsRemoved: hosts.filter((x) => x.status === 'removed').length,
      hostsChanged: hosts.filter((x) => x.status === 'changed').length,
      flowsAdded: all.filter((f) => f.change === 'added').length,
      flowsRemoved: all.filter((f) => f.change === 'removed').length,
      highRisk,
      anyChange: hosts.some((x) => x.status !== 'unchanged'),
      widenedEgress,
    },
    problems,
    hosts,
  };
}
