/**
 * AWS VPC Flow Logs records, in the default (version 2) format
 *
 *   version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
 *
 * or any custom format, given by its header line (the first line of every file Flow Logs delivers
 * to S3: the field names, space-separated) or by the format string (`${version} ${srcaddr} …`).
 *
 * A record names two addresses but not which one is the host's, nor who opened the connection:
 * - the host's address: `flow-direction` (v5) says it; else an address given with `localCidrs`;
 *   else it is inferred per interface as the address every record shares (records are held back,
 *   a bounded number, until that is clear);
 * - who opened it: the side on the catalog port (or the lower, well-known port) is the server;
 *   a SYN-only `tcp-flags` (2) or SYN-ACK-only (18) record settles it. Guesses are marked.
 * Pure: lines in, observations out; never throws on a line.
 */
import { Cidr } from '../address';
import { SERVICES } from '../catalog';
import { TwinwallError, show } from '../errors';
import { AddressReader, LineRef, LineResult, Observation, SeenAddress, SeenProtocol } from './observation';

/** The default format (version 2). */
export const FLOW_LOG_V2_FIELDS = ['version', 'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'packets', 'bytes', 'start', 'end', 'action', 'log-status'] as const;

/** Every field name Flow Logs defines (versions 2–8). */
export const FLOW_LOG_FIELDS = new Set([
  ...FLOW_LOG_V2_FIELDS,
  'vpc-id', 'subnet-id', 'instance-id', 'tcp-flags', 'type', 'pkt-srcaddr', 'pkt-dstaddr',
  'region', 'az-id', 'sublocation-type', 'sublocation-id', 'pkt-src-aws-service', 'pkt-dst-aws-service',
  'flow-direction', 'traffic-path', 'ecs-cluster-arn', 'ecs-cluster-name', 'ecs-container-instance-arn',
  'ecs-container-instance-id', 'ecs-container-id', 'ecs-second-container-id', 'ecs-service-name',
  'ecs-task-definition-arn', 'ecs-task-arn', 'ecs-task-id', 'reject-reason',
]);

const REQUIRED = ['srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol'];
const PROTOCOL_NUMBERS: Record<number, SeenProtocol> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6' };

/** Ports of catalog services, per protocol: the server side of a flow-log record. */
const CATALOG_PORTS: Record<'tcp' | 'udp', Set<number>> = { tcp: new Set(), udp: new Set() };
for (const row of Object.values(SERVICES)) {
  for (const p of row.ports) {
    if ((p.protocol === 'tcp' || p.protocol === 'udp') && p.from === p.to) CATALOG_PORTS[p.protocol].add(p.from as number);
  }
}

/** The field list of a format: a header line or a `${field} …` format string. */
export function parseFlowLogFormat(text: string): string[] {
  const fields = text
    .trim()
    .split(/\s+/)
    .map((f) => f.replace(/^\$\{(.*)\}$/, '$1'));
  const unknown = fields.filter((f) => !FLOW_LOG_FIELDS.has(f));
  const missing = REQUIRED.filter((f) => !fields.includes(f));
  if (text.trim() === '' || unknown.length > 0 || missing.length > 0) {
    throw new TwinwallError('FLOW_LOG_FORMAT_INVALID', {
      value: text,
      problem:
        unknown.length > 0
          ? `the flow-log format ${show(text)} names ${unknown.map((f) => show(f)).join(', ')}, which ${unknown.length === 1 ? 'is not a' : 'are not'} VPC Flow Logs field${unknown.length === 1 ? '' : 's'}.`
          : `the flow-log format ${show(text)} lacks ${missing.join(', ')}, which learn needs to tell who talked to whom.`,
      fix: 'give the format as the header line of the delivered files or as the format string, e.g. "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}".',
    });
  }
  return fields;
}

/** True for a line made only of flow-log field names: a header. */
function isHeader(tokens: readonly string[]): boolean {
  return tokens.length >= 3 && tokens.every((t) => FLOW_LOG_FIELDS.has(t.replace(/^\$\{(.*)\}$/, '$1')));
}

export interface FlowLogOptions {
  readonly source: string;
  readonly defaultHost: string;
  readonly forceHost?: string;
  /** The host's own addresses, when known. */
  readonly localCidrs?: readonly Cidr[];
  /** Format string or header line to start with (otherwise version 2 until a header says else). */
  readonly format?: string;
  /** Records held back per interface while its own address is still unknown. */
  readonly holdBack?: number;
  readonly addresses: AddressReader;
}

/** A record whose host address is not known yet. */
interface Held {
  readonly src: SeenAddress;
  readonly dst: SeenAddress;
  readonly rec: RecordFields;
}

interface RecordFields {
  readonly host: string;
  readonly protocol: SeenProtocol;
  readonly sport: number;
  readonly dport: number;
  readonly packets: number;
  readonly bytes?: number;
  readonly start?: number;
  readonly action: string;
  readonly flags?: number;
  readonly ref: LineRef;
}

/** Inference state of one interface and address family. */
interface HostState {
  readonly host: string;
  /** The host's own addresses once known. */
  local?: Set<string>;
  held: Held[];
  counts: Map<string, number>;
}

/** One resolved record (observation) or a note about records that could not be attributed. */
export type FlowLogEvent = { readonly kind: 'observation'; readonly observation: Observation } | { readonly kind: 'unattributed'; readonly ref: LineRef; readonly why: string };

/**
 * A streaming reader of one flow-log input. `push(line, n)` returns what the line is (an
 * observation, or why not) plus any held-back records the line made attributable; `finish()`
 * releases what is still held.
 */
export class FlowLogReader {
  private fields: readonly string[];
  private index: Map<string, number>;
  private readonly hosts = new Map<string, HostState>();
  private readonly holdBack: number;
  /** ICMP and other port-less protocols: who sent first between two addresses (bounded). */
  private readonly openers = new Map<string, string>();

  public constructor(private readonly options: FlowLogOptions) {
    this.fields = options.format !== undefined ? parseFlowLogFormat(options.format) : [...FLOW_LOG_V2_FIELDS];
    this.index = new Map(this.fields.map((f, i) => [f, i]));
    this.holdBack = options.holdBack ?? 4096;
  }

  public push(text: string, line: number): { result: LineResult | { kind: 'held' }; events: FlowLogEvent[] } {
    const tokens = text.trim().split(/\s+/);
    if (text.trim() === '') return { result: { kind: 'foreign', why: 'blank line' }, events: [] };
    if (isHeader(tokens)) {
      try {
        this.fields = parseFlowLogFormat(text);
        this.index = new Map(this.fields.map((f, i) => [f, i]));
        return { result: { kind: 'skipped', why: 'header line' }, events: [] };
      } catch (e) {
        return { result: { kind: 'malformed', why: (e as TwinwallError).problem }, events: [] };
      }
    }
    if (tokens.length !== this.fields.length) {
      return { result: { kind: 'malformed', why: `${tokens.length} fields where the format has ${this.fields.length}` }, events: [] };
    }
    const get = (name: string): string | undefined => {
      const i = this.index.get(name);
      return i === undefined ? undefined : tokens[i];
    };
    const status = get('log-status');
    if (status === 'NODATA' || status === 'SKIPDATA') return { result: { kind: 'skipped', why: `log-status ${status}` }, events: [] };
    if (status !== undefined && status !== 'OK') return { result: { kind: 'malformed', why: `log-status ${JSON.stringify(status)}` }, events: [] };
    const version = get('version');
    if (version !== undefined && !/^\d+$/.test(version)) return { result: { kind: 'malformed', why: `version ${JSON.stringify(version)} is not a number` }, events: [] };

    const src = this.options.addresses.read(get('srcaddr') as string);
    const dst = this.options.addresses.read(get('dstaddr') as string);
    if (!src || !dst) return { result: { kind: 'malformed', why: 'srcaddr/dstaddr is not an address' }, events: [] };
    if (src.family !== dst.family) return { result: { kind: 'malformed', why: 'srcaddr and dstaddr are of different families' }, events: [] };
    const protoText = get('protocol') as string;
    if (!/^\d{1,3}$/.test(protoText) || Number(protoText) > 255) return { result: { kind: 'malformed', why: `protocol ${JSON.stringify(protoText)} is not an IP protocol number` }, events: [] };
    const protocol = PROTOCOL_NUMBERS[Number(protoText)] ?? Number(protoText);
    const sport = num(get('srcport'));
    const dport = num(get('dstport'));
    if (sport === undefined || dport === undefined || sport > 65535 || dport > 65535) return { result: { kind: 'malformed', why: 'srcport/dstport is not a port' }, events: [] };
    const packets = num(get('packets'));
    const bytes = num(get('bytes'));
    const start = num(get('start'));
    const flags = num(get('tcp-flags'));
    const instance = get('instance-id');
    const eni = get('interface-id');
    const host = this.options.forceHost ?? (instance !== undefined && instance !== '-' ? instance : eni !== undefined && eni !== '-' ? eni : this.options.defaultHost);
    const ref: LineRef = { source: this.options.source, line, text };
    const rec: RecordFields = {
      host,
      protocol,
      sport,
      dport,
      packets: packets ?? 0,
      ...(bytes !== undefined ? { bytes } : {}),
      ...(start !== undefined ? { start } : {}),
      action: get('action') ?? 'ACCEPT',
      ...(flags !== undefined ? { flags } : {}),
      ref,
    };

    // The host's own address: flow-direction, declared CIDRs, or inferred.
    const direction = get('flow-direction');
    if (direction === 'ingress' || direction === 'egress') {
      const local = direction === 'ingress' ? dst : src;
      const pktSrc = this.options.addresses.read(get('pkt-srcaddr') ?? '-');
      if (direction === 'egress' && pktSrc && pktSrc.text !== src.text) {
        return { result: { kind: 'observation', observation: spoofObservation(rec, pktSrc, dst) }, events: [] };
      }
      return { result: { kind: 'observation', observation: this.observe(rec, src, dst, local === src ? 'src' : 'dst') }, events: [] };
    }
    const declared = this.options.localCidrs ?? [];
    if (declared.length > 0) {
      const isLocal = (a: SeenAddress): boolean => declared.some((c) => c.family === a.family && a.value >= c.first && a.value <= c.last);
      if (isLocal(src) !== isLocal(dst)) return { result: { kind: 'observation', observation: this.observe(rec, src, dst, isLocal(src) ? 'src' : 'dst') }, events: [] };
    }
    const state = this.state(host, src.family);
    if (state.local) {
      const side = state.local.has(src.text) ? 'src' : state.local.has(dst.text) ? 'dst' : undefined;
      if (side === undefined) return { result: { kind: 'malformed', why: `neither ${src.text} nor ${dst.text} is ${host}'s address (${[...state.local].join(', ')}); give --local or the flow-direction field` }, events: [] };
      return { result: { kind: 'observation', observation: this.observe(rec, src, dst, side) }, events: [] };
    }
    state.held.push({ src, dst, rec });
    state.counts.set(src.text, (state.counts.get(src.text) ?? 0) + 1);
    state.counts.set(dst.text, (state.counts.get(dst.text) ?? 0) + 1);
    const n = state.held.length;
    const events = (n & (n - 1)) === 0 || n >= this.holdBack ? this.tryResolve(state, n >= this.holdBack) : [];
    return { result: { kind: 'held' }, events };
  }

  /** Release everything still held back (end of input). */
  public finish(): FlowLogEvent[] {
    const out: FlowLogEvent[] = [];
    for (const state of this.hosts.values()) if (!state.local) out.push(...this.tryResolve(state, true));
    return out;
  }

  /**
   * Flow logs carry no ICMP type, so a ping's request and reply look alike: the first record
   * between two addresses is taken as the opener, the reverse one as its reply.
   */
  private observe(rec: RecordFields, src: SeenAddress, dst: SeenAddress, localSide: 'src' | 'dst'): Observation {
    if (rec.protocol === 'tcp' || rec.protocol === 'udp') return observe(rec, src, dst, localSide);
    const pair = `${rec.host}|${rec.protocol}|${src.text < dst.text ? `${src.text}|${dst.text}` : `${dst.text}|${src.text}`}`;
    let opener = this.openers.get(pair);
    if (opener === undefined) {
      if (this.openers.size >= 10000) this.openers.clear();
      this.openers.set(pair, (opener = src.text));
    }
    return observe(rec, src, dst, localSide, opener === src.text);
  }

  private state(host: string, family: number): HostState {
    const key = `${host}|${family}`;
    let s = this.hosts.get(key);
    if (!s) this.hosts.set(key, (s = { host, held: [], counts: new Map() }));
    return s;
  }

  /**
   * Per address family, the host's address is the one in every held record (or, with secondary
   * addresses, each address in more than half of them). Two addresses in every record (a single
   * peer) cannot be told apart: wait, and at the end report those records as unattributed.
   */
  private tryResolve(state: HostState, final: boolean): FlowLogEvent[] {
    const host = state.host;
    const n = state.held.length;
    if (n === 0) return [];
    const ranked = [...state.counts.entries()].sort((a, b) => b[1] - a[1]);
    const everywhere = ranked.filter(([, c]) => c === n);
    let local: Set<string> | undefined;
    if (everywhere.length === 1) local = new Set([everywhere[0][0]]);
    else if (everywhere.length === 0 && n >= 8) {
      const majority = ranked.filter(([, c]) => c * 2 > n).map(([a]) => a);
      const covers = majority.length > 0 && state.held.every((h) => majority.includes(h.src.text) !== majority.includes(h.dst.text));
      if (covers) local = new Set(majority);
    }
    if (!local) {
      if (!final) return [];
      const why =
        everywhere.length === 2
          ? `interface ${host} was only seen talking to one peer (${everywhere.map(([a]) => a).join(' and ')}), so its own address is unknown; give --local CIDR or log the flow-direction field`
          : `cannot tell interface ${host}'s own address; give --local CIDR or log the flow-direction field`;
      const out = state.held.map((h): FlowLogEvent => ({ kind: 'unattributed', ref: h.rec.ref, why }));
      state.held = [];
      state.counts.clear();
      return out;
    }
    state.local = local;
    const out: FlowLogEvent[] = [];
    for (const h of state.held) {
      const side = local.has(h.src.text) ? 'src' : local.has(h.dst.text) ? 'dst' : undefined;
      if (side === undefined) out.push({ kind: 'unattributed', ref: h.rec.ref, why: `neither address is ${host}'s (${[...local].join(', ')})` });
      else out.push({ kind: 'observation', observation: this.observe(h.rec, h.src, h.dst, side) });
    }
    state.held = [];
    state.counts.clear();
    return out;
  }
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/** Which side of a record is the server (the end that did not open the connection). */
export function serverSide(protocol: SeenProtocol, sport: number, dport: number, flags?: number): { side: 'src' | 'dst'; guessed: boolean } {
  if (protocol === 'tcp' && flags !== undefined) {
    if (flags === 2) return { side: 'dst', guessed: false };
    if (flags === 18) return { side: 'src', guessed: false };
  }
  if (protocol === 'tcp' || protocol === 'udp') {
    const known = CATALOG_PORTS[protocol];
    if (known.has(dport) && !known.has(sport)) return { side: 'dst', guessed: false };
    if (known.has(sport) && !known.has(dport)) return { side: 'src', guessed: false };
    if (dport < 1024 && sport >= 1024) return { side: 'dst', guessed: false };
    if (sport < 1024 && dport >= 1024) return { side: 'src', guessed: false };
    return { side: dport <= sport ? 'dst' : 'src', guessed: true };
  }
  return { side: 'dst', guessed: true };
}

function timeOf(rec: RecordFields): Observation['time'] {
  if (rec.start === undefined) return undefined;
  const ms = rec.start * 1000;
  return { text: new Date(ms).toISOString(), epochMs: ms };
}

function observe(rec: RecordFields, src: SeenAddress, dst: SeenAddress, localSide: 'src' | 'dst', srcOpened = true): Observation {
  const ports = rec.protocol === 'tcp' || rec.protocol === 'udp';
  const server = ports ? serverSide(rec.protocol, rec.sport, rec.dport, rec.flags) : { side: srcOpened ? ('dst' as const) : ('src' as const), guessed: true };
  // ICMP and other protocols: the first sender between the two addresses opened it.
  const opener = server.side === 'dst' ? 'src' : 'dst';
  const local = localSide === 'src' ? src : dst;
  const remote = localSide === 'src' ? dst : src;
  const time = timeOf(rec);
  return {
    host: rec.host,
    direction: opener === localSide ? 'egress' : 'ingress',
    protocol: rec.protocol,
    ...(ports ? { port: server.side === 'dst' ? rec.dport : rec.sport } : {}),
    remote,
    local,
    reason: 'flowlog',
    verdict: rec.action,
    packets: rec.packets,
    ...(rec.bytes !== undefined ? { bytes: rec.bytes } : {}),
    newFlow: server.side === 'dst',
    tuple: `${rec.protocol}|${src.text}|${rec.sport}|${dst.text}|${rec.dport}`,
    rejected: rec.action === 'REJECT',
    guessed: server.guessed,
    ...(time ? { time } : {}),
    ref: rec.ref,
  };
}

function spoofObservation(rec: RecordFields, forged: SeenAddress, dst: SeenAddress): Observation {
  const time = timeOf(rec);
  return {
    host: rec.host,
    direction: 'egress',
    protocol: rec.protocol,
    ...(rec.protocol === 'tcp' || rec.protocol === 'udp' ? { port: rec.dport } : {}),
    remote: dst,
    local: forged,
    reason: 'spoof',
    verdict: rec.action,
    packets: rec.packets,
    ...(rec.bytes !== undefined ? { bytes: rec.bytes } : {}),
    newFlow: true,
    tuple: `${rec.protocol}|${forged.text}|${rec.sport}|${dst.text}|${rec.dport}`,
    rejected: rec.action === 'REJECT',
    guessed: false,
    ...(time ? { time } : {}),
    ref: rec.ref,
  };
}
