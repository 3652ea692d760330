/**
 * Random valid host policies for property tests of the checker: random roles, CIDRs of both
 * families (including link-local service addresses and whole families), port ranges, ICMP types,
 * security-group references with host-side CIDRs, metadata options, and either host-wall backend.
 * Synthesized through the real FilteredHost, so `check` sees exactly what a user's cdktf.out
 * would hold.
 */
import * as fc from 'fast-check';
import { Testing } from 'cdktf';
import { FilteredHost } from '../../constructs';
import { Cidr, Flow, HostFirewall, MetadataAccess, Peer, Port, Role, TwinwallError, customRole, dnsClient, mailServer, ntpClient, sshAdmin, webServer } from '../../lib';

const v4 = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 32 })).map(([a, b, c, d, p]) => {
  const value = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  const net = p === 0 ? 0 : (value >>> (32 - p)) << (32 - p);
  return `${(net >>> 24) & 255}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${p}`;
});

const v6 = fc.tuple(fc.integer({ min: 0x2001, max: 0x2001 }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 16, max: 64 })).map(([a, b, c, p]) => {
  const full = (BigInt(a) << 112n) | (BigInt(b) << 96n) | (BigInt(c) << 80n);
  const net = (full >> BigInt(128 - p)) << BigInt(128 - p);
  const groups = Array.from({ length: 8 }, (_, i) => Number((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return Cidr.of(`${groups.join(':')}/${p}`).text;
});

const peer: fc.Arbitrary<readonly Peer[]> = fc.oneof(
  { weight: 5, arbitrary: v4.map((c) => [Peer.ipv4(c)]) },
  { weight: 3, arbitrary: v6.map((c) => [Peer.ipv6(c)]) },
  { weight: 1, arbitrary: fc.constant([Peer.anywhere()]) },
  { weight: 1, arbitrary: fc.constant([Peer.awsDnsResolver()]) },
  { weight: 1, arbitrary: fc.constant([Peer.awsTimeSync()]) },
  { weight: 2, arbitrary: fc.tuple(v4, v6).map(([a, b]) => [Peer.securityGroup('sg-0123456789abcdef0', { hostCidrs: [a, b], label: 'partner tier' })]) },
);

const port: fc.Arbitrary<Port[]> = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 40 })).map(([lo, n]) => [Port.tcpRange(lo, Math.min(65535, lo + n))]),
  fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 40 })).map(([lo, n]) => [Port.udpRange(lo, Math.min(65535, lo + n))]),
  // IPv4 type 255 is refused (TW113: iptables reads it as every type); ICMPv6 255 is one type.
  fc.integer({ min: 0, max: 255 }).map((t) => [Port.icmpType(t % 255), Port.icmpv6Type(t)]),
  fc.constant<Port[]>([Port.icmpTypeAndCode(8, 0), Port.icmpv6TypeAndCode(128, 0)]),
  fc.constant<Port[]>([Port.allIcmp(), Port.allIcmpv6()]),
);

const flows: fc.Arbitrary<Flow[]> = fc
  .array(fc.tuple(fc.constantFrom('ingress', 'egress'), port, peer), { minLength: 1, maxLength: 6 })
  .map((list) =>
    list.flatMap(([direction, ports, peers]) =>
      ports.flatMap((p) =>
        peers
          .filter((pe) => !(p.protocol === 'icmp' && pe.hostCidrs.every((c) => c.family === 6)) && !(p.protocol === 'icmpv6' && pe.hostCidrs.every((c) => c.family === 4)))
          .map((pe) => (direction === 'ingress' ? Flow.ingress(p, pe, 'random flow') : Flow.egress(p, pe, 'random flow'))),
      ),
    ),
  )
  .filter((f) => f.length > 0);

export interface RandomHost {
  readonly roles: Role[];
  readonly instanceMetadata: MetadataAccess;
  readonly hostFirewall: HostFirewall;
}

export const randomHost: fc.Arbitrary<RandomHost> = fc
  .record({
    custom: flows,
    web: fc.boolean(),
    mail: fc.boolean(),
    ssh: fc.option(v4, { nil: undefined }),
    dns: fc.option(fc.array(v4, { minLength: 1, maxLength: 2 }), { nil: undefined }),
    ntp: fc.boolean(),
    instanceMetadata: fc.constantFrom<MetadataAccess>('root-only', 'all-users', 'none'),
    hostFirewall: fc.constantFrom<HostFirewall>('iptables', 'nftables'),
  })
  .map((r) => ({
    roles: [
      customRole('random', r.custom),
      ...(r.web ? [webServer()] : []),
      ...(r.mail ? [mailServer()] : []),
      ...(r.ssh !== undefined ? [sshAdmin({ from: [Peer.ipv4(r.ssh)] })] : []),
      ...(r.dns !== undefined ? [dnsClient({ resolvers: r.dns.map((c) => Peer.ipv4(c)) })] : []),
      ...(r.ntp ? [ntpClient()] : []),
    ],
    instanceMetadata: r.instanceMetadata,
    hostFirewall: r.hostFirewall,
  }));

/**
 * Synthesize one random host with FilteredHost (and its instance) into Terraform JSON; undefined
 * when twinwall rejects the policy (a quota, an unsafe option) — a valid refusal, not a finding.
 */
export function synthRandomHost(h: RandomHost): unknown | undefined {
  try {
    const json = Testing.synthScope((scope) => {
      new FilteredHost(scope, 'random', {
        roles: h.roles,
        vpcId: 'vpc-0123456789abcdef0',
        instanceMetadata: h.instanceMetadata,
        hostFirewall: h.hostFirewall,
        instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' },
      });
    });
    return JSON.parse(json);
  } catch (e) {
    if (e instanceof TwinwallError) return undefined;
    throw e;
  }
}
