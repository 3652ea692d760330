/**
 * What `twinwall learn` reads out of a log line: one observation of traffic at one host, in the
 * host's point of view (ingress: the remote end opened it; egress: the host did). Both parsers
 * (kernel LOG lines, VPC Flow Logs) produce these; the aggregator consumes nothing else.
 */
import * as ipaddr from 'ipaddr.js';
import { Family } from '../address';
import { Direction } from '../flow';

/** An address as read from a log: family, numeric value, canonical text. */
export interface SeenAddress {
  readonly family: Family;
  readonly value: bigint;
  readonly text: string;
}

/** The protocol of an observation: the four twinwall knows, or an IP protocol number. */
export type SeenProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | number;

/** When a line was logged, as far as the line says. */
export interface SeenTime {
  /** The timestamp as written (normalised spacing), for reports. */
  readonly text: string;
  /** Milliseconds since the epoch, when the line carries a full date. */
  readonly epochMs?: number;
  /** Seconds since boot (dmesg, /dev/kmsg), when that is all the line carries. */
  readonly bootSeconds?: number;
}

/** Where an observation came from: input name, 1-based line number, the line itself. */
export interface LineRef {
  readonly source: string;
  readonly line: number;
  readonly text: string;
}

/**
 * Why the audited rules logged a packet. `policy`: no rule admitted it (the final drop chains);
 * `invalid`: conntrack called it INVALID; `spoof`: the source was not one of the host's addresses;
 * `imds`: instance-metadata access the policy does not allow; `flowlog`: a flow-log record;
 * `stray`: a policy line for a packet that opens no connection (TCP without SYN, an ICMP error or
 * reply) — a late packet of a connection conntrack no longer knows.
 */
export type SeenReason = 'policy' | 'invalid' | 'spoof' | 'imds' | 'flowlog' | 'stray';

export interface Observation {
  /** Host name (twinwall host, OS hostname, instance or interface id, after aliases). */
  readonly host: string;
  readonly direction: Direction | 'forward';
  readonly protocol: SeenProtocol;
  /** The service port (TCP/UDP): the port the side that opened the connection sent to. */
  readonly port?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** The other end of the flow. */
  readonly remote: SeenAddress;
  /** The host's own end (its source on egress, its destination on ingress). */
  readonly local: SeenAddress;
  readonly reason: SeenReason;
  /** The LOG prefix's verdict word ("audit", "drop"), or the flow log's action ("ACCEPT"). */
  readonly verdict: string;
  /** Local user id of the sending socket (kernel egress lines with --log-uid). */
  readonly uid?: number;
  readonly packets: number;
  readonly bytes?: number;
  /** Counts as a new flow (false for a flow-log record of the replying direction). */
  readonly newFlow: boolean;
  /** A key of the connection (5-tuple), to tell retransmissions from new flows. */
  readonly tuple: string;
  /** The network wall rejected it (flow log action REJECT). */
  readonly rejected: boolean;
  /** The direction was guessed from the ports (flow logs without flow-direction or flags). */
  readonly guessed: boolean;
  readonly time?: SeenTime;
  readonly ref: LineRef;
}

/** Outcome of reading one line. */
export type LineResult =
  | { readonly kind: 'observation'; readonly observation: Observation }
  /** A line that is not for learn (another kernel message, a journal marker, a blank line). */
  | { readonly kind: 'foreign'; readonly why: string }
  /** A line that looks like ours but cannot be read. */
  | { readonly kind: 'malformed'; readonly why: string }
  /** A well-formed record with nothing to learn from (flow log NODATA/SKIPDATA, a header). */
  | { readonly kind: 'skipped'; readonly why: string };

/**
 * A copy of `text` that does not keep the string it was cut from alive. V8 represents a substring
 * (slice, split, regex group) as a view into its parent: a cached address cut out of one line
 * would otherwise pin the whole 64 KB chunk that line came from, and memory would grow with the
 * input instead of with what learn keeps.
 */
export function detach(text: string): string {
  return text.length < 13 ? text : (` ${text}`).slice(1);
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Parse an address as logs print it (dotted quad; IPv6 fully expanded, as the kernel prints it,
 * or compressed, as flow logs do). A small cache keeps repeated addresses cheap; its size is
 * bounded so memory stays flat.
 */
export class AddressReader {
  private readonly cache = new Map<string, SeenAddress | null>();

  public constructor(private readonly limit = 50000) {}

  public read(text: string): SeenAddress | undefined {
    const hit = this.cache.get(text);
    if (hit !== undefined) return hit ?? undefined;
    const key = detach(text);
    const parsed = AddressReader.parse(key);
    if (this.cache.size >= this.limit) this.cache.clear();
    this.cache.set(key, parsed ?? null);
    return parsed;
  }

  private static parse(text: string): SeenAddress | undefined {
    const m = IPV4.exec(text);
    if (m) {
      let v = 0;
      for (let i = 1; i <= 4; i++) {
        const octet = Number(m[i]);
        if (octet > 255 || (m[i].length > 1 && m[i][0] === '0')) return undefined;
        v = v * 256 + octet;
      }
      return { family: 4, value: BigInt(v), text: detach(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`) };
    }
    if (!text.includes(':') || text.includes('%')) return undefined;
    try {
      // IPv6 straight away: the generic parseAddress tries IPv4 first, which costs an exception.
      const a = ipaddr.IPv6.parse(text);
      let value = 0n;
      for (const b of a.toByteArray()) value = (value << 8n) | BigInt(b);
      return { family: 6, value, text: detach(a.toRFC5952String()) };
    } catch {
      return undefined;
    }
  }
}

