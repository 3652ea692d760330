/**
 * Kernel tier: audit mode never drops, even under a scan.
 *
 * Audit mode promises to change no traffic. Its log rules once used hashlimit, whose table the
 * kernel sizes by default (65,536 entries here) and which drops the packet outright when the
 * table is full (xt_hashlimit.c: "max count of %u reached", then hotdrop): a scan of more
 * distinct (source, destination, port) flows than that was refused. Audit mode now logs each
 * connection once through its conntrack mark, with no table of its own and no match that can
 * refuse a packet.
 *
 * 100,000 distinct UDP flows (two sources or destinations × 50,000 ports), sent as fast as a
 * Python loop can, through the sample server's audit-mode host wall: ingress from the peer
 * namespace and egress from the host. Refused = packets that entered the wall's final verdict
 * chain but never reached its ACCEPT (its rule counters), and, for egress, sendto() calls that
 * failed with EPERM. A control run with the previous rendering (hashlimit, kernel-default table)
 * shows the harness sees refusals when there are some. (LOG itself writes nothing in a network
 * namespace unless nf_log_all_netns is set; it never decides a verdict either way.) The same
 * floods go through the nftables wall's audit mode (the iptables tables left open), whose chains
 * the test gives counters (a counting rule first, a counter on the final accept).
 */
import { renderIptables } from '../lib/render/iptables';
import { renderNftables } from '../lib/render/nftables';
import { sampleServer } from './support/fixtures';
import { NetnsLab } from './support/netns';
import { describeTier, netns, onPath, root } from './support/tiers';

const HOST4 = '203.0.113.10';
const GW4 = '203.0.113.1';
const SCANNERS = ['198.51.100.101', '198.51.100.102'];
const TARGETS = ['198.51.100.201', '198.51.100.202'];
const PORTS = { from: 10000, count: 50000 };
const FLOWS = 2 * PORTS.count;

/** Send one datagram per (source or destination, port); count what sendto refused. */
const FLOOD_PY = String.raw`
import json, socket, sys, time
cfg = json.loads(sys.argv[1])
sent = eperm = other = 0
t0 = time.monotonic()
for src, dst in cfg["pairs"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src: s.bind((src, 0))
    for port in range(cfg["from"], cfg["from"] + cfg["count"]):
        try:
            s.sendto(b"twinwall-audit-flood", (dst, port)); sent += 1
        except PermissionError:
            eperm += 1
        except OSError:
            other += 1
    s.close()
print(json.dumps({"sent": sent, "eperm": eperm, "other": other, "seconds": round(time.monotonic() - t0, 2)}))
`;

interface Flood {
  readonly sent: number;
  readonly eperm: number;
  readonly other: number;
  readonly seconds: number;
}

/** Packet counters of one chain's rules, in order (iptables -L -v -x). */
function counters(lab: NetnsLab, chain: string): { packets: number; target: string }[] {
  return lab
    .exec('host', ['iptables', '-L', chain, '-v', '-x', '-n'])
    .split('\n')
    .slice(2)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { packets: Number(f[0]), target: f[2] };
    });
}

/** How many packets entered `chain` and how many it accepted (its final ACCEPT). */
function verdicts(lab: NetnsLab, chain: string): { entered: number; accepted: number } {
  const rules = counters(lab, chain);
  const accept = rules[rules.length - 1];
  if (accept?.target !== 'ACCEPT') throw new Error(`${chain} does not end in ACCEPT: ${JSON.stringify(rules)}`);
  // Every packet meets the chain's first rule; a hot-dropped one never reaches the last.
  return { entered: rules[0].packets, accepted: accept.packets };
}

/** The audit rendering as it was before: a hashlimit per flow, the kernel sizing its table. */
function previousAuditRendering(text: string): string {
  return text
    .split('\n')
    .flatMap((l) => {
      const m = /^-A (tw-\S+) -m connmark --mark \S+ (-j LOG .*)$/.exec(l);
      if (m !== null) return [`-A ${m[1]} -m hashlimit --hashlimit-upto 2/min --hashlimit-burst 3 --hashlimit-mode srcip,dstip,dstport --hashlimit-name ${m[1]} --hashlimit-htable-expire 600000 ${m[2]}`];
      return /^-A tw-\S+ (-m conntrack --ctstate INVALID,UNTRACKED .*-j LOG |-j CONNMARK )/.test(l) ? [] : [l];
    })
    .join('\n');
}

describeTier('kernel (audit flood)', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), netns], () => {
  const audit = renderIptables(sampleServer({ audit: true }));

  async function withLab<T>(fn: (lab: NetnsLab) => Promise<T> | T): Promise<T> {
    const lab = await NetnsLab.create({
      host: { addresses: [`${HOST4}/24`], routes: [['default', 'via', GW4]] },
      peer: { addresses: [`${GW4}/24`, ...[...SCANNERS, ...TARGETS].map((a) => `${a}/32`)] },
    });
    try {
      return await fn(lab);
    } finally {
      lab.destroy();
    }
  }

  const flood = (lab: NetnsLab, side: 'host' | 'peer', pairs: [string, string][]): Flood =>
    JSON.parse(lab.exec(side, ['/usr/bin/python3', '-c', FLOOD_PY, JSON.stringify({ pairs, ...PORTS })])) as Flood;

  it(`ingress: ${FLOWS.toLocaleString('en')} distinct flows from the peer, 0 refused`, async () => {
    const r = await withLab((lab) => {
      lab.loadRules(audit);
      const sent = flood(lab, 'peer', SCANNERS.map((s) => [s, HOST4]));
      return { sent, chain: verdicts(lab, 'tw-in-drop') };
    });
    // eslint-disable-next-line no-console
    console.log(`[audit flood] ingress: ${r.sent.sent} sent in ${r.sent.seconds} s; ${r.chain.entered} reached tw-in-drop, ${r.chain.accepted} accepted, ${r.chain.entered - r.chain.accepted} refused`);
    expect(r.sent).toMatchObject({ sent: FLOWS, eperm: 0, other: 0 });
    expect(r.chain.entered).toBeGreaterThanOrEqual(FLOWS);
    expect(r.chain.accepted).toBe(r.chain.entered);
  }, 120000);

  it(`egress: ${FLOWS.toLocaleString('en')} distinct flows from the host, 0 refused (no EPERM)`, async () => {
    const r = await withLab((lab) => {
      lab.loadRules(audit);
      const sent = flood(lab, 'host', TARGETS.map((t) => ['', t]));
      return { sent, chain: verdicts(lab, 'tw-out-drop') };
    });
    // eslint-disable-next-line no-console
    console.log(`[audit flood] egress: ${r.sent.sent} sent, ${r.sent.eperm} EPERM, in ${r.sent.seconds} s; ${r.chain.entered} reached tw-out-drop, ${r.chain.accepted} accepted`);
    expect(r.sent).toMatchObject({ sent: FLOWS, eperm: 0, other: 0 });
    expect(r.chain.entered).toBe(FLOWS);
    expect(r.chain.accepted).toBe(FLOWS);
  }, 120000);

  it('control: the previous rendering (hashlimit with the kernel-default table) refuses part of the same egress flood', async () => {
    const previous = { v4: previousAuditRendering(audit.v4), v6: previousAuditRendering(audit.v6) };
    expect(previous.v4).toContain('--hashlimit-name tw-out-drop');
    expect(previous.v4).not.toContain('CONNMARK');
    const r = await withLab((lab) => {
      lab.loadRules(previous);
      return flood(lab, 'host', TARGETS.map((t) => ['', t]));
    });
    // eslint-disable-next-line no-console
    console.log(`[audit flood] control (previous rendering): ${r.sent} sent, ${r.eperm} refused with EPERM`);
    expect(r.eperm).toBeGreaterThan(0);
    expect(r.sent + r.eperm).toBe(FLOWS);
  }, 120000);
});

/** The nftables audit wall with a counter at the top and on the final accept of each log-and-drop chain. */
function countedNft(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let inVerdict = false;
  for (const l of lines) {
    const chain = /^\tchain (tw-\S+-(drop|invalid|spoof|imds)) \{$/.exec(l);
    if (chain !== null) {
      out.push(l, '\t\tcounter');
      inVerdict = true;
      continue;
    }
    if (inVerdict && l === '\t\taccept') out.push('\t\tcounter accept');
    else out.push(l);
    if (l === '\t}') inVerdict = false;
  }
  return out.join('\n');
}

/** Packets that entered an nftables chain and that its final accept accepted. */
function nftVerdicts(lab: NetnsLab, chain: string): { entered: number; accepted: number } {
  const counts = [...lab.exec('host', ['nft', 'list', 'chain', 'inet', 'twinwall', chain]).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  if (counts.length !== 2) throw new Error(`${chain}: expected two counters, found ${counts.length}`);
  return { entered: counts[0], accepted: counts[1] };
}

describeTier('kernel (audit flood, nftables wall)', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('nft'), onPath('python3'), netns], () => {
  const text = countedNft(renderNftables(sampleServer({ audit: true })).text);
  const OPEN = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

  async function withNftLab<T>(fn: (lab: NetnsLab) => T): Promise<T> {
    const lab = await NetnsLab.create({
      host: { addresses: [`${HOST4}/24`], routes: [['default', 'via', GW4]] },
      peer: { addresses: [`${GW4}/24`, ...[...SCANNERS, ...TARGETS].map((a) => `${a}/32`)] },
    });
    try {
      lab.loadRules({ v4: OPEN, v6: OPEN });
      lab.exec('host', ['nft', '-f', '-'], text);
      return fn(lab);
    } finally {
      lab.destroy();
    }
  }

  const flood = (lab: NetnsLab, side: 'host' | 'peer', pairs: [string, string][]): Flood =>
    JSON.parse(lab.exec(side, ['/usr/bin/python3', '-c', FLOOD_PY, JSON.stringify({ pairs, ...PORTS })])) as Flood;

  it(`ingress and egress: ${FLOWS.toLocaleString('en')} distinct flows each way, 0 refused`, async () => {
    expect(text).toContain('counter accept');
    const r = await withNftLab((lab) => {
      const inbound = flood(lab, 'peer', SCANNERS.map((s) => [s, HOST4]));
      const outbound = flood(lab, 'host', TARGETS.map((t) => ['', t]));
      return { inbound, outbound, inChain: nftVerdicts(lab, 'tw-in-drop'), outChain: nftVerdicts(lab, 'tw-out-drop') };
    });
    // eslint-disable-next-line no-console
    console.log(`[audit flood] nftables: ingress ${r.inChain.entered} reached tw-in-drop, ${r.inChain.accepted} accepted; egress ${r.outbound.sent} sent, ${r.outbound.eperm} EPERM, ${r.outChain.accepted} accepted`);
    expect(r.inbound).toMatchObject({ sent: FLOWS, eperm: 0, other: 0 });
    expect(r.inChain.entered).toBeGreaterThanOrEqual(FLOWS);
    expect(r.inChain.accepted).toBe(r.inChain.entered);
    expect(r.outbound).toMatchObject({ sent: FLOWS, eperm: 0, other: 0 });
    expect(r.outChain).toEqual({ entered: FLOWS, accepted: FLOWS });
  }, 240000);
});
