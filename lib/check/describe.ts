/**
 * Boxes of the flow space in words a reviewer reads: "egress tcp/8080 to 10.10.2.0/24",
 * "ingress udp/68 (source port 67) from any IPv4", "egress tcp/80 to 169.254.169.254 for uid 0 only".
 */
import { Family } from '../address';
import { Direction } from '../flow';
import { describeAddresses, ownUnicast, routableSources, toCidrs } from './addresses';
import { NEW_ICMP_TYPES, Step, UNTRACKED_ICMP_TYPES, icmpProto, icmpTypes } from './host-model';
import { Box, IntervalSet, fullSet } from './space';
import { PROTO, allPortsText } from '../port';

/** "22", "0-10,12": a set of numbers as ranges. */
export function rangesText(set: IntervalSet): string {
  return set.intervals.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

function icmpText(name: string, points: IntervalSet, family: Family): string {
  if (points.contains(icmpTypes(NEW_ICMP_TYPES[family]))) {
    const nd = UNTRACKED_ICMP_TYPES[family];
    if (nd.length > 0 && points.contains(icmpTypes(nd))) return `${name} (every type that starts a connection, and neighbour discovery and MLD)`;
    return `${name} (every type that starts a connection)`;
  }
  const parts: string[] = [];
  for (const [a, b] of points.intervals) {
    const ta = Number(a) >> 8;
    const tb = Number(b) >> 8;
    if (Number(a) % 256 === 0 && Number(b) % 256 === 255) parts.push(ta === tb ? `type ${ta}` : `types ${ta}-${tb}`);
    else if (ta === tb) parts.push(`type ${ta} code ${Number(a) % 256 === Number(b) % 256 ? Number(a) % 256 : `${Number(a) % 256}-${Number(b) % 256}`}`);
    else parts.push(`type/code ${ta}/${Number(a) % 256}-${tb}/${Number(b) % 256}`);
  }
  return `${name} ${parts.join(', ')}`;
}

/** The protocol and port part: "tcp/25", "udp/53,123", "icmp type 8", "protocol 47", "all traffic". */
export function describeTraffic(box: Box, family: Family): string {
  const proto = box.get('proto');
  const icmp = icmpProto(family);
  const parts: string[] = [];
  const point = box.get('point');
  const sport = box.get('sport');
  const allPorts = point.contains(fullSet('point', 0));
  const others = proto.subtract(IntervalSet.points([PROTO.tcp, PROTO.udp, icmp]));
  const everything = proto.has(PROTO.tcp) && proto.has(PROTO.udp) && proto.has(icmp) && others.size >= 200n && allPorts && sport.contains(fullSet('sport', 0));
  if (everything) return 'all traffic';
  for (const [p, name] of [
    [PROTO.tcp, 'tcp'],
    [PROTO.udp, 'udp'],
  ] as const) {
    if (!proto.has(p)) continue;
    const src = sport.contains(fullSet('sport', 0)) ? '' : ` (source port ${rangesText(sport)})`;
    parts.push(`${allPorts ? allPortsText(name) : `${name}/${rangesText(point)}`}${src}`);
  }
  if (proto.has(icmp)) parts.push(icmpText(family === 4 ? 'icmp' : 'icmpv6', point, family));
  if (!others.isEmpty) parts.push(others.size >= 200n ? 'every other protocol' : `protocol ${rangesText(others)}`);
  return parts.join(' + ');
}

/** Extra conditions of a box beyond protocol, port and remote address (empty string if none). */
export function describeConditions(box: Box, direction: Direction, family: Family): string {
  const out: string[] = [];
  const kind = box.get('kind');
  const local = box.get('local');
  if (direction === 'egress' && kind.equals(IntervalSet.of(1))) {
    out.push(local.contains(routableSources(family)) ? 'from a forged source address (not one of the host\'s)' : `from a forged source address in ${toCidrs(family, local).join(', ')}`);
  } else if (!local.contains(ownUnicast(family))) {
    out.push(`when the host's own address is in ${describeAddresses(family, local, ownUnicast(family))}`);
  }
  const uid = box.get('uid');
  if (direction === 'egress' && !uid.contains(fullSet('uid', 0))) {
    const all = fullSet('uid', 0);
    out.push(uid.size <= 3n ? `for uid ${rangesText(uid)} only` : `for every uid except ${rangesText(all.subtract(uid))}`);
  }
  const hl = box.get('hl');
  if (!hl.contains(fullSet('hl', 0))) out.push(`with ${family === 4 ? 'TTL' : 'hop limit'} ${rangesText(hl)}`);
  return out.join(', ');
}

/** "egress tcp/8080 to 10.10.2.0/24 for uid 0 only". */
export function describeFlow(box: Box, direction: Direction, family: Family): string {
  const toFrom = direction === 'ingress' ? 'from' : 'to';
  const cond = describeConditions(box, direction, family);
  return `${direction} ${describeTraffic(box, family)} ${toFrom} ${describeAddresses(family, box.get('remote'))}${cond === '' ? '' : ` ${cond}`}`;
}

/** "OUTPUT 12 → tw-out 3 \"web/http-alt: proxy…\"", the path a packet took through the chains. */
export function describePath(path: readonly Step[]): string {
  const kept = path.filter((s) => s.action !== 'RETURN');
  const parts = kept
    .map((s, i) => {
      if (s.number === undefined) return `${s.chain} ${s.action}`;
      const c = s.comment !== undefined && i === kept.length - 1 ? ` "${s.comment}"` : '';
      return `${s.chain} rule ${s.number}${c}`;
    });
  const last = path[path.length - 1];
  const verdict = last !== undefined && last.number !== undefined ? ` (${last.action})` : '';
  return `${parts.join(' → ')}${verdict}`;
}
