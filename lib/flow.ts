/**
 * Flows and roles. A flow is one kind of connection a host may accept (ingress) or open (egress),
 * with the reason it is needed. A role is a named set of flows ("mail server").
 */
import { TwinwallError, show } from './errors';
import { Peer, PeerLike, toPeer } from './peer';
import { Port } from './port';

export type Direction = 'ingress' | 'egress';

export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** Validate a role or host name: a short identifier, safe in descriptions, ids and log prefixes. */
export function checkName(name: string, what: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TwinwallError('NAME_INVALID', {
      value: name,
      problem: `${what} ${show(name)} is not a short identifier.`,
      fix: `use 1–63 characters: a letter, then letters, digits, "-" or "_" (e.g. "mailServer").`,
    });
  }
}

export interface FlowOptions {
  /** The catalog service this flow belongs to ("smtp"), for descriptions and reports. */
  readonly service?: string;
}

/** A Peer as given, or the one a host stands for; anything else is left for the constructor to refuse. */
function peerOf(peer: PeerLike): Peer {
  return peer instanceof Peer || peer === null || typeof peer !== 'object' || typeof (peer as { toPeer?: unknown }).toPeer !== 'function' ? (peer as Peer) : toPeer(peer);
}

export class Flow {
  /** Traffic the host accepts: `peer` opens connections to the host on `port`. */
  public static ingress(port: Port, peer: PeerLike, reason: string, options: FlowOptions = {}): Flow {
    return new Flow('ingress', port, peerOf(peer), reason, options.service);
  }

  /** Traffic the host sends: it opens connections to `peer` on `port`. */
  public static egress(port: Port, peer: PeerLike, reason: string, options: FlowOptions = {}): Flow {
    return new Flow('egress', port, peerOf(peer), reason, options.service);
  }

  public readonly direction: Direction;
  public readonly port: Port;
  public readonly peer: Peer;
  public readonly reason: string;
  public readonly service?: string;

  private constructor(direction: Direction, port: Port, peer: Peer, reason: string, service?: string) {
    if (!(port instanceof Port)) {
      throw new TwinwallError('OPTION_INVALID', {
        value: port,
        problem: `the port ${show(port)} is not a Port.`,
        fix: 'build it with Port.tcp(25), Port.udpRange(…), Port.allIcmp() and so on.',
      });
    }
    if (!(peer instanceof Peer)) {
      throw new TwinwallError('OPTION_INVALID', {
        value: peer,
        problem: `the peer ${show(peer)} is not a Peer.`,
        fix: 'build it with Peer.ipv4("198.51.100.0/24"), Peer.anyIpv6(), Peer.securityGroup(…) and so on.',
      });
    }
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new TwinwallError('REASON_MISSING', {
        value: reason,
        problem: `the ${direction} flow ${port} ${direction === 'ingress' ? 'from' : 'to'} ${peer} has no reason.`,
        fix: 'say in a few words why the host needs it, e.g. "deliver outbound mail"; reviewers read it in every plan.',
      });
    }
    if (port.protocol === 'icmp' && !peer.families.includes(4)) {
      throw new TwinwallError('FAMILY_MISMATCH', {
        value: peer.label,
        problem: `ICMP (IPv4) ${direction} to ${show(peer.label)}, which has no IPv4 address.`,
        fix: 'use Port.icmpv6Type(…) for IPv6 peers, or an IPv4 peer.',
      });
    }
    if (port.protocol === 'icmpv6' && !peer.families.includes(6)) {
      throw new TwinwallError('FAMILY_MISMATCH', {
        value: peer.label,
        problem: `ICMPv6 ${direction} to ${show(peer.label)}, which has no IPv6 address.`,
        fix: 'use Port.icmpType(…) for IPv4 peers, or an IPv6 peer.',
      });
    }
    this.direction = direction;
    this.port = port;
    this.peer = peer;
    this.reason = reason.trim();
    this.service = service;
    Object.freeze(this);
  }

  public toString(): string {
    return `${this.direction} ${this.port} ${this.direction === 'ingress' ? 'from' : 'to'} ${this.peer}`;
  }
}

export interface RoleOptions {
  /**
   * The role's ingress is how administrators reach the host (sshAdmin). It stays open in the
   * host wall's fallback, which a host keeps when its real table fails to load, so the host can
   * still be fixed (docs/user-data.md, "When loading fails").
   */
  readonly admin?: boolean;
}

/** A named set of flows, e.g. "mailServer". */
export class Role {
  public static of(name: string, description: string, flows: readonly Flow[], options: RoleOptions = {}): Role {
    checkName(name, 'The role name');
    if (!Array.isArray(flows) || flows.length === 0) {
      throw new TwinwallError('ROLE_EMPTY', {
        value: name,
        problem: `the role ${show(name)} has no flows, so it would admit nothing and explain nothing.`,
        fix: 'give it at least one Flow.ingress(…) or Flow.egress(…), or leave the role out.',
      });
    }
    const admin = options?.admin ?? false;
    if (typeof admin !== 'boolean') {
      throw new TwinwallError('OPTION_INVALID', { value: admin, problem: `the role ${show(name)}'s admin ${show(admin)} is not a boolean.`, fix: 'pass admin: true (its ingress stays open in the fallback) or leave it out.' });
    }
    return new Role(name, description, flows, admin);
  }

  public readonly name: string;
  public readonly description: string;
  public readonly flows: readonly Flow[];
  /** Its ingress is administrative access, kept in the host wall's fallback (RoleOptions.admin). */
  public readonly admin: boolean;

  private constructor(name: string, description: string, flows: readonly Flow[], admin: boolean) {
    this.name = name;
    this.description = description;
    this.flows = Object.freeze([...flows]);
    this.admin = admin;
    Object.freeze(this);
  }
}
