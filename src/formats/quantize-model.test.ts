/**
 * Model quantization: llama-quantize's per-tensor type rules, and the quality ladder on
 * the embedded model (every type runs; more bits, less divergence from the original).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { chooseNvfp4TensorScale, nvfp4Error, quantizeNvfp4 } from "../engine/quant/fp4-quantize.js";
import { quantFormat } from "../engine/quant/index.js";
import { DType, toF32 } from "../engine/tensor/dtype.js";
import { DEFAULT_MODEL_PATH, loadModel } from "../model.js";
import { perplexity } from "../runner/perplexity.js";
import { readGguf } from "./gguf/read.js";
import { collectImportance } from "./importance.js";
import { chooseType, quantizeModel, useMoreBits, type QuantizeType } from "./quantize-model.js";

const dir = mkdtempSync(join(tmpdir(), "lmx-quantize-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("quantization type rules", () => {
  it("give more bits to the layers llama.cpp picks (28 and 32 layers)", () => {
    const pick = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
    assert.deepEqual(pick(28), [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
    assert.deepEqual(pick(32), [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  });

  it("choose Q6_K for the output head and fall back when blocks do not divide the row", () => {
    const o = { tied: false, iAttnV: 5, nAttnV: 28, layer: 4, nLayer: 28 };
    assert.equal(chooseType("q4_K_M", "output.weight", 1024, o), DType.Q6_K);
    assert.equal(chooseType("q4_K_M", "token_embd.weight", 1024, o), DType.Q4_K);
    assert.equal(chooseType("q4_K_M", "token_embd.weight", 1024, { ...o, tied: true }), DType.Q6_K);
    assert.equal(chooseType("q4_K_M", "blk.5.attn_v.weight", 1024, o), DType.Q6_K);
    assert.equal(chooseType("q4_K_M", "blk.4.ffn_down.weight", 3072, o), DType.Q4_K);
    assert.equal(chooseType("q8_0", "output.weight", 1024, o), DType.Q8_0);
    assert.equal(chooseType("q4_K_M", "blk.4.ffn_up.weight", 96, o), DType.Q8_0);
    assert.equal(chooseType("q6_K", "blk.4.ffn_up.weight", 100, o), DType.F16);
  });
});

describe("quantized tiny-qwen3", () => {
  it("runs in every type, with divergence from the original falling as bits rise", async () => {
    const text = readFileSync(join(DEFAULT_MODEL_PATH, "eval.txt"), "utf8");
    const base = await loadModel(DEFAULT_MODEL_PATH, { numCtx: 512 });
    const kld: Record<string, number> = {};
    for (const type of ["q4_0", "q4_K_M", "q6_K", "q8_0", "mxfp4", "nvfp4"] as QuantizeType[]) {
      const out = join(dir, `tiny-${type}.gguf`);
      quantizeModel(DEFAULT_MODEL_PATH, out, type);
      const expected: Record<string, string> = {
        q4_0: "Q4_0",
        q4_K_M: "Q4_K",
        q6_K: "Q6_K",
        q8_0: "Q8_0",
        mxfp4: "MXFP4",
        nvfp4: "NVFP4",
      };
      assert.ok(readGguf(out).tensors.some((t) => t.typeName === expected[type]));
      const m = await loadModel(out, { numCtx: 512 });
      const r = await perplexity(m.engine, m.tokenizer, text, { maxChunks: 8, base: base.engine });
      kld[type] = r.kl!.kldMean;
      assert.ok(r.kl!.top1Agree > 0.9, `${type}: top-1 agreement ${r.kl!.top1Agree}`);
      assert.ok(Math.abs(r.ppl / r.kl!.basePpl - 1) < 0.02, `${type}: ppl ${r.ppl} vs ${r.kl!.basePpl}`);
    }
    assert.ok(
      kld.q8_0! < kld.q6_K! && kld.q6_K! < kld.q4_K_M! && kld.q4_K_M! < kld.q4_0!,
      JSON.stringify(kld),
    );
    // At 4.5 bits NVFP4 with searched scales beats Q4_0 (not yet Q4_K_M by KL divergence);
    // MXFP4's power-of-two scales come last.
    assert.ok(kld.nvfp4! < kld.q4_0! && kld.q4_0! < kld.mxfp4!, JSON.stringify(kld));
  });
});

describe("importance statistics (calibration)", () => {
  it("covers every linear weight with the mean square of its inputs, and weighs NVFP4 rounding", async () => {
    const text = readFileSync(join(DEFAULT_MODEL_PATH, "README.md"), "utf8");
    const imp = await collectImportance(DEFAULT_MODEL_PATH, text, { maxChunks: 2 });
    const m = await loadModel(DEFAULT_MODEL_PATH, { numCtx: 64 });
    const c = m.engine.config;
    assert.equal(imp.size, c.numHiddenLayers * 7);
    assert.equal(imp.get("blk.0.attn_q.weight")!.length, c.hiddenSize);
    assert.equal(imp.get("blk.0.ffn_down.weight")!.length, c.intermediateSize);
    // q, k, v and gate, up read the same normalized inputs.
    assert.deepEqual(imp.get("blk.3.attn_q.weight"), imp.get("blk.3.attn_v.weight"));
    assert.deepEqual(imp.get("blk.3.ffn_gate.weight"), imp.get("blk.3.ffn_up.weight"));
    for (const v of imp.values())
      assert.ok(v.every((x) => x >= 0 && Number.isFinite(x)) && v.some((x) => x > 0));
    // Weighted rounding lowers the weighted error it is asked to minimize.
    const w = m.source.tensors.get("blk.0.ffn_down.weight")!;
    const x = toF32(w.buffer, w.byteOffset, w.dtype!, w.shape[0]! * w.shape[1]!);
    const col = imp.get("blk.0.ffn_down.weight")!;
    const weights = new Float32Array(x.length);
    for (let r = 0; r < w.shape[0]!; r++) weights.set(col, r * col.length);
    const g = chooseNvfp4TensorScale(x);
    assert.ok(nvfp4Error(x, g, weights) < 0.995 * weightedError(x, quantizeNvfp4(x, g), g, weights));
  });
});

function weightedError(x: Float32Array, q: Uint8Array, g: number, w: Float32Array): number {
  const d = new Float32Array(x.length);
  quantFormat(DType.NVFP4)!.dequantize(q, d);
  return x.reduce((a, v, i) => a + w[i]! * (d[i]! * g - v) ** 2, 0);
}
