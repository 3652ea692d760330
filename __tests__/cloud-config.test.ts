/**
 * The user-data that installs the host wall (DESIGN "User-data contract", docs/user-data.md):
 * unit tests on literal tables, golden files per fixture, and tiers that hand the result to the
 * real tools — `cloud-init schema`, `systemd-analyze verify`, and the first-boot command run the
 * way cloud-init runs it, in a network namespace.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { parse } from 'yaml';
import { ERROR_CODES } from '../lib';
import { renderIptables } from '../lib/render/iptables';
import {
  FIREWALL_UNIT,
  FIREWALL_UNIT_PATH,
  FIRST_BOOT_SEMAPHORE,
  IPSETS_PATH,
  RULES_V4_PATH,
  RULES_V6_PATH,
  USER_DATA_LIMIT_BYTES,
  deterministicGzip,
  renderCloudConfig,
  renderFirewallUnit,
  renderFirstBootScript,
  renderUserData,
} from '../lib/render/cloud-config';
import { expectGolden } from './support/golden';
import { ROLE_FIXTURES } from './support/fixtures';
import { Prerequisite, describeTier, ipset, netns, onPath, root } from './support/tiers';
import { caught } from './support/caught';

const V4 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', 'COMMIT', ''].join('\n');
const V6 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', '-A OUTPUT -p ipv6-icmp -j ACCEPT', 'COMMIT', ''].join('\n');

interface WriteFile {
  path: string;
  owner: string;
  permissions: string;
  content: string;
}

/** The document as cloud-init reads it (YAML 1.1). */
function load(text: string): { bootcmd: unknown[][]; write_files: WriteFile[]; runcmd: unknown[][] } {
  return parse(text, { version: '1.1' });
}

/** Deterministic filler: `n` lines of incompressible base64 text, as iptables comments. */
function noise(seed: number, n: number): string {
  let x = seed >>> 0;
  const bytes = Buffer.alloc(n * 48);
  for (let i = 0; i < bytes.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    bytes[i] = x >>> 24;
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`# ${bytes.subarray(i * 48, i * 48 + 48).toString('base64')}`);
  return out.join('\n') + '\n';
}

describe('the systemd unit', () => {
  const lines = renderFirewallUnit().split('\n');

  it('has netfilter-persistent\'s [Unit] header, exactly', () => {
    const unit = lines.slice(lines.indexOf('[Unit]') + 1, lines.indexOf(''));
    expect(unit.filter((l) => !l.startsWith('Description=') && !l.startsWith('Documentation='))).toEqual([
      'DefaultDependencies=no',
      'Wants=local-fs.target systemd-modules-load.service',
      'After=local-fs.target systemd-modules-load.service',
      'Wants=network-pre.target',
      'Before=network-pre.target shutdown.target',
      'Conflicts=shutdown.target',
    ]);
  });

  it('is a oneshot that loads both files with absolute paths, never flushes, and is wanted by multi-user.target', () => {
    const service = lines.slice(lines.indexOf('[Service]') + 1, lines.indexOf('[Install]') - 1);
    expect(service).toEqual([
      'Type=oneshot',
      'RemainAfterExit=yes',
      'ExecStart=/usr/sbin/iptables-restore /etc/iptables/rules.v4',
      'ExecStart=/usr/sbin/ip6tables-restore /etc/iptables/rules.v6',
      'ExecReload=/usr/sbin/iptables-restore /etc/iptables/rules.v4',
      'ExecReload=/usr/sbin/ip6tables-restore /etc/iptables/rules.v6',
    ]);
    expect(renderFirewallUnit()).not.toMatch(/ExecStop|--flush|-F\b/);
    expect(lines.slice(lines.indexOf('[Install]'))).toEqual(['[Install]', 'WantedBy=multi-user.target', '']);
  });
});

describe('the #cloud-config document', () => {
  const ud = renderUserData({ v4: V4, v6: V6 }, { host: 'literal' });
  const doc = load(ud.cloudConfig);

  it('starts with #cloud-config and has bootcmd, write_files and runcmd', () => {
    expect(ud.cloudConfig.startsWith('#cloud-config\n')).toBe(true);
    expect(Object.keys(doc)).toEqual(['bootcmd', 'write_files', 'runcmd']);
  });

  it('writes both tables and the unit, owned by root, with their modes', () => {
    expect(doc.write_files).toEqual([
      { path: RULES_V4_PATH, owner: 'root:root', permissions: '0640', content: V4 },
      { path: RULES_V6_PATH, owner: 'root:root', permissions: '0640', content: V6 },
      { path: FIREWALL_UNIT_PATH, owner: 'root:root', permissions: '0644', content: renderFirewallUnit() },
    ]);
    expect(FIREWALL_UNIT_PATH).toBe('/etc/systemd/system/twinwall-firewall.service');
  });

  it('enables (and starts) the unit with a command, since write_files cannot', () => {
    expect(doc.runcmd).toEqual([['systemctl', 'enable', '--now', FIREWALL_UNIT]]);
  });

  it('bootcmd loads its own copy of both tables, once per instance', () => {
    expect(doc.bootcmd).toHaveLength(1);
    const [cmd] = doc.bootcmd;
    expect(cmd.slice(0, 5)).toEqual(['cloud-init-per', 'instance', FIRST_BOOT_SEMAPHORE, '/bin/sh', '-c']);
    const script = cmd[5] as string;
    expect(script).toBe(renderFirstBootScript({ v4: V4, v6: V6 }, 'literal'));
    expect(script).toContain(`/usr/sbin/iptables-restore <<'TWINWALL_RULES_V4' || failed="$failed IPv4"\n${V4}TWINWALL_RULES_V4\n`);
    expect(script).toContain(`/usr/sbin/ip6tables-restore <<'TWINWALL_RULES_V6' || failed="$failed IPv6"\n${V6}TWINWALL_RULES_V6\n`);
    expect(script).toContain('echo "twinwall (literal): FAILED to load the host firewall for:$failed. Until it loads, only the security group protects this host.');
    expect(script).toContain('  exit 1\n');
  });

  it('picks a here-document delimiter no table line equals', () => {
    const tricky = `TWINWALL_RULES_V4\n${V4}`;
    const script = renderFirstBootScript({ v4: tricky, v6: V6 });
    expect(script).toContain(`<<'TWINWALL_RULES_V4_1'`);
    expect(script).toContain(`${tricky}TWINWALL_RULES_V4_1\n`);
  });

  it('adds a final newline a table lacks, and refuses what is not a table', () => {
    expect(load(renderCloudConfig({ v4: V4.trimEnd(), v6: V6 })).write_files[0].content).toBe(V4);
    const err = caught(() => renderUserData({ v4: '  ', v6: V6 }));
    expect(err.code).toBe(ERROR_CODES.OPTION_INVALID);
    expect(err.message).toContain('the IPv4 table "  " is not iptables-restore text');
    expect(caught(() => renderUserData({ v4: V4, v6: V6.replace(/\n/g, '\r\n') })).message).toContain('the IPv6 table contains a carriage return');
    expect(caught(() => renderUserData({ v4: V4, v6: V6 }, { host: 'two words' })).errorName).toBe('NAME_INVALID');
  });

  it('is plain below the limit, and base64 round-trips', () => {
    expect(ud.gzipped).toBe(false);
    expect(ud.bytes).toBe(Buffer.byteLength(ud.cloudConfig));
    expect(ud.plainBytes).toBe(ud.bytes);
    expect(Buffer.from(ud.base64, 'base64').toString('utf8')).toBe(ud.cloudConfig);
  });

  it('is byte-stable', () => {
    expect(renderUserData({ v4: V4, v6: V6 }, { host: 'literal' })).toEqual(ud);
  });

  it('golden: literal tables', () => {
    expectGolden('user-data/literal.yaml', ud.cloudConfig);
  });
});

describe('size: gzip only above 16,384 bytes, an error when even gzip does not fit', () => {
  /** Tables whose plain document is exactly `target` bytes (each table line appears twice, the host name three times). */
  function tablesOfSize(target: number): { tables: { v4: string; v6: string }; host: string } {
    for (const host of ['h', 'hh']) {
      const tables = (n: number) => ({ v4: `# ${'p'.repeat(n)}\n${V4}`, v6: V6 });
      const size = (n: number) => Buffer.byteLength(renderCloudConfig(tables(n), { host }));
      let n = Math.max(0, Math.floor((target - size(0)) / 2) - 2);
      while (size(n) < target) n++;
      if (size(n) === target) return { tables: tables(n), host };
    }
    throw new Error(`no padding reaches ${target} bytes`);
  }

  it('16,384 bytes plain: not compressed', () => {
    const { tables, host } = tablesOfSize(USER_DATA_LIMIT_BYTES);
    const ud = renderUserData(tables, { host });
    expect([ud.gzipped, ud.bytes, ud.plainBytes]).toEqual([false, 16384, 16384]);
  });

  it('16,385 bytes plain: gzip, deterministic, mtime 0, and base64 round-trips', () => {
    const { tables, host } = tablesOfSize(USER_DATA_LIMIT_BYTES + 1);
    const ud = renderUserData(tables, { host });
    expect(ud.gzipped).toBe(true);
    expect(ud.plainBytes).toBe(16385);
    const gz = Buffer.from(ud.base64, 'base64');
    expect(gz.length).toBe(ud.bytes);
    expect(ud.bytes).toBeLessThan(ud.plainBytes);
    expect([...gz.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]); // magic, deflate, no flags, mtime 0, level 9, Unix
    expect(gunzipSync(gz).toString('utf8')).toBe(ud.cloudConfig);
    expect(renderUserData(tables, { host }).base64).toBe(ud.base64);
  });

  it('TW224 USER_DATA_TOO_LARGE at the gzip boundary names both sizes and a fix', () => {
    // Incompressible filler: find the largest that still fits gzipped, and the next line that does not.
    const tables = (n: number) => ({ v4: noise(7, n) + V4, v6: V6 });
    const gzBytes = (n: number) => deterministicGzip(Buffer.from(renderCloudConfig(tables(n)))).length;
    let lo = 1;
    let hi = 400;
    expect(gzBytes(lo)).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(gzBytes(hi)).toBeGreaterThan(USER_DATA_LIMIT_BYTES);
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (gzBytes(mid) <= USER_DATA_LIMIT_BYTES) lo = mid;
      else hi = mid;
    }
    const fits = renderUserData(tables(lo));
    expect(fits.gzipped).toBe(true);
    expect(fits.bytes).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);

    const plain = Buffer.byteLength(renderCloudConfig(tables(hi)));
    const err = caught(() => renderUserData(tables(hi)));
    expect(err.code).toBe('TW224');
    expect(err.errorName).toBe('USER_DATA_TOO_LARGE');
    expect(err.message).toBe(
      `TW224 USER_DATA_TOO_LARGE: the user-data is ${plain} bytes plain and ${gzBytes(hi)} bytes gzip-compressed, but EC2 accepts at most 16384 bytes. ` +
        'Fix: shrink the policy (merge peers into fewer, wider CIDRs; drop roles the host does not play) or split the host; the rules appear twice in the user-data (bootcmd and write_files).',
    );
    expect(err.value).toEqual({ plainBytes: plain, gzippedBytes: gzBytes(hi) });
    expect(caught(() => renderUserData(tables(hi), { host: 'big' })).message).toContain('TW224 USER_DATA_TOO_LARGE at big: ');
  });
});

describe('address sets (ipset): loaded before the tables, in bootcmd and in the unit alike', () => {
  const SETS = ['create tw4-in-tcp-22 hash:net family inet hashsize 1024 maxelem 65536', 'flush tw4-in-tcp-22', 'add tw4-in-tcp-22 192.0.2.1/32', ''].join('\n');

  it('without sets nothing about ipset appears anywhere', () => {
    const text = renderUserData({ v4: V4, v6: V6 }).cloudConfig;
    expect(text).not.toContain('ipset');
    expect(renderFirewallUnit()).not.toContain('ipset');
  });

  it('the unit restores the sets first, at start and at reload', () => {
    const exec = renderFirewallUnit({ ipsets: true })
      .split('\n')
      .filter((l) => l.startsWith('ExecStart=') || l.startsWith('ExecReload='));
    expect(exec).toEqual([
      `ExecStart=/usr/sbin/ipset -exist restore -file ${IPSETS_PATH}`,
      'ExecStart=/usr/sbin/iptables-restore /etc/iptables/rules.v4',
      'ExecStart=/usr/sbin/ip6tables-restore /etc/iptables/rules.v6',
      `ExecReload=/usr/sbin/ipset -exist restore -file ${IPSETS_PATH}`,
      'ExecReload=/usr/sbin/iptables-restore /etc/iptables/rules.v4',
      'ExecReload=/usr/sbin/ip6tables-restore /etc/iptables/rules.v6',
    ]);
  });

  it('write_files holds /etc/iptables/ipsets; bootcmd restores its own copy before either table', () => {
    const doc = load(renderUserData({ v4: V4, v6: V6, ipsets: SETS }).cloudConfig);
    expect(doc.write_files.map((f) => [f.path, f.permissions])).toEqual([
      [RULES_V4_PATH, '0640'],
      [RULES_V6_PATH, '0640'],
      [IPSETS_PATH, '0640'],
      [FIREWALL_UNIT_PATH, '0644'],
    ]);
    expect(doc.write_files[2].content).toBe(SETS);
    expect(doc.write_files[3].content).toBe(renderFirewallUnit({ ipsets: true }));
    const script = String(doc.bootcmd[0][5]);
    const sets = script.indexOf("/usr/sbin/ipset -exist restore <<'TWINWALL_IPSETS' || failed=\"$failed ipsets\"");
    expect(sets).toBeGreaterThan(0);
    expect(sets).toBeLessThan(script.indexOf('/usr/sbin/iptables-restore <<'));
    expect(script).toContain(`\n${SETS}TWINWALL_IPSETS\n`);
  });
});

describe('golden user-data over the rendered iptables rules', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    const ud = renderUserData(renderIptables(ROLE_FIXTURES[name]()));
    expectGolden(`user-data/${name}.yaml`, ud.cloudConfig);
    expect(ud.bytes).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(load(ud.cloudConfig).write_files[0].content).toBe(renderIptables(ROLE_FIXTURES[name]()).v4);
  });
});

/** Every fixture's user-data (plus the literal one) in a temporary directory. */
function writeAll(dir: string): string[] {
  const files: string[] = [];
  const all: [string, string][] = [
    ['literal', renderUserData({ v4: V4, v6: V6 }, { host: 'literal' }).cloudConfig],
    ...Object.entries(ROLE_FIXTURES).map(([name, f]): [string, string] => [name, renderUserData(renderIptables(f())).cloudConfig]),
  ];
  for (const [name, text] of all) {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, text);
    files.push(file);
  }
  return files;
}

describeTier('cloud-init schema', [onPath('cloud-init')], () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-schema-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts the user-data of every fixture', () => {
    for (const file of writeAll(dir)) {
      const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
      expect({ file: path.basename(file), status: r.status, out: r.stdout.trim() }).toEqual({ file: path.basename(file), status: 0, out: `Valid cloud-config: ${file}` });
    }
  });

  it('and rejects a broken one (the tool really checks)', () => {
    const file = path.join(dir, 'broken.yaml');
    fs.writeFileSync(file, renderUserData({ v4: V4, v6: V6 }).cloudConfig.replace("permissions: \"0644\"", 'permissions: 644'));
    const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('644 is not of type');
  });
});

describeTier('systemd unit', [onPath('systemd-analyze')], () => {
  it('passes systemd-analyze verify', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-unit-'));
    try {
      const file = path.join(dir, FIREWALL_UNIT);
      for (const ipsets of [false, true]) {
        fs.writeFileSync(file, renderFirewallUnit({ ipsets }));
        const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
        expect({ ipsets, status: r.status, complaints: (r.stdout + r.stderr).split('\n').filter((l) => l.includes(FIREWALL_UNIT)) }).toEqual({ ipsets, status: 0, complaints: [] });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** cloud-init's own Python modules, to turn bootcmd into the shell script cloud-init would run. */
const cloudInitPython: Prerequisite = {
  name: 'cloud-init python modules',
  check: () => (spawnSync('/usr/bin/python3', ['-c', 'import yaml, cloudinit.util'], { stdio: 'pipe' }).status === 0 ? undefined : 'python3 cannot import cloudinit'),
};

describeTier('first boot: bootcmd as cloud-init runs it, in a network namespace', [root, onPath('ip'), netns, onPath('iptables-restore'), onPath('ip6tables-restore'), cloudInitPython], () => {
  let dir: string;
  const namespaces: string[] = [];
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-boot-'));
    // Stand-in for cloud-init-per on an instance's first boot: drop frequency and name, run the command.
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'cloud-init-per'), '#!/bin/sh\nshift 2\nexec "$@"\n', { mode: 0o755 });
  });
  afterAll(() => {
    for (const ns of namespaces) spawnSync('ip', ['netns', 'delete', ns]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function namespace(tag: string): string {
    const ns = `twud${tag}${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    return ns;
  }

  /** cloud-init's bootcmd module: shellify the list into a script and run it with /bin/sh. */
  function runBootcmd(cloudConfig: string, ns: string) {
    const yamlFile = path.join(dir, `${ns}.yaml`);
    const script = path.join(dir, `${ns}.sh`);
    fs.writeFileSync(yamlFile, cloudConfig);
    execFileSync('/usr/bin/python3', [
      '-c',
      'import sys, yaml\nfrom cloudinit.util import shellify\nopen(sys.argv[2], "w").write(shellify(yaml.safe_load(open(sys.argv[1]))["bootcmd"]))',
      yamlFile,
      script,
    ]);
    return spawnSync('ip', ['netns', 'exec', ns, '/bin/sh', script], { encoding: 'utf8', env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` } });
  }

  /** The loaded ruleset, without the header lines that carry versions and dates. */
  function saved(ns: string, tool: 'iptables-save' | 'ip6tables-save'): string {
    return execFileSync('ip', ['netns', 'exec', ns, tool], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
  }

  it('loads exactly the sample server tables that the files hold', () => {
    const tables = renderIptables(ROLE_FIXTURES.sample());
    const booted = namespace('b');
    const r = runBootcmd(renderUserData(tables).cloudConfig, booted);
    expect({ status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ status: 0, stdout: 'twinwall: host firewall loaded (first boot)', stderr: '' });

    const direct = namespace('d');
    execFileSync('ip', ['netns', 'exec', direct, 'iptables-restore'], { input: tables.v4 });
    execFileSync('ip', ['netns', 'exec', direct, 'ip6tables-restore'], { input: tables.v6 });
    expect(saved(booted, 'iptables-save')).toBe(saved(direct, 'iptables-save'));
    expect(saved(booted, 'ip6tables-save')).toBe(saved(direct, 'ip6tables-save'));
    expect(saved(booted, 'iptables-save')).toContain(':OUTPUT DROP');
  });

  it('with ipsets: bootcmd restores the sets, then the tables that match them', () => {
    if (ipset.check() !== undefined) throw new Error(`this tier needs ipset: ${ipset.check()}`);
    const tables = renderIptables(ROLE_FIXTURES.manyAdmins());
    expect(tables.ipsets).toBeDefined();
    const booted = namespace('s');
    const r = runBootcmd(renderUserData(tables, { host: 'jump' }).cloudConfig, booted);
    expect({ status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ status: 0, stdout: 'twinwall (jump): host firewall loaded (first boot)', stderr: '' });
    expect(saved(booted, 'iptables-save')).toContain('-m set --match-set tw4-in-tcp-22 src');
    const members = execFileSync('ip', ['netns', 'exec', booted, 'ipset', 'list', 'tw4-in-tcp-22'], { encoding: 'utf8' });
    expect(members.match(/^192\.0\.2\.\d+$/gm)).toHaveLength(20);
  });

  it('fails loudly when a table does not load, and still loads the other', () => {
    const ns = namespace('f');
    const broken = V4.replace('-A INPUT -i lo -j ACCEPT', '-A INPUT -i lo -j NO-SUCH-TARGET');
    const r = runBootcmd(renderUserData({ v4: broken, v6: V6 }, { host: 'broken' }).cloudConfig, ns);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('twinwall (broken): FAILED to load the host firewall for: IPv4. Until it loads, only the security group protects this host.');
    expect(saved(ns, 'ip6tables-save')).toContain('-A OUTPUT -p ipv6-icmp -j ACCEPT');
    expect(execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-S', 'INPUT'], { encoding: 'utf8' })).toBe('-P INPUT ACCEPT\n');
  });
});
