/** What several lint rules read of a host's security-group rules, written once. */
import { formatProvenance } from '../../provenance';
import { LintPeer, LintSgRule, LintSubject } from '../model';
import { WIDE_PREFIX, isWidePrefix } from '../../roles';
import { allPortsText } from '../../port';

/** A CIDR wider than the roles themselves accept (IPv6: `v6Threshold`, default WIDE_PREFIX.v6). */
export function isWide(peer: LintPeer, v6Threshold: number = WIDE_PREFIX.v6): boolean {
  return peer.kind === 'cidr' && isWidePrefix(peer.family, peer.prefix, v6Threshold);
}

/** Does the rule admit this TCP or UDP port? */
export function covers(rule: LintSgRule, protocol: 'tcp' | 'udp', port: number): boolean {
  if (rule.protocol === 'all') return true;
  if (rule.protocol !== protocol) return false;
  return (rule.fromPort ?? 0) <= port && port <= (rule.toPort ?? 65535);
}

/** All protocols, or every TCP/UDP port. */
export function everyPort(rule: LintSgRule): boolean {
  if (rule.protocol === 'all') return true;
  if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') return false;
  // Port 0 is never a service port, so 1-65535 is "every port" too.
  return (rule.fromPort ?? 0) <= 1 && (rule.toPort ?? 65535) === 65535;
}

/** "tcp/22", "udp/1024-65535", "tcp/all", "all traffic", "icmp", "protocol 47". */
export function trafficText(rule: Pick<LintSgRule, 'protocol' | 'fromPort' | 'toPort'>): string {
  if (rule.protocol === 'all') return 'all traffic';
  if (rule.protocol === 'tcp' || rule.protocol === 'udp') {
    const from = rule.fromPort ?? 0;
    const to = rule.toPort ?? 65535;
    if (from <= 1 && to === 65535) return allPortsText(rule.protocol);
    return from === to ? `${rule.protocol}/${from}` : `${rule.protocol}/${from}-${to}`;
  }
  if (rule.protocol === 'icmp' || rule.protocol === 'icmpv6') return rule.protocol;
  return `protocol ${rule.protocol}`;
}

export function peerText(peer: LintPeer): string {
  if (peer.kind === 'cidr') return peer.cidr;
  return peer.kind === 'securityGroup' ? `security group ${peer.id}` : `prefix list ${peer.id}`;
}

/** "egress tcp/25 to 0.0.0.0/0". */
export function ruleText(rule: LintSgRule): string {
  return `${rule.direction} ${trafficText(rule)} ${rule.direction === 'ingress' ? 'from' : 'to'} ${peerText(rule.peer)}`;
}

/** The roles and reasons behind a rule, else its description. */
export function why(rule: LintSgRule): string {
  if (rule.because.length > 0) return formatProvenance(rule.because);
  if (rule.description !== undefined && rule.description.trim() !== '') return `description "${rule.description.trim()}"`;
  return 'no description';
}

/** Every security-group rule on the host, over all its groups. */
export function allRules(subject: LintSubject): LintSgRule[] {
  return subject.groups.flatMap((g) => g.rules);
}

/** Egress to (nearly) anywhere on some ports, not all (TWL008, TWL009, TWL011). */
export function portScopedEgressToAnywhere(subject: LintSubject): LintSgRule[] {
  return allRules(subject).filter((r) => r.direction === 'egress' && isWide(r.peer) && !everyPort(r));
}
