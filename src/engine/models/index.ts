/** Every model family lmx runs, listed explicitly. */
import { llama } from "./llama.js";
import type { ModelDefinition } from "./model.js";
import { qwen2 } from "./qwen2.js";
import { qwen3 } from "./qwen3.js";

export type { CacheLayerSpec, ForwardContext, ModelDefinition, WeightSpec, Weights } from "./model.js";
export { Metadata } from "./metadata.js";

export const MODELS: readonly ModelDefinition<any>[] = [qwen3, qwen2, llama];

export function modelFor(architecture: string): ModelDefinition<any> | undefined {
  return MODELS.find((m) => m.architectures.includes(architecture));
}

export function supportedArchitectures(): string[] {
  return MODELS.flatMap((m) => m.architectures);
}
