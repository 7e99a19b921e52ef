/**
 * Random-weight GGUF models of the supported families, written with lmx's GGUF writer:
 * for tests (small shapes, llama.cpp agreement) and benchmarks (Qwen3-0.6B shape).
 * The tokenizer is the embedded model's, padded with unused tokens to the vocabulary size.
 */
import { DType, fromF32, isQuantized } from "../engine/tensor/dtype.js";
import { quantFormat } from "../engine/quant/index.js";
import { kv, writeGguf, type GgufTensorOut } from "../formats/gguf/write.js";
import { ggmlTypeOf, type GgufKv } from "../formats/gguf/types.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { tokenizerFromHf, tokenizerToGguf } from "../tokenizer/load.js";
import { rng } from "./random.js";

export interface RandomModelShape {
  arch: "qwen3" | "qwen2" | "llama";
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  tied?: boolean;
  /** Weight type of the matrices (norms and biases stay F32). */
  dtype?: DType;
  ropeTheta?: number;
  /** Llama 3 style per-frequency rope divisors. */
  ropeFreqs?: boolean;
  seed?: number;
}

export const QWEN3_0_6B: RandomModelShape = {
  arch: "qwen3",
  vocab: 151936,
  hidden: 1024,
  layers: 28,
  heads: 16,
  kvHeads: 8,
  headDim: 128,
  ffn: 3072,
  tied: true,
};

function encode(values: Float32Array, dtype: DType): Uint8Array {
  if (isQuantized(dtype)) {
    const q = quantFormat(dtype)?.quantize;
    if (!q) throw new Error(`lmx has no quantizer for ${DType[dtype]} yet`);
    return q(values);
  }
  return fromF32(values, dtype);
}

/** llama.cpp's `general.file_type` for a model whose matrices are mostly `dtype`. */
const FILE_TYPES: Partial<Record<DType, number>> = {
  [DType.F32]: 0,
  [DType.F16]: 1,
  [DType.Q4_0]: 2,
  [DType.Q8_0]: 7,
  [DType.BF16]: 32,
};

/** Writes the model to `path`. */
export function writeRandomModel(path: string, s: RandomModelShape): void {
  const r = rng(s.seed ?? 1);
  const dtype = s.dtype ?? DType.F16;
  const tensors: GgufTensorOut[] = [];
  const add = (name: string, rows: number, cols: number, scale: number, type: DType = dtype, offset = 0) => {
    const v = new Float32Array(rows * cols);
    for (let i = 0; i < v.length; i++) v[i] = offset + (r() * 2 - 1) * scale;
    tensors.push({
      name,
      type: ggmlTypeOf(type).id,
      ne: rows === 1 ? [cols] : [cols, rows],
      data: encode(v, type),
    });
  };
  const D = s.hidden,
    q = s.heads * s.headDim,
    kvw = s.kvHeads * s.headDim;
  // Scales keep activations near unit variance so logits are peaked, not uniform.
  add("token_embd.weight", s.vocab, D, 1);
  add("output_norm.weight", 1, D, 0.1, DType.F32, 1);
  if (!s.tied) add("output.weight", s.vocab, D, 2 / Math.sqrt(D));
  if (s.ropeFreqs) {
    const f = new Float32Array(s.headDim / 2).map((_, i) =>
      i < s.headDim / 8 ? 1 : i < s.headDim / 4 ? 2.5 : 8,
    );
    tensors.push({ name: "rope_freqs.weight", type: 0, ne: [f.length], data: new Uint8Array(f.buffer) });
  }
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, 1, D, 0.1, DType.F32, 1);
    add(`${b}attn_q.weight`, q, D, 1.5 / Math.sqrt(D));
    add(`${b}attn_k.weight`, kvw, D, 1.5 / Math.sqrt(D));
    add(`${b}attn_v.weight`, kvw, D, 1.5 / Math.sqrt(D));
    if (s.arch === "qwen2") {
      add(`${b}attn_q.bias`, 1, q, 0.1, DType.F32);
      add(`${b}attn_k.bias`, 1, kvw, 0.1, DType.F32);
      add(`${b}attn_v.bias`, 1, kvw, 0.1, DType.F32);
    }
    if (s.arch === "qwen3") {
      add(`${b}attn_q_norm.weight`, 1, s.headDim, 0.1, DType.F32, 1);
      add(`${b}attn_k_norm.weight`, 1, s.headDim, 0.1, DType.F32, 1);
    }
    add(`${b}attn_output.weight`, D, q, 1 / Math.sqrt(q));
    add(`${b}ffn_norm.weight`, 1, D, 0.1, DType.F32, 1);
    add(`${b}ffn_gate.weight`, s.ffn, D, 1.5 / Math.sqrt(D));
    add(`${b}ffn_up.weight`, s.ffn, D, 1.5 / Math.sqrt(D));
    add(`${b}ffn_down.weight`, D, s.ffn, 1 / Math.sqrt(s.ffn));
  }

  const tok = tokenizerFromHf(DEFAULT_MODEL_PATH);
  const a = (k: string) => `${s.arch}.${k}`;
  const kvs: GgufKv[] = [
    kv.str("general.architecture", s.arch),
    kv.str("general.name", `random-${s.arch}`),
    kv.u32("general.file_type", FILE_TYPES[dtype] ?? 1),
    kv.u32(a("context_length"), 4096),
    kv.u32(a("embedding_length"), D),
    kv.u32(a("block_count"), s.layers),
    kv.u32(a("feed_forward_length"), s.ffn),
    kv.u32(a("attention.head_count"), s.heads),
    kv.u32(a("attention.head_count_kv"), s.kvHeads),
    kv.u32(a("attention.key_length"), s.headDim),
    kv.u32(a("attention.value_length"), s.headDim),
    kv.f32(a("attention.layer_norm_rms_epsilon"), 1e-6),
    kv.f32(a("rope.freq_base"), s.ropeTheta ?? (s.arch === "llama" ? 500000 : 1000000)),
  ];
  if (s.arch === "llama")
    kvs.push(kv.u32(a("rope.dimension_count"), s.headDim), kv.u32(a("vocab_size"), s.vocab));
  for (const e of tokenizerToGguf(tok)) {
    if (e.key === "tokenizer.ggml.tokens") {
      const v = [...(e.value as string[])];
      for (let i = v.length; i < s.vocab; i++) v.push(`<|lmx_unused_${i}|>`);
      kvs.push({ ...e, value: v.slice(0, s.vocab) });
    } else if (e.key === "tokenizer.ggml.token_type") {
      const v = [...(e.value as number[])];
      for (let i = v.length; i < s.vocab; i++) v.push(5);
      kvs.push({ ...e, value: v.slice(0, s.vocab) });
    } else kvs.push(e);
  }
  if (s.vocab < tok.tokenizer.vocabSize)
    throw new Error("random models need a vocabulary of at least the tokenizer's size");
  writeGguf(path, kvs, tensors);
}
