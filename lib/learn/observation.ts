/**
 * What `twinwall learn` reads out of a log line: one observation of traffic at one host, in the
 * host's point of view (ingress: the remote end opened it; egress: the host did). Both parsers
 * (kernel LOG lines, VPC Flow Logs) produce these; the aggregator consumes nothing else.
 *
 * Two forms of the same thing: `LineRecord`, one mutable record per reader that the parsers fill
 * for every line straight from its bytes (no object, no string per line), and `Observation`, a
 * plain value made from it for callers that want one line's result (parseKernelLine,
 * FlowLogReader.push, the tests).
 */
import * as ipaddr from 'ipaddr.js';
import { Family } from '../address';
import { Direction } from '../flow';
import { ByteInterner, ipv4, latin1, utf8 } from './bytes';

/** An address as read from a log: family, numeric value, canonical text. */
export interface SeenAddress {
  readonly family: Family;
  readonly value: bigint;
  readonly text: string;
}

/** The protocol of an observation: the four twinwall knows, or an IP protocol number. */
export type SeenProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | number;

/** When a line was logged, as far as the line says. */
export interface SeenTime {
  /** The timestamp as written (normalised spacing), for reports. */
  readonly text: string;
  /** Milliseconds since the epoch, when the line carries a full date. */
  readonly epochMs?: number;
  /** Seconds since boot (dmesg, /dev/kmsg), when that is all the line carries. */
  readonly bootSeconds?: number;
}

/** Where an observation came from: input name, 1-based line number, the line itself. */
export interface LineRef {
  readonly source: string;
  readonly line: number;
  readonly text: string;
}

/**
 * Why the audited rules logged a packet. `policy`: no rule admitted it (the final drop chains);
 * `invalid`: conntrack called it INVALID; `spoof`: the source was not one of the host's addresses;
 * `imds`: instance-metadata access the policy does not allow; `flowlog`: a flow-log record;
 * `stray`: a policy line for a packet that opens no connection (TCP without SYN, an ICMP error or
 * reply) — a late packet of a connection conntrack no longer knows.
 */
export type SeenReason = 'policy' | 'invalid' | 'spoof' | 'imds' | 'flowlog' | 'stray';

/** The connection a line belongs to (its 5-tuple as the line wrote it), to tell retransmissions from new flows. */
export interface SeenConnection {
  /** The protocol as the line wrote it ("TCP", "6"). */
  readonly protocol: string;
  readonly src: SeenAddress;
  readonly sport?: number;
  readonly dst: SeenAddress;
  /** Destination port, or the ICMP type. */
  readonly dport?: number;
}

export interface Observation {
  /** Which parser read it: kernel LOG lines or VPC Flow Logs. */
  readonly kind: 'kernel' | 'flow';
  /** Host name (twinwall host, OS hostname, instance or interface id, after aliases). */
  readonly host: string;
  readonly direction: Direction | 'forward';
  readonly protocol: SeenProtocol;
  /** The service port (TCP/UDP): the port the side that opened the connection sent to. */
  readonly port?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** The other end of the flow. */
  readonly remote: SeenAddress;
  /** The host's own end (its source on egress, its destination on ingress). */
  readonly local: SeenAddress;
  readonly reason: SeenReason;
  /** The LOG prefix's verdict word ("audit", "drop"), or the flow log's action ("ACCEPT"). */
  readonly verdict: string;
  /** Local user id of the sending socket (kernel egress lines with --log-uid). */
  readonly uid?: number;
  readonly packets: number;
  readonly bytes?: number;
  /** Counts as a new flow (false for a flow-log record of the replying direction). */
  readonly newFlow: boolean;
  /** Kernel lines: the connection, so that a line repeating the previous one's is a retransmission. */
  readonly connection?: SeenConnection;
  /** The network wall rejected it (flow log action REJECT). */
  readonly rejected: boolean;
  /** The direction was guessed from the ports (flow logs without flow-direction or flags). */
  readonly guessed: boolean;
  readonly time?: SeenTime;
  readonly ref: LineRef;
}

/** Outcome of reading one line. */
export type LineResult =
  | { readonly kind: 'observation'; readonly observation: Observation }
  /** A line that is not for learn (another kernel message, a journal marker, a blank line). */
  | { readonly kind: 'foreign'; readonly why: string }
  /** A line that looks like ours but cannot be read. */
  | { readonly kind: 'malformed'; readonly why: string }
  /** A well-formed record with nothing to learn from (flow log NODATA/SKIPDATA, a header). */
  | { readonly kind: 'skipped'; readonly why: string };

/** What a line turned out to be (LineReader results). */
export const LINE = { observation: 0, foreign: 1, malformed: 2, skipped: 3, held: 4 } as const;
export type LineKind = (typeof LINE)[keyof typeof LINE];

/** A reader of lines into a LineRecord: the kind of the line, and `why` when it is not an observation. */
export interface LineReader {
  /** Why the last line was not an observation. */
  readonly why: string;
  read(buf: Uint8Array, start: number, end: number, line: number, rec: LineRecord): LineKind;
}

/**
 * A copy of `text` that does not keep the string it was cut from alive. V8 represents a substring
 * (slice, split, regex group) as a view into its parent: a cached string cut out of one line
 * would otherwise pin the whole chunk that line came from, and memory would grow with the input
 * instead of with what learn keeps.
 */
export function detach(text: string): string {
  return text.length < 13 ? text : (` ${text}`).slice(1);
}

/** The dotted quad of an unsigned 32-bit address. */
export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * IPv6 addresses inside learn are held as a compact key: their eight 16-bit groups as the eight
 * UTF-16 code units of a string (one short string per distinct address, cheap to hash and
 * compare). Value and canonical text are made from it when a report needs them.
 */
function compact6(groups: ArrayLike<number>): string {
  return String.fromCharCode(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7]);
}

function groups6(key: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push(key.charCodeAt(i));
  return out;
}

function value6(key: string): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 16n) | BigInt(key.charCodeAt(i));
  return v;
}

function text6(key: string): string {
  return new ipaddr.IPv6(groups6(key)).toRFC5952String();
}

/** The compact key of an IPv6 address value. */
function key6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return compact6(groups);
}

/**
 * One address of a record, without an object per line. `key` is what sets and maps hold: an IPv4
 * address as a signed 32-bit integer (a small integer to V8, no allocation), an IPv6 address as
 * its compact key.
 */
export class Addr {
  public family: Family = 4;
  /** IPv4: the address as a signed 32-bit integer (`>>> 0` for its value). */
  public v4 = 0;
  /** IPv6: the compact key. */
  public k6 = '';

  public get key(): number | string {
    return this.family === 4 ? this.v4 : this.k6;
  }

  public set(other: Addr): void {
    this.family = other.family;
    this.v4 = other.v4;
    this.k6 = other.k6;
  }

  public setSeen(a: SeenAddress): void {
    this.family = a.family;
    if (a.family === 4) this.v4 = Number(a.value) | 0;
    else this.k6 = key6(a.value);
  }

  /** Numeric value (for CIDR membership). */
  public get value(): bigint {
    return keyValue(this.key);
  }

  public get text(): string {
    return keyText(this.key);
  }

  public equals(other: Addr): boolean {
    return this.family === other.family && (this.family === 4 ? this.v4 === other.v4 : this.k6 === other.k6);
  }

  public seen(): SeenAddress {
    return { family: this.family, value: this.value, text: this.text };
  }
}

/** The canonical text of an address key (see Addr.key). */
export function keyText(key: number | string): string {
  return typeof key === 'number' ? ipv4Text(key >>> 0) : text6(key);
}

/** The numeric value of an address key. */
export function keyValue(key: number | string): bigint {
  return typeof key === 'number' ? BigInt(key >>> 0) : value6(key);
}

const TIME_NONE = 0;
const TIME_TEXT = 1;
const TIME_ISO = 2;
const TIME_BOOT = 3;

/**
 * When and where a line was seen, as a few numbers and at most one shared string, so that keeping
 * a flow's first and last sighting up to date costs no allocation: the timestamp's text is the
 * string as written (interned), the ISO form of an epoch (flow logs), or the boot seconds as the
 * kernel prints them (six decimals) — made into text only when a report asks.
 */
export class Moment {
  public epoch = NaN;
  public boot = NaN;
  public source = '';
  public line = 0;
  private textKind = TIME_NONE;
  private textStr = '';

  public clear(): void {
    this.epoch = NaN;
    this.boot = NaN;
    this.textKind = TIME_NONE;
    this.textStr = '';
  }

  /** A timestamp written as `text` (and perhaps read as an instant or boot seconds). */
  public setText(text: string, epoch = NaN, boot = NaN): void {
    this.textKind = TIME_TEXT;
    this.textStr = text;
    this.epoch = epoch;
    this.boot = boot;
  }

  /** An instant whose text is its ISO form (flow-log `start`). */
  public setIso(epoch: number): void {
    this.textKind = TIME_ISO;
    this.epoch = epoch;
    this.boot = NaN;
  }

  /** Seconds since boot as the kernel prints them ("1483.347048"), text "… s after boot". */
  public setBoot(seconds: number): void {
    this.textKind = TIME_BOOT;
    this.boot = seconds;
    this.epoch = NaN;
  }

  public setTime(t: SeenTime | undefined): void {
    if (t === undefined) this.clear();
    else this.setText(t.text, t.epochMs ?? NaN, t.bootSeconds ?? NaN);
  }

  public copy(from: Moment): void {
    this.epoch = from.epoch;
    this.boot = from.boot;
    this.source = from.source;
    this.line = from.line;
    this.textKind = from.textKind;
    this.textStr = from.textStr;
  }

  public get time(): SeenTime | undefined {
    const extra = { ...(this.epoch === this.epoch ? { epochMs: this.epoch } : {}), ...(this.boot === this.boot ? { bootSeconds: this.boot } : {}) };
    switch (this.textKind) {
      case TIME_TEXT:
        return { text: this.textStr, ...extra };
      case TIME_ISO:
        return { text: new Date(this.epoch).toISOString(), ...extra };
      case TIME_BOOT:
        return { text: `${this.boot.toFixed(6)} s after boot`, ...extra };
      default:
        return undefined;
    }
  }
}

/**
 * Order of two moments when their clocks are comparable (epoch, or boot time in one input);
 * undefined when they are not.
 */
export function momentOrder(a: Moment, b: Moment): number | undefined {
  if (a.epoch === a.epoch && b.epoch === b.epoch) return a.epoch - b.epoch;
  if (a.boot === a.boot && b.boot === b.boot && a.source === b.source) return a.boot - b.boot;
  return undefined;
}

/**
 * The record a parser fills for a line it reads: the observation's fields (see Observation), the
 * moment, and where the line's bytes are, so that its text is made only when something keeps it
 * (a sample, a problem report). One per reader, reused for every line.
 */
export class LineRecord {
  public kind: 'kernel' | 'flow' = 'kernel';
  public host = '';
  public direction: Direction | 'forward' = 'ingress';
  public protocol: SeenProtocol = 'tcp';
  /** Port, ICMP type and code, uid, bytes: -1 when absent. */
  public port = -1;
  public icmpType = -1;
  public icmpCode = -1;
  public readonly remote = new Addr();
  public readonly local = new Addr();
  public reason: SeenReason = 'policy';
  public verdict = '';
  public uid = -1;
  public packets = 0;
  public bytes = -1;
  public newFlow = true;
  public rejected = false;
  public guessed = false;
  /** Kernel lines: the connection (source, source port, destination, destination port or ICMP type; -1 when absent). */
  public protoText = '';
  public readonly src = new Addr();
  public sport = -1;
  public readonly dst = new Addr();
  public dport = -1;
  /** Flow logs: the tcp-flags field, -1 when absent. */
  public flags = -1;
  /** Flow logs: who opened it, when already known (0 the source, 1 the destination, +2 guessed); -1 to work out from the ports. */
  public code = -1;
  /** How many records this one stands for (a row of a query's result: several). */
  public weight = 1;
  public readonly moment = new Moment();
  /** With `ranged`: the latest of the records it stands for (`moment` is the earliest). */
  public readonly until = new Moment();
  public ranged = false;
  /** The line: bytes [start, end) of buf, or text. */
  public buf: Uint8Array | undefined;
  public start = 0;
  public end = 0;
  public str: string | undefined;

  public get line(): number {
    return this.moment.line;
  }

  public get source(): string {
    return this.moment.source;
  }

  /** The line as text (made on demand). */
  public text(): string {
    if (this.str === undefined) this.str = utf8(this.buf as Uint8Array, this.start, this.end);
    return this.str;
  }

  /** Point the record at a line. */
  public at(buf: Uint8Array, start: number, end: number, line: number): void {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.str = undefined;
    this.moment.line = line;
  }

  /** A copy that owns its line text (for records held back while a host's address is inferred). */
  public clone(): LineRecord {
    const c = new LineRecord();
    c.copy(this);
    c.str = this.text();
    c.buf = undefined;
    return c;
  }

  public copy(o: LineRecord): void {
    this.kind = o.kind;
    this.host = o.host;
    this.direction = o.direction;
    this.protocol = o.protocol;
    this.port = o.port;
    this.icmpType = o.icmpType;
    this.icmpCode = o.icmpCode;
    this.remote.set(o.remote);
    this.local.set(o.local);
    this.reason = o.reason;
    this.verdict = o.verdict;
    this.uid = o.uid;
    this.packets = o.packets;
    this.bytes = o.bytes;
    this.newFlow = o.newFlow;
    this.rejected = o.rejected;
    this.guessed = o.guessed;
    this.protoText = o.protoText;
    this.src.set(o.src);
    this.sport = o.sport;
    this.dst.set(o.dst);
    this.dport = o.dport;
    this.flags = o.flags;
    this.code = o.code;
    this.weight = o.weight;
    this.moment.copy(o.moment);
    this.until.copy(o.until);
    this.ranged = o.ranged;
    this.buf = o.buf;
    this.start = o.start;
    this.end = o.end;
    this.str = o.str;
  }

  /** The record as an Observation value. */
  public observation(): Observation {
    const time = this.moment.time;
    const opt = (n: number): number | undefined => (n < 0 ? undefined : n);
    return {
      kind: this.kind,
      host: this.host,
      direction: this.direction,
      protocol: this.protocol,
      port: opt(this.port),
      icmpType: opt(this.icmpType),
      icmpCode: opt(this.icmpCode),
      remote: this.remote.seen(),
      local: this.local.seen(),
      reason: this.reason,
      verdict: this.verdict,
      uid: opt(this.uid),
      packets: this.packets,
      bytes: opt(this.bytes),
      newFlow: this.newFlow,
      ...(this.kind === 'kernel' ? { connection: { protocol: this.protoText, src: this.src.seen(), sport: opt(this.sport), dst: this.dst.seen(), dport: opt(this.dport) } } : {}),
      rejected: this.rejected,
      guessed: this.guessed,
      time,
      ref: { source: this.source, line: this.line, text: this.text() },
    };
  }

  /** Fill the record from an Observation value. */
  public fromObservation(o: Observation): void {
    this.kind = o.kind;
    this.host = o.host;
    this.direction = o.direction;
    this.protocol = o.protocol;
    this.port = o.port ?? -1;
    this.icmpType = o.icmpType ?? -1;
    this.icmpCode = o.icmpCode ?? -1;
    this.remote.setSeen(o.remote);
    this.local.setSeen(o.local);
    this.reason = o.reason;
    this.verdict = o.verdict;
    this.uid = o.uid ?? -1;
    this.packets = o.packets;
    this.bytes = o.bytes ?? -1;
    this.newFlow = o.newFlow;
    this.rejected = o.rejected;
    this.guessed = o.guessed;
    if (o.connection) {
      this.protoText = o.connection.protocol;
      this.src.setSeen(o.connection.src);
      this.sport = o.connection.sport ?? -1;
      this.dst.setSeen(o.connection.dst);
      this.dport = o.connection.dport ?? -1;
    }
    this.weight = 1;
    this.ranged = false;
    this.moment.setTime(o.time);
    this.moment.source = o.ref.source;
    this.moment.line = o.ref.line;
    this.buf = undefined;
    this.str = o.ref.text;
  }
}

/**
 * Parse an address as logs print it (dotted quad; IPv6 fully expanded, as the kernel prints it,
 * or compressed, as flow logs do). IPv4 is read from the bytes straight into a number; IPv6
 * addresses are looked up by their bytes in a bounded cache, so repeated ones cost nothing.
 */
export class AddressReader {
  private readonly groups = new Uint16Array(8);
  private readonly v6 = new ByteInterner<string | null>((buf, start, end) => {
    if (hexGroups(buf, start, end, this.groups)) return compact6(this.groups);
    try {
      // Other spellings (an embedded IPv4 address …) through ipaddr.js.
      return compact6(ipaddr.IPv6.parse(latin1(buf, start, end)).parts);
    } catch {
      return null;
    }
  }, 16384);

  /** Read the address written in [start, end) into `out`; false when it is not one. */
  public readInto(buf: Uint8Array, start: number, end: number, out: Addr): boolean {
    const v = ipv4(buf, start, end);
    if (v >= 0) {
      out.family = 4;
      out.v4 = v | 0;
      return true;
    }
    let colon = false;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b === 58) colon = true;
      else if (b === 37 || b >= 0x80) return false; // a zone (%eth0), or not ASCII
    }
    if (!colon) return false;
    const k = this.v6.get(buf, start, end);
    if (k === null) return false;
    out.family = 6;
    out.k6 = k;
    return true;
  }

  /** Read one address given as text. */
  public read(text: string): SeenAddress | undefined {
    const buf = Buffer.from(text, 'utf8');
    const out = new Addr();
    return this.readInto(buf, 0, buf.length, out) ? out.seen() : undefined;
  }
}

function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 97 && b <= 102) return b - 87;
  if (b >= 65 && b <= 70) return b - 55;
  return -1;
}

/**
 * The eight 16-bit groups of an IPv6 address written in the plain form (groups of one to four hex
 * digits separated by ":", at most one "::" standing for at least one zero group), as the kernel
 * (fully expanded) and flow logs write them, into `out`; false for anything else (an embedded
 * IPv4 address, a zone), which ipaddr.js parses. Plain forms are read here only because
 * ipaddr.js's parser costs microseconds and allocations per address; on them both give the same
 * groups (learn.test.ts checks that on random addresses and spellings).
 */
export function hexGroups(buf: Uint8Array, start: number, end: number, out: Uint16Array): boolean {
  let head = 0;
  let tail = 0;
  let gap = false;
  let i = start;
  if (end - start >= 2 && buf[i] === 58 && buf[i + 1] === 58) {
    gap = true;
    i += 2;
  } else if (buf[i] === 58) return false;
  while (i < end) {
    let v = 0;
    let n = 0;
    for (; i < end && n <= 4; i++, n++) {
      const h = hexValue(buf[i]);
      if (h < 0) break;
      v = v * 16 + h;
    }
    if (n === 0 || n > 4 || head + tail >= 8) return false;
    if (gap) out[8 - ++tail] = v;
    else out[head++] = v;
    if (i === end) break;
    if (buf[i] !== 58) return false;
    i++;
    if (i < end && buf[i] === 58) {
      if (gap) return false;
      gap = true;
      i++;
    } else if (i === end) return false;
  }
  if (gap ? head + tail > 7 : head !== 8) return false;
  if (gap) {
    // The tail was written backwards from the end: put it in order, zeros in the gap.
    out.subarray(8 - tail).reverse();
    out.fill(0, head, 8 - tail);
  }
  return true;
}
