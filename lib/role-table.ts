/**
 * The role table of the README, generated from the roles themselves (never hand-maintained):
 * each role is built with a documented example and its flows are listed as the walls see them.
 */
import { SERVICES, SERVICE_NAMES } from './catalog';
import { Peer } from './peer';
import { Role } from './flow';
import { dnsClient, dnsServer, mailServer, ntpClient, sshAdmin, webServer } from './roles';

export interface RoleDoc {
  /** How the role is called in the example. */
  readonly example: string;
  /** Why it may send what it sends (Hatch's argument, applied). */
  readonly why: string;
  readonly build: () => Role;
}

export const ROLE_DOCS: readonly RoleDoc[] = [
  {
    example: 'webServer()',
    why: 'A web server answers requests; it never needs to start connections of its own. Back ends it calls are declared `upstreams`.',
    build: () => webServer(),
  },
  {
    example: 'mailServer()',
    why: 'A mail server talks SMTP in and out and nothing else: an HTTP download from it is a dropper at work.',
    build: () => mailServer(),
  },
  {
    example: "dnsServer({ mode: 'authoritative', secondaries: [Peer.ipv4('203.0.113.53/32')] })",
    why: 'Answers anyone for its own zones; sends only NOTIFY and zone transfers to declared peers.',
    build: () => dnsServer({ mode: 'authoritative', secondaries: [Peer.ipv4('203.0.113.53/32')] }),
  },
  {
    example: "dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.0/16')] })",
    why: 'Recursion for declared clients only (an open resolver is a DDoS amplifier); queries port 53 anywhere.',
    build: () => dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.0/16')] }),
  },
  {
    example: "sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })",
    why: 'Administration from the admin LAN only; 0.0.0.0/0 is refused unless `forceOpenToInternet` is set.',
    build: () => sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] }),
  },
  {
    example: 'dnsClient()',
    why: 'Name lookups (log resolution, DNSBL) go to declared resolvers only; port 53 to anywhere is a tunnel.',
    build: () => dnsClient(),
  },
  {
    example: 'ntpClient()',
    why: 'Time from declared servers only.',
    build: () => ntpClient(),
  },
];

function summarise(role: Role, direction: 'ingress' | 'egress'): string {
  const flows = role.flows.filter((f) => f.direction === direction);
  if (flows.length === 0) return 'nothing';
  const byPort = new Map<string, string[]>();
  for (const f of flows) {
    const key = `${f.service ?? ''} ${f.port}`.trim();
    const list = byPort.get(key) ?? [];
    if (!list.includes(f.peer.label)) list.push(f.peer.label);
    byPort.set(key, list);
  }
  return [...byPort.entries()].map(([port, peers]) => `${port} ${direction === 'ingress' ? 'from' : 'to'} ${peers.join(', ')}`).join('<br>');
}

/** The Markdown table of roles. */
export function roleTableMarkdown(): string {
  const lines = ['| role (example) | accepts | sends | why |', '|---|---|---|---|'];
  for (const doc of ROLE_DOCS) {
    const role = doc.build();
    lines.push(`| \`${doc.example}\` | ${summarise(role, 'ingress')} | ${summarise(role, 'egress')} | ${doc.why} |`);
  }
  lines.push('| `customRole(name, flows)` | what you list | what you list | Everything else, flow by flow, each with a reason. |');
  return lines.join('\n') + '\n';
}


/** The Markdown table of the service catalog. */
export function serviceTableMarkdown(): string {
  const lines = ['| service | ports | accepting it means | opening it means |', '|---|---|---|---|'];
  for (const name of SERVICE_NAMES) {
    const row = SERVICES[name];
    lines.push(`| \`${name}\` | ${row.ports.map(String).join(', ')} | ${row.server} | ${row.client} |`);
  }
  return lines.join('\n') + '\n';
}
