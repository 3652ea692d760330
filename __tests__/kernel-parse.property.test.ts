/**
 * Kernel tier: the checker reads iptables-restore input exactly as iptables-restore does, or
 * refuses it. A fast-check property generates tables of random rule lines (every match, option
 * and target the renderer writes and the checker reads, spelled every way iptables accepts, plus
 * hostile quoting, `-j` inside comments, odd spacing and tabs, negations, abbreviations, names,
 * leading zeros, long lines; __tests__/support/rule-gen.ts). The lines the checker refuses are
 * set aside (refusing is always allowed: it is a finding). The rest is loaded into a fresh
 * network namespace (unshare --net) with iptables-restore / ip6tables-restore, which must accept it, and read back
 * with iptables-save; the checker's model of the original text must equal its model of the
 * kernel's text, rule by rule, comments included.
 *
 * Size: at least 10,000 generated lines under CI=true (TWINWALL_PARSE_CASES overrides), 2,400
 * otherwise; 120 lines per table, so one restore and one save per 120 lines. A failure names the
 * seed (TWINWALL_PARSE_SEED reruns it) and the line.
 */
import { execFileSync } from 'child_process';
import fc from 'fast-check';
import { canonicalLines, parseIptablesRestore } from '../lib/check';
import { IPSETS, Family, USER_CHAINS, longLine, pastedCommentLine, ruleLine, table } from './support/rule-gen';
import { describeTier, netns, onPath, root } from './support/tiers';

const CASES = Number(process.env.TWINWALL_PARSE_CASES ?? (process.env.CI === 'true' ? 12000 : 2400));
const BATCH = 120;
const HEADER = 4 + USER_CHAINS.length; // *filter, three policies, the user chains
/** The sets the namespace holds when a table loads. */
const SETS = { ipsets: new Map<string, Family>([[IPSETS[4].name, 4], [IPSETS[6].name, 6]]) };

/**
 * Load `text` with iptables-restore (or ip6tables-restore) into a fresh network namespace (unshare:
 * it goes away with the process) holding the generator's ipsets, and return iptables-save's
 * output. Throws with the restore's error when the kernel refuses the table.
 */
function loadAndSave(family: Family, text: string): string {
  const [restore, save] = family === 4 ? ['iptables-restore', 'iptables-save'] : ['ip6tables-restore', 'ip6tables-save'];
  const sets = ([4, 6] as const).map((f) => `ipset create ${IPSETS[f].name} ${IPSETS[f].type}`).join(' && ');
  return execFileSync('unshare', ['--net', 'sh', '-c', `${sets} && ${restore} && ${save}`], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Keep the lines the checker reads without a problem (dropping one can make a later one fail: repeat). */
function acceptedLines(lines: readonly string[], family: Family, policies: readonly string[]): string[] {
  let keep = [...lines];
  for (;;) {
    const doc = parseIptablesRestore(table(keep, policies), family, SETS);
    if (doc.problems.length === 0) return keep;
    const bad = new Set(doc.problems.map((p) => p.line - HEADER - 1));
    if ([...bad].some((i) => i < 0 || i >= keep.length)) throw new Error(`a problem outside the generated lines: ${JSON.stringify(doc.problems)}`);
    keep = keep.filter((_, i) => !bad.has(i));
  }
}

function kernelLine(message: string): number | undefined {
  const m = /(?:Error occurred at line: |line )(\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

const stats = { generated: 0, accepted: 0, tables: 0, rules: 0, ms: 0 };

describeTier('kernel (parse)', [root, onPath('unshare'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('iptables-save'), onPath('ipset'), netns], () => {
  it('reads the hostile comment of issue #13 as the kernel does: no -d, an unconditional tcp/22 ACCEPT', () => {
    const line = `-A INPUT -p tcp --dport 22 -m comment --comment '"' -d 10.10.0.2/32 -m comment --comment '" -m comment --comment dnsClient/dns' -j ACCEPT`;
    const original = parseIptablesRestore(table([line]), 4);
    expect(original.problems).toEqual([]);
    const saved = loadAndSave(4, table([line]));
    const kernel = parseIptablesRestore(saved, 4);
    expect(kernel.problems).toEqual([]);
    expect(canonicalLines(original)).toEqual(canonicalLines(kernel));
    const rule = kernel.tables.get('filter')?.chains.get('INPUT')?.rules[0];
    expect(rule?.options.filter((o) => o.module !== 'comment').map((o) => o.name)).toEqual(['-p', '--dport']);
    expect(rule?.target?.name).toBe('ACCEPT');
  });

  it(`reads ${CASES} random rule lines exactly as iptables-restore and iptables-save do, or refuses them`, () => {
    const t0 = Date.now();
    const seed = process.env.TWINWALL_PARSE_SEED !== undefined ? Number(process.env.TWINWALL_PARSE_SEED) : Date.now() ^ (process.pid << 8);
    const line = (family: Family) => fc.oneof({ weight: 40, arbitrary: ruleLine(family) }, { weight: 3, arbitrary: pastedCommentLine() }, { weight: 1, arbitrary: longLine() });
    const input = fc.constantFrom<Family>(4, 6).chain((family) =>
      fc.tuple(fc.constant(family), fc.array(line(family), { minLength: BATCH, maxLength: BATCH }), fc.array(fc.constantFrom('ACCEPT', 'DROP'), { minLength: 3, maxLength: 3 })),
    );
    const property = fc.property(input, ([family, lines, policies]) => {
      stats.generated += lines.length;
      const keep = acceptedLines(lines, family, policies);
      stats.accepted += keep.length;
      stats.tables++;
      const text = table(keep, policies);
      const original = parseIptablesRestore(text, family, SETS);
      let saved: string;
      try {
        saved = loadAndSave(family, text);
      } catch (e) {
        const message = String((e as { stderr?: string }).stderr ?? e);
        const n = kernelLine(message);
        throw new Error(`the checker read a table the kernel refuses: ${message.trim()}${n !== undefined ? `\n  line ${n}: ${text.split('\n')[n - 1]}` : ''}`);
      }
      const kernel = parseIptablesRestore(saved, family, SETS);
      if (kernel.problems.length > 0) throw new Error(`the checker cannot read iptables-save's output: ${JSON.stringify(kernel.problems.slice(0, 3))}\n${saved.split('\n').filter((_, i) => kernel.problems.some((p) => p.line === i + 1)).join('\n')}`);
      const mine = canonicalLines(original);
      const theirs = canonicalLines(kernel);
      stats.rules += mine.filter((l) => !l.startsWith('*') && !l.startsWith(':')).length;
      if (mine.join('\n') !== theirs.join('\n')) {
        const i = mine.findIndex((l, k) => l !== theirs[k]);
        const rule = [...(original.tables.get('filter')?.chains.values() ?? [])].flatMap((c) => c.rules).find((r) => r.key === mine[i]);
        throw new Error(`the checker's reading differs from the kernel's:\n  checker: ${mine[i]}\n  kernel:  ${theirs[i]}\n  line:    ${rule !== undefined ? text.split('\n')[rule.line - 1] : '?'}`);
      }
    });
    fc.assert(property, { numRuns: Math.ceil(CASES / BATCH), seed, endOnFailure: true });
    stats.ms = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(
      `kernel (parse): ${stats.generated} generated lines in ${stats.tables} tables (seed ${seed}): the checker read ${stats.accepted} (${stats.rules} kernel rules, all equal to iptables-save's) and refused ${stats.generated - stats.accepted}; ${(stats.ms / 1000).toFixed(1)} s`,
    );
    expect(stats.generated).toBeGreaterThanOrEqual(CASES);
    // The property is only worth something if most lines are read, not refused.
    expect(stats.accepted / stats.generated).toBeGreaterThan(0.3);
  }, 30 * 60 * 1000);
});
