/**
 * One command measured by GNU time (`/usr/bin/time -f`): wall time, CPU time (user + system) and
 * the max RSS of the process — for the benchmarks that run the CLI as a user does (learn, check
 * over a fleet). Output goes to /dev/null.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';

export const GNU_TIME = '/usr/bin/time';
const ROOT = path.resolve(__dirname, '..');

export interface Run {
  readonly wall: number;
  readonly cpu: number;
  readonly rssKb: number;
  readonly status: number | null;
  readonly stderr: string;
}

/** Run `argv` under GNU time; exit codes other than 0 and 1 throw. */
export function timed(argv: string[]): Run {
  const r = spawnSync(GNU_TIME, ['-f', 'TWTIME %e %U %S %M', ...argv], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 24 });
  const m = /TWTIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0 && r.status !== 1) throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr ?? '').slice(0, 300)}`);
  if (!m) throw new Error(`no timing from ${argv[0]}: ${(r.stderr ?? '').slice(0, 300)}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssKb: Number(m[4]), status: r.status, stderr: r.stderr.replace(/TWTIME.*\n?/, '').replace(/^Command exited with non-zero status \d+\n?/m, '').trim() };
}

/** Why one of `tools` (GNU time is always one) cannot run here, or undefined. */
export function missingTools(tools: readonly string[] = []): string | undefined {
  for (const tool of [...tools, GNU_TIME]) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
    } catch {
      return `${tool} is not installed (apt-get install -y ${tool === GNU_TIME ? 'time' : tool})`;
    }
  }
  return undefined;
}
