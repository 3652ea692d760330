/**
 * Unit tests of the pure core: value objects, the catalog, the roles and normalisation on
 * hand-picked cases. The property tests (normalise.property.test.ts) cover the general case.
 */
import { Cidr, Flow, HostPolicy, MailClientService, Peer, Port, Role, SERVICES, customRole, dnsClient, dnsServer, mailServer, ntpClient, sshAdmin, webServer } from '../lib';
import { MAIL_CLIENT_SERVICES } from '../lib/roles';
import fc from 'fast-check';
import * as ipaddr from 'ipaddr.js';
import { AddressSet, dottedQuadValue, formatAddress, parseAddress } from '../lib/address';
import { describeAddresses } from '../lib/check/addresses';
import { Box, Region, carve } from '../lib/check/space';
import { IntervalSet } from '../lib/intervals';
import { SERVICE_NAMES } from '../lib/catalog';
import { isNumberToken, isStringToken } from '../lib/tokens';

const rules = (p: HostPolicy) => p.rules.map(String);

describe('Cidr', () => {
  it('canonicalises IPv6 spelling (RFC 5952)', () => {
    expect(Cidr.of('2001:0DB8:0000::/32').text).toBe('2001:db8::/32');
    expect(Cidr.host('2001:db8:0:0:0:0:0:1').text).toBe('2001:db8::1/128');
  });

  it('knows its bounds and containment', () => {
    const c = Cidr.ipv4('198.51.100.0/24');
    expect(formatAddress(4, c.first)).toBe('198.51.100.0');
    expect(formatAddress(4, c.last)).toBe('198.51.100.255');
    expect(c.contains(Cidr.ipv4('198.51.100.128/25'))).toBe(true);
    expect(c.contains(Cidr.ipv4('198.51.101.0/25'))).toBe(false);
    expect(Cidr.anyIpv6().contains(Cidr.ipv6('2001:db8::/32'))).toBe(true);
  });

  it('covers any set with the fewest CIDR blocks, in address order, and counts them (against a bit-by-bit cover)', () => {
    // The reference grows each block one bit at a time while it stays aligned and inside.
    const reference = (bits: number, intervals: readonly (readonly [bigint, bigint])[]): string[] => {
      const out: string[] = [];
      for (const [first, last] of intervals) {
        for (let lo = first; lo <= last; ) {
          let size = 0;
          while (size < bits && (lo >> BigInt(size + 1)) << BigInt(size + 1) === lo && lo + (1n << BigInt(size + 1)) - 1n <= last) size++;
          out.push(`${lo}/${bits - size}`);
          lo += 1n << BigInt(size);
        }
      }
      return out;
    };
    for (const family of [4, 6] as const) {
      const bits = family === 4 ? 32 : 128;
      const max = (1n << BigInt(bits)) - 1n;
      // Also values aligned to any power of two (every count of trailing zeros, across 32-bit words) and one below.
      const aligned = fc.tuple(fc.bigInt({ min: 0n, max }), fc.integer({ min: 0, max: bits }), fc.boolean()).map(([v, k, below]) => {
        const a = (v >> BigInt(k)) << BigInt(k);
        return below && a > 0n ? a - 1n : a;
      });
      const point = fc.oneof(fc.bigInt({ min: 0n, max }), fc.bigInt({ min: 0n, max: 4096n }), fc.bigInt({ min: max - 4096n, max }), aligned);
      fc.assert(
        fc.property(fc.array(fc.tuple(point, point), { maxLength: 6 }), (pairs) => {
          const set = AddressSet.fromIntervals(family, pairs.map(([a, b]) => (a <= b ? [a, b] : [b, a])));
          const cover = reference(bits, set.intervals);
          expect(set.toCidrs().map((c) => `${c.network}/${c.prefix}`)).toEqual(cover);
          expect(set.cidrCount).toBe(cover.length);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('formats IPv4 addresses as ipaddr.js does, from 0.0.0.0 to 255.255.255.255', () => {
    const ipaddrText = (n: number): string => ipaddr.fromByteArray([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]).toString();
    for (const n of [0, 1, 255, 256, 0x7fffffff, 0x80000000, 0xc0000201, 0xffffffff]) expect(formatAddress(4, BigInt(n))).toBe(ipaddrText(n));
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => formatAddress(4, BigInt(n)) === ipaddrText(n)), { numRuns: 2000 });
  });

  it('formats IPv6 addresses as ipaddr.js does (RFC 5952: the first longest run of two or more zero groups as ::)', () => {
    const ipaddrText = (v: bigint): string => {
      const bytes: number[] = [];
      for (let i = 15; i >= 0; i--) bytes.push(Number((v >> BigInt(8 * i)) & 0xffn));
      return (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String();
    };
    const of = (groups: number[]): bigint => groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
    for (const g of [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0], [0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], [0x2001, 0xdb8, 1, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201], [0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff]]) {
      expect(formatAddress(6, of(g))).toBe(ipaddrText(of(g)));
    }
    // Groups drawn mostly from zero, so runs of every length and position (and ties) occur.
    const group = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 2 });
    fc.assert(fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (g) => formatAddress(6, of(g)) === ipaddrText(of(g))), { numRuns: 20000 });
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => formatAddress(6, v) === ipaddrText(v) && parseAddress(formatAddress(6, v)).value === v), { numRuns: 2000 });
  });

  it('reads a dotted quad exactly when ipaddr.js does (strict four-part decimal), to the same value', () => {
    const reference = (t: string): number => (ipaddr.IPv4.isValidFourPartDecimal(t) ? ipaddr.IPv4.parse(t).toByteArray().reduce((v, b) => v * 256 + b, 0) : -1);
    const spelled = [
      '0.0.0.0', '255.255.255.255', '192.0.2.10', '01.2.3.4', '1.2.3.04', '00.0.0.0', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.',
      '256.0.0.0', '1.2.3.256', '1000.1.1.1', '1.2.3.4 ', ' 1.2.3.4', '0x1.2.3.4', '1.2.3.4/8', '', '1', '4294967295', '1.2.3.-4', '1e2.0.0.0',
      '::1', '::ffff:1.2.3.4', '1.2.3.4%eth0', '\u0661.2.3.4',
    ];
    for (const t of spelled) expect([t, dottedQuadValue(t)]).toEqual([t, reference(t)]);
    // Text from the characters a dotted quad is made of, and near-misses.
    const char = fc.constantFrom('0', '1', '2', '5', '9', '.', '.', '.', 'x', ':', ' ', '-', '+', 'e');
    fc.assert(fc.property(fc.array(char, { maxLength: 18 }).map((cs) => cs.join('')), (t) => dottedQuadValue(t) === reference(t)), { numRuns: 20000 });
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.integer({ min: 0, max: 99 }).map((n) => `0${n}`));
    fc.assert(fc.property(fc.array(octet, { minLength: 3, maxLength: 5 }).map((os) => os.join('.')), (t) => dottedQuadValue(t) === reference(t)), { numRuns: 20000 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => parseAddress(formatAddress(4, BigInt(n))).value === BigInt(n)), { numRuns: 2000 });
  });

  it('is a frozen value object', () => {
    const c = Cidr.ipv4('10.0.0.0/8');
    expect(Object.isFrozen(c)).toBe(true);
  });
});

describe('IntervalSet', () => {
  // Sets of 0..39 against a plain array of booleans.
  const U = 40;
  const arbSet = fc.array(fc.tuple(fc.integer({ min: 0, max: U - 1 }), fc.integer({ min: 0, max: U - 1 })), { maxLength: 5 }).map((pairs) => IntervalSet.from(pairs.map(([a, b]) => (a <= b ? [a, b] : [b, a]))));
  const bits = (s: IntervalSet): boolean[] => Array.from({ length: U }, (_, v) => s.has(v));
  const fromBits = (b: boolean[]): IntervalSet => IntervalSet.points(b.flatMap((x, v) => (x ? [v] : [])));
  const same = (s: IntervalSet, b: boolean[]): boolean => s.key === fromBits(b).key;

  it('union, intersection, difference, containment, overlap and equality are those of the sets they hold', () => {
    fc.assert(
      fc.property(arbSet, arbSet, (x, y) => {
        const a = bits(x);
        const b = bits(y);
        expect(same(x.union(y), a.map((v, i) => v || b[i]))).toBe(true);
        expect(same(x.intersect(y), a.map((v, i) => v && b[i]))).toBe(true);
        expect(same(x.subtract(y), a.map((v, i) => v && !b[i]))).toBe(true);
        expect(x.contains(y)).toBe(b.every((v, i) => !v || a[i]));
        expect(x.intersects(y)).toBe(a.some((v, i) => v && b[i]));
        expect(x.equals(y)).toBe(a.every((v, i) => v === b[i]));
        expect(x.equals(fromBits(a))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("a box minus a box is the difference of the points they hold, in disjoint boxes", () => {
    const arbBox = fc.tuple(arbSet, arbSet).map(([p, q]) => new Box([p, q]));
    const points = (bs: readonly Box[]): string[] => bs.flatMap((b) => bits(b.sets[0]).flatMap((x, i) => (x ? bits(b.sets[1]).flatMap((y, j) => (y ? [`${i},${j}`] : [])) : []))).sort();
    fc.assert(
      fc.property(arbBox, arbBox, (x, y) => {
        const rest = x.subtract(y);
        const inY = new Set(points([y]));
        expect(points(rest)).toEqual(points([x]).filter((p) => !inY.has(p)));
        expect(new Set(points(rest)).size).toBe(points(rest).length);
      }),
      { numRuns: 400 },
    );
  });

  it('regions hold the points of their boxes once each: made, carved, intersected and subtracted as the point sets are', () => {
    const arbBox = fc.tuple(arbSet, arbSet).map(([p, q]) => new Box([p, q]));
    const pointsOf = (b: Box): string[] => bits(b.sets[0]).flatMap((x, i) => (x ? bits(b.sets[1]).flatMap((y, j) => (y ? [`${i},${j}`] : [])) : []));
    const points = (bs: readonly Box[]): string[] => bs.flatMap(pointsOf).sort();
    const union = (bs: readonly Box[]): string[] => [...new Set(points(bs))].sort();
    fc.assert(
      fc.property(fc.array(arbBox, { maxLength: 5 }), fc.array(arbBox, { maxLength: 4 }), fc.oneof(fc.constant(undefined), arbBox), (xs, ys, z) => {
        const a = Region.of(xs);
        const b = Region.of(ys);
        // Disjoint pieces (each point once) holding exactly the union.
        expect(points(a.boxes)).toEqual(union(xs));
        const inB = new Set(union(ys));
        expect(points(a.subtract(b).boxes)).toEqual(union(xs).filter((p) => !inB.has(p)));
        expect(points(a.intersect(b).boxes)).toEqual(union(xs).filter((p) => inB.has(p)));
        if (z !== undefined) {
          const inZ = new Set(pointsOf(z));
          expect(points(a.intersectBox(z).boxes)).toEqual(union(xs).filter((p) => inZ.has(p)));
        }
        // carve: each point in the piece of the first box that holds it.
        const first = new Map<string, number>();
        xs.forEach((x, i) => pointsOf(x).forEach((p) => first.has(p) || first.set(p, i)));
        const carved: [string, number][] = [];
        carve(xs, (piece, from) => pointsOf(piece).forEach((p) => carved.push([p, from])));
        expect(carved.sort()).toEqual([...first].sort());
      }),
      { numRuns: 1000 },
    );
  });
});

describe('describeAddresses (the checker\'s address lists)', () => {
  const v4 = (...cidrs: string[]) => IntervalSet.from(AddressSet.of(4, cidrs.map((c) => Cidr.ipv4(c))).intervals);
  it('writes out six blocks and counts the rest, from the shorter of the set and its complement', () => {
    const eight = ['192.0.2.1/32', '192.0.2.3/32', '192.0.2.5/32', '192.0.2.7/32', '192.0.2.9/32', '192.0.2.11/32', '192.0.2.13/32', '192.0.2.15/32'];
    expect(describeAddresses(4, v4(...eight))).toBe('192.0.2.1/32, 192.0.2.3/32, 192.0.2.5/32, 192.0.2.7/32, 192.0.2.9/32, 192.0.2.11/32 … (+2 more)');
    expect(describeAddresses(4, v4(...eight.slice(0, 6)))).toBe('192.0.2.1/32, 192.0.2.3/32, 192.0.2.5/32, 192.0.2.7/32, 192.0.2.9/32, 192.0.2.11/32');
    // Everything but one address: 32 blocks directly, one as the complement.
    expect(describeAddresses(4, IntervalSet.of(0n, 0xffffffffn).subtract(v4('198.51.100.7/32')))).toBe('any IPv4 except 198.51.100.7/32');
    expect(describeAddresses(4, v4('0.0.0.0/0'))).toBe('any IPv4');
    expect(describeAddresses(4, v4('10.0.0.0/8'), v4('10.0.0.0/8'))).toBe('any IPv4 address');
    expect(describeAddresses(4, v4('10.0.0.0/9'), v4('10.0.0.0/8'))).toBe('10.0.0.0/9');
  });
});

describe('AddressSet', () => {
  const set = (...cidrs: string[]) => AddressSet.of(4, cidrs.map((c) => Cidr.ipv4(c)));

  it('merges adjacent and overlapping blocks into the minimal cover', () => {
    expect(set('10.0.0.0/25', '10.0.0.128/25', '10.0.1.0/24').toCidrs().map(String)).toEqual(['10.0.0.0/23']);
    expect(set('10.0.0.0/8', '10.1.0.0/16').toCidrs().map(String)).toEqual(['10.0.0.0/8']);
  });

  it('writes an unaligned range as the fewest blocks', () => {
    expect(set('10.0.0.1/32', '10.0.0.2/31').toCidrs().map(String)).toEqual(['10.0.0.1/32', '10.0.0.2/31']);
  });

  it('subtracts and intersects', () => {
    const diff = set('10.0.0.0/24').subtract(set('10.0.0.64/26'));
    expect(diff.toCidrs().map(String)).toEqual(['10.0.0.0/26', '10.0.0.128/25']);
    expect(set('10.0.0.0/24').intersect(set('10.0.0.128/25', '10.0.1.0/24')).toCidrs().map(String)).toEqual(['10.0.0.128/25']);
    expect(set('10.0.0.0/24').subtract(set('0.0.0.0/0')).isEmpty).toBe(true);
  });

  it('handles the top of the IPv6 space', () => {
    const all = AddressSet.of(6, [Cidr.anyIpv6()]);
    expect(all.toCidrs().map(String)).toEqual(['::/0']);
    const top = AddressSet.of(6, [Cidr.ipv6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128')]);
    expect(all.subtract(top).toCidrs().length).toBe(128);
  });
});

describe('Port', () => {
  it('prints readably', () => {
    expect(String(Port.tcp(25))).toBe('tcp/25');
    expect(String(Port.udpRange(33434, 33534))).toBe('udp/33434-33534');
    expect(String(Port.allTcp())).toBe('tcp/all');
    expect(String(Port.icmpTypeAndCode(3, 4))).toBe('icmp type 3 code 4');
    expect(String(Port.allIcmpv6())).toBe('icmpv6/all');
    expect(String(Port.allTraffic())).toBe('all');
  });

  it('maps ICMP type/code to one axis and back', () => {
    expect(Port.icmpType(3).span).toEqual([768, 1023]);
    expect(Port.fromSpan('icmp', 768, 1024).map(String)).toEqual(['icmp type 3', 'icmp type 4 code 0']);
    expect(Port.fromSpan('icmpv6', 0, 65535).map(String)).toEqual(['icmpv6/all']);
  });

  it('refuses IPv4 ICMP type 255, which iptables reads as every type; ICMPv6 type 255 is one type', () => {
    expect(() => Port.icmpType(255)).toThrow(/TW113 ICMP_OUT_OF_RANGE.*every ICMP type.*Port\.allIcmp\(\)/);
    expect(() => Port.icmpTypeAndCode(255, 0)).toThrow(/TW113/);
    expect(String(Port.icmpv6Type(255))).toBe('icmpv6 type 255');
  });
});

describe('tokens', () => {
  it('recognises cdktf string and number tokens without importing cdktf', () => {
    expect(isStringToken('${TfToken[TOKEN.1]}')).toBe(true);
    expect(isStringToken('#{TfToken[TOKEN.2]}')).toBe(true);
    expect(isStringToken('10.0.0.0/16')).toBe(false);
    expect(isNumberToken(-1.8881545897087626e289)).toBe(true);
    expect(isNumberToken(22)).toBe(false);
  });
});

describe('catalog', () => {
  it('has the services the roles need, each with both meanings', () => {
    for (const name of ['ssh', 'smtp', 'submission', 'smtps', 'imap', 'imaps', 'pop3', 'pop3s', 'http', 'https', 'dns', 'ntp', 'ldap', 'ldaps', 'rndc']) {
      expect(SERVICE_NAMES).toContain(name);
    }
    for (const row of Object.values(SERVICES)) {
      expect(row.server.length).toBeGreaterThan(0);
      expect(row.client.length).toBeGreaterThan(0);
      expect(row.ports.length).toBeGreaterThan(0);
    }
    expect(SERVICES.dns.ports.map(String)).toEqual(['udp/53', 'tcp/53']);
    expect(SERVICES.rndc.ports.map(String)).toEqual(['tcp/953']);
  });
});

describe('roles', () => {
  it('webServer serves 80/443 to anywhere and sends nothing of its own', () => {
    const r = webServer();
    expect(r.flows.filter((f) => f.direction === 'egress')).toEqual([]);
    expect(r.flows.map(String)).toEqual(['ingress tcp/80 from any IPv4, any IPv6', 'ingress tcp/443 from any IPv4, any IPv6']);
  });

  it('a peer of both families is one Peer; an ICMP flow to it applies to its own family only', () => {
    expect(Peer.anywhere().hostCidrs.map(String)).toEqual(['0.0.0.0/0', '::/0']);
    expect(Peer.awsDnsResolver().families).toEqual([4, 6]);
    const p = HostPolicy.compose('h', [customRole('ping', [Flow.ingress(Port.icmpType(8), Peer.anywhere(), 'echo'), Flow.ingress(Port.icmpv6Type(128), Peer.anywhere(), 'echo v6')])]);
    expect(rules(p)).toEqual(['ingress icmp type 8 from 0.0.0.0/0', 'ingress icmpv6 type 128 from ::/0']);
  });

  it('webServer upstreams are declared egress only', () => {
    const r = webServer({ http: false, sources: [Peer.ipv4('203.0.113.0/24')], upstreams: [{ service: 'http-alt', peers: [Peer.ipv4('10.0.2.0/24')], reason: 'app tier' }] });
    expect(r.flows.map(String)).toEqual(['ingress tcp/443 from 203.0.113.0/24', 'egress tcp/8080 to 10.0.2.0/24']);
  });

  it('mailServer sends SMTP and nothing else', () => {
    const r = mailServer({ clientServices: ['imaps', 'submission'] });
    const out = r.flows.filter((f) => f.direction === 'egress').map(String);
    expect(out).toEqual(['egress tcp/25 to any IPv4, any IPv6']);
    const ins = r.flows.filter((f) => f.direction === 'ingress').map((f) => f.port.toString());
    expect(new Set(ins)).toEqual(new Set(['tcp/25', 'tcp/587', 'tcp/993']));
  });

  it('mailServer offers every mail client service, and refuses another naming them all', () => {
    const r = mailServer({ clientServices: [...MAIL_CLIENT_SERVICES] });
    expect(r.flows.filter((f) => f.direction === 'ingress').map((f) => f.port.toString())).toEqual(['tcp/25', 'tcp/993', 'tcp/995', 'tcp/465', 'tcp/587']);
    expect(() => mailServer({ clientServices: ['imap' as MailClientService] })).toThrow(
      'TW161 OPTION_INVALID: "imap" is not a mail client service. Fix: use "submission", "smtps", "imaps" or "pop3s".',
    );
  });

  it('authoritative DNS sends only to declared secondaries', () => {
    const r = dnsServer({ mode: 'authoritative', secondaries: [Peer.ipv4('203.0.113.53/32')] });
    expect(r.flows.filter((f) => f.direction === 'egress').map(String)).toEqual(['egress udp/53 to 203.0.113.53/32', 'egress tcp/53 to 203.0.113.53/32']);
    const bare = dnsServer({ mode: 'authoritative' });
    expect(bare.flows.every((f) => f.direction === 'ingress')).toBe(true);
  });

  it('recursive DNS answers declared clients and queries anywhere', () => {
    const r = dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.0/16')] });
    expect(r.flows.map(String)).toEqual([
      'ingress udp/53 from 10.0.0.0/16',
      'ingress tcp/53 from 10.0.0.0/16',
      'egress udp/53 to any IPv4, any IPv6',
      'egress tcp/53 to any IPv4, any IPv6',
    ]);
  });

  it('dnsClient defaults to the Amazon-provided resolver; ntpClient to Amazon Time Sync', () => {
    expect(dnsClient().flows.map((f) => f.peer.label)).toEqual(['169.254.169.253/32, fd00:ec2::253/128', '169.254.169.253/32, fd00:ec2::253/128']);
    expect(ntpClient().flows.map(String)).toEqual(['egress udp/123 to 169.254.169.123/32, fd00:ec2::123/128']);
  });

  it('vpcResolver is base+2', () => {
    expect(Peer.vpcResolver('10.20.0.0/16').label).toBe('10.20.0.2/32');
  });

  it('sshAdmin keeps the admin networks it is given', () => {
    expect(sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] }).flows.map(String)).toEqual(['ingress tcp/22 from 192.0.2.0/24']);
  });
});

describe('normalisation', () => {
  it('merges overlapping and adjacent port ranges', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.egress(Port.tcpRange(1000, 1999), Peer.ipv4('10.0.0.0/8'), 'a'),
        Flow.egress(Port.tcpRange(2000, 2999), Peer.ipv4('10.0.0.0/8'), 'b'),
        Flow.egress(Port.tcpRange(2500, 3500), Peer.ipv4('10.0.0.0/8'), 'c'),
      ]),
    ]);
    expect(rules(p)).toEqual(['egress tcp/1000-3500 to 10.0.0.0/8']);
    expect(p.rules[0].because.map((b) => b.reason)).toEqual(['a', 'b', 'c']);
  });

  it('merges adjacent CIDRs and drops covered ones', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.ingress(Port.tcp(22), Peer.ipv4('192.0.2.0/25'), 'a'),
        Flow.ingress(Port.tcp(22), Peer.ipv4('192.0.2.128/25'), 'b'),
        Flow.ingress(Port.tcp(22), Peer.ipv4('192.0.2.7/32'), 'c'),
      ]),
    ]);
    expect(rules(p)).toEqual(['ingress tcp/22 from 192.0.2.0/24']);
  });

  it('lets an all-protocols rule absorb narrower ones without fragmenting wider ones', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.egress(Port.allTraffic(), Peer.ipv4('10.2.0.0/16'), 'all to 10.2'),
        Flow.egress(Port.tcp(443), Peer.ipv4('10.2.3.0/24'), 'covered'),
        Flow.egress(Port.tcp(25), Peer.anyIpv4(), 'mail'),
      ]),
    ]);
    expect(rules(p)).toEqual(['egress all to 10.2.0.0/16', 'egress tcp/25 to 0.0.0.0/0']);
  });

  it('names the all-protocols flow when a block reaches into its addresses', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [Flow.egress(Port.allTraffic(), Peer.ipv4('10.2.0.0/16'), 'all to 10.2'), Flow.egress(Port.allTcp(), Peer.ipv4('10.3.0.0/16'), 'tcp to 10.3')]),
    ]);
    expect(rules(p)).toEqual(['egress all to 10.2.0.0/16', 'egress tcp/all to 10.2.0.0/15']);
    expect(p.rules[1].because.map((b) => b.reason)).toEqual(['all to 10.2', 'tcp to 10.3']);
  });

  it('keeps a narrow block with its own port beside a wide all-ports block (addresses first)', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.ingress(Port.allIcmp(), Peer.ipv4('10.6.0.0/16'), 'all ICMP from 10.6'),
        Flow.ingress(Port.icmpTypeAndCode(3, 4), Peer.ipv4('10.5.0.0/16'), 'fragmentation needed from 10.5'),
        Flow.egress(Port.allTcp(), Peer.ipv4('10.6.0.0/16'), 'all TCP to 10.6'),
        Flow.egress(Port.tcp(25), Peer.ipv4('10.5.0.0/16'), 'SMTP to 10.5'),
      ]),
    ]);
    expect(rules(p)).toEqual(['ingress icmp/all from 10.6.0.0/16', 'ingress icmp type 3 code 4 from 10.5.0.0/16', 'egress tcp/all to 10.6.0.0/16', 'egress tcp/25 to 10.5.0.0/16']);
  });

  it('splits the port axis where the address sets differ', () => {
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.egress(Port.tcpRange(80, 90), Peer.ipv4('10.0.0.0/8'), 'a'),
        Flow.egress(Port.tcpRange(85, 443), Peer.ipv4('10.1.0.0/16'), 'b'),
      ]),
    ]);
    expect(rules(p)).toEqual(['egress tcp/80-90 to 10.0.0.0/8', 'egress tcp/91-443 to 10.1.0.0/16']);
  });

  it('keeps security-group and prefix-list peers as identities, merging their ports', () => {
    const app = Peer.securityGroup('sg-0a', { hostCidrs: ['10.0.2.0/24'], label: 'app' });
    const pl = Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/24'], label: 'partners' });
    const p = HostPolicy.compose('h', [
      customRole('r', [
        Flow.egress(Port.tcp(8080), app, 'a'),
        Flow.egress(Port.tcp(8081), app, 'b'),
        Flow.egress(Port.tcp(8080), Peer.ipv4('10.0.2.0/24'), 'same addresses, different identity'),
        Flow.egress(Port.tcp(443), pl, 'c'),
      ]),
    ]);
    expect(rules(p)).toEqual(['egress tcp/8080 to 10.0.2.0/24', 'egress tcp/443 to partners', 'egress tcp/8080-8081 to app']);
    expect(p.rules[2].hostCidrs.map(String)).toEqual(['10.0.2.0/24']);
  });

  it('sorts ingress before egress, IPv4 before IPv6, then protocol and port', () => {
    const p = HostPolicy.compose('h', [mailServer(), webServer()]);
    expect(rules(p)).toEqual([
      'ingress tcp/25 from 0.0.0.0/0',
      'ingress tcp/80 from 0.0.0.0/0',
      'ingress tcp/443 from 0.0.0.0/0',
      'ingress tcp/25 from ::/0',
      'ingress tcp/80 from ::/0',
      'ingress tcp/443 from ::/0',
      'egress tcp/25 to 0.0.0.0/0',
      'egress tcp/25 to ::/0',
    ]);
  });

  it('records every role and reason behind a merged rule', () => {
    const p = HostPolicy.compose('h', [dnsClient({ resolvers: [Peer.ipv4('198.51.100.53/32')] }), customRole('dnsbl', [Flow.egress(Port.udp(53), Peer.ipv4('198.51.100.53/32'), 'DNSBL lookups')])]);
    const udp = p.rules.find((r) => r.port.protocol === 'udp');
    expect(udp?.because).toEqual([
      { role: 'dnsClient', service: 'dns', reason: 'name lookups (log resolution, DNSBL) via declared resolvers' },
      { role: 'dnsbl', reason: 'DNSBL lookups' },
    ]);
  });

  it('defaults IMDS to root only, audit off, no subnets and lockdown on a failed load', () => {
    expect(HostPolicy.compose('h', [ntpClient()]).options).toEqual({ instanceMetadata: 'root-only', audit: false, subnets: [], onLoadFailure: 'lockdown' });
  });

  it('keeps the admin roles\' ingress apart (the fallback\'s admin rules), normalised on their own', () => {
    const p = HostPolicy.compose('h', [sshAdmin({ from: [Peer.ipv4('192.0.2.0/25'), Peer.ipv4('192.0.2.128/25')] }), webServer()]);
    expect(p.adminRules.map((r) => r.toString())).toEqual(['ingress tcp/22 from 192.0.2.0/24']);
    expect(sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] }).admin).toBe(true);
    expect(webServer().admin).toBe(false);
    expect(() => Role.of('x', 'x', webServer().flows, { admin: 'yes' as never })).toThrow(/TW161 OPTION_INVALID: the role "x"'s admin "yes" is not a boolean/);
  });
});
