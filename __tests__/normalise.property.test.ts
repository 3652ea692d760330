/**
 * Property tests of normalisation (fast-check): on random policies — random roles of random
 * flows over IPv4 and IPv6 CIDRs, port ranges, ICMP types and codes, all-protocol rules,
 * security-group and prefix-list peers — normalisation
 *   1. never changes the admitted traffic (checked exhaustively, see `grid`),
 *   2. is idempotent, and
 *   3. does not depend on the order of roles or of the flows inside them.
 */
import * as fc from 'fast-check';
import { Cidr, Direction, Family, Flow, HostPolicy, Peer, PolicyRule, Port, Role, customRole } from '../lib';
import { Probe, Remote, flowAdmits, ruleAdmits } from '../lib/admits';
import { familyBits } from '../lib/address';

// Small universes so that random flows overlap, touch and nest often.
const V4_BASE = 0x0a000000n; // 10.0.0.0, flows live in 10.0.0.0/24 (plus the odd /8 and /0)
const V6_BASE = 0x20010db8000000000000000000000000n; // 2001:db8::, flows live in 2001:db8::/120

function cidrArb(family: Family): fc.Arbitrary<Cidr> {
  const bits = familyBits(family);
  const base = family === 4 ? V4_BASE : V6_BASE;
  const local = fc.tuple(fc.integer({ min: bits - 8, max: bits }), fc.integer({ min: 0, max: 255 })).map(([prefix, offset]) => {
    const size = 1n << BigInt(bits - prefix);
    const network = ((base + BigInt(offset)) / size) * size;
    return Cidr.fromParts(family, network, prefix);
  });
  const wide = family === 4 ? fc.constantFrom(Cidr.anyIpv4(), Cidr.ipv4('10.0.0.0/8')) : fc.constantFrom(Cidr.anyIpv6(), Cidr.ipv6('2001:db8::/32'));
  return fc.oneof({ arbitrary: local, weight: 8 }, { arbitrary: wide, weight: 1 });
}

const SG = { 'sg-a': ['10.0.0.16/28'], 'sg-b': ['10.0.0.0/26', '2001:db8::/124'] } as const;
const PL = { 'pl-1': ['10.0.0.128/25', '2001:db8::80/121'] } as const;

const peerArb: fc.Arbitrary<Peer> = fc.oneof(
  { arbitrary: cidrArb(4).map((c) => Peer.fromCidr(c)), weight: 6 },
  { arbitrary: cidrArb(6).map((c) => Peer.fromCidr(c)), weight: 4 },
  { arbitrary: fc.constantFrom(...(Object.keys(SG) as (keyof typeof SG)[])).map((id) => Peer.securityGroup(id, { hostCidrs: SG[id], label: `group ${id}` })), weight: 1 },
  { arbitrary: fc.constant(Peer.prefixList('pl-1', { cidrs: PL['pl-1'], label: 'partners' })), weight: 1 },
);

const portNumber = fc.oneof({ arbitrary: fc.integer({ min: 20, max: 40 }), weight: 6 }, { arbitrary: fc.constantFrom(0, 65535), weight: 1 });
// Port 0 alone is refused (TW114 PORT_ZERO); as the start of a range it stays.
const range = fc
  .tuple(portNumber, portNumber)
  .map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number])
  .filter(([, b]) => b > 0);

function portArb(families: Family[]): fc.Arbitrary<Port> {
  const options: fc.WeightedArbitrary<Port>[] = [
    { arbitrary: range.map(([a, b]) => Port.tcpRange(a, b)), weight: 5 },
    { arbitrary: range.map(([a, b]) => Port.udpRange(a, b)), weight: 3 },
    { arbitrary: fc.constant(Port.allTraffic()), weight: 1 },
  ];
  const icmp = (v6: boolean) =>
    fc.oneof(
      fc.integer({ min: 0, max: 4 }).map((t) => (v6 ? Port.icmpv6Type(128 + t) : Port.icmpType(t))),
      fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 })).map(([t, c]) => (v6 ? Port.icmpv6TypeAndCode(128 + t, c) : Port.icmpTypeAndCode(t, c))),
      fc.constant(v6 ? Port.allIcmpv6() : Port.allIcmp()),
    );
  if (families.includes(4)) options.push({ arbitrary: icmp(false), weight: 2 });
  if (families.includes(6)) options.push({ arbitrary: icmp(true), weight: 2 });
  return fc.oneof(...options);
}

const flowArb: fc.Arbitrary<Flow> = peerArb.chain((peer) =>
  fc
    .tuple(fc.constantFrom<Direction>('ingress', 'egress'), portArb(peer.families), fc.constantFrom('reason one', 'reason two', 'reason three'))
    .map(([direction, port, reason]) => (direction === 'ingress' ? Flow.ingress(port, peer, reason) : Flow.egress(port, peer, reason))),
);

const rolesArb: fc.Arbitrary<Role[]> = fc
  .uniqueArray(fc.constantFrom('alpha', 'bravo', 'charlie', 'delta'), { minLength: 1, maxLength: 3 })
  .chain((names) => fc.tuple(...names.map((n) => fc.array(flowArb, { minLength: 1, maxLength: 5 }).map((flows) => customRole(n, flows)))));

/**
 * Every probe worth asking. An admitted set is a finite union of boxes (protocol × port span ×
 * address interval, or × identity), so it is constant between consecutive boundaries: asking at
 * every boundary and just outside it decides equality of two such sets exactly.
 */
function grid(flows: readonly Flow[]): Probe[] {
  const points = new Set<number>([0, 65535]);
  const addrs: Record<Family, Set<bigint>> = { 4: new Set([0n, (1n << 32n) - 1n]), 6: new Set([0n, (1n << 128n) - 1n]) };
  for (const f of flows) {
    const [lo, hi] = f.port.span;
    for (const p of [lo - 1, lo, hi, hi + 1]) if (p >= 0 && p <= 65535) points.add(p);
    for (const c of f.peer.hostCidrs) {
      const max = (1n << BigInt(familyBits(c.family))) - 1n;
      for (const a of [c.first - 1n, c.first, c.last, c.last + 1n]) if (a >= 0n && a <= max) addrs[c.family].add(a);
    }
  }
  const remotes: Remote[] = [
    ...([4, 6] as Family[]).flatMap((family) => [...addrs[family]].map((value): Remote => ({ kind: 'address', family, value }))),
    ...Object.keys(SG).map((id): Remote => ({ kind: 'securityGroup', id })),
    { kind: 'prefixList', id: 'pl-1' },
  ];
  const probes: Probe[] = [];
  for (const direction of ['ingress', 'egress'] as Direction[]) {
    for (const protocol of ['tcp', 'udp', 'icmp', 'icmpv6'] as const) {
      for (const point of points) for (const remote of remotes) probes.push({ direction, protocol, point, remote });
    }
  }
  return probes;
}

function serialise(rules: readonly PolicyRule[]): string {
  return JSON.stringify(rules.map((r) => ({ rule: String(r), cidrs: r.hostCidrs.map(String), because: r.because })));
}

function rulesAsFlows(rules: readonly PolicyRule[]): Flow[] {
  return rules.map((r) => {
    const t = r.target;
    const peer =
      t.kind === 'cidr'
        ? Peer.fromCidr(t.cidr)
        : t.kind === 'securityGroup'
          ? Peer.securityGroup(t.groupId, { hostCidrs: t.hostCidrs.map(String), label: t.label })
          : Peer.prefixList(t.prefixListId, { cidrs: t.hostCidrs.map(String), label: t.label });
    return r.direction === 'ingress' ? Flow.ingress(r.port, peer, r.because[0].reason) : Flow.egress(r.port, peer, r.because[0].reason);
  });
}

const RUNS = { numRuns: 150 };

describe('normalisation properties', () => {
  it('never changes the admitted traffic', () => {
    fc.assert(
      fc.property(rolesArb, (roles) => {
        const policy = HostPolicy.compose('h', roles);
        const flows = roles.flatMap((r) => r.flows);
        for (const probe of grid(flows)) {
          const before = flows.some((f) => flowAdmits(f, probe));
          const after = policy.rules.some((r) => ruleAdmits(r, probe));
          if (before !== after) {
            throw new Error(`probe ${JSON.stringify(probe, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}: flows ${before}, rules ${after}`);
          }
        }
      }),
      RUNS,
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(rolesArb, (roles) => {
        const once = HostPolicy.compose('h', roles).rules;
        const twice = HostPolicy.compose('h', [customRole('again', rulesAsFlows(once))]).rules;
        expect(twice.map(String)).toEqual(once.map(String));
      }),
      RUNS,
    );
  });

  it('does not depend on the order of roles or flows', () => {
    fc.assert(
      fc.property(
        rolesArb.chain((roles) =>
          fc.tuple(
            fc.constant(roles),
            fc.shuffledSubarray(roles, { minLength: roles.length, maxLength: roles.length }).chain((shuffled) =>
              fc.tuple(...shuffled.map((r) => fc.shuffledSubarray([...r.flows], { minLength: r.flows.length, maxLength: r.flows.length }).map((flows) => customRole(r.name, flows)))),
            ),
          ),
        ),
        ([roles, reordered]) => {
          expect(serialise(HostPolicy.compose('h', reordered).rules)).toBe(serialise(HostPolicy.compose('h', roles).rules));
        },
      ),
      RUNS,
    );
  });

  it('never emits two rules where one admits all the other does', () => {
    fc.assert(
      fc.property(rolesArb, (roles) => {
        const rules = HostPolicy.compose('h', roles).rules;
        for (const a of rules) {
          for (const b of rules) {
            if (a === b || a.direction !== b.direction || a.target.kind !== 'cidr' || b.target.kind !== 'cidr') continue;
            const portCovered = a.port.protocol === 'all' || (a.port.protocol === b.port.protocol && a.port.span[0] <= b.port.span[0] && a.port.span[1] >= b.port.span[1]);
            if (portCovered && a.target.cidr.contains(b.target.cidr)) throw new Error(`${a} covers ${b}`);
          }
        }
      }),
      RUNS,
    );
  });
});
