/**
 * The contract of a model family: parse its config from GGUF-style metadata, declare its
 * weights, build the forward graph, and say which cache each layer needs. No base class:
 * each family is one file that reads like the math.
 */
import type { BatchTensors, Graph, KvLayer, Tensor } from "../tensor/graph.js";
import { Metadata } from "./metadata.js";

export { Metadata };

/** A weight as a family declares it; `rows` x `cols` with cols contiguous (GGUF ne[0]). */
export interface WeightSpec {
  name: string;
  rows: number;
  cols: number;
  optional?: boolean;
  /** Small tensors (norms, biases, rope factors) the kernels read as f32. */
  f32?: boolean;
}

/** What a layer's cache must hold. Full attention today; sliding-window and recurrent next. */
export interface CacheLayerSpec {
  kind: "full" | "sliding";
  nKvHead: number;
  headDim: number;
  /** For sliding layers, how many positions a query sees. */
  window?: number;
}

/** Weights bound into the graph being built; undefined for optional weights the file lacks. */
export type Weights = (name: string) => Tensor | undefined;

export interface ForwardContext {
  g: Graph;
  w: Weights;
  batch: BatchTensors;
  kv: KvLayer[];
  /** Tokens per KV block (the attention kernel addresses the paged cache with it). */
  blockSize: number;
}

export interface ModelDefinition<C = unknown> {
  /** GGUF `general.architecture` values this file implements. */
  readonly architectures: readonly string[];
  parseConfig(meta: Metadata): C;
  weights(c: C): WeightSpec[];
  /** Builds the forward pass; returns logits of the batch's output rows [nOut, vocab]. */
  forward(c: C, ctx: ForwardContext): Tensor;
  cacheLayers(c: C): CacheLayerSpec[];
  /** The context length the model was trained for. */
  contextLength(c: C): number;
}
