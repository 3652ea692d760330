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
 * A record is read from its bytes: fields split on ASCII whitespace (a line with other bytes is
 * split as JavaScript's \s does, then read the same way), numbers and IPv4 addresses read in
 * place, interface and instance ids interned. Pure: lines in, observations out; never throws on a
 * line.
 */
import { Cidr } from '../address';
import { SERVICES } from '../catalog';
import { TwinwallError, show } from '../errors';
import { ByteInterner, bytesEqual, digits, isSpace, latin1, utf8 } from './bytes';
import { Addr, AddressReader, LINE, LineKind, LineReader, LineRecord, LineResult, Observation, SeenProtocol, keyText } from './observation';
import { protocolName } from '../port';

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

/** A field name, or `${name}`, as in a header line or a format string. */
function fieldName(token: string): string {
  return token.replace(/^\$\{(.*)\}$/, '$1');
}

/** True for a line made only of flow-log field names: a header. */
function isHeader(tokens: readonly string[]): boolean {
  return tokens.length >= 3 && tokens.every((t) => FLOW_LOG_FIELDS.has(fieldName(t)));
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

/** Where resolved held-back records go (and those that could not be attributed). */
export interface FlowLogSink {
  observation(rec: LineRecord): void;
  unattributed(rec: LineRecord, why: string): void;
}

/** Inference state of one interface and address family. */
interface HostState {
  readonly host: string;
  /** The host's own addresses (address keys) once known. */
  local?: Set<number | string>;
  /** Records held back (copies owning their text). */
  held: LineRecord[];
  /** The records they stand for (a query's row stands for several). */
  weight: number;
  /** How many held records each address (key) is in. */
  counts: Map<number | string, number>;
}

/** flow-direction of a record: absent (or neither word), ingress, egress. */
export const NO_DIRECTION = 0;
export const INGRESS = 1;
export const EGRESS = 2;

/** One resolved record (observation) or a note about records that could not be attributed. */
export type FlowLogEvent = { readonly kind: 'observation'; readonly observation: Observation } | { readonly kind: 'unattributed'; readonly ref: Observation['ref']; readonly why: string };

/** Token indexes of the fields learn reads, -1 when the format lacks one. */
interface FieldIndex {
  readonly version: number;
  readonly interface: number;
  readonly instance: number;
  readonly src: number;
  readonly dst: number;
  readonly sport: number;
  readonly dport: number;
  readonly protocol: number;
  readonly packets: number;
  readonly bytes: number;
  readonly start: number;
  readonly action: number;
  readonly status: number;
  readonly flags: number;
  readonly direction: number;
  readonly pktSrc: number;
}

function fieldIndex(fields: readonly string[]): FieldIndex {
  // The last of a repeated name counts, as a name → position map keeps it.
  const at = (name: string): number => fields.lastIndexOf(name);
  return {
    version: at('version'),
    interface: at('interface-id'),
    instance: at('instance-id'),
    src: at('srcaddr'),
    dst: at('dstaddr'),
    sport: at('srcport'),
    dport: at('dstport'),
    protocol: at('protocol'),
    packets: at('packets'),
    bytes: at('bytes'),
    start: at('start'),
    action: at('action'),
    status: at('log-status'),
    flags: at('tcp-flags'),
    direction: at('flow-direction'),
    pktSrc: at('pkt-srcaddr'),
  };
}

/**
 * A streaming reader of one flow-log input. `read(buf, start, end, line, rec)` says what a line is
 * (an observation in `rec`, held back, or why not) and hands records it made attributable to the
 * sink; `finish()` releases what is still held. `push(text, line)` reads one line given as text.
 */
export class FlowLogReader implements LineReader {
  public why = '';
  private fields: readonly string[];
  private idx: FieldIndex;
  private readonly hosts = new Map<string, [HostState | undefined, HostState | undefined]>();
  /** Every state, in the order made (end of input releases them in that order). */
  private readonly states: HostState[] = [];
  private readonly holdBack: number;
  /** ICMP and other port-less protocols: who sent first between two addresses (bounded). */
  private readonly openers = new Map<string, number | string>();
  private starts = new Int32Array(64);
  private ends = new Int32Array(64);
  /** The last tokenized line was ASCII only. */
  private ascii = true;
  private readonly names = new ByteInterner<string>((b, s, e) => utf8(b, s, e), 65536);
  private readonly headerWords = new ByteInterner<boolean>((b, s, e) => FLOW_LOG_FIELDS.has(fieldName(utf8(b, s, e))), 1024);
  private readonly pktSrc = new Addr();
  /** Declared local blocks: IPv4 as unsigned ranges, IPv6 as bigints. */
  private readonly declared4: [number, number][] = [];
  private readonly declared6: [bigint, bigint][] = [];
  private sink: FlowLogSink = { observation: () => undefined, unattributed: () => undefined };

  public constructor(private readonly options: FlowLogOptions) {
    this.fields = options.format !== undefined ? parseFlowLogFormat(options.format) : [...FLOW_LOG_V2_FIELDS];
    this.idx = fieldIndex(this.fields);
    this.holdBack = options.holdBack ?? 4096;
    for (const c of options.localCidrs ?? []) {
      if (c.family === 4) this.declared4.push([Number(c.first), Number(c.last)]);
      else this.declared6.push([c.first, c.last]);
    }
  }

  /** Where records that become attributable later go. */
  public onRelease(sink: FlowLogSink): void {
    this.sink = sink;
  }

  /** Split [start, end) into tokens; their count (all of them, even past the ones kept). */
  private tokenize(buf: Uint8Array, start: number, end: number): number {
    if (this.starts.length < this.fields.length + 1) {
      this.starts = new Int32Array(this.fields.length + 1);
      this.ends = new Int32Array(this.fields.length + 1);
    }
    const cap = this.starts.length;
    let n = 0;
    let i = start;
    let high = 0;
    for (;;) {
      while (i < end && isSpace(buf[i])) i++;
      if (i >= end) break;
      const s = i;
      for (; i < end; i++) {
        const c = buf[i];
        if (c <= 32 && (c === 32 || (c >= 9 && c <= 13))) break;
        high |= c;
      }
      if (n < cap) {
        this.starts[n] = s;
        this.ends[n] = i;
      }
      n++;
    }
    this.ascii = high < 0x80;
    return n;
  }

  private bad(why: string): LineKind {
    this.why = why;
    return LINE.malformed;
  }

  private token(i: number, buf: Uint8Array): string {
    return utf8(buf, this.starts[i], this.ends[i]);
  }

  /** `num()` of a field: its digits as a number, -1 when absent or not only digits. */
  private num(buf: Uint8Array, i: number): number {
    return i < 0 ? -1 : digits(buf, this.starts[i], this.ends[i]);
  }

  public read(buf: Uint8Array, start: number, end: number, line: number, rec: LineRecord): LineKind {
    rec.at(buf, start, end, line);
    rec.moment.source = this.options.source;
    let b = buf;
    let n = this.tokenize(buf, start, end);
    if (!this.ascii) {
      // Split as String.prototype.split(/\s+/) does (Unicode spaces too), then read the fields.
      b = Buffer.from(utf8(buf, start, end).trim().split(/\s+/).join(' '), 'utf8');
      n = this.tokenize(b, 0, b.length);
    }
    if (n === 0) {
      this.why = 'blank line';
      return LINE.foreign;
    }
    if (n >= 3 && this.headerWords.get(b, this.starts[0], this.ends[0])) {
      const tokens = Array.from({ length: n }, (_, i) => this.token(i, b));
      if (isHeader(tokens)) {
        try {
          this.fields = parseFlowLogFormat(rec.text());
          this.idx = fieldIndex(this.fields);
          this.why = 'header line';
          return LINE.skipped;
        } catch (err) {
          return this.bad((err as TwinwallError).problem);
        }
      }
    }
    if (n !== this.fields.length) return this.bad(`${n} fields where the format has ${this.fields.length}`);
    const x = this.idx;
    if (x.status >= 0) {
      const ss = this.starts[x.status];
      const se = this.ends[x.status];
      if (bytesEqual(b, ss, se, 'NODATA') || bytesEqual(b, ss, se, 'SKIPDATA')) {
        this.why = `log-status ${latin1(b, ss, se)}`;
        return LINE.skipped;
      }
      if (!bytesEqual(b, ss, se, 'OK')) return this.bad(`log-status ${JSON.stringify(this.token(x.status, b))}`);
    }
    if (x.version >= 0 && this.num(b, x.version) < 0) return this.bad(`version ${JSON.stringify(this.token(x.version, b))} is not a number`);

    const addresses = this.options.addresses;
    const src = rec.src;
    const dst = rec.dst;
    if (!addresses.readInto(b, this.starts[x.src], this.ends[x.src], src) || !addresses.readInto(b, this.starts[x.dst], this.ends[x.dst], dst)) return this.bad('srcaddr/dstaddr is not an address');
    if (src.family !== dst.family) return this.bad('srcaddr and dstaddr are of different families');
    const protoNumber = this.ends[x.protocol] - this.starts[x.protocol] <= 3 ? this.num(b, x.protocol) : -1;
    if (protoNumber < 0 || protoNumber > 255) return this.bad(`protocol ${JSON.stringify(this.token(x.protocol, b))} is not an IP protocol number`);
    const protocol = protocolName(protoNumber) ?? protoNumber;
    const sport = this.num(b, x.sport);
    const dport = this.num(b, x.dport);
    if (sport < 0 || dport < 0 || sport > 65535 || dport > 65535) return this.bad('srcport/dstport is not a port');
    const packets = this.num(b, x.packets);
    const start_ = this.num(b, x.start);
    // Seconds since the epoch that a date can hold (±8.64e15 ms).
    if (start_ > 8.64e12) return this.bad(`start ${JSON.stringify(this.token(x.start, b))} is not a time`);
    const host =
      this.options.forceHost ??
      (x.instance >= 0 && !this.dash(b, x.instance) ? this.names.get(b, this.starts[x.instance], this.ends[x.instance]) : x.interface >= 0 && !this.dash(b, x.interface) ? this.names.get(b, this.starts[x.interface], this.ends[x.interface]) : this.options.defaultHost);

    rec.kind = 'flow';
    rec.host = host;
    rec.protocol = protocol;
    rec.protoText = '';
    rec.sport = sport;
    rec.dport = dport;
    rec.packets = packets < 0 ? 0 : packets;
    rec.bytes = this.num(b, x.bytes);
    rec.verdict = x.action >= 0 ? this.names.get(b, this.starts[x.action], this.ends[x.action]) : 'ACCEPT';
    rec.flags = this.num(b, x.flags);
    rec.uid = -1;
    rec.icmpType = -1;
    rec.icmpCode = -1;
    if (start_ >= 0) rec.moment.setIso(start_ * 1000);
    else rec.moment.clear();

    rec.weight = 1;
    rec.code = -1;
    rec.ranged = false;

    let direction = NO_DIRECTION;
    let pkt: Addr | undefined;
    if (x.direction >= 0) {
      const ds = this.starts[x.direction];
      const de = this.ends[x.direction];
      direction = bytesEqual(b, ds, de, 'egress') ? EGRESS : bytesEqual(b, ds, de, 'ingress') ? INGRESS : NO_DIRECTION;
      if (direction === EGRESS && x.pktSrc >= 0 && addresses.readInto(b, this.starts[x.pktSrc], this.ends[x.pktSrc], this.pktSrc)) pkt = this.pktSrc;
    }
    return this.place(rec, direction, pkt);
  }

  /**
   * Attribute a record to its host's side and fill its observation fields: a forged source
   * (egress with a pkt-srcaddr that is not the srcaddr), else the host's end by flow-direction, a
   * declared block, or inference (held back until the host's address is known). Shared by the
   * raw records and the rows of a query's result.
   */
  public place(rec: LineRecord, direction: number, pkt: Addr | undefined): LineKind {
    const src = rec.src;
    const dst = rec.dst;
    if (direction === EGRESS && pkt !== undefined && !pkt.equals(src)) {
      spoof(rec, pkt);
      return LINE.observation;
    }
    if (direction !== NO_DIRECTION) {
      // The host's end is the destination of ingress records (the source when both are one address).
      this.observe(rec, direction === EGRESS || src.equals(dst) ? 'src' : 'dst');
      return LINE.observation;
    }
    if (this.declared4.length + this.declared6.length > 0) {
      const srcLocal = this.isDeclared(src);
      if (srcLocal !== this.isDeclared(dst)) {
        this.observe(rec, srcLocal ? 'src' : 'dst');
        return LINE.observation;
      }
    }
    const host = rec.host;
    const state = this.state(host, src.family);
    if (state.local) {
      const side = state.local.has(src.key) ? 'src' : state.local.has(dst.key) ? 'dst' : undefined;
      if (side === undefined) return this.bad(`neither ${src.text} nor ${dst.text} is ${host}'s address (${[...state.local].map(keyText).join(', ')}); give --local or the flow-direction field`);
      this.observe(rec, side);
      return LINE.observation;
    }
    state.held.push(rec.clone());
    state.weight += rec.weight;
    state.counts.set(src.key, (state.counts.get(src.key) ?? 0) + rec.weight);
    state.counts.set(dst.key, (state.counts.get(dst.key) ?? 0) + rec.weight);
    const held = state.held.length;
    if ((held & (held - 1)) === 0 || held >= this.holdBack) this.tryResolve(state, held >= this.holdBack);
    return LINE.held;
  }

  private dash(b: Uint8Array, i: number): boolean {
    return this.ends[i] - this.starts[i] === 1 && b[this.starts[i]] === 45;
  }

  private isDeclared(a: Addr): boolean {
    if (a.family === 4) {
      const v = a.v4 >>> 0;
      return this.declared4.some(([lo, hi]) => v >= lo && v <= hi);
    }
    const v = a.value;
    return this.declared6.some(([lo, hi]) => v >= lo && v <= hi);
  }

  /** Read one line given as text: what it is, and the records it made attributable. */
  public push(text: string, line: number): { result: LineResult | { kind: 'held' }; events: FlowLogEvent[] } {
    const events: FlowLogEvent[] = [];
    this.sink = eventSink(events);
    const rec = new LineRecord();
    const buf = Buffer.from(text, 'utf8');
    const kind = this.read(buf, 0, buf.length, line, rec);
    rec.str = text;
    const result: LineResult | { kind: 'held' } =
      kind === LINE.observation ? { kind: 'observation', observation: rec.observation() } : kind === LINE.held ? { kind: 'held' } : { kind: kind === LINE.skipped ? 'skipped' : kind === LINE.foreign ? 'foreign' : 'malformed', why: this.why };
    return { result, events };
  }

  /** Release everything still held back (end of input) to the sink. */
  public release(): void {
    for (const state of this.states) if (!state.local) this.tryResolve(state, true);
  }

  /** Release everything still held back (end of input), as events. */
  public finish(): FlowLogEvent[] {
    const events: FlowLogEvent[] = [];
    this.sink = eventSink(events);
    this.release();
    return events;
  }

  /**
   * Flow logs carry no ICMP type, so a ping's request and reply look alike: the first record
   * between two addresses is taken as the opener, the reverse one as its reply.
   */
  private observe(rec: LineRecord, localSide: 'src' | 'dst'): void {
    if (rec.protocol === 'tcp' || rec.protocol === 'udp') return observe(rec, localSide);
    const a = rec.src.text;
    const z = rec.dst.text;
    const pair = `${rec.host}|${rec.protocol}|${a < z ? `${a}|${z}` : `${z}|${a}`}`;
    let opener = this.openers.get(pair);
    if (opener === undefined) {
      if (this.openers.size >= 10000) this.openers.clear();
      this.openers.set(pair, (opener = rec.src.key));
    }
    observe(rec, localSide, opener === rec.src.key);
  }

  private state(host: string, family: number): HostState {
    let pair = this.hosts.get(host);
    if (!pair) this.hosts.set(host, (pair = [undefined, undefined]));
    const i = family === 4 ? 0 : 1;
    let s = pair[i];
    if (!s) {
      pair[i] = s = { host, held: [], weight: 0, counts: new Map() };
      this.states.push(s);
    }
    return s;
  }

  /**
   * Per address family, the host's address is the one in every held record (or, with secondary
   * addresses, each address in more than half of them). Two addresses in every record (a single
   * peer) cannot be told apart: wait, and at the end report those records as unattributed.
   */
  private tryResolve(state: HostState, final: boolean): void {
    const host = state.host;
    const n = state.weight;
    if (state.held.length === 0) return;
    const ranked = [...state.counts.entries()].sort((a, b) => b[1] - a[1]);
    const everywhere = ranked.filter(([, c]) => c === n);
    let local: Set<number | string> | undefined;
    if (everywhere.length === 1) local = new Set([everywhere[0][0]]);
    else if (everywhere.length === 0 && n >= 8) {
      const majority = ranked.filter(([, c]) => c * 2 > n).map(([a]) => a);
      const covers = majority.length > 0 && state.held.every((h) => majority.includes(h.src.key) !== majority.includes(h.dst.key));
      if (covers) local = new Set(majority);
    }
    const held = state.held;
    if (!local) {
      if (!final) return;
      const why =
        everywhere.length === 2
          ? `interface ${host} was only seen talking to one peer (${everywhere.map(([a]) => keyText(a)).join(' and ')}), so its own address is unknown; give --local CIDR or log the flow-direction field`
          : `cannot tell interface ${host}'s own address; give --local CIDR or log the flow-direction field`;
      state.held = [];
      state.weight = 0;
      state.counts.clear();
      for (const h of held) this.sink.unattributed(h, why);
      return;
    }
    state.local = local;
    state.held = [];
    state.weight = 0;
    state.counts.clear();
    for (const h of held) {
      const side = local.has(h.src.key) ? 'src' : local.has(h.dst.key) ? 'dst' : undefined;
      if (side === undefined) this.sink.unattributed(h, `neither address is ${host}'s (${[...local].map(keyText).join(', ')})`);
      else {
        this.observe(h, side);
        this.sink.observation(h);
      }
    }
  }
}

function eventSink(events: FlowLogEvent[]): FlowLogSink {
  return {
    observation: (r) => events.push({ kind: 'observation', observation: r.observation() }),
    unattributed: (r, why) => events.push({ kind: 'unattributed', ref: { source: r.source, line: r.line, text: r.text() }, why }),
  };
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

/** serverSide() without an object: 0 dst, 1 src, +2 when guessed. */
function serverCode(protocol: SeenProtocol, sport: number, dport: number, flags: number): number {
  if (protocol === 'tcp' && flags >= 0) {
    if (flags === 2) return 0;
    if (flags === 18) return 1;
  }
  const known = protocol === 'tcp' ? CATALOG_PORTS.tcp : CATALOG_PORTS.udp;
  const d = known.has(dport);
  const s = known.has(sport);
  if (d && !s) return 0;
  if (s && !d) return 1;
  if (dport < 1024 && sport >= 1024) return 0;
  if (sport < 1024 && dport >= 1024) return 1;
  return dport <= sport ? 2 : 3;
}

/** Fill the observation fields of a flow-log record whose local side is known. */
function observe(rec: LineRecord, localSide: 'src' | 'dst', srcOpened = true): void {
  const ports = rec.protocol === 'tcp' || rec.protocol === 'udp';
  // ICMP and other protocols: the first sender between the two addresses opened it.
  const code = ports ? (rec.code >= 0 ? rec.code : serverCode(rec.protocol, rec.sport, rec.dport, rec.flags)) : srcOpened ? 2 : 3;
  const serverDst = (code & 1) === 0;
  const opener = serverDst ? 'src' : 'dst';
  const srcLocal = localSide === 'src';
  rec.local.set(srcLocal ? rec.src : rec.dst);
  rec.remote.set(srcLocal ? rec.dst : rec.src);
  rec.direction = opener === localSide ? 'egress' : 'ingress';
  rec.port = ports ? (serverDst ? rec.dport : rec.sport) : -1;
  rec.reason = 'flowlog';
  rec.newFlow = serverDst;
  rec.rejected = rec.verdict === 'REJECT';
  rec.guessed = code >= 2;
}

function spoof(rec: LineRecord, forged: Addr): void {
  rec.direction = 'egress';
  rec.port = rec.protocol === 'tcp' || rec.protocol === 'udp' ? rec.dport : -1;
  rec.remote.set(rec.dst);
  rec.local.set(forged);
  rec.reason = 'spoof';
  rec.newFlow = true;
  rec.rejected = rec.verdict === 'REJECT';
  rec.guessed = false;
}
