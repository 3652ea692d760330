/**
 * What a person sees when a cdktf app gives twinwall an invalid input: small bad apps run the
 * way `cdktf synth` runs them (`npx ts-node main.ts`, and through the cdktf CLI itself). The
 * message appears once — code, location, bad value, fix — with the caller's own line instead of
 * pages of stack frames; inside a host the location is the construct path, never repeated; a
 * role built inline, before the host exists, has no construct path, and its location is the
 * line of the app. TWINWALL_DEBUG=1 brings the frames back. (The compiled package under plain
 * node: package.test.ts.)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-bad-app-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ENTRY = JSON.stringify(path.join(ROOT, 'index'));
/** What `cdktf init --template=typescript` writes, in short: CommonJS, strict. */
const TSCONFIG = JSON.stringify({ compilerOptions: { module: 'CommonJS', target: 'ES2020', strict: true, skipLibCheck: true, types: [] } });
fs.writeFileSync(path.join(dir, 'tsconfig.json'), TSCONFIG);
/** The apps live outside this checkout and find cdktf where it is installed here. */
const NODE_PATH = path.join(ROOT, 'node_modules');

/** A bad app: `line` is the statement that goes wrong, as line 5. */
function app(name: string, line: string): string {
  const file = path.join(dir, `${name}.ts`);
  fs.writeFileSync(
    file,
    [
      "import { App, TerraformStack } from 'cdktf';",
      `import { FilteredHost, Peer, mailServer, sshAdmin } from ${ENTRY};`,
      'const app = new App();',
      "const stack = new TerraformStack(app, 'oops');",
      line,
      'app.synth();',
      'void Peer, mailServer, sshAdmin;',
      '',
    ].join('\n'),
  );
  return file;
}

function runApp(file: string, env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [require.resolve('ts-node/dist/bin'), '--transpile-only', file], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NODE_PATH, CDKTF_OUTDIR: path.join(dir, 'out'), TWINWALL_DEBUG: '', ...env },
  });
  return { code: r.status, stderr: r.stderr };
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

/** The stack lines ("    at …") of the printed error. */
const frames = (stderr: string): string[] => stderr.split('\n').filter((l) => /^\s+at /.test(l));

describe('synth errors a person can read', () => {
  it('a role built inline: the message once, with the bad value and the fix, and the line of the app as its location', () => {
    const file = app('inline', "new FilteredHost(stack, 'h', { vpcId: 'vpc-1', roles: [sshAdmin({ from: [Peer.ipv4('10.0.0.5/24')] })] });");
    const r = runApp(file);
    expect(r.code).toBe(1);
    expect(count(r.stderr, 'TW102 CIDR_HOST_BITS: "10.0.0.5/24" has host bits set')).toBe(1);
    expect(count(r.stderr, 'Fix: write "10.0.0.0/24" for the whole network')).toBe(1);
    // No construct exists yet, so no path; the frame is the app's own line.
    expect(frames(r.stderr)).toEqual([expect.stringMatching(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5:\\d+\\)?$`))]);
    expect(r.stderr).toContain('(TWINWALL_DEBUG=1 shows every frame)');
    // The error's fields are not printed again after the message.
    expect(r.stderr).not.toMatch(/errorName:|problem:|fix:/);
  }, 120_000);

  it('an error inside the host carries its construct path once (never "oops/h/h")', () => {
    const r = runApp(app('dup', "new FilteredHost(stack, 'h', { vpcId: 'vpc-1', roles: [mailServer(), mailServer()] });"));
    expect(r.code).toBe(1);
    expect(count(r.stderr, 'TW122 ROLE_DUPLICATE at oops/h: the role name "mailServer" is used twice')).toBe(1);
    expect(r.stderr).not.toContain('oops/h/h');
    expect(frames(r.stderr)).toHaveLength(1);
  }, 120_000);

  it('TWINWALL_DEBUG=1 shows every frame', () => {
    const r = runApp(app('debug', "new FilteredHost(stack, 'h', { vpcId: 'vpc-1', roles: [mailServer(), mailServer()] });"), { TWINWALL_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(count(r.stderr, 'TW122 ROLE_DUPLICATE at oops/h:')).toBe(1);
    expect(frames(r.stderr).some((f) => f.includes(path.join(ROOT, 'constructs', 'filtered-host.ts')))).toBe(true);
    expect(frames(r.stderr).length).toBeGreaterThan(3);
  }, 120_000);

  it('through `cdktf synth`: the failure summary shows the message once, with its location and no stack', () => {
    const project = path.join(dir, 'project');
    fs.mkdirSync(project, { recursive: true });
    fs.copyFileSync(app('main', "new FilteredHost(stack, 'mx', { vpcId: 'vpc-1', roles: [mailServer(), sshAdmin({ from: [] })] });"), path.join(project, 'main.ts'));
    fs.writeFileSync(path.join(project, 'tsconfig.json'), TSCONFIG);
    fs.writeFileSync(path.join(project, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `${JSON.stringify(process.execPath)} ${JSON.stringify(require.resolve('ts-node/dist/bin'))} --transpile-only main.ts`, output: 'cdktf.out' }));
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH, CHECKPOINT_DISABLE: '1', TWINWALL_DEBUG: '', FORCE_COLOR: '0', NO_COLOR: '1', CI: 'true' };
    delete env.TF_CLI_CONFIG_FILE;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'cdktf-cli', 'bundle', 'bin', 'cdktf'), 'synth'], { cwd: project, encoding: 'utf8', timeout: 240_000, env });
    expect(r.status).not.toBe(0);
    const output = `${r.stdout}${r.stderr}`;
    // cdktf echoes the app's stderr as it runs and again in its failure summary; the summary is
    // what stays on screen.
    const summary = output.slice(output.indexOf('Command output on stderr:'));
    expect(summary.length).toBeLessThan(output.length);
    expect(count(summary, 'TW151 PEERS_EMPTY: sshAdmin from is empty')).toBe(1);
    expect(count(summary, 'Fix: list at least one peer')).toBe(1);
    expect(frames(summary)).toEqual([expect.stringMatching(/main\.ts:5:\d+\)?$/)]);
  }, 300_000);
});
