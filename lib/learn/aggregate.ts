/**
 * Observations → flows: one `FlowStats` per host, direction, reason, protocol and port (ICMP: type
 * and code), with counts, first/last seen, sample lines and the remote addresses. Memory is bounded
 * by the number of distinct flows, never by the number of lines: sample lines, user ids and local
 * addresses are capped; remote addresses are kept exactly up to `maxAddresses` per flow and family,
 * then coarsened to the widest prefix, and past that only counted. Ports per host, direction and
 * protocol are capped the same way (a port scan lands in one "many ports" flow).
 *
 * Keyed compactly: flows per host in a map keyed by one small integer (direction, reason,
 * protocol, port or ICMP type and code), remote addresses by their 32-bit value (IPv4) or
 * canonical text (IPv6), first and last sighting as numbers; a line adds to counters and costs
 * no allocation unless it brings something new (a flow, an address, a sample).
 */
import { Cidr, Family, familyBits } from '../address';
import { Direction } from '../flow';
import { LOG_DIRECTIONS } from '../log-prefix';
import { Addr, LineRecord, LineRef, Moment, Observation, SeenProtocol, SeenReason, SeenTime, keyText, keyValue, momentOrder } from './observation';
import { allPortsText } from '../port';

/** What a flow is about: traffic (a kernel policy line or a flow-log record), or a special case. */
export type FlowReason = 'traffic' | Exclude<SeenReason, 'policy' | 'flowlog'>;

function flowReason(r: SeenReason): FlowReason {
  return r === 'policy' || r === 'flowlog' ? 'traffic' : r;
}

export interface AggregateOptions {
  /** Sample lines kept per flow (default 3). */
  readonly samples?: number;
  /** Exact remote addresses kept per flow and family before coarsening (default 4096). */
  readonly maxAddresses?: number;
  /** Distinct ports per host, direction and protocol before the rest is lumped (default 1024). */
  readonly maxPorts?: number;
  /** Coarsen to this prefix once maxAddresses is reached (IPv4, IPv6). */
  readonly widestPrefix?: { readonly 4: number; readonly 6: number };
}

export const DEFAULT_WIDEST_PREFIX = { 4: 24, 6: 48 } as const;

/** A moment in a flow's life: when, and on which line. */
export interface Seen {
  readonly time?: SeenTime;
  readonly ref: Omit<LineRef, 'text'>;
}

class RemoteSet {
  /** Exact addresses seen, as address keys (IPv4 as a 32-bit integer, IPv6 as a compact key). */
  public readonly points = new Set<number | string>();
  /** Networks at the widest prefix (IPv4: numbers, IPv6: bigints), once points are full. */
  public readonly blocks = new Set<number | bigint>();
  public overflow = 0;
  /** Exact while nothing was coarsened; a lower bound after. */
  public distinct = 0;
  private readonly divisor: number;

  public constructor(
    private readonly family: Family,
    private readonly cap: number,
    private readonly widest: number,
  ) {
    this.divisor = 2 ** (familyBits(family) - widest);
  }

  public add(address: Addr): void {
    const key = address.key;
    if (this.points.has(key)) return;
    if (this.points.size < this.cap) {
      this.points.add(key);
      this.distinct++;
      return;
    }
    const net = typeof key === 'number' ? Math.floor((key >>> 0) / this.divisor) : address.value >> BigInt(familyBits(this.family) - this.widest);
    if (this.blocks.has(net)) return;
    if (this.blocks.size < this.cap) {
      this.blocks.add(net);
      this.distinct++;
      return;
    }
    this.overflow++;
  }

  public get coarsened(): boolean {
    return this.blocks.size > 0;
  }

  /** The values of the exact addresses. */
  public pointValues(): bigint[] {
    return [...this.points].map(keyValue);
  }

  public blockCidrs(): Cidr[] {
    const shift = BigInt(familyBits(this.family) - this.widest);
    return [...this.blocks].map((n) => Cidr.fromParts(this.family, BigInt(n) << shift, this.widest));
  }
}

/** Everything seen of one flow. */
export class FlowStats {
  public packets = 0;
  public flows = 0;
  public bytes = 0;
  public records = 0;
  public rejected = 0;
  public guessed = 0;
  private readonly firstSeen = new Moment();
  private readonly lastSeen = new Moment();
  public readonly samples: LineRef[] = [];
  public readonly uids = new Map<number, number>();
  public readonly verdicts = new Map<string, number>();
  /** The host's own addresses in these lines (for spoof lines: the forged sources), as address keys. */
  private readonly localKeys = new Set<number | string>();
  public localsOverflow = 0;
  public readonly remotes: Record<Family, RemoteSet>;
  /** Records that came from flow logs (the rest are kernel LOG lines). */
  public fromFlowLogs = 0;
  /** The previous record's connection, when it was a kernel line (retransmissions are no new flows). */
  private lastKernel = false;
  private lastProto = '';
  private lastSrc: number | string = 0;
  private lastSport = -1;
  private lastDst: number | string = 0;
  private lastDport = -1;

  public constructor(
    public readonly key: string,
    public readonly host: string,
    public readonly direction: Direction | 'forward',
    public readonly reason: FlowReason,
    public readonly protocol: SeenProtocol,
    /** TCP/UDP port; undefined for "many ports" or protocols without ports. */
    public readonly port: number | undefined,
    public readonly icmpType: number | undefined,
    public readonly icmpCode: number | undefined,
    /** True for the flow that collects ports past maxPorts. */
    public readonly manyPorts: boolean,
    private readonly options: Required<AggregateOptions>,
  ) {
    this.remotes = {
      4: new RemoteSet(4, options.maxAddresses, options.widestPrefix[4]),
      6: new RemoteSet(6, options.maxAddresses, options.widestPrefix[6]),
    };
  }

  /** The earliest sighting (by the clock when clocks compare, else the first line read). */
  public get first(): Seen {
    return seen(this.firstSeen);
  }

  /** The latest sighting. */
  public get last(): Seen {
    return seen(this.lastSeen);
  }

  /** The host's own addresses in these lines, as text, in the order first seen (at most 8). */
  public get locals(): ReadonlySet<string> {
    return new Set([...this.localKeys].map(keyText));
  }

  public add(r: LineRecord): void {
    const m = r.moment;
    const latest = r.ranged ? r.until : m;
    const w = r.weight;
    if (this.records === 0) {
      this.firstSeen.copy(m);
      this.lastSeen.copy(latest);
    } else {
      // Without comparable clocks, input order decides: the first line read is first.
      if ((momentOrder(m, this.firstSeen) ?? 0) < 0) this.firstSeen.copy(m);
      if ((momentOrder(latest, this.lastSeen) ?? 1) >= 0) this.lastSeen.copy(latest);
    }
    this.records += w;
    if (r.reason === 'flowlog') this.fromFlowLogs += w;
    this.packets += r.packets;
    if (r.bytes > 0) this.bytes += r.bytes;
    if (r.rejected) this.rejected += w;
    if (r.guessed) this.guessed += w;
    if (r.kind === 'kernel') {
      // A kernel line repeating the previous line's connection is a retransmission, not a new flow.
      const src = r.src.key;
      const dst = r.dst.key;
      const again = this.lastKernel && this.lastProto === r.protoText && this.lastSrc === src && this.lastSport === r.sport && this.lastDst === dst && this.lastDport === r.dport;
      if (r.newFlow && !again) this.flows++;
      this.lastKernel = true;
      this.lastProto = r.protoText;
      this.lastSrc = src;
      this.lastSport = r.sport;
      this.lastDst = dst;
      this.lastDport = r.dport;
    } else {
      // A flow-log record of the opening side is one flow (per capture window).
      if (r.newFlow) this.flows += w;
      this.lastKernel = false;
    }
    if (this.samples.length < this.options.samples) this.samples.push({ source: r.source, line: r.line, text: r.text() });
    if (r.uid >= 0 && (this.uids.has(r.uid) || this.uids.size < 16)) this.uids.set(r.uid, (this.uids.get(r.uid) ?? 0) + w);
    const v = this.verdicts.get(r.verdict);
    if (v !== undefined) this.verdicts.set(r.verdict, v + w);
    else if (this.verdicts.size < 8) this.verdicts.set(r.verdict, w);
    const local = r.local.key;
    if (!this.localKeys.has(local)) {
      if (this.localKeys.size < 8) this.localKeys.add(local);
      else this.localsOverflow += w;
    }
    this.remotes[r.remote.family].add(r.remote);
  }

  /** Distinct remote addresses (a lower bound once coarsened). */
  public get distinctRemotes(): number {
    return this.remotes[4].distinct + this.remotes[6].distinct;
  }

  /** "egress udp/1434", "ingress icmp type 8 code 0", "egress proto 47", "ingress tcp/many ports". */
  public get label(): string {
    return `${this.direction} ${protocolLabel(this.protocol, this.port, this.icmpType, this.icmpCode, this.manyPorts)}`;
  }
}

function seen(m: Moment): Seen {
  const time = m.time;
  return time ? { time, ref: { source: m.source, line: m.line } } : { ref: { source: m.source, line: m.line } };
}

export function protocolLabel(protocol: SeenProtocol, port: number | undefined, icmpType?: number, icmpCode?: number, manyPorts = false): string {
  if (typeof protocol === 'number') return `proto ${protocol}`;
  if (protocol === 'tcp' || protocol === 'udp') return manyPorts ? `${protocol}/many ports` : port === undefined ? protocol : `${protocol}/${port}`;
  if (icmpType === undefined) return allPortsText(protocol);
  return `${protocol} type ${icmpType} code ${icmpCode ?? 0}`;
}

const REASON_INDEX: Record<FlowReason, number> = { traffic: 0, invalid: 1, spoof: 2, imds: 3, stray: 4 };
const PROTOCOL_INDEX: Record<string, number> = { tcp: 256, udp: 257, icmp: 258, icmpv6: 259 };

/** The flows and port sets of one host. */
interface HostFlows {
  /** Flow by compact key: ((direction, reason, protocol) group) × 131330 + port or ICMP slot. */
  readonly flows: Map<number, FlowStats>;
  /** Ports seen per (direction, reason, protocol) group. */
  readonly ports: Map<number, Set<number>>;
}

/** All flows of all hosts, built one record at a time. */
export class Aggregator {
  private readonly hostFlows = new Map<string, HostFlows>();
  private readonly byKey = new Map<string, FlowStats>();
  private readonly order: FlowStats[] = [];
  private readonly options: Required<AggregateOptions>;
  private lastHost: string | undefined;
  private lastFlows: HostFlows | undefined;
  private readonly scratch = new LineRecord();

  public constructor(options: AggregateOptions = {}, private readonly aliases: ReadonlyMap<string, string> = new Map()) {
    this.options = {
      samples: options.samples ?? 3,
      maxAddresses: options.maxAddresses ?? 4096,
      maxPorts: options.maxPorts ?? 1024,
      widestPrefix: options.widestPrefix ?? DEFAULT_WIDEST_PREFIX,
    };
  }

  /** Add one observation (a value; readers add records with addRecord). */
  public add(o: Observation): void {
    this.scratch.fromObservation(o);
    this.addRecord(this.scratch);
  }

  /** Add what a parser read into a record. */
  public addRecord(r: LineRecord): void {
    let hf: HostFlows;
    if (r.host === this.lastHost) hf = this.lastFlows as HostFlows;
    else {
      const host = this.aliases.get(r.host) ?? r.host;
      let found = this.hostFlows.get(host);
      if (!found) this.hostFlows.set(host, (found = { flows: new Map(), ports: new Map() }));
      this.lastHost = r.host;
      this.lastFlows = hf = found;
    }
    const reason = flowReason(r.reason);
    const protocol = r.protocol;
    const group = (LOG_DIRECTIONS.indexOf(r.direction) * 8 + REASON_INDEX[reason]) * 260 + (typeof protocol === 'number' ? protocol : PROTOCOL_INDEX[protocol]);
    // Strays and INVALID packets are not flows: one bucket per protocol, whatever the port.
    let port = reason === 'stray' || reason === 'invalid' ? -1 : r.port;
    let manyPorts = false;
    if (port >= 0) {
      let set = hf.ports.get(group);
      if (!set) hf.ports.set(group, (set = new Set()));
      if (!set.has(port)) {
        if (set.size < this.options.maxPorts) set.add(port);
        else {
          port = -1;
          manyPorts = true;
        }
      }
    }
    const slot = manyPorts ? 65537 : port >= 0 ? port : r.icmpType >= 0 ? 65538 + r.icmpType * 257 + (r.icmpCode + 1) : 65536;
    const key = group * 131330 + slot;
    let f = hf.flows.get(key);
    if (!f) {
      const host = this.aliases.get(r.host) ?? r.host;
      const p = port >= 0 ? port : undefined;
      const t = r.icmpType >= 0 ? r.icmpType : undefined;
      const c = r.icmpCode >= 0 ? r.icmpCode : undefined;
      const text = `${host}|${r.direction}|${reason}|${protocol}|${manyPorts ? '*' : (p ?? '')}|${t ?? ''}|${c ?? ''}`;
      f = new FlowStats(text, host, r.direction, reason, protocol, p, t, c, manyPorts, this.options);
      hf.flows.set(key, f);
      this.byKey.set(text, f);
      this.order.push(f);
    }
    f.add(r);
  }

  /** One flow by its key. */
  public get(key: string): FlowStats | undefined {
    return this.byKey.get(key);
  }

  public get hosts(): string[] {
    return [...this.hostFlows.entries()]
      .filter(([, hf]) => hf.flows.size > 0)
      .map(([h]) => h)
      .sort();
  }

  /** The flows of one host, in a stable order (direction, reason, protocol, port). */
  public flowsOf(host: string): FlowStats[] {
    return this.order.filter((f) => f.host === host).sort(compareFlows);
  }
}

const PROTO_RANK: Record<string, number> = { tcp: 0, udp: 1, icmp: 2, icmpv6: 3 };
const DIR_RANK: Record<string, number> = { ingress: 0, egress: 1, forward: 2 };

function compareFlows(a: FlowStats, b: FlowStats): number {
  return (
    DIR_RANK[a.direction] - DIR_RANK[b.direction] ||
    (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0) ||
    (PROTO_RANK[String(a.protocol)] ?? 10 + Number(a.protocol)) - (PROTO_RANK[String(b.protocol)] ?? 10 + Number(b.protocol)) ||
    (a.port ?? 70000) - (b.port ?? 70000) ||
    (a.icmpType ?? 0) - (b.icmpType ?? 0) ||
    (a.icmpCode ?? 0) - (b.icmpCode ?? 0)
  );
}
