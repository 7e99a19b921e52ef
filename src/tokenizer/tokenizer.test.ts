/** Tokenizers: the embedded model's byte-level BPE, a SentencePiece-style BPE, GGUF round trips, streaming. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readGguf } from "../formats/gguf/read.js";
import { encodeGguf, kv } from "../formats/gguf/write.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { StringTable } from "../formats/string-table.js";
import { BpeMerger } from "./bpe.js";
import { completePrefix, Detokenizer } from "./detokenizer.js";
import { tokenizerFromGguf, tokenizerFromHf, tokenizerToGguf } from "./load.js";
import { RankedMerges } from "./pair-merges.js";
import { toJsPattern } from "./pretokenize.js";
import { Tokenizer } from "./tokenizer.js";
import { VocabIndex } from "./vocab-index.js";

const hf = tokenizerFromHf(DEFAULT_MODEL_PATH);
const tok = hf.tokenizer;
const evalText = readFileSync(join(DEFAULT_MODEL_PATH, "eval.txt"), "utf8");

function toBuffer(chunks: Uint8Array[]): ArrayBuffer {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out.buffer;
}

describe("byte-level BPE (tiny-qwen3)", () => {
  it("encodes the reference prompts to the reference ids", () => {
    const ref = JSON.parse(readFileSync(join(DEFAULT_MODEL_PATH, "reference_logits.json"), "utf8"));
    for (const c of ref.cases) assert.deepEqual(tok.encode(c.prompt), c.prompt_ids);
  });

  it("round-trips eval.txt and arbitrary Unicode", () => {
    assert.equal(tok.decode(tok.encode(evalText)), evalText.normalize("NFC"));
    const s = "naïve café — 日本語 🙂 \t\n  tabs\r\nand 12345 'quotes' DON'T";
    assert.equal(tok.decode(tok.encode(s)), s);
  });

  it("matches special tokens literally unless asked not to", () => {
    const ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
    assert.equal(ids[0], tok.tokenId("<|im_start|>"));
    assert.equal(ids[ids.length - 1], tok.tokenId("<|im_end|>"));
    const plain = tok.encode("<|im_start|>", { parseSpecial: false });
    assert.ok(plain.length > 1 && !plain.includes(tok.tokenId("<|im_start|>")!));
  });

  it("reads the same tokenizer back from GGUF metadata", () => {
    const g = readGguf(
      "t.gguf",
      toBuffer(encodeGguf([kv.str("general.architecture", "qwen3"), ...tokenizerToGguf(hf)], [])),
    );
    const back = tokenizerFromGguf(g.metadata, "t.gguf");
    assert.deepEqual(back.tokenizer.encode(evalText.slice(0, 20000)), tok.encode(evalText.slice(0, 20000)));
    assert.equal(back.chatTemplate, hf.chatTemplate);
  });

  it("tokenizes a long agent transcript quickly enough to redo per request", () => {
    const text = evalText.repeat(8);
    const t0 = performance.now();
    const ids = tok.encode(text);
    const ms = performance.now() - t0;
    assert.ok(ids.length > 150_000);
    // A loose ceiling that only catches pathological (quadratic) behaviour.
    assert.ok(ms < 20_000, `${ids.length} tokens took ${ms} ms`);
  });
});

describe("SentencePiece-style BPE", () => {
  const vocab = [
    "<unk>",
    "<s>",
    "</s>",
    ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`),
  ];
  const pieces = [
    "▁",
    "h",
    "e",
    "l",
    "o",
    "w",
    "r",
    "d",
    "he",
    "ll",
    "llo",
    "hello",
    "▁hello",
    "▁w",
    "or",
    "▁wor",
    "ld",
    "▁world",
  ];
  const scores = new Float32Array(vocab.length + pieces.length);
  pieces.forEach((p, i) => (scores[vocab.length + i] = p.length * 1.0 - i * 0.01));
  const spm = new Tokenizer({
    kind: "sentencepiece",
    vocab: StringTable.from([...vocab, ...pieces]),
    scores,
    specials: [
      { id: 1, content: "<s>" },
      { id: 2, content: "</s>" },
    ],
    controlIds: [0, 1, 2],
    bosId: 1,
    eosIds: [2],
    addBos: true,
    addSpacePrefix: true,
  });

  it("merges by score and prepends the space marker", () => {
    const ids = spm.encode("hello world");
    assert.deepEqual(
      ids.map((i) => spm.spec.vocab.at(i)),
      ["<s>", "▁hello", "▁world"],
    );
    assert.equal(spm.decode(ids, { skipSpecial: true }), "hello world");
  });

  it("falls back to bytes for characters outside the vocabulary", () => {
    const ids = spm.encode("hé", { addBos: false });
    assert.deepEqual(
      ids.map((i) => spm.spec.vocab.at(i)),
      ["▁", "h", "<0xC3>", "<0xA9>"],
    );
    assert.equal(spm.decode(ids), "hé");
  });
});

describe("BPE merging", () => {
  it("agrees with a naive lowest-rank-first merge", () => {
    const merges = ["a b", "ab c", "b c", "c d", "ab cd", "abc d", "d d", "dd dd", "bc d"];
    const vocab = ["a", "b", "c", "d", "e", "ab", "abc", "bc", "cd", "abcd", "dd", "dddd", "bcd"];
    const index = new VocabIndex(StringTable.from(vocab));
    const merger = new BpeMerger(new RankedMerges(StringTable.from(merges), index));
    const rank = (a: string, b: string) => {
      const i = merges.indexOf(`${a} ${b}`);
      return i < 0 ? undefined : i;
    };
    const naive = (s: string[]) => {
      s = s.slice();
      for (;;) {
        let best = -1,
          bestRank = Infinity;
        for (let i = 0; i + 1 < s.length; i++) {
          const r = rank(s[i]!, s[i + 1]!);
          if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
        }
        if (best < 0) return s;
        s.splice(best, 2, s[best]! + s[best + 1]!);
      }
    };
    let seed = 3;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const words = ["abcd", "abcdabcd", "ddddddd", "abcddabc", "cdcdab", "bcdbcd", "a", ""];
    for (let k = 0; k < 300; k++) words.push(Array.from({ length: rnd(24) }, () => "abcde"[rnd(5)]).join(""));
    for (const w of words) {
      const chars = Array.from(w);
      merger.reserve(chars.length);
      chars.forEach((c, i) => (merger.sym[i] = index.findString(c)));
      const got: string[] = [];
      merger.merge(chars.length, (id) => got.push(vocab[id]!));
      assert.deepEqual(got, naive(chars), w);
    }
  });

  it("finds tokens by bytes, by text and by concatenation", () => {
    const words = ["x", "xy", "日本", "🙂", "x y", "", "Ġthe", "<|im_start|>"];
    const index = new VocabIndex(StringTable.from([...words, "x"]));
    words.forEach((w, i) => assert.equal(index.findString(w), i, w));
    assert.equal(index.findString("y"), -1);
    assert.equal(index.findString("xyz"), -1);
    assert.equal(index.findConcat(0, 0), -1);
    assert.equal(index.findConcat(0, 1), -1);
    assert.equal(index.findConcat(5, 0), 0);
  });
});

describe("pre-tokenizer patterns", () => {
  it("rewrites case-insensitive groups for JavaScript", () => {
    const p = toJsPattern("(?i:'s|'t)|\\p{L}+");
    const re = new RegExp(p, "gu");
    assert.deepEqual("IT'S it's".match(re), ["IT", "'S", "it", "'s"]);
  });
});

describe("streaming detokenization", () => {
  it("never emits a partial UTF-8 character", () => {
    const text = "日本語 🙂 ok";
    const ids = tok.encode(text);
    const d = new Detokenizer(tok);
    let out = "";
    for (const id of ids) {
      const piece = d.push(id);
      assert.ok(!piece.includes("\uFFFD"), "replacement character emitted");
      out += piece;
    }
    out += d.flush();
    assert.equal(out, text);
  });

  it("finds the complete prefix of a byte sequence", () => {
    assert.equal(completePrefix([0x61, 0xe6, 0x97]), 1);
    assert.equal(completePrefix([0x61, 0xe6, 0x97, 0xa5]), 4);
    assert.equal(completePrefix([0xf0, 0x9f]), 0);
  });
});
