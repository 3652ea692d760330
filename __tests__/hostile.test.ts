/**
 * Hostile input (issue #13, reproductions 3–5): artefacts, logs and names written by someone
 * with commit rights who wants the tooling to agree, hang, crash, or print what they choose.
 * Every case must end in a finding, exit 2 (one line naming the file and the JSON path) or a
 * synth error — never agreement, a hang, a crash or a stack trace.
 *
 * - identity: tags cannot fake a host; renames are renames and widening across them is seen; a
 *   new host's egress beyond its VPC is widened egress;
 * - bounded, typed input: gzip bombs in user-data, /dev/zero, FIFOs, oversized files, every
 *   wrong JSON shape (and a property over random ones);
 * - safe output: Markdown (report, diff, learn) parsed with the CommonMark reference parser has
 *   no HTML, heading, link, image or code block the input put there, no @mention or bare URL,
 *   tables keep their columns, Mermaid stays one diagram; terminal output has no raw ESC, CR,
 *   backspace or bidi override; renderers refuse names that would run a command.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { Construct } from 'constructs';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { FilteredHost } from '../constructs';
import { Cidr, Flow, HostPolicy, Peer, Port, TwinwallError, customRole, dnsClient, mailServer, ntpClient, sshAdmin, webServer } from '../lib';
import { MIME_BOUNDARY, USER_PART_MERGE_HOW, UserDataPart, renderFirstBootScript, renderHost, renderIpsets, renderIptables, renderNftables } from '../lib/render';
import { readHostWall } from '../lib/check/user-data';
import { StackInput, USER_DATA_DECODED_MAX, checkStacks, terraformJson } from '../lib/check';
import { buildReport, diffMarkdown, diffStacks, reportMarkdown } from '../lib/report';
import { mdCode, mdFence, mdText, mermaidLabel } from '../lib/markdown';
import { terminalText } from '../lib/terminal';
import { MAX_ARTEFACT_BYTES, UsageError, readRegularFile } from '../cli/artefacts';
import { main } from '../cli/main';
import { Json, clone, editTable, editUserData, readStacks, resourceNamed, synthExample, writeStacks } from './support/artefacts';
import { runReviewCli, synthStack, cleanUp as cleanUpReview } from './support/review';
import { caught } from './support/caught';
import { expectMermaidParses } from './support/mermaid';
import { doubleBomb, innerBomb } from './support/bombs';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const commonmark = require('commonmark') as { Parser: new () => { parse(text: string): MdNode } };

interface MdNode {
  type: string;
  literal: string | null;
  info: string | null;
  level: number;
  firstChild: MdNode | null;
  next: MdNode | null;
}

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };

const made: string[] = [];
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  cleanUpReview();
});

/** The real command line, in process: exit code and both streams. */
async function run(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** Exit 2 with one line on stderr, no stack trace, nothing on stdout. */
function expectUsage(r: { code: number; out: string; err: string }, ...fragments: string[]): void {
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err.split('\n').filter((l) => l !== '')).toHaveLength(1);
  expect(r.err).toMatch(/^twinwall: /);
  expect(r.err).not.toMatch(/\n\s+at |internal error/);
  for (const f of fragments) expect(r.err).toContain(f);
}

function writeJson(json: unknown, name = 'stack'): string {
  const dir = tempDir('twinwall-hostile-');
  fs.mkdirSync(path.join(dir, 'stacks', name), { recursive: true });
  const file = path.join(dir, 'stacks', name, 'cdk.tf.json');
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

// ---------------------------------------------------------------------------------------------
// identity (reproduction 3)

const resolvers = () => dnsClient({ resolvers: [Peer.ipv4('10.0.0.2/32')] });
const https443 = () => customRole('api', [Flow.egress(Port.tcp(443), Peer.anyIpv4(), 'call the payment API')]);

describe('identity: tags cannot fake a host, renames are seen', () => {
  const base = synthStack((scope) => {
    new FilteredHost(scope, 'mail', { vpcId: VPC, instance: INSTANCE, roles: [mailServer(), resolvers()] });
  });

  it.each([
    ['tags', { tags: { 'twinwall:host': 'web' } }],
    ['tags', { tags: { 'TwinWall:roles': 'webServer' } }],
    ['instance.tags', { instance: { ...INSTANCE, tags: { 'twinwall:lint:TWL002': 'accepted' } } }],
  ] as const)('a user %s key "twinwall:…" is a synth error naming the path, the key and the fix', (where, extra) => {
    const err = caught(() =>
      synthStack((scope) => {
        new FilteredHost(scope, 'mail', { vpcId: VPC, instance: INSTANCE, roles: [mailServer()], ...extra });
      }),
    );
    expect(err.code).toBe('TW225');
    expect(err.errorName).toBe('TAG_RESERVED');
    expect(err.message).toMatch(new RegExp(`TW225 TAG_RESERVED at (\\w+/)?mail/${where.replace('.', '\\.')}: `));
    expect(err.message).toMatch(/the tag key "twinwall:[a-z:0-9]+" is reserved/i);
    expect(err.message).toContain('Fix: rename the tag');
  });

  it('renaming a host while adding tcp/443 to any IPv4 is a rename with widened egress (exit 1, naming host, port and destination)', async () => {
    const head = synthStack((scope) => {
      new FilteredHost(scope, 'mail', { name: 'relay', vpcId: VPC, instance: INSTANCE, roles: [mailServer(), resolvers(), https443()] });
    });
    const d = diffStacks([base], [head]);
    expect(d.hosts.map((h) => `${h.name} ${h.status} ${h.renamedFrom ?? ''}`)).toEqual(['relay changed mail']);
    expect(d.summary.widenedEgress).toBe(true);
    expect(d.hosts[0].flows.filter((f) => f.risk === 'high').map((f) => f.flow)).toEqual(['egress tcp/443 to any IPv4']);
    expect(diffMarkdown(d)).toContain('— **renamed** from `mail`');
    const r = await runReviewCli(['diff', writeStacksDir([base]), writeStacksDir([head]), '--fail-on', 'widened-egress']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('stack/relay (renamed from mail): added egress tcp/443 to any IPv4');
  });

  it('a hand-edited twinwall:host tag does not hide an added egress rule: same resource address, same host', () => {
    const head = clone(base) as StackInput & { json: Json };
    const [name, instance] = resourceNamed(head.json, 'aws_instance', 'mail_Instance');
    instance.tags['twinwall:host'] = 'web';
    const [, rule] = resourceNamed(head.json, 'aws_vpc_security_group_egress_rule', 'mail_egress-tcp-25-to-0-0-0-0-0');
    head.json.resource.aws_vpc_security_group_egress_rule.forged = { ...rule, from_port: 443, to_port: 443, description: 'webServer: https - serving web pages over TLS' };
    const d = diffStacks([base], [head]);
    expect(d.hosts).toHaveLength(1);
    expect(d.hosts[0]).toMatchObject({ name: 'web', renamedFrom: 'mail', address: `aws_instance.${name}`, status: 'changed' });
    expect(d.summary.widenedEgress).toBe(true);
    expect(d.hosts[0].flows.map((f) => `${f.change} ${f.walls.join('+')} ${f.flow}`)).toContain('added network egress tcp/443 to any IPv4');
  });

  it('a new construct id (a new resource address) with the old name is a new host whose egress beyond its VPC is widened', async () => {
    const head = synthStack((scope) => {
      new FilteredHost(scope, 'mail2', { name: 'mail', vpcId: VPC, instance: INSTANCE, roles: [mailServer(), resolvers(), https443()] });
    });
    const d = diffStacks([base], [head]);
    expect(d.hosts.map((h) => `${h.name} ${h.status}`)).toEqual(['mail added', 'mail removed']);
    expect(d.summary.widenedEgress).toBe(true);
    const added = d.hosts.find((h) => h.status === 'added');
    expect(added?.flows.map((f) => f.flow)).toEqual(['egress tcp/25 to any IPv6', 'egress tcp/25,443 to any IPv4', 'egress tcp/53 + udp/53 to 10.0.0.2/32']);
    expect(added?.flows.every((f) => f.risk === 'high' && f.reasons[0] === 'new host: its VPC is not in the artefacts, so every destination counts')).toBe(true);
    const r = await runReviewCli(['diff', writeStacksDir([base]), writeStacksDir([head]), '--fail-on', 'widened-egress']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('stack/mail (new host): added egress tcp/25,443 to any IPv4');
  });

  describe('a new host in a VPC the stack defines', () => {
    const inVpc = (build: (scope: Construct, vpcId: string) => void) =>
      synthStack((scope) => {
        const vpc = new Vpc(scope, 'vpc', { cidrBlock: '10.0.0.0/16' });
        build(scope, vpc.id);
      });
    const empty = inVpc(() => undefined);

    it('egress inside the VPC (and the link-local services) is not widening', () => {
      const head = inVpc((scope, vpcId) => {
        new FilteredHost(scope, 'db', { vpcId, instance: INSTANCE, roles: [resolvers(), ntpClient(), customRole('replica', [Flow.egress(Port.tcp(5432), Peer.ipv4('10.0.1.0/24'), 'replicate to the standby')])] });
      });
      const d = diffStacks([empty], [head]);
      expect(d.hosts.map((h) => `${h.name} ${h.status} ${h.flows.length}`)).toEqual(['db added 0']);
      expect(d.summary.widenedEgress).toBe(false);
    });

    it('egress beyond it is widening, and says what the VPC is', () => {
      const head = inVpc((scope, vpcId) => {
        new FilteredHost(scope, 'db', { vpcId, instance: INSTANCE, roles: [resolvers(), https443()] });
      });
      const d = diffStacks([empty], [head]);
      expect(d.summary.widenedEgress).toBe(true);
      expect(d.hosts[0].flows.map((f) => `${f.flow}: ${f.reasons[0]}`)).toEqual(['egress tcp/443 to any IPv4 except 10.0.0.0/16: new host: its VPC aws_vpc.vpc is 10.0.0.0/16']);
    });

    it('a new host in audit mode, or with metadata open to every user, is high risk', () => {
      const head = inVpc((scope, vpcId) => {
        new FilteredHost(scope, 'db', { vpcId, instance: INSTANCE, roles: [resolvers()], audit: true, instanceMetadata: 'all-users' });
      });
      const d = diffStacks([empty], [head]);
      expect(d.hosts[0].settings.map((s) => `${s.setting} ${s.risk}`)).toEqual(['audit-mode high', 'instance-metadata high']);
      expect(d.summary.widenedEgress).toBe(true);
    });
  });
});

function writeStacksDir(stacks: readonly StackInput[]): string {
  const dir = writeStacks(stacks);
  made.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// bounded, typed input (reproduction 4)

let example: string;
let staging: Json;
beforeAll(() => {
  // The iptables wall: the cases below edit its tables in the user-data.
  example = synthExample({ hostFirewall: 'iptables' });
  made.push(example);
  staging = readStacks(example).find((s) => s.name === 'staging')?.json as Json;
}, 60000);

describe('bounded input', () => {
  it.each([
    ['gzip around gz+b64 (12 KB)', doubleBomb],
    ['gz+b64 inside a plain document', innerBomb],
  ])('a decompression bomb in user-data (%s) is a finding naming the 1 MiB bound, never agreement', async (_what, bomb) => {
    const tf = clone(staging);
    const [, instance] = resourceNamed(tf, 'aws_instance', 'sample_Instance');
    instance.user_data_base64 = bomb();
    expect(Buffer.from(instance.user_data_base64, 'base64').length).toBeLessThan(1024 * 1024);
    const file = writeJson(tf, 'staging');
    const r = await run(['check', file, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/staging\/sample: host wall artefact: (the user-data|write_files \/etc\/iptables\/rules.v4: its content) decompresses to more than \d+ bytes; twinwall decodes at most 1 MiB per user-data/);
    expect(r.out).not.toMatch(/^staging\/sample .*the walls agree/m);
    const report = await run(['report', file, '--format', 'json']);
    expect(report.code).toBe(0);
    const sample = JSON.parse(report.out).stacks[0].hosts.find((h: { name: string }) => h.name === 'sample');
    expect(sample.consistency.agree).toBe(false);
    expect(USER_DATA_DECODED_MAX).toBe(1024 * 1024);
  });

  it('cdk.tf.json symlinked to /dev/zero is exit 2 at once, naming the file', async () => {
    const dir = tempDir('twinwall-zero-');
    fs.mkdirSync(path.join(dir, 'stacks', 'x'), { recursive: true });
    const file = path.join(dir, 'stacks', 'x', 'cdk.tf.json');
    fs.symlinkSync('/dev/zero', file);
    for (const cmd of ['check', 'report']) expectUsage(await run([cmd, dir]), `${file} is a character device, not a regular cdk.tf.json`);
    expectUsage(await run(['diff', example, dir]), 'is a character device');
    expectUsage(await run(['check', file]), 'is a character device');
  });

  it('a FIFO (as cdk.tf.json, or as the directory argument) is exit 2 without blocking', async () => {
    const dir = tempDir('twinwall-fifo-');
    fs.mkdirSync(path.join(dir, 'stacks', 'x'), { recursive: true });
    const fifo = path.join(dir, 'stacks', 'x', 'cdk.tf.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectUsage(await run(['check', dir]), `${fifo} is a FIFO, not a regular cdk.tf.json`);
    expectUsage(await run(['report', fifo]), 'is a FIFO');
    expectUsage(await run(['learn', '--from-kernel-log', path.join(__dirname, 'fixtures', 'learn', 'dmesg-audit.log'), '--against', dir]), 'is a FIFO');
  });

  it('a cdk.tf.json larger than the read limit is exit 2 without reading it', async () => {
    const file = writeJson({});
    fs.truncateSync(file, MAX_ARTEFACT_BYTES + 1); // sparse: costs no disk
    expectUsage(await run(['check', file]), `is ${MAX_ARTEFACT_BYTES + 1} bytes, more than the ${MAX_ARTEFACT_BYTES} bytes twinwall reads`);
  });

  it('a regular file longer than its stat says (one of /proc) is read to its end, and never past the limit', () => {
    const proc = '/proc/self/maps'; // a regular file of size 0, some kilobytes long
    if (!fs.existsSync(proc)) return; // not Linux: nothing of this kind to read
    expect(fs.statSync(proc).size).toBe(0);
    const text = readRegularFile(proc, MAX_ARTEFACT_BYTES).toString('latin1');
    expect(text.length).toBeGreaterThan(100);
    expect(text.endsWith('\n')).toBe(true);
    expect(() => readRegularFile(proc, 100)).toThrow(new UsageError(`${proc} is more than the 100 bytes twinwall reads`));
    const file = path.join(tempDir('twinwall-read-'), 'exact');
    fs.writeFileSync(file, 'x'.repeat(100));
    expect(readRegularFile(file, 100).toString()).toBe('x'.repeat(100));
    fs.writeFileSync(file, 'x'.repeat(101));
    expect(() => readRegularFile(file, 100)).toThrow(new UsageError(`${file} is 101 bytes, more than the 100 bytes twinwall reads`));
  });
});

describe('typed input: every wrong JSON shape is exit 2 naming the file and the JSON path', () => {
  const small = () => clone(staging);
  const first = (tf: Json, type: string) => Object.keys(tf.resource[type])[0];
  const cases: [string, (tf: Json) => Json, string][] = [
    ['an array document', () => [1, 2], '$ is an array, expected an object (a Terraform JSON document)'],
    ['a string document', () => 'x', '$ is a string, expected an object'],
    ['a null document', () => null, '$ is null, expected an object'],
    ['resource: null', (tf) => ({ ...tf, resource: null }), '$.resource is null, expected an object'],
    ['resource: []', (tf) => ({ ...tf, resource: [] }), '$.resource is an array, expected an object'],
    ['aws_instance: null', (tf) => ((tf.resource.aws_instance = null), tf), '$.resource.aws_instance is null, expected an object'],
    ['aws_instance: []', (tf) => ((tf.resource.aws_instance = []), tf), '$.resource.aws_instance is an array, expected an object'],
    ['an instance: null', (tf) => ((tf.resource.aws_instance = { x: null }), tf), '$.resource.aws_instance.x is null, expected an object'],
    ['an instance: 5', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')] = 5), tf), 'is a number, expected an object'],
    ['tags: []', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].tags = []), tf), '.tags is an array, expected an object (or a string expression)'],
    ['a tag value {}', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].tags.Name = {}), tf), '.tags.Name is an object, expected a string, number or boolean'],
    ['vpc_security_group_ids: {}', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].vpc_security_group_ids = {}), tf), '.vpc_security_group_ids is an object, expected a list'],
    ['vpc_security_group_ids: [5]', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].vpc_security_group_ids = [5]), tf), '.vpc_security_group_ids[0] is a number, expected a string'],
    ['user_data_base64: {}', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].user_data_base64 = {}), tf), '.user_data_base64 is an object, expected a string'],
    ['metadata_options: "x"', (tf) => ((tf.resource.aws_instance[first(tf, 'aws_instance')].metadata_options = 'x'), tf), '.metadata_options is a string, expected an object or a list of objects'],
    ['cidr_ipv4: 5', (tf) => ((tf.resource.aws_vpc_security_group_egress_rule[first(tf, 'aws_vpc_security_group_egress_rule')].cidr_ipv4 = 5), tf), '.cidr_ipv4 is a number, expected a string'],
    ['from_port: []', (tf) => ((tf.resource.aws_vpc_security_group_egress_rule[first(tf, 'aws_vpc_security_group_egress_rule')].from_port = []), tf), '.from_port is an array, expected a number'],
    ['inline ingress: [null]', (tf) => ((tf.resource.aws_security_group[first(tf, 'aws_security_group')].ingress = [null]), tf), '.ingress[0] is null, expected an object'],
    ['inline ingress: {}', (tf) => ((tf.resource.aws_security_group[first(tf, 'aws_security_group')].ingress = {}), tf), '.ingress is an object, expected a list'],
    ['a resource name Terraform refuses, quoted', (tf) => ((tf.resource.aws_instance['we\nird'] = {}), tf), '$.resource.aws_instance["we\\nird"] is not a Terraform name'],
    ['a resource type Terraform refuses', (tf) => ((tf.resource['aws instance'] = {}), tf), '$.resource["aws instance"] is not a Terraform name'],
  ];

  it.each(cases)('%s', async (_what, mutate, message) => {
    const file = writeJson(mutate(small()), 'staging');
    for (const args of [['check', file], ['report', file], ['diff', example, file], ['explain', file, 'sample', 'egress', 'tcp/25', '192.0.2.1']]) {
      const r = await run(args);
      expectUsage(r, `${file}: `, message, 'TW291 ARTEFACT_SHAPE');
    }
  });

  it('what only plan time knows (dynamic blocks, count, a rule type that is neither ingress nor egress) is undecidable, not read as something else', async () => {
    const tf = small();
    const [, group] = resourceNamed(tf, 'aws_security_group', 'sample_SecurityGroup');
    group.dynamic = { egress: { for_each: '${var.rules}', content: { from_port: 0, to_port: 0, protocol: '-1', cidr_blocks: ['0.0.0.0/0'] } } };
    const [, web] = resourceNamed(tf, 'aws_instance', 'web_Instance');
    web.count = 2;
    const [, appGroup] = resourceNamed(tf, 'aws_security_group', 'app_SecurityGroup');
    tf.resource.aws_security_group_rule = { sneaky: { type: 'Egress', security_group_id: '${aws_security_group.' + Object.keys(tf.resource.aws_security_group).find((n) => tf.resource.aws_security_group[n] === appGroup) + '.id}', protocol: 'tcp', from_port: 443, to_port: 443, cidr_blocks: ['0.0.0.0/0'] } };
    const r = await run(['check', writeJson(tf, 'staging'), '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/staging\/sample: .*undecidable .*the group uses dynamic blocks, whose rules are known only at plan time/);
    expect(r.out).toMatch(/staging\/web: .*undecidable .*uses count\/for_each: its instances are known only at plan time/);
    expect(r.out).toMatch(/staging\/app: .*undecidable .*type "Egress" is neither "ingress" nor "egress"/);
    expect(r.out).not.toMatch(/^staging\/(sample|web|app) .*the walls agree/m);
  });

  it('a "__proto__" key stays a key: nothing is inherited past the shape gate', async () => {
    const tf = small();
    const [name, instance] = resourceNamed(tf, 'aws_instance', 'sample_Instance');
    const userData = instance.user_data_base64;
    delete instance.user_data_base64;
    const text = JSON.stringify(tf).replace(`"${name}":{`, `"${name}":{"__proto__":{"user_data_base64":${JSON.stringify(userData)}},`);
    const file = writeJson({});
    fs.writeFileSync(file, text);
    const r = await run(['check', file, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('host wall artefact: the host has no user-data');
  });

  it('attributes set to null are unset, as in Terraform (no crash, no agreement on what is missing)', async () => {
    const tf = small();
    const [, instance] = resourceNamed(tf, 'aws_instance', 'sample_Instance');
    instance.vpc_security_group_ids = null;
    instance.tags = null;
    const r = await run(['check', writeJson(tf, 'staging'), '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/staging\/sample_Instance_\w+: .*undecidable \(network wall: no security group is attached/);
  });

  it('property: any value anywhere in a stack yields a shape error or a result, never another exception, the same normalised in place or copied', () => {
    const one = synthStack((scope) => {
      new FilteredHost(scope, 'h', { vpcId: VPC, instance: INSTANCE, roles: [mailServer(), resolvers()], suppressions: [{ id: 'TWL008', reason: 'test' }] });
    });
    const paths: string[][] = [];
    const walk = (v: unknown, p: string[]) => {
      paths.push(p);
      if (v !== null && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...p, k]);
    };
    walk(one.json, []);
    const hostile = fc.oneof(
      fc.constantFrom<unknown>(null, [], {}, 0, -1, 1e308, '', '${var.x}', true, [null], [[]], { a: null }, 'x'.repeat(300), '\u001b[2J\r\u202e', [5], '-1', 'sg-1'),
      fc.jsonValue({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...paths), hostile, (p, value) => {
        const json = clone(one.json) as Json;
        if (p.length === 0) return expectShapeOrResult(() => check([{ name: 's', json: value }]));
        let parent = json;
        for (const k of p.slice(0, -1)) parent = parent[k];
        parent[p[p.length - 1]] = value;
        // Normalised in place (as the CLI does with what it parsed) or copied: the same document, or the same TW291.
        expect(shapeOrResult(() => terraformJson(clone(json), { owned: true }))).toEqual(shapeOrResult(() => terraformJson(clone(json))));
        expectShapeOrResult(() => check([{ name: 's', json }]));
      }),
      { numRuns: 100 },
    );
  });
});

function check(stacks: StackInput[]): void {
  const stacksChecked = stacks.map((s) => ({ ...s, json: terraformJson(s.json) }));
  checkStacks(stacksChecked);
  reportMarkdown(buildReport(stacksChecked).report);
}

function shapeOrResult(fn: () => unknown): { shape: string } | { result: unknown } {
  try {
    return { result: fn() };
  } catch (e) {
    if (e instanceof TwinwallError && e.errorName === 'ARTEFACT_SHAPE') return { shape: e.message };
    throw e;
  }
}

function expectShapeOrResult(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof TwinwallError && e.errorName === 'ARTEFACT_SHAPE') return;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// safe output (reproduction 5)

/** A payload that tries every Markdown, HTML, mention and terminal trick on one line and across lines. */
const PAYLOAD = [
  'pwn',
  '# pwned heading',
  '<img src=x onerror=alert(1)></details><script>alert(1)</script>',
  '@octocat please [click](https://evil.example) ![i](https://evil.example/i.png) <https://evil.example> www.evil.example mail@evil.example #123',
  '| x | y | ``` ~~~ $$x$$ **bold** > quote',
  '- item',
  '1. item',
  '\u001b[31mred\u001b[0m\r\bover\u202eesrever',
].join('\n');

/** Every node of a CommonMark document. */
function nodes(md: string): MdNode[] {
  const out: MdNode[] = [];
  const visit = (n: MdNode | null) => {
    for (let c = n; c !== null; c = c.next) {
      out.push(c);
      visit(c.firstChild);
    }
  };
  visit(new commonmark.Parser().parse(md).firstChild);
  return out;
}

function textOf(n: MdNode): string {
  let s = n.literal ?? '';
  for (let c = n.firstChild; c !== null; c = c.next) s += textOf(c);
  return s;
}

/** Cells of one GFM table row: split on pipes that no backslash escapes. */
function cellCount(row: string): number {
  let n = 0;
  for (let i = 0; i < row.length; i++) if (row[i] === '|' && row[i - 1] !== '\\') n++;
  return n;
}

/** `md` without its code spans (CommonMark: a backtick run no backslash escapes, closed by a run as long). */
function withoutCode(md: string): string {
  let out = '';
  for (let i = 0; i < md.length; ) {
    if (md[i] === '\\') {
      out += md.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (md[i] !== '`') {
      out += md[i++];
      continue;
    }
    let j = i;
    while (md[j] === '`') j++;
    const run = md.slice(i, j);
    let k = md.indexOf(run, j);
    while (k >= 0 && (md[k - 1] === '`' || md[k + run.length] === '`')) k = md.indexOf(run, k + 1);
    if (k < 0) {
      out += run;
      i = j;
    } else i = k + run.length;
  }
  return out;
}

/** The input put nothing into `md` but text. */
function expectInert(md: string, allowedHtml: RegExp = /^(<details><summary>Host-only decisions \(security groups never filter these\)<\/summary>\n?|<\/details>\n?|<br>|<sub>|<\/sub>)$/): void {
  const all = nodes(md);
  expect(all.filter((n) => n.type === 'link' || n.type === 'image').map(textOf)).toEqual([]);
  expect(all.filter((n) => (n.type === 'html_inline' || n.type === 'html_block') && !allowedHtml.test(n.literal ?? '')).map((n) => n.literal)).toEqual([]);
  // Headings, lists and quotes are twinwall's own: none starts where a payload line did.
  expect(all.filter((n) => ['heading', 'block_quote', 'list', 'item'].includes(n.type) && /^\s*(pwned|item|quote)/.test(textOf(n))).map(textOf)).toEqual([]);
  expect(all.filter((n) => n.type === 'code_block' && !['mermaid', 'ts'].includes(n.info ?? '')).map((n) => n.literal)).toEqual([]);
  expect(all.filter((n) => n.type === 'emph' || n.type === 'strong').map(textOf).filter((t) => /bold/.test(t))).toEqual([]);
  // What CommonMark leaves to GitHub's extensions, on the raw text outside code (where GitHub
  // neither links nor mentions): mentions, bare URLs, e-mail autolinks, issue references.
  const prose = withoutCode(md.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, ''));
  expect(prose).not.toMatch(/@octocat|https?:\/\/evil|www\.evil|mail@evil|#123/);
  expect(md).not.toMatch(/[\u001b\r\b\u202e]/);
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^\|---/.test(lines[i]) && !/^\|(---\|)+$/.test(lines[i])) continue;
    const width = cellCount(lines[i - 1]);
    for (let j = i + 1; j < lines.length && lines[j].startsWith('|'); j++) expect([j, cellCount(lines[j])]).toEqual([j, width]);
  }
  // Mermaid: one diagram, every line a node or an edge.
  for (const n of all.filter((x) => x.type === 'code_block' && x.info === 'mermaid')) {
    for (const l of (n.literal ?? '').trimEnd().split('\n')) expect(l).toMatch(/^(flowchart LR|  n\d+(\["[^"]*"\]|\(\("[^"]*"\)\)|\[\/"[^"]*"\/\])|  n\d+ (-->|-\.->)\|"[^"]*"\| n\d+)$/);
  }
}

// ---------------------------------------------------------------------------------------------
// multi-part user-data (issue #12): the host wall's part is found and read; anything cloud-init
// would run that twinwall cannot model, or that could switch the wall off, is a finding

describe('multi-part user-data: what the checker cannot vouch for is a finding, never agreement', () => {
  const parts = [
    UserDataPart.cloudConfig({ packages: ['nginx'], write_files: [{ path: '/etc/myapp/app.conf', content: 'listen 8080\n' }] }),
    UserDataPart.shellScript('#!/bin/sh\necho "user script ran"\n'),
  ];
  let host: FilteredHost | undefined;
  const base = synthStack((scope) => {
    host = new FilteredHost(scope, 'web', { vpcId: 'vpc-0123456789abcdef0', instance: INSTANCE, roles: [webServer(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })], userDataParts: parts });
  });
  const doc = (host as FilteredHost).rendering.userData.document;
  const wallPart = (host as FilteredHost).cloudConfig;
  const B = MIME_BOUNDARY;
  /** A part as a MIME entity: headers, a blank line, the text. */
  const entity = (type: string, text: string, extra = '') => `Content-Type: ${type}\n${extra}\n${text}`;
  const mime = (entities: readonly string[], boundary = B) => [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', '', ...entities.flatMap((e) => [`--${boundary}`, e]), `--${boundary}--`, ''].join('\n');
  const userCfg = (yaml: string) => entity('text/cloud-config', `#cloud-config\nmerge_how: ${USER_PART_MERGE_HOW}\n${yaml}`);
  const wall = entity('text/cloud-config', wallPart);
  const withUserData = (text: string): Json => {
    const tf = clone(base.json);
    const [, instance] = resourceNamed(tf, 'aws_instance', 'web_Instance');
    instance.user_data_base64 = Buffer.from(text, 'utf8').toString('base64');
    return tf;
  };
  const findings = (text: string): string[] => {
    const report = checkStacks([{ name: 'stack', json: withUserData(text) }]);
    return report.hosts.flatMap((h) => h.findings.map((f) => f.text));
  };

  it('the document twinwall wrote checks clean (and so does the same, rewritten by hand without changes)', () => {
    expect(findings(doc)).toEqual([]);
    expect(findings(mime([wall, userCfg('packages: [nginx]\n'), entity('text/x-shellscript', '#!/bin/sh\nid\n')]))).toEqual([]);
  });

  const cases: [string, string, RegExp][] = [
    ['the wall\'s part second', mime([userCfg('packages: [nginx]\n'), wall]), /the host wall's part is part 2, not the first/],
    ['a shell script before the wall', mime([entity('text/x-shellscript', '#!/bin/sh\niptables -F\n'), wall]), /the host wall's part is part 2, not the first/],
    ['two wall parts', mime([wall, wall]), /2 parts carry the host wall \(part 1, part 2\)/],
    ['a later part writing rules.v4', mime([wall, userCfg('write_files: [{path: /etc/iptables/rules.v4, content: "*filter\\nCOMMIT\\n"}]\n')]), /part 2 write_files\[0\]\.path: write_files would write "\/etc\/iptables\/rules\.v4"/],
    ['a later part without the merge rule (its bootcmd replaces the wall\'s)', mime([wall, entity('text/cloud-config', '#cloud-config\nbootcmd: [[iptables, -F]]\n')]), /part 2 merge_how: the part has no merge rule/],
    ['a later part with merge_how of its own', mime([wall, entity('text/cloud-config', '#cloud-config\nmerge_how: dict(replace)+list()+str()\nbootcmd: [[true]]\n')]), /part 2 merge_how: the part sets merge_how "dict\(replace\)\+list\(\)\+str\(\)", not twinwall's/],
    ['a later part with merge_type', mime([wall, userCfg('merge_type: list(replace)\n')]), /part 2 merge_type: the part sets merge_type/],
    ['a later part dropping bootcmd from the module list', mime([wall, userCfg('cloud_init_modules: [write_files]\n')]), /part 2 cloud_init_modules: the part sets cloud-init's module list/],
    ['a later part masking the unit', mime([wall, userCfg('write_files: [{path: /etc/systemd/system/twinwall-firewall.service, content: ""}]\n')]), /part 2 write_files\[0\]\.path: .*loader or unit/],
    ['a Merge-Type header', mime([wall, entity('text/cloud-config', '#cloud-config\nbootcmd: [[true]]\n', 'Merge-Type: dict(replace)+list()+str()\n')]), /part 2 of the user-data sets its merge rule in a merge-type header/],
    ['a Launch-Index header on the wall', mime([entity('text/cloud-config', wallPart, 'Launch-Index: 3\n')]), /has a launch-index header, which twinwall does not read/],
    ['a boothook (runs before bootcmd)', mime([wall, entity('text/cloud-boothook', '#cloud-boothook\ntouch /var/lib/cloud/sem/x\n')]), /part 2 is text\/cloud-boothook, which twinwall does not compose/],
    ['a boothook sniffed from text/plain', mime([wall, entity('text/plain', '  #Cloud-Boothook\niptables -F\n')]), /part 2 is text\/cloud-boothook/],
    ['a boothook sniffed from text/x-shellscript', mime([wall, entity('text/x-shellscript', '#cloud-boothook\niptables -F\n')]), /part 2 is text\/cloud-boothook/],
    ['a boothook after what Python strips and JavaScript does not (U+0085, base64)', mime([wall, entity('text/x-shellscript', Buffer.from('\u0085#cloud-boothook\niptables -F\n').toString('base64'), 'Content-Transfer-Encoding: base64\n')]), /part 2 is text\/cloud-boothook/],
    ['non-ASCII text in a 7bit part (Python garbles it)', mime([wall, entity('text/x-shellscript', '\u0085#cloud-boothook\niptables -F\n')]), /part 2 of the user-data carries non-ASCII text as 7bit/],
    ['an #include after U+001C', mime([wall, entity('text/plain', '\u001c#include\nhttps://203.0.113.9/x\n')]), /part 2 is text\/x-include-url/],
    ['an #include', mime([wall, entity('text/plain', '#include\nhttps://203.0.113.9/x\n')]), /part 2 is text\/x-include-url/],
    ['a JSON patch', mime([wall, entity('text/cloud-config-jsonp', '#cloud-config-jsonp\n[{"op": "remove", "path": "/bootcmd"}]\n')]), /part 2 is text\/cloud-config-jsonp/],
    ['an archive', mime([wall, entity('text/cloud-config-archive', '#cloud-config-archive\n- content: "#cloud-boothook\\nid"\n')]), /part 2 is text\/cloud-config-archive/],
    ['a part handler', mime([wall, entity('text/part-handler', '#part-handler\ndef list_types(): return []\n')]), /part 2 is text\/part-handler/],
    ['a gzip part', mime([wall, entity('application/gzip', 'H4sIAAAAAAAAA0tMBQBR8j/CAwAAAA==', 'Content-Transfer-Encoding: base64\n')]), /part 2 is application\/gzip/],
    ['a nested multipart', mime([wall, entity('multipart/mixed; boundary="inner"', '--inner\n\nx\n--inner--\n')]), /part 2 of the user-data is itself multi-part/],
    ['quoted-printable', mime([wall, entity('text/x-shellscript', '#!/bin/sh\n=69ptables -F\n', 'Content-Transfer-Encoding: quoted-printable\n')]), /Content-Transfer-Encoding "quoted-printable", which twinwall does not read/],
    ['a foreign charset', mime([wall, entity('text/x-shellscript; charset="utf-16"', '#!/bin/sh\n')]), /charset "utf-16"/],
    ['invalid base64', mime([wall, entity('text/x-shellscript', '#!/bin/sh\n!!!\n', 'Content-Transfer-Encoding: base64\n')]), /part 2 of the user-data is not valid base64/],
    ['base64 that is not UTF-8', mime([wall, entity('text/x-shellscript', Buffer.from([0x23, 0x21, 0xff, 0xfe]).toString('base64'), 'Content-Transfer-Encoding: base64\n')]), /is not UTF-8 text/],
    ['a folded header', mime([entity('text/cloud-config;\n charset="us-ascii"', wallPart)]), /folded header line/],
    ['a repeated header', mime([entity('text/cloud-config', wallPart, 'Content-Type: text/x-shellscript\n')]), /two Content-Type headers/],
    ['carriage returns', mime([wall]).replace(/\n/g, '\r\n'), /carriage returns/],
    ['no closing boundary', mime([wall]).replace(`--${B}--\n`, ''), /never closes its last part/],
    ['no boundary', mime([wall]).replace(`; boundary="${B}"`, ''), /has no boundary/],
    ['not multipart/mixed', mime([wall]).replace('multipart/mixed', 'multipart/alternative'), /not multipart\/mixed/],
    ['more than 64 parts', mime([wall, ...Array.from({ length: 64 }, () => entity('text/x-shellscript', '#!/bin/sh\n'))]), /more than 64 parts/],
    ['no wall part at all', mime([userCfg('packages: [nginx]\n')]), /no part of the multi-part user-data carries the host wall/],
    ['a later part that is not YAML', mime([wall, entity('text/cloud-config', '#cloud-config\nbootcmd: [\n')]), /part 2 is not valid YAML/],
    ['headers but no blank line before the body', `MIME-Version: 1.0\n${wallPart}`, /has a line that is not a header \("#cloud-config"\)/],
  ];
  it.each(cases)('%s', (_what, text, finding) => {
    const found = findings(text);
    expect(found).toContainEqual(expect.stringMatching(finding));
  });

  it('a #cloud-config naming "mime-version:" in its first 4,096 bytes (a host called mime-version) is read as cloud-init reads it: one document, no finding', () => {
    const named = renderHost(HostPolicy.compose('mime-version', [webServer(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })]));
    expect(named.userData.cloudConfig.slice(0, 4096).toLowerCase()).toContain('mime-version:');
    const w = readHostWall(named.userData.document);
    expect(w.problems).toEqual([]);
    // The default backend's wall (nftables) read whole.
    expect(w.nftables?.text).toBe(named.nftables?.text);
    expect(w.tables[4]?.text).toBe(named.nftables?.text);
  });

  it('part names and values from the user-data stay text where findings land: Markdown (report, diff) and the terminal (check)', async () => {
    const evil = 'x<img src=x onerror=alert(1)> @octocat https://evil.example [a](https://evil.example) \u202e\u001b[31m pwned';
    const text = mime([wall, entity('text/cloud-boothook', '#cloud-boothook\nid\n', `Content-Disposition: attachment; filename="${evil}"\n`), entity('text/cloud-config', Buffer.from(`#cloud-config\nmerge_how: "${evil.replace('\u001b', '\\e')}"\n`).toString('base64'), 'Content-Transfer-Encoding: base64\n')]);
    const hostile = withUserData(text);
    expect(findings(text)).toEqual(expect.arrayContaining([expect.stringMatching(/^part 2 \(.*\) is text\/cloud-boothook/), expect.stringMatching(/^part 3 merge_how: the part sets merge_how /)]));
    expectInert(reportMarkdown(buildReport([{ name: 'stack', json: hostile }]).report));
    expectInert(diffMarkdown(diffStacks([base], [{ name: 'stack', json: hostile }])));
    const r = await run(['check', writeJson(hostile, 'stack')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('is text/cloud-boothook');
    expect(r.out + r.err).not.toMatch(/[\u001b\u202e]/);
  });

  it('check exits 1, report says the walls do not agree, diff calls it high risk (a part after the wall without the merge rule)', async () => {
    const hostile = withUserData(mime([wall, entity('text/cloud-config', '#cloud-config\nbootcmd: [[iptables, -F]]\n')]));
    const file = writeJson(hostile, 'stack');
    const r = await run(['check', file, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/stack\/web: host wall artefact: part 2 merge_how: the part has no merge rule/);
    const report = await run(['report', file, '--format', 'json']);
    const web = JSON.parse(report.out).stacks[0].hosts.find((h: { name: string }) => h.name === 'web');
    expect(web.consistency.agree).toBe(false);
    const d = diffStacks([base], [{ name: 'stack', json: hostile }]);
    expect(d.hosts[0].settings).toEqual([expect.objectContaining({ setting: 'host-wall', before: 'walls agree', after: 'walls do not agree', risk: 'high' })]);
    expect(d.summary.widenedEgress).toBe(true);
    expect(diffStacks([base], [base]).hosts[0].status).toBe('unchanged');
  });

  it('property: any mangling of the document (bytes changed, lines dropped or repeated) gives findings or exactly the wall that was written, and never throws', () => {
    const original = readHostWall(doc);
    const lines = doc.split('\n');
    const mangled = fc.oneof(
      fc.record({ at: fc.nat(doc.length - 1), ch: fc.constantFrom('-', '\n', ' ', '"', ':', 'x', '#', '=', '\r', '\u0085') }).map(({ at, ch }) => doc.slice(0, at) + ch + doc.slice(at + 1)),
      fc.nat(lines.length - 1).map((i) => [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n')),
      fc.nat(lines.length - 1).map((i) => [...lines.slice(0, i + 1), ...lines.slice(i)].join('\n')),
    );
    fc.assert(
      fc.property(mangled, (text) => {
        const w = readHostWall(text);
        if (w.problems.length === 0) {
          expect(w.tables[4]?.text).toBe(original.tables[4]?.text);
          expect(w.tables[6]?.text).toBe(original.tables[6]?.text);
          expect(w.fallback[4]?.text).toBe(original.fallback[4]?.text);
        }
      }),
      { numRuns: process.env.CI === 'true' ? 2000 : 400, seed: Number(process.env.TWINWALL_HOSTILE_SEED ?? 12) },
    );
  });
});

describe('Markdown escaping (one module for report, diff, learn)', () => {
  it('mdText, mdCode, mdFence and mermaidLabel keep the payload text and nothing else', () => {
    expectInert(`| a | b |\n|---|---|\n| ${mdText(PAYLOAD)} | ${mdCode(PAYLOAD)} |\n\n${mdText(PAYLOAD)}\n\n- ${mdText(PAYLOAD)}\n\n> ${mdText(PAYLOAD)}\n`);
    expect(nodes(mdText('www.example.com')).map(textOf)[0]).toBe('www.example.com');
    const fenced = mdFence('ts', 'const a = "```";\n````\n# not a heading\n');
    expect(nodes(fenced).filter((n) => n.type === 'code_block').map((n) => n.literal)).toEqual(['const a = "```";\n````\n# not a heading\n']);
    expect(mermaidLabel(PAYLOAD)).not.toMatch(/["`<>|#&;\n\r\u001b]/);
    for (const s of ['- x', '+ x', '1. x', '2) x', '---', '===', '    indented', '# h', '> q']) expect([...new Set(nodes(mdText(s)).map((n) => n.type))]).toEqual(['paragraph', 'text']);
  });

  describe('report and diff on hand-edited artefacts', () => {
    let hostile: string;
    beforeAll(() => {
      const tf = clone(staging);
      const [, instance] = resourceNamed(tf, 'aws_instance', 'sample_Instance');
      instance.tags['twinwall:host'] = PAYLOAD;
      const [, group] = resourceNamed(tf, 'aws_security_group', 'sample_SecurityGroup');
      group.tags['twinwall:roles'] = `mailServer ${PAYLOAD.replace(/\s+/g, '_')}`;
      group.tags['twinwall:lint:TWL008'] = PAYLOAD;
      const [, rule] = resourceNamed(tf, 'aws_vpc_security_group_egress_rule', 'sample_egress-tcp-25-to-0-0-0-0-0');
      rule.description = `mailServer: smtp - ${PAYLOAD}`;
      editUserData(instance, (cfg) => editTable(cfg, 4, (t) => t.replace(/mailServer\/smtp: delivering mail to other mail servers/, `mailServer/smtp: ${PAYLOAD.replace(/[\n"\\]/g, ' ')}`)));
      hostile = path.dirname(path.dirname(path.dirname(writeJson(tf, 'staging'))));
      fs.renameSync(path.join(hostile, 'stacks', 'staging'), path.join(hostile, 'stacks', 'st\n# pwned <img src=x>'));
    });

    it('report', async () => {
      const r = await run(['report', hostile]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('octocat'); // the text is there, as text
      expectInert(r.out);
      // The hostile names label the diagram's nodes: mermaid's own parser still reads it.
      expect(expectMermaidParses(r.out)).toBeGreaterThan(0);
    });

    it('diff', async () => {
      const r = await run(['diff', example, hostile]);
      expect(r.code).toBe(0);
      expectInert(r.out);
      const back = await run(['diff', hostile, example]);
      expectInert(back.out);
    });

    it('check, explain and errors print no raw ESC, CR, backspace or bidi override', async () => {
      const c = await run(['check', hostile]);
      // Every name is one line: a tag cannot forge a line of the report ("…: the walls agree").
      expect(c.out).toMatch(/^st\\n# pwned <img src=x>\/pwn\\n# pwned heading\\n.*\\x1b\[31mred.* \(aws_instance\.sample_Instance_\w+\): /m);
      expect(c.out.split('\n').filter((l) => /pwned/.test(l) && !/^(st\\n# pwned|  st\\n# pwned)/.test(l))).toEqual([]);
      expect(`${c.out}${c.err}`).not.toMatch(/[\u001b\r\b\u202e]/);
      const e = await run(['explain', hostile, PAYLOAD, 'egress', 'tcp/25', '192.0.2.1']);
      expect(`${e.out}${e.err}`).not.toMatch(/[\u001b\r\b\u202e]/);
      const missing = await run(['check', path.join(hostile, '\u001b[2J\r\u202e')]);
      expectUsage(missing, '\\x1b[2J\\r\\u202e');
    });
  });

  it('learn: logged host names and lines stay text, in Markdown and on the terminal', async () => {
    const host = '<img/src=x/onerror=alert(1)>@octocat#123[x](https://evil.example)\u202e';
    const lines = [
      `Nov 19 22:33:12 ${host} kernel: [ 2140.890113] twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.20 DST=198.51.100.53 LEN=37 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=49105 DPT=53 LEN=17 UID=0 GID=0`,
      `Nov 19 22:33:13 ${host} kernel: [ 2141.0] twinwall egress audit: \`|\`\`\`| <b>x</b> @octocat \u001b[2J`,
    ];
    const file = path.join(tempDir('twinwall-learn-'), 'kern.log');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await run(['learn', '--from-kernel-log', file]);
    expect(r.out).toContain('## h');
    expect(r.out).toContain('octocat');
    expectInert(r.out);
    expect(r.err).not.toMatch(/[\u001b\r\b\u202e]/);
    const json = await run(['learn', '--from-kernel-log', file, '--format', 'json']);
    expect(() => JSON.parse(json.out)).not.toThrow();
    expect(json.out).not.toMatch(/[\u001b\u202e]/);
  });
});

describe('terminal escaping', () => {
  it('shows ESC, CR, backspace, C1 and bidi controls as escapes, keeps newlines and tabs, keeps JSON valid', () => {
    expect(terminalText('a\u001b[2Jb\rc\bd\u0085e\u202ef\u2066g\n\th')).toBe('a\\x1b[2Jb\\rc\\bd\\u0085e\\u202ef\\u2066g\n\th');
    const json = JSON.stringify({ name: 'x\u202e\u0085\u007f\u001b' });
    expect(JSON.parse(terminalText(json))).toEqual({ name: 'x\u202e\u0085\u007f\u001b' });
  });

  it('synth error messages escape control characters in the values they show', () => {
    const err = caught(() => HostPolicy.compose('web\u001b[2J\u202e', [ntpClient()]));
    expect(err.message).toContain('"web\\u001b[2J\\u202e"');
    expect(err.message).not.toMatch(/[\u001b\u202e]/);
  });
});

// ---------------------------------------------------------------------------------------------
// renderers validate every name they embed

describe('renderers refuse names that would run a command', () => {
  const policy = HostPolicy.compose('web', [webServer(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })]);
  const tables = renderIptables(policy);

  it.each(['web"; touch /tmp/pwned; echo "', 'web$(touch /tmp/pwned)', 'web`id`', 'web\nrm -rf /', ''])('renderFirstBootScript(host = %p) is TW123 NAME_INVALID', (host) => {
    expect(caught(() => renderFirstBootScript(tables, host)).errorName).toBe('NAME_INVALID');
  });

  it('crafted tables cannot end a here-document early and run what follows', () => {
    const dir = tempDir('twinwall-heredoc-');
    const canary = path.join(dir, 'pwned');
    // Before: v4 without a final newline ran into its delimiter, and v6's "TWINWALL_RULES_V4" line closed it.
    const crafted = { v4: '*filter\nCOMMIT', v6: `*filter\nTWINWALL_RULES_V4\ntouch ${canary}\nCOMMIT\n` };
    // The fallbacks travel in here-documents too (lockdown), beside the DROP-only table.
    const fallback = { v4: `*filter\nTWINWALL_DROP_ONLY\ntouch ${canary}\nCOMMIT`, v6: `*filter\nTWINWALL_FALLBACK_V4\ntouch ${canary}\nCOMMIT\n` };
    // The tools become a sink that reads its input and succeeds (the loader checks they are executable).
    const sink = path.join(dir, 'sink');
    fs.writeFileSync(sink, '#!/bin/sh\ncat >/dev/null\n', { mode: 0o755 });
    for (const script of [renderFirstBootScript(crafted, undefined, 'open'), renderFirstBootScript({ ...crafted, fallback })]) {
      const harmless = script.replace(/\/usr\/sbin\/(ip6?tables-restore|ipset)/g, sink);
      const r = spawnSync('sh', ['-c', harmless], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(fs.existsSync(canary)).toBe(false);
    }
    for (const bad of [{ v4: 'x\r\n', v6: 'y\n' }, { v4: '', v6: 'y\n' }, { v4: 5 as unknown as string, v6: 'y\n' }]) expect(caught(() => renderFirstBootScript(bad)).errorName).toBe('OPTION_INVALID');
  });

  it('renderIpsets refuses a crafted host or set name, and anything but Cidr values', () => {
    const set = { name: 'tw4-in-tcp-22', family: 4 as const, cidrs: [Cidr.of('192.0.2.0/24')] };
    expect(renderIpsets('web', [set])).toContain('add tw4-in-tcp-22 192.0.2.0/24');
    expect(caught(() => renderIpsets('web\ncreate evil hash:ip', [set])).errorName).toBe('NAME_INVALID');
    for (const name of ['x\nflush', 'a b', '-x', 'x'.repeat(32), '']) expect(caught(() => renderIpsets('web', [{ ...set, name }])).errorName).toBe('NAME_INVALID');
    expect(caught(() => renderIpsets('web', [{ ...set, cidrs: ['192.0.2.0/24\nflush' as unknown as Cidr] }])).errorName).toBe('OPTION_INVALID');
    expect(caught(() => renderIpsets('web', [{ ...set, family: 6 }])).errorName).toBe('OPTION_INVALID');
  });

  it.each([
    ['renderIptables', renderIptables],
    ['renderNftables', renderNftables],
  ] as const)('%s takes only a HostPolicy, whose name is checked again', (_name, render) => {
    const fake = Object.assign(Object.create(HostPolicy.prototype), { ...policy, name: 'web\n-A OUTPUT -j ACCEPT' }) as HostPolicy;
    expect(caught(() => render(fake)).errorName).toBe('NAME_INVALID');
    expect(caught(() => render({ ...policy } as HostPolicy)).errorName).toBe('OPTION_INVALID');
  });
});
