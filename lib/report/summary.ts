/**
 * A short per-host table of what each wall admits, which `npm run synth` prints for every host:
 * the third view of the one verdict `twinwall check` reaches (its text, `twinwall report`'s
 * tables, this table). The rendering is read as the checker reads artefacts
 * (lib/check/rendering.ts) and judged by the checker itself (`checkHost`), so the rows, their
 * verdicts and the "walls differ" marks are the checker's models and findings, not a second
 * comparison.
 *
 * A row is one rule's traffic and remote network (rules of either wall, one row per remote CIDR),
 * and what each wall admits of the new connections in it (the host-only part — loopback, replies,
 * DHCP, ICMP errors, IPv6 neighbour discovery, the forged-source drop — is one footer line
 * instead of rows). ICMP messages that never start a connection (errors such as
 * fragmentation-needed) are outside the checker's flow space; for those a row says which wall
 * has a rule.
 */
import { FAMILIES, Family, familyBits } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { HostRendering } from '../render';
import { allPortsText, protocolName } from '../port';
import { terminalText } from '../terminal';
import { linkLocalServices, parseCidrLenient, toCidrs } from '../check/addresses';
import { Finding, HostCheck, checkHost, exceptionRegions } from '../check/compare';
import { describeTraffic, rangesText } from '../check/describe';
import { POLICY_CHAINS } from '../check/host-only';
import { icmpProto, ruleMatch } from '../check/host-model';
import { IptRule } from '../check/iptables-parse';
import { protocolBox } from '../check/network-model';
import { artefactOfRendering } from '../check/rendering';
import { Box, IntervalSet, Region, fullSet } from '../check/space';
import { SgRule } from '../check/terraform';

/** What one wall does with one kind of new connection. */
export interface WallRow {
  readonly direction: Direction;
  /** "tcp/25", "udp/33434-33534", "icmp 8", "icmpv6/all", "all". */
  readonly traffic: string;
  /** The remote network as a CIDR ("any IPv4" / "any IPv6" for the whole family). */
  readonly remote: string;
  /** Network wall: "yes", "sg <label>", "pl <label>" or "-" (not admitted); "(part)" when it admits some of it. */
  readonly network: string;
  /** Host wall: "yes", "uid <n> only" or "-"; "(part)" when it admits some of it. */
  readonly host: string;
  /** Why the walls differ, when they do for a documented reason. */
  readonly note?: string;
  /** The checker finds the walls differ here (or cannot decide) with no documented reason. */
  readonly mismatch: boolean;
}

/** A row before its verdicts: one rule's traffic (protocol, port or ICMP type) and one remote CIDR. */
interface Cell {
  readonly direction: Direction;
  readonly family: Family;
  /** proto, point and remote constrained; every other axis full. */
  readonly box: Box;
  readonly traffic: string;
  readonly order: readonly number[];
  readonly remote: string;
  /** Verdicts by rule, for traffic outside the flow space (ICMP that starts no connection). */
  readonly network: Set<string>;
  host: boolean;
}

const PROTOCOL_RANK: Record<string, number> = { tcp: 1, udp: 2, icmp: 3, icmpv6: 4 };

/** The traffic part of a row, and its sort key: protocol, then port (or ICMP type and code). */
function trafficOf(box: Box, family: Family): { traffic: string; order: number[] } {
  const proto = box.get('proto');
  if (proto.contains(fullSet('proto', 0))) return { traffic: 'all', order: [0] };
  const p = Number(proto.first);
  const name = protocolName(p);
  const point = box.get('point');
  const [lo, hi] = [Number(point.first), Number(point.last)];
  if (proto.size === 1n && point.intervals.length === 1 && (name === 'tcp' || name === 'udp')) {
    const traffic = lo === 0 && hi === 65535 ? allPortsText(name) : lo === hi ? `${name}/${lo}` : `${name}/${lo}-${hi}`;
    return { traffic, order: [PROTOCOL_RANK[name], lo, hi] };
  }
  if (proto.size === 1n && point.intervals.length === 1 && p === icmpProto(family)) {
    const icmp = family === 4 ? 'icmp' : 'icmpv6';
    if (lo === 0 && hi === 65535) return { traffic: allPortsText(icmp), order: [PROTOCOL_RANK[icmp], -1, -1] };
    const type = lo >> 8;
    if (lo % 256 === 0 && hi === lo + 255) return { traffic: `${icmp} ${type}`, order: [PROTOCOL_RANK[icmp], type, -1] };
    if (lo === hi) return { traffic: `${icmp} ${type}/${lo % 256}`, order: [PROTOCOL_RANK[icmp], type, lo % 256] };
  }
  return { traffic: describeTraffic(box, family), order: [5, p, lo, hi] };
}

function remoteText(cidr: string): string {
  return cidr === '0.0.0.0/0' ? 'any IPv4' : cidr === '::/0' ? 'any IPv6' : cidr;
}

/** How the network-wall column names a rule: "yes", or the reference's label. */
function networkLabel(rule: SgRule, labels: ReadonlyMap<string, string>): string {
  const peer = rule.peer;
  if (peer === undefined || peer.kind === 'cidr') return 'yes';
  return `${peer.kind === 'securityGroup' ? 'sg' : 'pl'} ${labels.get(peer.ref) ?? peer.ref}`;
}

class Cells {
  private readonly byKey = new Map<string, Cell>();

  /**
   * The cells of a region a rule matches in one direction and family: per protocol and port
   * range (or all traffic), one cell per CIDR of the remote addresses.
   */
  public add(direction: Direction, family: Family, region: Region, side: { network?: string; host?: true }): void {
    const parts = new Map<string, { proto: IntervalSet; point: IntervalSet; remote: IntervalSet }>();
    for (const b of region.boxes) {
      const k = `${b.get('proto').key}|${b.get('point').key}`;
      const prior = parts.get(k);
      parts.set(k, { proto: b.get('proto'), point: b.get('point'), remote: (prior?.remote ?? IntervalSet.EMPTY).union(b.get('remote')) });
    }
    const other = family === 4 ? icmpProto(6) : icmpProto(4);
    for (const { proto, point, remote } of parts.values()) {
      // The other family's ICMP (a security-group ICMP rule referencing a group with IPv6 CIDRs): no such traffic.
      if (proto.size === 1n && Number(proto.first) === other) continue;
      const protos = proto.contains(fullSet('proto', 0)) || proto.size > 4n ? [proto] : proto.intervals.flatMap(([a, b]) => range(Number(a), Number(b)).map((p) => IntervalSet.of(p)));
      for (const pr of protos) {
        for (const cidr of toCidrs(family, remote)) {
          const box = Box.where(familyBits(family), { proto: pr, point, remote: parseCidrLenient(cidr).set });
          const { traffic, order } = trafficOf(box, family);
          const remoteName = remoteText(cidr);
          const key = `${direction}|${traffic}|${remoteName}`;
          const cell = this.byKey.get(key) ?? { direction, family, box, traffic, order, remote: remoteName, network: new Set<string>(), host: false };
          if (side.network !== undefined) cell.network.add(side.network);
          if (side.host === true) cell.host = true;
          this.byKey.set(key, cell);
        }
      }
    }
  }

  public get all(): Cell[] {
    return [...this.byKey.values()];
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The rule a model step names. */
function stepRule(check: HostCheck, family: Family, chain: string, number: number | undefined): IptRule | undefined {
  return check.documents[family]?.tables.get('filter')?.chains.get(chain)?.rules.find((r) => r.number === number);
}

/** A rule's matches without its conntrack state: the traffic and peers it names. */
function ruleShape(check: HostCheck, direction: Direction, family: Family, rule: IptRule): Region | undefined {
  const stateless = { ...rule, options: rule.options.filter((o) => o.name !== '--ctstate' && o.name !== '--state') };
  const m = ruleMatch({ family, direction, ipsets: check.wall.ipsets }, stateless);
  return m.unknown.length > 0 ? undefined : m.region;
}

const ROW_FINDINGS: readonly Finding['kind'][] = ['host-only', 'network-only', 'undecidable'];

/** The checker's judgement of one host's rendering. */
function checkRendering(rendering: HostRendering): HostCheck {
  const { host, wall } = artefactOfRendering(rendering);
  return checkHost(host, wall);
}

interface Judged {
  readonly rows: WallRow[];
  /** Findings of the checker that no row shows. */
  readonly others: readonly Finding[];
}

function judge(rendering: HostRendering): Judged {
  const check = checkRendering(rendering);
  // The labels of referenced groups and prefix lists, as the rendered rules carry them.
  const labels = new Map<string, string>();
  for (const spec of rendering.securityGroups.rules) {
    const ref = spec.referencedSecurityGroupId ?? spec.prefixListId;
    if (ref !== undefined && spec.label !== undefined) labels.set(ref, spec.label);
  }
  const cells = new Cells();
  for (const rule of check.host.rules) {
    const peer = rule.peer;
    if (rule.problem !== undefined || peer === undefined) continue;
    for (const family of FAMILIES) {
      const cidrs = peer.kind === 'cidr' ? [peer] : (peer.cidrs ?? []);
      const remote = cidrs.filter((c) => c.family === family).reduce((s, c) => s.union(c.set), IntervalSet.EMPTY);
      if (remote.isEmpty) continue;
      const bits = familyBits(family);
      // One cell per CIDR as the rule names them (a reference: its host-side CIDRs, each a row).
      for (const c of cidrs.filter((x) => x.family === family)) {
        cells.add(rule.direction, family, Region.of([protocolBox(bits, rule.protocol, rule.fromPort, rule.toPort).with('remote', c.set)]), { network: networkLabel(rule, labels) });
      }
    }
  }
  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      const filter = check.documents[family]?.tables.get('filter');
      const chain = direction === 'ingress' ? POLICY_CHAINS[0] : POLICY_CHAINS[1];
      const seen = new Set<string>();
      const accepting: IptRule[] = [...(filter?.chains.get(chain)?.rules ?? [])].filter((r) => r.target?.name === 'ACCEPT');
      // Rules outside the policy chains that admit new connections beyond the host-only part
      // (instance metadata for root, say).
      const own = Box.where(familyBits(family), { kind: IntervalSet.of(0) });
      const hostOnly = exceptionRegions(direction, family, check.wallOptions).filter((e) => e.kind !== 'link-local').reduce((r, e) => r.union(e.region), Region.EMPTY);
      for (const a of check.compared[direction][family].admitted) {
        const last = a.path[a.path.length - 1];
        if (last === undefined || last.number === undefined || POLICY_CHAINS.includes(last.chain)) continue;
        if (Region.of([a.box]).intersectBox(own).subtract(hostOnly).isEmpty) continue;
        const rule = stepRule(check, family, last.chain, last.number);
        if (rule !== undefined) accepting.push(rule);
      }
      for (const rule of accepting) {
        if (seen.has(`${rule.chain}:${rule.number}`)) continue;
        seen.add(`${rule.chain}:${rule.number}`);
        const shape = ruleShape(check, direction, family, rule);
        if (shape !== undefined) cells.add(direction, family, shape, { host: true });
      }
    }
  }

  const counted = new Set<Finding>();
  const rows = cells.all.map((cell) => {
    const { row, findings } = verdicts(check, cell, labels);
    for (const f of findings) counted.add(f);
    return { cell, row };
  });
  rows.sort((x, y) => compareCells(x.cell, y.cell));
  return { rows: rows.map((r) => r.row), others: check.findings.filter((f) => !counted.has(f)) };
}

function compareCells(a: Cell, b: Cell): number {
  if (a.direction !== b.direction) return a.direction === 'ingress' ? -1 : 1;
  const n = Math.max(a.order.length, b.order.length);
  for (let i = 0; i < n; i++) {
    const d = (a.order[i] ?? -2) - (b.order[i] ?? -2);
    if (d !== 0) return d;
  }
  if (a.family !== b.family) return a.family - b.family;
  return a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : 0;
}

/** What each wall admits of one cell, and the checker's findings about it. */
function verdicts(check: HostCheck, cell: Cell, labels: ReadonlyMap<string, string>): { row: WallRow; findings: Finding[] } {
  const { direction, family } = cell;
  const base = { direction, traffic: cell.traffic, remote: cell.remote };
  const bits = familyBits(family);
  const exceptions = exceptionRegions(direction, family, check.wallOptions);
  const hostOnly = exceptions.filter((e) => e.kind !== 'link-local').reduce((r, e) => r.union(e.region), Region.EMPTY);
  const linkLocal = exceptions.filter((e) => e.kind === 'link-local').reduce((r, e) => r.union(e.region), Region.EMPTY);
  const remote = cell.box.get('remote');
  const service = linkLocalServices(family).find((ll) => IntervalSet.of(ll.value).contains(remote))?.service;
  const hm = check.compared[direction][family];
  let region = hm.universe.intersectBox(cell.box).intersectBox(Box.where(bits, { kind: IntervalSet.of(0) })).subtract(hostOnly);
  if (service === undefined) region = region.subtract(linkLocal);

  if (region.isEmpty) {
    // Traffic that never starts a connection (an ICMP error): which wall has a rule for it.
    const network = cell.network.size === 0 ? '-' : [...cell.network].join(', ');
    const host = cell.host ? 'yes' : '-';
    const differ = (network === '-') !== (host === '-');
    return { row: { ...base, network, host, ...(differ ? { note: host === '-' ? 'network wall only!' : 'host wall only!' } : {}), mismatch: differ }, findings: [] };
  }

  let network: string;
  if (service !== undefined) {
    // Security groups never filter a link-local service: the column says which rules name it.
    network = cell.network.size === 0 ? '-' : [...cell.network].join(', ');
  } else {
    const nm = check.models.network[direction][family];
    const netPieces = nm.admitted.filter((a) => !region.intersectBox(a.box).isEmpty);
    const netRegion = Region.of(netPieces.map((a) => a.box)).intersect(region);
    const netLabels = [...new Set(netPieces.map((a) => networkLabel(a.rule, labels)))];
    network = netRegion.isEmpty ? '-' : `${netLabels.join(', ')}${region.subtract(netRegion).isEmpty ? '' : ' (part)'}`;
  }

  const hostRegion = Region.of(hm.admitted.map((a) => a.box)).intersect(region);
  let host: string;
  if (hostRegion.isEmpty) host = '-';
  else if (region.subtract(hostRegion).isEmpty) host = 'yes';
  else {
    const uids = hostRegion.boxes.reduce((s, b) => s.union(b.get('uid')), IntervalSet.EMPTY);
    const byUid = region.intersectBox(Box.where(bits, { uid: uids }));
    host = direction === 'egress' && byUid.subtract(hostRegion).isEmpty ? `uid ${rangesText(uids)} only` : 'yes (part)';
  }

  const findings = check.findings.filter((f) => ROW_FINDINGS.includes(f.kind) && f.direction === direction && f.family === family && f.box !== undefined && !region.intersectBox(f.box).isEmpty);
  const kinds = new Set(findings.map((f) => f.kind));
  let note: string | undefined;
  if (kinds.has('undecidable')) note = 'undecidable!';
  else if (kinds.has('host-only') && kinds.has('network-only')) note = 'the walls differ!';
  else if (kinds.has('host-only')) note = 'host wall only!';
  else if (kinds.has('network-only')) note = 'network wall only!';
  else if (service !== undefined && (network === '-') !== (host === '-')) note = `AWS never filters ${service}`;
  else if (network !== '-' && host !== '-' && host !== 'yes') note = 'host narrows it';
  return { row: { ...base, network, host, ...(note !== undefined ? { note } : {}), mismatch: findings.length > 0 }, findings };
}

/** The rows of one host's table, ingress first, then by protocol, port and remote. */
export function summariseHost(rendering: HostRendering): WallRow[] {
  return judge(rendering).rows;
}

const HEADERS = ['', 'traffic', 'remote', 'network wall', 'host wall', ''] as const;

/** A plain-text table for one host, ending with what both walls always do (control characters escaped). */
export function formatHostSummary(rendering: HostRendering): string {
  const policy = rendering.policy;
  const { rows, others } = judge(rendering);
  const table: string[][] = [
    [...HEADERS],
    ...rows.map((r) => [r.direction === 'ingress' ? 'in' : 'out', r.traffic, r.remote, r.network, r.host, r.note ?? '']),
  ];
  const widths = HEADERS.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const lines = table.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i])).join('  ')}`.trimEnd());
  const mismatches = rows.filter((r) => r.mismatch).length;
  const ud = rendering.userData;
  const text = [
    `host ${policy.name} (${policy.roles.map((r) => r.name).join(', ')})${policy.options.audit ? ' — AUDIT MODE: the host wall logs and accepts what it would drop' : ''}`,
    ...lines,
    `  both walls deny everything else, both directions; the host wall also keeps loopback, replies, DHCP, ICMP errors${'\n'}  and IPv6 neighbour discovery, and drops packets with a forged source. user-data: ${ud.gzipped ? `${ud.bytes} bytes gzipped (${ud.plainBytes} plain)` : `${ud.bytes} bytes`} of 16384.`,
    policy.options.onLoadFailure === 'lockdown'
      ? `  a host-wall table that fails to load at boot leaves its fallback: DROP but loopback, replies, DHCP, neighbour discovery${'\n'}  and the admin roles' ingress (onLoadFailure lockdown).`
      : '  a host-wall table that fails to load at boot leaves that family unfiltered on the host (onLoadFailure open).',
    ...(mismatches > 0 ? [`  !! the walls differ on ${mismatches} row(s) with no documented reason`] : []),
    ...others.map((f) => `  !! twinwall check: ${f.text}`),
  ].join('\n');
  // Peer labels are free text: printed to a terminal, so ESC, CR and bidi controls are escaped.
  return terminalText(text);
}
