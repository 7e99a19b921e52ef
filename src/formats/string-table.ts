/**
 * A read-only list of UTF-8 strings kept as bytes. A 150k-token vocabulary costs its bytes
 * plus two offsets per string, instead of 150k heap strings (and the young-generation
 * churn of creating them at load); read from a GGUF file it views the mapped header
 * without copying (`compact` makes a copy of its own, without the file's length prefixes,
 * whose strings share one array of offsets).
 */
export class StringTable implements Iterable<string> {
  private static readonly decoder = new TextDecoder("utf-8", { fatal: false });

  /** String i is `bytes[starts[i], ends[i])`. */
  constructor(
    readonly bytes: Uint8Array,
    readonly starts: Uint32Array,
    readonly ends: Uint32Array,
  ) {
    if (starts.length !== ends.length) throw new Error("StringTable: starts and ends differ in length");
  }

  static from(strings: Iterable<string>): StringTable {
    const enc = new TextEncoder();
    const parts = Array.from(strings, (s) => enc.encode(s));
    const bytes = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    return StringTable.backToBack(
      bytes,
      parts.length,
      (i) => parts[i]!.length,
      (i, at) => bytes.set(parts[i]!, at),
    );
  }

  /** The same strings in bytes of their own, back to back. */
  compact(): StringTable {
    let total = 0;
    for (let i = 0; i < this.length; i++) total += this.ends[i]! - this.starts[i]!;
    const bytes = new Uint8Array(total),
      src = this.bytes;
    return StringTable.backToBack(
      bytes,
      this.length,
      (i) => this.ends[i]! - this.starts[i]!,
      (i, at) => bytes.set(src.subarray(this.starts[i], this.ends[i]), at),
    );
  }

  /**
   * n strings written back to back into bytes: string i ends where string i + 1 starts, so
   * starts and ends are two views of one array of n + 1 offsets.
   */
  private static backToBack(
    bytes: Uint8Array,
    n: number,
    length: (i: number) => number,
    write: (i: number, at: number) => void,
  ): StringTable {
    const offsets = new Uint32Array(n + 1);
    for (let i = 0; i < n; i++) {
      write(i, offsets[i]!);
      offsets[i + 1] = offsets[i]! + length(i);
    }
    return new StringTable(bytes, offsets.subarray(0, n), offsets.subarray(1));
  }

  get length(): number {
    return this.starts.length;
  }

  /** The UTF-8 bytes of string i (a view, not a copy). */
  bytesAt(i: number): Uint8Array {
    return this.bytes.subarray(this.starts[i], this.ends[i]);
  }

  /** String i, decoded (invalid UTF-8 becomes U+FFFD). */
  at(i: number): string | undefined {
    if (!(i >= 0 && i < this.starts.length)) return undefined;
    return StringTable.decoder.decode(this.bytesAt(i));
  }

  *[Symbol.iterator](): Iterator<string> {
    for (let i = 0; i < this.starts.length; i++) yield this.at(i)!;
  }
}
