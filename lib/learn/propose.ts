/**
 * Observed flows → a proposed policy per host: catalog roles where the traffic fits one, custom
 * flows for the rest, and flags for what must not become a rule:
 *
 * - scan: egress to many distinct addresses on one port (worm or scan behaviour, as Slammer's
 *   udp/1434), unless a proposed role sends there by design (a mail server delivering mail, a
 *   recursive resolver);
 * - smtp-without-mail-role: SMTP (tcp/25) out from a host that does not receive mail;
 * - metadata-non-root: instance-metadata access by a user other than root (when the log has UIDs);
 * - non-local-source: packets leaving with a source address that is not the host's;
 * - forwarding: the host forwarded packets (it is not a router);
 * - many-ports: more distinct ports than the aggregator keeps, on one host and direction;
 * - ssh-from-many / open-resolver: SSH or recursive DNS from so many addresses that no role may
 *   safely admit them.
 *
 * Every learned flow keeps its evidence (counts, first/last seen, sample lines) and says what
 * became of it and why. Pure: flows in, data out; renderers (render.ts) turn it into TypeScript,
 * JSON and Markdown.
 */
import { Cidr, FAMILIES, Family } from '../address';
import { SERVICES, ServiceName } from '../catalog';
import { checkName } from '../flow';
import { AWS_LINK_LOCAL } from '../peer';
import { ICMP4_ANY_TYPE } from '../port';
import { DEFAULT_WIDEST_PREFIX, FlowReason, FlowStats } from './aggregate';
import { coverAddresses } from './cover';
import { keyValue } from './observation';
import { Observed } from './read';
import { DNS_CLIENT_LEARN, DNS_SERVER_LEARN, MAIL_CLIENT_SERVICES, MAIL_SERVER_LEARN, MailClientService, NTP_CLIENT_LEARN, SSH_ADMIN_LEARN, WEB_SERVER_LEARN } from '../roles';

export interface ProposeOptions {
  /** Widest prefix a learned address block may have (default /24 and /48). */
  readonly widestPrefix?: { readonly 4: number; readonly 6: number };
  /** Most CIDR blocks a learned peer list may have before addresses are grouped (default 16). */
  readonly maxBlocks?: number;
  /** Distinct remote addresses on one egress port that make it a scan (default 32). */
  readonly scanThreshold?: number;
  /** Hosts that already have the mail role (from --against): SMTP out is theirs to send. */
  readonly mailHosts?: ReadonlySet<string>;
}

export interface SeenAt {
  readonly time?: string;
  readonly source: string;
  readonly line: number;
}

export interface Evidence {
  /** Packets: lines for kernel logs, the packets field summed for flow logs (both directions). */
  readonly packets: number;
  /** New connections: kernel lines that are not retransmissions; flow-log records of the opening side. */
  readonly flows: number;
  /** Lines (records) behind this flow. */
  readonly records: number;
  readonly bytes?: number;
  /** Flow-log records the network wall rejected. */
  readonly rejected: number;
  /** Flow-log records whose direction was guessed from the ports. */
  readonly guessedDirection: number;
  /** Distinct remote addresses (a lower bound when `coarsened`). */
  readonly distinctRemotes: number;
  readonly coarsened: boolean;
  readonly first: SeenAt;
  readonly last: SeenAt;
  /** Sending user ids and their counts (kernel egress lines). */
  readonly uids?: Readonly<Record<string, number>>;
  /** LOG verdict words or flow-log actions and their counts. */
  readonly verdicts: Readonly<Record<string, number>>;
  readonly samples: readonly { readonly source: string; readonly line: number; readonly text: string }[];
}

export type Disposition = 'role' | 'custom' | 'flagged' | 'not-a-rule';

export interface RemoteCover {
  /** The CIDR blocks a rule would name. */
  readonly cidrs: readonly string[];
  /** The blocks hold addresses that were never seen. */
  readonly widened: boolean;
  /** Too many blocks even at the widest prefix. */
  readonly spread: boolean;
  /** The proposal names any address of these families instead of blocks. */
  readonly anywhere: readonly Family[];
}

export interface LearnedFlow {
  /** "egress udp/1434", unique within a host. */
  readonly id: string;
  /** The aggregator's key of the flow (Aggregator.get). */
  readonly key: string;
  /** traffic (a kernel policy line or flow-log record), or invalid, spoof, imds. */
  readonly reason: FlowReason;
  /** How many of its records came from flow logs (the rest are kernel LOG lines). */
  readonly fromFlowLogs: number;
  readonly direction: 'ingress' | 'egress' | 'forward';
  readonly protocol: string;
  readonly port?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** The catalog service on that protocol and port. */
  readonly service?: ServiceName;
  remote: RemoteCover;
  readonly evidence: Evidence;
  disposition: Disposition;
  /** The proposed role that admits it. */
  role?: string;
  /** Why it got its disposition. */
  why: string;
}

export interface ProposedRole {
  readonly role: string;
  /** TypeScript expression, e.g. `webServer({ http: false })`. */
  readonly code: string;
  /** Ids of the learned flows it admits. */
  readonly covers: readonly string[];
  /** What the role admits beyond what was seen (its defaults), if anything. */
  readonly beyond?: string;
}

export interface CustomFlow {
  /** TypeScript expression yielding a Flow (or a spread of Flows). */
  readonly code: string;
  readonly covers: readonly string[];
  readonly comment: string;
}

export type FlagKind = 'scan' | 'smtp-without-mail-role' | 'metadata-non-root' | 'non-local-source' | 'forwarding' | 'many-ports' | 'ssh-from-many' | 'open-resolver';

export interface Flag {
  readonly kind: FlagKind;
  readonly message: string;
  readonly flow?: string;
  readonly evidence: Evidence;
}

export interface HostProposal {
  /** The host as the logs named it (after aliases). */
  readonly host: string;
  /** A valid twinwall host name for HostPolicy.compose. */
  readonly name: string;
  readonly flows: readonly LearnedFlow[];
  readonly roles: readonly ProposedRole[];
  readonly custom: readonly CustomFlow[];
  readonly flags: readonly Flag[];
  readonly notes: readonly string[];
}

export interface Proposal {
  readonly hosts: readonly HostProposal[];
  readonly settings: { readonly widestPrefix: { readonly 4: number; readonly 6: number }; readonly maxBlocks: number; readonly scanThreshold: number };
}

// ---------------------------------------------------------------------------------------------

/** (protocol, port) → catalog service. */
const SERVICE_BY_PORT = new Map<string, ServiceName>();
for (const [name, row] of Object.entries(SERVICES) as [ServiceName, (typeof SERVICES)[ServiceName]][]) {
  for (const p of row.ports) if (p.from === p.to) SERVICE_BY_PORT.set(`${p.protocol}/${p.from}`, name);
}

export function serviceOf(protocol: string, port: number | undefined): ServiceName | undefined {
  return port === undefined ? undefined : SERVICE_BY_PORT.get(`${protocol}/${port}`);
}

function linkLocal(service: keyof typeof AWS_LINK_LOCAL): Set<string> {
  return new Set([`${AWS_LINK_LOCAL[service][4]}/32`, `${AWS_LINK_LOCAL[service][6]}/128`]);
}
const AWS_RESOLVER = linkLocal('dnsResolver');
const AWS_TIME = linkLocal('timeSync');
const AWS_METADATA = linkLocal('instanceMetadata');

/** A valid host name (checkName) from whatever the log called the host. */
export function hostName(raw: string): string {
  let n = raw.replace(/[^A-Za-z0-9_-]/g, '-');
  if (!/^[A-Za-z]/.test(n)) n = `h${n}`;
  n = n.slice(0, 63);
  checkName(n, 'The host name');
  return n;
}

interface Settings {
  readonly widestPrefix: { readonly 4: number; readonly 6: number };
  readonly maxBlocks: number;
  readonly scanThreshold: number;
}

interface FamilyCover {
  readonly family: Family;
  readonly cidrs: Cidr[];
  readonly widened: boolean;
  readonly spread: boolean;
}

/** Covers of one flow's remote addresses, per settings (propose asks for the same flow's cover several times). */
const COVERS = new WeakMap<FlowStats, { readonly settings: Settings; readonly covers: FamilyCover[] }>();

/** Remote addresses of several flows together, covered per family. */
function coverByFamily(flows: readonly FlowStats[], s: Settings): FamilyCover[] {
  if (flows.length === 1) {
    const hit = COVERS.get(flows[0]);
    if (hit && hit.settings === s) return hit.covers;
  }
  const out: FamilyCover[] = [];
  for (const family of FAMILIES) {
    // Each flow's points are distinct already; several flows are merged by address key.
    let points: Iterable<bigint>;
    if (flows.length === 1) points = flows[0].remotes[family].pointValues();
    else {
      const merged = new Set<number | string>();
      for (const f of flows) for (const k of f.remotes[family].points) merged.add(k);
      points = [...merged].map(keyValue);
    }
    const blocks: Cidr[] = [];
    let overflow = 0;
    let any = false;
    for (const f of flows) {
      const r = f.remotes[family];
      if (r.points.size > 0) any = true;
      blocks.push(...r.blockCidrs());
      overflow += r.overflow;
    }
    if (!any && blocks.length === 0) continue;
    const c = coverAddresses(family, points, blocks, { widestPrefix: s.widestPrefix[family], maxBlocks: s.maxBlocks });
    out.push({ family, cidrs: [...c.cidrs], widened: c.widened, spread: c.spread || overflow > 0 });
  }
  if (flows.length === 1) COVERS.set(flows[0], { settings: s, covers: out });
  return out;
}

/** Remote addresses of several flows together, covered. */
function coverOf(flows: readonly FlowStats[], s: Settings): { cidrs: Cidr[]; widened: boolean; spread: boolean; families: Family[] } {
  const per = coverByFamily(flows, s);
  return { cidrs: per.flatMap((p) => p.cidrs), widened: per.some((p) => p.widened), spread: per.some((p) => p.spread), families: per.map((p) => p.family) };
}

function seenAt(seen: FlowStats['first']): SeenAt {
  return { ...(seen.time ? { time: seen.time.text } : {}), source: seen.ref.source, line: seen.ref.line };
}

function evidenceOf(f: FlowStats): Evidence {
  const uids = [...f.uids.entries()].sort((a, b) => a[0] - b[0]);
  return {
    packets: f.packets,
    flows: f.flows,
    records: f.records,
    ...(f.bytes > 0 ? { bytes: f.bytes } : {}),
    rejected: f.rejected,
    guessedDirection: f.guessed,
    distinctRemotes: f.distinctRemotes,
    coarsened: f.remotes[4].coarsened || f.remotes[6].coarsened,
    first: seenAt(f.first),
    last: seenAt(f.last),
    ...(uids.length > 0 ? { uids: Object.fromEntries(uids.map(([u, n]) => [String(u), n])) } : {}),
    verdicts: Object.fromEntries([...f.verdicts.entries()].sort()),
    samples: f.samples.map((r) => ({ source: r.source, line: r.line, text: r.text })),
  };
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : /(s|ss|x)$/.test(word) ? 'es' : 's'}`;
}

/** "12 flows from 3 addresses, 2024-11-19T22:33:12Z – 2024-11-19T23:01:00Z" */
function summary(f: LearnedFlow): string {
  const e = f.evidence;
  const toFrom = f.direction === 'ingress' ? 'from' : 'to';
  const when = e.first.time !== undefined && e.last.time !== undefined ? (e.first.time === e.last.time ? `, seen ${e.first.time}` : `, seen ${e.first.time} to ${e.last.time}`) : `, lines ${e.first.line}-${e.last.line} of ${e.first.source}`;
  return `${plural(e.flows, 'flow')} ${toFrom} ${e.coarsened ? 'at least ' : ''}${plural(e.distinctRemotes, 'address')}${when}`;
}

/** summary() of several flows on neighbouring ports, as one. */
function groupSummary(flows: readonly LearnedFlow[], blocks: number): string {
  if (flows.length === 1) return summary(flows[0]);
  const n = flows.reduce((a, f) => a + f.evidence.flows, 0);
  const first = flows.map((f) => f.evidence.first).find((x) => x.time !== undefined);
  const lasts = flows.map((f) => f.evidence.last.time).filter((t): t is string => t !== undefined).sort();
  const toFrom = flows[0].direction === 'ingress' ? 'from' : 'to';
  const when = first?.time !== undefined && lasts.length > 0 ? `, seen ${first.time} to ${lasts[lasts.length - 1]}` : '';
  return `${plural(n, 'flow')} on ${flows.length} ports ${toFrom} ${plural(blocks, 'address block')}${when}`;
}

// ---- TypeScript expressions ------------------------------------------------------------------

function q(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/[\r\n\u2028\u2029]/g, ' ')}'`;
}

function peerCode(c: Cidr): string {
  return c.family === 4 ? `Peer.ipv4(${q(c.text)})` : `Peer.ipv6(${q(c.text)})`;
}

function anywhereCode(families: readonly Family[]): string[] {
  if (families.includes(4) && families.includes(6)) return ['Peer.anywhere()'];
  return families.map((f) => (f === 4 ? 'Peer.anyIpv4()' : 'Peer.anyIpv6()'));
}

/** Peer list elements; AWS link-local pairs become their Peer helpers. */
function peersCode(cidrs: readonly Cidr[]): string[] {
  const out: string[] = [];
  const texts = new Set(cidrs.map((c) => c.text));
  const helpers: [Set<string>, string][] = [
    [AWS_RESOLVER, 'Peer.awsDnsResolver()'],
    [AWS_TIME, 'Peer.awsTimeSync()'],
  ];
  const used = new Set<string>();
  for (const [set, code] of helpers) {
    if ([...set].some((t) => texts.has(t))) {
      out.push(code);
      for (const t of set) used.add(t);
    }
  }
  for (const c of cidrs) if (!used.has(c.text)) out.push(peerCode(c));
  return out;
}

function list(items: readonly string[]): string {
  return `[${items.join(', ')}]`;
}

function options(entries: readonly (readonly [string, string])[]): string {
  return entries.length === 0 ? '' : `{ ${entries.map(([k, v]) => `${k}: ${v}`).join(', ')} }`;
}

function portCode(protocol: string, from: number | undefined, to: number | undefined, icmpType?: number): string {
  if (protocol === 'tcp' || protocol === 'udp') {
    const P = protocol;
    if (from === 0 && to === 65535) return P === 'tcp' ? 'Port.allTcp()' : 'Port.allUdp()';
    return from === to ? `Port.${P}(${from})` : `Port.${P}Range(${from}, ${to})`;
  }
  if (protocol === 'icmp') return icmpType === undefined ? 'Port.allIcmp()' : `Port.icmpType(${icmpType})`;
  return icmpType === undefined ? 'Port.allIcmpv6()' : `Port.icmpv6Type(${icmpType})`;
}

// ---- the proposal ----------------------------------------------------------------------------

interface Candidate {
  readonly stats: FlowStats;
  readonly flow: LearnedFlow;
  readonly many: boolean;
}

function learnedFlow(f: FlowStats, s: Settings): Candidate {
  const cover = coverOf([f], s);
  const evidence = evidenceOf(f);
  const protocol = typeof f.protocol === 'number' ? `proto ${f.protocol}` : f.protocol;
  const service = typeof f.protocol === 'string' ? serviceOf(f.protocol, f.port) : undefined;
  const flow: LearnedFlow = {
    id: f.reason === 'traffic' ? f.label : `${f.label} (${f.reason})`,
    key: f.key,
    reason: f.reason,
    fromFlowLogs: f.fromFlowLogs,
    direction: f.direction,
    protocol,
    ...(f.port !== undefined ? { port: f.port } : {}),
    ...(f.icmpType !== undefined ? { icmpType: f.icmpType, icmpCode: f.icmpCode } : {}),
    ...(service !== undefined ? { service } : {}),
    remote: { cidrs: cover.cidrs.map((c) => c.text), widened: cover.widened, spread: cover.spread, anywhere: [] },
    evidence,
    disposition: 'not-a-rule',
    why: '',
  };
  return { stats: f, flow, many: f.distinctRemotes >= s.scanThreshold || cover.spread };
}

class HostBuilder {
  public readonly roles: ProposedRole[] = [];
  public readonly custom: CustomFlow[] = [];
  public readonly flags: Flag[] = [];
  public readonly notes: string[] = [];

  public constructor(
    public readonly host: string,
    private readonly s: Settings,
  ) {}

  public flag(kind: FlagKind, c: Candidate | undefined, message: string, evidence?: Evidence): void {
    if (c) {
      c.flow.disposition = 'flagged';
      c.flow.why = message;
    }
    this.flags.push({ kind, message, ...(c ? { flow: c.flow.id } : {}), evidence: evidence ?? (c as Candidate).flow.evidence });
  }

  /** Mark flows as admitted by a role. */
  public role(role: string, code: string, covered: readonly Candidate[], beyond?: string): void {
    for (const c of covered) {
      c.flow.disposition = 'role';
      c.flow.role = role;
      c.flow.why = `admitted by ${role}`;
    }
    this.roles.push({ role, code, covers: covered.map((c) => c.flow.id), ...(beyond !== undefined ? { beyond } : {}) });
  }

  /**
   * Peer list code for flows: blocks per family, or any address of a family whose addresses are
   * too spread for blocks. `anywhere` when every family seen is spread (a role's default fits).
   */
  public peers(covered: readonly Candidate[]): { code: string[]; anywhere: boolean } {
    const per = coverByFamily(
      covered.map((c) => c.stats),
      this.s,
    );
    const spread = per.filter((p) => p.spread).map((p) => p.family);
    for (const c of covered) c.flow.remote = { ...c.flow.remote, anywhere: spread };
    if (per.length > 0 && spread.length === per.length) return { code: anywhereCode(spread), anywhere: true };
    return { code: [...anywhereCode(spread), ...peersCode(per.filter((p) => !p.spread).flatMap((p) => p.cidrs))], anywhere: false };
  }
}

/** Build the proposal for every host of the observed logs. */
export function propose(observed: Observed, options: ProposeOptions = {}): Proposal {
  const s: Settings = {
    widestPrefix: options.widestPrefix ?? DEFAULT_WIDEST_PREFIX,
    maxBlocks: options.maxBlocks ?? 16,
    scanThreshold: options.scanThreshold ?? 32,
  };
  const names = new Set<string>();
  const hosts = observed.flows.hosts.map((host) => {
    let name = hostName(host);
    for (let i = 2; names.has(name); i++) name = hostName(`${host}-${i}`);
    names.add(name);
    return proposeHost(host, name, observed.flows.flowsOf(host), s, options.mailHosts?.has(host) === true || options.mailHosts?.has(name) === true);
  });
  return { hosts, settings: s };
}

function proposeHost(host: string, name: string, stats: readonly FlowStats[], s: Settings, hasMailRole: boolean): HostProposal {
  const b = new HostBuilder(host, s);
  const all = stats.map((f) => learnedFlow(f, s));
  const flows: Candidate[] = [];

  // Lines that are not flows of this host's policy.
  for (const c of all) {
    const f = c.stats;
    const ev = c.flow.evidence;
    if (f.direction === 'forward') {
      b.flag('forwarding', c, `the host forwarded ${plural(ev.packets, 'packet')} (${c.flow.protocol}${f.port !== undefined ? `/${f.port}` : ''}) to ${plural(ev.distinctRemotes, 'address')}: it is not a router; find out what routes through it before enforcing.`);
    } else if (f.reason === 'spoof') {
      const sources = [...f.locals].join(', ') + (f.localsOverflow > 0 ? ` and ${f.localsOverflow} more` : '');
      b.flag('non-local-source', c, `${plural(ev.packets, 'packet')} left with a source address that is not the host's (${sources}), ${c.flow.id.replace(/ \(spoof\)$/, '')} to ${plural(ev.distinctRemotes, 'address')}: forged traffic (a compromised host, or a reflection attack) — the host wall drops it when enforcing.`);
    } else if (f.reason === 'stray') {
      c.flow.why = 'packets that open no connection (TCP without SYN, ICMP errors and replies)';
      b.notes.push(`${plural(ev.packets, 'packet')} ${c.flow.id.replace(/ \(stray\)$/, '')} that open no connection (TCP without SYN, ICMP errors or replies): late packets of connections conntrack no longer knows; no rule.`);
    } else if (f.reason === 'invalid') {
      c.flow.why = 'conntrack called these packets INVALID; they are not connections';
      b.notes.push(`${plural(ev.packets, 'packet')} ${f.direction} (${c.flow.protocol}) that conntrack called INVALID: usually late packets of closed connections; not flows, no rule.`);
    } else if (f.reason === 'imds' || (f.direction === 'egress' && c.flow.remote.cidrs.some((t) => AWS_METADATA.has(t)))) {
      const uids = ev.uids ?? {};
      const nonRoot = Object.entries(uids).filter(([u]) => u !== '0');
      if (nonRoot.length > 0) {
        b.flag('metadata-non-root', c, `instance metadata (${c.flow.remote.cidrs.join(', ')}) reached by non-root user${nonRoot.length === 1 ? '' : 's'} ${nonRoot.map(([u, n]) => `uid ${u} (${plural(n, 'time')})`).join(', ')}: a compromised daemon can read the instance's credentials; keep instanceMetadata 'root-only' and give that service another way to get what it needs.`);
      } else if (uids['0'] !== undefined) {
        c.flow.why = "root reached instance metadata; instanceMetadata 'root-only' (the default) allows exactly that";
        b.notes.push(`root reached instance metadata ${plural(uids['0'], 'time')}; the default instanceMetadata 'root-only' admits it (the audited policy must have had 'none').`);
      } else {
        c.flow.why = 'instance-metadata access without a uid in the log';
        b.notes.push(`instance metadata was reached ${plural(ev.packets, 'time')}, but the log carries no uid: keep instanceMetadata 'root-only' and check which process it was.`);
      }
    } else if (typeof f.protocol === 'number') {
      c.flow.why = `protocol ${f.protocol}: twinwall flows are tcp, udp, icmp or all traffic`;
      b.notes.push(`${c.flow.id}: ${summary(c.flow)}. twinwall flows are tcp, udp, icmp/icmpv6 or all traffic; if this protocol is needed, write Flow.${f.direction}(Port.allTraffic(), …) for its peers by hand.`);
    } else if (f.protocol === 'icmp' && f.icmpType === ICMP4_ANY_TYPE) {
      c.flow.why = 'ICMP type 255 is reserved, and to iptables every type';
      b.notes.push(`${c.flow.id}: ${summary(c.flow)}. ICMP type 255 is reserved, and iptables reads it as every ICMP type, so twinwall refuses Port.icmpType(255) (TW113): not proposed.`);
    } else if (f.manyPorts) {
      const what = f.direction === 'ingress' ? 'connections to more ports than learn keeps (a port scan of this host?)' : 'connections to more ports than learn keeps (a scan?)';
      b.flag('many-ports', c, `${f.direction} ${f.protocol}: ${what}; ${plural(ev.packets, 'packet')} from ${plural(ev.distinctRemotes, 'address')}; not proposed.`);
    } else if (ev.rejected === ev.records && ev.records > 0) {
      c.flow.why = 'every record was rejected by the network wall';
      b.notes.push(`${c.flow.id}: ${summary(c.flow)}, every record REJECTed by the network wall: not proposed.`);
    } else flows.push(c);
  }

  const find = (direction: string, protocol: string, port: number): Candidate | undefined => flows.find((c) => c.flow.direction === direction && c.flow.protocol === protocol && c.flow.port === port && c.flow.disposition === 'not-a-rule');
  // Each role's evidence is the flows of the catalog services its learn signature names
  // (lib/roles.ts, next to the role), found at the services' catalog ports.
  const ofService = (direction: string, service: ServiceName): Candidate[] =>
    SERVICES[service].ports.map((p) => find(direction, p.protocol, p.from as number)).filter((c): c is Candidate => c !== undefined);
  const oneOf = (direction: string, service: ServiceName): Candidate | undefined => ofService(direction, service)[0];
  const [inHttp, inHttps] = WEB_SERVER_LEARN.serves.map((svc) => oneOf('ingress', svc));
  const [outAppTier] = WEB_SERVER_LEARN.uses.map((svc) => oneOf('egress', svc));
  const inSmtp = oneOf('ingress', MAIL_SERVER_LEARN.serves[0]);
  const outSmtp = oneOf('egress', MAIL_SERVER_LEARN.uses[0]);
  const inSsh = oneOf('ingress', SSH_ADMIN_LEARN.serves[0]);
  const inDns = DNS_SERVER_LEARN.serves.flatMap((svc) => ofService('ingress', svc));
  const outDns = DNS_CLIENT_LEARN.uses.flatMap((svc) => ofService('egress', svc));
  const [outNtp] = NTP_CLIENT_LEARN.uses.map((svc) => oneOf('egress', svc));

  // webServer: HTTP/HTTPS in (and its declared upstream on http-alt).
  if (inHttp || inHttps) {
    const covered = [inHttp, inHttps].filter((c): c is Candidate => c !== undefined);
    const sources = b.peers(covered);
    const opts: [string, string][] = [];
    if (!inHttp) opts.push(['http', 'false']);
    if (!inHttps) opts.push(['https', 'false']);
    if (!sources.anywhere) opts.push(['sources', list(sources.code)]);
    const also: Candidate[] = [];
    if (outAppTier && !outAppTier.many) {
      const peers = b.peers([outAppTier]);
      opts.push(['upstreams', `[{ service: 'http-alt', peers: ${list(peers.code)}, reason: ${q(`learned: ${summary(outAppTier.flow)}`)} }]`]);
      also.push(outAppTier);
    }
    const beyond = sources.anywhere ? 'admits its ports from any IPv4 and IPv6 address' : undefined;
    b.role('webServer', `webServer(${options(opts)})`, [...covered, ...also], beyond);
    const outHttp = oneOf('egress', 'http');
    if (outHttp) b.notes.push(`egress tcp/80 from a web server (${summary(outHttp.flow)}): a web server that fetches pages may be running someone's dropper; check before keeping it.`);
  }

  // mailServer: SMTP in; delivers SMTP out.
  if (inSmtp) {
    const sources = b.peers([inSmtp]);
    const clients = MAIL_CLIENT_SERVICES.map((svc) => [svc, oneOf('ingress', svc)] as const).filter((x): x is readonly [MailClientService, Candidate] => x[1] !== undefined);
    const opts: [string, string][] = [];
    if (!sources.anywhere) opts.push(['sources', list(sources.code)]);
    if (clients.length > 0) {
      opts.push(['clientServices', list(clients.map(([svc]) => q(svc)))]);
      const cs = b.peers(clients.map(([, c]) => c));
      if (!cs.anywhere) opts.push(['clientSources', list(cs.code)]);
    }
    const covered = [inSmtp, ...clients.map(([, c]) => c)];
    let beyond: string | undefined;
    if (outSmtp) {
      // Delivering to many servers is what a mail server does: keep the default (anywhere).
      if (!outSmtp.many) {
        const to = b.peers([outSmtp]);
        if (!to.anywhere) opts.push(['deliverTo', list(to.code)]);
      } else outSmtp.flow.remote = { ...outSmtp.flow.remote, anywhere: [4, 6] };
      covered.push(outSmtp);
    } else beyond = 'delivers mail (tcp/25 out) to any address, though none was seen; pass deliverTo to narrow it';
    b.role('mailServer', `mailServer(${options(opts)})`, covered, beyond);
  } else if (outSmtp) {
    if (hasMailRole) b.role('mailServer', 'mailServer()', [outSmtp], 'the deployed policy already has the mail role; kept as it is');
    else b.flag('smtp-without-mail-role', outSmtp, `SMTP out (tcp/25) ${summary(outSmtp.flow)} from a host that does not receive mail: spam from a compromised host looks like this; if it must send mail, hand it to a relay on submission (tcp/587) or give it the mail role.`);
  }

  // sshAdmin: SSH in from admin networks only.
  if (inSsh) {
    if (inSsh.many) b.flag('ssh-from-many', inSsh, `SSH in ${summary(inSsh.flow)}: too many to be admin networks (brute force?); list your admin networks in sshAdmin({ from }) instead.`);
    else b.role('sshAdmin', `sshAdmin({ from: ${list(b.peers([inSsh]).code)} })`, [inSsh]);
  }

  // DNS: a server (authoritative or recursive) and/or a client.
  const outDnsMany = outDns.some((c) => c.many);
  if (inDns.length > 0) {
    if (outDnsMany) {
      const clients = b.peers(inDns);
      if (clients.anywhere) {
        for (const c of inDns) b.flag('open-resolver', c, `${c.flow.id} ${summary(c.flow)} while the host resolves recursively (${outDns.map((o) => o.flow.id).join(', ')} to many addresses): an open resolver amplifies DDoS; list the networks it serves in dnsServer({ mode: 'recursive', clients }).`);
      } else {
        b.role('dnsServer', `dnsServer({ mode: 'recursive', clients: ${list(clients.code)} })`, [...inDns, ...outDns], 'queries port 53 anywhere (recursive resolution)');
      }
    } else {
      const sources = b.peers(inDns);
      const opts: [string, string][] = [['mode', q('authoritative')]];
      if (!sources.anywhere) opts.push(['sources', list(sources.code)]);
      b.role('dnsServer', `dnsServer(${options(opts)})`, inDns, inDns.length === 1 ? `answers DNS on ${inDns[0].flow.protocol === 'udp' ? 'tcp' : 'udp'}/53 as well` : undefined);
    }
  }
  const clientDns = outDns.filter((c) => c.flow.disposition === 'not-a-rule');
  if (clientDns.length > 0) {
    if (clientDns.some((c) => c.many)) {
      for (const c of clientDns) b.flag('scan', c, `DNS out ${summary(c.flow)}: a host that is not a resolver talks to its configured resolvers only; DNS to many addresses is tunnelling or scanning.`);
    } else {
      const cover = coverOf(
        clientDns.map((c) => c.stats),
        s,
      );
      const awsOnly = cover.cidrs.every((c) => AWS_RESOLVER.has(c.text));
      const code = awsOnly ? 'dnsClient()' : `dnsClient({ resolvers: ${list(peersCode(cover.cidrs))} })`;
      b.role('dnsClient', code, clientDns, clientDns.length === 1 ? `asks its resolvers over ${clientDns[0].flow.protocol === 'udp' ? 'tcp' : 'udp'}/53 as well (large answers)` : undefined);
    }
  }

  // ntpClient.
  if (outNtp && !outNtp.many) {
    const cover = coverOf([outNtp.stats], s);
    const awsOnly = cover.cidrs.every((c) => AWS_TIME.has(c.text));
    b.role('ntpClient', awsOnly ? 'ntpClient()' : `ntpClient({ servers: ${list(peersCode(cover.cidrs))} })`, [outNtp]);
  }

  // Everything else: scans flagged, the rest as custom flows.
  const rest = flows.filter((c) => c.flow.disposition === 'not-a-rule');
  const custom: Candidate[] = [];
  for (const c of rest) {
    if (c.flow.direction === 'egress' && c.many) {
      b.flag('scan', c, `${c.flow.id} ${summary(c.flow)}: one port, many destinations — worm or scan behaviour (Slammer sent udp/1434 to random addresses); not proposed. If this is a client of a widely spread service, write the flow by hand with the peers you mean.`);
    } else custom.push(c);
  }
  for (const group of mergeRanges(custom)) {
    const first = group[0];
    const f = first.flow;
    const peers = b.peers(group);
    const from = f.port;
    const to = group[group.length - 1].flow.port;
    const port = portCode(f.protocol, from, to, f.icmpType);
    const service = from === to ? f.service : undefined;
    const label = from === to ? f.id : `${f.direction} ${f.protocol}/${from}-${to}`;
    const said = groupSummary(group.map((c) => c.flow), coverOf(group.map((c) => c.stats), s).cidrs.length);
    const reason = `learned: ${said}`;
    const ctor = f.direction === 'ingress' ? 'Flow.ingress' : 'Flow.egress';
    const opt = service !== undefined ? `, { service: ${q(service)} }` : '';
    const code = peers.code.length === 1 && !peers.code[0].startsWith('...') ? `${ctor}(${port}, ${peers.code[0]}, ${q(reason)}${opt})` : `...${list(peers.code)}.map((peer) => ${ctor}(${port}, peer, ${q(reason)}${opt}))`;
    for (const c of group) {
      c.flow.disposition = 'custom';
      c.flow.role = 'learned';
      c.flow.why = 'a custom flow in the learned role';
    }
    b.custom.push({ code, covers: group.map((c) => c.flow.id), comment: `${label}${service !== undefined ? ` (${service})` : ''}: ${said}${peers.anywhere ? '; spread too widely for blocks, so any address' : ''}` });
  }

  for (const c of all) if (c.flow.evidence.guessedDirection > 0) b.notes.push(`${c.flow.id}: who opened ${plural(c.flow.evidence.guessedDirection, 'flow-log record')} was guessed (from the ports; for ICMP, from which side sent first): log the tcp-flags field, or check.`);

  return { host, name, flows: all.map((c) => c.flow), roles: b.roles, custom: b.custom, flags: b.flags, notes: b.notes };
}

/** Custom TCP/UDP flows on consecutive ports with the same peers become one port range. */
function mergeRanges(custom: readonly Candidate[]): Candidate[][] {
  const groups: Candidate[][] = [];
  for (const c of custom) {
    const last = groups[groups.length - 1];
    const prev = last?.[last.length - 1];
    const ranged = (c.flow.protocol === 'tcp' || c.flow.protocol === 'udp') && c.flow.service === undefined;
    if (
      prev &&
      ranged &&
      prev.flow.service === undefined &&
      prev.flow.direction === c.flow.direction &&
      prev.flow.protocol === c.flow.protocol &&
      prev.flow.port !== undefined &&
      prev.flow.port + 1 === c.flow.port &&
      prev.flow.remote.cidrs.join() === c.flow.remote.cidrs.join()
    ) {
      last.push(c);
    } else groups.push([c]);
  }
  return groups;
}
