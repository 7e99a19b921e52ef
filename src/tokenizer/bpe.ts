/**
 * BPE merging with a heap over adjacent pairs: O(n log n) per piece, so a long run of
 * characters without a pre-tokenizer split (SentencePiece text, digits, base64) stays fast.
 */

/** Rank of merging `left` and `right` (lower merges first), or undefined if they never merge. */
export type PairRank = (left: string, right: string) => number | undefined;

interface Cand {
  rank: number;
  left: number;
  right: number;
  /** Ordering among equal ranks: the leftmost pair first. */
  pos: number;
  leftLen: number;
  rightLen: number;
}

function less(a: Cand, b: Cand): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.pos < b.pos);
}

class Heap {
  private a: Cand[] = [];
  get size() {
    return this.a.length;
  }
  push(c: Cand) {
    const a = this.a;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Cand {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Merges the symbols of one piece and returns the final symbols. */
export function bpeMerge(symbols: string[], rank: PairRank): string[] {
  const n = symbols.length;
  if (n < 2) return symbols;
  const sym = symbols.slice();
  const prev = Array.from({ length: n }, (_, i) => i - 1);
  const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const heap = new Heap();
  const consider = (l: number) => {
    const r = next[l]!;
    if (l < 0 || r < 0) return;
    const rk = rank(sym[l]!, sym[r]!);
    if (rk !== undefined)
      heap.push({ rank: rk, left: l, right: r, pos: l, leftLen: sym[l]!.length, rightLen: sym[r]!.length });
  };
  for (let i = 0; i + 1 < n; i++) consider(i);
  while (heap.size) {
    const c = heap.pop();
    const l = c.left,
      r = next[l]!;
    // Stale candidates: either side changed since the pair was queued.
    if (r !== c.right || sym[l]!.length !== c.leftLen || sym[r]!.length !== c.rightLen || sym[l] === "")
      continue;
    sym[l] = sym[l]! + sym[r]!;
    sym[r] = "";
    next[l] = next[r]!;
    if (next[r]! >= 0) prev[next[r]!] = l;
    if (prev[l]! >= 0) consider(prev[l]!);
    consider(l);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
  return out;
}
