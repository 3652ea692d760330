/**
 * Observations → flows: one `FlowStats` per host, direction, reason, protocol and port (ICMP: type
 * and code), with counts, first/last seen, sample lines and the remote addresses. Memory is bounded
 * by the number of distinct flows, never by the number of lines: sample lines, user ids and local
 * addresses are capped; remote addresses are kept exactly up to `maxAddresses` per flow and family,
 * then coarsened to the widest prefix, and past that only counted. Ports per host, direction and
 * protocol are capped the same way (a port scan lands in one "many ports" flow).
 */
import { Cidr, Family, familyBits } from '../address';
import { Direction } from '../flow';
import { LineRef, Observation, SeenAddress, SeenProtocol, SeenReason, SeenTime } from './observation';

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
  readonly ref: LineRef;
}

/** Order of two moments when their clocks are comparable (epoch, or boot time in one input). */
function order(a: Seen, b: Seen): number | undefined {
  if (a.time?.epochMs !== undefined && b.time?.epochMs !== undefined) return a.time.epochMs - b.time.epochMs;
  if (a.time?.bootSeconds !== undefined && b.time?.bootSeconds !== undefined && a.ref.source === b.ref.source) return a.time.bootSeconds - b.time.bootSeconds;
  return undefined;
}

class RemoteSet {
  /** Exact addresses seen: canonical text → value (text keys hash once per distinct string). */
  public readonly points = new Map<string, bigint>();
  public readonly blocks = new Set<bigint>();
  public overflow = 0;
  /** Exact while nothing was coarsened; a lower bound after. */
  public distinct = 0;

  public constructor(
    private readonly family: Family,
    private readonly cap: number,
    private readonly widest: number,
  ) {}

  public add(address: SeenAddress): void {
    if (this.points.has(address.text)) return;
    if (this.points.size < this.cap) {
      this.points.set(address.text, address.value);
      this.distinct++;
      return;
    }
    const net = address.value >> BigInt(familyBits(this.family) - this.widest);
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

  public blockCidrs(): Cidr[] {
    const shift = BigInt(familyBits(this.family) - this.widest);
    return [...this.blocks].map((n) => Cidr.fromParts(this.family, n << shift, this.widest));
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
  public first!: Seen;
  public last!: Seen;
  public readonly samples: LineRef[] = [];
  public readonly uids = new Map<number, number>();
  public readonly verdicts = new Map<string, number>();
  /** The host's own addresses in these lines (for spoof lines: the forged sources). */
  public readonly locals = new Set<string>();
  public localsOverflow = 0;
  public readonly remotes: Record<Family, RemoteSet>;
  /** Records that came from flow logs (the rest are kernel LOG lines). */
  public fromFlowLogs = 0;
  private lastTuple = '';

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

  public add(o: Observation): void {
    const seen: Seen = o.time ? { time: o.time, ref: o.ref } : { ref: o.ref };
    if (this.records === 0) {
      this.first = seen;
      this.last = seen;
    } else {
      // Without comparable clocks, input order decides: the first line read is first.
      if ((order(seen, this.first) ?? 0) < 0) this.first = seen;
      if ((order(seen, this.last) ?? 1) >= 0) this.last = seen;
    }
    this.records++;
    if (o.reason === 'flowlog') this.fromFlowLogs++;
    this.packets += o.packets;
    this.bytes += o.bytes ?? 0;
    if (o.rejected) this.rejected++;
    if (o.guessed) this.guessed++;
    // A kernel line repeating the previous line's 5-tuple is a retransmission, not a new flow.
    if (o.newFlow && o.tuple !== this.lastTuple) this.flows++;
    this.lastTuple = o.tuple;
    if (this.samples.length < this.options.samples) this.samples.push(o.ref);
    if (o.uid !== undefined && (this.uids.has(o.uid) || this.uids.size < 16)) this.uids.set(o.uid, (this.uids.get(o.uid) ?? 0) + 1);
    if (this.verdicts.has(o.verdict) || this.verdicts.size < 8) this.verdicts.set(o.verdict, (this.verdicts.get(o.verdict) ?? 0) + 1);
    if (this.locals.has(o.local.text)) {
      // known
    } else if (this.locals.size < 8) this.locals.add(o.local.text);
    else this.localsOverflow++;
    this.remotes[o.remote.family].add(o.remote);
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

export function protocolLabel(protocol: SeenProtocol, port: number | undefined, icmpType?: number, icmpCode?: number, manyPorts = false): string {
  if (typeof protocol === 'number') return `proto ${protocol}`;
  if (protocol === 'tcp' || protocol === 'udp') return manyPorts ? `${protocol}/many ports` : port === undefined ? protocol : `${protocol}/${port}`;
  if (icmpType === undefined) return `${protocol}/all`;
  return `${protocol} type ${icmpType} code ${icmpCode ?? 0}`;
}

/** All flows of all hosts, built one observation at a time. */
export class Aggregator {
  private readonly flows = new Map<string, FlowStats>();
  private readonly ports = new Map<string, Set<number>>();
  private readonly options: Required<AggregateOptions>;

  public constructor(options: AggregateOptions = {}, private readonly aliases: ReadonlyMap<string, string> = new Map()) {
    this.options = {
      samples: options.samples ?? 3,
      maxAddresses: options.maxAddresses ?? 4096,
      maxPorts: options.maxPorts ?? 1024,
      widestPrefix: options.widestPrefix ?? DEFAULT_WIDEST_PREFIX,
    };
  }

  public add(o: Observation): void {
    const host = this.aliases.get(o.host) ?? o.host;
    const reason = flowReason(o.reason);
    // Strays and INVALID packets are not flows: one bucket per protocol, whatever the port.
    let port = reason === 'stray' || reason === 'invalid' ? undefined : o.port;
    let manyPorts = false;
    if (port !== undefined) {
      const pk = `${host}|${o.direction}|${flowReason(o.reason)}|${o.protocol}`;
      let set = this.ports.get(pk);
      if (!set) this.ports.set(pk, (set = new Set()));
      if (!set.has(port)) {
        if (set.size < this.options.maxPorts) set.add(port);
        else {
          port = undefined;
          manyPorts = true;
        }
      }
    }
    const key = `${host}|${o.direction}|${flowReason(o.reason)}|${o.protocol}|${manyPorts ? '*' : (port ?? '')}|${o.icmpType ?? ''}|${o.icmpCode ?? ''}`;
    let f = this.flows.get(key);
    if (!f) {
      f = new FlowStats(key, host, o.direction, flowReason(o.reason), o.protocol, port, o.icmpType, o.icmpCode, manyPorts, this.options);
      this.flows.set(key, f);
    }
    f.add(o);
  }

  /** One flow by its key. */
  public get(key: string): FlowStats | undefined {
    return this.flows.get(key);
  }

  public get hosts(): string[] {
    return [...new Set([...this.flows.values()].map((f) => f.host))].sort();
  }

  /** The flows of one host, in a stable order (direction, reason, protocol, port). */
  public flowsOf(host: string): FlowStats[] {
    return [...this.flows.values()].filter((f) => f.host === host).sort(compareFlows);
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
