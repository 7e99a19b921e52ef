/**
 * Loads the native addon built by node-gyp (build/Release/lmx.node), or the one named by
 * LMX_NATIVE_ADDON (tests use it for builds with emulated instruction sets).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WeightPlacement } from "./engine/backends/backend.js";

export interface NativeSampleResult {
  token: number;
  logprob: number;
  topIds: number[];
  topLogprobs: number[];
}

export interface NativeAddon {
  mapFile(path: string): ArrayBuffer;
  readFile(path: string): ArrayBuffer;
  alloc(bytes: number): ArrayBuffer;
  /**
   * Copies the tensors whose type has an interleaved form (Q4_K, Q6_K, NVFP4, Q8_0) into one buffer in
   * that form and gives their model-file bytes back (native/binding.c); offsets[i] is -1
   * for tensors left as they are. Undefined when nothing qualifies or the CPU lacks AVX2.
   */
  interleaveWeights(
    tensors: [buffer: ArrayBuffer, byteOffset: number, dtype: number, rows: number, cols: number][],
  ): { buffer: ArrayBuffer; offsets: number[]; dtypes: number[] } | undefined;
  /**
   * Gives back the whole pages of [byteOffset, byteOffset + length) of a model file's buffer
   * (mapFile or readFile); reading them later still gives the file's bytes. Other buffers
   * are left alone.
   */
  releaseFileBytes(buffer: ArrayBuffer, byteOffset: number, length: number): void;
  /**
   * Queues the whole 2 MiB pages of that range of a buffer from `alloc` (an anonymous
   * mapping: 1 MiB and up) for the background collapse into huge pages; false for other
   * buffers, which are left alone. For memory written that stays (a KV cache's filled part).
   */
  collapseLater(buffer: ArrayBuffer, byteOffset: number, length: number): boolean;
  /**
   * Faults in the [byteOffset, length, ...] ranges of a mapped model file's buffer that the
   * engine reads in place; where under 90% of their whole 2 MiB pages came in as 2 MiB
   * pages (a file cached in small folios, as just written), drops those pages from the page
   * cache and reads them again in 2 MiB folios (native/file_pages.c; not with
   * LMX_HUGE_PAGES=0). Undefined for other buffers, or ranges over half the machine's memory.
   */
  settleFilePages(buffer: ArrayBuffer, ranges: number[]): WeightPlacement | undefined;
  /**
   * Empties a buffer from `alloc` of 1 MiB or more (an anonymous mapping): its pages go back
   * to the system and read as zeros when next touched. Returns false, doing nothing, for
   * any other buffer.
   */
  releaseScratch(buffer: ArrayBuffer): boolean;
  createPlan(ints: Int32Array, floats: Float32Array, tensors: Float64Array, buffers: ArrayBuffer[]): object;
  execute(
    plan: object,
    samplers: (object | null)[] | null,
    logitsTensor: number,
    drafts: Int32Array | null,
  ): Promise<Int32Array | null>;
  executeSync(plan: object): void;
  samplerNew(options: object): object;
  samplerAccept(sampler: object, token: number): void;
  samplerReset(sampler: object): void;
  samplerSample(sampler: object, logits: Float32Array): NativeSampleResult;
  samplerLast(sampler: object): NativeSampleResult;
  setThreads(n: number): void;
  threads(): number;
  cpuFeatures(): string[];
  /** The kernel tier in use: scalar, avx2, avxvnni or avx512 (see native/cpu.c). */
  simdPath(): string;
  /**
   * Streaming-read bandwidth over `megabytes` on the thread pool: `repeats` reads one
   * after another, each one's GB/s (empty if the buffer could not be mapped).
   */
  bandwidthProbe(megabytes: number, repeats: number): number[];
  /**
   * Bytes of repacked weights that the load left in 4 KiB pages and a background thread
   * is collapsing into huge pages (native/huge_pages.c): waiting, done, and refused by the
   * kernel (no free huge page, or no MADV_COLLAPSE), since the process started.
   */
  hugePages(): { pending: number; collapsed: number; failed: number };
  /** lmx's NVFP4 (tensor scale `g`) or MXFP4 quantizer (native/kernels/quantize_fp4.c). */
  quantizeFp4(
    dtype: number,
    values: Float32Array,
    cols: number,
    importance: Float32Array | null,
    g: number,
  ): Uint8Array;
  /** ggml's quantizers for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K (native/kernels/quantize_k.c). */
  quantizeRows(
    dtype: number,
    values: Float32Array,
    cols: number,
    importance: Float32Array | null,
  ): Uint8Array;
  /** The NVFP4 tensor scale with the least error for these values. */
  nvfp4TensorScale(values: Float32Array, cols: number, importance: Float32Array | null): number;
  /** Turns per-op timing of plan execution on or off (thread 0's view). */
  profile(on: boolean): void;
  /** [ns per key..., calls per key...] since the last call, then resets; keys in engine/profile.ts. */
  profileTake(): Float64Array;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    const root = join(dirname(fileURLToPath(import.meta.url)), "..");
    const require = createRequire(import.meta.url);
    try {
      addon = require(
        process.env.LMX_NATIVE_ADDON || join(root, "build", "Release", "lmx.node"),
      ) as NativeAddon;
    } catch (e) {
      throw new Error(
        `lmx: the native addon is not built (run \`npm install\` or \`npm run build:native\`): ${(e as Error).message}`,
      );
    }
  }
  return addon;
}
