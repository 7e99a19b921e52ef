/**
 * A model bound to a backend: its family, config, checked weights, KV cache and the
 * plans built for each batch shape. `forward` fills a plan's inputs and runs it.
 */
import type { ModelSource, SourceTensor } from "../formats/model-source.js";
import { ModelFileError } from "../formats/tensor-source.js";
import type { Backend, PreparedPlan, Sampler, WeightBytes, WeightPlacement } from "./backends/backend.js";
import { KvCache, kvCacheDType, type KvCacheType } from "./cache/kv-cache.js";
import {
  Metadata,
  modelFor,
  supportedArchitectures,
  type ModelDefinition,
  type WeightSpec,
} from "./models/index.js";
import { DType, isQuantized, rowBytes, toF32 } from "./tensor/dtype.js";
import { quantFormat } from "./quant/index.js";
import { firstBadScale } from "./quant/format.js";
import { Graph, type Tensor } from "./tensor/graph.js";
import { Op } from "./tensor/ops.js";

/** One forward pass: rows of tokens, each with its sequence slot and position. */
export interface Batch {
  tokens: ArrayLike<number>;
  positions: ArrayLike<number>;
  seqs: ArrayLike<number>;
  /** Rows whose logits are needed, in the order the result lists them. */
  outRows: ArrayLike<number>;
}

export interface EngineOptions {
  /** Context length per sequence (default: the model's, capped at 4096). */
  numCtx?: number;
  /** Concurrent sequence slots (default 1). */
  numSeq?: number;
  /** Tokens per KV block (default 32). */
  blockSize?: number;
  /** Element type of the KV cache (default f16; q8_0 falls back to f16 for heads that are
   * not whole 32-blocks: `cache.type` tells which one was used). */
  kvCacheType?: KvCacheType;
}

interface BoundWeight {
  spec: WeightSpec;
  dtype: DType;
  buffer: ArrayBuffer;
  byteOffset: number;
  /** Per-tensor factor of NVFP4 weights (GGUF `<name>.scale`). */
  outScale?: number;
}

function smallToF32(t: SourceTensor, n: number): Float32Array {
  if (!isQuantized(t.dtype!)) return toF32(t.buffer, t.byteOffset, t.dtype!, n);
  const out = new Float32Array(n);
  quantFormat(t.dtype!)!.dequantize(new Uint8Array(t.buffer, t.byteOffset, rowBytes(t.dtype!, n)), out);
  return out;
}

interface CachedPlan {
  prepared: PreparedPlan;
  logits: Tensor | null;
  /** Final-norm hidden states of the output rows, in hidden-state plans. */
  hidden: Tensor | null;
}

const MAX_PLANS = 24;

/**
 * Batch shapes are padded to a few sizes so that continuous batching, whose row counts
 * change every step, reuses plans instead of building one per shape (a build costs more
 * than several passes): exact up to 4, then multiples of 4 up to 16 (the decode dots take
 * tokens 4 at a time, and a padding row costs what a real one does), then multiples of 32.
 */
export function paddedRows(n: number): number {
  if (n <= 4) return n;
  if (n <= 16) return Math.ceil(n / 4) * 4;
  return Math.ceil(n / 32) * 32;
}

function bindWeights(def: ModelDefinition<any>, config: unknown, src: ModelSource): Map<string, BoundWeight> {
  const out = new Map<string, BoundWeight>();
  for (const spec of def.weights(config)) {
    const t: SourceTensor | undefined = src.tensors.get(spec.name);
    if (!t) {
      if (spec.optional) continue;
      throw new ModelFileError(src.path, `missing tensor ${spec.name}`);
    }
    const rows = t.shape.length === 1 ? 1 : t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const cols = t.shape[t.shape.length - 1]!;
    if (rows !== spec.rows || cols !== spec.cols) {
      throw new ModelFileError(
        t.file,
        `tensor ${spec.name} has shape [${t.shape.join(", ")}] but the config implies [${spec.rows === 1 ? "" : `${spec.rows}, `}${spec.cols}]`,
      );
    }
    if (t.dtype === undefined || t.dtype === DType.I32)
      throw new ModelFileError(
        t.file,
        `tensor ${spec.name} has type ${t.typeName}, which lmx cannot run yet`,
      );
    // Small f32 tensors are copied even when the file has them as f32: read in place, each
    // one would keep its whole 2 MiB page-cache folio of the file resident (the folio is
    // mapped at once), ~160 MiB for a 28-layer model whose big weights were interleaved.
    if (spec.f32) {
      const f = smallToF32(t, rows * cols);
      out.set(spec.name, { spec, dtype: DType.F32, buffer: f.buffer as ArrayBuffer, byteOffset: 0 });
    } else {
      if (isQuantized(t.dtype)) {
        const q = quantFormat(t.dtype)!;
        const bad = firstBadScale(
          q,
          new Uint8Array(t.buffer, t.byteOffset, rows * rowBytes(t.dtype, cols)),
          t.dtype === DType.MXFP4,
        );
        if (bad >= 0)
          throw new ModelFileError(
            t.file,
            `tensor ${spec.name} block ${bad} (row ${Math.floor(bad / (cols / q.blockSize))}) has a scale that is NaN or infinite`,
          );
      }
      const scale = src.tensors.get(spec.name.replace(/\.weight$/, ".scale"));
      let outScale: number | undefined;
      if (scale && scale.dtype === DType.F32) {
        outScale = new DataView(scale.buffer, scale.byteOffset, 4).getFloat32(0, true);
        if (!Number.isFinite(outScale))
          throw new ModelFileError(scale.file, `tensor ${scale.name} is not a finite number`);
      }
      out.set(spec.name, { spec, dtype: t.dtype, buffer: t.buffer, byteOffset: t.byteOffset, outScale });
    }
  }
  return out;
}

function weightBytes(w: BoundWeight): WeightBytes {
  return { dtype: w.dtype, buffer: w.buffer, byteOffset: w.byteOffset, rows: w.spec.rows, cols: w.spec.cols };
}

/** Lets the backend put the quantized weights in its own layouts (Backend.adoptWeights). */
function adoptWeights(backend: Backend, weights: Map<string, BoundWeight>): void {
  if (!backend.adoptWeights) return;
  const quantized = [...weights.values()].filter((w) => isQuantized(w.dtype));
  const adopted = backend.adoptWeights(quantized.map(weightBytes));
  quantized.forEach((w, i) => {
    const a = adopted[i];
    if (a) weights.set(w.spec.name, { ...w, dtype: a.dtype, buffer: a.buffer, byteOffset: a.byteOffset });
  });
}

export class EngineModel {
  readonly def: ModelDefinition<any>;
  readonly config: any;
  readonly metadata: Metadata;
  readonly cache: KvCache;
  readonly numCtx: number;
  /** Sequence slots callers may use (0 .. numSeq-1). */
  readonly numSeq: number;
  private readonly padSeq: number;
  readonly vocabSize: number;
  private readonly weights: Map<string, BoundWeight>;
  /** The weights read in place from mapped files and how they are mapped (cpu backend). */
  readonly weightPlacement: WeightPlacement | undefined;
  private readonly plans = new Map<string, CachedPlan>();

  constructor(
    readonly backend: Backend,
    readonly source: ModelSource,
    options: EngineOptions = {},
  ) {
    const meta = new Map(source.metadata);
    const arch = meta.get("general.architecture") as string;
    const def = modelFor(arch);
    if (!def)
      throw new ModelFileError(
        source.path,
        `unknown architecture "${arch}" (supported: ${supportedArchitectures().join(", ")})`,
      );
    const embd = source.tensors.get("token_embd.weight");
    if (!meta.has(`${arch}.vocab_size`) && embd) meta.set(`${arch}.vocab_size`, embd.shape[0]!);
    this.metadata = new Metadata(meta, source.path);
    this.def = def;
    try {
      this.config = def.parseConfig(this.metadata);
    } catch (e) {
      throw new ModelFileError(source.path, (e as Error).message.replace(`${source.path}: `, ""));
    }
    this.weights = bindWeights(def, this.config, source);
    adoptWeights(backend, this.weights);
    // An embedding with its own output head is read a few rows per token: left to fault in
    // as read (of a large vocabulary only the rows used become resident).
    const inPlace = [...this.weights.values()].filter(
      (w) => !(w.spec.name === "token_embd.weight" && this.weights.has("output.weight")),
    );
    this.weightPlacement = backend.placeWeights?.(inPlace.map(weightBytes));
    this.vocabSize = this.config.vocabSize;
    this.numCtx = Math.max(1, options.numCtx ?? Math.min(def.contextLength(this.config), 4096));
    this.numSeq = options.numSeq ?? 1;
    const blockSize = options.blockSize ?? 32;
    // One more slot than the caller's: padding rows write their K/V there, at position 0.
    const layers = def.cacheLayers(this.config);
    this.cache = new KvCache(backend, layers, {
      dtype: kvCacheDType(options.kvCacheType ?? "f16", layers),
      blockSize,
      nSeq: this.numSeq + 1,
      nCtx: this.numCtx,
      // Whole blocks per sequence: numSeq * numCtx alone fell short when numCtx is not a
      // multiple of the block size (3 sequences of 17 tokens need 3 blocks of 32, not 2).
      nTokens: this.numSeq * Math.ceil(this.numCtx / blockSize) * blockSize + blockSize,
    });
    this.padSeq = this.numSeq;
    this.cache.reserve(this.padSeq, 1);
  }

  /** Number of weights (parameters) bound from the file. */
  parameterCount(): number {
    let n = 0;
    for (const w of this.weights.values()) n += w.spec.rows * w.spec.cols;
    return n;
  }

  /** Bytes of weights the model reads per token. */
  weightBytes(): number {
    let n = 0;
    for (const w of this.weights.values()) n += w.spec.rows * rowBytes(w.dtype, w.spec.cols);
    return n;
  }

  /** Binds the model's weights into `g` on first use, by GGUF name. */
  private binder(g: Graph): { w: (name: string) => Tensor | undefined; bound: Map<string, Tensor> } {
    const bound = new Map<string, Tensor>();
    const w = (name: string) => {
      let t = bound.get(name);
      if (t) return t;
      const b = this.weights.get(name);
      if (!b) return undefined;
      t = g.bind(name, b.dtype, b.spec.rows, b.spec.cols, b.buffer, b.byteOffset);
      if (b.outScale !== undefined) t.outScale = b.outScale;
      bound.set(name, t);
      return t;
    };
    return { w, bound };
  }

  private setInputs(pp: PreparedPlan, batch: Batch): void {
    pp.setInput("tokens", batch.tokens);
    pp.setInput("positions", batch.positions);
    pp.setInput("rowSeq", batch.seqs);
    pp.setInput("outRows", batch.outRows);
    pp.setInput("blockTables", this.cache.tables());
  }

  private plan(nTokens: number, nOut: number, hidden = false): CachedPlan {
    const key = `${nTokens}/${nOut}${hidden ? "/h" : ""}`;
    let p = this.plans.get(key);
    if (p) {
      this.plans.delete(key);
      this.plans.set(key, p);
      return p;
    }
    const g = new Graph();
    const { w } = this.binder(g);
    const batch = g.batchInputs(nTokens, nOut, this.cache.nSeq, this.cache.maxBlocksPerSeq);
    const kv = this.cache.bind(g);
    let logits: Tensor | null = null;
    let hiddenOut: Tensor | null = null;
    if (hidden) {
      this.def.forward(this.config, { g, w, batch, kv, blockSize: this.cache.blockSize });
      // Every family names the final-norm output "result_norm" (as llama.cpp does).
      const norm = g.nodes.find((n) => n.dst.name === "result_norm")?.dst;
      if (!norm) throw new Error(`${this.metadata.arch}: the graph has no result_norm to embed from`);
      hiddenOut = g.output(norm);
      dropUnused(g);
    } else if (nOut > 0) {
      logits = g.output(this.def.forward(this.config, { g, w, batch, kv, blockSize: this.cache.blockSize }));
    } else {
      this.def.forward(this.config, { g, w, batch, kv, blockSize: this.cache.blockSize });
      // Without output rows, drop the head: nothing reads it.
      dropUnused(g);
    }
    p = { prepared: this.backend.prepare(g), logits, hidden: hiddenOut };
    this.plans.set(key, p);
    if (this.plans.size > MAX_PLANS) this.plans.delete(this.plans.keys().next().value!);
    return p;
  }

  /**
   * Runs one forward pass. The caller has reserved cache room for every row's position.
   * With samplers, resolves to one sampled token per output row (-1 for a row fed a draft
   * that did not come true: `drafts` as in PreparedPlan.execute, by output row).
   */
  async forward(
    batch: Batch,
    samplers?: readonly (Sampler | null)[],
    drafts?: readonly number[],
  ): Promise<Int32Array | null> {
    const p = this.fill(batch, false);
    const nOut = batch.outRows.length,
      padded = paddedRows(nOut);
    let chained: Int32Array | undefined;
    if (drafts) {
      chained = new Int32Array(padded).fill(-1);
      chained.set(drafts);
    }
    const out = await p.prepared.execute(
      samplers && [...samplers, ...new Array(padded - nOut).fill(null)],
      p.logits ?? undefined,
      chained,
    );
    return out && out.subarray(0, batch.outRows.length);
  }

  /** Runs a forward pass and returns the final-norm hidden states of the output rows [nOut, D]. */
  async hidden(batch: Batch): Promise<Float32Array> {
    const p = this.fill(batch, true);
    await p.prepared.execute();
    return p.prepared.read(p.hidden!).subarray(0, batch.outRows.length * this.config.hiddenSize);
  }

  private fill(unpadded: Batch, hidden: boolean): CachedPlan {
    const batch = this.pad(unpadded);
    const n = batch.tokens.length;
    for (let i = 0; i < n; i++) {
      const t = batch.tokens[i]!;
      if (!(t >= 0 && t < this.vocabSize))
        throw new Error(`token id ${t} is outside the vocabulary of ${this.vocabSize}`);
    }
    const p = this.plan(n, batch.outRows.length, hidden);
    const pp = p.prepared;
    this.setInputs(pp, batch);
    return p;
  }

  /** Padding rows: token 0 at position 0 of the spare slot; extra outputs repeat row 0. */
  private pad(b: Batch): Batch {
    const n = b.tokens.length,
      nOut = b.outRows.length;
    const pn = paddedRows(n),
      pOut = paddedRows(nOut);
    if (pn === n && pOut === nOut) return b;
    const extend = (a: ArrayLike<number>, len: number, v: number) => {
      const out = Array.from(a);
      while (out.length < len) out.push(v);
      return out;
    };
    return {
      tokens: extend(b.tokens, pn, 0),
      positions: extend(b.positions, pn, 0),
      seqs: extend(b.seqs, pn, this.padSeq),
      outRows: extend(b.outRows, pOut, 0),
    };
  }

  /**
   * Runs a forward pass and returns, for every weight a matmul multiplies, the activations
   * it was multiplied with ([rows, K] each): what importance (imatrix-style) statistics for
   * quantization are computed from. A one-off plan, not cached.
   */
  async matmulInputs(batch: Batch): Promise<Map<string, Float32Array>> {
    const g = new Graph();
    const { w, bound } = this.binder(g);
    const n = batch.tokens.length;
    const inputs = g.batchInputs(n, batch.outRows.length, this.cache.nSeq, this.cache.maxBlocksPerSeq);
    g.output(
      this.def.forward(this.config, {
        g,
        w,
        batch: inputs,
        kv: this.cache.bind(g),
        blockSize: this.cache.blockSize,
      }),
    );
    const taps = new Map<string, Tensor>();
    for (const node of g.nodes)
      if (
        node.op === Op.Matmul &&
        node.src[1] &&
        bound.get(node.src[1].name) === node.src[1] &&
        node.src[0]!.rows === n
      )
        taps.set(node.src[1].name, g.output(node.src[0]!));
    const p = this.backend.prepare(g);
    this.setInputs(p, batch);
    await p.execute();
    return new Map([...taps].map(([name, t]) => [name, p.read(t).slice()]));
  }

  /**
   * Logits of the last forward pass, which had `nTokens` rows and `nOut` output rows:
   * [nOut, vocab]. Read them before the next forward pass.
   */
  logits(nTokens: number, nOut: number): Float32Array {
    const p = this.plan(paddedRows(nTokens), paddedRows(nOut));
    if (!p.logits) throw new Error("this plan has no logits");
    return p.prepared.read(p.logits).subarray(0, nOut * this.vocabSize);
  }
}

/** Removes nodes whose results nothing reads (keeps cache writes). */
function dropUnused(g: Graph): void {
  const used = new Set<Tensor>();
  const base = (t: Tensor) => (t.binding.kind === "view" ? t.binding.base : t);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.sideEffect && !used.has(base(n.dst)) && !g.outputs.has(n.dst)) {
      g.nodes.splice(i, 1);
      continue;
    }
    for (const s of n.src) if (s) used.add(base(s));
  }
}
