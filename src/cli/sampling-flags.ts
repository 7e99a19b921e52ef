/** The sampling and length flags shared by commands, mapped to generation options. */
import type { GenerateOptions } from "../runner/options.js";
import type { FlagSpec } from "./args.js";

export const SAMPLING_FLAGS: FlagSpec = {
  temperature: "number",
  "top-k": "number",
  "top-p": "number",
  "min-p": "number",
  "repeat-penalty": "number",
  "repeat-last-n": "number",
  "presence-penalty": "number",
  "frequency-penalty": "number",
  seed: "number",
  "num-predict": "number",
  "num-ctx": "number",
  "num-draft": "number",
};

export const SAMPLING_HELP = `  --temperature T        sampling temperature (0 = greedy; default 0.8)
  --top-k K              sample among the K most likely tokens (default 40; 0 = off)
  --top-p P              nucleus sampling mass (default 0.9; 1 = off)
  --min-p P              drop tokens below P x the top probability (default 0)
  --repeat-penalty R     penalize recently seen tokens (default 1 = off)
  --repeat-last-n N      window of recent tokens for penalties (default 64)
  --presence-penalty X   subtract X once per token seen in the window
  --frequency-penalty X  subtract X per occurrence in the window
  --seed N               random seed for reproducible sampling
  --num-predict N        generate at most N tokens (default: until a stop token)
  --num-ctx N            context length in tokens (default: the model's, at most 4096)
  --num-draft N          tokens guessed ahead from the context and verified at once
                         (speculative decoding; default 7, 0 = off)`;

/** Ollama's parameter names (as used by /set parameter) -> option keys. */
export const PARAMETER_NAMES: Record<string, keyof GenerateOptions> = {
  temperature: "temperature",
  top_k: "topK",
  top_p: "topP",
  min_p: "minP",
  repeat_penalty: "repeatPenalty",
  repeat_last_n: "repeatLastN",
  presence_penalty: "presencePenalty",
  frequency_penalty: "frequencyPenalty",
  seed: "seed",
  num_predict: "numPredict",
  num_draft: "numDraft",
};

export function samplingOptions(flags: Record<string, unknown>): GenerateOptions {
  const o: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(PARAMETER_NAMES)) {
    const v = flags[flag.replaceAll("_", "-")];
    if (v !== undefined) o[key] = v;
  }
  return o as GenerateOptions;
}
