/**
 * Every architecture on tiny random configs (mlx-lm's model_test_runner): the cpu backend
 * matches the reference backend; a chunked prefill followed by decode steps gives the
 * same logits as one full forward; two sequences batched together give what each gives alone.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openModelSource } from "../../formats/model-source.js";
import { writeRandomModel, type RandomModelShape } from "../../testing/random-model.js";
import { CpuBackend } from "../backends/cpu/index.js";
import { ReferenceBackend } from "../backends/reference/index.js";
import { EngineModel, paddedRows } from "../engine-model.js";
import { DType } from "../tensor/dtype.js";

const dir = mkdtempSync(join(tmpdir(), "lmx-models-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SHAPES: RandomModelShape[] = [
  { arch: "qwen3", vocab: 4200, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, tied: true },
  { arch: "qwen2", vocab: 4200, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, tied: false, dtype: DType.BF16 },
  { arch: "llama", vocab: 4200, hidden: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 16, ffn: 96, tied: false, ropeFreqs: true, dtype: DType.F32 },
];

const tokens = Array.from({ length: 23 }, (_, i) => (i * 577 + 13) % 4096);

async function fullForward(m: EngineModel, toks: number[], seq = 0): Promise<Float32Array> {
  m.cache.truncate(seq, 0);
  m.cache.reserve(seq, toks.length);
  await m.forward({ tokens: toks, positions: toks.map((_, i) => i), seqs: toks.map(() => seq), outRows: toks.map((_, i) => i) });
  return m.logits(toks.length, toks.length).slice();
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

for (const shape of SHAPES) {
  describe(`${shape.arch} (${DType[shape.dtype ?? DType.F16]}, ${shape.tied ? "tied" : "untied"})`, () => {
    const path = join(dir, `${shape.arch}.gguf`);
    writeRandomModel(path, shape);
    const src = openModelSource(path);

    it("cpu logits match the reference backend", async () => {
      const cpu = await fullForward(new EngineModel(new CpuBackend(), src, { numCtx: 64 }), tokens);
      const ref = await fullForward(new EngineModel(new ReferenceBackend(), src, { numCtx: 64 }), tokens);
      assert.equal(cpu.length, tokens.length * 4200);
      assert.ok(maxRelDiff(cpu, ref) < 2e-3, `relative difference ${maxRelDiff(cpu, ref)}`);
    });

    it("chunked prefill plus decode equals one full forward", async () => {
      const m = new EngineModel(new CpuBackend(), src, { numCtx: 64, blockSize: 4 });
      const full = await fullForward(m, tokens);
      m.cache.truncate(0, 0);
      const V = 4200;
      const steps: Float32Array[] = [];
      // chunks of 9 and 7 rows, then one token at a time
      for (const [from, to] of [[0, 9], [9, 16]] as const) {
        m.cache.reserve(0, to);
        const t = tokens.slice(from, to);
        await m.forward({ tokens: t, positions: t.map((_, i) => from + i), seqs: t.map(() => 0), outRows: t.map((_, i) => i) });
        steps.push(m.logits(t.length, t.length).slice());
      }
      for (let p = 16; p < tokens.length; p++) {
        m.cache.reserve(0, p + 1);
        await m.forward({ tokens: [tokens[p]!], positions: [p], seqs: [0], outRows: [0] });
        steps.push(m.logits(1, 1).slice());
      }
      const joined = new Float32Array(tokens.length * V);
      let o = 0;
      for (const s of steps) {
        joined.set(s, o);
        o += s.length;
      }
      assert.ok(maxRelDiff(joined, full) < 2e-3, `relative difference ${maxRelDiff(joined, full)}`);
    });

    it("two sequences in one batch match each alone", async () => {
      const m = new EngineModel(new CpuBackend(), src, { numCtx: 64, numSeq: 2, blockSize: 4 });
      const a = tokens.slice(0, 11), b = tokens.slice(5, 19);
      const aloneA = await fullForward(m, a, 0);
      const aloneB = await fullForward(m, b, 1);
      m.cache.truncate(0, 0);
      m.cache.truncate(1, 0);
      m.cache.reserve(0, a.length);
      m.cache.reserve(1, b.length);
      const rows = [...a.map((t, i) => [t, i, 0]), ...b.map((t, i) => [t, i, 1])];
      await m.forward({ tokens: rows.map((r) => r[0]!), positions: rows.map((r) => r[1]!), seqs: rows.map((r) => r[2]!), outRows: rows.map((_, i) => i) });
      const both = m.logits(rows.length, rows.length);
      assert.ok(maxRelDiff(both.subarray(0, aloneA.length), aloneA) < 2e-3);
      assert.ok(maxRelDiff(both.subarray(aloneA.length), aloneB) < 2e-3);
    });
  });
}

describe("batch shapes", () => {
  it("pad to exact sizes up to 4, multiples of 4 up to 16, then multiples of 32", () => {
    const got = [1, 2, 3, 4, 5, 8, 9, 13, 16, 17, 32, 33, 512].map(paddedRows);
    assert.deepEqual(got, [1, 2, 3, 4, 8, 8, 12, 16, 16, 32, 32, 64, 512]);
  });
});
