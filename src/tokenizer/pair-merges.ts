/**
 * Which adjacent token pairs merge, into what, and in which order: from a ranked merge list
 * (byte-level BPE: GPT-2, Qwen, Llama 3) or from token scores (SentencePiece BPE: any pair
 * whose concatenation is a token merges, the higher its score the earlier).
 */
import type { StringTable } from "../formats/string-table.js";
import type { VocabIndex } from "./vocab-index.js";

export interface PairMerges {
  /** The token a followed by b merges into, or -1; sets `rank` (lower merges first). */
  lookup(a: number, b: number): number;
  rank: number;
}

function pairHash(a: number, b: number): number {
  const h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  return h ^ (h >>> 16);
}

/**
 * A merge list ("left right" per entry, highest priority first): the merges that can apply,
 * densely in list order (an entry's index is its rank), found through an open-addressing
 * table of entry indices. Qwen's 151k merges take ~2.7 MiB (four slot-sized arrays took 4).
 */
export class RankedMerges implements PairMerges {
  rank = 0;
  /** Entry index + 1 per slot, 0 for empty. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly merged: Int32Array;

  constructor(merges: StringTable, vocab: VocabIndex) {
    let size = 16;
    while (size < merges.length * 1.6) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(size);
    const left = new Int32Array(merges.length),
      right = new Int32Array(merges.length),
      merged = new Int32Array(merges.length);
    let count = 0;
    const { bytes, starts, ends } = merges;
    let joined = new Uint8Array(64);
    for (let r = 0; r < merges.length; r++) {
      const s = starts[r]!,
        e = ends[r]!;
      let sp = s + 1; // the separating space (a token cannot be empty, so not at s)
      while (sp < e && bytes[sp] !== 0x20) sp++;
      if (sp >= e) continue;
      const a = vocab.find(bytes, s, sp),
        b = vocab.find(bytes, sp + 1, e);
      if (a < 0 || b < 0) continue;
      const n = e - s - 1;
      if (joined.length < n) joined = new Uint8Array(2 * n);
      for (let k = s; k < sp; k++) joined[k - s] = bytes[k]!;
      for (let k = sp + 1; k < e; k++) joined[k - s - 1] = bytes[k]!;
      const m = vocab.find(joined, 0, n);
      if (m < 0) continue; // the merged token is not in the vocabulary: the merge can never apply
      let i = pairHash(a, b) & this.mask;
      for (let k; (k = this.slots[i]!) !== 0 && !(left[k - 1] === a && right[k - 1] === b);)
        i = (i + 1) & this.mask;
      if (this.slots[i] !== 0) continue; // a repeated pair keeps its first (highest) rank
      left[count] = a;
      right[count] = b;
      merged[count] = m;
      this.slots[i] = ++count;
    }
    this.left = left.slice(0, count);
    this.right = right.slice(0, count);
    this.merged = merged.slice(0, count);
  }

  lookup(a: number, b: number): number {
    let i = pairHash(a, b) & this.mask;
    for (;;) {
      const k = this.slots[i]! - 1;
      if (k < 0) return -1;
      if (this.left[k] === a && this.right[k] === b) {
        this.rank = k;
        return this.merged[k]!;
      }
      i = (i + 1) & this.mask;
    }
  }
}

/** SentencePiece BPE: a pair merges if its concatenation is a token; higher scores first. */
export class ScoredMerges implements PairMerges {
  rank = 0;
  constructor(
    private readonly vocab: VocabIndex,
    private readonly scores: Float32Array | undefined,
  ) {}

  lookup(a: number, b: number): number {
    const m = this.vocab.findConcat(a, b);
    if (m >= 0) this.rank = -(this.scores?.[m] ?? 0);
    return m;
  }
}
