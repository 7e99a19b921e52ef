/**
 * How many drafted tokens a decode step verifies: the number that maximizes the tokens a
 * forward pass is expected to yield per unit of its cost. Both sides are measured as the
 * runner goes: what a pass of T rows costs on this machine (decode reads every weight
 * once, so a few more rows cost little until the kernels' compute catches up with the
 * memory reads: one thread of a Zen 4 ran 2 rows in the time of 1 and 4 in 1.45x), and
 * how often a sequence's drafts come true, per n-gram length. Drafts that are not
 * verified are still checked against the token drawn, so a sequence that stops drafting
 * for lack of hits starts again when its guesses turn good.
 */
import { paddedRows } from "../engine/engine-model.js";
import { MAX_NGRAM, MIN_NGRAM } from "./ngram-drafter.js";

/** Cost of a pass of T rows relative to one row, until measured (deliberately pessimistic). */
function priorCost(rows: number): number {
  return 1 + 0.2 * (paddedRows(rows) - 1);
}

/**
 * Wall time of decode passes by their padded row count, as moving averages; or, given
 * `fixed`, those costs whatever the passes take (tests: a runner whose drafting does not
 * depend on timing).
 */
export class PassCosts {
  private readonly ms = new Map<number, number>();

  constructor(private readonly fixed?: (rows: number) => number) {}
  /** Shapes seen once: a shape's first pass builds its plan, and is not counted. */
  private readonly seen = new Set<number>();

  observe(rows: number, ms: number): void {
    const T = paddedRows(rows);
    if (!this.seen.has(T)) {
      this.seen.add(T);
      return;
    }
    const old = this.ms.get(T);
    // A pass slowed by something else on the machine should not decide the next ones.
    if (old !== undefined && ms > 3 * old) return;
    this.ms.set(T, old === undefined ? ms : 0.8 * old + 0.2 * ms);
  }

  /**
   * Cost of a pass of `rows` rows: measured, or scaled by the prior from the nearest shape
   * measured (in units of one row's when none is yet).
   */
  cost(rows: number): number {
    if (this.fixed) return this.fixed(rows);
    const T = paddedRows(rows);
    const m = this.ms.get(T);
    if (m !== undefined) return m;
    let near = 0;
    for (const t of this.ms.keys()) if (near === 0 || Math.abs(t - T) < Math.abs(near - T)) near = t;
    return near ? (this.ms.get(near)! * priorCost(T)) / priorCost(near) : priorCost(T);
  }
}

/** A sequence's rate of drafted tokens that came true, per matched n-gram length. */
export class Acceptance {
  private readonly rate: number[] = [];

  constructor() {
    for (let n = MIN_NGRAM; n <= MAX_NGRAM; n++) this.rate.push(0.5);
  }

  get(n: number): number {
    return this.rate[n - MIN_NGRAM]!;
  }

  /** `hits` drafted tokens in a row came true, then (if `miss`) one did not. */
  observe(n: number, hits: number, miss: boolean): void {
    let r = this.rate[n - MIN_NGRAM]!;
    for (let i = 0; i < hits; i++) r = 0.9 * r + 0.1;
    if (miss) r = 0.9 * r;
    this.rate[n - MIN_NGRAM] = r;
  }
}

/** Tokens a pass yields for a sequence that verifies k drafts, each true with probability a. */
export function expectedTokens(a: number, k: number): number {
  let e = 1,
    p = 1;
  for (let i = 0; i < k; i++) {
    p *= a;
    e += p;
  }
  return e;
}

/**
 * The number of drafts (0..max) a sequence should add to a pass that already has `rows`
 * rows expected to yield `tokens` tokens: the most tokens per cost for the whole pass.
 */
export function draftsToVerify(
  costs: PassCosts,
  a: number,
  max: number,
  rows: number,
  tokens: number,
): number {
  let best = 0,
    bestRate = (tokens + 1) / costs.cost(rows + 1);
  for (let k = 1; k <= max; k++) {
    const rate = (tokens + expectedTokens(a, k)) / costs.cost(rows + 1 + k);
    if (rate > bestRate) {
      best = k;
      bestRate = rate;
    }
  }
  return best;
}
