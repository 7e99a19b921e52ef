/** Turns the MODEL argument of a command into weights: a file, a folder, a store model, or the embedded default. */
import { existsSync } from "node:fs";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { InvalidNameError } from "../store/name.js";
import { resolveStored, type ResolvedModel } from "../store/resolve.js";
import { ModelNotFoundError, ModelStore } from "../store/store.js";
import { UsageError } from "./args.js";

/** The embedded model answers to this name. */
export const DEFAULT_MODEL_NAME = "tiny-qwen3";

export interface Target {
  path: string;
  /** Set when the name is a model in the store (or the embedded one). */
  stored?: ResolvedModel;
}

export function resolveTarget(name: string | undefined): Target {
  if (!name) return { path: DEFAULT_MODEL_PATH };
  if (existsSync(name) && (name.includes("/") || name.includes(".") || !/^[\w.-]+(:[\w.-]+)?$/.test(name)))
    return { path: name };
  try {
    const r = resolveStored(new ModelStore(), name);
    return { path: r.path, stored: r };
  } catch (e) {
    if (e instanceof ModelNotFoundError || e instanceof InvalidNameError) {
      if (existsSync(name)) return { path: name };
      throw new UsageError(
        `model "${name}" not found: give a model in the store (lmx list), a .gguf file or a Hugging Face model folder`,
      );
    }
    throw e;
  }
}

export function resolveModel(name: string | undefined): string {
  return resolveTarget(name).path;
}
