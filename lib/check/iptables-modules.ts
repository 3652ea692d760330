/**
 * The vocabulary of iptables-restore rules the checker reads: base options, match modules and
 * targets, each option with its spellings, how many words it takes, whether `!` may precede it,
 * and a strict reader of its value that returns the canonical form. Pure data and functions; the
 * grammar that walks a rule with them is iptables-parse.ts.
 *
 * Everything here was checked against iptables 1.8.9 (the nf_tables backend Debian 12 ships)
 * by loading rules into a network namespace and reading them back with iptables-save
 * (__tests__/kernel-parse.property.test.ts). The rule is: a value is read only in a form whose
 * meaning is certain — a decimal number without leading zeros (iptables reads 010 as octal and
 * 10.1 as 10.1.0.0), a literal address (never a host name, resolved when the rules load), a port
 * number (never a service name), a uid (never a user name), the exact spelling of a name (never
 * an abbreviation, which iptables would accept for some options and refuse for others). Anything
 * else is refused with a reason: a refusal makes the table "cannot decide", never agreement.
 */
import { Family, formatAddress, parseAddress } from '../address';
import { IntervalSet } from '../intervals';
import { ICMP4_ANY_TYPE } from '../port';

/** Why the checker will not read an input: reported as "cannot decide". */
export class Refusal extends Error {}

function refuse(message: string): never {
  throw new Refusal(message);
}

/** One option's value, read: canonical words (for display and the host model) and a semantic key. */
export interface OptionValue {
  /** Canonical words: "22" or "1:1023", "10.0.0.0/24", "6" (protocol number), "8" or "3/4" … */
  readonly args: readonly string[];
  /** The meaning, as a comparable string (`!` folded in where the meaning allows it). */
  readonly key: string;
}

export interface ValueContext {
  readonly family: Family;
}

export interface OptionSpec {
  /** The canonical spelling, e.g. "--dport". */
  readonly name: string;
  /** Other exact spellings iptables accepts for the same option, e.g. "--destination-port". */
  readonly aliases?: readonly string[];
  /**
   * Words taken: 0 (a flag), 1 (getopt's required argument: the next word, whatever it is), or
   * 2 (a required argument plus a second word that must not start with "-" or "!").
   */
  readonly words: 0 | 1 | 2;
  /** May `!` precede it? */
  readonly invert: boolean;
  /** The option whose meaning this one is a shorthand for (--syn for --tcp-flags FIN,SYN,RST,ACK SYN). */
  readonly keyAs?: string;
  /** Read the value (and the negation, which some keys fold in). Throws Refusal. */
  readonly read: (args: readonly string[], negated: boolean, ctx: ValueContext) => OptionValue;
}

export interface ModuleSpec {
  readonly name: string;
  /** Families whose iptables has this match (ip6tables has no icmp, iptables no hl …). */
  readonly families: readonly Family[];
  /** The match requires `-p` to be one of these protocols, not negated. */
  readonly protocols?: readonly number[];
  readonly options: readonly OptionSpec[];
  /** Options that must be given (else iptables refuses the rule). */
  readonly required?: readonly (readonly string[])[];
  /** Options that exclude each other. */
  readonly exclusive?: readonly (readonly string[])[];
  /** At least one option must be given (e.g. -m owner alone is refused). */
  readonly needsOption?: boolean;
  /** Defaults for options not given, as keys (so "--limit-burst 5" and no burst compare equal). */
  readonly defaults?: Readonly<Record<string, string>> | ((options: ReadonlyMap<string, ReadOption>) => Readonly<Record<string, string>>);
  /**
   * The match means nothing when every option was left at "everything" (e.g. -m tcp with no
   * ports): iptables-save may leave it out, so the key drops it too.
   */
  readonly dropWhenEmpty?: boolean;
  /** Further checks on the whole match (ValueContext plus the options read). */
  readonly check?: (options: ReadonlyMap<string, ReadOption>, ctx: ValueContext) => void;
}

export interface ReadOption {
  readonly spec: OptionSpec;
  readonly negated: boolean;
  readonly value: OptionValue;
}

// ---------------------------------------------------------------------------------------------
// Value readers

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** A decimal number without sign or leading zeros, within [min, max]. */
export function decimal(text: string, min: number, max: number, what: string): number {
  if (!DECIMAL.test(text) || text.length > 10) refuse(`${what} ${JSON.stringify(text)} is not a decimal number (iptables would read leading zeros as octal, 0x as hex)`);
  const n = Number(text);
  if (n < min || n > max) refuse(`${what} ${text} is outside ${min}–${max}`);
  return n;
}

const V4_OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4 = new RegExp(`^${V4_OCTET}(\\.${V4_OCTET}){3}$`);

/** One literal address of `family` (never a host name; dotted quads in full). */
export function literalAddress(text: string, family: Family): bigint {
  if (family === 4) {
    if (!V4.test(text)) refuse(`${JSON.stringify(text)} is not an IPv4 address in full dotted-quad form (iptables reads 10.1 as 10.1.0.0 and resolves names when the rules load)`);
    return parseAddress(text).value;
  }
  // inet_pton's IPv6 forms: hex groups, one "::", an optional dotted quad at the end.
  const dotted = text.lastIndexOf(':') >= 0 ? text.slice(text.lastIndexOf(':') + 1) : '';
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || (dotted.includes('.') && !V4.test(dotted))) refuse(`${JSON.stringify(text)} is not a literal IPv6 address`);
  try {
    const { family: f, value } = parseAddress(text);
    if (f !== 6) refuse(`${JSON.stringify(text)} is not an IPv6 address`);
    return value;
  } catch (e) {
    if (e instanceof Refusal) throw e;
    return refuse(`${JSON.stringify(text)} is not a literal IPv6 address`);
  }
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function hexAddress(value: bigint, family: Family): string {
  return value.toString(16).padStart(BITS[family] / 4, '0');
}

/** "a.b.c.d[/n]" → network (host bits masked, as iptables does) and prefix. */
export function literalCidr(text: string, family: Family): { network: bigint; prefix: number; text: string } {
  const slash = text.indexOf('/');
  const value = literalAddress(slash < 0 ? text : text.slice(0, slash), family);
  const bits = BITS[family];
  const prefix = slash < 0 ? bits : decimal(text.slice(slash + 1), 0, bits, 'prefix length');
  const host = BigInt(bits - prefix);
  const network = (value >> host) << host;
  return { network, prefix, text: `${formatCanonical(network, family)}/${prefix}` };
}

function formatCanonical(value: bigint, family: Family): string {
  return formatAddress(family, value);
}

/** A port: "22". */
function port(text: string): number {
  return decimal(text, 0, 65535, 'port');
}

/** tcp/udp "--dport": "a", "a:b", ":b", "a:" (iptables-restore accepts all four). */
function portRange(text: string): [number, number] {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const p = port(text);
    return [p, p];
  }
  const lo = colon === 0 ? 0 : port(text.slice(0, colon));
  const hi = colon === text.length - 1 ? 65535 : port(text.slice(colon + 1));
  if (lo > hi) refuse(`port range ${text}: the first port is above the last (iptables refuses it)`);
  return [lo, hi];
}

const ALL_PORTS = IntervalSet.of(0, 65535);

/**
 * A port set's key, with `!` folded in: "!22" and "0:21,23:65535" mean the same. A negated
 * range of every port is refused: iptables-nft 1.8.9 drops the never-matching test and stores a
 * rule that matches every port (seen with nft list ruleset).
 */
function portSetKey(set: IntervalSet, negated: boolean): string {
  const s = negated ? ALL_PORTS.subtract(set) : set;
  if (s.isEmpty) refuse('a negated range of every port never matches, but iptables-nft stores it as matching every port');
  return s.equals(ALL_PORTS) ? '' : `{${s.key}}`;
}

function rangeText([lo, hi]: readonly [number, number]): string {
  return lo === hi ? `${lo}` : `${lo}:${hi}`;
}

const singlePort = (args: readonly string[], negated: boolean): OptionValue => {
  const r = portRange(args[0]);
  return { args: [rangeText(r)], key: portSetKey(IntervalSet.of(r[0], r[1]), negated) };
};

/** multiport: at most 15 entries, a range counting as two (iptables refuses more). */
const multiPorts = (args: readonly string[], negated: boolean, _ctx: ValueContext, either = false): OptionValue => {
  const parts = args[0].split(',');
  const ranges: [number, number][] = [];
  let slots = 0;
  for (const p of parts) {
    if (p === '') refuse(`port list ${JSON.stringify(args[0])} has an empty entry`);
    const colon = p.indexOf(':');
    if (colon < 0) ranges.push([port(p), port(p)]);
    else {
      if (colon === 0 || colon === p.length - 1) refuse(`multiport range ${p} needs both ends`);
      const lo = port(p.slice(0, colon));
      const hi = port(p.slice(colon + 1));
      if (lo >= hi) refuse(`multiport range ${p}: the first port must be below the last (iptables: invalid portrange)`);
      ranges.push([lo, hi]);
    }
    slots += colon < 0 ? 1 : 2;
  }
  if (slots > 15) refuse(`multiport takes at most 15 ports (a range counts as two); ${JSON.stringify(args[0])} has ${slots}`);
  const set = IntervalSet.from(ranges);
  // --ports matches when either port is in the list, so `!` cannot be folded into the set.
  return { args: [ranges.map(rangeText).join(',')], key: either ? `${negated ? '!' : ''}{${set.key}}` : portSetKey(set, negated) || '{all}' };
};

const ICMP4_NAMES: Record<string, readonly [number, number, number]> = {
  any: [255, 0, 255],
  'echo-reply': [0, 0, 255],
  pong: [0, 0, 255],
  'destination-unreachable': [3, 0, 255],
  'network-unreachable': [3, 0, 0],
  'host-unreachable': [3, 1, 1],
  'protocol-unreachable': [3, 2, 2],
  'port-unreachable': [3, 3, 3],
  'fragmentation-needed': [3, 4, 4],
  'source-route-failed': [3, 5, 5],
  'network-unknown': [3, 6, 6],
  'host-unknown': [3, 7, 7],
  'network-prohibited': [3, 9, 9],
  'host-prohibited': [3, 10, 10],
  'TOS-network-unreachable': [3, 11, 11],
  'TOS-host-unreachable': [3, 12, 12],
  'communication-prohibited': [3, 13, 13],
  'host-precedence-violation': [3, 14, 14],
  'precedence-cutoff': [3, 15, 15],
  'source-quench': [4, 0, 255],
  redirect: [5, 0, 255],
  'network-redirect': [5, 0, 0],
  'host-redirect': [5, 1, 1],
  'TOS-network-redirect': [5, 2, 2],
  'TOS-host-redirect': [5, 3, 3],
  'echo-request': [8, 0, 255],
  ping: [8, 0, 255],
  'router-advertisement': [9, 0, 255],
  'router-solicitation': [10, 0, 255],
  'time-exceeded': [11, 0, 255],
  'ttl-exceeded': [11, 0, 255],
  'ttl-zero-during-transit': [11, 0, 0],
  'ttl-zero-during-reassembly': [11, 1, 1],
  'parameter-problem': [12, 0, 255],
  'ip-header-bad': [12, 0, 0],
  'required-option-missing': [12, 1, 1],
  'timestamp-request': [13, 0, 255],
  'timestamp-reply': [14, 0, 255],
  'address-mask-request': [17, 0, 255],
  'address-mask-reply': [18, 0, 255],
};

const ICMP6_NAMES: Record<string, readonly [number, number, number]> = {
  'destination-unreachable': [1, 0, 255],
  'no-route': [1, 0, 0],
  'communication-prohibited': [1, 1, 1],
  'beyond-scope': [1, 2, 2],
  'address-unreachable': [1, 3, 3],
  'port-unreachable': [1, 4, 4],
  'failed-policy': [1, 5, 5],
  'reject-route': [1, 6, 6],
  'packet-too-big': [2, 0, 255],
  'time-exceeded': [3, 0, 255],
  'ttl-exceeded': [3, 0, 255],
  'ttl-zero-during-transit': [3, 0, 0],
  'ttl-zero-during-reassembly': [3, 1, 1],
  'parameter-problem': [4, 0, 255],
  'bad-header': [4, 0, 0],
  'unknown-header-type': [4, 1, 1],
  'unknown-option': [4, 2, 2],
  'echo-request': [128, 0, 255],
  ping: [128, 0, 255],
  'echo-reply': [129, 0, 255],
  pong: [129, 0, 255],
  'router-solicitation': [133, 0, 255],
  'router-advertisement': [134, 0, 255],
  'neighbour-solicitation': [135, 0, 255],
  'neighbor-solicitation': [135, 0, 255],
  'neighbour-advertisement': [136, 0, 255],
  'neighbor-advertisement': [136, 0, 255],
  redirect: [137, 0, 255],
};

/** The ICMP type names iptables knows for a family (exact spellings only). */
export function icmpNames(family: Family): Readonly<Record<string, readonly [number, number, number]>> {
  return family === 4 ? ICMP4_NAMES : ICMP6_NAMES;
}

/** "8", "3/4", a name, or "any" (IPv4) → type and code range. */
function icmpType(text: string, family: Family): { type: number; codes: [number, number]; text: string } {
  const named = icmpNames(family)[text];
  if (named !== undefined) {
    const [type, lo, hi] = named;
    if (type === ICMP4_ANY_TYPE && family === 4) return { type, codes: [lo, hi], text: 'any' };
    return { type, codes: [lo, hi], text: lo === 0 && hi === 255 ? `${type}` : `${type}/${lo}` };
  }
  const m = /^([^/]+)(?:\/(.+))?$/.exec(text);
  if (!m) refuse(`ICMP type ${JSON.stringify(text)} is not readable`);
  const type = decimal(m[1], 0, 255, 'ICMP type');
  // The IPv4 kernel match treats type 255 as "any type", whatever the code (ip_tables.c,
  // icmp_type_code_match); iptables-save prints it as "any". IPv6 has no such wildcard.
  if (type === ICMP4_ANY_TYPE && family === 4) {
    if (m[2] !== undefined) decimal(m[2], 0, 255, 'ICMP code');
    return { type, codes: [0, 255], text: 'any' };
  }
  if (m[2] === undefined) return { type, codes: [0, 255], text: `${type}` };
  const code = decimal(m[2], 0, 255, 'ICMP code');
  return { type, codes: [code, code], text: `${type}/${code}` };
}

const readIcmp = (family: Family) => (args: readonly string[], negated: boolean): OptionValue => {
  const t = icmpType(args[0], family);
  return { args: [t.text], key: `${negated ? '!' : ''}${t.type}/${t.codes[0]}-${t.codes[1]}` };
};

/** Bits of comma-separated names from `names` (exact spellings, each at most once). */
function flagBits(text: string, names: readonly string[], what: string): number {
  let bits = 0;
  for (const part of text.split(',')) {
    const i = names.indexOf(part);
    if (i < 0) refuse(`${what} ${JSON.stringify(part)} is not one of ${names.join(', ')}`);
    bits |= 1 << i;
  }
  return bits;
}

function namesOf(bits: number, names: readonly string[]): string {
  return names.filter((_, i) => (bits & (1 << i)) !== 0).join(',');
}

/** Conntrack states in iptables-save's order. */
const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const STATE_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED'];

const readStates = (names: readonly string[]) => (args: readonly string[], negated: boolean): OptionValue => {
  const bits = flagBits(args[0], names, 'conntrack state');
  return { args: [namesOf(bits, names)], key: `${negated ? '!' : ''}${bits}` };
};

/** Address types in the kernel's order (iptables-save prints them in this order). */
export const ADDRTYPE_NAMES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

const readAddrtype = (args: readonly string[], negated: boolean): OptionValue => {
  const bits = flagBits(args[0], ADDRTYPE_NAMES, 'address type');
  return { args: [namesOf(bits, ADDRTYPE_NAMES)], key: `${negated ? '!' : ''}${bits}` };
};

const TCP_FLAGS: Record<string, number> = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ALL: 0x3f, NONE: 0 };
const TCP_FLAG_ORDER = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];

function tcpFlagBits(text: string): number {
  let bits = 0;
  for (const part of text.split(',')) {
    const b = TCP_FLAGS[part];
    if (b === undefined) refuse(`TCP flag ${JSON.stringify(part)} is not one of ${Object.keys(TCP_FLAGS).join(', ')}`);
    bits |= b;
  }
  return bits;
}

function tcpFlagText(bits: number): string {
  if (bits === 0) return 'NONE';
  return TCP_FLAG_ORDER.filter((f) => (bits & TCP_FLAGS[f]) !== 0).join(',');
}

const readTcpFlags = (mask: number, cmp: number, negated: boolean): OptionValue => {
  // An empty mask compares nothing: it always matches (and iptables-save leaves it out); negated it
  // would never match, a test iptables-nft may drop like the negated full port range.
  if (mask === 0 && negated) refuse('"! --tcp-flags NONE …" never matches, a test iptables-nft may store as matching everything');
  return { args: [tcpFlagText(mask), tcpFlagText(cmp)], key: mask === 0 ? '' : `${negated ? '!' : ''}${mask}/${cmp & mask}` };
};

/** uid/gid: "0" or "0-10" (never a name, which needs the host's passwd). */
const readIdRange = (what: string) => (args: readonly string[], negated: boolean): OptionValue => {
  const m = /^([^-]+)(?:-(.+))?$/.exec(args[0]);
  if (!m) refuse(`${what} ${JSON.stringify(args[0])} is not a number or a range`);
  const lo = decimal(m[1], 0, 4294967294, what);
  const hi = m[2] === undefined ? lo : decimal(m[2], 0, 4294967294, what);
  if (lo > hi) refuse(`${what} range ${args[0]}: the first is above the last`);
  return { args: [lo === hi ? `${lo}` : `${lo}-${hi}`], key: `${negated ? '!' : ''}${lo}-${hi}` };
};

const readRange = (args: readonly string[], negated: boolean, ctx: ValueContext): OptionValue => {
  const dash = args[0].indexOf('-');
  const loText = dash < 0 ? args[0] : args[0].slice(0, dash);
  const hiText = dash < 0 ? args[0] : args[0].slice(dash + 1);
  const lo = literalAddress(loText, ctx.family);
  const hi = literalAddress(hiText, ctx.family);
  if (lo > hi) refuse(`address range ${args[0]}: the first address is above the last`);
  return { args: [`${formatCanonical(lo, ctx.family)}-${formatCanonical(hi, ctx.family)}`], key: `${negated ? '!' : ''}${hexAddress(lo, ctx.family)}-${hexAddress(hi, ctx.family)}` };
};

const readByte = (what: string) => (args: readonly string[], negated: boolean): OptionValue => {
  const n = decimal(args[0], 0, 255, what);
  return { args: [`${n}`], key: `${negated ? '!' : ''}${n}` };
};

const RATE_UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hour: 3600, d: 86400, day: 86400 };

/** "10/min" → the kernel's stored average interval at `scale` (limit 10,000; hashlimit 1,000,000). */
function rate(text: string, scale: bigint, what: string): { avg: bigint; text: string } {
  const m = /^([^/]+)\/(.+)$/.exec(text);
  if (!m || RATE_UNITS[m[2]] === undefined) refuse(`${what} ${JSON.stringify(text)} is not a rate such as 10/min (per s, sec, second, m, min, minute, h, hour, d, day)`);
  const n = decimal(m[1], 1, 1_000_000, `${what} count`);
  const avg = (scale * BigInt(RATE_UNITS[m[2]])) / BigInt(n);
  if (avg === 0n) refuse(`${what} ${text} is faster than iptables can express`);
  return { avg, text: `${n}/${m[2]}` };
}

const readLimit = (args: readonly string[]): OptionValue => {
  const r = rate(args[0], 10_000n, '--limit');
  return { args: [r.text], key: `${r.avg}` };
};

const readHashRate = (args: readonly string[]): OptionValue => {
  const r = rate(args[0], 1_000_000n, 'hashlimit rate');
  return { args: [r.text], key: `${r.avg}` };
};

const readNumber = (what: string, min: number, max: number) => (args: readonly string[]): OptionValue => {
  const n = decimal(args[0], min, max, what);
  return { args: [`${n}`], key: `${n}` };
};

const HASHLIMIT_MODES = ['srcip', 'srcport', 'dstip', 'dstport'];

/**
 * A 32-bit mark: "0x10000000" (hex, as iptables-save prints it) or a decimal without leading
 * zeros (iptables would read 010 as octal).
 */
function mark32(text: string, what: string): bigint {
  let n: bigint;
  if (/^0x[0-9a-fA-F]{1,8}$/.test(text)) n = BigInt(text);
  else if (DECIMAL.test(text)) n = BigInt(text);
  else refuse(`${what} ${JSON.stringify(text)} is not a hex (0x…) or decimal number`);
  if (n > 0xffffffffn) refuse(`${what} ${text} is wider than 32 bits`);
  return n;
}

/** "value[/mask]": the mask defaults to every bit. */
function markAndMask(text: string, what: string): { value: bigint; mask: bigint } {
  const [v, m, extra] = text.split('/');
  if (extra !== undefined) refuse(`${what} ${JSON.stringify(text)} has more than one "/"`);
  return { value: mark32(v, what), mask: m === undefined ? 0xffffffffn : mark32(m, `${what} mask`) };
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;

/** -m connmark --mark value[/mask]: (the connection's mark & mask) == value. */
const readConnmark = (args: readonly string[], negated: boolean): OptionValue => {
  const { value, mask } = markAndMask(args[0], '--mark');
  return { args: [mask === 0xffffffffn ? hex(value) : `${hex(value)}/${hex(mask)}`], key: `${negated ? '!' : ''}${hex(value)}/${hex(mask)}` };
};

/** Text iptables keeps as given (a comment, a LOG prefix, an ipset name): at most `max` bytes. */
const readText = (what: string, max: number, pattern?: RegExp) => (args: readonly string[]): OptionValue => {
  const t = args[0];
  if (t === '') refuse(`${what} is empty`);
  if (Buffer.byteLength(t) > max) refuse(`${what} is longer than ${max} bytes (iptables refuses it)`);
  if (pattern !== undefined && !pattern.test(t)) refuse(`${what} ${JSON.stringify(t)} has characters twinwall does not read`);
  return { args: [t], key: JSON.stringify(t) };
};

const flag = (_args: readonly string[], negated: boolean, _ctx?: ValueContext): OptionValue => ({ args: [], key: negated ? '!' : '+' });

// ---------------------------------------------------------------------------------------------
// Base options

/** Protocol names iptables resolves the same way on every host (Debian netbase /etc/protocols and xtables' own table). */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  all: 0, ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12, udp: 17, hmp: 20,
  'xns-idp': 22, rdp: 27, 'iso-tp4': 29, dccp: 33, xtp: 36, ddp: 37, 'idpr-cmtp': 38, ipv6: 41, 'ipv6-route': 43,
  'ipv6-frag': 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59,
  'ipv6-opts': 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89, 'ax.25': 93, ipip: 94, etherip: 97, encap: 98, pim: 103,
  ipcomp: 108, vrrp: 112, l2tp: 115, isis: 124, sctp: 132, fc: 133, 'mobility-header': 135, mh: 135, 'ipv6-mh': 135,
  udplite: 136, 'mpls-in-ip': 137, manet: 138, hip: 139, shim6: 140, wesp: 141, rohc: 142, ethernet: 143,
};

/** `-p`'s value: iptables lowercases it, then reads a number or a name. */
export function protocolNumber(text: string): number {
  if (DECIMAL.test(text)) return decimal(text, 0, 255, 'protocol');
  const n = PROTOCOL_NUMBERS[text.toLowerCase()];
  if (n === undefined) refuse(`protocol ${JSON.stringify(text)} is not a number or a name twinwall knows the number of`);
  return n;
}

const IFNAME = /^[A-Za-z0-9_.-]+\+?$/;

const readInterface = (args: readonly string[], negated: boolean): OptionValue => {
  const t = args[0];
  if (t === '' || t.length > 15 || !IFNAME.test(t)) refuse(`interface ${JSON.stringify(t)} is not a plain interface name of at most 15 characters`);
  return { args: [t], key: `${negated ? '!' : ''}${t}` };
};

/** The base options of every rule (-p, -s, -d, -i, -o, -f). */
export const BASE_OPTIONS: readonly OptionSpec[] = [
  {
    name: '-p',
    aliases: ['--protocol'],
    words: 1,
    invert: true,
    read: (args, negated) => {
      const n = protocolNumber(args[0]);
      if (n === 0 && negated) refuse('"! -p all" never matches (iptables refuses it)');
      return { args: [`${n}`], key: n === 0 ? '' : `${negated ? '!' : ''}${n}` };
    },
  },
  { name: '-s', aliases: ['--source', '--src'], words: 1, invert: true, read: () => refuse('addresses are read by the rule grammar') },
  { name: '-d', aliases: ['--destination', '--dst'], words: 1, invert: true, read: () => refuse('addresses are read by the rule grammar') },
  { name: '-i', aliases: ['--in-interface'], words: 1, invert: true, read: readInterface },
  { name: '-o', aliases: ['--out-interface'], words: 1, invert: true, read: readInterface },
  {
    name: '-f',
    aliases: ['--fragment'],
    words: 0,
    invert: true,
    read: (args, negated, ctx) => {
      if (ctx.family === 6) refuse('-f does not exist in ip6tables');
      return flag(args, negated, ctx);
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Match modules

const PORTS_TCP: readonly OptionSpec[] = [
  { name: '--sport', aliases: ['--source-port'], words: 1, invert: true, read: singlePort },
  { name: '--dport', aliases: ['--destination-port'], words: 1, invert: true, read: singlePort },
];

export const MODULES: Readonly<Record<string, ModuleSpec>> = {
  tcp: {
    name: 'tcp',
    families: [4, 6],
    protocols: [6],
    dropWhenEmpty: true,
    options: [
      ...PORTS_TCP,
      { name: '--syn', keyAs: '--tcp-flags', words: 0, invert: true, read: (_a, negated) => readTcpFlags(0x17, 0x02, negated) },
      {
        name: '--tcp-flags',
        words: 2,
        invert: true,
        read: (args, negated) => readTcpFlags(tcpFlagBits(args[0]), tcpFlagBits(args[1]), negated),
      },
    ],
    exclusive: [['--syn', '--tcp-flags']],
  },
  udp: { name: 'udp', families: [4, 6], protocols: [17], dropWhenEmpty: true, options: PORTS_TCP },
  icmp: {
    name: 'icmp',
    families: [4],
    protocols: [1],
    options: [{ name: '--icmp-type', words: 1, invert: true, read: readIcmp(4) }],
    required: [['--icmp-type']],
  },
  icmp6: {
    name: 'icmp6',
    families: [6],
    protocols: [58],
    options: [{ name: '--icmpv6-type', words: 1, invert: true, read: readIcmp(6) }],
    required: [['--icmpv6-type']],
  },
  multiport: {
    name: 'multiport',
    families: [4, 6],
    protocols: [6, 17, 33, 132, 136],
    options: [
      { name: '--sports', aliases: ['--source-ports'], words: 1, invert: true, read: (a, n, c) => multiPorts(a, n, c) },
      { name: '--dports', aliases: ['--destination-ports'], words: 1, invert: true, read: (a, n, c) => multiPorts(a, n, c) },
      { name: '--ports', words: 1, invert: true, read: (a, n, c) => multiPorts(a, n, c, true) },
    ],
    needsOption: true,
    exclusive: [['--sports', '--dports', '--ports']],
  },
  conntrack: {
    name: 'conntrack',
    families: [4, 6],
    options: [{ name: '--ctstate', words: 1, invert: true, read: readStates(CT_STATES) }],
    needsOption: true,
  },
  state: {
    name: 'state',
    families: [4, 6],
    options: [{ name: '--state', words: 1, invert: true, read: readStates(STATE_STATES) }],
    required: [['--state']],
  },
  comment: {
    name: 'comment',
    families: [4, 6],
    options: [{ name: '--comment', words: 1, invert: false, read: readText('--comment', 255) }],
    required: [['--comment']],
  },
  owner: {
    name: 'owner',
    families: [4, 6],
    options: [
      { name: '--uid-owner', words: 1, invert: true, read: readIdRange('uid') },
      { name: '--gid-owner', words: 1, invert: true, read: readIdRange('gid') },
      { name: '--socket-exists', words: 0, invert: true, read: flag },
    ],
    needsOption: true,
  },
  addrtype: {
    name: 'addrtype',
    families: [4, 6],
    options: [
      { name: '--src-type', words: 1, invert: true, read: readAddrtype },
      { name: '--dst-type', words: 1, invert: true, read: readAddrtype },
    ],
    needsOption: true,
    // xt_addrtype refuses BROADCAST, BLACKHOLE and PROHIBIT and beyond for IPv6.
    check: (options, ctx) => {
      if (ctx.family !== 6) return;
      const allowed = ['UNSPEC', 'UNICAST', 'LOCAL', 'ANYCAST', 'MULTICAST', 'UNREACHABLE'];
      for (const o of options.values()) {
        const bad = o.value.args[0].split(',').filter((t) => !allowed.includes(t));
        if (bad.length > 0) refuse(`-m addrtype ${o.spec.name} ${bad.join(',')}: the kernel does not match these for IPv6 (it refuses the rule)`);
      }
    },
  },
  set: {
    name: 'set',
    families: [4, 6],
    options: [
      {
        name: '--match-set',
        words: 2,
        invert: true,
        read: (args, negated) => {
          const name = readText('ipset name', 31, /^[A-Za-z0-9_.:-]+$/)([args[0]]);
          const dirs = args[1].split(',');
          if (dirs.length > 6 || dirs.some((d) => d !== 'src' && d !== 'dst')) refuse(`--match-set flags ${JSON.stringify(args[1])} are not a list of src and dst`);
          return { args: [args[0], dirs.join(',')], key: `${negated ? '!' : ''}${name.key} ${dirs.join(',')}` };
        },
      },
    ],
    required: [['--match-set']],
  },
  iprange: {
    name: 'iprange',
    families: [4, 6],
    options: [
      { name: '--src-range', words: 1, invert: true, read: readRange },
      { name: '--dst-range', words: 1, invert: true, read: readRange },
    ],
    needsOption: true,
  },
  hl: {
    name: 'hl',
    families: [6],
    options: [
      { name: '--hl-eq', words: 1, invert: true, read: readByte('hop limit') },
      { name: '--hl-lt', words: 1, invert: false, read: readByte('hop limit') },
      { name: '--hl-gt', words: 1, invert: false, read: readByte('hop limit') },
    ],
    needsOption: true,
    exclusive: [['--hl-eq', '--hl-lt', '--hl-gt']],
  },
  ttl: {
    name: 'ttl',
    families: [4],
    options: [
      { name: '--ttl-eq', words: 1, invert: true, read: readByte('TTL') },
      { name: '--ttl-lt', words: 1, invert: false, read: readByte('TTL') },
      { name: '--ttl-gt', words: 1, invert: false, read: readByte('TTL') },
    ],
    needsOption: true,
    exclusive: [['--ttl-eq', '--ttl-lt', '--ttl-gt']],
  },
  limit: {
    name: 'limit',
    families: [4, 6],
    options: [
      { name: '--limit', words: 1, invert: false, read: readLimit },
      { name: '--limit-burst', words: 1, invert: false, read: readNumber('--limit-burst', 1, 10000) },
    ],
    defaults: { '--limit': `${(10_000n * 3600n) / 3n}`, '--limit-burst': '5' },
    // xt_limit refuses a rate whose average times burst overflows 32 bits (the nf_tables
    // backend does not, but a host may use the legacy one).
    check: (options) => {
      const avg = BigInt(options.get('--limit')?.value.key ?? `${(10_000n * 3600n) / 3n}`);
      const burst = BigInt(options.get('--limit-burst')?.value.key ?? '5');
      if (avg * burst > 0xffffffffn) refuse(`-m limit: ${options.get('--limit')?.value.args[0] ?? '3/hour'} with burst ${burst} overflows the kernel's counters (xt_limit refuses it)`);
    },
  },
  hashlimit: {
    name: 'hashlimit',
    families: [4, 6],
    options: [
      { name: '--hashlimit-upto', words: 1, invert: false, read: readHashRate },
      { name: '--hashlimit-above', words: 1, invert: false, read: readHashRate },
      { name: '--hashlimit-burst', words: 1, invert: false, read: readNumber('--hashlimit-burst', 1, 10000) },
      {
        name: '--hashlimit-mode',
        words: 1,
        invert: false,
        read: (args) => {
          const bits = flagBits(args[0], HASHLIMIT_MODES, 'hashlimit mode');
          return { args: [namesOf(bits, HASHLIMIT_MODES)], key: `${bits}` };
        },
      },
      { name: '--hashlimit-name', words: 1, invert: false, read: readText('--hashlimit-name', 15, /^[A-Za-z0-9_.-]+$/) },
      { name: '--hashlimit-htable-size', words: 1, invert: false, read: readNumber('--hashlimit-htable-size', 1, 1_000_000) },
      { name: '--hashlimit-htable-max', words: 1, invert: false, read: readNumber('--hashlimit-htable-max', 1, 1_000_000) },
      { name: '--hashlimit-htable-expire', words: 1, invert: false, read: readNumber('--hashlimit-htable-expire', 1, 100_000_000) },
      { name: '--hashlimit-htable-gcinterval', words: 1, invert: false, read: readNumber('--hashlimit-htable-gcinterval', 1, 100_000_000) },
    ],
    required: [['--hashlimit-upto', '--hashlimit-above'], ['--hashlimit-name']],
    exclusive: [['--hashlimit-upto', '--hashlimit-above']],
    // Without --hashlimit-htable-expire, iptables sets it to the rate's unit in milliseconds
    // (10/min: 60,000; 96/day: 86,400,000).
    defaults: (options) => {
      const rateText = (options.get('--hashlimit-upto') ?? options.get('--hashlimit-above'))?.value.args[0] ?? '1/s';
      return { '--hashlimit-burst': '5', '--hashlimit-mode': '0', '--hashlimit-htable-expire': `${RATE_UNITS[rateText.split('/')[1]] * 1000}`, '--hashlimit-htable-gcinterval': '1000' };
    },
    // xt_hashlimit turns average times burst into credits in 64 bits, scaled by about 2^27
    // whatever HZ is; a product beyond 8e10 can wrap, and then the kernel refuses the rule or
    // not depending on how it wrapped (1/day with burst 5 is refused, with burst 1000 taken).
    check: (options) => {
      const rateOption = options.get('--hashlimit-upto') ?? options.get('--hashlimit-above');
      const avg = BigInt(rateOption?.value.key ?? '0');
      const burst = BigInt(options.get('--hashlimit-burst')?.value.key ?? '5');
      if (avg * burst > 80_000_000_000n) refuse(`-m hashlimit: ${rateOption?.value.args[0]} with burst ${burst} is too slow for the kernel's credit arithmetic (it may refuse the rule)`);
    },
  },
  // A connection's mark is state the flow model does not track: a rule that decides with it is
  // undecidable to the host model. twinwall's audit mode only logs with it ("logged once").
  connmark: {
    name: 'connmark',
    families: [4, 6],
    options: [{ name: '--mark', words: 1, invert: true, read: readConnmark }],
    required: [['--mark']],
  },
};

// ---------------------------------------------------------------------------------------------
// Targets

export interface TargetSpec {
  readonly name: string;
  readonly options: readonly OptionSpec[];
  readonly defaults?: Readonly<Record<string, string>>;
  /** Further checks on the target's options and the rule's protocol. */
  readonly check?: (options: ReadonlyMap<string, ReadOption>, ctx: ValueContext & { protocol?: { number: number; negated: boolean } }) => void;
}

const LOG_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'];

const REJECT_WITH: Record<Family, Record<string, string>> = {
  4: {
    'icmp-net-unreachable': 'icmp-net-unreachable',
    'net-unreach': 'icmp-net-unreachable',
    'icmp-host-unreachable': 'icmp-host-unreachable',
    'host-unreach': 'icmp-host-unreachable',
    'icmp-proto-unreachable': 'icmp-proto-unreachable',
    'proto-unreach': 'icmp-proto-unreachable',
    'icmp-port-unreachable': 'icmp-port-unreachable',
    'port-unreach': 'icmp-port-unreachable',
    'icmp-net-prohibited': 'icmp-net-prohibited',
    'net-prohib': 'icmp-net-prohibited',
    'icmp-host-prohibited': 'icmp-host-prohibited',
    'host-prohib': 'icmp-host-prohibited',
    'icmp-admin-prohibited': 'icmp-admin-prohibited',
    'admin-prohib': 'icmp-admin-prohibited',
    'tcp-reset': 'tcp-reset',
  },
  6: {
    'icmp6-no-route': 'icmp6-no-route',
    'no-route': 'icmp6-no-route',
    'icmp6-adm-prohibited': 'icmp6-adm-prohibited',
    'adm-prohibited': 'icmp6-adm-prohibited',
    'icmp6-addr-unreachable': 'icmp6-addr-unreachable',
    'addr-unreach': 'icmp6-addr-unreachable',
    'icmp6-port-unreachable': 'icmp6-port-unreachable',
    'port-unreach': 'icmp6-port-unreachable',
    'tcp-reset': 'tcp-reset',
  },
};

export const TARGETS: Readonly<Record<string, TargetSpec>> = {
  ACCEPT: { name: 'ACCEPT', options: [] },
  DROP: { name: 'DROP', options: [] },
  RETURN: { name: 'RETURN', options: [] },
  LOG: {
    name: 'LOG',
    options: [
      {
        name: '--log-prefix',
        words: 1,
        invert: false,
        read: (args) => {
          if (/[\n\r]/.test(args[0])) refuse('--log-prefix holds a line break');
          return readText('--log-prefix', 29)(args);
        },
      },
      {
        name: '--log-level',
        words: 1,
        invert: false,
        read: (args) => {
          const named = LOG_LEVELS.indexOf(args[0]);
          const n = named >= 0 ? named : decimal(args[0], 0, 7, '--log-level');
          return { args: [`${n}`], key: `${n}` };
        },
      },
      { name: '--log-tcp-sequence', words: 0, invert: false, read: flag },
      { name: '--log-tcp-options', words: 0, invert: false, read: flag },
      { name: '--log-ip-options', words: 0, invert: false, read: flag },
      { name: '--log-uid', words: 0, invert: false, read: flag },
      { name: '--log-macdecode', words: 0, invert: false, read: flag },
    ],
    defaults: { '--log-level': '4' },
  },
  // Sets bits of the connection's mark and continues (twinwall's audit mode: "logged once").
  // Only the spelling iptables-save prints is read: --set-xmark value/mask, the new mark being
  // (mark & ~mask) ^ value. --set-mark, --or-mark, --save-mark … are refused.
  CONNMARK: {
    name: 'CONNMARK',
    options: [
      {
        name: '--set-xmark',
        words: 1,
        invert: false,
        read: (args) => {
          const { value, mask } = markAndMask(args[0], '--set-xmark');
          return { args: [`${hex(value)}/${hex(mask)}`], key: `${hex(value)}/${hex(mask)}` };
        },
      },
    ],
    check: (options) => {
      if (!options.has('--set-xmark')) refuse('-j CONNMARK without --set-xmark (twinwall reads only that spelling)');
    },
  },
  REJECT: {
    name: 'REJECT',
    options: [
      {
        name: '--reject-with',
        words: 1,
        invert: false,
        read: (args, _n, ctx) => {
          const canonical = REJECT_WITH[ctx.family][args[0]];
          if (canonical === undefined) refuse(`--reject-with ${JSON.stringify(args[0])} is not one of ${Object.keys(REJECT_WITH[ctx.family]).join(', ')}`);
          return { args: [canonical], key: canonical };
        },
      },
    ],
    check: (options, ctx) => {
      const w = options.get('--reject-with')?.value.key;
      if (w === 'tcp-reset' && (ctx.protocol === undefined || ctx.protocol.number !== 6 || ctx.protocol.negated)) refuse('--reject-with tcp-reset needs -p tcp (the kernel refuses the rule otherwise)');
    },
  },
};

/** The default `--reject-with` of a family (iptables-save prints it). */
export function defaultRejectWith(family: Family): string {
  return family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
}

/** Targets that are not chain names, so a user chain may not be called that. */
export function isTargetName(name: string): boolean {
  return /^[A-Z0-9_]+$/.test(name);
}
