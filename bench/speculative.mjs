#!/usr/bin/env node
// Speculative decoding by prompt lookup (GenerateOptions.numDraft) against one token per
// pass, through the library API, alternating, medians of the runs; also checks that both
// give the same text. Prompts: "copy" holds a source file and starts it again (what an
// agent does when it rewrites a file it has read: its drafts mostly come true), "fresh"
// repeats nothing (drafts rarely come true: what speculation costs when it does not pay),
// "copy, long context" is "copy" after two more files, "retry" is "fresh" asked again
// (timed the second time: its drafts come from the first answer, still in the cache),
// "predicted" the same from an empty cache with the first answer as its prediction.
//
//   node bench/speculative.mjs [FILE] [--threads 2] [--gen 128] [--runs 3] [--draft 7]
//                              [--temperature 0]
//
// Without FILE, the embedded model. A random-weight model's greedy output soon repeats
// itself, so on such files even "fresh" ends up drafting from the model's own loop.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const file = args[0] && !args[0].startsWith("--") ? args[0] : undefined;
const threads = Number(opt("threads", 2)),
  nGen = Number(opt("gen", 128)),
  runs = Number(opt("runs", 3)),
  numDraft = Number(opt("draft", 7)),
  temperature = Number(opt("temperature", 0));
const { loadModel } = await import(join(root, "dist/index.js"));
const model = await loadModel(file, { threads, numCtx: 4096 });

const read = (f) => readFileSync(join(root, "src/runner", f), "utf8");
const again = (files) =>
  `${files}\n\nThe last file again, unchanged:\n\n${read("stop.ts").split("\n").slice(0, 3).join("\n")}\n`;
const prompts = {
  copy: again(read("stop.ts")),
  // An agent's transcript is longer: the same request after two more files.
  // (Cut to 9000 characters, so that the prompt stays within the context as the files grow.)
  "copy, long context": again(
    `${["speculation.ts", "ngram-drafter.ts"].map(read).join("\n\n").slice(0, 9000)}\n\n${read("stop.ts")}`,
  ),
  fresh: "Write a short story about a lighthouse keeper who finds a message in a bottle.\n\n",
};
const RETRY = Symbol("retry"),
  PREDICTED = Symbol("predicted");
prompts.retry = RETRY;
prompts.predicted = PREDICTED;
const med = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const once = async (prompt, draft) => {
  model.reset();
  const o = { temperature, seed: 1, numPredict: nGen };
  // "retry": the same request answered once (untimed), then again from its cache slot;
  // "predicted": answered once, then again from an empty cache with that answer as the
  // prediction (OpenAI's predicted outputs).
  const again = prompt === RETRY || prompt === PREDICTED;
  const first = again ? await model.generate(prompts.fresh, { ...o, numDraft: 0 }).text() : "";
  if (prompt === PREDICTED) model.reset();
  const g = model.generate(again ? prompts.fresh : prompt, {
    ...o,
    numDraft: draft,
    ...(prompt === PREDICTED ? { prediction: first } : {}),
  });
  const text = await g.text();
  const s = await g.stats;
  return {
    text,
    tps: (s.genTokens * 1000) / s.genMs,
    drafted: s.draftTokens,
    accepted: s.acceptedDrafts,
    promptTokens: s.promptTokens,
  };
};
const rows = [];
for (const [name, prompt] of Object.entries(prompts)) {
  await once(prompt, 0);
  await once(prompt, numDraft); // warm-up: plans of every shape built
  const off = [],
    on = [];
  let same = true;
  for (let r = 0; r < runs; r++) {
    const a = await once(prompt, 0);
    const b = await once(prompt, numDraft);
    off.push(a.tps);
    on.push(b);
    same &&= a.text === b.text;
  }
  const last = on[on.length - 1];
  rows.push({
    prompt: name,
    prompt_tokens: last.promptTokens,
    one_token_tps: med(off),
    speculative_tps: med(on.map((x) => x.tps)),
    speedup: med(on.map((x) => x.tps)) / med(off),
    drafted: last.drafted,
    accepted: last.accepted,
    same_text: same,
  });
}
console.log(
  `${file ?? "embedded model"}, ${threads} threads, ${nGen} tokens, temperature ${temperature}, numDraft ${numDraft}\n`,
);
console.log(
  "| prompt | prompt tokens | one token per pass tok/s | speculative tok/s | speedup | drafts verified / came true | same text |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.prompt} | ${r.prompt_tokens} | ${r.one_token_tps.toFixed(1)} | ${r.speculative_tps.toFixed(1)} | ${r.speedup.toFixed(2)}x | ${r.drafted} / ${r.accepted} | ${r.same_text ? "yes" : "no"} |`,
  );
