/**
 * How many drafted tokens a decode step verifies: the number that maximizes the tokens a
 * forward pass is expected to yield per unit of its cost. Both sides are measured as the
 * runner goes: what a pass of T rows costs on this machine (decode reads every weight
 * once, so a few more rows cost little until the kernels' compute catches up with the
 * memory reads: one thread of a Zen 4 ran 2 rows in the time of 1 and 4 in 1.45x), and
 * how often a sequence's drafts come true, per source. Drafts that are not
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
 * Context depth classes: attention makes a pass's cost grow with the positions its rows
 * see, and each extra row reads them again (from L2 in the split kernel), so row counts
 * are priced per class: <512, <1024, <2048, ... positions.
 */
function depthClass(depth: number): number {
  return Math.max(0, Math.floor(Math.log2(Math.max(depth, 1) / 256)));
}

/**
 * Wall time of decode passes by their padded row count and depth class, as moving
 * averages; or, given `fixed`, those costs whatever the passes take (tests: a runner
 * whose drafting does not depend on timing).
 */
export class PassCosts {
  /** By depth class, then padded row count. */
  private readonly ms = new Map<number, Map<number, number>>();
  /** Shapes seen once: a shape's first pass builds its plan, and is not counted. */
  private readonly seen = new Set<number>();

  constructor(private readonly fixed?: (rows: number) => number) {}

  /** A decode-only pass of `rows` rows whose deepest row sees `depth` positions took `ms`. */
  observe(rows: number, depth: number, ms: number): void {
    const T = paddedRows(rows);
    if (!this.seen.has(T)) {
      this.seen.add(T);
      return;
    }
    const c = depthClass(depth);
    let byRows = this.ms.get(c);
    if (!byRows) this.ms.set(c, (byRows = new Map()));
    const old = byRows.get(T);
    // A pass slowed by something else on the machine should not decide the next ones.
    if (old !== undefined && ms > 3 * old) return;
    byRows.set(T, old === undefined ? ms : 0.8 * old + 0.2 * ms);
  }

  /**
   * Cost of a pass of `rows` rows at `depth`: measured in its depth class, or scaled by the
   * prior from the nearest row count measured there (in units of one row's when none is).
   */
  cost(rows: number, depth: number): number {
    if (this.fixed) return this.fixed(rows);
    const T = paddedRows(rows);
    const byRows = this.ms.get(depthClass(depth));
    const m = byRows?.get(T);
    if (m !== undefined) return m;
    let near = 0;
    for (const t of byRows?.keys() ?? []) if (near === 0 || Math.abs(t - T) < Math.abs(near - T)) near = t;
    return near ? (byRows!.get(near)! * priorCost(T)) / priorCost(near) : priorCost(T);
  }
}

/**
 * A sequence's rate of drafted tokens that came true, per source: the context's matches
 * by n-gram length, and the reference (a prediction or a retried request's answer).
 */
export class Acceptance {
  private readonly rate: number[] = [];

  /**
   * Starting from `from`'s rates (the runner's over every sequence so far), or 0.5; the
   * reference's from `reference` if given (a prediction: the caller expects the output to
   * repeat it).
   */
  constructor(from?: Acceptance, reference?: number) {
    for (let i = 0; i <= REFERENCE; i++) this.rate.push(from ? from.rate[i]! : 0.5);
    if (reference !== undefined) this.rate[REFERENCE] = reference;
  }

  get(d: Source): number {
    return this.rate[slot(d)]!;
  }

  /** `hits` drafted tokens in a row came true, then (if `miss`) one did not. */
  observe(d: Source, hits: number, miss: boolean): void {
    let r = this.rate[slot(d)]!;
    for (let i = 0; i < hits; i++) r = 0.9 * r + 0.1;
    if (miss) r = 0.9 * r;
    this.rate[slot(d)] = r;
  }
}

/** Where a draft came from (a Draft is one). */
export interface Source {
  n: number;
  reference?: boolean;
}

/** Rates by source: n-gram lengths MIN_NGRAM..MAX_NGRAM, then the reference. */
const REFERENCE = MAX_NGRAM - MIN_NGRAM + 1;

function slot(d: Source): number {
  return d.reference ? REFERENCE : d.n - MIN_NGRAM;
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

/** A decode pass being gathered, as far as its drafts are chosen. */
export interface PassSoFar {
  /** Sequences with a decode row in it (each one's own row is in it either way). */
  decoding: number;
  /** Draft rows chosen so far, and the tokens beyond one per sequence they are expected to give. */
  extraRows: number;
  extraTokens: number;
  /** Positions its deepest decode row sees. */
  depth: number;
}

/**
 * The number of drafts (0..max) a sequence should add to `pass`: the most tokens per cost
 * for the whole pass (all priced in its depth class, so they compare).
 */
export function draftsToVerify(costs: PassCosts, a: number, max: number, pass: PassSoFar): number {
  const { decoding, extraRows, extraTokens, depth } = pass;
  let best = 0,
    bestRate = (decoding + extraTokens) / costs.cost(decoding + extraRows, depth);
  for (let k = 1; k <= max; k++) {
    const rate =
      (decoding + extraTokens + expectedTokens(a, k) - 1) / costs.cost(decoding + extraRows + k, depth);
    if (rate > bestRate) {
      best = k;
      bestRate = rate;
    }
  }
  return best;
}
