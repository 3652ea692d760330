/**
 * `learn --against cdktf.out`: the learned traffic against the walls a synthesized app ships, per
 * host, using the checker's models of both walls (lib/check):
 *
 * - observed but not allowed: traffic that was seen but that the host wall (enforcing) or the
 *   network wall does not admit — it would break when enforced. On the host wall, what only an
 *   audit-mode verdict chain accepts counts as not allowed: that is exactly what enforcement drops.
 * - allowed but never observed: security-group rules and host-wall policy rules (tw-in, tw-out)
 *   that no observed traffic fell within — candidates to remove.
 *
 * A flow's remote addresses are the exact addresses seen (not the widened blocks of the proposal).
 */
import { FAMILIES, Family, familyBits, parseAddress } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { AWS_LINK_LOCAL } from '../peer';
import { IPTABLES_CHAINS } from '../render/iptables';
import { HostCheck } from '../check/compare';
import { describeAddresses } from '../check/addresses';
import { Box, IntervalSet } from '../check/space';
import { Aggregator, FlowStats } from './aggregate';
import { Evidence, HostProposal, Proposal } from './propose';
import { PROTO } from '../port';

export interface BlockedFlow {
  /** "egress tcp/25". */
  readonly flow: string;
  /** Which wall would drop it. */
  readonly wall: 'host wall' | 'network wall' | 'both walls';
  /** The addresses it would drop, in words. */
  readonly remotes: string;
  readonly evidence: Evidence;
}

export interface UnusedRule {
  readonly wall: 'host wall' | 'network wall';
  /** The rule: resource address and description, or chain, rule number and comment. */
  readonly rule: string;
}

export interface AgainstHost {
  /** The host name the logs and the proposal use. */
  readonly host: string;
  /** The artefact's host label, "staging/sample". */
  readonly artefact: string;
  readonly blocked: readonly BlockedFlow[];
  /** Undefined when no log mentions this host. */
  readonly notObserved?: readonly UnusedRule[];
  readonly caveats: readonly string[];
}

const VERDICT_CHAINS = new Set<string>([
  IPTABLES_CHAINS.ingressDrop,
  IPTABLES_CHAINS.ingressInvalid,
  IPTABLES_CHAINS.egressDrop,
  IPTABLES_CHAINS.egressInvalid,
  IPTABLES_CHAINS.egressSpoofed,
  IPTABLES_CHAINS.egressMetadata,
  IPTABLES_CHAINS.forwardDrop,
]);
const POLICY_CHAINS = new Set<string>([IPTABLES_CHAINS.ingress, IPTABLES_CHAINS.egress]);
/** The AWS link-local service addresses: security groups never see them. */
const LINK_LOCAL: Record<Family, IntervalSet> = { 4: IntervalSet.EMPTY, 6: IntervalSet.EMPTY };
for (const svc of Object.values(AWS_LINK_LOCAL)) {
  for (const family of FAMILIES) LINK_LOCAL[family] = LINK_LOCAL[family].union(IntervalSet.of(parseAddress(svc[family]).value));
}

/** Does the artefact host go by this name? ("sample", "staging/sample", the resource address). */
export function artefactMatches(check: HostCheck, name: string): boolean {
  const h = check.host;
  return [h.name, check.label, h.address, `${h.stack}/${h.address}`].includes(name);
}

/** Artefact hosts that receive and deliver mail (ingress and egress tcp/25 on both walls). */
export function mailHosts(checks: readonly HostCheck[]): Set<string> {
  const out = new Set<string>();
  for (const c of checks) {
    const smtp = (direction: Direction): boolean =>
      FAMILIES.some((fam) => c.models.network[direction][fam].admitted.some((a) => a.box.get('proto').has(PROTO.tcp) && a.box.get('point').has(25)));
    if (smtp('ingress') && smtp('egress')) {
      out.add(c.host.name);
      out.add(c.label);
    }
  }
  return out;
}

function protoNumber(protocol: string, family: Family): number | undefined {
  if (protocol === 'tcp') return PROTO.tcp;
  if (protocol === 'udp') return PROTO.udp;
  if (protocol === 'icmp' && family === 4) return PROTO.icmp;
  if (protocol === 'icmpv6' && family === 6) return PROTO.icmpv6;
  return undefined;
}

/** The observed part of the flow space of one flow and family: protocol, port, exact remotes. */
function observedBox(f: FlowStats, family: Family): Box | undefined {
  const proto = typeof f.protocol === 'string' ? protoNumber(f.protocol, family) : undefined;
  if (proto === undefined || f.manyPorts) return undefined;
  const r = f.remotes[family];
  const bits = familyBits(family);
  const intervals: [bigint, bigint][] = r.pointValues().map((p) => [p, p]);
  for (const c of r.blockCidrs()) intervals.push([c.first, c.last]);
  if (intervals.length === 0) return undefined;
  const remote = IntervalSet.from(intervals);
  let point: IntervalSet;
  if (proto === PROTO.tcp || proto === PROTO.udp) point = IntervalSet.of(f.port as number);
  else if (f.icmpType !== undefined) point = IntervalSet.of(f.icmpType * 256 + (f.icmpCode ?? 0));
  else point = IntervalSet.of(0, 65535);
  return Box.where(bits, { proto: IntervalSet.of(proto), point, remote, kind: IntervalSet.of(0) });
}

/** Remote addresses of `box` that some piece of `admitted` admits. */
function admittedRemotes(box: Box, admitted: readonly { box: Box }[]): IntervalSet {
  let out = IntervalSet.EMPTY;
  for (const a of admitted) {
    const i = a.box.intersect(box);
    if (i) out = out.union(i.get('remote'));
  }
  return out;
}

function compareHost(h: HostProposal, check: HostCheck, flows: Aggregator): AgainstHost {
  const blocked: BlockedFlow[] = [];
  const observedBoxes: Record<Direction, Record<Family, Box[]>> = { ingress: { 4: [], 6: [] }, egress: { 4: [], 6: [] } };
  for (const lf of h.flows) {
    if (lf.direction === 'forward' || lf.reason !== 'traffic') continue;
    const stats = flows.get(lf.key);
    if (!stats) continue;
    const direction = lf.direction;
    const parts: { family: Family; host: IntervalSet; network: IntervalSet }[] = [];
    for (const family of FAMILIES) {
      const box = observedBox(stats, family);
      if (!box) continue;
      observedBoxes[direction][family].push(box);
      const seen = box.get('remote');
      const hostModel = check.models.host[direction][family];
      const enforced = hostModel.admitted.filter((d) => {
        const last = d.path[d.path.length - 1];
        return last === undefined || !VERDICT_CHAINS.has(last.chain);
      });
      const hostDrops = seen.subtract(admittedRemotes(box, enforced));
      // Security groups never see the link-local service addresses.
      const sgSeen = seen.subtract(LINK_LOCAL[family]);
      const netDrops = sgSeen.isEmpty ? IntervalSet.EMPTY : sgSeen.subtract(admittedRemotes(box.with('remote', sgSeen), check.models.network[direction][family].admitted));
      parts.push({ family, host: hostDrops, network: netDrops });
    }
    const groups: [BlockedFlow['wall'], (p: (typeof parts)[number]) => IntervalSet][] = [
      ['both walls', (p) => p.host.intersect(p.network)],
      ['host wall', (p) => p.host.subtract(p.network)],
      ['network wall', (p) => p.network.subtract(p.host)],
    ];
    for (const [wall, pick] of groups) {
      const words = parts
        .map((p) => ({ family: p.family, set: pick(p) }))
        .filter((x) => !x.set.isEmpty)
        .map((x) => describeAddresses(x.family, x.set));
      if (words.length > 0) blocked.push({ flow: lf.id, wall, remotes: words.join(', '), evidence: lf.evidence });
    }
  }

  const touched = (direction: Direction, family: Family, box: Box): boolean => observedBoxes[direction][family].some((o) => o.intersect(box) !== undefined);
  const unused = new Map<string, UnusedRule>();
  const used = new Set<string>();
  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      for (const a of check.models.network[direction][family].admitted) {
        const key = `n|${a.rule.address}`;
        if (touched(direction, family, a.box)) used.add(key);
        else if (!unused.has(key)) unused.set(key, { wall: 'network wall', rule: `${a.rule.address}${a.rule.description !== undefined ? ` (${a.rule.description})` : ''}` });
      }
      for (const d of check.models.host[direction][family].admitted) {
        const last = d.path[d.path.length - 1];
        if (last === undefined || !POLICY_CHAINS.has(last.chain)) continue;
        const key = `h|${family}|${last.chain}|${last.number ?? ''}`;
        if (touched(direction, family, d.box)) used.add(key);
        else if (!unused.has(key)) unused.set(key, { wall: 'host wall', rule: `IPv${family} ${last.chain} rule ${last.number ?? '?'}${last.comment !== undefined ? `: ${last.comment}` : ''}` });
      }
    }
  }
  const notObserved = [...unused.entries()].filter(([k]) => !used.has(k)).map(([, r]) => r);
  const caveats: string[] = [];
  if (h.flows.every((f) => f.fromFlowLogs === 0)) {
    caveats.push('All evidence for this host comes from kernel LOG lines, which record only what the audited policy did not admit: traffic its rules already allowed never shows up, so "allowed but never observed" also lists rules that are in use. Use flow logs (which see all traffic) for that list.');
  }
  return { host: h.host, artefact: check.label, blocked, notObserved, caveats };
}

/**
 * Compare every proposed host with the artefact hosts of the same name (all of them when the
 * name is ambiguous, e.g. "sample" in both staging and production). Artefact hosts no log
 * mentions are listed with nothing observed.
 */
export function compareAgainst(proposal: Proposal, checks: readonly HostCheck[], flows: Aggregator): AgainstHost[] {
  const out: AgainstHost[] = [];
  const matched = new Set<HostCheck>();
  for (const h of proposal.hosts) {
    const matches = checks.filter((c) => artefactMatches(c, h.host) || artefactMatches(c, h.name));
    for (const c of matches) {
      matched.add(c);
      out.push(compareHost(h, c, flows));
    }
    if (matches.length === 0) {
      out.push({ host: h.host, artefact: '(none)', blocked: [], caveats: [`no host named ${JSON.stringify(h.host)} in the artefact (hosts: ${checks.map((c) => c.label).join(', ')}); use --alias LOGNAME=HOST`] });
    }
  }
  for (const c of checks) {
    if (!matched.has(c)) out.push({ host: c.host.name, artefact: c.label, blocked: [], caveats: ['no log line mentions this host'] });
  }
  return out;
}
