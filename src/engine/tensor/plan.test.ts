/**
 * The planner's arena: no two tensors that are alive at once share memory, except an
 * in-place op's result over a source nothing else reads; the fused FFN leaves one
 * [T, ffn] tensor; and the whole layer stack fits in what its widest moment needs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { uniform } from "../../testing/random.js";
import { DType, dtypeBytes, fromF32 } from "./dtype.js";
import { Graph, type Tensor } from "./graph.js";
import { NO_BARRIER, OP_INTS, Op, RopePairing, TENSOR_FIELDS } from "./ops.js";
import { ARENA_BUFFER, compilePlan, type EncodedPlan } from "./plan.js";

const T = 24,
  D = 64,
  HEADS = 4,
  HD = 16,
  FFN = 160;

function weight(g: Graph, name: string, rows: number, cols: number, dt = DType.F16): Tensor {
  return g.bind(
    name,
    dt,
    rows,
    cols,
    fromF32(uniform(rows * cols, 0.1, rows + cols), dt).buffer as ArrayBuffer,
  );
}

/** Layers of norm, q projection, rope (q-norm fused), output projection, and a SwiGLU FFN. */
function layers(g: Graph, n: number, ropeSourceReadAgain = false): Tensor {
  const pos = g.input("positions", 1, T);
  let x = g.matmul(g.input("x", T, D), weight(g, "in", D, D));
  for (let l = 0; l < n; l++) {
    const h = g.rmsNorm(x, null, 1e-6);
    const q = g.matmul(h, weight(g, `q${l}`, D, D));
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
    x = g.add(x, g.matmul(a, weight(g, `o${l}`, D, D)));
    const f = g.rmsNorm(x, null, 1e-6);
    const glu = g.swiglu(
      g.matmul(f, weight(g, `gate${l}`, FFN, D)),
      g.matmul(f, weight(g, `up${l}`, FFN, D)),
    );
    x = g.add(x, g.matmul(glu, weight(g, `down${l}`, D, FFN)));
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

describe("plan arena", () => {
  it("tensors alive at once never share memory, except a rope result over its last-read source", () => {
    const g = new Graph();
    g.output(layers(g, 3));
    const plan = compilePlan(g);
    const ropes = plan.nodes.filter((n) => n.op === Op.Rope);
    assert.equal(ropes.length, 3);
    const inPlace = new Set(ropes.map((n) => `${n.src[0]!.id}:${n.dst.id}`));
    for (const n of ropes)
      assert.equal(plan.byteOffsets[n.dst.id], plan.byteOffsets[n.src[0]!.id], "rope in place");
    for (const [a, b] of clashes(plan)) {
      const pair = a.id < b.id ? `${a.id}:${b.id}` : `${b.id}:${a.id}`;
      assert.ok(inPlace.has(pair), `tensors ${a.id} and ${b.id} share memory while both are alive`);
    }
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
});
