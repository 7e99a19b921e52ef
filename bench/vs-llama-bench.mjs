#!/usr/bin/env node
// lmx vs llama.cpp on the same random-weight Qwen3-0.6B-shape GGUFs, in one run: lmx
// (`lmx bench`), llama.cpp's `llama-bench` (built from the source node-llama-cpp ships:
// bench/build-llama-bench.sh), node-llama-cpp's own loop, and a memory-bandwidth probe on
// lmx's thread pool for the decode bound (bandwidth / bytes of weights read per token).
// Files are written by lmx (F16 and Q8_0 by its writer, Q4_K_M and NVFP4 by `lmx create`'s
// quantizer from the F16 file), cached in bench/.cache.
//
//   node bench/vs-llama-bench.mjs [--types f16,q8_0,q4_K_M,nvfp4] [--threads 1,2]
//        [--prompts 512,8192] [--gen 64] [--runs 3] [--long-runs 1] [--no-node-llama-cpp]
//        [--rounds R] [--profile] [--depth D] [--kv-cache-type f16|q8_0] [--json FILE]
//
// --rounds R measures each cell R times in alternation (lmx, llama-bench, node-llama-cpp,
// the bandwidth probe; then again) and reports the medians: on a shared machine whose
// speed drifts from minute to minute, engines measured one after the other can land in a
// fast and a slow minute; alternating rounds spread that over both. Peak RSS is the
// largest of the rounds. Default 1 (one measurement of --runs runs per engine).
//
// --depth D adds prompt processing (the first --prompts length) and decode after a D-token
// context (lmx bench --depth, llama-bench -d): a long conversation's next turn. The decode
// bound counts the K/V rows read per token beside the weights. --kv-cache-type q8_0 runs
// both engines with a q8_0 KV cache (llama-bench -ctk/-ctv; node-llama-cpp is skipped).
// Prompts longer than 2048 tokens are measured --long-runs times (default 1) in each engine.
//
// The probe reads a 1 GiB buffer 15 times in a row (about half a second on one thread).
// The bound is taken from the median read, the same statistic as the engines' speeds (a
// median of runs that each average a whole test); the best read is printed beside it, with
// lmx's share of the bound it gives. On this shared machine two reads a few milliseconds
// apart can differ by 10% and one decode token's head matmul took from 3.9 to 9.1 ms in a
// single run, so a best-of figure sets the bound at the machine's quietest instant, which
// no second-long decode test sees.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { writeRandomModel, QWEN3_0_6B } = await import(join(root, "dist/testing/random-model.js"));
const { quantizeModel } = await import(join(root, "dist/formats/quantize-model.js"));
const { native } = await import(join(root, "dist/native.js"));

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const types = opt("types", "f16,q8_0,q4_K_M,nvfp4").split(",");
const threadsList = opt("threads", "1,2").split(",").map(Number);
const prompts = opt("prompts", "512,8192").split(",").map(Number);
const nGen = Number(opt("gen", 64)),
  runs = Number(opt("runs", 3)),
  longRuns = Number(opt("long-runs", 1));
const withNode = !args.includes("--no-node-llama-cpp");
const profile = args.includes("--profile");
const jsonOut = opt("json", undefined);
const depth = Number(opt("depth", 0));
const kvType = opt("kv-cache-type", "f16");
const runsFor = (n) => (n > 2048 ? longRuns : runs);
const rounds = Number(opt("rounds", 1));
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** Runs measure() `rounds` times and gives each numeric field's median (peak RSS: the most). */
function alternate(measure) {
  const all = Array.from({ length: rounds }, measure);
  const out = { ...all[0] };
  for (const k of Object.keys(out))
    if (typeof out[k] === "number")
      out[k] = k === "peak_rss_bytes" ? Math.max(...all.map((x) => x[k])) : median(all.map((x) => x[k]));
  return out;
}

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

// lmx as a user starts it: bin/lmx.js itself, with the V8 flags of its #! line.
function lmx(path, threads, nPrompt, gen, d = 0) {
  const r = spawnSync(
    join(root, "bin/lmx.js"),
    [
      "bench",
      path,
      "--depth",
      String(d),
      "--prompt-tokens",
      String(nPrompt),
      "--gen-tokens",
      String(gen),
      "--runs",
      String(runsFor(nPrompt)),
      "--threads",
      String(threads),
      "--json",
      "--kv-cache-type",
      kvType,
      ...(profile ? ["--profile"] : []),
    ],
    { encoding: "utf8", maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function llama(path, threads, nPrompt, gen, d = 0) {
  const r = spawnSync(
    llamaBench,
    [
      "-m",
      path,
      "-d",
      String(d),
      "-p",
      String(nPrompt),
      "-n",
      String(gen),
      "-t",
      String(threads),
      "-r",
      String(runsFor(nPrompt)),
      "-ctk",
      kvType,
      "-ctv",
      kvType,
      "-o",
      "json",
    ],
    { encoding: "utf8", env: { ...process.env, LD_LIBRARY_PATH: dirname(llamaBench) } },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const rows = JSON.parse(r.stdout);
  const pick = (pred) => rows.find(pred)?.avg_ts ?? NaN;
  return {
    pp: pick((x) => x.n_prompt > 0 && x.n_gen === 0),
    tg: pick((x) => x.n_gen > 0 && x.n_prompt === 0),
  };
}

// node-llama-cpp in a child process, so its threads and memory do not stay in this one.
function nodeLlama(path, threads, nPrompt, gen) {
  if (!withNode || kvType !== "f16") return { pp: NaN, tg: NaN };
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bench/node-llama-cpp-bench.mjs"),
      path,
      String(threads),
      String(nPrompt),
      String(gen),
      String(runsFor(nPrompt)),
    ],
    { encoding: "utf8", cwd: root },
  );
  if (r.status !== 0) {
    process.stderr.write(`node-llama-cpp failed on ${path}: ${r.stderr.slice(-400)}\n`);
    return { pp: NaN, tg: NaN };
  }
  return JSON.parse(r.stdout);
}

const rows = [],
  deep = [];
for (const type of types) {
  const path = file(type);
  for (const threads of threadsList) {
    native().setThreads(threads);
    let bw = NaN;
    prompts.forEach((nPrompt, i) => {
      const gen = i === 0 ? nGen : 0; // decode once per type and thread count
      process.stderr.write(`${type}, ${threads} threads, pp${nPrompt}${gen ? ` + tg${gen}` : ""} ...\n`);
      const m = alternate(() => {
        const a = lmx(path, threads, nPrompt, gen);
        const b = llama(path, threads, nPrompt, gen);
        const c = nodeLlama(path, threads, nPrompt, gen);
        const reads = native().bandwidthProbe(1024, 15);
        const bandwidth = median(reads);
        const best = reads.length ? Math.max(...reads) : NaN; // empty: the buffer was not mapped
        return {
          lmx_pp: a.pp_tok_s,
          llama_pp: b.pp,
          node_llama_pp: c.pp,
          lmx_tg: a.tg_tok_s ?? NaN,
          llama_tg: b.tg,
          node_llama_tg: c.tg,
          bandwidth_gbs: bandwidth,
          bandwidth_best_gbs: best,
          tg_bound: (bandwidth * 1e9) / a.weight_bytes,
          tg_bound_best: (best * 1e9) / a.weight_bytes,
          weight_bytes: a.weight_bytes,
          kv_bytes: a.kv_bytes,
          peak_rss_bytes: a.peak_rss_bytes,
          ...(a.profile ? { profile: a.profile } : {}),
        };
      });
      bw = m.bandwidth_gbs;
      rows.push({ type, threads, prompt: nPrompt, gen, ...m });
    });
    if (depth > 0) {
      process.stderr.write(
        `${type}, ${threads} threads, pp${prompts[0]} + tg${nGen} at depth ${depth} ...\n`,
      );
      const a = lmx(path, threads, prompts[0], nGen, depth);
      const b = llama(path, threads, prompts[0], nGen, depth);
      deep.push({
        type,
        threads,
        prompt: prompts[0],
        lmx_pp: a.pp_tok_s,
        llama_pp: b.pp,
        lmx_tg: a.tg_tok_s,
        llama_tg: b.tg,
        bandwidth_gbs: bw,
        tg_bound: (bw * 1e9) / (a.weight_bytes + depth * a.kv_bytes_per_token),
        ...(a.profile ? { profile: a.profile } : {}),
      });
    }
  }
}

const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const ratio = (x, y) => f(x / y, 2);
console.log(`prompt processing (tok/s; ratios are lmx / other; ${kvType} KV cache)\n`);
console.log(
  "| type | threads | prompt | lmx | llama-bench | node-llama-cpp | lmx/llama-bench | lmx/node-llama-cpp | peak RSS / (weights + KV) |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.type} | ${r.threads} | ${r.prompt} | ${f(r.lmx_pp)} | ${f(r.llama_pp)} | ${f(r.node_llama_pp)} | ${ratio(r.lmx_pp, r.llama_pp)} | ${ratio(r.lmx_pp, r.node_llama_pp)} | ${f(r.peak_rss_bytes / (r.weight_bytes + r.kv_bytes), 2)} |`,
  );
console.log(
  `\ndecode (tg${nGen}, tok/s; bound = probed bandwidth / weight bytes, from the median read; best read beside it)\n`,
);
console.log(
  "| type | threads | lmx | llama-bench | node-llama-cpp | lmx/llama-bench | lmx/node-llama-cpp | bandwidth GB/s median / best | bound | lmx share of bound | share of best-read bound |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows.filter((r) => r.gen > 0))
  console.log(
    `| ${r.type} | ${r.threads} | ${f(r.lmx_tg)} | ${f(r.llama_tg)} | ${f(r.node_llama_tg)} | ${ratio(r.lmx_tg, r.llama_tg)} | ${ratio(r.lmx_tg, r.node_llama_tg)} | ${f(r.bandwidth_gbs)} / ${f(r.bandwidth_best_gbs)} | ${f(r.tg_bound)} | ${f((100 * r.lmx_tg) / r.tg_bound, 0)}% | ${f((100 * r.lmx_tg) / r.tg_bound_best, 0)}% |`,
  );
if (deep.length) {
  console.log(
    `\nafter ${depth} tokens (pp${prompts[0]} and tg${nGen}; decode bound = bandwidth / (weights + K/V of ${depth} positions))\n`,
  );
  console.log(
    "| type | threads | pp lmx | pp llama-bench | pp lmx/llama-bench | tg lmx | tg llama-bench | tg lmx/llama-bench | tg bound | lmx share of bound |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of deep)
    console.log(
      `| ${r.type} | ${r.threads} | ${f(r.lmx_pp)} | ${f(r.llama_pp)} | ${ratio(r.lmx_pp, r.llama_pp)} | ${f(r.lmx_tg)} | ${f(r.llama_tg)} | ${ratio(r.lmx_tg, r.llama_tg)} | ${f(r.tg_bound)} | ${f((100 * r.lmx_tg) / r.tg_bound, 0)}% |`,
    );
}
const scaling = [];
for (const type of types)
  for (const prompt of prompts) {
    const one = rows.find((r) => r.type === type && r.threads === 1 && r.prompt === prompt);
    const two = rows.find((r) => r.type === type && r.threads === 2 && r.prompt === prompt);
    if (one && two)
      scaling.push({
        type,
        prompt,
        pp: two.lmx_pp / one.lmx_pp,
        tg: two.gen ? two.lmx_tg / one.lmx_tg : NaN,
      });
  }
if (scaling.length) {
  console.log("\nlmx, 2 threads / 1 thread\n");
  console.log("| type | prompt | pp | tg |");
  console.log("|---|---|---|---|");
  for (const s of scaling) console.log(`| ${s.type} | ${s.prompt} | ${f(s.pp, 2)} | ${f(s.tg, 2)} |`);
}
if (jsonOut)
  writeFileSync(jsonOut, JSON.stringify([...rows, ...deep.map((r) => ({ ...r, depth }))], null, 1));
else console.log(JSON.stringify(rows));
