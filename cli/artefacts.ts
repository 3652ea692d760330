/**
 * Reading synthesized artefacts from disk: `cdktf.out/stacks/<stack>/cdk.tf.json`. Also accepts a
 * single stack directory or a cdk.tf.json file. Errors are `UsageError`s with a one-line reason.
 *
 * Every read is bounded and typed: only regular files are read (a FIFO, a device or a symlink to
 * one is refused before it is opened, and again on the open descriptor), at most
 * MAX_ARTEFACT_BYTES each, and each document passes the one shape gate of the readers
 * (lib/check/terraform-shape.ts) here, so a malformed one is one line naming the file and the
 * JSON path.
 */
import * as fs from 'fs';
import * as path from 'path';
import { StackInput, terraformJson } from '../lib/check';
import { TwinwallError } from '../lib/errors';
import { terminalLine } from '../lib/terminal';

/** Bad usage or unreadable input: exit code 2, one line, no stack trace. */
export class UsageError extends Error {}

/** The largest cdk.tf.json twinwall reads (a stack of hundreds of hosts is a few MiB). */
export const MAX_ARTEFACT_BYTES = 64 * 1024 * 1024;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * The bytes of `file`, which must be a regular file (or a symlink to one) of at most `limit`
 * bytes. The type is checked with stat before opening (opening a FIFO would block, a device may
 * never end) and with fstat on the descriptor, which is opened non-blocking, so a file swapped
 * in between cannot slip through; the read stops one byte past the limit whatever fstat says.
 */
export function readRegularFile(file: string, limit: number, what = 'file'): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${errno(e)}`);
  }
  if (!st.isFile()) throw new UsageError(`${file} is ${kindOf(st)}, not a regular ${what}: refusing to read it`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${errno(e)}`);
  }
  try {
    const fst = fs.fstatSync(fd);
    if (!fst.isFile()) throw new UsageError(`${file} is ${kindOf(fst)}, not a regular ${what}: refusing to read it`);
    if (fst.size > limit) throw new UsageError(`${file} is ${fst.size} bytes, more than the ${limit} bytes twinwall reads`);
    // One buffer of the size fstat gives, plus a byte to notice a file that grew since; a file
    // that did grow (or a regular file whose size is not known, like those of /proc) is read on
    // in larger buffers, never past the limit.
    let buf = Buffer.allocUnsafeSlow(Math.min(fst.size, limit) + 1);
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        const grown = Buffer.allocUnsafeSlow(Math.min(Math.max(buf.length * 2, 1 << 16), limit + 1));
        buf.copy(grown, 0, 0, total);
        buf = grown;
      }
      let n: number;
      try {
        n = fs.readSync(fd, buf, total, buf.length - total, null);
      } catch (e) {
        throw new UsageError(`cannot read ${file}: ${errno(e)}`);
      }
      if (n === 0) break;
      total += n;
      if (total > limit) throw new UsageError(`${file} is more than the ${limit} bytes twinwall reads`);
    }
    return buf.subarray(0, total);
  } finally {
    fs.closeSync(fd);
  }
}

/** The JSON value of `file`; neither its bytes nor its text outlive the parse. */
function parseJsonFile(file: string): unknown {
  const text = readRegularFile(file, MAX_ARTEFACT_BYTES, 'cdk.tf.json').toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** Parse and shape-check one cdk.tf.json (normalised in place: the document is held once). */
export function readStackJson(file: string): unknown {
  const json = parseJsonFile(file);
  try {
    return terraformJson(json, { owned: true });
  } catch (e) {
    if (e instanceof TwinwallError && e.errorName === 'ARTEFACT_SHAPE') throw new UsageError(`${file}: ${e.problem.replace(/\.$/, '')} (${e.code} ${e.errorName}; fix: ${e.fix})`);
    throw e;
  }
}

/** A stack's name is its directory's: one line, control characters escaped (it is printed everywhere). */
function stackName(dirName: string): string {
  return terminalLine(dirName);
}

/** One stack's cdk.tf.json, not yet read. */
export interface StackFile {
  readonly name: string;
  readonly file: string;
}

/** The stacks under `dir`, sorted by name, unread (`loadStacks` reads them). */
export function stackFiles(dir: string): StackFile[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new UsageError(`${dir} does not exist (run \`npx cdktf synth\` first, or pass the synth output directory)`);
  }
  if (stat.isFile()) return [{ name: stackName(path.basename(path.dirname(path.resolve(dir)))), file: dir }];
  if (!stat.isDirectory()) throw new UsageError(`${dir} is ${kindOf(stat)}, not a synth output directory or a cdk.tf.json: refusing to read it`);
  const own = path.join(dir, 'cdk.tf.json');
  if (fs.existsSync(own)) return [{ name: stackName(path.basename(path.resolve(dir))), file: own }];
  const stacksDir = path.join(dir, 'stacks');
  if (!fs.existsSync(stacksDir)) throw new UsageError(`${dir} holds no stacks/*/cdk.tf.json (is it a cdktf synth output directory?)`);
  let entries: string[];
  try {
    entries = fs.readdirSync(stacksDir);
  } catch (e) {
    throw new UsageError(`cannot read ${stacksDir}: ${errno(e)}`);
  }
  const names = entries.filter((n) => fs.existsSync(path.join(stacksDir, n, 'cdk.tf.json'))).sort();
  if (names.length === 0) throw new UsageError(`${stacksDir} holds no */cdk.tf.json`);
  return names.map((name) => ({ name: stackName(name), file: path.join(stacksDir, name, 'cdk.tf.json') }));
}

/**
 * The stacks of `files`, each read, parsed and shape-checked when the consumer asks for it: a
 * consumer that keeps nothing of a stack once it has the next one holds one parsed stack at a
 * time.
 */
export function* readStacksLazily(files: readonly StackFile[]): Generator<StackInput> {
  for (const f of files) yield { name: f.name, json: readStackJson(f.file) };
}

/** The stacks under `dir`, sorted by name, all read. */
export function loadStacks(dir: string): StackInput[] {
  return [...readStacksLazily(stackFiles(dir))];
}
