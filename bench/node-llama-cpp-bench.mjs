#!/usr/bin/env node
// node-llama-cpp's own loop on one GGUF: prompt processing and generation, medians over runs
// after a warm-up; prints {"pp", "tg"} as JSON. Used by vs-llama-bench.mjs in a child process
// (so that its threads and memory do not stay in the parent).
//
//   node bench/node-llama-cpp-bench.mjs FILE THREADS PROMPT_TOKENS GEN_TOKENS RUNS
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
const [path, threads, nPrompt, nGen, runs] = process.argv.slice(2).map((v, i) => (i ? Number(v) : v));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: path });
let s = 12345;
const tok = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % 4096;
const once = async () => {
  const ctx = await model.createContext({
    contextSize: Math.max(nPrompt, nGen) + 16,
    batchSize: 512,
    threads,
  });
  const seq = ctx.getSequence();
  let pp = NaN,
    tg = NaN;
  if (nPrompt > 0) {
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(Array.from({ length: nPrompt }, tok));
    pp = (nPrompt * 1000) / (performance.now() - t0);
    await seq.clearHistory();
  }
  if (nGen > 0) {
    let n = 0;
    const t0 = performance.now();
    for await (const _ of seq.evaluate([tok()], { temperature: 0 })) if (++n >= nGen) break;
    tg = (nGen * 1000) / (performance.now() - t0);
  }
  await ctx.dispose();
  return { pp, tg };
};
await once();
const pps = [],
  tgs = [];
for (let r = 0; r < runs; r++) {
  const x = await once();
  pps.push(x.pp);
  tgs.push(x.tg);
}
const med = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
process.stdout.write(JSON.stringify({ pp: med(pps), tg: med(tgs) }));
await model.dispose();
await llama.dispose();
