/**
 * Random-weight Hugging Face folders (config.json, safetensors in HF names and layout,
 * the embedded model's tokenizer files), for testing imports and conversions.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { f32ToBf16 } from "../engine/tensor/dtype.js";
import { writeSafetensors, type SafetensorsTensorOut } from "../formats/safetensors-write.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { rng } from "./random.js";

export interface RandomHfShape {
  architecture: "LlamaForCausalLM" | "Qwen2ForCausalLM" | "Qwen3ForCausalLM";
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  tied?: boolean;
  ropeScaling?: Record<string, unknown>;
  seed?: number;
}

export function writeRandomHfModel(dir: string, s: RandomHfShape): void {
  mkdirSync(dir, { recursive: true });
  const r = rng(s.seed ?? 1);
  const vocab = 4096,
    D = s.hidden,
    hd = D / s.heads;
  const tensors: SafetensorsTensorOut[] = [];
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const u = new Uint16Array(n);
    for (let i = 0; i < n; i++) u[i] = f32ToBf16(offset + (r() * 2 - 1) * scale);
    tensors.push({ name, dtype: "BF16", shape, data: new Uint8Array(u.buffer) });
  };
  add("model.embed_tokens.weight", [vocab, D], 1);
  add("model.norm.weight", [D], 0.1, 1);
  if (!s.tied) add("lm_head.weight", [vocab, D], 2 / Math.sqrt(D));
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    add(`${p}input_layernorm.weight`, [D], 0.1, 1);
    add(`${p}self_attn.q_proj.weight`, [s.heads * hd, D], 1.5 / Math.sqrt(D));
    add(`${p}self_attn.k_proj.weight`, [s.kvHeads * hd, D], 1.5 / Math.sqrt(D));
    add(`${p}self_attn.v_proj.weight`, [s.kvHeads * hd, D], 1.5 / Math.sqrt(D));
    if (s.architecture === "Qwen2ForCausalLM") {
      add(`${p}self_attn.q_proj.bias`, [s.heads * hd], 0.1);
      add(`${p}self_attn.k_proj.bias`, [s.kvHeads * hd], 0.1);
      add(`${p}self_attn.v_proj.bias`, [s.kvHeads * hd], 0.1);
    }
    if (s.architecture === "Qwen3ForCausalLM") {
      add(`${p}self_attn.q_norm.weight`, [hd], 0.1, 1);
      add(`${p}self_attn.k_norm.weight`, [hd], 0.1, 1);
    }
    add(`${p}self_attn.o_proj.weight`, [D, s.heads * hd], 1 / Math.sqrt(D));
    add(`${p}post_attention_layernorm.weight`, [D], 0.1, 1);
    add(`${p}mlp.gate_proj.weight`, [s.ffn, D], 1.5 / Math.sqrt(D));
    add(`${p}mlp.up_proj.weight`, [s.ffn, D], 1.5 / Math.sqrt(D));
    add(`${p}mlp.down_proj.weight`, [D, s.ffn], 1 / Math.sqrt(s.ffn));
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: [s.architecture],
      hidden_size: D,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      num_key_value_heads: s.kvHeads,
      intermediate_size: s.ffn,
      vocab_size: vocab,
      max_position_embeddings: 4096,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      rope_scaling: s.ropeScaling ?? null,
      tie_word_embeddings: !!s.tied,
      bos_token_id: 4091,
      eos_token_id: 4093,
    }),
  );
  for (const f of ["tokenizer.json", "tokenizer_config.json"])
    copyFileSync(join(DEFAULT_MODEL_PATH, f), join(dir, f));
}
