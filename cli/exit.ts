/**
 * The `twinwall` command's exit codes: the one table. `--help` prints EXIT_CODES_HELP, the README
 * repeats it (a test compares them), and bin/twinwall.js uses `internal` for a CLI that cannot
 * even load.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DEBUG_VARIABLE } from '../lib/errors';

export const EXIT = {
  /** Success: the walls agree, the report was written … */
  ok: 0,
  /** A finding: the walls disagree, something is undecidable, a `--fail-on` gate tripped. */
  finding: 1,
  /** Bad usage or unreadable input: one line on stderr, never a stack trace. */
  usage: 2,
  /** An internal error, i.e. a bug in twinwall: one line asking for a report. */
  internal: 3,
} as const;

export const EXIT_CODES_HELP =
  'Exit codes: 0 success; 1 a finding (the walls disagree, something is undecidable, a --fail-on gate tripped); 2 bad usage or unreadable input (one line, never a stack trace); 3 an internal error, a bug in twinwall (one line asking you to report it; TWINWALL_DEBUG=1 adds the stack trace).';

export { DEBUG_VARIABLE };

export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[DEBUG_VARIABLE] === '1';
}

/** Where to report a bug: package.json's `bugs.url`, found from this file in the sources and in dist/. */
export function bugsUrl(): string | undefined {
  for (let dir = __dirname, i = 0; i < 4; dir = path.dirname(dir), i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; bugs?: { url?: string } | string };
      if (pkg.name !== 'twinwall') continue;
      return typeof pkg.bugs === 'string' ? pkg.bugs : pkg.bugs?.url;
    } catch {
      // no package.json at this level
    }
  }
  return undefined;
}

/** The lines an internal error prints: one, plus the stack trace when TWINWALL_DEBUG=1. */
export function internalErrorText(e: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const url = bugsUrl();
  const where = url !== undefined ? ` at ${url}` : '';
  const line = `twinwall: internal error: ${message} — this is a bug in twinwall; please report it${where} with the command you ran (${DEBUG_VARIABLE}=1 shows the stack trace)\n`;
  const stack = debugEnabled(env) && e instanceof Error && e.stack !== undefined ? `${e.stack}\n` : '';
  return line + stack;
}
