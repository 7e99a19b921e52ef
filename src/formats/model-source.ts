/**
 * Opens a model from disk, whatever its format: a GGUF file or a Hugging Face folder.
 * The result speaks GGUF's vocabulary (metadata keys and tensor names) either way.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { DType } from "../engine/tensor/dtype.js";
import { tokenizerFromGguf, tokenizerFromHf, type LoadedTokenizer } from "../tokenizer/load.js";
import { readGguf } from "./gguf/read.js";
import { ggmlType, type GgufValue } from "./gguf/types.js";
import { readHfFolder } from "./hf.js";
import { readJsonFileIf } from "./json-file.js";
import { mapFile, readFileInMemory, releaseFileBytes } from "./map-file.js";
import { ModelFileError, type TensorData } from "./tensor-source.js";

/** A tensor as stored; `dtype` is undefined for types the engine cannot compute with yet. */
export interface SourceTensor extends Omit<TensorData, "dtype"> {
  readonly dtype: DType | undefined;
  readonly typeName: string;
}

export interface ModelSource {
  readonly path: string;
  readonly format: "gguf" | "safetensors";
  /** Whether the weights are memory-mapped (else read into memory: OpenOptions.mmap). */
  readonly mmap: boolean;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: Map<string, SourceTensor>;
  readonly tokenizer: LoadedTokenizer;
  /** Sampling defaults the model ships (generation_config.json). */
  readonly defaults: Record<string, number>;
}

function generationDefaults(dir: string): Record<string, number> {
  const g = readJsonFileIf(join(dir, "generation_config.json"));
  const out: Record<string, number> = {};
  if (!g) return out;
  for (const [from, to] of [
    ["temperature", "temperature"],
    ["top_k", "topK"],
    ["top_p", "topP"],
    ["min_p", "minP"],
    ["repetition_penalty", "repeatPenalty"],
  ] as const) {
    if (typeof g[from] === "number") out[to] = g[from];
  }
  return out;
}

export interface OpenOptions {
  /** Memory-map the weights (default) or read them into memory (map-file.ts). */
  mmap?: boolean;
}

export function openModelSource(path: string, options: OpenOptions = {}): ModelSource {
  if (!existsSync(path)) throw new ModelFileError(path, "no such file or folder");
  const load = options.mmap === false ? readFileInMemory : mapFile;
  if (statSync(path).isDirectory()) {
    const hf = readHfFolder(path, load);
    return {
      path,
      format: "safetensors",
      mmap: load === mapFile,
      metadata: hf.metadata,
      tensors: new Map([...hf.tensors].map(([k, t]) => [k, { ...t, typeName: DType[t.dtype] }])),
      tokenizer: tokenizerFromHf(path),
      defaults: generationDefaults(path),
    };
  }
  const g = readGguf(path, load(path));
  const tensors = new Map<string, SourceTensor>();
  for (const t of g.tensors) {
    tensors.set(t.name, { ...t, dtype: ggmlType(t.type)?.dtype });
  }
  if (typeof g.metadata.get("general.architecture") !== "string")
    throw new ModelFileError(path, "metadata general.architecture is missing");
  const tokenizer = tokenizerFromGguf(g.metadata, path);
  // The tokenizer copied what it reads later, so the header's pages (several MiB with a
  // 150k-token vocabulary) can go: the metadata's string tables and arrays still view
  // them, and whatever reads those later faults them in again from the file.
  releaseFileBytes(g.buffer, 0, g.dataStart);
  return {
    path,
    format: "gguf",
    mmap: load === mapFile,
    metadata: g.metadata,
    tensors,
    tokenizer,
    defaults: {},
  };
}
