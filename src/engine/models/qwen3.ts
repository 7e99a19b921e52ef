/**
 * Qwen3 (dense): pre-norm decoder with GQA, per-head RMSNorm on q and k before RoPE
 * (rotate-half), SwiGLU FFN, no biases, tied or untied output.
 * Reference: Hugging Face transformers `modeling_qwen3.py`.
 */
import { RopePairing } from "../tensor/ops.js";
import type { CacheLayerSpec, ForwardContext, Metadata, ModelDefinition, WeightSpec } from "./model.js";

export interface Qwen3Config {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositionEmbeddings: number;
}

function parseConfig(m: Metadata): Qwen3Config {
  const hiddenSize = m.archNum("embedding_length");
  const numAttentionHeads = m.archNum("attention.head_count");
  return {
    vocabSize: m.archNum("vocab_size", 0),
    hiddenSize,
    numHiddenLayers: m.archNum("block_count"),
    numAttentionHeads,
    numKeyValueHeads: m.archNum("attention.head_count_kv", numAttentionHeads),
    headDim: m.archNum("attention.key_length", hiddenSize / numAttentionHeads),
    intermediateSize: m.archNum("feed_forward_length"),
    rmsNormEps: m.archNum("attention.layer_norm_rms_epsilon", 1e-6),
    ropeTheta: m.archNum("rope.freq_base", 1e6),
    maxPositionEmbeddings: m.archNum("context_length", 40960),
  };
}

function weights(c: Qwen3Config): WeightSpec[] {
  const D = c.hiddenSize, q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim;
  const w: WeightSpec[] = [
    { name: "token_embd.weight", rows: c.vocabSize, cols: D },
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
      { name: `${b}attn_q_norm.weight`, rows: 1, cols: c.headDim, f32: true },
      { name: `${b}attn_k_norm.weight`, rows: 1, cols: c.headDim, f32: true },
      { name: `${b}attn_output.weight`, rows: D, cols: q },
      { name: `${b}ffn_norm.weight`, rows: 1, cols: D, f32: true },
      { name: `${b}ffn_gate.weight`, rows: c.intermediateSize, cols: D },
      { name: `${b}ffn_up.weight`, rows: c.intermediateSize, cols: D },
      { name: `${b}ffn_down.weight`, rows: D, cols: c.intermediateSize },
    );
  }
  return w;
}

function forward(c: Qwen3Config, { g, w, batch, kv, blockSize }: ForwardContext) {
  const W = (name: string) => w(name)!;
  const eps = c.rmsNormEps, nHead = c.numAttentionHeads, nKvHead = c.numKeyValueHeads, headDim = c.headDim;
  let x = g.name(g.getRows(W("token_embd.weight"), batch.tokens), "inp_embd"); // [T, D]
  for (let il = 0; il < c.numHiddenLayers; il++) {
    const L = (n: string) => W(`blk.${il}.${n}.weight`);
    const h = g.name(g.rmsNorm(x, L("attn_norm"), eps), "attn_norm", il);
    const rope = { nHead, headDim, theta: c.ropeTheta, pairing: RopePairing.Neox, normEps: eps };
    const q = g.rope(g.matmul(h, L("attn_q")), batch.positions, { ...rope, norm: L("attn_q_norm") }); // [T, nHead*headDim]
    const k = g.rope(g.matmul(h, L("attn_k")), batch.positions, { ...rope, nHead: nKvHead, norm: L("attn_k_norm") }); // [T, nKvHead*headDim]
    const v = g.matmul(h, L("attn_v")); // [T, nKvHead*headDim]
    g.kvStore(kv[il]!, k, v, batch, blockSize);
    const a = g.attention(q, kv[il]!, batch, { nHead, nKvHead, headDim, blockSize, scale: 1 / Math.sqrt(headDim) });
    x = g.name(g.add(x, g.matmul(a, L("attn_output"))), "attn_out", il);
    const f = g.name(g.rmsNorm(x, L("ffn_norm"), eps), "ffn_norm", il);
    const ffn = g.matmul(g.swiglu(g.matmul(f, L("ffn_gate")), g.matmul(f, L("ffn_up"))), L("ffn_down"));
    x = g.name(g.add(x, ffn), "l_out", il);
  }
  x = g.getRows(x, batch.outRows); // [nOut, D]
  x = g.name(g.rmsNorm(x, W("output_norm.weight"), eps), "result_norm");
  return g.name(g.matmul(x, w("output.weight") ?? W("token_embd.weight")), "result_output"); // [nOut, vocab]
}

function cacheLayers(c: Qwen3Config): CacheLayerSpec[] {
  return Array.from({ length: c.numHiddenLayers }, () => ({ kind: "full" as const, nKvHead: c.numKeyValueHeads, headDim: c.headDim }));
}

export const qwen3: ModelDefinition<Qwen3Config> = {
  architectures: ["qwen3"],
  parseConfig,
  weights,
  forward,
  cacheLayers,
  contextLength: (c) => c.maxPositionEmbeddings,
};
