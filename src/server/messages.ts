/** Validation of chat messages and tools as the APIs receive them. */
import type { ChatMessage, ToolCall } from "../tokenizer/chat-template.js";
import { HttpError } from "./http.js";

const ROLES = new Set(["system", "user", "assistant", "tool"]);

export function checkToolCalls(v: unknown, where: string): ToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new HttpError(400, `${where}.tool_calls must be an array`);
  return v.map((c, i) => {
    const f = (c as { function?: { name?: unknown; arguments?: unknown } })?.function;
    if (!f || typeof f.name !== "string")
      throw new HttpError(400, `${where}.tool_calls[${i}].function.name must be a string`);
    let args = f.arguments ?? {};
    if (typeof args === "string") {
      try {
        args = JSON.parse(args || "{}");
      } catch {
        throw new HttpError(400, `${where}.tool_calls[${i}].function.arguments is not valid JSON`);
      }
    }
    if (typeof args !== "object" || args === null || Array.isArray(args))
      throw new HttpError(400, `${where}.tool_calls[${i}].function.arguments must be an object`);
    return { function: { name: f.name, arguments: args as Record<string, unknown> } };
  });
}

/** Ollama-shaped messages: role, content, optional thinking, tool_calls, tool_name. */
export function checkOllamaMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new HttpError(400, '"messages" must be an array');
  return v.map((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== "object" || m === null) throw new HttpError(400, `${where} must be an object`);
    const o = m as Record<string, unknown>;
    if (typeof o.role !== "string" || !ROLES.has(o.role))
      throw new HttpError(400, `${where}.role must be one of system, user, assistant, tool`);
    if (o.content !== undefined && o.content !== null && typeof o.content !== "string")
      throw new HttpError(400, `${where}.content must be a string`);
    if (Array.isArray(o.images) && o.images.length)
      throw new HttpError(400, "this model does not support images");
    const msg: ChatMessage = { role: o.role as ChatMessage["role"], content: (o.content as string) ?? "" };
    if (typeof o.thinking === "string") msg.thinking = o.thinking;
    const calls = checkToolCalls(o.tool_calls, where);
    if (calls) msg.tool_calls = calls;
    if (typeof o.tool_name === "string") msg.tool_name = o.tool_name;
    return msg;
  });
}

export function checkTools(v: unknown): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new HttpError(400, '"tools" must be an array');
  for (const [i, t] of v.entries()) {
    const f = (t as { function?: { name?: unknown } })?.function;
    if (!f || typeof f.name !== "string")
      throw new HttpError(400, `tools[${i}].function.name must be a string`);
  }
  return v.length ? v : undefined;
}
