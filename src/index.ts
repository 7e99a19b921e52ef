/**
 * lmx as a library: `loadModel(path)` then `model.generate(prompt)` or
 * `model.chat(messages)`, each an async iterable of tokens.
 * @module
 */
export {
  loadModel,
  Model,
  DEFAULT_MODEL_PATH,
  type LoadOptions,
  type Generation,
  type ChatOptions,
} from "./model.js";
export type { KvCacheType } from "./engine/cache/kv-cache.js";
export type { GenerateOptions } from "./runner/options.js";
export type { TokenEvent, GenerationStats, DoneReason } from "./runner/runner.js";
export type { ChatMessage } from "./tokenizer/chat-template.js";
export { Tokenizer } from "./tokenizer/tokenizer.js";
export { StringTable } from "./formats/string-table.js";
export { ModelFileError } from "./formats/tensor-source.js";
