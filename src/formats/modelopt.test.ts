/** ModelOpt NVFP4 checkpoints: built from tiny-qwen3 with lmx's quantizer, imported without re-quantizing. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DType } from "../engine/tensor/dtype.js";
import { DEFAULT_MODEL_PATH, loadModel } from "../model.js";
import { perplexity } from "../runner/perplexity.js";
import { writeModelOptCheckpoint } from "../testing/modelopt-checkpoint.js";
import { convertHfToGguf } from "./convert.js";
import { readGguf } from "./gguf/read.js";
import { readSafetensors } from "./safetensors.js";
import { encodeSafetensors } from "./safetensors-write.js";

describe("ModelOpt NVFP4 import", () => {
  let dir: string, ckpt: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "lmx-modelopt-"));
    ckpt = join(dir, "tiny-nvfp4");
    writeModelOptCheckpoint(DEFAULT_MODEL_PATH, ckpt);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("runs in NVFP4 (4.5 bits in memory) close to the original", async () => {
    const base = await loadModel(DEFAULT_MODEL_PATH, { numCtx: 512 });
    const m = await loadModel(ckpt, { numCtx: 512 });
    const q = m.source.tensors.get("blk.0.attn_q.weight")!;
    assert.equal(q.dtype, DType.NVFP4);
    assert.equal(q.byteLength, (q.shape[0]! * q.shape[1]! * 4.5) / 8);
    assert.ok(m.source.tensors.has("blk.0.attn_q.scale"));
    assert.ok(m.engine.weightBytes() < 0.6 * base.engine.weightBytes());
    const text = readFileSync(join(DEFAULT_MODEL_PATH, "eval.txt"), "utf8");
    const r = await perplexity(m.engine, m.tokenizer, text, { maxChunks: 6, base: base.engine });
    assert.ok(r.kl!.top1Agree > 0.9, `top-1 ${r.kl!.top1Agree}`);
    assert.ok(Math.abs(r.ppl / r.kl!.basePpl - 1) < 0.02, `ppl ${r.ppl} vs ${r.kl!.basePpl}`);
  });

  it("converts to a GGUF losslessly: same bytes per block, same logits", async () => {
    const out = join(dir, "tiny-nvfp4.gguf");
    convertHfToGguf(ckpt, out);
    const g = readGguf(out);
    assert.equal(g.metadata.get("general.file_type"), 39);
    const t = g.tensors.find((x) => x.name === "blk.1.ffn_down.weight")!;
    assert.equal(t.typeName, "NVFP4");
    const a = await loadModel(ckpt, { numCtx: 256 }),
      b = await loadModel(out, { numCtx: 256 });
    assert.ok(
      Buffer.from(new Uint8Array(t.buffer, t.byteOffset, t.byteLength)).equals(
        Buffer.from(new Uint8Array(a.source.tensors.get("blk.1.ffn_down.weight")!.buffer)),
      ),
    );
    const ids = a.tokenizer.encode("The quick brown fox");
    const la = [],
      lb = [];
    for await (const ev of a.generate(ids, { temperature: 0, numPredict: 16 })) la.push(ev.token);
    for await (const ev of b.generate(ids, { temperature: 0, numPredict: 16 })) lb.push(ev.token);
    assert.deepEqual(la, lb);
  });

  it("refuses NaN scales, missing companions and other algorithms with clear errors", async () => {
    const file = join(ckpt, "model.safetensors");
    const entries = readSafetensors(file);
    const rewrite = (dst: string, edit: (name: string, data: Uint8Array) => Uint8Array | null) => {
      const ts = [];
      for (const e of entries) {
        const d = edit(e.name, new Uint8Array(e.buffer, e.byteOffset, e.byteLength).slice());
        if (d) ts.push({ name: e.name, dtype: e.dtypeName, shape: [...e.shape], data: d });
      }
      for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "hf_quant_config.json"])
        writeFileSync(join(dst, f), readFileSync(join(ckpt, f)));
      writeFileSync(join(dst, "model.safetensors"), encodeSafetensors(ts));
    };
    const nan = join(dir, "nan");
    const miss = join(dir, "miss");
    for (const d of [nan, miss]) rmSync(d, { recursive: true, force: true });
    for (const d of [nan, miss]) mkdirSync(d);
    rewrite(nan, (n, d) =>
      n === "model.layers.0.self_attn.q_proj.weight_scale" ? (d.fill(0x7f, 0, 1), d) : d,
    );
    await assert.rejects(loadModel(nan), /q_proj\.weight_scale row 0 holds a NaN scale/);
    rewrite(miss, (n, d) => (n === "model.layers.0.mlp.up_proj.weight_scale_2" ? null : d));
    await assert.rejects(loadModel(miss), /up_proj\.weight_scale or \.weight_scale_2 is missing/);
    writeFileSync(
      join(miss, "hf_quant_config.json"),
      JSON.stringify({ quantization: { quant_algo: "NVFP4_AWQ" } }),
    );
    await assert.rejects(loadModel(miss), /quant_algo "NVFP4_AWQ" is not supported/);
  });
});
