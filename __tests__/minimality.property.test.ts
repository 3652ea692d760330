/**
 * Minimality of the network wall, checked against an independent brute force
 * (`support/min-cover.ts`, which never calls normalisation): on small random policies — few
 * flows over a tiny address universe, overlapping and nesting port ranges, ICMP types and codes,
 * all-protocol rules, both families — normalisation emits exactly as many security-group rules as
 * the fewest rules that admit the same traffic. (The admitted set itself is checked unchanged by
 * normalise.property.test.ts.)
 */
import * as fc from 'fast-check';
import { Cidr, Direction, Family, Flow, HostPolicy, Peer, Port, customRole } from '../lib';
import { familyBits } from '../lib/address';
import { Box, minimumCover } from './support/min-cover';

const V4_BASE = 0x0a000000n; // 10.0.0.0: flows live in 10.0.0.0/28
const V6_BASE = 0x20010db8000000000000000000000000n;

function cidrArb(family: Family): fc.Arbitrary<Cidr> {
  const bits = familyBits(family);
  const base = family === 4 ? V4_BASE : V6_BASE;
  return fc.tuple(fc.integer({ min: bits - 4, max: bits }), fc.integer({ min: 0, max: 15 })).map(([prefix, offset]) => {
    const size = 1n << BigInt(bits - prefix);
    return Cidr.fromParts(family, ((base + BigInt(offset)) / size) * size, prefix);
  });
}

const portNumber = fc.integer({ min: 20, max: 27 });
const range = fc.tuple(portNumber, portNumber).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);

function portArb(family: Family): fc.Arbitrary<Port> {
  const v6 = family === 6;
  return fc.oneof(
    { arbitrary: range.map(([a, b]) => Port.tcpRange(a, b)), weight: 6 },
    { arbitrary: fc.constant(Port.allTcp()), weight: 1 },
    { arbitrary: range.map(([a, b]) => Port.udpRange(a, b)), weight: 1 },
    { arbitrary: fc.constant(Port.allTraffic()), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max: 2 }).map((t) => (v6 ? Port.icmpv6Type(128 + t) : Port.icmpType(t))), weight: 2 },
    {
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })).map(([t, c]) => (v6 ? Port.icmpv6TypeAndCode(128 + t, c) : Port.icmpTypeAndCode(t, c))),
      weight: 2,
    },
    { arbitrary: fc.constant(v6 ? Port.allIcmpv6() : Port.allIcmp()), weight: 1 },
  );
}

const caseArb = fc.constantFrom<Family>(4, 6).chain((family) =>
  fc.tuple(fc.constant(family), fc.array(fc.tuple(portArb(family), cidrArb(family)), { minLength: 1, maxLength: 7 })),
);

function box(port: Port, cidr: Cidr): Box {
  const [lo, hi] = port.span;
  const protocol = port.protocol === 'icmpv6' ? 'icmp' : port.protocol;
  return { protocol, lo, hi, first: cidr.first, last: cidr.last };
}

function emitted(policy: HostPolicy, direction: Direction, family: Family): number {
  return policy.rules.filter((r) => r.direction === direction && r.target.kind === 'cidr' && r.target.cidr.family === family).length;
}

describe('minimality against an independent brute force', () => {
  it('the brute force finds the obvious minima (it is not vacuous)', () => {
    const c = (t: string) => Cidr.ipv4(t);
    // Two adjacent /25s on one port: one /24 rule.
    expect(minimumCover([box(Port.tcp(22), c('10.0.0.0/25')), box(Port.tcp(22), c('10.0.0.128/25'))], 32)).toEqual({ rules: 1, exact: true });
    // Staircase: 20-21 to .0/31 and 21-22 to .1/32 → at least 2.
    expect(minimumCover([box(Port.tcpRange(20, 21), c('10.0.0.0/31')), box(Port.tcpRange(21, 22), c('10.0.0.1/32'))], 32).rules).toBe(2);
    // 10.0.0.1-10.0.0.6 on one port: .1/32 .2/31 .4/31 .6/32.
    const hosts = [1, 2, 3, 4, 5, 6].map((i) => box(Port.tcp(80), c(`10.0.0.${i}/32`)));
    expect(minimumCover(hosts, 32)).toEqual({ rules: 4, exact: true });
    // All ICMP from a /30 plus type 3 code 4 from the next /30: two rules.
    expect(minimumCover([box(Port.allIcmp(), c('10.0.0.0/30')), box(Port.icmpTypeAndCode(3, 4), c('10.0.0.4/30'))], 32).rules).toBe(2);
    // Everything from .0/31 covers tcp there: one all-protocols rule and one tcp rule for .2/31.
    expect(minimumCover([box(Port.allTraffic(), c('10.0.0.0/31')), box(Port.tcp(25), c('10.0.0.0/30'))], 32).rules).toBe(2);
  });

  it('normalisation emits the fewest rules that admit the same traffic', () => {
    fc.assert(
      fc.property(caseArb, ([family, flows]) => {
        const policy = HostPolicy.compose('h', [customRole('r', flows.map(([port, cidr]) => Flow.ingress(port, Peer.fromCidr(cidr), 'probe')))]);
        const min = minimumCover(
          flows.map(([port, cidr]) => box(port, cidr)),
          familyBits(family),
        );
        expect(min.exact).toBe(true);
        const got = emitted(policy, 'ingress', family);
        if (got !== min.rules) {
          throw new Error(`emitted ${got}, minimum ${min.rules}: ${flows.map(([p, c]) => `${p} ${c}`).join('; ')} → ${policy.rules.map(String).join('; ')}`);
        }
      }),
      { numRuns: 400 },
    );
  });
});
