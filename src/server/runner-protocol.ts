/** Messages between the server and a model's runner process (Node IPC, structured clone). */
import type { KvCacheType } from "../engine/cache/kv-cache.js";
import type { GenerateOptions } from "../runner/options.js";
import type { GenerationStats } from "../runner/runner.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";

export interface LoadRequest {
  t: "load";
  path: string;
  numCtx?: number;
  numParallel: number;
  threads?: number;
  /** A Jinja chat template that replaces the model's own. */
  template?: string;
  /** false reads the weights into memory (LoadOptions.useMmap). */
  useMmap?: boolean;
  kvCacheType?: KvCacheType;
}

export type RunInput = { raw: string } | { messages: ChatMessage[]; tools?: unknown[]; think?: boolean };

export interface RunRequest {
  t: "run";
  id: number;
  input: RunInput;
  options: Omit<GenerateOptions, "signal">;
}

export interface EmbedRequest {
  t: "embed";
  id: number;
  inputs: string[];
  truncate: boolean;
}

export type ToRunner =
  | LoadRequest
  | RunRequest
  | EmbedRequest
  | { t: "count"; id: number; input: RunInput }
  | { t: "cancel"; id: number };

export interface ModelInfo {
  architecture: string;
  numCtx: number;
  numParallel: number;
  backend: string;
  threads: number;
  weightBytes: number;
  kvBytes: number;
  /** The KV cache's element type as loaded (q8_0 falls back to f16 for some heads). */
  kvCacheType: KvCacheType;
  loadMs: number;
  /** Whether the runner's weights are memory-mapped (use_mmap). */
  mmap: boolean;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export type FromRunner =
  | { t: "ready"; info: ModelInfo }
  | { t: "fatal"; message: string }
  | { t: "start"; id: number; opensThinking: boolean; promptTokens: number }
  | { t: "token"; id: number; text: string; logprob?: TokenLogprob & { top: TokenLogprob[] } }
  | { t: "done"; id: number; stats: GenerationStats }
  | { t: "embedded"; id: number; embeddings: Float32Array[]; promptTokens: number }
  | { t: "counted"; id: number; tokens: number }
  | { t: "error"; id: number; message: string; status: number };
