#!/usr/bin/env node
// lmx's tokenizer vs @huggingface/tokenizers on the embedded model's tokenizer.json:
// do they produce the same ids, and how fast is a long agent transcript (re-tokenized on
// every request) in each? Medians of 5 runs, cold (fresh tokenizer) and warm.
//
//   node bench/tokenizers.mjs [--repeat N]
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { tokenizerFromHf } = await import(join(root, "dist/tokenizer/load.js"));
const dir = join(root, "models/tiny-qwen3");
const at = process.argv.indexOf("--repeat");
const repeat = at >= 0 ? Number(process.argv[at + 1]) : 2;
const text = readFileSync(join(dir, "eval.txt"), "utf8").repeat(repeat);
const tj = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const tc = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
function time(make) {
  const cold = [],
    warm = [];
  let ids;
  for (let r = 0; r < 5; r++) {
    const t = make();
    let t0 = performance.now();
    ids = t(text);
    cold.push(performance.now() - t0);
    t0 = performance.now();
    t(text);
    warm.push(performance.now() - t0);
  }
  return { ids, cold: median(cold), warm: median(warm) };
}

const ours = time(() => {
  const t = tokenizerFromHf(dir).tokenizer;
  return (s) => t.encode(s);
});
const theirs = time(() => {
  const t = new HfTokenizer(tj, tc);
  return (s) => t.encode(s, { add_special_tokens: false }).ids;
});
let same = ours.ids.length === theirs.ids.length;
let firstDiff = -1;
for (let i = 0; i < Math.min(ours.ids.length, theirs.ids.length); i++) {
  if (ours.ids[i] !== theirs.ids[i]) {
    same = false;
    firstDiff = i;
    break;
  }
}
console.log(
  `text: ${text.length} chars, ${ours.ids.length} tokens (lmx) / ${theirs.ids.length} (@huggingface/tokenizers)`,
);
console.log(`identical ids: ${same}${firstDiff >= 0 ? ` (first difference at token ${firstDiff})` : ""}`);
console.log(`lmx                     cold ${ours.cold.toFixed(1)} ms, warm ${ours.warm.toFixed(1)} ms`);
console.log(`@huggingface/tokenizers cold ${theirs.cold.toFixed(1)} ms, warm ${theirs.warm.toFixed(1)} ms`);
