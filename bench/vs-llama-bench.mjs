#!/usr/bin/env node
// lmx vs llama.cpp's llama-bench on the same random-weight Qwen3-0.6B-shape GGUFs, in one
// run, with a memory-bandwidth probe on lmx's own thread pool for the decode bound.
// Files are written by lmx (F16 and Q8_0 by its writer, Q4_K_M by `lmx create`), cached in
// bench/.cache. Build llama-bench first: bench/build-llama-bench.sh
//
//   node bench/vs-llama-bench.mjs [--types f16,q8_0,q4_K_M] [--threads 1,2] [--prompt 512] [--gen 64] [--runs 3]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { writeRandomModel, QWEN3_0_6B } = await import(join(root, "dist/testing/random-model.js"));
const { quantizeModel } = await import(join(root, "dist/formats/quantize-model.js"));
const { native } = await import(join(root, "dist/native.js"));

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const types = opt("types", "f16,q8_0,q4_K_M").split(",");
const threadsList = opt("threads", "1,2").split(",").map(Number);
const nPrompt = Number(opt("prompt", 512)),
  nGen = Number(opt("gen", 64)),
  runs = Number(opt("runs", 3));
const llamaBench = join(root, "bench/llama.cpp/src/build/bin/llama-bench");
if (!existsSync(llamaBench)) {
  console.error("llama-bench is not built: run bench/build-llama-bench.sh");
  process.exit(1);
}

const cache = join(root, "bench/.cache");
mkdirSync(cache, { recursive: true });
function file(type) {
  const path = join(cache, `qwen3-0.6b-${type}.gguf`);
  if (existsSync(path)) return path;
  process.stderr.write(`writing ${path} ...\n`);
  if (type === "f16") writeRandomModel(path, QWEN3_0_6B);
  else if (type === "q8_0") writeRandomModel(path, { ...QWEN3_0_6B, dtype: 14 });
  else quantizeModel(file("f16"), path, type);
  return path;
}

function lmx(path, threads) {
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bin/lmx.js"),
      "bench",
      path,
      "--prompt-tokens",
      String(nPrompt),
      "--gen-tokens",
      String(nGen),
      "--runs",
      String(runs),
      "--threads",
      String(threads),
      "--json",
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function llama(path, threads) {
  const r = spawnSync(
    llamaBench,
    [
      "-m",
      path,
      "-p",
      String(nPrompt),
      "-n",
      String(nGen),
      "-t",
      String(threads),
      "-r",
      String(runs),
      "-o",
      "json",
    ],
    {
      encoding: "utf8",
      env: { ...process.env, LD_LIBRARY_PATH: dirname(llamaBench) },
    },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const rows = JSON.parse(r.stdout);
  const pick = (pred) => rows.find(pred)?.avg_ts ?? NaN;
  return {
    pp: pick((x) => x.n_prompt > 0 && x.n_gen === 0),
    tg: pick((x) => x.n_gen > 0 && x.n_prompt === 0),
  };
}

const rows = [];
for (const type of types) {
  const path = file(type);
  for (const threads of threadsList) {
    native().setThreads(threads);
    const bw = native().bandwidthProbe(1024, 5);
    const a = lmx(path, threads);
    const b = llama(path, threads);
    const bound = (bw * 1e9) / a.weight_bytes;
    rows.push({
      type,
      threads,
      lmx_pp: a.pp_tok_s,
      llama_pp: b.pp,
      lmx_tg: a.tg_tok_s,
      llama_tg: b.tg,
      bandwidth_gbs: bw,
      tg_bound: bound,
    });
  }
}
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
console.log(
  `| type | threads | pp${nPrompt} lmx | pp${nPrompt} llama-bench | ratio | tg${nGen} lmx | tg${nGen} llama-bench | ratio | bandwidth GB/s | tg bound | lmx share of bound |`,
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.type} | ${r.threads} | ${f(r.lmx_pp)} | ${f(r.llama_pp)} | ${f(r.lmx_pp / r.llama_pp, 2)} | ${f(r.lmx_tg)} | ${f(r.llama_tg)} | ${f(r.lmx_tg / r.llama_tg, 2)} | ${f(r.bandwidth_gbs)} | ${f(r.tg_bound)} | ${f((100 * r.lmx_tg) / r.tg_bound, 0)}% |`,
  );
}
console.log(JSON.stringify(rows));
