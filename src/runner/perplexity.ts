/**
 * Perplexity the way llama.cpp's perplexity tool computes it: the text tokenized once,
 * non-overlapping windows of `ctx` tokens each evaluated from an empty cache (the first
 * token replaced by BOS when the model adds one), and only the second half of each window
 * scored, so every scored token has at least ctx/2 tokens of context.
 */
import type { EngineModel } from "../engine/engine-model.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface PerplexityResult {
  ppl: number;
  /** Standard error of the perplexity estimate. */
  pplStderr: number;
  /** Tokens scored. */
  tokens: number;
  chunks: number;
  /** Tokens in the whole text. */
  fileTokens: number;
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
  /** Called after each window with the running perplexity. */
  onChunk?: (chunk: number, runningPpl: number) => void;
}

export async function perplexity(
  model: EngineModel,
  tokenizer: Tokenizer,
  text: string,
  o: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const ctx = o.ctx ?? 512;
  if (ctx > model.numCtx) throw new Error(`--ctx ${ctx} exceeds the model's num_ctx ${model.numCtx}`);
  const tokens = tokenizer.encode(text, { parseSpecial: true });
  let chunks = Math.floor(tokens.length / ctx);
  if (o.maxChunks !== undefined) chunks = Math.min(chunks, o.maxChunks);
  if (chunks < 1) throw new Error(`the text has ${tokens.length} tokens; perplexity needs at least ${ctx}`);
  const first = (o.firstScored ?? (ctx >> 1) + 1) - 1;
  if (first < 0 || first >= ctx - 1) throw new Error(`firstScored must be between 1 and ${ctx - 1}`);
  const outRows = Array.from({ length: ctx - 1 - first }, (_, i) => first + i);
  let sum = 0,
    sum2 = 0,
    n = 0;
  for (let c = 0; c < chunks; c++) {
    const window = tokens.slice(c * ctx, (c + 1) * ctx);
    const input = window.slice();
    if (tokenizer.addBos && tokenizer.bosId !== undefined) input[0] = tokenizer.bosId;
    model.cache.truncate(0, 0);
    model.cache.reserve(0, ctx);
    await model.forward({
      tokens: input,
      positions: input.map((_, i) => i),
      seqs: new Array(ctx).fill(0),
      outRows,
    });
    const logits = model.logits(ctx, outRows.length);
    const V = model.vocabSize;
    for (let r = 0; r < outRows.length; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      let max = -Infinity;
      for (let i = 0; i < V; i++) if (row[i]! > max) max = row[i]!;
      let s = 0;
      for (let i = 0; i < V; i++) s += Math.exp(row[i]! - max);
      const nll = max + Math.log(s) - row[window[outRows[r]! + 1]!]!;
      sum += nll;
      sum2 += nll * nll;
      n++;
    }
    o.onChunk?.(c, Math.exp(sum / n));
  }
  model.cache.truncate(0, 0);
  const mean = sum / n;
  const variance = sum2 / n - mean * mean;
  const ppl = Math.exp(mean);
  return {
    ppl,
    pplStderr: n > 1 ? ppl * Math.sqrt(Math.max(variance, 0) / (n - 1)) : 0,
    tokens: n,
    chunks,
    fileTokens: tokens.length,
  };
}
