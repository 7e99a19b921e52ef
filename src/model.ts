/**
 * The library's model object: a loaded model with its tokenizer, chat template and one
 * runner. `generate` and `chat` stream tokens as async iterables.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createBackend } from "./engine/backends/index.js";
import { EngineModel } from "./engine/engine-model.js";
import type { KvCacheType } from "./engine/cache/kv-cache.js";
import { openModelSource, type ModelSource } from "./formats/model-source.js";
import type { GenerateOptions } from "./runner/options.js";
import { Runner, type GenerationStats, type TokenEvent } from "./runner/runner.js";
import {
  CHATML_TEMPLATE,
  ChatTemplate,
  type ChatMessage,
  type RenderOptions,
} from "./tokenizer/chat-template.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";

export interface LoadOptions {
  /** "cpu" (native, default) or "reference" (TypeScript, slow). */
  backend?: "cpu" | "reference";
  /** Worker threads (default: LMX_NUM_THREADS or the number of cores). */
  threads?: number;
  /** Context length per sequence (default: the model's, capped at 4096). */
  numCtx?: number;
  /** A Jinja chat template to use instead of the model's own. */
  template?: string;
  /** Sequences that generate at once, batched into the same forward passes (default 1). */
  numParallel?: number;
  /**
   * Memory-map the weights (default true: zero-copy, shared with the page cache). false
   * reads them into private memory in 2 MiB pages: faster decode on a machine whose page
   * cache holds the file in small pages, at the cost of the read and of sharing.
   */
  useMmap?: boolean;
  /**
   * Element type of the KV cache: "f16" (default) or "q8_0", half the memory and half the
   * bytes read per token deep into a long context, for a small loss of precision.
   */
  kvCacheType?: KvCacheType;
}

/** The model shipped inside the package, used when no model is named. */
export const DEFAULT_MODEL_PATH = join(dirname(fileURLToPath(import.meta.url)), "..", "models", "tiny-qwen3");

/** A stream of tokens whose `stats` resolve when it ends. */
export interface Generation extends AsyncIterable<TokenEvent> {
  readonly stats: Promise<GenerationStats>;
  /** The full text, once the stream has been consumed (or consumes it). */
  text(): Promise<string>;
}

export interface ChatOptions extends GenerateOptions, Pick<RenderOptions, "tools" | "think"> {}

export class Model {
  readonly tokenizer: Tokenizer;
  readonly template: ChatTemplate;
  readonly runner: Runner;
  readonly loadMs: number;

  constructor(
    readonly source: ModelSource,
    readonly engine: EngineModel,
    loadMs: number,
    template?: string,
  ) {
    this.tokenizer = source.tokenizer.tokenizer;
    this.template = new ChatTemplate(template ?? source.tokenizer.chatTemplate ?? CHATML_TEMPLATE);
    const stops = new Set(this.tokenizer.eosIds);
    for (const s of ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>"]) {
      const id = this.tokenizer.tokenId(s);
      if (id !== undefined && this.tokenizer.isControl(id)) stops.add(id);
    }
    // Tags that output parsers read stay in the text even where the vocabulary marks them special.
    const tags = new Set<number>();
    for (const s of ["<think>", "</think>", "<tool_call>", "</tool_call>"]) {
      const id = this.tokenizer.tokenId(s);
      if (id !== undefined) tags.add(id);
    }
    this.runner = new Runner(engine, this.tokenizer, stops, tags);
    this.loadMs = loadMs;
  }

  /** Architecture, sizes and settings, for `/show info` and logs. */
  info(): Record<string, string | number> {
    const c = this.engine.config;
    return {
      architecture: this.engine.metadata.arch,
      format: this.source.format,
      parameters: this.engine.parameterCount(),
      layers: c.numHiddenLayers,
      embedding: c.hiddenSize,
      heads: `${c.numAttentionHeads} (kv ${c.numKeyValueHeads})`,
      vocabulary: this.tokenizer.vocabSize,
      "context length": this.engine.def.contextLength(c),
      num_ctx: this.engine.numCtx,
      backend: this.engine.backend.name,
      threads: this.engine.backend.threads(),
    };
  }

  /** Sampling defaults the model ships, under the caller's options. */
  private withDefaults(o: GenerateOptions): GenerateOptions {
    return { ...this.source.defaults, ...o };
  }

  /** Continues raw text (no chat template). */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): Generation {
    const tokens = typeof prompt === "string" ? this.tokenizer.encode(prompt) : prompt;
    return stream(this.runner.generate(tokens, this.withDefaults(options)));
  }

  /** Renders the conversation with the chat template and generates the assistant's reply. */
  chat(messages: readonly ChatMessage[], options: ChatOptions = {}): Generation {
    const { tools, think, ...gen } = options;
    const prompt = this.renderChat(messages, { tools, think });
    return this.generate(prompt, gen);
  }

  renderChat(messages: readonly ChatMessage[], o: RenderOptions = {}): string {
    const bos = this.tokenizer.bosId !== undefined && this.tokenizer.addBos ? "" : undefined;
    return this.template.render(messages, { ...o, bosToken: bos });
  }

  /**
   * An embedding of `input`: the final-norm hidden states pooled as the model's metadata
   * says (`{arch}.pooling_type`: 1 mean, 2 first token, 3 last token; default mean), then
   * L2-normalized as Ollama's /api/embed returns them.
   */
  async embed(input: string | readonly number[], o: { normalize?: boolean } = {}): Promise<Float32Array> {
    const tokens = typeof input === "string" ? this.tokenizer.encode(input) : input;
    const h = await this.runner.embed(tokens);
    const D = this.engine.config.hiddenSize as number;
    const n = tokens.length;
    const pooling = this.engine.metadata.archNum("pooling_type", 1);
    const out = new Float32Array(D);
    if (pooling === 2 || pooling === 3)
      out.set(h.subarray((pooling === 2 ? 0 : n - 1) * D, (pooling === 2 ? 1 : n) * D));
    else {
      for (let t = 0; t < n; t++) for (let i = 0; i < D; i++) out[i]! += h[t * D + i]!;
      for (let i = 0; i < D; i++) out[i]! /= n;
    }
    if (o.normalize ?? true) {
      let ss = 0;
      for (const v of out) ss += v * v;
      const k = ss > 0 ? 1 / Math.sqrt(ss) : 0;
      for (let i = 0; i < D; i++) out[i]! *= k;
    }
    return out;
  }

  /** Forgets the cached conversation state. */
  reset(): void {
    this.runner.reset();
  }
}

function stream(gen: AsyncGenerator<TokenEvent, GenerationStats>): Generation {
  let resolve!: (s: GenerationStats) => void, reject!: (e: unknown) => void;
  const stats = new Promise<GenerationStats>((a, b) => ((resolve = a), (reject = b)));
  stats.catch(() => {});
  let text = "";
  let consumed = false;
  const iterate = async function* () {
    if (consumed) throw new Error("a generation can be iterated only once");
    consumed = true;
    try {
      for (;;) {
        const r = await gen.next();
        if (r.done) {
          resolve(r.value);
          return;
        }
        text += r.value.text;
        yield r.value;
      }
    } catch (e) {
      reject(e);
      throw e;
    } finally {
      await gen.return(undefined as never);
    }
  };
  return {
    stats,
    [Symbol.asyncIterator]: iterate,
    async text() {
      if (!consumed) for await (const _ of iterate());
      await stats;
      return text;
    },
  };
}

/** Opens a model file or folder (default: the embedded tiny model) and binds it to a backend. */
export async function loadModel(
  path: string = DEFAULT_MODEL_PATH,
  options: LoadOptions = {},
): Promise<Model> {
  const t0 = performance.now();
  const source = openModelSource(path, { mmap: options.useMmap });
  const engine = new EngineModel(createBackend(options.backend ?? "cpu", options.threads), source, {
    numCtx: options.numCtx,
    numSeq: options.numParallel,
    kvCacheType: options.kvCacheType,
  });
  return new Model(source, engine, performance.now() - t0, options.template);
}
