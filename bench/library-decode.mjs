#!/usr/bin/env node
// Decode speed through the library API, as a Node program uses lmx: loadModel(file) then
// model.generate(prompt) (the runner's loop: sampling, stop rules, detokenized text per
// token), against node-llama-cpp's own loop on the same file (bench/node-llama-cpp-bench.mjs,
// in a child process), alternating, medians of the runs.
//
//   node bench/library-decode.mjs FILE [--threads 2] [--gen 64] [--runs 3] [--no-mmap]
//
// --no-mmap loads lmx's weights with useMmap: false (read into 2 MiB pages); node-llama-cpp
// keeps its default (mapped) either way.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const file = args[0];
if (!file || file.startsWith("--")) {
  console.error("usage: node bench/library-decode.mjs FILE [--threads 2] [--gen 64] [--runs 3] [--no-mmap]");
  process.exit(1);
}
const threads = Number(opt("threads", 2)),
  nGen = Number(opt("gen", 64)),
  runs = Number(opt("runs", 3));
const { loadModel } = await import(join(root, "dist/index.js"));
const useMmap = !args.includes("--no-mmap");
const model = await loadModel(file, { threads, numCtx: nGen + 64, useMmap });

let s = 12345;
const prompt = () => Array.from({ length: 8 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % 4096);
const lmxOnce = async () => {
  // One token per pass, as node-llama-cpp decodes: the loop per token is what is compared.
  const g = model.generate(prompt(), { temperature: 0, numPredict: nGen, numDraft: 0 });
  for await (const _ of g);
  const st = await g.stats;
  return (st.genTokens * 1000) / st.genMs;
};
const nodeOnce = () => {
  const r = spawnSync(
    process.execPath,
    [join(root, "bench/node-llama-cpp-bench.mjs"), file, String(threads), "0", String(nGen), "1"],
    { encoding: "utf8", cwd: root },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).tg;
};
const med = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
await lmxOnce(); // warm-up
const a = [],
  b = [];
for (let r = 0; r < runs; r++) {
  a.push(await lmxOnce());
  b.push(nodeOnce());
}
const out = {
  file,
  threads,
  gen: nGen,
  lmx_use_mmap: useMmap,
  lmx_generate_tok_s: med(a),
  node_llama_cpp_tok_s: med(b),
  ratio: med(a) / med(b),
};
console.log(JSON.stringify(out));
