/** Generation options with Ollama's names and defaults, and their validation. */
import type { SamplerOptions } from "../engine/backends/backend.js";

export interface GenerateOptions extends SamplerOptions {
  /** Maximum tokens to generate; -1 = until the context is full. */
  numPredict?: number;
  /** Strings that end generation (not included in the output). */
  stop?: string[];
  /** Prompt tokens processed per forward pass. */
  numBatch?: number;
  /** Stop early when this signal aborts (the current step finishes first). */
  signal?: AbortSignal;
  /** Structured output: "json" (any object) or a JSON schema the output must satisfy. */
  format?: "json" | Record<string, unknown>;
  /**
   * Speculative decoding: the most tokens a step guesses ahead by prompt lookup and
   * verifies at once (it verifies fewer, or none, when guesses have not been coming true);
   * 0 turns it off. The tokens are drawn as one at a time (the same ones, up to float
   * rounding of the logits, for the same seed).
   */
  numDraft?: number;
  /**
   * The text the output is expected to repeat, most of it (OpenAI's predicted outputs: a
   * file to be rewritten with a few changes), as text or tokens: drafts are taken from it
   * first, wherever the output is in it.
   */
  prediction?: string | readonly number[];
}

/** Ollama's API defaults: penalties off, temperature 0.8, top-k 40, top-p 0.9. */
export const DEFAULT_OPTIONS: Required<
  Omit<GenerateOptions, "stop" | "signal" | "seed" | "logprobs" | "format" | "prediction">
> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.9,
  minP: 0,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatLastN: 64,
  numPredict: -1,
  // Not Ollama's 512: half the activation arena (5 instead of 10 MiB for Qwen3-0.6B) at the
  // same prefill speed, alternating 512 and 256 on Zen 4 (docs/architecture.md, Memory).
  numBatch: 256,
  numDraft: 7,
};

const RANGES: Record<string, [number, number, boolean]> = {
  temperature: [0, 100, false],
  topK: [0, 1e9, true],
  topP: [0, 1, false],
  minP: [0, 1, false],
  repeatPenalty: [0, 100, false],
  presencePenalty: [-100, 100, false],
  frequencyPenalty: [-100, 100, false],
  repeatLastN: [-1, 1e9, true],
  seed: [-1, Number.MAX_SAFE_INTEGER, true],
  numPredict: [-2, 1e9, true],
  numBatch: [1, 65536, true],
  numDraft: [0, 15, true],
  logprobs: [-1, 20, true],
};

/** Throws a clear error for an option of the wrong type or range. */
export function validateOptions(o: GenerateOptions): void {
  for (const [k, [lo, hi, int]] of Object.entries(RANGES)) {
    const v = (o as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || Number.isNaN(v))
      throw new TypeError(`option ${k} must be a number, got ${JSON.stringify(v)}`);
    if (v < lo || v > hi || (int && !Number.isInteger(v)))
      throw new RangeError(
        `option ${k} must be ${int ? "an integer " : ""}between ${lo} and ${hi}, got ${v}`,
      );
  }
  if (o.stop !== undefined && (!Array.isArray(o.stop) || !o.stop.every((s) => typeof s === "string")))
    throw new TypeError("option stop must be a list of strings");
  const p = o.prediction;
  if (
    p !== undefined &&
    typeof p !== "string" &&
    !(Array.isArray(p) && p.every((t) => Number.isInteger(t) && t >= 0))
  )
    throw new TypeError("option prediction must be a string or a list of token ids");
}
