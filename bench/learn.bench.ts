/**
 * `twinwall learn` over 1,000,000 generated kernel log lines (kern.log form: four hosts, both
 * directions, both address families, a udp/1434 burst, some foreign and malformed lines), read from
 * a file through the command line exactly as a user runs it. Each run is a child process, so its
 * peak RSS is its own: lines per second, and peak memory at 1,000,000 lines against 500,000 lines
 * (streaming with bounded state: doubling the input must not grow it), 100,000 lines (before the
 * per-flow address caps fill) and an empty log (the process itself).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeKernLog } from './learn-logs';
import { BenchContext, BenchResult } from './types';

interface ChildResult {
  readonly lines: number;
  readonly ms: number;
  /** CPU time (user + system) of the run: on a busy machine, wall time says more about the neighbours. */
  readonly cpuMs: number;
  readonly maxRssKb: number;
  /** Heap still in use after a full GC at the end, the result alive: what learn keeps. */
  readonly retainedMb: number;
  readonly exit: number;
  readonly summary: string;
}

/** In the child: run `twinwall learn` on one file, report time and peak RSS as JSON. */
async function child(file: string): Promise<void> {
  const { Command } = await import('commander');
  const { registerLearn } = await import('../cli/commands/learn');
  let exit = -1;
  let summary = '';
  const program = new Command().exitOverride();
  registerLearn(program, { out: () => undefined, err: (s) => (summary += s), setExit: (c) => (exit = c) });
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await program.parseAsync(['learn', '--from-kernel-log', file, '--format', 'json', '--output', '/dev/null'], { from: 'user' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(c0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const lines = Number(/(\d+) lines/.exec(summary)?.[1] ?? 0);
  (global as { gc?: () => void }).gc?.();
  const retainedMb = Math.round(process.memoryUsage().heapUsed / 1048576);
  const result: ChildResult = { lines, ms, cpuMs, maxRssKb: process.resourceUsage().maxRSS, retainedMb, exit, summary: summary.trim() };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(file: string): ChildResult {
  const out = execFileSync(process.execPath, ['--expose-gc', '-r', 'ts-node/register/transpile-only', __filename, '--child', file], {
    cwd: path.resolve(__dirname, '..'),
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop() as string) as ChildResult;
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

export async function run(context: BenchContext): Promise<BenchResult[]> {
  const files = { empty: 0, small: 100_000, half: 500_000, large: 1_000_000 } as const;
  const results: Partial<Record<keyof typeof files, ChildResult>> = {};
  const load = os.loadavg()[0].toFixed(2) + ` on ${os.cpus().length} CPUs`;
  for (const [name, n] of Object.entries(files) as [keyof typeof files, number][]) {
    const file = path.join(context.workDir, `kern-${n}.log`);
    context.log(`learn: writing ${n.toLocaleString('en-US')} kernel log lines`);
    writeKernLog(file, n);
    context.log(`learn: reading ${n.toLocaleString('en-US')} lines in a child process`);
    results[name] = runChild(file);
    fs.rmSync(file, { force: true });
  }
  const { empty, small, half, large } = results as Record<keyof typeof files, ChildResult>;
  // Flat memory: doubling the input (500,000 → 1,000,000 lines) must not grow the peak.
  const ratio = Math.round((large.maxRssKb / half.maxRssKb) * 100) / 100;
  return [
    {
      name: 'learn: 1,000,000 kernel log lines (kern.log, 4 hosts), peak memory vs 500,000 lines',
      figures: {
        'lines per second': Math.round(large.lines / (large.ms / 1000)).toLocaleString('en-US'),
        'lines per CPU second': Math.round(large.lines / (large.cpuMs / 1000)).toLocaleString('en-US'),
        'time, 1,000,000 lines': `${(large.ms / 1000).toFixed(1)} s (CPU ${(large.cpuMs / 1000).toFixed(1)} s)`,
        'peak RSS, 1,000,000 lines': mb(large.maxRssKb),
        'peak RSS, 500,000 lines': mb(half.maxRssKb),
        'peak RSS, 100,000 lines': mb(small.maxRssKb),
        'peak RSS, empty log (process baseline)': mb(empty.maxRssKb),
        'heap kept after GC, 500,000 / 1,000,000 lines': `${half.retainedMb} MB / ${large.retainedMb} MB`,
        'load average (1 min) at start': load,
        result: large.summary.replace(/^twinwall learn: /, ''),
      },
      ratio,
      target: '≤ 1.5× (memory flat in the input size)',
      met: ratio <= 1.5,
    },
  ];
}

if (require.main === module) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    void child(process.argv[i + 1]).catch((e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    });
  } else {
    // Run on its own: `npx ts-node bench/learn.bench.ts`.
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-bench-learn-'));
    void run({ workDir, kernel: false, log: (m) => process.stderr.write(`${m}\n`) })
      .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
      .finally(() => fs.rmSync(workDir, { recursive: true, force: true }));
  }
}
