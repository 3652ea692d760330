/**
 * The benchmark fleet: 1,000 hosts, 4 roles each, every host a little different (its admin
 * network, its monitoring network, its kind of server), all addresses from documentation and
 * private ranges. Used by the synth benchmark (twinwall vs the hand-written baseline) and the
 * rule-count benchmark.
 */
import { Flow, HostPolicy, Peer, Port, Role, customRole, dnsClient, dnsServer, mailServer, sshAdmin, webServer } from '../lib';

export const FLEET_SIZE = 1000;
export const VPC_ID = 'vpc-0123456789abcdef0';
export const SUBNET_ID = 'subnet-0123456789abcdef0';
export const AMI = 'ami-0123456789abcdef0';
export const INSTANCE_TYPE = 't3.micro';

export function hostName(i: number): string {
  return `host${String(i).padStart(4, '0')}`;
}

/** The four roles of host i. */
export function fleetRoles(i: number): Role[] {
  const server =
    i % 3 === 0
      ? webServer()
      : i % 3 === 1
        ? mailServer()
        : dnsServer({ mode: 'recursive', clients: [Peer.ipv4(`10.${i % 200}.0.0/16`)] });
  return [
    server,
    sshAdmin({ from: [Peer.ipv4(`198.51.100.${(i % 16) * 16}/28`), Peer.ipv6(`2001:db8:${(i % 64).toString(16)}::/48`)] }),
    dnsClient({ resolvers: [Peer.ipv4('10.0.0.2/32'), Peer.ipv4(`10.0.${(i % 8) * 2}.53/32`)] }),
    customRole('metrics', [
      Flow.ingress(Port.tcp(9100), Peer.ipv4(`10.${(i * 7) % 250}.9.0/24`), 'Prometheus scrapes node_exporter'),
      Flow.ingress(Port.icmpType(8), Peer.ipv4(`10.${(i * 7) % 250}.9.0/24`), 'ping from monitoring'),
      Flow.egress(Port.tcp(443), Peer.ipv4(`203.0.113.${(i % 32) * 8}/29`), 'push metrics'),
    ]),
  ];
}

export function fleetPolicy(i: number): HostPolicy {
  return HostPolicy.compose(hostName(i), fleetRoles(i));
}
