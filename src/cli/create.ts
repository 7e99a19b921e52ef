/**
 * `lmx create NAME [-f Modelfile] [--quantize TYPE]`: a named model in the store; or
 * `lmx create --from PATH --quantize TYPE --output FILE.gguf`: a plain quantized file.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { QUANTIZE_TYPES, quantizeModel, type QuantizeType } from "../formats/quantize-model.js";
import { collectImportance } from "../formats/importance.js";
import { createModel } from "../store/create-model.js";
import { ModelStore } from "../store/store.js";
import { parseArgs, UsageError } from "./args.js";
import { Progress } from "./progress.js";
import { resolveModel } from "./resolve-model.js";

const HELP = `Usage: lmx create NAME [-f Modelfile] [--quantize TYPE]
       lmx create --from PATH --quantize TYPE --output FILE.gguf

The first form creates the model NAME in the store (LMX_MODELS, default ~/.lmx/models)
from a Modelfile (default ./Modelfile): FROM a GGUF file, a Hugging Face folder (converted
to GGUF) or a model in the store; PARAMETER, SYSTEM, TEMPLATE (a Hugging Face Jinja chat
template), MESSAGE and LICENSE lines. \`--from PATH\` stands in for a Modelfile with only
FROM. The second form writes a quantized GGUF file and touches no store.

TYPE is one of ${QUANTIZE_TYPES.join(", ")}; tensors get the types llama-quantize gives
them (q4_K_M and q5_K_M keep chosen value and FFN-down projections, and the output head,
at Q6_K). Norms and other 1-D tensors stay F32.

Flags:
  -f, --file FILE    the Modelfile
  --from PATH        the model to start from (instead of a Modelfile)
  --quantize TYPE    quantize the weights
  --calibration F    a text to run the unquantized model on first; K-quant and FP4
                     rounding is then weighted by how strongly each input column is
                     driven (an imatrix)
  --output FILE      write a plain GGUF file instead of a store model
  --force            overwrite an existing output file`;

const FLAGS = {
  f: "string",
  file: "string",
  from: "string",
  quantize: "string",
  q: "string",
  output: "string",
  calibration: "string",
  force: "boolean",
  help: "boolean",
} as const;

async function calibration(file: string | undefined, src: string, progress: Progress) {
  if (!file) return undefined;
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  progress.status(`collecting importance statistics from ${file}`);
  return collectImportance(src, readFileSync(file, "utf8"));
}

export async function createCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const type = (flags.quantize ?? flags.q) as string | undefined;
  if (type && !QUANTIZE_TYPES.includes(type as QuantizeType))
    throw new UsageError(`unknown quantization type "${type}" (expected ${QUANTIZE_TYPES.join(", ")})`);
  const progress = new Progress();
  const t0 = performance.now();
  const out = flags.output as string | undefined;
  if (out) {
    if (!type) throw new UsageError("--output needs --quantize TYPE");
    if (existsSync(out) && !flags.force) throw new UsageError(`${out} exists (use --force to overwrite)`);
    const src = resolveModel(flags.from as string | undefined);
    const importance = await calibration(flags.calibration as string | undefined, src, progress);
    const report = quantizeModel(
      src,
      out,
      type as QuantizeType,
      (i, n, name) => progress.bar(i + 1, n, name),
      {
        importance,
      },
    );
    progress.clear();
    const counts = new Map<string, number>();
    for (const t of report.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
    process.stderr.write(
      `wrote ${out}: ${(report.bytes / 1e6).toFixed(1)} MB of tensors (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  }
  const name = positionals[0];
  if (!name) throw new UsageError("give the NAME of the model to create (or --output FILE.gguf)");
  let text: string, baseDir: string;
  const file = (flags.f ?? flags.file) as string | undefined;
  if (flags.from) {
    if (file) throw new UsageError("give either -f Modelfile or --from PATH, not both");
    text = `FROM ${flags.from}\n`;
    baseDir = process.cwd();
  } else {
    const path = resolve(file ?? "Modelfile");
    if (!existsSync(path))
      throw new UsageError(
        file ? `${file}: no such file` : "no ./Modelfile here: give -f Modelfile or --from PATH",
      );
    text = readFileSync(path, "utf8");
    baseDir = dirname(path);
  }
  if (flags.calibration && !existsSync(flags.calibration as string))
    throw new UsageError(`${flags.calibration}: no such file`);
  const m = await createModel(new ModelStore(), name, text, {
    baseDir,
    quantize: type,
    calibration: flags.calibration ? readFileSync(flags.calibration as string, "utf8") : undefined,
    onStatus: (s) => progress.status(s),
    onTensor: (i, n, t) => progress.bar(i + 1, n, t),
  });
  progress.clear();
  process.stderr.write(`created ${m.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}
