/**
 * Support for the review tests (`twinwall report`, `twinwall diff`, lint): synthesize the
 * example app — or a variant of it — into a temp directory, synthesize small one-stack apps,
 * and run the report/diff commands in-process through a commander program, as the CLI does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, CommanderError } from 'commander';
import { App, TerraformStack, Testing } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { StackInput } from '../../lib/check';
import { UsageError } from '../../cli/artefacts';
import { registerDiff, registerReport } from '../../cli/commands';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const CONTEXT = require('../../cdktf.json').context;

const made: string[] = [];

/** Remove every directory these helpers made (call in afterAll). */
export function cleanUp(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Synthesize the example app (main.ts, with cdktf.json's context); returns the outdir. */
export function synthExample(): string {
  const outdir = path.join(tempDir('twinwall-review-'), 'cdktf.out');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { buildApp } = require('../../main');
  const app = new App({ outdir, context: CONTEXT });
  buildApp(app);
  app.synth();
  return outdir;
}

/**
 * The example app with one new egress port: the mail role also hands mail to smarthosts on the
 * submission port (tcp/587) anywhere. Built by swapping `mailServer` in a fresh module registry,
 * so main.ts itself is synthesized unchanged otherwise.
 */
export function synthExampleWithSubmissionEgress(): string {
  const outdir = path.join(tempDir('twinwall-review-head-'), 'cdktf.out');
  jest.isolateModules(() => {
    jest.doMock('../../lib', () => {
      const actual = jest.requireActual('../../lib');
      return {
        ...actual,
        mailServer: (options?: unknown) => {
          const role = actual.mailServer(options);
          return actual.Role.of(role.name, role.description, [...role.flows, ...actual.use('submission', [actual.Peer.anywhere()], 'hand outbound mail to smarthosts on the submission port')]);
        },
      };
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cdktf = require('cdktf');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { buildApp } = require('../../main');
    const app = new cdktf.App({ outdir, context: CONTEXT });
    buildApp(app);
    app.synth();
  });
  jest.dontMock('../../lib');
  return outdir;
}

/** One stack ("stack") built by `build`, synthesized with Testing (aspects run, errors do not throw). */
export function synthStack(build: (scope: Construct) => void, name = 'stack'): StackInput {
  const json = Testing.synthScope((scope) => {
    new AwsProvider(scope, 'aws', { region: 'eu-central-1' });
    build(scope);
  });
  return { name, json: JSON.parse(json) };
}

/** Write stacks as a cdktf.out-shaped directory. */
export function writeStacks(stacks: readonly StackInput[]): string {
  const outdir = tempDir('twinwall-review-stacks-');
  for (const s of stacks) {
    fs.mkdirSync(path.join(outdir, 'stacks', s.name), { recursive: true });
    fs.writeFileSync(path.join(outdir, 'stacks', s.name, 'cdk.tf.json'), JSON.stringify(s.json, null, 2));
  }
  return outdir;
}

/** A fresh stack in a fresh app, for tests that need a real TerraformStack. */
export function freshStack(outdir?: string): TerraformStack {
  const app = new App(outdir !== undefined ? { outdir } : { outdir: tempDir('twinwall-review-app-') });
  const stack = new TerraformStack(app, 'stack');
  new AwsProvider(stack, 'aws', { region: 'eu-central-1' });
  return stack;
}

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Run `twinwall <args>` with the report and diff commands, in-process (exit codes as cli/main.ts). */
export async function runReviewCli(args: readonly string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  let code = 0;
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), setExit: (c: number) => void (code = c) };
  const program = new Command().name('twinwall').exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  registerReport(program, io);
  registerDiff(program, io);
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) code = e.code === 'commander.helpDisplayed' ? 0 : 2;
    else if (e instanceof UsageError) {
      err += `twinwall: ${e.message}\n`;
      code = 2;
    } else throw e;
  }
  return { code, out, err };
}
