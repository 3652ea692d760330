/**
 * Golden output of `twinwall learn`: the Markdown report, the JSON (every flow's evidence, the
 * problem tallies, the proposal) and the TypeScript, for the fixtures and for generated logs, read
 * through the command line as a user runs it. They pin what learn proposes and flags, so a change
 * to how it reads or aggregates (streaming, compact keys) provably leaves the output alone.
 * `npm run bless` rewrites them; read every diff. (TypeScript goldens end in .ts.txt: tsc must not
 * compile them as part of the project; learn.test.ts type-checks proposals against lib/.)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { learn, renderJson } from '../lib/learn';
import { kernLogLine, writeFlowLogs, writeKernLog } from '../bench/learn-logs';
import { expectGolden } from './support/golden';
import { kline, resolverLines } from './support/kernel-lines';
import { LearnRun, learnCli } from './support/learn-cli';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'learn');
const fixture = (name: string): string => path.join(FIXTURES, name);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-learn-golden-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
// Each case reads its inputs through the command line, several times; the machine is shared.
jest.setTimeout(120000);

/** Paths as a reader of the golden sees them: relative to the repository, generated files under "generated/". */
function portable(text: string): string {
  return text.split(`${dir}/`).join('generated/').split(`${ROOT}/`).join('');
}

async function cli(args: string[]): Promise<LearnRun> {
  const r = await learnCli(args);
  return { out: portable(r.out), err: portable(r.err), exit: r.exit };
}

/** The output, then the summary line and exit code, so a golden also pins what the command says on stderr. */
function golden(name: string, r: { out: string; err: string; exit: number }): void {
  expectGolden(`learn/${name}`, r.out);
  expectGolden(`learn/${name}.status`, `${r.err}exit ${r.exit}\n`);
}

const KERN_LINES = 20000;
const FLOW_LINES = 20000;
const kern = path.join(dir, 'kern.log');
const flows = path.join(dir, 'flowlogs.log');
const problems = path.join(dir, 'problems.log');
const scenario = path.join(dir, 'ns1.log');

beforeAll(() => {
  writeKernLog(kern, KERN_LINES);
  writeFlowLogs(flows, FLOW_LINES);
  const H = '203.0.113.20';
  // Roles and flags the fixtures do not reach: a recursive resolver (clients and port 53
  // everywhere), NTP to Amazon, SSH from too many, INVALID, metadata by root, ICMPv6, neighbouring
  // ports that merge into a range.
  const ns1 = [
    ...resolverLines(H),
    // Expanded, as the kernel writes IPv6 addresses.
    kline('ingress', '2001:0db8:00ff:0000:0000:0000:0000:0008', '2001:0db8:0002:0000:0000:0000:0000:0020', 'ICMPv6', 128),
    ...[33434, 33435, 33436].map((p) => kline('egress', H, '198.51.100.9', 'UDP', p)),
  ].map((l, i) => `Nov 19 22:00:${String(i % 60).padStart(2, '0')} ns1 kernel: ${l.slice(15)}`);
  fs.writeFileSync(scenario, `${ns1.join('\n')}\n`);
  // Lines learn must count and list, never trip over: CRLF endings, a blank line, a journal
  // marker, truncated and garbled lines, an ICMP error quoting a packet, an unknown prefix reason.
  const base = kline('egress', H, '198.51.100.53', 'UDP', 53, { uid: 0 });
  const lines = [
    `${base}\r`,
    '',
    '-- Boot 5f1c2a34b7e84e6c9d0a1b2c3d4e5f60 --',
    base.slice(0, base.indexOf('DST=')),
    base.replace('PROTO=UDP', 'PROTO=XYZ'),
    base.replace('audit:', 'audit bogus:'),
    base.replace('DPT=53', 'DPT=99999'),
    '[ 1483.348799] twinwall ingress audit: IN=eth0 OUT= MAC=0e:aa SRC=203.0.113.211 DST=203.0.113.20 LEN=57 TOS=0x00 PREC=0xC0 TTL=64 ID=2200 PROTO=ICMP TYPE=3 CODE=3 [SRC=203.0.113.20 DST=203.0.113.211 LEN=29 PROTO=UDP SPT=33051 DPT=1434 LEN=9 ] ',
    kline('ingress', '192.0.2.1', H, 'TCP', 443).replace('audit:', 'drop:'),
    '[  925.496637] IPv6: th9w8: IPv6 duplicate address 2001:db8:1::66 used by 52:16:28:8f:1c:33 detected!',
  ];
  fs.writeFileSync(problems, lines.join('\n'));
});

describe('learn output (golden)', () => {
  it('kernel LOG lines of an audit-mode host (the kernel tier capture): Markdown, JSON and TypeScript', async () => {
    const args = ['--from-kernel-log', `learnlab=${fixture('dmesg-audit.log')}`, '--scan-threshold', '10'];
    golden('kernel-dmesg.md', await cli(args));
    golden('kernel-dmesg.json', await cli([...args, '--format', 'json']));
    golden('kernel-dmesg.ts.txt', await cli([...args, '--format', 'ts']));
  });

  it('default-format flow logs: aliased, with a tight block budget, and against the example app', async () => {
    const v2 = fixture('flowlogs-v2.log');
    golden('flow-v2.json', await cli(['--from-flow-logs', v2, '--alias', 'eni-0a1b2c3d4e5f60001=sample', '--format', 'json']));
    golden('flow-v2-blocks3.md', await cli(['--from-flow-logs', v2, '--max-blocks', '3']));
    golden('flow-v2-blocks2.ts.txt', await cli(['--from-flow-logs', v2, '--max-blocks', '2', '--format', 'ts']));
    golden('flow-v2-against.json', await cli(['--from-flow-logs', `sample=${v2}`, '--against', path.join(__dirname, 'golden', 'synth', 'production.cdk.tf.json'), '--format', 'json']));
  });

  it('custom-format flow logs, alone and with kernel lines', async () => {
    golden('flow-custom.json', await cli(['--from-flow-logs', fixture('flowlogs-custom.log'), '--format', 'json']));
    golden('mixed.md', await cli(['--from-kernel-log', `learnlab=${fixture('dmesg-audit.log')}`, '--from-flow-logs', fixture('flowlogs-custom.log'), '--scan-threshold', '10']));
  });

  it('a resolver, NTP, SSH from many, INVALID, metadata and a port range; unreadable and foreign lines listed', async () => {
    golden('ns1.json', await cli(['--from-kernel-log', scenario, '--max-blocks', '4', '--format', 'json']));
    golden('ns1.ts.txt', await cli(['--from-kernel-log', scenario, '--max-blocks', '4', '--format', 'ts', '--no-audit']));
    golden('problems.md', await cli(['--from-kernel-log', problems, '--host', 'web']));
    golden('problems.json', await cli(['--from-kernel-log', problems, '--host', 'web', '--format', 'json']));
  });

  it(`generated logs: ${KERN_LINES.toLocaleString('en-US')} kern.log lines and ${FLOW_LINES.toLocaleString('en-US')} flow-log records`, async () => {
    golden('kern-generated.json', await cli(['--from-kernel-log', kern, '--format', 'json']));
    golden('kern-generated.md', await cli(['--from-kernel-log', kern]));
    golden('flow-generated.json', await cli(['--from-flow-logs', flows, '--format', 'json']));
    golden('flow-generated.md', await cli(['--from-flow-logs', flows]));
    golden('both-generated.ts.txt', await cli(['--from-flow-logs', flows, '--from-kernel-log', kern, '--format', 'ts']));
  });

  it('generated kern.log with tight caps: addresses coarsen, ports past the cap become one "many ports" flow', async () => {
    const lines = Array.from({ length: KERN_LINES }, (_, i) => kernLogLine(i));
    const { observed, proposal } = await learn([{ name: 'kern.log', kind: 'kernel', lines }], { maxAddresses: 100, maxPorts: 2, samples: 1 });
    expectGolden('learn/kern-generated-caps.json', renderJson(observed, proposal, undefined));
  });
});
