/**
 * User-data that composes (issue #12): the user's own cloud-init parts (UserDataPart) after the
 * host wall's, in one MIME multi-part document that no later part can switch off.
 *
 * - the value object: what it ships, what it refuses (TW231, with path, value and fix), and that
 *   hostile text survives YAML unchanged;
 * - the document: the wall's part first, deterministic, a boundary no part holds, the 16 KiB limit
 *   counting every part;
 * - cloud-init itself (tier): its own UserDataProcessor and CloudConfigPartHandler read the
 *   document, and the merged config keeps the wall's bootcmd, write_files and runcmd first and
 *   whole under a part that tries to replace them; without twinwall's merge rule the same part
 *   replaces them (which is why the rule is there, and why the checker reports its absence);
 *   `cloud-init schema` accepts every cloud-config part and the merged config;
 * - FilteredHost and attachTo ship the document, and `twinwall check` agrees on it.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { Testing } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { parse, stringify } from 'yaml';
import { FilteredHost } from '../constructs';
import { ERROR_CODES, HostPolicy, Peer, UserDataPart, sshAdmin, webServer } from '../lib';
import { HOST_WALL_PART_FILENAME, MIME_BOUNDARY, USER_DATA_LIMIT_BYTES, USER_PART_MERGE_HOW, composeUserData, renderHost, renderUserData } from '../lib/render';
import { readHostWall, splitMime } from '../lib/check/user-data';
import { checkStacks } from '../lib/check';
import { Prerequisite, describeTier, onPath } from './support/tiers';
import { caught } from './support/caught';
import { BOOT_FIXTURES, BootFixture, fixtureUserData } from './support/boot/fixtures';

const ADMINS = [Peer.ipv4('192.0.2.0/24')];
const POLICY = HostPolicy.compose('web', [webServer(), sshAdmin({ from: ADMINS })]);
const VPC = 'vpc-0123456789abcdef0';
const AMI = 'ami-0123456789abcdef0';

/** Strings YAML, a shell or a MIME parser could misread: each must arrive exactly as given. */
const HOSTILE_STRINGS = [
  'yes',
  'on',
  'off',
  '0x1F',
  '010',
  '1:20',
  '~',
  'null',
  '',
  ' leading space',
  'trailing space ',
  'two\n  lines with  \ntrailing spaces  \n',
  '\ttab first\n',
  'ESC \x1b[31m red',
  'bidi \u202e override',
  'CRLF\r\nline\r\n',
  'NEL \u0085 and LS \u2028',
  `--${MIME_BOUNDARY}`,
  `--${MIME_BOUNDARY}--\n--${MIME_BOUNDARY}\n`,
  '#cloud-boothook',
  'Content-Type: text/cloud-boothook',
  `it's "quoted" \\ backslash`,
  '${aws_instance.x.id} %{ if true }',
  '€ ünïcödé 🔥',
  '- a list?',
  '{ a: mapping? }',
  '&anchor *alias',
  '!!python/object:os.system',
];

const FRIENDLY = UserDataPart.cloudConfig({
  packages: ['nginx'],
  write_files: [{ path: '/etc/myapp/app.conf', content: 'listen 8080\n', permissions: '0644' }],
  bootcmd: [['sh', '-c', 'echo user bootcmd']],
  runcmd: [['systemctl', 'enable', '--now', 'nginx']],
});
const SCRIPT = UserDataPart.shellScript('#!/bin/sh\necho "user script ran"\n');

function mergedOf(document: string) {
  return parse(document, { version: '1.1' }) as Record<string, unknown[]>;
}

describe('UserDataPart', () => {
  it('a cloud-config part ships twinwall\'s append merge rule first, then the config as given', () => {
    expect(FRIENDLY.kind).toBe('cloud-config');
    expect(FRIENDLY.content.startsWith(`#cloud-config\nmerge_how: ${USER_PART_MERGE_HOW}\n`)).toBe(true);
    expect(parse(FRIENDLY.content, { version: '1.1' })).toEqual({
      merge_how: USER_PART_MERGE_HOW,
      packages: ['nginx'],
      write_files: [{ path: '/etc/myapp/app.conf', content: 'listen 8080\n', permissions: '0644' }],
      bootcmd: [['sh', '-c', 'echo user bootcmd']],
      runcmd: [['systemctl', 'enable', '--now', 'nginx']],
    });
    expect(Object.isFrozen(FRIENDLY)).toBe(true);
  });

  it('takes YAML text too, with or without the #cloud-config line, and ships what it means', () => {
    const text = '#cloud-config\n# my comment\npackages: [nginx]\nruncmd:\n  - [systemctl, enable, --now, nginx]\n';
    const a = UserDataPart.cloudConfig(text);
    const b = UserDataPart.cloudConfig(text.replace('#cloud-config\n', ''));
    const c = UserDataPart.cloudConfig({ packages: ['nginx'], runcmd: [['systemctl', 'enable', '--now', 'nginx']] });
    expect(a.content).toBe(c.content);
    expect(b.content).toBe(c.content);
  });

  it('a shell script is shipped exactly', () => {
    expect(SCRIPT.kind).toBe('shell-script');
    expect(SCRIPT.content).toBe('#!/bin/sh\necho "user script ran"\n');
  });

  it('hostile strings (YAML 1.1 booleans and numbers, control characters, boundaries, part headers) come back from the YAML exactly', () => {
    const config = { write_files: HOSTILE_STRINGS.map((content, i) => ({ path: `/srv/app/f${i}`, content })), [HOSTILE_STRINGS[0]]: HOSTILE_STRINGS, nested: { 'key: with colon': { '#': HOSTILE_STRINGS } } };
    const part = UserDataPart.cloudConfig(config);
    expect(parse(part.content, { version: '1.1' })).toEqual({ merge_how: USER_PART_MERGE_HOW, ...config });
    // No raw control, separator or bidi character: PyYAML would read U+0085 and U+2028 as line breaks.
    expect(part.content).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202e]/);
    expect(part.content).toContain('content: "NEL \\u0085 and LS \\u2028"');
  });

  type Refusal = [string, () => unknown, string, RegExp];
  const cfg = (c: Record<string, unknown>) => () => UserDataPart.cloudConfig(c);
  const file = (p: unknown) => cfg({ write_files: [{ path: p, content: 'x' }] });
  const refusals: Refusal[] = [
    ['its own merge_how', cfg({ merge_how: 'dict(replace)+list()+str()' }), 'merge_how', /sets cloud-init's merge rule \(merge_how\)/],
    ['its own merge_type', cfg({ merge_type: 'list(replace)' }), 'merge_type', /merge rule \(merge_type\)/],
    ['cloud_init_modules (drops bootcmd)', cfg({ cloud_init_modules: ['write_files'] }), 'cloud_init_modules', /module list cloud_init_modules/],
    ['cloud_config_modules', cfg({ cloud_config_modules: [] }), 'cloud_config_modules', /module list/],
    ['cloud_final_modules (drops runcmd)', cfg({ cloud_final_modules: ['final_message'] }), 'cloud_final_modules', /module list/],
    ['write_files over rules.v4', file('/etc/iptables/rules.v4'), 'write_files[0].path', /inside \/etc\/iptables\//],
    ['write_files over rules.v6, spelled with ..', file('/etc/iptables/../iptables/rules.v6'), 'write_files[0].path', /inside \/etc\/iptables\//],
    ['a relative path into /etc/iptables (cloud-init runs in /)', file('etc/iptables/fallback.v4'), 'write_files[0].path', /inside \/etc\/iptables\//],
    ['the nftables wall', file('/etc/twinwall/twinwall.nft'), 'write_files[0].path', /inside \/etc\/twinwall\//],
    ['the unit (a mask)', file('/etc/systemd/system/twinwall-firewall.service'), 'write_files[0].path', /loader or unit/],
    ['a drop-in of the unit', file('/etc/systemd/system/twinwall-firewall.service.d/override.conf'), 'write_files[0].path', /named twinwall/],
    ['the loader', file('/usr/local/sbin/twinwall-firewall-load'), 'write_files[0].path', /loader or unit/],
    ['cloud-init\'s configuration (module lists at later boots)', file('/etc/cloud/cloud.cfg.d/99-mine.cfg'), 'write_files[0].path', /cloud-init keeps/],
    ['cloud-init\'s state (the first-boot semaphore)', file('/var/lib/cloud/sem/bootper.twinwall_firewall_first_boot.instance'), 'write_files[0].path', /cloud-init keeps/],
    ['RHEL\'s iptables-services rules', file('/etc/sysconfig/iptables'), 'write_files[0].path', /another loader/],
    ['nftables.service\'s ruleset (flush ruleset)', file('/etc/nftables.conf'), 'write_files[0].path', /another loader/],
    ['the wall\'s first-boot semaphore in bootcmd', cfg({ bootcmd: [['cloud-init-per', 'instance', 'twinwall_firewall_first_boot', 'true']] }), 'bootcmd', /first-boot semaphore "twinwall_firewall_first_boot"/],
    ['a write_files entry without a path', cfg({ write_files: [{ content: 'x' }] }), 'write_files[0].path', /no path/],
    ['write_files that is not a list', cfg({ write_files: { path: '/x' } }), 'write_files', /not a list/],
    ['a boothook (runs before the wall)', () => UserDataPart.cloudConfig('#cloud-boothook\niptables -F\n'), '(text)', /"#cloud-boothook" part, not a cloud-config/],
    ['an #include', () => UserDataPart.cloudConfig('#include\nhttps://example.com/x\n'), '(text)', /"#include" part/],
    ['a JSON patch', () => UserDataPart.cloudConfig('#cloud-config-jsonp\n[]\n'), '(text)', /"#cloud-config-jsonp" part/],
    ['a jinja template', () => UserDataPart.cloudConfig('## template: jinja\n#cloud-config\n'), '(text)', /"##" part/],
    ['a script passed as cloud-config', () => UserDataPart.cloudConfig('#!/bin/sh\nid\n'), '(text)', /a shell script, not a cloud-config/],
    ['duplicate keys', () => UserDataPart.cloudConfig('runcmd: [a]\nruncmd: [b]\n'), '(text)', /not YAML cloud-init reads as twinwall does/],
    ['a Python tag', () => UserDataPart.cloudConfig('x: !!python/object/apply:os.system ["id"]\n'), '(text)', /not YAML cloud-init reads as twinwall does/],
    ['a list, not a mapping', () => UserDataPart.cloudConfig('- a\n- b\n'), '(top)', /not a mapping/],
    ['a Date', cfg({ when: new Date(0) }), 'when', /an object of type Date/],
    ['NaN', cfg({ n: Number.NaN }), 'n', /the number NaN/],
    ['a lone surrogate', cfg({ s: 'a\ud800b' }), 's', /lone UTF-16 surrogate/],
    ['an integer JavaScript has rounded (from YAML text)', () => UserDataPart.cloudConfig('id: 12345678901234567890\n'), 'id', /beyond what JavaScript holds exactly/],
    ['a function', cfg({ f: () => 1 }), 'f', /a function/],
    ['a script without #!', () => UserDataPart.shellScript('echo hi\n'), '(text)', /must start with "#!"/],
    ['a script with a NUL byte', () => UserDataPart.shellScript('#!/bin/sh\n\0'), '(text)', /NUL/],
  ];
  it.each(refusals)('refuses %s: TW231 with where, the value and a fix', (_what, build, where, problem) => {
    const e = caught(build);
    expect(e.code).toBe(ERROR_CODES.USER_DATA_PART_INVALID);
    expect(e.code).toBe('TW231');
    expect(e.path[1]).toBe(where);
    expect(e.message).toMatch(problem);
    expect(e.message).toMatch(/^TW231 USER_DATA_PART_INVALID at UserDataPart\.(cloudConfig|shellScript)\/.+: .+ Fix: .+/);
  });
});

describe('the multi-part document', () => {
  const plain = renderHost(POLICY);
  const composed = renderHost(POLICY, { userDataParts: [FRIENDLY, SCRIPT] });

  it('without user parts the user-data is the host wall\'s #cloud-config alone, byte for byte', () => {
    expect(plain.userData.document).toBe(plain.userData.cloudConfig);
    expect(renderHost(POLICY, { userDataParts: [] }).userData).toEqual(plain.userData);
  });

  it('with parts: MIME multi-part, the host wall\'s part FIRST, then the user\'s in order, named by position', () => {
    const doc = composed.userData.document;
    expect(doc.startsWith(`Content-Type: multipart/mixed; boundary="${MIME_BOUNDARY}"\nMIME-Version: 1.0\n\n--${MIME_BOUNDARY}\n`)).toBe(true);
    expect(composed.userData.cloudConfig).toBe(plain.userData.cloudConfig);
    const parts = splitMime(doc);
    expect(parts.map((p) => [p.type, p.filename])).toEqual([
      ['text/cloud-config', HOST_WALL_PART_FILENAME],
      ['text/cloud-config', 'user-part-02.cfg'],
      ['text/x-shellscript', 'user-part-03.sh'],
    ]);
    expect(parts.map((p) => p.text)).toEqual([plain.userData.cloudConfig, FRIENDLY.content, SCRIPT.content]);
    expect(doc.endsWith(`--${MIME_BOUNDARY}--\n`)).toBe(true);
  });

  it('is byte-stable: no date, no random boundary', () => {
    expect(renderHost(POLICY, { userDataParts: [FRIENDLY, SCRIPT] }).userData.document).toBe(composed.userData.document);
    expect(composed.userData.document).not.toMatch(/Date:|Message-ID|={15}/);
  });

  it('a part holding a line that starts with the boundary gets a boundary it does not hold; non-ASCII parts travel base64; every part reads back exactly', () => {
    const tricky = UserDataPart.shellScript(`#!/bin/sh\ncat <<'EOF'\n--${MIME_BOUNDARY}\n--${MIME_BOUNDARY}-1--\nEOF\n`);
    const unicode = UserDataPart.cloudConfig({ write_files: [{ path: '/srv/x', content: HOSTILE_STRINGS.join('\n') }] });
    const doc = composeUserData(plain.userData.cloudConfig, [tricky, unicode]);
    expect(doc).toContain(`boundary="${MIME_BOUNDARY}-2"`);
    expect(doc).toMatch(/filename="user-part-03\.cfg"/);
    expect(doc).toMatch(/Content-Type: text\/cloud-config; charset="utf-8"\nMIME-Version: 1\.0\nContent-Transfer-Encoding: base64/);
    expect(splitMime(doc).map((p) => p.text)).toEqual([plain.userData.cloudConfig, tricky.content, unicode.content]);
  });

  it('refuses more parts than the checker reads (64 with the wall\'s), so part names sort as cloud-init runs them', () => {
    expect(splitMime(composeUserData('#cloud-config\n', Array.from({ length: 63 }, () => SCRIPT)))).toHaveLength(64);
    expect(caught(() => composeUserData('#cloud-config\n', Array.from({ length: 64 }, () => SCRIPT))).message).toMatch(/^TW231 USER_DATA_PART_INVALID at userDataParts: 64 parts are more than the 63/);
  });

  it('refuses a part that is not a UserDataPart (a hand-made object could carry any merge rule)', () => {
    const e = caught(() => composeUserData('#cloud-config\n', [{ kind: 'cloud-config', content: '#cloud-config\nmerge_how: dict(replace)\n' } as unknown as UserDataPart]));
    expect(e.message).toMatch(/^TW231 USER_DATA_PART_INVALID at userDataParts\[0\]: .* is not a UserDataPart\. Fix: build each part with UserDataPart\.cloudConfig/);
  });

  it('the checker reads it: the host wall (the default, nftables), no finding', () => {
    const wall = readHostWall(composed.userData.document);
    expect(wall.problems).toEqual([]);
    expect(wall.nftables?.text).toBe(plain.nftables?.text);
    expect(wall.tables[4]?.text).toBe(plain.nftables?.text);
    expect(wall.text).toBe(composed.userData.document);
  });

  it('the checker reads it: the iptables host wall\'s tables, no finding', () => {
    const iptables = renderHost(POLICY, { hostFirewall: 'iptables', userDataParts: [FRIENDLY, SCRIPT] });
    const wall = readHostWall(iptables.userData.document);
    expect(wall.problems).toEqual([]);
    expect(wall.nftables).toBeUndefined();
    expect(wall.tables[4]?.text).toBe(iptables.iptables.v4);
    expect(wall.tables[6]?.text).toBe(iptables.iptables.v6);
    expect(wall.text).toBe(iptables.userData.document);
  });
});

describe('size: the 16 KiB limit counts the whole document', () => {
  const small = { v4: '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\nCOMMIT\n', v6: '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\nCOMMIT\n' };
  const host = renderUserData(small, { onLoadFailure: 'open' });

  it('a part that takes the document over 16,384 bytes makes it gzip-compressed, though the wall alone fits', () => {
    expect(host.gzipped).toBe(false);
    const script = UserDataPart.shellScript(`#!/bin/sh\n${'echo "a line of the user\'s own script"\n'.repeat(Math.ceil(USER_DATA_LIMIT_BYTES / 36))}`);
    const ud = renderUserData(small, { onLoadFailure: 'open', userDataParts: [script] });
    expect(ud.plainBytes).toBe(Buffer.byteLength(ud.document));
    expect(ud.plainBytes).toBeGreaterThan(USER_DATA_LIMIT_BYTES);
    expect(ud.gzipped).toBe(true);
    expect(gunzipSync(Buffer.from(ud.base64, 'base64')).toString('utf8')).toBe(ud.document);
  });

  it('an incompressible part beyond the limit is TW224, naming the parts\' share', () => {
    // Deterministic incompressible text: base64 of a SHA-256 chain.
    let seed = Buffer.from('twinwall');
    const chunks: string[] = [];
    for (let i = 0; i < 800; i++) {
      seed = require('crypto').createHash('sha256').update(seed).digest();
      chunks.push(seed.toString('base64'));
    }
    const e = caught(() => renderUserData(small, { onLoadFailure: 'open', userDataParts: [UserDataPart.shellScript(`#!/bin/sh\n: '${chunks.join('\n')}'\n`)] }));
    expect(e.errorName).toBe('USER_DATA_TOO_LARGE');
    expect(e.message).toMatch(/the user-data is \d+ bytes plain \(your 1 part\(s\) take \d+ bytes of it plain\) and \d+ bytes gzip-compressed/);
    expect(e.message).toMatch(/Move large files of your own parts into the image/);
  });
});

const cloudInitPython: Prerequisite = {
  name: 'cloud-init python modules',
  check: () => (spawnSync('/usr/bin/python3', ['-c', 'import cloudinit.user_data, cloudinit.handlers.cloud_config'], { stdio: 'pipe' }).status === 0 ? undefined : 'python3 cannot import cloudinit'),
};

interface CloudInitView {
  readonly parts: { type: string; filename: string; text: string }[];
  readonly merged: Record<string, unknown[]> | null;
  readonly warnings: string[];
}

/** The document through cloud-init's own user-data processing and cloud-config merging. */
function throughCloudInit(blob: Buffer | string): CloudInitView {
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'support', 'cloud-init-merge.py')], { input: blob, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`cloud-init-merge.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as CloudInitView;
}

/** A MIME document as a careless hand (or another tool) would write it: no merge rule on the user part. */
function handMade(wall: string, userPart: string, headers = ''): string {
  const b = 'HAND-MADE';
  return [`Content-Type: multipart/mixed; boundary="${b}"`, 'MIME-Version: 1.0', '', `--${b}`, 'Content-Type: text/cloud-config', '', wall, `--${b}`, `Content-Type: text/cloud-config${headers}`, '', userPart, `--${b}--`, ''].join('\n');
}

describeTier('cloud-init merges the parts (its own code)', [cloudInitPython, onPath('cloud-init')], () => {
  const plain = renderHost(POLICY);
  const wall = mergedOf(plain.userData.cloudConfig);
  /** A user part that tries what a hostile (or careless) one would: its own bootcmd, write_files and runcmd lists. */
  const replacing = { bootcmd: [['sh', '-c', 'iptables -F; iptables -P INPUT ACCEPT']], write_files: [{ path: '/etc/motd', content: 'hello\n' }], runcmd: [['systemctl', 'disable', 'twinwall-firewall.service']] };
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-parts-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('sees the parts in order and types them as twinwall does (gzip and all, as EC2 hands it over), and logs no warning', () => {
    const composed = renderHost(POLICY, { userDataParts: [FRIENDLY, SCRIPT] }).userData;
    for (const blob of [composed.document, Buffer.from(composed.base64, 'base64'), require('zlib').gzipSync(composed.document)]) {
      const view = throughCloudInit(blob);
      expect(view.parts).toEqual(splitMime(composed.document).map((p) => ({ type: p.type, filename: p.filename, text: p.text })));
      expect(view.warnings).toEqual([]);
    }
  });

  it('the boot tier\'s user-parts fixture, as booted (gzip): the wall\'s lists first and whole, the user\'s runcmd after the unit is enabled, no warning', () => {
    const fixture = BOOT_FIXTURES.find((f) => f.name === 'user-parts') as BootFixture;
    const text = fs.readFileSync(fixture.file, 'utf8');
    const view = throughCloudInit(fixtureUserData(fixture, text));
    expect(view.warnings).toEqual([]);
    const sampleWall = mergedOf(splitMime(text)[0].text);
    const m = view.merged as Record<string, unknown[]>;
    expect(m.bootcmd).toEqual(sampleWall.bootcmd);
    expect(m.write_files).toEqual([...sampleWall.write_files, { path: '/etc/user-part-fixture/hello.txt', content: "written by the user's cloud-config part\n", permissions: '0644' }]);
    expect(m.runcmd[0]).toEqual(['systemctl', 'enable', '--now', 'twinwall-firewall.service']);
    expect(m.runcmd).toHaveLength(2);
    // cloud-init runs its scripts folder in name order: runcmd (the unit enabled), then user-part-03.sh.
    expect(view.parts.map((p) => p.filename)).toEqual(['twinwall-host-wall.cfg', 'user-part-02.cfg', 'user-part-03.sh']);
    expect(['runcmd', 'user-part-03.sh'].sort()).toEqual(['runcmd', 'user-part-03.sh']);
  });

  it('keeps the host wall\'s bootcmd, write_files and runcmd first and whole; the user\'s lists follow', () => {
    const view = throughCloudInit(renderHost(POLICY, { userDataParts: [FRIENDLY, UserDataPart.cloudConfig(replacing), SCRIPT] }).userData.document);
    const m = view.merged as Record<string, unknown[]>;
    expect(m.bootcmd).toEqual([...wall.bootcmd, ['sh', '-c', 'echo user bootcmd'], ...replacing.bootcmd]);
    expect(m.write_files).toEqual([...wall.write_files, { path: '/etc/myapp/app.conf', content: 'listen 8080\n', permissions: '0644' }, ...replacing.write_files]);
    expect(m.runcmd).toEqual([...wall.runcmd, ['systemctl', 'enable', '--now', 'nginx'], ...replacing.runcmd]);
    expect(m.packages).toEqual(['nginx']);
    expect(m).not.toHaveProperty('merge_how');
  });

  it('control: the same part WITHOUT twinwall\'s merge rule replaces the wall\'s lists (cloud-init\'s default), and the checker reports it', () => {
    const userText = `#cloud-config\n${stringify(replacing, { version: '1.1' })}`;
    const doc = handMade(plain.userData.cloudConfig, userText);
    const m = throughCloudInit(doc).merged as Record<string, unknown[]>;
    expect(m.bootcmd).toEqual(replacing.bootcmd);
    expect(m.write_files).toEqual(replacing.write_files);
    expect(JSON.stringify(m)).not.toContain('twinwall_firewall_first_boot');
    expect(readHostWall(doc).problems).toContainEqual(expect.stringMatching(/^part 2 merge_how: the part has no merge rule, so cloud-init's default \(dict\(replace\)\+list\(\)\+str\(\)\) replaces the host wall's bootcmd/));
    // A Merge-Type header does the same; the checker refuses it as well.
    const header = handMade(plain.userData.cloudConfig, userText, '\nMerge-Type: dict(replace)+list()+str()');
    expect((throughCloudInit(header).merged as Record<string, unknown[]>).bootcmd).toEqual(replacing.bootcmd);
    expect(readHostWall(header).problems).toContainEqual(expect.stringMatching(/sets its merge rule in a merge-type header/));
  });

  it('control: a part\'s own merge_how is what cloud-init obeys (so twinwall refuses it and sets its own)', () => {
    const doc = handMade(plain.userData.cloudConfig, `#cloud-config\nmerge_how: dict(replace)+list()+str()\n${stringify(replacing, { version: '1.1' })}`);
    expect((throughCloudInit(doc).merged as Record<string, unknown[]>).bootcmd).toEqual(replacing.bootcmd);
    expect(readHostWall(doc).problems).toContainEqual(expect.stringMatching(/merge_how: the part sets merge_how "dict\(replace\)\+list\(\)\+str\(\)", not twinwall's/));
  });

  it('hostile strings in a part reach cloud-init (PyYAML) exactly as given', () => {
    const config = { write_files: HOSTILE_STRINGS.map((content, i) => ({ path: `/srv/app/f${i}`, content })) };
    const m = throughCloudInit(renderHost(POLICY, { userDataParts: [UserDataPart.cloudConfig(config)] }).userData.document).merged as Record<string, unknown[]>;
    // PyYAML reads the text of a part; cloud-init's own scalars are these strings exactly.
    expect(m.write_files.slice(wall.write_files.length)).toEqual(config.write_files);
  });

  it('cloud-init schema accepts every cloud-config part and the merged config (22.4\'s schema reads no MIME, so each is checked alone)', () => {
    const composed = renderHost(POLICY, { userDataParts: [FRIENDLY, UserDataPart.cloudConfig(replacing), SCRIPT] }).userData.document;
    const texts = [
      ...splitMime(composed)
        .filter((p) => p.type === 'text/cloud-config')
        .map((p) => p.text),
      `#cloud-config\n${stringify(throughCloudInit(composed).merged, { version: '1.1', lineWidth: 0 })}`,
    ];
    texts.forEach((text, i) => {
      const file = path.join(dir, `part-${i}.yaml`);
      fs.writeFileSync(file, text);
      const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
      expect({ i, status: r.status, out: r.stdout.trim(), err: r.stderr.trim() }).toEqual({ i, status: 0, out: `Valid cloud-config: ${file}`, err: '' });
    });
  });
});

describe('FilteredHost and attachTo ship the parts, and check agrees', () => {
  const roles = () => [webServer(), sshAdmin({ from: ADMINS })];
  let hosts: FilteredHost[] = [];
  const tf = JSON.parse(
    Testing.synthScope((s: Construct) => {
      const own = new FilteredHost(s, 'own', { vpcId: VPC, roles: roles(), userDataParts: [FRIENDLY, SCRIPT], instance: { ami: AMI, instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' } });
      const attached = new FilteredHost(s, 'attached', { vpcId: VPC, roles: roles(), userDataParts: [SCRIPT] });
      attached.attachTo(new Instance(s, 'attached-instance', { ami: AMI, instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' }));
      const group = new FilteredHost(s, 'group', { vpcId: VPC, roles: roles(), userDataParts: [FRIENDLY] });
      group.attachTo(new LaunchTemplate(s, 'group-template', { imageId: AMI, instanceType: 't3.micro' }));
      hosts = [own, attached, group];
    }),
  );
  const decode = (b64: string) => {
    const raw = Buffer.from(b64, 'base64');
    return (raw[0] === 0x1f ? gunzipSync(raw) : raw).toString('utf8');
  };

  it('user_data_base64 (and a launch template\'s user_data) is the multi-part document, the wall\'s part first', () => {
    const [own, attached, group] = hosts;
    const instances = Object.values(tf.resource.aws_instance as Record<string, { user_data_base64: string }>);
    expect(instances.map((i) => decode(i.user_data_base64)).sort()).toEqual([own.rendering.userData.document, attached.rendering.userData.document].sort());
    const template = Object.values(tf.resource.aws_launch_template as Record<string, { user_data: string }>)[0];
    expect(decode(template.user_data)).toBe(group.rendering.userData.document);
    for (const h of hosts) expect(splitMime(h.rendering.userData.document)[0].text).toBe(h.cloudConfig);
  });

  it('twinwall check agrees on every host, with no finding', () => {
    const report = checkStacks([{ name: 'stack', json: tf }]);
    expect(report.problems).toEqual([]);
    expect(report.hosts.map((h) => [h.label, h.findings.map((f) => f.text)])).toEqual([
      ['stack/attached', []],
      ['stack/group', []],
      ['stack/own', []],
    ]);
  });

  it('refuses, at the host\'s path, parts that are not UserDataParts and parts carrying a Terraform token', () => {
    const fake = caught(() => Testing.synthScope((s: Construct) => new FilteredHost(s, 'h', { vpcId: VPC, roles: roles(), userDataParts: ['#cloud-config\n' as unknown as UserDataPart] })));
    expect(fake.message).toMatch(/^TW231 USER_DATA_PART_INVALID at stack\/h\/userDataParts\[0\]: /);
    const token = caught(() =>
      Testing.synthScope((s: Construct) => {
        const i = new Instance(s, 'i', { ami: AMI, instanceType: 't3.micro' });
        return new FilteredHost(s, 'h', { vpcId: VPC, roles: roles(), userDataParts: [UserDataPart.shellScript(`#!/bin/sh\necho ${i.id}\n`)] });
      }),
    );
    expect(token.errorName).toBe('UNRESOLVED_TOKEN');
    expect(token.message).toMatch(/userDataParts text/);
  });
});
