/**
 * Token bytes -> id over a StringTable: open addressing in one Int32Array, so a 150k
 * vocabulary costs ~1 MiB here instead of a Map with a heap string per token. Lookups hash
 * the bytes in place (no string is built to ask).
 */
import type { StringTable } from "../formats/string-table.js";

export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h ^ (h >>> 15);
}

export class VocabIndex {
  /** id + 1 per slot, 0 for empty. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private scratch = new Uint8Array(256);
  private readonly encoder = new TextEncoder();

  constructor(readonly table: StringTable) {
    let size = 16;
    while (size < table.length * 1.6) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    const { bytes, starts, ends } = table;
    for (let id = 0; id < table.length; id++) {
      const s = starts[id]!,
        e = ends[id]!;
      let i = hashBytes(bytes, s, e) & this.mask;
      for (;;) {
        const v = this.slots[i]!;
        if (v === 0) {
          this.slots[i] = id + 1;
          break;
        }
        if (this.same(v - 1, bytes, s, e)) break; // duplicate string: the first id keeps it
        i = (i + 1) & this.mask;
      }
    }
  }

  private same(id: number, b: Uint8Array, start: number, end: number): boolean {
    const { bytes, starts, ends } = this.table;
    const s = starts[id]!;
    if (ends[id]! - s !== end - start) return false;
    for (let k = 0; k < end - start; k++) if (bytes[s + k] !== b[start + k]) return false;
    return true;
  }

  /** The id of the token whose bytes are `b[start, end)`, or -1. */
  find(b: Uint8Array, start: number, end: number): number {
    let i = hashBytes(b, start, end) & this.mask;
    for (;;) {
      const v = this.slots[i]!;
      if (v === 0) return -1;
      if (this.same(v - 1, b, start, end)) return v - 1;
      i = (i + 1) & this.mask;
    }
  }

  /** The id of the token spelled `s`, or -1. */
  findString(s: string): number {
    if (this.scratch.length < s.length * 3) this.scratch = new Uint8Array(s.length * 3);
    const { written } = this.encoder.encodeInto(s, this.scratch);
    return this.find(this.scratch, 0, written);
  }

  /** The id of the token whose bytes are token a's then token b's, or -1. */
  findConcat(a: number, b: number): number {
    const { bytes, starts, ends } = this.table;
    const la = ends[a]! - starts[a]!,
      lb = ends[b]! - starts[b]!;
    if (this.scratch.length < la + lb) this.scratch = new Uint8Array(2 * (la + lb));
    const out = this.scratch;
    for (let k = 0, s = starts[a]!; k < la; k++) out[k] = bytes[s + k]!;
    for (let k = 0, s = starts[b]!; k < lb; k++) out[la + k] = bytes[s + k]!;
    return this.find(out, 0, la + lb);
  }
}
