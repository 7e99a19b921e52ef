/**
 * An incremental matcher for JSON text that obeys a compiled schema, fed one byte at a
 * time (bytes >= 0x80 only occur inside strings, so UTF-8 needs no decoding here). It
 * answers whether a byte can come next, and whether the text so far is a complete value.
 * Constrained decoding clones it to try each candidate token's bytes.
 */
import { canStartWith, type SchemaNode } from "./json-schema.js";

type Frame =
  | { k: "value"; node: SchemaNode }
  | { k: "lit"; texts: string[]; pos: number }
  | { k: "str"; min: number; max: number; len: number; esc: number; text: string | null }
  | { k: "num"; integer: boolean; s: string }
  | {
      k: "obj";
      node: Extract<SchemaNode, { kind: "object" }>;
      seen: string[];
      phase: "open" | "key" | "colon" | "value" | "after" | "comma";
      key: string;
    }
  | { k: "arr"; node: Extract<SchemaNode, { kind: "array" }>; count: number; phase: "open" | "after" };

/** Whitespace between tokens of structure: one space, or a newline and up to this much indentation (pretty-printing, not loops). */
const MAX_INDENT = 8;
/** Digits allowed in the integer part, the fraction and the exponent. */
const NUMBER = {
  int: /^-?(0|[1-9]\d{0,15})?$/,
  full: /^-?((0|[1-9]\d{0,15})(\.\d{0,16})?([eE][+-]?\d{0,3})?)?$/,
};
const COMPLETE_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const ANY_OBJECT: Extract<SchemaNode, { kind: "object" }> = {
  kind: "object",
  properties: null,
  required: new Set(),
  extra: { kind: "any" },
};

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export class JsonMatcher {
  private stack: Frame[];
  private done = false;
  /** Whitespace characters in the current run (-1 after a lone space). */
  private ws = 0;

  constructor(root: SchemaNode | null, from?: JsonMatcher) {
    if (from) {
      this.stack = from.stack.map((f) => (f.k === "obj" ? { ...f, seen: f.seen.slice() } : { ...f }));
      this.done = from.done;
      this.ws = from.ws;
    } else this.stack = [{ k: "value", node: root! }];
  }

  clone(): JsonMatcher {
    return new JsonMatcher(null, this);
  }

  /** The value is complete: nothing more is needed (a number could still grow). */
  canEnd(): boolean {
    if (this.done) return true;
    if (this.stack.length !== 1) return false;
    const f = this.stack[0]!;
    return (
      (f.k === "num" && COMPLETE_NUMBER.test(f.s) && !(f.integer && /[.eE]/.test(f.s))) ||
      (f.k === "lit" && f.texts.some((t) => t.length === f.pos))
    );
  }

  /** Nothing at all may follow. */
  get finished(): boolean {
    return this.done;
  }

  /**
   * The shortest text that completes the value from here (required properties and
   * minimum items filled with minimal values): what a generation about to run out of
   * tokens appends so that its output still parses and validates.
   */
  closing(): string {
    let out = "";
    /** JSON text of the key a key frame was closed with, for the object below it. */
    let closedKey: string | undefined;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const f = this.stack[i]!;
      switch (f.k) {
        case "value":
          out += minimal(f.node);
          break;
        case "lit": {
          const alive = f.texts.filter((t) => t.length >= f.pos).sort((a, b) => a.length - b.length);
          out += alive[0]!.slice(f.pos);
          closedKey = alive[0];
          continue;
        }
        case "str": {
          const tail =
            (f.esc === 1 ? "n" : f.esc > 1 ? "0".repeat(6 - f.esc) : "") +
            "a".repeat(Math.max(0, f.min - f.len)) +
            '"';
          out += tail;
          closedKey = f.text === null ? undefined : f.text + tail;
          continue;
        }
        case "num":
          out += /\d$/.test(f.s) ? "" : "0";
          break;
        case "obj": {
          const props = f.node.properties;
          const seen = new Set(f.seen);
          if (f.phase === "key") {
            // The key frame above was just closed: its text names the property.
            const key = closedKey === undefined ? undefined : (JSON.parse(closedKey) as string);
            if (key !== undefined) seen.add(key);
            out += ":" + minimal((key !== undefined ? props?.get(key) : undefined) ?? f.node.extra);
          } else if (f.phase === "colon") out += ":" + minimal(props?.get(f.key) ?? f.node.extra);
          let first = f.phase === "open" || f.phase === "comma";
          const missing = [...f.node.required].filter((r) => !seen.has(r));
          for (const r of missing) {
            out += (first ? "" : ",") + JSON.stringify(r) + ":" + minimal(props!.get(r)!);
            first = false;
          }
          if (f.phase === "comma" && missing.length === 0) {
            // After a comma one more member is due: any declared, unseen property (or a free key).
            const next = props ? [...props.keys()].find((k) => !seen.has(k))! : "k";
            out += JSON.stringify(next) + ":" + minimal(props?.get(next) ?? f.node.extra);
          }
          out += "}";
          break;
        }
        case "arr": {
          let n = f.count;
          let sep = f.phase === "after" && n > 0;
          while (n < f.node.minItems) {
            out += (sep ? "," : "") + minimal(f.node.items);
            sep = true;
            n++;
          }
          out += "]";
          break;
        }
      }
      closedKey = undefined;
    }
    return out;
  }

  /** Feeds bytes; false (and an unusable state) if any is not allowed. */
  feedBytes(bytes: ArrayLike<number>): boolean {
    for (let i = 0; i < bytes.length; i++) if (!this.feed(bytes[i]!)) return false;
    return true;
  }

  feed(c: number): boolean {
    for (;;) {
      const f = this.stack[this.stack.length - 1];
      if (!f) return false; // complete: nothing may follow
      const r = this.step(f, c);
      if (r === "refeed") continue;
      if (r && !isWs(c)) this.ws = 0;
      return r;
    }
  }

  private space(c: number): boolean {
    if (this.ws === 0) {
      if (c === 0x20) return ((this.ws = -1), true);
      if (c === 0x0a) return ((this.ws = 1), true);
      return false;
    }
    if (this.ws > 0 && this.ws <= MAX_INDENT && (c === 0x20 || c === 0x09)) return (this.ws++, true);
    return false;
  }

  /** Pops the top frame as a complete value and lets its parent move on. */
  private complete(text?: string): void {
    this.stack.pop();
    const p = this.stack[this.stack.length - 1];
    if (!p) {
      this.done = true;
      return;
    }
    if (p.k === "obj") {
      if (p.phase === "key") {
        p.key = JSON.parse(text!);
        p.seen.push(p.key);
        p.phase = "colon";
      } else p.phase = "after";
    } else if (p.k === "arr") p.phase = "after";
  }

  private replace(f: Frame): void {
    this.stack[this.stack.length - 1] = f;
  }

  private step(f: Frame, c: number): boolean | "refeed" {
    const ch = String.fromCharCode(c);
    switch (f.k) {
      case "value": {
        if (isWs(c)) return this.space(c);
        const n = f.node;
        switch (n.kind) {
          case "any":
            if (ch === "{")
              return (this.replace({ k: "obj", node: ANY_OBJECT, seen: [], phase: "open", key: "" }), true);
            if (ch === "[")
              return (
                this.replace({
                  k: "arr",
                  node: { kind: "array", items: n, minItems: 0, maxItems: Infinity },
                  count: 0,
                  phase: "open",
                }),
                true
              );
            if (ch === '"')
              return (this.replace({ k: "str", min: 0, max: Infinity, len: 0, esc: 0, text: null }), true);
            if (ch === "-" || (c >= 0x30 && c <= 0x39))
              return (this.replace({ k: "num", integer: false, s: "" }), "refeed");
            if ("tfn".includes(ch))
              return (this.replace({ k: "lit", texts: ["true", "false", "null"], pos: 0 }), "refeed");
            return false;
          case "literals":
            return (this.replace({ k: "lit", texts: n.texts, pos: 0 }), "refeed");
          case "string":
            if (ch !== '"') return false;
            return (
              this.replace({ k: "str", min: n.minLength, max: n.maxLength, len: 0, esc: 0, text: null }),
              true
            );
          case "number":
            if (ch !== "-" && !(c >= 0x30 && c <= 0x39)) return false;
            return (this.replace({ k: "num", integer: n.integer, s: "" }), "refeed");
          case "object":
            if (ch !== "{") return false;
            return (this.replace({ k: "obj", node: n, seen: [], phase: "open", key: "" }), true);
          case "array":
            if (ch !== "[") return false;
            return (this.replace({ k: "arr", node: n, count: 0, phase: "open" }), true);
          case "union": {
            // A branch that is not a literal list wins a shared first character (it is the wider one).
            const pick =
              n.branches.find((b) => b.kind !== "literals" && canStartWith(b, ch)) ??
              n.branches.find((b) => canStartWith(b, ch));
            if (!pick) return false;
            return (this.replace({ k: "value", node: pick }), "refeed");
          }
        }
        return false;
      }
      case "lit": {
        const next = f.texts.filter((t) => t.charCodeAt(f.pos) === c);
        if (next.length === 0) {
          const whole = f.texts.find((t) => t.length === f.pos);
          if (whole === undefined) return false;
          this.complete(whole);
          return "refeed";
        }
        f.texts = next;
        f.pos++;
        if (next.length === 1 && next[0]!.length === f.pos) this.complete(next[0]);
        return true;
      }
      case "str": {
        if (f.esc > 0) {
          // esc 1: after a backslash; 2..5: hex digits of \u still to come (5 - esc + 1 left)
          if (f.esc === 1) {
            if (ch === "u") f.esc = 2;
            else if ('"\\/bfnrt'.includes(ch)) f.esc = 0;
            else return false;
          } else {
            if (!/[0-9a-fA-F]/.test(ch)) return false;
            f.esc = f.esc === 5 ? 0 : f.esc + 1;
          }
          if (f.text !== null) f.text += ch;
          return true;
        }
        if (ch === '"') {
          if (f.len < f.min) return false;
          this.complete(f.text === null ? undefined : f.text + '"');
          return true;
        }
        if (c < 0x20) return false;
        // Count characters, not UTF-8 continuation bytes.
        if (c < 0x80 || c >= 0xc0) {
          if (f.len >= f.max) return false;
          f.len++;
        }
        if (ch === "\\") f.esc = 1;
        if (f.text !== null) f.text += ch;
        return true;
      }
      case "num": {
        const s = f.s + ch;
        if ((f.integer ? NUMBER.int : NUMBER.full).test(s)) {
          f.s = s;
          return true;
        }
        if (!COMPLETE_NUMBER.test(f.s)) return false;
        this.complete();
        return "refeed";
      }
      case "obj": {
        const props = f.node.properties;
        const remaining = props ? [...props.keys()].filter((k) => !f.seen.includes(k)) : null;
        const closable = [...f.node.required].every((r) => f.seen.includes(r));
        switch (f.phase) {
          case "open":
          case "comma":
            if (isWs(c)) return this.space(c);
            if (ch === "}" && f.phase === "open" && closable) return (this.complete(), true);
            if (ch !== '"') return false;
            if (remaining && remaining.length === 0) return false;
            f.phase = "key";
            if (remaining)
              this.stack.push({ k: "lit", texts: remaining.map((k) => JSON.stringify(k)), pos: 0 });
            else {
              // The string frame starts after its opening quote and collects the key's text.
              this.stack.push({ k: "str", min: 0, max: 256, len: 0, esc: 0, text: '"' });
              return true;
            }
            return "refeed";
          case "colon":
            if (isWs(c)) return this.space(c);
            if (ch !== ":") return false;
            f.phase = "value";
            this.stack.push({ k: "value", node: props?.get(f.key) ?? f.node.extra });
            return true;
          case "after":
            if (isWs(c)) return this.space(c);
            if (ch === "}" && closable) return (this.complete(), true);
            if (ch === "," && (!remaining || remaining.length > 0)) return ((f.phase = "comma"), true);
            return false;
          default:
            return false;
        }
      }
      case "arr": {
        if (isWs(c)) return this.space(c);
        if (f.phase === "open") {
          if (ch === "]") return f.node.minItems === 0 ? (this.complete(), true) : false;
          if (ch === "," || f.node.maxItems === 0) return false;
        } else {
          if (ch === "]") return f.count >= f.node.minItems ? (this.complete(), true) : false;
          if (ch !== "," || f.count >= f.node.maxItems) return false;
        }
        f.count++;
        f.phase = "after";
        this.stack.push({ k: "value", node: f.node.items });
        return ch === "," ? true : "refeed";
      }
    }
  }
}

/** The shortest valid text for a schema. */
function minimal(n: SchemaNode): string {
  switch (n.kind) {
    case "any":
      return "null";
    case "literals":
      return [...n.texts].sort((a, b) => a.length - b.length)[0]!;
    case "string":
      return `"${"a".repeat(n.minLength)}"`;
    case "number":
      return "0";
    case "object": {
      const req = [...n.required].map((r) => `${JSON.stringify(r)}:${minimal(n.properties!.get(r)!)}`);
      return `{${req.join(",")}}`;
    }
    case "array":
      return `[${Array.from({ length: n.minItems }, () => minimal(n.items)).join(",")}]`;
    case "union":
      return n.branches.map(minimal).sort((a, b) => a.length - b.length)[0]!;
  }
}
