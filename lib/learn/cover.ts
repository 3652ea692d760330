/**
 * Remote addresses seen for one flow → the CIDR blocks a rule would name. The cover is exact (the
 * minimal CIDR list of exactly the addresses seen, AddressSet.toCidrs) whenever that is at most
 * `maxBlocks` blocks; otherwise addresses are grouped by the longest prefix, no wider than
 * `widestPrefix`, that brings the count down to `maxBlocks`, and each group becomes the smallest
 * CIDR holding what was seen in it. When even the widest prefix leaves too many groups, the
 * addresses are "spread" and the caller decides (anywhere for a public service, a flag for a scan).
 */
import { AddressSet, Cidr, Family, Interval, familyBits } from '../address';

export interface CoverOptions {
  /** Never widen beyond this prefix (e.g. 24 for IPv4, 48 for IPv6). */
  readonly widestPrefix: number;
  /** Most blocks a cover may list before addresses are grouped. */
  readonly maxBlocks: number;
}

export interface Cover {
  readonly family: Family;
  readonly cidrs: readonly Cidr[];
  /** True when the cover holds addresses that were never seen (grouping widened it). */
  readonly widened: boolean;
  /** True when even at the widest prefix there are more than maxBlocks groups. */
  readonly spread: boolean;
  /** How many addresses the cover holds that were not seen. */
  readonly unseen: bigint;
}

function commonPrefix(family: Family, a: bigint, b: bigint): number {
  const bits = familyBits(family);
  let x = a ^ b;
  let p = bits;
  while (x > 0n) {
    x >>= 1n;
    p--;
  }
  return p;
}

/**
 * Cover `points` (single addresses) and `blocks` (already-coarsened CIDR blocks) of one family.
 * Deterministic: the same addresses give the same cover, whatever their order.
 */
export function coverAddresses(family: Family, points: Iterable<bigint>, blocks: Iterable<Cidr>, options: CoverOptions): Cover {
  const bits = familyBits(family);
  const intervals: Interval[] = [];
  for (const p of points) intervals.push([p, p]);
  for (const c of blocks) intervals.push([c.first, c.last]);
  const seen = AddressSet.fromIntervals(family, intervals);
  // Each interval needs at least one block: past maxBlocks intervals, skip building the exact list.
  if (seen.intervals.length <= options.maxBlocks) {
    const exact = seen.toCidrs();
    if (exact.length <= options.maxBlocks) return { family, cidrs: exact, widened: false, spread: false, unseen: 0n };
  }

  const widest = Math.max(0, Math.min(bits, options.widestPrefix));
  let best: Cidr[] | undefined;
  let spread = true;
  for (let prefix = bits - 1; prefix >= widest; prefix--) {
    const shift = BigInt(bits - prefix);
    const groups = new Map<bigint, [bigint, bigint]>();
    for (const [lo, hi] of seen.intervals) {
      // An interval may span several groups; split it at group boundaries.
      let a = lo;
      while (a <= hi) {
        const g = a >> shift;
        const groupEnd = ((g + 1n) << shift) - 1n;
        const b = hi < groupEnd ? hi : groupEnd;
        const slot = groups.get(g);
        if (slot) slot[1] = b;
        else groups.set(g, [a, b]);
        if (groups.size > options.maxBlocks) break;
        a = b + 1n;
      }
      if (groups.size > options.maxBlocks) break;
    }
    best = [...groups.values()].map(([a, b]) => {
      const p = commonPrefix(family, a, b);
      const hostBits = BigInt(bits - p);
      return Cidr.fromParts(family, (a >> hostBits) << hostBits, p);
    });
    if (groups.size <= options.maxBlocks) {
      spread = false;
      break;
    }
  }
  if (spread || best === undefined) {
    // Too spread even at the widest prefix: list it at the widest prefix, marked.
    const shift = BigInt(bits - widest);
    const nets = new Set<bigint>();
    for (const [lo, hi] of seen.intervals) for (let g = lo >> shift; g <= hi >> shift; g++) nets.add(g);
    best = [...nets].map((g) => Cidr.fromParts(family, g << shift, widest));
  }
  // Groups are disjoint; they are not merged further (that could exceed the widest prefix).
  const cidrs = [...best].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  const covered = AddressSet.of(family, cidrs);
  const unseen = covered.subtract(seen).intervals.reduce((n, [a, b]) => n + (b - a + 1n), 0n);
  return { family, cidrs, widened: unseen > 0n, spread, unseen };
}
