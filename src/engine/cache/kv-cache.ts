/**
 * Paged KV cache for attention layers: per layer one pool of token slots for K and one
 * for V (f16, or q8_0 at about half the bytes), shared by all sequences through
 * per-sequence block tables. A sequence grows block by block and can be truncated back
 * (full attention can always rewind).
 */
import type { Backend } from "../backends/backend.js";
import { DType, rowBytes } from "../tensor/dtype.js";
import type { Graph, KvLayer } from "../tensor/graph.js";
import type { CacheLayerSpec } from "../models/model.js";
import { BlockPool } from "./block-pool.js";

/** What users name a KV cache's element type (Ollama's OLLAMA_KV_CACHE_TYPE values). */
export type KvCacheType = "f16" | "q8_0";
export const KV_CACHE_TYPES: readonly KvCacheType[] = ["f16", "q8_0"];

/** A KV cache type by name, or an error naming the ones there are. */
export function parseKvCacheType(name: string): KvCacheType {
  const t = name.trim().toLowerCase();
  if ((KV_CACHE_TYPES as readonly string[]).includes(t)) return t as KvCacheType;
  throw new Error(`unknown KV cache type "${name}" (supported: ${KV_CACHE_TYPES.join(", ")})`);
}

/**
 * The pools' dtype for a requested type: q8_0 needs every layer's heads to be whole blocks
 * of 32 (every supported architecture has them); otherwise the whole cache stays f16.
 */
export function kvCacheDType(type: KvCacheType, layers: readonly CacheLayerSpec[]): DType.F16 | DType.Q8_0 {
  return type === "q8_0" && layers.every((l) => l.headDim % 32 === 0) ? DType.Q8_0 : DType.F16;
}

export interface KvCacheOptions {
  /** Tokens per block. */
  blockSize: number;
  /** Sequence slots. */
  nSeq: number;
  /** Longest sequence, in tokens. */
  nCtx: number;
  /** Total tokens the pool holds across sequences (defaults to nSeq * nCtx). */
  nTokens?: number;
  /** Element type of the pools: F16 (default) or Q8_0 (heads of whole 32-blocks). */
  dtype?: DType.F16 | DType.Q8_0;
}

export class KvCache {
  readonly blockSize: number;
  readonly nSeq: number;
  readonly maxBlocksPerSeq: number;
  readonly pool: BlockPool;
  readonly dtype: DType.F16 | DType.Q8_0;
  private readonly k: ArrayBuffer[];
  private readonly v: ArrayBuffer[];
  private readonly widths: number[];
  private readonly blocks: number[][];
  private readonly lengths: number[];
  private readonly backend: Backend;
  /** Blocks below this were handed to backend.settled (whole 2 MiB of every pool). */
  private settledBlocks = 0;

  /** The element type by its user-facing name. */
  get type(): KvCacheType {
    return this.dtype === DType.Q8_0 ? "q8_0" : "f16";
  }

  /** Bytes of K and V storage allocated for every layer. */
  bytes(): number {
    let n = 0;
    for (let l = 0; l < this.k.length; l++) n += this.k[l]!.byteLength + this.v[l]!.byteLength;
    return n;
  }

  /** Bytes of K and V one position takes in every layer: what decode reads per position. */
  bytesPerToken(): number {
    return this.widths.reduce((a, w) => a + 2 * rowBytes(this.dtype, w), 0);
  }

  constructor(
    backend: Backend,
    readonly layers: readonly CacheLayerSpec[],
    o: KvCacheOptions,
  ) {
    this.blockSize = o.blockSize;
    this.nSeq = o.nSeq;
    this.maxBlocksPerSeq = Math.ceil(o.nCtx / o.blockSize);
    const nBlocks = Math.ceil((o.nTokens ?? o.nSeq * o.nCtx) / o.blockSize) + 1;
    this.pool = new BlockPool(nBlocks);
    this.dtype = o.dtype ?? DType.F16;
    this.widths = layers.map((l) => l.nKvHead * l.headDim);
    this.k = this.widths.map((w) => backend.allocate(nBlocks * o.blockSize * rowBytes(this.dtype, w)));
    this.v = this.widths.map((w) => backend.allocate(nBlocks * o.blockSize * rowBytes(this.dtype, w)));
    this.blocks = Array.from({ length: o.nSeq }, () => []);
    this.lengths = new Array(o.nSeq).fill(0);
    this.backend = backend;
  }

  /** The layer's pools as graph tensors [slots, nKvHead * headDim] of the cache's dtype. */
  bind(g: Graph): KvLayer[] {
    return this.widths.map((w, l) => {
      const slots = this.k[l]!.byteLength / rowBytes(this.dtype, w);
      return {
        k: g.bind(`cache_k_l${l}`, this.dtype, slots, w, this.k[l]!),
        v: g.bind(`cache_v_l${l}`, this.dtype, slots, w, this.v[l]!),
      };
    });
  }

  /** Tokens whose K/V sequence `seq` holds (positions 0 .. length-1). */
  length(seq: number): number {
    return this.lengths[seq]!;
  }

  /** Makes room for positions up to `nTokens` - 1 and records them as held once written. */
  reserve(seq: number, nTokens: number): void {
    if (nTokens > this.maxBlocksPerSeq * this.blockSize)
      throw new Error(
        `sequence of ${nTokens} tokens exceeds the context of ${this.maxBlocksPerSeq * this.blockSize}`,
      );
    const b = this.blocks[seq]!;
    while (b.length * this.blockSize < nTokens) b.push(this.pool.allocate());
    this.lengths[seq] = Math.max(this.lengths[seq]!, nTokens);
    this.settleFilled();
  }

  /**
   * Blocks go out lowest id first, so every block below the highest one handed out has
   * been (or is about to be) written: each time that front passes whole 2 MiB of a pool,
   * the backend hears of them (the cpu backend moves them into huge pages in the
   * background). Blocks freed later stay resident either way, as their pages would.
   */
  private settleFilled(): void {
    const top = this.pool.highWater() + 1;
    if (!this.backend.settled || top <= this.settledBlocks) return;
    const HUGE = 2 * 1024 * 1024;
    for (const pools of [this.k, this.v])
      pools.forEach((buf, l) => {
        const slot = this.blockSize * rowBytes(this.dtype, this.widths[l]!);
        // A pool whose front stays inside its 2 MiB keeps the same start next time.
        const from = Math.floor((this.settledBlocks * slot) / HUGE) * HUGE;
        const to = Math.floor((top * slot) / HUGE) * HUGE;
        if (to > from) this.backend.settled!(buf, from, to - from);
      });
    this.settledBlocks = top;
  }

  /** Forgets positions >= n, releasing whole blocks past it. */
  truncate(seq: number, n: number): void {
    if (n < 0 || n > this.lengths[seq]!)
      throw new Error(`truncate to ${n} of a sequence of ${this.lengths[seq]}`);
    const b = this.blocks[seq]!;
    const keep = Math.ceil(n / this.blockSize);
    while (b.length > keep) this.pool.release(b.pop()!);
    this.lengths[seq] = n;
  }

  /** All block tables, padded with the null block: I32 [nSeq, maxBlocksPerSeq]. */
  tables(): Int32Array {
    const t = new Int32Array(this.nSeq * this.maxBlocksPerSeq);
    this.blocks.forEach((b, s) => t.set(b, s * this.maxBlocksPerSeq));
    return t;
  }
}
