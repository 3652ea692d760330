/**
 * The flow space the checker reasons in, and exact set algebra over it.
 *
 * One point of the space is the first packet of one new connection, seen from the host, in one
 * direction and one address family. Its coordinates (the axes below) are everything a security
 * group or the filter table twinwall models can look at. A `Box` is a product of one
 * `IntervalSet` per axis; a `Region` is a list of pairwise disjoint boxes. Intersection,
 * difference and union are exact, so "the host admits exactly what the security group admits"
 * is a statement about regions being empty, not about samples.
 */

import { IntervalSet } from '../intervals';

export { IntervalSet };

/** The axes of the flow space, in box order. */
export const AXES = ['proto', 'point', 'sport', 'remote', 'kind', 'local', 'hl', 'uid'] as const;
export type Axis = (typeof AXES)[number];
const AXIS_INDEX: Record<Axis, number> = Object.fromEntries(AXES.map((a, i) => [a, i])) as Record<Axis, number>;

/**
 * What each axis means:
 * - proto: IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6 …), 0–255.
 * - point: destination port for tcp/udp; type×256+code for icmp/icmpv6; 0 for other protocols.
 * - sport: source port for tcp/udp (the connecting side's), 0 otherwise.
 * - remote: the other end's address (source of ingress, destination of egress).
 * - kind: 0 when the host's end is one of its own unicast addresses; 1 when it is not (egress:
 *   a forged source). Ingress is only considered to the host's own addresses.
 * - local: the host's end's address (destination of ingress, source of egress).
 * - hl: IPv4 TTL / IPv6 hop limit of the packet, 0–255.
 * - uid: the user owning the sending socket (egress only; 0 stands in for "n/a" on ingress).
 */
const FULL_SETS: Record<Axis, (bits: number) => IntervalSet> = {
  proto: () => IntervalSet.of(0, 255),
  point: () => IntervalSet.of(0, 65535),
  sport: () => IntervalSet.of(0, 65535),
  remote: (bits) => IntervalSet.of(0n, (1n << BigInt(bits)) - 1n),
  kind: () => IntervalSet.of(0, 1),
  local: (bits) => IntervalSet.of(0n, (1n << BigInt(bits)) - 1n),
  hl: () => IntervalSet.of(0, 255),
  uid: () => IntervalSet.of(0n, 0xffffffffn),
};

/** Each axis's full set for 32 and 128 address bits (and 0, for the axes that are not addresses), made once (IntervalSet is immutable). */
const FULL_BY_BITS = new Map<number, readonly IntervalSet[]>([0, 32, 128].map((bits) => [bits, AXES.map((a) => FULL_SETS[a](bits))]));

/** The whole of one axis for addresses of `bits` bits (0 for an axis that is not an address). */
export function fullSet(axis: Axis, bits: number): IntervalSet {
  return FULL_BY_BITS.get(bits)?.[AXIS_INDEX[axis]] ?? FULL_SETS[axis](bits);
}

/** A product of one set per axis. Immutable. */
export class Box {
  public static full(bits: number): Box {
    return new Box(AXES.map((a) => fullSet(a, bits)));
  }

  /** The full space with some axes restricted. */
  public static where(bits: number, constraints: Partial<Record<Axis, IntervalSet>>): Box {
    return new Box(AXES.map((a) => constraints[a] ?? fullSet(a, bits)));
  }

  public readonly sets: readonly IntervalSet[];

  public constructor(sets: readonly IntervalSet[]) {
    this.sets = sets;
  }

  public get(axis: Axis): IntervalSet {
    return this.sets[AXIS_INDEX[axis]];
  }

  public with(axis: Axis, set: IntervalSet): Box {
    const sets = [...this.sets];
    sets[AXIS_INDEX[axis]] = set;
    return new Box(sets);
  }

  public get isEmpty(): boolean {
    return this.sets.some((s) => s.isEmpty);
  }

  public get key(): string {
    return this.sets.map((s) => s.key).join('|');
  }

  public intersect(other: Box): Box | undefined {
    // Most boxes the checker intersects miss each other: ask first, without building anything.
    if (!this.overlaps(other)) return undefined;
    const sets: IntervalSet[] = [];
    for (let i = 0; i < this.sets.length; i++) sets.push(this.sets[i].intersect(other.sets[i]));
    return new Box(sets);
  }

  /** this \ other, as disjoint boxes. */
  public subtract(other: Box): Box[] {
    if (!this.overlaps(other)) return [this];
    const out: Box[] = [];
    const cur = [...this.sets];
    for (let i = 0; i < cur.length; i++) {
      const outside = cur[i].subtract(other.sets[i]);
      if (!outside.isEmpty) {
        const piece = [...cur];
        piece[i] = outside;
        out.push(new Box(piece));
      }
      cur[i] = cur[i].intersect(other.sets[i]);
    }
    return out;
  }

  public contains(other: Box): boolean {
    return this.sets.every((s, i) => s.contains(other.sets[i]));
  }

  /** Some point in both. */
  public overlaps(other: Box): boolean {
    for (let i = 0; i < this.sets.length; i++) if (!this.sets[i].intersects(other.sets[i])) return false;
    return true;
  }
}

/**
 * Each box of `boxes` minus `o` (a box that misses `o` as it is): `boxes` itself when no box
 * meets `o`, so the common case — most pieces miss most boxes — builds nothing.
 */
function subtractAll(boxes: readonly Box[], o: Box): readonly Box[] {
  let out: Box[] | undefined;
  for (let i = 0; i < boxes.length; i++) {
    const b = boxes[i];
    if (!b.overlaps(o)) {
      out?.push(b);
      continue;
    }
    out ??= boxes.slice(0, i);
    for (const piece of b.subtract(o)) out.push(piece);
  }
  return out ?? boxes;
}

/**
 * Cut `boxes` into pairwise disjoint pieces that cover the same points: each box minus every box
 * before it, so a point belongs to the piece of the first box that holds it. `piece` gets each
 * piece in order with the index of the box it came from (empty boxes give none).
 */
export function carve(boxes: readonly Box[], piece: (box: Box, from: number) => void): void {
  const done: Box[] = [];
  for (let i = 0; i < boxes.length; i++) {
    const b = boxes[i];
    if (b.isEmpty) continue;
    let pieces: readonly Box[] = [b];
    for (const o of done) {
      pieces = subtractAll(pieces, o);
      if (pieces.length === 0) break;
    }
    for (const p of pieces) {
      done.push(p);
      piece(p, i);
    }
  }
}

/** A set of points: pairwise disjoint boxes. */
export class Region {
  public static readonly EMPTY = new Region([]);

  /** The points of `boxes`: each box minus the boxes before it (see `carve`). */
  public static of(boxes: readonly Box[]): Region {
    if (boxes.length === 1) return boxes[0].isEmpty ? Region.EMPTY : new Region([boxes[0]]);
    const out: Box[] = [];
    carve(boxes, (piece) => out.push(piece));
    return new Region(out);
  }

  public readonly boxes: readonly Box[];

  private constructor(boxes: readonly Box[]) {
    this.boxes = boxes;
  }

  public get isEmpty(): boolean {
    return this.boxes.length === 0;
  }

  public intersect(other: Region): Region {
    const out: Box[] = [];
    for (const a of this.boxes) for (const b of other.boxes) {
      const i = a.intersect(b);
      if (i !== undefined) out.push(i);
    }
    return new Region(out);
  }

  public intersectBox(box: Box): Region {
    let out: Box[] | undefined;
    for (const b of this.boxes) {
      const i = b.intersect(box);
      if (i !== undefined) (out ??= []).push(i);
    }
    return out === undefined ? Region.EMPTY : new Region(out);
  }

  public subtract(other: Region): Region {
    let out: readonly Box[] = this.boxes;
    for (const o of other.boxes) out = subtractAll(out, o);
    return out === this.boxes ? this : new Region(out);
  }

  public union(other: Region): Region {
    return new Region([...this.boxes, ...other.subtract(this).boxes]);
  }

  /** Merge boxes that differ on one axis only, until nothing merges (fewer, larger boxes). */
  public simplify(): Region {
    return new Region(mergeBoxes(this.boxes));
  }
}

/** Merge pairs of disjoint boxes equal on every axis but one. */
export function mergeBoxes(input: readonly Box[]): Box[] {
  let boxes = [...input];
  for (let changed = true; changed; ) {
    changed = false;
    outer: for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i];
        const b = boxes[j];
        let diff = -1;
        let count = 0;
        for (let k = 0; k < a.sets.length && count < 2; k++) {
          if (!a.sets[k].equals(b.sets[k])) {
            diff = k;
            count++;
          }
        }
        if (count === 1) {
          const sets = [...a.sets];
          sets[diff] = a.sets[diff].union(b.sets[diff]);
          boxes[i] = new Box(sets);
          boxes.splice(j, 1);
          changed = true;
          break outer;
        }
      }
    }
  }
  return boxes;
}
