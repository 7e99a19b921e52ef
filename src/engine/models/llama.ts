/**
 * Llama 2/3.x and Mistral: pre-norm decoder with GQA, RoPE, SwiGLU FFN, no biases.
 * GGUF files carry llama.cpp's permuted q/k rows and use adjacent-pair RoPE; weights read
 * straight from Hugging Face keep rotate-half (metadata `lmx.rope.pairing`). Llama 3.1+
 * frequency scaling arrives as the `rope_freqs` tensor; Mistral may set a sliding window.
 * Reference: Hugging Face transformers `modeling_llama.py`, `modeling_mistral.py`.
 */
import { RopePairing } from "../tensor/ops.js";
import type { CacheLayerSpec, ForwardContext, Metadata, ModelDefinition, WeightSpec } from "./model.js";

export interface LlamaConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly ropeDim: number;
  readonly intermediateSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropePairing: RopePairing;
  readonly slidingWindow: number;
  readonly maxPositionEmbeddings: number;
}

function parseConfig(m: Metadata): LlamaConfig {
  const hiddenSize = m.archNum("embedding_length");
  const numAttentionHeads = m.archNum("attention.head_count");
  const headDim = m.archNum("attention.key_length", hiddenSize / numAttentionHeads);
  return {
    vocabSize: m.archNum("vocab_size", 0),
    hiddenSize,
    numHiddenLayers: m.archNum("block_count"),
    numAttentionHeads,
    numKeyValueHeads: m.archNum("attention.head_count_kv", numAttentionHeads),
    headDim,
    ropeDim: m.archNum("rope.dimension_count", headDim),
    intermediateSize: m.archNum("feed_forward_length"),
    rmsNormEps: m.archNum("attention.layer_norm_rms_epsilon", 1e-5),
    ropeTheta: m.archNum("rope.freq_base", 10000),
    ropePairing: m.str("lmx.rope.pairing", "interleaved") === "neox" ? RopePairing.Neox : RopePairing.Interleaved,
    slidingWindow: m.archNum("attention.sliding_window", 0),
    maxPositionEmbeddings: m.archNum("context_length", 4096),
  };
}

function weights(c: LlamaConfig): WeightSpec[] {
  const D = c.hiddenSize, q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim;
  const w: WeightSpec[] = [
    { name: "token_embd.weight", rows: c.vocabSize, cols: D },
    { name: "rope_freqs.weight", rows: 1, cols: c.ropeDim / 2, optional: true, f32: true },
    { name: "output_norm.weight", rows: 1, cols: D, f32: true },
    { name: "output.weight", rows: c.vocabSize, cols: D, optional: true },
  ];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const b = `blk.${i}.`;
    w.push(
      { name: `${b}attn_norm.weight`, rows: 1, cols: D, f32: true },
      { name: `${b}attn_q.weight`, rows: q, cols: D },
      { name: `${b}attn_k.weight`, rows: kv, cols: D },
      { name: `${b}attn_v.weight`, rows: kv, cols: D },
      { name: `${b}attn_output.weight`, rows: D, cols: q },
      { name: `${b}ffn_norm.weight`, rows: 1, cols: D, f32: true },
      { name: `${b}ffn_gate.weight`, rows: c.intermediateSize, cols: D },
      { name: `${b}ffn_up.weight`, rows: c.intermediateSize, cols: D },
      { name: `${b}ffn_down.weight`, rows: D, cols: c.intermediateSize },
    );
  }
  return w;
}

function forward(c: LlamaConfig, { g, w, batch, kv, blockSize }: ForwardContext) {
  const W = (name: string) => w(name)!;
  const eps = c.rmsNormEps, nHead = c.numAttentionHeads, nKvHead = c.numKeyValueHeads, headDim = c.headDim;
  const rope = { nHead, headDim, nRot: c.ropeDim, theta: c.ropeTheta, pairing: c.ropePairing, freqFactors: w("rope_freqs.weight") ?? null };
  let x = g.name(g.getRows(W("token_embd.weight"), batch.tokens), "inp_embd"); // [T, D]
  for (let il = 0; il < c.numHiddenLayers; il++) {
    const L = (n: string) => W(`blk.${il}.${n}.weight`);
    const h = g.name(g.rmsNorm(x, L("attn_norm"), eps), "attn_norm", il);
    const q = g.rope(g.matmul(h, L("attn_q")), batch.positions, rope); // [T, nHead*headDim]
    const k = g.rope(g.matmul(h, L("attn_k")), batch.positions, { ...rope, nHead: nKvHead }); // [T, nKvHead*headDim]
    const v = g.matmul(h, L("attn_v")); // [T, nKvHead*headDim]
    g.kvStore(kv[il]!, k, v, batch, blockSize);
    const a = g.attention(q, kv[il]!, batch, {
      nHead, nKvHead, headDim, blockSize, scale: 1 / Math.sqrt(headDim), slidingWindow: c.slidingWindow,
    });
    x = g.name(g.add(x, g.matmul(a, L("attn_output"))), "attn_out", il);
    const f = g.name(g.rmsNorm(x, L("ffn_norm"), eps), "ffn_norm", il);
    const ffn = g.matmul(g.swiglu(g.matmul(f, L("ffn_gate")), g.matmul(f, L("ffn_up"))), L("ffn_down"));
    x = g.name(g.add(x, ffn), "l_out", il);
  }
  x = g.getRows(x, batch.outRows); // [nOut, D]
  x = g.name(g.rmsNorm(x, W("output_norm.weight"), eps), "result_norm");
  return g.name(g.matmul(x, w("output.weight") ?? W("token_embd.weight")), "result_output"); // [nOut, vocab]
}

function cacheLayers(c: LlamaConfig): CacheLayerSpec[] {
  const kind = c.slidingWindow > 0 ? ("sliding" as const) : ("full" as const);
  return Array.from({ length: c.numHiddenLayers }, () => ({ kind, nKvHead: c.numKeyValueHeads, headDim: c.headDim, window: c.slidingWindow || undefined }));
}

export const llama: ModelDefinition<LlamaConfig> = {
  architectures: ["llama", "mistral"],
  parseConfig,
  weights,
  forward,
  cacheLayers,
  contextLength: (c) => c.maxPositionEmbeddings,
};
