/**
 * Kernel LOG lines written by twinwall's rules (prefix `twinwall <direction> <verdict>[ <reason>]: `,
 * see lib/render/iptables.ts), as the usual tools print them:
 *
 *   dmesg                 [ 1483.347048] twinwall egress audit: IN= OUT=eth0 SRC=… DST=… …
 *   dmesg -T / --time-format iso / -x (facility and level before the time)
 *   /dev/kmsg             4,1234,1483347048,-;twinwall egress audit: …
 *   journalctl -k         Nov 19 22:33:12 web1 kernel: twinwall egress audit: …  (short, short-precise,
 *                         short-iso, short-iso-precise, short-full, short-monotonic)
 *   kern.log / syslog     Nov 19 22:33:12 web1 kernel: [ 1483.347048] twinwall egress audit: …
 *                         2024-11-19T22:33:12.123456+00:00 web1 kernel: twinwall egress audit: …
 *
 * The fields after the prefix are the kernel's (nf_log_syslog): IN= OUT= [MAC=] SRC= DST= … PROTO=
 * [SPT= DPT=] [TYPE= CODE=] [UID= GID=]. IPv6 addresses come fully expanded. An ICMP error quotes
 * the packet it is about in brackets; only the outer packet counts.
 *
 * A line is read from its bytes in one pass, left to right, with no regular expression and no
 * object made for it: the two common envelopes (dmesg's `[seconds]`, syslog's `<time> <host>
 * kernel: [seconds]`) are read byte by byte; any other envelope (rare: one per tool, not per line)
 * goes through `parseEnvelope`, the regular expressions that know every shape. Pure: one line in,
 * one result out; never throws.
 */
import { ByteInterner, decimal, digits, indexOfWord, isAscii, isDigit, isSpace, latin1, startsWith, utf8 } from './bytes';
import { AddressReader, LINE, LineKind, LineReader, LineRecord, LineResult, SeenProtocol, SeenReason, SeenTime } from './observation';
import { LOG_DIRECTIONS, LOG_PREFIX_LEAD, LogDirection, VerdictReason } from '../log-prefix';

/** What each LOG prefix reason (lib/log-prefix.ts) means to learn. */
const REASONS: Record<VerdictReason, SeenReason> = { inv: 'invalid', spoof: 'spoof', imds: 'imds' };
/** The prefix's lead word and direction words (lib/log-prefix.ts), each with the space after it. */
const DIRECTION_WORDS = LOG_DIRECTIONS.map((direction) => ({ direction, word: `${direction} ` }));

const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
/** The month abbreviations as three bytes in one number (b0 << 16 | b1 << 8 | b2). */
const MONTHS = new Set(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((m) => (m.charCodeAt(0) << 16) | (m.charCodeAt(1) << 8) | m.charCodeAt(2)));
const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:[.,]\\d+)?(?:Z|[+-]\\d\\d:?\\d\\d)?';
const SYSLOG_TIME = `${MONTH} [ \\d]?\\d \\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)?`;
const FULL_TIME = '[A-Z][a-z]{2} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)? [A-Za-z0-9+-]+';
const MONO = '\\[\\s*\\d+\\.\\d+\\]';

/** `<time> <host> kernel: [<boot seconds>]` (journalctl, syslog). */
const SYSLOG_ENVELOPE = new RegExp(`^\\s*(${SYSLOG_TIME}|${ISO}|${FULL_TIME}|${MONO})\\s+(\\S+)\\s+kernel:\\s*(?:\\[\\s*(\\d+\\.\\d+)\\]\\s*)?$`);
/** /dev/kmsg: `<level>,<seq>,<usec>,<flags>[,…];` */
const KMSG_ENVELOPE = /^\s*\d+,\d+,(\d+),[^;]*;$/;
/** dmesg -x: `kern  :warn  : ` before the time. */
const DMESG_FACILITY = /^\s*[a-z]+\s*:\s*[a-z]+\s*:\s*/;
const DMESG_MONO = /^\[\s*(\d+\.\d+)\]\s*$/;
const DMESG_CTIME = new RegExp(`^\\[([A-Z][a-z]{2} ${MONTH} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4})\\]\\s*$`);
const DMESG_ISO = new RegExp(`^(${ISO})\\s*$`);

/** ICMP types that answer or report on other packets: they never open a connection. */
const ICMP_NOT_OPENING: Record<'icmp' | 'icmpv6', Set<number>> = { icmp: new Set([0, 3, 4, 5, 11, 12, 14, 16, 18]), icmpv6: new Set([1, 2, 3, 4, 129]) };

const PROTOCOLS = new Map<string, SeenProtocol>([
  ['TCP', 'tcp'],
  ['UDP', 'udp'],
  ['ICMP', 'icmp'],
  ['ICMPv6', 'icmpv6'],
  ['UDPLITE', 136],
  ['SCTP', 132],
]);

interface Envelope {
  readonly host?: string;
  readonly time?: SeenTime;
}

function isoTime(text: string): SeenTime {
  const normal = text.replace(',', '.').replace(/([+-]\d\d)(\d\d)$/, '$1:$2');
  const ms = /(Z|[+-]\d\d:\d\d)$/.test(normal) ? Date.parse(normal) : NaN;
  return Number.isFinite(ms) ? { text, epochMs: ms } : { text };
}

function bootTime(seconds: string): SeenTime {
  return { text: `${seconds} s after boot`, bootSeconds: Number(seconds) };
}

const SYSLOG_TIME_ONLY = new RegExp(`^(?:${SYSLOG_TIME}|${ISO})$`);
const BRACKET_SECONDS = /^\[\s*(\d+\.\d+)\]$/;

/**
 * `<time> <host> kernel: [<seconds>] ` without the big regex: the shape of nearly every line of
 * kern.log and journalctl. Undefined when it is not exactly that (the full regex decides then).
 */
function syslogEnvelope(text: string): Envelope | undefined {
  const k = text.indexOf(' kernel:');
  if (k < 0) return undefined;
  const sp = text.lastIndexOf(' ', k - 1);
  if (sp <= 0) return undefined;
  const host = text.slice(sp + 1, k);
  const time = text.slice(0, sp).replace(/\s+/g, ' ').trim();
  if (!SYSLOG_TIME_ONLY.test(time)) return undefined;
  const after = text.slice(k + 8).trim();
  let boot: string | undefined;
  if (after !== '') {
    const b = BRACKET_SECONDS.exec(after);
    if (!b) return undefined;
    boot = b[1];
  }
  if (/^\d{4}-/.test(time)) return { host, time: isoTime(time) };
  return { host, time: boot !== undefined ? { ...bootTime(boot), text: time } : { text: time } };
}

/** Read the part of a line before the LOG prefix; undefined when it is none of the known shapes. */
export function parseEnvelope(text: string): Envelope | undefined {
  if (text.trim() === '') return {};
  let m = DMESG_MONO.exec(text); // the common cases first
  if (m) return { time: bootTime(m[1]) };
  const fast = syslogEnvelope(text);
  if (fast) return fast;
  m = SYSLOG_ENVELOPE.exec(text);
  if (m) {
    const t = m[1];
    let time: SeenTime;
    if (t.startsWith('[')) time = bootTime(t.slice(1, -1).trim());
    else if (/^\d{4}-/.test(t)) time = isoTime(t);
    else time = m[3] !== undefined ? { ...bootTime(m[3]), text: t.replace(/\s+/g, ' ') } : { text: t.replace(/\s+/g, ' ') };
    return { host: m[2], time };
  }
  m = KMSG_ENVELOPE.exec(text);
  if (m) return { time: bootTime((Number(m[1]) / 1e6).toFixed(6)) };
  const rest = text.replace(DMESG_FACILITY, '');
  if ((m = DMESG_MONO.exec(rest))) return { time: bootTime(m[1]) };
  if ((m = DMESG_CTIME.exec(rest))) return { time: { text: m[1].replace(/\s+/g, ' ') } };
  if ((m = DMESG_ISO.exec(rest))) return { time: isoTime(m[1]) };
  return undefined;
}

export interface KernelLineContext {
  /** Name of the input, for evidence. */
  readonly source: string;
  /** 1-based line number. */
  readonly line: number;
  /** The host when the line does not name one (dmesg output). */
  readonly defaultHost: string;
  /** Force this host for every line (the input was named HOST=FILE). */
  readonly forceHost?: string;
  readonly addresses: AddressReader;
}

/** Seconds since boot whose text the kernel's own form (%lu.%06lu) gives back, else NaN. */
function kernelSeconds(buf: Uint8Array, start: number, end: number): number {
  const point = end - 7;
  if (point <= start || buf[point] !== 46 || (buf[start] === 48 && point - start > 1) || end - start - 1 > 15) return NaN;
  return decimal(buf, start, end);
}

/** Where a `key=` value is in the body (first occurrence), -1 when absent. */
interface Span {
  s: number;
  e: number;
}

/** Body keys, indexed by what their first letter and length select. */
const K_IN = 0;
const K_OUT = 1;
const K_SRC = 2;
const K_DST = 3;
const K_PROTO = 4;
const K_SPT = 5;
const K_DPT = 6;
const K_TYPE = 7;
const K_CODE = 8;
const K_UID = 9;
const KEYS = ['IN=', 'OUT=', 'SRC=', 'DST=', 'PROTO=', 'SPT=', 'DPT=', 'TYPE=', 'CODE=', 'UID='];

/**
 * Reads kernel LOG lines of one input. Keeps the few things lines share — host names, verdict
 * words, the last timestamp's text — interned, so a million lines of four hosts make four host
 * strings.
 */
export class KernelLogReader implements LineReader {
  public why = '';
  private readonly hosts = new ByteInterner<string>((b, s, e) => latin1(b, s, e), 65536);
  private readonly words = new ByteInterner<string>((b, s, e) => latin1(b, s, e), 256);
  private readonly spans: Span[] = KEYS.map(() => ({ s: -1, e: -1 }));
  /** The last syslog time as written, and its text with spacing normalised. */
  private lastTime = new Uint8Array(64);
  private lastTimeLen = -1;
  private lastTimeText = '';
  private readonly scratch = new Uint8Array(64);

  public constructor(
    private readonly options: { readonly source: string; readonly defaultHost: string; readonly forceHost?: string; readonly addresses: AddressReader },
  ) {}

  private bad(why: string): LineKind {
    this.why = why;
    return LINE.malformed;
  }

  /** The value of a body key as text (for messages). */
  private value(buf: Uint8Array, key: number): string {
    const sp = this.spans[key];
    return utf8(buf, sp.s, sp.e);
  }

  public read(buf: Uint8Array, start: number, end: number, line: number, rec: LineRecord): LineKind {
    rec.at(buf, start, end, line);
    rec.moment.source = this.options.source;
    const at = indexOfWord(buf, start, end, LOG_PREFIX_LEAD);
    if (at < 0) return this.foreign(buf, start, end);

    // The prefix (lib/log-prefix.ts): twinwall <direction> <verdict>[ <reason>]: 
    let p = at + LOG_PREFIX_LEAD.length;
    const named = DIRECTION_WORDS.find((d) => startsWith(buf, p, end, d.word));
    if (named === undefined) return this.noPrefix();
    const direction: LogDirection = named.direction;
    p += named.word.length;
    const v0 = p;
    while (p < end && buf[p] >= 97 && buf[p] <= 122) p++;
    const v1 = p;
    if (v1 === v0) return this.noPrefix();
    let r0 = -1;
    let r1 = -1;
    if (buf[p] === 32) {
      r0 = ++p;
      while (p < end && buf[p] >= 97 && buf[p] <= 122) p++;
      r1 = p;
      if (r1 === r0) return this.noPrefix();
    }
    if (p + 1 >= end || buf[p] !== 58 || buf[p + 1] !== 32) return this.noPrefix();
    const from = p + 1; // the space the prefix ends with
    const verdict = this.words.get(buf, v0, v1);
    let reason: SeenReason = 'policy';
    if (r0 >= 0) {
      const word = this.words.get(buf, r0, r1);
      const known = Object.prototype.hasOwnProperty.call(REASONS, word) ? REASONS[word as VerdictReason] : undefined;
      if (known === undefined) return this.bad(`unknown LOG prefix reason ${JSON.stringify(word)}`);
      reason = known;
    }

    // The envelope: host and time.
    let host: string | undefined;
    if (at === start) rec.moment.clear();
    else host = this.envelope(buf, start, at, rec);

    // ` IN=… OUT=… SRC=…` (from the space the prefix ends with), cut before an ICMP error's quoted packet.
    let to = end;
    for (let i = from; i < end; i++) {
      if (buf[i] === 91) {
        to = i;
        break;
      }
    }
    for (const sp of this.spans) sp.s = -1;
    let syn = false;
    let ack = false;
    for (let i = from; i < to; ) {
      // buf[i] is a space: a token starts after it.
      const s = i + 1;
      let e = s;
      while (e < to && buf[e] !== 32) e++;
      const len = e - s;
      if (len >= 3) {
        const c = buf[s];
        let key = -1;
        if (c === 73) key = buf[s + 1] === 78 && buf[s + 2] === 61 ? K_IN : -1;
        else if (c === 79) key = startsWith(buf, s, e, 'OUT=') ? K_OUT : -1;
        else if (c === 83) {
          if (startsWith(buf, s, e, 'SRC=')) key = K_SRC;
          else if (startsWith(buf, s, e, 'SPT=')) key = K_SPT;
          else if (len === 3 && buf[s + 1] === 89 && buf[s + 2] === 78 && e < to) syn = true;
        } else if (c === 68) key = startsWith(buf, s, e, 'DST=') ? K_DST : startsWith(buf, s, e, 'DPT=') ? K_DPT : -1;
        else if (c === 80) key = startsWith(buf, s, e, 'PROTO=') ? K_PROTO : -1;
        else if (c === 84) key = startsWith(buf, s, e, 'TYPE=') ? K_TYPE : -1;
        else if (c === 67) key = startsWith(buf, s, e, 'CODE=') ? K_CODE : -1;
        else if (c === 85) key = startsWith(buf, s, e, 'UID=') ? K_UID : -1;
        else if (c === 65 && len === 3 && buf[s + 1] === 67 && buf[s + 2] === 75 && e < to) ack = true;
        if (key >= 0) {
          const sp = this.spans[key];
          if (sp.s < 0) {
            sp.s = s + KEYS[key].length;
            sp.e = e;
          }
        }
      }
      i = e;
    }
    // A line ending in " SYN" (or " ACK") carries the flag wherever the body was cut.
    if (end - start >= 4 && buf[end - 4] === 32) {
      if (buf[end - 3] === 83 && buf[end - 2] === 89 && buf[end - 1] === 78) syn = true;
      else if (buf[end - 3] === 65 && buf[end - 2] === 67 && buf[end - 1] === 75) ack = true;
    }
    const sp = this.spans;
    if (sp[K_IN].s < 0) return this.bad('no IN= field (truncated line?)');
    if (sp[K_OUT].s < 0) return this.bad('no OUT= field (truncated line?)');
    if (sp[K_SRC].s < 0) return this.bad('no SRC= field (truncated line?)');
    if (sp[K_DST].s < 0) return this.bad('no DST= field (truncated line?)');
    if (sp[K_PROTO].s < 0) return this.bad('no PROTO= field (truncated line?)');
    const addresses = this.options.addresses;
    if (!addresses.readInto(buf, sp[K_SRC].s, sp[K_SRC].e, rec.src)) return this.bad(`SRC=${this.value(buf, K_SRC)} is not an address`);
    if (!addresses.readInto(buf, sp[K_DST].s, sp[K_DST].e, rec.dst)) return this.bad(`DST=${this.value(buf, K_DST)} is not an address`);
    const family = rec.src.family;
    if (family !== rec.dst.family) return this.bad('SRC and DST are of different address families');

    const protoWord = this.words.get(buf, sp[K_PROTO].s, sp[K_PROTO].e);
    let protocol = PROTOCOLS.get(protoWord);
    if (protocol === undefined) {
      const n = sp[K_PROTO].e - sp[K_PROTO].s <= 3 ? digits(buf, sp[K_PROTO].s, sp[K_PROTO].e) : -1;
      if (n < 0 || n > 255) return this.bad(`PROTO=${this.value(buf, K_PROTO)} is not a protocol`);
      protocol = n;
    }
    if ((protocol === 'icmp' && family !== 4) || (protocol === 'icmpv6' && family !== 6)) {
      return this.bad(`PROTO=${protoWord} with IPv${family} addresses`);
    }

    // Ports: -1 absent, -2 unreadable.
    const spt = this.number(buf, K_SPT, 5, 65535);
    const dpt = this.number(buf, K_DPT, 5, 65535);
    let port = -1;
    let icmpType = -1;
    let icmpCode = -1;
    if (protocol === 'tcp' || protocol === 'udp') {
      if (dpt === -1 || spt === -1) return this.bad('TCP/UDP line without SPT=/DPT= (a fragment?)');
      if (dpt === -2 || spt === -2) return this.bad('SPT=/DPT= is not a port');
      port = dpt;
    } else if (protocol === 'icmp' || protocol === 'icmpv6') {
      const t = this.number(buf, K_TYPE, 3, 255);
      const c = this.number(buf, K_CODE, 3, 255);
      if (t < 0) return this.bad('ICMP line without a readable TYPE=');
      if (c === -2) return this.bad('ICMP line with an unreadable CODE=');
      icmpType = t;
      icmpCode = c < 0 ? 0 : c;
    }

    let uid = -1;
    if (sp[K_UID].s >= 0) {
      uid = digits(buf, sp[K_UID].s, sp[K_UID].e);
      if (uid < 0) return this.bad(`UID=${this.value(buf, K_UID)} is not a number`);
    }

    // A policy line for a packet that opens nothing is a stray, not a flow.
    let why = reason;
    if (why === 'policy' && ((protocol === 'tcp' && !(syn && !ack)) || ((protocol === 'icmp' || protocol === 'icmpv6') && ICMP_NOT_OPENING[protocol].has(icmpType)))) why = 'stray';

    rec.kind = 'kernel';
    rec.host = this.options.forceHost ?? host ?? this.options.defaultHost;
    rec.direction = direction;
    rec.protocol = protocol;
    rec.protoText = protoWord;
    rec.port = port;
    rec.icmpType = icmpType;
    rec.icmpCode = icmpCode;
    (direction === 'ingress' ? rec.local : rec.remote).set(rec.dst);
    (direction === 'ingress' ? rec.remote : rec.local).set(rec.src);
    rec.reason = why;
    rec.verdict = verdict;
    rec.uid = uid;
    rec.packets = 1;
    rec.bytes = -1;
    rec.newFlow = true;
    rec.rejected = false;
    rec.guessed = false;
    rec.sport = spt >= 0 ? spt : -1;
    rec.dport = dpt >= 0 ? dpt : icmpType;
    return LINE.observation;
  }

  /** A body number of at most `maxLen` digits and at most `max`: -1 absent, -2 unreadable. */
  private number(buf: Uint8Array, key: number, maxLen: number, max: number): number {
    const sp = this.spans[key];
    if (sp.s < 0) return -1;
    if (sp.e - sp.s > maxLen) return -2;
    const v = digits(buf, sp.s, sp.e);
    return v < 0 || v > max ? -2 : v;
  }

  private noPrefix(): LineKind {
    this.why = 'mentions twinwall but has no twinwall LOG prefix';
    return LINE.foreign;
  }

  /** Why a line without "twinwall " is not for learn. */
  private foreign(buf: Uint8Array, start: number, end: number): LineKind {
    if (!isAscii(buf, start, end)) {
      this.why = foreignWhy(utf8(buf, start, end));
      return LINE.foreign;
    }
    let a = start;
    let b = end;
    while (a < b && isSpace(buf[a])) a++;
    while (b > a && isSpace(buf[b - 1])) b--;
    let marker = startsWith(buf, start, end, '-- ');
    if (!marker && b - a >= 6 && startsWith(buf, a, b, '-- ') && buf[b - 3] === 32 && buf[b - 2] === 45 && buf[b - 1] === 45) {
      marker = true;
      for (let i = a + 3; i < b - 3; i++) if (buf[i] === 13 || buf[i] === 10) marker = false;
    }
    this.why = a === b ? 'blank line' : marker ? 'journal marker' : 'not a twinwall LOG line';
    return LINE.foreign;
  }

  /**
   * The envelope [start, at): sets the record's moment, returns the host it names. dmesg's
   * `[seconds] ` and syslog's `<Mmm dd hh:mm:ss> <host> kernel: [seconds] ` are read here; any
   * other shape goes through parseEnvelope.
   */
  private envelope(buf: Uint8Array, start: number, at: number, rec: LineRecord): string | undefined {
    const m = rec.moment;
    if (isAscii(buf, start, at)) {
      // dmesg: [ 1483.347048]
      if (buf[start] === 91) {
        let i = start + 1;
        while (i < at && isSpace(buf[i])) i++;
        const d0 = i;
        while (i < at && buf[i] !== 93 && !isSpace(buf[i])) i++;
        if (i < at && buf[i] === 93) {
          const d1 = i;
          i++;
          while (i < at && isSpace(buf[i])) i++;
          if (i === at) {
            const seconds = kernelSeconds(buf, d0, d1);
            if (seconds === seconds) {
              m.setBoot(seconds);
              return undefined;
            }
          }
        }
      } else {
        const host = this.syslog(buf, start, at, m);
        if (host !== undefined) return host;
      }
    }
    const env = parseEnvelope(utf8(buf, start, at));
    m.setTime(env?.time);
    return env?.host;
  }

  /**
   * `Mmm dd hh:mm:ss[.frac] <host> kernel: [seconds]` exactly as syslogEnvelope reads it (the time
   * with its spacing normalised, then the same checks), for the month form; undefined for
   * anything else.
   */
  private syslog(buf: Uint8Array, start: number, at: number, m: LineRecord['moment']): string | undefined {
    const k = indexOfWord(buf, start, at, ' kernel:');
    if (k < 0) return undefined;
    let sp = k - 1;
    while (sp >= start && buf[sp] !== 32) sp--;
    if (sp <= start) return undefined;
    // The time, whitespace runs made one space, trimmed.
    const t = this.scratch;
    let n = 0;
    let gap = false;
    for (let i = start; i < sp; i++) {
      if (isSpace(buf[i])) gap = n > 0;
      else {
        if (gap) t[n++] = 32;
        gap = false;
        if (n >= t.length - 1) return undefined;
        t[n++] = buf[i];
      }
    }
    // Mmm d[d] hh:mm:ss[.d+]
    if (n < 14 || t[3] !== 32 || !MONTHS.has((t[0] << 16) | (t[1] << 8) | t[2])) return undefined;
    let i = 4;
    if (!isDigit(t[i])) return undefined;
    i++;
    if (isDigit(t[i])) i++;
    if (t[i] !== 32 || i + 9 > n) return undefined;
    i++;
    if (!(isDigit(t[i]) && isDigit(t[i + 1]) && t[i + 2] === 58 && isDigit(t[i + 3]) && isDigit(t[i + 4]) && t[i + 5] === 58 && isDigit(t[i + 6]) && isDigit(t[i + 7]))) return undefined;
    i += 8;
    if (i < n) {
      if (t[i] !== 46 || i + 1 === n) return undefined;
      for (let j = i + 1; j < n; j++) if (!isDigit(t[j])) return undefined;
    }
    // After "kernel:": nothing, or [seconds].
    let a = k + 8;
    let b = at;
    while (a < b && isSpace(buf[a])) a++;
    while (b > a && isSpace(buf[b - 1])) b--;
    let boot = NaN;
    if (a < b) {
      if (buf[a] !== 91 || buf[b - 1] !== 93) return undefined;
      let d = a + 1;
      while (d < b - 1 && isSpace(buf[d])) d++;
      boot = decimal(buf, d, b - 1);
      if (boot !== boot) return undefined;
    }
    m.setText(this.timeText(t, n), NaN, boot);
    return this.hosts.get(buf, sp + 1, k);
  }

  /** The normalised time text, shared while consecutive lines carry the same one. */
  private timeText(t: Uint8Array, n: number): string {
    if (n === this.lastTimeLen) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (this.lastTime[i] !== t[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastTimeText;
    }
    this.lastTime.set(t.subarray(0, n));
    this.lastTimeLen = n;
    this.lastTimeText = latin1(t, 0, n);
    return this.lastTimeText;
  }
}

/** Why a line without "twinwall " is not for learn (lines that are not ASCII). */
function foreignWhy(text: string): string {
  if (text.trim() === '') return 'blank line';
  if (/^-- .* --$/.test(text.trim()) || text.startsWith('-- ')) return 'journal marker';
  return 'not a twinwall LOG line';
}

/** Parse one kernel log line. Never throws: anything unreadable is `malformed` or `foreign`. */
export function parseKernelLine(text: string, ctx: KernelLineContext): LineResult {
  const reader = new KernelLogReader({ source: ctx.source, defaultHost: ctx.defaultHost, addresses: ctx.addresses, ...(ctx.forceHost !== undefined ? { forceHost: ctx.forceHost } : {}) });
  const rec = new LineRecord();
  const buf = Buffer.from(text, 'utf8');
  const kind = reader.read(buf, 0, buf.length, ctx.line, rec);
  rec.str = text;
  if (kind === LINE.observation) return { kind: 'observation', observation: rec.observation() };
  return { kind: kind === LINE.malformed ? 'malformed' : 'foreign', why: reader.why };
}

