/**
 * The user-data of a host that chose the nftables wall (`hostFirewall: 'nftables'`): the wall and
 * its fallback in write_files (/etc/twinwall/twinwall.nft, fallback.nft), the loader and the unit
 * as for iptables, bootcmd's first-boot copy; a golden of the sample server's document; every
 * fixture's document passes `cloud-init schema`; and, as root, bootcmd run as cloud-init runs it in
 * a network namespace: it loads exactly the wall, and when nft refuses the wall the host keeps the
 * fallback (one transaction: nothing of the broken wall), the failure is loud and the exit 1;
 * without nft (or with one that fails every load) nothing is loaded, and the loader says the host
 * is unfiltered, never that it drops.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { LOADER_PATH, NFT, NFT_FALLBACK_PATH, NFT_RULES_PATH, renderHost, renderNftables, renderNftablesFallback } from '../lib/render';
import { ROLE_FIXTURES } from './support/fixtures';
import { expectGolden } from './support/golden';
import { describeTier, netns, nft, onPath, root } from './support/tiers';
import { BootcmdLab, bootcmdLab, cloudInitPython, swapTool } from './support/bootcmd-lab';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function nftUserData(name: string) {
  return renderHost(ROLE_FIXTURES[name](), { hostFirewall: 'nftables' }).userData;
}

describe('user-data of an nftables host', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s: the wall and its fallback in write_files and in bootcmd, the unit loads the wall', (name) => {
    const policy = ROLE_FIXTURES[name]();
    const rendering = renderHost(policy, { hostFirewall: 'nftables' });
    expect(rendering.hostFirewall).toBe('nftables');
    const cfg = parse(rendering.userData.cloudConfig, { version: '1.1' }) as Json;
    const files = cfg.write_files as Json[];
    expect(files.find((f) => f.path === NFT_RULES_PATH)?.content).toBe(renderNftables(policy).text);
    expect(files.some((f) => /\/etc\/iptables\//.test(f.path))).toBe(false);
    const boot = (cfg.bootcmd[0] as string[]).at(-1) as string;
    expect(boot).toContain(renderNftables(policy).text);
    if (policy.options.onLoadFailure === 'lockdown') {
      expect(files.find((f) => f.path === NFT_FALLBACK_PATH)?.content).toBe(renderNftablesFallback(policy).text);
      // The fallback first, then the wall.
      expect(boot.indexOf(renderNftablesFallback(policy).text)).toBeLessThan(boot.indexOf(renderNftables(policy).text));
    } else expect(files.some((f) => f.path === NFT_FALLBACK_PATH)).toBe(false);
    const unit = files.find((f) => f.path === '/etc/systemd/system/twinwall-firewall.service')?.content as string;
    expect(unit).toContain(`Description=twinwall host firewall (loads ${NFT_RULES_PATH})`);
    expect(unit).toMatch(/^DefaultDependencies=no$/m);
    expect(unit).toMatch(/^Before=network-pre\.target shutdown\.target$/m);
    const loader = files.find((f) => f.path === '/usr/local/sbin/twinwall-firewall-load')?.content as string;
    expect(loader).toContain(`/usr/sbin/nft -f ${NFT_RULES_PATH} || failed="$failed nftables"`);
    // Without nft nothing can load: the loader says so and stops before trying.
    expect(loader.indexOf(`[ -x ${NFT} ] || { echo "$who: ${NFT} is MISSING`)).toBeGreaterThan(0);
    expect(loader.indexOf(`[ -x ${NFT} ] || {`)).toBeLessThan(loader.indexOf(`${NFT} -f `));
    expect(cfg.runcmd).toEqual([['systemctl', 'enable', '--now', 'twinwall-firewall.service']]);
  });

  it('golden: the sample server', () => {
    expectGolden('user-data/sample.nftables.yaml', nftUserData('sample').cloudConfig);
  });
});

describeTier('cloud-init schema (nftables user-data)', [onPath('cloud-init')], () => {
  it('accepts the user-data of every fixture', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-nft-schema-'));
    try {
      for (const name of Object.keys(ROLE_FIXTURES)) {
        const file = path.join(dir, `${name}.yaml`);
        fs.writeFileSync(file, nftUserData(name).cloudConfig);
        const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
        expect({ name, status: r.status, out: r.stdout.trim() }).toEqual({ name, status: 0, out: `Valid cloud-config: ${file}` });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeTier('first boot of an nftables host: bootcmd as cloud-init runs it, in a network namespace', [root, onPath('ip'), netns, nft, onPath('/usr/sbin/nft'), cloudInitPython], () => {
  let lab: BootcmdLab;
  beforeAll(() => {
    lab = bootcmdLab('twnu');
  });
  afterAll(() => lab.close());
  const namespace = (tag: string) => lab.namespace(tag);
  const runBootcmd = (cloudConfig: string, ns: string) => lab.runBootcmd(cloudConfig, ns);

  const listed = (ns: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });

  /** What loading `text` alone gives, in a scratch namespace. */
  function direct(text: string): string {
    const ns = namespace(`d${lab.made()}`);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: text });
    return listed(ns);
  }

  it('loads exactly the sample server\'s wall (after its fallback)', () => {
    const policy = ROLE_FIXTURES.sample();
    const booted = namespace('b');
    const r = runBootcmd(nftUserData('sample').cloudConfig, booted);
    expect({ status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ status: 0, stdout: 'twinwall (sample): host firewall loaded (first boot)', stderr: '' });
    expect(listed(booted)).toBe(direct(renderNftables(policy).text));
  });

  it('a wall nft refuses leaves the fallback, whole, and says so', () => {
    const policy = ROLE_FIXTURES.sample();
    const wall = renderNftables(policy).text;
    const broken = nftUserData('sample').cloudConfig.split('tcp dport 25 ct state new').join('tcp dport 25 ct state neww');
    expect(broken).not.toBe(nftUserData('sample').cloudConfig);
    const booted = namespace('f');
    const r = runBootcmd(broken, booted);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FAILED to load the host firewall \(start\) for: nftables; at boot the host keeps the fallback/);
    expect(listed(booted)).toBe(direct(renderNftablesFallback(policy).text));
    expect(listed(booted)).not.toBe(direct(wall));
  });

  it('without nft nothing loads, not even the fallback: one line names the binary, says only the security group protects the host, gives the fix; exit 1', () => {
    const absent = lab.absent(NFT);
    const booted = namespace('n');
    const r = runBootcmd(swapTool(nftUserData('sample').cloudConfig, NFT, absent), booted);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1,
      stdout: '',
      stderr: `twinwall (sample): ${absent} is MISSING (or not executable): NO host firewall is loaded (not the wall, not even its fallback): at boot only the security group protects the host, at a reload it keeps the wall it had. Fix: install the nftables package in the image, or choose hostFirewall 'iptables'.\n`,
    });
    expect(listed(booted)).toBe('');
  });

  it('the unit\'s loader without nft: a reload says so, fails, and leaves the wall the host had', () => {
    const policy = ROLE_FIXTURES.sample();
    const ns = namespace('u');
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: renderNftables(policy).text });
    const before = listed(ns);
    const cfg = parse(nftUserData('sample').cloudConfig, { version: '1.1' }) as Json;
    const loader = (cfg.write_files as Json[]).find((f) => f.path === LOADER_PATH)?.content as string;
    const absent = lab.absent(NFT);
    const script = path.join(lab.dir, 'nft-loader.sh');
    fs.writeFileSync(script, swapTool(loader, NFT, absent));
    const r = spawnSync('ip', ['netns', 'exec', ns, '/bin/sh', script, 'reload'], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 1, stdout: '' });
    expect(r.stderr).toMatch(/^twinwall \(sample\): \S+\/nft is MISSING \(or not executable\): NO host firewall is loaded .*at a reload it keeps the wall it had\. Fix: install the nftables package in the image, or choose hostFirewall 'iptables'\.\n$/);
    expect(listed(ns)).toBe(before);
  });

  it('an nft that fails every load (the DROP-only table too) leaves the host unfiltered, and says so rather than claiming it drops', () => {
    const stub = lab.failingStub(NFT);
    const booted = namespace('x');
    const r = runBootcmd(swapTool(nftUserData('sample').cloudConfig, NFT, stub), booted);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      'nft (test stub): refuses every load',
      'nft (test stub): refuses every load',
      'nft (test stub): refuses every load',
      'twinwall (sample): FAILED to load the host firewall (start) for: nftables; at boot the host keeps the fallback (drop; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the wall it had. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall).',
      'twinwall (sample): the fallback FAILED too, and so did the DROP-only table: the host is UNFILTERED, only the security group protects it.',
      '',
    ]);
    expect(listed(booted)).toBe('');
  });
});
