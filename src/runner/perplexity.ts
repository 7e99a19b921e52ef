/**
 * Perplexity the way llama.cpp's perplexity tool computes it: the text tokenized once,
 * non-overlapping windows of `ctx` tokens each evaluated from an empty cache (the first
 * token replaced by BOS when the model adds one), and only the second half of each window
 * scored, so every scored token has at least ctx/2 tokens of context. With a base model,
 * both run window by window in lock step and the KL divergence of the model's next-token
 * distribution from the base's is measured on the same positions.
 */
import type { EngineModel } from "../engine/engine-model.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface KlStats {
  /** Mean KL(base || model) per scored position, in nats. */
  kldMean: number;
  kldStderr: number;
  kldMax: number;
  /** Share of positions where both models' most likely token is the same. */
  top1Agree: number;
  /** Percentiles of Δp = p_model(next) - p_base(next). */
  dp: Record<"p1" | "p5" | "p10" | "p50" | "p90" | "p95" | "p99", number>;
  dpRms: number;
  basePpl: number;
}

export interface PerplexityResult {
  ppl: number;
  /** Standard error of the perplexity estimate. */
  pplStderr: number;
  /** Tokens scored. */
  tokens: number;
  chunks: number;
  /** Tokens in the whole text. */
  fileTokens: number;
  kl?: KlStats;
}

export interface PerplexityOptions {
  ctx?: number;
  /**
   * Index within a window of the first token whose prediction is scored. llama.cpp scores
   * from ctx/2 + 1 (the default); some references score from ctx/2.
   */
  firstScored?: number;
  /** Evaluate at most this many windows. */
  maxChunks?: number;
  /** Compare against this model (same tokenizer) for KL divergence. */
  base?: EngineModel;
  /** Called after each window with the running perplexity. */
  onChunk?: (chunk: number, chunks: number, runningPpl: number) => void;
}

/** log-softmax of a row into `out`; returns the index of the first maximum. */
function logSoftmax(row: Float32Array, out: Float64Array): number {
  let max = -Infinity,
    arg = 0;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) [max, arg] = [row[i]!, i];
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - max);
  const lse = max + Math.log(s);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return arg;
}

async function evalWindow(model: EngineModel, input: number[], outRows: number[]): Promise<Float32Array> {
  model.cache.truncate(0, 0);
  model.cache.reserve(0, input.length);
  await model.forward({
    tokens: input,
    positions: input.map((_, i) => i),
    seqs: new Array(input.length).fill(0),
    outRows,
  });
  return model.logits(input.length, outRows.length);
}

function percentile(sorted: Float64Array, p: number): number {
  const x = p * (sorted.length - 1),
    i = Math.floor(x);
  return i + 1 < sorted.length ? sorted[i]! + (x - i) * (sorted[i + 1]! - sorted[i]!) : sorted[i]!;
}

export async function perplexity(
  model: EngineModel,
  tokenizer: Tokenizer,
  text: string,
  o: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const ctx = o.ctx ?? 512;
  for (const m of [model, o.base])
    if (m && ctx > m.numCtx) throw new Error(`--ctx ${ctx} exceeds num_ctx ${m.numCtx}`);
  if (o.base && o.base.vocabSize !== model.vocabSize)
    throw new Error(
      `the base model's vocabulary (${o.base.vocabSize}) differs from the model's (${model.vocabSize})`,
    );
  const tokens = tokenizer.encode(text, { parseSpecial: true });
  let chunks = Math.floor(tokens.length / ctx);
  if (o.maxChunks !== undefined) chunks = Math.min(chunks, o.maxChunks);
  if (chunks < 1) throw new Error(`the text has ${tokens.length} tokens; perplexity needs at least ${ctx}`);
  const first = (o.firstScored ?? (ctx >> 1) + 1) - 1;
  if (first < 0 || first >= ctx - 1) throw new Error(`firstScored must be between 1 and ${ctx - 1}`);
  const outRows = Array.from({ length: ctx - 1 - first }, (_, i) => first + i);
  const V = model.vocabSize;
  const lp = new Float64Array(V),
    lpBase = new Float64Array(V);
  let sum = 0,
    sum2 = 0,
    n = 0,
    baseSum = 0,
    kldSum = 0,
    kldSum2 = 0,
    kldMax = 0,
    same = 0,
    dpSum2 = 0;
  const dps: number[] = [];
  for (let c = 0; c < chunks; c++) {
    const window = tokens.slice(c * ctx, (c + 1) * ctx);
    const input = window.slice();
    if (tokenizer.addBos && tokenizer.bosId !== undefined) input[0] = tokenizer.bosId;
    const logits = (await evalWindow(model, input, outRows)).slice();
    const baseLogits = o.base ? await evalWindow(o.base, input, outRows) : undefined;
    for (let r = 0; r < outRows.length; r++) {
      const next = window[outRows[r]! + 1]!;
      const top = logSoftmax(logits.subarray(r * V, (r + 1) * V), lp);
      const nll = -lp[next]!;
      sum += nll;
      sum2 += nll * nll;
      n++;
      if (baseLogits) {
        const baseTop = logSoftmax(baseLogits.subarray(r * V, (r + 1) * V), lpBase);
        let kld = 0;
        // llama.cpp skips base probabilities below e^-16
        for (let i = 0; i < V; i++) if (lpBase[i]! > -16) kld += Math.exp(lpBase[i]!) * (lpBase[i]! - lp[i]!);
        kldSum += kld;
        kldSum2 += kld * kld;
        kldMax = Math.max(kldMax, kld);
        if (top === baseTop) same++;
        baseSum += -lpBase[next]!;
        const dp = Math.exp(lp[next]!) - Math.exp(lpBase[next]!);
        dps.push(dp);
        dpSum2 += dp * dp;
      }
    }
    o.onChunk?.(c, chunks, Math.exp(sum / n));
  }
  model.cache.truncate(0, 0);
  o.base?.cache.truncate(0, 0);
  const mean = sum / n,
    ppl = Math.exp(mean);
  const result: PerplexityResult = {
    ppl,
    pplStderr: n > 1 ? ppl * Math.sqrt(Math.max(sum2 / n - mean * mean, 0) / (n - 1)) : 0,
    tokens: n,
    chunks,
    fileTokens: tokens.length,
  };
  if (o.base) {
    const sorted = Float64Array.from(dps).sort();
    const km = kldSum / n;
    result.kl = {
      kldMean: km,
      kldStderr: n > 1 ? Math.sqrt(Math.max(kldSum2 / n - km * km, 0) / (n - 1)) : 0,
      kldMax,
      top1Agree: same / n,
      dp: {
        p1: percentile(sorted, 0.01),
        p5: percentile(sorted, 0.05),
        p10: percentile(sorted, 0.1),
        p50: percentile(sorted, 0.5),
        p90: percentile(sorted, 0.9),
        p95: percentile(sorted, 0.95),
        p99: percentile(sorted, 0.99),
      },
      dpRms: Math.sqrt(dpSum2 / n),
      basePpl: Math.exp(baseSum / n),
    };
  }
  return result;
}
