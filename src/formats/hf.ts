/**
 * Hugging Face folder import: config.json -> GGUF-style metadata, safetensors names ->
 * GGUF tensor names (the one table that maps them), llama3 rope scaling -> rope_freqs.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DType } from "../engine/tensor/dtype.js";
import type { GgufValue } from "./gguf/types.js";
import { readJsonFile } from "./json-file.js";
import { mapFile, type FileLoader } from "./map-file.js";
import { importNvfp4, MODELOPT_COMPANIONS, modelOptQuantization } from "./modelopt.js";
import { readSafetensorsFolder } from "./safetensors.js";
import { ModelFileError, type TensorData } from "./tensor-source.js";

/** HF `architectures[0]` -> GGUF architecture name. */
const ARCHITECTURES: Record<string, string> = {
  Qwen3ForCausalLM: "qwen3",
  Qwen2ForCausalLM: "qwen2",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
};

const LAYER_NAMES: [RegExp, string][] = [
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, "blk.$1.attn_norm.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, "blk.$1.attn_q.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, "blk.$1.attn_k.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, "blk.$1.attn_v.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$/, "blk.$1.attn_output.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.q_norm\.weight$/, "blk.$1.attn_q_norm.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.k_norm\.weight$/, "blk.$1.attn_k_norm.weight"],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, "blk.$1.ffn_gate.weight"],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, "blk.$1.ffn_up.weight"],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, "blk.$1.ffn_down.weight"],
  [/^model\.embed_tokens\.weight$/, "token_embd.weight"],
  [/^model\.norm\.weight$/, "output_norm.weight"],
  [/^lm_head\.weight$/, "output.weight"],
];

/** The GGUF name of a Hugging Face tensor, or undefined when lmx has no use for it. */
export function ggufTensorName(hfName: string): string | undefined {
  for (const [re, to] of LAYER_NAMES) if (re.test(hfName)) return hfName.replace(re, to);
  return undefined;
}

/** Llama 3.1 frequency divisors, as llama.cpp's converter writes them into rope_freqs. */
function llama3RopeFreqs(rs: Record<string, number>, base: number, dim: number): Float32Array {
  const factor = rs.factor ?? 8,
    lo = rs.low_freq_factor ?? 1,
    hi = rs.high_freq_factor ?? 4;
  const old = rs.original_max_position_embeddings ?? 8192;
  const lowWave = old / lo,
    highWave = old / hi;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / Math.pow(base, (2 * i) / dim);
    const wave = (2 * Math.PI) / freq;
    if (wave < highWave) out[i] = 1;
    else if (wave > lowWave) out[i] = factor;
    else {
      const smooth = (old / wave - lo) / (hi - lo);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

export interface HfModel {
  metadata: Map<string, GgufValue>;
  tensors: Map<string, TensorData>;
  config: Record<string, any>;
}

export function readHfFolder(dir: string, load: FileLoader = mapFile): HfModel {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new ModelFileError(dir, "no config.json (not a Hugging Face model folder)");
  const cfg = readJsonFile(cfgPath);
  const hfArch = Array.isArray(cfg.architectures) ? cfg.architectures[0] : undefined;
  const arch = ARCHITECTURES[hfArch];
  if (!arch)
    throw new ModelFileError(
      cfgPath,
      `unknown architecture ${JSON.stringify(hfArch ?? cfg.model_type)} (supported: ${Object.keys(ARCHITECTURES).join(", ")})`,
    );
  const need = (k: string) => {
    if (typeof cfg[k] !== "number") throw new ModelFileError(cfgPath, `missing or non-numeric "${k}"`);
    return cfg[k] as number;
  };
  const heads = need("num_attention_heads");
  const hidden = need("hidden_size");
  const headDim = typeof cfg.head_dim === "number" ? cfg.head_dim : hidden / heads;
  const m = new Map<string, GgufValue>();
  const a = (k: string, v: GgufValue) => m.set(`${arch}.${k}`, v);
  m.set("general.architecture", arch);
  a("context_length", cfg.max_position_embeddings ?? 4096);
  a("embedding_length", hidden);
  a("block_count", need("num_hidden_layers"));
  a("feed_forward_length", need("intermediate_size"));
  a("attention.head_count", heads);
  a("attention.head_count_kv", cfg.num_key_value_heads ?? heads);
  a("attention.key_length", headDim);
  a("attention.value_length", headDim);
  a("attention.layer_norm_rms_epsilon", cfg.rms_norm_eps ?? 1e-6);
  a("rope.freq_base", cfg.rope_theta ?? 10000);
  a("vocab_size", need("vocab_size"));
  if (arch === "llama") {
    m.set("lmx.rope.pairing", "neox");
    if (typeof cfg.sliding_window === "number" && cfg.use_sliding_window !== false)
      a("attention.sliding_window", cfg.sliding_window);
  }

  const quant = modelOptQuantization(dir, cfg);
  const entries = readSafetensorsFolder(dir, load);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const tensors = new Map<string, TensorData>();
  for (const e of entries) {
    if (MODELOPT_COMPANIONS.test(e.name)) continue;
    const name = ggufTensorName(e.name);
    if (!name) continue;
    if (quant === "nvfp4" && e.dtypeName === "U8") {
      for (const t of importNvfp4(e, name, byName)) tensors.set(t.name, t);
      continue;
    }
    if (e.dtype === undefined || e.dtype === DType.I32)
      throw new ModelFileError(e.file, `tensor ${e.name} has dtype ${e.dtypeName}, which lmx cannot run`);
    tensors.set(name, { ...e, name, dtype: e.dtype });
  }
  const rs = cfg.rope_scaling;
  if (rs && typeof rs === "object") {
    const type = rs.rope_type ?? rs.type;
    if (type === "llama3") {
      const f = llama3RopeFreqs(rs, cfg.rope_theta ?? 10000, headDim);
      tensors.set("rope_freqs.weight", {
        name: "rope_freqs.weight",
        dtype: DType.F32,
        shape: [f.length],
        buffer: f.buffer as ArrayBuffer,
        byteOffset: 0,
        byteLength: f.byteLength,
        file: cfgPath,
      });
    } else if (type === "linear") {
      const f = new Float32Array(headDim / 2).fill(rs.factor ?? 1);
      tensors.set("rope_freqs.weight", {
        name: "rope_freqs.weight",
        dtype: DType.F32,
        shape: [f.length],
        buffer: f.buffer as ArrayBuffer,
        byteOffset: 0,
        byteLength: f.byteLength,
        file: cfgPath,
      });
    } else if (type !== "default") {
      throw new ModelFileError(cfgPath, `rope_scaling type ${JSON.stringify(type)} is not supported yet`);
    }
  }
  return { metadata: m, tensors, config: cfg };
}
