/**
 * Bytes in chunks split anywhere → lines, each handed over as a range of a buffer: the range of
 * the chunk itself when the line lies within it, a copy only for the one line that straddles two
 * chunks. Every byte is looked at once (the newline search is the buffer's own indexOf), so the
 * time is linear in the input, however long its lines.
 *
 * A line longer than `maxBytes` is never parsed and never held: the first bytes are kept for the
 * report, the rest is skipped up to the next newline, so one endless line costs `maxBytes` of
 * memory, not its length.
 */

/** Bytes of an over-long line kept to show in a report. */
const SHOWN = 1200;

export class LineSplitter {
  private carry = new Uint8Array(1024);
  private carried = 0;
  /** Inside an over-long line, skipping to its end. */
  private skipping = false;

  public constructor(
    private readonly maxBytes: number,
    private readonly line: (buf: Uint8Array, start: number, end: number) => void,
    /** An over-long line, with its first bytes. */
    private readonly tooLong: (head: Uint8Array) => void,
  ) {}

  /** Take the next chunk; calls `line` for every line it completes (without its "\n"). */
  public push(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      const nl = chunk.indexOf(10, pos);
      if (this.skipping) {
        if (nl < 0) return;
        this.skipping = false;
        pos = nl + 1;
        continue;
      }
      const end = nl < 0 ? n : nl;
      if (this.carried + (end - pos) > this.maxBytes) {
        // Too long: report its head, drop what is held, skip the rest.
        const head = new Uint8Array(Math.min(SHOWN, this.carried + (end - pos)));
        head.set(this.carry.subarray(0, Math.min(this.carried, head.length)));
        if (this.carried < head.length) head.set(chunk.subarray(pos, pos + head.length - this.carried), this.carried);
        this.carried = 0;
        this.tooLong(head);
        if (nl < 0) {
          this.skipping = true;
          return;
        }
        pos = nl + 1;
        continue;
      }
      if (nl < 0) {
        this.keep(chunk, pos, n);
        return;
      }
      if (this.carried > 0) {
        this.keep(chunk, pos, nl);
        const len = this.carried;
        this.carried = 0;
        this.line(this.carry, 0, len);
      } else this.line(chunk, pos, nl);
      pos = nl + 1;
    }
  }

  /** The end of the input: the last line, when it has no "\n". */
  public end(): void {
    if (this.carried > 0) {
      const len = this.carried;
      this.carried = 0;
      this.line(this.carry, 0, len);
    }
    this.skipping = false;
  }

  private keep(chunk: Uint8Array, start: number, end: number): void {
    const need = this.carried + (end - start);
    if (need > this.carry.length) {
      let size = this.carry.length;
      while (size < need) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.carry.subarray(0, this.carried));
      this.carry = grown;
    }
    this.carry.set(chunk.subarray(start, end), this.carried);
    this.carried = need;
  }
}
