/**
 * llama.cpp (through node-llama-cpp's prebuilt binaries) as the oracle: random-weight
 * GGUF files written by lmx for each family give the same greedy tokens and close top-5
 * probabilities in both engines.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { getLlama, LlamaLogLevel, type Llama, type Token } from "node-llama-cpp";
import { loadModel } from "../../model.js";
import { writeRandomModel, type RandomModelShape } from "../../testing/random-model.js";
import { DType } from "../tensor/dtype.js";

const dir = mkdtempSync(join(tmpdir(), "lmx-oracle-"));
let llama: Llama | undefined;
after(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const base = { vocab: 4096, hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, ffn: 256 };
const CASES: RandomModelShape[] = [
  { ...base, arch: "qwen3", tied: false },
  { ...base, arch: "qwen3", tied: true, dtype: DType.BF16, seed: 5 },
  { ...base, arch: "qwen2", tied: false, seed: 2 },
  { ...base, arch: "llama", tied: false, ropeFreqs: true, seed: 3 },
  { ...base, arch: "llama", tied: true, kvHeads: 1, dtype: DType.F32, seed: 4 },
];

describe("agreement with llama.cpp", () => {
  for (const shape of CASES) {
    it(`${shape.arch} ${DType[shape.dtype ?? DType.F16]} ${shape.tied ? "tied" : "untied"}: greedy tokens and top-5 probabilities`, async () => {
      const path = join(dir, `${shape.arch}-${shape.seed ?? 1}.gguf`);
      writeRandomModel(path, shape);
      llama ??= await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
      const lm = await llama.loadModel({ modelPath: path });
      const ctx = await lm.createContext({ contextSize: 256, threads: 2 });
      const ours = await loadModel(path, { numCtx: 256 });
      const prompt = ours.tokenizer.encode("def fibonacci(n):\n    return");
      const theirs: number[] = [];
      let theirTop: [number, number][] = [];
      for await (const out of ctx.getSequence().evaluateWithMetadata(prompt as Token[], { probabilities: true }, { temperature: 0 })) {
        if (!theirTop.length) theirTop = [...out.probabilities.entries()].slice(0, 5) as [number, number][];
        theirs.push(out.token as number);
        if (theirs.length >= 32) break;
      }
      await ctx.dispose();
      await lm.dispose();
      const mine: number[] = [];
      let myTop: { token: number; logprob: number }[] = [];
      for await (const ev of ours.generate(prompt, { temperature: 0, numPredict: 32, logprobs: 5 })) {
        if (ev.token < 0) continue;
        if (!myTop.length) myTop = ev.top!;
        mine.push(ev.token);
      }
      const same = mine.filter((t, i) => t === theirs[i]).length;
      assert.ok(same >= 30, `only ${same}/32 greedy tokens agree:\n${mine}\n${theirs}`);
      assert.deepEqual(myTop.map((t) => t.token), theirTop.map(([t]) => t));
      myTop.forEach((t, i) => {
        const p = Math.exp(t.logprob), q = theirTop[i]![1];
        assert.ok(Math.abs(p - q) <= 0.02 * q + 1e-4, `top-${i + 1} probability ${p} vs llama.cpp ${q}`);
      });
    });
  }
});
