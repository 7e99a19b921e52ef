/**
 * What every API does underneath: resolve a model name in the store, merge its stored
 * parameters, system prompt and messages with the request, borrow the loaded model from
 * the scheduler, and turn the runner's token stream into content, thinking and tool-call
 * deltas with timings. The Ollama, OpenAI and Anthropic routes only translate shapes.
 */
import { compileSchema, SchemaError } from "../chat/json-schema.js";
import { OutputParser } from "../chat/output-parser.js";
import { fromOllamaOptions, OptionError } from "../runner/ollama-options.js";
import type { GenerationStats } from "../runner/runner.js";
import { InvalidNameError } from "../store/name.js";
import { resolveStored, type ResolvedModel as Stored } from "../store/resolve.js";
import { ModelNotFoundError, type ModelStore } from "../store/store.js";
import type { ChatMessage, ToolCall } from "../tokenizer/chat-template.js";
import { HttpError } from "./http.js";
import type { Logger } from "./log.js";
import { RunnerError } from "./runner-client.js";
import type { RunInput, TokenLogprob } from "./runner-protocol.js";
import type { LoadedModel, LoadSettings, ModelRef, Scheduler } from "./scheduler.js";

export interface ResolvedModel extends Stored {
  ref: ModelRef;
}

export interface GenRequest {
  model: ResolvedModel;
  input: RunInput;
  /** Ollama-style options from the request (over the model's stored parameters). */
  options?: unknown;
  /** Top log-probabilities to return per token; undefined = none. */
  logprobs?: number;
  /** Structured output: "json" or a JSON schema (checked by checkFormat). */
  format?: "json" | Record<string, unknown>;
  /** Text the output is expected to repeat (GenerateOptions.prediction). */
  prediction?: string;
  keepAliveMs?: number;
  signal: AbortSignal;
}

export type GenEvent =
  | {
      t: "delta";
      content?: string;
      thinking?: string;
      toolCalls?: ToolCall[];
      logprobs?: (TokenLogprob & { top: TokenLogprob[] })[];
    }
  | {
      t: "done";
      stats: GenerationStats;
      doneReason: "stop" | "length";
      loadNs: number;
      totalNs: number;
      sawToolCalls: boolean;
    };

const ns = (ms: number) => Math.round(ms * 1e6);

/** Checks a structured-output format ("json" or a JSON schema); a 400 for what cannot be enforced. */
export function checkFormat(f: unknown): "json" | Record<string, unknown> | undefined {
  if (f === undefined || f === null || f === "") return undefined;
  try {
    compileSchema(f);
  } catch (e) {
    if (e instanceof SchemaError) throw new HttpError(400, `format: ${e.message}`);
    throw e;
  }
  return f as "json" | Record<string, unknown>;
}

export class Service {
  constructor(
    readonly store: ModelStore,
    readonly scheduler: Scheduler,
    readonly log: Logger,
  ) {}

  resolve(raw: unknown): ResolvedModel {
    if (typeof raw !== "string" || raw === "") throw new HttpError(400, "model is required");
    try {
      const r = resolveStored(this.store, raw);
      return { ...r, ref: { name: r.name, path: r.path, digest: r.digest, template: r.template } };
    } catch (e) {
      if (e instanceof InvalidNameError) throw new HttpError(400, e.message);
      if (e instanceof ModelNotFoundError) throw new HttpError(404, `model '${raw}' not found`);
      throw e;
    }
  }

  /** The context length a request without num_ctx gets: the model's parameter, the server's default, or min(model, 4096). */
  defaultContext(m: ResolvedModel, modelContext: number): number {
    const stored = fromOllamaOptions(m.params).numCtx;
    const want = stored ?? this.scheduler.o.contextLength ?? Math.min(modelContext || 4096, 4096);
    return modelContext > 0 ? Math.min(want, modelContext) : want;
  }

  /** The chat messages a model sees: its stored system prompt and messages, then the request's. */
  conversation(m: ResolvedModel, messages: ChatMessage[], system?: string): ChatMessage[] {
    const out: ChatMessage[] = [];
    const sys = system ?? (messages.some((x) => x.role === "system") ? undefined : m.system);
    if (sys !== undefined && sys !== "") out.push({ role: "system", content: sys });
    out.push(...m.messages, ...messages);
    return out;
  }

  private options(m: ResolvedModel, request: unknown) {
    try {
      const stored = fromOllamaOptions(m.params);
      const req = fromOllamaOptions(request);
      return {
        generate: { ...stored.generate, ...req.generate },
        load: { numCtx: req.numCtx ?? stored.numCtx, useMmap: req.useMmap ?? stored.useMmap },
      };
    } catch (e) {
      if (e instanceof OptionError) throw new HttpError(400, e.message);
      throw e;
    }
  }

  /** Loads (or finds) the model; the caller must release it. */
  async acquire(
    m: ResolvedModel,
    settings: LoadSettings = {},
  ): Promise<{ loaded: LoadedModel; loadMs: number }> {
    const t0 = performance.now();
    try {
      const loaded = await this.scheduler.acquire(m.ref, settings);
      return { loaded, loadMs: performance.now() - t0 };
    } catch (e) {
      if (e instanceof RunnerError) throw new HttpError(e.status, `failed to load ${m.name}: ${e.message}`);
      throw e;
    }
  }

  async *generate(r: GenRequest): AsyncGenerator<GenEvent> {
    const t0 = performance.now();
    const o = this.options(r.model, r.options);
    const tools = "messages" in r.input && !!r.input.tools?.length;
    const { loaded, loadMs } = await this.acquire(r.model, o.load);
    let parser: OutputParser | undefined;
    let sawToolCalls = false;
    try {
      const opts = {
        ...o.generate,
        ...(r.logprobs !== undefined ? { logprobs: r.logprobs } : {}),
        ...(r.format !== undefined ? { format: r.format } : {}),
        ...(r.prediction ? { prediction: r.prediction } : {}),
      };
      const stream = loaded.client.run(r.input, opts);
      for await (const ev of stream) {
        if (r.signal.aborted) break;
        if (ev.t === "start") {
          parser = new OutputParser({ tools, startInThinking: ev.opensThinking && "messages" in r.input });
          continue;
        }
        if (ev.t === "token") {
          const d = "raw" in r.input ? { content: ev.text } : parser!.push(ev.text);
          if (d.toolCalls) sawToolCalls = true;
          if (d.content || d.thinking || d.toolCalls || ev.logprob)
            yield { t: "delta", ...d, ...(ev.logprob ? { logprobs: [ev.logprob] } : {}) };
          continue;
        }
        const tail = parser && !("raw" in r.input) ? parser.flush() : {};
        if (tail.toolCalls) sawToolCalls = true;
        if (tail.content || tail.thinking || tail.toolCalls) yield { t: "delta", ...tail };
        yield {
          t: "done",
          stats: ev.stats,
          doneReason: ev.stats.doneReason === "length" ? "length" : "stop",
          loadNs: ns(loadMs),
          totalNs: ns(performance.now() - t0),
          sawToolCalls,
        };
      }
    } catch (e) {
      if (e instanceof RunnerError) {
        this.log.error(`${r.model.name}: ${e.message}`);
        throw new HttpError(e.status, e.message);
      }
      throw e;
    } finally {
      this.scheduler.release(loaded, r.keepAliveMs);
    }
  }

  /** Prompt tokens of an input, rendered as a generation would render it. */
  async countTokens(m: ResolvedModel, input: RunInput): Promise<number> {
    const { loaded } = await this.acquire(m);
    try {
      return await loaded.client.count(input);
    } catch (e) {
      if (e instanceof RunnerError) throw new HttpError(e.status, e.message);
      throw e;
    } finally {
      this.scheduler.release(loaded);
    }
  }

  async embed(
    m: ResolvedModel,
    inputs: string[],
    o: { truncate: boolean; options?: unknown; keepAliveMs?: number },
  ): Promise<{ embeddings: Float32Array[]; promptTokens: number; loadNs: number; totalNs: number }> {
    const t0 = performance.now();
    const opts = this.options(m, o.options);
    const { loaded, loadMs } = await this.acquire(m, opts.load);
    try {
      const r = await loaded.client.embed(inputs, o.truncate);
      return { ...r, loadNs: ns(loadMs), totalNs: ns(performance.now() - t0) };
    } catch (e) {
      if (e instanceof RunnerError) throw new HttpError(e.status, e.message);
      throw e;
    } finally {
      this.scheduler.release(loaded, o.keepAliveMs);
    }
  }
}

export interface Collected {
  content: string;
  thinking: string;
  toolCalls: ToolCall[];
  logprobs: (TokenLogprob & { top: TokenLogprob[] })[];
  done: Extract<GenEvent, { t: "done" }>;
}

/** Drains a generation into one result (non-streaming responses). */
export async function collect(gen: AsyncIterable<GenEvent>): Promise<Collected> {
  const c: Omit<Collected, "done"> = { content: "", thinking: "", toolCalls: [], logprobs: [] };
  for await (const ev of gen) {
    if (ev.t === "done") return { ...c, done: ev };
    c.content += ev.content ?? "";
    c.thinking += ev.thinking ?? "";
    if (ev.toolCalls) c.toolCalls.push(...ev.toolCalls);
    if (ev.logprobs) c.logprobs.push(...ev.logprobs);
  }
  throw new HttpError(500, "the generation ended without a result");
}

/** Starts a generation and waits for its first event, so errors before it become clean responses. */
export async function started(gen: AsyncGenerator<GenEvent>): Promise<AsyncGenerator<GenEvent>> {
  const first = await gen.next();
  return (async function* () {
    if (!first.done) yield first.value;
    yield* gen;
  })();
}
