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
import { renderHost } from '../lib/render';
import { renderFallback, renderIptables } from '../lib/render/iptables';
import {
  DROP_ONLY_TABLE,
  FALLBACK_V4_PATH,
  FALLBACK_V6_PATH,
  FIREWALL_UNIT,
  FIREWALL_UNIT_PATH,
  FIRST_BOOT_SEMAPHORE,
  HostWallTables,
  IP6TABLES_RESTORE,
  IPSET,
  IPSETS_PATH,
  IPTABLES_RESTORE,
  LOADER_PATH,
  RULES_V4_PATH,
  RULES_V6_PATH,
  USER_DATA_LIMIT_BYTES,
  deterministicGzip,
  renderCloudConfig,
  renderFirewallUnit,
  renderFirstBootScript,
  renderLoader,
  renderUserData,
} from '../lib/render/cloud-config';
import { expectGolden } from './support/golden';
import { ROLE_FIXTURES } from './support/fixtures';
import { describeTier, ipset, netns, onPath, root } from './support/tiers';
import { BootcmdLab, bootcmdLab, cloudInitPython, swapTool } from './support/bootcmd-lab';
import { caught } from './support/caught';

const V4 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', 'COMMIT', ''].join('\n');
const V6 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', '-A OUTPUT -p ipv6-icmp -j ACCEPT', 'COMMIT', ''].join('\n');
/** Literal fallbacks: what a family keeps when its table fails (lockdown, the default). */
const FB4 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', 'COMMIT', ''].join('\n');
const FB6 = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A INPUT -p ipv6-icmp -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', 'COMMIT', ''].join('\n');
const LITERAL: HostWallTables = { v4: V4, v6: V6, fallback: { v4: FB4, v6: FB6 } };

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

  it('is a oneshot that runs the loader (one ExecStart: families load independently), never flushes, prints failures on the console, and is wanted by multi-user.target', () => {
    const service = lines.slice(lines.indexOf('[Service]') + 1, lines.indexOf('[Install]') - 1);
    expect(service).toEqual([
      'Type=oneshot',
      'RemainAfterExit=yes',
      `ExecStart=${LOADER_PATH} start`,
      `ExecReload=${LOADER_PATH} reload`,
      'StandardOutput=journal',
      'StandardError=journal+console',
    ]);
    expect(renderFirewallUnit()).not.toMatch(/ExecStop|--flush|-F\b/);
    expect(lines.slice(lines.indexOf('[Install]'))).toEqual(['[Install]', 'WantedBy=multi-user.target', '']);
  });
});

describe('the #cloud-config document', () => {
  const ud = renderUserData(LITERAL, { host: 'literal' });
  const doc = load(ud.cloudConfig);

  it('starts with #cloud-config and has bootcmd, write_files and runcmd', () => {
    expect(ud.cloudConfig.startsWith('#cloud-config\n')).toBe(true);
    expect(Object.keys(doc)).toEqual(['bootcmd', 'write_files', 'runcmd']);
  });

  it('writes both tables, both fallbacks, the loader and the unit, owned by root, with their modes', () => {
    expect(doc.write_files).toEqual([
      { path: RULES_V4_PATH, owner: 'root:root', permissions: '0640', content: V4 },
      { path: RULES_V6_PATH, owner: 'root:root', permissions: '0640', content: V6 },
      { path: FALLBACK_V4_PATH, owner: 'root:root', permissions: '0640', content: FB4 },
      { path: FALLBACK_V6_PATH, owner: 'root:root', permissions: '0640', content: FB6 },
      { path: LOADER_PATH, owner: 'root:root', permissions: '0755', content: renderLoader({ tables: LITERAL, host: 'literal', mode: 'lockdown', source: 'files' }) },
      { path: FIREWALL_UNIT_PATH, owner: 'root:root', permissions: '0644', content: renderFirewallUnit() },
    ]);
    expect(FIREWALL_UNIT_PATH).toBe('/etc/systemd/system/twinwall-firewall.service');
  });

  it('the loader: the tools, then fallbacks first (start only), then each real table on its own; loud on failure', () => {
    const loader = doc.write_files[4].content;
    expect(loader.startsWith('#!/bin/sh\n')).toBe(true);
    const at = (needle: string): number => {
      const i = loader.indexOf(needle);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    // Each family's tool is checked before anything loads; a missing one skips that family only.
    expect(at(`[ -x ${IPTABLES_RESTORE} ] || { missing="$missing IPv4"; echo "$who: ${IPTABLES_RESTORE} is MISSING`)).toBeLessThan(at('if [ "$action" = start ]; then'));
    expect(at(`[ -x ${IP6TABLES_RESTORE} ] || { missing="$missing IPv6"; echo "$who: ${IP6TABLES_RESTORE} is MISSING`)).toBeLessThan(at('if [ "$action" = start ]; then'));
    expect(at('if [ "$action" = start ]; then')).toBeLessThan(at(`[ ! -x ${IPTABLES_RESTORE} ] || /usr/sbin/iptables-restore ${FALLBACK_V4_PATH} || {`));
    expect(at(`/usr/sbin/iptables-restore ${FALLBACK_V4_PATH} || {`)).toBeLessThan(at(`/usr/sbin/ip6tables-restore ${FALLBACK_V6_PATH} || {`));
    expect(at(`/usr/sbin/ip6tables-restore ${FALLBACK_V6_PATH} || {`)).toBeLessThan(at(`/usr/sbin/iptables-restore ${RULES_V4_PATH} || failed="$failed IPv4"`));
    // v4 failing never skips v6: each real load is its own statement.
    expect(at(`/usr/sbin/iptables-restore ${RULES_V4_PATH} || failed="$failed IPv4"\n[ ! -x ${IP6TABLES_RESTORE} ] || /usr/sbin/ip6tables-restore ${RULES_V6_PATH} || failed="$failed IPv6"\n`)).toBeGreaterThan(0);
    // A fallback that fails is replaced by the DROP-only table, inline; the loader notes when that fails too.
    expect(loader).toContain(`  /usr/sbin/iptables-restore <<'TWINWALL_DROP_ONLY' || unfiltered="$unfiltered IPv4"\n${DROP_ONLY_TABLE}TWINWALL_DROP_ONLY\n}`);
    expect(loader).toContain('echo "$who: FAILED to load the host firewall ($action) for:$failed; at boot they keep the fallback');
    expect(loader).toContain('if [ -n "$failed$fallback_failed$missing" ]; then\n  exit 1\n');
  });

  it('enables (and starts) the unit with a command, since write_files cannot', () => {
    expect(doc.runcmd).toEqual([['systemctl', 'enable', '--now', FIREWALL_UNIT]]);
  });

  it('bootcmd runs the same loader with its own copy of every table, once per instance', () => {
    expect(doc.bootcmd).toHaveLength(1);
    const [cmd] = doc.bootcmd;
    expect(cmd.slice(0, 5)).toEqual(['cloud-init-per', 'instance', FIRST_BOOT_SEMAPHORE, '/bin/sh', '-c']);
    const script = cmd[5] as string;
    expect(script).toBe(renderFirstBootScript(LITERAL, 'literal'));
    expect(script).toContain(`/usr/sbin/iptables-restore <<'TWINWALL_FALLBACK_V4' || {\n${FB4}TWINWALL_FALLBACK_V4\n`);
    expect(script).toContain(`/usr/sbin/ip6tables-restore <<'TWINWALL_FALLBACK_V6' || {\n${FB6}TWINWALL_FALLBACK_V6\n`);
    expect(script).toContain(`/usr/sbin/iptables-restore <<'TWINWALL_RULES_V4' || failed="$failed IPv4"\n${V4}TWINWALL_RULES_V4\n`);
    expect(script).toContain(`/usr/sbin/ip6tables-restore <<'TWINWALL_RULES_V6' || failed="$failed IPv6"\n${V6}TWINWALL_RULES_V6\n`);
    expect(script.indexOf('TWINWALL_FALLBACK_V6\n')).toBeLessThan(script.indexOf("<<'TWINWALL_RULES_V4'"));
    expect(script).toContain("who='twinwall (literal)'");
    expect(script).toContain('echo "$who: FAILED to load the host firewall ($action) for:$failed; at boot they keep the fallback');
    expect(script).toContain('echo "$who: host firewall loaded (first boot)"');
    expect(script).not.toContain('/etc/iptables/');
  });

  it('picks a here-document delimiter no table line equals', () => {
    const tricky = `TWINWALL_RULES_V4\nTWINWALL_DROP_ONLY\n${V4}`;
    const script = renderFirstBootScript({ ...LITERAL, v4: tricky });
    expect(script).toContain(`<<'TWINWALL_RULES_V4_1'`);
    expect(script).toContain(`${tricky}TWINWALL_RULES_V4_1\n`);
    expect(script).toContain(`<<'TWINWALL_DROP_ONLY_1'`);
  });

  it('adds a final newline a table lacks, and refuses what is not a table', () => {
    expect(load(renderCloudConfig({ ...LITERAL, v4: V4.trimEnd() })).write_files[0].content).toBe(V4);
    const err = caught(() => renderUserData({ ...LITERAL, v4: '  ' }));
    expect(err.code).toBe(ERROR_CODES.OPTION_INVALID);
    expect(err.message).toContain('the IPv4 table "  " is not iptables-restore text');
    expect(caught(() => renderUserData({ ...LITERAL, v6: V6.replace(/\n/g, '\r\n') })).message).toContain('the IPv6 table contains a carriage return');
    expect(caught(() => renderUserData({ ...LITERAL, fallback: { v4: FB4, v6: '' } })).message).toContain('the IPv6 fallback table "" is not iptables-restore text');
    expect(caught(() => renderUserData(LITERAL, { host: 'two words' })).errorName).toBe('NAME_INVALID');
    expect(caught(() => renderFirstBootScript(LITERAL, 'x; reboot')).errorName).toBe('NAME_INVALID');
  });

  it('lockdown (the default) refuses to go without a fallback; open ships none and says so', () => {
    const err = caught(() => renderUserData({ v4: V4, v6: V6 }));
    expect(err.code).toBe(ERROR_CODES.OPTION_INVALID);
    expect(err.message).toContain('onLoadFailure "lockdown" (the default) needs the fallback tables');
    expect(caught(() => renderUserData(LITERAL, { onLoadFailure: 'open' })).message).toContain('a fallback was given with onLoadFailure "open"');
    expect(caught(() => renderUserData(LITERAL, { onLoadFailure: 'closed' as never })).message).toContain('onLoadFailure "closed" is not "lockdown" or "open"');
    const open = renderUserData({ v4: V4, v6: V6 }, { host: 'literal', onLoadFailure: 'open' }).cloudConfig;
    const files = load(open).write_files.map((f) => f.path);
    expect(files).toEqual([RULES_V4_PATH, RULES_V6_PATH, LOADER_PATH, FIREWALL_UNIT_PATH]);
    expect(open).not.toContain('FALLBACK');
    expect(open).not.toContain('DROP_ONLY');
    expect(open).toContain('at boot they stay unfiltered on the host (onLoadFailure open): only the security group protects them');
    expect(open).toContain('# A family whose table fails to load stays unfiltered on the host (onLoadFailure open).');
  });

  it('is plain below the limit, and base64 round-trips', () => {
    expect(ud.gzipped).toBe(false);
    expect(ud.bytes).toBe(Buffer.byteLength(ud.cloudConfig));
    expect(ud.plainBytes).toBe(ud.bytes);
    expect(Buffer.from(ud.base64, 'base64').toString('utf8')).toBe(ud.cloudConfig);
  });

  it('is byte-stable', () => {
    expect(renderUserData(LITERAL, { host: 'literal' })).toEqual(ud);
  });

  it('golden: literal tables', () => {
    expectGolden('user-data/literal.yaml', ud.cloudConfig);
  });
});

describe('size: gzip only above 16,384 bytes, an error when even gzip does not fit', () => {
  /** Tables whose plain document is exactly `target` bytes (each table line appears twice, the host name three times). */
  function tablesOfSize(target: number): { tables: HostWallTables; host: string } {
    for (const host of ['h', 'hh']) {
      const tables = (n: number) => ({ ...LITERAL, v4: `# ${'p'.repeat(n)}\n${V4}` });
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
    const tables = (n: number) => ({ ...LITERAL, v4: noise(7, n) + V4 });
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
        'Fix: shrink the policy (merge peers into fewer, wider CIDRs; drop roles the host does not play) or split the host; the rules appear twice in the user-data (bootcmd and write_files), the admin rules twice more in the fallbacks.',
    );
    expect(err.value).toEqual({ plainBytes: plain, gzippedBytes: gzBytes(hi) });
    expect(caught(() => renderUserData(tables(hi), { host: 'big' })).message).toContain('TW224 USER_DATA_TOO_LARGE at big: ');
  });
});

describe('address sets (ipset): loaded before the tables, in bootcmd and in the loader alike', () => {
  const SETS = ['create tw4-in-tcp-22 hash:net family inet hashsize 1024 maxelem 65536', 'flush tw4-in-tcp-22', 'add tw4-in-tcp-22 192.0.2.1/32', ''].join('\n');
  const V4SET = V4.replace('COMMIT', '-A INPUT -m set --match-set tw4-in-tcp-22 src -j ACCEPT\nCOMMIT');

  it('without sets nothing about ipset appears anywhere', () => {
    const text = renderUserData(LITERAL).cloudConfig;
    expect(text).not.toContain('ipset');
    expect(renderFirewallUnit()).not.toContain('ipset');
  });

  it('the loader restores the sets after the fallbacks and before the tables; a family matching sets is not loaded when they failed', () => {
    const loader = renderLoader({ tables: { ...LITERAL, v4: V4SET, ipsets: SETS }, mode: 'lockdown', source: 'files' });
    const sets = loader.indexOf(`/usr/sbin/ipset -exist restore -file ${IPSETS_PATH} || { sets=failed; failed="$failed ipsets"; }`);
    expect(sets).toBeGreaterThan(loader.indexOf(FALLBACK_V6_PATH));
    expect(sets).toBeLessThan(loader.indexOf(RULES_V4_PATH));
    expect(loader).toContain(`{ [ "$sets" = ok ] && /usr/sbin/iptables-restore ${RULES_V4_PATH}; } || failed="$failed IPv4"`);
    // IPv6 matches no set: it loads whatever happened to the sets.
    expect(loader).toContain(`\n[ ! -x ${IP6TABLES_RESTORE} ] || /usr/sbin/ip6tables-restore ${RULES_V6_PATH} || failed="$failed IPv6"`);
    // A missing ipset binary fails the sets (loudly, naming what it costs), and skips the restore.
    expect(loader).toContain(`[ -x ${IPSET} ] || { sets=missing; failed="$failed ipsets"; echo "$who: ${IPSET} is MISSING (or not executable): the address sets cannot load, so neither can the IPv4 table, which matches them. Fix: install the ipset package in the image, or choose hostFirewall 'nftables'." >&2; }`);
    expect(loader).toContain(`[ "$sets" = missing ] || /usr/sbin/ipset -exist restore -file ${IPSETS_PATH}`);
  });

  it('write_files holds /etc/iptables/ipsets; bootcmd restores its own copy before either table', () => {
    const doc = load(renderUserData({ ...LITERAL, v4: V4SET, ipsets: SETS }).cloudConfig);
    expect(doc.write_files.map((f) => [f.path, f.permissions])).toEqual([
      [RULES_V4_PATH, '0640'],
      [RULES_V6_PATH, '0640'],
      [FALLBACK_V4_PATH, '0640'],
      [FALLBACK_V6_PATH, '0640'],
      [IPSETS_PATH, '0640'],
      [LOADER_PATH, '0755'],
      [FIREWALL_UNIT_PATH, '0644'],
    ]);
    expect(doc.write_files[4].content).toBe(SETS);
    const script = String(doc.bootcmd[0][5]);
    const sets = script.indexOf("/usr/sbin/ipset -exist restore <<'TWINWALL_IPSETS' || { sets=failed; failed=\"$failed ipsets\"; }");
    expect(sets).toBeGreaterThan(0);
    expect(sets).toBeLessThan(script.indexOf("<<'TWINWALL_RULES_V4'"));
    expect(script).toContain(`\n${SETS}TWINWALL_IPSETS\n`);
  });
});

/** A fixture's user-data as renderHost builds it with the iptables wall (fallback per the policy's onLoadFailure), without a host name. */
function fixtureUserData(name: string) {
  const policy = ROLE_FIXTURES[name]();
  const { iptables, fallback } = renderHost(policy, { hostFirewall: 'iptables' });
  return renderUserData({ ...iptables, ...(fallback === undefined ? {} : { fallback }) }, { onLoadFailure: policy.options.onLoadFailure });
}

describe('golden user-data over the rendered iptables rules', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    const ud = fixtureUserData(name);
    expectGolden(`user-data/${name}.yaml`, ud.cloudConfig);
    expect(ud.bytes).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    const policy = ROLE_FIXTURES[name]();
    const files = load(ud.cloudConfig).write_files;
    expect(files[0].content).toBe(renderIptables(policy).v4);
    if (policy.options.onLoadFailure === 'lockdown') expect(files.find((f) => f.path === FALLBACK_V6_PATH)?.content).toBe(renderFallback(policy).v6);
    else expect(files.some((f) => f.path === FALLBACK_V6_PATH)).toBe(false);
  });
});

/** Every fixture's user-data (plus the literal one) in a temporary directory. */
function writeAll(dir: string): string[] {
  const files: string[] = [];
  const all: [string, string][] = [
    ['literal', renderUserData(LITERAL, { host: 'literal' }).cloudConfig],
    ...Object.keys(ROLE_FIXTURES).map((name): [string, string] => [name, fixtureUserData(name).cloudConfig]),
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
    fs.writeFileSync(file, renderUserData(LITERAL).cloudConfig.replace("permissions: \"0644\"", 'permissions: 644'));
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
      // The loader must exist for verify to accept ExecStart: put the unit's path to it in a copy.
      const loader = path.join(dir, 'twinwall-firewall-load');
      fs.writeFileSync(loader, renderLoader({ tables: LITERAL, mode: 'lockdown', source: 'files' }), { mode: 0o755 });
      fs.writeFileSync(file, renderFirewallUnit().split(LOADER_PATH).join(loader));
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      expect({ status: r.status, complaints: (r.stdout + r.stderr).split('\n').filter((l) => l.includes(FIREWALL_UNIT)) }).toEqual({ status: 0, complaints: [] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeTier('first boot: bootcmd as cloud-init runs it, in a network namespace', [root, onPath('ip'), netns, onPath('iptables-restore'), onPath('ip6tables-restore'), cloudInitPython], () => {
  let lab: BootcmdLab;
  beforeAll(() => {
    lab = bootcmdLab('twud');
  });
  afterAll(() => lab.close());
  const namespace = (tag: string) => lab.namespace(tag);
  /** cloud-init's bootcmd module: shellify the list into a script and run it with /bin/sh. */
  const runBootcmd = (cloudConfig: string, ns: string) => lab.runBootcmd(cloudConfig, ns);

  /** The loaded ruleset, without the header lines that carry versions and dates. */
  function saved(ns: string, tool: 'iptables-save' | 'ip6tables-save'): string {
    return execFileSync('ip', ['netns', 'exec', ns, tool], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
  }

  /** The rules one family has loaded, as `iptables -S` prints them. */
  function rules(ns: string, family: 4 | 6): string {
    return execFileSync('ip', ['netns', 'exec', ns, family === 4 ? 'iptables' : 'ip6tables', '-S'], { encoding: 'utf8' });
  }

  /** What loading `text` on its own gives, in a scratch namespace (the kernel's spelling). */
  function canonical(text: string, family: 4 | 6): string {
    const ns = namespace(`c${family}${lab.made()}`);
    execFileSync('ip', ['netns', 'exec', ns, family === 4 ? 'iptables-restore' : 'ip6tables-restore'], { input: text });
    return rules(ns, family);
  }

  it('loads exactly the sample server tables that the files hold (after the fallbacks)', () => {
    const tables = renderIptables(ROLE_FIXTURES.sample());
    const booted = namespace('b');
    const r = runBootcmd(fixtureUserData('sample').cloudConfig, booted);
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
    const rendering = renderHost(ROLE_FIXTURES.manyAdmins(), { hostFirewall: 'iptables' });
    expect(rendering.iptables.ipsets).toBeDefined();
    const booted = namespace('s');
    const r = runBootcmd(rendering.userData.cloudConfig, booted);
    expect({ status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ status: 0, stdout: 'twinwall (jump): host firewall loaded (first boot)', stderr: '' });
    expect(saved(booted, 'iptables-save')).toContain('-m set --match-set tw4-in-tcp-22 src');
    const members = execFileSync('ip', ['netns', 'exec', booted, 'ipset', 'list', 'tw4-in-tcp-22'], { encoding: 'utf8' });
    expect(members.match(/^192\.0\.2\.\d+$/gm)).toHaveLength(20);
  });

  const BROKEN_V4 = V4.replace('-A INPUT -i lo -j ACCEPT', '-A INPUT -i lo -j NO-SUCH-TARGET');

  it('lockdown: a table that does not load leaves that family its fallback, loads the other, and says so', () => {
    const ns = namespace('f');
    const r = runBootcmd(renderUserData({ ...LITERAL, v4: BROKEN_V4 }, { host: 'broken' }).cloudConfig, ns);
    expect(r.status).toBe(1);
    // iptables-restore's own complaint first, then ours (the line the console shows).
    expect(r.stderr.split('\n').filter((l) => l.startsWith('twinwall'))).toEqual([
      'twinwall (broken): FAILED to load the host firewall (start) for: IPv4; at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall).',
    ]);
    expect(r.stderr).toContain("Chain 'NO-SUCH-TARGET' does not exist");
    expect(rules(ns, 4)).toBe(canonical(FB4, 4));
    expect(rules(ns, 6)).toBe(canonical(V6, 6));
  });

  it('lockdown: an IPv6 table needing a match the tools lack leaves IPv6 its fallback; IPv4 gets its table', () => {
    const ns = namespace('m');
    const needsModule = V6.replace('COMMIT', '-A INPUT -m twinwallnosuchmatch -j ACCEPT\nCOMMIT');
    const r = runBootcmd(renderUserData({ ...LITERAL, v6: needsModule }, { host: 'mod' }).cloudConfig, ns);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('twinwall (mod): FAILED to load the host firewall (start) for: IPv6; at boot they keep the fallback');
    expect(rules(ns, 4)).toBe(canonical(V4, 4));
    expect(rules(ns, 6)).toBe(canonical(FB6, 6));
  });

  it('lockdown: a fallback that fails too leaves the DROP-only table (closed, loopback only), and says so', () => {
    const ns = namespace('d2');
    const r = runBootcmd(renderUserData({ ...LITERAL, v4: BROKEN_V4, fallback: { v4: BROKEN_V4, v6: FB6 } }, { host: 'worse' }).cloudConfig, ns);
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('twinwall'))).toEqual([
      'twinwall (worse): FAILED to load the host firewall (start) for: IPv4; at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall).',
      'twinwall (worse): the fallback FAILED too for: IPv4; IPv4 drops everything but loopback.',
    ]);
    expect(rules(ns, 4)).toBe(canonical(DROP_ONLY_TABLE, 4));
    expect(rules(ns, 6)).toBe(canonical(V6, 6));
  });

  /** What a family holds when nothing was loaded into it: the kernel's defaults. */
  const UNFILTERED = '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n';

  it('lockdown: an iptables-restore that fails every load (the DROP-only table too) leaves IPv4 unfiltered, and says so rather than claiming it drops', () => {
    const ns = namespace('x');
    const stub = lab.failingStub(IPTABLES_RESTORE);
    const r = runBootcmd(swapTool(renderUserData(LITERAL, { host: 'stub' }).cloudConfig, IPTABLES_RESTORE, stub), ns);
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('twinwall'))).toEqual([
      'twinwall (stub): FAILED to load the host firewall (start) for: IPv4; at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall).',
      'twinwall (stub): the fallback FAILED too for: IPv4, and so did the DROP-only table: IPv4 is UNFILTERED on the host, only the security group protects it.',
    ]);
    // The stub ran three times: the fallback, the DROP-only table, the real table.
    expect(r.stderr.split('\n').filter((l) => l.startsWith('iptables-restore (test stub)'))).toHaveLength(3);
    expect(rules(ns, 4)).toBe(UNFILTERED);
    expect(rules(ns, 6)).toBe(canonical(V6, 6));
  });

  it('lockdown: without ip6tables-restore IPv6 loads nothing and says so (one line, the fix); IPv4 gets its fallback, then its table', () => {
    const ns = namespace('n6');
    const absent = lab.absent(IP6TABLES_RESTORE);
    const r = runBootcmd(swapTool(renderUserData(LITERAL, { host: 'no6' }).cloudConfig, IP6TABLES_RESTORE, absent), ns);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1,
      stdout: '',
      stderr: `twinwall (no6): ${absent} is MISSING (or not executable): NO host firewall is loaded for IPv6 (not its table, not even its fallback): at boot only the security group protects it, at a reload it keeps the rules it had. Fix: install the iptables package in the image, or choose hostFirewall 'nftables'.\n`,
    });
    expect(rules(ns, 4)).toBe(canonical(V4, 4));
    expect(rules(ns, 6)).toBe(UNFILTERED);
  });

  it('open: without iptables-restore IPv4 loads nothing and says so; IPv6 gets its table', () => {
    const ns = namespace('n4');
    const absent = lab.absent(IPTABLES_RESTORE);
    const r = runBootcmd(swapTool(renderUserData({ v4: V4, v6: V6 }, { host: 'no4', onLoadFailure: 'open' }).cloudConfig, IPTABLES_RESTORE, absent), ns);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1,
      stdout: '',
      stderr: `twinwall (no4): ${absent} is MISSING (or not executable): NO host firewall is loaded for IPv4: at boot only the security group protects it, at a reload it keeps the rules it had. Fix: install the iptables package in the image, or choose hostFirewall 'nftables'.\n`,
    });
    expect(rules(ns, 4)).toBe(UNFILTERED);
    expect(rules(ns, 6)).toBe(canonical(V6, 6));
  });

  it('lockdown: without ipset the tables that match sets keep their fallback (which needs none), the others load, and it says which', () => {
    const policy = ROLE_FIXTURES.manyAdmins();
    const rendering = renderHost(policy, { hostFirewall: 'iptables' });
    const fallback = renderFallback(policy);
    expect(rendering.iptables.v4).toContain(' --match-set ');
    expect(rendering.iptables.v6).not.toContain(' --match-set ');
    const ns = namespace('ns');
    const absent = lab.absent(IPSET);
    const r = runBootcmd(swapTool(rendering.userData.cloudConfig, IPSET, absent), ns);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      `twinwall (jump): ${absent} is MISSING (or not executable): the address sets cannot load, so neither can the IPv4 table, which matches them. Fix: install the ipset package in the image, or choose hostFirewall 'nftables'.`,
      'twinwall (jump): FAILED to load the host firewall (start) for: ipsets IPv4; at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall).',
      '',
    ]);
    expect(rules(ns, 4)).toBe(canonical(fallback.v4, 4));
    expect(rules(ns, 6)).toBe(canonical(rendering.iptables.v6, 6));
  });

  it('open: a table that does not load leaves that family as the kernel started it (ACCEPT), loads the other, and says so', () => {
    const ns = namespace('o');
    const r = runBootcmd(renderUserData({ v4: BROKEN_V4, v6: V6 }, { host: 'broken', onLoadFailure: 'open' }).cloudConfig, ns);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('twinwall (broken): FAILED to load the host firewall (start) for: IPv4; at boot they stay unfiltered on the host (onLoadFailure open): only the security group protects them');
    expect(rules(ns, 4)).toBe('-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n');
    expect(saved(ns, 'ip6tables-save')).toContain('-A OUTPUT -p ipv6-icmp -j ACCEPT');
  });

  /**
   * The unit's loader reads /etc/iptables; here it reads a folder of its own (the paths are
   * swapped in a copy of the script, nothing else changes), in a fresh namespace.
   */
  function runLoader(tables: HostWallTables, action: string, ns: string, files: Record<string, string>, tool?: { readonly path: string; readonly by: string }) {
    const etc = fs.mkdtempSync(path.join(lab.dir, 'etc-'));
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), content);
    const script = path.join(etc, 'loader.sh');
    const loader = renderLoader({ tables, host: 'unit', mode: 'lockdown', source: 'files' }).split('/etc/iptables/').join(`${etc}/`);
    fs.writeFileSync(script, tool === undefined ? loader : swapTool(loader, tool.path, tool.by));
    return spawnSync('ip', ['netns', 'exec', ns, '/bin/sh', script, action], { encoding: 'utf8' });
  }

  it('the unit\'s loader: start gives each family its fallback, then its table; reload keeps what a family had when its table fails', () => {
    const ns = namespace('u');
    const good = { 'rules.v4': V4, 'rules.v6': V6, 'fallback.v4': FB4, 'fallback.v6': FB6 };
    let r = runLoader(LITERAL, 'start', ns, good);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'twinwall (unit): host firewall loaded (start)\n', stderr: '' });
    expect(rules(ns, 4)).toBe(canonical(V4, 4));
    // A reload whose IPv4 file is broken keeps the IPv4 rules loaded before (no fallback at a reload).
    r = runLoader(LITERAL, 'reload', ns, { ...good, 'rules.v4': BROKEN_V4 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('FAILED to load the host firewall (reload) for: IPv4;');
    expect(rules(ns, 4)).toBe(canonical(V4, 4));
    // The next boot (start) with the broken file: IPv4 is left with its fallback, IPv6 has its table.
    r = runLoader(LITERAL, 'start', ns, { ...good, 'rules.v4': BROKEN_V4 });
    expect(r.status).toBe(1);
    expect(rules(ns, 4)).toBe(canonical(FB4, 4));
    expect(rules(ns, 6)).toBe(canonical(V6, 6));
    expect(runLoader(LITERAL, 'stop', ns, good).status).toBe(2);
  });

  it('the unit\'s loader without iptables-restore: start loads IPv6 only, a reload leaves IPv4 what it had; each says so and fails', () => {
    const ns = namespace('u4');
    const good = { 'rules.v4': V4, 'rules.v6': V6, 'fallback.v4': FB4, 'fallback.v6': FB6 };
    expect(runLoader(LITERAL, 'start', ns, good).status).toBe(0);
    const absent = lab.absent(IPTABLES_RESTORE);
    const line = `twinwall (unit): ${absent} is MISSING (or not executable): NO host firewall is loaded for IPv4 (not its table, not even its fallback): at boot only the security group protects it, at a reload it keeps the rules it had. Fix: install the iptables package in the image, or choose hostFirewall 'nftables'.\n`;
    // A reload changes nothing for IPv4: it keeps its table.
    let r = runLoader(LITERAL, 'reload', ns, good, { path: IPTABLES_RESTORE, by: absent });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: '', stderr: line });
    expect(rules(ns, 4)).toBe(canonical(V4, 4));
    // At boot (a fresh namespace) IPv4 has nothing; IPv6 its fallback, then its table.
    const booted = namespace('u4b');
    r = runLoader(LITERAL, 'start', booted, good, { path: IPTABLES_RESTORE, by: absent });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: '', stderr: line });
    expect(rules(booted, 4)).toBe(UNFILTERED);
    expect(rules(booted, 6)).toBe(canonical(V6, 6));
  });
});
