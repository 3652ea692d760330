/**
 * The nftables host wall (lib/render/nftables.ts), read exactly — or refused — into the model the
 * iptables reader produces: one IptDocument per address family, so the host model, the
 * host-only part against the wall record, `explain` and `verify` work on it unchanged. Pure.
 *
 * How: every rule of `table inet twinwall` is translated, statement by statement, into the
 * iptables-restore words with the same kernel meaning, into the family it can match (`ip …`,
 * `icmp …` and `meta nfproto ipv4` make it IPv4 only: nft adds the `meta nfproto` dependency;
 * `ip6 …`, `icmpv6 …`, `meta nfproto ipv6` IPv6 only; a rule with none of them is in both), and
 * the resulting documents are read by parseIptablesRestore. Base chains are the built-in chains
 * of their hook (INPUT, FORWARD, OUTPUT); the interval sets become hash:net sets. Each rule keeps
 * its position in its nft chain and its line in the file; its text is the translation.
 *
 * The statements read, and what each means to the kernel:
 *   iifname/oifname "NAME"                -i/-o NAME
 *   meta nfproto ipv4|ipv6                 the family (no match of its own)
 *   meta l4proto P                         -p P
 *   ip|ip6 saddr|daddr [!=] A|@set         [!] -s/-d A, or -m set [!] --match-set set src|dst
 *   ip ttl N, ip6 hoplimit N               -m ttl --ttl-eq N, -m hl --hl-eq N
 *   tcp|udp sport|dport [!=] N[-M]          -p tcp|udp -m tcp|udp [!] --sport/--dport N[:M]
 *   icmp type T [icmp code C]              -p icmp -m icmp --icmp-type T[/C]   (icmpv6: icmp6; not IPv4 type 255)
 *   ct state S,…                           -m conntrack --ctstate S,…
 *   ct mark & M == V                       -m connmark --mark V/M
 *   ct mark V, ct mark V/N                 the same, M all ones or N leading ones (see below)
 *   fib saddr type [!=] local              -m addrtype [!] --src-type LOCAL (see nftables.ts)
 *   meta skuid N                           -m owner --uid-owner N
 *   limit rate N/unit burst B packets      -m limit --limit N/unit --limit-burst B
 *   log prefix "P" [flags skuid]           -j LOG --log-prefix "P" [--log-uid]
 *   ct mark set ct mark | M                -j CONNMARK --set-xmark M/M
 *   accept, drop, return, jump C, goto C   -j ACCEPT, DROP, RETURN, -j C, -g C
 *   comment "…"                            -m comment --comment "…"
 * Anything else — another statement or operator, a name where a number belongs, a host name, a
 * base chain at another priority (conntrack runs at -200: a chain before it sees no state), a
 * second base chain on one hook, table flags, another table, a `#` after a statement, a set
 * without `flags interval` holding prefixes, overlapping elements (nft refuses them) — is a
 * problem of the document, and the checker then decides nothing about the wall (a finding).
 *
 * Two spellings are read: the file the renderer writes (`form: 'file'`, which must begin by
 * replacing the table: `add table`, `delete table`, then the definition, one transaction), and
 * what `nft -n list table inet twinwall` prints (`form: 'listing'`: numbers for states, families,
 * hooks' priorities and address types; set elements wrapped over lines), which `verify` reads
 * back from the kernel.
 */
import { AddressSet, Cidr, Family, familyBits } from '../address';
import { IpsetDefinition } from './ipset';
import { IptChain, IptDocument, IptProblem, IptRule, IptTable, parseIptablesRestore, placedRule, quoteWord } from './iptables-parse';
import { PROTOCOL_NUMBERS } from './iptables-modules';
import { ICMP4_ANY_TYPE, protocolName } from '../port';
import { IntervalSet } from './space';
import { Memo } from '../memo';

/** The one table twinwall's nftables wall lives in (lib/render/nftables.ts, NFT_TABLE). */
export const NFT_READ_TABLE = { family: 'inet', name: 'twinwall' } as const;

export interface NftSetDefinition {
  readonly name: string;
  readonly family: Family;
  /** The elements as written, in order. */
  readonly elements: readonly string[];
  readonly line: number;
}

/** One rule as nft has it, before translation. */
export interface NftRuleSource {
  readonly chain: string;
  /** 1-based position in its nft chain. */
  readonly position: number;
  readonly line: number;
  /** The rule's statements as written, comment aside. */
  readonly text: string;
}

export interface NftablesWall {
  readonly form: 'file' | 'listing';
  /** The interval sets, as the set model reads them (hash:net). */
  readonly sets: ReadonlyMap<string, IpsetDefinition>;
  readonly setSources: readonly NftSetDefinition[];
  /** The table as each family sees it, in the iptables reader's model. */
  readonly documents: Readonly<Record<Family, IptDocument>>;
  /** What the reader refuses (nft line numbers); also in each document's problems. */
  readonly problems: readonly IptProblem[];
}

class NftRefusal extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

interface Token {
  readonly kind: 'word' | 'string' | 'punct' | 'nl';
  readonly text: string;
  readonly line: number;
}

const WORD = /^[A-Za-z0-9_.:/@!=&|-]$/;
const STRING_CHAR = /^[\x20-\x21\x23-\x7e]$/;
/** The two classes above as a table by character code (ASCII; nothing else is either). */
const CHAR_CLASS = Uint8Array.from({ length: 128 }, (_, code) => (WORD.test(String.fromCharCode(code)) ? 1 : 0) | (STRING_CHAR.test(String.fromCharCode(code)) ? 2 : 0));
const isWordChar = (code: number): boolean => code < 128 && (CHAR_CLASS[code] & 1) !== 0;
const isStringChar = (code: number): boolean => code < 128 && (CHAR_CLASS[code] & 2) !== 0;

/** Split the text into tokens: words, "strings", { } ; , and line ends. */
function tokenizeNft(text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  let lineHasToken = false;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      out.push({ kind: 'nl', text: '\n', line });
      line++;
      i++;
      lineHasToken = false;
      continue;
    }
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') {
      // nft reads "#" to the end of the line as a comment anywhere outside a string; twinwall
      // writes whole comment lines only, and refuses one after a statement.
      if (lineHasToken) throw new NftRefusal('a "#" comment after a statement (twinwall reads whole comment lines only)', line);
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    lineHasToken = true;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') {
        if (!isStringChar(text.charCodeAt(j))) throw new NftRefusal(`a string holds ${JSON.stringify(text[j])}: twinwall reads printable ASCII without "\\" in strings`, line);
        if (text[j] === '\\') throw new NftRefusal('a string holds "\\"', line);
        j++;
      }
      if (j >= text.length) throw new NftRefusal('a string is never closed', line);
      out.push({ kind: 'string', text: text.slice(i + 1, j), line });
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '}' || c === ';' || c === ',') {
      out.push({ kind: 'punct', text: c, line });
      i++;
      continue;
    }
    if (!isWordChar(text.charCodeAt(i))) throw new NftRefusal(`the character ${JSON.stringify(c)} is not one twinwall reads in an nftables file`, line);
    let j = i;
    while (j < text.length && isWordChar(text.charCodeAt(j))) j++;
    out.push({ kind: 'word', text: text.slice(i, j), line });
    i = j;
  }
  return out;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function num(text: string, min: number, max: number, what: string, line: number): number {
  if (!DECIMAL.test(text)) throw new NftRefusal(`${what} ${JSON.stringify(text)} is not a decimal number`, line);
  const n = Number(text);
  if (n < min || n > max) throw new NftRefusal(`${what} ${text} is outside ${min}-${max}`, line);
  return n;
}

/** The protocol names read after `meta l4proto` (nft knows these); their numbers are iptables-modules.ts's. */
const L4PROTO_NAMES = new Set(['icmp', 'tcp', 'udp', 'ipv6-icmp', 'icmpv6', 'udplite', 'sctp', 'dccp', 'gre', 'esp', 'ah']);

/** `meta l4proto`'s value: a name above or a number, never 0 (to iptables `-p 0` is every protocol). */
function l4proto(value: string, line: number): number {
  const p = L4PROTO_NAMES.has(value) ? PROTOCOL_NUMBERS[value] : DECIMAL.test(value) ? num(value, 0, 255, 'meta l4proto', line) : undefined;
  if (p === undefined) throw new NftRefusal(`meta l4proto ${value} is not a protocol twinwall reads`, line);
  if (p === 0) throw new NftRefusal('meta l4proto 0 matches protocol 0 alone, which iptables cannot say (-p 0 is every protocol), and is not modelled', line);
  return p;
}
const NFPROTO: Record<string, Family> = { ipv4: 4, '2': 4, ipv6: 6, '10': 6 };
/** conntrack state bits as `nft -n` prints them. */
const CT_STATE_BITS: Record<string, string> = { '0x1': 'INVALID', '0x2': 'ESTABLISHED', '0x4': 'RELATED', '0x8': 'NEW', '0x40': 'UNTRACKED' };
const CT_STATES = ['invalid', 'established', 'related', 'new', 'untracked'];
const RATE_UNITS: Record<string, string> = { second: 'sec', minute: 'min', hour: 'hour', day: 'day' };

function ctStates(text: string, line: number): string {
  const out: string[] = [];
  for (const s of text.split(',')) {
    if (CT_STATES.includes(s)) out.push(s.toUpperCase());
    else {
      const bit = CT_STATE_BITS[s.toLowerCase()];
      if (bit === undefined) throw new NftRefusal(`ct state ${JSON.stringify(s)} is not one twinwall reads`, line);
      out.push(bit);
    }
  }
  return out.join(',');
}

function mark32(text: string, line: number): bigint {
  if (!/^0x[0-9a-fA-F]{1,8}$/.test(text) && !DECIMAL.test(text)) throw new NftRefusal(`mark ${JSON.stringify(text)} is not a 32-bit number`, line);
  const n = BigInt(text);
  if (n > 0xffffffffn) throw new NftRefusal(`mark ${text} is wider than 32 bits`, line);
  return n;
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;

/** A literal address or prefix of `family` as nft reads it (no names, no host bits). */
function literal(text: string, family: Family, line: number): Cidr {
  const withLength = text.includes('/') ? text : `${text}/${familyBits(family)}`;
  let c: Cidr;
  try {
    c = Cidr.of(withLength);
  } catch (e) {
    throw new NftRefusal(`${JSON.stringify(text)} is not a literal IPv${family} address or prefix without host bits (${(e as Error).message.split('\n')[0]})`, line);
  }
  if (c.family !== family) throw new NftRefusal(`${text} is not an IPv${family} address`, line);
  return c;
}

interface Match {
  module: string;
  words: string[];
}

/** One rule's statements → the family it can match and the iptables words with its meaning. */
/** A rule's translation as parseNftables uses it: its family, its iptables words quoted after "-A chain", its text. */
interface TranslatedRule {
  readonly family?: Family;
  readonly command: string;
  readonly text: string;
}

/**
 * Rules already translated, by the document's context (the form, the regular chains, each set's
 * name and family: all translateRule reads besides the rule) and then the rule's tokens (kind and
 * text; their line numbers only go into refusals, which are not kept). The hosts of a fleet
 * repeat most rules; each is translated once. Bounded (lib/memo.ts): 16 contexts of 2,048 rules.
 */
const TRANSLATED = new Memo<Memo<TranslatedRule>>(16);

function translatedRule(tokens: readonly Token[], sets: ReadonlyMap<string, NftSetDefinition>, chains: ReadonlySet<string>, form: 'file' | 'listing'): TranslatedRule {
  const r = translateRule(tokens, sets, chains, form);
  let command = '';
  for (const w of r.words) command += ` ${quoteWord(w)}`;
  const text = ruleText(tokens);
  return r.family !== undefined ? { family: r.family, command, text } : { command, text };
}

function translateRule(words: readonly Token[], sets: ReadonlyMap<string, NftSetDefinition>, chains: ReadonlySet<string>, form: 'file' | 'listing'): { family?: Family; words: string[]; comment?: string } {
  const line = words[0].line;
  let family: Family | undefined;
  const setFamily = (f: Family, why: string): void => {
    if (family !== undefined && family !== f) throw new NftRefusal(`${why} in a rule that is IPv${family} only: the rule matches nothing`, line);
    family = f;
  };
  const base: string[] = [];
  let iface: string[] | undefined;
  const addr: Record<'-s' | '-d', string[] | undefined> = { '-s': undefined, '-d': undefined };
  let proto: number | undefined;
  const setProto = (p: number): void => {
    if (proto !== undefined && proto !== p) throw new NftRefusal(`protocol ${p} in a rule that already requires protocol ${proto}: the rule matches nothing`, line);
    proto = p;
  };
  const matches: Match[] = [];
  let target: string[] | undefined;
  let terminal = false;
  let comment: string | undefined;
  let i = 0;
  const peek = (k = 0): Token | undefined => words[i + k];
  const next = (what: string): Token => {
    const t = words[i++];
    if (t === undefined) throw new NftRefusal(`the rule ends where ${what} belongs`, line);
    return t;
  };
  const word = (what: string): string => {
    const t = next(what);
    if (t.kind !== 'word') throw new NftRefusal(`${JSON.stringify(t.text)} where ${what} belongs`, line);
    return t.text;
  };
  const expect = (text: string): void => {
    const t = next(text);
    if (t.kind !== 'word' || t.text !== text) throw new NftRefusal(`${JSON.stringify(t.text)} where "${text}" belongs`, line);
  };
  const negatedOp = (): boolean => {
    if (peek()?.kind === 'word' && peek()?.text === '!=') {
      i++;
      return true;
    }
    return false;
  };
  const setTarget = (t: string[], ends: boolean): void => {
    if (target !== undefined) throw new NftRefusal(`${t.join(' ')} after ${target.join(' ')}: one rule does one thing in twinwall's reading (as an iptables rule)`, line);
    target = t;
    terminal = ends;
  };
  /** Append options to the last match when it is `module` (consecutive tcp/udp ports), else a new match. */
  const addMatch = (module: string, opts: string[], merge = false): void => {
    const last = matches[matches.length - 1];
    if (merge && last !== undefined && last.module === module) last.words.push(...opts);
    else matches.push({ module, words: opts });
  };
  while (i < words.length) {
    if (terminal && !(peek()?.text === 'comment' && peek()?.kind === 'word')) throw new NftRefusal(`${JSON.stringify(peek()?.text)} after the verdict`, line);
    const t = next('a statement');
    if (t.kind !== 'word') throw new NftRefusal(`${JSON.stringify(t.text)} where a statement belongs`, line);
    switch (t.text) {
      case 'iifname':
      case 'oifname': {
        const name = next('an interface name');
        if (name.kind !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(name.text)) throw new NftRefusal(`${t.text} ${JSON.stringify(name.text)}: twinwall reads a quoted interface name without wildcards`, line);
        if (iface !== undefined) throw new NftRefusal(`a second interface match`, line);
        iface = [t.text === 'iifname' ? '-i' : '-o', name.text];
        break;
      }
      case 'meta': {
        const key = word('a meta key');
        const value = word(`meta ${key}'s value`);
        if (key === 'nfproto') {
          const f = NFPROTO[value];
          if (f === undefined) throw new NftRefusal(`meta nfproto ${value} is not ipv4 or ipv6`, line);
          setFamily(f, `meta nfproto ${value}`);
        } else if (key === 'l4proto') {
          setProto(l4proto(value, line));
        } else if (key === 'skuid') {
          addMatch('owner', ['--uid-owner', String(num(value, 0, 4294967295, 'meta skuid', line))]);
        } else throw new NftRefusal(`meta ${key} is not modelled`, line);
        break;
      }
      case 'ip':
      case 'ip6': {
        const f: Family = t.text === 'ip' ? 4 : 6;
        setFamily(f, t.text);
        const field = word(`an ${t.text} field`);
        if (field === 'saddr' || field === 'daddr') {
          const neg = negatedOp();
          const value = word('an address');
          const side = field === 'saddr' ? 'src' : 'dst';
          if (value.startsWith('@')) {
            const name = value.slice(1);
            const set = sets.get(name);
            if (set === undefined) throw new NftRefusal(`set ${name} is not defined in the table (nft refuses the file)`, line);
            if (set.family !== f) throw new NftRefusal(`${t.text} ${field} @${name}: the set holds IPv${set.family} addresses (nft refuses the file)`, line);
            addMatch('set', [...(neg ? ['!'] : []), '--match-set', name, side]);
          } else {
            const opt = field === 'saddr' ? '-s' : '-d';
            if (addr[opt] !== undefined) throw new NftRefusal(`a second ${t.text} ${field}`, line);
            addr[opt] = [...(neg ? ['!'] : []), opt, literal(value, f, line).text];
          }
        } else if ((field === 'hoplimit' && f === 6) || (field === 'ttl' && f === 4)) {
          const n = num(word(`${field}'s value`), 0, 255, field, line);
          addMatch(f === 6 ? 'hl' : 'ttl', [f === 6 ? '--hl-eq' : '--ttl-eq', String(n)]);
        } else throw new NftRefusal(`${t.text} ${field} is not modelled`, line);
        break;
      }
      case 'tcp':
      case 'udp': {
        setProto(PROTOCOL_NUMBERS[t.text]);
        const field = word('sport or dport');
        if (field !== 'sport' && field !== 'dport') throw new NftRefusal(`${t.text} ${field} is not modelled`, line);
        const neg = negatedOp();
        const value = word('a port');
        const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(value);
        if (!m) throw new NftRefusal(`${t.text} ${field} ${JSON.stringify(value)} is not a port or a range`, line);
        const a = num(m[1], 0, 65535, 'port', line);
        const b = m[2] === undefined ? a : num(m[2], 0, 65535, 'port', line);
        if (a > b) throw new NftRefusal(`port range ${value} runs backwards (nft refuses it)`, line);
        addMatch(t.text, [...(neg ? ['!'] : []), field === 'dport' ? '--dport' : '--sport', a === b ? `${a}` : `${a}:${b}`], true);
        break;
      }
      case 'icmp':
      case 'icmpv6': {
        const v6 = t.text === 'icmpv6';
        setFamily(v6 ? 6 : 4, t.text);
        setProto(v6 ? 58 : 1);
        expect('type');
        const type = num(word('an ICMP type'), 0, 255, `${t.text} type`, line);
        // nft matches type 255 alone; to iptables (and so to this model) IPv4 type 255 is any type.
        if (!v6 && type === ICMP4_ANY_TYPE) throw new NftRefusal('icmp type 255 has no iptables equivalent (iptables reads type 255 as any type) and is not modelled', line);
        let code: number | undefined;
        if (peek()?.text === t.text && peek(1)?.text === 'code') {
          i += 2;
          code = num(word('an ICMP code'), 0, 255, `${t.text} code`, line);
        }
        addMatch(v6 ? 'icmp6' : 'icmp', [v6 ? '--icmpv6-type' : '--icmp-type', code === undefined ? `${type}` : `${type}/${code}`]);
        break;
      }
      case 'ct': {
        const key = word('a ct key');
        if (key === 'state') {
          const states = [word('conntrack states')];
          while (peek()?.kind === 'punct' && peek()?.text === ',') {
            i++;
            states.push(word('a conntrack state'));
          }
          addMatch('conntrack', ['--ctstate', ctStates(states.join(','), line)]);
        } else if (key === 'mark') {
          const op = word('& or set');
          if (op === '&') {
            const mask = mark32(word('a mask'), line);
            expect('==');
            const value = mark32(word('a mark'), line);
            addMatch('connmark', ['--mark', `${hex(value)}/${hex(mask)}`]);
          } else if (op === 'set') {
            expect('ct');
            expect('mark');
            expect('|');
            const bits = mark32(word('mark bits'), line);
            // nft lists "| 0x0" as "ct mark set ct mark" (a no-op the renderer never writes).
            if (bits === 0n) throw new NftRefusal('ct mark set ct mark | 0x0 sets no bit and is not modelled', line);
            setTarget(['-j', 'CONNMARK', '--set-xmark', `${hex(bits)}/${hex(bits)}`], false);
          } else {
            // nft prints a mask of all ones as `ct mark V` and a mask of leading ones as
            // `ct mark V/N`. The kernel compares with V as stored; reading `V/N` from a file,
            // nft stores V with its host bits cleared, so the two spellings differ there.
            const m = /^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})(?:\/([0-9]{1,2}))?$/.exec(op);
            if (m === null) throw new NftRefusal(`ct mark ${op} is not modelled`, line);
            const bits = m[2] === undefined ? 32 : Number(m[2]);
            if (bits > 32) throw new NftRefusal(`ct mark ${op}: a prefix of ${bits} bits is wider than the 32-bit mark`, line);
            const mask = bits === 0 ? 0n : (0xffffffffn << BigInt(32 - bits)) & 0xffffffffn;
            const stored = mark32(m[1], line);
            const value = form === 'file' ? stored & mask : stored;
            addMatch('connmark', ['--mark', `${hex(value)}/${hex(mask)}`]);
          }
        } else throw new NftRefusal(`ct ${key} is not modelled`, line);
        break;
      }
      case 'fib': {
        expect('saddr');
        expect('type');
        const neg = negatedOp();
        const type = word('an address type');
        if (type !== 'local' && type !== '2') throw new NftRefusal(`fib saddr type ${type}: twinwall reads local only`, line);
        addMatch('addrtype', [...(neg ? ['!'] : []), '--src-type', 'LOCAL']);
        break;
      }
      case 'limit': {
        expect('rate');
        const rate = word('a rate');
        const m = /^([0-9]+)\/([a-z]+)$/.exec(rate);
        const unit = m === null ? undefined : RATE_UNITS[m[2]];
        if (m === null || unit === undefined) throw new NftRefusal(`limit rate ${rate} is not N/second, minute, hour or day`, line);
        // Without "burst" nft keeps its default for packet limits, 5 (and prints none for 5).
        let burst = 5;
        if (peek()?.text === 'burst') {
          i++;
          burst = num(word('a burst'), 1, 10000, 'burst', line);
          expect('packets');
        }
        addMatch('limit', ['--limit', `${num(m[1], 1, 10000, 'rate', line)}/${unit}`, '--limit-burst', String(burst)]);
        break;
      }
      case 'log': {
        expect('prefix');
        const p = next('a log prefix');
        if (p.kind !== 'string') throw new NftRefusal('log prefix without a quoted prefix', line);
        const out = ['-j', 'LOG', '--log-prefix', p.text];
        if (peek()?.text === 'flags') {
          i++;
          expect('skuid');
          out.push('--log-uid');
        }
        setTarget(out, false);
        break;
      }
      case 'accept':
      case 'drop':
      case 'return':
        setTarget(['-j', t.text.toUpperCase()], true);
        break;
      case 'jump':
      case 'goto': {
        const name = word('a chain');
        if (!chains.has(name)) throw new NftRefusal(`${t.text} ${name}: no such regular chain in the table (nft refuses the file)`, line);
        setTarget([t.text === 'jump' ? '-j' : '-g', name], true);
        break;
      }
      case 'comment': {
        const c = next('a comment');
        if (c.kind !== 'string') throw new NftRefusal('comment without a quoted text', line);
        // A line that is only a comment is the chain's comment to nft (listed before its hook).
        if (i === 2) throw new NftRefusal('a line with only a comment is a chain comment, which twinwall does not write or model', line);
        if (i !== words.length) throw new NftRefusal('statements after the comment (nft refuses them)', line);
        comment = c.text;
        break;
      }
      default:
        throw new NftRefusal(`statement ${JSON.stringify(t.text)} is not one twinwall reads`, line);
    }
  }
  if (form === 'listing' && family === undefined && (proto === 1 || proto === 58)) {
    // nft (1.0.x) prints `meta nfproto ipv4 meta l4proto icmp` as `meta l4proto icmp` (and the
    // IPv6 twin likewise), though the kernel's rule keeps the family test: the listing cannot say
    // whether the rule is one family's or both.
    throw new NftRefusal(`"meta l4proto ${proto === 1 ? 'icmp' : 'ipv6-icmp'}" without a family: nft lists it alike with and without "meta nfproto ${proto === 1 ? 'ipv4' : 'ipv6'}", so the kernel's copy cannot be read exactly`, line);
  }
  if (iface !== undefined) base.push(...iface);
  if (addr['-s'] !== undefined) base.push(...addr['-s']);
  if (addr['-d'] !== undefined) base.push(...addr['-d']);
  if (proto !== undefined) base.push('-p', protocolName(proto) ?? String(proto));
  const out = [...base];
  for (const m of matches) out.push('-m', m.module, ...m.words);
  if (comment !== undefined) out.push('-m', 'comment', '--comment', comment);
  if (target !== undefined) out.push(...target);
  return { ...(family !== undefined ? { family } : {}), words: out, ...(comment !== undefined ? { comment } : {}) };
}

const HOOKS: Record<string, string> = { input: 'INPUT', forward: 'FORWARD', output: 'OUTPUT' };

interface ChainDef {
  name: string;
  line: number;
  hook?: string;
  policy?: 'ACCEPT' | 'DROP';
  rules: Token[][];
}

/** Statements of a block: token lists split at line ends and ";" (empty ones dropped). */
class Cursor {
  i = 0;
  constructor(readonly tokens: readonly Token[]) {}
  peek(): Token | undefined {
    return this.tokens[this.i];
  }
  skipSeparators(): void {
    while (this.peek() !== undefined && (this.peek()?.kind === 'nl' || this.peek()?.text === ';')) this.i++;
  }
  take(what: string): Token {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new NftRefusal(`the file ends where ${what} belongs`, this.tokens[this.tokens.length - 1]?.line ?? 1);
    return t;
  }
  expect(text: string): Token {
    const t = this.take(`"${text}"`);
    if (t.text !== text || t.kind === 'string') throw new NftRefusal(`${JSON.stringify(t.text)} where "${text}" belongs`, t.line);
    return t;
  }
  /** The tokens up to the next line end or ";", whatever they are. */
  raw(): Token[] {
    const out: Token[] = [];
    while (this.peek() !== undefined && this.peek()?.kind !== 'nl' && this.peek()?.text !== ';') out.push(this.take('a statement'));
    return out;
  }
  /** The tokens up to the end of the statement (a line end or ";"), not inside braces. */
  statement(): Token[] {
    const out: Token[] = [];
    while (this.peek() !== undefined && this.peek()?.kind !== 'nl' && this.peek()?.text !== ';' && this.peek()?.text !== '}') {
      const t = this.take('a statement');
      if (t.kind === 'punct' && t.text === '{') throw new NftRefusal('a "{" in a statement: twinwall reads no anonymous sets, maps or blocks there', t.line);
      out.push(t);
    }
    return out;
  }
}

function parseSet(cur: Cursor, line: number): NftSetDefinition {
  const name = cur.take('a set name');
  if (name.kind !== 'word' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}$/.test(name.text)) throw new NftRefusal(`set name ${JSON.stringify(name.text)}: twinwall reads letters, digits, _ . - (at most 31, as ipset names)`, name.line);
  cur.expect('{');
  let family: Family | undefined;
  let interval = false;
  let elements: { text: string; line: number }[] | undefined;
  for (;;) {
    cur.skipSeparators();
    const t = cur.take('a set property or "}"');
    if (t.text === '}') break;
    if (t.text === 'type') {
      const ty = cur.take('a set type');
      if (ty.text !== 'ipv4_addr' && ty.text !== 'ipv6_addr') throw new NftRefusal(`set type ${ty.text}: twinwall reads ipv4_addr and ipv6_addr sets`, ty.line);
      family = ty.text === 'ipv4_addr' ? 4 : 6;
      if (cur.peek()?.text === '.') throw new NftRefusal(`set ${name.text} has a concatenated type (${ty.text} . …): twinwall reads address sets only`, ty.line);
    } else if (t.text === 'flags') {
      const f = cur.take('set flags');
      if (f.text !== 'interval') throw new NftRefusal(`set flags ${f.text}: twinwall reads interval sets only`, f.line);
      interval = true;
    } else if (t.text === 'elements') {
      if (elements !== undefined) throw new NftRefusal('a second elements list', t.line);
      cur.expect('=');
      cur.expect('{');
      elements = [];
      let wantElement = true;
      for (;;) {
        while (cur.peek()?.kind === 'nl') cur.take('');
        const e = cur.take('a set element or "}"');
        if (e.text === '}' && e.kind === 'punct') break;
        if (e.text === ',' && e.kind === 'punct') {
          if (wantElement) throw new NftRefusal('an empty set element', e.line);
          wantElement = true;
          continue;
        }
        if (!wantElement || e.kind !== 'word') throw new NftRefusal(`${JSON.stringify(e.text)} where a set element or "," belongs`, e.line);
        elements.push({ text: e.text, line: e.line });
        wantElement = false;
      }
    } else throw new NftRefusal(`set property ${JSON.stringify(t.text)} is not one twinwall reads`, t.line);
    const end = cur.peek();
    if (end !== undefined && end.kind !== 'nl' && end.text !== ';' && end.text !== '}') throw new NftRefusal(`${JSON.stringify(end.text)} after a set property`, end.line);
  }
  if (family === undefined) throw new NftRefusal(`set ${name.text} has no type (nft refuses it)`, line);
  const f = family;
  let covered = IntervalSet.EMPTY;
  const texts: string[] = [];
  for (const e of elements ?? []) {
    const c = literal(e.text, f, e.line);
    if (!interval && c.prefix !== familyBits(f)) throw new NftRefusal(`set ${name.text} holds the prefix ${e.text} without "flags interval" (nft refuses it)`, e.line);
    const iv = IntervalSet.of(c.first, c.last);
    if (!covered.intersect(iv).isEmpty) throw new NftRefusal(`set ${name.text}: element ${e.text} overlaps another (nft refuses overlapping intervals)`, e.line);
    covered = covered.union(iv);
    texts.push(c.text);
  }
  return { name: name.text, family: f, elements: texts, line };
}

function parseChain(cur: Cursor, line: number): ChainDef {
  const name = cur.take('a chain name');
  if (name.kind !== 'word') throw new NftRefusal(`chain name ${JSON.stringify(name.text)}`, name.line);
  cur.expect('{');
  const def: ChainDef = { name: name.text, line, rules: [] };
  cur.skipSeparators();
  if (cur.peek()?.text === 'type') {
    const head = cur.statement();
    const h = textsOf(head);
    if (h.length !== 6 || h[0] !== 'type' || h[1] !== 'filter' || h[2] !== 'hook' || h[4] !== 'priority' || !(h[5] === 'filter' || h[5] === '0')) {
      throw new NftRefusal(`base chain ${name.text}: "${h.join(' ')}" — twinwall reads "type filter hook input|forward|output priority filter" only (another priority runs before or after conntrack and other tables)`, head[0].line);
    }
    const hook = HOOKS[h[3]];
    if (hook === undefined) throw new NftRefusal(`base chain ${name.text} hooks ${h[3]}: twinwall reads input, forward and output`, head[0].line);
    def.hook = hook;
    def.policy = 'ACCEPT';
    cur.skipSeparators();
    if (cur.peek()?.text === 'policy') {
      const p = textsOf(cur.statement());
      if (p.length !== 2 || (p[1] !== 'drop' && p[1] !== 'accept')) throw new NftRefusal(`"${p.join(' ')}" is not "policy drop" or "policy accept"`, head[0].line);
      def.policy = p[1] === 'drop' ? 'DROP' : 'ACCEPT';
    }
  }
  for (;;) {
    cur.skipSeparators();
    const t = cur.peek();
    if (t === undefined) throw new NftRefusal(`chain ${name.text} is never closed`, line);
    if (t.text === '}' && t.kind === 'punct') {
      cur.take('}');
      break;
    }
    if (t.text === 'type' || t.text === 'policy') throw new NftRefusal(`"${t.text}" after the rules of chain ${name.text}`, t.line);
    const rule = cur.statement();
    if (rule.length > 0) def.rules.push(rule);
    const end = cur.peek();
    if (end !== undefined && end.kind === 'punct' && end.text !== ';' && end.text !== '}') throw new NftRefusal(`${JSON.stringify(end.text)} in a rule (twinwall reads no anonymous sets)`, end.line);
  }
  return def;
}

/** The tokens' texts, in an array built by push (one array shape for V8, empty or not). */
function textsOf(tokens: readonly Token[]): string[] {
  const out: string[] = [];
  for (const t of tokens) out.push(t.text);
  return out;
}

function ruleText(tokens: readonly Token[]): string {
  const cut = tokens.findIndex((t) => t.kind === 'word' && t.text === 'comment');
  let text = '';
  for (let k = 0; k < (cut >= 0 ? cut : tokens.length); k++) {
    const t = tokens[k];
    text += `${k > 0 ? ' ' : ''}${t.kind === 'string' ? `"${t.text}"` : t.text}`;
  }
  return text;
}

function failed(form: 'file' | 'listing', problems: IptProblem[]): NftablesWall {
  const empty = (family: Family): IptDocument => ({ family, tables: new Map(), problems });
  return { form, sets: new Map(), setSources: [], documents: { 4: empty(4), 6: empty(6) }, problems };
}

/**
 * Read an nftables host wall: the file the renderer writes (`form: 'file'`) or what
 * `nft -n list table inet twinwall` prints (`form: 'listing'`). Never throws.
 */
export function parseNftables(text: string, options: { form?: 'file' | 'listing' } = {}): NftablesWall {
  const form = options.form ?? 'file';
  const table = `${NFT_READ_TABLE.family} ${NFT_READ_TABLE.name}`;
  let setDefs: NftSetDefinition[];
  let chainDefs: ChainDef[];
  try {
    const cur = new Cursor(tokenizeNft(text));
    cur.skipSeparators();
    if (form === 'file') {
      // The file replaces the table in one transaction; without "delete table" it would add its
      // rules to a table already loaded (a reload would double every rule).
      for (const verb of ['add', 'delete']) {
        const start = cur.i;
        const s = cur.raw();
        const said = textsOf(s).join(' ');
        if (said !== `${verb} table ${table}`) cur.i = start;
        if (said !== `${verb} table ${table}`) throw new NftRefusal(`the file does not begin "add table ${table}" then "delete table ${table}" (so that loading it replaces the table, in one transaction)`, s[0]?.line ?? 1);
        cur.skipSeparators();
      }
    }
    const head = [cur.take('table'), cur.take('inet'), cur.take('twinwall')];
    const said = textsOf(head).join(' ');
    if (said !== `table ${table}`) throw new NftRefusal(`"${said}" is not "table ${table}" (twinwall reads its own table only)`, head[0].line);
    cur.expect('{');
    setDefs = [];
    chainDefs = [];
    for (;;) {
      cur.skipSeparators();
      const t = cur.take('set, chain or "}"');
      if (t.text === '}' && t.kind === 'punct') break;
      if (t.text === 'set') setDefs.push(parseSet(cur, t.line));
      else if (t.text === 'chain') chainDefs.push(parseChain(cur, t.line));
      else throw new NftRefusal(`${JSON.stringify(t.text)} in table ${table}: twinwall reads sets and chains only (no flags, maps or other objects)`, t.line);
    }
    cur.skipSeparators();
    const rest = cur.peek();
    if (rest !== undefined) throw new NftRefusal(`${JSON.stringify(rest.text)} after table ${table} (twinwall reads a file of that one table)`, rest.line);
  } catch (e) {
    if (!(e instanceof NftRefusal)) throw e;
    return failed(form, [{ line: e.line, message: e.message }]);
  }

  const problems: IptProblem[] = [];
  const sets = new Map<string, NftSetDefinition>();
  for (const s of setDefs) {
    if (sets.has(s.name)) problems.push({ line: s.line, message: `set ${s.name} is defined twice` });
    sets.set(s.name, s);
  }
  const regular = new Set<string>();
  const byHook = new Map<string, ChainDef>();
  const names = new Set<string>();
  for (const c of chainDefs) {
    if (names.has(c.name)) problems.push({ line: c.line, message: `chain ${c.name} is defined twice (nft would add the second's rules to the first)` });
    names.add(c.name);
    if (c.hook !== undefined) {
      if (byHook.has(c.hook)) problems.push({ line: c.line, message: `a second base chain on hook ${c.hook.toLowerCase()} (${byHook.get(c.hook)?.name} and ${c.name}): twinwall reads one per hook` });
      byHook.set(c.hook, c);
    } else {
      if (Object.values(HOOKS).includes(c.name)) problems.push({ line: c.line, message: `a regular chain named ${c.name}, the name the model gives a hook` });
      regular.add(c.name);
    }
  }
  // The iptables-restore document each family sees, and where each of its rule lines came from.
  const built: Record<Family, { lines: string[]; origin: Map<number, NftRuleSource> }> = { 4: { lines: [], origin: new Map() }, 6: { lines: [], origin: new Map() } };
  for (const family of [4, 6] as const) {
    const b = built[family];
    b.lines.push('*filter');
    for (const hook of Object.values(HOOKS)) b.lines.push(`:${hook} ${byHook.get(hook)?.policy ?? 'ACCEPT'} [0:0]`);
    for (const c of chainDefs) if (c.hook === undefined) b.lines.push(`:${c.name} - [0:0]`);
  }
  // Chain and set names are letters, digits and _ . - (the grammar above).
  const kept = TRANSLATED.get(`${form}\t${[...regular].join(' ')}\t${[...sets.values()].map((s) => `${s.name}=${s.family}`).join(' ')}`, () => new Memo<TranslatedRule>(2048));
  for (const c of chainDefs) {
    const chain = c.hook ?? c.name;
    c.rules.forEach((tokens, k) => {
      try {
        // A token's text holds no NUL (printable ASCII or a line end), so this key is the token list.
        let key = '';
        for (const t of tokens) key += `${t.kind[0]}${t.text}\0`;
        const r = kept.get(key, () => translatedRule(tokens, sets, regular, form));
        const source: NftRuleSource = { chain: c.name, position: k + 1, line: tokens[0].line, text: r.text };
        for (const family of [4, 6] as const) {
          if (r.family !== undefined && r.family !== family) continue;
          const b = built[family];
          b.lines.push(`-A ${quoteWord(chain)}${r.command}`);
          b.origin.set(b.lines.length, source);
        }
      } catch (e) {
        if (!(e instanceof NftRefusal)) throw e;
        problems.push({ line: e.line, message: e.message });
      }
    });
  }
  const ipsetFamilies = new Map([...sets.values()].map((s) => [s.name, s.family] as const));
  const documents = {} as Record<Family, IptDocument>;
  for (const family of [4, 6] as const) {
    const b = built[family];
    b.lines.push('COMMIT');
    const doc = parseIptablesRestore(`${b.lines.join('\n')}\n`, family, { ipsets: ipsetFamilies });
    for (const p of doc.problems) {
      const o = b.origin.get(p.line);
      problems.push({ line: o?.line ?? 0, message: `${o !== undefined ? `${o.chain} rule ${o.position}: ` : ''}${p.message}` });
    }
    documents[family] = { family, tables: renumber(doc, b.origin), problems: [] };
  }
  const unique = dedupe(problems);
  for (const family of [4, 6] as const) documents[family] = { ...documents[family], problems: unique };
  const ipsets = new Map<string, IpsetDefinition>();
  for (const s of sets.values()) {
    ipsets.set(s.name, {
      name: s.name,
      type: 'hash:net',
      family: s.family,
      members: s.elements.map((e) => {
        const c = Cidr.of(e);
        return { addresses: IntervalSet.of(c.first, c.last), nomatch: false };
      }),
    });
  }
  return { form, sets: ipsets, setSources: [...sets.values()], documents, problems: unique };
}

function dedupe(problems: readonly IptProblem[]): IptProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.line}|${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Rules keep their nft chain position and line (where a reviewer finds them in the file); their
 * text is the translation the checker modelled (iptables-restore words), which is what findings
 * and `explain` show next to the rule number.
 */
function renumber(doc: IptDocument, origin: ReadonlyMap<number, NftRuleSource>): Map<string, IptTable> {
  const out = new Map<string, IptTable>();
  for (const [name, table] of doc.tables) {
    const chains = new Map<string, IptChain>();
    for (const [cname, c] of table.chains) {
      const rules: IptRule[] = [];
      for (const r of c.rules) {
        const o = origin.get(r.line);
        rules.push(o === undefined ? r : placedRule(r, o.position, o.line));
      }
      chains.set(cname, { ...c, rules });
    }
    out.set(name, { name, chains });
  }
  return out;
}

/** Where the checker's reading of two nftables walls differs in meaning (sets included); undefined when equal. */
export function nftSetsDifference(mine: NftablesWall, theirs: NftablesWall): string | undefined {
  const show = (w: NftablesWall) => new Map(w.setSources.map((s) => [s.name, `IPv${s.family} {${AddressSet.of(s.family, s.elements.map((e) => Cidr.of(e))).toCidrs().map((c) => c.text).join(', ')}}`]));
  const a = show(mine);
  const b = show(theirs);
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(name) !== b.get(name)) return `set ${name}: the checker reads ${a.get(name) ?? 'no such set'} where the kernel stored ${b.get(name) ?? 'no such set'}`;
  }
  return undefined;
}
