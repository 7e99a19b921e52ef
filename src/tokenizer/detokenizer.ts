/** Streaming detokenization: emits only complete UTF-8 characters, holding partial bytes back. */
import type { Tokenizer } from "./tokenizer.js";

export class Detokenizer {
  private pending: number[] = [];
  private readonly td = new TextDecoder("utf-8", { fatal: false });

  /** `keep`: control tokens that are part of the text anyway (e.g. `<think>` tags a parser reads). */
  constructor(
    private readonly tok: Tokenizer,
    private readonly skipSpecial = true,
    private readonly keep: ReadonlySet<number> = new Set(),
  ) {}

  /** Adds a token and returns the text that became complete (possibly ""). */
  push(id: number): string {
    if (this.skipSpecial && this.tok.isControl(id) && !this.keep.has(id)) return "";
    this.pending.push(...this.tok.tokenBytes(id));
    const cut = completePrefix(this.pending);
    if (cut === 0) return "";
    const s = this.td.decode(new Uint8Array(this.pending.slice(0, cut)));
    this.pending = this.pending.slice(cut);
    return s;
  }

  /** Whatever is left, with invalid bytes replaced. */
  flush(): string {
    const s = this.pending.length ? this.td.decode(new Uint8Array(this.pending)) : "";
    this.pending = [];
    return s;
  }
}

/** Length of the longest prefix that does not end inside a UTF-8 sequence. */
export function completePrefix(b: readonly number[]): number {
  const n = b.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const c = b[n - back]!;
    if ((c & 0xc0) === 0x80) continue; // continuation byte
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
