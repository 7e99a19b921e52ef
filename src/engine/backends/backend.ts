/**
 * The contract every backend implements: allocate buffers, prepare an encoded plan, run
 * it (optionally sampling one token per logits row), and sample. Backends know plans,
 * not models.
 */
import type { DType } from "../tensor/dtype.js";
import type { Graph, Tensor } from "../tensor/graph.js";
import type { EncodedPlan } from "../tensor/plan.js";

/** Sampling parameters, with Ollama's meanings. */
export interface SamplerOptions {
  /** 0 means greedy. */
  temperature?: number;
  /** 0 disables. */
  topK?: number;
  /** 1 disables. */
  topP?: number;
  /** 0 disables. */
  minP?: number;
  /** 1 disables. */
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Window of recent tokens the penalties look at. */
  repeatLastN?: number;
  /** Seed of the random generator. */
  seed?: number;
  /** Number of top alternatives to report with each token; -1 = no log-probabilities. */
  logprobs?: number;
}

export interface SampleResult {
  token: number;
  logprob: number;
  topIds: number[];
  topLogprobs: number[];
}

export interface Sampler {
  /** Records a token in the penalty window (prompt tokens and generated ones). */
  accept(token: number): void;
  /** Forgets the penalty window and restarts the random sequence from the seed. */
  reset(): void;
  /** Draws from a row of logits (which it does not modify). */
  sample(logits: Float32Array): SampleResult;
  /** The result of the last draw, including draws made inside execute(). */
  last(): SampleResult;
}

export interface PreparedPlan {
  readonly plan: EncodedPlan;
  /** Writes a named int32 input (tokens, positions, ...). */
  setInput(name: string, values: ArrayLike<number>): void;
  /**
   * Runs the plan. With samplers, samples row i of `logits` with samplers[i] and
   * resolves to the chosen tokens; otherwise resolves to null.
   *
   * Speculative decoding: `drafts[i] >= 0` says row i + 1 was fed the token drafts[i],
   * guessed to follow row i's, with the same sampler. Row i + 1 is then drawn only if
   * row i drew exactly that token, which the sampler accepts (penalty window) first; the
   * rows after a miss are not drawn and resolve to -1 (see chainedDraws).
   */
  execute(
    samplers?: readonly (Sampler | null)[],
    logits?: Tensor,
    drafts?: Int32Array,
  ): Promise<Int32Array | null>;
  /**
   * A view of an output tensor's values after execution, valid until the backend runs a
   * plan again (this one or another: the cpu backend empties an idle large arena).
   */
  read(t: Tensor): Float32Array;
}

/** A weight's bytes: `rows` rows of `cols` elements of `dtype` at `byteOffset` of `buffer`. */
export interface WeightBytes {
  dtype: DType;
  buffer: ArrayBuffer;
  byteOffset: number;
  rows: number;
  cols: number;
}

/**
 * Bytes of the weights a model reads in place from mapped files (placeWeights), summed
 * over the files.
 */
export interface WeightPlacement {
  /** In place. */
  bytes: number;
  /** In the whole 2 MiB pages of those weights: what can be mapped as 2 MiB pages. */
  eligible: number;
  /** Of the files' mappings, mapped as 2 MiB pages once faulted in, and in the end. */
  hugeBefore: number;
  hugeAfter: number;
  /** Dropped from the page cache and read again from the file to get 2 MiB pages. */
  reread: number;
  ms: number;
}

export interface Backend {
  readonly name: "cpu" | "reference";
  /** Zeroed memory for caches and arenas, aligned for the kernels. */
  allocate(bytes: number): ArrayBuffer;
  /**
   * Told that [byteOffset, byteOffset + length) of a buffer from `allocate` is written and
   * stays (a KV cache's filled blocks): the cpu backend moves its whole 2 MiB pages into
   * huge pages in the background (native/huge_pages.c), which decode at depth reads faster.
   */
  settled?(buffer: ArrayBuffer, byteOffset: number, length: number): void;
  /**
   * Puts a model's weights in the layouts this backend's kernels read fastest, once at
   * load (the cpu backend interleaves K-quant codes: engine/quant/interleaved.ts). Returns
   * the replacement of each weight, or undefined to keep it. The model must read the
   * replacements only: the source bytes may have been given back to the file.
   */
  adoptWeights?(weights: readonly WeightBytes[]): (WeightBytes | undefined)[];
  /**
   * Told, once at load, which weights the model reads where they are (after adoptWeights):
   * the cpu backend faults a mapped file's in, in 2 MiB pages where the page cache allows
   * (native/file_pages.c). Returns what it found and did, summed over the files.
   */
  placeWeights?(weights: readonly WeightBytes[]): WeightPlacement | undefined;
  prepare(graph: Graph): PreparedPlan;
  createSampler(options: SamplerOptions): Sampler;
  /** Worker threads a plan runs on. */
  threads(): number;
  /** Which kernels run: the instruction-set tier on the cpu (scalar, avx2, avxvnni, avx512). */
  kernels(): string;
  /**
   * Waits (up to `timeoutMs`) for background work on adopted weights (and on settled KV
   * pools) to finish: the cpu backend collapses the weights a load left in 4 KiB pages into
   * huge pages, which decode reads faster. Benchmarks call it so that they measure the settled state. Returns the
   * bytes moved and refused since the process started, and how long it waited.
   */
  weightsSettled?(timeoutMs: number): Promise<{ collapsed: number; failed: number; waitedMs: number }>;
  /** Starts (true) or stops timing plan execution per op kind, where the backend can. */
  profile?(on: boolean): void;
  /** Time per op kind since the last call (then resets); see `engine/profile.ts`. */
  takeProfile?(): ProfileEntry[];
}

/** Time spent in one kind of work during plan execution. */
export interface ProfileEntry {
  /** e.g. "matmul Q4_K gemm", "attention", "sync", "sampling" */
  kind: string;
  ms: number;
  calls: number;
}
