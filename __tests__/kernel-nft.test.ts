/**
 * Kernel tier, nftables backend: the nftables wall (lib/render/nftables.ts) judged by real packets
 * in network namespaces, against the iptables wall of the same policy.
 *
 * - Differential, every role fixture: the fixture is synthesized through FilteredHost, checked, and
 *   `twinwall verify`'s probe plan (hundreds of TCP/UDP connections both ways at every port and
 *   CIDR edge, forged-source raw packets, the link-local services as root and as nobody) runs once
 *   against the user-data's iptables wall and once against the nftables file: every probe must get
 *   the same verdict, and (audit mode aside) the security groups' verdict.
 * - Coexistence: Docker-style tables (iptables-nft's `ip filter` and `ip nat` with DOCKER chains)
 *   and an `inet` table whose chains accept everything survive loads and reloads of the twinwall
 *   table, which still drops what it must; iptables-restore, by contrast, wipes the DOCKER chain.
 * - Audit mode: nothing is dropped, and the kernel's log lines carry the prefixes `twinwall learn`
 *   reads; learn draws the same conclusions from the nftables wall's lines as from iptables'.
 *
 * Only the namespaces carry traffic; every address is from the documentation ranges.
 */
import { execFileSync } from 'child_process';
import { Testing } from 'cdktf';
import { loadNftablesWall, verifyHost } from '../cli/verify';
import { FilteredHost } from '../constructs';
import { AWS_LINK_LOCAL, HostPolicy, Peer, sshAdmin } from '../lib';
import { HostCheck, PlannedProbe, checkStacks, planProbes } from '../lib/check';
import { learn } from '../lib/learn';
import { logPrefix, renderIptables, renderNftables } from '../lib/render';
import { ADMIN_LAN, ROLE_FIXTURES, edgePolicy, sampleServer } from './support/fixtures';
import { NetnsLab, Probe, ProbeResult } from './support/netns';
import { dmesgReadable, nfLog, withNfLogAllNetns } from './support/nf-log';
import { ADMIN4, DEFENDED6, FORGED4, FORGED6, GW4, GW6, HOST4, HOST6, IMDS4, NOBODY, OUTSIDE4, OUTSIDE6, RESOLVER_A as RESOLVER } from './support/sample-lab';
import { describeTier, ipset, netns, nft, onPath, root } from './support/tiers';

const quiet = { timeoutMs: 1000, verbose: false, out: () => undefined };

interface Subject {
  readonly name: string;
  readonly policy: () => HostPolicy;
  readonly ipsetThreshold?: number;
}

const SUBJECTS: readonly Subject[] = [
  ...Object.entries(ROLE_FIXTURES).map(([name, policy]) => ({ name, policy })),
  { name: 'edge', policy: () => edgePolicy() },
  // Every address set a set: interval sets against ipsets, on security-group and prefix-list CIDRs too.
  { name: 'edge, every address set a set', policy: () => edgePolicy(), ipsetThreshold: 1 },
  { name: 'sample, every address set a set', policy: () => sampleServer(), ipsetThreshold: 1 },
];

/**
 * The subject synthesized through FilteredHost with the iptables wall and checked, as `twinwall
 * check` sees it: verifyHost's default loader loads the user-data's iptables wall, the other run
 * the nftables file.
 */
function checked(subject: Subject): HostCheck {
  const json = Testing.synthScope((scope) => {
    new FilteredHost(scope, 'host', {
      policy: subject.policy(),
      hostFirewall: 'iptables',
      vpcId: 'vpc-0123456789abcdef0',
      instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' },
      ...(subject.ipsetThreshold === undefined ? {} : { ipsetThreshold: subject.ipsetThreshold }),
    });
  });
  const report = checkStacks([{ name: 'fixture', json: JSON.parse(json) }]);
  if (report.hosts.length !== 1) throw new Error(`${subject.name}: ${report.hosts.length} hosts checked (${report.problems.join('; ')})`);
  // Else both runs would load the nftables wall, and the differential would compare it with itself.
  if (report.hosts[0].wall.nftables !== undefined) throw new Error(`${subject.name}: the user-data ships the nftables wall, not the iptables one`);
  return report.hosts[0];
}

type Verdicts = ReadonlyMap<string, boolean | string>;

/**
 * One backend's verdicts over several runs of the same plan: admitted if any run admitted it. A
 * probe the wall drops can never come back admitted (nothing echoes a dropped packet), whereas an
 * admitted one can time out on a loaded machine; so "admitted in any run" removes the machine's
 * noise and keeps every real drop.
 */
function merge(a: Verdicts | undefined, b: Verdicts): Verdicts {
  if (a === undefined) return b;
  return new Map([...b].map(([id, v]) => [id, a.get(id) === true || v === true ? true : v]));
}

function describeProbe(p: PlannedProbe): string {
  return `${p.id} ${p.direction} ${p.protocol}/${p.port} ${p.direction === 'ingress' ? 'from' : 'to'} ${p.remote}${p.how === 'socket' ? '' : ` (${p.how})`}${p.uid === undefined ? '' : ` as uid ${p.uid}`}`;
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

const PREREQUISITES = [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('nft'), onPath('python3'), netns, ipset, nft];

describeTier('kernel: nftables wall against the iptables wall, same probes', PREREQUISITES, () => {
  interface Run {
    readonly check: HostCheck;
    readonly plan: readonly PlannedProbe[];
    readonly iptables: Verdicts;
    readonly nftables: Verdicts;
    readonly byKind: { readonly iptables: Record<string, number>; readonly nftables: Record<string, number> };
    readonly problems: readonly string[];
    readonly audit: boolean;
    readonly rounds: number;
  }
  const runs = new Map<string, Run>();

  /** Probes whose verdicts differ between the backends, or (enforcing) from the security groups or the checker's model. */
  function wrong(r: Pick<Run, 'plan' | 'iptables' | 'nftables' | 'audit'>): string[] {
    return r.plan.flatMap((p) => {
      const ipt = r.iptables.get(p.id);
      const nf = r.nftables.get(p.id);
      const out: string[] = [];
      if (ipt !== nf) out.push(`${describeProbe(p)}: iptables ${String(ipt)}, nftables ${String(nf)}`);
      if (!r.audit && nf !== p.expected) out.push(`${describeProbe(p)}: nftables ${String(nf)}, the security groups ${String(p.expected)} (${p.basis})`);
      if (!r.audit && nf !== p.model) out.push(`${describeProbe(p)}: nftables ${String(nf)}, the checker's model ${String(p.model)}`);
      return out;
    });
  }

  beforeAll(async () => {
    const results = await inBatches(SUBJECTS, 1, async (s) => {
      const check = checked(s);
      const policy = s.policy();
      const plan = planProbes(check).probes;
      const text = renderNftables(policy, s.ipsetThreshold === undefined ? {} : { ipsetThreshold: s.ipsetThreshold }).text;
      let run: Run | undefined;
      // Up to three runs of both backends, until no probe is wrong (see merge).
      for (let round = 1; round <= 3 && (run === undefined || wrong(run).length > 0); round++) {
        const [iptables, nftables] = await Promise.all([verifyHost(check, quiet), verifyHost(check, quiet, loadNftablesWall(text))]);
        run = {
          check,
          plan,
          iptables: merge(run?.iptables, iptables.verdicts),
          nftables: merge(run?.nftables, nftables.verdicts),
          byKind: { iptables: iptables.byKind, nftables: nftables.byKind },
          problems: [...(run?.problems ?? []), ...iptables.problems.map((x) => `iptables: ${x}`), ...nftables.problems.map((x) => `nftables: ${x}`)],
          audit: policy.options.audit,
          rounds: round,
        };
      }
      return [s.name, run as Run] as const;
    });
    for (const [name, r] of results) runs.set(name, r);
  }, 600000);

  it.each(SUBJECTS.map((s) => [s.name]))('%s: the kernel loads the nftables wall and gives every probe the iptables wall\'s verdict', (name) => {
    const r = runs.get(name) as Run;
    expect(r.problems).toEqual([]);
    expect(r.plan.length).toBeGreaterThanOrEqual(100);
    expect(r.byKind.nftables).toEqual(r.byKind.iptables);
    expect([...r.nftables.keys()].sort()).toEqual(r.plan.map((p) => p.id).sort());
    // The same verdict as the iptables wall on every probe; enforcing, also the security groups'
    // (or the documented exception's), as the checker's model predicts. Audit mode admits what
    // the groups would drop, so there the walls are compared with each other only.
    expect(wrong(r)).toEqual([]);
  });

  it('the plans cover both directions, both protocols, forged sources and their controls, and the link-local services as root and nobody', () => {
    const total: Record<string, number> = {};
    for (const r of runs.values()) for (const [kind, n] of Object.entries(r.byKind.nftables)) total[kind] = (total[kind] ?? 0) + n;
    for (const kind of ['ingress tcp', 'ingress udp', 'egress tcp', 'egress udp', 'egress forged', 'egress real-raw']) expect(total[kind]).toBeGreaterThan(0);
    if (process.env.TWINWALL_PROBE_COUNT === '1') process.stderr.write(`kernel-nft: ${Object.values(total).reduce((a, b) => a + b, 0)} probes per backend over ${runs.size} subjects (${[...runs.values()].reduce((a, r) => a + r.rounds, 0)} rounds): ${JSON.stringify(total)}\n`);
  });

  it('instance metadata, per mode: the same probes as root and as nobody, and the kernel gives the mode\'s verdicts', () => {
    const expected: Record<string, { root: boolean; nobody: boolean }> = {
      sample: { root: true, nobody: false },
      metadataNone: { root: false, nobody: false },
      metadataAllUsers: { root: true, nobody: true },
    };
    for (const [name, want] of Object.entries(expected)) {
      const r = runs.get(name) as Run;
      const imds = r.plan.filter((p) => p.remote === AWS_LINK_LOCAL.instanceMetadata[p.family] && p.protocol === 'tcp' && p.port === 80);
      for (const uid of [undefined, NOBODY]) {
        const mine = imds.filter((p) => p.uid === uid);
        expect(mine.map((p) => p.family).sort()).toEqual([4, 6]);
        for (const p of mine) expect({ name, uid, family: p.family, admitted: r.nftables.get(p.id) }).toEqual({ name, uid, family: p.family, admitted: uid === undefined ? want.root : want.nobody });
      }
    }
  });
});

// ---- Coexistence, in the sample server's lab

/** Probe timeout: generous, since other work shares the machine and a slow echo must not read as a drop. */
const SLOW = { timeoutMs: 1500 };

const tcp = (id: string, dst: string, port: number, src?: string): Probe => ({ id, kind: 'tcp', dst, port, ...(src ? { src } : {}) });
const udp = (id: string, dst: string, port: number): Probe => ({ id, kind: 'udp', dst, port });

/** A host that also runs Docker (iptables-nft) and an agent with an accept-everything inet table. */
const FOREIGN = {
  docker: [
    ['iptables', '-N', 'DOCKER'],
    ['iptables', '-A', 'DOCKER', '-d', '172.17.0.2/32', '-p', 'tcp', '-m', 'tcp', '--dport', '80', '-j', 'ACCEPT'],
    ['iptables', '-A', 'FORWARD', '-o', 'docker0', '-j', 'DOCKER'],
    ['iptables', '-t', 'nat', '-N', 'DOCKER'],
    ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER'],
    ['iptables', '-t', 'nat', '-A', 'DOCKER', '-p', 'tcp', '-m', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', '172.17.0.2:80'],
  ],
  agent: [
    'table inet agent {',
    '\tchain input {',
    '\t\ttype filter hook input priority -10; policy accept;',
    '\t\tcounter accept',
    '\t}',
    '\tchain output {',
    '\t\ttype filter hook output priority -10; policy accept;',
    '\t\tcounter accept',
    '\t}',
    '}',
    '',
  ].join('\n'),
};

describeTier('kernel: nftables wall beside Docker-style tables (coexistence)', PREREQUISITES, () => {
  let lab: NetnsLab | undefined;
  let foreignBefore: string;
  let foreignAfterReloads: string;
  let tablesAfterReloads: string;
  let outcomes: Map<string, ProbeResult>;
  let imdsNobody: Map<string, ProbeResult>;
  let dockerChainAfterIptablesRestore: string;
  let heard: (token: string) => number;

  /** The foreign tables as nft lists them, without counters (which move with traffic). */
  const foreign = (l: NetnsLab): string =>
    ['ip filter', 'ip nat', 'inet agent']
      .map((t) => l.exec('host', ['nft', 'list', 'table', ...t.split(' ')]))
      .join('')
      .replace(/counter packets \d+ bytes \d+/g, 'counter');

  beforeAll(async () => {
    const l = await NetnsLab.create({
      host: { addresses: [`${HOST4}/24`, `${HOST6}/64`], routes: [['default', 'via', GW4], ['default', 'via', GW6]] },
      peer: { addresses: [`${GW4}/24`, `${GW6}/64`, ...[OUTSIDE4, ADMIN4, RESOLVER, IMDS4].map((a) => `${a}/32`), ...[OUTSIDE6, DEFENDED6].map((a) => `${a}/128`)] },
    });
    lab = l;
    const peer = await l.startAgent('peer', { tcp: [25, 80], udp: [[RESOLVER, 53], [OUTSIDE4, 1434]], sniff: true });
    const host = await l.startAgent('host', { tcp: [22, 25, 80, 8080] });
    heard = (token) => peer.saw(token).length + host.saw(token).length;
    for (const argv of FOREIGN.docker) l.exec('host', argv);
    l.exec('host', ['nft', '-f', '-'], FOREIGN.agent);
    foreignBefore = foreign(l);
    // Load, reload with another policy, reload the sample server: each one transaction on twinwall's table only.
    l.exec('host', ['nft', '-f', '-'], renderNftables(sampleServer()).text);
    l.exec('host', ['nft', '-f', '-'], renderNftables(HostPolicy.compose('other', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })])).text);
    l.exec('host', ['nft', '-f', '-'], renderNftables(sampleServer()).text);
    foreignAfterReloads = foreign(l);
    tablesAfterReloads = l.exec('host', ['nft', 'list', 'tables']);
    [outcomes, imdsNobody] = await Promise.all([
      Promise.all([
        l.probe('host', [tcp('smtpOut', OUTSIDE4, 25), udp('dns', RESOLVER, 53), tcp('httpOut', OUTSIDE4, 80), udp('slammer', OUTSIDE4, 1434), tcp('imdsRoot', IMDS4, 80)], SLOW),
        l.probe('peer', [tcp('sshAdmin', HOST4, 22, ADMIN4), tcp('sshOutside', HOST4, 22, OUTSIDE4), tcp('httpIn', HOST4, 80, OUTSIDE4), tcp('altIn', HOST4, 8080, OUTSIDE4), tcp('httpIn6', HOST6, 80, OUTSIDE6)], SLOW),
        l.probe('host', [
          { id: 'forged4', kind: 'raw', proto: 'udp', src: FORGED4, dst: RESOLVER, port: 53 },
          { id: 'forged6', kind: 'raw', proto: 'tcp', src: FORGED6, dst: OUTSIDE6, port: 25 },
          { id: 'real4', kind: 'raw', proto: 'udp', src: HOST4, dst: RESOLVER, port: 53 },
        ]),
      ]).then((maps) => new Map(maps.flatMap((m) => [...m]))),
      l.probe('host', [tcp('imdsNobody', IMDS4, 80)], { ...SLOW, uid: NOBODY }),
    ]);
    // The raw packet that leaves is judged by the sniffer, which may report it late on a loaded machine.
    const real = (outcomes.get('real4') as ProbeResult).token;
    for (let i = 0; i < 20 && heard(real) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 150));
  }, 60000);

  afterAll(() => {
    lab?.destroy();
  });

  it('the foreign tables, chains and rules are exactly as they were after three loads of the twinwall table', () => {
    expect(foreignBefore).toContain('chain DOCKER');
    expect(foreignBefore).toContain('table inet agent');
    expect(foreignAfterReloads).toBe(foreignBefore);
    expect(tablesAfterReloads.split('\n').filter((t) => t !== '').sort()).toEqual(['table inet agent', 'table inet twinwall', 'table ip filter', 'table ip nat']);
  });

  it('the wall still drops what it must, although the agent\'s chains accept everything and Docker\'s accept policies stand', () => {
    const o = (id: string) => (outcomes.get(id) as ProbeResult).outcome;
    expect({ smtpOut: o('smtpOut'), dns: o('dns'), sshAdmin: o('sshAdmin'), httpIn: o('httpIn'), httpIn6: o('httpIn6'), imdsRoot: o('imdsRoot') }).toEqual({
      smtpOut: 'ok',
      dns: 'ok',
      sshAdmin: 'ok',
      httpIn: 'ok',
      httpIn6: 'ok',
      imdsRoot: 'ok',
    });
    expect({ httpOut: o('httpOut'), slammer: o('slammer'), sshOutside: o('sshOutside'), altIn: o('altIn') }).toEqual({ httpOut: 'timeout', slammer: 'eperm', sshOutside: 'timeout', altIn: 'timeout' });
    for (const id of ['httpOut', 'slammer', 'sshOutside', 'altIn']) expect(heard((outcomes.get(id) as ProbeResult).token)).toBe(0);
    expect((imdsNobody.get('imdsNobody') as ProbeResult).outcome).toBe('timeout');
  });

  it('forged sources never leave (IPv4 and IPv6), while the host\'s own raw packet does', () => {
    expect((outcomes.get('forged4') as ProbeResult).outcome).toBe('eperm');
    expect((outcomes.get('forged6') as ProbeResult).outcome).toBe('eperm');
    expect(heard((outcomes.get('forged4') as ProbeResult).token)).toBe(0);
    expect(heard((outcomes.get('forged6') as ProbeResult).token)).toBe(0);
    expect((outcomes.get('real4') as ProbeResult).outcome).toBe('sent');
    expect(heard((outcomes.get('real4') as ProbeResult).token)).toBeGreaterThan(0);
  });

  it('IPv6 duplicate address detection works under the wall (NS from :: out, NA in)', async () => {
    await expect((lab as NetnsLab).addAddressWithDad('host', `${DEFENDED6}/64`)).resolves.toBe('dadfailed');
  });

  it('by contrast, iptables-restore of the iptables wall replaces the whole filter table: Docker\'s chain is gone', () => {
    const l = lab as NetnsLab;
    l.exec('host', ['iptables-restore'], renderIptables(sampleServer()).v4);
    dockerChainAfterIptablesRestore = l.exec('host', ['iptables', '-S']);
    expect(dockerChainAfterIptablesRestore).not.toContain('DOCKER');
    expect(dockerChainAfterIptablesRestore).toContain('-N tw-in');
  });
});

// ---- Audit mode: logged with the prefixes learn reads, dropped never

describeTier('kernel: nftables audit mode, logged for learn', [...PREREQUISITES, onPath('dmesg'), nfLog, dmesgReadable], () => {
  type Backend = 'iptables' | 'nftables';
  const runs = new Map<Backend, { outcomes: Map<string, ProbeResult>; lines: string[]; sniffedForged: number }>();
  const EGRESS: Probe[] = [tcp('http', OUTSIDE4, 80), udp('slammer', OUTSIDE4, 1434), tcp('http6', OUTSIDE6, 80)];
  const INGRESS: Probe[] = [tcp('sshOutside', HOST4, 22, OUTSIDE4), tcp('alt', HOST4, 8080, OUTSIDE4)];
  const FORGED: Probe = { id: 'forged', kind: 'raw', proto: 'udp', src: FORGED4, dst: RESOLVER, port: 53 };
  // Every packet above that enforcement would drop: 3 out, 2 in, metadata as nobody, the forged one.
  const EXPECTED_LINES = EGRESS.length + INGRESS.length + 2;

  async function run(backend: Backend): Promise<void> {
    const l = await NetnsLab.create({
      host: { addresses: [`${HOST4}/24`, `${HOST6}/64`], routes: [['default', 'via', GW4], ['default', 'via', GW6]] },
      peer: { addresses: [`${GW4}/24`, `${GW6}/64`, ...[OUTSIDE4, RESOLVER, IMDS4].map((a) => `${a}/32`), `${OUTSIDE6}/128`] },
    });
    try {
      const peer = await l.startAgent('peer', { tcp: [80], udp: [[OUTSIDE4, 1434], [RESOLVER, 53]], sniff: true });
      await l.startAgent('host', { tcp: [22, 8080] });
      const audited = HostPolicy.compose('auditlab', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })], { audit: true });
      if (backend === 'nftables') l.exec('host', ['nft', '-f', '-'], renderNftables(audited).text);
      else l.loadRules(renderIptables(audited));
      const maps = await Promise.all([l.probe('host', EGRESS, SLOW), l.probe('peer', INGRESS, SLOW), l.probe('host', [tcp('imds', IMDS4, 80)], { ...SLOW, uid: NOBODY }), l.probe('host', [FORGED], SLOW)]);
      const outcomes = new Map(maps.flatMap((m) => [...m]));
      const mine = new RegExp(`\\b(?:IN|OUT)=${l.hostIf} `);
      let lines: string[] = [];
      for (let i = 0; i < 40 && lines.length < EXPECTED_LINES; i++) {
        await new Promise((r) => setTimeout(r, 50));
        lines = execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 << 20 })
          .split('\n')
          .filter((x) => mine.test(x));
      }
      const sniffedForged = peer.saw((outcomes.get('forged') as ProbeResult).token).filter((e) => e.ev === 'sniff').length;
      runs.set(backend, { outcomes, lines, sniffedForged });
    } finally {
      l.destroy();
    }
  }

  beforeAll(async () => {
    await withNfLogAllNetns(async () => {
      await Promise.all([run('iptables'), run('nftables')]);
    });
  }, 60000);

  it('drops nothing: what enforcement drops is admitted, the forged packet included', () => {
    const r = runs.get('nftables') as { outcomes: Map<string, ProbeResult>; sniffedForged: number };
    for (const id of ['http', 'slammer', 'http6', 'sshOutside', 'alt', 'imds']) expect({ id, outcome: (r.outcomes.get(id) as ProbeResult).outcome }).toEqual({ id, outcome: 'ok' });
    expect(r.sniffedForged).toBe(1);
  });

  it('logs each of them once, with the iptables wall\'s prefixes (and the uid on the way out)', () => {
    const lines = (runs.get('nftables') as { lines: string[] }).lines;
    expect(lines).toHaveLength(EXPECTED_LINES);
    const prefixes = lines.map((l) => /(twinwall [a-z ]+: )/.exec(l)?.[1]).sort();
    expect(prefixes).toEqual(
      [
        ...Array(3).fill(logPrefix('egress', 'audit')),
        ...Array(2).fill(logPrefix('ingress', 'audit')),
        logPrefix('egress', 'audit', 'imds'),
        logPrefix('egress', 'audit', 'spoof'),
      ].sort(),
    );
    expect(lines.find((l) => l.includes(logPrefix('egress', 'audit', 'imds')))).toContain(`UID=${NOBODY} `);
  });

  it('learn reads them and concludes what it concludes from the iptables wall\'s lines: same flows, same flags', async () => {
    const conclusions = async (backend: Backend) => {
      const { lines } = runs.get(backend) as { lines: string[] };
      const result = await learn([{ name: backend, kind: 'kernel', lines }], { defaultHost: 'auditlab' });
      const [host] = result.proposal.hosts;
      return {
        malformed: result.observed.malformed.count,
        flows: host.flows.map((f) => `${f.id} ${f.disposition}`).sort(),
        flags: host.flags.map((f) => f.kind).sort(),
      };
    };
    const nftables = await conclusions('nftables');
    expect(nftables.malformed).toBe(0);
    expect(nftables.flags).toEqual(expect.arrayContaining(['metadata-non-root', 'non-local-source']));
    expect(nftables).toEqual(await conclusions('iptables'));
    expect((runs.get('iptables') as { lines: string[] }).lines).toHaveLength(EXPECTED_LINES);
  });
});
