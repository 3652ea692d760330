/**
 * `twinwall learn` at the speed of the input (issue #17), measured as a user runs it (the CLI,
 * `node scripts/twinwall-dev.js learn …`, warm transpile cache), against `mawk` grouping the same
 * lines, in the same run, interleaved (learn, mawk, learn, mawk …) so both sides meet the same
 * load:
 *
 * - 1,000,000 VPC Flow Log records (bench/learn-logs.ts, 112 MB) vs mawk grouping them by
 *   (interface, source, destination, port, protocol, action) with packet and byte sums;
 * - 1,000,000 kern.log lines vs mawk grouping the LOG lines by (host, direction, source,
 *   destination, protocol, destination port), fields found by their KEY= prefix;
 * - learn's peak memory (max RSS) at 1,000,000 lines against 100,000 lines, both inputs.
 *
 * Each measurement is GNU time's (`/usr/bin/time -f`, bench/gnu-time.ts): wall time, CPU time (user + system) and
 * max RSS of the one process. The ratio is of median wall times; the CPU ratio is printed too (it
 * moves less when other work shares the machine).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Run, missingTools, timed } from './gnu-time';
import { writeFlowLogs, writeKernLog } from './learn-logs';
import { BenchContext, BenchResult } from './types';

const ROOT = path.resolve(__dirname, '..');

/** mawk grouping flow-log records by interface, source, destination, port, protocol, action. */
const FLOW_AWK = '{ k = $3 " " $4 " " $5 " " $7 " " $8 " " $13; c[k]++; p[k] += $9; b[k] += $10 } END { for (k in c) print k, c[k], p[k], b[k] }';

/** mawk grouping kernel LOG lines by host, direction, source, destination, protocol, destination port. */
const KERN_AWK = `/ twinwall / {
  host = $4; dir = ""; s = ""; d = ""; p = ""; t = ""
  for (i = 5; i <= NF; i++) {
    f = $i
    if (f == "twinwall") { dir = $(i + 1); continue }
    k = substr(f, 1, 4)
    if (k == "SRC=") { if (s == "") s = substr(f, 5) }
    else if (k == "DST=") { if (d == "") d = substr(f, 5) }
    else if (k == "DPT=") { if (t == "") t = substr(f, 5) }
    else if (substr(f, 1, 6) == "PROTO=") { if (p == "") p = substr(f, 7) }
  }
  c[host " " dir " " s " " d " " p " " t]++
}
END { for (k in c) print k, c[k] }`;

const learn = (kind: 'flow' | 'kernel', file: string): string[] => [process.execPath, path.join(ROOT, 'scripts', 'twinwall-dev.js'), 'learn', kind === 'flow' ? '--from-flow-logs' : '--from-kernel-log', file, '--format', 'json', '--output', '/dev/null'];
const mawk = (program: string, file: string): string[] => ['mawk', program, file];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (x: number): string => `${x.toFixed(2)} s`;
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

export async function run(context: BenchContext): Promise<BenchResult[]> {
  const why = missingTools(['mawk']);
  const names = {
    flow: 'learn: 1,000,000 VPC Flow Log records vs mawk grouping them by interface, source, destination, port, protocol and action',
    kernel: 'learn: 1,000,000 kern.log lines vs mawk grouping the LOG lines by host, direction, source, destination, protocol and port',
    flowMemory: 'learn: peak memory, 1,000,000 vs 100,000 flow-log records',
    kernelMemory: 'learn: peak memory, 1,000,000 vs 100,000 kern.log lines',
  };
  if (why !== undefined) return Object.values(names).map((name) => ({ name, figures: {}, skipped: why }));
  const rounds = Number(process.env.TWINWALL_BENCH_ROUNDS ?? 3);
  const load = () => `${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`;
  const loadAtStart = load();
  const files = { flow: path.join(context.workDir, 'flow-1m.log'), flowSmall: path.join(context.workDir, 'flow-100k.log'), kernel: path.join(context.workDir, 'kern-1m.log'), kernelSmall: path.join(context.workDir, 'kern-100k.log') };
  context.log('learn: writing 1,000,000 and 100,000 flow-log records and kern.log lines');
  writeFlowLogs(files.flow, 1_000_000);
  writeFlowLogs(files.flowSmall, 100_000);
  writeKernLog(files.kernel, 1_000_000);
  writeKernLog(files.kernelSmall, 100_000);
  // Warm the transpile cache, so no run pays for compiling TypeScript.
  timed(learn('flow', files.flowSmall));

  const results: BenchResult[] = [];
  for (const kind of ['flow', 'kernel'] as const) {
    const file = files[kind];
    const program = kind === 'flow' ? FLOW_AWK : KERN_AWK;
    const learnRuns: Run[] = [];
    const mawkRuns: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      context.log(`learn: ${kind} round ${i + 1} of ${rounds} (load ${load()})`);
      learnRuns.push(timed(learn(kind, file)));
      mawkRuns.push(timed(mawk(program, file)));
    }
    const wall = median(learnRuns.map((r) => r.wall)) / median(mawkRuns.map((r) => r.wall));
    const cpu = median(learnRuns.map((r) => r.cpu)) / median(mawkRuns.map((r) => r.cpu));
    const target = kind === 'flow' ? 1.5 : 2;
    const bytes = fs.statSync(file).size;
    results.push({
      name: names[kind],
      figures: {
        input: `${(bytes / 1e6).toFixed(0)} MB`,
        [`learn (median of ${rounds})`]: `${s(median(learnRuns.map((r) => r.wall)))} wall, ${s(median(learnRuns.map((r) => r.cpu)))} CPU, ${mb(median(learnRuns.map((r) => r.rssKb)))} peak RSS`,
        [`mawk (median of ${rounds})`]: `${s(median(mawkRuns.map((r) => r.wall)))} wall, ${s(median(mawkRuns.map((r) => r.cpu)))} CPU`,
        'every run, learn / mawk wall': learnRuns.map((r, i) => `${r.wall.toFixed(1)}/${mawkRuns[i].wall.toFixed(1)}`).join(', '),
        'CPU ratio': `${cpu.toFixed(2)}×`,
        'lines per second (learn, wall)': Math.round(1_000_000 / median(learnRuns.map((r) => r.wall))).toLocaleString('en-US'),
        'load average (1 min) at start / end': `${loadAtStart} / ${load()}`,
        result: learnRuns[0].stderr.replace(/^twinwall learn: /, ''),
      },
      ratio: Math.round(wall * 100) / 100,
      target: `≤ ${target}× (median wall time, same run)`,
      met: wall <= target,
    });
  }
  for (const kind of ['flow', 'kernel'] as const) {
    const small: Run[] = [];
    const large: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      small.push(timed(learn(kind, kind === 'flow' ? files.flowSmall : files.kernelSmall)));
      large.push(timed(learn(kind, files[kind])));
    }
    const ratio = median(large.map((r) => r.rssKb)) / median(small.map((r) => r.rssKb));
    results.push({
      name: kind === 'flow' ? names.flowMemory : names.kernelMemory,
      figures: {
        [`peak RSS, 1,000,000 lines (median of ${rounds})`]: mb(median(large.map((r) => r.rssKb))),
        [`peak RSS, 100,000 lines (median of ${rounds})`]: mb(median(small.map((r) => r.rssKb))),
        'every run, 1,000,000 / 100,000': large.map((r, i) => `${mb(r.rssKb)}/${mb(small[i].rssKb)}`).join(', '),
      },
      ratio: Math.round(ratio * 100) / 100,
      target: '≤ 1.2× (memory flat in the input size)',
      met: ratio <= 1.2,
    });
  }
  for (const f of Object.values(files)) fs.rmSync(f, { force: true });
  return results;
}

if (require.main === module) {
  // Run on its own: `npx ts-node bench/learn.bench.ts`.
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-bench-learn-'));
  void run({ workDir, kernel: false, log: (m) => process.stderr.write(`${m}\n`) })
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .finally(() => fs.rmSync(workDir, { recursive: true, force: true }));
}
