/** `lmx create --from PATH --quantize TYPE --output FILE.gguf`: quantize a model into a GGUF file. */
import { existsSync } from "node:fs";
import { QUANTIZE_TYPES, quantizeModel, type QuantizeType } from "../formats/quantize-model.js";
import { parseArgs, UsageError } from "./args.js";
import { resolveModel } from "./resolve-model.js";

const HELP = `Usage: lmx create [NAME] --from PATH --quantize TYPE --output FILE.gguf

Quantizes a model (a GGUF file or a Hugging Face folder with F32/F16/BF16 weights) and
writes a GGUF file. TYPE is one of ${QUANTIZE_TYPES.join(", ")}; tensors get the types
llama-quantize gives them for the same file type (q4_K_M and q5_K_M keep the value and
FFN-down projections of chosen layers, and the output head, at Q6_K). Norms and other
1-D tensors stay F32. Named models in a store (NAME, Modelfiles) arrive with \`lmx serve\`.

Flags:
  --from PATH        the model to quantize (default: the embedded tiny-qwen3)
  --quantize TYPE    target type (required)
  --output FILE      where to write the GGUF (required for now)
  --force            overwrite an existing output file`;

const FLAGS = {
  from: "string",
  quantize: "string",
  output: "string",
  force: "boolean",
  help: "boolean",
} as const;

export async function createCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const type = flags.quantize as string | undefined;
  if (!type) throw new UsageError("--quantize TYPE is required");
  if (!QUANTIZE_TYPES.includes(type as QuantizeType))
    throw new UsageError(`unknown quantization type "${type}" (expected ${QUANTIZE_TYPES.join(", ")})`);
  const out = flags.output as string | undefined;
  if (!out)
    throw new UsageError(
      positionals[0]
        ? "the model store is not there yet: give --output FILE.gguf"
        : "--output FILE.gguf is required",
    );
  if (existsSync(out) && !flags.force) throw new UsageError(`${out} exists (use --force to overwrite)`);
  const src = resolveModel(flags.from as string | undefined);
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  const report = quantizeModel(src, out, type as QuantizeType, (i, n, name) => {
    const width = 30,
      done = Math.round((width * (i + 1)) / n);
    const bar = `[${"#".repeat(done)}${" ".repeat(width - done)}] ${i + 1}/${n} ${name}`;
    if (tty) process.stderr.write(`\r\x1b[K${bar}`);
  });
  if (tty) process.stderr.write("\n");
  const counts = new Map<string, number>();
  for (const t of report.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  process.stderr.write(
    `wrote ${out}: ${(report.bytes / 1e6).toFixed(1)} MB of tensors (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}
