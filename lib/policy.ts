/**
 * A host policy: the roles a host plays, composed and normalised into a canonical list of rules
 * that both walls are rendered from.
 *
 * Normalisation is a function of the admitted traffic alone, which is what makes it idempotent,
 * independent of the order of roles and flows, and unable to change what is admitted:
 *
 * - CIDR peers, per direction and address family: "all protocols" rules cover a set A of
 *   addresses. For each protocol the port axis (ICMP: type*256+code) is cut at every rule
 *   boundary; each piece admits the union of the addresses of the flows covering it, minus A.
 *   Neighbouring pieces admitting the same addresses are merged, and each address set is written
 *   as its minimal list of CIDR blocks. Flows covered by broader ones simply disappear.
 * - Security-group and prefix-list peers are identities on the network wall, not addresses, so
 *   they are normalised per (direction, id): port ranges merged, everything dropped under an
 *   "all protocols" rule for the same id.
 *
 * Every resulting rule keeps the provenance (role, service, reason) of every flow it came from.
 */
import { AddressSet, Cidr, Family, Interval } from './address';
import { TwinwallError, show, locate } from './errors';
import { Direction, Flow, Role, checkName } from './flow';
import { Port, Protocol } from './port';

/** Why a rule exists: the role, catalog service and reason of a flow that asked for it. */
export interface Provenance {
  readonly role: string;
  readonly service?: string;
  readonly reason: string;
}

export type RuleTarget =
  | { readonly kind: 'cidr'; readonly cidr: Cidr }
  | { readonly kind: 'securityGroup'; readonly groupId: string; readonly label: string; readonly hostCidrs: readonly Cidr[] }
  | { readonly kind: 'prefixList'; readonly prefixListId: string; readonly label: string; readonly hostCidrs: readonly Cidr[] };

/** One normalised rule: one direction, one protocol/port range, one target. */
export class PolicyRule {
  public readonly direction: Direction;
  public readonly port: Port;
  public readonly target: RuleTarget;
  public readonly because: readonly Provenance[];

  public constructor(direction: Direction, port: Port, target: RuleTarget, because: readonly Provenance[]) {
    this.direction = direction;
    this.port = port;
    this.target = target;
    this.because = Object.freeze([...because]);
    Object.freeze(this);
  }

  /** The CIDRs the host wall matches for this rule. */
  public get hostCidrs(): readonly Cidr[] {
    return this.target.kind === 'cidr' ? [this.target.cidr] : this.target.hostCidrs;
  }

  /** Human label of the remote end. */
  public get peerLabel(): string {
    return this.target.kind === 'cidr' ? this.target.cidr.text : this.target.label;
  }

  public toString(): string {
    return `${this.direction} ${this.port} ${this.direction === 'ingress' ? 'from' : 'to'} ${this.peerLabel}`;
  }
}

/** Who may reach the instance metadata service (169.254.169.254, fd00:ec2::254) from the host. */
export type MetadataAccess = 'root-only' | 'all-users' | 'none';

export interface HostPolicyOptions {
  /** Default 'root-only': a compromised web or mail daemon cannot read instance credentials. */
  readonly instanceMetadata?: MetadataAccess;
  /** Log what enforcement would drop, and accept it (learn before you lock). Default false. */
  readonly audit?: boolean;
}

export interface ResolvedHostPolicyOptions {
  readonly instanceMetadata: MetadataAccess;
  readonly audit: boolean;
}

/** A flow with the role it came from. */
export interface AttributedFlow {
  readonly flow: Flow;
  readonly role: string;
}

export class HostPolicy {
  /**
   * Compose roles into a host policy. Role names must be unique on a host (give a second
   * instance of a role its own `name`).
   */
  public static compose(name: string, roles: readonly Role[], options: HostPolicyOptions = {}): HostPolicy {
    return locate(String(name), () => {
      checkName(name, 'The host name');
      if (!Array.isArray(roles) || roles.length === 0) {
        throw new TwinwallError('ROLE_EMPTY', {
          value: name,
          problem: `the host ${show(name)} has no roles; it would accept and send nothing, which is rarely what was meant.`,
          fix: 'give it at least one role, e.g. [sshAdmin({ from: [...] })].',
        });
      }
      const seen = new Set<string>();
      for (const r of roles) {
        if (!(r instanceof Role)) {
          throw new TwinwallError('OPTION_INVALID', { value: r, problem: `${show(r)} is not a Role.`, fix: 'build roles with webServer(), mailServer(), customRole() and so on.' });
        }
        if (seen.has(r.name)) {
          throw new TwinwallError('ROLE_DUPLICATE', {
            value: r.name,
            problem: `the role name ${show(r.name)} is used twice on this host; descriptions and reports could not tell them apart.`,
            fix: `give the second one its own name, e.g. { name: "${r.name}2" }, or merge their options into one role.`,
          });
        }
        seen.add(r.name);
      }
      const resolved = resolveOptions(options);
      const flows: AttributedFlow[] = roles.flatMap((r: Role) => r.flows.map((flow) => ({ flow, role: r.name })));
      return new HostPolicy(name, roles, normalise(flows), resolved);
    });
  }

  public readonly name: string;
  public readonly roles: readonly Role[];
  /** Canonical, sorted, minimal-by-construction rules. */
  public readonly rules: readonly PolicyRule[];
  public readonly options: ResolvedHostPolicyOptions;

  private constructor(name: string, roles: readonly Role[], rules: readonly PolicyRule[], options: ResolvedHostPolicyOptions) {
    this.name = name;
    this.roles = Object.freeze([...roles]);
    this.rules = Object.freeze([...rules]);
    this.options = Object.freeze({ ...options });
    Object.freeze(this);
  }

  /** Every flow of every role, with its role. */
  public get flows(): AttributedFlow[] {
    return this.roles.flatMap((r) => r.flows.map((flow) => ({ flow, role: r.name })));
  }
}

function resolveOptions(options: HostPolicyOptions): ResolvedHostPolicyOptions {
  const instanceMetadata = options.instanceMetadata ?? 'root-only';
  if (!['root-only', 'all-users', 'none'].includes(instanceMetadata)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: instanceMetadata,
      problem: `instanceMetadata ${show(instanceMetadata)} is not one of "root-only", "all-users", "none".`,
      fix: 'use "root-only" (default), "all-users" (any local process may read instance credentials) or "none".',
    });
  }
  const audit = options.audit ?? false;
  if (typeof audit !== 'boolean') {
    throw new TwinwallError('OPTION_INVALID', { value: audit, problem: `audit ${show(audit)} is not a boolean.`, fix: 'pass audit: true or audit: false.' });
  }
  return { instanceMetadata, audit };
}

// ---------------------------------------------------------------------------------------------
// Normalisation

const PROTOCOL_ORDER: readonly Protocol[] = ['all', 'tcp', 'udp', 'icmp', 'icmpv6'];
const KIND_ORDER = { cidr: 0, prefixList: 1, securityGroup: 2 } as const;

interface Entry {
  readonly protocol: Protocol;
  readonly lo: number;
  readonly hi: number;
  readonly prov: Provenance;
}

interface CidrEntry extends Entry {
  readonly set: AddressSet;
}

interface RefBucket {
  readonly direction: Direction;
  readonly target: RuleTarget;
  readonly entries: Entry[];
}

function provenanceOf(a: AttributedFlow): Provenance {
  const p: Provenance = { role: a.role, reason: a.flow.reason };
  return a.flow.service !== undefined ? { ...p, service: a.flow.service } : p;
}

function cidrListKey(cidrs: readonly Cidr[]): string {
  return cidrs
    .map((c) => c.text)
    .sort()
    .join(',');
}

/** Normalise attributed flows into canonical rules (see the file comment). */
export function normalise(flows: readonly AttributedFlow[]): PolicyRule[] {
  const cidrBuckets = new Map<string, { direction: Direction; family: Family; entries: CidrEntry[] }>();
  const refBuckets = new Map<string, RefBucket>();
  const refCidrs = new Map<string, { list: readonly Cidr[]; label: string }>();

  for (const a of flows) {
    const { flow } = a;
    const [lo, hi] = flow.port.span;
    const prov = provenanceOf(a);
    const peer = flow.peer;
    if (peer.kind === 'cidr') {
      const cidr = peer.hostCidrs[0];
      const key = `${flow.direction}|${cidr.family}`;
      let b = cidrBuckets.get(key);
      if (!b) cidrBuckets.set(key, (b = { direction: flow.direction, family: cidr.family, entries: [] }));
      b.entries.push({ protocol: flow.port.protocol, lo, hi, prov, set: AddressSet.of(cidr.family, [cidr]) });
      continue;
    }
    const idKey = `${peer.kind}|${peer.id}`;
    const prior = refCidrs.get(idKey);
    if (prior && cidrListKey(prior.list) !== cidrListKey(peer.hostCidrs)) {
      const name = peer.kind === 'securityGroup' ? 'SG_HOST_CIDR_CONFLICT' : 'PREFIX_LIST_CONFLICT';
      throw new TwinwallError(name, {
        value: peer.id,
        problem: `${show(peer.label)} is declared with CIDRs [${cidrListKey(prior.list)}] in one flow and [${cidrListKey(peer.hostCidrs)}] in another.`,
        fix: 'declare the peer once (const app = Peer.securityGroup(…)) and reuse it, so both walls see one definition.',
      });
    }
    refCidrs.set(idKey, { list: peer.hostCidrs, label: peer.label });
    const key = `${flow.direction}|${idKey}`;
    let b = refBuckets.get(key);
    if (!b) {
      const sorted = [...peer.hostCidrs].sort(compareCidr);
      const target: RuleTarget =
        peer.kind === 'securityGroup'
          ? { kind: 'securityGroup', groupId: peer.id, label: peer.label, hostCidrs: sorted }
          : { kind: 'prefixList', prefixListId: peer.id, label: peer.label, hostCidrs: sorted };
      refBuckets.set(key, (b = { direction: flow.direction, target, entries: [] }));
    }
    b.entries.push({ protocol: flow.port.protocol, lo, hi, prov });
  }

  const rules: PolicyRule[] = [];
  for (const b of cidrBuckets.values()) rules.push(...normaliseCidrBucket(b.direction, b.family, b.entries));
  for (const b of refBuckets.values()) rules.push(...normaliseRefBucket(b));
  return rules.sort(compareRules);
}

/** Cut the port axis at every boundary; return maximal spans with the value `valueOf` gives. */
function sweep<T>(entries: readonly Entry[], valueOf: (covering: Entry[]) => T | undefined, keyOf: (v: T) => string): { lo: number; hi: number; value: T }[] {
  const cuts = [...new Set(entries.flatMap((e) => [e.lo, e.hi + 1]))].sort((x, y) => x - y);
  const out: { lo: number; hi: number; value: T; key: string }[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const lo = cuts[i];
    const hi = cuts[i + 1] - 1;
    const covering = entries.filter((e) => e.lo <= lo && e.hi >= hi);
    if (covering.length === 0) continue;
    const value = valueOf(covering);
    if (value === undefined) continue;
    const key = keyOf(value);
    const last = out[out.length - 1];
    if (last && last.hi + 1 === lo && last.key === key) last.hi = hi;
    else out.push({ lo, hi, value, key });
  }
  return out;
}

function protocolsFor(family: Family): Protocol[] {
  return ['tcp', 'udp', family === 4 ? 'icmp' : 'icmpv6'];
}

function dedupeProvenance(list: Provenance[]): Provenance[] {
  const map = new Map<string, Provenance>();
  for (const p of list) map.set(`${p.role}\u0000${p.service ?? ''}\u0000${p.reason}`, p);
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}

function normaliseCidrBucket(direction: Direction, family: Family, entries: readonly CidrEntry[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const allEntries = entries.filter((e) => e.protocol === 'all');
  const allSet = allEntries.reduce((s, e) => s.union(e.set), AddressSet.empty(family));
  for (const cidr of allSet.toCidrs()) {
    const one = AddressSet.of(family, [cidr]);
    const because = allEntries.filter((e) => e.set.intersects(one)).map((e) => e.prov);
    out.push(new PolicyRule(direction, Port.allTraffic(), { kind: 'cidr', cidr }, dedupeProvenance(because)));
  }
  for (const protocol of protocolsFor(family)) {
    const mine = entries.filter((e) => e.protocol === protocol);
    if (mine.length === 0) continue;
    // Two canonical layouts of the same admitted traffic; the one with fewer rules wins (ties go
    // to ports-first). Each is a function of the admitted traffic alone, so the choice is too.
    const portsFirst = portsFirstLayout(protocol, mine, allSet);
    const addressFirst = addressFirstLayout(protocol, family, mine, allSet);
    const layout = ruleCount(addressFirst, allSet) < ruleCount(portsFirst, allSet) ? addressFirst : portsFirst;
    for (const item of layout) {
      for (const cidr of item.set.toCidrs()) {
        const one = AddressSet.of(family, [cidr]);
        if (one.subtract(allSet).isEmpty) continue;
        const [lo, hi] = item.port.span;
        // The block may reach into A (layouts are written over the union with A), so the
        // all-protocols flows it overlaps are part of why it looks the way it does.
        const because = [...mine, ...allEntries].filter((e) => e.lo <= hi && e.hi >= lo && e.set.intersects(one)).map((e) => e.prov);
        out.push(new PolicyRule(direction, item.port, { kind: 'cidr', cidr }, dedupeProvenance(because)));
      }
    }
  }
  return out;
}

/** One port (or ICMP type/code) and the addresses it is admitted to, A included. */
interface LayoutItem {
  readonly port: Port;
  readonly set: AddressSet;
}

function ruleCount(layout: readonly LayoutItem[], allSet: AddressSet): number {
  let n = 0;
  for (const item of layout) {
    for (const cidr of item.set.toCidrs()) if (!AddressSet.of(allSet.family, [cidr]).subtract(allSet).isEmpty) n++;
  }
  return n;
}

/**
 * Ports first: cut the port axis at every flow boundary; each piece admits the union of its
 * flows' addresses and A; neighbouring pieces with the same addresses merge. Compact when
 * port ranges nest inside wide address blocks (tcp/80-90 to 10/8 plus tcp/85-443 to 10.1/16).
 */
function portsFirstLayout(protocol: Protocol, mine: readonly CidrEntry[], allSet: AddressSet): LayoutItem[] {
  const spans = sweep<AddressSet>(
    mine,
    (covering) => {
      const s = covering.reduce((acc, e) => acc.union((e as CidrEntry).set), allSet);
      return s.equals(allSet) ? undefined : s;
    },
    (s) => s.key,
  );
  return spans.flatMap((span) => Port.fromSpan(protocol, span.lo, span.hi).map((port) => ({ port, set: span.value })));
}

/**
 * Addresses first: cut the address axis at every flow boundary; each cell admits a set of
 * ports, written as its maximal ranges (ICMP: whole types, single codes, or everything); each
 * range admits the cells that have it, and A. Compact when narrow address blocks carry their
 * own ports inside wide ones (all ICMP from 10.6/16 plus type 3 code 4 from 10.5/16).
 */
function addressFirstLayout(protocol: Protocol, family: Family, mine: readonly CidrEntry[], allSet: AddressSet): LayoutItem[] {
  const cuts = new Set<bigint>();
  for (const e of mine) for (const [a, b] of e.set.intervals) cuts.add(a).add(b + 1n);
  for (const [a, b] of allSet.intervals) cuts.add(a).add(b + 1n);
  const sorted = [...cuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const byPort = new Map<string, { port: Port; cells: Interval[] }>();
  for (let i = 0; i + 1 < sorted.length; i++) {
    const cell: Interval = [sorted[i], sorted[i + 1] - 1n];
    if (allSet.contains(cell[0])) continue; // A's cells admit everything already
    const covering = mine.filter((e) => e.set.contains(cell[0]));
    if (covering.length === 0) continue;
    for (const [lo, hi] of mergeSpans(covering)) {
      for (const port of Port.fromSpan(protocol, lo, hi)) {
        const key = port.toString();
        const slot = byPort.get(key) ?? { port, cells: [] };
        slot.cells.push(cell);
        byPort.set(key, slot);
      }
    }
  }
  return [...byPort.values()].map(({ port, cells }) => ({ port, set: AddressSet.fromIntervals(family, cells).union(allSet) }));
}

/** The union of the entries' port spans as sorted, disjoint, non-adjacent intervals. */
function mergeSpans(entries: readonly Entry[]): [number, number][] {
  const spans = entries.map((e) => [e.lo, e.hi] as [number, number]).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of spans) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function normaliseRefBucket(b: RefBucket): PolicyRule[] {
  const all = b.entries.filter((e) => e.protocol === 'all');
  if (all.length > 0) return [new PolicyRule(b.direction, Port.allTraffic(), b.target, dedupeProvenance(all.map((e) => e.prov)))];
  const out: PolicyRule[] = [];
  for (const protocol of ['tcp', 'udp', 'icmp', 'icmpv6'] as Protocol[]) {
    const mine = b.entries.filter((e) => e.protocol === protocol);
    if (mine.length === 0) continue;
    for (const span of sweep(mine, () => true, () => '')) {
      for (const port of Port.fromSpan(protocol, span.lo, span.hi)) {
        const [lo, hi] = port.span;
        const because = mine.filter((e) => e.lo <= hi && e.hi >= lo).map((e) => e.prov);
        out.push(new PolicyRule(b.direction, port, b.target, dedupeProvenance(because)));
      }
    }
  }
  return out;
}

function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefix - b.prefix;
}

function targetId(t: RuleTarget): string {
  return t.kind === 'securityGroup' ? t.groupId : t.kind === 'prefixList' ? t.prefixListId : t.cidr.text;
}

/** The total order of rules: direction, target kind, family, protocol, ports, address. */
export function compareRules(a: PolicyRule, b: PolicyRule): number {
  const dir = (d: Direction) => (d === 'ingress' ? 0 : 1);
  if (a.direction !== b.direction) return dir(a.direction) - dir(b.direction);
  if (a.target.kind !== b.target.kind) return KIND_ORDER[a.target.kind] - KIND_ORDER[b.target.kind];
  if (a.target.kind === 'cidr' && b.target.kind === 'cidr' && a.target.cidr.family !== b.target.cidr.family) {
    return a.target.cidr.family - b.target.cidr.family;
  }
  if (a.port.protocol !== b.port.protocol) return PROTOCOL_ORDER.indexOf(a.port.protocol) - PROTOCOL_ORDER.indexOf(b.port.protocol);
  const [alo, ahi] = a.port.span;
  const [blo, bhi] = b.port.span;
  if (alo !== blo) return alo - blo;
  if (ahi !== bhi) return ahi - bhi;
  if (a.target.kind === 'cidr' && b.target.kind === 'cidr') return compareCidr(a.target.cidr, b.target.cidr);
  const ia = targetId(a.target);
  const ib = targetId(b.target);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Semantics: what a set of flows or rules admits. Used by tests and the consistency checker.

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
  if (peer.kind === 'cidr') return cidrAdmits(peer.hostCidrs[0], probe.remote);
  return probe.remote.kind === peer.kind && probe.remote.id === peer.id;
}

/** Does this rule admit the probe? (Security groups and prefix lists match by identity.) */
export function ruleAdmits(rule: PolicyRule, probe: Probe): boolean {
  if (rule.direction !== probe.direction || !portAdmits(rule.port, probe)) return false;
  const t = rule.target;
  if (t.kind === 'cidr') return cidrAdmits(t.cidr, probe.remote);
  return probe.remote.kind === t.kind && probe.remote.id === targetId(t);
}
