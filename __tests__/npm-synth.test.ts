/**
 * `npm run synth` (scripts/synth.js) offline: no error from cdktf's version-check call, no
 * warning about a Terraform CLI configuration file that does not exist, and the per-host
 * summary last. Synthesizes into a temporary directory (`--output`), not cdktf.out.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');

describe('npm run synth', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-npm-synth-'));
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it('is quiet offline and ends with the per-host summary', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TF_CLI_CONFIG_FILE: path.join(out, 'no-such.tfrc'), NO_COLOR: '1' };
    delete env.CHECKPOINT_DISABLE;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'synth.js'), '--output', path.join(out, 'cdktf.out')], { cwd: ROOT, env, encoding: 'utf8', timeout: 300_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status).toBe(0);
    expect(output).not.toMatch(/\[ERROR\]|ERROR:|checkpoint-api|ENOTFOUND|EAI_AGAIN|getaddrinfo|CLI configuration|terraformrc/);
    const summary = fs.readFileSync(path.join(out, 'cdktf.out', 'twinwall-summary.txt'), 'utf8');
    expect(summary).toMatch(/^== stack staging\n/);
    expect(r.stdout.endsWith(summary)).toBe(true);
    expect(fs.existsSync(path.join(out, 'cdktf.out', 'stacks', 'production', 'cdk.tf.json'))).toBe(true);
  }, 300_000);
});
