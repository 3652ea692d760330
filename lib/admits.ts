/**
 * What a flow or a normalised rule admits, one connection attempt (`Probe`) at a time: the
 * semantics normalisation must keep (the property tests compare flows and rules with it) and
 * the renderers must write. Security groups and prefix lists match by identity here.
 */
import { Cidr, Family } from './address';
import { Direction, Flow } from './flow';
import { Port, Protocol, protocolFamily } from './port';
import { PolicyRule } from './policy';
import { targetId } from './normalise';

/** The remote end of a probe: an address, or (network wall only) a group or prefix-list identity. */
export type Remote =
  | { readonly kind: 'address'; readonly family: Family; readonly value: bigint }
  | { readonly kind: 'securityGroup'; readonly id: string }
  | { readonly kind: 'prefixList'; readonly id: string };

/** One connection attempt: `point` is the port, or type*256+code for ICMP. */
export interface Probe {
  readonly direction: Direction;
  readonly protocol: Exclude<Protocol, 'all'>;
  readonly point: number;
  readonly remote: Remote;
}

function portAdmits(port: Port, probe: Probe): boolean {
  if (port.protocol === 'all') return true;
  if (port.protocol !== probe.protocol) return false;
  const [lo, hi] = port.span;
  return probe.point >= lo && probe.point <= hi;
}

function cidrAdmits(cidr: Cidr, remote: Remote): boolean {
  return remote.kind === 'address' && remote.family === cidr.family && remote.value >= cidr.first && remote.value <= cidr.last;
}

/** Does this flow admit the probe? (Security groups and prefix lists match by identity.) */
export function flowAdmits(flow: Flow, probe: Probe): boolean {
  if (flow.direction !== probe.direction || !portAdmits(flow.port, probe)) return false;
  const peer = flow.peer;
  if (peer.kind === 'cidr') return peer.hostCidrs.some((c) => (protocolFamily(flow.port.protocol) ?? c.family) === c.family && cidrAdmits(c, probe.remote));
  return probe.remote.kind === peer.kind && probe.remote.id === peer.id;
}

/** Does this rule admit the probe? (Security groups and prefix lists match by identity.) */
export function ruleAdmits(rule: PolicyRule, probe: Probe): boolean {
  if (rule.direction !== probe.direction || !portAdmits(rule.port, probe)) return false;
  const t = rule.target;
  if (t.kind === 'cidr') return cidrAdmits(t.cidr, probe.remote);
  return probe.remote.kind === t.kind && probe.remote.id === targetId(t);
}
