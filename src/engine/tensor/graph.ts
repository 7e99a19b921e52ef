/**
 * The graph builder models are written against: every op appends a node and returns its
 * output tensor. Tensors are 2-D (rows x cols, cols contiguous); a reshape is a view.
 * The graph knows shapes and bindings, not file formats or models.
 */
import { DType, rowBytes } from "./dtype.js";
import { MAX_SRC, Op, RopePairing } from "./ops.js";

/** Where a tensor's bytes live. Activations have none until the planner places them. */
export type Binding =
  | { kind: "buffer"; buffer: ArrayBuffer; byteOffset: number }
  | { kind: "input"; name: string }
  | { kind: "act" }
  | { kind: "view"; base: Tensor };

export interface Tensor {
  readonly id: number;
  readonly dtype: DType;
  readonly rows: number;
  readonly cols: number;
  /** Bytes between the starts of consecutive rows. */
  readonly rowStride: number;
  readonly binding: Binding;
  name: string;
  /** For weights: a factor every matmul result is multiplied by (NVFP4's per-tensor scale). */
  outScale?: number;
}

export interface Node {
  op: Op;
  dst: Tensor;
  src: (Tensor | null)[];
  ints: number[];
  floats: number[];
  /** A node whose effect is a write into a bound buffer (the KV cache), kept even if unused. */
  sideEffect?: boolean;
}

export interface RopeOptions {
  nHead: number;
  headDim: number;
  /** Rotated dimensions per head (the rest pass through); defaults to headDim. */
  nRot?: number;
  theta: number;
  pairing: RopePairing;
  /** Per-frequency divisors (llama3 rope scaling, GGUF rope_freqs). */
  freqFactors?: Tensor | null;
  /** Per-head RMSNorm weight applied before rotating (Qwen3 q/k norm). */
  norm?: Tensor | null;
  normEps?: number;
}

export interface AttentionOptions {
  nHead: number;
  nKvHead: number;
  headDim: number;
  scale: number;
  blockSize: number;
  /** Keys older than this many positions are not attended (0 = unlimited). */
  slidingWindow?: number;
}

/** The paged KV cache of one layer as the graph sees it. */
export interface KvLayer {
  k: Tensor;
  v: Tensor;
}

/** Per-forward inputs that the runner fills before each execution. */
export interface BatchTensors {
  /** Token ids, one per row. I32 [1, T] */
  tokens: Tensor;
  /** Position of each row from the start of its sequence. I32 [1, T] */
  positions: Tensor;
  /** Sequence slot of each row. I32 [1, T] */
  rowSeq: Tensor;
  /** Rows whose logits are wanted. I32 [1, nOut] */
  outRows: Tensor;
  /** Block table per sequence slot. I32 [nSeq, maxBlocksPerSeq] */
  blockTables: Tensor;
}

export class Graph {
  readonly tensors: Tensor[] = [];
  readonly nodes: Node[] = [];
  readonly outputs = new Set<Tensor>();

  private make(
    dtype: DType,
    rows: number,
    cols: number,
    binding: Binding,
    name: string,
    rowStride?: number,
  ): Tensor {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
      throw new Error(`graph: bad shape [${rows}, ${cols}] for ${name}`);
    }
    const t: Tensor = {
      id: this.tensors.length,
      dtype,
      rows,
      cols,
      rowStride: rowStride ?? rowBytes(dtype, cols),
      binding,
      name,
    };
    this.tensors.push(t);
    return t;
  }

  /** A tensor whose bytes already exist (weights, caches, constants). */
  bind(
    name: string,
    dtype: DType,
    rows: number,
    cols: number,
    buffer: ArrayBuffer,
    byteOffset = 0,
    rowStride?: number,
  ): Tensor {
    const stride = rowStride ?? rowBytes(dtype, cols);
    const end = byteOffset + (rows > 0 ? (rows - 1) * stride : 0) + rowBytes(dtype, cols);
    if (end > buffer.byteLength) throw new Error(`graph: ${name} [${rows}, ${cols}] does not fit its buffer`);
    return this.make(dtype, rows, cols, { kind: "buffer", buffer, byteOffset }, name, stride);
  }

  /** An int32 input filled per execution. */
  input(name: string, rows: number, cols: number): Tensor {
    return this.make(DType.I32, rows, cols, { kind: "input", name }, name);
  }

  batchInputs(nTokens: number, nOut: number, nSeq: number, maxBlocksPerSeq: number): BatchTensors {
    return {
      tokens: this.input("tokens", 1, nTokens),
      positions: this.input("positions", 1, nTokens),
      rowSeq: this.input("rowSeq", 1, nTokens),
      outRows: this.input("outRows", 1, nOut),
      blockTables: this.input("blockTables", nSeq, maxBlocksPerSeq),
    };
  }

  private act(rows: number, cols: number, name: string): Tensor {
    return this.make(DType.F32, rows, cols, { kind: "act" }, name);
  }

  /** Same bytes seen as [rows, cols]; the source must be contiguous. */
  view(t: Tensor, rows: number, cols: number): Tensor {
    if (rows * cols !== t.rows * t.cols)
      throw new Error(`graph: cannot view [${t.rows}, ${t.cols}] as [${rows}, ${cols}]`);
    if (t.rowStride !== rowBytes(t.dtype, t.cols)) throw new Error(`graph: ${t.name} is not contiguous`);
    const base = t.binding.kind === "view" ? t.binding.base : t;
    return this.make(t.dtype, rows, cols, { kind: "view", base }, `${t.name}.view`);
  }

  /** Marks a tensor as a result: it stays readable after execution. */
  output(t: Tensor): Tensor {
    this.outputs.add(t.binding.kind === "view" ? t.binding.base : t);
    this.outputs.add(t);
    return t;
  }

  private node(
    op: Op,
    dst: Tensor,
    src: (Tensor | null)[],
    ints: number[] = [],
    floats: number[] = [],
  ): Tensor {
    const s = src.slice();
    while (s.length < MAX_SRC) s.push(null);
    this.nodes.push({ op, dst, src: s, ints, floats });
    return dst;
  }

  /** Names a tensor with its role and layer, as llama.cpp's cb() does. */
  name(t: Tensor, role: string, layer?: number): Tensor {
    t.name = layer === undefined ? role : `${role}-${layer}`;
    return t;
  }

  getRows(table: Tensor, ids: Tensor): Tensor {
    if (ids.dtype !== DType.I32) throw new Error("graph: getRows ids must be i32");
    return this.node(Op.GetRows, this.act(ids.cols, table.cols, "rows"), [table, ids]);
  }

  rmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
    if (weight && weight.cols !== x.cols)
      throw new Error(`graph: rmsNorm weight ${weight.cols} != ${x.cols}`);
    return this.node(Op.RmsNorm, this.act(x.rows, x.cols, "norm"), [x, weight], [], [eps]);
  }

  /** x[T, K] . w[N, K]^T (+ bias[N]) */
  matmul(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
    if (x.cols !== w.cols)
      throw new Error(`graph: matmul ${x.name} [${x.rows}, ${x.cols}] by ${w.name} [${w.rows}, ${w.cols}]`);
    if (bias && bias.cols !== w.rows)
      throw new Error(`graph: bias of ${w.name} has ${bias.cols} != ${w.rows}`);
    return this.node(Op.Matmul, this.act(x.rows, w.rows, "mm"), [x, w, bias], [], [w.outScale ?? 1]);
  }

  rope(x: Tensor, positions: Tensor, o: RopeOptions): Tensor {
    if (x.cols !== o.nHead * o.headDim) throw new Error("graph: rope width does not match heads");
    if (o.headDim > 1024) throw new Error("graph: head dimension above 1024 is not supported");
    const nRot = o.nRot ?? o.headDim;
    return this.node(
      Op.Rope,
      this.act(x.rows, x.cols, "rope"),
      [x, positions, o.freqFactors ?? null, o.norm ?? null],
      [o.nHead, o.headDim, nRot, o.pairing],
      [o.theta, o.normEps ?? 1e-6],
    );
  }

  /** Writes the rows' K and V into the layer's paged cache. */
  kvStore(kv: KvLayer, k: Tensor, v: Tensor, b: BatchTensors, blockSize: number): void {
    if (k.cols !== kv.k.cols || v.cols !== kv.v.cols)
      throw new Error("graph: K/V width does not match the cache");
    for (const pool of [kv.k, kv.v])
      if (pool.dtype !== DType.F16 && pool.dtype !== DType.Q8_0)
        throw new Error(`graph: a KV cache of ${DType[pool.dtype]} is not supported (f16 or q8_0)`);
    this.node(Op.KvStore, kv.k, [k, v, kv.v, b.positions, b.rowSeq, b.blockTables], [blockSize]);
    this.nodes[this.nodes.length - 1]!.sideEffect = true;
  }

  attention(q: Tensor, kv: KvLayer, b: BatchTensors, o: AttentionOptions): Tensor {
    if (o.nHead % o.nKvHead !== 0) throw new Error("graph: heads must be a multiple of KV heads");
    if (o.nHead / o.nKvHead > 256)
      throw new Error("graph: more than 256 query heads per KV head is not supported");
    if ((kv.k.dtype === DType.Q8_0 || kv.v.dtype === DType.Q8_0) && o.headDim % 32 !== 0)
      throw new Error(`graph: a q8_0 KV cache needs heads of whole 32-blocks (head dim ${o.headDim})`);
    return this.node(
      Op.Attention,
      this.act(q.rows, o.nHead * o.headDim, "attn"),
      [q, kv.k, kv.v, b.positions, b.rowSeq, b.blockTables],
      [o.nHead, o.nKvHead, o.headDim, o.blockSize, o.slidingWindow ?? 0],
      [o.scale],
    );
  }

  swiglu(gate: Tensor, up: Tensor): Tensor {
    return this.node(Op.SwiGlu, this.act(gate.rows, gate.cols, "swiglu"), [gate, up]);
  }

  geglu(gate: Tensor, up: Tensor): Tensor {
    return this.node(Op.GeGlu, this.act(gate.rows, gate.cols, "geglu"), [gate, up]);
  }

  add(a: Tensor, b: Tensor): Tensor {
    if (a.rows !== b.rows || a.cols !== b.cols) throw new Error("graph: add of different shapes");
    return this.node(Op.Add, this.act(a.rows, a.cols, "add"), [a, b]);
  }
}
