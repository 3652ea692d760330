/**
 * `twinwall learn`, without a kernel: the parsers (kernel LOG lines in every shape the usual tools
 * print them, VPC Flow Logs in the default and a custom format), address covers, aggregation,
 * the proposal (roles, custom flows, flags), --against on the example app's synthesized JSON, the
 * command line, and the TypeScript it proposes (compiled with the compiler API against the real
 * lib, then run). The kernel lines in __tests__/fixtures/learn/dmesg-audit.log were captured from
 * the kernel tier (kernel-learn.test.ts): real LOG output of an audit-mode host wall.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import fc from 'fast-check';
import * as ipaddr from 'ipaddr.js';
import { UsageError, loadStacks } from '../cli/artefacts';
import { Cidr, ERROR_CODES, HostPolicy } from '../lib';
import { AddressSet, formatAddress } from '../lib/address';
import { checkStacks } from '../lib/check';
import {
  AddressReader,
  Aggregator,
  FlowLogReader,
  LearnInput,
  LearnOptions,
  Observation,
  compareAgainst,
  coverAddresses,
  learn,
  parseFlowLogFormat,
  parseEnvelope,
  parseKernelLine,
  renderJson,
  renderMarkdown,
  renderTypeScript,
  serverSide,
} from '../lib/learn';
import { caught } from './support/caught';
import { kline, resolverLines } from './support/kernel-lines';
import { learnCli } from './support/learn-cli';

const FIXTURES = path.join(__dirname, 'fixtures', 'learn');
const ROOT = path.resolve(__dirname, '..');
const read = (name: string): string[] => fs.readFileSync(path.join(FIXTURES, name), 'utf8').split('\n').slice(0, -1);
const DMESG = read('dmesg-audit.log');
const V2 = read('flowlogs-v2.log');
const CUSTOM = read('flowlogs-custom.log');

const ctx = (over: Partial<Parameters<typeof parseKernelLine>[1]> = {}): Parameters<typeof parseKernelLine>[1] => ({ source: 't', line: 1, defaultHost: 'h', addresses: new AddressReader(), ...over });

function observation(text: string, over: Partial<Parameters<typeof parseKernelLine>[1]> = {}): Observation {
  const r = parseKernelLine(text, ctx(over));
  if (r.kind !== 'observation') throw new Error(`${r.kind}: ${r.why}`);
  return r.observation;
}

const cli = (args: string[]) => learnCli(args);

async function run(inputs: LearnInput[], options: LearnOptions = {}) {
  return learn(inputs, options);
}

describe('kernel LOG lines', () => {
  const real = DMESG[0]; // [ 2140.890113] twinwall egress audit: … DPT=53 … UID=0 GID=0
  const message = real.slice(real.indexOf('twinwall '));

  it.each([
    ['dmesg', real, undefined, '2140.890113 s after boot'],
    ['dmesg -x', `kern  :warn  : ${real}`, undefined, '2140.890113 s after boot'],
    ['dmesg -T', `[Tue Nov 19 22:33:12 2024] ${message}`, undefined, 'Tue Nov 19 22:33:12 2024'],
    ['dmesg --time-format iso', `2024-11-19T22:33:12,890113+00:00 ${message}`, undefined, '2024-11-19T22:33:12,890113+00:00'],
    ['/dev/kmsg', `4,8812,2140890113,-;${message}`, undefined, '2140.890113 s after boot'],
    ['journalctl -k', `Nov 19 22:33:12 web1 kernel: ${message}`, 'web1', 'Nov 19 22:33:12'],
    ['journalctl -k -o short-precise', `Nov 19 22:33:12.890113 web1 kernel: ${message}`, 'web1', 'Nov 19 22:33:12.890113'],
    ['journalctl -k -o short-iso', `2024-11-19T22:33:12+0000 web1 kernel: ${message}`, 'web1', '2024-11-19T22:33:12+0000'],
    ['journalctl -k -o short-full', `Tue 2024-11-19 22:33:12 UTC web1 kernel: ${message}`, 'web1', 'Tue 2024-11-19 22:33:12 UTC'],
    ['journalctl -k -o short-monotonic', `[ 2140.890113] web1 kernel: ${message}`, 'web1', '2140.890113 s after boot'],
    ['kern.log (traditional)', `Nov  9 22:33:12 web1 kernel: [ 2140.890113] ${message}`, 'web1', 'Nov 9 22:33:12'],
    ['kern.log (rsyslog high precision)', `2024-11-19T22:33:12.890113+00:00 web1 kernel: [ 2140.890113] ${message}`, 'web1', '2024-11-19T22:33:12.890113+00:00'],
  ])('%s', (_name, text, host, time) => {
    const o = observation(text);
    expect(o.host).toBe(host ?? 'h');
    expect(o.time?.text).toBe(time);
    expect({ direction: o.direction, protocol: o.protocol, port: o.port, remote: o.remote.text, local: o.local.text, uid: o.uid, reason: o.reason, verdict: o.verdict }).toEqual({
      direction: 'egress',
      protocol: 'udp',
      port: 53,
      remote: '198.51.100.53',
      local: '203.0.113.20',
      uid: 0,
      reason: 'policy',
      verdict: 'audit',
    });
  });

  it('reads ISO times with an offset as instants', () => {
    expect(observation(`2024-11-19T22:33:12.5+01:00 web1 kernel: ${message}`).time?.epochMs).toBe(Date.UTC(2024, 10, 19, 21, 33, 12, 500));
  });

  it('writes IPv6 addresses canonically (the kernel expands them) and takes the remote end by direction', () => {
    const o = observation(DMESG.find((l) => l.includes('SRC=2001:0db8:00ff')) as string);
    expect({ direction: o.direction, remote: o.remote.text, local: o.local.text, port: o.port, uid: o.uid }).toEqual({ direction: 'ingress', remote: '2001:db8:ff::21', local: '2001:db8:2::20', port: 443, uid: undefined });
  });

  it('reads the reason word of the prefix: imds, spoof, inv', () => {
    expect(observation(DMESG.find((l) => l.includes('audit imds:')) as string)).toMatchObject({ reason: 'imds', uid: 65534, remote: { text: '169.254.169.254' } });
    expect(observation(DMESG.find((l) => l.includes('audit spoof:')) as string)).toMatchObject({ reason: 'spoof', local: { text: '203.0.113.77' } });
    expect(observation(kline('ingress', '192.0.2.1', '203.0.113.20', 'TCP', 80, { reason: 'inv' }))).toMatchObject({ reason: 'invalid' });
    expect(observation(kline('egress', '203.0.113.20', '192.0.2.1', 'TCP', 80).replace('audit:', 'drop:'))).toMatchObject({ reason: 'policy', verdict: 'drop' });
  });

  it('ignores the packet an ICMP error quotes, and calls packets that open nothing strays', () => {
    const err = '[ 1483.348799] twinwall ingress audit: IN=eth0 OUT= MAC=0e:aa SRC=203.0.113.211 DST=203.0.113.210 LEN=57 TOS=0x00 PREC=0xC0 TTL=64 ID=2200 PROTO=ICMP TYPE=3 CODE=3 [SRC=203.0.113.210 DST=203.0.113.211 LEN=29 PROTO=UDP SPT=33051 DPT=1434 LEN=9 ] ';
    expect(observation(err)).toMatchObject({ protocol: 'icmp', icmpType: 3, icmpCode: 3, remote: { text: '203.0.113.211' }, reason: 'stray' });
    const rst = '[ 1483.360510] twinwall ingress audit: IN=eth0 OUT= SRC=203.0.113.211 DST=203.0.113.210 LEN=40 PROTO=TCP SPT=25 DPT=39540 WINDOW=0 RES=0x00 ACK RST URGP=0 ';
    expect(observation(rst).reason).toBe('stray');
    expect(observation(kline('ingress', '192.0.2.1', '203.0.113.20', 'ICMP', 8)).reason).toBe('policy');
  });

  it.each([
    ['a truncated line', `${real.slice(0, real.indexOf('DST='))}`, 'no DST= field'],
    ['a bad address', real.replace('DST=198.51.100.53', 'DST=198.51.100.530'), 'DST=198.51.100.530 is not an address'],
    ['a bad protocol', real.replace('PROTO=UDP', 'PROTO=XYZ'), 'PROTO=XYZ is not a protocol'],
    ['a fragment (no ports)', real.replace(/SPT=\d+ DPT=\d+ /, ''), 'without SPT=/DPT='],
    ['a port out of range', real.replace('DPT=53', 'DPT=99999'), 'is not a port'],
    ['mixed families', real.replace('DST=198.51.100.53', 'DST=2001:db8::1'), 'different address families'],
    ['ICMP with IPv6 addresses', kline('egress', '2001:db8::1', '2001:db8::2', 'ICMP', 8), 'PROTO=ICMP with IPv6'],
    ['an unknown reason word', real.replace('audit:', 'audit bogus:'), 'unknown LOG prefix reason'],
    ['a non-numeric UID', real.replace('UID=0', 'UID=root'), 'UID=root is not a number'],
    ['a protocol named like an object property', real.replace('PROTO=UDP', 'PROTO=constructor'), 'PROTO=constructor is not a protocol'],
    ['a reason word named like an object property', real.replace('audit:', 'audit constructor:'), 'unknown LOG prefix reason "constructor"'],
  ])('%s is malformed, not a crash', (_name, text, why) => {
    const r = parseKernelLine(text, ctx());
    expect(r.kind).toBe('malformed');
    expect((r as { why: string }).why).toContain(why);
  });

  it.each([
    ['another kernel message', '[  925.496637] IPv6: th9w8: IPv6 duplicate address 2001:db8:1::66 used by 52:16:28:8f:1c:33 detected!'],
    ['a journal marker', '-- Boot 5f1c2a34b7e84e6c9d0a1b2c3d4e5f60 --'],
    ['a blank line', ''],
    ['a mention without a prefix', 'Nov 19 22:33:12 web1 systemd[1]: Started twinwall rules.'],
  ])('%s is foreign', (_name, text) => {
    expect(parseKernelLine(text, ctx()).kind).toBe('foreign');
  });

  it('reads the common envelopes byte by byte exactly as parseEnvelope reads them (property)', () => {
    const month = fc.constantFrom('Jan', 'Feb', 'Nov', 'Dec', 'Mov');
    const two = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, '0'));
    const pad = fc.constantFrom(' ', '  ', '\t', ' \t ');
    const seconds = fc.tuple(fc.integer({ min: 0, max: 999999 }), fc.integer({ min: 0, max: 999999 }), fc.constantFrom(6, 6, 3, 7)).map(([a, b, d]) => `${a}.${String(b).padStart(6, '0').slice(0, d).padEnd(d, '0')}`);
    const syslog = fc
      .tuple(fc.constantFrom('', ' '), month, pad, fc.integer({ min: 1, max: 31 }), pad, two, two, two, fc.constantFrom('', '.5', '.890113'), pad, fc.constantFrom('web1', 'ns-1.example', ''), fc.constantFrom(' ', '  '), fc.option(seconds), fc.constantFrom(' ', '', '  '))
      .map(([lead, m, p1, d, p2, h, mi, se, frac, p3, host, p4, boot, tail]) => `${lead}${m}${p1}${d}${p2}${h}:${mi}:${se}${frac}${p3}${host}${p4}kernel:${boot === null ? '' : ` [${boot.padStart(12)}]`}${tail}`);
    const dmesg = fc.tuple(seconds, fc.constantFrom('', ' ', '\t'), fc.constantFrom(' ', '  ')).map(([sec, inner, tail]) => `[${inner}${sec.padStart(12)}]${tail}`);
    fc.assert(
      fc.property(fc.oneof(syslog, dmesg), (envelope) => {
        const r = parseKernelLine(`${envelope}${message}`, ctx({ defaultHost: '(none)' }));
        const expected = parseEnvelope(envelope);
        expect(r.kind).toBe('observation');
        const o = (r as { observation: Observation }).observation;
        expect({ host: o.host, time: o.time }).toEqual({ host: expected?.host ?? '(none)', time: expected?.time });
      }),
      { numRuns: 500 },
    );
  });
});

describe('VPC Flow Logs', () => {
  const addresses = new AddressReader();
  const reader = (over: Partial<ConstructorParameters<typeof FlowLogReader>[0]> = {}) => new FlowLogReader({ source: 'f', defaultHost: 'h', addresses, ...over });

  it('parses a format from its header line or its ${field} string, and refuses one it cannot use (TW272)', () => {
    expect(parseFlowLogFormat('${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol}')).toEqual(['version', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol']);
    const unknown = caught(() => parseFlowLogFormat('version srcaddr dstaddr srcport dstport protocol colour'));
    expect(unknown.code).toBe(ERROR_CODES.FLOW_LOG_FORMAT_INVALID);
    expect(unknown.message).toContain('names "colour", which is not a VPC Flow Logs field');
    expect(caught(() => parseFlowLogFormat('version srcaddr dstaddr protocol')).message).toContain('lacks srcport, dstport');
  });

  it('who opened the connection: catalog port, well-known port, SYN-only or SYN-ACK-only flags, else the lower port (guessed)', () => {
    expect(serverSide('tcp', 50000, 443)).toEqual({ side: 'dst', guessed: false });
    expect(serverSide('tcp', 25, 41000)).toEqual({ side: 'src', guessed: false });
    expect(serverSide('udp', 40000, 514)).toEqual({ side: 'dst', guessed: false });
    expect(serverSide('tcp', 40000, 5432)).toEqual({ side: 'dst', guessed: true });
    expect(serverSide('tcp', 5432, 40000, 2)).toEqual({ side: 'dst', guessed: false });
    expect(serverSide('tcp', 40000, 5432, 18)).toEqual({ side: 'src', guessed: false });
  });

  it('default format: infers the interface address from the records it holds back, then attributes every record', () => {
    const r = reader();
    const results = V2.map((l, i) => r.push(l, i + 1));
    const events = [...results.flatMap((x) => x.events), ...r.finish()];
    expect(events.filter((e) => e.kind === 'unattributed')).toEqual([]);
    const direct = results.flatMap((x) => (x.result.kind === 'observation' ? [x.result.observation] : []));
    const obs = [...direct, ...events.flatMap((e) => (e.kind === 'observation' ? [e.observation] : []))];
    expect(obs).toHaveLength(31); // 36 lines: a header, NODATA, SKIPDATA and two malformed records
    expect(new Set(obs.map((o) => o.local.text))).toEqual(new Set(['10.20.1.10', '2001:db8:1::10']));
    const https = obs.filter((o) => o.port === 443);
    expect(new Set(https.map((o) => o.direction))).toEqual(new Set(['ingress']));
    expect(https.filter((o) => o.newFlow)).toHaveLength(6); // one per connection, the reply records are not new flows
    expect(results.map((x) => x.result.kind).filter((k) => k === 'malformed')).toHaveLength(2);
    expect(results.map((x) => x.result.kind).filter((k) => k === 'skipped')).toHaveLength(3); // header, NODATA, SKIPDATA
  });

  it('reports records of an interface that only ever talked to one peer as unattributed (it cannot tell which address is its own)', () => {
    const r = reader();
    const lines = ['2 1 eni-1 10.0.0.5 192.0.2.9 40000 443 6 3 300 1 2 ACCEPT OK', '2 1 eni-1 192.0.2.9 10.0.0.5 443 40000 6 3 300 1 2 ACCEPT OK'];
    const held = lines.map((l, i) => r.push(l, i + 1));
    expect(held.map((h) => h.result.kind)).toEqual(['held', 'held']);
    const end = r.finish();
    expect(end.map((e) => e.kind)).toEqual(['unattributed', 'unattributed']);
    expect((end[0] as { why: string }).why).toContain('only seen talking to one peer (10.0.0.5 and 192.0.2.9)');
    // … unless the host's block is declared.
    const declared = reader({ localCidrs: [Cidr.of('10.0.0.0/24')] });
    expect(declared.push(lines[0], 1).result).toMatchObject({ kind: 'observation', observation: { direction: 'egress', port: 443, remote: { text: '192.0.2.9' } } });
  });

  it('custom format: flow-direction says which address is the host, instance-id names it, pkt-srcaddr reveals a forged source', () => {
    const r = reader();
    const results = CUSTOM.map((l, i) => r.push(l, i + 1));
    expect(results[0].result.kind).toBe('skipped');
    const obs = results.flatMap((x) => (x.result.kind === 'observation' ? [x.result.observation] : []));
    expect(obs).toHaveLength(CUSTOM.length - 1);
    expect(new Set(obs.map((o) => o.host))).toEqual(new Set(['i-0aaaaaaaaaaaaaaa1', 'i-0bbbbbbbbbbbbbbb2']));
    const spoof = obs.filter((o) => o.reason === 'spoof');
    expect(spoof.map((o) => [o.local.text, o.remote.text])).toEqual([['10.99.0.1', '203.0.113.99']]);
  });

  it('a format given up front reads records without a header; a later header switches formats', () => {
    const r = reader({ format: '${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${flow-direction}' });
    expect(r.push('10.0.0.5 192.0.2.9 40000 443 6 egress', 1).result).toMatchObject({ kind: 'observation', observation: { direction: 'egress', remote: { text: '192.0.2.9' } } });
    expect(r.push(CUSTOM[0], 2).result.kind).toBe('skipped');
    expect(r.push(CUSTOM[1], 3).result.kind).toBe('observation');
    expect(r.push('10.0.0.5 192.0.2.9 40000 443 6 egress', 4).result).toMatchObject({ kind: 'malformed', why: '6 fields where the format has 23' });
  });

  it('a start no date can hold is malformed, not a crash', () => {
    const r = reader({ format: '${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${flow-direction}' });
    expect(r.push('10.0.0.5 192.0.2.9 40000 443 6 17320699173207004888 egress', 1).result).toMatchObject({ kind: 'malformed', why: 'start "17320699173207004888" is not a time' });
  });

  it('splits fields on any whitespace, Unicode spaces too, as before', () => {
    const r = reader({ format: '${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${flow-direction}' });
    expect(r.push('10.0.0.5\t192.0.2.9\u00a040000  443 6 egress ', 1).result).toMatchObject({ kind: 'observation', observation: { port: 443, remote: { text: '192.0.2.9' } } });
  });

  it('counts every flow-log record of the opening side as a flow, repeated ones too (one per capture window)', async () => {
    const line = '2 1 eni-1 10.0.0.5 192.0.2.9 40000 443 6 3 300 1732053600 1732053660 ACCEPT OK';
    const { observed } = await run([{ name: 'f', kind: 'flow', lines: [line, line, line.replace('192.0.2.9', '192.0.2.10')] }], { localCidrs: ['10.0.0.0/24'] });
    const [f] = observed.flows.flowsOf('eni-1');
    expect({ records: f.records, flows: f.flows }).toEqual({ records: 3, flows: 3 });
  });
});

describe('addresses', () => {
  /** An address's eight groups, spelled the ways logs and people write IPv6. */
  const spelled = fc.tuple(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }), fc.nat(), fc.boolean()).map(([groups, pick, upper]) => {
    const hex = groups.map((g) => g.toString(16));
    const forms = [hex.join(':'), groups.map((g) => g.toString(16).padStart(4, '0')).join(':')];
    // Compress each run of zero groups.
    for (let i = 0; i < 8; i++) {
      for (let j = i + 1; j <= 8; j++) {
        if (groups.slice(i, j).every((g) => g === 0)) forms.push(`${hex.slice(0, i).join(':')}::${hex.slice(j).join(':')}`);
      }
    }
    const text = forms[pick % forms.length];
    return { groups, text: upper ? text.toUpperCase() : text };
  });

  it('reads every plain IPv6 spelling to the value and canonical text ipaddr.js gives (property)', () => {
    fc.assert(
      fc.property(spelled, ({ groups, text }) => {
        const a = new AddressReader().read(text);
        const expected = ipaddr.IPv6.parse(text);
        expect(expected.parts).toEqual(groups);
        expect(a).toEqual({ family: 6, value: groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n), text: expected.toRFC5952String() });
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts exactly what ipaddr.js and the dotted-quad rule accept, on random text (property)', () => {
    const token = fc.array(fc.constantFrom('0', '1', '9', 'a', 'f', 'F', 'g', ':', '::', '.', '255', '256', '01', 'ffff', '12345', '%', ' '), { minLength: 1, maxLength: 12 }).map((t) => t.join(''));
    fc.assert(
      fc.property(token, (text) => {
        const got = new AddressReader().read(text);
        let expected: { family: number; value: bigint } | undefined;
        if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(text)) {
          const octets = text.split('.');
          if (octets.every((o) => Number(o) <= 255 && !(o.length > 1 && o[0] === '0'))) expected = { family: 4, value: octets.reduce((v, o) => (v << 8n) | BigInt(o), 0n) };
        } else if (text.includes(':') && !text.includes('%')) {
          try {
            expected = { family: 6, value: ipaddr.IPv6.parse(text).parts.reduce((v, g) => (v << 16n) | BigInt(g), 0n) };
          } catch {
            expected = undefined;
          }
        }
        expect(got === undefined ? undefined : { family: got.family, value: got.value }).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('address covers (AddressSet, Cidr)', () => {
  const v4 = (t: string) => Cidr.host(t).first;

  it('are exact when there are few blocks', () => {
    const c = coverAddresses(4, ['198.51.100.21', '198.51.100.22', '198.51.100.23'].map(v4), [], { widestPrefix: 24, maxBlocks: 4 });
    expect(c.cidrs.map((x) => x.text)).toEqual(['198.51.100.21/32', '198.51.100.22/31']);
    expect(c.widened).toBe(false);
  });

  it('group by the longest prefix that fits the block budget, never wider than the widest prefix', () => {
    const points = [1, 2, 3, 9, 17, 33].map((i) => v4(`192.0.2.${i}`)).concat([v4('203.0.113.7')]);
    const c = coverAddresses(4, points, [], { widestPrefix: 24, maxBlocks: 2 });
    expect(c.cidrs.map((x) => x.text)).toEqual(['192.0.2.0/26', '203.0.113.7/32']);
    expect(c).toMatchObject({ widened: true, spread: false, unseen: 58n }); // 64 in the /26, 6 of them seen
    const spread = coverAddresses(4, points, [], { widestPrefix: 28, maxBlocks: 2 });
    expect(spread.spread).toBe(true);
    expect(spread.cidrs.every((x) => x.prefix >= 28)).toBe(true);
  });

  it('always cover what was seen, respect the widest prefix, and depend only on the set (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4095 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 20, max: 32 }), (offsets, maxBlocks, widest) => {
        const base = v4('198.51.96.0');
        const points = offsets.map((o) => base + BigInt(o));
        const a = coverAddresses(4, points, [], { widestPrefix: widest, maxBlocks });
        const b = coverAddresses(4, [...points].reverse(), [], { widestPrefix: widest, maxBlocks });
        expect(a.cidrs.map((c) => c.text)).toEqual(b.cidrs.map((c) => c.text));
        const covered = AddressSet.of(4, a.cidrs);
        for (const p of points) expect(covered.contains(p)).toBe(true);
        const exact = AddressSet.fromIntervals(4, points.map((p) => [p, p] as const)).toCidrs();
        if (exact.length <= maxBlocks) expect(a.cidrs.map((c) => c.text)).toEqual(exact.map((c) => c.text));
        else expect(a.cidrs.every((c) => c.prefix >= widest)).toBe(true);
        if (!a.spread) expect(a.cidrs.length).toBeLessThanOrEqual(maxBlocks);
      }),
      { numRuns: 150 },
    );
  });
});

describe('aggregation', () => {
  it('counts packets and flows, tells retransmissions from new flows, keeps first/last and a few samples', () => {
    const agg = new Aggregator({ samples: 2 });
    const lines = [
      kline('egress', '203.0.113.20', '192.0.2.25', 'TCP', 25, { t: 10, spt: 41000 }),
      kline('egress', '203.0.113.20', '192.0.2.25', 'TCP', 25, { t: 11, spt: 41000 }), // SYN retransmitted (enforcing mode)
      kline('egress', '203.0.113.20', '192.0.2.26', 'TCP', 25, { t: 5, spt: 41001 }),
    ];
    lines.forEach((l, i) => agg.add(observation(l, { line: i + 1 })));
    const [f] = agg.flowsOf('h');
    expect({ packets: f.packets, flows: f.flows, distinct: f.distinctRemotes, samples: f.samples.map((s) => s.line), first: f.first.ref.line, last: f.last.ref.line }).toEqual({
      packets: 3,
      flows: 2,
      distinct: 2,
      samples: [1, 2],
      first: 3, // earliest by boot time, though read last
      last: 2,
    });
  });

  it('stays bounded: addresses coarsen past maxAddresses, ports past maxPorts land in one "many ports" flow', () => {
    const agg = new Aggregator({ maxAddresses: 100, maxPorts: 10 });
    for (let i = 0; i < 5000; i++) agg.add(observation(kline('egress', '203.0.113.20', formatAddress(4, 0xc0000000n + BigInt(i * 97)), 'UDP', 1434)));
    for (let p = 1; p <= 50; p++) agg.add(observation(kline('ingress', '192.0.2.1', '203.0.113.20', 'TCP', 10000 + p)));
    const flows = agg.flowsOf('h');
    const udp = flows.find((f) => f.port === 1434);
    expect(udp?.remotes[4].points.size).toBe(100);
    expect(udp?.remotes[4].blocks.size).toBeLessThanOrEqual(100);
    expect(udp?.remotes[4].overflow).toBeGreaterThan(0);
    expect(flows.filter((f) => f.direction === 'ingress')).toHaveLength(11);
    expect(flows.find((f) => f.manyPorts)?.packets).toBe(40);
  });

  it('renames hosts through aliases', () => {
    const agg = new Aggregator({}, new Map([['web1', 'web']]));
    agg.add(observation(`Nov 19 22:33:12 web1 kernel: ${kline('ingress', '192.0.2.1', '203.0.113.20', 'TCP', 80).slice(15)}`));
    expect(agg.hosts).toEqual(['web']);
  });
});

describe('the proposal', () => {
  it('kernel lines of an audit-mode host: web, mail and DNS roles; the burst, metadata and forged source flagged', async () => {
    const { proposal, observed } = await run([{ name: 'dmesg', kind: 'kernel', lines: DMESG, host: 'learnlab' }], { scanThreshold: 10 });
    expect(observed.inputs[0]).toMatchObject({ lines: 27, observations: 27, malformed: 0, foreign: 0 });
    const [h] = proposal.hosts;
    expect(h.roles.map((r) => r.role)).toEqual(['webServer', 'mailServer', 'dnsClient']);
    expect(h.flags.map((f) => f.kind).sort()).toEqual(['metadata-non-root', 'non-local-source', 'scan']);
    // With the default threshold (32 destinations) twelve are not yet a scan: the flow stays a custom flow.
    const lenient = await run([{ name: 'dmesg', kind: 'kernel', lines: DMESG, host: 'learnlab' }]);
    expect(lenient.proposal.hosts[0].flags.map((f) => f.kind).sort()).toEqual(['metadata-non-root', 'non-local-source']);
  });

  it('default-format flow logs: web, mail, SSH and DNS roles; a network-rejected flow is not proposed; widened blocks and anywhere', async () => {
    const { proposal } = await run([{ name: 'v2', kind: 'flow', lines: V2 }], { aliases: { 'eni-0a1b2c3d4e5f60001': 'sample' } });
    const [h] = proposal.hosts;
    expect(h.name).toBe('sample');
    expect(Object.fromEntries(h.roles.map((r) => [r.role, r.code]))).toEqual({
      webServer: "webServer({ sources: [Peer.ipv4('192.0.2.140/32'), Peer.ipv4('198.51.100.200/32'), Peer.ipv4('203.0.113.5/32'), Peer.ipv4('203.0.113.6/32'), Peer.ipv6('2001:db8:ff::5/128'), Peer.ipv6('2001:db8:ff::6/128')] })",
      mailServer: "mailServer({ sources: [Peer.ipv4('192.0.2.25/32')], deliverTo: [Peer.ipv4('192.0.2.26/32'), Peer.ipv4('203.0.113.26/32')] })",
      sshAdmin: "sshAdmin({ from: [Peer.ipv4('198.51.100.10/32')] })",
      dnsClient: "dnsClient({ resolvers: [Peer.ipv4('10.20.0.2/32')] })",
    });
    const rdp = h.flows.find((f) => f.id === 'ingress tcp/3389');
    expect(rdp).toMatchObject({ disposition: 'not-a-rule', why: 'every record was rejected by the network wall' });
    expect(h.custom.map((c) => c.covers)).toEqual([['ingress icmp/all'], ['egress tcp/80']]);
    expect(h.notes.some((n) => n.includes('egress tcp/80 from a web server'))).toBe(true);
    // A tight block budget groups the HTTPS clients (/24 at most) and, when even that is too many, admits any address of that family.
    const grouped = await run([{ name: 'v2', kind: 'flow', lines: V2 }], { maxBlocks: 3 });
    expect(grouped.proposal.hosts[0].roles.find((r) => r.role === 'webServer')?.code).toBe(
      "webServer({ sources: [Peer.ipv4('192.0.2.140/32'), Peer.ipv4('198.51.100.200/32'), Peer.ipv4('203.0.113.4/30'), Peer.ipv6('2001:db8:ff::5/128'), Peer.ipv6('2001:db8:ff::6/128')] })",
    );
    const spread = await run([{ name: 'v2', kind: 'flow', lines: V2 }], { maxBlocks: 2 });
    expect(spread.proposal.hosts[0].roles.find((r) => r.role === 'webServer')?.code).toBe("webServer({ sources: [Peer.anyIpv4(), Peer.ipv6('2001:db8:ff::5/128'), Peer.ipv6('2001:db8:ff::6/128')] })");
    expect(spread.proposal.hosts[0].flows.find((f) => f.id === 'ingress tcp/443')?.remote.anywhere).toEqual([4]);
  });

  it('custom-format flow logs: a mail server delivering widely is no scan; its udp/1434 burst is; SMTP from a non-mail host is flagged; neighbouring ports merge', async () => {
    const { proposal } = await run([{ name: 'custom', kind: 'flow', lines: CUSTOM }]);
    const [mail, app] = proposal.hosts;
    expect(mail.roles.map((r) => [r.role, r.code])).toEqual([['mailServer', "mailServer({ sources: [Peer.ipv4('192.0.2.1/32'), Peer.ipv4('192.0.2.2/31'), Peer.ipv4('192.0.2.4/31'), Peer.ipv6('2001:db8:ff::1/128')] })"]]);
    expect(mail.flags.map((f) => [f.kind, f.flow])).toEqual([
      ['non-local-source', 'egress udp/53 (spoof)'],
      ['scan', 'egress udp/1434'],
    ]);
    expect(mail.flags[1].evidence).toMatchObject({ distinctRemotes: 50, flows: 50, samples: [{ line: 94 }, { line: 95 }, { line: 96 }] });
    expect(app.flags.map((f) => f.kind)).toEqual(['smtp-without-mail-role']);
    expect(app.custom.map((c) => c.code)).toEqual([
      "...[Peer.ipv4('10.20.1.5/32'), Peer.ipv4('10.20.1.6/32')].map((peer) => Flow.ingress(Port.tcp(8080), peer, 'learned: 2 flows from 2 addresses, seen 2024-11-19T22:07:24.000Z to 2024-11-19T22:07:33.000Z', { service: 'http-alt' }))",
      "Flow.egress(Port.tcp(443), Peer.ipv4('198.51.100.200/32'), 'learned: 1 flow to 1 address, seen 2024-11-19T22:07:18.000Z to 2024-11-19T22:07:21.000Z', { service: 'https' })",
      "Flow.egress(Port.tcpRange(5432, 5433), Peer.ipv4('10.20.3.7/32'), 'learned: 2 flows on 2 ports to 1 address block, seen 2024-11-19T22:07:36.000Z to 2024-11-19T22:07:45.000Z')",
    ]);
    // A host the deployed app gives the mail role may send SMTP.
    const known = await run([{ name: 'custom', kind: 'flow', lines: CUSTOM }], { mailHosts: new Set(['i-0bbbbbbbbbbbbbbb2']) });
    expect(known.proposal.hosts[1].flags).toEqual([]);
  });

  it('does not propose IPv4 ICMP type 255 (to iptables every type; Port.icmpType refuses it), and says so', async () => {
    const H = '203.0.113.20';
    const { proposal } = await run([{ name: 'k', kind: 'kernel', host: 'pinged', lines: [kline('ingress', '192.0.2.1', H, 'ICMP', 255), kline('ingress', '192.0.2.1', H, 'ICMP', 13)] }]);
    const [h] = proposal.hosts;
    expect(h.custom.map((c) => c.code)).toEqual(["Flow.ingress(Port.icmpType(13), Peer.ipv4('192.0.2.1/32'), 'learned: 1 flow from 1 address, seen 100.000000 s after boot')"]);
    expect(h.notes.join('\n')).toMatch(/ICMP type 255 is reserved.*TW113.*not proposed/);
  });

  it('DNS servers, NTP, AWS link-local helpers, SSH from too many, open resolvers, INVALID and forwarded packets', async () => {
    const H = '203.0.113.20';
    const lines = resolverLines(H).map((l) => `Nov 19 22:00:00 ns1 kernel: ${l.slice(15)}`);
    const fwd = '[  100.000000] twinwall forward audit: IN=eth0 OUT=eth1 SRC=192.0.2.1 DST=198.51.100.1 LEN=60 PROTO=TCP SPT=1 DPT=80 SYN ';
    const auth = [kline('ingress', '192.0.2.77', H, 'UDP', 53), kline('egress', H, '169.254.169.253', 'UDP', 53)];
    const { proposal } = await run(
      [
        { name: 'ns1', kind: 'kernel', lines },
        { name: 'gw', kind: 'kernel', lines: [fwd], host: 'gw' },
        { name: 'ns2', kind: 'kernel', lines: auth, host: 'ns2' },
      ],
      { maxBlocks: 4 },
    );
    const byName = Object.fromEntries(proposal.hosts.map((h) => [h.name, h]));
    expect(byName.ns1.roles.map((r) => r.code)).toEqual(["dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.1/32'), Peer.ipv4('10.0.0.2/31')] })", 'ntpClient()']);
    expect(byName.ns1.flags.map((f) => f.kind)).toEqual(['ssh-from-many']);
    expect(byName.ns1.custom.map((c) => c.code)).toEqual([
      "Flow.ingress(Port.icmpv6Type(128), Peer.ipv6('2001:db8:ff::8/128'), 'learned: 1 flow from 1 address, seen Nov 19 22:00:00')",
    ]);
    expect(byName.ns1.notes.join('\n')).toContain('conntrack called INVALID');
    expect(byName.ns1.notes.join('\n')).toContain("root reached instance metadata 1 time; the default instanceMetadata 'root-only' admits it");
    expect(byName.gw.flags.map((f) => f.kind)).toEqual(['forwarding']);
    expect(byName.ns2.roles.map((r) => r.code)).toEqual(["dnsServer({ mode: 'authoritative', sources: [Peer.ipv4('192.0.2.77/32')] })", 'dnsClient()']);
    // The same resolver answering the whole Internet is an open resolver: flagged, never proposed.
    const open = await run([{ name: 'open', kind: 'kernel', host: 'open', lines: [...Array.from({ length: 40 }, (_, i) => kline('ingress', `192.0.${i}.1`, H, 'UDP', 53)), ...Array.from({ length: 40 }, (_, i) => kline('egress', H, `198.51.${i}.1`, 'UDP', 53))] }], { maxBlocks: 4 });
    expect(open.proposal.hosts[0].flags.map((f) => f.kind)).toEqual(['open-resolver', 'scan']);
  });

  it('counts malformed and foreign lines with their line numbers; LEARN_NO_INPUT without inputs', async () => {
    const lines = ['garbage', DMESG[0], DMESG[0].replace('PROTO=UDP', 'PROTO=??'), '', DMESG[1]];
    const { observed } = await run([{ name: 'mixed', kind: 'kernel', lines }]);
    expect(observed.malformed).toMatchObject({ count: 1, first: [{ source: 'mixed', line: 3, why: 'PROTO=?? is not a protocol' }] });
    expect(observed.foreign).toMatchObject({ count: 2, first: [{ line: 1 }, { line: 4 }] });
    const md = renderMarkdown(observed, (await run([{ name: 'mixed', kind: 'kernel', lines }])).proposal, undefined);
    expect(md).toContain('- mixed:3: PROTO=?? is not a protocol');
    await expect(run([])).rejects.toMatchObject({ code: ERROR_CODES.LEARN_NO_INPUT });
  });

  it('streams: a 100,000-line generator goes through with bounded state', async () => {
    function* many(): Generator<string> {
      for (let i = 0; i < 100000; i++) yield kline('ingress', formatAddress(4, 0xcb007100n + BigInt(i % 200)), '203.0.113.20', 'TCP', 443, { spt: 1024 + (i % 50000) });
    }
    const { observed } = await run([{ name: 'gen', kind: 'kernel', lines: many() }]);
    const [f] = observed.flows.flowsOf('host');
    expect({ records: f.records, distinct: f.distinctRemotes, samples: f.samples.length }).toEqual({ records: 100000, distinct: 200, samples: 3 });
  });

  it('bytes in chunks split anywhere (inside a line, a UTF-8 character or a CRLF) read as the same lines (property)', async () => {
    const text = `${DMESG.slice(0, 8).join('\r\n')}\nnot ours: é ü\r\n${V2[3]}\n\n${DMESG[9]}`;
    const bytes = Buffer.from(text, 'utf8');
    const asLines = JSON.parse(renderJson(...(await (async () => {
      const r = await run([{ name: 'x', kind: 'kernel', lines: text.split('\n') }]);
      return [r.observed, r.proposal, undefined] as const;
    })())));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        async function* chunks(): AsyncGenerator<Uint8Array> {
          for (let i = 1; i < at.length; i++) yield bytes.subarray(at[i - 1], at[i]);
        }
        const r = await run([{ name: 'x', kind: 'kernel', bytes: chunks() }]);
        expect(JSON.parse(renderJson(r.observed, r.proposal, undefined))).toEqual(asLines);
      }),
      { numRuns: 100 },
    );
  });
});

describe('hostile lines', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-learn-long-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ok = (n: number) => kline('ingress', `192.0.2.${n}`, '203.0.113.20', 'TCP', 443);
  /** A line that starts like ours and goes on for megabytes. */
  const long = (mb: number) => `${ok(99).slice(0, 60)}${'SRC=198.51.100.7 '.repeat(Math.ceil((mb * 1048576) / 17))}`;

  it('a multi-megabyte line is skipped unread, counted and listed, and the lines around it keep their numbers', async () => {
    const file = path.join(dir, 'long.log');
    // Line 2 is 5 MB (it spans several 1 MiB reads); line 4, 3 MB, ends the file without a newline.
    fs.writeFileSync(file, [ok(1), long(5), ok(3), long(3)].join('\n'));
    const r = await cli(['--from-kernel-log', file, '--host', 'web', '--format', 'json']);
    expect(r.err).toBe('twinwall learn: 4 lines, 1 host, 0 flagged, 2 lines over 65536 bytes skipped\n');
    const doc = JSON.parse(r.out) as { inputs: { lines: number; observations: number; skipped: number }[]; problems: { oversized: { count: number; reasons: Record<string, number>; first: { line: number; text: string }[] } }; hosts: { flows: { evidence: { samples: { line: number }[] } }[] }[] };
    expect(doc.inputs[0]).toMatchObject({ lines: 4, observations: 2, skipped: 2 });
    expect(doc.problems.oversized.count).toBe(2);
    expect(doc.problems.oversized.reasons).toEqual({ 'longer than 65,536 bytes': 2 });
    expect(doc.problems.oversized.first.map((p) => p.line)).toEqual([2, 4]);
    expect(doc.problems.oversized.first.every((p) => p.text.length === 300 && p.text.startsWith(long(0).slice(0, 60)))).toBe(true);
    expect(doc.hosts[0].flows[0].evidence.samples.map((x) => x.line)).toEqual([1, 3]);
    const md = await cli(['--from-kernel-log', file, '--host', 'web']);
    expect(md.out).toContain('**Lines longer than 65,536 bytes, skipped unread: 2** (longer than 65,536 bytes: 2)');
    expect(md.out).toContain(`- ${file}:2: longer than 65,536 bytes`);
  });

  it('holds to --max-line-bytes, and reads bytes in small chunks the same way', async () => {
    const file = path.join(dir, 'cap.log');
    fs.writeFileSync(file, `${ok(1)}\n${ok(2).padEnd(2000, ' ')}\n${ok(3)}\n`);
    const r = await cli(['--from-kernel-log', file, '--host', 'web', '--max-line-bytes', '1024', '--format', 'json']);
    expect(JSON.parse(r.out).problems.oversized).toMatchObject({ count: 1, first: [{ line: 2 }] });
    const bytes = Buffer.from([ok(1), long(3), ok(3)].join('\n'));
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < bytes.length; i += 4096) yield bytes.subarray(i, i + 4096);
    }
    const { observed } = await run([{ name: 'x', kind: 'kernel', bytes: chunks(), host: 'web' }]);
    expect({ lines: observed.inputs[0].lines, skipped: observed.inputs[0].skipped, observations: observed.inputs[0].observations, long: observed.oversized.first.map((p) => p.line) }).toEqual({ lines: 3, skipped: 1, observations: 2, long: [2] });
    const lines = await run([{ name: 'x', kind: 'kernel', lines: [ok(1), long(1), ok(3)], host: 'web' }]);
    expect(lines.observed.oversized.count).toBe(1);
  });

  it.each([
    ['--max-line-bytes 100', ['--max-line-bytes', '100'], '--max-line-bytes 100 must be a whole number from 1024 to 67108864'],
  ])('%s is bad usage', async (_name, args, message) => {
    await expect(cli(['--from-kernel-log', path.join(FIXTURES, 'dmesg-audit.log'), ...args])).rejects.toThrow(message);
  });
});

describe('--against the example app (golden synth JSON)', () => {
  const checks = checkStacks(loadStacks(path.join(__dirname, 'golden', 'synth', 'production.cdk.tf.json'))).hosts;

  it('lists what would break when enforced and what was never used, per host', async () => {
    const { observed, proposal } = await run([{ name: 'v2', kind: 'flow', lines: V2 }], { aliases: { 'eni-0a1b2c3d4e5f60001': 'sample' } });
    const against = compareAgainst(proposal, checks, observed.flows);
    const sample = against.find((a) => a.host === 'sample');
    expect(sample?.artefact).toBe('synth/sample');
    expect(sample?.blocked.map((b) => `${b.flow} | ${b.wall} | ${b.remotes}`)).toEqual([
      'ingress tcp/3389 | both walls | 203.0.113.200/32',
      'ingress icmp/all | both walls | 192.0.2.10/32',
      'egress tcp/80 | both walls | 203.0.113.80/32',
    ]);
    const blocked = Object.fromEntries((sample?.blocked ?? []).map((b) => [b.flow, b.wall]));
    expect(blocked['egress tcp/80']).toBe('both walls'); // no HTTP out from the sample server
    expect(blocked['ingress tcp/443']).toBeUndefined(); // HTTPS from anywhere is allowed
    expect(blocked['egress tcp/25']).toBeUndefined();
    // SMTP in over IPv6 was never seen; over IPv4 it was.
    expect(sample?.notObserved?.some((r) => r.wall === 'network wall' && r.rule.includes('ingress-tcp-25-from-x-0'))).toBe(true);
    expect(sample?.notObserved?.some((r) => r.rule.includes('ingress-tcp-25-from-0-0-0-0-0'))).toBe(false);
    // The example ships the nftables wall: a position counts the inet chain, whose IPv4 rules come first.
    expect(sample?.notObserved?.some((r) => r.wall === 'host wall' && r.rule === 'IPv6 tw-in rule 5: mailServer/smtp: receiving mail from other mail servers')).toBe(true);
    expect(sample?.notObserved?.some((r) => r.rule.includes('ingress-tcp-443-from-0-0-0-0-0'))).toBe(false);
    expect(sample?.caveats).toEqual([]);
    expect(against.filter((a) => a.notObserved === undefined).map((a) => a.artefact).sort()).toEqual(['synth/app', 'synth/db', 'synth/resolver', 'synth/web']);
  });
});

describe('the command line', () => {
  // In process, but `--against` checks a whole example stack: seconds on a loaded 2-core machine.
  jest.setTimeout(60_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-learn-cli-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads several inputs, names hosts, renders markdown, and exits 1 on flags', async () => {
    const r = await cli(['--from-kernel-log', `learnlab=${path.join(FIXTURES, 'dmesg-audit.log')}`, '--from-flow-logs', path.join(FIXTURES, 'flowlogs-custom.log'), '--scan-threshold', '10']);
    expect(r.exit).toBe(1);
    expect(r.out).toContain('## learnlab');
    expect(r.out).toContain('## i-0bbbbbbbbbbbbbbb2');
    expect(r.out).toContain('- **scan**: egress udp/1434 12 flows to 12 addresses');
    expect(r.err).toMatch(/^twinwall learn: 183 lines, 3 hosts, 6 flagged\n$/);
  });

  it('exits 0 when nothing is flagged; --format ts writes the snippet; --no-audit drops { audit: true }', async () => {
    const file = path.join(dir, 'web.log');
    fs.writeFileSync(file, `${kline('ingress', '192.0.2.1', '203.0.113.20', 'TCP', 443)}\n`);
    const r = await cli(['--from-kernel-log', file, '--host', 'web', '--format', 'ts', '--no-audit', '--import-from', 'twinwall']);
    expect(r.exit).toBe(0);
    expect(r.out).toContain("import { HostPolicy, Peer, webServer } from 'twinwall';");
    expect(r.out).not.toContain('audit: true');
  });

  it('with --against, observed-but-not-allowed is a finding', async () => {
    const r = await cli(['--from-flow-logs', `sample=${path.join(FIXTURES, 'flowlogs-v2.log')}`, '--against', path.join(__dirname, 'golden', 'synth', 'production.cdk.tf.json'), '--format', 'json']);
    const doc = JSON.parse(r.out) as { against: { artefact: string; blocked: unknown[] }[] };
    expect(doc.against.find((a) => a.artefact === 'synth/sample')?.blocked).toHaveLength(3);
    expect(r.exit).toBe(1);
  });

  it.each([
    [[], 'give at least one --from-kernel-log FILE, --from-flow-logs FILE or --from-query-result FILE'],
    [['--from-kernel-log', '/nonexistent/kern.log'], 'cannot read /nonexistent/kern.log: ENOENT'],
    [['--from-kernel-log', '-', '--from-flow-logs', '-'], 'standard input ("-") can be read only once'],
    [['--from-kernel-log', path.join(FIXTURES, 'dmesg-audit.log'), '--alias', 'nonsense'], '--alias nonsense must be FROM=TO'],
    [['--from-kernel-log', path.join(FIXTURES, 'dmesg-audit.log'), '--widest-prefix', '7'], '--widest-prefix 7 must be a whole number from 8 to 32'],
    [['--from-flow-logs', path.join(FIXTURES, 'flowlogs-v2.log'), '--flow-log-format', 'srcaddr dstaddr'], 'TW272 FLOW_LOG_FORMAT_INVALID'],
    [['--from-flow-logs', path.join(FIXTURES, 'flowlogs-v2.log'), '--local', '10.20.1.10'], 'TW101 CIDR_NO_MASK'],
    [['--from-flow-logs', path.join(FIXTURES, 'flowlogs-v2.log'), '--against', '/nonexistent'], '/nonexistent does not exist'],
  ])('bad usage %j is a UsageError with a one-line reason', async (args, message) => {
    const e = await cli(args as string[]).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toContain(message);
    expect((e as Error).message).not.toContain('\n');
  });
});

describe('the proposed TypeScript', () => {
  /** Type-check snippets against the real lib with the project's compiler options. */
  function typeCheck(snippets: readonly string[]): string[] {
    const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, incremental: false, tsBuildInfoFile: undefined, composite: false };
    const files = new Map(snippets.map((text, i) => [path.join(ROOT, `__learned_${i}__.ts`), text]));
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, language, onError, fresh) => (files.has(name) ? ts.createSourceFile(name, files.get(name) as string, language) : getSourceFile(name, language, onError, fresh));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => files.has(name) || fileExists(name);
    const readFile = host.readFile.bind(host);
    host.readFile = (name) => files.get(name) ?? readFile(name);
    const program = ts.createProgram([...files.keys()], options, host);
    return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  }

  /** Run a snippet: every exported policy must compose (roles validate their peers at run time). */
  function evaluate(snippet: string): Record<string, HostPolicy> {
    const js = ts.transpileModule(snippet, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText;
    const module = { exports: {} as Record<string, HostPolicy> };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lib = require('../lib');
    new Function('require', 'exports', 'module', js)((m: string) => (m === './lib' || m === 'twinwall' ? lib : require(m)), module.exports, module);
    return module.exports;
  }

  it('compiles against the real lib and composes, for every proposal above', async () => {
    const H = '203.0.113.20';
    const variety = [
      ...[1, 2, 3].map((i) => kline('ingress', `10.0.0.${i}`, H, 'UDP', 53)),
      ...Array.from({ length: 40 }, (_, i) => kline('egress', H, `192.0.2.${i + 1}`, 'UDP', 53)),
      kline('egress', H, '169.254.169.123', 'UDP', 123),
      kline('egress', H, '198.51.100.123', 'UDP', 123),
      kline('ingress', '2001:db8:ff::8', '2001:db8:2::20', 'ICMPv6', 128),
      kline('ingress', '192.0.2.8', H, 'ICMP', 8),
      ...Array.from({ length: 40 }, (_, i) => kline('ingress', `198.51.${i}.7`, H, 'TCP', 587)),
      kline('egress', H, '198.51.100.9', 'UDP', 33434),
      kline('egress', H, '198.51.100.9', 'UDP', 33435),
      kline('egress', H, '198.51.100.9', 'UDP', 33436),
    ];
    const results = await Promise.all([
      run([{ name: 'dmesg', kind: 'kernel', lines: DMESG, host: 'learnlab' }], { scanThreshold: 10 }),
      run([{ name: 'v2', kind: 'flow', lines: V2 }]),
      run([{ name: 'v2', kind: 'flow', lines: V2 }], { maxBlocks: 3 }),
      run([{ name: 'custom', kind: 'flow', lines: CUSTOM }]),
      run([{ name: 'variety', kind: 'kernel', lines: variety, host: 'web.example.com' }], { maxBlocks: 4 }),
    ]);
    const snippets = results.map((r) => renderTypeScript(r.proposal));
    expect(typeCheck(snippets)).toEqual([]);
    const composed = snippets.map(evaluate);
    expect(Object.keys(composed[0])).toEqual(['learnlabPolicy']);
    expect(composed[0].learnlabPolicy).toBeInstanceOf(HostPolicy);
    expect(composed[0].learnlabPolicy.roles.map((r) => r.name)).toEqual(['webServer', 'mailServer', 'dnsClient']);
    expect(composed[0].learnlabPolicy.options.audit).toBe(true);
    expect(Object.keys(composed[3])).toEqual(['i0aaaaaaaaaaaaaaa1Policy', 'i0bbbbbbbbbbbbbbb2Policy']);
    const variety4 = composed[4].webExampleComPolicy;
    expect(variety4.name).toBe('web-example-com');
    expect(variety4.roles.map((r) => r.name)).toEqual(['dnsServer', 'ntpClient', 'learned']);
    // The JSON carries the same snippet and every flow's evidence.
    const json = JSON.parse(renderJson(results[0].observed, results[0].proposal, undefined)) as { typescript: string; hosts: { flows: { evidence: { samples: unknown[] } }[] }[] };
    expect(json.typescript).toBe(snippets[0]);
    expect(json.hosts[0].flows.every((f) => f.evidence.samples.length > 0)).toBe(true);
  }, 60000);
});
