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
import { AddressSet, Cidr, Family, Interval, familyBits } from './address';
import { TwinwallError, show, locate } from './errors';
import { requireLiteral } from './tokens';
import { Direction, Flow, Role, checkName } from './flow';
import { Port, Protocol, isIcmp, protocolFamily } from './port';

/** Why a rule exists: the role, catalog service and reason of a flow that asked for it. */
export interface Provenance {
  readonly role: string;
  readonly service?: string;
  readonly reason: string;
}

export type RuleTarget =
  | { readonly kind: 'cidr'; readonly cidr: Cidr }
  | { readonly kind: 'securityGroup'; readonly groupId: string; readonly label: string; readonly hostCidrs: readonly Cidr[] }
  | { readonly kind: 'prefixList'; readonly prefixListId: string; readonly label: string; readonly hostCidrs: readonly Cidr[]; readonly maxEntries?: number };

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

/**
 * Who may reach the instance metadata service (169.254.169.254, fd00:ec2::254) from the host.
 * 'none' blocks root too, and with it cloud-init's own reads of instance data at later boots
 * (the host wall is loaded before the network): use it only on images that do not need IMDS
 * after the first boot.
 */
export type MetadataAccess = 'root-only' | 'all-users' | 'none';

/**
 * What a host does when its real host-wall table fails to load at boot (docs/user-data.md,
 * "When loading fails"). 'lockdown' (default): each family first gets a fallback of core matches
 * only (DROP policies, loopback, replies, the admin roles' ingress, DHCP, neighbour discovery),
 * and a family whose real table fails keeps it: the host stays closed and reachable by its
 * administrators. 'open': no fallback; a family whose table fails stays as the kernel started it
 * (accepting everything), behind the security group, so every service keeps working.
 */
export type LoadFailureMode = 'lockdown' | 'open';

export const LOAD_FAILURE_MODES: readonly LoadFailureMode[] = ['lockdown', 'open'];

/** Prefix lengths AWS allows for an IPv4 subnet. */
export const SUBNET_PREFIX = { min: 16, max: 28 } as const;

export interface HostPolicyOptions {
  /** Default 'root-only': a compromised web or mail daemon cannot read instance credentials. */
  readonly instanceMetadata?: MetadataAccess;
  /** Log what enforcement would drop, and accept it (learn before you lock). Default false. */
  readonly audit?: boolean;
  /**
   * The IPv4 subnets the host's network interfaces are in (e.g. ["10.0.1.0/24"]). The host wall
   * lets the DHCP client reach each subnet's router (base + 1, where EC2's DHCP server answers
   * lease renewals) besides the broadcast address. Without them, renewals are broadcast only:
   * the unicast renewal is refused and the client rebinds by broadcast later in the lease.
   */
  readonly subnets?: readonly string[];
  /** What a failed table load leaves: 'lockdown' (default, the fallback) or 'open'. */
  readonly onLoadFailure?: LoadFailureMode;
}

export interface ResolvedHostPolicyOptions {
  readonly instanceMetadata: MetadataAccess;
  readonly audit: boolean;
  /**
   * Declared IPv4 subnets as canonical CIDR text, sorted (empty when none were declared). Plain
   * text, like every resolved option: the policy record (`twinwall:host-wall`) carries them.
   */
  readonly subnets: readonly string[];
  readonly onLoadFailure: LoadFailureMode;
}

/** The subnet's router (base + 1): where EC2's DHCP server and the VPC router answer. */
export function subnetRouter(subnet: Cidr): Cidr {
  return Cidr.fromParts(subnet.family, subnet.first + 1n, subnet.family === 4 ? 32 : 128);
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
      const resolved = resolveHostPolicyOptions(options);
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

  /**
   * The administrative ingress (the ingress flows of roles marked admin, such as sshAdmin),
   * normalised on their own: what the host wall's fallback keeps open.
   */
  public get adminRules(): readonly PolicyRule[] {
    return normalise(this.flows.filter((a) => a.flow.direction === 'ingress' && this.roles.some((r) => r.admin && r.name === a.role)));
  }
}

/**
 * Validate host policy options and fill in the defaults. Also reads the options back from the
 * record `twinwall check` finds in the artefacts (lib/check/record.ts), so a record is held to the
 * same rules as the policy that wrote it.
 */
export function resolveHostPolicyOptions(options: HostPolicyOptions): ResolvedHostPolicyOptions {
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
  const onLoadFailure = options.onLoadFailure ?? 'lockdown';
  if (!LOAD_FAILURE_MODES.includes(onLoadFailure)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: onLoadFailure,
      problem: `onLoadFailure ${show(onLoadFailure)} is not "lockdown" or "open".`,
      fix: 'use "lockdown" (default: a failed table leaves the fallback, closed but reachable by admins) or "open" (a failed table leaves that family unfiltered on the host).',
    });
  }
  return { instanceMetadata, audit, subnets: resolveSubnets(options.subnets), onLoadFailure };
}

function resolveSubnets(subnets: readonly string[] | undefined): string[] {
  if (subnets === undefined) return [];
  if (!Array.isArray(subnets)) {
    throw new TwinwallError('OPTION_INVALID', { value: subnets, problem: `subnets ${show(subnets)} is not a list of IPv4 CIDRs.`, fix: 'pass e.g. subnets: ["10.0.1.0/24"], or leave it out.' });
  }
  const out = new Map<string, Cidr>();
  for (const text of subnets) {
    if (typeof text === 'string') requireLiteral(text, 'subnets', '"10.0.1.0/24"');
    const cidr = Cidr.ipv4(text);
    if (cidr.prefix < SUBNET_PREFIX.min || cidr.prefix > SUBNET_PREFIX.max) {
      throw new TwinwallError('OPTION_INVALID', {
        value: text,
        problem: `the subnet ${show(text)} is a /${cidr.prefix}, but an AWS subnet is a /${SUBNET_PREFIX.min} to /${SUBNET_PREFIX.max}.`,
        fix: 'give the CIDR of the subnet the host is in (aws_subnet.cidr_block), e.g. "10.0.1.0/24".',
      });
    }
    out.set(cidr.text, cidr);
  }
  return [...out.values()].sort(compareCidr).map((c) => c.text);
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
  const refCidrs = new Map<string, { list: readonly Cidr[]; label: string; maxEntries?: number }>();

  for (const a of flows) {
    const { flow } = a;
    const [lo, hi] = flow.port.span;
    const prov = provenanceOf(a);
    const peer = flow.peer;
    if (peer.kind === 'cidr') {
      // A peer of both families (Peer.anywhere()) is one entry per CIDR; an ICMP flow applies to
      // the CIDRs of its own family only (Flow refuses one whose peer has none).
      for (const cidr of peer.hostCidrs.filter((c) => (protocolFamily(flow.port.protocol) ?? c.family) === c.family)) {
        const key = `${flow.direction}|${cidr.family}`;
        let b = cidrBuckets.get(key);
        if (!b) cidrBuckets.set(key, (b = { direction: flow.direction, family: cidr.family, entries: [] }));
        b.entries.push({ protocol: flow.port.protocol, lo, hi, prov, set: AddressSet.of(cidr.family, [cidr]) });
      }
      continue;
    }
    const idKey = `${peer.kind}|${peer.id}`;
    const prior = refCidrs.get(idKey);
    if (prior && (cidrListKey(prior.list) !== cidrListKey(peer.hostCidrs) || prior.maxEntries !== peer.maxEntries)) {
      const name = peer.kind === 'securityGroup' ? 'SG_HOST_CIDR_CONFLICT' : 'PREFIX_LIST_CONFLICT';
      throw new TwinwallError(name, {
        value: peer.id,
        problem: `${show(peer.label)} is declared with CIDRs [${cidrListKey(prior.list)}]${prior.maxEntries === undefined ? '' : ` (maxEntries ${prior.maxEntries})`} in one flow and [${cidrListKey(peer.hostCidrs)}]${peer.maxEntries === undefined ? '' : ` (maxEntries ${peer.maxEntries})`} in another.`,
        fix: 'declare the peer once (const app = Peer.securityGroup(…)) and reuse it, so both walls see one definition.',
      });
    }
    refCidrs.set(idKey, { list: peer.hostCidrs, label: peer.label, ...(peer.maxEntries !== undefined ? { maxEntries: peer.maxEntries } : {}) });
    const key = `${flow.direction}|${idKey}`;
    let b = refBuckets.get(key);
    if (!b) {
      const sorted = [...peer.hostCidrs].sort(compareCidr);
      const target: RuleTarget =
        peer.kind === 'securityGroup'
          ? { kind: 'securityGroup', groupId: peer.id, label: peer.label, hostCidrs: sorted }
          : { kind: 'prefixList', prefixListId: peer.id, label: peer.label, hostCidrs: sorted, ...(peer.maxEntries !== undefined ? { maxEntries: peer.maxEntries } : {}) };
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

/**
 * Provenance without repeats (same role, service and reason): in canonical order (by role,
 * service, reason), or with `keepOrder` in the order first seen.
 */
export function uniqueProvenance(list: Iterable<Provenance>, options: { readonly keepOrder?: boolean } = {}): Provenance[] {
  const map = new Map<string, Provenance>();
  for (const p of list) map.set(`${p.role}\u0000${p.service ?? ''}\u0000${p.reason}`, p);
  if (options.keepOrder === true) return [...map.values()];
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}

function normaliseCidrBucket(direction: Direction, family: Family, entries: readonly CidrEntry[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const allEntries = entries.filter((e) => e.protocol === 'all');
  const allSet = allEntries.reduce((s, e) => s.union(e.set), AddressSet.empty(family));
  for (const cidr of allSet.toCidrs()) {
    const one = AddressSet.of(family, [cidr]);
    const because = allEntries.filter((e) => e.set.intersects(one)).map((e) => e.prov);
    out.push(new PolicyRule(direction, Port.allTraffic(), { kind: 'cidr', cidr }, uniqueProvenance(because)));
  }
  for (const protocol of protocolsFor(family)) {
    const mine = entries.filter((e) => e.protocol === protocol);
    if (mine.length === 0) continue;
    // Two canonical layouts of the same admitted traffic; the one with fewer rules wins (ties go
    // to ports-first). Each is a function of the admitted traffic alone, so the choice is too.
    const portsFirst = portsFirstLayout(protocol, mine, allSet);
    const addressFirst = addressFirstLayout(protocol, family, mine, allSet);
    let layout = ruleCount(addressFirst, allSet) < ruleCount(portsFirst, allSet) ? addressFirst : portsFirst;
    // Neither canonical layout is always minimal (two ranges that overlap in a staircase, say).
    // A third, found by exact search, replaces them only when it is strictly smaller.
    const exact = exactLayout(protocol, family, mine, allSet, ruleCount(layout, allSet));
    if (exact !== undefined) layout = exact;
    for (const item of layout) {
      for (const cidr of item.set.toCidrs()) {
        const one = AddressSet.of(family, [cidr]);
        if (one.subtract(allSet).isEmpty) continue;
        const [lo, hi] = item.port.span;
        // The block may reach into A (layouts are written over the union with A), so the
        // all-protocols flows it overlaps are part of why it looks the way it does.
        const because = [...mine, ...allEntries].filter((e) => e.lo <= hi && e.hi >= lo && e.set.intersects(one)).map((e) => e.prov);
        out.push(new PolicyRule(direction, item.port, { kind: 'cidr', cidr }, uniqueProvenance(because)));
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

/** Search limits of the exact layout: beyond them the canonical layouts stand. */
const EXACT_MAX_WORK = 1_000_000;
const EXACT_MAX_NODES = 50_000;

/**
 * The fewest rules admitting exactly this protocol's traffic, by exact search, when that beats
 * `toBeat`; otherwise (or when the search would be too large) undefined.
 *
 * The structure searched is a function of the admitted traffic alone: the port axis is cut where
 * the admitted addresses change (the ports-first pieces, plus ICMP type boundaries), the address
 * axis where any piece's addresses (or A) start or end. Candidate rules are a run of pieces (ICMP:
 * everything, one type, or one code) times a maximal CIDR inside the addresses admitted over the
 * whole run (A counts as admitted: it is covered anyway). Every minimal cover can be widened into
 * such candidates rule for rule. A branch and bound search over them, in a fixed order, keeps the
 * first smallest cover it meets, so the result is deterministic.
 */
function exactLayout(protocol: Protocol, family: Family, mine: readonly CidrEntry[], allSet: AddressSet, toBeat: number): LayoutItem[] | undefined {
  if (toBeat <= 1) return undefined;
  const pieces = sweep<AddressSet>(mine, (covering) => covering.reduce((acc, e) => acc.union((e as CidrEntry).set), allSet), (set) => set.key);
  const icmp = isIcmp(protocol);
  const pcuts = new Set<number>([0, 65536]);
  for (const p of pieces) {
    pcuts.add(p.lo).add(p.hi + 1);
    if (icmp) pcuts.add(Math.floor(p.lo / 256) * 256).add(Math.floor(p.hi / 256) * 256 + 256);
  }
  let pc = [...pcuts].sort((x, y) => x - y);
  const setAt = (v: number): AddressSet => pieces.find((p) => p.lo <= v && p.hi >= v)?.value ?? allSet;
  if (icmp) {
    // A piece of several codes inside one type is covered by that type's rule wherever the whole
    // type is admitted. Where it is not (merged single codes: "type 0 code 0" and "code 1"), only
    // one-code rules fit, so the piece is cut into its codes.
    // Likewise a piece of several whole types is covered by "every type" wherever all of ICMP is
    // admitted; where it is not (merged one-type flows), it is cut into its types.
    let everything = allSet.union(setAt(0));
    for (const v of pc.slice(0, -1)) everything = everything.intersect(setAt(v));
    const types = new Set(pc);
    for (let i = 0; i + 1 < pc.length; i++) {
      const [lo, next] = [pc[i], pc[i + 1]];
      if (next - lo > 256 && !setAt(lo).subtract(everything).isEmpty) for (let v = lo + 256; v < next; v += 256) types.add(v);
    }
    pc = [...types].sort((x, y) => x - y);
    const fine = new Set(pc);
    for (let i = 0; i + 1 < pc.length; i++) {
      const [lo, next] = [pc[i], pc[i + 1]];
      const type = Math.floor(lo / 256);
      if (next - lo <= 1 || type !== Math.floor((next - 1) / 256) || (lo % 256 === 0 && next - lo === 256)) continue;
      let whole = setAt(lo);
      for (let k = 0; k + 1 < pc.length; k++) if (Math.floor(pc[k] / 256) === type) whole = whole.intersect(setAt(pc[k]));
      if (!setAt(lo).subtract(whole).isEmpty) for (let v = lo + 1; v < next; v++) fine.add(v);
    }
    pc = [...fine].sort((x, y) => x - y);
  }
  const segs = pc.slice(0, -1).map((lo, i) => ({ lo, hi: pc[i + 1] - 1, set: setAt(lo) }));
  const acuts = new Set<bigint>([0n, 1n << BigInt(familyBits(family))]);
  for (const seg of segs) for (const [a, b] of seg.set.intervals) acuts.add(a).add(b + 1n);
  for (const [a, b] of allSet.intervals) acuts.add(a).add(b + 1n);
  const ac = [...acuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const elems: Interval[] = ac.slice(0, -1).map((a, i) => [a, ac[i + 1] - 1n]);
  const runs: [number, number][] = [];
  if (icmp) {
    runs.push([0, segs.length - 1]);
    for (let i = 0; i < segs.length; i++) {
      if (segs[i].lo % 256 !== 0) continue;
      let k = i;
      while (k < segs.length && segs[k].hi < segs[i].lo + 255) k++;
      if (k < segs.length && segs[k].hi === segs[i].lo + 255 && k > i) runs.push([i, k]);
      else if (k === i && segs[i].hi === segs[i].lo + 255) runs.push([i, i]);
    }
    for (let i = 0; i < segs.length; i++) if (segs[i].lo === segs[i].hi) runs.push([i, i]);
  } else {
    for (let i = 0; i < segs.length; i++) for (let k = i; k < segs.length; k++) runs.push([i, k]);
  }
  if (runs.length * segs.length * elems.length > EXACT_MAX_WORK) return undefined;
  const admitted = segs.map((seg) => elems.map(([a]) => seg.set.contains(a)));
  const dontCare = elems.map(([a]) => allSet.contains(a));
  // Candidates: run × maximal block of what the whole run admits.
  const rects: { run: [number, number]; cidr: Cidr }[] = [];
  for (const run of runs) {
    const ok: Interval[] = [];
    for (let j = 0; j < elems.length; j++) {
      let all = true;
      for (let i = run[0]; i <= run[1] && all; i++) all = admitted[i][j];
      if (all) ok.push(elems[j]);
    }
    for (const cidr of AddressSet.fromIntervals(family, ok).toCidrs()) rects.push({ run, cidr });
  }
  // Cells: piece × atom (address intervals refined by every candidate block) that must be covered.
  const atomCuts = new Set<bigint>(ac);
  for (const r of rects) atomCuts.add(r.cidr.first).add(r.cidr.last + 1n);
  const atc = [...atomCuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const atomStarts = atc.slice(0, -1);
  const elemIndex = (address: bigint): number => {
    let lo = 0;
    let hi = elems.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (elems[mid][0] <= address) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const cellOf = new Map<string, number>();
  for (let i = 0; i < segs.length; i++) {
    atomStarts.forEach((a, t) => {
      const j = elemIndex(a);
      if (!dontCare[j] && admitted[i][j]) cellOf.set(`${i}:${t}`, cellOf.size);
    });
  }
  if (cellOf.size === 0) return undefined;
  const sets: { rect: number; cells: number[] }[] = [];
  rects.forEach((r, index) => {
    const cells: number[] = [];
    for (let i = r.run[0]; i <= r.run[1]; i++) {
      atomStarts.forEach((a, t) => {
        if (a < r.cidr.first || a > r.cidr.last) return;
        const id = cellOf.get(`${i}:${t}`);
        if (id !== undefined) cells.push(id);
      });
    }
    if (cells.length > 0) sets.push({ rect: index, cells });
  });
  const reachable = new Set(sets.flatMap((x) => x.cells));
  if (reachable.size !== cellOf.size) return undefined; // cannot happen; never emit a partial cover
  const chosen = exactCover(cellOf.size, sets, toBeat);
  if (chosen === undefined) return undefined;
  return chosen.map((index) => {
    const { run, cidr } = rects[index];
    const [port] = Port.fromSpan(protocol, segs[run[0]].lo, segs[run[1]].hi);
    return { port, set: AddressSet.of(family, [cidr]) };
  });
}

/**
 * Minimum set cover by branch and bound, component by component, in a fixed order: returns the
 * chosen sets (their `rect` numbers) when the cover has fewer than `toBeat` members, else
 * undefined (also when the search runs out of nodes).
 */
function exactCover(n: number, input: readonly { rect: number; cells: number[] }[], toBeat: number): number[] | undefined {
  // Drop dominated sets (a subset of another's cells); the earlier of two equal sets stays.
  const sets = input.filter((s, i) => {
    const mine = new Set(s.cells);
    return !input.some((t, k) => k !== i && (t.cells.length > s.cells.length || (t.cells.length === s.cells.length && k < i)) && s.cells.every((c) => t.cells.includes(c)) && mine.size <= t.cells.length);
  });
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  for (const s of sets) for (const c of s.cells) parent[find(c)] = find(s.cells[0]);
  const components = new Map<number, { rect: number; cells: number[] }[]>();
  for (const s of sets) {
    const root = find(s.cells[0]);
    const list = components.get(root) ?? [];
    list.push(s);
    components.set(root, list);
  }
  const out: number[] = [];
  let nodes = 0;
  for (const comp of components.values()) {
    const cells = [...new Set(comp.flatMap((s) => s.cells))].sort((a, b) => a - b);
    const local = new Map(cells.map((c, i) => [c, i]));
    const members = comp.map((s) => s.cells.map((c) => local.get(c) as number));
    const byCell: number[][] = cells.map(() => []);
    members.forEach((m, k) => m.forEach((c) => byCell[c].push(k)));
    const biggest = Math.max(...members.map((m) => m.length));
    const count = new Array<number>(cells.length).fill(0);
    let uncovered = cells.length;
    let best: number[] | undefined;
    const path: number[] = [];
    const search = (): void => {
      if (++nodes > EXACT_MAX_NODES) return;
      if (uncovered === 0) {
        if (best === undefined || path.length < best.length) best = [...path];
        return;
      }
      if (best !== undefined && path.length + Math.ceil(uncovered / biggest) >= best.length) return;
      let pick = -1;
      for (let c = 0; c < cells.length; c++) if (count[c] === 0 && (pick < 0 || byCell[c].length < byCell[pick].length)) pick = c;
      for (const k of byCell[pick]) {
        for (const c of members[k]) if (count[c]++ === 0) uncovered--;
        path.push(k);
        search();
        path.pop();
        for (const c of members[k]) if (--count[c] === 0) uncovered++;
      }
    };
    search();
    if (nodes > EXACT_MAX_NODES || best === undefined) return undefined;
    for (const k of best) out.push(comp[k].rect);
  }
  return out.length < toBeat ? out : undefined;
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
  if (all.length > 0) return [new PolicyRule(b.direction, Port.allTraffic(), b.target, uniqueProvenance(all.map((e) => e.prov)))];
  const out: PolicyRule[] = [];
  for (const protocol of ['tcp', 'udp', 'icmp', 'icmpv6'] as Protocol[]) {
    const mine = b.entries.filter((e) => e.protocol === protocol);
    if (mine.length === 0) continue;
    for (const span of sweep(mine, () => true, () => '')) {
      for (const port of Port.fromSpan(protocol, span.lo, span.hi)) {
        const [lo, hi] = port.span;
        const because = mine.filter((e) => e.lo <= hi && e.hi >= lo).map((e) => e.prov);
        out.push(new PolicyRule(b.direction, port, b.target, uniqueProvenance(because)));
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
