/**
 * Child process of the fleet check benchmark (check-fleet.bench.ts), run like the CLI (the
 * sources through scripts/ts-loader.js): `twinwall check DIR` on exactly THREADS worker threads,
 * one included — the CLI's `--workers 1` checks in process, so a single worker thread, the
 * figure "one worker" means, has no flag of its own. The same steps as the CLI's check: the
 * workers start before the input is read, the plan is packed stack by stack, the report written
 * to stdout in plan order.
 */
import { stackFiles } from '../cli/artefacts';
import { CheckPool } from '../cli/check-workers';
import { packedPlan } from '../cli/main';
import { CheckReportWriter } from '../lib/check';

async function main(dir: string, threads: number): Promise<number> {
  const files = stackFiles(dir);
  const pool = CheckPool.start(threads);
  try {
    const plan = packedPlan(files);
    const writer = new CheckReportWriter(plan.problems, (t) => process.stdout.write(t));
    await pool.run(plan, threads, (v) => writer.host(v));
    return writer.end() ? 1 : 0;
  } finally {
    await pool.close();
  }
}

const [dir, threads] = process.argv.slice(2);
if (dir === undefined || !/^[1-9]\d*$/.test(threads ?? '')) throw new Error('usage: check-threads.ts DIR THREADS');
main(dir, Number(threads)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 3;
  },
);
