/**
 * How `report` and `diff` talk to the outside: where their output goes and how they set the exit
 * code. cli/main.ts passes its own (`registerReport(program, { ...io, setExit })`); without one,
 * output goes through the program's configured writers and the exit code to process.exitCode.
 */
import { Command } from 'commander';

export interface CommandIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly setExit: (code: number) => void;
}

export function defaultIo(program: Command): CommandIo {
  const config = program.configureOutput() as { writeOut?: (s: string) => void; writeErr?: (s: string) => void };
  return {
    out: (s) => (config.writeOut ?? ((t: string) => process.stdout.write(t)))(s),
    err: (s) => (config.writeErr ?? ((t: string) => process.stderr.write(t)))(s),
    setExit: (code) => {
      process.exitCode = code;
    },
  };
}
