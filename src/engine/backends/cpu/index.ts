/** The cpu backend: plans run in native code on the persistent thread pool. */
import { native } from "../../../native.js";
import type { Graph, Tensor } from "../../tensor/graph.js";
import { compilePlan } from "../../tensor/plan.js";
import { decodeProfile } from "../../profile.js";
import { rowBytes, type DType } from "../../tensor/dtype.js";
import type {
  Backend,
  PreparedPlan,
  ProfileEntry,
  SampleResult,
  Sampler,
  SamplerOptions,
  WeightBytes,
  WeightPlacement,
} from "../backend.js";
import { PlanBuffers } from "../prepared.js";

class NativeSampler implements Sampler {
  readonly handle: object;
  constructor(options: SamplerOptions) {
    this.handle = native().samplerNew({ ...options });
  }
  accept(token: number): void {
    native().samplerAccept(this.handle, token);
  }
  reset(): void {
    native().samplerReset(this.handle);
  }
  sample(logits: Float32Array): SampleResult {
    return native().samplerSample(this.handle, logits);
  }
  last(): SampleResult {
    return native().samplerLast(this.handle);
  }
}

/** Arenas from this size up are anonymous mappings (native alloc) that can be emptied. */
const LARGE_ARENA_BYTES = 1 << 20;

export class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  private lastArena: { buffer: ArrayBuffer; running: number } | null = null;

  constructor(threads?: number) {
    if (threads && threads > 0) native().setThreads(threads);
  }

  allocate(bytes: number): ArrayBuffer {
    return native().alloc(bytes);
  }

  settled(buffer: ArrayBuffer, byteOffset: number, length: number): void {
    native().collapseLater(buffer, byteOffset, length);
  }

  /** Q4_K, Q6_K, NVFP4 and Q8_0 weights interleaved for the decode dots (off with LMX_REPACK=0). */
  adoptWeights(weights: readonly WeightBytes[]): (WeightBytes | undefined)[] {
    if (process.env.LMX_REPACK === "0") return weights.map(() => undefined);
    const r = native().interleaveWeights(
      weights.map((w) => [w.buffer, w.byteOffset, w.dtype, w.rows, w.cols]),
    );
    return weights.map((w, i) =>
      r && r.offsets[i]! >= 0
        ? { ...w, dtype: r.dtypes[i] as DType, buffer: r.buffer, byteOffset: r.offsets[i]! }
        : undefined,
    );
  }

  /** Faults in what is read from mapped files, in 2 MiB pages where it can (file_pages.c). */
  placeWeights(weights: readonly WeightBytes[]): WeightPlacement | undefined {
    const files = new Map<ArrayBuffer, number[]>();
    for (const w of weights) {
      const ranges = files.get(w.buffer) ?? [];
      ranges.push(w.byteOffset, w.rows * rowBytes(w.dtype, w.cols));
      files.set(w.buffer, ranges);
    }
    let sum: WeightPlacement | undefined;
    for (const [buffer, ranges] of files) {
      const r = native().settleFilePages(buffer, ranges);
      if (!r) continue;
      if (!sum) sum = r;
      else for (const k of Object.keys(sum) as (keyof WeightPlacement)[]) sum[k] += r[k];
    }
    return sum;
  }

  threads(): number {
    return native().threads();
  }

  kernels(): string {
    return native().simdPath();
  }

  async weightsSettled(timeoutMs: number) {
    const t0 = performance.now();
    for (;;) {
      const h = native().hugePages();
      const waitedMs = performance.now() - t0;
      if (h.pending === 0 || waitedMs >= timeoutMs)
        return { collapsed: h.collapsed, failed: h.failed, waitedMs };
      // The collapse thread runs only on an idle core: sleep, do not spin.
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  profile(on: boolean): void {
    native().profile(on);
  }

  takeProfile(): ProfileEntry[] {
    return decodeProfile(native().profileTake());
  }

  createSampler(options: SamplerOptions): Sampler {
    return new NativeSampler(options);
  }

  prepare(graph: Graph): PreparedPlan {
    const plan = compilePlan(graph);
    const bufs = new PlanBuffers(plan, (n) => this.allocate(n));
    const buffers = plan.buffers.map((b, i) => (i === 0 ? bufs.arena : i === 1 ? bufs.input : b!));
    const handle = native().createPlan(plan.ints, plan.floats, plan.tensors, buffers);
    const arena = { buffer: bufs.arena, running: 0 };
    return {
      plan,
      setInput: (name, values) => bufs.setInput(name, values),
      read: (t) => bufs.read(t),
      execute: (samplers?: readonly (Sampler | null)[], logits?: Tensor, drafts?: Int32Array) => {
        this.useArena(arena);
        const run = native().execute(
          handle,
          samplers ? samplers.map((s) => (s ? (s as NativeSampler).handle : null)) : null,
          logits ? logits.id : -1,
          drafts ?? null,
        );
        arena.running++;
        return run.finally(() => arena.running--);
      },
    };
  }

  /**
   * A plan's arena holds nothing from one run to the next, and an engine caches a plan per
   * batch shape: a large arena (a prompt chunk's: 10 MiB at 512 tokens for Qwen3-0.6B) is
   * emptied (releaseScratch) as soon as a different plan runs, another prompt chunk's or a
   * decode step's, whose small arena stays resident. Without this, every prompt-chunk size a
   * server had seen kept its arena's pages, and a conversation's prompt arena stayed
   * resident through all of its generation; the price is faulting the pages in again at
   * the next prompt, which did not show against the ~1 s those 512 tokens take (session 14).
   */
  private useArena(a: { buffer: ArrayBuffer; running: number }): void {
    if (this.lastArena === a) return;
    const prev = this.lastArena;
    this.lastArena = a.buffer.byteLength >= LARGE_ARENA_BYTES ? a : null;
    if (prev && prev.running === 0) native().releaseScratch(prev.buffer);
  }
}
