/**
 * What `lmx run` talks to: a model loaded in this process, or a running server's
 * /api/chat. Both take the same messages and options and stream text pieces.
 */
import { loadModel, type Model } from "../model.js";
import { fromOllamaOptions, OLLAMA_PARAMETERS } from "../runner/ollama-options.js";
import type { GenerateOptions } from "../runner/options.js";
import type { GenerationStats } from "../runner/runner.js";
import type { ResolvedModel } from "../store/resolve.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { kvCacheTypeFromEnv } from "./kv-cache-type.js";

export interface Turn extends AsyncIterable<string> {
  readonly stats: Promise<GenerationStats>;
}

export interface Session {
  readonly loadMs: number;
  chat(messages: ChatMessage[], o: GenerateOptions & { think?: boolean }): Turn;
  raw(prompt: string, o: GenerateOptions): Turn;
  info(): Promise<Record<string, string | number>>;
  reset(): void;
}

function withSystem(m: ResolvedModel | undefined, messages: ChatMessage[]): ChatMessage[] {
  if (!m) return messages;
  const out: ChatMessage[] = [];
  if (m.system && !messages.some((x) => x.role === "system")) out.push({ role: "system", content: m.system });
  return [...out, ...m.messages, ...messages];
}

export async function localSession(
  path: string,
  stored: ResolvedModel | undefined,
  o: { backend?: "cpu" | "reference"; numCtx?: number },
): Promise<Session> {
  const defaults = stored
    ? fromOllamaOptions(stored.params)
    : { generate: {} as GenerateOptions, numCtx: undefined, useMmap: undefined };
  const model: Model = await loadModel(path, {
    backend: o.backend,
    numCtx: o.numCtx ?? defaults.numCtx,
    template: stored?.template,
    useMmap: defaults.useMmap,
    kvCacheType: kvCacheTypeFromEnv(),
  });
  const turn = (g: ReturnType<Model["generate"]>): Turn => ({
    stats: g.stats,
    async *[Symbol.asyncIterator]() {
      for await (const ev of g) yield ev.text;
    },
  });
  return {
    loadMs: model.loadMs,
    chat: (messages, opts) =>
      turn(model.chat(withSystem(stored, messages), { ...defaults.generate, ...opts })),
    raw: (prompt, opts) => turn(model.generate(prompt, { ...defaults.generate, ...opts })),
    info: async () => model.info(),
    reset: () => model.reset(),
  };
}

const SNAKE = Object.fromEntries(
  Object.entries(OLLAMA_PARAMETERS).flatMap(([k, p]) => (p.key ? [[p.key, k]] : [])),
);

function ollamaOptions(o: GenerateOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (SNAKE[k] && v !== undefined) out[SNAKE[k]!] = v;
  return out;
}

export async function remoteSession(url: string, model: string, numCtx?: number): Promise<Session> {
  const t0 = performance.now();
  const r = await fetch(`${url}/api/chat`, { method: "POST", body: JSON.stringify({ model, messages: [] }) });
  if (!r.ok) throw new Error(((await r.json()) as { error: string }).error);
  const loadMs = performance.now() - t0;
  const stream = (path: string, body: Record<string, unknown>, signal?: AbortSignal): Turn => {
    let resolve!: (s: GenerationStats) => void, reject!: (e: unknown) => void;
    const stats = new Promise<GenerationStats>((a, b) => ((resolve = a), (reject = b)));
    stats.catch(() => {});
    return {
      stats,
      async *[Symbol.asyncIterator]() {
        try {
          const res = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body), signal });
          if (!res.ok) throw new Error(((await res.json()) as { error: string }).error);
          let buf = "";
          const dec = new TextDecoder();
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buf += dec.decode(chunk, { stream: true });
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              if (!line.trim()) continue;
              const j = JSON.parse(line);
              if (j.error) throw new Error(j.error);
              const text = j.message?.content ?? j.response ?? "";
              if (text) yield text;
              if (j.done)
                resolve({
                  promptTokens: j.prompt_eval_count,
                  cachedTokens: 0,
                  promptMs: j.prompt_eval_duration / 1e6,
                  genTokens: j.eval_count,
                  genMs: j.eval_duration / 1e6,
                  doneReason: j.done_reason === "length" ? "length" : "stop",
                });
            }
          }
        } catch (e) {
          if ((e as Error).name === "AbortError")
            resolve({
              promptTokens: 0,
              cachedTokens: 0,
              promptMs: 0,
              genTokens: 0,
              genMs: 0,
              doneReason: "abort",
            });
          else {
            reject(e);
            throw e;
          }
        }
      },
    };
  };
  const opts = (o: GenerateOptions) => ({ ...ollamaOptions(o), ...(numCtx ? { num_ctx: numCtx } : {}) });
  return {
    loadMs,
    chat: (messages, o) =>
      stream("/api/chat", { model, messages, think: o.think, options: opts(o) }, o.signal),
    raw: (prompt, o) => stream("/api/generate", { model, prompt, raw: true, options: opts(o) }, o.signal),
    info: async () => {
      const s = (await (
        await fetch(`${url}/api/show`, { method: "POST", body: JSON.stringify({ model }) })
      ).json()) as {
        details: Record<string, string>;
        capabilities: string[];
      };
      return { model, server: url, ...s.details, capabilities: s.capabilities.join(", ") };
    },
    reset: () => {},
  };
}
