/**
 * A read-only list of UTF-8 strings kept as bytes. A 150k-token vocabulary costs its bytes
 * plus two offsets per string, instead of 150k heap strings (and the young-generation
 * churn of creating them at load); read from a GGUF file it views the mapped header
 * without copying (`compact` makes a copy of its own, without the file's length prefixes).
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
    const total = parts.reduce((a, p) => a + p.length, 0);
    const bytes = new Uint8Array(total);
    const starts = new Uint32Array(parts.length),
      ends = new Uint32Array(parts.length);
    let o = 0;
    parts.forEach((p, i) => {
      bytes.set(p, o);
      starts[i] = o;
      o += p.length;
      ends[i] = o;
    });
    return new StringTable(bytes, starts, ends);
  }

  /** The same strings in bytes of their own, back to back. */
  compact(): StringTable {
    const n = this.starts.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += this.ends[i]! - this.starts[i]!;
    const bytes = new Uint8Array(total);
    const starts = new Uint32Array(n),
      ends = new Uint32Array(n);
    const src = this.bytes;
    let o = 0;
    for (let i = 0; i < n; i++) {
      starts[i] = o;
      for (let k = this.starts[i]!, e = this.ends[i]!; k < e; k++) bytes[o++] = src[k]!;
      ends[i] = o;
    }
    return new StringTable(bytes, starts, ends);
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
