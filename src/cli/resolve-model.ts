/** Turns the MODEL argument of a command into a path (file, folder, or the embedded default). */
import { existsSync } from "node:fs";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { UsageError } from "./args.js";

/** The embedded model answers to this name. */
export const DEFAULT_MODEL_NAME = "tiny-qwen3";

export function resolveModel(name: string | undefined): string {
  if (!name || name === DEFAULT_MODEL_NAME) return DEFAULT_MODEL_PATH;
  if (existsSync(name)) return name;
  throw new UsageError(
    `model "${name}" not found: give a .gguf file or a Hugging Face model folder (named models arrive with the model store)`,
  );
}
