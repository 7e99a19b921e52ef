/**
 * Ollama's option names (API `options`, Modelfile PARAMETER, `/set parameter`) mapped to
 * lmx's generation options, with Ollama's types. Options that have no meaning on this
 * engine (GPU placement, mmap, NUMA) are type-checked and then ignored.
 */
import type { GenerateOptions } from "./options.js";

type Kind = "int" | "float" | "bool" | "strings";

interface Param {
  kind: Kind;
  /** The GenerateOptions key, or "numCtx"/"numThread" handled by the loader; absent = ignored. */
  key?: keyof GenerateOptions | "numCtx" | "numThread" | "useMmap";
}

export const OLLAMA_PARAMETERS: Record<string, Param> = {
  temperature: { kind: "float", key: "temperature" },
  top_k: { kind: "int", key: "topK" },
  top_p: { kind: "float", key: "topP" },
  min_p: { kind: "float", key: "minP" },
  repeat_penalty: { kind: "float", key: "repeatPenalty" },
  repeat_last_n: { kind: "int", key: "repeatLastN" },
  presence_penalty: { kind: "float", key: "presencePenalty" },
  frequency_penalty: { kind: "float", key: "frequencyPenalty" },
  seed: { kind: "int", key: "seed" },
  num_predict: { kind: "int", key: "numPredict" },
  num_batch: { kind: "int", key: "numBatch" },
  // lmx's own: speculative decoding by prompt lookup (GenerateOptions.numDraft).
  num_draft: { kind: "int", key: "numDraft" },
  stop: { kind: "strings", key: "stop" },
  num_ctx: { kind: "int", key: "numCtx" },
  num_thread: { kind: "int", key: "numThread" },
  num_keep: { kind: "int" },
  typical_p: { kind: "float" },
  num_gpu: { kind: "int" },
  main_gpu: { kind: "int" },
  use_mmap: { kind: "bool", key: "useMmap" },
  numa: { kind: "bool" },
};

export class OptionError extends Error {}

/** Options a request or Modelfile gives, split by who consumes them. */
export interface ModelOptions {
  generate: GenerateOptions;
  numCtx?: number;
  numThread?: number;
  /** false: read the weights into memory instead of mapping them (LoadOptions.useMmap). */
  useMmap?: boolean;
}

function checkValue(name: string, kind: Kind, v: unknown): unknown {
  switch (kind) {
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v))
        throw new OptionError(`option "${name}" must be an integer, got ${JSON.stringify(v)}`);
      return v;
    case "float":
      if (typeof v !== "number" || !Number.isFinite(v))
        throw new OptionError(`option "${name}" must be a number, got ${JSON.stringify(v)}`);
      return v;
    case "bool":
      if (typeof v !== "boolean")
        throw new OptionError(`option "${name}" must be true or false, got ${JSON.stringify(v)}`);
      return v;
    case "strings":
      if (typeof v === "string") return [v];
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string"))
        throw new OptionError(`option "${name}" must be a list of strings, got ${JSON.stringify(v)}`);
      return v;
  }
}

/** Converts an Ollama `options` object; unknown names are ignored as Ollama does. */
export function fromOllamaOptions(raw: unknown): ModelOptions {
  const out: ModelOptions = { generate: {} };
  if (raw === undefined || raw === null) return out;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new OptionError("options must be an object");
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const p = OLLAMA_PARAMETERS[name];
    if (!p || v === null) continue;
    const value = checkValue(name, p.kind, v);
    if (p.key === "numCtx") {
      if ((value as number) < 1) throw new OptionError(`option "num_ctx" must be at least 1, got ${value}`);
      out.numCtx = value as number;
    } else if (p.key === "numThread") {
      if ((value as number) > 0) out.numThread = value as number;
    } else if (p.key === "useMmap") {
      out.useMmap = value as boolean;
    } else if (p.key) (out.generate as Record<string, unknown>)[p.key] = value;
  }
  return out;
}

/** Parses a PARAMETER line's value (text) into its typed form. */
export function parseParameterValue(name: string, text: string): number | boolean | string {
  const p = OLLAMA_PARAMETERS[name];
  if (!p) throw new OptionError(`unknown parameter "${name}"`);
  switch (p.kind) {
    case "int":
    case "float": {
      const v = Number(text);
      if (text.trim() === "" || !Number.isFinite(v) || (p.kind === "int" && !Number.isInteger(v)))
        throw new OptionError(
          `parameter "${name}" needs ${p.kind === "int" ? "an integer" : "a number"}, got "${text}"`,
        );
      return v;
    }
    case "bool":
      if (text !== "true" && text !== "false")
        throw new OptionError(`parameter "${name}" needs true or false, got "${text}"`);
      return text === "true";
    case "strings":
      return text;
  }
}

/** Merges PARAMETER entries into the JSON object Ollama stores in a params layer (stop accumulates). */
export function addParameter(params: Record<string, unknown>, name: string, text: string): void {
  const v = parseParameterValue(name, text);
  if (OLLAMA_PARAMETERS[name]!.kind === "strings") params[name] = [...((params[name] as string[]) ?? []), v];
  else params[name] = v;
}
