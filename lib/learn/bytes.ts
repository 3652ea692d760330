/**
 * Reading log lines as bytes: learn's parsers look at the bytes of a line in the buffer it was
 * read into, so a line costs no string and no object unless something of it is kept (a sample
 * line, a new host name, an unreadable value in a report). Only ASCII has meaning to them: a byte
 * of 0x80 or above is never a digit, a separator or part of a keyword.
 */

/** ASCII whitespace (space, tab, line feed, vertical tab, form feed, carriage return). */
export function isSpace(b: number): boolean {
  return b === 32 || (b >= 9 && b <= 13);
}

export function isDigit(b: number): boolean {
  return b >= 48 && b <= 57;
}

/** True when every byte of [start, end) is ASCII. */
export function isAscii(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] >= 0x80) return false;
  return true;
}

/** True when [start, end) holds exactly the ASCII text `word`. */
export function bytesEqual(buf: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}

/** True when [start, end) begins with the ASCII text `word`. */
export function startsWith(buf: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start < word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}

/** Index of the ASCII text `word` in [start, end), or -1. */
export function indexOfWord(buf: Uint8Array, start: number, end: number, word: string): number {
  const first = word.charCodeAt(0);
  const last = end - word.length;
  outer: for (let i = start; i <= last; i++) {
    if (buf[i] !== first) continue;
    for (let j = 1; j < word.length; j++) if (buf[i + j] !== word.charCodeAt(j)) continue outer;
    return i;
  }
  return -1;
}

/**
 * The decimal number written in [start, end) when it is only digits (as /^\d+$/ and Number()
 * read it), else -1. Up to 15 digits are summed exactly; longer runs go through Number().
 */
export function digits(buf: Uint8Array, start: number, end: number): number {
  if (end <= start) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b < 48 || b > 57) return -1;
    v = v * 10 + (b - 48);
  }
  return end - start <= 15 ? v : Number(latin1(buf, start, end));
}

/**
 * `digits.digits` as Number() reads it: the digits without the point as one integer (exact below
 * 2^53), divided by the power of ten — one correctly rounded division, as Number() rounds. NaN
 * when it is not that shape.
 */
export function decimal(buf: Uint8Array, start: number, end: number): number {
  let v = 0;
  let point = -1;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 46 && point < 0 && i > start && i < end - 1) point = i;
    else if (b >= 48 && b <= 57) v = v * 10 + (b - 48);
    else return NaN;
  }
  if (point < 0) return NaN;
  if (end - start - 1 > 15) return Number(latin1(buf, start, end));
  return v / 10 ** (end - point - 1);
}

/** An ASCII (or Latin-1) slice as a string. */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/** A UTF-8 slice as a string (invalid sequences become U+FFFD, as a stream decoder makes them). */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

/**
 * A dotted quad written in [start, end), as learn reads it (four decimal octets of up to three
 * digits, none above 255, no leading zero): the address as an unsigned 32-bit number, or -1.
 */
export function ipv4(buf: Uint8Array, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let len = 0;
  let dots = 0;
  let lead = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 46) {
      if (len === 0 || octet > 255 || (len > 1 && lead === 48) || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      len = 0;
    } else if (b >= 48 && b <= 57) {
      if (len === 0) lead = b;
      if (++len > 3) return -1;
      octet = octet * 10 + (b - 48);
    } else return -1;
  }
  if (dots !== 3 || len === 0 || octet > 255 || (len > 1 && lead === 48)) return -1;
  return value * 256 + octet;
}

/** FNV-1a of [start, end), for the interner. */
function hash(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

/**
 * Byte strings → values, without making a string to look one up: host names, interface ids,
 * IPv6 addresses, flow-log actions are looked up here by their bytes, and a value is made (by
 * `make`) only for a byte string not seen before. The keys live in one growing byte arena (no
 * object per key). Bounded: past `limit` entries it starts over, so a log of endless distinct
 * values costs memory for `limit` of them only.
 */
export class ByteInterner<T> {
  private arena = new Uint8Array(4096);
  private used = 0;
  private starts: Int32Array;
  private lengths: Int32Array;
  private values: T[] = [];
  private readonly table: Int32Array;
  private readonly mask: number;

  public constructor(
    private readonly make: (buf: Uint8Array, start: number, end: number) => T,
    private readonly limit = 4096,
  ) {
    let size = 16;
    while (size < limit * 2) size <<= 1;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.starts = new Int32Array(limit);
    this.lengths = new Int32Array(limit);
  }

  public get(buf: Uint8Array, start: number, end: number): T {
    const len = end - start;
    const h = hash(buf, start, end);
    let slot = h & this.mask;
    for (;;) {
      const index = this.table[slot];
      if (index < 0) break;
      if (this.lengths[index] === len) {
        const at = this.starts[index];
        const arena = this.arena;
        let i = 0;
        while (i < len && arena[at + i] === buf[start + i]) i++;
        if (i === len) return this.values[index];
      }
      slot = (slot + 1) & this.mask;
    }
    const value = this.make(buf, start, end);
    if (this.values.length >= this.limit) {
      this.values = [];
      this.used = 0;
      this.table.fill(-1);
      slot = h & this.mask;
    }
    if (this.used + len > this.arena.length) {
      let size = this.arena.length;
      while (size < this.used + len) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.arena.subarray(0, this.used));
      this.arena = grown;
    }
    const index = this.values.length;
    this.arena.set(buf.subarray(start, end), this.used);
    this.starts[index] = this.used;
    this.lengths[index] = len;
    this.used += len;
    this.table[slot] = index;
    this.values.push(value);
    return value;
  }
}
