/**
 * Connections between hosts: the pure model behind `FilteredHost.allowTo` / `allowFrom` /
 * `allowInternally` (constructs/filtered-host.ts is the adapter).
 *
 * A grant says "host A may open `ports` to host B, because `reason`". It adds one flow to each
 * side: an egress flow to B on A, an ingress flow from A on B. Each flow's peer is the other
 * host as its network wall knows it (its security group) and as its host wall must match it
 * (its declared addresses). Grants are collected on both hosts and turned into flows only when
 * a host's policy is composed (at synth, after every construct exists), so the order in which
 * hosts are built and grants are declared does not matter, and two hosts may grant each other.
 *
 * A group of identical hosts (an Auto Scaling group, N instances of one launch template) is one
 * endpoint whose addresses are a subnet or a list; it may grant itself (a cluster).
 *
 * This module is pure: it knows endpoints as plain values and never imports cdktf.
 */
import { ServiceName, service } from './catalog';
import { TwinwallError, show } from './errors';
import { Flow } from './flow';
import { Peer } from './peer';
import { Port } from './port';

/** The role name under which a host's grants appear in its policy, descriptions and reports. */
export const CONNECTIONS_ROLE = 'connections';

/** A host (or group of identical hosts) as the other end of a grant. */
export interface HostEndpoint {
  /** The host name (the policy's name). */
  readonly name: string;
  /** Where the host is declared (its construct path), for messages. */
  readonly path: string;
  /** The id of the host's first security group, which every member carries (may be a Terraform token). */
  readonly groupId: string;
  /** The CIDRs the host's (or group's) addresses lie in; undefined when it declares none. */
  readonly addresses?: readonly string[];
}

/** What a grant admits: a catalog service ("http-alt"), one Port, or several. */
export type GrantPorts = ServiceName | Port | readonly Port[];

/**
 * Which side of a grant gets a flow. A grant made with `allowTo`/`allowFrom` writes both; a host
 * passed as a role's peer (`sshAdmin({ from: [bastion] })`) writes its flow through the role, so
 * its grant writes only the other side.
 */
export type GrantSides = 'both' | 'from' | 'to';

/** The label of a host as a peer: rule ids, descriptions and reports name the host by it. */
export function endpointLabel(endpoint: HostEndpoint): string {
  return `${endpoint.name} hosts`;
}

/**
 * The host as a peer of another host's flow: its security group on the network wall, its
 * declared addresses on the host wall. A host without addresses cannot be matched by a host
 * wall, so that is an error, never a wider rule.
 */
export function endpointPeer(endpoint: HostEndpoint, grant?: string): Peer {
  const addresses = endpoint.addresses ?? [];
  if (addresses.length === 0) {
    throw new TwinwallError('GRANT_NO_ADDRESSES', {
      value: endpoint.name,
      problem: `${grant !== undefined ? `the grant ${grant} reaches` : 'a flow names'} the host ${show(endpoint.name)} (${endpoint.path}), which declares no addresses, so the other host's wall could not match it (a host firewall cannot see security groups).`,
      fix: `give ${endpoint.path} the addresses its members use: \`addresses: ["10.0.2.0/24"]\` (its subnet, or a list of fixed addresses), or \`instance.privateIp\`.`,
    });
  }
  return Peer.securityGroup(endpoint.groupId, { hostCidrs: addresses, label: endpointLabel(endpoint) });
}

function portsOf(what: GrantPorts): { ports: readonly Port[]; service?: ServiceName } {
  if (typeof what === 'string') {
    const row = service(what);
    return { ports: row.ports, service: row.name };
  }
  const ports = what instanceof Port ? [what] : Array.isArray(what) ? (what as readonly Port[]) : [];
  if (ports.length === 0 || ports.some((p) => !(p instanceof Port))) {
    throw new TwinwallError('GRANT_INVALID', {
      value: what,
      problem: `${show(what)} is neither a catalog service nor a Port.`,
      fix: 'give a service name ("http-alt"), a Port (Port.tcp(5432)) or a list of Ports.',
    });
  }
  return { ports };
}

/** One grant: `from` may open `ports` to `to`, because `reason`. */
export class Grant {
  /**
   * A grant from one endpoint to another (the same endpoint for a cluster whose members talk to
   * each other). `reason` is required: reviewers read it in every plan.
   */
  public static of(from: HostEndpoint, to: HostEndpoint, what: GrantPorts, reason: string, sides: GrantSides = 'both'): Grant {
    const { ports, service: svc } = portsOf(what);
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new TwinwallError('REASON_MISSING', {
        value: reason,
        problem: `the grant ${from.name} → ${to.name} (${ports.join(', ')}) has no reason.`,
        fix: 'say in a few words why the one host calls the other, e.g. "proxy requests to the app tier".',
      });
    }
    return new Grant(from, to, ports, reason.trim(), sides, svc);
  }

  public readonly from: HostEndpoint;
  public readonly to: HostEndpoint;
  public readonly ports: readonly Port[];
  public readonly reason: string;
  public readonly sides: GrantSides;
  public readonly service?: ServiceName;

  private constructor(from: HostEndpoint, to: HostEndpoint, ports: readonly Port[], reason: string, sides: GrantSides, svc?: ServiceName) {
    this.from = from;
    this.to = to;
    this.ports = Object.freeze([...ports]);
    this.reason = reason;
    this.sides = sides;
    if (svc !== undefined) this.service = svc;
    Object.freeze(this);
  }

  /** "web → app tcp/8080" */
  public toString(): string {
    return `${this.from.name} → ${this.to.name} ${this.service ?? this.ports.join(', ')}`;
  }
}

/**
 * The flows `self`'s grants add to its policy: egress to the other end of every grant it makes,
 * ingress from the other end of every grant it receives (both, for a grant to itself). Sorted
 * by nothing: HostPolicy.compose normalises, so the order of grants never shows.
 */
export function connectionFlows(self: HostEndpoint, grants: readonly Grant[]): Flow[] {
  const flows: Flow[] = [];
  const options = (g: Grant) => (g.service !== undefined ? { service: g.service } : {});
  for (const g of grants) {
    if (g.from === self && g.sides !== 'to') {
      const peer = endpointPeer(g.to, g.toString());
      for (const port of g.ports) flows.push(Flow.egress(port, peer, g.reason, options(g)));
    }
    if (g.to === self && g.sides !== 'from') {
      const peer = endpointPeer(g.from, g.toString());
      for (const port of g.ports) flows.push(Flow.ingress(port, peer, g.reason, options(g)));
    }
  }
  return flows;
}
