/**
 * Guesses the tokens that come next by finding the context's last few tokens earlier in
 * it and copying what followed them there ("prompt lookup"): an agent's model quotes the
 * files, tool output and its own earlier answers that its transcript holds, and a model
 * caught in a loop repeats itself. The guesses are verified in one forward pass
 * (speculative decoding), so a wrong one costs time, never output.
 */

/** n-gram lengths matched, longest first. */
export const MIN_NGRAM = 2;
export const MAX_NGRAM = 4;

export interface Draft {
  tokens: number[];
  /** Length of the n-gram that matched (MIN_NGRAM..MAX_NGRAM). */
  n: number;
}

export class NgramDrafter {
  private readonly tokens: number[] = [];
  /** Per n-gram length: hash of the n tokens ending at e -> the latest such e that a token follows. */
  private readonly index: Map<number, number>[] = [];

  constructor(tokens: Iterable<number> = []) {
    for (let n = MIN_NGRAM; n <= MAX_NGRAM; n++) this.index.push(new Map());
    for (const t of tokens) this.push(t);
  }

  get length(): number {
    return this.tokens.length;
  }

  push(token: number): void {
    const t = this.tokens;
    t.push(token);
    // The n-grams ending just before the new token now have a follower: index them.
    const e = t.length - 2;
    for (let n = MIN_NGRAM; n <= MAX_NGRAM && e - n + 1 >= 0; n++)
      this.index[n - MIN_NGRAM]!.set(this.hash(e, n), e);
  }

  /**
   * Up to `max` tokens guessed to follow the context, from the latest earlier occurrence
   * of its longest matching suffix; null when none of its last MIN_NGRAM.. tokens recur.
   */
  draft(max: number): Draft | null {
    const t = this.tokens,
      last = t.length - 1;
    if (max <= 0) return null;
    for (let n = MAX_NGRAM; n >= MIN_NGRAM; n--) {
      if (last - n + 1 < 0) continue;
      const e = this.index[n - MIN_NGRAM]!.get(this.hash(last, n));
      if (e === undefined || !this.sameGram(e, last, n)) continue;
      // What followed there; past the end of the context, the guess itself (a repeat of
      // period last - e continues).
      const out: number[] = [];
      for (let m = 0; m < max; m++) {
        const j = e + 1 + m;
        out.push(j <= last ? t[j]! : out[j - last - 1]!);
      }
      return { tokens: out, n };
    }
    return null;
  }

  private sameGram(a: number, b: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (this.tokens[a - i] !== this.tokens[b - i]) return false;
    return true;
  }

  /** A hash of tokens e-n+1..e (collisions are caught by sameGram). */
  private hash(e: number, n: number): number {
    let h = n;
    for (let i = e - n + 1; i <= e; i++) h = Math.imul(h ^ this.tokens[i]!, 0x9e3779b1) + 0x7f4a7c15;
    return h | 0;
  }
}
