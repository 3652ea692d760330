/**
 * `twinwall learn` run in process, as the command line runs it: its stdout, its stderr and the
 * exit code it sets. Usage errors are thrown (UsageError), as cli/main.ts receives them.
 */
import { Command } from 'commander';
import { registerLearn } from '../../cli/commands/learn';

export interface LearnRun {
  readonly out: string;
  readonly err: string;
  readonly exit: number;
}

export async function learnCli(args: readonly string[], stdin?: NodeJS.ReadableStream): Promise<LearnRun> {
  let out = '';
  let err = '';
  let exit = -1;
  const program = new Command().exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  registerLearn(program, { out: (s) => (out += s), err: (s) => (err += s), setExit: (c) => (exit = c), ...(stdin ? { stdin } : {}) });
  await program.parseAsync(['learn', ...args], { from: 'user' });
  return { out, err, exit };
}
