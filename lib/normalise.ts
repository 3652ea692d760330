/**
 * Normalisation: the flows of a host's roles become canonical rules (docs/architecture.md,
 * "Normalisation"). A function of the admitted traffic alone, which is what makes it
 * idempotent, independent of the order of roles and flows, and unable to change what is admitted:
 *
 * - CIDR peers, per direction and address family: "all protocols" flows cover an address set A.
 *   For each protocol three layouts are computed — ports first (the port axis, ICMP as
 *   type*256+code, cut at every flow boundary; each piece admits the addresses of the flows
 *   covering it plus A), addresses first (the address axis cut at every boundary; each cell's
 *   ports as maximal ranges, each range admitting the cells that have it plus A), and, within a
 *   size limit, an exact cover found by branch and bound — and the one with the fewest rules is
 *   kept. Address sets are written as their minimal CIDR cover; blocks inside A are dropped.
 * - Security-group and prefix-list peers are identities on the network wall, not addresses, so
 *   they are normalised per (direction, id): port ranges merged, everything dropped under an
 *   "all protocols" rule for the same id.
 *
 * Every resulting rule keeps the provenance (role, service, reason) of every flow it came from,
 * and rules are sorted totally (`compareRules`).
 */
import { AddressSet, Cidr, Family, Interval, compareCidr, familyBits } from './address';
import { TwinwallError, show } from './errors';
import { Direction } from './flow';
import { Port, Protocol, isIcmp, protocolFamily } from './port';
import { AttributedFlow, PolicyRule, Provenance, RuleTarget, uniqueProvenance } from './policy';

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
    const addressFirstCount = ruleCount(addressFirst, allSet);
    const portsFirstCount = ruleCount(portsFirst, allSet);
    let layout = addressFirstCount < portsFirstCount ? addressFirst : portsFirst;
    // Neither canonical layout is always minimal (two ranges that overlap in a staircase, say).
    // A third, found by exact search, replaces them only when it is strictly smaller.
    const exact = exactLayout(protocol, family, mine, allSet, Math.min(addressFirstCount, portsFirstCount));
    if (exact !== undefined) layout = exact;
    for (const item of layout) {
      for (const cidr of item.set.toCidrs()) {
        const one = AddressSet.of(family, [cidr]);
        if (!allSet.isEmpty && one.subtract(allSet).isEmpty) continue;
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
    // Without all-protocols flows (A empty) every block counts.
    if (allSet.isEmpty) n += item.set.cidrCount;
    else for (const cidr of item.set.toCidrs()) if (!AddressSet.of(allSet.family, [cidr]).subtract(allSet).isEmpty) n++;
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
  // A lower bound on any cover; when it reaches `toBeat` the search cannot win. Ports where
  // nothing beyond A is admitted (a gap between pieces, or a piece admitting A alone) split the
  // pieces into groups, and no candidate spans two groups (its block would lie inside A,
  // covering nothing that needs covering), so each group needs rules of its own. Within a group,
  // every block covering part of a piece lies inside what that piece admits; with A empty that
  // takes at least the piece's minimal CIDR cover (cidrCount), otherwise at least one block.
  let bound = 0;
  let groupNeeds = 0;
  let open = false;
  let lastHi = Number.NaN;
  for (const p of pieces) {
    const needed = !p.value.equals(allSet);
    if (needed) {
      const needs = allSet.isEmpty ? p.value.cidrCount : 1;
      if (open && p.lo === lastHi + 1) groupNeeds = Math.max(groupNeeds, needs);
      else {
        bound += groupNeeds;
        groupNeeds = needs;
      }
    }
    open = needed;
    lastHi = p.hi;
  }
  if (bound + groupNeeds >= toBeat) return undefined;
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

/** The id of a target: the group or prefix-list id, or the CIDR. */
export function targetId(t: RuleTarget): string {
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
