/**
 * A parser for iptables-restore input (the format of /etc/iptables/rules.v4 and rules.v6). It
 * reads every table, chain policy and rule, and splits each rule into its options, keeping which
 * match module each option belongs to and whether it is negated. It interprets nothing: that is
 * the model's job (host-model.ts). Pure: text in, data out.
 */

/** One option of a rule: `! --dport 22` in `-m tcp` is { module: 'tcp', name: '--dport', negated: true, args: ['22'] }. */
export interface IptOption {
  /** The match module (`-m` name) the option belongs to; undefined for base options (-p, -s, -d, -i, -o, -f). */
  readonly module?: string;
  readonly name: string;
  readonly negated: boolean;
  readonly args: readonly string[];
}

export interface IptTarget {
  /** `-j` (jump) or `-g` (goto). */
  readonly how: 'jump' | 'goto';
  readonly name: string;
  /** Options after the target (`--log-prefix`, `--reject-with` …). */
  readonly options: readonly IptOption[];
}

/** One rule as written, with its position. */
export interface IptRule {
  readonly chain: string;
  /** 1-based position in its chain after the whole file is applied (as `iptables -L --line-numbers` shows it). */
  readonly number: number;
  /** 1-based line in the file. */
  readonly line: number;
  /** The rule text as written (after the command). */
  readonly text: string;
  /** Match modules loaded with -m, in order. */
  readonly modules: readonly string[];
  /** Base and match options, in order. */
  readonly options: readonly IptOption[];
  readonly target?: IptTarget;
  /** `-m comment --comment` text, if any. */
  readonly comment?: string;
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
  readonly tables: ReadonlyMap<string, IptTable>;
  /** Lines the parser could not read; a table with problems cannot be trusted. */
  readonly problems: readonly IptProblem[];
}

const BUILTIN: Record<string, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** A word and whether it was quoted (a quoted word is always a value, even if it starts with '-'). */
interface Word {
  readonly text: string;
  readonly quoted: boolean;
}

/** Split a line the way iptables-restore does: whitespace-separated, "…" and '…' quoting with \ escapes. */
export function tokenize(line: string): Word[] {
  const out: Word[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) break;
    let text = '';
    let quoted = false;
    while (i < line.length && !/\s/.test(line[i])) {
      const ch = line[i];
      if (ch === '"' || ch === "'") {
        quoted = true;
        i++;
        while (i < line.length && line[i] !== ch) {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          text += line[i];
          i++;
        }
        if (i >= line.length) throw new Error(`unterminated ${ch} quote`);
        i++;
        continue;
      }
      if (ch === '\\' && i + 1 < line.length) {
        text += line[i + 1];
        i += 2;
        continue;
      }
      text += ch;
      i++;
    }
    out.push({ text, quoted });
  }
  return out;
}

const LONG_NAMES: Record<string, string> = {
  '--protocol': '-p',
  '--source': '-s',
  '--src': '-s',
  '--destination': '-d',
  '--dst': '-d',
  '--in-interface': '-i',
  '--out-interface': '-o',
  '--fragment': '-f',
  '--jump': '-j',
  '--goto': '-g',
  '--match': '-m',
  '--append': '-A',
  '--insert': '-I',
};

const BASE_OPTIONS = new Set(['-p', '-s', '-d', '-i', '-o', '-f', '-4', '-6']);
const NO_ARGUMENT = new Set(['-f', '-4', '-6', '--syn', '--log-uid', '--log-tcp-sequence', '--log-tcp-options', '--log-ip-options', '--socket-exists', '--rcheck', '--update', '--set', '--remove']);

export interface ParsedRuleLine {
  readonly command: 'append' | 'insert';
  readonly chain: string;
  /** For -I: the 1-based position (default 1). */
  readonly position?: number;
  readonly text: string;
  readonly modules: readonly string[];
  readonly options: readonly IptOption[];
  readonly target?: IptTarget;
  readonly comment?: string;
}

/** Parse one `-A CHAIN …` / `-I CHAIN [n] …` line. Throws with a one-line reason on anything else. */
export function parseRuleLine(line: string): ParsedRuleLine {
  const words = tokenize(line.trim());
  if (words.length < 2) throw new Error(`not a rule: ${line.trim()}`);
  const cmd = LONG_NAMES[words[0].text] ?? words[0].text;
  if (cmd !== '-A' && cmd !== '-I') throw new Error(`unsupported command ${words[0].text}`);
  const chain = words[1].text;
  let i = 2;
  let position: number | undefined;
  if (cmd === '-I' && i < words.length && /^\d+$/.test(words[i].text) && !words[i].quoted) {
    position = Number(words[i].text);
    i++;
  }
  const text = words.slice(i).map((w) => (w.quoted || /\s/.test(w.text) ? JSON.stringify(w.text) : w.text)).join(' ');
  const modules: string[] = [];
  const options: IptOption[] = [];
  const targetOptions: IptOption[] = [];
  let module: string | undefined;
  let target: { how: 'jump' | 'goto'; name: string } | undefined;
  let negate = false;
  let comment: string | undefined;
  while (i < words.length) {
    const w = words[i];
    if (w.text === '!' && !w.quoted) {
      if (negate) throw new Error('"!" twice in a row');
      negate = true;
      i++;
      continue;
    }
    if (w.quoted || !w.text.startsWith('-') || w.text === '-') throw new Error(`unexpected word ${JSON.stringify(w.text)}`);
    const name = LONG_NAMES[w.text] ?? w.text;
    i++;
    if (name === '-m') {
      if (negate) throw new Error('"!" before -m');
      const m = words[i]?.text;
      if (m === undefined) throw new Error('-m without a module name');
      module = m;
      modules.push(m);
      i++;
      continue;
    }
    if (name === '-j' || name === '-g') {
      if (negate) throw new Error(`"!" before ${name}`);
      const t = words[i]?.text;
      if (t === undefined) throw new Error(`${name} without a target`);
      if (target !== undefined) throw new Error('two targets');
      target = { how: name === '-j' ? 'jump' : 'goto', name: t };
      i++;
      continue;
    }
    const args: string[] = [];
    if (!NO_ARGUMENT.has(name)) {
      // Values follow until the next option; an old-style "--dport ! 22" negation is accepted too.
      if (words[i]?.text === '!' && !words[i].quoted) {
        negate = !negate;
        i++;
      }
      while (i < words.length && (words[i].quoted || !(words[i].text.startsWith('-') && words[i].text.length > 1 && !/^-\d/.test(words[i].text))) && !(words[i].text === '!' && !words[i].quoted)) {
        args.push(words[i].text);
        i++;
      }
      if (args.length === 0) throw new Error(`${w.text} without a value`);
    }
    const isBase = BASE_OPTIONS.has(name);
    const opt: IptOption = { ...(isBase || target !== undefined ? {} : { module }), name, negated: negate, args };
    negate = false;
    if (target !== undefined && !isBase) targetOptions.push(opt);
    else options.push(opt);
    if (module === 'comment' && name === '--comment' && !isBase) comment = args.join(' ');
  }
  if (negate) throw new Error('"!" at the end of the rule');
  return {
    command: cmd === '-A' ? 'append' : 'insert',
    chain,
    ...(position !== undefined ? { position } : {}),
    text,
    modules,
    options,
    ...(target !== undefined ? { target: { ...target, options: targetOptions } } : {}),
    ...(comment !== undefined ? { comment } : {}),
  };
}

interface MutableChain {
  name: string;
  policy?: string;
  builtin: boolean;
  rules: { parsed: ParsedRuleLine; line: number }[];
}

/** Parse a whole iptables-restore document. Never throws: unreadable lines become problems. */
export function parseIptablesRestore(text: string): IptDocument {
  const tables = new Map<string, Map<string, MutableChain>>();
  const problems: IptProblem[] = [];
  let current: { name: string; chains: Map<string, MutableChain> } | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      if (line.startsWith('*')) {
        if (current !== undefined) throw new Error(`table *${line.slice(1)} starts before *${current.name} is committed`);
        const name = line.slice(1).trim();
        if (BUILTIN[name] === undefined) throw new Error(`unknown table *${name}`);
        // A second block for the same table replaces nothing in restore --noflush mode and
        // flushes in normal mode; twinwall's files have one block per table.
        const chains = new Map<string, MutableChain>();
        for (const c of BUILTIN[name]) chains.set(c, { name: c, policy: 'ACCEPT', builtin: true, rules: [] });
        current = { name, chains };
        return;
      }
      if (current === undefined) throw new Error('a line outside any *table block');
      if (line === 'COMMIT') {
        tables.set(current.name, current.chains);
        current = undefined;
        return;
      }
      if (line.startsWith(':')) {
        const m = /^:(\S+)\s+(\S+)(\s+\[\d+:\d+\])?$/.exec(line);
        if (!m) throw new Error(`unreadable chain line ${JSON.stringify(line)}`);
        const [, name, policy] = m;
        const existing = current.chains.get(name);
        if (existing !== undefined && existing.builtin) {
          if (policy !== 'ACCEPT' && policy !== 'DROP') throw new Error(`built-in chain ${name} has policy ${policy}`);
          existing.policy = policy;
        } else {
          if (policy !== '-') throw new Error(`user chain ${name} has a policy (${policy})`);
          current.chains.set(name, { name, builtin: false, rules: [] });
        }
        return;
      }
      const parsed = parseRuleLine(line);
      const chain = current.chains.get(parsed.chain);
      if (chain === undefined) throw new Error(`rule in chain ${parsed.chain}, which is not declared`);
      if (parsed.command === 'insert') {
        const pos = (parsed.position ?? 1) - 1;
        if (pos > chain.rules.length) throw new Error(`-I ${parsed.chain} ${pos + 1}: the chain has only ${chain.rules.length} rules`);
        chain.rules.splice(pos, 0, { parsed, line: lineNo });
      } else chain.rules.push({ parsed, line: lineNo });
    } catch (e) {
      problems.push({ line: lineNo, message: (e as Error).message });
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
        rules: c.rules.map(({ parsed, line }, i) => ({
          chain: cname,
          number: i + 1,
          line,
          text: parsed.text,
          modules: parsed.modules,
          options: parsed.options,
          ...(parsed.target !== undefined ? { target: parsed.target } : {}),
          ...(parsed.comment !== undefined ? { comment: parsed.comment } : {}),
        })),
      });
    }
    out.set(name, { name, chains: frozen });
  }
  // Jumps to chains that do not exist make iptables-restore reject the whole table.
  for (const table of out.values()) {
    for (const chain of table.chains.values()) {
      for (const r of chain.rules) {
        const t = r.target;
        if (t === undefined || /^[A-Z]+$/.test(t.name)) continue;
        if (!table.chains.has(t.name)) problems.push({ line: r.line, message: `${chain.name} rule ${r.number} jumps to ${t.name}, which is not declared` });
      }
    }
  }
  return { tables: out, problems };
}

/** The first value of an option, looked up by name (and module, if given). */
export function optionValue(rule: { readonly options: readonly IptOption[] }, name: string, module?: string): IptOption | undefined {
  return rule.options.find((o) => o.name === name && (module === undefined || o.module === module));
}
