/**
 * Kernel tier: the host-only rules that security groups never see, in a real network namespace.
 *
 * - DHCP client egress goes only where a DHCP server can be: IPv4 broadcast and the declared
 *   subnet's router (base + 1); DHCPv6 to ff02::1:2 and link-local. A process bound to the
 *   client port reaches nothing else on the server port (not the metadata service, not the
 *   Internet).
 * - A host is not a router: IPv6 router advertisements and redirects, and IPv4 ICMP redirects,
 *   never leave it (an ICMP redirect is dropped even when conntrack calls it RELATED).
 * - A loopback-range source (127.0.0.0/8, ::1) never leaves by a real interface, even on a
 *   kernel told to route it (route_localnet).
 *
 * The peer namespace sniffs its veth for each packet's token, so "dropped" means "never on the
 * wire", and each rule is also shown to be the one that dropped it (its chain's counter, or a
 * control load without it). Both backends: the iptables wall, and the nftables wall
 * (lib/render/nftables.ts) with the iptables tables left open, so only the nft table decides.
 */

type Backend = 'iptables' | 'nftables';

/** iptables tables that admit everything: the nftables wall alone decides. */
const OPEN_TABLE = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
import { ChildProcess, spawn } from 'child_process';
import { HostPolicy, customRole, Flow, Peer, Port } from '../lib';
import { renderIptables } from '../lib/render/iptables';
import { renderNftables } from '../lib/render/nftables';
import { sampleServer } from './support/fixtures';
import { NetnsLab, ProbeResult } from './support/netns';
import { describeTier, netns, onPath, root } from './support/tiers';

const HOST4 = '203.0.113.10';
const HOST6 = '2001:db8:1::10';
const ROUTER4 = '203.0.113.1'; // base + 1 of the declared subnet 203.0.113.0/24
const GW6 = '2001:db8:1::1';
const RESOLVER = '198.51.100.53';
const ELSEWHERE4 = '198.51.100.67';
const IMDS4 = '169.254.169.254';
const ELSEWHERE6 = '2001:db8:ff::67';
const SUBNET = '203.0.113.0/24';

/** One host-side send: a datagram from a bound client port, or an ICMP / ICMPv6 message. */
type Send =
  | { readonly id: string; readonly kind: 'udp'; readonly sport: number; readonly dst: string; readonly dport: number; readonly ifname?: string }
  | { readonly id: string; readonly kind: 'icmp6'; readonly type: number; readonly dst: string; readonly ifname: string }
  | { readonly id: string; readonly kind: 'icmp-error'; readonly type: number; readonly code: number; readonly dst: string; readonly inner: { src: string; dst: string; sport: number; dport: number } };

const SEND_PY = String.raw`
import json, socket, struct, sys
sends = json.loads(sys.argv[1])
out = {}
def csum(d):
    if len(d) % 2: d += b"\0"
    s = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
for p in sends:
    token = ("TWRAW-" + p["id"]).encode()
    try:
        if p["kind"] == "udp":
            v6 = ":" in p["dst"]
            s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if not v6: s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if p.get("ifname"): s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, p["ifname"].encode())
            s.bind(("::" if v6 else "0.0.0.0", p["sport"]))
            scope = socket.if_nametoindex(p["ifname"]) if v6 and p.get("ifname") else 0
            s.sendto(token, (p["dst"], p["dport"], 0, scope) if v6 else (p["dst"], p["dport"]))
        elif p["kind"] == "icmp6":
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.sendto(struct.pack("!BBHI", p["type"], 0, 0, 0) + bytes(16) + token, (p["dst"], 0, 0, socket.if_nametoindex(p["ifname"])))
        else:
            i = p["inner"]
            # The quoted packet: an IPv4 header and the first 8 bytes of its TCP header.
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, socket.inet_aton(i["src"]), socket.inet_aton(i["dst"]))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            quoted = ip + struct.pack("!HHI", i["sport"], i["dport"], 1)
            rest = socket.inet_aton(p["dst"]) if p["type"] == 5 else bytes(4)
            body = struct.pack("!BBH", p["type"], p["code"], 0) + rest + quoted + token
            body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            s.sendto(body, (p["dst"], 0))
        out[p["id"]] = "sent"
    except PermissionError:
        out[p["id"]] = "eperm"
    except OSError as e:
        out[p["id"]] = "error:" + str(e)
print(json.dumps(out))
`;

/** Every frame on the peer's veth until its stdin closes: the tokens seen (any protocol). */
const SNIFF_PY = String.raw`
import json, os, re, select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
mark = re.compile(rb"TWRAW-[0-9A-Za-z-]+")
seen = []
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    r, _, _ = select.select([s, sys.stdin], [], [], 1.0)
    if s in r:
        frame, info = s.recvfrom(65535)
        if info[2] != socket.PACKET_OUTGOING: seen += [m.decode() for m in mark.findall(frame)]
    elif sys.stdin in r and os.read(sys.stdin.fileno(), 1) == b"":
        break
print(json.dumps(sorted(set(seen))))
`;

function python(): string {
  return '/usr/bin/python3';
}

/**
 * Sniff the peer's veth while `act` runs, and a moment after (what was sent has arrived by then:
 * a veth delivers synchronously); the tokens that reached the wire.
 */
async function sniffWhile<T>(lab: NetnsLab, act: () => T | Promise<T>): Promise<{ result: T; seen: string[] }> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', lab.peer, python(), '-c', SNIFF_PY, lab.peerIf], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    void closed.then((code) => reject(new Error(`sniffer exited ${code} before it was ready: ${err}`)));
  });
  const result = await act();
  await new Promise((r) => setTimeout(r, 300));
  child.stdin?.end();
  const code = await closed;
  if (code !== 0) throw new Error(`sniffer exited ${code}: ${err}`);
  return { result, seen: JSON.parse(out.slice('ready\n'.length)) as string[] };
}

function send(lab: NetnsLab, sends: readonly Send[]): Record<string, string> {
  return JSON.parse(lab.exec('host', [python(), '-c', SEND_PY, JSON.stringify(sends)])) as Record<string, string>;
}

/** Packets a log-and-drop chain dropped: the counter of its DROP rule (iptables -L -v -x). */
function chainPackets(lab: NetnsLab, family: 4 | 6, chain: string): number {
  const text = lab.exec('host', [family === 4 ? 'iptables' : 'ip6tables', '-L', chain, '-v', '-x', '-n']);
  const drop = text
    .split('\n')
    .slice(2)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[2] === 'DROP');
  if (drop === undefined) throw new Error(`chain ${chain} has no DROP rule:\n${text}`);
  return Number(drop[0]);
}

function hostOnlyRules(backend: Backend): void {
  // Each test starts Python in two namespaces: seconds on a loaded machine.
  jest.setTimeout(60000);
  let lab: NetnsLab | undefined;
  const L = (): NetnsLab => lab as NetnsLab;
  let peerLinkLocal: string;
  const withSubnet = sampleServer({ subnets: [SUBNET] });

  beforeAll(async () => {
    lab = await NetnsLab.create({
      host: { addresses: [`${HOST4}/24`, `${HOST6}/64`], routes: [['default', 'via', ROUTER4], ['default', 'via', GW6]] },
      peer: { addresses: [`${ROUTER4}/24`, `${GW6}/64`, ...[RESOLVER, ELSEWHERE4, IMDS4].map((a) => `${a}/32`), `${ELSEWHERE6}/128`] },
    });
    // The veths' link-local addresses (DHCPv6 servers answer from one) must finish DAD first.
    for (let i = 0; i < 100; i++) {
      const text = L().exec('peer', ['ip', '-6', 'addr', 'show', 'dev', L().peerIf, 'scope', 'link']) + L().exec('host', ['ip', '-6', 'addr', 'show', 'dev', L().hostIf, 'scope', 'link']);
      if (/fe80::/.test(text) && !text.includes('tentative')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    peerLinkLocal = (/inet6 (fe80::[0-9a-f:]+)\//.exec(L().exec('peer', ['ip', '-6', 'addr', 'show', 'dev', L().peerIf, 'scope', 'link'])) as RegExpExecArray)[1];
  }, 30000);

  afterAll(() => lab?.destroy());

  /** Put `policy`'s host wall in place, in this suite's backend. */
  const load = (policy: HostPolicy, edit: (text: string) => string = (t) => t): void => {
    if (backend === 'iptables') {
      const t = renderIptables(policy);
      L().exec('host', ['sh', '-c', 'nft delete table inet twinwall 2>/dev/null || true']);
      L().loadRules({ v4: edit(t.v4), v6: edit(t.v6) });
    } else {
      L().loadRules({ v4: OPEN_TABLE, v6: OPEN_TABLE });
      L().exec('host', ['nft', '-f', '-'], edit(renderNftables(policy).text));
    }
  };
  /** A log-and-drop chain's DROP counter (iptables only: the nftables wall's rules carry no counters). */
  const dropped = (family: 4 | 6, chain: string): number | undefined => (backend === 'iptables' ? chainPackets(L(), family, chain) : undefined);
  const delta = (after: number | undefined, before: number | undefined): number | undefined => (after === undefined || before === undefined ? undefined : after - before);
  const counted = (n: number): number | undefined => (backend === 'iptables' ? n : undefined);

  describe('DHCP client egress: only where a DHCP server can be', () => {
    const dhcp4 = (id: string, dst: string, ifname?: string): Send => ({ id, kind: 'udp', sport: 68, dst, dport: 67, ...(ifname === undefined ? {} : { ifname }) });
    const dhcp6 = (id: string, dst: string, ifname: string): Send => ({ id, kind: 'udp', sport: 546, dst, dport: 547, ifname });

    it('with the subnet declared: broadcast and the subnet router get through; the metadata service and the rest of the world do not', async () => {
      load(withSubnet);
      const { result, seen } = await sniffWhile(L(), () =>
        send(L(), [
          dhcp4('bcast', '255.255.255.255', L().hostIf),
          dhcp4('router', ROUTER4),
          dhcp4('resolver', RESOLVER),
          dhcp4('elsewhere', ELSEWHERE4),
          dhcp4('imds', IMDS4),
        ]),
      );
      expect(result).toEqual({ bcast: 'sent', router: 'sent', resolver: 'eperm', elsewhere: 'eperm', imds: 'eperm' });
      expect(seen).toEqual(['TWRAW-bcast', 'TWRAW-router']);
    });

    it('without a declared subnet: broadcast only (the router is any other address)', async () => {
      load(sampleServer());
      const { result, seen } = await sniffWhile(L(), () => send(L(), [dhcp4('bcast2', '255.255.255.255', L().hostIf), dhcp4('router2', ROUTER4)]));
      expect(result).toEqual({ bcast2: 'sent', router2: 'eperm' });
      expect(seen).toEqual(['TWRAW-bcast2']);
    });

    it('DHCPv6: to All_DHCP_Relay_Agents_and_Servers and a link-local server only', async () => {
      load(withSubnet);
      const ifname = L().hostIf;
      const { result, seen } = await sniffWhile(L(), () =>
        send(L(), [dhcp6('all-servers', 'ff02::1:2', ifname), dhcp6('link-local', peerLinkLocal, ifname), dhcp6('global', GW6, ifname), dhcp6('elsewhere6', ELSEWHERE6, ifname)]),
      );
      expect(result).toEqual({ 'all-servers': 'sent', 'link-local': 'sent', global: 'eperm', elsewhere6: 'eperm' });
      expect(seen).toEqual(['TWRAW-all-servers', 'TWRAW-link-local']);
    });
  });

  describe('a host is not a router', () => {
    it('IPv6: router advertisements and redirects never leave; neighbour solicitations do', async () => {
      load(withSubnet);
      const before = dropped(6, 'tw-out-drop');
      const ifname = L().hostIf;
      const { result, seen } = await sniffWhile(L(), () =>
        send(L(), [
          { id: 'ra', kind: 'icmp6', type: 134, dst: 'ff02::1', ifname },
          { id: 'redirect6', kind: 'icmp6', type: 137, dst: peerLinkLocal, ifname },
          { id: 'ns', kind: 'icmp6', type: 135, dst: GW6, ifname },
        ]),
      );
      expect(result).toEqual({ ra: 'eperm', redirect6: 'eperm', ns: 'sent' });
      expect(seen).toEqual(['TWRAW-ns']);
      expect(delta(dropped(6, 'tw-out-drop'), before)).toBe(counted(2));
    });

    it('IPv4: an ICMP redirect is dropped even when conntrack calls it RELATED (another ICMP error about the same connection leaves)', async () => {
      // Every ICMP type out, to anywhere: only the host-only rule can stop the redirect.
      const icmpOut = HostPolicy.compose('router-test', [
        customRole('pinger', [Flow.egress(Port.allIcmp(), Peer.anyIpv4(), 'every ICMP message out'), Flow.egress(Port.tcp(25), Peer.anyIpv4(), 'a connection to quote')]),
      ]);
      load(icmpOut);
      const server = await L().startAgent('peer', { tcp: [25] });
      // A connection the host opened: its reply packet (peer:25 → host) is what the errors quote.
      const port = Number(
        L()
          .exec('host', [python(), '-c', `import socket, time\ns = socket.create_connection(("${ELSEWHERE4}", 25), timeout=2)\nprint(s.getsockname()[1])\ntime.sleep(0.3)`])
          .trim(),
      );
      const inner = { src: ELSEWHERE4, dst: HOST4, sport: 25, dport: port };
      const before = dropped(4, 'tw-out-drop');
      const { result, seen } = await sniffWhile(L(), () =>
        send(L(), [
          { id: 'redirect4', kind: 'icmp-error', type: 5, code: 1, dst: ELSEWHERE4, inner },
          { id: 'unreachable4', kind: 'icmp-error', type: 3, code: 3, dst: ELSEWHERE4, inner },
        ]),
      );
      server.stop();
      expect(result).toEqual({ redirect4: 'eperm', unreachable4: 'sent' });
      expect(seen).toEqual(['TWRAW-unreachable4']);
      // The unreachable left through the replies rule: conntrack called it RELATED (an unrelated
      // ICMP error is INVALID and dropped), so the redirect quoting the same packet was RELATED too.
      expect(delta(dropped(4, 'tw-out-drop'), before)).toBe(counted(1));
    });
  });

  describe('loopback-range sources never leave by a real interface', () => {
    const probes = (tag: string) => [
      { id: `lo4${tag}`, kind: 'raw' as const, proto: 'udp' as const, src: '127.0.0.1', dst: RESOLVER, port: 53 },
      { id: `lo6${tag}`, kind: 'raw' as const, proto: 'udp' as const, src: '::1', dst: GW6, port: 53 },
      { id: `real4${tag}`, kind: 'raw' as const, proto: 'udp' as const, src: HOST4, dst: RESOLVER, port: 53 },
    ];
    // DNS to the resolver (IPv4) and to GW6 (IPv6) is allowed, so only the source decides.
    const policy = HostPolicy.compose('lo-test', [customRole('dns', [Flow.egress(Port.udp(53), Peer.ipv4(`${RESOLVER}/32`), 'dns'), Flow.egress(Port.udp(53), Peer.ipv6(`${GW6}/128`), 'dns6')])]);

    beforeAll(() => {
      // A kernel told to route 127.0.0.0/8 off the host (route_localnet) would send it.
      L().exec('host', ['sysctl', '-qw', 'net.ipv4.conf.all.route_localnet=1', `net.ipv4.conf.${L().hostIf}.route_localnet=1`]);
    });

    it('control: without the loopback-source rules, both leave (the kernel routes them)', async () => {
      const strip = (t: string) =>
        t
          .split('\n')
          .filter((l) => !/^-A OUTPUT -s (127\.0\.0\.0\/8|::1\/128) /.test(l) && !/^\s+ip6? saddr (127\.0\.0\.0\/8|::1) jump tw-out-spoof /.test(l))
          .join('\n');
      load(policy, strip);
      const { result, seen } = await sniffWhile(L(), () => L().probe('host', probes('-control')));
      expect([...(result as Map<string, ProbeResult>).values()].map((r) => r.outcome)).toEqual(['sent', 'sent', 'sent']);
      expect(seen.map((t) => t.replace(/^TWRAW-\d+-/, ''))).toEqual(['lo4-control', 'lo6-control', 'real4-control']);
    });

    it('with them: dropped as forged (tw-out-spoof), while the host\'s own source still leaves', async () => {
      load(policy);
      const before = { 4: dropped(4, 'tw-out-spoof'), 6: dropped(6, 'tw-out-spoof') };
      const { result, seen } = await sniffWhile(L(), () => L().probe('host', probes('')));
      const out = result as Map<string, ProbeResult>;
      expect([out.get('lo4')?.outcome, out.get('lo6')?.outcome, out.get('real4')?.outcome]).toEqual(['eperm', 'eperm', 'sent']);
      expect(seen.map((t) => t.replace(/^TWRAW-\d+-/, ''))).toEqual(['real4']);
      expect(delta(dropped(4, 'tw-out-spoof'), before[4])).toBe(counted(1));
      expect(delta(dropped(6, 'tw-out-spoof'), before[6])).toBe(counted(1));
    });
  });
}

describeTier('kernel (host-only rules, iptables wall)', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), netns], () => hostOnlyRules('iptables'));
describeTier('kernel (host-only rules, nftables wall)', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('nft'), onPath('python3'), netns], () => hostOnlyRules('nftables'));
