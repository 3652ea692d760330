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
import { BenchContext, BenchResult } from './types';

const HOSTS = ['web1', 'web2', 'mail1', 'ns1'];

/** Write `n` lines of kern.log to `file`, deterministically. */
export function writeKernLog(file: string, n: number): void {
  const fd = fs.openSync(file, 'w');
  let batch: string[] = [];
  for (let i = 0; i < n; i++) {
    const host = HOSTS[i % HOSTS.length];
    const t = `Nov 19 ${String(10 + Math.floor(i / 360000) % 14).padStart(2, '0')}:${String(Math.floor(i / 6000) % 60).padStart(2, '0')}:${String(Math.floor(i / 100) % 60).padStart(2, '0')}`;
    const head = `${t} ${host} kernel: [${(1000 + i / 1000).toFixed(6).padStart(12)}] `;
    const k = i % 20;
    let line: string;
    if (k === 19) line = `${t} ${host} systemd[1]: Started Session ${i} of user admin.`;
    else if (i % 100003 === 0) line = `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.`;
    else if (k < 8) {
      const v6 = k === 7;
      const src = v6 ? `2001:0db8:${((i >> 8) & 0xff).toString(16).padStart(4, '0')}:0000:0000:0000:0000:${(i & 0xff).toString(16).padStart(4, '0')}` : `198.51.${(i >> 8) & 255}.${i & 255}`;
      const dst = v6 ? '2001:0db8:0001:0000:0000:0000:0000:0010' : '203.0.113.10';
      line = `${head}twinwall ingress audit: IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=${src} DST=${dst} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=TCP SPT=${1024 + (i % 60000)} DPT=${[80, 443, 25, 22][k % 4]} WINDOW=64240 RES=0x00 SYN URGP=0 `;
    } else if (k < 14) {
      line = `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=192.0.2.${[53, 54][k % 2]} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=UDP SPT=${1024 + (i % 60000)} DPT=53 LEN=40 UID=${k % 3 === 0 ? 101 : 0} GID=0 `;
    } else if (k < 17) {
      line = `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=192.0.${(i >> 8) & 255}.${i & 255} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=TCP SPT=${1024 + (i % 60000)} DPT=25 WINDOW=64240 RES=0x00 SYN URGP=0 UID=105 GID=110 `;
    } else {
      line = `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=${(i * 2654435761) % 223 + 1}.${(i >> 3) & 255}.${(i >> 11) & 255}.${i & 255} LEN=404 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} PROTO=UDP SPT=${1024 + (i % 60000)} DPT=1434 LEN=384 UID=0 GID=0 `;
    }
    batch.push(line);
    if (batch.length === 10000) {
      fs.writeSync(fd, `${batch.join('\n')}\n`);
      batch = [];
    }
  }
  if (batch.length > 0) fs.writeSync(fd, `${batch.join('\n')}\n`);
  fs.closeSync(fd);
}

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
