/** What `/api/show`, `/api/tags` and `/api/ps` report about a model. */
import { statSync } from "node:fs";
import { readGguf } from "../formats/gguf/read.js";
import { openModelSource } from "../formats/model-source.js";
import { fileTypeName, formatParameterSize, parameterCount } from "../formats/gguf/file-type.js";
import type { GgufValue } from "../formats/gguf/types.js";
import { StringTable } from "../formats/string-table.js";
import { capabilities } from "../chat/capabilities.js";
import type { ResolvedModel } from "./resolve.js";

export interface Details {
  parent_model: string;
  format: string;
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

export interface ModelFacts {
  details: Details;
  modelInfo: Record<string, unknown>;
  template?: string;
  capabilities: string[];
  contextLength: number;
}

function isArray(v: GgufValue): boolean {
  return Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof StringTable;
}

function jsonValue(v: GgufValue): unknown {
  if (typeof v === "bigint") return Number(v);
  if (ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<number>);
  if (v instanceof StringTable) return [...v];
  return v;
}

const cache = new Map<string, ModelFacts>();

/** Reads the model's metadata (cached per weights file). */
export function modelFacts(m: ResolvedModel, verbose = false): ModelFacts {
  const key = `${m.path}|${verbose}|${m.template ?? ""}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let meta: Map<string, GgufValue>;
  let params: number;
  let quant: string;
  let format = "gguf";
  let template: string | undefined;
  if (statSync(m.path).isDirectory()) {
    const s = openModelSource(m.path);
    meta = s.metadata;
    params = [...s.tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    quant = [
      ...new Set([...s.tensors.values()].filter((t) => t.shape.length > 1).map((t) => t.typeName)),
    ].join("/");
    format = s.format;
    template = s.tokenizer.chatTemplate;
  } else {
    const g = readGguf(m.path);
    meta = g.metadata;
    params = parameterCount(g);
    quant = fileTypeName(g);
  }
  const arch = String(meta.get("general.architecture") ?? "unknown");
  template = m.template ?? template ?? (meta.get("tokenizer.chat_template") as string | undefined);
  const modelInfo: Record<string, unknown> = {};
  for (const [k, v] of meta) {
    if (!verbose && k.startsWith("tokenizer.ggml.") && isArray(v)) {
      modelInfo[k] = null;
      continue;
    }
    if (k === "tokenizer.chat_template") continue;
    modelInfo[k] = jsonValue(v);
  }
  modelInfo["general.architecture"] = arch;
  modelInfo["general.parameter_count"] = params;
  const facts: ModelFacts = {
    details: {
      parent_model: "",
      format,
      family: arch,
      families: [arch],
      parameter_size: formatParameterSize(params),
      quantization_level: quant,
    },
    modelInfo,
    template,
    capabilities: capabilities(template, { embedding: meta.has(`${arch}.pooling_type`) }),
    contextLength: Number(meta.get(`${arch}.context_length`) ?? 0),
  };
  cache.set(key, facts);
  return facts;
}
