/**
 * iptables-restore input (the format of /etc/iptables/rules.v4 and rules.v6), read exactly as
 * iptables-restore reads it — or refused. Pure: text in, data out.
 *
 * How iptables-restore (1.8.x) reads a file, and so how this reads it:
 * - Lines are read with a 10,240-byte buffer: a line of more than 10,239 bytes is read as two
 *   lines (the rest becomes a rule of its own), so a longer line is refused. An empty line and a
 *   line whose first character is `#` are skipped; a line of blanks, or `#` after a blank, is an
 *   error. `*table`, `:chain policy [packets:bytes]` and `COMMIT` (nothing before or after it)
 *   structure the file; every other line is a command, optionally after `[packets:bytes]`.
 * - A command is split into words at spaces, tabs and newlines. Only the double quote quotes:
 *   inside "…" a backslash takes the next character literally (so \" and \\), and the closing
 *   quote ends the word (`"a"b` is two words). Outside quotes a backslash and a single quote are
 *   ordinary characters: `'"'` is the word `'` followed by an opened double quote. Quoting never
 *   makes a word a value: a quoted "-j" is still the option -j, and a quoted "!" still negates.
 *   An empty quoted word (`""`) is refused: iptables 1.8.9 passes it on as an empty argument,
 *   older releases drop it and shift every later argument. A word of 1,024 bytes or more, or
 *   more than 250 words, are errors in iptables and refused here.
 * - Words are options, read the way getopt_long reads them: an option that takes an argument
 *   takes the next word whatever it is (`--comment -j` is the comment "-j"), `!` negates the
 *   option after it. iptables also accepts abbreviated option names, `--opt=value`, clustered
 *   short options and service, host and user names, and reads 010 as octal; all of those are
 *   refused here (iptables-modules.ts says what each option accepts).
 * - Addresses lists (`-s a,b`) make one rule per address pair, sources outermost, as iptables
 *   does; host bits are masked off.
 *
 * Everything refused is a problem of the document: the checker then cannot decide anything
 * about that table (a finding, never agreement). The canonical `key` of each rule states its
 * meaning (`!` folded where the meaning allows it, defaults filled in, names turned into
 * numbers), so two texts that iptables stores the same way have the same keys; the kernel
 * tier proves that on random rules against iptables-save (kernel-parse.property.test.ts).
 */
import { Family } from '../address';
import { Memo } from '../memo';
import {
  BASE_OPTIONS,
  MODULES,
  ModuleSpec,
  OptionSpec,
  OptionValue,
  ReadOption,
  Refusal,
  TARGETS,
  TargetSpec,
  decimal,
  defaultRejectWith,
  isTargetName,
  literalCidr,
} from './iptables-modules';

export { Refusal } from './iptables-modules';

/** One option of a rule: `! --dport 22` in `-m tcp` is { module: 'tcp', name: '--dport', negated: true, args: ['22'] }. */
export interface IptOption {
  /** The match module the option belongs to; undefined for base options (-p, -s, -d, -i, -o, -f). */
  readonly module?: string;
  /** The canonical spelling (`--dport` for `--destination-port`, `-s` for `--source`). */
  readonly name: string;
  readonly negated: boolean;
  /** The value in canonical form ("22", "1:1023", "10.0.0.0/24", "6" for tcp, "3/4" …). */
  readonly args: readonly string[];
}

export interface IptTarget {
  /** `-j` (jump) or `-g` (goto). */
  readonly how: 'jump' | 'goto';
  readonly name: string;
  /** Options of the target (`--log-prefix`, `--reject-with` …). */
  readonly options: readonly IptOption[];
}

/** One match of a rule, as loaded (explicitly with -m, or implicitly by `-p tcp --dport …`). */
export interface IptMatch {
  readonly module: string;
  readonly implicit: boolean;
  /** The match's meaning ('' when it matches everything and iptables-save may leave it out). */
  readonly key: string;
}

/** One rule in the kernel (a line with address lists stands for several). */
export interface IptRule {
  readonly chain: string;
  /** 1-based position in its chain after the whole file is applied (as `iptables -L --line-numbers` shows it). */
  readonly number: number;
  /** 1-based line in the file. */
  readonly line: number;
  /** The rule as written after the command and chain (re-quoted; one address where a list was expanded). */
  readonly text: string;
  /** Match modules in the order they were loaded. */
  readonly modules: readonly string[];
  readonly matches: readonly IptMatch[];
  /** Base and match options, in order. */
  readonly options: readonly IptOption[];
  readonly target?: IptTarget;
  /** `-m comment --comment` text, if any. */
  readonly comment?: string;
  /** The rule's meaning: base options, matches in order, target. Equal keys, equal rules. */
  readonly key: string;
  /** The same without comment matches (a comment never changes what a rule does). */
  readonly verdictKey: string;
}

export interface IptChain {
  readonly name: string;
  /** ACCEPT or DROP for built-in chains; undefined for user chains. */
  readonly policy?: string;
  readonly builtin: boolean;
  readonly rules: readonly IptRule[];
}

export interface IptTable {
  readonly name: string;
  readonly chains: ReadonlyMap<string, IptChain>;
}

export interface IptProblem {
  readonly line: number;
  readonly message: string;
}

export interface IptDocument {
  readonly family: Family;
  readonly tables: ReadonlyMap<string, IptTable>;
  /** Lines iptables-restore would refuse, or that the checker cannot read exactly: the document cannot be trusted. */
  readonly problems: readonly IptProblem[];
}

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** Limits of iptables-restore's reader (see the file comment). */
export const RESTORE_LIMITS = {
  /** Longest line read whole (fgets into 10,240 bytes). */
  lineBytes: 10239,
  /** Longest word (a 1,024-byte buffer; 1,024 is already an error). */
  wordBytes: 1023,
  /** Most words of one command the checker reads (iptables' limit is a few more). */
  words: 250,
} as const;

/** A word of a command, and whether any of it was quoted. */
export interface Word {
  readonly text: string;
  readonly quoted: boolean;
}

function refuse(message: string): never {
  throw new Refusal(message);
}

/** Characters the checker reads in rule lines: printable ASCII and tab. */
const READABLE = /^[\t\x20-\x7e]*$/;

const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Split a command into words exactly as iptables-restore does (see the file comment). */
export function tokenize(line: string): Word[] {
  if (!READABLE.test(line)) {
    const bad = [...line].find((c) => !READABLE.test(c)) as string;
    refuse(`the line holds ${JSON.stringify(bad)}: twinwall reads printable ASCII and tabs only (iptables stops at a NUL byte and keeps other control characters inside words)`);
  }
  // The line is ASCII now: one character per code unit. Words are sliced from it, not built up
  // a character at a time.
  const out: Word[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === SPACE || c === TAB) {
      i++;
      continue;
    }
    // A word: characters up to a blank or a double quote, then perhaps a quoted part, whose
    // closing quote ends the word.
    const start = i;
    while (c !== SPACE && c !== TAB && c !== QUOTE && ++i < n) c = line.charCodeAt(i);
    if (i === n || c !== QUOTE) {
      pushWord(out, line.slice(start, i), false);
      continue;
    }
    let text = line.slice(start, i);
    let from = ++i;
    for (;;) {
      if (i >= n) refuse('a double quote is never closed');
      c = line.charCodeAt(i);
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        // The next character, whatever it is, literally.
        text += line.slice(from, i);
        from = ++i;
        if (i >= n) refuse('a double quote is never closed');
      }
      i++;
    }
    text += line.slice(from, i);
    i++;
    pushWord(out, text, true);
  }
  return out;
}

function pushWord(out: Word[], text: string, quoted: boolean): void {
  if (text === '' && quoted) refuse('an empty quoted word (""): iptables releases read it differently (1.8.9 passes it on, older ones drop it)');
  if (text.length > RESTORE_LIMITS.wordBytes) refuse(`a word of ${text.length} bytes: iptables-restore refuses words of 1,024 bytes or more`);
  out.push({ text, quoted });
  if (out.length > RESTORE_LIMITS.words) refuse(`more than ${RESTORE_LIMITS.words} words in one command`);
}

/** A word written bare: printable ASCII but the blank, the double quote and the backslash. */
const BARE_WORD = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const QUOTED_ESCAPES = /[\\"]/g;

/** How a word is written back so that iptables-restore reads the same word. */
export function quoteWord(word: string): string {
  return BARE_WORD.test(word) ? word : `"${word.replace(QUOTED_ESCAPES, '\\$&')}"`;
}

const BASE_BY_NAME = new Map<string, OptionSpec>();
for (const spec of BASE_OPTIONS) for (const n of [spec.name, ...(spec.aliases ?? [])]) BASE_BY_NAME.set(n, spec);

const SPECIAL: Record<string, 'match' | 'jump' | 'goto' | 'append' | 'insert'> = {
  '-m': 'match',
  '--match': 'match',
  '-j': 'jump',
  '--jump': 'jump',
  '-g': 'goto',
  '--goto': 'goto',
  '-A': 'append',
  '--append': 'append',
  '-I': 'insert',
  '--insert': 'insert',
};

/** iptables' own long options (getopt_long's table before any match is loaded). */
const IPTABLES_LONG_OPTIONS = [
  'append', 'delete', 'check', 'insert', 'replace', 'list', 'list-rules', 'flush', 'zero', 'new-chain', 'delete-chain', 'rename-chain',
  'policy', 'source', 'destination', 'src', 'dst', 'protocol', 'in-interface', 'jump', 'table', 'match', 'numeric', 'out-interface',
  'verbose', 'wait', 'wait-interval', 'exact', 'fragment', 'version', 'help', 'line-numbers', 'modprobe', 'set-counters', 'goto', 'ipv4', 'ipv6',
].map((n) => `--${n}`);

/** Each option list's spellings (canonical names and aliases), built the first time it is asked. */
const SPELLINGS = new WeakMap<readonly OptionSpec[], ReadonlyMap<string, OptionSpec>>();

/** The option of `options` spelled `word` (its name or an alias). */
function lookup(options: readonly OptionSpec[], word: string): OptionSpec | undefined {
  let byName = SPELLINGS.get(options);
  if (byName === undefined) {
    const m = new Map<string, OptionSpec>();
    // The first option with the spelling wins, as a search in order would find it.
    for (const o of options) for (const n of [o.name, ...(o.aliases ?? [])]) if (!m.has(n)) m.set(n, o);
    SPELLINGS.set(options, m);
    byName = m;
  }
  return byName.get(word);
}

/** Which protocol match `-p` loads implicitly when an option it knows follows. */
function implicitModule(protocol: number, family: Family): string | undefined {
  if (protocol === 6) return 'tcp';
  if (protocol === 17) return 'udp';
  if (protocol === 1 && family === 4) return 'icmp';
  if (protocol === 58 && family === 6) return 'icmp6';
  return undefined;
}

interface MatchState {
  readonly spec: ModuleSpec;
  readonly implicit: boolean;
  readonly options: Map<string, ReadOption>;
  /** Options in the order given. */
  readonly order: IptOption[];
}

interface TargetState {
  readonly how: 'jump' | 'goto';
  readonly name: string;
  /** undefined for a user chain. */
  readonly spec: TargetSpec | undefined;
  readonly options: Map<string, ReadOption>;
  readonly order: IptOption[];
}

interface AddressList {
  readonly cidrs: readonly { network: bigint; prefix: number; text: string }[];
  readonly negated: boolean;
}

export interface RuleContext {
  readonly family: Family;
  readonly table: string;
  /** Chains declared so far in this table block (built-in ones included). */
  readonly chains: ReadonlySet<string>;
  /** The ipsets that exist when the table loads, by family; undefined: do not check. */
  readonly ipsets?: ReadonlyMap<string, Family>;
}

export interface ParseOptions {
  /**
   * The ipsets that exist when the table loads (name → family): iptables-restore refuses a
   * table that matches a set that does not exist, or one of the other family.
   */
  readonly ipsets?: ReadonlyMap<string, Family>;
}

/** One command line, read. A line with address lists stands for several kernel rules. */
export interface ParsedCommand {
  readonly command: 'append' | 'insert';
  readonly chain: string;
  /** For -I: the 1-based position (default 1). */
  readonly position?: number;
  readonly rules: readonly Omit<IptRule, 'number' | 'line'>[];
}

function negation(negated: boolean): string {
  return negated ? '!' : '';
}

/** `a b`: two key parts joined by a blank, an empty part left out. */
function joined(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a} ${b}`;
}

/** The key of one match: its options' keys in the spec's order, defaults filled in. */
function matchKey(m: MatchState): string {
  let parts = '';
  const defaults = typeof m.spec.defaults === 'function' ? m.spec.defaults(m.options) : m.spec.defaults;
  for (const spec of m.spec.options) {
    const o = m.options.get(spec.name);
    const key = o?.value.key ?? defaults?.[spec.name];
    if (key === undefined || key === '') continue;
    parts = joined(parts, `${spec.keyAs ?? spec.name}=${key}`);
  }
  if (parts === '' && m.spec.dropWhenEmpty === true) return '';
  return `${m.spec.name}(${parts})`;
}

function targetKey(target: TargetState, family: Family): string {
  const spec = target.spec;
  if (spec === undefined) return `${target.how} ${target.name}`;
  let parts = '';
  for (const o of spec.options) {
    const key = target.options.get(o.name)?.value.key ?? spec.defaults?.[o.name] ?? (o.name === '--reject-with' ? defaultRejectWith(family) : undefined);
    if (key !== undefined) parts = joined(parts, `${o.name}=${key}`);
  }
  return parts === '' ? target.name : `${target.name}(${parts})`;
}

/** A base option's part of the key ('' when it means everything). */
function baseKey(base: ReadonlyMap<string, ReadOption>, name: string): string {
  const o = base.get(name);
  return o === undefined || o.value.key === '' ? '' : `${name}=${o.value.key}`;
}

/** An address's part of the key ('' for none, and for everything not negated). */
function addressKey(name: '-s' | '-d', c: { network: bigint; prefix: number } | undefined, negated: boolean): string {
  return c === undefined || (c.prefix === 0 && !negated) ? '' : `${name}=${negation(negated)}${c.network.toString(16)}/${c.prefix}`;
}

/** The words an option takes, from `at` (the rule's words `w`). */
function takeArgs(w: readonly string[], spec: OptionSpec, at: number): string[] {
  if (spec.words === 0) return [];
  if (at >= w.length) refuse(`${spec.name} needs a value`);
  if (w[at] === '!') refuse(`"${spec.name} !": a "!" after an option (old-style negation) is refused; write "! ${spec.name} …"`);
  if (spec.words === 1) return [w[at]];
  if (at + 1 >= w.length || w[at + 1].startsWith('-') || w[at + 1].startsWith('!')) refuse(`${spec.name} needs two values`);
  return [w[at], w[at + 1]];
}

/**
 * The known long options that `word` is the start of: getopt_long reads a word that starts a
 * longer known option as that option (--dport becomes multiport's --dports when -m multiport is
 * loaded). Known: iptables' own, then every loaded match's, then the target's.
 */
function longerOptions(word: string, matches: readonly MatchState[], target: TargetState | undefined): string[] {
  const longer: string[] = [];
  const add = (k: string): void => {
    if (k.startsWith('--') && k !== word && k.startsWith(word)) longer.push(k);
  };
  for (const k of IPTABLES_LONG_OPTIONS) add(k);
  for (const m of matches) {
    for (const o of m.spec.options) {
      add(o.name);
      if (o.aliases !== undefined) for (const a of o.aliases) add(a);
    }
  }
  if (target?.spec !== undefined) for (const o of target.spec.options) add(o.name);
  return longer;
}

/** Read one command's words (after any `[packets:bytes]`). Throws Refusal with the reason. */
export function parseCommand(words: readonly Word[], ctx: RuleContext): ParsedCommand {
  // Arrays the reader walks are built by push, not map: V8 then sees one array shape whether or
  // not they are empty, and keeps its optimised code.
  const w: string[] = [];
  for (const x of words) w.push(x.text);
  if (w.length === 0) refuse('a line of blanks (iptables-restore: "no command specified")');
  const command = SPECIAL[w[0]];
  if (command !== 'append' && command !== 'insert') refuse(`${JSON.stringify(w[0])} is not -A or -I (the only commands twinwall reads in a table)`);
  if (w.length < 2) refuse(`${w[0]} without a chain`);
  const chain = w[1];
  if (!ctx.chains.has(chain)) refuse(`chain ${JSON.stringify(chain)} is not declared before this line (iptables-restore refuses it)`);
  if (ctx.table !== 'filter') refuse(`a rule in the ${ctx.table} table: twinwall reads rules of the filter table only`);
  let first = 2;
  let position: number | undefined;
  if (command === 'insert' && first < w.length && !w[first].startsWith('-') && !w[first].startsWith('!')) {
    position = decimal(w[first], 1, 2147483647, 'rule number');
    first++;
  }
  // Three steps, each its own function (V8 compiles and re-optimises each alone): the options,
  // what iptables checks of them as a whole, and the kernel rules they make.
  const reading = readOptions(w, first, ctx);
  checkRule(chain, reading, ctx);
  const rules = rulesOf(command, chain, w, first, reading, ctx);
  return position === undefined ? { command, chain, rules } : { command, chain, position, rules };
}

/** A rule's options, read (readOptions). */
interface RuleReading {
  readonly base: ReadonlyMap<string, ReadOption>;
  /** Base options in the order given (addresses included). */
  readonly baseOrder: readonly { spec: OptionSpec; negated: boolean }[];
  readonly matches: readonly MatchState[];
  readonly target: TargetState | undefined;
  readonly protocol: { number: number; negated: boolean } | undefined;
  readonly sources: AddressList | undefined;
  readonly destinations: AddressList | undefined;
}

/** Walk the options from word `i` on, as getopt_long and iptables read them. */
function readOptions(w: readonly string[], i: number, ctx: RuleContext): RuleReading {
  const base = new Map<string, ReadOption>();
  const baseOrder: { spec: OptionSpec; negated: boolean }[] = [];
  const matches: MatchState[] = [];
  let implicitUsed = false;
  let target: TargetState | undefined;
  let protocol: { number: number; negated: boolean } | undefined;
  let negated = false;
  let sources: AddressList | undefined;
  let destinations: AddressList | undefined;
  const vctx = { family: ctx.family };
  while (i < w.length) {
    const word = w[i];
    if (word === '!') {
      if (negated) refuse('"! !" (iptables: multiple consecutive ! not allowed)');
      negated = true;
      i++;
      continue;
    }
    if (!word.startsWith('-') || word === '-' || word === '--') refuse(`unexpected word ${JSON.stringify(word)} (iptables: "Bad argument")`);
    const special = SPECIAL[word];
    if (special === 'append' || special === 'insert') refuse(`a second command ${word} in one line`);
    if (special === 'match') {
      if (negated) refuse('"!" before -m');
      if (i + 1 >= w.length) refuse('-m without a module name');
      const name = w[i + 1];
      const spec = MODULES[name];
      if (spec === undefined) refuse(`-m ${name}: a match twinwall does not read`);
      if (!spec.families.includes(ctx.family)) refuse(`-m ${name} does not exist in ${ctx.family === 4 ? 'iptables' : 'ip6tables'}`);
      // A second instance of a match is merged with the first by iptables-nft (-m tcp --dport 1
      // -m tcp --dport 2 is saved as --dport 2): refused, except the inert comment.
      if (name !== 'comment' && matches.some((m) => m.spec.name === name)) refuse(`-m ${name} loaded twice in one rule (iptables-save would show one merged match)`);
      matches.push({ spec, implicit: false, options: new Map(), order: [] });
      i += 2;
      continue;
    }
    if (special === 'jump' || special === 'goto') {
      if (negated) refuse(`"!" before ${word}`);
      if (target !== undefined) refuse('two targets (-j/-g) in one rule');
      if (i + 1 >= w.length) refuse(`${word} without a target`);
      const name = w[i + 1];
      const spec: TargetSpec | undefined = TARGETS[name];
      if (spec === undefined) {
        if (isTargetName(name)) refuse(`target ${name} is not one twinwall reads (ACCEPT, DROP, RETURN, LOG, REJECT, CONNMARK or a chain)`);
        if (!ctx.chains.has(name)) refuse(`${word} ${name}: the chain is not declared before this line (iptables-restore refuses it)`);
        if (BUILTIN_CHAINS[ctx.table].includes(name)) refuse(`${word} ${name}: a built-in chain cannot be a target`);
      } else if (special === 'goto') refuse(`-g ${name}: goto takes a user chain`);
      target = { how: special, name, spec, options: new Map(), order: [] };
      i += 2;
      continue;
    }
    const baseSpec = BASE_BY_NAME.get(word);
    if (baseSpec !== undefined) {
      const address = baseSpec.name === '-s' || baseSpec.name === '-d';
      if (base.has(baseSpec.name) || (baseSpec.name === '-s' && sources !== undefined) || (baseSpec.name === '-d' && destinations !== undefined)) refuse(`${baseSpec.name} given twice (iptables refuses it)`);
      if (negated && !baseSpec.invert) refuse(`"!" before ${word}`);
      const args = takeArgs(w, baseSpec, i + 1);
      if (address) {
        const parts = args[0].split(',');
        if (parts.some((p) => p === '')) refuse(`${word} ${JSON.stringify(args[0])} has an empty entry`);
        const cidrs: { network: bigint; prefix: number; text: string }[] = [];
        for (const p of parts) cidrs.push(literalCidr(p, ctx.family));
        if (negated && cidrs.some((c) => c.prefix === 0)) refuse(`"! ${word} …/0" never matches (iptables-nft refuses it)`);
        if (baseSpec.name === '-s') sources = { cidrs, negated };
        else destinations = { cidrs, negated };
      } else {
        const value = baseSpec.read(args, negated, vctx);
        base.set(baseSpec.name, { spec: baseSpec, negated, value });
        if (baseSpec.name === '-p') protocol = { number: Number(value.args[0]), negated };
      }
      baseOrder.push({ spec: baseSpec, negated });
      negated = false;
      i += 1 + baseSpec.words;
      continue;
    }
    // A match's or the target's option.
    // Of two comment matches, the later takes the option (iptables marks the earlier complete).
    let found = 0;
    let firstFound: MatchState | undefined;
    let lastFound: MatchState | undefined;
    let allComments = true;
    for (const m of matches) {
      if (lookup(m.spec.options, word) === undefined) continue;
      found++;
      firstFound ??= m;
      lastFound = m;
      if (m.spec.name !== 'comment') allComments = false;
    }
    const owners = found > 1 && allComments ? 1 : found;
    const targetSpec = target?.spec !== undefined ? lookup(target.spec.options, word) : undefined;
    if (owners + (targetSpec !== undefined ? 1 : 0) > 1) refuse(`${word} belongs to more than one loaded match or target`);
    if (targetSpec !== undefined && target !== undefined) {
      if (negated) refuse(`"!" before ${word}`);
      if (target.options.has(targetSpec.name)) refuse(`${word} given twice`);
      const args = takeArgs(w, targetSpec, i + 1);
      const value = targetSpec.read(args, false, vctx);
      target.options.set(targetSpec.name, { spec: targetSpec, negated: false, value });
      target.order.push({ name: targetSpec.name, negated: false, args: value.args });
      i += 1 + targetSpec.words;
      continue;
    }
    let owner = found > 1 && allComments ? lastFound : firstFound;
    if (owner === undefined) {
      // getopt does not know the option: iptables loads the protocol's match once, then retries.
      const implicit = protocol !== undefined && !implicitUsed ? implicitModule(protocol.number, ctx.family) : undefined;
      const spec = implicit !== undefined ? MODULES[implicit] : undefined;
      if (spec === undefined || lookup(spec.options, word) === undefined) {
        refuse(`unknown option ${JSON.stringify(word)} (twinwall reads full option names only, of the matches loaded before them)`);
      }
      // getopt_long reads a word that starts a longer known option as that option: iptables
      // never gets to the protocol's match then.
      if (word.startsWith('--')) {
        const longer = longerOptions(word, matches, target);
        if (longer.length > 0) refuse(`${word} is the start of ${longer.join(', ')}: getopt would read it as that option`);
      }
      implicitUsed = true;
      if (matches.some((m) => m.spec.name === spec.name)) refuse(`-m ${spec.name} loaded twice in one rule`);
      owner = { spec, implicit: true, options: new Map(), order: [] };
      matches.push(owner);
    }
    const spec = lookup(owner.spec.options, word) as OptionSpec;
    if (owner.options.has(spec.name)) refuse(`${word} given twice in -m ${owner.spec.name} (iptables refuses it)`);
    if (negated && !spec.invert) refuse(`"!" before ${word}, which cannot be negated`);
    const args = takeArgs(w, spec, i + 1);
    const value: OptionValue = spec.read(args, negated, vctx);
    owner.options.set(spec.name, { spec, negated, value });
    owner.order.push({ module: owner.spec.name, name: spec.name, negated, args: value.args });
    negated = false;
    i += 1 + spec.words;
  }
  if (negated) refuse('"!" at the end of the rule (iptables: nothing appropriate following !)');
  return { base, baseOrder, matches, target, protocol, sources, destinations };
}

/** What iptables (and the kernel) check of a rule's options as a whole. */
function checkRule(chain: string, { base, matches, target, protocol }: RuleReading, ctx: RuleContext): void {
  if (chain === 'INPUT' && base.has('-o')) refuse('-o in INPUT (iptables refuses it)');
  if (chain === 'OUTPUT' && base.has('-i')) refuse('-i in OUTPUT (iptables refuses it)');
  for (const m of matches) {
    const s = m.spec;
    if (s.protocols !== undefined && (protocol === undefined || protocol.negated || !s.protocols.includes(protocol.number))) {
      refuse(`-m ${s.name} needs "-p ${s.protocols.length === 1 ? s.protocols[0] : `one of ${s.protocols.join(', ')}`}" (not negated) in the same rule`);
    }
    for (const group of s.required ?? []) if (!group.some((n) => m.options.has(n))) refuse(`-m ${s.name} needs ${group.join(' or ')}`);
    for (const group of s.exclusive ?? []) if (group.filter((n) => m.options.has(n)).length > 1) refuse(`-m ${s.name}: ${group.join(', ')} exclude each other`);
    if (s.needsOption === true && m.options.size === 0) refuse(`-m ${s.name} without an option (iptables refuses it)`);
    s.check?.(m.options, ctx);
    const set = m.options.get('--match-set')?.value.args[0];
    if (set !== undefined && ctx.ipsets !== undefined) {
      const family = ctx.ipsets.get(set);
      if (family === undefined) refuse(`ipset ${set} is not created before the table loads (iptables-restore refuses the table)`);
      if (family !== ctx.family) refuse(`ipset ${set} is IPv${family}, used in the IPv${ctx.family} table (iptables-restore refuses it)`);
    }
  }
  if (target?.spec?.check !== undefined) target.spec.check(target.options, { family: ctx.family, protocol });
}

/** The kernel rules a command makes: one, or one per address pair of its lists. */
function rulesOf(command: 'append' | 'insert', chain: string, w: readonly string[], first: number, reading: RuleReading, ctx: RuleContext): Omit<IptRule, 'number' | 'line'>[] {
  const { base, baseOrder, matches, target, sources, destinations } = reading;
  // The meaning, shared by every rule the address lists expand to.
  const modules: string[] = [];
  const matchKeys: IptMatch[] = [];
  for (const m of matches) {
    modules.push(m.spec.name);
    matchKeys.push({ module: m.spec.name, implicit: m.implicit, key: matchKey(m) });
  }
  let matchesKey = '';
  let verdictMatchesKey = '';
  for (const m of matchKeys) {
    matchesKey = joined(matchesKey, m.key);
    if (m.module !== 'comment') verdictMatchesKey = joined(verdictMatchesKey, m.key);
  }
  const tKey = target === undefined ? '' : targetKey(target, ctx.family);
  let comment: string | undefined;
  for (const m of matches) {
    if (m.spec.name !== 'comment') continue;
    const c = m.options.get('--comment')?.value.args[0] as string;
    comment = comment === undefined ? c : `${comment} ${c}`;
  }
  const several = (sources?.cidrs.length ?? 0) > 1 || (destinations?.cidrs.length ?? 0) > 1;
  if (several && (sources?.negated === true || destinations?.negated === true)) refuse('"!" on -s or -d in a rule with an address list (iptables refuses it)');
  const src = sources?.cidrs ?? [undefined];
  const dst = destinations?.cidrs ?? [undefined];
  if (command === 'insert' && src.length * dst.length > 1) refuse('-I with an address list (the order iptables inserts the rules in is not specified)');
  const rules: Omit<IptRule, 'number' | 'line'>[] = [];
  const ruleTarget: IptTarget | undefined = target === undefined ? undefined : { how: target.how, name: target.name, options: target.order };
  for (const s of src) {
    for (const d of dst) {
      let head = baseKey(base, '-p');
      head = joined(head, addressKey('-s', s, sources?.negated ?? false));
      head = joined(head, addressKey('-d', d, destinations?.negated ?? false));
      head = joined(head, baseKey(base, '-i'));
      head = joined(head, baseKey(base, '-o'));
      head = joined(head, baseKey(base, '-f'));
      const options: IptOption[] = [];
      // Options in the order given: base options where they stood, then each match's options.
      for (const b of baseOrder) {
        if (b.spec.name === '-s' || b.spec.name === '-d') {
          const c = b.spec.name === '-s' ? s : d;
          if (c !== undefined) options.push({ name: b.spec.name, negated: b.negated, args: [c.text] });
        } else {
          const o = base.get(b.spec.name) as ReadOption;
          options.push({ name: b.spec.name, negated: b.negated, args: o.value.args });
        }
      }
      for (const m of matches) for (const o of m.order) options.push(o);
      const text = textOf(w, first, s, d);
      const key = `${chain} | ${head} | ${matchesKey} | ${tKey}`;
      const verdictKey = `${chain} | ${head} | ${verdictMatchesKey} | ${tKey}`;
      rules.push(ruleOf(chain, text, modules, matchKeys, options, ruleTarget, comment, key, verdictKey));
    }
  }
  return rules;
}

/** A rule's fields in their order; `target` and `comment` only when there is one. */
function ruleOf(
  chain: string,
  text: string,
  modules: readonly string[],
  matches: readonly IptMatch[],
  options: readonly IptOption[],
  target: IptTarget | undefined,
  comment: string | undefined,
  key: string,
  verdictKey: string,
): Omit<IptRule, 'number' | 'line'> {
  if (target !== undefined) {
    return comment !== undefined ? { chain, text, modules, matches, options, target, comment, key, verdictKey } : { chain, text, modules, matches, options, target, key, verdictKey };
  }
  return comment !== undefined ? { chain, text, modules, matches, options, comment, key, verdictKey } : { chain, text, modules, matches, options, key, verdictKey };
}

/**
 * `rule` at its place in its chain: its fields in ruleOf's order, then `number` and `line` (a
 * rule that has them already gets these instead). One object literal per field set: copying a
 * rule with a spread costs more than the parse of it.
 */
export function placedRule(rule: Omit<IptRule, 'number' | 'line'>, number: number, line: number): IptRule {
  const { chain, text, modules, matches, options, target, comment, key, verdictKey } = rule;
  if (target !== undefined) {
    return comment !== undefined
      ? { chain, text, modules, matches, options, target, comment, key, verdictKey, number, line }
      : { chain, text, modules, matches, options, target, key, verdictKey, number, line };
  }
  return comment !== undefined ? { chain, text, modules, matches, options, comment, key, verdictKey, number, line } : { chain, text, modules, matches, options, key, verdictKey, number, line };
}

/** The words from `first` on, re-quoted; an address list replaced by the one address of this rule. */
function textOf(words: readonly string[], first: number, s: { text: string } | undefined, d: { text: string } | undefined): string {
  let out = '';
  for (let i = first; i < words.length; i++) {
    if (i > first) out += ' ';
    out += quoteWord(words[i]);
    const name = BASE_BY_NAME.get(words[i])?.name;
    if ((name === '-s' || name === '-d') && i + 1 < words.length && words[i + 1].includes(',')) {
      const c = name === '-s' ? s : d;
      out += ` ${quoteWord(c?.text ?? words[i + 1])}`;
      i++;
    }
  }
  return out;
}

/** Parse one rule line in a filter table where every chain is declared (for tests and tools). */
export function parseRuleLine(line: string, family: Family = 4, chains: readonly string[] = []): ParsedCommand {
  const all = new Set([...BUILTIN_CHAINS.filter, ...chains]);
  const words = tokenize(line.trim());
  if (words.length >= 2 && (SPECIAL[words[0].text] === 'append' || SPECIAL[words[0].text] === 'insert')) all.add(words[1].text);
  for (let i = 0; i + 1 < words.length; i++) if ((SPECIAL[words[i].text] === 'jump' || SPECIAL[words[i].text] === 'goto') && !isTargetName(words[i + 1].text)) all.add(words[i + 1].text);
  return parseCommand(words, { family, table: 'filter', chains: all });
}

/**
 * Commands already read, by everything reading one depends on: its context (the family, the
 * table, the chains declared so far, the ipsets), then its text. parseCommand is a pure function
 * of these (its tables are constants), so a command seen before is the same ParsedCommand,
 * shared (its parts are readonly). A fleet's hosts repeat most of their lines — the bench
 * fleet's 1,000 hosts hold about 130,000 rule lines, 1,200 distinct ones, in 8 contexts —, so a
 * check reads each once. A refusal is not kept: its line is read again, and refused again.
 * Bounded (lib/memo.ts): 16 contexts of 2,048 commands each, the oldest dropped first.
 */
const COMMANDS = new Memo<Memo<ParsedCommand>>(16);

/** The part of a command's memo key that holds for a whole table block (see COMMANDS). */
function contextKey(ctx: RuleContext, ipsetsKey: string): string {
  return `${ctx.family}\t${ctx.table}\t${[...ctx.chains].join(' ')}\t${ipsetsKey}`;
}

/** The commands read in one context (see COMMANDS), by their text. */
function commandsIn(ctxKey: string): Memo<ParsedCommand> {
  return COMMANDS.get(ctxKey, () => new Memo<ParsedCommand>(2048));
}

interface MutableChain {
  name: string;
  policy?: string;
  builtin: boolean;
  rules: { rule: Omit<IptRule, 'number' | 'line'>; line: number }[];
}

const TABLE_LINE = /^\*([a-z]+)$/;
const CHAIN_LINE = /^:([^ \t]+)[ \t]+([^ \t]+)(?:[ \t]+\[(0|[1-9][0-9]*):(0|[1-9][0-9]*)\])?$/;
const COUNTERS = /^\[(0|[1-9][0-9]*):(0|[1-9][0-9]*)\]/;
const USER_CHAIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Parse a whole iptables-restore document of one family. Never throws: what it refuses becomes a problem. */
export function parseIptablesRestore(text: string, family: Family, options: ParseOptions = {}): IptDocument {
  const tables = new Map<string, Map<string, MutableChain>>();
  const problems: IptProblem[] = [];
  let current: { name: string; chains: Map<string, MutableChain> } | undefined;
  // The context of the rules of the current table block, made again when a chain is declared.
  let ctx: { readonly rule: RuleContext; readonly kept: Memo<ParsedCommand> } | undefined;
  // Chain names are letters, digits and _ . - (USER_CHAIN); ipset names are written as JSON.
  const ipsetsKey = options.ipsets === undefined ? '-' : JSON.stringify([...options.ipsets]);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    try {
      // UTF-8 takes at most 3 bytes per UTF-16 unit: most lines need no count.
      if (line.length * 3 > RESTORE_LIMITS.lineBytes && Buffer.byteLength(line) > RESTORE_LIMITS.lineBytes) {
        refuse(`a line of ${Buffer.byteLength(line)} bytes: iptables-restore reads lines in pieces of ${RESTORE_LIMITS.lineBytes} bytes and would read the rest as a line of its own`);
      }
      if (line === '' || line.startsWith('#')) return;
      if (current === undefined) {
        const m = TABLE_LINE.exec(line);
        if (!m) refuse(line.startsWith('*') ? `table line ${JSON.stringify(line)} is not "*name"` : `a line outside any *table block: ${JSON.stringify(line.slice(0, 60))}`);
        const name = m[1];
        if (BUILTIN_CHAINS[name] === undefined) refuse(`unknown table *${name}`);
        if (tables.has(name)) refuse(`a second *${name} block (it would flush the first)`);
        const chains = new Map<string, MutableChain>();
        for (const c of BUILTIN_CHAINS[name]) chains.set(c, { name: c, policy: 'ACCEPT', builtin: true, rules: [] });
        current = { name, chains };
        ctx = undefined;
        return;
      }
      if (line === 'COMMIT') {
        tables.set(current.name, current.chains);
        current = undefined;
        return;
      }
      if (line.startsWith(':')) {
        const m = CHAIN_LINE.exec(line);
        if (!m) refuse(`chain line ${JSON.stringify(line)} is not ":name policy [packets:bytes]"`);
        const [, name, policy] = m;
        const existing = current.chains.get(name);
        if (existing !== undefined && existing.builtin) {
          if (policy !== 'ACCEPT' && policy !== 'DROP') refuse(`built-in chain ${name} has policy ${policy} (ACCEPT or DROP only)`);
          existing.policy = policy;
          return;
        }
        if (existing !== undefined) refuse(`chain ${name} is declared twice (iptables-restore flushes it the second time)`);
        if (name.length > 28 || !USER_CHAIN.test(name) || isTargetName(name)) refuse(`chain name ${JSON.stringify(name)}: twinwall reads user chains named with letters, digits, _ . - (at most 28, not all capitals like a target)`);
        if (policy !== '-') refuse(`user chain ${name} has a policy (${policy}); write "-"`);
        current.chains.set(name, { name, builtin: false, rules: [] });
        ctx = undefined;
        return;
      }
      if (line.startsWith('*')) refuse(`*${line.slice(1)} starts before *${current.name} is committed`);
      const counters = COUNTERS.exec(line);
      if (line.startsWith('[') && !counters) refuse('a "[" that does not start "[packets:bytes]"');
      if (ctx === undefined) {
        const rule: RuleContext = { family, table: current.name, chains: new Set(current.chains.keys()), ipsets: options.ipsets };
        ctx = { rule, kept: commandsIn(contextKey(rule, ipsetsKey)) };
      }
      const command = counters ? line.slice(counters[0].length) : line;
      const rule = ctx.rule;
      const parsed = ctx.kept.get(command, () => parseCommand(tokenize(command), rule));
      const chain = current.chains.get(parsed.chain) as MutableChain;
      const entries = parsed.rules.map((rule) => ({ rule, line: lineNo }));
      if (parsed.command === 'insert') {
        const pos = (parsed.position ?? 1) - 1;
        if (pos > chain.rules.length) refuse(`-I ${parsed.chain} ${pos + 1}: the chain has only ${chain.rules.length} rules (iptables: index of insertion too big)`);
        chain.rules.splice(pos, 0, ...entries);
      } else chain.rules.push(...entries);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      problems.push({ line: lineNo, message: e.message });
    }
  });
  if (current !== undefined) problems.push({ line: lines.length, message: `table *${current.name} is never committed (no COMMIT): iptables-restore would load nothing of it` });
  const out = new Map<string, IptTable>();
  for (const [name, chains] of tables) {
    const frozen = new Map<string, IptChain>();
    for (const [cname, c] of chains) {
      frozen.set(cname, {
        name: cname,
        builtin: c.builtin,
        ...(c.policy !== undefined ? { policy: c.policy } : {}),
        rules: placedRules(c.rules),
      });
    }
    out.set(name, { name, chains: frozen });
  }
  for (const table of out.values()) problems.push(...loopProblems(table), ...hookProblems(table));
  return { family, tables: out, problems };
}

/** A chain's rules numbered in order (pushed, not mapped: see parseCommand). */
function placedRules(rules: readonly { rule: Omit<IptRule, 'number' | 'line'>; line: number }[]): IptRule[] {
  const out: IptRule[] = [];
  for (const { rule, line } of rules) out.push(placedRule(rule, out.length + 1, line));
  return out;
}

/** Deepest chain nesting the checker reads (the kernel's limit is about that; beyond it, it refuses the table). */
export const MAX_CHAIN_DEPTH = 16;

/** Jumps that loop back into a chain, or nest too deep: the kernel refuses the whole table. */
function loopProblems(table: IptTable): IptProblem[] {
  const out: IptProblem[] = [];
  const state = new Map<string, 'open' | 'done'>();
  /** Depth of the deepest chain below `chain` (1 = jumps nowhere); Infinity inside a loop. */
  const depth = new Map<string, number>();
  const visit = (chain: string): number => {
    const s = state.get(chain);
    if (s === 'done') return depth.get(chain) as number;
    if (s === 'open') return Infinity;
    state.set(chain, 'open');
    let deepest = 1;
    for (const r of table.chains.get(chain)?.rules ?? []) {
      const t = r.target;
      if (t === undefined || TARGETS[t.name] !== undefined) continue;
      const below = state.get(t.name) === 'open' ? Infinity : visit(t.name);
      if (below === Infinity && state.get(t.name) === 'open') out.push({ line: r.line, message: `${chain} rule ${r.number} jumps to ${t.name}, which leads back here: a loop (the kernel refuses the table)` });
      deepest = Math.max(deepest, below + 1);
    }
    state.set(chain, 'done');
    depth.set(chain, deepest);
    return deepest;
  };
  for (const c of table.chains.values()) {
    const d = visit(c.name);
    if (c.builtin && d !== Infinity && d > MAX_CHAIN_DEPTH) out.push({ line: 0, message: `chains below ${c.name} nest ${d} deep; twinwall reads at most ${MAX_CHAIN_DEPTH}` });
  }
  return out;
}

/** Matches the kernel allows only on locally generated packets. */
const OUTPUT_ONLY_MODULES = new Set(['owner']);

/** A user chain reached from INPUT or FORWARD may not use -m owner (the kernel refuses the table). */
function hookProblems(table: IptTable): IptProblem[] {
  const reach = new Map<string, Set<string>>();
  const visit = (chain: string, from: string, seen: Set<string>): void => {
    if (seen.has(chain)) return;
    seen.add(chain);
    const set = reach.get(chain) ?? new Set<string>();
    set.add(from);
    reach.set(chain, set);
    for (const r of table.chains.get(chain)?.rules ?? []) {
      const t = r.target;
      if (t !== undefined && TARGETS[t.name] === undefined) visit(t.name, from, seen);
    }
  };
  for (const c of table.chains.values()) if (c.builtin) visit(c.name, c.name, new Set());
  const out: IptProblem[] = [];
  for (const c of table.chains.values()) {
    const hooks = reach.get(c.name) ?? new Set<string>();
    for (const r of c.rules) {
      const bad = r.modules.filter((m) => OUTPUT_ONLY_MODULES.has(m));
      if (bad.length > 0 && (hooks.has('INPUT') || hooks.has('FORWARD'))) {
        out.push({ line: r.line, message: `-m ${bad.join(', -m ')} in chain ${c.name}, which ${[...hooks].filter((h) => h !== 'OUTPUT').join(' and ')} reaches: the kernel allows it on outgoing packets only` });
      }
    }
  }
  return out;
}

/**
 * The document's meaning as lines: every table, chain (with its policy) and rule key, chains in
 * name order. Two documents iptables stores alike give equal lines. `comments: false` leaves
 * comment matches out (they never change a verdict).
 */
export function canonicalLines(doc: IptDocument, options: { comments?: boolean } = {}): string[] {
  const out: string[] = [];
  const withComments = options.comments !== false;
  for (const table of [...doc.tables.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    out.push(`*${table.name}`);
    const chains = [...table.chains.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const c of chains) out.push(`:${c.name} ${c.builtin ? c.policy : '-'}`);
    for (const c of chains) for (const r of c.rules) out.push(withComments ? r.key : r.verdictKey);
  }
  return out;
}

/**
 * Where two documents differ in meaning (canonicalLines, comments included), as "checker: …,
 * kernel: …"; undefined when they mean the same. `verify` compares its reading of an artefact
 * with what the kernel stored (iptables-save after loading it).
 */
export function documentDifference(mine: IptDocument, theirs: IptDocument): string | undefined {
  const a = canonicalLines(mine);
  const b = canonicalLines(theirs);
  const i = a.findIndex((line, k) => line !== b[k]);
  const at = i >= 0 ? i : a.length < b.length ? a.length : -1;
  if (at < 0) return undefined;
  return `the checker reads ${a[at] === undefined ? 'nothing more' : JSON.stringify(a[at])} where the kernel stored ${b[at] === undefined ? 'nothing more' : JSON.stringify(b[at])}`;
}
