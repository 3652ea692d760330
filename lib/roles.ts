/**
 * Server roles: small functions over the service catalog. Each role lists what the host accepts
 * and — just as deliberately — what it may send. The reasoning follows Brian Hatch's "Egress
 * filtering for a healthier Internet": once a host is compromised it becomes the attacker, so it
 * may only send what its job needs.
 */
import { ServiceName, serve, use } from './catalog';
import { TwinwallError, show } from './errors';
import { Flow, Role, RoleOptions } from './flow';
import { Peer, PeerLike, toPeer } from './peer';
import { Port } from './port';
import type { Family } from './address';

function requirePeers(peers: readonly PeerLike[] | undefined, what: string, example: string): readonly Peer[] {
  if (!Array.isArray(peers) || peers.length === 0) {
    throw new TwinwallError('PEERS_EMPTY', {
      value: peers,
      problem: `${what} is empty, so the role could never be used.`,
      fix: `list at least one peer, e.g. ${example}.`,
    });
  }
  return peers.map(toPeer);
}

/**
 * "Too wide": a block shorter than these prefixes is (nearly) the whole Internet. Roles refuse it
 * where it would be a mistake (a recursive resolver's clients: v4/v6; SSH: v4/adminV6), and
 * lint reports it elsewhere.
 */
export const WIDE_PREFIX = { v4: 8, v6: 16, adminV6: 32 } as const;

/** Is a block of this family and prefix wider than WIDE_PREFIX (with `v6` for IPv6)? */
export function isWidePrefix(family: Family, prefix: number, v6: number = WIDE_PREFIX.v6): boolean {
  return prefix < (family === 4 ? WIDE_PREFIX.v4 : v6);
}

/** Peers whose host-side CIDRs include a block wider than WIDE_PREFIX (with `v6` for IPv6). */
function widePeers(peers: readonly Peer[], v6: number): Peer[] {
  return peers.filter((p) => p.hostCidrs.some((c) => isWidePrefix(c.family, c.prefix, v6)));
}

/**
 * How `twinwall learn` recognises a role in observed traffic, declared next to the role: the
 * catalog services whose flows are its evidence, served (ingress) and used (egress). learn
 * (lib/learn/propose.ts) finds those flows by the services' catalog ports and writes the role's
 * options from what it saw; a new role that learn should propose declares its signature too.
 */
export interface LearnSignature {
  readonly serves: readonly ServiceName[];
  readonly uses: readonly ServiceName[];
}

export interface Upstream {
  /** A catalog service ("http-alt"), or give `port`. */
  readonly service?: ServiceName;
  readonly port?: Port;
  readonly peers: readonly PeerLike[];
  readonly reason: string;
}

function upstreamFlows(upstreams: readonly Upstream[]): Flow[] {
  return upstreams.flatMap((u) => {
    const peers = requirePeers(u.peers, `The upstream ${show(u.reason)}'s peers`, 'Peer.ipv4("10.0.2.0/24")');
    if (u.service !== undefined) return use(u.service, peers, u.reason);
    if (u.port === undefined) {
      throw new TwinwallError('OPTION_INVALID', {
        value: u.reason,
        problem: `the upstream ${show(u.reason)} names neither a service nor a port.`,
        fix: 'give service: "http-alt" (or another catalog name) or port: Port.tcp(8080).',
      });
    }
    return peers.map((p) => Flow.egress(u.port as Port, p, u.reason));
  });
}

export interface WebServerOptions {
  readonly name?: string;
  /** Who may browse; default anywhere (IPv4 and IPv6). */
  readonly sources?: readonly PeerLike[];
  /** Serve plain HTTP on 80 (default true: redirects to HTTPS need it). */
  readonly http?: boolean;
  /** Serve HTTPS on 443 (default true). */
  readonly https?: boolean;
  /** Declared back ends the server calls (e.g. an app tier on tcp/8080). */
  readonly upstreams?: readonly Upstream[];
}

/**
 * A web server accepts HTTP/HTTPS and sends nothing of its own: a web server that starts fetching
 * pages is running someone's dropper. Name lookups come from the dnsClient role; back ends it
 * calls are declared as upstreams.
 */
export function webServer(options: WebServerOptions = {}): Role {
  const sources = requirePeers(options.sources ?? [Peer.anywhere()], 'webServer sources', '[Peer.anywhere()]');
  const flows: Flow[] = [];
  if (options.http ?? true) flows.push(...serve('http', sources));
  if (options.https ?? true) flows.push(...serve('https', sources));
  flows.push(...upstreamFlows(options.upstreams ?? []));
  return Role.of(options.name ?? 'webServer', 'Serves HTTP/HTTPS; sends nothing but declared upstream calls.', flows);
}

/** learn: HTTP and HTTPS served; an application tier called on http-alt is its upstream. */
export const WEB_SERVER_LEARN = { serves: ['http', 'https'], uses: ['http-alt'] } as const satisfies LearnSignature;

/** A mail-user service a mail server may offer (catalog services; MAIL_CLIENT_SERVICES lists them). */
export type MailClientService = 'submission' | 'smtps' | 'imaps' | 'pop3s';

/** Every MailClientService, once: a record keyed by the type, so the compiler holds the two equal. */
const MAIL_CLIENT_SERVICE_SET: Readonly<Record<MailClientService, true>> = { submission: true, smtps: true, imaps: true, pop3s: true };

/** The mail-user services a mail server may offer, in the order options list them. */
export const MAIL_CLIENT_SERVICES = Object.keys(MAIL_CLIENT_SERVICE_SET) as readonly MailClientService[];

export interface MailServerOptions {
  readonly name?: string;
  /** Who may deliver mail on tcp/25; default anywhere. */
  readonly sources?: readonly PeerLike[];
  /** Mail-user services to offer too (587, 465, 993, 995). */
  readonly clientServices?: readonly MailClientService[];
  /** Who may use the client services; default anywhere. */
  readonly clientSources?: readonly PeerLike[];
  /** Where outbound mail may go on tcp/25; default anywhere (direct delivery). Use a relay's CIDR to narrow it. */
  readonly deliverTo?: readonly PeerLike[];
}

/**
 * A mail server accepts SMTP and sends SMTP — to and from port 25 — and nothing else: it has no
 * business making HTTP connections, and a mail server that does has been taken over.
 */
export function mailServer(options: MailServerOptions = {}): Role {
  const sources = requirePeers(options.sources ?? [Peer.anywhere()], 'mailServer sources', '[Peer.anywhere()]');
  const deliverTo = requirePeers(options.deliverTo ?? [Peer.anywhere()], 'mailServer deliverTo', '[Peer.anywhere()] or a relay');
  const clientSources = requirePeers(options.clientSources ?? [Peer.anywhere()], 'mailServer clientSources', 'Peer.ipv4("198.51.100.0/24")');
  const clientServices = [...new Set(options.clientServices ?? [])].sort();
  for (const s of clientServices) {
    if (!MAIL_CLIENT_SERVICES.includes(s)) {
      throw new TwinwallError('OPTION_INVALID', {
        value: s,
        problem: `${show(s)} is not a mail client service.`,
        fix: `use ${MAIL_CLIENT_SERVICES.slice(0, -1).map((c) => `"${c}"`).join(', ')} or "${MAIL_CLIENT_SERVICES[MAIL_CLIENT_SERVICES.length - 1]}".`,
      });
    }
  }
  return Role.of(options.name ?? 'mailServer', 'Receives and delivers mail on tcp/25; nothing else out.', [
    ...serve('smtp', sources),
    ...clientServices.flatMap((s) => serve(s, clientSources)),
    ...use('smtp', deliverTo),
  ]);
}

/** learn: SMTP served (and the mail-user services), SMTP used to deliver. */
export const MAIL_SERVER_LEARN = { serves: ['smtp', ...MAIL_CLIENT_SERVICES], uses: ['smtp'] } as const satisfies LearnSignature;

export type DnsServerOptions =
  | {
      readonly name?: string;
      readonly mode: 'authoritative';
      /** Who may query; default anywhere (it answers only for its own zones). */
      readonly sources?: readonly PeerLike[];
      /** Secondaries this primary sends NOTIFY to (and which pull zone transfers from it). */
      readonly secondaries?: readonly PeerLike[];
      /** Primaries this server pulls zones from when it is itself a secondary. */
      readonly primaries?: readonly PeerLike[];
    }
  | {
      readonly name?: string;
      readonly mode: 'recursive';
      /** Who may query. Required, and never the whole Internet: open resolvers amplify DDoS. */
      readonly clients: readonly PeerLike[];
    };

/**
 * A DNS server. An authoritative server answers anyone but sends only NOTIFY and zone-transfer
 * traffic to its declared secondaries/primaries. A recursive server answers only its declared
 * clients (an open resolver is a reflection amplifier) and may query port 53 anywhere.
 */
export function dnsServer(options: DnsServerOptions): Role {
  if (options === undefined || (options.mode !== 'authoritative' && options.mode !== 'recursive')) {
    throw new TwinwallError('OPTION_INVALID', {
      value: (options as { mode?: unknown } | undefined)?.mode,
      problem: `dnsServer mode ${show((options as { mode?: unknown } | undefined)?.mode)} is not "authoritative" or "recursive".`,
      fix: 'pass { mode: "authoritative" } or { mode: "recursive", clients: [...] }.',
    });
  }
  if (options.mode === 'recursive') {
    const clients = requirePeers(options.clients, 'dnsServer recursive clients', 'Peer.ipv4("10.0.0.0/16")');
    const wide = widePeers(clients, WIDE_PREFIX.v6);
    if (wide.length > 0) {
      throw new TwinwallError('OPEN_RESOLVER', {
        value: wide.map((p) => p.label),
        problem: `a recursive resolver answering ${wide.map((p) => show(p.label)).join(', ')} is an open resolver, used to amplify DDoS attacks.`,
        fix: `list only the networks that should use it (e.g. the VPC CIDR); anything wider than /${WIDE_PREFIX.v4} (IPv4) or /${WIDE_PREFIX.v6} (IPv6) is refused.`,
      });
    }
    return Role.of(options.name ?? 'dnsServer', 'Recursive resolver for declared clients; queries port 53 anywhere.', [
      ...serve('dns', clients, 'answering recursive queries from declared clients'),
      ...use('dns', [Peer.anywhere()], 'recursive resolution: querying authoritative servers'),
    ]);
  }
  const sources = requirePeers(options.sources ?? [Peer.anywhere()], 'dnsServer sources', '[Peer.anywhere()]');
  const flows = [...serve('dns', sources, 'answering queries for its own zones')];
  if (options.secondaries !== undefined) {
    const secondaries = requirePeers(options.secondaries, 'dnsServer secondaries', 'Peer.ipv4("198.51.100.53/32")');
    flows.push(...use('dns', secondaries, 'NOTIFY to declared secondaries'));
  }
  if (options.primaries !== undefined) {
    const primaries = requirePeers(options.primaries, 'dnsServer primaries', 'Peer.ipv4("198.51.100.53/32")');
    flows.push(...use('dns', primaries, 'zone transfers from declared primaries'));
  }
  return Role.of(options.name ?? 'dnsServer', 'Authoritative server; sends only NOTIFY/zone transfers to declared peers.', flows);
}

/** learn: DNS served; DNS used towards many addresses makes it a recursive resolver. */
export const DNS_SERVER_LEARN = { serves: ['dns'], uses: ['dns'] } as const satisfies LearnSignature;

export interface SshAdminOptions {
  readonly name?: string;
  /** Admin networks that may log in. Required. */
  readonly from: readonly PeerLike[];
  /**
   * Allow 0.0.0.0/0 or ::/0 (or anything wider than /8 / /32). Off by default: SSH open to the
   * Internet is brute-forced within minutes. Setting it is a reviewed decision.
   */
  readonly forceOpenToInternet?: boolean;
}

/** SSH administration from declared admin networks only; sends nothing. */
export function sshAdmin(options: SshAdminOptions): Role {
  const from = requirePeers(options?.from, 'sshAdmin from', 'Peer.ipv4("192.0.2.0/24") (your admin LAN)');
  const wide = widePeers(from, WIDE_PREFIX.adminV6);
  if (wide.length > 0 && options.forceOpenToInternet !== true) {
    throw new TwinwallError('SSH_FROM_ANYWHERE', {
      value: wide.map((p) => p.label),
      problem: `SSH from ${wide.map((p) => show(p.label)).join(', ')} opens administration to (nearly) the whole Internet.`,
      fix: 'list your admin networks or bastion instead; if you really mean it, pass forceOpenToInternet: true.',
    });
  }
  // admin: this is how the host is fixed, so it stays open in the fallback a host keeps when its
  // real table fails to load.
  return Role.of(options.name ?? 'sshAdmin', 'SSH in from declared admin networks only; nothing out.', serve('ssh', from, 'administration from declared admin networks'), { admin: true });
}

/** learn: SSH served (from few enough addresses to be admin networks). */
export const SSH_ADMIN_LEARN = { serves: ['ssh'], uses: [] } as const satisfies LearnSignature;

export interface DnsClientOptions {
  readonly name?: string;
  /** The resolvers this host may query; default the Amazon-provided resolver (link-local). */
  readonly resolvers?: readonly PeerLike[];
}

/**
 * DNS lookups to declared resolvers only (reverse lookups for logs, DNSBL queries). A host that
 * talks port 53 to anywhere can tunnel data out through DNS.
 */
export function dnsClient(options: DnsClientOptions = {}): Role {
  const resolvers = requirePeers(options.resolvers ?? [Peer.awsDnsResolver()], 'dnsClient resolvers', '[Peer.awsDnsResolver()]');
  return Role.of(options.name ?? 'dnsClient', 'DNS lookups to declared resolvers only.', use('dns', resolvers, 'name lookups (log resolution, DNSBL) via declared resolvers'));
}

/** learn: DNS used (towards few resolvers). */
export const DNS_CLIENT_LEARN = { serves: [], uses: ['dns'] } as const satisfies LearnSignature;

export interface NtpClientOptions {
  readonly name?: string;
  /** Time servers; default Amazon Time Sync (link-local). */
  readonly servers?: readonly PeerLike[];
}

/** NTP to declared time servers only. */
export function ntpClient(options: NtpClientOptions = {}): Role {
  const servers = requirePeers(options.servers ?? [Peer.awsTimeSync()], 'ntpClient servers', '[Peer.awsTimeSync()]');
  return Role.of(options.name ?? 'ntpClient', 'NTP to declared time servers only.', use('ntp', servers, 'clock synchronisation'));
}

/** learn: NTP used. */
export const NTP_CLIENT_LEARN = { serves: [], uses: ['ntp'] } as const satisfies LearnSignature;

/**
 * A role from explicit flows, for everything the catalog roles do not cover. `{ admin: true }`
 * marks its ingress as administrative access (a bastion's port, say): it stays open in the
 * host wall's fallback, like sshAdmin's.
 */
export function customRole(name: string, flows: readonly Flow[], description = 'Custom flows.', options: RoleOptions = {}): Role {
  return Role.of(name, description, flows, options);
}

