#!/usr/bin/env node
// lmx vs llama.cpp (node-llama-cpp's prebuilt binaries) on the same GGUF, in one run.
// Writes a random-weight Qwen3-0.6B-shape F16 GGUF with lmx's writer (cached in bench/.cache),
// measures prompt processing (pp) and generation (tg) in both engines, alternating, and
// prints medians and ratios.
//
//   node bench/vs-llama-cpp.mjs [--prompt-tokens 512] [--gen-tokens 128] [--runs 3] [--threads 2] [--model FILE]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { writeRandomModel, QWEN3_0_6B } = await import(join(root, "dist/testing/random-model.js"));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const nPrompt = Number(opt("prompt-tokens", 512));
const nGen = Number(opt("gen-tokens", 128));
const runs = Number(opt("runs", 3));
const threads = Number(opt("threads", 2));
let model = opt("model");
if (!model) {
  mkdirSync(join(root, "bench/.cache"), { recursive: true });
  model = join(root, "bench/.cache/qwen3-0.6b-f16.gguf");
  if (!existsSync(model)) {
    process.stderr.write(`writing ${model} ...\n`);
    writeRandomModel(model, QWEN3_0_6B);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function lmx() {
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bin/lmx.js"),
      "bench",
      model,
      "--prompt-tokens",
      String(nPrompt),
      "--gen-tokens",
      String(nGen),
      "--runs",
      "1",
      "--threads",
      String(threads),
      "--json",
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const lm = await llama.loadModel({ modelPath: model });
const vocab = lm.tokens?.vocabSize ?? 151936;
async function llamaCpp() {
  const ctx = await lm.createContext({ contextSize: Math.max(nPrompt, nGen) + 16, batchSize: 512, threads });
  let s = 12345;
  const tok = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % 4096;
  const seq = ctx.getSequence();
  const prompt = Array.from({ length: nPrompt }, tok);
  let t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const pp = (nPrompt * 1000) / (performance.now() - t0);
  await seq.clearHistory();
  let n = 0;
  t0 = performance.now();
  for await (const _ of seq.evaluate([tok()], { temperature: 0 })) if (++n >= nGen) break;
  const tg = (nGen * 1000) / (performance.now() - t0);
  await ctx.dispose();
  return { pp, tg };
}

const ours = { pp: [], tg: [] },
  theirs = { pp: [], tg: [] };
await llamaCpp(); // warm-up
for (let r = 0; r < runs; r++) {
  const a = lmx();
  ours.pp.push(a.pp_tok_s);
  ours.tg.push(a.tg_tok_s);
  const b = await llamaCpp();
  theirs.pp.push(b.pp);
  theirs.tg.push(b.tg);
}
const row = (name, x, y) =>
  `${name.padEnd(8)} lmx ${median(x).toFixed(2).padStart(8)}  llama.cpp ${median(y).toFixed(2).padStart(8)}  ratio ${(median(x) / median(y)).toFixed(2)}`;
console.log(`model ${model} (vocab ${vocab}), ${threads} threads, medians of ${runs} alternating runs`);
console.log(row(`pp${nPrompt}`, ours.pp, theirs.pp));
console.log(row(`tg${nGen}`, ours.tg, theirs.tg));
console.log(JSON.stringify({ lmx: ours, llama_cpp: theirs }));
await lm.dispose();
await llama.dispose();
