/**
 * `npm run bench`: runs every benchmark module (bench/*.bench.ts, in name order), prints each
 * result with the machine it ran on, and writes docs/benchmarks.md. Every figure is a ratio of two
 * measurements taken in the same run, on the same machine; a missed target is printed as missed.
 *
 *   npm run bench                 all modules; rewrites docs/benchmarks.md
 *   npm run bench -- packet synth only the modules whose file name contains a word; prints only
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BenchContext, BenchModule, BenchResult } from './types';

const DOCS = path.join(__dirname, '..', 'docs', 'benchmarks.md');

function tool(argv: string[]): string | undefined {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

/** Why kernel measurements cannot run here, or undefined when they can. */
function kernelMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const t of ['ip', 'iptables', 'iptables-restore', 'ipset', 'python3']) if (tool(['sh', '-c', `command -v ${t}`]) === undefined) return `${t} is not on PATH`;
  const ns = `twbenchprobe${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'pipe' });
  } catch {
    return 'cannot create a network namespace';
  }
  return undefined;
}

function machine(): Record<string, string> {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    iptables: tool(['iptables', '--version']) ?? 'not installed',
    ipset: tool(['ipset', '--version']) ?? 'not installed',
    nft: tool(['nft', '--version']) ?? 'not installed',
  };
}

function ratioText(r: BenchResult): string {
  if (r.skipped !== undefined) return 'not measured';
  return r.ratio === undefined ? '—' : `${r.ratio >= 100 ? r.ratio.toFixed(0) : r.ratio.toFixed(2)}×`;
}

function verdict(r: BenchResult): string {
  if (r.skipped !== undefined) return `not measured: ${r.skipped}`;
  if (r.met === undefined) return '—';
  return r.met ? 'met' : 'MISSED';
}

function figuresText(r: BenchResult): string {
  return Object.entries(r.figures)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ');
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort()
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
  const missing = kernelMissing();
  const info = machine();
  const log = (m: string) => process.stderr.write(`${m}\n`);
  log(`machine: ${Object.entries(info).map(([k, v]) => `${k} ${v}`).join(' | ')}`);
  if (missing !== undefined) log(`kernel benchmarks will be skipped: ${missing}`);
  const results: { module: string; result: BenchResult }[] = [];
  const started = new Date();
  for (const file of files) {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `twinwall-bench-${path.basename(file, '.bench.ts')}-`));
    const ctx: BenchContext = { workDir, kernel: missing === undefined, log: (m) => log(`[${file}] ${m}`) };
    log(`== ${file}`);
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loaded = require(path.join(__dirname, file)) as Partial<BenchModule> & { default?: Partial<BenchModule> };
      const run = loaded.run ?? loaded.default?.run;
      if (typeof run !== 'function') throw new Error(`${file} exports no run(context)`);
      for (const result of await run(ctx)) {
        results.push({ module: file, result });
        log(`   ${result.name}: ${ratioText(result)} (${verdict(result)})`);
      }
    } catch (e) {
      results.push({ module: file, result: { name: file, figures: {}, skipped: `failed: ${(e as Error).message.split('\n')[0]}` } });
      log(`   FAILED: ${(e as Error).stack ?? e}`);
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  }
  const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
  const table = [
    '| benchmark | ratio | target | verdict | figures |',
    '|---|---|---|---|---|',
    ...results.map(({ result: r }) => `| ${r.name} | ${ratioText(r)} | ${r.target ?? '—'} | ${verdict(r)} | ${figuresText(r).replace(/\|/g, '/')} |`),
  ].join('\n');
  const machineText = Object.entries(info)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join('\n');
  process.stdout.write(`\n${machineText}\n\n${table}\n\n(${seconds} s, ${started.toISOString()})\n`);
  if (filters.length > 0) return;
  const previous = fs.existsSync(DOCS) ? fs.readFileSync(DOCS, 'utf8') : '';
  const notes = previous.includes('<!-- notes -->') ? previous.slice(previous.indexOf('<!-- notes -->')) : '<!-- notes -->\n';
  fs.writeFileSync(
    DOCS,
    [
      '# Benchmarks',
      '',
      'Produced by `npm run bench` (bench/run.ts runs every `bench/*.bench.ts`), as root so that the kernel',
      'benchmarks run in their own network namespaces. Every ratio compares two measurements taken in',
      'the same run on the same machine; nothing here is asserted by the tests.',
      '',
      `Run: ${started.toISOString()}, ${seconds} s.`,
      '',
      machineText,
      '',
      table,
      '',
      notes.trimEnd(),
      '',
    ].join('\n'),
  );
  log(`wrote ${path.relative(process.cwd(), DOCS)}`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
