#!/usr/bin/env node
// The quality/size/speed table of lmx's quantization types on the embedded tiny-qwen3:
// perplexity of its eval.txt (llama.cpp's method, ctx 512), KL divergence and top-1
// agreement against the bf16 original, file size, bits per weight and decode speed.
//
//   node bench/quant-quality.mjs [--types q8_0,q6_K,q5_K_M,q4_K_M,q4_0,nvfp4,mxfp4] [--calibration FILE]
//
// With --calibration, each type is also quantized with importance statistics collected on
// FILE (an imatrix: `lmx create --calibration`), as extra rows "TYPE + imatrix".
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { loadModel, DEFAULT_MODEL_PATH } = await import(join(root, "dist/index.js"));
const { perplexity } = await import(join(root, "dist/runner/perplexity.js"));
const { quantizeModel } = await import(join(root, "dist/formats/quantize-model.js"));
const { collectImportance } = await import(join(root, "dist/formats/importance.js"));

const args = process.argv.slice(2);
const types = (
  args.includes("--types") ? args[args.indexOf("--types") + 1] : "q8_0,q6_K,q5_K_M,q4_K_M,q4_0,nvfp4,mxfp4"
).split(",");
const text = readFileSync(join(DEFAULT_MODEL_PATH, "eval.txt"), "utf8");
const calibrationFile = args.includes("--calibration") ? args[args.indexOf("--calibration") + 1] : undefined;
const importance = calibrationFile
  ? await collectImportance(DEFAULT_MODEL_PATH, readFileSync(calibrationFile, "utf8"))
  : undefined;
const dir = mkdtempSync(join(tmpdir(), "lmx-quality-"));
const base = await loadModel(DEFAULT_MODEL_PATH, { numCtx: 512 });
const params = base.engine.parameterCount();

function decode(path) {
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bin/lmx.js"),
      "bench",
      path,
      "--prompt-tokens",
      "0",
      "--gen-tokens",
      "128",
      "--runs",
      "3",
      "--json",
    ],
    { encoding: "utf8" },
  );
  return JSON.parse(r.stdout).tg_tok_s;
}

const rows = [];
const basePpl = (await perplexity(base.engine, base.tokenizer, text)).ppl;
rows.push({
  type: "bf16",
  ppl: basePpl,
  dppl: 0,
  kld: 0,
  top1: 1,
  mb: statSync(join(DEFAULT_MODEL_PATH, "model.safetensors")).size / 1e6,
  bpw: 16,
  tg: decode(DEFAULT_MODEL_PATH),
});
const variants = types.flatMap((type) => [
  { type, label: type },
  ...(importance ? [{ type, label: `${type} + imatrix`, weights: importance }] : []),
]);
for (const { type, label, weights } of variants) {
  const path = join(dir, `tiny-${type}.gguf`);
  const report = quantizeModel(DEFAULT_MODEL_PATH, path, type, undefined, { importance: weights });
  const m = await loadModel(path, { numCtx: 512 });
  const r = await perplexity(m.engine, m.tokenizer, text, { base: base.engine });
  rows.push({
    type: label,
    ppl: r.ppl,
    dppl: r.ppl - basePpl,
    kld: r.kl.kldMean,
    top1: r.kl.top1Agree,
    mb: statSync(path).size / 1e6,
    bpw: (report.bytes * 8) / params,
    tg: decode(path),
  });
}
rmSync(dir, { recursive: true, force: true });
console.log(
  "| type | ppl | Δppl vs bf16 | mean KLD | top-1 agreement | file MB | bits/weight | decode tok/s |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.type} | ${r.ppl.toFixed(3)} | ${r.dppl >= 0 ? "+" : ""}${r.dppl.toFixed(3)} | ${r.kld.toExponential(2)} | ${(100 * r.top1).toFixed(2)}% | ${r.mb.toFixed(2)} | ${r.bpw.toFixed(2)} | ${r.tg.toFixed(0)} |`,
  );
}
