/**
 * An independent minimum: the fewest security-group rules (protocol/port range or ICMP
 * type/code × one CIDR) whose union is exactly the traffic a list of flows admits, for one
 * direction and one address family. Written without lib/normalise.ts (it reads flows as plain boxes
 * and never calls normalisation), so it can judge the normaliser: by exact search (set cover by
 * branch and bound) over every rule that could appear in an exact cover.
 *
 * Why the candidates are enough (any exact cover can be rewritten into one of them, rule for
 * rule, so the minimum is unchanged):
 * - "all protocols" rules must cover exactly the addresses A where other protocols are admitted,
 *   which only all-protocol flows do; the fewest CIDRs for A is its canonical block list, and they
 *   admit every port of every protocol there, so per protocol A is covered already.
 * - A rule inside the admitted set can be widened to a maximal one still inside it. The admitted
 *   set is constant between consecutive flow boundaries (port segments, address intervals), so
 *   a maximal port range ends on segment boundaries, and a maximal CIDR inside a union of address
 *   intervals is one of the blocks of its canonical decomposition.
 * - ICMP rules are "every type", one type, or one (type, code). A one-code rule inside a segment
 *   of several codes is dominated by its whole type (a flow covering several codes of a type covers
 *   the type), and a one-type rule inside a segment of several types by "every type".
 */

export type BoxProtocol = 'all' | 'tcp' | 'udp' | 'icmp';

/** One flow as a box: protocol, port span on the 16-bit axis (ICMP: type*256+code), addresses. */
export interface Box {
  readonly protocol: BoxProtocol;
  readonly lo: number;
  readonly hi: number;
  readonly first: bigint;
  readonly last: bigint;
}

export interface CoverResult {
  /** The fewest rules found. */
  readonly rules: number;
  /** True when the search finished (the number is the minimum), false when it ran out of budget. */
  readonly exact: boolean;
}

type Iv = [bigint, bigint];

function merge(list: Iv[]): Iv[] {
  const sorted = [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Iv[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1n) {
      if (b > last[1]) last[1] = b;
    } else out.push([a, b]);
  }
  return out;
}

/** The maximal aligned blocks of an interval, in order (its canonical CIDR decomposition). */
function blocks(a: bigint, b: bigint, bits: number): Iv[] {
  const out: Iv[] = [];
  let lo = a;
  while (lo <= b) {
    let size = 0n;
    while (size < BigInt(bits)) {
      const next = 1n << (size + 1n);
      if (lo % next !== 0n || lo + next - 1n > b) break;
      size += 1n;
    }
    out.push([lo, lo + (1n << size) - 1n]);
    lo += 1n << size;
  }
  return out;
}

function inside(iv: Iv, set: readonly Iv[]): boolean {
  return set.some(([a, b]) => a <= iv[0] && iv[1] <= b);
}

/** The fewest rules admitting exactly what `boxes` admit (one direction, one family of `bits`). */
export function minimumCover(boxes: readonly Box[], bits: number, budget = 2_000_000): CoverResult {
  const allSet = merge(boxes.filter((b) => b.protocol === 'all').map((b): Iv => [b.first, b.last]));
  let total = allSet.reduce((n, [a, b]) => n + blocks(a, b, bits).length, 0);
  let exact = true;
  for (const protocol of ['tcp', 'udp', 'icmp'] as const) {
    const mine = boxes.filter((b) => b.protocol === protocol);
    if (mine.length === 0) continue;
    const r = protocolCover(protocol, mine, allSet, bits, budget);
    total += r.rules;
    exact &&= r.exact;
  }
  return { rules: total, exact };
}

function protocolCover(protocol: 'tcp' | 'udp' | 'icmp', mine: readonly Box[], allSet: readonly Iv[], bits: number, budget: number): CoverResult {
  // Port segments.
  const pcuts = new Set<number>([0, 65536]);
  for (const b of mine) {
    pcuts.add(b.lo).add(b.hi + 1);
    if (protocol === 'icmp') pcuts.add(Math.floor(b.lo / 256) * 256).add(Math.floor(b.hi / 256) * 256 + 256);
  }
  const pc = [...pcuts].sort((x, y) => x - y);
  const segs = pc.slice(0, -1).map((lo, i) => [lo, pc[i + 1] - 1] as const);
  // Address intervals.
  const acuts = new Set<bigint>([0n, 1n << BigInt(bits)]);
  for (const b of mine) acuts.add(b.first).add(b.last + 1n);
  for (const [a, b] of allSet) acuts.add(a).add(b + 1n);
  const ac = [...acuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const elems: Iv[] = ac.slice(0, -1).map((a, i) => [a, ac[i + 1] - 1n]);
  const dontCare = elems.map((e) => inside(e, allSet));
  const admitted = segs.map(([lo, hi]) => elems.map((e, j) => dontCare[j] || mine.some((b) => b.lo <= lo && b.hi >= hi && b.first <= e[0] && b.last >= e[1])));

  // Candidate port runs [i, k] of segments.
  const runs: [number, number][] = [];
  if (protocol === 'icmp') {
    runs.push([0, segs.length - 1]);
    for (let i = 0; i < segs.length; i++) {
      if (segs[i][0] % 256 !== 0) continue;
      let k = i;
      while (k < segs.length && segs[k][1] < segs[i][0] + 255) k++;
      if (k < segs.length && segs[k][1] === segs[i][0] + 255) runs.push([i, k]);
    }
    for (let i = 0; i < segs.length; i++) if (segs[i][0] === segs[i][1]) runs.push([i, i]);
  } else {
    for (let i = 0; i < segs.length; i++) for (let k = i; k < segs.length; k++) runs.push([i, k]);
  }

  // Candidate rectangles: a run × a maximal block of the addresses admitted across the run.
  const rects: { run: [number, number]; block: Iv }[] = [];
  for (const run of runs) {
    const ok: Iv[] = [];
    for (let j = 0; j < elems.length; j++) {
      let all = true;
      for (let i = run[0]; i <= run[1] && all; i++) all = admitted[i][j];
      if (all) ok.push(elems[j]);
    }
    for (const [a, b] of merge(ok)) for (const block of blocks(a, b, bits)) rects.push({ run, block });
  }

  // Cells: segment × atom, where atoms refine the address intervals by every candidate block.
  const atomCuts = new Set<bigint>(ac);
  for (const r of rects) atomCuts.add(r.block[0]).add(r.block[1] + 1n);
  const atc = [...atomCuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const atoms: Iv[] = atc.slice(0, -1).map((a, i) => [a, atc[i + 1] - 1n]);
  const elemOf = (atom: Iv) => elems.findIndex((e) => e[0] <= atom[0] && atom[1] <= e[1]);
  const cellId = new Map<string, number>();
  for (let i = 0; i < segs.length; i++) {
    for (let t = 0; t < atoms.length; t++) {
      const j = elemOf(atoms[t]);
      if (!dontCare[j] && admitted[i][j]) cellId.set(`${i}:${t}`, cellId.size);
    }
  }
  if (cellId.size === 0) return { rules: 0, exact: true };
  const covers: number[][] = [];
  for (const r of rects) {
    const cells: number[] = [];
    for (let i = r.run[0]; i <= r.run[1]; i++) {
      for (let t = 0; t < atoms.length; t++) {
        if (atoms[t][0] < r.block[0] || atoms[t][1] > r.block[1]) continue;
        const id = cellId.get(`${i}:${t}`);
        if (id !== undefined) cells.push(id);
      }
    }
    if (cells.length > 0) covers.push(cells);
  }
  return setCover(cellId.size, covers, budget);
}

/** Exact minimum set cover, per connected component, by branch and bound. */
function setCover(n: number, sets: readonly number[][], budget: number): CoverResult {
  // Drop duplicate and dominated sets.
  const keyed = new Map<string, number[]>();
  for (const s of sets) keyed.set([...s].sort((a, b) => a - b).join(','), [...new Set(s)].sort((a, b) => a - b));
  let list = [...keyed.values()].sort((a, b) => b.length - a.length);
  const asSet = list.map((s) => new Set(s));
  list = list.filter((s, i) => !list.some((t, k) => k !== i && t.length > s.length && s.every((c) => asSet[k].has(c))));
  // Components.
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  for (const s of list) for (const c of s) parent[find(c)] = find(s[0]);
  const comps = new Map<number, number[][]>();
  for (const s of list) {
    const root = find(s[0]);
    comps.set(root, [...(comps.get(root) ?? []), s]);
  }
  let total = 0;
  let exact = true;
  for (const compSets of comps.values()) {
    const r = componentCover(compSets, budget);
    total += r.rules;
    exact &&= r.exact;
  }
  return { rules: total, exact };
}

function componentCover(sets: readonly number[][], budget: number): CoverResult {
  const cells = [...new Set(sets.flat())];
  const index = new Map(cells.map((c, i) => [c, i]));
  const local = sets.map((s) => s.map((c) => index.get(c) as number));
  const byCell: number[][] = cells.map(() => []);
  local.forEach((s, k) => s.forEach((c) => byCell[c].push(k)));
  const biggest = Math.max(...local.map((s) => s.length));
  const count = new Array<number>(cells.length).fill(0);
  let uncovered = cells.length;
  // Greedy first, as the bound to beat.
  let best = greedy(local, cells.length);
  let nodes = 0;
  const search = (used: number): void => {
    if (nodes++ > budget) return;
    if (uncovered === 0) {
      best = Math.min(best, used);
      return;
    }
    if (used + Math.ceil(uncovered / biggest) >= best) return;
    let pick = -1;
    for (let c = 0; c < cells.length; c++) {
      if (count[c] > 0) continue;
      if (pick < 0 || byCell[c].length < byCell[pick].length) pick = c;
    }
    for (const k of byCell[pick]) {
      for (const c of local[k]) if (count[c]++ === 0) uncovered--;
      search(used + 1);
      for (const c of local[k]) if (--count[c] === 0) uncovered++;
    }
  };
  search(0);
  return { rules: best, exact: nodes <= budget };
}

function greedy(sets: readonly number[][], n: number): number {
  const covered = new Array<boolean>(n).fill(false);
  let left = n;
  let used = 0;
  while (left > 0) {
    let bestK = -1;
    let bestGain = 0;
    sets.forEach((s, k) => {
      const gain = s.filter((c) => !covered[c]).length;
      if (gain > bestGain) [bestK, bestGain] = [k, gain];
    });
    for (const c of sets[bestK]) if (!covered[c]) [covered[c], left] = [true, left - 1];
    used++;
  }
  return used;
}
