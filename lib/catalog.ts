/**
 * The service catalog: one row per network service. Adding a service is adding a row; roles are
 * written over these rows, never over raw port numbers.
 */
import { TwinwallError, show } from './errors';
import { Flow } from './flow';
import { PeerLike, toPeer } from './peer';
import { Port } from './port';

export interface ServiceRow {
  /** What the service is. */
  readonly description: string;
  /** Protocol/ports, as the server listens on them. */
  readonly ports: readonly Port[];
  /** What it means for a host to accept it (ingress). */
  readonly server: string;
  /** What it means for a host to open it (egress). */
  readonly client: string;
}

/** The catalog. Keys are the service names used in roles, descriptions and reports. */
export const SERVICES = {
  ssh: { description: 'Secure Shell', ports: [Port.tcp(22)], server: 'remote administration of this host', client: 'logging in to or copying files to other hosts' },
  smtp: { description: 'SMTP mail transfer', ports: [Port.tcp(25)], server: 'receiving mail from other mail servers', client: 'delivering mail to other mail servers' },
  submission: { description: 'SMTP message submission (STARTTLS)', ports: [Port.tcp(587)], server: 'accepting mail from authenticated users', client: 'handing mail to a relay as a user' },
  smtps: { description: 'SMTP submission over implicit TLS', ports: [Port.tcp(465)], server: 'accepting mail from authenticated users over TLS', client: 'handing mail to a relay over TLS' },
  imap: { description: 'IMAP mailbox access', ports: [Port.tcp(143)], server: 'serving mailboxes', client: 'reading a remote mailbox' },
  imaps: { description: 'IMAP over TLS', ports: [Port.tcp(993)], server: 'serving mailboxes over TLS', client: 'reading a remote mailbox over TLS' },
  pop3: { description: 'POP3 mailbox access', ports: [Port.tcp(110)], server: 'serving mailboxes', client: 'fetching remote mail' },
  pop3s: { description: 'POP3 over TLS', ports: [Port.tcp(995)], server: 'serving mailboxes over TLS', client: 'fetching remote mail over TLS' },
  http: { description: 'HTTP', ports: [Port.tcp(80)], server: 'serving web pages', client: 'fetching web pages (a favourite of droppers)' },
  https: { description: 'HTTP over TLS', ports: [Port.tcp(443)], server: 'serving web pages over TLS', client: 'calling web APIs over TLS' },
  dns: { description: 'Domain Name System', ports: [Port.udp(53), Port.tcp(53)], server: 'answering DNS queries', client: 'resolving names (log lookups, DNSBL queries)' },
  ntp: { description: 'Network Time Protocol', ports: [Port.udp(123)], server: 'serving time', client: 'keeping the clock right' },
  ldap: { description: 'LDAP directory', ports: [Port.tcp(389)], server: 'serving a directory', client: 'looking up users and groups' },
  ldaps: { description: 'LDAP over TLS', ports: [Port.tcp(636)], server: 'serving a directory over TLS', client: 'looking up users and groups over TLS' },
  rndc: { description: 'BIND remote name daemon control', ports: [Port.tcp(953)], server: 'being controlled by rndc', client: 'controlling a remote BIND' },
  'http-alt': { description: 'HTTP on 8080 (application tiers)', ports: [Port.tcp(8080)], server: 'serving an application tier', client: 'calling an application tier' },
} as const satisfies Record<string, ServiceRow>;

export type ServiceName = keyof typeof SERVICES;

export const SERVICE_NAMES = Object.keys(SERVICES).sort() as ServiceName[];

/** Look a service up by name; UNKNOWN_SERVICE lists the known names. */
export function service(name: string): ServiceRow & { readonly name: ServiceName } {
  if (!Object.prototype.hasOwnProperty.call(SERVICES, name)) {
    throw new TwinwallError('UNKNOWN_SERVICE', {
      value: name,
      problem: `${show(name)} is not in the service catalog.`,
      fix: `use one of ${SERVICE_NAMES.join(', ')}, or add a row to SERVICES in lib/catalog.ts, or write the flow with Flow.ingress/egress in a custom role.`,
    });
  }
  return { name: name as ServiceName, ...SERVICES[name as ServiceName] };
}

/** Ingress flows: `peers` may open connections to this host's `name` service. */
export function serve(name: ServiceName, peers: readonly PeerLike[], reason?: string): Flow[] {
  const row = service(name);
  const resolved = peers.map(toPeer);
  return row.ports.flatMap((port) => resolved.map((peer) => Flow.ingress(port, peer, reason ?? row.server, { service: name })));
}

/** Egress flows: this host may open connections to `name` on `peers`. */
export function use(name: ServiceName, peers: readonly PeerLike[], reason?: string): Flow[] {
  const row = service(name);
  const resolved = peers.map(toPeer);
  return row.ports.flatMap((port) => resolved.map((peer) => Flow.egress(port, peer, reason ?? row.client, { service: name })));
}
