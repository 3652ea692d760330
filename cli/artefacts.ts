/**
 * Reading synthesized artefacts from disk: `cdktf.out/stacks/<stack>/cdk.tf.json`. Also accepts a
 * single stack directory or a cdk.tf.json file. Errors are `UsageError`s with a one-line reason.
 */
import * as fs from 'fs';
import * as path from 'path';
import { StackInput } from '../lib/check';

/** Bad usage or unreadable input: exit code 2, one line, no stack trace. */
export class UsageError extends Error {}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** The stacks under `dir`, sorted by name. */
export function loadStacks(dir: string): StackInput[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new UsageError(`${dir} does not exist (run \`npx cdktf synth\` first, or pass the synth output directory)`);
  }
  if (stat.isFile()) return [{ name: path.basename(path.dirname(path.resolve(dir))), json: readJson(dir) }];
  const own = path.join(dir, 'cdk.tf.json');
  if (fs.existsSync(own)) return [{ name: path.basename(path.resolve(dir)), json: readJson(own) }];
  const stacksDir = path.join(dir, 'stacks');
  if (!fs.existsSync(stacksDir)) throw new UsageError(`${dir} holds no stacks/*/cdk.tf.json (is it a cdktf synth output directory?)`);
  const names = fs
    .readdirSync(stacksDir)
    .filter((n) => fs.existsSync(path.join(stacksDir, n, 'cdk.tf.json')))
    .sort();
  if (names.length === 0) throw new UsageError(`${stacksDir} holds no */cdk.tf.json`);
  return names.map((name) => ({ name, json: readJson(path.join(stacksDir, name, 'cdk.tf.json')) }));
}
