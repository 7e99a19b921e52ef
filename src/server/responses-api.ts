/** OpenAI Responses API (`/v1/responses`), as coding agents such as Codex use it: input items, function tools, streaming events. */
import { randomBytes } from "node:crypto";
import type { ChatMessage, ToolCall } from "../tokenizer/chat-template.js";
import { field, HttpError, readJson, sendJson, sse, type Router } from "./http.js";
import { openaiError } from "./openai-api.js";
import { checkFormat, collect, started, type GenEvent, type Service } from "./service.js";

const rid = (p: string) => `${p}_${randomBytes(12).toString("hex")}`;

function text(content: unknown, where: string): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content))
    throw new HttpError(400, `${where}.content must be a string or a list of parts`);
  return content
    .map((p, i) => {
      const part = p as { type?: string; text?: unknown };
      if (
        (part?.type === "input_text" || part?.type === "output_text" || part?.type === "text") &&
        typeof part.text === "string"
      )
        return part.text;
      if (part?.type === "input_image" || part?.type === "input_file")
        throw new HttpError(400, "this model does not support images or files");
      throw new HttpError(400, `${where}.content[${i}] must be a text part`);
    })
    .join("");
}

/** Input items as chat messages (function calls join the assistant turn before them). */
function messages(input: unknown, instructions: string | undefined): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (instructions) out.push({ role: "system", content: instructions });
  if (typeof input === "string") return [...out, { role: "user", content: input }];
  if (!Array.isArray(input) || input.length === 0)
    throw new HttpError(400, '"input" must be a string or a non-empty list of items');
  const names = new Map<string, string>();
  input.forEach((it, i) => {
    const o = it as Record<string, unknown>;
    const where = `input[${i}]`;
    if (typeof o !== "object" || o === null) throw new HttpError(400, `${where} must be an object`);
    const type = o.type ?? "message";
    if (type === "message") {
      const role = o.role === "developer" ? "system" : o.role;
      if (role !== "system" && role !== "user" && role !== "assistant")
        throw new HttpError(400, `${where}.role must be user, assistant, system or developer`);
      out.push({ role, content: text(o.content, where) });
    } else if (type === "function_call") {
      if (typeof o.name !== "string") throw new HttpError(400, `${where}.name must be a string`);
      let args: unknown;
      try {
        args = JSON.parse(typeof o.arguments === "string" ? o.arguments || "{}" : "{}");
      } catch {
        throw new HttpError(400, `${where}.arguments is not valid JSON`);
      }
      if (typeof o.call_id === "string") names.set(o.call_id, o.name);
      const call: ToolCall = { function: { name: o.name, arguments: args as Record<string, unknown> } };
      const last = out[out.length - 1];
      if (last?.role === "assistant") (last.tool_calls ??= []).push(call);
      else out.push({ role: "assistant", content: "", tool_calls: [call] });
    } else if (type === "function_call_output") {
      const output = typeof o.output === "string" ? o.output : JSON.stringify(o.output ?? "");
      out.push({
        role: "tool",
        content: output,
        tool_name: typeof o.call_id === "string" ? names.get(o.call_id) : undefined,
      });
    } else if (type === "reasoning") {
      // Earlier reasoning is not replayed to the model.
    } else throw new HttpError(400, `${where}.type ${JSON.stringify(type)} is not supported`);
  });
  return out;
}

function tools(v: unknown): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new HttpError(400, '"tools" must be an array');
  const fns = v.filter((t) => (t as { type?: string })?.type === "function");
  for (const [i, t] of fns.entries())
    if (typeof (t as { name?: unknown }).name !== "string")
      throw new HttpError(400, `tools[${i}].name must be a string`);
  const out = fns.map((t) => {
    const f = t as { name: string; description?: string; parameters?: unknown };
    return {
      type: "function",
      function: {
        name: f.name,
        description: f.description ?? "",
        parameters: f.parameters ?? { type: "object" },
      },
    };
  });
  return out.length ? out : undefined;
}

function format(b: Record<string, unknown>): "json" | Record<string, unknown> | undefined {
  const f = (field.obj(b, "text")?.format ?? undefined) as { type?: string; schema?: unknown } | undefined;
  if (!f || f.type === "text") return undefined;
  if (f.type === "json_object") return "json";
  if (f.type === "json_schema") return checkFormat(f.schema);
  throw new HttpError(400, 'text.format.type must be "text", "json_object" or "json_schema"');
}

export function responsesRoutes(r: Router, svc: Service): void {
  r.add(
    "POST",
    "/v1/responses",
    async (ctx) => {
      const b = await readJson(ctx.req);
      const m = svc.resolve(b.model);
      if (b.previous_response_id)
        throw new HttpError(
          400,
          "previous_response_id is not supported: send the whole conversation as input",
        );
      const msgs = messages(b.input, field.str(b, "instructions"));
      const opts: Record<string, unknown> = {};
      for (const [from, to] of [
        ["temperature", "temperature"],
        ["top_p", "top_p"],
        ["max_output_tokens", "num_predict"],
      ] as const) {
        const v = field.num(b, from);
        if (v !== undefined) opts[to] = v;
      }
      let tl = tools(b.tools);
      if (b.tool_choice === "none") tl = undefined;
      const effort = (b.reasoning as { effort?: unknown } | undefined)?.effort;
      const think = effort === undefined || effort === null ? undefined : effort !== "none";
      const gen = await started(
        svc.generate({
          model: m,
          input: { messages: svc.conversation(m, msgs), tools: tl, think },
          options: opts,
          format: format(b),
          signal: ctx.signal,
        }),
      );
      const id = rid("resp");
      const created = Math.floor(Date.now() / 1000);
      const base = (status: string, output: unknown[], done?: Extract<GenEvent, { t: "done" }>) => ({
        id,
        object: "response",
        created_at: created,
        status,
        model: m.name,
        output,
        parallel_tool_calls: true,
        tool_choice: b.tool_choice ?? "auto",
        tools: b.tools ?? [],
        incomplete_details:
          done && done.doneReason === "length" && !done.sawToolCalls ? { reason: "max_output_tokens" } : null,
        error: null,
        usage: done
          ? {
              input_tokens: done.stats.promptTokens,
              output_tokens: done.stats.genTokens,
              total_tokens: done.stats.promptTokens + done.stats.genTokens,
            }
          : null,
      });
      const statusOf = (d: Extract<GenEvent, { t: "done" }>) =>
        d.doneReason === "length" && !d.sawToolCalls ? "incomplete" : "completed";
      const callItem = (c: ToolCall) => ({
        type: "function_call",
        id: rid("fc"),
        call_id: rid("call"),
        name: c.function.name,
        arguments: JSON.stringify(c.function.arguments),
        status: "completed",
      });
      if (!field.bool(b, "stream")) {
        const c = await collect(gen);
        const output: unknown[] = [];
        if (c.thinking)
          output.push({
            type: "reasoning",
            id: rid("rs"),
            summary: [{ type: "summary_text", text: c.thinking }],
          });
        if (c.content || !c.toolCalls.length)
          output.push({
            type: "message",
            id: rid("msg"),
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text: c.content, annotations: [] }],
          });
        for (const t of c.toolCalls) output.push(callItem(t));
        sendJson(ctx.res, 200, base(statusOf(c.done), output, c.done));
        return;
      }
      const send = sse(ctx.res);
      let seq = 0;
      const ev = (type: string, data: Record<string, unknown>) =>
        send({ type, sequence_number: seq++, ...data }, type);
      const output: Record<string, unknown>[] = [];
      let msg: { id: string; text: string; index: number } | null = null;
      let reasoning: { id: string; text: string; index: number } | null = null;
      const closeReasoning = () => {
        if (!reasoning) return;
        const item = {
          type: "reasoning",
          id: reasoning.id,
          summary: [{ type: "summary_text", text: reasoning.text }],
        };
        output[reasoning.index] = item;
        ev("response.output_item.done", { output_index: reasoning.index, item });
        reasoning = null;
      };
      const closeMessage = () => {
        if (!msg) return;
        const part = { type: "output_text", text: msg.text, annotations: [] };
        ev("response.output_text.done", {
          item_id: msg.id,
          output_index: msg.index,
          content_index: 0,
          text: msg.text,
        });
        ev("response.content_part.done", {
          item_id: msg.id,
          output_index: msg.index,
          content_index: 0,
          part,
        });
        const item = { type: "message", id: msg.id, status: "completed", role: "assistant", content: [part] };
        output[msg.index] = item;
        ev("response.output_item.done", { output_index: msg.index, item });
        msg = null;
      };
      try {
        ev("response.created", { response: base("in_progress", []) });
        ev("response.in_progress", { response: base("in_progress", []) });
        for await (const e of gen) {
          if (e.t === "delta") {
            if (e.thinking) {
              if (!reasoning) {
                reasoning = { id: rid("rs"), text: "", index: output.length };
                output.push({});
                ev("response.output_item.added", {
                  output_index: reasoning.index,
                  item: { type: "reasoning", id: reasoning.id, summary: [] },
                });
              }
              reasoning.text += e.thinking;
              ev("response.reasoning_summary_text.delta", {
                item_id: reasoning.id,
                output_index: reasoning.index,
                summary_index: 0,
                delta: e.thinking,
              });
            }
            if (e.content) {
              closeReasoning();
              if (!msg) {
                msg = { id: rid("msg"), text: "", index: output.length };
                output.push({});
                ev("response.output_item.added", {
                  output_index: msg.index,
                  item: {
                    type: "message",
                    id: msg.id,
                    status: "in_progress",
                    role: "assistant",
                    content: [],
                  },
                });
                ev("response.content_part.added", {
                  item_id: msg.id,
                  output_index: msg.index,
                  content_index: 0,
                  part: { type: "output_text", text: "", annotations: [] },
                });
              }
              msg.text += e.content;
              ev("response.output_text.delta", {
                item_id: msg.id,
                output_index: msg.index,
                content_index: 0,
                delta: e.content,
              });
            }
            for (const t of e.toolCalls ?? []) {
              closeReasoning();
              closeMessage();
              const item = callItem(t);
              const index = output.length;
              output.push(item);
              ev("response.output_item.added", {
                output_index: index,
                item: { ...item, arguments: "", status: "in_progress" },
              });
              ev("response.function_call_arguments.delta", {
                item_id: item.id,
                output_index: index,
                delta: item.arguments,
              });
              ev("response.function_call_arguments.done", {
                item_id: item.id,
                output_index: index,
                arguments: item.arguments,
              });
              ev("response.output_item.done", { output_index: index, item });
            }
          } else {
            closeReasoning();
            closeMessage();
            const status = statusOf(e);
            ev(status === "completed" ? "response.completed" : "response.incomplete", {
              response: base(status, output, e),
            });
          }
        }
      } catch (e) {
        ev("error", { code: "server_error", message: (e as Error).message, param: null });
      }
      ctx.res.end();
    },
    openaiError,
  );
}
