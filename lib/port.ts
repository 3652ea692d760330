/**
 * Protocols and ports: what part of the traffic a flow is about. Modelled on aws-cdk's `Port`:
 * static factories, readonly fields, validated at construction.
 */
import type { Family } from './address';
import { TwinwallError, show } from './errors';
import { requireLiteral } from './tokens';

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'all';

export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'icmp', 'icmpv6', 'all'];

/**
 * The IP protocol numbers of the protocols twinwall names: the one table the renderers, the
 * checker, lint and learn share (iptables' full name table is lib/check/iptables-modules.ts's).
 */
export const PROTO = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

export type NamedProtocol = keyof typeof PROTO;

/** The name of a protocol number in PROTO ("tcp" for 6), else undefined. */
export function protocolName(protocol: number): NamedProtocol | undefined {
  return PROTOCOL_NAME.get(protocol);
}

const PROTOCOL_NAME = new Map<number, NamedProtocol>((Object.keys(PROTO) as NamedProtocol[]).map((name) => [PROTO[name], name]));

/** Protocols whose flows carry a port range. */
export function hasPorts(protocol: Protocol): protocol is 'tcp' | 'udp' {
  return protocol === 'tcp' || protocol === 'udp';
}

/** ICMP flavours, whose flows carry a type and code. */
export function isIcmp(protocol: Protocol): protocol is 'icmp' | 'icmpv6' {
  return protocol === 'icmp' || protocol === 'icmpv6';
}

/** The address family a protocol belongs to: ICMP is IPv4's, ICMPv6 is IPv6's, the rest both. */
export function protocolFamily(protocol: Protocol): Family | undefined {
  return protocol === 'icmp' ? 4 : protocol === 'icmpv6' ? 6 : undefined;
}

/** How every port (or every ICMP type) of a protocol is written to users, everywhere: "tcp/all". */
export function allPortsText(protocol: string): string {
  return `${protocol}/all`;
}

/**
 * A port as id text: "tcp-25", "udp-1024-65535", "tcp-all", "icmp-type-3-code-4", "icmpv6-all",
 * "all". `compact` leaves ICMP's words out ("icmp-3", "icmp-3-4"), for names with a length limit
 * (ipset's 31 characters).
 */
export function portSlug(port: Port, options: { readonly compact?: boolean } = {}): string {
  const p = port.protocol;
  if (p === 'all') return 'all';
  if (hasPorts(p)) {
    if (port.isAll) return `${p}-all`;
    return port.from === port.to ? `${p}-${port.from}` : `${p}-${port.from}-${port.to}`;
  }
  if (port.icmpType === undefined) return `${p}-all`;
  const [type, code] = options.compact === true ? ['', ''] : ['type-', 'code-'];
  return port.icmpCode === undefined ? `${p}-${type}${port.icmpType}` : `${p}-${type}${port.icmpType}-${code}${port.icmpCode}`;
}

function checkPort(value: number, what: string): void {
  requireLiteral(value, what, '443');
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new TwinwallError('PORT_OUT_OF_RANGE', {
      value,
      problem: `${what} ${show(value)} is not a port: ports are integers from 0 to 65535.`,
      fix: 'use a port number between 0 and 65535 (Port.allTcp()/allUdp() for every port).',
    });
  }
}

function checkIcmp(value: number, what: string): void {
  requireLiteral(value, what, '3');
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new TwinwallError('ICMP_OUT_OF_RANGE', {
      value,
      problem: `${what} ${show(value)} is out of range: ICMP types and codes are integers from 0 to 255.`,
      fix: 'use a value between 0 and 255, or Port.allIcmp()/allIcmpv6() for every type.',
    });
  }
}

/**
 * The IPv4 ICMP type the kernel's iptables match reads as every type, whatever the code
 * (ip_tables.c; iptables-save prints it as "any"). Reserved on the wire, so never a type of its
 * own here: Port refuses it, the readers read it as every type or refuse it, learn notes it.
 */
export const ICMP4_ANY_TYPE = 255;

/** An IPv4 ICMP type: in range, and not ICMP4_ANY_TYPE (a host wall would admit every type). */
function checkIcmp4Type(value: number): void {
  checkIcmp(value, 'ICMP type');
  if (value === ICMP4_ANY_TYPE) {
    throw new TwinwallError('ICMP_OUT_OF_RANGE', {
      value,
      problem: 'ICMP type 255 is reserved, and iptables reads --icmp-type 255 as every ICMP type: the host wall would admit more than the security group.',
      fix: 'use a type from 0 to 254, or Port.allIcmp() for every type.',
    });
  }
}

/**
 * The protocol and port part of a flow. For TCP/UDP `from`..`to` is an inclusive port range. For
 * ICMP/ICMPv6 `icmpType` and `icmpCode` are set, `undefined` meaning "every type" / "every code".
 */
export class Port {
  public static tcp(port: number): Port {
    return Port.range('tcp', port, port);
  }

  public static tcpRange(from: number, to: number): Port {
    return Port.range('tcp', from, to);
  }

  public static allTcp(): Port {
    return new Port('tcp', 0, 65535);
  }

  public static udp(port: number): Port {
    return Port.range('udp', port, port);
  }

  public static udpRange(from: number, to: number): Port {
    return Port.range('udp', from, to);
  }

  public static allUdp(): Port {
    return new Port('udp', 0, 65535);
  }

  /** One ICMP (IPv4) type, any code; e.g. 8 for echo request. */
  public static icmpType(type: number): Port {
    checkIcmp4Type(type);
    return new Port('icmp', undefined, undefined, type);
  }

  public static icmpTypeAndCode(type: number, code: number): Port {
    checkIcmp4Type(type);
    checkIcmp(code, 'ICMP code');
    return new Port('icmp', undefined, undefined, type, code);
  }

  public static allIcmp(): Port {
    return new Port('icmp');
  }

  /** One ICMPv6 type, any code; e.g. 128 for echo request. */
  public static icmpv6Type(type: number): Port {
    checkIcmp(type, 'ICMPv6 type');
    return new Port('icmpv6', undefined, undefined, type);
  }

  public static icmpv6TypeAndCode(type: number, code: number): Port {
    checkIcmp(type, 'ICMPv6 type');
    checkIcmp(code, 'ICMPv6 code');
    return new Port('icmpv6', undefined, undefined, type, code);
  }

  public static allIcmpv6(): Port {
    return new Port('icmpv6');
  }

  /** Every protocol, every port. Use sparingly: lint flags it towards anywhere. */
  public static allTraffic(): Port {
    return new Port('all');
  }

  private static range(protocol: 'tcp' | 'udp', from: number, to: number): Port {
    checkPort(from, `${protocol.toUpperCase()} port`);
    checkPort(to, `${protocol.toUpperCase()} port`);
    if (from > to) {
      throw new TwinwallError('PORT_RANGE_REVERSED', {
        value: `${from}-${to}`,
        problem: `the ${protocol.toUpperCase()} port range ${from}-${to} starts above its end.`,
        fix: `write it as ${to}-${from}.`,
      });
    }
    if (to === 0) {
      throw new TwinwallError('PORT_ZERO', {
        value: `${protocol}/0`,
        problem: `${show(`${protocol}/0`)} is ${protocol.toUpperCase()} port 0, which is reserved: no service listens on it, and traffic to it is a scan or a bug.`,
        fix: `give the service's real port (e.g. Port.${protocol}(8080)), or Port.all${protocol === 'tcp' ? 'Tcp' : 'Udp'}() if every port is meant.`,
      });
    }
    return new Port(protocol, from, to);
  }

  public readonly protocol: Protocol;
  /** First port (TCP/UDP only). */
  public readonly from?: number;
  /** Last port, inclusive (TCP/UDP only). */
  public readonly to?: number;
  /** ICMP type; undefined = every type (ICMP only). */
  public readonly icmpType?: number;
  /** ICMP code; undefined = every code (ICMP only). */
  public readonly icmpCode?: number;

  private constructor(protocol: Protocol, from?: number, to?: number, icmpType?: number, icmpCode?: number) {
    this.protocol = protocol;
    this.from = from;
    this.to = to;
    this.icmpType = icmpType;
    this.icmpCode = icmpCode;
    Object.freeze(this);
  }

  /**
   * The port part as an inclusive interval on one 16-bit axis, so ports and ICMP share the same
   * set algebra: TCP/UDP ports map to themselves, ICMP (type, code) to type*256+code. `all` has
   * no axis and returns the full range.
   */
  public get span(): readonly [number, number] {
    if (hasPorts(this.protocol)) return [this.from as number, this.to as number];
    if (isIcmp(this.protocol)) {
      if (this.icmpType === undefined) return [0, 65535];
      if (this.icmpCode === undefined) return [this.icmpType * 256, this.icmpType * 256 + 255];
      return [this.icmpType * 256 + this.icmpCode, this.icmpType * 256 + this.icmpCode];
    }
    return [0, 65535];
  }

  /** True when this covers every port / type of its protocol (or is all traffic). */
  public get isAll(): boolean {
    const [a, b] = this.span;
    return a === 0 && b === 65535;
  }

  /** Short human form: "tcp/25", "udp/1024-65535", "icmp type 3", "all". */
  public toString(): string {
    if (hasPorts(this.protocol)) {
      if (this.isAll) return allPortsText(this.protocol);
      return this.from === this.to ? `${this.protocol}/${this.from}` : `${this.protocol}/${this.from}-${this.to}`;
    }
    if (isIcmp(this.protocol)) {
      if (this.icmpType === undefined) return allPortsText(this.protocol);
      if (this.icmpCode === undefined) return `${this.protocol} type ${this.icmpType}`;
      return `${this.protocol} type ${this.icmpType} code ${this.icmpCode}`;
    }
    return 'all';
  }

  /**
   * Ports from a span on the 16-bit axis (the inverse of `span`). ICMP spans that do not align
   * to one type, one (type, code) or everything are split: one Port per type or per code.
   * @internal
   */
  public static fromSpan(protocol: Protocol, from: number, to: number): Port[] {
    if (protocol === 'all') return [Port.allTraffic()];
    if (hasPorts(protocol)) return [new Port(protocol, from, to)];
    if (from === 0 && to === 65535) return [new Port(protocol)];
    const out: Port[] = [];
    let v = from;
    while (v <= to) {
      const type = v >> 8;
      const code = v & 0xff;
      if (code === 0 && type * 256 + 255 <= to) {
        out.push(new Port(protocol, undefined, undefined, type));
        v = type * 256 + 256;
      } else {
        out.push(new Port(protocol, undefined, undefined, type, code));
        v += 1;
      }
    }
    return out;
  }
}
