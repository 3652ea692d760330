/**
 * What one host's walls admit, for people: rows of (direction, service, traffic, peers), each
 * with the rule on each wall that admits it and the role and reason behind it. Built from the
 * checker's exact models of the artefacts (never from policy objects), so a row is what would
 * be deployed, including rules twinwall did not write. Also the host-only decisions (instance
 * metadata, resolver, time sync, DHCP), which security groups never filter.
 */
import { FAMILIES, Family, familyBits } from '../address';
import { SERVICES, ServiceName } from '../catalog';
import { DIRECTIONS, Direction } from '../flow';
import { AWS_LINK_LOCAL, AWS_LINK_LOCAL_LABEL, AwsLinkLocalService } from '../peer';
import { Provenance } from '../policy';
import { describeAddresses, parseCidrLenient } from '../check/addresses';
import { HostCheck, exceptionRegions } from '../check/compare';
import { describeConditions, describeTraffic } from '../check/describe';
import { Step } from '../check/host-model';
import { Box, IntervalSet, Region, mergeBoxes } from '../check/space';
import { SgRule } from '../check/terraform';
import { mergeProvenance, provenanceFromComment, provenanceFromDescription } from '../provenance';
import { PROTO } from '../port';


/** One kind of new connection the walls admit. */
export interface FlowRow {
  readonly direction: Direction;
  readonly families: readonly Family[];
  /** The catalog service, from the roles behind the rule or (for foreign rules) by its port. */
  readonly service?: string;
  /** "tcp/25", "udp/53", "icmp type 8", "all traffic". */
  readonly traffic: string;
  /** Remote addresses: "any IPv4", "10.10.2.0/24" … */
  readonly peers: readonly string[];
  /** Security groups the network wall names for these peers (resource addresses). */
  readonly peerGroups: readonly string[];
  /** Extra conditions ("for uid 0 only"); "" when none. */
  readonly conditions: string;
  /** The security-group rules that admit it (resource addresses); empty: the network wall does not. */
  readonly network: readonly string[];
  /** The host-wall rules that admit it ("IPv4 tw-out rule 3"); empty: the host wall does not. */
  readonly host: readonly string[];
  readonly because: readonly Provenance[];
  /** Sort key: direction, protocol, first port. */
  readonly order: readonly number[];
}

export type HostOnlyKind = AwsLinkLocalService | 'dhcp';

/** What the host wall alone decides for one link-local service (or DHCP) and family. */
export interface HostOnlyRow {
  readonly kind: HostOnlyKind;
  /** "instance metadata service", "DHCP client" … */
  readonly label: string;
  readonly family: Family;
  /** "169.254.169.254", or the DHCP server side ("udp/67"). */
  readonly address: string;
  /** What the host wall admits there, or "nothing (dropped)". */
  readonly admits: string;
  /** The comments of the host-wall rules that decide it. */
  readonly rules: readonly string[];
}

function stepLabel(family: Family, step: Step | undefined): string {
  if (step === undefined) return `IPv${family} ?`;
  return step.number === undefined ? `IPv${family} ${step.chain} ${step.action}` : `IPv${family} ${step.chain} rule ${step.number}`;
}

function lastStep(path: readonly Step[]): Step | undefined {
  return path[path.length - 1];
}

/** The catalog service whose port is exactly this box's (single protocol, single port). */
function serviceByPort(box: Box): string | undefined {
  const proto = box.get('proto');
  const point = box.get('point');
  if (proto.size !== 1n || point.size !== 1n) return undefined;
  const p = Number(proto.first);
  const port = Number(point.first);
  const name = p === PROTO.tcp ? 'tcp' : p === PROTO.udp ? 'udp' : undefined;
  if (name === undefined) return undefined;
  const hit = (Object.keys(SERVICES) as ServiceName[]).find((s) => SERVICES[s].ports.some((q) => q.protocol === name && q.from === port && q.to === port));
  return hit;
}

interface Cell {
  readonly box: Box;
  readonly rule?: SgRule;
  readonly path?: readonly Step[];
}

function pathKey(path: readonly Step[] | undefined): string {
  if (path === undefined) return '-';
  return path.map((s) => `${s.chain}:${s.number ?? 'p'}:${s.action}`).join('>');
}

/** Cut the network pieces and host pieces against each other. */
function overlay(net: readonly { box: Box; rule: SgRule }[], host: readonly { box: Box; path: readonly Step[] }[]): Cell[] {
  const cells: Cell[] = [];
  const hostRegion = Region.of(host.map((h) => h.box));
  const netRegion = Region.of(net.map((n) => n.box));
  for (const n of net) {
    for (const h of host) {
      const i = n.box.intersect(h.box);
      if (i !== undefined) cells.push({ box: i, rule: n.rule, path: h.path });
    }
    for (const b of Region.of([n.box]).subtract(hostRegion).boxes) cells.push({ box: b, rule: n.rule });
  }
  for (const h of host) for (const b of Region.of([h.box]).subtract(netRegion).boxes) cells.push({ box: b, path: h.path });
  return cells;
}

function orderOf(direction: Direction, box: Box): number[] {
  return [direction === 'ingress' ? 0 : 1, Number(box.get('proto').first), Number(box.get('point').first)];
}

/** The flows both walls admit, one row per (traffic, attribution), the families merged. */
export function hostFlows(check: HostCheck): FlowRow[] {
  const raw: (FlowRow & { key: string })[] = [];
  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      const hm = check.models.host[direction][family];
      const nm = check.models.network[direction][family];
      const bits = familyBits(family);
      const ownBox = Box.where(bits, { kind: IntervalSet.of(0) });
      const excluded = exceptionRegions(direction, family, check.wallOptions).reduce((r, e) => r.union(e.region), Region.EMPTY);
      const clip = (box: Box): Box[] => Region.of([box]).intersectBox(ownBox).subtract(excluded).boxes.slice();
      const net = nm.admitted.flatMap((a) => clip(a.box).map((box) => ({ box, rule: a.rule })));
      const host = hm.admitted.flatMap((a) => clip(a.box).map((box) => ({ box, path: a.path })));
      const groups = new Map<string, { rule?: SgRule; path?: readonly Step[]; boxes: Box[] }>();
      for (const c of overlay(net, host)) {
        const key = `${c.rule?.address ?? '-'}|${pathKey(c.path)}`;
        const g = groups.get(key) ?? { ...(c.rule !== undefined ? { rule: c.rule } : {}), ...(c.path !== undefined ? { path: c.path } : {}), boxes: [] };
        g.boxes.push(c.box);
        groups.set(key, g);
      }
      for (const g of groups.values()) {
        const step = g.path !== undefined ? lastStep(g.path) : undefined;
        const because = mergeProvenance(provenanceFromDescription(g.rule?.description), provenanceFromComment(step?.comment));
        const services = [...new Set(because.map((p) => p.service).filter((s): s is string => s !== undefined))];
        for (const box of mergeBoxes([...g.boxes])) {
          const service = services.length > 0 ? services.join(', ') : serviceByPort(box);
          const peerRef = g.rule?.peer !== undefined && g.rule.peer.kind !== 'cidr' ? [g.rule.peer.ref] : [];
          const row: FlowRow = {
            direction,
            families: [family],
            ...(service !== undefined ? { service } : {}),
            traffic: describeTraffic(box, family),
            peers: [peerText(family, box.get('remote'))],
            peerGroups: peerRef,
            conditions: describeConditions(box, direction, family),
            network: g.rule !== undefined ? [g.rule.address] : [],
            host: g.path !== undefined ? [stepLabel(family, step)] : [],
            because,
            order: orderOf(direction, box),
          };
          raw.push({ ...row, key: rowKey(row) });
        }
      }
    }
  }
  // Merge rows that differ only in family and peers (http from any IPv4 and any IPv6: one row).
  const merged = new Map<string, FlowRow>();
  for (const r of raw) {
    const prior = merged.get(r.key);
    const { key: _key, ...row } = r;
    void _key;
    if (prior === undefined) {
      merged.set(r.key, row);
      continue;
    }
    merged.set(r.key, {
      ...prior,
      families: uniq([...prior.families, ...row.families]).sort() as Family[],
      peers: uniq([...prior.peers, ...row.peers]),
      peerGroups: uniq([...prior.peerGroups, ...row.peerGroups]),
      network: uniq([...prior.network, ...row.network]),
      host: uniq([...prior.host, ...row.host]),
      order: compareOrder(prior.order, row.order) <= 0 ? prior.order : row.order,
    });
  }
  return [...merged.values()].sort((a, b) => compareOrder(a.order, b.order) || cmp(a.traffic, b.traffic) || cmp(a.peers.join(), b.peers.join()) || cmp(a.conditions, b.conditions));
}

function rowKey(r: FlowRow): string {
  const prov = r.because.map((p) => `${p.role}/${p.service ?? ''}/${p.reason}`).join('|');
  return [r.direction, r.traffic.replace(/^icmpv6\b/, 'icmp'), r.conditions, r.network.length > 0, r.host.length > 0, prov, r.service ?? ''].join('\u0000');
}

function uniq<T>(list: readonly T[]): T[] {
  return [...new Set(list)];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareOrder(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

const LINK_LOCAL_SET: Record<Family, IntervalSet> = {
  4: IntervalSet.points(Object.values(AWS_LINK_LOCAL).map((a) => parseCidrLenient(a[4]).set.first)),
  6: IntervalSet.points(Object.values(AWS_LINK_LOCAL).map((a) => parseCidrLenient(a[6]).set.first)),
};

/**
 * The remote addresses of a row. Rows leave out the AWS link-local service addresses (the host
 * wall alone decides them: see the host-only decisions), so "any IPv4" is printed as such rather
 * than as "any IPv4 except 169.254.169.123/32, …".
 */
export function peerText(family: Family, remote: IntervalSet): string {
  const plain = describeAddresses(family, remote);
  const filled = describeAddresses(family, remote.union(LINK_LOCAL_SET[family]));
  return filled.length < plain.length ? filled : plain;
}

const HOST_ONLY_LABEL: Record<HostOnlyKind, string> = { ...AWS_LINK_LOCAL_LABEL, dhcp: 'DHCP client' };

function describeAdmitted(boxes: readonly Box[], direction: Direction, family: Family, withRemote: boolean): string {
  return mergeBoxes([...boxes])
    .map((b) => {
      const cond = describeConditions(b, direction, family);
      const remote = withRemote ? ` ${direction === 'ingress' ? 'from' : 'to'} ${describeAddresses(family, b.get('remote'))}` : '';
      return `${direction} ${describeTraffic(b, family)}${remote}${cond === '' ? '' : ` ${cond}`}`;
    })
    .join('; ');
}

/** The host-only decisions: what the host wall admits to each link-local service, and DHCP. */
export function hostOnlyDecisions(check: HostCheck): HostOnlyRow[] {
  const out: HostOnlyRow[] = [];
  for (const family of FAMILIES) {
    const hm = check.models.host.egress[family];
    const bits = familyBits(family);
    for (const service of Object.keys(AWS_LINK_LOCAL) as AwsLinkLocalService[]) {
      const address = AWS_LINK_LOCAL[service][family];
      const probe = Box.where(bits, { remote: parseCidrLenient(address).set, kind: IntervalSet.of(0) });
      const dhcp = exceptionRegions('egress', family, check.wallOptions).filter((e) => e.kind === 'host-only-part').reduce((r, e) => r.union(e.region), Region.EMPTY);
      const hits = hm.admitted.flatMap((a) => Region.of([a.box]).intersectBox(probe).subtract(dhcp).boxes.map((box) => ({ box, path: a.path })));
      const undecided = hm.undecidable.some((u) => u.box.intersect(probe) !== undefined);
      const comments = uniq(hits.map((h) => lastStep(h.path)?.comment).filter((c): c is string => c !== undefined));
      const admits = hits.length === 0 ? (undecided ? 'undecidable' : 'nothing (dropped)') : describeAdmitted(hits.map((h) => h.box), 'egress', family, false);
      out.push({ kind: service, label: HOST_ONLY_LABEL[service], family, address, admits: undecided && hits.length > 0 ? `${admits} (partly undecidable)` : admits, rules: comments });
    }
    const dhcpHits: { box: Box; path: readonly Step[]; direction: Direction }[] = [];
    for (const direction of DIRECTIONS) {
      // What the host-only part admits by itself over UDP, outside the link-local services: DHCP
      // (the rest of it is neighbour discovery and MLD).
      const udp = Box.where(bits, { proto: IntervalSet.of(17) });
      const dhcp = exceptionRegions(direction, family, check.wallOptions)
        .filter((e) => e.kind === 'host-only-part')
        .reduce((r, e) => r.union(e.region.intersectBox(udp)), Region.EMPTY);
      for (const a of check.models.host[direction][family].admitted) {
        for (const b of Region.of([a.box]).intersect(dhcp).boxes) dhcpHits.push({ box: b, path: a.path, direction });
      }
    }
    const admits = DIRECTIONS.map((d) => dhcpHits.filter((h) => h.direction === d))
      .filter((list) => list.length > 0)
      .map((list) => describeAdmitted(list.map((h) => h.box), list[0].direction, family, true))
      .join('; ');
    out.push({
      kind: 'dhcp',
      label: HOST_ONLY_LABEL.dhcp,
      family,
      address: family === 4 ? 'udp/67-68' : 'udp/546-547',
      admits: admits === '' ? 'nothing (dropped)' : admits,
      rules: uniq(dhcpHits.map((h) => lastStep(h.path)?.comment).filter((c): c is string => c !== undefined)),
    });
  }
  return out;
}
