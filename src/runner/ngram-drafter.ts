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
  /** Drawn from the reference, not the context. */
  reference?: boolean;
}

/** Token n-grams of a text, each found at its latest occurrence that a token follows. */
class NgramIndex {
  readonly tokens: number[] = [];
  /** Per n-gram length: hash of the n tokens ending at e -> the latest such e. */
  private readonly index: Map<number, number>[] = [];

  constructor(tokens: Iterable<number>) {
    for (let n = MIN_NGRAM; n <= MAX_NGRAM; n++) this.index.push(new Map());
    for (const t of tokens) this.push(t);
  }

  push(token: number): void {
    const t = this.tokens;
    t.push(token);
    // The n-grams ending just before the new token now have a follower: index them.
    const e = t.length - 2;
    for (let n = MIN_NGRAM; n <= MAX_NGRAM && e - n + 1 >= 0; n++)
      this.index[n - MIN_NGRAM]!.set(hash(t, e, n), e);
  }

  /** Where the last n tokens of `of` occur here, followed by a token; -1 if nowhere. */
  find(of: readonly number[], n: number): number {
    const last = of.length - 1;
    if (last - n + 1 < 0) return -1;
    const e = this.index[n - MIN_NGRAM]!.get(hash(of, last, n));
    if (e === undefined) return -1;
    for (let i = 0; i < n; i++) if (this.tokens[e - i] !== of[last - i]) return -1; // a hash collision
    return e;
  }
}

/** A hash of tokens e-n+1..e of t. */
function hash(t: readonly number[], e: number, n: number): number {
  let h = n;
  for (let i = e - n + 1; i <= e; i++) h = Math.imul(h ^ t[i]!, 0x9e3779b1) + 0x7f4a7c15;
  return h | 0;
}

export class NgramDrafter {
  private readonly context: NgramIndex;
  private reference: NgramIndex | null;

  /**
   * `reference`: a text the context may follow again without holding it, looked up first:
   * what the sequence's cache held past the prompt before this request (an answer to the
   * same prompt, when a request is retried or regenerated).
   */
  constructor(tokens: Iterable<number> = [], reference: readonly number[] = []) {
    this.context = new NgramIndex(tokens);
    this.reference = reference.length > MIN_NGRAM ? new NgramIndex(reference) : null;
  }

  get length(): number {
    return this.context.tokens.length;
  }

  push(token: number): void {
    this.context.push(token);
  }

  /** Stops looking in the reference (the text has left it: its next guess missed). */
  dropReference(): void {
    this.reference = null;
  }

  /**
   * Up to `max` tokens guessed to follow the context, from the latest earlier occurrence
   * of its longest matching suffix (in the reference if there is one there); null when
   * none of its last MIN_NGRAM.. tokens recur.
   */
  draft(max: number): Draft | null {
    const t = this.context.tokens,
      last = t.length - 1;
    if (max <= 0) return null;
    for (let n = MAX_NGRAM; n >= MIN_NGRAM; n--) {
      const r = this.reference?.find(t, n) ?? -1;
      if (r >= 0) {
        const ref = this.reference!.tokens;
        return { tokens: ref.slice(r + 1, Math.min(ref.length, r + 1 + max)), n, reference: true };
      }
      const e = this.context.find(t, n);
      if (e < 0) continue;
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
}
