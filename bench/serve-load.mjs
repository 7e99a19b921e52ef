#!/usr/bin/env node
// Load on `lmx serve`: N concurrent streaming clients (default 1, 4, 8, 16, 32) for a fixed
// time each, against a real server on a loopback port with the embedded tiny model (or
// --model NAME from LMX_MODELS). Reports aggregate generated tokens/s, p50/p99 time to
// first token, errors, and the runner process's peak resident memory.
//
//   node bench/serve-load.mjs [--clients 1,4,8,16,32] [--seconds 10] [--parallel 8] [--predict 64] [--model tiny-qwen3]
//                             [--num-draft N]   (speculative decoding's option; default: the server's)
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { startServer } = await import(join(root, "dist/server/server.js"));
const { createLogger } = await import(join(root, "dist/server/log.js"));
const { ModelStore } = await import(join(root, "dist/store/store.js"));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const clientsList = opt("clients", "1,4,8,16,32").split(",").map(Number);
const seconds = Number(opt("seconds", 10));
const parallel = Number(opt("parallel", 8));
const predict = Number(opt("predict", 64));
const model = opt("model", "tiny-qwen3");
const numDraft = opt("num-draft", undefined);

const tmp = mkdtempSync(join(tmpdir(), "lmx-load-"));
const store = process.env.LMX_MODELS
  ? new ModelStore(process.env.LMX_MODELS)
  : new ModelStore(join(tmp, "models"));
const srv = await startServer({
  port: 0,
  store,
  numParallel: parallel,
  log: createLogger({ dir: join(tmp, "logs"), quiet: true }),
});
const prompts = [
  "Once upon a time",
  "The history of",
  "def fibonacci(n):",
  "In a small village",
  "The best way to",
  "Dear diary,",
];

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

async function client(i, until, out) {
  let k = i;
  while (performance.now() < until) {
    const t0 = performance.now();
    let first = 0;
    try {
      const res = await fetch(`${srv.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({
          model,
          prompt: prompts[k++ % prompts.length],
          raw: true,
          options: {
            num_predict: predict,
            temperature: 0.8,
            seed: k,
            ...(numDraft === undefined ? {} : { num_draft: Number(numDraft) }),
          },
        }),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      let buf = "";
      const dec = new TextDecoder();
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const j = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (j.error) throw new Error(j.error);
          if (!first && !j.done) first = performance.now() - t0;
          if (j.done) {
            out.tokens += j.eval_count;
            out.ttft.push(first || performance.now() - t0);
          }
        }
      }
    } catch (e) {
      out.errors++;
      out.lastError = e.message;
    }
  }
}

function peakRss() {
  const m = srv.service.scheduler.loaded.values().next().value;
  if (!m?.client.pid) return NaN;
  const s = readFileSync(`/proc/${m.client.pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(s)[1]) / 1024;
}

// Warm-up: load the model.
await fetch(`${srv.url}/api/generate`, {
  method: "POST",
  body: JSON.stringify({ model, prompt: "hi", raw: true, stream: false, options: { num_predict: 4 } }),
});
console.log(
  `model ${model}, LMX_NUM_PARALLEL=${parallel}, ${seconds} s per level, ${predict} tokens per request`,
);
console.log(
  "clients | tok/s agg | x single | TTFT p50 ms | TTFT p99 ms | requests | errors | runner peak RSS MiB",
);
let single = NaN;
for (const n of clientsList) {
  const out = { tokens: 0, ttft: [], errors: 0 };
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: n }, (_, i) => client(i, until, out)));
  const rate = out.tokens / ((performance.now() - t0) / 1000);
  if (n === 1) single = rate;
  console.log(
    `${String(n).padStart(7)} | ${rate.toFixed(1).padStart(9)} | ${(rate / single).toFixed(2).padStart(8)} | ${pct(out.ttft, 50).toFixed(0).padStart(11)} | ${pct(out.ttft, 99).toFixed(0).padStart(11)} | ${String(out.ttft.length).padStart(8)} | ${String(out.errors).padStart(6)} | ${peakRss().toFixed(0)}${out.lastError ? `  (${out.lastError})` : ""}`,
  );
}
await srv.close();
rmSync(tmp, { recursive: true, force: true });
