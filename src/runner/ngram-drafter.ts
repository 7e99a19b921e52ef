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

/**
 * Token n-grams of a text and where they end (e, with a token after it): the latest
 * occurrence, or with `all` every one, so that a lookup can take the first at or after a
 * given position.
 */
class NgramIndex {
  readonly tokens: number[] = [];
  /** Per n-gram length: hash of the n tokens ending at e -> e (latest), or every e in order. */
  private readonly index: Map<number, number | number[]>[] = [];

  constructor(
    tokens: Iterable<number>,
    private readonly all = false,
  ) {
    for (let n = MIN_NGRAM; n <= MAX_NGRAM; n++) this.index.push(new Map());
    for (const t of tokens) this.push(t);
  }

  push(token: number): void {
    const t = this.tokens;
    t.push(token);
    // The n-grams ending just before the new token now have a follower: index them.
    const e = t.length - 2;
    for (let n = MIN_NGRAM; n <= MAX_NGRAM && e - n + 1 >= 0; n++) {
      const m = this.index[n - MIN_NGRAM]!,
        h = hash(t, e, n);
      if (!this.all) m.set(h, e);
      else {
        const at = m.get(h) as number[] | undefined;
        if (at) at.push(e);
        else m.set(h, [e]);
      }
    }
  }

  /**
   * Where the last n tokens of `of` occur here, followed by a token: the first occurrence
   * ending at or after `from` if there is one, else the latest; -1 if nowhere.
   */
  find(of: readonly number[], n: number, from = Infinity): number {
    const last = of.length - 1;
    if (last - n + 1 < 0) return -1;
    const at = this.index[n - MIN_NGRAM]!.get(hash(of, last, n));
    if (at === undefined) return -1;
    if (typeof at === "number") return this.same(at, of, n) ? at : -1;
    // The first end at or after `from` (ends are in order), or the last; from there on,
    // then before it, the first that is not a hash collision.
    let lo = 0,
      hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    const start = lo < at.length ? lo : at.length - 1;
    for (let i = start; i < at.length; i++) if (this.same(at[i]!, of, n)) return at[i]!;
    for (let i = start - 1; i >= 0; i--) if (this.same(at[i]!, of, n)) return at[i]!;
    return -1;
  }

  private same(e: number, of: readonly number[], n: number): boolean {
    for (let i = 0; i < n; i++) if (this.tokens[e - i] !== of[of.length - 1 - i]) return false;
    return true;
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
   * While the output follows the reference token by token, the position in it of the next
   * token (-1 when it does not); `resume`: where to look first when it is found again.
   */
  private refNext = -1;
  private resume = 0;

  /**
   * `reference`: a text the output may follow without the context holding it, looked up
   * first: a prediction, or what the sequence's cache held past the prompt before this
   * request (an answer to the same prompt, when a request is retried or regenerated).
   */
  constructor(tokens: Iterable<number> = [], reference: readonly number[] = []) {
    this.context = new NgramIndex(tokens);
    this.reference = reference.length > MIN_NGRAM ? new NgramIndex(reference, true) : null;
  }

  push(token: number): void {
    this.context.push(token);
    if (this.refNext < 0) return;
    if (this.reference?.tokens[this.refNext] === token) this.refNext++;
    else {
      this.resume = this.refNext;
      this.refNext = -1;
    }
  }

  /** Stops looking in the reference (the text has left it: its next guess missed). */
  dropReference(): void {
    this.reference = null;
    this.refNext = -1;
  }

  /**
   * Up to `max` tokens guessed to follow the context: in the reference where the output
   * follows it, or from where the context's longest matching suffix occurs there (the first
   * occurrence past where the output left it); else from the latest earlier occurrence of
   * that suffix in the context; null when none of its last MIN_NGRAM.. tokens recur.
   */
  draft(max: number): Draft | null {
    const t = this.context.tokens,
      last = t.length - 1;
    if (max <= 0) return null;
    const ref = this.reference?.tokens;
    if (ref && this.refNext >= 0 && this.refNext < ref.length)
      return { tokens: ref.slice(this.refNext, this.refNext + max), n: MAX_NGRAM, reference: true };
    for (let n = MAX_NGRAM; n >= MIN_NGRAM; n--) {
      const r = this.reference?.find(t, n, this.resume) ?? -1;
      if (r >= 0) {
        this.refNext = r + 1;
        return { tokens: ref!.slice(r + 1, r + 1 + max), n, reference: true };
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
