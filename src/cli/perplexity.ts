/** `lmx perplexity MODEL --file TEXT`: perplexity, and KL divergence from a base model. */
import { readFileSync } from "node:fs";
import { loadModel } from "../model.js";
import { perplexity } from "../runner/perplexity.js";
import { parseArgs, UsageError } from "./args.js";
import { kvCacheTypeFlag } from "./kv-cache-type.js";
import { resolveModel } from "./resolve-model.js";

const HELP = `Usage: lmx perplexity MODEL --file TEXT [--ctx 512] [--base BASE_MODEL] [--kv-cache-type T] [--json]

Perplexity by llama.cpp's method: the text is tokenized once (BOS added if the model
adds one) and cut into non-overlapping windows of --ctx tokens; each window is evaluated
from an empty cache with its first token replaced by BOS (when the model uses one), and
only the second half of each window is scored: the logits at positions ctx/2 .. ctx-2
predict tokens ctx/2+1 .. ctx-1. PPL = exp(mean negative log-likelihood), with its
standard error.

With --base, the base model runs on the same windows and lmx reports the KL divergence
of MODEL's next-token distributions from BASE's (mean, with base probabilities below
e^-16 skipped as llama.cpp does), how often both pick the same top token, and
percentiles of the change in probability of the actual next token. --kv-cache-type
applies to MODEL only, so \`lmx perplexity M --base M --kv-cache-type q8_0\` measures what
a q8_0 KV cache costs against f16.

Flags:
  --file TEXT       the text to score (required)
  --ctx N           window length (default 512)
  --chunks N        score at most N windows
  --base MODEL      a reference model with the same tokenizer
  --kv-cache-type T MODEL's KV cache element type: f16 (default) or q8_0
  --json            print one JSON object`;

const FLAGS = {
  file: "string",
  ctx: "number",
  chunks: "number",
  base: "string",
  "kv-cache-type": "string",
  json: "boolean",
  help: "boolean",
} as const;

export async function perplexityCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (!flags.file) throw new UsageError("--file is required");
  const ctx = (flags.ctx as number | undefined) ?? 512;
  const text = readFileSync(flags.file as string, "utf8");
  const kvCacheType = kvCacheTypeFlag(flags["kv-cache-type"]);
  const model = await loadModel(resolveModel(positionals[0]), { numCtx: ctx, kvCacheType });
  const base = flags.base ? await loadModel(resolveModel(flags.base as string), { numCtx: ctx }) : undefined;
  const r = await perplexity(model.engine, model.tokenizer, text, {
    ctx,
    maxChunks: flags.chunks as number | undefined,
    base: base?.engine,
    onChunk: flags.json ? undefined : (c, n, p) => process.stderr.write(`\r[${c + 1}/${n}] ${p.toFixed(4)}`),
  });
  if (!flags.json) process.stderr.write("\n");
  if (flags.json) {
    const out: Record<string, unknown> = {
      ppl: r.ppl,
      ppl_stderr: r.pplStderr,
      tokens: r.tokens,
      chunks: r.chunks,
      ctx,
    };
    if (r.kl)
      Object.assign(out, {
        base_ppl: r.kl.basePpl,
        kld_mean: r.kl.kldMean,
        kld_stderr: r.kl.kldStderr,
        kld_max: r.kl.kldMax,
        top1_agree: r.kl.top1Agree,
        dp: r.kl.dp,
        dp_rms: r.kl.dpRms,
      });
    process.stdout.write(JSON.stringify(out) + "\n");
    return 0;
  }
  process.stdout.write(
    `Final estimate: PPL = ${r.ppl.toFixed(4)} +/- ${r.pplStderr.toFixed(4)} (${r.tokens} tokens in ${r.chunks} windows of ${ctx})\n`,
  );
  if (r.kl) {
    const k = r.kl;
    process.stdout.write(
      `Base PPL:       ${k.basePpl.toFixed(4)}\nMean KLD:       ${k.kldMean.toFixed(6)} +/- ${k.kldStderr.toFixed(6)} (max ${k.kldMax.toFixed(4)})\nSame top:       ${(100 * k.top1Agree).toFixed(2)}%\n`,
    );
    process.stdout.write(
      `Δp percentiles: 1% ${k.dp.p1.toFixed(4)}  5% ${k.dp.p5.toFixed(4)}  50% ${k.dp.p50.toFixed(4)}  95% ${k.dp.p95.toFixed(4)}  99% ${k.dp.p99.toFixed(4)}  RMS ${k.dpRms.toFixed(4)}\n`,
    );
  }
  return 0;
}
