/**
 * The probe plan of `twinwall verify`: concrete TCP and UDP connection attempts (and hand-built
 * packets with forged sources) at the edges of what the walls admit — every port boundary and
 * every CIDR edge (first-1, first, last, last+1) of every security-group rule and every piece the
 * host wall admits — each with the verdict the security groups give it (the documented
 * exceptions: the host wall's own verdict) and the verdict the checker's host model predicts.
 * Pure: the kernel run is cli/verify.ts.
 */
import { FAMILIES, Family, formatAddress, parseAddress } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { linkLocalServices, parseCidrLenient } from './addresses';
import { HostCheck, exceptionRegions } from './compare';
import { Box, IntervalSet, Region } from './space';
import { PROTO } from '../port';

export interface PlannedProbe {
  readonly id: string;
  readonly direction: Direction;
  readonly family: Family;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  /** The remote address (the peer's side). */
  readonly remote: string;
  /** 'socket': a real connection; 'forged': a raw packet from `forgedSource`; 'real-raw': a raw packet from the host's own address (control). */
  readonly how: 'socket' | 'forged' | 'real-raw';
  readonly forgedSource?: string;
  /** Run as this uid (egress); undefined → root. */
  readonly uid?: number;
  /** What the security groups say (or, for a documented exception, the host wall). */
  readonly expected: boolean;
  /** Why `expected` is what it is: the admitting rule, "default deny", an exception. */
  readonly basis: string;
  /** What the checker's host model predicts the kernel will do. */
  readonly model: boolean;
}

export interface ProbePlan {
  readonly host4: string;
  readonly host6: string;
  readonly probes: readonly PlannedProbe[];
  /** Remote addresses the peer namespace must own. */
  readonly peerAddresses: Record<Family, readonly string[]>;
}

const UNUSABLE: Record<Family, IntervalSet> = {
  4: ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/3'].map((c) => parseCidrLenient(c).set).reduce((a, b) => a.union(b)),
  6: ['::/8', 'fe80::/10', 'ff00::/8', '::ffff:0:0/96'].map((c) => parseCidrLenient(c).set).reduce((a, b) => a.union(b)),
};

/** Addresses that stand for "somewhere else" when no rule gives an edge. */
const FILLERS: Record<Family, readonly string[]> = {
  4: ['198.51.100.77', '203.0.113.200', '100.64.7.7'],
  6: ['2001:db8:77::7', '2001:db8:ffff:1::77'],
};
const HOST_CHOICES: Record<Family, readonly string[]> = {
  4: ['100.127.254.10', '198.18.254.10', '192.0.0.170', '203.0.113.254'],
  6: ['2001:db8:fffe::10', 'fd7e:7e7e::10', '2001:db8:1234::10'],
};

/** A deterministic pseudo-random generator (xorshift32), so a plan is reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function edges(set: IntervalSet, min: bigint, max: bigint): bigint[] {
  const out: bigint[] = [];
  for (const [a, b] of set.intervals) {
    for (const v of [a - 1n, a, b, b + 1n]) if (v >= min && v <= max) out.push(v);
    if (b - a > 2n) out.push(a + (b - a) / 2n);
  }
  return out;
}

function pointInRegion(region: Region, box: Box): boolean {
  return !region.intersectBox(box).isEmpty;
}

/**
 * Plan the probes of one host. `maxPerGroup` caps the probes per (direction, family, protocol)
 * (the edges are always kept; the rest is a deterministic sample of the cross product).
 */
export function planProbes(check: HostCheck, options: { maxPerGroup?: number } = {}): ProbePlan {
  const maxPerGroup = options.maxPerGroup ?? 160;
  const { models } = check;
  const candidates: Record<Family, Set<bigint>> = { 4: new Set(), 6: new Set() };
  const plans: Omit<PlannedProbe, 'id'>[] = [];
  const usable = (family: Family, v: bigint): boolean => !UNUSABLE[family].has(v);
  const bits: Record<Family, number> = { 4: 32, 6: 128 };

  // Pick the host's own addresses first, outside every candidate range we might probe.
  const remoteEdges: Record<Family, bigint[]> = { 4: [], 6: [] };
  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      const max = (1n << BigInt(bits[family])) - 1n;
      for (const a of models.network[direction][family].admitted) remoteEdges[family].push(...edges(a.box.get('remote'), 0n, max));
      for (const a of models.host[direction][family].admitted) remoteEdges[family].push(...edges(a.box.get('remote'), 0n, max));
      remoteEdges[family].push(...FILLERS[family].map((f) => parseAddress(f).value));
    }
  }
  const hostAddr = {} as Record<Family, string>;
  for (const family of FAMILIES) {
    const taken = new Set(remoteEdges[family].map(String));
    const pick = HOST_CHOICES[family].find((h) => !taken.has(String(parseAddress(h).value)));
    if (pick === undefined) throw new Error(`no free host address for IPv${family}`);
    hostAddr[family] = pick;
  }

  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      const hm = models.host[direction][family];
      const nm = models.network[direction][family];
      const b = bits[family];
      const max = (1n << BigInt(b)) - 1n;
      const hostValue = parseAddress(hostAddr[family]).value;
      const netRegion = Region.of(nm.admitted.map((a) => a.box));
      const hostRegion = Region.of(hm.admitted.map((a) => a.box));
      const undecided = Region.of([...hm.undecidable.map((u) => u.box), ...nm.undecidable.map((u) => u.box)]);
      const exceptions = exceptionRegions(direction, family, check.wallOptions);
      const llValues = new Set(linkLocalServices(family).map((l) => l.value));
      for (const [proto, protocol] of [
        [PROTO.tcp, 'tcp'],
        [PROTO.udp, 'udp'],
      ] as const) {
        const protoSet = IntervalSet.of(proto);
        const ports = new Set<number>([1, 1434, 8080, 65535]);
        const addrs = new Set<bigint>(FILLERS[family].map((f) => parseAddress(f).value));
        const pieces = [...nm.admitted.map((a) => a.box), ...hm.admitted.map((a) => a.box)].filter((x) => x.get('proto').has(proto) && x.get('kind').has(0));
        for (const piece of pieces) {
          for (const p of edges(piece.get('point'), 1n, 65535n)) ports.add(Number(p));
          for (const a of edges(piece.get('remote'), 0n, max)) addrs.add(a);
        }
        const addrList = [...addrs].filter((a) => usable(family, a) && a !== hostValue && !llValues.has(a)).sort((x, y) => (x < y ? -1 : 1));
        const portList = [...ports].filter((p) => p >= 1 && p <= 65535).sort((x, y) => x - y);
        // Every (port, address) pair if it fits; else every edge at least once plus a sample.
        let pairs: [number, bigint][] = [];
        for (const p of portList) for (const a of addrList) pairs.push([p, a]);
        if (pairs.length > maxPerGroup) {
          const rand = rng(proto * 7919 + family * 104729 + (direction === 'ingress' ? 1 : 2));
          const keep = new Map<string, [number, bigint]>();
          portList.forEach((p, i) => keep.set(`${p}|${addrList[i % addrList.length]}`, [p, addrList[i % addrList.length]]));
          addrList.forEach((a, i) => keep.set(`${portList[i % portList.length]}|${a}`, [portList[i % portList.length], a]));
          // Admitted pieces' own corners, so every admitted region is probed inside its edges.
          for (const piece of pieces) {
            const pt = piece.get('point');
            const rm = piece.get('remote');
            for (const p of [Number(pt.first), Number(pt.last)]) for (const a of [rm.first, rm.last]) if (p >= 1 && usable(family, a) && a !== hostValue && !llValues.has(a)) keep.set(`${p}|${a}`, [p, a]);
          }
          while (keep.size < maxPerGroup && keep.size < pairs.length) {
            const [p, a] = pairs[Math.floor(rand() * pairs.length)];
            keep.set(`${p}|${a}`, [p, a]);
          }
          pairs = [...keep.values()];
        }
        for (const [port, a] of pairs) {
          const probeBox = Box.where(b, {
            proto: protoSet,
            point: IntervalSet.of(port),
            sport: IntervalSet.of(40000, 60999), // the kernel's ephemeral ports
            remote: IntervalSet.of(a),
            kind: IntervalSet.of(0),
            local: IntervalSet.of(hostValue),
            hl: IntervalSet.of(64),
            ...(direction === 'egress' ? { uid: IntervalSet.of(0) } : { uid: IntervalSet.of(0) }),
          });
          if (pointInRegion(undecided, probeBox)) continue; // undecidable: nothing to compare with
          const model = pointInRegion(hostRegion, probeBox);
          const net = nm.admitted.find((x) => x.box.intersect(probeBox) !== undefined);
          const exception = exceptions.find((e) => pointInRegion(e.region, probeBox));
          const expected = exception !== undefined ? model : net !== undefined;
          const basis = exception !== undefined ? `documented exception (${exception.id})` : net !== undefined ? `${net.rule.address}` : 'no security-group rule (default deny)';
          plans.push({ direction, family, protocol, port, remote: formatAddress(family, a), how: 'socket', expected, basis, model });
          candidates[family].add(a);
        }
        // Forged sources: for up to four admitted egress destinations, the same packet twice: once
        // from the host's own address (it must arrive), once from a forged one (it must not).
        if (direction === 'egress') {
          const admittedPairs = pairs.filter(([port, a]) =>
            pointInRegion(netRegion, Box.where(b, { proto: protoSet, point: IntervalSet.of(port), remote: IntervalSet.of(a), kind: IntervalSet.of(0) })),
          );
          const forgedSrc = family === 4 ? '192.0.2.99' : '2001:db8:dead::99';
          for (const [port, a] of admittedPairs.slice(0, 4)) {
            const remote = formatAddress(family, a);
            const ownBox = Box.where(b, { proto: protoSet, point: IntervalSet.of(port), sport: IntervalSet.of(40000, 40001), remote: IntervalSet.of(a), kind: IntervalSet.of(0), local: IntervalSet.of(hostValue), uid: IntervalSet.of(0) });
            const forgedBox = ownBox.with('kind', IntervalSet.of(1)).with('local', IntervalSet.of(parseAddress(forgedSrc).value));
            plans.push({ direction, family, protocol, port, remote, how: 'real-raw', expected: true, basis: 'control: the host\'s own source address', model: pointInRegion(hostRegion, ownBox) });
            plans.push({ direction, family, protocol, port, remote, how: 'forged', forgedSource: forgedSrc, expected: false, basis: 'forged source (the host-only part drops it: docs/architecture.md, "Consistency")', model: pointInRegion(hostRegion, forgedBox) });
          }
        }
      }
      // The link-local services: the host wall alone decides, for root and for an ordinary user.
      if (direction === 'egress') {
        for (const ll of linkLocalServices(family)) {
          for (const [port, protocol] of [
            [80, 'tcp'],
            [53, 'udp'],
            [123, 'udp'],
          ] as const) {
            for (const uid of [0, 65534]) {
              const box = Box.where(b, { proto: IntervalSet.of(protocol === 'tcp' ? PROTO.tcp : PROTO.udp), point: IntervalSet.of(port), sport: IntervalSet.of(40000, 60999), remote: IntervalSet.of(ll.value), kind: IntervalSet.of(0), local: IntervalSet.of(hostValue), hl: IntervalSet.of(64), uid: IntervalSet.of(uid) });
              if (pointInRegion(undecided, box)) continue;
              const model = pointInRegion(hostRegion, box);
              plans.push({ direction, family, protocol, port, remote: ll.address, how: 'socket', ...(uid !== 0 ? { uid } : {}), expected: model, basis: `documented exception (host-only destination ${ll.address})`, model });
              candidates[family].add(ll.value);
            }
          }
        }
      }
    }
  }
  const probes = plans.map((p, i) => ({ ...p, id: `p${i}` }));
  return {
    host4: hostAddr[4],
    host6: hostAddr[6],
    probes,
    peerAddresses: { 4: [...candidates[4]].map((v) => formatAddress(4, v)), 6: [...candidates[6]].map((v) => formatAddress(6, v)) },
  };
}
