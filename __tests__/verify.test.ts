/**
 * Kernel tier of `twinwall verify`: every host of the example app loaded into its own pair of
 * network namespaces and probed with real packets — the kernel agrees with the security groups
 * (and with the checker's model) on every probe, with each family's fallback loaded first as at
 * boot; a fallback the kernel refuses is a finding; each mutation of one wall makes the kernel
 * disagree; random policies agree too; and an interrupted verify leaves no namespace behind.
 */
import { spawn, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as fc from 'fast-check';
import { verifyHost } from '../cli/verify';
import { HostCheck, StackInput, checkStacks, parseIptablesRestore } from '../lib/check';
import { Json, clone, editTable, editUserData, readStacks, removeTable, resourceNamed, synthExample, writeStacks } from './support/artefacts';
import { randomHost, synthRandomHost } from './support/random-policy';
import { describeTier, netns, onPath, root } from './support/tiers';

const quiet = { timeoutMs: 600, verbose: false, out: () => undefined };
const BIN = path.join(__dirname, '..', 'scripts', 'twinwall-dev.js');

/**
 * The lab namespaces a process created and still has: their names carry (the tail of) the
 * creating process's id in base 36 (see cli/netns.ts), so other runs' labs do not count.
 */
function namespacesOf(pid: number): string[] {
  const tag = pid.toString(36).slice(-3);
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`twh-${tag}`) || n.startsWith(`twp-${tag}`));
}

describeTier('verify (kernel)', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), netns], () => {
  let outdir: string;
  let stacks: StackInput[];
  const dirs: string[] = [];

  beforeAll(() => {
    // The iptables wall: the mutations below edit its tables (check-nft.test.ts verifies the nftables wall).
    outdir = synthExample({ hostFirewall: 'iptables' });
    dirs.push(outdir);
    stacks = readStacks(outdir);
  }, 60000);

  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('the kernel agrees with the security groups on every probe, on every host of the example app (at least 300 each)', async () => {
    const report = checkStacks(stacks);
    const results = await Promise.all(report.hosts.map((h) => verifyHost(h, quiet)));
    for (const v of results) {
      expect({ host: v.label, disagreements: v.disagreements, model: v.modelMismatches, problems: v.problems }).toEqual({ host: v.label, disagreements: [], model: [], problems: [] });
      expect(v.probes).toBeGreaterThanOrEqual(300);
      // Both directions, both protocols, and forged sources, every time.
      for (const kind of ['ingress tcp', 'ingress udp', 'egress tcp', 'egress udp', 'egress forged', 'egress real-raw']) expect(v.byKind[kind]).toBeGreaterThan(0);
    }
    expect(namespacesOf(process.pid)).toEqual([]);
  }, 300_000);

  it("compares the tables the kernel stored with the checker's reading: a reading that differs is a finding", async () => {
    const report = checkStacks(stacks);
    const sample = report.hosts.find((h) => h.label === 'staging/sample') as HostCheck;
    // A checker that misread one rule of the IPv4 table (port 25 read as 26).
    const misread = parseIptablesRestore((sample.wall.tables[4]?.text as string).replace('--dport 25 ', '--dport 26 '), 4);
    const v = await verifyHost({ ...sample, documents: { ...sample.documents, 4: misread } }, quiet);
    expect(v.problems).toEqual([expect.stringMatching(/^the kernel stored \/etc\/iptables\/rules\.v4 differently from the checker's reading of it: the checker reads ".*tcp\(--dport=\{1a\}\).*" where the kernel stored ".*tcp\(--dport=\{19\}\).*"$/)]);
  }, 60000);

  it('loads each fallback before its table, as the loader does at boot: one the kernel refuses is a finding', async () => {
    const report = checkStacks(stacks);
    const sample = report.hosts.find((h) => h.label === 'staging/sample') as HostCheck;
    const fb = sample.wall.fallback[4] as { path: string; text: string };
    expect(fb.path).toBe('/etc/iptables/fallback.v4');
    const broken = { ...sample.wall, fallback: { ...sample.wall.fallback, 4: { ...fb, text: fb.text.replace('-A OUTPUT -o lo -j ACCEPT', '-A OUTPUT -o lo -j TW_NO_SUCH_CHAIN') } } };
    const v = await verifyHost({ ...sample, wall: broken }, quiet);
    expect(v.problems).toEqual([expect.stringMatching(/^the kernel refuses \/etc\/iptables\/fallback\.v4 \(iptables-restore\): .*; at boot a failing table would leave IPv4 without its fallback$/)]);
    // The real tables still load over it: the probes agree.
    expect(v.disagreements).toEqual([]);
  }, 60000);

  describe('each mutation of one wall makes the kernel disagree', () => {
    const sample = (tf: Json): Json => resourceNamed(tf, 'aws_instance', 'sample_Instance_')[1];
    const MUTATIONS: [string, (tf: Json) => void, RegExp][] = [
      [
        'an egress rule dropped from the security group',
        (tf) => {
          const [name] = resourceNamed(tf, 'aws_vpc_security_group_egress_rule', 'sample_egress-tcp-25-to-0-0-0-0-0');
          delete tf.resource.aws_vpc_security_group_egress_rule[name];
        },
        /^egress tcp\/25 to [0-9.]+: the kernel admits it, the security groups drops it \(no security-group rule \(default deny\)\)$/,
      ],
      [
        'a CIDR widened in the security group',
        (tf) => {
          resourceNamed(tf, 'aws_vpc_security_group_ingress_rule', 'sample_ingress-tcp-22-from-192-0-2-0-24')[1].cidr_ipv4 = '192.0.0.0/16';
        },
        /^ingress tcp\/22 from 192\.0\.\d+\.\d+: the kernel drops it, the security groups admits it \(aws_vpc_security_group_ingress_rule\.sample_ingress-tcp-22/,
      ],
      [
        'a port added to the iptables table',
        (tf) => editUserData(sample(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^(-A tw-in .*--dport 22 .*)$/m, '$1\n-A tw-in -p tcp -m tcp --dport 8443 -m conntrack --ctstate NEW -j ACCEPT'))),
        /^ingress tcp\/8443 from [0-9.]+: the kernel admits it, the security groups drops it/,
      ],
      // Fail closed: without its table, IPv6 keeps the fallback verify loads first, as the host does.
      ['the IPv6 table removed', (tf) => editUserData(sample(tf), (cfg) => removeTable(cfg, 6)), /^(ingress|egress) (tcp|udp)\/\d+ (from|to) [0-9a-f:]+: the kernel drops it, the security groups admits it/],
      [
        'the source-address check removed',
        (tf) => editUserData(sample(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^-A OUTPUT -m addrtype ! --src-type LOCAL .*\n/m, ''))),
        /^egress (tcp|udp)\/\d+ to [0-9.]+ with forged source 192\.0\.2\.99: the kernel admits it, the security groups \(forged source/,
      ],
    ];

    it.each(MUTATIONS)('%s', async (_name, change, expected) => {
      const copy = stacks.map((s) => ({ name: s.name, json: clone(s.json) }));
      change((copy.find((s) => s.name === 'staging') as StackInput).json);
      const host = checkStacks(copy).hosts.find((h) => h.label === 'staging/sample') as HostCheck;
      const v = await verifyHost(host, quiet);
      expect(v.disagreements.length).toBeGreaterThan(0);
      expect(v.disagreements).toContainEqual(expect.stringMatching(expected));
      // The checker's model predicted the kernel's behaviour, mutation and all.
      expect(v.modelMismatches).toEqual([]);
    }, 60000);
  });

  it('random policies: the kernel agrees with the security groups (a small sample)', async () => {
    const sample = fc.sample(randomHost, { numRuns: 4, seed: 4242 });
    for (const h of sample) {
      const json = synthRandomHost(h);
      if (json === undefined) continue;
      const [check] = checkStacks([{ name: 'random', json }]).hosts;
      expect(check.findings).toEqual([]);
      const v = await verifyHost(check, quiet);
      expect({ disagreements: v.disagreements, model: v.modelMismatches, problems: v.problems }).toEqual({ disagreements: [], model: [], problems: [] });
    }
  }, 90000);

  it('the CLI exits 1 on a mutant, and an interrupted verify removes its namespaces', async () => {
    const copy = stacks.map((s) => ({ name: s.name, json: clone(s.json) }));
    const staging = (copy.find((s) => s.name === 'staging') as StackInput).json as Json;
    const [name] = resourceNamed(staging, 'aws_vpc_security_group_egress_rule', 'sample_egress-tcp-25-to-0-0-0-0-0');
    delete staging.resource.aws_vpc_security_group_egress_rule[name];
    const mutant = writeStacks(copy);
    dirs.push(mutant);
    const run = (args: string[], interrupt?: boolean) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; pid: number }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        if (interrupt === true) {
          const poll = setInterval(() => {
            if (child.pid !== undefined && namespacesOf(child.pid).length > 0) {
              clearInterval(poll);
              child.kill('SIGINT');
            }
          }, 20);
          child.on('exit', () => clearInterval(poll));
        }
        child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid as number }));
      });
    const r = await run(['verify', mutant, '--host', 'staging/sample']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}staging\/sample: egress tcp\/25 to [0-9.]+: the kernel admits it, the security groups drops it/m);
    const i = await run(['verify', outdir], true);
    expect(i.code).toBe(130);
    expect(i.stderr).toMatch(/SIGINT: removing the namespaces/);
    expect(namespacesOf(process.pid)).toEqual([]);
  }, 90000);
});
