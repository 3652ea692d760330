/**
 * The real `twinwall` command, spawned as a user would run it (from the sources, through
 * scripts/twinwall-dev.js; the compiled bin is package.test.ts's): --help on every
 * command, exit codes (0 agree, 1 finding, 2 bad usage or unreadable input, one line, no stack
 * trace), and explain's answers. The kernel side of verify is in verify.test.ts.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Json, clone, readStacks, resourceNamed, synthExample, writeStacks } from './support/artefacts';

const BIN = path.join(__dirname, '..', 'scripts', 'twinwall-dev.js');
let example: string;
let mutant: string;
const cleanup: string[] = [];

function twinwall(args: readonly string[], options: { uid?: number; env?: NodeJS.ProcessEnv } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: path.join(__dirname, '..'), ...options });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  example = synthExample();
  const stacks = readStacks(example).map((s) => ({ ...s, json: clone(s.json) }));
  const staging = stacks.find((s) => s.name === 'staging')?.json as Json;
  const [name] = resourceNamed(staging, 'aws_vpc_security_group_egress_rule', 'sample_egress-tcp-25-to-0-0-0-0-0');
  delete staging.resource.aws_vpc_security_group_egress_rule[name];
  mutant = writeStacks(stacks);
  cleanup.push(example, mutant);
}, 60000);

afterAll(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

describe('twinwall --help', () => {
  it.each([[[]], [['check']], [['explain']], [['verify']]] as [string[]][])('twinwall %p --help exits 0 with usage', (cmd) => {
    const r = twinwall([...cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: twinwall${cmd.length > 0 ? ` ${cmd[0]}` : ''} `));
    expect(r.stderr).toBe('');
  });

  it('names every command in the top-level help', () => {
    const r = twinwall(['--help']);
    for (const c of ['check', 'explain', 'verify']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });
});

describe('twinwall check', () => {
  it('exits 0 on the example app and says the walls agree', () => {
    const r = twinwall(['check', example]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^staging\/sample \(aws_instance\.sample_Instance_\w+\): the walls agree/m);
    expect(r.stdout).toMatch(/twinwall check: 10 host\(s\), the walls agree/);
    expect(r.code).toBe(0);
  });

  it('exits 1 on a mutant and names the difference', () => {
    const r = twinwall(['check', mutant, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}staging\/sample: egress tcp\/25 to any IPv4 except .*: the host wall admits it \(OUTPUT rule \d+ → tw-out rule 1 .*\), the network wall does not$/m);
    expect(r.stdout).toMatch(/twinwall check: 1 finding\(s\) on 1 of 10 host\(s\)/);
  });

  it.each([
    [['check', '/nonexistent/cdktf.out'], /^twinwall: \/nonexistent\/cdktf.out does not exist/],
    [['check', '--bogus'], /^twinwall: unknown option '--bogus'/],
    [['frobnicate'], /^twinwall: unknown command 'frobnicate'/],
  ] as [string[], RegExp][])('exits 2 with one line for %p', (args, message) => {
    const r = twinwall(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 on a stack that is not JSON', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-bad-'));
    cleanup.push(dir);
    fs.mkdirSync(path.join(dir, 'stacks', 'x'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'stacks', 'x', 'cdk.tf.json'), '{ not json');
    const r = twinwall(['check', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^twinwall: .*cdk\.tf\.json is not valid JSON/);
  });
});

describe('twinwall explain', () => {
  it('names the security-group rule and the iptables rule that admit a flow', () => {
    const r = twinwall(['explain', example, 'staging/sample', 'ingress', 'tcp/22', '192.0.2.10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/admitted by aws_vpc_security_group_ingress_rule\.sample_ingress-tcp-22-from-192-0-2-0-24_\w+ "sshAdmin: ssh - administration from declared admin networks"/);
    expect(r.stdout).toMatch(/admitted: INPUT rule \d+ → tw-in rule 1 "sshAdmin\/ssh: administration from declared admin networks" \(ACCEPT\)/);
    expect(r.stdout).toMatch(/verdict: the walls agree \(admitted\)/);
  });

  it('shows what drops a flow on both walls, and IMDS for root only as a documented exception', () => {
    const drop = twinwall(['explain', example, 'staging/sample', 'egress', 'tcp/80', '203.0.113.5']);
    expect(drop.stdout).toMatch(/dropped: no rule of aws_security_group\.sample_SecurityGroup_\w+ admits it/);
    expect(drop.stdout).toMatch(/dropped: OUTPUT rule \d+ → OUTPUT rule \d+ → tw-out-drop rule 2 \(DROP\)/);
    const imds = twinwall(['explain', example, 'staging/sample', 'egress', 'tcp/80', '169.254.169.254']);
    expect(imds.code).toBe(0);
    expect(imds.stdout).toMatch(/admitted for uid 0 only: OUTPUT rule \d+ "twinwall: instance metadata, root only/);
    expect(imds.stdout).toMatch(/verdict: the walls differ only by a documented exception \(link-local 169\.254\.169\.254\)/);
  });

  it('exits 1 when the walls disagree on the flow, and 2 on bad arguments', () => {
    const r = twinwall(['explain', mutant, 'staging/sample', 'egress', 'tcp/25', '203.0.113.5']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/verdict: the walls DISAGREE: the network wall drops it, the host wall admits it/);
    for (const bad of [
      ['explain', example, 'staging/sample', 'sideways', 'tcp/25', '203.0.113.5'],
      ['explain', example, 'staging/sample', 'egress', 'tcp/99999', '203.0.113.5'],
      ['explain', example, 'staging/sample', 'egress', 'tcp/25', 'not-an-address'],
      ['explain', example, 'nobody', 'egress', 'tcp/25', '203.0.113.5'],
      ['explain', example, 'sample', 'egress', 'tcp/25', '203.0.113.5'], // two stacks have a "sample"
    ]) {
      const b = twinwall(bad);
      expect({ args: bad, code: b.code, lines: b.stderr.trimEnd().split('\n').length }).toEqual({ args: bad, code: 2, lines: 1 });
    }
  });
});

describe('twinwall verify refuses clearly', () => {
  it('when not root', () => {
    const r = twinwall(['verify', example], { uid: 65534 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^twinwall verify: verify needs root/);
  });

  it('when ip and python3 are missing (the backend\'s own tool, iptables-restore or nft, is asked for once the hosts are read)', () => {
    // A PATH holding node and nothing else.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-path-'));
    cleanup.push(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = twinwall(['verify', example], { env: { ...process.env, PATH: bin } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^twinwall verify: verify needs ip, python3 on PATH \(Debian: apt-get install iproute2 python3\)/);
  });
});
