/**
 * The published package, as a user gets it (docs/testing.md, "package" and "consumer").
 *
 * package tier (Node.js and npm only): `npm run build` and `npm pack` from this checkout; the
 * tarball holds dist/ (JavaScript and declarations), the bin, README, LICENSE and CHANGELOG and
 * nothing else, within 300 KiB; the compiled bin runs with no TypeScript (help, check in process
 * and on worker threads, exit codes 2 and 3); `twinwall/core` and the CLI load, and work, with
 * cdktf made unresolvable.
 *
 * consumer tier (the npm registry): scratch projects, each with its own package.json, install the
 * tarball with production dependencies only, one per @cdktf/provider-aws major (20.1.0, the repo's
 * pin, and the latest 21.x); no TypeScript ends up in their trees. twinwall's constructs
 * type-check against the latest provider too. In each: the README's "Use it in your cdktf project"
 * example (extracted from README.md) type-checks against the installed declarations, under the
 * resolution cdktf's project template uses and under node16, then synthesizes as JavaScript run
 * by node; the installed CLI checks the result (exit 0) and runs every command. The README's
 * plain-JavaScript example and an ES-module import run too.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { EXIT, EXIT_CODES_HELP } from '../cli/exit';
import { readmeBlock } from './support/readme';
import { describeTier, netns, npmRegistry, onPath, root } from './support/tiers';
import { apiReports } from '../scripts/api-report';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'twinwall.js');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const KIB = 1024;
const BUDGET = 300 * KIB;
const SECTION = 'Use it in your cdktf project';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-package-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Run {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeout ?? 120_000, cwd: options.cwd ?? ROOT, env: options.env ?? process.env });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error !== undefined ? String(r.error) : ''}` };
}

/** The same, without blocking the event loop (installs run side by side). */
function runAsync(command: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ code: null, stdout, stderr: `${stderr}${String(e)}` }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const ok = (r: Run): Run => {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
};

/**
 * A preload that makes cdktf, constructs and @cdktf/* unresolvable, and writes every module file
 * the process loaded to $TW_LOADED on exit: the require graph, inspected.
 */
const BLOCKER = path.join(work, 'block-cdktf.js');
fs.writeFileSync(
  BLOCKER,
  `'use strict';
const Module = require('module');
const fs = require('fs');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^(cdktf|constructs|@cdktf\\/)(\\/|$)/.test(request)) {
    const e = new Error('cdktf is unresolvable here: require(' + JSON.stringify(request) + ')');
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
const wt = require('worker_threads');
if (process.env.TW_LOADED && wt.isMainThread) process.on('exit', () => fs.writeFileSync(process.env.TW_LOADED, JSON.stringify(Object.keys(require.cache))));
// A worker thread may be terminated, which runs no 'exit' handler: it lists each file as it loads.
if (process.env.TW_LOADED && !wt.isMainThread) {
  const js = Module._extensions['.js'];
  Module._extensions['.js'] = function (module, file) {
    fs.appendFileSync(process.env.TW_LOADED + '.workers', file + '\\n');
    return js.call(this, module, file);
  };
}
`,
);

/** Run node with cdktf blocked; returns the run and the module files it loaded (its worker threads' too). */
function withoutCdktf(args: readonly string[], cwd: string): Run & { loaded: string[]; workerLoaded: string[] } {
  const list = path.join(work, `loaded-${process.hrtime.bigint()}.json`);
  const r = run(process.execPath, ['--require', BLOCKER, ...args], { cwd, env: { ...process.env, TW_LOADED: list } });
  const loaded = fs.existsSync(list) ? (JSON.parse(fs.readFileSync(list, 'utf8')) as string[]) : [];
  const workerLoaded = fs.existsSync(`${list}.workers`) ? fs.readFileSync(`${list}.workers`, 'utf8').split('\n').filter((l) => l !== '') : [];
  return { ...r, loaded: [...loaded, ...workerLoaded], workerLoaded };
}

const CDKTF_FILE = /[/\\]node_modules[/\\](cdktf|constructs|@cdktf)[/\\]/;

let tarball: string;
let packed: { files: { path: string; size: number }[]; size: number };
/** The example app's synthesized production stack (a golden the example tier keeps current). */
const example = path.join(ROOT, '__tests__', 'golden', 'synth', 'production.cdk.tf.json');

let buildSeconds = 0;

beforeAll(() => {
  const start = Date.now();
  // prepack runs `npm run build`, as it does for anyone running npm pack.
  const r = ok(run('npm', ['pack', '--json', '--pack-destination', work], { timeout: 600_000 }));
  packed = (JSON.parse(r.stdout) as (typeof packed & { filename: string })[])[0];
  tarball = path.join(work, (JSON.parse(r.stdout) as { filename: string }[])[0].filename);
  buildSeconds = (Date.now() - start) / 1000;
}, 900_000);

describe('package', () => {
  it('npm pack builds, and the tarball holds dist/ (JavaScript and declarations), the bin, README, LICENSE, CHANGELOG and package.json, and nothing else', () => {
    const files = packed.files.map((f) => f.path).sort();
    const stray = files.filter((f) => !/^dist\/.+\.(js|d\.ts)$/.test(f) && !['bin/twinwall.js', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json'].includes(f));
    expect(stray).toEqual([]);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/cli/main.js', 'bin/twinwall.js', 'README.md', 'LICENSE', 'CHANGELOG.md']) expect(files).toContain(f);
    // Declarations: exactly what the two entries reach (scripts/prune-declarations.js), and every
    // relative module a shipped declaration names is shipped too (a user's editor resolves it).
    const declarations = files.filter((f) => f.endsWith('.d.ts'));
    expect(declarations.filter((f) => f.startsWith('dist/cli/'))).toEqual([]);
    for (const f of declarations) {
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1]));
        expect([f, [`${target}.d.ts`, `${target}/index.d.ts`].some((t) => files.includes(t))]).toEqual([f, true]);
      }
    }
    // The tarball on disk is the one described.
    const listed = ok(run('tar', ['-tzf', tarball])).stdout.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
    expect(listed).toEqual(files);
  });

  it(`packs within ${BUDGET / KIB} KiB`, () => {
    expect(fs.statSync(tarball).size).toBe(packed.size);
    expect(packed.size).toBeLessThanOrEqual(BUDGET);
  });

  it('is a public Apache-2.0 package whose cdktf, constructs and provider are peers, with the full licence text', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.private).toBeUndefined();
    expect(pkg.license).toBe('Apache-2.0');
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['commander', 'ipaddr.js', 'yaml']);
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['@cdktf/provider-aws', 'cdktf', 'constructs']);
    expect(pkg.peerDependencies['@cdktf/provider-aws'].split('||').map((s: string) => s.trim())).toEqual(['^20.0.0', '^21.0.0']);
    for (const key of ['engines', 'repository', 'keywords', 'exports', 'bin']) expect(pkg[key]).toBeDefined();
    const licence = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
    expect(licence).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(licence).toContain('END OF TERMS AND CONDITIONS');
    expect(fs.readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8')).toMatch(/^## 0\.1\.0/m);
  });

  it('the compiled bin prints its help and the exit codes', () => {
    const r = run(process.execPath, [BIN, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: twinwall /);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(EXIT_CODES_HELP);
  });

  it('twinwall/core loads with cdktf unresolvable, and loads no cdktf, constructs or provider file', () => {
    const r = withoutCdktf(['-e', "const c = require('twinwall/core'); process.stdout.write(typeof c.HostPolicy.compose + ' ' + typeof c.renderHost)"], ROOT);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function function');
    expect(r.loaded.some((f) => f.startsWith(path.join(ROOT, 'dist', 'lib')))).toBe(true);
    expect(r.loaded.filter((f) => CDKTF_FILE.test(f))).toEqual([]);
  });

  it('the blocker works: the `twinwall` entry, which holds the constructs, does need cdktf', () => {
    const r = withoutCdktf(['-e', "require('twinwall')"], ROOT);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cdktf is unresolvable here');
  });

  it('both entries share one copy of each class (a Peer or TwinwallError from one is the other\'s)', () => {
    const r = run(process.execPath, ['-e', "const a = require('twinwall'), b = require('twinwall/core'); process.stdout.write(String(a.Peer === b.Peer && a.TwinwallError === b.TwinwallError && typeof a.FilteredHost === 'function'))"]);
    expect(r.stdout).toBe('true');
  });

  it('the public API of both entries is the committed report (api/*.api.md; `npm run api` regenerates it)', () => {
    for (const r of apiReports()) {
      expect({ file: r.file, messages: r.messages }).toEqual({ file: r.file, messages: [] });
      // A difference here is an API change: run `npm run api` and commit the report with it.
      expect({ file: r.file, report: r.actual }).toEqual({ file: r.file, report: r.expected });
    }
  }, 300_000);

  it('the entries export their listed API and no internals (IntervalSet, commentText, normalise …)', () => {
    const r = run(process.execPath, ['-e', "const a = require('twinwall'), c = require('twinwall/core'); process.stdout.write(JSON.stringify([Object.keys(a).sort(), Object.keys(c).sort()]))"]);
    const [full, core] = JSON.parse(r.stdout) as [string[], string[]];
    for (const internal of ['IntervalSet', 'AddressSet', 'commentText', 'normalise', 'renderIptables', 'show', 'locate', 'lintStack', 'SERVICE_NAMES']) {
      expect(full).not.toContain(internal);
      expect(core).not.toContain(internal);
    }
    expect(full.filter((k) => !core.includes(k))).toEqual(['FilteredHost', 'TwinwallLint', 'TwinwallPrefixList']);
  });

  it('the compiled CLI checks the example app with cdktf unresolvable (exit 0)', () => {
    const r = withoutCdktf([BIN, 'check', example, '--quiet'], ROOT);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/twinwall check: 5 host\(s\), the walls agree/);
    expect(r.code).toBe(EXIT.ok);
    expect(r.loaded.filter((f) => CDKTF_FILE.test(f) || /typescript|ts-node/.test(f))).toEqual([]);
  });

  it('the compiled CLI checks on worker threads from dist/ (dist/cli/check-worker.js): the report of the in-process check, cdktf unresolvable, no TypeScript loaded', () => {
    const untimed = (t: string) => t.replace(/ \[\d+ ms\]$/gm, ' [ms]');
    const one = withoutCdktf([BIN, 'check', example, '--workers', '1'], ROOT);
    const two = withoutCdktf([BIN, 'check', example, '--workers', '2'], ROOT);
    expect({ code: two.code, stderr: two.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
    expect(untimed(two.stdout)).toBe(untimed(one.stdout));
    expect(two.workerLoaded).toContain(path.join(ROOT, 'dist', 'cli', 'check-worker.js'));
    expect(two.loaded.filter((f) => CDKTF_FILE.test(f) || /typescript|ts-node|ts-loader/.test(f))).toEqual([]);
    // A worker that fails (here: made to throw by a preload, which reaches worker threads) is exit 3.
    const crash = path.join(work, 'crash-worker.js');
    fs.writeFileSync(crash, "const wt = require('worker_threads');\nif (!wt.isMainThread) wt.parentPort.once('message', () => { throw new Error('injected worker crash'); });\n");
    const failed = run(process.execPath, ['--require', crash, BIN, 'check', example, '--workers', '2']);
    expect(failed.code).toBe(EXIT.internal);
    expect(failed.stderr).toMatch(/^twinwall: internal error: check worker \d of 2 failed while checking .*injected worker crash/);
  });

  it('an invalid input under plain node (compiled JavaScript): the message once and the app\'s own line, no other frame', () => {
    const bad = path.join(work, 'bad-app.js');
    fs.writeFileSync(
      bad,
      [
        "const { App, TerraformStack } = require('cdktf');",
        `const { FilteredHost, mailServer } = require(${JSON.stringify(ROOT)});`,
        "const stack = new TerraformStack(new App({ outdir: require('path').join(__dirname, 'bad-out') }), 'oops');",
        "new FilteredHost(stack, 'h', { vpcId: 'vpc-1', roles: [mailServer(), mailServer()] });",
        '',
      ].join('\n'),
    );
    const r = run(process.execPath, [bad], { cwd: work, env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules'), TWINWALL_DEBUG: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr.split('TW122 ROLE_DUPLICATE at oops/h: the role name "mailServer" is used twice').length).toBe(2);
    expect(r.stderr.split('\n').filter((l) => /^\s+at /.test(l))).toEqual([expect.stringMatching(/bad-app\.js:4:\d+\)?$/)]);
    expect(r.stderr).not.toMatch(/errorName:|problem:/);
  });

  it('a broken installation is an internal error: exit 3 and one line', () => {
    const copy = path.join(work, 'broken');
    fs.cpSync(path.join(ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'bin'), path.join(copy, 'bin'), { recursive: true });
    fs.rmSync(path.join(copy, 'dist', 'cli', 'artefacts.js'));
    // The copy finds its dependencies (commander …) where this checkout has them.
    const r = run(process.execPath, [path.join(copy, 'bin', 'twinwall.js'), 'check', example], { cwd: copy, env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') } });
    expect(r.code).toBe(EXIT.internal);
    expect(r.stderr).toMatch(/^twinwall: internal error: cannot load the CLI \(Cannot find module .*artefacts/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// consumer tier

/** The highest published 21.x of the provider. */
function latest21(): string {
  const r = ok(run('npm', ['view', '@cdktf/provider-aws@21', 'version', '--json'], { timeout: 60_000 }));
  const versions = ([] as string[]).concat(JSON.parse(r.stdout) as string | string[]);
  const key = (v: string) => v.split('.').map((n) => n.padStart(6, '0')).join('.');
  return versions.filter((v) => /^21\.\d+\.\d+$/.test(v)).sort((a, b) => (key(a) < key(b) ? -1 : 1)).pop() as string;
}

interface Consumer {
  readonly provider: string;
  readonly dir: string;
  readonly seconds: number;
}

/** Type-check `files` (name → TypeScript) in `dir` against what is installed there (no @types, no lib checks). */
function typeCheck(dir: string, files: Record<string, string>, resolution: 'node10' | 'node16'): string[] {
  const names = Object.entries(files).map(([name, code]) => {
    fs.writeFileSync(path.join(dir, name), code);
    return path.join(dir, name);
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2020,
    lib: ['lib.es2020.d.ts'],
    types: [],
    skipLibCheck: true,
    ...(resolution === 'node10' ? { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 } : { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }),
  };
  const program = ts.createProgram(names, options);
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.relative(dir, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

describeTier('consumer', [npmRegistry], () => {
  const consumers: Consumer[] = [];
  const tsExample = readmeBlock(README, SECTION, 'ts');
  const jsExample = readmeBlock(README, SECTION, 'js');
  const twinwall = (c: Consumer, args: readonly string[], env?: NodeJS.ProcessEnv) => run(path.join(c.dir, 'node_modules', '.bin', 'twinwall'), args, { cwd: c.dir, env: { ...process.env, ...env } });

  beforeAll(async () => {
    const providers = ['20.1.0', latest21()];
    // One npm cache (the user's) for both; the two installs run side by side.
    const results = await Promise.all(
      providers.map(async (provider) => {
        const dir = path.join(work, `consumer-${provider}`);
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: `consumer-${provider.replace(/\./g, '-')}`, version: '1.0.0', private: true }, null, 2)}\n`);
        const start = Date.now();
        const r = await runAsync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball, 'cdktf@0.21.0', 'constructs@10.4.2', `@cdktf/provider-aws@${provider}`], dir);
        ok(r);
        return { provider, dir, seconds: (Date.now() - start) / 1000 };
      }),
    );
    consumers.push(...results);
    // eslint-disable-next-line no-console
    console.log(`consumer tier: build and pack ${buildSeconds.toFixed(1)} s; installed ${results.map((c) => `@cdktf/provider-aws@${c.provider} in ${c.seconds.toFixed(1)} s`).join(', ')}`);
  }, 900_000);

  it('installs with production dependencies only, and no TypeScript reaches the consumer', () => {
    for (const c of consumers) {
      const tree = ok(run('npm', ['ls', '--all', '--parseable'], { cwd: c.dir })).stdout.split('\n');
      expect({ provider: c.provider, ts: tree.filter((p) => /[/\\]node_modules[/\\](typescript|ts-node|@types[/\\]\w+|ts-jest)$/.test(p)) }).toEqual({ provider: c.provider, ts: [] });
      const installed = JSON.parse(fs.readFileSync(path.join(c.dir, 'node_modules', '@cdktf', 'provider-aws', 'package.json'), 'utf8'));
      expect(installed.version).toBe(c.provider);
    }
  });

  it("the README's TypeScript example type-checks against the installed declarations (cdktf's node10 resolution and node16), and so does twinwall/core", () => {
    // twinwall/core resolves for types too: through typesVersions under node10, exports under node16.
    const core = "import { HostPolicy, mailServer } from 'twinwall/core';\nexport const policy: HostPolicy = HostPolicy.compose('mx', [mailServer()]);\n";
    for (const c of consumers) {
      for (const resolution of ['node10', 'node16'] as const) {
        const errors = typeCheck(c.dir, { 'main.ts': tsExample, 'core.ts': core }, resolution);
        expect({ provider: c.provider, resolution, errors }).toEqual({ provider: c.provider, resolution, errors: [] });
      }
    }
  }, 300_000);

  it("twinwall's constructs type-check against the latest provider (AWS provider 6) too", () => {
    // 20.1.0 is this checkout's own pin, which `tsc --noEmit` checks on every npm test.
    const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.build.json'), (f) => ts.sys.readFile(f));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    for (const c of consumers.slice(-1)) {
      const modules = path.join(c.dir, 'node_modules');
      const options: ts.CompilerOptions = {
        ...parsed.options,
        noEmit: true,
        incremental: false,
        tsBuildInfoFile: undefined,
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        paths: { '@cdktf/provider-aws/*': [path.join(modules, '@cdktf', 'provider-aws', '*')], cdktf: [path.join(modules, 'cdktf')], constructs: [path.join(modules, 'constructs')] },
      };
      const program = ts.createProgram([path.join(ROOT, 'constructs', 'index.ts')], options);
      const errors = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.relative(ROOT, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      expect({ provider: c.provider, errors }).toEqual({ provider: c.provider, errors: [] });
      // The provider it was checked against is the consumer's, not this checkout's 20.1.0.
      expect(program.getSourceFiles().some((f) => f.fileName.startsWith(path.join(modules, '@cdktf', 'provider-aws', 'lib', 'instance')))).toBe(true);
    }
  }, 300_000);

  it('synthesizes the README example with node, and the installed CLI checks it (exit 0), with cdktf unresolvable to the CLI', () => {
    for (const c of consumers) {
      const js = ts.transpileModule(tsExample, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText;
      fs.writeFileSync(path.join(c.dir, 'main.js'), js);
      fs.rmSync(path.join(c.dir, 'cdktf.out'), { recursive: true, force: true });
      ok(run(process.execPath, ['main.js'], { cwd: c.dir }));
      expect(fs.existsSync(path.join(c.dir, 'cdktf.out', 'stacks', 'production', 'cdk.tf.json'))).toBe(true);
      const check = twinwall(c, ['check', '--quiet']);
      expect({ provider: c.provider, code: check.code, stderr: check.stderr }).toEqual({ provider: c.provider, code: EXIT.ok, stderr: '' });
      expect(check.stdout).toMatch(/twinwall check: 4 host\(s\), the walls agree/);
      // The same on worker threads, which load the installed dist/cli/check-worker.js.
      const workers = twinwall(c, ['check', '--quiet', '--workers', '2']);
      expect({ provider: c.provider, code: workers.code, stderr: workers.stderr, out: workers.stdout.replace(/ \[\d+ ms\]$/gm, '') }).toEqual({ provider: c.provider, code: EXIT.ok, stderr: '', out: check.stdout.replace(/ \[\d+ ms\]$/gm, '') });
      const blocked = withoutCdktf([path.join(c.dir, 'node_modules', 'twinwall', 'bin', 'twinwall.js'), 'check', '--quiet'], c.dir);
      expect({ provider: c.provider, code: blocked.code, cdktf: blocked.loaded.filter((f) => CDKTF_FILE.test(f)) }).toEqual({ provider: c.provider, code: EXIT.ok, cdktf: [] });
    }
  }, 300_000);

  it('npx twinwall --help, report, diff, explain and learn work from the installed package (latest provider)', () => {
    // The commands read only the synthesized JSON; check ran on both providers' output above.
    for (const c of consumers.slice(-1)) {
      const help = run('npx', ['twinwall', '--help'], { cwd: c.dir });
      expect({ provider: c.provider, code: help.code }).toEqual({ provider: c.provider, code: 0 });
      expect(help.stdout).toMatch(/^Usage: twinwall /);
      const report = twinwall(c, ['report']);
      expect({ provider: c.provider, code: report.code }).toEqual({ provider: c.provider, code: EXIT.ok });
      expect(report.stdout).toContain('production/mail');
      const diff = twinwall(c, ['diff', 'cdktf.out', 'cdktf.out', '--fail-on', 'widened-egress']);
      expect({ provider: c.provider, code: diff.code, stderr: diff.stderr }).toEqual({ provider: c.provider, code: EXIT.ok, stderr: '' });
      const explain = twinwall(c, ['explain', 'mail', 'egress', 'tcp/25', '203.0.113.25']);
      expect({ provider: c.provider, code: explain.code }).toEqual({ provider: c.provider, code: EXIT.ok });
      expect(explain.stdout).toMatch(/verdict: the walls agree \(admitted\)/);
      // The audit log holds a scan, so learn flags it: exit 1 with its report.
      const learn = twinwall(c, ['learn', '--from-kernel-log', path.join(ROOT, '__tests__', 'fixtures', 'learn', 'dmesg-audit.log')]);
      expect({ provider: c.provider, code: learn.code }).toEqual({ provider: c.provider, code: EXIT.finding });
      expect(learn.stdout).toMatch(/^# twinwall learn/);
      const usage = twinwall(c, ['check', 'no-such-dir']);
      expect({ provider: c.provider, code: usage.code, lines: usage.stderr.trimEnd().split('\n').length }).toEqual({ provider: c.provider, code: EXIT.usage, lines: 1 });
    }
  }, 300_000);

  it("the README's plain-JavaScript example and an ES-module import run on the latest provider", () => {
    const c = consumers[consumers.length - 1];
    fs.writeFileSync(path.join(c.dir, 'app.js'), jsExample);
    fs.rmSync(path.join(c.dir, 'cdktf.out'), { recursive: true, force: true });
    ok(run(process.execPath, ['app.js'], { cwd: c.dir }));
    const check = twinwall(c, ['check', '--quiet']);
    expect({ code: check.code, stderr: check.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
    expect(check.stdout).toMatch(/^web\/www \(aws_instance\.www_Instance_\w+\): the walls agree/m);
    fs.writeFileSync(
      path.join(c.dir, 'esm.mjs'),
      "import { FilteredHost, Peer, mailServer } from 'twinwall';\nimport { HostPolicy, Peer as CorePeer } from 'twinwall/core';\n" +
        "const p = HostPolicy.compose('mx', [mailServer()]);\nconsole.log(typeof FilteredHost, Peer === CorePeer, p.rules.length > 0);\n",
    );
    expect(ok(run(process.execPath, ['esm.mjs'], { cwd: c.dir })).stdout).toBe('function true true\n');
  }, 300_000);

  // The README's hosts ship the default backend's wall, nftables: verify loads it with nft.
  describeTier('consumer verify', [root, onPath('ip'), onPath('nft'), onPath('python3'), netns], () => {
    it("the installed CLI's verify replays a host against a real kernel (exit 0)", () => {
      for (const c of consumers.slice(-1)) {
        fs.rmSync(path.join(c.dir, 'cdktf.out'), { recursive: true, force: true });
        ok(run(process.execPath, ['main.js'], { cwd: c.dir }));
        const r = twinwall(c, ['verify', '--host', 'mail']);
        expect({ provider: c.provider, code: r.code, stderr: r.stderr }).toEqual({ provider: c.provider, code: EXIT.ok, stderr: '' });
      }
    }, 300_000);
  });
});
