/**
 * Byte-level BPE (GPT-2 style: Qwen, Llama 3) and SentencePiece-style BPE (Llama 2,
 * Mistral) tokenizers over one vocabulary model. Special tokens are matched literally
 * before BPE; decoding is per token bytes so streaming can stay UTF-8 safe.
 */
import { bpeMerge, type PairRank } from "./bpe.js";
import { bytesToUnicode, unicodeToBytes } from "./byte-level.js";
import { compilePretokenizer } from "./pretokenize.js";

export interface TokenizerSpec {
  kind: "byte-level" | "sentencepiece";
  /** Token strings by id. */
  vocab: string[];
  /** Merges "left right" in priority order (absent for score-ranked SentencePiece vocabularies). */
  merges?: string[];
  /** SentencePiece scores by id: the higher, the earlier a merge producing it applies. */
  scores?: Float32Array;
  /** Pre-tokenizer regex (byte-level). */
  pattern?: string;
  /** Tokens matched literally in text (added and special tokens). */
  specials: { id: number; content: string }[];
  /** Ids of control tokens (hidden when decoding with skipSpecial). */
  controlIds: number[];
  bosId?: number;
  eosIds: number[];
  addBos: boolean;
  /** SentencePiece: prepend "▁" to the text. */
  addSpacePrefix?: boolean;
  nfc?: boolean;
}

export interface EncodeOptions {
  /** Match special-token text such as `<|im_start|>` (default true). */
  parseSpecial?: boolean;
  /** Prepend BOS (default: the model's setting). */
  addBos?: boolean;
}

const SPIECE_SPACE = "\u2581";
const CACHE_LIMIT = 50_000;

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  readonly addBos: boolean;
  private readonly ids = new Map<string, number>();
  private readonly rank: PairRank;
  private readonly pre: RegExp | undefined;
  private readonly specials: { id: number; content: string }[];
  private readonly specialRe: RegExp | undefined;
  private readonly control: Set<number>;
  private readonly bytesById: (Uint8Array | undefined)[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(readonly spec: TokenizerSpec) {
    this.vocabSize = spec.vocab.length;
    spec.vocab.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    this.bosId = spec.bosId;
    this.eosIds = spec.eosIds;
    this.addBos = spec.addBos;
    this.control = new Set(spec.controlIds);
    if (spec.merges) {
      const ranks = new Map<string, number>();
      spec.merges.forEach((m, i) => {
        if (!ranks.has(m)) ranks.set(m, i);
      });
      this.rank = (a, b) => ranks.get(`${a} ${b}`);
    } else {
      const scores = spec.scores ?? new Float32Array(spec.vocab.length);
      this.rank = (a, b) => {
        const id = this.ids.get(a + b);
        return id === undefined ? undefined : -scores[id]!;
      };
    }
    this.pre = spec.kind === "byte-level" ? compilePretokenizer(spec.pattern ?? "") : undefined;
    this.specials = [...spec.specials].sort((a, b) => b.content.length - a.content.length);
    this.specialRe = this.specials.length
      ? new RegExp(this.specials.map((s) => s.content.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g")
      : undefined;
  }

  /** The id of an exact token string, if the vocabulary has it. */
  tokenId(token: string): number | undefined {
    return this.ids.get(token);
  }

  isControl(id: number): boolean {
    return this.control.has(id);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.addBos) {
      if (this.bosId !== undefined) out.push(this.bosId);
    }
    if (this.spec.nfc) text = text.normalize("NFC");
    let first = true;
    const emit = (chunk: string) => {
      if (!chunk) return;
      this.encodeText(chunk, first, out);
      first = false;
    };
    if (options.parseSpecial === false || !this.specialRe) {
      emit(text);
      return out;
    }
    let last = 0;
    this.specialRe.lastIndex = 0;
    for (const m of text.matchAll(this.specialRe)) {
      emit(text.slice(last, m.index));
      out.push(this.specials.find((s) => s.content === m[0])!.id);
      first = false;
      last = m.index! + m[0].length;
    }
    emit(text.slice(last));
    return out;
  }

  private encodeText(text: string, atStart: boolean, out: number[]): void {
    if (this.spec.kind === "sentencepiece") {
      let s = text.replaceAll(" ", SPIECE_SPACE);
      if (this.spec.addSpacePrefix && atStart) s = SPIECE_SPACE + s;
      this.encodePiece(Array.from(s), out, true);
      return;
    }
    for (const m of text.matchAll(this.pre!)) {
      const word = m[0];
      const hit = this.cache.get(word);
      if (hit) {
        out.push(...hit);
        continue;
      }
      const ids: number[] = [];
      this.encodePiece(Array.from(bytesToUnicode(new TextEncoder().encode(word))), ids, false);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
      out.push(...ids);
    }
  }

  private encodePiece(symbols: string[], out: number[], byteFallback: boolean): void {
    for (const sym of bpeMerge(symbols, this.rank)) {
      const id = this.ids.get(sym);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const b of byteFallback ? new TextEncoder().encode(sym) : unicodeToBytes(sym)) {
        const bid = this.ids.get(
          byteFallback
            ? `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`
            : bytesToUnicode(new Uint8Array([b])),
        );
        if (bid !== undefined) out.push(bid);
      }
    }
  }

  /** The bytes token `id` stands for in text (control tokens: their literal content). */
  tokenBytes(id: number): Uint8Array {
    let b = this.bytesById[id];
    if (b) return b;
    const t = this.spec.vocab[id] ?? "";
    if (this.control.has(id) || this.specials.some((s) => s.id === id)) {
      b = new TextEncoder().encode(t);
    } else if (this.spec.kind === "byte-level") {
      b = new Uint8Array(unicodeToBytes(t));
    } else {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
      b = m
        ? new Uint8Array([parseInt(m[1]!, 16)])
        : new TextEncoder().encode(t.replaceAll(SPIECE_SPACE, " "));
    }
    this.bytesById[id] = b;
    return b;
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      if (options.skipSpecial && this.control.has(id)) continue;
      parts.push(this.tokenBytes(id));
    }
    const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    let s = new TextDecoder().decode(all);
    if (this.spec.kind === "sentencepiece" && this.spec.addSpacePrefix && s.startsWith(" ")) s = s.slice(1);
    return s;
  }
}
