/** OpenAI-compatible routes (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`). */
import { randomBytes } from "node:crypto";
import type { ChatMessage, ToolCall } from "../tokenizer/chat-template.js";
import { field, HttpError, readJson, sendJson, sse, type ErrorShape, type Router } from "./http.js";
import { checkTools } from "./messages.js";
import { checkFormat, collect, started, type GenEvent, type Service } from "./service.js";
import type { GenerationStats } from "../runner/runner.js";
import type { TokenLogprob } from "./runner-protocol.js";

export const openaiError: ErrorShape = (status, message) => ({
  error: {
    message,
    type: status === 404 ? "not_found_error" : status < 500 ? "invalid_request_error" : "api_error",
    param: null,
    code: status === 404 ? "model_not_found" : null,
  },
});

const id = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;
const created = () => Math.floor(Date.now() / 1000);

function text(content: unknown, where: string): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content))
    throw new HttpError(400, `${where}.content must be a string or an array of parts`);
  return content
    .map((p, i) => {
      const part = p as { type?: string; text?: unknown };
      if (part?.type === "text" && typeof part.text === "string") return part.text;
      if (part?.type === "image_url" || part?.type === "input_image")
        throw new HttpError(400, "this model does not support images");
      throw new HttpError(400, `${where}.content[${i}] must be a text part`);
    })
    .join("");
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new HttpError(400, '"messages" must be a non-empty array');
  const names = new Map<string, string>();
  return v.map((m, i) => {
    const where = `messages[${i}]`;
    const o = m as Record<string, unknown>;
    if (typeof o !== "object" || o === null) throw new HttpError(400, `${where} must be an object`);
    const role = o.role === "developer" ? "system" : o.role;
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "tool")
      throw new HttpError(400, `${where}.role must be system, developer, user, assistant or tool`);
    const msg: ChatMessage = { role, content: text(o.content, where) };
    if (role === "assistant" && typeof o.reasoning === "string") msg.thinking = o.reasoning;
    if (role === "assistant" && Array.isArray(o.tool_calls)) {
      msg.tool_calls = o.tool_calls.map((c, j) => {
        const f = (c as { id?: string; function?: { name?: unknown; arguments?: unknown } }).function;
        if (!f || typeof f.name !== "string")
          throw new HttpError(400, `${where}.tool_calls[${j}].function.name must be a string`);
        let args: unknown = {};
        try {
          args = typeof f.arguments === "string" ? JSON.parse(f.arguments || "{}") : (f.arguments ?? {});
        } catch {
          throw new HttpError(400, `${where}.tool_calls[${j}].function.arguments is not valid JSON`);
        }
        const cid = (c as { id?: string }).id;
        if (typeof cid === "string") names.set(cid, f.name);
        return { function: { name: f.name, arguments: args as Record<string, unknown> } };
      });
    }
    if (role === "tool") {
      const name = typeof o.tool_call_id === "string" ? names.get(o.tool_call_id) : undefined;
      if (name ?? typeof o.name === "string") msg.tool_name = name ?? (o.name as string);
    }
    return msg;
  });
}

/** OpenAI request fields as Ollama options. */
function options(b: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const copy = (from: string, to: string) => {
    const v = field.num(b, from);
    if (v !== undefined) o[to] = v;
  };
  copy("temperature", "temperature");
  copy("top_p", "top_p");
  copy("frequency_penalty", "frequency_penalty");
  copy("presence_penalty", "presence_penalty");
  copy("seed", "seed");
  copy("max_tokens", "num_predict");
  copy("max_completion_tokens", "num_predict");
  if (b.stop !== undefined && b.stop !== null) {
    const s = typeof b.stop === "string" ? [b.stop] : b.stop;
    if (!Array.isArray(s) || !s.every((x) => typeof x === "string"))
      throw new HttpError(400, '"stop" must be a string or a list of strings');
    o.stop = s;
  }
  const n = field.num(b, "n");
  if (n !== undefined && n !== 1) throw new HttpError(400, '"n" other than 1 is not supported');
  return o;
}

function logprobCount(b: Record<string, unknown>): number | undefined {
  if (!field.bool(b, "logprobs")) return undefined;
  const top = field.num(b, "top_logprobs") ?? 0;
  if (!Number.isInteger(top) || top < 0 || top > 20)
    throw new HttpError(400, '"top_logprobs" must be an integer from 0 to 20');
  return top;
}

function lpShape(l: TokenLogprob & { top: TokenLogprob[] }) {
  return { token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top };
}

function toolCallsShape(calls: ToolCall[], start = 0) {
  return calls.map((c, i) => ({
    index: start + i,
    id: `call_${randomBytes(8).toString("hex")}`,
    type: "function" as const,
    function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) },
  }));
}

function think(b: Record<string, unknown>): boolean | undefined {
  const effort = b.reasoning_effort ?? (b.reasoning as { effort?: unknown } | undefined)?.effort;
  if (effort === undefined || effort === null) return undefined;
  return effort !== "none";
}

/** Predicted outputs: `prediction: {type: "content", content}`, content a string or text parts. */
function prediction(b: Record<string, unknown>): string | undefined {
  const p = b.prediction;
  if (p === undefined || p === null) return undefined;
  const o = p as { type?: unknown; content?: unknown };
  if (typeof p !== "object" || o.type !== "content")
    throw new HttpError(400, 'prediction must be {"type": "content", "content": ...}');
  if (typeof o.content === "string") return o.content;
  if (
    Array.isArray(o.content) &&
    o.content.every(
      (c) => typeof c === "object" && c !== null && c.type === "text" && typeof c.text === "string",
    )
  )
    return (o.content as { text: string }[]).map((c) => c.text).join("");
  throw new HttpError(400, "prediction.content must be a string or a list of text parts");
}

/** A completion's usage; with a prediction, what the drafts (from it or the conversation) gave. */
function usage(s: GenerationStats, predicted?: string): Record<string, unknown> {
  const counts = {
    prompt_tokens: s.promptTokens,
    completion_tokens: s.genTokens,
    total_tokens: s.promptTokens + s.genTokens,
  };
  if (predicted === undefined) return counts;
  const accepted = s.acceptedDrafts ?? 0;
  return {
    ...counts,
    completion_tokens_details: {
      accepted_prediction_tokens: accepted,
      rejected_prediction_tokens: (s.draftTokens ?? 0) - accepted,
    },
  };
}

/** response_format as a structured-output format. */
function responseFormat(b: Record<string, unknown>): "json" | Record<string, unknown> | undefined {
  const rf = field.obj(b, "response_format");
  if (!rf || rf.type === "text") return undefined;
  if (rf.type === "json_object") return "json";
  if (rf.type === "json_schema") {
    const js = rf.json_schema as { schema?: unknown } | undefined;
    if (typeof js?.schema !== "object" || js.schema === null)
      throw new HttpError(400, "response_format.json_schema.schema must be an object");
    return checkFormat(js.schema);
  }
  throw new HttpError(400, 'response_format.type must be "text", "json_object" or "json_schema"');
}

const finish = (d: Extract<GenEvent, { t: "done" }>) =>
  d.sawToolCalls ? "tool_calls" : d.doneReason === "length" ? "length" : "stop";

export function openaiRoutes(r: Router, svc: Service): void {
  r.add(
    "POST",
    "/v1/chat/completions",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      const msgs = messages(b.messages);
      let tools = checkTools(b.tools);
      if (b.tool_choice === "none") tools = undefined;
      const predicted = prediction(b);
      const gen = await started(
        svc.generate({
          model: m,
          input: { messages: svc.conversation(m, msgs), tools, think: think(b) },
          options: options(b),
          logprobs: logprobCount(b),
          format: responseFormat(b),
          prediction: predicted,
          signal: ctx.signal,
        }),
      );
      const cid = id("chatcmpl");
      const base = { id: cid, created: created(), model: m.name, system_fingerprint: "fp_lmx" };
      if (!field.bool(b, "stream")) {
        const c = await collect(gen);
        const message: Record<string, unknown> = { role: "assistant", content: c.content };
        if (c.thinking) message.reasoning = c.thinking;
        if (c.toolCalls.length)
          message.tool_calls = toolCallsShape(c.toolCalls).map(({ index: _, ...t }) => t);
        const s = c.done.stats;
        sendJson(ctx.res, 200, {
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message,
              finish_reason: finish(c.done),
              logprobs: c.logprobs.length ? { content: c.logprobs.map(lpShape) } : null,
            },
          ],
          usage: usage(s, predicted),
        });
        return;
      }
      const includeUsage = field.obj(b, "stream_options")?.include_usage === true;
      const send = sse(ctx.res);
      const chunk = (
        delta: Record<string, unknown>,
        finish_reason: string | null,
        extra: Record<string, unknown> = {},
      ) =>
        send({
          ...base,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta, finish_reason, logprobs: null, ...extra }],
        });
      let calls = 0;
      try {
        chunk({ role: "assistant", content: "" }, null);
        for await (const ev of gen) {
          if (ev.t === "delta") {
            const delta: Record<string, unknown> = {};
            if (ev.content) delta.content = ev.content;
            if (ev.thinking) delta.reasoning = ev.thinking;
            if (ev.toolCalls) {
              delta.tool_calls = toolCallsShape(ev.toolCalls, calls);
              calls += ev.toolCalls.length;
            }
            chunk(delta, null, ev.logprobs ? { logprobs: { content: ev.logprobs.map(lpShape) } } : {});
          } else {
            chunk({}, finish(ev));
            if (includeUsage) {
              const s = ev.stats;
              send({
                ...base,
                object: "chat.completion.chunk",
                choices: [],
                usage: usage(s, predicted),
              });
            }
          }
        }
        send("[DONE]");
      } catch (e) {
        send(openaiError(500, (e as Error).message));
      }
      ctx.res.end();
    },
    openaiError,
  );

  r.add(
    "POST",
    "/v1/completions",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      let prompt = b.prompt;
      if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
      if (typeof prompt !== "string" || prompt === "")
        throw new HttpError(400, '"prompt" must be a non-empty string');
      if (field.str(b, "suffix")) throw new HttpError(400, `${m.name} does not support insert (suffix)`);
      const gen = await started(
        svc.generate({
          model: m,
          input: { raw: prompt },
          options: options(b),
          logprobs: logprobCount(b),
          signal: ctx.signal,
        }),
      );
      const base = {
        id: id("cmpl"),
        created: created(),
        model: m.name,
        system_fingerprint: "fp_lmx",
        object: "text_completion",
      };
      if (!field.bool(b, "stream")) {
        const c = await collect(gen);
        const s = c.done.stats;
        sendJson(ctx.res, 200, {
          ...base,
          choices: [{ index: 0, text: c.content, finish_reason: finish(c.done), logprobs: null }],
          usage: usage(s),
        });
        return;
      }
      const send = sse(ctx.res);
      try {
        for await (const ev of gen) {
          if (ev.t === "delta")
            send({
              ...base,
              choices: [{ index: 0, text: ev.content ?? "", finish_reason: null, logprobs: null }],
            });
          else
            send({ ...base, choices: [{ index: 0, text: "", finish_reason: finish(ev), logprobs: null }] });
        }
        send("[DONE]");
      } catch (e) {
        send(openaiError(500, (e as Error).message));
      }
      ctx.res.end();
    },
    openaiError,
  );

  r.add(
    "POST",
    "/v1/embeddings",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      const input = typeof b.input === "string" ? [b.input] : b.input;
      if (
        !Array.isArray(input) ||
        input.length === 0 ||
        !input.every((s) => typeof s === "string" && s !== "")
      )
        throw new HttpError(400, '"input" must be a non-empty string or a list of non-empty strings');
      const fmt = field.str(b, "encoding_format") ?? "float";
      if (fmt !== "float" && fmt !== "base64")
        throw new HttpError(400, '"encoding_format" must be "float" or "base64"');
      const dims = field.num(b, "dimensions");
      const out = await svc.embed(m, input as string[], { truncate: true });
      const data = out.embeddings.map((e, index) => {
        let v = e;
        if (dims !== undefined) {
          if (!Number.isInteger(dims) || dims < 1 || dims > e.length)
            throw new HttpError(400, `dimensions must be between 1 and ${e.length}`);
          v = e.slice(0, dims);
          const n = Math.hypot(...v) || 1;
          v = v.map((x) => x / n);
        }
        return {
          object: "embedding",
          index,
          embedding:
            fmt === "base64"
              ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")
              : Array.from(v),
        };
      });
      sendJson(ctx.res, 200, {
        object: "list",
        data,
        model: m.name,
        usage: { prompt_tokens: out.promptTokens, total_tokens: out.promptTokens },
      });
    },
    openaiError,
  );

  const modelShape = (name: string, modified: Date) => ({
    id: name,
    object: "model",
    created: Math.floor(modified.getTime() / 1000),
    owned_by: name.includes("/") ? name.split("/")[0] : "library",
  });
  r.add(
    "GET",
    "/v1/models",
    (ctx) =>
      sendJson(ctx.res, 200, {
        object: "list",
        data: svc.store.list().map((s) => modelShape(s.name, s.modifiedAt)),
      }),
    openaiError,
  );
  r.add(
    "GET",
    "/v1/models/:id",
    (ctx) => {
      const m = svc.resolve(ctx.params.id);
      sendJson(ctx.res, 200, modelShape(m.name, m.stored?.modifiedAt ?? new Date()));
    },
    openaiError,
  );
}
