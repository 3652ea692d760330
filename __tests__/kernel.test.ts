/**
 * Kernel tier: the article's sample server's host wall, loaded into a real network namespace,
 * judged by real TCP and UDP connections (and hand-built raw packets) from and to a peer
 * namespace that plays the rest of the world. Only the two namespaces carry any traffic.
 */
import { renderIptables } from '../lib/render/iptables';
import { sampleServer } from './support/fixtures';
import { Agent, NetnsLab, Probe, ProbeResult } from './support/netns';
import {
  ADMIN4,
  ADMIN6,
  DEFENDED6,
  FORGED4,
  FORGED6,
  GW4,
  GW6,
  HOST4,
  HOST6,
  IMDS4,
  IMDS6,
  NOBODY,
  NOT_A_RESOLVER,
  OUTSIDE4,
  OUTSIDE6,
  RESOLVER_A,
  RESOLVER_B,
} from './support/sample-lab';
import { describeTier, netns, onPath, root } from './support/tiers';

interface Case {
  readonly name: string;
  readonly probe: Probe;
  readonly admitted: boolean;
}

const tcp = (id: string, dst: string, port: number, src?: string): Probe => ({ id, kind: 'tcp', dst, port, ...(src ? { src } : {}) });
const udp = (id: string, dst: string, port: number): Probe => ({ id, kind: 'udp', dst, port });

/** Connections the host opens. */
const EGRESS: readonly Case[] = [
  { name: 'SMTP out (tcp/25) to any IPv4 address', probe: tcp('smtp4', OUTSIDE4, 25), admitted: true },
  { name: 'SMTP out (tcp/25) to any IPv6 address', probe: tcp('smtp6', OUTSIDE6, 25), admitted: true },
  { name: 'DNS over UDP to resolver A', probe: udp('dnsudpA', RESOLVER_A, 53), admitted: true },
  { name: 'DNS over UDP to resolver B', probe: udp('dnsudpB', RESOLVER_B, 53), admitted: true },
  { name: 'DNS over TCP to resolver A', probe: tcp('dnstcpA', RESOLVER_A, 53), admitted: true },
  { name: 'DNS over TCP to resolver B', probe: tcp('dnstcpB', RESOLVER_B, 53), admitted: true },
  { name: 'DNS over UDP to the address next to the resolvers', probe: udp('dnsudpNext', NOT_A_RESOLVER, 53), admitted: false },
  { name: 'DNS over TCP to the address next to the resolvers', probe: tcp('dnstcpNext', NOT_A_RESOLVER, 53), admitted: false },
  { name: 'DNS over UDP to an outside IPv4 address', probe: udp('dnsudpOut4', OUTSIDE4, 53), admitted: false },
  { name: 'DNS over UDP to an outside IPv6 address', probe: udp('dnsudpOut6', OUTSIDE6, 53), admitted: false },
  { name: 'HTTP out (tcp/80), IPv4', probe: tcp('http4', OUTSIDE4, 80), admitted: false },
  { name: 'HTTP out (tcp/80), IPv6', probe: tcp('http6', OUTSIDE6, 80), admitted: false },
  { name: 'HTTPS out (tcp/443), IPv4', probe: tcp('https4', OUTSIDE4, 443), admitted: false },
  { name: 'udp/1434 out (Slammer), IPv4', probe: udp('slammer4', OUTSIDE4, 1434), admitted: false },
  { name: 'udp/1434 out (Slammer), IPv6', probe: udp('slammer6', OUTSIDE6, 1434), admitted: false },
];

/** Connections the peer opens to the host, from the source address it binds. */
const INGRESS: readonly Case[] = [
  { name: 'SSH from the admin LAN (IPv4)', probe: tcp('sshAdmin4', HOST4, 22, ADMIN4), admitted: true },
  { name: 'SSH from the admin LAN (IPv6)', probe: tcp('sshAdmin6', HOST6, 22, ADMIN6), admitted: true },
  { name: 'SSH from an outside IPv4 address', probe: tcp('sshOut4', HOST4, 22, OUTSIDE4), admitted: false },
  { name: 'SSH from an outside IPv6 address', probe: tcp('sshOut6', HOST6, 22, OUTSIDE6), admitted: false },
  { name: 'SMTP in (tcp/25), IPv4', probe: tcp('smtpIn4', HOST4, 25, OUTSIDE4), admitted: true },
  { name: 'SMTP in (tcp/25), IPv6', probe: tcp('smtpIn6', HOST6, 25, OUTSIDE6), admitted: true },
  { name: 'HTTP in (tcp/80), IPv4', probe: tcp('httpIn4', HOST4, 80, OUTSIDE4), admitted: true },
  { name: 'HTTP in (tcp/80), IPv6', probe: tcp('httpIn6', HOST6, 80, OUTSIDE6), admitted: true },
  { name: 'HTTPS in (tcp/443), IPv4', probe: tcp('httpsIn4', HOST4, 443, OUTSIDE4), admitted: true },
  { name: 'HTTPS in (tcp/443), IPv6', probe: tcp('httpsIn6', HOST6, 443, OUTSIDE6), admitted: true },
  { name: 'tcp/8080 in (a listener, but no role), IPv4', probe: tcp('altIn4', HOST4, 8080, OUTSIDE4), admitted: false },
  { name: 'tcp/8080 in (a listener, but no role), IPv6', probe: tcp('altIn6', HOST6, 8080, OUTSIDE6), admitted: false },
];

/** Hand-built packets the policy would admit, once with the host's source and once forged. */
const RAW: readonly { name: string; real: Probe; forged: Probe }[] = [
  {
    name: 'IPv4 UDP to a resolver on port 53',
    real: { id: 'rawUdp4', kind: 'raw', proto: 'udp', src: HOST4, dst: RESOLVER_A, port: 53 },
    forged: { id: 'rawUdp4Forged', kind: 'raw', proto: 'udp', src: FORGED4, dst: RESOLVER_A, port: 53 },
  },
  {
    name: 'IPv4 TCP SYN to port 25',
    real: { id: 'rawSyn4', kind: 'raw', proto: 'tcp', src: HOST4, dst: OUTSIDE4, port: 25 },
    forged: { id: 'rawSyn4Forged', kind: 'raw', proto: 'tcp', src: FORGED4, dst: OUTSIDE4, port: 25 },
  },
  {
    name: 'IPv6 TCP SYN to port 25',
    real: { id: 'rawSyn6', kind: 'raw', proto: 'tcp', src: HOST6, dst: OUTSIDE6, port: 25 },
    forged: { id: 'rawSyn6Forged', kind: 'raw', proto: 'tcp', src: FORGED6, dst: OUTSIDE6, port: 25 },
  },
];

const IMDS: readonly Probe[] = [tcp('imds4', IMDS4, 80), tcp('imds6', IMDS6, 80)];

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeTier('kernel', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), netns], () => {
  let lab: NetnsLab | undefined;
  let peerAgent: Agent;
  let hostAgent: Agent;
  let egress: Map<string, ProbeResult>;
  let ingress: Map<string, ProbeResult>;
  let raw: Map<string, ProbeResult>;
  let imdsRoot: Map<string, ProbeResult>;
  let imdsNobody: Map<string, ProbeResult>;

  beforeAll(async () => {
    lab = await NetnsLab.create({
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
          ...[OUTSIDE4, RESOLVER_A, RESOLVER_B, NOT_A_RESOLVER, ADMIN4, IMDS4].map((a) => `${a}/32`),
          ...[OUTSIDE6, ADMIN6, IMDS6, DEFENDED6].map((a) => `${a}/128`),
        ],
      },
    });
    peerAgent = await lab.startAgent('peer', {
      tcp: [25, 53, 80, 443],
      udp: [
        ...[RESOLVER_A, RESOLVER_B, NOT_A_RESOLVER, OUTSIDE4, OUTSIDE6].map((a) => [a, 53] as const),
        [OUTSIDE4, 1434],
        [OUTSIDE6, 1434],
      ],
      sniff: true,
    });
    hostAgent = await lab.startAgent('host', { tcp: [22, 25, 80, 443, 8080] });
    lab.loadRules(renderIptables(sampleServer()));
    [egress, ingress, raw, imdsRoot, imdsNobody] = await Promise.all([
      lab.probe('host', EGRESS.map((c) => c.probe)),
      lab.probe('peer', INGRESS.map((c) => c.probe)),
      lab.probe('host', RAW.flatMap((r) => [r.real, r.forged])),
      lab.probe('host', IMDS),
      lab.probe('host', IMDS, { uid: NOBODY }),
    ]);
    await settle(150); // let the last echoes and sniffed frames reach the agents
  }, 30000);

  afterAll(() => {
    lab?.destroy();
  });

  it('loaded the rendered rules with DROP policies in the host namespace', () => {
    const live = (lab as NetnsLab).exec('host', ['iptables', '-S']);
    expect(live).toContain('-P OUTPUT DROP');
    expect(live).toContain('-A tw-out -p tcp -m tcp --dport 25');
    expect((lab as NetnsLab).exec('host', ['ip6tables', '-S'])).toContain('-P INPUT DROP');
  });

  describe('egress (the host connects out)', () => {
    it.each(EGRESS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      const r = egress.get(c.probe.id) as ProbeResult;
      const seen = peerAgent.saw(r.token);
      if (c.admitted) {
        expect(r.outcome).toBe('ok');
        expect(seen.map((e) => e.local)).toEqual([c.probe.dst]);
      } else {
        // OUTPUT drops the first packet. A UDP socket is told at once (EPERM); TCP's connect()
        // ignores the error and retransmits the SYN until it times out.
        expect(r.outcome).toBe(c.probe.kind === 'udp' ? 'eperm' : 'timeout');
        expect(seen).toEqual([]);
      }
    });
  });

  describe('ingress (the world connects in)', () => {
    it.each(INGRESS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      const r = ingress.get(c.probe.id) as ProbeResult;
      const seen = hostAgent.saw(r.token);
      if (c.admitted) {
        expect(r.outcome).toBe('ok');
        expect(seen.map((e) => e.remote)).toEqual([(c.probe as { src: string }).src]);
      } else {
        // Dropped silently: no RST, no ICMP, the listener never hears of it.
        expect(r.outcome).toBe('timeout');
        expect(seen).toEqual([]);
      }
    });
  });

  describe('forged source addresses never leave', () => {
    it.each(RAW.map((c) => [c.name, c] as const))('%s: arrives with the host\'s source, not with a forged one', (_name, c) => {
      const real = raw.get(c.real.id) as ProbeResult;
      const forged = raw.get(c.forged.id) as ProbeResult;
      expect(real.outcome).toBe('sent');
      expect(peerAgent.saw(real.token).filter((e) => e.ev === 'sniff').map((e) => e.src)).toEqual([c.real.kind === 'raw' ? c.real.src : '']);
      expect(forged.outcome).toBe('eperm');
      expect(peerAgent.saw(forged.token)).toEqual([]);
    });

    it('the UDP listener on the resolver got the real-source datagram', () => {
      const real = raw.get('rawUdp4') as ProbeResult;
      expect(peerAgent.saw(real.token).filter((e) => e.ev === 'udp').map((e) => e.remote)).toEqual([HOST4]);
    });
  });

  describe('instance metadata is for root only (the default)', () => {
    it.each(IMDS.map((p) => [p.dst, p] as const))('%s: root connects, nobody does not', (_dst, p) => {
      const asRoot = imdsRoot.get(p.id) as ProbeResult;
      const asNobody = imdsNobody.get(p.id) as ProbeResult;
      expect(asRoot.outcome).toBe('ok');
      expect(peerAgent.saw(asRoot.token)).toHaveLength(1);
      expect(asNobody.outcome).toBe('timeout'); // TCP: the SYN is dropped and retransmitted in vain
      expect(peerAgent.saw(asNobody.token)).toEqual([]);
    });
  });

  it('IPv6 duplicate address detection works under the rules (NS from :: out, NA in)', async () => {
    // The peer owns DEFENDED6; only if the host's DAD probe leaves and the defence comes back
    // does the kernel mark the address dadfailed.
    await expect((lab as NetnsLab).addAddressWithDad('host', `${DEFENDED6}/64`)).resolves.toBe('dadfailed');
  });

  describe('audit mode (loaded last)', () => {
    let audit: Map<string, ProbeResult>;
    const probes: Probe[] = [
      tcp('auditHttp4', OUTSIDE4, 80),
      udp('auditSlammer4', OUTSIDE4, 1434),
      { id: 'auditForged4', kind: 'raw', proto: 'udp', src: FORGED4, dst: RESOLVER_A, port: 53 },
    ];
    let auditIn: Map<string, ProbeResult>;

    beforeAll(async () => {
      const l = lab as NetnsLab;
      l.loadRules(renderIptables(sampleServer({ audit: true })));
      [audit, auditIn] = await Promise.all([l.probe('host', probes), l.probe('peer', [tcp('auditSshOut4', HOST4, 22, OUTSIDE4)])]);
      await settle(150);
    });

    it('accepts what enforcement drops: HTTP and udp/1434 out, SSH from outside in', () => {
      expect((audit.get('auditHttp4') as ProbeResult).outcome).toBe('ok');
      expect((audit.get('auditSlammer4') as ProbeResult).outcome).toBe('ok');
      expect((auditIn.get('auditSshOut4') as ProbeResult).outcome).toBe('ok');
    });

    it('lets even a forged source through (audit changes no traffic; the log records it)', () => {
      const forged = audit.get('auditForged4') as ProbeResult;
      expect(forged.outcome).toBe('sent');
      expect(peerAgent.saw(forged.token).filter((e) => e.ev === 'sniff').map((e) => e.src)).toEqual([FORGED4]);
    });
  });
});
