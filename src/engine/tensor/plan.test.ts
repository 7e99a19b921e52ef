/**
 * The planner's arena: no two tensors that are alive at once share memory, except an
 * in-place op's result over a source nothing else reads; the fused FFN leaves one
 * [T, ffn] tensor; and the whole layer stack fits in what its widest moment needs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { uniform } from "../../testing/random.js";
import { DType, dtypeBytes, fromF32, isQuantized, rowBytes } from "./dtype.js";
import { Graph, type Tensor } from "./graph.js";
import { MAX_SRC, MM_NORM, NO_BARRIER, OP_INTS, Op, RopePairing, TENSOR_FIELDS } from "./ops.js";
import { ARENA_BUFFER, compilePlan, type EncodedPlan } from "./plan.js";

const T = 24,
  D = 64,
  HEADS = 4,
  HD = 16,
  FFN = 160;

/** A weight (the planner never reads a quantized one's bytes: those stay zeros here). */
function weight(g: Graph, name: string, rows: number, cols: number, dt = DType.F16): Tensor {
  const bytes = isQuantized(dt)
    ? new ArrayBuffer(rows * rowBytes(dt, cols))
    : (fromF32(uniform(rows * cols, 0.1, rows + cols), dt).buffer as ArrayBuffer);
  return g.bind(name, dt, rows, cols, bytes);
}

/** Layers of norm, q projection, rope (q-norm fused), output projection, and a SwiGLU FFN. */
function layers(g: Graph, n: number, ropeSourceReadAgain = false, dt = DType.F16): Tensor {
  const pos = g.input("positions", 1, T);
  let x = g.matmul(g.input("x", T, D), weight(g, "in", D, D));
  for (let l = 0; l < n; l++) {
    const h = g.rmsNorm(x, null, 1e-6);
    const q = g.matmul(h, weight(g, `q${l}`, D, D, dt));
    // Read q again just before the rope, in its barrier group: the rope is q's last
    // reader, but the matmul may still be reading q while the rope runs.
    const again = ropeSourceReadAgain ? g.matmul(q, weight(g, `qq${l}`, D, D)) : null;
    const r = g.rope(q, pos, {
      nHead: HEADS,
      headDim: HD,
      theta: 1e4,
      pairing: RopePairing.Neox,
      norm: null,
    });
    const a = again ? g.add(r, again) : r;
    x = g.add(x, g.matmul(a, weight(g, `o${l}`, D, D, dt)));
    const f = g.rmsNorm(x, null, 1e-6);
    const glu = g.swiglu(
      g.matmul(f, weight(g, `gate${l}`, FFN, D, dt)),
      g.matmul(f, weight(g, `up${l}`, FFN, D, dt)),
    );
    x = g.add(x, g.matmul(glu, weight(g, `down${l}`, D, FFN, dt)));
  }
  return x;
}

interface Placed {
  id: number;
  off: number;
  end: number;
  from: number;
  to: number;
}

/** Arena tensors of a plan with their bytes and lifetimes in barrier groups. */
function arenaTensors(plan: EncodedPlan): Map<number, Placed> {
  const out = new Map<number, Placed>();
  let group = 0;
  plan.nodes.forEach((n, i) => {
    if (i > 0 && !(plan.ints[i * OP_INTS]! & NO_BARRIER)) group++;
    const touched = [n.dst, ...n.src, ...(n.op === Op.AddRmsNorm ? [n.src[3]] : [])];
    for (const t of touched) {
      if (!t || plan.tensors[t.id * TENSOR_FIELDS] !== ARENA_BUFFER) continue;
      const p = out.get(t.id);
      const to = plan.outputs.has(t) ? Infinity : group;
      if (p) p.to = Math.max(p.to, to);
      else {
        const off = plan.byteOffsets[t.id]!;
        out.set(t.id, { id: t.id, off, end: off + t.rows * t.cols * dtypeBytes(t.dtype), from: group, to });
      }
    }
  });
  return out;
}

/** Pairs of tensors whose memory overlaps while both are alive (an in-place result starts
 * in the group its source ends in: those are listed too, for the caller to judge). */
function clashes(plan: EncodedPlan): [Placed, Placed][] {
  const ts = [...arenaTensors(plan).values()];
  const out: [Placed, Placed][] = [];
  for (let i = 0; i < ts.length; i++)
    for (let j = i + 1; j < ts.length; j++) {
      const a = ts[i]!,
        b = ts[j]!;
      if (a.off < b.end && b.off < a.end && a.from <= b.to && b.from <= a.to) out.push([a, b]);
    }
  return out;
}

/** Every rope writes over its source, and no other tensors alive at once share memory. */
function assertOnlyRopesInPlace(plan: EncodedPlan): void {
  const ropes = plan.nodes.filter((n) => n.op === Op.Rope);
  const inPlace = new Set(ropes.map((n) => `${n.src[0]!.id}:${n.dst.id}`));
  for (const n of ropes)
    assert.equal(plan.byteOffsets[n.dst.id], plan.byteOffsets[n.src[0]!.id], "rope in place");
  for (const [a, b] of clashes(plan)) {
    const pair = a.id < b.id ? `${a.id}:${b.id}` : `${b.id}:${a.id}`;
    assert.ok(inPlace.has(pair), `tensors ${a.id} and ${b.id} share memory while both are alive`);
  }
}

describe("plan arena", () => {
  it("tensors alive at once never share memory, except a rope result over its last-read source", () => {
    const g = new Graph();
    g.output(layers(g, 3));
    const plan = compilePlan(g);
    assert.equal(plan.nodes.filter((n) => n.op === Op.Rope).length, 3);
    assertOnlyRopesInPlace(plan);
  });

  it("a rope whose source is read elsewhere in its group, or is an output, gets memory of its own", () => {
    for (const variant of ["read again", "output"] as const) {
      const g = new Graph();
      g.output(layers(g, 2, variant === "read again"));
      if (variant === "output") for (const n of g.nodes) if (n.op === Op.Rope) g.output(n.src[0]!);
      const plan = compilePlan(g);
      for (const n of plan.nodes.filter((n) => n.op === Op.Rope))
        assert.notEqual(
          plan.byteOffsets[n.dst.id],
          plan.byteOffsets[n.src[0]!.id],
          `${variant}: rope not in place`,
        );
      assert.deepEqual(clashes(plan), [], `${variant}: live tensors overlap`);
    }
  });

  it("the FFN's gate and up become one node with one [T, ffn] result, and the arena holds the widest moment", () => {
    const g = new Graph();
    g.output(layers(g, 4));
    const plan = compilePlan(g);
    const ops = plan.nodes.map((n) => n.op);
    assert.equal(ops.filter((o) => o === Op.MatmulGlu).length, 4);
    assert.ok(!ops.includes(Op.SwiGlu));
    // The widest moment: the residual, the FFN's GLU result and the down projection's
    // output (the norm it read died with the fused node's group). Tensors placed in
    // execution order used more as the layers went by.
    const f32 = T * 4;
    assert.equal(plan.arenaBytes, f32 * (D + FFN + D));
  });

  it("with quantized weights the norms fold into the matmuls and the residual adds into the projections", () => {
    const L = 3;
    const g = new Graph();
    g.output(layers(g, L, false, DType.Q8_0));
    const plan = compilePlan(g);
    const ops = plan.nodes.map((n) => n.op);
    // Left: the input projection, then per layer q (norm folded), rope, o (+ residual),
    // gate and up (norm folded) and down (+ residual).
    assert.ok(!ops.includes(Op.RmsNorm) && !ops.includes(Op.AddRmsNorm) && !ops.includes(Op.Add));
    assert.equal(ops.length, 1 + 5 * L);
    const normed = plan.nodes.filter((_, i) => plan.ints[i * OP_INTS + 2 + MAX_SRC + 1] === MM_NORM);
    assert.deepEqual(
      normed.map((n) => n.op),
      Array.from({ length: L }, () => [Op.Matmul, Op.MatmulGlu]).flat(),
    );
    const residual = plan.nodes.filter((n) => n.src[4] && n.op === Op.Matmul);
    assert.equal(residual.length, 2 * L);
    assertOnlyRopesInPlace(plan);
    // Widest moment: the down projection's GLU input, the residual it adds and its result.
    assert.equal(plan.arenaBytes, T * 4 * (D + FFN + D));
  });

  it("a norm with a reader that cannot take it (float weights, or an output) stays a node", () => {
    for (const variant of ["float reader", "output"] as const) {
      const g = new Graph();
      const x = g.matmul(g.input("x", T, D), weight(g, "in", D, D));
      const h = g.rmsNorm(x, null, 1e-6);
      const a = g.matmul(h, weight(g, "a", D, D, DType.Q8_0));
      const b = g.matmul(h, weight(g, "b", D, D, variant === "float reader" ? DType.F16 : DType.Q8_0));
      if (variant === "output") g.output(h);
      g.output(g.add(a, b));
      const plan = compilePlan(g);
      assert.equal(plan.nodes.filter((n) => n.op === Op.RmsNorm).length, 1, variant);
      assert.ok(
        plan.nodes.every((n) => !n.src[5]),
        variant,
      );
    }
  });
});
