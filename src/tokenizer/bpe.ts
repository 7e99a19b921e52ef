/**
 * BPE merging over token ids with a heap of adjacent pairs: O(n log n) per piece, so a long
 * run of characters without a pre-tokenizer split (SentencePiece text, digits, base64)
 * stays fast. Scratch arrays are reused across pieces: encoding a long prompt allocates
 * almost nothing.
 */
import type { PairMerges } from "./pair-merges.js";

const DEAD = -2;

export class BpeMerger {
  /** The piece's symbols (token ids; -1 for a symbol outside the vocabulary, which never merges). */
  sym = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  // Heap of candidate merges, ordered by (rank, left position).
  private hRank = new Float64Array(192);
  private hPos = new Int32Array(192);
  private hLeft = new Int32Array(192);
  private hRight = new Int32Array(192);
  private hMerged = new Int32Array(192);
  private hSize = 0;

  constructor(private readonly merges: PairMerges) {}

  /** Makes room for a piece of n symbols (call before filling `sym`). */
  reserve(n: number): void {
    if (this.sym.length >= n) return;
    const cap = Math.max(n, 2 * this.sym.length);
    this.sym = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    const h = 3 * cap;
    this.hRank = new Float64Array(h);
    this.hPos = new Int32Array(h);
    this.hLeft = new Int32Array(h);
    this.hRight = new Int32Array(h);
    this.hMerged = new Int32Array(h);
  }

  /** Merges `sym[0, n)` and calls `emit` with each resulting symbol in order. */
  merge(n: number, emit: (sym: number, index: number) => void): void {
    const { sym, prev, next } = this;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    this.hSize = 0;
    for (let i = 0; i + 1 < n; i++) this.consider(i);
    while (this.hSize) {
      const l = this.hPos[0]!,
        a = this.hLeft[0]!,
        b = this.hRight[0]!,
        m = this.hMerged[0]!;
      this.pop();
      const r = next[l]!;
      // Stale candidates: a side changed since the pair was queued. A position's id only
      // ever changes to a longer token, and its right neighbour only when it merges, so the
      // two ids identify the pair.
      if (r < 0 || sym[l] !== a || sym[r] !== b) continue;
      sym[l] = m;
      sym[r] = DEAD;
      next[l] = next[r]!;
      if (next[r]! >= 0) prev[next[r]!] = l;
      if (prev[l]! >= 0) this.consider(prev[l]!);
      this.consider(l);
    }
    for (let i = 0; i >= 0; i = next[i]!) emit(sym[i]!, i);
  }

  private consider(l: number): void {
    const r = this.next[l]!;
    if (r < 0) return;
    const a = this.sym[l]!,
      b = this.sym[r]!;
    if (a < 0 || b < 0) return;
    const m = this.merges.lookup(a, b);
    if (m < 0) return;
    this.push(this.merges.rank, l, a, b, m);
  }

  private less(i: number, j: number): boolean {
    const ri = this.hRank[i]!,
      rj = this.hRank[j]!;
    return ri < rj || (ri === rj && this.hPos[i]! < this.hPos[j]!);
  }

  private swap(i: number, j: number): void {
    const { hRank, hPos, hLeft, hRight, hMerged } = this;
    let t: number = hRank[i]!;
    hRank[i] = hRank[j]!;
    hRank[j] = t;
    t = hPos[i]!;
    hPos[i] = hPos[j]!;
    hPos[j] = t;
    t = hLeft[i]!;
    hLeft[i] = hLeft[j]!;
    hLeft[j] = t;
    t = hRight[i]!;
    hRight[i] = hRight[j]!;
    hRight[j] = t;
    t = hMerged[i]!;
    hMerged[i] = hMerged[j]!;
    hMerged[j] = t;
  }

  private push(rank: number, pos: number, a: number, b: number, m: number): void {
    let i = this.hSize++;
    this.hRank[i] = rank;
    this.hPos[i] = pos;
    this.hLeft[i] = a;
    this.hRight[i] = b;
    this.hMerged[i] = m;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private pop(): void {
    const last = --this.hSize;
    if (last === 0) return;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let m = i;
      if (l < last && this.less(l, m)) m = l;
      if (r < last && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
