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
 * the packet it is about in brackets; only the outer packet counts. Pure: one line in, one result out.
 */
import { Direction } from '../flow';
import { AddressReader, LineResult, Observation, SeenProtocol, SeenReason, SeenTime } from './observation';

const PREFIX = /twinwall (ingress|egress|forward) ([a-z]+)(?: ([a-z]+))?: /y;
const REASONS: Record<string, SeenReason> = { inv: 'invalid', spoof: 'spoof', imds: 'imds' };
const EMPTY: Envelope = {};
/** Verdict words, interned so per-line strings do not pile up as map keys. */
const VERDICTS = new Map<string, string>();

const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
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

const PROTOCOLS: Record<string, SeenProtocol> = { TCP: 'tcp', UDP: 'udp', ICMP: 'icmp', ICMPv6: 'icmpv6', UDPLITE: 136, SCTP: 132 };

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

/** The body of a LOG line: `text` from `from` (a space before IN=) to `to` (an ICMP error's quote, or the end). */
interface Body {
  readonly text: string;
  readonly from: number;
  readonly to: number;
}

/** The value of ` KEY=` within the body, or undefined. */
function field(b: Body, key: string): string | undefined {
  const at = b.text.indexOf(key, b.from);
  if (at < 0 || at >= b.to) return undefined;
  const from = at + key.length;
  const end = b.text.indexOf(' ', from);
  return b.text.slice(from, end < 0 || end > b.to ? b.to : end);
}

function has(b: Body, word: string): boolean {
  const at = b.text.indexOf(word, b.from);
  return at >= 0 && at < b.to;
}

const DIGITS = /^\d+$/;

function portField(b: Body, key: string): number | undefined | null {
  const v = field(b, key);
  if (v === undefined) return undefined;
  if (v.length > 5 || !DIGITS.test(v) || Number(v) > 65535) return null;
  return Number(v);
}

function byteField(b: Body, key: string): number | undefined | null {
  const v = field(b, key);
  if (v === undefined) return undefined;
  if (v.length > 3 || !DIGITS.test(v) || Number(v) > 255) return null;
  return Number(v);
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

/** Parse one kernel log line. Never throws: anything unreadable is `malformed` or `foreign`. */
export function parseKernelLine(text: string, ctx: KernelLineContext): LineResult {
  const at = text.indexOf('twinwall ');
  if (at < 0) {
    if (text.trim() === '') return { kind: 'foreign', why: 'blank line' };
    if (/^-- .* --$/.test(text.trim()) || text.startsWith('-- ')) return { kind: 'foreign', why: 'journal marker' };
    return { kind: 'foreign', why: 'not a twinwall LOG line' };
  }
  PREFIX.lastIndex = at;
  const prefix = PREFIX.exec(text);
  if (!prefix) return { kind: 'foreign', why: 'mentions twinwall but has no twinwall LOG prefix' };
  const direction = prefix[1] as Direction | 'forward';
  const verdict = VERDICTS.get(prefix[2]) ?? (VERDICTS.size < 64 ? (VERDICTS.set(prefix[2], prefix[2]), prefix[2]) : prefix[2]);
  const reasonWord = prefix[3];
  const reason: SeenReason | undefined = reasonWord === undefined ? 'policy' : REASONS[reasonWord];
  if (reason === undefined) return { kind: 'malformed', why: `unknown LOG prefix reason ${JSON.stringify(reasonWord)}` };
  const envelope = at === 0 ? EMPTY : parseEnvelope(text.slice(0, at));

  // ` IN=… OUT=… SRC=…` (from the space the prefix ends with), cut before an ICMP error's quoted packet.
  const from = at + prefix[0].length - 1;
  const nested = text.indexOf('[', from);
  const body: Body = { text, from, to: nested < 0 ? text.length : nested };
  const syn = has(body, ' SYN ') || text.endsWith(' SYN');
  const ack = has(body, ' ACK ') || text.endsWith(' ACK');
  if (field(body, ' IN=') === undefined) return { kind: 'malformed', why: 'no IN= field (truncated line?)' };
  if (field(body, ' OUT=') === undefined) return { kind: 'malformed', why: 'no OUT= field (truncated line?)' };
  const fields = { SRC: field(body, ' SRC='), DST: field(body, ' DST='), PROTO: field(body, ' PROTO=') };
  for (const key of ['SRC', 'DST', 'PROTO'] as const) {
    if (fields[key] === undefined) return { kind: 'malformed', why: `no ${key}= field (truncated line?)` };
  }
  const src = ctx.addresses.read(fields.SRC as string);
  const dst = ctx.addresses.read(fields.DST as string);
  if (!src) return { kind: 'malformed', why: `SRC=${fields.SRC} is not an address` };
  if (!dst) return { kind: 'malformed', why: `DST=${fields.DST} is not an address` };
  if (src.family !== dst.family) return { kind: 'malformed', why: 'SRC and DST are of different address families' };

  const protoText = fields.PROTO as string;
  const protocol: SeenProtocol | undefined = PROTOCOLS[protoText] ?? (/^\d{1,3}$/.test(protoText) && Number(protoText) <= 255 ? Number(protoText) : undefined);
  if (protocol === undefined) return { kind: 'malformed', why: `PROTO=${protoText} is not a protocol` };
  if ((protocol === 'icmp' && src.family !== 4) || (protocol === 'icmpv6' && src.family !== 6)) {
    return { kind: 'malformed', why: `PROTO=${protoText} with IPv${src.family} addresses` };
  }

  let port: number | undefined;
  let icmpType: number | undefined;
  let icmpCode: number | undefined;
  const spt = portField(body, ' SPT=');
  const dpt = portField(body, ' DPT=');
  if (protocol === 'tcp' || protocol === 'udp') {
    if (dpt === undefined || spt === undefined) return { kind: 'malformed', why: 'TCP/UDP line without SPT=/DPT= (a fragment?)' };
    if (dpt === null || spt === null) return { kind: 'malformed', why: 'SPT=/DPT= is not a port' };
    port = dpt;
  } else if (protocol === 'icmp' || protocol === 'icmpv6') {
    const t = byteField(body, ' TYPE=');
    const c = byteField(body, ' CODE=');
    if (t === undefined || t === null) return { kind: 'malformed', why: 'ICMP line without a readable TYPE=' };
    if (c === null) return { kind: 'malformed', why: 'ICMP line with an unreadable CODE=' };
    icmpType = t;
    icmpCode = c ?? 0;
  }

  let uid: number | undefined;
  const uidText = field(body, ' UID=');
  if (uidText !== undefined) {
    if (!DIGITS.test(uidText)) return { kind: 'malformed', why: `UID=${uidText} is not a number` };
    uid = Number(uidText);
  }

  // A policy line for a packet that opens nothing is a stray, not a flow.
  let why = reason;
  if (why === 'policy' && ((protocol === 'tcp' && !(syn && !ack)) || ((protocol === 'icmp' || protocol === 'icmpv6') && ICMP_NOT_OPENING[protocol].has(icmpType as number)))) why = 'stray';

  const local = direction === 'ingress' ? dst : src;
  const remote = direction === 'ingress' ? src : dst;
  const host = ctx.forceHost ?? envelope?.host ?? ctx.defaultHost;
  // Built in one go, no spreads: this runs once per line.
  const observation: Observation = {
    host,
    direction,
    protocol,
    port,
    icmpType,
    icmpCode,
    remote,
    local,
    reason: why,
    verdict,
    uid,
    packets: 1,
    newFlow: true,
    tuple: `${protoText}|${src.text}|${spt ?? ''}|${dst.text}|${dpt ?? icmpType ?? ''}`,
    rejected: false,
    guessed: false,
    time: envelope?.time,
    ref: { source: ctx.source, line: ctx.line, text },
  };
  return { kind: 'observation', observation };
}
