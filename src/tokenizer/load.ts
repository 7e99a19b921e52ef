/** Builds tokenizers from Hugging Face files or GGUF metadata, and writes them back as GGUF keys. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GgufKv, GgufValue } from "../formats/gguf/types.js";
import { kv } from "../formats/gguf/write.js";
import { readJsonFileIf } from "../formats/json-file.js";
import { StringTable } from "../formats/string-table.js";
import { ModelFileError } from "../formats/tensor-source.js";
import { pretokenizerPattern } from "./pretokenize.js";
import { Tokenizer, type TokenizerSpec } from "./tokenizer.js";

export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  /** Jinja chat template, if the model ships one. */
  chatTemplate?: string;
  /** Family of the pre-tokenizer, written as GGUF `tokenizer.ggml.pre`. */
  pre: string;
}

function flatten(node: any): any[] {
  if (!node) return [];
  if (node.type === "Sequence")
    return (node.pretokenizers ?? node.normalizers ?? node.decoders ?? []).flatMap(flatten);
  return [node];
}

function ids(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

/** Reads tokenizer.json (+ tokenizer_config.json, generation_config.json, config.json) from a folder. */
export function tokenizerFromHf(dir: string): LoadedTokenizer {
  const path = join(dir, "tokenizer.json");
  const tj = readJsonFileIf(path);
  if (!tj) throw new ModelFileError(dir, "missing tokenizer.json");
  const tc = readJsonFileIf(join(dir, "tokenizer_config.json")) ?? {};
  const gc = readJsonFileIf(join(dir, "generation_config.json")) ?? {};
  const cfg = readJsonFileIf(join(dir, "config.json")) ?? {};
  const model = tj.model;
  if (!model || model.type !== "BPE")
    throw new ModelFileError(
      path,
      `tokenizer model ${JSON.stringify(model?.type)} is not supported (BPE only)`,
    );
  const vocab: string[] = [];
  for (const [t, id] of Object.entries(model.vocab as Record<string, number>)) vocab[id] = t;
  const added: { id: number; content: string; special: boolean }[] = tj.added_tokens ?? [];
  for (const a of added) vocab[a.id] = a.content;
  for (let i = 0; i < vocab.length; i++) if (vocab[i] === undefined) vocab[i] = `<unused${i}>`;
  const merges: string[] = (model.merges ?? []).map((m: string | string[]) =>
    Array.isArray(m) ? m.join(" ") : m,
  );
  const pres = flatten(tj.pre_tokenizer),
    norms = flatten(tj.normalizer),
    decs = flatten(tj.decoder);
  const byteLevel = pres.some((p) => p.type === "ByteLevel") || decs.some((d) => d.type === "ByteLevel");
  const split = pres.find((p) => p.type === "Split" && p.pattern?.Regex);
  const byId = (name: unknown) =>
    typeof name === "string"
      ? vocab.indexOf(name)
      : typeof name === "object" && name && "content" in name
        ? vocab.indexOf((name as any).content)
        : -1;
  let eosIds = ids(gc.eos_token_id);
  if (!eosIds.length) eosIds = ids(cfg.eos_token_id);
  if (!eosIds.length && byId(tc.eos_token) >= 0) eosIds = [byId(tc.eos_token)];
  let bosId: number | undefined = ids(gc.bos_token_id)[0] ?? ids(cfg.bos_token_id)[0];
  if (tc.bos_token === null) bosId = bosId ?? undefined;
  else if (byId(tc.bos_token) >= 0) bosId = byId(tc.bos_token);
  const spec: TokenizerSpec = {
    kind: byteLevel ? "byte-level" : "sentencepiece",
    vocab: StringTable.from(vocab),
    merges: StringTable.from(merges),
    pattern: split?.pattern?.Regex ?? pretokenizerPattern("default"),
    specials: added.map((a) => ({ id: a.id, content: a.content })),
    controlIds: added.filter((a) => a.special).map((a) => a.id),
    bosId,
    eosIds,
    addBos: tc.add_bos_token ?? !byteLevel,
    addSpacePrefix:
      norms.some((n) => n.type === "Prepend") ||
      pres.some((p) => p.type === "Metaspace" && p.prepend_scheme !== "never"),
    nfc: norms.some((n) => n.type === "NFC"),
  };
  let chatTemplate: string | undefined = tc.chat_template;
  if (Array.isArray(tc.chat_template))
    chatTemplate =
      tc.chat_template.find((t: any) => t.name === "default")?.template ?? tc.chat_template[0]?.template;
  if (!chatTemplate && existsSync(join(dir, "chat_template.jinja")))
    chatTemplate = readFileSync(join(dir, "chat_template.jinja"), "utf8");
  const pre = /\\p\{N\}\{1,3\}/.test(spec.pattern ?? "") ? "llama-bpe" : split ? "qwen2" : "default";
  return { tokenizer: new Tokenizer(spec), chatTemplate, pre };
}

function strings(v: GgufValue | undefined): StringTable | undefined {
  if (v instanceof StringTable) return v;
  return Array.isArray(v) && v.every((x) => typeof x === "string")
    ? StringTable.from(v as string[])
    : undefined;
}

function numOf(v: GgufValue | undefined): number | undefined {
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
}

/** Reads `tokenizer.ggml.*` metadata of a GGUF file. */
export function tokenizerFromGguf(meta: ReadonlyMap<string, GgufValue>, file: string): LoadedTokenizer {
  const model = meta.get("tokenizer.ggml.model");
  const vocab = strings(meta.get("tokenizer.ggml.tokens"));
  if (typeof model !== "string" || !vocab)
    throw new ModelFileError(file, "has no tokenizer (tokenizer.ggml.model / tokenizer.ggml.tokens missing)");
  if (model !== "gpt2" && model !== "llama")
    throw new ModelFileError(file, `tokenizer model "${model}" is not supported (gpt2 and llama only)`);
  const types = meta.get("tokenizer.ggml.token_type");
  const typeOf = (i: number) =>
    types && ArrayBuffer.isView(types)
      ? (types as Int32Array)[i]!
      : Array.isArray(types)
        ? Number(types[i])
        : 1;
  const specials: { id: number; content: string }[] = [];
  const controlIds: number[] = [];
  for (let i = 0; i < vocab.length; i++) {
    const ty = typeOf(i);
    if (ty === 3) controlIds.push(i);
    if (ty === 3 || ty === 4) specials.push({ id: i, content: vocab.at(i)! });
  }
  const scoresV = meta.get("tokenizer.ggml.scores");
  const pre =
    typeof meta.get("tokenizer.ggml.pre") === "string"
      ? (meta.get("tokenizer.ggml.pre") as string)
      : "default";
  const eosIds = [
    numOf(meta.get("tokenizer.ggml.eos_token_id")),
    numOf(meta.get("tokenizer.ggml.eot_token_id")),
  ].filter((x): x is number => x !== undefined);
  const addBos = meta.get("tokenizer.ggml.add_bos_token");
  const addSpace = meta.get("tokenizer.ggml.add_space_prefix");
  // The tokenizer keeps copies of what it reads at run time (the vocabulary when decoding,
  // the scores when encoding), so the file's header pages can be given back after loading;
  // the merges are only read here.
  const spec: TokenizerSpec = {
    kind: model === "gpt2" ? "byte-level" : "sentencepiece",
    vocab: vocab.compact(),
    merges:
      model === "gpt2" ? (strings(meta.get("tokenizer.ggml.merges")) ?? StringTable.from([])) : undefined,
    scores: scoresV instanceof Float32Array ? scoresV.slice() : undefined,
    pattern: pretokenizerPattern(pre),
    specials,
    controlIds,
    bosId: numOf(meta.get("tokenizer.ggml.bos_token_id")),
    eosIds: [...new Set(eosIds)],
    addBos: typeof addBos === "boolean" ? addBos : model === "llama",
    addSpacePrefix: typeof addSpace === "boolean" ? addSpace : model === "llama",
  };
  const tmpl = meta.get("tokenizer.chat_template");
  return { tokenizer: new Tokenizer(spec), chatTemplate: typeof tmpl === "string" ? tmpl : undefined, pre };
}

/** GGUF `tokenizer.*` entries for a tokenizer (what llama.cpp reads). */
export function tokenizerToGguf(t: LoadedTokenizer): GgufKv[] {
  const s = t.tokenizer.spec;
  const control = new Set(s.controlIds),
    special = new Set(s.specials.map((x) => x.id));
  const out: GgufKv[] = [
    kv.str("tokenizer.ggml.model", s.kind === "byte-level" ? "gpt2" : "llama"),
    kv.str("tokenizer.ggml.pre", t.pre),
    kv.strs("tokenizer.ggml.tokens", s.vocab),
    kv.i32s(
      "tokenizer.ggml.token_type",
      Array.from({ length: s.vocab.length }, (_, i) => (control.has(i) ? 3 : special.has(i) ? 4 : 1)),
    ),
  ];
  if (s.merges) out.push(kv.strs("tokenizer.ggml.merges", s.merges));
  if (s.scores) out.push(kv.f32s("tokenizer.ggml.scores", s.scores));
  if (s.bosId !== undefined) out.push(kv.u32("tokenizer.ggml.bos_token_id", s.bosId));
  if (s.eosIds.length) out.push(kv.u32("tokenizer.ggml.eos_token_id", s.eosIds[0]!));
  out.push(kv.bool("tokenizer.ggml.add_bos_token", s.addBos));
  if (t.chatTemplate) out.push(kv.str("tokenizer.chat_template", t.chatTemplate));
  return out;
}
