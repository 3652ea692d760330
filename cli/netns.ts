/**
 * A two-namespace network lab, shared by `twinwall verify` and the kernel tests: a "host" namespace (where the rules under test are
 * loaded) and a "peer" namespace (standing in for the rest of the world), joined by one veth pair.
 * Every name carries a random suffix (and part of the process id), so parallel runs never collide, and
 * `destroy()` removes exactly what `create()` made. Traffic never leaves the two namespaces: the
 * peer owns every address the host talks to.
 *
 * Small Python helpers do the packet work (Python's raw sockets can build packets with a forged
 * source; Node's cannot): an agent that listens and echoes (and sniffs the veth for marked raw
 * packets), and a prober that runs a batch of connection attempts concurrently.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Addresses and routes of one side of the lab. Addresses in CIDR form ("203.0.113.10/24"). */
export interface LabSide {
  readonly addresses: readonly string[];
  /**
   * Routes as `ip route add` arguments, e.g. ["default", "via", "203.0.113.1"]; "%dev" stands for
   * this side's veth, and a leading "-4" / "-6" names the family.
   */
  readonly routes?: readonly (readonly string[])[];
}

export interface LabSpec {
  readonly host: LabSide;
  readonly peer: LabSide;
}

export type Side = 'host' | 'peer';

export interface TcpOrUdpProbe {
  readonly id: string;
  readonly kind: 'tcp' | 'udp';
  readonly dst: string;
  readonly port: number;
  /** Bind to this local address first (the peer plays many sources). */
  readonly src?: string;
}

/** A packet built by hand (IP_HDRINCL / IPPROTO_RAW), so its source address can be anything. */
export interface RawProbe {
  readonly id: string;
  readonly kind: 'raw';
  readonly proto: 'tcp' | 'udp';
  readonly src: string;
  readonly dst: string;
  readonly port: number;
}

export type Probe = TcpOrUdpProbe | RawProbe;

/**
 * ok: the listener echoed our token back. sent: a raw packet left the socket (whether it
 * arrived is the sniffer's call). timeout: no answer. refused: RST / port unreachable. eperm: the
 * local firewall refused the packet at send time. error:…: anything else.
 */
export type Outcome = 'ok' | 'sent' | 'timeout' | 'refused' | 'eperm' | `error:${string}`;

export interface ProbeResult {
  readonly id: string;
  readonly token: string;
  readonly outcome: Outcome;
  readonly ms: number;
}

export interface AgentEvent {
  readonly ev: 'tcp' | 'udp' | 'sniff';
  readonly token: string;
  readonly port?: number;
  readonly local?: string;
  readonly remote?: string;
  readonly src?: string;
}

export interface AgentSpec {
  /** TCP ports to listen on, on every address (dual-stack). */
  readonly tcp?: readonly number[];
  /** UDP [address, port] pairs (bound per address, so replies come from the address asked). */
  readonly udp?: readonly (readonly [string, number])[];
  /** Sniff this side's veth for raw probe tokens. */
  readonly sniff?: boolean;
}

/** How long an agent may take to start listening. */
const AGENT_START_MS = 30000;

const AGENT_PY = String.raw`
import json, socket, sys, threading, re
cfg = json.loads(sys.argv[1])
out_lock = threading.Lock()
def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def plain(a):
    return a[7:] if a.startswith("::ffff:") else a
def tcp_conn(c, port):
    try:
        c.settimeout(1.0)
        data = c.recv(128)
        c.sendall(data)
        emit({"ev": "tcp", "port": port, "local": plain(c.getsockname()[0]), "remote": plain(c.getpeername()[0]), "token": data.decode("ascii", "replace")})
    except OSError:
        pass
    finally:
        c.close()
def tcp_listen(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(64)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=tcp_conn, args=(c, port), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
def udp_listen(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, port))
    def loop():
        while True:
            data, peer = s.recvfrom(2048)
            emit({"ev": "udp", "port": port, "local": addr, "remote": peer[0], "token": data.decode("ascii", "replace")})
            try: s.sendto(data, peer)
            except OSError: pass
    threading.Thread(target=loop, daemon=True).start()
def sniff(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0))
    mark = re.compile(rb"TWRAW-[0-9a-z-]+")
    def loop():
        while True:
            frame, info = s.recvfrom(65535)
            if info[2] == socket.PACKET_OUTGOING: continue
            m = mark.search(frame)
            if not m: continue
            etype = int.from_bytes(frame[12:14], "big")
            if etype == 0x0800: src, proto = socket.inet_ntop(socket.AF_INET, frame[26:30]), frame[23]
            elif etype == 0x86DD: src, proto = socket.inet_ntop(socket.AF_INET6, frame[22:38]), frame[20]
            else: continue
            # An ICMP error quoting one of our packets is not that packet.
            if proto in (1, 58): continue
            emit({"ev": "sniff", "token": m.group(0).decode(), "src": src})
    threading.Thread(target=loop, daemon=True).start()
for p in cfg.get("tcp", []): tcp_listen(p)
for a, p in cfg.get("udp", []): udp_listen(a, p)
if cfg.get("sniff"): sniff(cfg["sniff"])
emit({"ev": "ready"})
sys.stdin.read()
`;

const PROBE_PY = String.raw`
import json, os, socket, struct, sys, threading, time, errno
cfg = json.loads(sys.argv[1])
if cfg.get("uid") is not None:
    os.setgroups([]); os.setgid(cfg["uid"]); os.setuid(cfg["uid"])
T = cfg["timeout"]
results = {}
def fam(a): return socket.AF_INET6 if ":" in a else socket.AF_INET
def classify(e):
    if isinstance(e, socket.timeout): return "timeout"
    if isinstance(e, PermissionError): return "eperm"
    if isinstance(e, ConnectionRefusedError): return "refused"
    if isinstance(e, OSError) and e.errno is not None: return "error:" + errno.errorcode.get(e.errno, str(e.errno))
    return "error:" + type(e).__name__
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
def l4(p, src, dst, token, f):
    payload = token.encode()
    if p["proto"] == "udp":
        seg = struct.pack("!HHHH", 40000, p["port"], 8 + len(payload), 0) + payload
        pn = 17
    else:
        seg = struct.pack("!HHIIBBHHH", 40001, p["port"], 0x01020304, 0, 5 << 4, 0x02, 65535, 0, 0) + payload
        pn = 6
    if f == socket.AF_INET:
        pseudo = src + dst + struct.pack("!BBH", 0, pn, len(seg))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), pn)
    c = csum(pseudo + seg) or 0xFFFF
    off = 6 if pn == 17 else 16
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:], pn
def raw(p, token):
    f = fam(p["dst"])
    src = socket.inet_pton(f, p["src"]); dst = socket.inet_pton(f, p["dst"])
    seg, pn = l4(p, src, dst, token, f)
    if f == socket.AF_INET:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0x1234, 0, 64, pn, 0, src, dst)
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    else:
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(seg), pn, 64, src, dst)
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.sendto(hdr + seg, (p["dst"], 0))
        return "sent"
    finally:
        s.close()
def stream(p, token):
    kind = socket.SOCK_STREAM if p["kind"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam(p["dst"]), kind)
    s.settimeout(T)
    try:
        if p.get("src"): s.bind((p["src"], 0))
        if kind == socket.SOCK_STREAM:
            s.connect((p["dst"], p["port"]))
            s.sendall(token.encode())
            got = b""
            while len(got) < len(token):
                chunk = s.recv(128)
                if not chunk: break
                got += chunk
        else:
            s.sendto(token.encode(), (p["dst"], p["port"]))
            got, _ = s.recvfrom(2048)
        return "ok" if got.decode("ascii", "replace") == token else "error:mismatch"
    finally:
        s.close()
def run(p):
    token = ("TWRAW-" if p["kind"] == "raw" else "TW-") + p["token"]
    t0 = time.monotonic()
    try:
        outcome = raw(p, token) if p["kind"] == "raw" else stream(p, token)
    except Exception as e:
        outcome = classify(e)
    results[p["id"]] = {"id": p["id"], "token": token, "outcome": outcome, "ms": round((time.monotonic() - t0) * 1000)}
threads = [threading.Thread(target=run, args=(p,)) for p in cfg["probes"]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps([results[p["id"]] for p in cfg["probes"]]))
`;

function python(): string {
  // The system interpreter: readable by an unprivileged uid (pyenv shims under /root are not).
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** A listening agent in one namespace; collects what it saw. */
export class Agent {
  public readonly events: AgentEvent[] = [];
  private readonly child: ChildProcess;
  private stderr = '';

  public constructor(child: ChildProcess) {
    this.child = child;
  }

  public static start(ns: string, script: string, spec: AgentSpec, sniffIf: string): Promise<Agent> {
    const cfg = { tcp: spec.tcp ?? [], udp: spec.udp ?? [], sniff: spec.sniff ? sniffIf : null };
    const child = spawn('ip', ['netns', 'exec', ns, python(), script, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Agent(child);
    return new Promise((resolve, reject) => {
      let buffer = '';
      let ready = false;
      // A readiness wait, not a measurement: on a loaded machine (load 17 on 2 cores) starting
      // Python in a namespace took longer than 5 s.
      const timer = setTimeout(() => {
        if (!ready) {
          agent.stop();
          reject(new Error(`agent in ${ns} did not start within ${AGENT_START_MS / 1000} s: ${agent.stderr}`));
        }
      }, AGENT_START_MS);
      child.stderr?.on('data', (d: Buffer) => {
        agent.stderr += d.toString();
      });
      child.stdout?.on('data', (d: Buffer) => {
        buffer += d.toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const lineText = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          const ev = JSON.parse(lineText) as AgentEvent | { ev: 'ready' };
          if (ev.ev === 'ready') {
            ready = true;
            clearTimeout(timer);
            resolve(agent);
          } else {
            agent.events.push(ev as AgentEvent);
          }
        }
      });
      child.on('exit', (code) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`agent in ${ns} exited with ${code}: ${agent.stderr}`));
        }
      });
    });
  }

  /** Events carrying this token (a probe's token names it uniquely). */
  public saw(token: string): AgentEvent[] {
    return this.events.filter((e) => e.token === token);
  }

  public stop(): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) {
      this.child.stdin?.end();
      this.child.kill('SIGKILL');
    }
  }
}

let sequence = 0;

/** Labs not yet destroyed; removed on process exit too, should a run be cut short. */
const live = new Set<NetnsLab>();
process.once('exit', () => {
  destroyAllLabs();
});

/** Destroy every lab this process created and has not destroyed yet. */
export function destroyAllLabs(): void {
  for (const lab of [...live]) lab.destroy();
}

/**
 * On SIGINT, SIGTERM or SIGHUP: destroy every live lab (namespaces, veth pair, agents), then exit
 * with 128 + the signal number, as a shell would. For command-line use (tests leave signals to jest).
 */
export function cleanUpOnSignals(onSignal?: (signal: NodeJS.Signals) => void): void {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
  for (const sig of Object.keys(numbers) as NodeJS.Signals[]) {
    process.once(sig, () => {
      onSignal?.(sig);
      destroyAllLabs();
      process.exit(128 + (numbers[sig] as number));
    });
  }
}

export class NetnsLab {
  /**
   * Build the namespaces, the veth pair, addresses and routes, and wait until the link is up.
   * Cleans up after itself on failure.
   */
  public static async create(spec: LabSpec): Promise<NetnsLab> {
    const tag = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`.slice(-9);
    const lab = new NetnsLab(`twh-${tag}`, `twp-${tag}`, `th${tag}`, `tp${tag}`);
    try {
      live.add(lab);
      lab.build(spec);
      await lab.settle();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  public readonly host: string;
  public readonly peer: string;
  public readonly hostIf: string;
  public readonly peerIf: string;
  private readonly dir: string;
  private readonly agents: Agent[] = [];
  private created: string[] = [];

  private constructor(host: string, peer: string, hostIf: string, peerIf: string) {
    this.host = host;
    this.peer = peer;
    this.hostIf = hostIf;
    this.peerIf = peerIf;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-netns-'));
    fs.chmodSync(this.dir, 0o755); // the prober may run as an unprivileged uid
    fs.writeFileSync(path.join(this.dir, 'agent.py'), AGENT_PY, { mode: 0o644 });
    fs.writeFileSync(path.join(this.dir, 'probe.py'), PROBE_PY, { mode: 0o644 });
  }

  public ns(side: Side): string {
    return side === 'host' ? this.host : this.peer;
  }

  public ifname(side: Side): string {
    return side === 'host' ? this.hostIf : this.peerIf;
  }

  /** Run a command inside one namespace; returns stdout, throws with stderr on failure. */
  public exec(side: Side, argv: readonly string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.ns(side), ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Load an iptables-restore / ip6tables-restore pair into the host namespace (atomically each). */
  public loadRules(rules: { readonly v4: string; readonly v6: string }): void {
    this.exec('host', ['iptables-restore'], rules.v4);
    this.exec('host', ['ip6tables-restore'], rules.v6);
  }

  public startAgent(side: Side, spec: AgentSpec): Promise<Agent> {
    return Agent.start(this.ns(side), path.join(this.dir, 'agent.py'), spec, this.ifname(side)).then((a) => {
      this.agents.push(a);
      return a;
    });
  }

  /**
   * Run probes concurrently from one side. Each probe gets a unique token (its echo proves the
   * listener got it). `uid` runs the prober as that user (for owner-match rules).
   */
  public probe(side: Side, probes: readonly Probe[], options: { timeoutMs?: number; uid?: number } = {}): Promise<Map<string, ProbeResult>> {
    const run = ++sequence;
    const cfg = {
      timeout: (options.timeoutMs ?? 400) / 1000,
      uid: options.uid ?? null,
      probes: probes.map((p) => ({ ...p, token: `${run}-${p.id}`.toLowerCase().replace(/[^0-9a-z-]/g, '-') })),
    };
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.ns(side), python(), path.join(this.dir, 'probe.py'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      // 'close', not 'exit': only then has all of stdout been read (a large batch's results
      // arrive in several chunks, possibly after the process has exited).
      child.on('close', (code) => {
        if (code !== 0) {
          reject(new Error(`prober in ${this.ns(side)} exited with ${code}: ${stderr}`));
          return;
        }
        try {
          const list = JSON.parse(stdout) as ProbeResult[];
          resolve(new Map(list.map((r) => [r.id, r])));
        } catch (e) {
          reject(new Error(`prober in ${this.ns(side)} printed no readable results (${(e as Error).message}): ${stderr}`));
        }
      });
    });
  }

  /** Stop the agents, delete both namespaces (which removes the veth pair) and the script dir. */
  public destroy(): void {
    live.delete(this);
    for (const a of this.agents) a.stop();
    for (const ns of [...this.created].reverse()) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'pipe' });
      } catch {
        // already gone
      }
    }
    this.created = [];
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private ip(args: readonly string[]): void {
    execFileSync('ip', [...args], { stdio: 'pipe' });
  }

  private build(spec: LabSpec): void {
    for (const ns of [this.host, this.peer]) {
      this.ip(['netns', 'add', ns]);
      this.created.push(ns);
    }
    this.ip(['link', 'add', this.hostIf, 'netns', this.host, 'type', 'veth', 'peer', 'name', this.peerIf, 'netns', this.peer]);
    for (const side of ['host', 'peer'] as Side[]) {
      const ns = this.ns(side);
      const dev = this.ifname(side);
      const s = side === 'host' ? spec.host : spec.peer;
      // Fast, deterministic IPv6 duplicate address detection (used by the DAD probe).
      this.exec(side, ['sh', '-c', `echo 0 > /proc/sys/net/ipv6/conf/${dev}/router_solicitation_delay && echo 100 > /proc/sys/net/ipv6/neigh/${dev}/retrans_time_ms`]);
      this.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      // One `ip -batch` for all addresses: a peer may own hundreds of them.
      const batch = s.addresses.map((a) => `addr add ${a} dev ${dev}${a.includes(':') ? ' nodad' : ''}`).join('\n');
      if (batch !== '') execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `${batch}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
      this.ip(['-n', ns, 'link', 'set', dev, 'up']);
      for (const r of s.routes ?? []) {
        // "%dev" stands for this side's veth; a leading "-4"/"-6" picks the family explicitly.
        const args = r.map((x) => (x === '%dev' ? dev : x));
        const family = args[0] === '-4' || args[0] === '-6' ? [args[0]] : args.some((x) => x.includes(':')) ? ['-6'] : [];
        const rest = args[0] === '-4' || args[0] === '-6' ? args.slice(1) : args;
        this.ip(['-n', ns, ...family, 'route', 'add', ...rest]);
      }
    }
  }

  /**
   * Wait until both ends of the veth are operationally up. Until the kernel's link watcher has
   * run, the device has no queueing discipline and silently drops what it is given, which would
   * make the first probes (and neighbour discovery) fail for reasons that have nothing to do
   * with the rules.
   */
  public async settle(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const up = (['host', 'peer'] as Side[]).every((side) =>
        /\bstate UP\b/.test(execFileSync('ip', ['-n', this.ns(side), 'link', 'show', 'dev', this.ifname(side)], { encoding: 'utf8' })),
      );
      if (up) return;
      if (Date.now() > deadline) throw new Error(`the veth pair of ${this.host}/${this.peer} is not up after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Add an IPv6 address with duplicate address detection and wait for DAD to decide: returns
   * 'dadfailed' when a neighbour defended it, 'valid' otherwise.
   */
  public async addAddressWithDad(side: Side, cidr: string, timeoutMs = 3000): Promise<'valid' | 'dadfailed' | 'tentative'> {
    const ns = this.ns(side);
    const dev = this.ifname(side);
    this.ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = execFileSync('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', dev, 'to', cidr], { encoding: 'utf8' });
      if (text.includes('dadfailed')) return 'dadfailed';
      if (!text.includes('tentative')) return 'valid';
      if (Date.now() > deadline) return 'tentative';
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
