/**
 * Importance statistics for quantization (what llama.cpp calls an imatrix): for every
 * weight, the mean square of each input column over a calibration text, collected by
 * running the unquantized model on it. Quantizers then weigh each weight's rounding
 * error by how strongly its input is driven.
 */
import { loadModel } from "../model.js";

export interface ImportanceOptions {
  /** Tokens per forward window (default 512). */
  ctx?: number;
  /** Windows at most (default 64). */
  maxChunks?: number;
}

export async function collectImportance(
  modelPath: string,
  text: string,
  o: ImportanceOptions = {},
): Promise<Map<string, Float32Array>> {
  const ctx = o.ctx ?? 512;
  const m = await loadModel(modelPath, { numCtx: ctx });
  const tokens = m.tokenizer.encode(text);
  if (tokens.length < 2) throw new Error("the calibration text is too short");
  const sums = new Map<string, Float64Array>();
  let rows = 0;
  const chunks = Math.min(o.maxChunks ?? 64, Math.ceil(tokens.length / ctx));
  for (let c = 0; c < chunks; c++) {
    const part = tokens.slice(c * ctx, (c + 1) * ctx);
    if (part.length === 0) break;
    m.engine.cache.truncate(0, 0);
    m.engine.cache.reserve(0, part.length);
    const acts = await m.engine.matmulInputs({
      tokens: part,
      positions: part.map((_, i) => i),
      seqs: part.map(() => 0),
      outRows: [part.length - 1],
    });
    for (const [name, x] of acts) {
      const K = x.length / part.length;
      let s = sums.get(name);
      if (!s) sums.set(name, (s = new Float64Array(K)));
      for (let r = 0; r < part.length; r++) for (let k = 0; k < K; k++) s[k]! += x[r * K + k]! ** 2;
    }
    rows += part.length;
  }
  m.engine.cache.truncate(0, 0);
  return new Map([...sums].map(([name, s]) => [name, Float32Array.from(s, (v) => v / rows)]));
}
