/**
 * Hugging Face import and HF -> GGUF conversion: the same model read from a folder, from
 * shards, and from the converted GGUF gives the same logits (for Llama, through the q/k
 * row permutation and the matching RoPE pairing).
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createBackend } from "../engine/backends/index.js";
import { EngineModel } from "../engine/engine-model.js";
import { DType } from "../engine/tensor/dtype.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { writeRandomHfModel } from "../testing/random-hf-model.js";
import { convertHfToGguf, permuteQkRows } from "./convert.js";
import { openModelSource } from "./model-source.js";
import { readSafetensors } from "./safetensors.js";
import { writeSafetensors } from "./safetensors-write.js";

const dir = mkdtempSync(join(tmpdir(), "lmx-convert-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const tokens = [464, 284, 960, 264, 1190, 1854, 1627, 342, 257, 17, 900, 33];

async function logits(path: string, mmap = true): Promise<Float32Array> {
  const m = new EngineModel(createBackend("cpu"), openModelSource(path, { mmap }), { numCtx: 64 });
  m.cache.reserve(0, tokens.length);
  await m.forward({
    tokens,
    positions: tokens.map((_, i) => i),
    seqs: tokens.map(() => 0),
    outRows: tokens.map((_, i) => i),
  });
  return m.logits(tokens.length, tokens.length).slice();
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let e = 0,
    s = 1e-6;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return e / s;
}

describe("Hugging Face import and conversion", () => {
  it("permutes q/k rows as llama.cpp does", () => {
    // 1 head of dim 4: HF rows [r0 r1 r2 r3] -> GGUF [r0 r2 r1 r3]
    const rows = new Uint8Array([0, 1, 2, 3]);
    assert.deepEqual(Array.from(permuteQkRows(rows, 1, 1)), [0, 2, 1, 3]);
  });

  it("tiny-qwen3 converted to GGUF gives the same logits as the folder", async () => {
    const out = join(dir, "tiny-f32.gguf");
    convertHfToGguf(DEFAULT_MODEL_PATH, out, { outtype: DType.F32 });
    assert.ok(maxRel(await logits(out), await logits(DEFAULT_MODEL_PATH)) < 1e-5);
  });

  it("weights read into memory (use_mmap false) give the mapped weights' logits, GGUF and folder", async () => {
    const gguf = join(dir, "tiny-f16.gguf");
    convertHfToGguf(DEFAULT_MODEL_PATH, gguf, { outtype: DType.F16 });
    for (const path of [gguf, DEFAULT_MODEL_PATH])
      assert.deepEqual(await logits(path, false), await logits(path, true), path);
  });

  it("sharded safetensors with an index read like the single file", async () => {
    const f = join(dir, "sharded");
    mkdirSync(f);
    for (const n of ["config.json", "tokenizer.json", "tokenizer_config.json"])
      copyFileSync(join(DEFAULT_MODEL_PATH, n), join(f, n));
    const all = readSafetensors(join(DEFAULT_MODEL_PATH, "model.safetensors"));
    const weightMap: Record<string, string> = {};
    const shards = [all.filter((_, i) => i % 2 === 0), all.filter((_, i) => i % 2 === 1)];
    shards.forEach((part, k) => {
      const name = `model-0000${k + 1}-of-00002.safetensors`;
      writeSafetensors(
        join(f, name),
        part.map((t) => ({
          name: t.name,
          dtype: t.dtypeName,
          shape: [...t.shape],
          data: new Uint8Array(t.buffer, t.byteOffset, t.byteLength),
        })),
      );
      for (const t of part) weightMap[t.name] = name;
    });
    writeFileSync(
      join(f, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    assert.deepEqual(await logits(f), await logits(DEFAULT_MODEL_PATH));
  });

  for (const architecture of ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"] as const) {
    it(`a random ${architecture} folder and its GGUF conversion agree`, async () => {
      const f = join(dir, architecture);
      const ropeScaling =
        architecture === "LlamaForCausalLM"
          ? {
              rope_type: "llama3",
              factor: 8,
              low_freq_factor: 1,
              high_freq_factor: 4,
              original_max_position_embeddings: 64,
            }
          : undefined;
      writeRandomHfModel(f, {
        architecture,
        hidden: 64,
        layers: 2,
        heads: 4,
        kvHeads: 2,
        ffn: 96,
        ropeScaling,
      });
      const out = join(dir, `${architecture}.gguf`);
      convertHfToGguf(f, out);
      const a = await logits(f),
        b = await logits(out);
      assert.ok(maxRel(a, b) < 1e-4, `relative difference ${maxRel(a, b)}`);
    });
  }
});
