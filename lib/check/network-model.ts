/**
 * The network wall as a region of the flow space: what the security-group rules attached to a
 * host admit, each piece labelled with the rule that admits it. Security groups look at the
 * protocol, the port (or ICMP type/code) and the remote address only.
 */
import { Family, familyBits } from '../address';
import { Direction } from '../flow';
import { universe } from './host-model';
import { Box, IntervalSet, Region } from './space';
import { SgRule } from './terraform';
import { PROTO } from '../port';

export interface Admitting {
  readonly box: Box;
  readonly rule: SgRule;
}

export interface NetworkDirectionModel {
  readonly direction: Direction;
  readonly family: Family;
  /** Pairwise disjoint; each piece admitted by (the first of) the rules that admit it. */
  readonly admitted: readonly Admitting[];
  readonly undecidable: readonly { readonly box: Box; readonly reason: string }[];
  /** Reference rules and where their host-side CIDRs came from. */
  readonly references: readonly SgRule[];
}

/** The protocol/port part of a rule: proto and point constraints. */
export function protocolBox(bits: number, protocol: number | 'all', fromPort?: number, toPort?: number): Box {
  if (protocol === 'all') return Box.full(bits);
  if (protocol === PROTO.tcp || protocol === PROTO.udp) {
    const from = fromPort ?? 0;
    const to = toPort ?? 65535;
    return Box.where(bits, { proto: IntervalSet.of(protocol), point: IntervalSet.of(Math.max(0, from), Math.min(65535, to)) });
  }
  if (protocol === PROTO.icmp || protocol === PROTO.icmpv6) {
    const type = fromPort ?? -1;
    const code = toPort ?? -1;
    const point = type < 0 ? IntervalSet.of(0, 65535) : code < 0 ? IntervalSet.of(type * 256, type * 256 + 255) : IntervalSet.of(type * 256 + code);
    return Box.where(bits, { proto: IntervalSet.of(protocol), point });
  }
  // Other protocols: AWS ignores the port range.
  return Box.where(bits, { proto: IntervalSet.of(protocol) });
}

/** Where a rule admits traffic in one family, or undefined when it has no peer there. */
export function ruleRegion(rule: SgRule, family: Family): Region | undefined {
  const bits = familyBits(family);
  const peer = rule.peer;
  if (peer === undefined) return undefined;
  const cidrs = peer.kind === 'cidr' ? [peer] : (peer.cidrs ?? []);
  const remote = cidrs.filter((c) => c.family === family).reduce((s, c) => s.union(c.set), IntervalSet.EMPTY);
  if (remote.isEmpty) return undefined;
  return Region.of([protocolBox(bits, rule.protocol, rule.fromPort, rule.toPort).with('remote', remote)]);
}

/**
 * Model one direction and family of a host's network wall. `wallProblems` (unknown groups and
 * the like) make everything undecidable.
 */
export function modelNetwork(rules: readonly SgRule[], direction: Direction, family: Family, wallProblems: readonly string[]): NetworkDirectionModel {
  const bits = familyBits(family);
  const uni = universe(direction, family);
  const admitted: Admitting[] = [];
  const undecidable: { box: Box; reason: string }[] = [];
  if (wallProblems.length > 0) {
    for (const b of uni.boxes) undecidable.push({ box: b, reason: wallProblems.join('; ') });
  }
  let covered = Region.EMPTY;
  const references: SgRule[] = [];
  for (const rule of rules) {
    if (rule.direction !== direction) continue;
    if (rule.problem !== undefined) {
      // What the rule admits is unknown: its protocol and ports (when readable) from anywhere.
      const proto = protocolBox(bits, rule.protocol, rule.fromPort, rule.toPort);
      for (const b of uni.intersectBox(proto).boxes) undecidable.push({ box: b, reason: `${rule.address}: ${rule.problem}` });
      continue;
    }
    if (rule.peer !== undefined && rule.peer.kind !== 'cidr') references.push(rule);
    const region = ruleRegion(rule, family);
    if (region === undefined) continue;
    const fresh = uni.intersect(region).subtract(covered);
    for (const b of fresh.boxes) admitted.push({ box: b, rule });
    covered = covered.union(fresh);
  }
  return { direction, family, admitted, undecidable, references };
}
