/**
 * Graph -> plan: fuse hot patterns, place activations in one arena by liveness, and
 * encode nodes and tensors into the flat arrays the executors read. Backends execute
 * plans; they never see the graph.
 */
import { dtypeBytes, isQuantized } from "./dtype.js";
import type { Graph, Node, Tensor } from "./graph.js";
import { MM_NORM, NO_BARRIER, OP_FLOATS, OP_INTS, OP_PARAM_INTS, MAX_SRC, Op, TENSOR_FIELDS } from "./ops.js";

/** Buffer slots every plan has; bound buffers follow. */
export const ARENA_BUFFER = 0;
export const INPUT_BUFFER = 1;
const ALIGN = 64;

export interface EncodedPlan {
  readonly nodes: readonly Node[];
  readonly ints: Int32Array;
  readonly floats: Float32Array;
  readonly tensors: Float64Array;
  /** Bound buffers at indices >= 2; slots 0 and 1 are filled by the backend. */
  readonly buffers: (ArrayBuffer | null)[];
  readonly arenaBytes: number;
  readonly inputBytes: number;
  /** Offset (in int32 elements) and length of each named input. */
  readonly inputs: ReadonlyMap<string, { offset: number; length: number }>;
  readonly outputs: ReadonlySet<Tensor>;
  /** Index of each tensor in `tensors` is its id. */
  readonly byteOffsets: Float64Array;
}

/**
 * Fuses hot patterns, in passes over the node list:
 * - the gate and up projections of an FFN with the gated activation of their results (each
 *   claim of rows computes both and writes only the GLU: the arena holds one [T, ffn]
 *   tensor instead of two); else a gated activation (SwiGLU, GeGLU) whose only reader is
 *   the next matmul, when that matmul has quantized weights (it quantizes its activations
 *   row by row anyway, so it computes the GLU of each row there);
 * - a residual add of a matmul's result into the matmul (it adds the stream to the rows it
 *   has just written);
 * - an RMSNorm read only by matmuls with quantized weights into those matmuls, which
 *   normalize each row where they quantize it: the normalized rows are never a tensor,
 *   and in decode the norm's node (one thread's work) and its barrier go;
 * - `add` followed by an RMSNorm of its result, where the norm was not folded.
 */
export function fuse(nodes: readonly Node[], outputs: ReadonlySet<Tensor> = new Set()): Node[] {
  return fuseAddNorm(foldNorms(fuseResidual(fuseGlu(nodes, outputs), outputs), outputs));
}

/** For each tensor (by base), the index of the node of every source slot reading it. */
function readersOf(nodes: readonly Node[]): Map<Tensor, number[]> {
  const readers = new Map<Tensor, number[]>();
  nodes.forEach((n, i) => {
    for (const t of n.src) {
      if (!t) continue;
      const list = readers.get(baseOf(t));
      if (list) list.push(i);
      else readers.set(baseOf(t), [i]);
    }
  });
  return readers;
}

/** n's sources with slot `slot` set to t (the list padded to MAX_SRC). */
function withSource(n: Node, slot: number, t: Tensor | null): (Tensor | null)[] {
  const src = [...n.src];
  while (src.length < MAX_SRC) src.push(null);
  src[slot] = t;
  return src;
}

function fuseGlu(nodes: readonly Node[], outputs: ReadonlySet<Tensor>): Node[] {
  const readers = readersOf(nodes);
  const onlyFeeds = (t: Tensor) => readers.get(t)?.length === 1 && !outputs.has(t);
  const out: Node[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const next = nodes[i + 1];
    const glu = nodes[i + 2];
    if (
      n.op === Op.Matmul &&
      next?.op === Op.Matmul &&
      (glu?.op === Op.SwiGlu || glu?.op === Op.GeGlu) &&
      glu.src[0] === n.dst &&
      glu.src[1] === next.dst &&
      next.src[0] === n.src[0] &&
      next.src[1]!.dtype === n.src[1]!.dtype &&
      next.src[1]!.rows === n.src[1]!.rows &&
      !n.src[2] &&
      !next.src[2] &&
      !n.src[3] &&
      !next.src[3] &&
      onlyFeeds(n.dst) &&
      onlyFeeds(next.dst)
    ) {
      out.push({
        op: Op.MatmulGlu,
        dst: glu.dst,
        src: [n.src[0]!, n.src[1]!, null, null, next.src[1]!, null],
        ints: [glu.op],
        floats: [n.floats[0] ?? 1, next.floats[0] ?? 1],
      });
      i += 2;
      continue;
    }
    if (
      (n.op === Op.SwiGlu || n.op === Op.GeGlu) &&
      next?.op === Op.Matmul &&
      next.src[0] === n.dst &&
      isQuantized(next.src[1]!.dtype) &&
      onlyFeeds(n.dst)
    ) {
      out.push({
        op: Op.Matmul,
        dst: next.dst,
        src: [n.src[0]!, next.src[1]!, next.src[2] ?? null, n.src[1]!, null, null],
        ints: [n.op],
        floats: next.floats,
      });
      i++;
      continue;
    }
    out.push(n);
  }
  return out;
}

function fuseResidual(nodes: readonly Node[], outputs: ReadonlySet<Tensor>): Node[] {
  const readers = readersOf(nodes);
  const out: Node[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const add = nodes[i + 1];
    if (
      n.op === Op.Matmul &&
      !n.src[4] &&
      add?.op === Op.Add &&
      readers.get(n.dst)?.length === 1 &&
      !outputs.has(n.dst)
    ) {
      const k = add.src[0] === n.dst ? 1 : add.src[1] === n.dst ? 0 : -1;
      const res = k >= 0 ? add.src[k]! : null;
      if (res && res.rows === n.dst.rows && res.cols === n.dst.cols) {
        out.push({ ...n, dst: add.dst, src: withSource(n, 4, res) });
        i++;
        continue;
      }
    }
    out.push(n);
  }
  return out;
}

function foldNorms(nodes: readonly Node[], outputs: ReadonlySet<Tensor>): Node[] {
  const readers = readersOf(nodes);
  // A reader that can take the norm: a matmul with quantized weights reading it as its
  // input only, with no other row transform of its own.
  const takes = (m: Node, h: Tensor) =>
    (m.op === Op.Matmul || m.op === Op.MatmulGlu) &&
    isQuantized(m.src[1]!.dtype) &&
    m.src[0] === h &&
    m.src.every((t, s) => s === 0 || !t || baseOf(t) !== h) &&
    !m.src[3];
  const folded = new Map<number, { x: Tensor; w: Tensor | null; eps: number }>();
  const dropped = new Set<number>();
  nodes.forEach((n, i) => {
    if (n.op !== Op.RmsNorm || outputs.has(n.dst) || baseOf(n.dst) !== n.dst) return;
    const list = readers.get(n.dst) ?? [];
    if (list.length === 0 || !list.every((j) => takes(nodes[j]!, n.dst))) return;
    for (const j of list) folded.set(j, { x: n.src[0]!, w: n.src[1] ?? null, eps: n.floats[0]! });
    dropped.add(i);
  });
  const out: Node[] = [];
  nodes.forEach((n, i) => {
    if (dropped.has(i)) return;
    const f = folded.get(i);
    if (!f) return void out.push(n);
    const src = withSource(n, 5, f.w);
    src[0] = f.x;
    out.push({
      ...n,
      src,
      ints: [n.ints[0] ?? 0, MM_NORM],
      floats: [n.floats[0] ?? 1, n.floats[1] ?? 1, f.eps],
    });
  });
  return out;
}

function fuseAddNorm(nodes: readonly Node[]): Node[] {
  const out: Node[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const next = nodes[i + 1];
    if (n.op === Op.Add && next && next.op === Op.RmsNorm && next.src[0] === n.dst) {
      out.push({
        op: Op.AddRmsNorm,
        dst: next.dst,
        src: [n.src[0]!, n.src[1]!, next.src[1] ?? null, n.dst, null, null],
        ints: [],
        floats: next.floats,
      });
      i++;
      continue;
    }
    out.push(n);
  }
  return out;
}

function baseOf(t: Tensor): Tensor {
  return t.binding.kind === "view" ? t.binding.base : t;
}

function bytesOf(t: Tensor): number {
  return Math.ceil((t.rows * t.cols * dtypeBytes(t.dtype)) / ALIGN) * ALIGN;
}

/** Tensors a node writes: its destination, the sum slot of a fused add+norm, the V pool of a KV store. */
function written(n: Node): Tensor[] {
  if (n.op === Op.AddRmsNorm) return [n.dst, n.src[3]!];
  if (n.op === Op.KvStore) return [n.dst, n.src[2]!];
  return [n.dst];
}

/**
 * Orders nodes into groups that need no barrier between their members: a node's group is
 * one past the latest group it depends on (reading what an earlier node wrote, writing
 * what an earlier node read or wrote), and nodes keep their order within a group. The
 * executor waits for all threads only between groups, so independent nodes (a layer's q,
 * k and v projections, the FFN's gate and up) run back to back: a thread done with its
 * share of one starts on the next.
 */
export function groupNodes(nodes: readonly Node[]): { nodes: Node[]; group: number[] } {
  const lastWrite = new Map<Tensor, number>();
  const lastRead = new Map<Tensor, number>();
  const level = nodes.map((n) => {
    const writes = written(n).map(baseOf);
    const reads = n.src.filter((t): t is Tensor => t !== null).map(baseOf);
    let g = 0;
    for (const t of [...reads, ...writes]) g = Math.max(g, (lastWrite.get(t) ?? -1) + 1);
    for (const t of writes) g = Math.max(g, (lastRead.get(t) ?? -1) + 1);
    for (const t of reads) lastRead.set(t, Math.max(lastRead.get(t) ?? -1, g));
    for (const t of writes) lastWrite.set(t, g);
    return g;
  });
  const order = nodes.map((_, i) => i).sort((a, b) => level[a]! - level[b]! || a - b);
  return { nodes: order.map((i) => nodes[i]!), group: order.map((i) => level[i]!) };
}

/**
 * Ops whose kernels may write their result over src0 (same shape): each thread reads a
 * whole unit of src0 (RoPE: a head) before writing that unit, and no other unit reads it.
 */
const IN_PLACE = new Set<Op>([Op.Rope]);

/**
 * Arena offsets by liveness. A tensor's memory is reused only once the group of its last
 * use has ended (nodes of one group run at the same time), and an in-place op's result
 * takes over its source's memory when nothing else reads the source, in its group or
 * later. Each tensor goes at the lowest offset free for its whole lifetime, in the better
 * of two orders: largest first (in execution order, the big FFN tensors may find no gap
 * they fit), or execution order (largest first may park a long-lived residual stream where
 * a later shape needed room: Qwen3 with norms and residuals fused, 12 vs 10 MiB at 512).
 */
function placeActivations(
  nodes: readonly Node[],
  group: readonly number[],
  outputs: ReadonlySet<Tensor>,
): { offsets: Map<Tensor, number>; size: number } {
  const isAct = (t: Tensor | null): t is Tensor => !!t && baseOf(t).binding.kind === "act";
  const lastUse = new Map<Tensor, number>();
  const readers = readersOf(nodes);
  const writtenActs = new Set<Tensor>();
  nodes.forEach((n, i) => {
    for (const t of written(n)) if (isAct(t)) writtenActs.add(baseOf(t));
    for (const t of [...n.src, ...written(n)]) if (isAct(t)) lastUse.set(baseOf(t), i);
  });
  const overwritable = (n: Node, i: number): Tensor | null => {
    const s = n.src[0];
    if (!IN_PLACE.has(n.op) || !isAct(s) || baseOf(s) !== s || baseOf(n.dst) !== n.dst) return null;
    if (!writtenActs.has(s) || outputs.has(s) || lastUse.get(s) !== i) return null;
    if (s.dtype !== n.dst.dtype || s.rows !== n.dst.rows || s.cols !== n.dst.cols) return null;
    if (s.rowStride !== n.dst.rowStride) return null;
    // Nodes of one group run at once: an earlier one in the group may still be reading.
    return readers.get(s)!.every((j) => j === i || group[j] !== group[i]) ? s : null;
  };
  // Each tensor's owner of memory (itself, or the source it overwrites) and every owner's
  // lifetime in groups.
  const owner = new Map<Tensor, Tensor>();
  const span = new Map<Tensor, { from: number; to: number }>();
  nodes.forEach((n, i) => {
    const over = overwritable(n, i);
    if (over && !owner.has(n.dst)) owner.set(n.dst, owner.get(over) ?? over);
    for (const t of [...n.src, ...written(n)]) {
      if (!isAct(t)) continue;
      const b = baseOf(t);
      const o = owner.get(b) ?? b;
      const sp = span.get(o);
      const to = outputs.has(b) ? Infinity : group[i]!;
      if (!sp) span.set(o, { from: group[i]!, to });
      else sp.to = Math.max(sp.to, to);
    }
  });
  const owners = [...writtenActs].filter((t) => !owner.has(t));
  const from = (t: Tensor) => span.get(t)!.from;
  // Stop early at the bound no placement can beat (the most bytes alive in one group).
  const orders: ((a: Tensor, b: Tensor) => number)[] = [
    (a, b) => bytesOf(b) - bytesOf(a) || from(a) - from(b),
    (a, b) => from(a) - from(b) || bytesOf(b) - bytesOf(a),
  ];
  const bound = liveBound(owners, span);
  let best: { offsets: Map<Tensor, number>; size: number } | null = null;
  for (const order of orders) {
    const r = firstFit([...owners].sort(order), span);
    if (!best || r.size < best.size) best = r;
    if (best.size <= bound) break;
  }
  const offsets = best!.offsets;
  for (const [t, o] of owner) offsets.set(t, offsets.get(o)!);
  return { offsets, size: best!.size };
}

/** Each tensor, in the order given, at the lowest offset free for its whole lifetime. */
function firstFit(
  order: readonly Tensor[],
  span: ReadonlyMap<Tensor, { from: number; to: number }>,
): { offsets: Map<Tensor, number>; size: number } {
  const placed: { off: number; end: number; from: number; to: number }[] = [];
  const offsets = new Map<Tensor, number>();
  let size = 0;
  for (const t of order) {
    const need = bytesOf(t);
    const { from, to } = span.get(t)!;
    const busy = placed.filter((p) => p.from <= to && from <= p.to).sort((a, b) => a.off - b.off);
    let off = 0;
    for (const p of busy) {
      if (p.off - off >= need) break;
      off = Math.max(off, p.end);
    }
    placed.push({ off, end: off + need, from, to });
    offsets.set(t, off);
    size = Math.max(size, off + need);
  }
  return { offsets, size };
}

/** The most bytes alive in any one group: no placement needs less. */
function liveBound(
  owners: readonly Tensor[],
  span: ReadonlyMap<Tensor, { from: number; to: number }>,
): number {
  const delta = new Map<number, number>();
  for (const t of owners) {
    const { from, to } = span.get(t)!;
    delta.set(from, (delta.get(from) ?? 0) + bytesOf(t));
    if (to !== Infinity) delta.set(to + 1, (delta.get(to + 1) ?? 0) - bytesOf(t));
  }
  let live = 0,
    most = 0;
  for (const g of [...delta.keys()].sort((a, b) => a - b)) {
    live += delta.get(g)!;
    most = Math.max(most, live);
  }
  return most;
}

export function compilePlan(graph: Graph): EncodedPlan {
  const { nodes, group } = groupNodes(fuse(graph.nodes, graph.outputs));
  const { offsets, size } = placeActivations(nodes, group, graph.outputs);

  const inputs = new Map<string, { offset: number; length: number }>();
  let inputWords = 0;
  for (const t of graph.tensors) {
    if (t.binding.kind === "input" && !inputs.has(t.binding.name)) {
      inputs.set(t.binding.name, { offset: inputWords, length: t.rows * t.cols });
      inputWords += Math.ceil((t.rows * t.cols) / 16) * 16;
    }
  }

  const buffers: (ArrayBuffer | null)[] = [null, null];
  const bufferIndex = new Map<ArrayBuffer, number>();
  const tensors = new Float64Array(graph.tensors.length * TENSOR_FIELDS);
  const byteOffsets = new Float64Array(graph.tensors.length);
  for (const t of graph.tensors) {
    let buf = -1;
    let off = 0;
    const b = baseOf(t).binding;
    const base = baseOf(t);
    if (b.kind === "act") {
      if (offsets.has(base)) {
        buf = ARENA_BUFFER;
        off = offsets.get(base)!;
      }
    } else if (b.kind === "input") {
      buf = INPUT_BUFFER;
      off = inputs.get(b.name)!.offset * 4;
    } else if (b.kind === "buffer") {
      let idx = bufferIndex.get(b.buffer);
      if (idx === undefined) {
        idx = buffers.length;
        buffers.push(b.buffer);
        bufferIndex.set(b.buffer, idx);
      }
      buf = idx;
      off = b.byteOffset;
    }
    const f = t.id * TENSOR_FIELDS;
    tensors[f] = buf;
    tensors[f + 1] = off;
    tensors[f + 2] = t.dtype;
    tensors[f + 3] = t.cols;
    tensors[f + 4] = t.rows;
    tensors[f + 5] = t.rowStride;
    byteOffsets[t.id] = off;
  }

  const ints = new Int32Array(nodes.length * OP_INTS);
  const floats = new Float32Array(nodes.length * OP_FLOATS);
  nodes.forEach((n, i) => {
    const o = i * OP_INTS;
    ints[o] = n.op | (i > 0 && group[i] === group[i - 1] ? NO_BARRIER : 0);
    ints[o + 1] = n.dst.id;
    for (let s = 0; s < MAX_SRC; s++) ints[o + 2 + s] = n.src[s]?.id ?? -1;
    if (n.ints.length > OP_PARAM_INTS || n.floats.length > OP_FLOATS)
      throw new Error("plan: too many op parameters");
    n.ints.forEach((v, k) => (ints[o + 2 + MAX_SRC + k] = v));
    n.floats.forEach((v, k) => (floats[i * OP_FLOATS + k] = v));
  });

  return {
    nodes,
    ints,
    floats,
    tensors,
    buffers,
    arenaBytes: Math.max(size, ALIGN),
    inputBytes: Math.max(inputWords * 4, ALIGN),
    inputs,
    outputs: graph.outputs,
    byteOffsets,
  };
}
