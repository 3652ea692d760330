/**
 * Hostile artefacts cost what clean ones do (issue #13). Each case runs `twinwall check` in a
 * fresh child process (so its peak RSS is its own) on the example's staging stack:
 *
 * - clean: as synthesized;
 * - gzip bomb: one host's user-data replaced by a 12 KB double bomb (3.9 GB inflated); before the
 *   1 MiB bound this took check to 7.8 GB of memory and 73 s;
 * - /dev/zero: the stack's cdk.tf.json a symlink to /dev/zero; before, read until abort.
 *
 * Ratios: the bomb's peak memory and time against the clean run's, and /dev/zero's time to its
 * exit 2 against the clean run's time.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'cdktf';
import { buildApp } from '../main';
import { doubleBomb } from '../__tests__/support/bombs';
import { median } from './ns';
import { BenchContext, BenchResult } from './types';

interface ChildResult {
  readonly ms: number;
  readonly maxRssKb: number;
  readonly exit: number;
}

/** In the child: `twinwall check DIR --quiet`, output discarded; time, peak RSS and exit code. */
async function child(dir: string): Promise<void> {
  const { main } = await import('../cli/main');
  const t0 = process.hrtime.bigint();
  const exit = await main(['check', dir, '--quiet'], { out: () => undefined, err: () => undefined });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`${JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS, exit })}\n`);
}

function runChild(dir: string): ChildResult {
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--child', dir], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop() as string) as ChildResult;
}

/** The median of three runs by time, with its peak RSS (the largest of the three). */
function measure(dir: string): ChildResult {
  const runs = [0, 1, 2].map(() => runChild(dir));
  return { ms: median(runs.map((r) => r.ms)), maxRssKb: Math.max(...runs.map((r) => r.maxRssKb)), exit: runs[0].exit };
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

export async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const load = `${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`;
  const out = path.join(ctx.workDir, 'cdktf.out');
  const app = new App({ outdir: out, stackTraces: false });
  buildApp(app);
  app.synth();
  const file = path.join(out, 'stacks', 'staging', 'cdk.tf.json');
  const stack = (name: string, json?: unknown): string => {
    const dir = path.join(ctx.workDir, name);
    fs.mkdirSync(path.join(dir, 'stacks', 'staging'), { recursive: true });
    if (json !== undefined) fs.writeFileSync(path.join(dir, 'stacks', 'staging', 'cdk.tf.json'), JSON.stringify(json));
    else fs.symlinkSync('/dev/zero', path.join(dir, 'stacks', 'staging', 'cdk.tf.json'));
    return dir;
  };
  const clean = JSON.parse(fs.readFileSync(file, 'utf8'));
  const bombed = JSON.parse(fs.readFileSync(file, 'utf8'));
  const sample = Object.entries(bombed.resource.aws_instance as Record<string, { user_data_base64: string }>).find(([n]) => n.startsWith('sample_'));
  if (sample === undefined) throw new Error('the example has no sample host');
  sample[1].user_data_base64 = doubleBomb();
  const cleanRun = measure(stack('clean', clean));
  ctx.log(`clean: ${cleanRun.ms.toFixed(0)} ms, ${mb(cleanRun.maxRssKb)}, exit ${cleanRun.exit}`);
  const bombRun = measure(stack('bomb', bombed));
  ctx.log(`gzip bomb: ${bombRun.ms.toFixed(0)} ms, ${mb(bombRun.maxRssKb)}, exit ${bombRun.exit}`);
  const zeroRun = measure(stack('zero'));
  ctx.log(`/dev/zero: ${zeroRun.ms.toFixed(0)} ms, ${mb(zeroRun.maxRssKb)}, exit ${zeroRun.exit}`);
  const memory = bombRun.maxRssKb / cleanRun.maxRssKb;
  const time = bombRun.ms / cleanRun.ms;
  const zero = zeroRun.ms / cleanRun.ms;
  const common = { 'clean check': `${cleanRun.ms.toFixed(0)} ms, ${mb(cleanRun.maxRssKb)} peak, exit ${cleanRun.exit}`, 'load average (1 min) at start': load };
  return [
    {
      name: 'twinwall check on a 12 KB gzip bomb in one host\'s user-data (3.9 GB inflated), peak memory vs a clean stack',
      figures: { ...common, 'bomb check': `${bombRun.ms.toFixed(0)} ms, ${mb(bombRun.maxRssKb)} peak, exit ${bombRun.exit}`, 'time ratio': `${time.toFixed(2)}×`, 'user-data (base64)': `${sample[1].user_data_base64.length} characters` },
      ratio: memory,
      target: '≤ 1.5× (decoding bounded at 1 MiB per user-data), and exit 1 (a finding)',
      met: memory <= 1.5 && bombRun.exit === 1,
    },
    {
      name: 'twinwall check on a cdk.tf.json symlinked to /dev/zero: time to exit 2 vs a clean check',
      figures: { ...common, '/dev/zero': `${zeroRun.ms.toFixed(0)} ms, ${mb(zeroRun.maxRssKb)} peak, exit ${zeroRun.exit}` },
      ratio: zero,
      target: '≤ 1× (refused before a byte is read), and exit 2',
      met: zero <= 1 && zeroRun.exit === 2,
    },
  ];
}

if (require.main === module) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    void child(process.argv[i + 1]).catch((e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 3;
    });
  } else {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-bench-hostile-'));
    void run({ workDir, kernel: false, log: (m) => process.stderr.write(`${m}\n`) })
      .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
      .finally(() => fs.rmSync(workDir, { recursive: true, force: true }));
  }
}
