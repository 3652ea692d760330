/**
 * Addresses: the `Cidr` value object and `AddressSet`, a set of addresses of one family.
 * Parsing, validation and formatting are ipaddr.js's; the set algebra is lib/intervals.ts's;
 * what is here is the address view of it (families, CIDR blocks, the minimal CIDR cover).
 */
import * as ipaddr from 'ipaddr.js';
import { TwinwallError, show } from './errors';
import { IntervalSet } from './intervals';
import { requireLiteral } from './tokens';

export type Family = 4 | 6;

/** Both families, in the order every output lists them. */
export const FAMILIES: readonly Family[] = [4, 6];

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Number of address bits in a family. */
export function familyBits(family: Family): number {
  return BITS[family];
}

function familyName(family: Family): string {
  return family === 4 ? 'IPv4' : 'IPv6';
}

function bytesToBigInt(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/**
 * The number of bits of v > 0 (floor(log2 v) + 1), 32 bits at a time, without building text.
 * @internal
 */
export function bitLength(v: bigint): number {
  let n = 0;
  for (; v > 0xffffffffn; v >>= 32n) n += 32;
  return n + 32 - Math.clz32(Number(v));
}

/** The number of trailing zero bits of v > 0. */
function trailingZeros(v: bigint): number {
  let n = 0;
  for (; (v & 0xffffffffn) === 0n; v >>= 32n) n += 32;
  const low = Number(v & 0xffffffffn);
  return n + 31 - Math.clz32(low & -low);
}

/** The number of set bits of v >= 0, 32 bits at a time. */
function popCount(v: bigint): number {
  let n = 0;
  for (; v > 0n; v >>= 32n) {
    let x = Number(v & 0xffffffffn);
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    n += Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
  }
  return n;
}

/** Canonical text of one address (dotted quad, or RFC 5952 for IPv6). */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 4) {
    // Dotted quad by arithmetic: what ipaddr.js prints, without building its objects (the
    // checker formats every CIDR it describes; this was a quarter of check's time at 1,000 hosts).
    const n = Number(value);
    return `${Math.floor(n / 16777216) % 256}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
  }
  // RFC 5952 by arithmetic, as ipaddr.js's toRFC5952String prints it (a property test holds it
  // to ipaddr.js, __tests__/core.test.ts): eight groups in lower-case hex without leading zeros,
  // the longest run of at least two zero groups (the first of equal runs) written "::".
  const groups = new Array<number>(8);
  let v = value;
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  let run = -1;
  let runLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > runLength) {
      run = i;
      runLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return run < 0 ? hex(0, 8) : `${hex(0, run)}::${hex(run + runLength, 8)}`;
}

/**
 * The value of a dotted quad in the strict form ipaddr.js's `IPv4.isValidFourPartDecimal`
 * accepts (four decimal octets 0–255, no leading zeros, nothing else), or -1 for any other
 * text. One pass over the characters: the checker parses every address of every rule of every
 * host, and ipaddr.js's regular expressions and objects were a tenth of check's time at 1,000
 * hosts. A property test holds it to ipaddr.js (__tests__/core.test.ts).
 * @internal
 */
export function dottedQuadValue(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return -1; // a leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  return digits > 0 && dots === 3 ? value * 256 + octet : -1;
}

/** Parse one address (no mask) strictly; returns its family and numeric value. */
export function parseAddress(text: string): { family: Family; value: bigint } {
  requireLiteral(text, 'The address', '"192.0.2.10"');
  const trimmed = text.trim();
  const quad = dottedQuadValue(trimmed);
  if (quad >= 0) return { family: 4, value: BigInt(quad) };
  if (ipaddr.IPv6.isValid(trimmed) && !trimmed.includes('%')) {
    return { family: 6, value: bytesToBigInt(ipaddr.IPv6.parse(trimmed).toByteArray()) };
  }
  throw new TwinwallError('CIDR_INVALID', {
    value: text,
    problem: `${show(text)} is not an IPv4 address in dotted-quad form or an IPv6 address.`,
    fix: 'write a literal address such as "192.0.2.10" or "2001:db8::10".',
  });
}

/**
 * One CIDR block, validated strictly: a prefix length is required, host bits must be zero, the
 * family must be the expected one. `text` is the canonical spelling (RFC 5952 for IPv6).
 */
export class Cidr {
  /** Parse an IPv4 or IPv6 CIDR, e.g. "198.51.100.0/24" or "2001:db8::/32". */
  public static of(text: string): Cidr {
    return Cidr.parse(text);
  }

  /** Parse a CIDR that must be IPv4. */
  public static ipv4(text: string): Cidr {
    return Cidr.parse(text, 4);
  }

  /** Parse a CIDR that must be IPv6. */
  public static ipv6(text: string): Cidr {
    return Cidr.parse(text, 6);
  }

  /** A single host: "192.0.2.10" → 192.0.2.10/32, "2001:db8::10" → /128. */
  public static host(address: string): Cidr {
    const { family, value } = parseAddress(address);
    return new Cidr(family, value, BITS[family]);
  }

  /** 0.0.0.0/0 */
  public static anyIpv4(): Cidr {
    return new Cidr(4, 0n, 0);
  }

  /** ::/0 */
  public static anyIpv6(): Cidr {
    return new Cidr(6, 0n, 0);
  }

  /**
   * Build from numbers; the caller guarantees the host bits are zero.
   * @internal
   */
  public static fromParts(family: Family, network: bigint, prefix: number): Cidr {
    const bits = BITS[family];
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
      throw new RangeError(`prefix ${prefix} out of range for ${familyName(family)}`);
    }
    const hostMask = (1n << BigInt(bits - prefix)) - 1n;
    if ((network & hostMask) !== 0n || network < 0n || network >> BigInt(bits) !== 0n) {
      throw new RangeError(`network ${network} has host bits set for /${prefix}`);
    }
    return new Cidr(family, network, prefix);
  }

  private static parse(text: string, expect?: Family): Cidr {
    if (typeof text !== 'string') {
      throw new TwinwallError('CIDR_INVALID', {
        value: text,
        problem: `${show(text)} is not a CIDR string.`,
        fix: 'pass a string such as "198.51.100.0/24" or "2001:db8::/32".',
      });
    }
    requireLiteral(text, 'The CIDR', '"10.0.0.0/16"');
    const trimmed = text.trim();
    const slash = trimmed.indexOf('/');
    if (slash < 0) {
      const asAddress = (() => {
        try {
          return parseAddress(trimmed);
        } catch {
          return undefined;
        }
      })();
      const suggestion = asAddress ? `"${trimmed}/${BITS[asAddress.family]}" for that one host, or the network it belongs to` : '"198.51.100.0/24"';
      throw new TwinwallError('CIDR_NO_MASK', {
        value: text,
        problem: `${show(text)} has no prefix length; twinwall never guesses one.`,
        fix: `write the mask explicitly, e.g. ${suggestion}.`,
      });
    }
    const addrText = trimmed.slice(0, slash);
    const prefixText = trimmed.slice(slash + 1);
    const { family, value } = parseAddress(addrText);
    const bits = BITS[family];
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw new TwinwallError('CIDR_INVALID', {
        value: text,
        problem: `${show(text)} has prefix length ${show(prefixText)}, but an ${familyName(family)} prefix is an integer from 0 to ${bits}.`,
        fix: `use a prefix length between 0 and ${bits}.`,
      });
    }
    const prefix = Number(prefixText);
    if (expect !== undefined && family !== expect) {
      throw new TwinwallError('FAMILY_MISMATCH', {
        value: text,
        problem: `${show(text)} is an ${familyName(family)} CIDR where an ${familyName(expect)} CIDR is expected.`,
        fix: expect === 4 ? 'use Cidr.ipv6()/Peer.ipv6() for IPv6 networks, or give the IPv4 network here.' : 'use Cidr.ipv4()/Peer.ipv4() for IPv4 networks, or give the IPv6 network here.',
      });
    }
    const hostMask = (1n << BigInt(bits - prefix)) - 1n;
    if ((value & hostMask) !== 0n) {
      const network = formatAddress(family, value & ~hostMask);
      throw new TwinwallError('CIDR_HOST_BITS', {
        value: text,
        problem: `${show(text)} has host bits set: its /${prefix} network is ${network}/${prefix}.`,
        fix: `write "${network}/${prefix}" for the whole network, or "${formatAddress(family, value)}/${bits}" for the single host.`,
      });
    }
    return new Cidr(family, value, prefix);
  }

  public readonly family: Family;
  public readonly network: bigint;
  public readonly prefix: number;
  /** Canonical spelling, e.g. "2001:db8::/32". */
  public readonly text: string;

  private constructor(family: Family, network: bigint, prefix: number) {
    this.family = family;
    this.network = network;
    this.prefix = prefix;
    this.text = `${formatAddress(family, network)}/${prefix}`;
    Object.freeze(this);
  }

  /** First address in the block. */
  public get first(): bigint {
    return this.network;
  }

  /** Last address in the block. */
  public get last(): bigint {
    return this.network + (1n << BigInt(BITS[this.family] - this.prefix)) - 1n;
  }

  /** True for 0.0.0.0/0 and ::/0. */
  public get isAny(): boolean {
    return this.prefix === 0;
  }

  public contains(other: Cidr): boolean {
    return other.family === this.family && other.first >= this.first && other.last <= this.last;
  }

  public toString(): string {
    return this.text;
  }
}

/** [first, last], inclusive. */
export type Interval = readonly [bigint, bigint];

/**
 * A set of addresses of one family: an `IntervalSet` (lib/intervals.ts) of address values, kept
 * canonical (sorted, disjoint, non-adjacent), so two sets holding the same addresses are
 * structurally equal and have the same `key`.
 */
export class AddressSet {
  public static empty(family: Family): AddressSet {
    return new AddressSet(family, IntervalSet.EMPTY);
  }

  public static of(family: Family, cidrs: Iterable<Cidr>): AddressSet {
    const intervals: Interval[] = [];
    for (const c of cidrs) {
      if (c.family !== family) throw new RangeError(`${c.text} is not IPv${family}`);
      intervals.push([c.first, c.last]);
    }
    return new AddressSet(family, IntervalSet.from(intervals));
  }

  /** A set from inclusive [first, last] intervals (any order, overlaps allowed). */
  public static fromIntervals(family: Family, intervals: readonly Interval[]): AddressSet {
    for (const [a, b] of intervals) AddressSet.within(family, a, b);
    return new AddressSet(family, IntervalSet.from(intervals));
  }

  /** A set from an `IntervalSet` of address values, as it is (already canonical: nothing to sort). */
  public static fromSet(family: Family, set: IntervalSet): AddressSet {
    if (!set.isEmpty) AddressSet.within(family, set.first, set.last);
    return new AddressSet(family, set);
  }

  /** Throws unless [a, b] is an interval of the family's addresses. */
  private static within(family: Family, a: bigint, b: bigint): void {
    if (a < 0n || b > (1n << BigInt(BITS[family])) - 1n || a > b) throw new RangeError(`interval ${a}-${b} is not within IPv${family}`);
  }

  public readonly family: Family;
  private readonly set: IntervalSet;

  private constructor(family: Family, set: IntervalSet) {
    this.family = family;
    this.set = set;
  }

  /** The addresses as sorted, disjoint, non-adjacent inclusive intervals. */
  public get intervals(): readonly Interval[] {
    return this.set.intervals;
  }

  public get isEmpty(): boolean {
    return this.set.isEmpty;
  }

  /** A string that is equal for equal sets. */
  public get key(): string {
    return `${this.family}:${this.set.key}`;
  }

  public equals(other: AddressSet): boolean {
    return this.family === other.family && this.set.equals(other.set);
  }

  public contains(address: bigint): boolean {
    return this.set.has(address);
  }

  public intersects(other: AddressSet): boolean {
    return !this.intersect(other).isEmpty;
  }

  public union(other: AddressSet): AddressSet {
    this.sameFamily(other);
    return new AddressSet(this.family, this.set.union(other.set));
  }

  public intersect(other: AddressSet): AddressSet {
    this.sameFamily(other);
    return new AddressSet(this.family, this.set.intersect(other.set));
  }

  public subtract(other: AddressSet): AddressSet {
    this.sameFamily(other);
    return new AddressSet(this.family, this.set.subtract(other.set));
  }

  /**
   * The blocks of the minimal CIDR cover of this set, in address order, handed to `visit` until
   * it returns false: the one cover (toCidrs; cidrCount counts its blocks by arithmetic).
   */
  private cover(visit: (network: bigint, prefix: number) => boolean): void {
    const bits = BITS[this.family];
    for (const [first, last] of this.intervals) {
      let lo = first;
      while (lo <= last) {
        // log2 of the block size: as large as lo's alignment (its trailing zero bits) and the
        // room left before `last` allow.
        const aligned = lo === 0n ? bits : trailingZeros(lo);
        const room = bitLength(last - lo + 1n) - 1;
        const size = Math.min(aligned, room, bits);
        if (!visit(lo, bits - size)) return;
        lo += 1n << BigInt(size);
      }
    }
  }

  /** The minimal list of CIDR blocks covering exactly this set, in address order (the first `limit` of them). */
  public toCidrs(limit = Infinity): Cidr[] {
    const out: Cidr[] = [];
    this.cover((network, prefix) => {
      if (out.length >= limit) return false;
      out.push(Cidr.fromParts(this.family, network, prefix));
      return true;
    });
    return out;
  }

  /**
   * How many blocks `toCidrs()` returns, counted by arithmetic instead of walking the cover: an
   * interval [lo, hi] splits where lo and hi first differ (bit k-1), at m = hi with its low k-1
   * bits cleared; the blocks below m are the set bits of m - lo (growing from lo), those from m
   * up the set bits of hi + 1 - m (shrinking), and two halves of 2^(k-1) each are one block.
   * The cover of "any IPv6 but one address" has 128 blocks; this counts them in a few steps. A
   * property test holds it to `toCidrs().length` (__tests__/core.test.ts).
   */
  public get cidrCount(): number {
    let count = 0;
    for (const [lo, hi] of this.intervals) {
      if (lo === hi) {
        count++;
        continue;
      }
      const k = BigInt(bitLength(lo ^ hi) - 1);
      const m = (hi >> k) << k;
      const below = m - lo;
      const above = hi + 1n - m;
      const half = 1n << k;
      count += below === half && above === half ? 1 : popCount(below) + popCount(above);
    }
    return count;
  }

  private sameFamily(other: AddressSet): void {
    if (other.family !== this.family) throw new RangeError(`cannot combine IPv${this.family} and IPv${other.family} sets`);
  }
}

/** The canonical order of CIDRs: family, network address, prefix length. */
export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefix - b.prefix;
}
