/**
 * `twinwall explain`: for one flow of one host, which rule on each wall admits or drops it — the
 * security-group rule resources (address and description) and the path through the filter table
 * (chain, rule number, comment). Pure.
 */
import { Family, familyBits, parseAddress } from '../address';
import { Direction } from '../flow';
import { linkLocalServices } from './addresses';
import { HostCheck, exceptionRegions } from './compare';
import { describeConditions, describePath, describeFlow } from './describe';
import { ModelContext, icmpProto, modelDirection } from './host-model';
import { ruleRegion } from './network-model';
import { Box, IntervalSet, Region } from './space';
import { AWS_LINK_LOCAL_LABEL } from '../peer';
import { PROTO } from '../port';

export interface FlowQuery {
  readonly direction: Direction;
  /** IP protocol number. */
  readonly protocol: number;
  /** Port (tcp/udp) or type*256+code (icmp); 0 for other protocols. */
  readonly point: number;
  readonly address: string;
  /** Sending user (egress); undefined → every user. */
  readonly uid?: number;
}

const NAMES: Record<string, number> = { ...PROTO, 'ipv6-icmp': PROTO.icmpv6 };

/** Parse "tcp/25", "udp/53", "icmp/8", "icmp/3/4", "icmpv6/128", "47". Throws with a one-line reason. */
export function parseTraffic(text: string): { protocol: number; point: number } {
  const parts = text.toLowerCase().split('/');
  const proto = NAMES[parts[0]] ?? (/^\d{1,3}$/.test(parts[0]) && Number(parts[0]) <= 255 ? Number(parts[0]) : undefined);
  if (proto === undefined) throw new Error(`${JSON.stringify(text)}: the protocol must be tcp, udp, icmp, icmpv6 or a number 0-255`);
  const num = (s: string | undefined, max: number, what: string): number => {
    if (s === undefined || !/^\d+$/.test(s) || Number(s) > max) throw new Error(`${JSON.stringify(text)}: ${what} must be a number 0-${max}`);
    return Number(s);
  };
  if (proto === PROTO.tcp || proto === PROTO.udp) {
    if (parts.length !== 2) throw new Error(`${JSON.stringify(text)}: write ${parts[0]}/PORT, e.g. ${parts[0]}/25`);
    return { protocol: proto, point: num(parts[1], 65535, 'the port') };
  }
  if (proto === PROTO.icmp || proto === PROTO.icmpv6) {
    if (parts.length < 2 || parts.length > 3) throw new Error(`${JSON.stringify(text)}: write ${parts[0]}/TYPE or ${parts[0]}/TYPE/CODE`);
    return { protocol: proto, point: num(parts[1], 255, 'the ICMP type') * 256 + (parts.length === 3 ? num(parts[2], 255, 'the ICMP code') : 0) };
  }
  if (parts.length !== 1) throw new Error(`${JSON.stringify(text)}: protocol ${proto} has no ports`);
  return { protocol: proto, point: 0 };
}

export interface Explanation {
  readonly lines: readonly string[];
  /** The walls treat the flow differently, and no documented exception covers it. */
  readonly disagree: boolean;
}

/** Explain one flow on one host. */
export function explainFlow(check: HostCheck, query: FlowQuery): Explanation {
  let parsed: { family: Family; value: bigint };
  try {
    parsed = parseAddress(query.address);
  } catch {
    throw new Error(`${JSON.stringify(query.address)} is not an IPv4 or IPv6 address`);
  }
  const { family, value } = parsed;
  const { direction } = query;
  const bits = familyBits(family);
  const tcpUdp = query.protocol === PROTO.tcp || query.protocol === PROTO.udp;
  const probe = Box.where(bits, {
    proto: IntervalSet.of(query.protocol),
    point: IntervalSet.of(query.point),
    ...(tcpUdp ? {} : { sport: IntervalSet.of(0) }),
    remote: IntervalSet.of(value),
    kind: IntervalSet.of(0),
    ...(query.uid !== undefined && direction === 'egress' ? { uid: IntervalSet.of(query.uid) } : {}),
  });
  const lines: string[] = [];
  const flowText = describeFlow(probe, direction, family);
  lines.push(`${check.label}: ${flowText}`);
  if ((query.protocol === icmpProto(family) || query.protocol === PROTO.icmp || query.protocol === PROTO.icmpv6) && (query.protocol !== icmpProto(family))) {
    lines.push(`  note: protocol ${query.protocol} is not this family's ICMP`);
  }

  // Network wall.
  const admitting = check.host.rules.filter((r) => {
    if (r.direction !== direction || r.problem !== undefined) return false;
    const region = ruleRegion(r, family);
    return region !== undefined && !region.intersectBox(probe).isEmpty;
  });
  const undecidableRules = check.host.rules.filter((r) => r.direction === direction && r.problem !== undefined);
  lines.push('  network wall (security groups):');
  if (check.host.problems.length > 0) for (const p of check.host.problems) lines.push(`    undecidable: ${p}`);
  for (const r of admitting) {
    const via = r.peer !== undefined && r.peer.kind !== 'cidr' ? ` (${r.peer.ref}, through its host-side CIDRs: ${r.peer.source})` : '';
    lines.push(`    admitted by ${r.address}${r.description !== undefined ? ` "${r.description}"` : ''}${via}`);
  }
  for (const r of undecidableRules) lines.push(`    undecidable: ${r.address}: ${r.problem}`);
  if (admitting.length === 0) lines.push(`    dropped: no rule of ${check.host.groups.join(', ') || 'the host'} admits it (security groups deny by default)`);
  const netAdmits = admitting.length > 0;
  const ll = linkLocalServices(family).find((l) => l.value === value);
  if (ll !== undefined) lines.push(`    note: AWS never filters ${ll.address} (${AWS_LINK_LOCAL_LABEL[ll.service]}); the host wall alone decides`);

  // Host wall.
  lines.push('  host wall (iptables):');
  const doc = check.documents[family];
  const ctx: ModelContext = { family, direction, ipsets: check.wall.ipsets };
  const model = modelDirection(doc?.tables.get('filter'), ctx, Region.of([probe]));
  if (model.universe.isEmpty) lines.push('    (not a first packet of a new connection: ICMP errors and replies are RELATED or INVALID to conntrack, never NEW)');
  const verdicts = new Set<string>();
  const sportText = (box: Box): string => {
    const sp = box.get('sport');
    if (!tcpUdp || sp.contains(IntervalSet.of(0, 65535))) return '';
    const ranges = sp.intervals.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
    return ` from source port ${sp.size > 32768n ? `other than ${IntervalSet.of(0, 65535).subtract(sp).intervals.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',')}` : ranges}`;
  };
  const show = (what: string, box: Box, path: Parameters<typeof describePath>[0]) => {
    const cond = `${sportText(box)}${describeConditions(box, direction, family) === '' ? '' : ` ${describeConditions(box, direction, family)}`}`.trim();
    lines.push(`    ${what}${cond === '' ? '' : ` ${cond}`}: ${describePath(path)}`);
  };
  for (const a of model.admitted) {
    verdicts.add('admit');
    show('admitted', a.box, a.path);
  }
  for (const d of model.dropped) {
    verdicts.add('drop');
    show('dropped', d.box, d.path);
  }
  for (const u of model.undecidable) {
    verdicts.add('undecidable');
    const cond = `${sportText(u.box)} ${describeConditions(u.box, direction, family)}`.trim();
    lines.push(`    undecidable${cond === '' ? '' : ` ${cond}`}: ${u.reason}`);
  }
  if (doc === undefined) lines.push(`    (the user-data ships no IPv${family} table)`);

  const hostAdmits = verdicts.has('admit') && verdicts.size === 1;
  const hostDrops = verdicts.has('drop') && verdicts.size === 1;
  const hostRegion = Region.of(model.admitted.map((a) => a.box));
  const netRegion = netAdmits ? model.universe : Region.EMPTY;
  let differ = hostRegion.subtract(netRegion).union(netRegion.subtract(hostRegion));
  const applied: string[] = [];
  for (const e of exceptionRegions(direction, family, check.wallOptions)) {
    if (differ.intersect(e.region).isEmpty) continue;
    applied.push(e.id);
    differ = differ.subtract(e.region);
  }
  let disagree = false;
  const hostText = hostAdmits ? 'admits it' : hostDrops ? 'drops it' : 'admits it only in part';
  if (model.universe.isEmpty) lines.push('  verdict: not compared');
  else if (verdicts.has('undecidable') || undecidableRules.length > 0 || check.host.problems.length > 0) lines.push('  verdict: undecidable');
  else if (differ.isEmpty && applied.length > 0) lines.push(`  verdict: the walls differ only by a documented exception (${applied.join(', ')}); the host wall ${hostText}`);
  else if (differ.isEmpty) lines.push(`  verdict: the walls agree (${netAdmits ? 'admitted' : 'dropped'})`);
  else {
    disagree = true;
    lines.push(`  verdict: the walls DISAGREE: the network wall ${netAdmits ? 'admits' : 'drops'} it, the host wall ${hostText}`);
  }
  return { lines, disagree };
}
