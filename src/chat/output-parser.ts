/**
 * Splits a model's streamed output into answer text, reasoning and tool calls, for the
 * Hermes/Qwen family of templates: `<think>…</think>` holds reasoning and each
 * `<tool_call>{"name": …, "arguments": …}</tool_call>` one call. Tags may arrive split
 * across tokens, so a possible tag prefix is held back until it resolves.
 */
import type { ToolCall } from "../tokenizer/chat-template.js";

export interface OutputDelta {
  content?: string;
  thinking?: string;
  toolCalls?: ToolCall[];
}

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const TOOL_OPEN = "<tool_call>";
const TOOL_CLOSE = "</tool_call>";

type State = "content" | "thinking" | "tool";

export interface ParserOptions {
  /** Parse `<tool_call>` blocks (when the request offered tools). */
  tools?: boolean;
  /** Parse `<think>` blocks (default true). */
  thinking?: boolean;
  /** The prompt already opened a `<think>` block. */
  startInThinking?: boolean;
}

/** Length of the longest suffix of `s` that is a proper prefix of one of `tags`. */
function partialTag(s: string, tags: readonly string[]): number {
  let best = 0;
  for (const t of tags)
    for (let n = Math.min(t.length - 1, s.length); n > best; n--) if (s.endsWith(t.slice(0, n))) best = n;
  return best;
}

export class OutputParser {
  private state: State;
  private buf = "";
  private tool = "";
  /** Drop whitespace at the start of the next content or thinking run. */
  private trimStart = true;
  private readonly opens: string[];

  constructor(o: ParserOptions = {}) {
    this.state = o.startInThinking ? "thinking" : "content";
    this.opens = [...(o.thinking === false ? [] : [THINK_OPEN]), ...(o.tools ? [TOOL_OPEN] : [])];
  }

  push(text: string): OutputDelta {
    this.buf += text;
    const d: OutputDelta = {};
    for (;;) {
      if (this.state === "tool") {
        const end = this.buf.indexOf(TOOL_CLOSE);
        if (end < 0) {
          const hold = partialTag(this.buf, [TOOL_CLOSE]);
          this.tool += this.buf.slice(0, this.buf.length - hold);
          this.buf = this.buf.slice(this.buf.length - hold);
          break;
        }
        this.tool += this.buf.slice(0, end);
        this.buf = this.buf.slice(end + TOOL_CLOSE.length);
        this.endTool(d);
        continue;
      }
      const closes = this.state === "thinking" ? [THINK_CLOSE] : this.opens;
      let at = -1,
        tag = "";
      for (const t of closes) {
        const i = this.buf.indexOf(t);
        if (i >= 0 && (at < 0 || i < at)) [at, tag] = [i, t];
      }
      if (at < 0) {
        const hold = partialTag(this.buf, closes);
        this.emit(d, this.buf.slice(0, this.buf.length - hold));
        this.buf = this.buf.slice(this.buf.length - hold);
        break;
      }
      this.emit(d, this.buf.slice(0, at));
      this.buf = this.buf.slice(at + tag.length);
      if (tag === THINK_OPEN) this.state = "thinking";
      else if (tag === THINK_CLOSE) this.state = "content";
      else {
        this.state = "tool";
        this.tool = "";
      }
      this.trimStart = true;
    }
    return d;
  }

  /** Ends the stream: whatever is held back goes out as it stands. */
  flush(): OutputDelta {
    const d: OutputDelta = {};
    if (this.state === "tool") {
      this.tool += this.buf;
      this.buf = "";
      this.endTool(d);
    }
    this.emit(d, this.buf);
    this.buf = "";
    return d;
  }

  private emit(d: OutputDelta, s: string): void {
    if (this.trimStart) {
      s = s.replace(/^\s+/, "");
      if (s) this.trimStart = false;
    }
    if (!s) return;
    if (this.state === "thinking") d.thinking = (d.thinking ?? "") + s;
    else d.content = (d.content ?? "") + s;
  }

  private endTool(d: OutputDelta): void {
    const raw = this.tool.trim();
    this.state = "content";
    this.trimStart = true;
    const call = parseToolCall(raw);
    if (call) (d.toolCalls ??= []).push(call);
    // A malformed call is not lost: it reaches the client as text.
    else d.content = (d.content ?? "") + `${TOOL_OPEN}${this.tool}${TOOL_CLOSE}`;
  }
}

function parseToolCall(raw: string): ToolCall | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const o = v as { name?: unknown; arguments?: unknown; parameters?: unknown };
  if (typeof o !== "object" || o === null || typeof o.name !== "string") return undefined;
  let args = o.arguments ?? o.parameters ?? {};
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      return undefined;
    }
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
  return { function: { name: o.name, arguments: args as Record<string, unknown> } };
}

/** Whether a rendered prompt leaves a `<think>` block open for the model to continue. */
export function promptOpensThinking(prompt: string): boolean {
  const open = prompt.lastIndexOf(THINK_OPEN);
  return open >= 0 && prompt.indexOf(THINK_CLOSE, open) < 0;
}
