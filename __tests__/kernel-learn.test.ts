/**
 * Kernel tier for `twinwall learn`: a host that only admits SSH from the admin LAN runs its host
 * wall in audit mode in a network namespace; it serves web and mail, looks names up, calls an app
 * tier, reads instance metadata as an unprivileged user, sends a forged-source packet and bursts
 * udp/1434 at a dozen addresses (Slammer). Every address belongs to the peer namespace. The
 * kernel's own LOG lines (from dmesg) go through `learn`, which must propose the roles the traffic
 * fits and flag the burst, the metadata access and the forged source.
 *
 * Namespaced LOG lines reach the kernel log only with net.netfilter.nf_log_all_netns=1; the test
 * sets it for the duration and restores what it found. It picks its lines out of dmesg by the
 * lab's interface name, which is random per run. The LOG rules are rate-limited (10/min, burst 20,
 * per rule and namespace): the traffic below stays within one burst per chain (17 lines on the
 * IPv4 egress chain), so every packet is logged.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { registerLearn } from '../cli/commands/learn';
import { ADMIN_LAN } from './support/fixtures';
import { HostPolicy, Peer, sshAdmin } from '../lib';
import { LearnResult, learn } from '../lib/learn';
import { LOG_LIMIT, renderIptables } from '../lib/render/iptables';
import { NetnsLab, Probe } from './support/netns';
import { NfLogRestore, dmesgReadable, nfLog, withNfLogAllNetns } from './support/nf-log';
import { describeTier, netns, onPath, root } from './support/tiers';

const HOST4 = '203.0.113.20';
const HOST6 = '2001:db8:2::20';
const GW4 = '203.0.113.1';
const GW6 = '2001:db8:2::1';
const WEB_CLIENTS = ['198.51.100.21', '198.51.100.22', '198.51.100.23'];
const WEB_CLIENT6 = '2001:db8:ff::21';
const MAIL_SENDERS = ['198.51.100.31', '198.51.100.32'];
const MAIL_EXCHANGERS = ['192.0.2.25', '192.0.2.26'];
const RESOLVER = '198.51.100.53';
const APP_TIER = '198.51.100.80';
const IMDS4 = '169.254.169.254';
const FORGED4 = '203.0.113.77';
const SLAMMER_TARGETS = Array.from({ length: 12 }, (_, i) => `192.0.2.${101 + i}`);
const NOBODY = 65534;
const SCAN_THRESHOLD = 10;

/** The audited host: SSH from the admin LAN is all its policy admits, so everything else is logged. */
function auditedHost(): HostPolicy {
  return HostPolicy.compose('learnlab', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })], { audit: true });
}

const tcp = (id: string, dst: string, port: number, src?: string): Probe => ({ id, kind: 'tcp', dst, port, ...(src ? { src } : {}) });
const udp = (id: string, dst: string, port: number): Probe => ({ id, kind: 'udp', dst, port });

const EGRESS: readonly Probe[] = [
  udp('dns1', RESOLVER, 53),
  udp('dns2', RESOLVER, 53),
  ...MAIL_EXCHANGERS.map((a, i) => tcp(`smtpOut${i}`, a, 25)),
  tcp('app', APP_TIER, 8080),
  ...SLAMMER_TARGETS.map((a, i) => udp(`slammer${i}`, a, 1434)),
];

const INGRESS: readonly Probe[] = [
  ...WEB_CLIENTS.map((a, i) => tcp(`http${i}`, HOST4, 80, a)),
  ...WEB_CLIENTS.slice(0, 2).map((a, i) => tcp(`https${i}`, HOST4, 443, a)),
  tcp('https6', HOST6, 443, WEB_CLIENT6),
  ...MAIL_SENDERS.map((a, i) => tcp(`smtpIn${i}`, HOST4, 25, a)),
];

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeTier('kernel learn', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), onPath('dmesg'), netns, nfLog, dmesgReadable], () => {
  let lab: NetnsLab | undefined;
  let restore: NfLogRestore;
  let lines: string[] = [];
  let result: LearnResult;
  const expectedLines = EGRESS.length + INGRESS.length + 2; // + metadata and forged source

  beforeAll(async () => {
    const l = await NetnsLab.create({
      host: {
        addresses: [`${HOST4}/24`, `${HOST6}/64`],
        routes: [
          ['default', 'via', GW4],
          ['default', 'via', GW6],
        ],
      },
      peer: {
        addresses: [
          `${GW4}/24`,
          `${GW6}/64`,
          ...[...WEB_CLIENTS, ...MAIL_SENDERS, ...MAIL_EXCHANGERS, RESOLVER, APP_TIER, IMDS4, ...SLAMMER_TARGETS].map((a) => `${a}/32`),
          `${WEB_CLIENT6}/128`,
        ],
      },
    });
    lab = l;
    await l.startAgent('peer', { tcp: [25, 80, 8080], udp: [[RESOLVER, 53]] });
    await l.startAgent('host', { tcp: [25, 80, 443] });
    l.loadRules(renderIptables(auditedHost()));

    ({ restore } = await withNfLogAllNetns(async () => {
      await Promise.all([
        l.probe('host', EGRESS),
        l.probe('peer', INGRESS),
        l.probe('host', [tcp('imds', IMDS4, 80)], { uid: NOBODY }),
        l.probe('host', [{ id: 'forged', kind: 'raw', proto: 'udp', src: FORGED4, dst: RESOLVER, port: 53 }]),
      ]);
      // The lines are in the ring buffer as soon as the packets pass; give printk a moment.
      const mine = new RegExp(`\\b(?:IN|OUT)=${l.hostIf} `);
      for (let i = 0; i < 40; i++) {
        lines = execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 << 20 })
          .split('\n')
          .filter((l) => mine.test(l));
        if (lines.length >= expectedLines) break;
        await settle(50);
      }
    }));
    result = await learn([{ name: 'dmesg', kind: 'kernel', lines }], { defaultHost: 'learnlab', scanThreshold: SCAN_THRESHOLD });
  }, 30000);

  afterAll(() => {
    lab?.destroy();
  });

  it('restored net.netfilter.nf_log_all_netns', () => {
    expect(restore.after).toBe(restore.before);
  });

  it('the kernel logged every packet the policy did not admit (within one LOG burst per chain)', () => {
    const egress4 = lines.filter((l) => l.includes('twinwall egress audit: ') && l.includes(`SRC=${HOST4} `));
    expect(egress4.length).toBeLessThanOrEqual(LOG_LIMIT.burst);
    expect(lines).toHaveLength(expectedLines);
    expect(result.observed.malformed.count).toBe(0);
    expect(result.observed.inputs[0].observations).toBe(expectedLines);
  });

  it('proposes the roles the traffic fits: webServer (with its app-tier upstream), mailServer, dnsClient', () => {
    const [host] = result.proposal.hosts;
    expect(result.proposal.hosts.map((h) => h.name)).toEqual(['learnlab']);
    const roles = Object.fromEntries(host.roles.map((r) => [r.role, r]));
    expect(Object.keys(roles).sort()).toEqual(['dnsClient', 'mailServer', 'webServer']);
    expect(roles.webServer.code).toBe(
      "webServer({ sources: [Peer.ipv4('198.51.100.21/32'), Peer.ipv4('198.51.100.22/31'), Peer.ipv6('2001:db8:ff::21/128')], upstreams: [{ service: 'http-alt', peers: [Peer.ipv4('198.51.100.80/32')], reason: " +
        roles.webServer.code.split('reason: ')[1],
    );
    expect(roles.webServer.covers).toEqual(['ingress tcp/80', 'ingress tcp/443', 'egress tcp/8080']);
    expect(roles.mailServer.code).toBe("mailServer({ sources: [Peer.ipv4('198.51.100.31/32'), Peer.ipv4('198.51.100.32/32')], deliverTo: [Peer.ipv4('192.0.2.25/32'), Peer.ipv4('192.0.2.26/32')] })");
    expect(roles.dnsClient.code).toBe("dnsClient({ resolvers: [Peer.ipv4('198.51.100.53/32')] })");
    expect(host.custom).toEqual([]);
  });

  it('flags the udp/1434 burst, the non-root metadata access and the forged source — and proposes none of them', () => {
    const [host] = result.proposal.hosts;
    const flags = Object.fromEntries(host.flags.map((f) => [f.kind, f]));
    expect(Object.keys(flags).sort()).toEqual(['metadata-non-root', 'non-local-source', 'scan']);
    expect(flags.scan.flow).toBe('egress udp/1434');
    expect(flags.scan.evidence.distinctRemotes).toBe(SLAMMER_TARGETS.length);
    expect(flags.scan.evidence.samples[0].text).toMatch(/twinwall egress audit: .*PROTO=UDP .*DPT=1434 /);
    expect(flags['metadata-non-root'].message).toContain(`uid ${NOBODY}`);
    expect(flags['non-local-source'].message).toContain(FORGED4);
    const disposition = Object.fromEntries(host.flows.map((f) => [f.id, f.disposition]));
    expect(disposition['egress udp/1434']).toBe('flagged');
    expect(disposition['egress tcp/80 (imds)']).toBe('flagged');
    expect(disposition['egress udp/53 (spoof)']).toBe('flagged');
  });

  it('`twinwall learn` reads the same lines from a file and exits 1 on the flags', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-learn-'));
    try {
      const file = path.join(dir, 'dmesg.log');
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      let out = '';
      let exit = -1;
      const program = new Command().exitOverride();
      registerLearn(program, { out: (s) => (out += s), err: () => undefined, setExit: (c) => (exit = c) });
      await program.parseAsync(['learn', '--from-kernel-log', `learnlab=${file}`, '--scan-threshold', String(SCAN_THRESHOLD), '--format', 'json'], { from: 'user' });
      const doc = JSON.parse(out) as { hosts: { name: string; flags: { kind: string }[] }[]; typescript: string };
      expect(exit).toBe(1);
      expect(doc.hosts[0].flags.map((f) => f.kind).sort()).toEqual(['metadata-non-root', 'non-local-source', 'scan']);
      expect(doc.typescript).toContain("export const learnlabPolicy = HostPolicy.compose(\n  'learnlab',");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
