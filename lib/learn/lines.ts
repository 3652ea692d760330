/**
 * Bytes in chunks split anywhere → lines, each handed over as a range of a buffer: the range of
 * the chunk itself when the line lies within it, a copy only for the one line that straddles two
 * chunks. Every byte is looked at once (the newline search is the buffer's own indexOf), so the
 * time is linear in the input, however long its lines.
 */
export class LineSplitter {
  private carry = new Uint8Array(1024);
  private carried = 0;

  public constructor(private readonly line: (buf: Uint8Array, start: number, end: number) => void) {}

  /** Take the next chunk; calls `line` for every line it completes (without its "\n"). */
  public push(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      const nl = chunk.indexOf(10, pos);
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
