/**
 * One small host policy per role and option, shared by the golden renderer tests and the synth
 * tests. Addresses come from the documentation ranges (RFC 5737, RFC 3849).
 */
import {
  Flow,
  HostPolicy,
  HostPolicyOptions,
  Peer,
  Port,
  customRole,
  dnsClient,
  dnsServer,
  mailServer,
  ntpClient,
  sshAdmin,
  webServer,
} from '../../lib';

export const ADMIN_LAN = '192.0.2.0/24';
export const ADMIN_LAN6 = '2001:db8:a::/48';
export const RESOLVERS = ['198.51.100.53/32', '198.51.100.54/32'];
export const APP_TIER = '10.0.2.0/24';

/** The article's sample server: Apache, Postfix, SSH from the admin LAN, DNS to the resolvers. */
export function sampleServer(options: HostPolicyOptions = {}): HostPolicy {
  return HostPolicy.compose(
    'sample',
    [
      webServer(),
      mailServer(),
      sshAdmin({ from: [Peer.ipv4(ADMIN_LAN), Peer.ipv6(ADMIN_LAN6)] }),
      dnsClient({ resolvers: RESOLVERS.map((r) => Peer.ipv4(r)) }),
    ],
    options,
  );
}

/** A named policy per role and per notable option. */
export const ROLE_FIXTURES: Record<string, () => HostPolicy> = {
  webServer: () => HostPolicy.compose('web', [webServer()]),
  webServerUpstream: () =>
    HostPolicy.compose('web', [
      webServer({ http: false, upstreams: [{ service: 'http-alt', peers: [Peer.ipv4(APP_TIER)], reason: 'proxy to the app tier' }] }),
    ]),
  mailServer: () => HostPolicy.compose('mail', [mailServer()]),
  mailServerClients: () =>
    HostPolicy.compose('mail', [mailServer({ clientServices: ['submission', 'imaps'], clientSources: [Peer.ipv4('203.0.113.0/24')] })]),
  dnsAuthoritative: () =>
    HostPolicy.compose('ns1', [dnsServer({ mode: 'authoritative', secondaries: [Peer.ipv4('203.0.113.53/32'), Peer.ipv6('2001:db8:53::53/128')] })]),
  dnsRecursive: () => HostPolicy.compose('resolver', [dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.0/16')] })]),
  sshAdmin: () => HostPolicy.compose('bastion', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })]),
  dnsClient: () => HostPolicy.compose('client', [dnsClient()]),
  ntpClient: () => HostPolicy.compose('clock', [ntpClient()]),
  customRole: () =>
    HostPolicy.compose('custom', [
      customRole('monitoring', [
        Flow.ingress(Port.tcp(9100), Peer.ipv4('10.0.9.0/24'), 'Prometheus scrapes node_exporter'),
        Flow.ingress(Port.icmpType(8), Peer.ipv4('10.0.9.0/24'), 'ping from monitoring'),
        Flow.ingress(Port.icmpv6Type(128), Peer.ipv6('2001:db8:9::/48'), 'ping6 from monitoring'),
        Flow.egress(Port.udpRange(33434, 33534), Peer.ipv4('10.0.9.0/24'), 'traceroute to monitoring'),
      ]),
    ]),
  metadataAllUsers: () => HostPolicy.compose('imds', [ntpClient()], { instanceMetadata: 'all-users' }),
  metadataNone: () => HostPolicy.compose('imds', [ntpClient()], { instanceMetadata: 'none' }),
  // 20 admin hosts: above the ipset threshold (16), so the IPv4 SSH rule becomes an ipset.
  manyAdmins: () =>
    HostPolicy.compose('jump', [sshAdmin({ from: [...Array.from({ length: 20 }, (_, i) => Peer.ipv4(`192.0.2.${2 * i + 1}/32`)), Peer.ipv6(ADMIN_LAN6)] })]),
  sample: () => sampleServer(),
  sampleAudit: () => sampleServer({ audit: true }),
};

/** A policy that exercises the corners: all protocols, ranges, ICMP per family, SG and prefix-list peers, awkward text. */
export function edgePolicy(options: { audit?: boolean } = {}): HostPolicy {
  const app = Peer.securityGroup('sg-0123456789abcdef0', { hostCidrs: ['10.0.2.0/24', '2001:db8:2::/64'], label: 'app tier' });
  const mirrors = Peer.prefixList('pl-0123456789abcdef0', { cidrs: ['198.51.100.0/25'], label: 'package mirrors' });
  return HostPolicy.compose(
    'edge',
    [
      customRole('edgeCases', [
        Flow.egress(Port.allTraffic(), Peer.ipv4('10.2.0.0/16'), 'backups: everything to the backup network'),
        Flow.egress(Port.tcpRange(8000, 8999), app, 'the app tier\'s "admin" ports \\ legacy, see ticket #42 … ünïcode'),
        Flow.ingress(Port.icmpType(8), app, 'ping from the app tier'),
        Flow.ingress(Port.icmpTypeAndCode(3, 4), Peer.ipv4('10.9.0.0/16'), 'fragmentation needed from the VPN'),
        Flow.ingress(Port.icmpv6Type(128), app, 'ping6 from the app tier'),
        Flow.egress(Port.allUdp(), Peer.ipv6('2001:db8:5::/48'), 'x'.repeat(400)),
        Flow.egress(Port.tcp(443), mirrors, 'package updates'),
        Flow.egress(Port.allTcp(), Peer.ipv4('10.4.0.0/16'), 'every TCP port to the lab'),
      ]),
    ],
    options,
  );
}
