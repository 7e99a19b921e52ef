#!/usr/bin/env node
// Checks lmx's importance-weighted quantizers byte for byte against llama.cpp's: collects
// importance for a model from a calibration text with lmx, writes it in llama.cpp's legacy
// imatrix format (ncall 1, so llama-quantize uses the values as they are), quantizes the
// same F32/F16 GGUF with llama-quantize --imatrix and with lmx's quantizeModel given the
// same importance, and compares every tensor's bytes. Needs bench/build-llama-bench.sh.
//
//   node bench/imatrix-check.mjs [--model models/tiny-qwen3] [--text README.md]
//        [--types q4_0,q4_K_M,q5_K_M,q6_K]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const model = opt("model", join(root, "models/tiny-qwen3"));
const text = readFileSync(opt("text", join(root, "README.md")), "utf8");
const types = opt("types", "q4_0,q4_K_M,q5_K_M,q6_K").split(",");
const LLAMA_TYPE = { q4_0: "Q4_0", q4_K_M: "Q4_K_M", q5_K_M: "Q5_K_M", q6_K: "Q6_K" };

const quantizeBin = join(root, "bench/llama.cpp/src/build/bin/llama-quantize");
if (!existsSync(quantizeBin)) {
  console.error("llama-quantize is not built: run bench/build-llama-bench.sh");
  process.exit(1);
}
const { collectImportance } = await import(join(root, "dist/formats/importance.js"));
const { quantizeModel } = await import(join(root, "dist/formats/quantize-model.js"));
const { convertHfToGguf } = await import(join(root, "dist/formats/convert.js"));
const { readGguf } = await import(join(root, "dist/formats/gguf/read.js"));

const dir = join(root, "bench/.cache/imatrix-check");
mkdirSync(dir, { recursive: true });
// The unquantized GGUF both quantize from (the Hugging Face folder converted as stored).
const base = join(dir, "base.gguf");
if (!existsSync(base)) convertHfToGguf(model, base);

const importance = await collectImportance(model, text);
// Legacy imatrix: n_entries, then per entry: name length, name, ncall, nval, values.
const parts = [];
const i32 = (v) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  parts.push(b);
};
i32(importance.size);
for (const [name, values] of importance) {
  const nb = Buffer.from(name, "utf8");
  i32(nb.length);
  parts.push(nb);
  i32(1);
  i32(values.length);
  parts.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
}
const imatrix = join(dir, "imatrix.dat");
writeFileSync(imatrix, Buffer.concat(parts));

let failed = 0;
for (const type of types) {
  const ours = join(dir, `lmx-${type}.gguf`),
    theirs = join(dir, `llama-${type}.gguf`);
  quantizeModel(base, ours, type, undefined, { importance });
  const r = spawnSync(quantizeBin, ["--imatrix", imatrix, base, theirs, LLAMA_TYPE[type]], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(r.stderr);
  const a = readGguf(ours),
    b = readGguf(theirs);
  const byName = new Map(b.tensors.map((t) => [t.name, t]));
  let same = 0,
    differ = [];
  for (const t of a.tensors) {
    const u = byName.get(t.name);
    const x = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    const y = u && new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
    if (u && u.typeName === t.typeName && Buffer.compare(Buffer.from(x), Buffer.from(y)) === 0) same++;
    else differ.push(`${t.name} (${t.typeName} vs ${u?.typeName ?? "missing"})`);
  }
  console.log(
    `${type}: ${same}/${a.tensors.length} tensors identical${differ.length ? `; differ: ${differ.slice(0, 6).join(", ")}${differ.length > 6 ? ", …" : ""}` : ""}`,
  );
  if (differ.length) failed++;
}
process.exit(failed ? 1 : 0);
