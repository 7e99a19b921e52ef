/** Anthropic-compatible `/v1/messages`: content blocks, tools, thinking, streaming events. */
import { randomBytes } from "node:crypto";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { field, HttpError, readJson, sendJson, sse, type ErrorShape, type Router } from "./http.js";
import { collect, started, type GenEvent, type Service } from "./service.js";

export const anthropicError: ErrorShape = (status, message) => ({
  type: "error",
  error: {
    type:
      status === 404
        ? "not_found_error"
        : status === 413
          ? "request_too_large"
          : status < 500
            ? "invalid_request_error"
            : "api_error",
    message,
  },
});

const toolId = () => `toolu_${randomBytes(12).toString("hex")}`;

type Block = { type?: string; [k: string]: unknown };

function blocks(content: unknown, where: string): Block[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content))
    throw new HttpError(400, `${where}.content must be a string or an array of content blocks`);
  return content as Block[];
}

function blockText(content: unknown, where: string): string {
  if (content === undefined || content === null) return "";
  return blocks(content, where)
    .map((b, i) => {
      if (b?.type === "text" && typeof b.text === "string") return b.text;
      if (b?.type === "image" || b?.type === "document")
        throw new HttpError(400, "this model does not support images or documents");
      throw new HttpError(400, `${where}.content[${i}] must be a text block`);
    })
    .join("");
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new HttpError(400, "messages: must be a non-empty array");
  const names = new Map<string, string>();
  const out: ChatMessage[] = [];
  v.forEach((m, i) => {
    const where = `messages.${i}`;
    const o = m as { role?: unknown; content?: unknown };
    if (o?.role !== "user" && o?.role !== "assistant")
      throw new HttpError(400, `${where}.role: must be "user" or "assistant"`);
    let textParts = "";
    let thinking = "";
    const calls: NonNullable<ChatMessage["tool_calls"]> = [];
    blocks(o.content, where).forEach((b, j) => {
      switch (b?.type) {
        case "text":
          if (typeof b.text !== "string")
            throw new HttpError(400, `${where}.content.${j}.text: must be a string`);
          textParts += b.text;
          break;
        case "thinking":
          if (typeof b.thinking === "string") thinking += b.thinking;
          break;
        case "redacted_thinking":
          break;
        case "tool_use":
          if (typeof b.name !== "string")
            throw new HttpError(400, `${where}.content.${j}.name: must be a string`);
          if (typeof b.id === "string") names.set(b.id, b.name);
          calls.push({ function: { name: b.name, arguments: (b.input as Record<string, unknown>) ?? {} } });
          break;
        case "tool_result": {
          const id = typeof b.tool_use_id === "string" ? b.tool_use_id : "";
          const res =
            typeof b.content === "string" ? b.content : blockText(b.content ?? "", `${where}.content.${j}`);
          out.push({ role: "tool", content: b.is_error ? `Error: ${res}` : res, tool_name: names.get(id) });
          break;
        }
        case "image":
        case "document":
          throw new HttpError(400, "this model does not support images or documents");
        default:
          throw new HttpError(
            400,
            `${where}.content.${j}.type: unknown content block type ${JSON.stringify(b?.type)}`,
          );
      }
    });
    if (o.role === "assistant") {
      const msg: ChatMessage = { role: "assistant", content: textParts };
      if (thinking) msg.thinking = thinking;
      if (calls.length) msg.tool_calls = calls;
      out.push(msg);
    } else if (textParts !== "" || !out.length || out[out.length - 1]!.role !== "tool")
      out.push({ role: "user", content: textParts });
  });
  return out;
}

function tools(v: unknown): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new HttpError(400, "tools: must be an array");
  const out = v
    .filter(
      (t) =>
        (t as Block)?.type === undefined ||
        (t as Block).type === "custom" ||
        typeof (t as Block).input_schema === "object",
    )
    .map((t, i) => {
      const o = t as { name?: unknown; description?: unknown; input_schema?: unknown };
      if (typeof o.name !== "string") throw new HttpError(400, `tools.${i}.name: must be a string`);
      return {
        type: "function",
        function: {
          name: o.name,
          description: o.description ?? "",
          parameters: o.input_schema ?? { type: "object" },
        },
      };
    });
  return out.length ? out : undefined;
}

function options(b: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const maxTokens = field.num(b, "max_tokens");
  if (maxTokens === undefined || !Number.isInteger(maxTokens) || maxTokens < 1)
    throw new HttpError(400, "max_tokens: must be a positive integer");
  o.num_predict = maxTokens;
  for (const [from, to] of [
    ["temperature", "temperature"],
    ["top_p", "top_p"],
    ["top_k", "top_k"],
  ] as const) {
    const v = field.num(b, from);
    if (v !== undefined) o[to] = v;
  }
  const stop = field.array(b, "stop_sequences");
  if (stop) {
    if (!stop.every((s) => typeof s === "string"))
      throw new HttpError(400, "stop_sequences: must be a list of strings");
    o.stop = stop;
  }
  return o;
}

function stopReason(d: Extract<GenEvent, { t: "done" }>): string {
  return d.sawToolCalls ? "tool_use" : d.doneReason === "length" ? "max_tokens" : "end_turn";
}

export function anthropicRoutes(r: Router, svc: Service): void {
  r.add(
    "POST",
    "/v1/messages/count_tokens",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      const system = b.system === undefined || b.system === null ? undefined : blockText(b.system, "system");
      const th = b.thinking as { type?: string } | undefined;
      const n = await svc.countTokens(m, {
        messages: svc.conversation(m, messages(b.messages), system),
        tools: tools(b.tools),
        think: th?.type === "enabled" ? true : th?.type === "disabled" ? false : undefined,
      });
      sendJson(ctx.res, 200, { input_tokens: n });
    },
    anthropicError,
  );

  r.add(
    "POST",
    "/v1/messages",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      const opts = options(b);
      const msgs = messages(b.messages);
      const system = b.system === undefined || b.system === null ? undefined : blockText(b.system, "system");
      let tl = tools(b.tools);
      if ((b.tool_choice as Block | undefined)?.type === "none") tl = undefined;
      const th = b.thinking as { type?: string } | undefined;
      const think = th?.type === "enabled" ? true : th?.type === "disabled" ? false : undefined;
      const gen = await started(
        svc.generate({
          model: m,
          input: { messages: svc.conversation(m, msgs, system), tools: tl, think },
          options: opts,
          signal: ctx.signal,
        }),
      );
      const msgId = `msg_${randomBytes(12).toString("hex")}`;
      if (!field.bool(b, "stream")) {
        const c = await collect(gen);
        const content: Block[] = [];
        if (c.thinking) content.push({ type: "thinking", thinking: c.thinking, signature: "" });
        if (c.content || !c.toolCalls.length) content.push({ type: "text", text: c.content });
        for (const t of c.toolCalls)
          content.push({
            type: "tool_use",
            id: toolId(),
            name: t.function.name,
            input: t.function.arguments,
          });
        sendJson(ctx.res, 200, {
          id: msgId,
          type: "message",
          role: "assistant",
          model: m.name,
          content,
          stop_reason: stopReason(c.done),
          stop_sequence: null,
          usage: { input_tokens: c.done.stats.promptTokens, output_tokens: c.done.stats.genTokens },
        });
        return;
      }
      const send = sse(ctx.res);
      const ev = (type: string, data: Record<string, unknown>) => send({ type, ...data }, type);
      let index = -1;
      let open: "text" | "thinking" | null = null;
      const close = () => {
        if (open) ev("content_block_stop", { index });
        open = null;
      };
      const openBlock = (kind: "text" | "thinking") => {
        if (open === kind) return;
        close();
        index++;
        open = kind;
        ev("content_block_start", {
          index,
          content_block:
            kind === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "", signature: "" },
        });
      };
      try {
        let inputTokens = 0;
        ev("message_start", {
          message: {
            id: msgId,
            type: "message",
            role: "assistant",
            model: m.name,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 0, output_tokens: 0 },
          },
        });
        for await (const e of gen) {
          if (e.t === "delta") {
            if (e.thinking) {
              openBlock("thinking");
              ev("content_block_delta", { index, delta: { type: "thinking_delta", thinking: e.thinking } });
            }
            if (e.content) {
              openBlock("text");
              ev("content_block_delta", { index, delta: { type: "text_delta", text: e.content } });
            }
            for (const t of e.toolCalls ?? []) {
              close();
              index++;
              ev("content_block_start", {
                index,
                content_block: { type: "tool_use", id: toolId(), name: t.function.name, input: {} },
              });
              ev("content_block_delta", {
                index,
                delta: { type: "input_json_delta", partial_json: JSON.stringify(t.function.arguments) },
              });
              ev("content_block_stop", { index });
            }
          } else {
            if (index < 0) openBlock("text");
            close();
            inputTokens = e.stats.promptTokens;
            ev("message_delta", {
              delta: { stop_reason: stopReason(e), stop_sequence: null },
              usage: { input_tokens: inputTokens, output_tokens: e.stats.genTokens },
            });
            ev("message_stop", {});
          }
        }
      } catch (e) {
        send(anthropicError(500, (e as Error).message), "error");
      }
      ctx.res.end();
    },
    anthropicError,
  );
}
