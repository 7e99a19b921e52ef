/** `lmx bench [MODEL]`: prompt-processing and generation speed, medians over runs. */
import { readFileSync } from "node:fs";
import type { ProfileEntry } from "../engine/backends/backend.js";
import { loadModel } from "../model.js";
import { DEFAULT_OPTIONS } from "../runner/options.js";
import { parseArgs, UsageError } from "./args.js";
import { kvCacheTypeFlag } from "./kv-cache-type.js";
import { resolveModel } from "./resolve-model.js";

const HELP = `Usage: lmx bench [MODEL] [flags]

Measures prompt processing (a prompt of N random tokens from an empty cache, as
llama-bench's pp test) and generation (M tokens one at a time from an empty cache,
as llama-bench's tg test). Reports medians over runs, after one warm-up run.
With --depth D both tests start after a context of D random tokens (prefilled
once, not timed), as llama-bench's -d: the speed deep into a long conversation.
With --parallel P the generation test decodes P sequences together, one token of
each per forward pass (what lmx serve does for P requests at once), and reports
their combined tokens per second.

Flags:
  --prompt-tokens N   prompt length (default 512)
  --gen-tokens M      tokens to generate (default 128)
  --runs R            measured runs (default 5)
  --threads T         worker threads (default: LMX_NUM_THREADS or all cores)
  --batch B           prompt tokens per forward pass (default ${DEFAULT_OPTIONS.numBatch})
  --depth D           tokens already in the cache when each test starts (default 0)
  --parallel P        sequences generating together in the generation test (default 1)
  --kv-cache-type T   element type of the KV cache: f16 (default) or q8_0
  --no-mmap           read the weights into memory instead of mapping them
  --profile           time per op kind (matmul by weight type, attention, norms,
                      sampling, synchronization), per run, for each phase
  --json              print one JSON object (with peak resident memory, weight and
                      KV-cache bytes, KV bytes per position, and the profile when asked)`;

const FLAGS = {
  "prompt-tokens": "number",
  "gen-tokens": "number",
  runs: "number",
  threads: "number",
  batch: "number",
  depth: "number",
  parallel: "number",
  "kv-cache-type": "string",
  "no-mmap": "boolean",
  json: "boolean",
  profile: "boolean",
  help: "boolean",
} as const;

/** Profiles of several runs as one average run. */
function perRun(runs: ProfileEntry[][]): ProfileEntry[] {
  const sum = new Map<string, ProfileEntry>();
  for (const run of runs)
    for (const e of run) {
      const s = sum.get(e.kind) ?? { kind: e.kind, ms: 0, calls: 0 };
      s.ms += e.ms;
      s.calls += e.calls;
      sum.set(e.kind, s);
    }
  return [...sum.values()]
    .map((e) => ({ kind: e.kind, ms: e.ms / runs.length, calls: e.calls / runs.length }))
    .sort((a, b) => b.ms - a.ms);
}

/**
 * This process's peak resident memory. Linux's VmHWM belongs to the process's own address
 * space; getrusage's maxrss survives exec, so a bench spawned by a big parent (one that has
 * just written the model, say) would report the parent's size.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const nPrompt = (flags["prompt-tokens"] as number) ?? 512;
  const nGen = (flags["gen-tokens"] as number) ?? 128;
  const runs = (flags.runs as number) ?? 5;
  const batch = (flags.batch as number) ?? DEFAULT_OPTIONS.numBatch;
  const depth = (flags.depth as number) ?? 0;
  if (!Number.isInteger(depth) || depth < 0)
    throw new UsageError(`--depth needs a whole number of tokens, got ${depth}`);
  const parallel = (flags.parallel as number) ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1)
    throw new UsageError(`--parallel needs a whole number of sequences, at least 1, got ${parallel}`);
  const kvCacheType = kvCacheTypeFlag(flags["kv-cache-type"]);
  const path = resolveModel(positionals[0]);
  const model = await loadModel(path, {
    kvCacheType,
    threads: flags.threads as number | undefined,
    numCtx: depth + Math.max(nPrompt, nGen) + 1,
    numParallel: parallel,
    useMmap: !flags["no-mmap"],
  });
  const engine = model.engine;
  const samplers = Array.from({ length: parallel }, () => engine.backend.createSampler({ temperature: 0 }));
  const sampler = samplers[0]!;
  const seqs = Array.from({ length: parallel }, (_, s) => s);
  let rng = 12345;
  const randomToken = () => ((rng = (rng * 1103515245 + 12345) >>> 0) >>> 8) % engine.vocabSize;

  /** Prompt tokens of sequence `seq` from position `from` on, in forward passes of `batch`. */
  const prefill = async (from: number, count: number, seq = 0) => {
    const tokens = Array.from({ length: count }, randomToken);
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i);
      const pos = from + i;
      engine.cache.reserve(seq, pos + n);
      const last = i + n === count;
      await engine.forward(
        {
          tokens: tokens.slice(i, i + n),
          positions: Array.from({ length: n }, (_, k) => pos + k),
          seqs: new Array(n).fill(seq),
          outRows: last ? [n - 1] : [],
        },
        last ? [sampler] : undefined,
      );
    }
  };
  // The depth context is written once; each test truncates back to it (full attention
  // rewinds exactly, so every run sees the same D tokens).
  for (const s of seqs) {
    engine.cache.truncate(s, 0);
    if (depth > 0) await prefill(0, depth, s);
  }
  const pp = async () => {
    engine.cache.truncate(0, depth);
    const t0 = performance.now();
    await prefill(depth, nPrompt);
    return (nPrompt * 1000) / (performance.now() - t0);
  };
  const tg = async () => {
    for (const s of seqs) engine.cache.truncate(s, depth);
    let toks = seqs.map(randomToken);
    const t0 = performance.now();
    for (let pos = depth; pos < depth + nGen; pos++) {
      for (const s of seqs) engine.cache.reserve(s, pos + 1);
      toks = Array.from(
        (await engine.forward(
          { tokens: toks, positions: new Array(parallel).fill(pos), seqs, outRows: seqs },
          samplers,
        ))!,
      );
    }
    return (parallel * nGen * 1000) / (performance.now() - t0);
  };
  const ppRuns: number[] = [],
    tgRuns: number[] = [];
  const backend = engine.backend;
  const profiling = Boolean(flags.profile);
  if (profiling && !backend.profile) throw new Error(`the ${backend.name} backend cannot profile`);
  const profiles: { pp: ProfileEntry[][]; tg: ProfileEntry[][] } = { pp: [], tg: [] };
  const measured = async (phase: "pp" | "tg", run: () => Promise<number>) => {
    if (profiling) backend.profile!(true);
    const v = await run();
    if (profiling) {
      backend.profile!(false);
      profiles[phase].push(backend.takeProfile!());
    }
    return v;
  };
  // Weights the load left in 4 KiB pages, and the depth context's filled KV pools, become
  // huge pages in the background (cpu backend): measure after that, as a model in use runs.
  const settled = await backend.weightsSettled?.(60_000);
  if (nPrompt > 0) await pp();
  if (nGen > 0) await tg();
  for (let r = 0; r < runs; r++) {
    if (nPrompt > 0) ppRuns.push(await measured("pp", pp));
    if (nGen > 0) tgRuns.push(await measured("tg", tg));
  }
  const profile = profiling ? { pp: perRun(profiles.pp), tg: perRun(profiles.tg) } : undefined;
  const placed = engine.weightPlacement;
  const result = {
    model: path,
    backend: engine.backend.name,
    kernels: engine.backend.kernels(),
    threads: engine.backend.threads(),
    use_mmap: !flags["no-mmap"],
    prompt_tokens: nPrompt,
    gen_tokens: nGen,
    depth,
    parallel,
    kv_cache_type: engine.cache.type,
    runs,
    pp_tok_s: nPrompt > 0 ? median(ppRuns) : null,
    tg_tok_s: nGen > 0 ? median(tgRuns) : null,
    pp_runs: ppRuns,
    tg_runs: tgRuns,
    weight_bytes: engine.weightBytes(),
    kv_bytes: engine.cache.bytes(),
    kv_bytes_per_token: engine.cache.bytesPerToken(),
    peak_rss_bytes: peakRss(),
    ...(settled
      ? {
          huge_pages: {
            collapsed_bytes: settled.collapsed,
            failed_bytes: settled.failed,
            wait_ms: Math.round(settled.waitedMs),
          },
        }
      : {}),
    ...(placed
      ? {
          file_pages: {
            bytes: placed.bytes,
            // hugeAfter counts the whole mapping's 2 MiB pages, which reach past the ranges.
            huge_bytes: Math.min(placed.hugeAfter, placed.bytes),
            reread_bytes: placed.reread,
            ms: Math.round(placed.ms),
          },
        }
      : {}),
    ...(profile ? { profile } : {}),
  };
  if (flags.json) process.stdout.write(JSON.stringify(result) + "\n");
  else {
    process.stdout.write(
      `model ${path} (${engine.backend.name} ${result.kernels}, ${result.threads} threads${result.use_mmap ? "" : ", weights read into memory"})\n`,
    );
    const at = depth > 0 ? ` @ d${depth}` : "";
    if (result.pp_tok_s !== null)
      process.stdout.write(`pp${nPrompt}${at}: ${result.pp_tok_s.toFixed(2)} tok/s (median of ${runs})\n`);
    if (result.tg_tok_s !== null)
      process.stdout.write(
        `tg${nGen}${at}${parallel > 1 ? ` x ${parallel} sequences` : ""}: ${result.tg_tok_s.toFixed(2)} tok/s${parallel > 1 ? " together" : ""} (median of ${runs})\n`,
      );
    const mib = (n: number) => (n / 1048576).toFixed(0);
    process.stdout.write(
      `memory: peak RSS ${mib(result.peak_rss_bytes)} MiB; weights ${mib(result.weight_bytes)} MiB + KV cache ${mib(result.kv_bytes)} MiB (${result.kv_cache_type})\n`,
    );
    if (settled && settled.collapsed + settled.failed > 0)
      process.stdout.write(
        `huge pages: ${mib(settled.collapsed)} MiB of repacked weights moved into 2 MiB pages after the load` +
          `${settled.failed > 0 ? `, ${mib(settled.failed)} MiB refused by the kernel` : ""} (waited ${Math.round(settled.waitedMs)} ms)\n`,
      );
    const filePages = result.file_pages;
    if (filePages && filePages.bytes > 0)
      process.stdout.write(
        `mapped weights: ${mib(filePages.bytes)} MiB read in place, ${mib(filePages.huge_bytes)} MiB of it in 2 MiB pages` +
          `${filePages.reread_bytes > 0 ? ` (${mib(filePages.reread_bytes)} MiB read again from the file for that)` : ""}\n`,
      );
    if (profile) {
      for (const phase of ["pp", "tg"] as const) {
        if (profile[phase].length === 0) continue;
        const total = profile[phase].reduce((s, e) => s + e.ms, 0);
        process.stdout.write(
          `\nprofile ${phase === "pp" ? `pp${nPrompt}` : `tg${nGen}`} (ms per run, thread 0)\n`,
        );
        for (const e of profile[phase])
          process.stdout.write(
            `  ${e.kind.padEnd(22)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${String(e.calls).padStart(6)} calls\n`,
          );
      }
    }
  }
  return 0;
}
