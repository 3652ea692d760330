/**
 * The one interval algebra of twinwall: a set of integers (ports, ICMP type/code points,
 * addresses as bigints …) kept as sorted, disjoint, non-adjacent inclusive intervals, with exact
 * union, intersection and difference. `AddressSet` (lib/address.ts) and the checker's flow space
 * (lib/check/space.ts) are both built on it.
 */

/** A set of integers kept as sorted, disjoint, non-adjacent inclusive intervals. */
export class IntervalSet {
  public static readonly EMPTY = new IntervalSet([]);

  public static of(lo: bigint | number, hi: bigint | number = lo): IntervalSet {
    const a = BigInt(lo);
    const b = BigInt(hi);
    return a > b ? IntervalSet.EMPTY : new IntervalSet([[a, b]]);
  }

  public static from(intervals: readonly (readonly [bigint | number, bigint | number])[]): IntervalSet {
    const list = intervals.map(([a, b]) => [BigInt(a), BigInt(b)] as [bigint, bigint]).filter(([a, b]) => a <= b);
    list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const out: [bigint, bigint][] = [];
    for (const [lo, hi] of list) {
      const last = out[out.length - 1];
      if (last !== undefined && lo <= last[1] + 1n) {
        if (hi > last[1]) last[1] = hi;
      } else out.push([lo, hi]);
    }
    return new IntervalSet(out);
  }

  public static points(values: Iterable<bigint | number>): IntervalSet {
    return IntervalSet.from([...values].map((v) => [v, v] as const));
  }

  public readonly intervals: readonly (readonly [bigint, bigint])[];

  private constructor(intervals: readonly (readonly [bigint, bigint])[]) {
    this.intervals = intervals;
  }

  public get isEmpty(): boolean {
    return this.intervals.length === 0;
  }

  public get first(): bigint {
    return this.intervals[0][0];
  }

  public get last(): bigint {
    return this.intervals[this.intervals.length - 1][1];
  }

  /** Number of integers in the set. */
  public get size(): bigint {
    return this.intervals.reduce((n, [a, b]) => n + (b - a + 1n), 0n);
  }

  public get key(): string {
    return this.intervals.map(([a, b]) => (a === b ? a.toString(16) : `${a.toString(16)}-${b.toString(16)}`)).join(',');
  }

  public has(value: bigint | number): boolean {
    const v = BigInt(value);
    let lo = 0;
    let hi = this.intervals.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.intervals[mid];
      if (v < a) hi = mid - 1;
      else if (v > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Same integers: the same intervals, as both are canonical. */
  public equals(other: IntervalSet): boolean {
    if (this === other) return true;
    const a = this.intervals;
    const b = other.intervals;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
    return true;
  }

  /** Some integer in both (without building the intersection). */
  public intersects(other: IntervalSet): boolean {
    const a = this.intervals;
    const b = other.intervals;
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      if (a[i][1] < b[j][0]) i++;
      else if (b[j][1] < a[i][0]) j++;
      else return true;
    }
    return false;
  }

  public union(other: IntervalSet): IntervalSet {
    return IntervalSet.from([...this.intervals, ...other.intervals]);
  }

  public intersect(other: IntervalSet): IntervalSet {
    // One interval around the whole of the other set leaves that set as it is (the checker
    // intersects with full axes all the time): the same value, nothing built.
    if (this.isEmpty || other.isEmpty) return IntervalSet.EMPTY;
    if (this === other) return this;
    if (other.intervals.length === 1 && other.intervals[0][0] <= this.first && other.intervals[0][1] >= this.last) return this;
    if (this.intervals.length === 1 && this.intervals[0][0] <= other.first && this.intervals[0][1] >= other.last) return other;
    const out: [bigint, bigint][] = [];
    let i = 0;
    let j = 0;
    while (i < this.intervals.length && j < other.intervals.length) {
      const [a1, b1] = this.intervals[i];
      const [a2, b2] = other.intervals[j];
      const lo = a1 > a2 ? a1 : a2;
      const hi = b1 < b2 ? b1 : b2;
      if (lo <= hi) out.push([lo, hi]);
      if (b1 < b2) i++;
      else j++;
    }
    return new IntervalSet(out);
  }

  public subtract(other: IntervalSet): IntervalSet {
    if (!this.intersects(other)) return this;
    // One interval around the whole of this set (a full axis, most often) leaves nothing.
    if (this === other || (other.intervals.length === 1 && other.intervals[0][0] <= this.first && other.intervals[0][1] >= this.last)) return IntervalSet.EMPTY;
    // One pass over both sorted lists: `j` never moves back, so this is linear in their sizes.
    const out: [bigint, bigint][] = [];
    let j = 0;
    for (const [a, b] of this.intervals) {
      let lo = a;
      while (j < other.intervals.length && other.intervals[j][1] < lo) j++;
      for (let k = j; lo <= b && k < other.intervals.length && other.intervals[k][0] <= b; k++) {
        const [c, d] = other.intervals[k];
        if (c > lo) out.push([lo, c - 1n]);
        if (d + 1n > lo) lo = d + 1n;
      }
      if (lo <= b) out.push([lo, b]);
    }
    return new IntervalSet(out);
  }

  public contains(other: IntervalSet): boolean {
    // Each interval of `other` inside one interval of this (canonical: none spans a gap).
    const a = this.intervals;
    let i = 0;
    for (const [lo, hi] of other.intervals) {
      while (i < a.length && a[i][1] < lo) i++;
      if (i === a.length || a[i][0] > lo || a[i][1] < hi) return false;
    }
    return true;
  }
}
