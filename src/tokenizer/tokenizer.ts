/**
 * Byte-level BPE (GPT-2 style: Qwen, Llama 3) and SentencePiece-style BPE (Llama 2,
 * Mistral) tokenizers over one vocabulary model. Special tokens are matched literally
 * before BPE; decoding is per token bytes so streaming can stay UTF-8 safe.
 */
import type { StringTable } from "../formats/string-table.js";
import { BpeMerger } from "./bpe.js";
import { bytesToUnicode, unicodeToBytes } from "./byte-level.js";
import { RankedMerges, ScoredMerges } from "./pair-merges.js";
import { compilePretokenizer } from "./pretokenize.js";
import { VocabIndex } from "./vocab-index.js";

export interface TokenizerSpec {
  kind: "byte-level" | "sentencepiece";
  /** Token strings by id. */
  vocab: StringTable;
  /** Merges "left right" in priority order (absent for score-ranked SentencePiece vocabularies). */
  merges?: StringTable;
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
  private readonly index: VocabIndex;
  private readonly merger: BpeMerger;
  /** Byte-level: the token of each byte's character; SentencePiece: the `<0xXX>` fallback tokens. */
  private readonly byteIds = new Int32Array(256);
  private readonly pre: RegExp | undefined;
  private readonly specials: { id: number; content: string }[];
  private readonly specialRe: RegExp | undefined;
  private readonly control: Set<number>;
  private readonly bytesById: (Uint8Array | undefined)[] = [];
  private readonly cache = new Map<string, number[]>();
  private readonly encoder = new TextEncoder();
  private utf8 = new Uint8Array(256);

  constructor(readonly spec: TokenizerSpec) {
    this.vocabSize = spec.vocab.length;
    this.index = new VocabIndex(spec.vocab);
    this.bosId = spec.bosId;
    this.eosIds = spec.eosIds;
    this.addBos = spec.addBos;
    this.control = new Set(spec.controlIds);
    this.merger = new BpeMerger(
      spec.merges ? new RankedMerges(spec.merges, this.index) : new ScoredMerges(this.index, spec.scores),
    );
    for (let b = 0; b < 256; b++)
      this.byteIds[b] = this.index.findString(
        spec.kind === "byte-level"
          ? bytesToUnicode(new Uint8Array([b]))
          : `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
      );
    this.pre = spec.kind === "byte-level" ? compilePretokenizer(spec.pattern ?? "") : undefined;
    this.specials = [...spec.specials].sort((a, b) => b.content.length - a.content.length);
    this.specialRe = this.specials.length
      ? new RegExp(this.specials.map((s) => s.content.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g")
      : undefined;
  }

  /** The id of an exact token string, if the vocabulary has it. */
  tokenId(token: string): number | undefined {
    const id = this.index.findString(token);
    return id < 0 ? undefined : id;
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
      this.encodeSentencePiece(s, out);
      return;
    }
    for (const m of text.matchAll(this.pre!)) {
      const word = m[0];
      const hit = this.cache.get(word);
      if (hit) {
        for (const id of hit) out.push(id);
        continue;
      }
      const ids: number[] = [];
      this.encodeByteLevel(word, ids);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
      for (const id of ids) out.push(id);
    }
  }

  /** A pre-tokenized word: its UTF-8 bytes as byte tokens, merged. Unknown bytes are dropped. */
  private encodeByteLevel(word: string, out: number[]): void {
    if (this.utf8.length < word.length * 3) this.utf8 = new Uint8Array(word.length * 3);
    const n = this.encoder.encodeInto(word, this.utf8).written;
    this.merger.reserve(n);
    const sym = this.merger.sym;
    for (let i = 0; i < n; i++) sym[i] = this.byteIds[this.utf8[i]!]!;
    this.merger.merge(n, (id) => {
      if (id >= 0) out.push(id);
    });
  }

  /** Characters as tokens, merged by score; characters outside the vocabulary become byte tokens. */
  private encodeSentencePiece(s: string, out: number[]): void {
    const chars = Array.from(s);
    this.merger.reserve(chars.length);
    const sym = this.merger.sym;
    chars.forEach((c, i) => (sym[i] = this.index.findString(c)));
    this.merger.merge(chars.length, (id, i) => {
      if (id >= 0) {
        out.push(id);
        return;
      }
      for (const b of this.encoder.encode(chars[i]!)) if (this.byteIds[b]! >= 0) out.push(this.byteIds[b]!);
    });
  }

  /** The bytes token `id` stands for in text (control tokens: their literal content). */
  tokenBytes(id: number): Uint8Array {
    let b = this.bytesById[id];
    if (b) return b;
    const t = this.spec.vocab.at(id) ?? "";
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
