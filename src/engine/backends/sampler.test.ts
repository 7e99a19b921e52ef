/** The native sampler against the reference sampler, and each knob against hand-computed cases. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rng, uniform } from "../../testing/random.js";
import { DType } from "../tensor/dtype.js";
import { Graph } from "../tensor/graph.js";
import type { SamplerOptions } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";
import { ReferenceBackend } from "./reference/index.js";

const cpu = new CpuBackend(),
  ref = new ReferenceBackend();

describe("sampler", () => {
  it("native and reference make identical choices across options and seeds", () => {
    const configs: SamplerOptions[] = [
      { temperature: 0 },
      { temperature: 0.8, topK: 40, topP: 0.9, seed: 1 },
      { temperature: 1.3, topK: 0, topP: 1, seed: 2 },
      { temperature: 0.5, topK: 5, minP: 0.2, seed: 3 },
      {
        temperature: 1,
        topP: 0.5,
        seed: 4,
        repeatPenalty: 1.3,
        presencePenalty: 0.5,
        frequencyPenalty: 0.25,
        repeatLastN: 8,
      },
      { temperature: 0.7, topK: 3, seed: 5, logprobs: 4 },
    ];
    for (const c of configs) {
      const a = cpu.createSampler(c),
        b = ref.createSampler(c);
      const r = rng(11);
      for (let step = 0; step < 60; step++) {
        const logits = uniform(1000, 4, 100 + step);
        // a few heavy hitters so that top-p and min-p cut somewhere interesting
        for (let k = 0; k < 5; k++) logits[Math.floor(r() * 1000)] = 6 + k;
        const x = a.sample(logits),
          y = b.sample(logits);
        assert.equal(x.token, y.token, `config ${JSON.stringify(c)} step ${step}`);
        if ((c.logprobs ?? -1) >= 0) {
          assert.deepEqual(x.topIds, y.topIds);
          assert.ok(Math.abs(x.logprob - y.logprob) < 1e-5);
        }
        a.accept(x.token);
        b.accept(y.token);
      }
    }
  });

  it("without top-k, a whole vocabulary's choices are the reference's (the native sampler sorts only the reachable prefix)", () => {
    const V = 151936;
    const configs: SamplerOptions[] = [
      { temperature: 0.8, topK: 0, topP: 0.9, seed: 7 },
      { temperature: 1.1, topK: 0, topP: 1, minP: 0.05, seed: 8 },
      { temperature: 0.7, topK: 0, topP: 0.95, minP: 0.02, seed: 9 },
      { temperature: 1, topK: 0, topP: 1, seed: 10 },
    ];
    for (const c of configs) {
      const a = cpu.createSampler(c),
        b = ref.createSampler(c);
      for (let step = 0; step < 8; step++) {
        // Peaked like a model's logits (most of the mass on a few hundred tokens), or flat
        // (the prefix spans much of the vocabulary), with a masked token.
        const logits = uniform(V, step % 2 ? 3 : 12, 500 + step);
        logits[(step * 7919) % V] = -Infinity;
        const x = a.sample(logits),
          y = b.sample(logits);
        assert.equal(x.token, y.token, `config ${JSON.stringify(c)} step ${step}`);
      }
    }
  });

  it("greedy over long rows: the first maximum past ties, NaN, infinities and signed zeros", () => {
    // The native choice scans vectors (the largest value, then its first place): rows long
    // enough for that path, with the maximum repeated across vector boundaries.
    const r = rng(31);
    const greedy = (v: Float32Array) =>
      [cpu, ref].map((b) => b.createSampler({ temperature: 0 }).sample(v).token);
    for (let trial = 0; trial < 200; trial++) {
      const n = 64 + Math.floor(r() * 300);
      const v = new Float32Array(n).map(() => Math.floor(r() * 8) - 4); // many ties
      const pick = () => Math.floor(r() * n);
      if (trial % 4 === 1) for (let k = 0; k < 5; k++) v[pick()] = NaN;
      if (trial % 4 === 2) v.fill(-Infinity, 0, n - 1 - Math.floor(r() * 3));
      if (trial % 4 === 3) v.fill(-0, 0, n).fill(0, pick());
      if (trial % 10 === 5) v[pick()] = Infinity;
      if (trial % 50 === 7) v[0] = NaN; // never beaten
      const [a, b] = greedy(v);
      assert.equal(a, b, `trial ${trial}`);
    }
    // NaNs are passed over; a NaN first value is never beaten (the scan's rule).
    const nan = new Float32Array(100).fill(-Infinity).fill(NaN, 1, 70);
    nan[80] = 5;
    assert.deepEqual(greedy(nan), [80, 80]);
    nan[0] = NaN;
    assert.deepEqual(greedy(nan), [0, 0]);
    assert.deepEqual(greedy(new Float32Array(100).fill(-Infinity).fill(NaN, 1, 70)), [0, 0]);
    assert.deepEqual(greedy(new Float32Array(200).fill(1).fill(2, 137, 190)), [137, 137]);
  });

  it("greedy picks the first maximum; top-k 1 is greedy at any temperature", () => {
    const logits = new Float32Array([1, 5, 3, 5, 2]);
    assert.equal(cpu.createSampler({ temperature: 0 }).sample(logits).token, 1);
    for (let seed = 0; seed < 10; seed++)
      assert.equal(cpu.createSampler({ temperature: 5, topK: 1, seed }).sample(logits).token, 1);
  });

  it("presence and frequency penalties apply per distinct token and per occurrence", () => {
    const s = cpu.createSampler({ temperature: 0, presencePenalty: 6 });
    s.accept(1);
    assert.equal(s.sample(new Float32Array([0, 5, 4])).token, 2);
    const f = cpu.createSampler({ temperature: 0, frequencyPenalty: 2 });
    f.accept(1);
    f.accept(1);
    assert.equal(f.sample(new Float32Array([0, 5, 2])).token, 2); // 5 - 2*2 = 1 < 2
    const rp = cpu.createSampler({ temperature: 0, repeatPenalty: 2 });
    rp.accept(0);
    assert.equal(rp.sample(new Float32Array([3, 2])).token, 1); // 3 / 2 = 1.5 < 2
  });

  it("the same seed gives the same sequence; reset restarts it", () => {
    const logits = uniform(500, 2, 3);
    const draw = (s: ReturnType<typeof cpu.createSampler>) =>
      Array.from({ length: 20 }, () => s.sample(logits).token);
    const a = cpu.createSampler({ temperature: 1, seed: 42 }),
      b = cpu.createSampler({ temperature: 1, seed: 42 });
    const first = draw(a);
    assert.deepEqual(first, draw(b));
    assert.notDeepEqual(first, draw(cpu.createSampler({ temperature: 1, seed: 43 })));
    a.reset();
    assert.deepEqual(draw(a), first);
  });

  it("reports log-probabilities of the raw logits, best first", () => {
    const s = cpu.createSampler({ temperature: 0, logprobs: 2 });
    const r = s.sample(new Float32Array([0, Math.log(3), 0]));
    assert.equal(r.token, 1);
    assert.ok(Math.abs(r.logprob - Math.log(0.6)) < 1e-6);
    assert.deepEqual(r.topIds, [1, 0]);
    assert.ok(Math.abs(r.topLogprobs[1]! - Math.log(0.2)) < 1e-6);
  });
});

describe("draws in a pass with drafts", () => {
  it("draw a row fed a draft only after the row before drew it, counted by the penalties first", async () => {
    // Speculative decoding: rows 0-3 are one sequence's decode row and the drafts 5, 6, 2
    // fed after it, rows 4-5 another's with the draft 7. Row 1 prefers 5 by 0.05 unless the
    // frequency penalty already counts row 0's 5; row 2 draws 3, not the draft 2, so row 3
    // is not drawn.
    const V = 8;
    const rows = [
      { top: 5, second: -1 },
      { top: 5, second: 6 },
      { top: 3, second: -1 },
      { top: 4, second: -1 },
      { top: 7, second: -1 },
      { top: 1, second: -1 },
    ];
    const logits = new Float32Array(rows.length * V);
    rows.forEach((r, i) => {
      logits[i * V + r.top] = 10;
      if (r.second >= 0) logits[i * V + r.second] = 9.95;
    });
    const drafts = Int32Array.from([5, 6, 2, -1, 7, -1]);
    for (const b of [cpu, ref]) {
      const g = new Graph();
      const out = g.output(
        g.add(
          g.bind("l", DType.F32, rows.length, V, logits.slice().buffer),
          g.bind("z", DType.F32, rows.length, V, new Float32Array(rows.length * V).buffer),
        ),
      );
      const p = b.prepare(g);
      const a = b.createSampler({ temperature: 0, frequencyPenalty: 0.1 }),
        c = b.createSampler({ temperature: 0 });
      const tokens = await p.execute([a, a, a, a, c, c], out, drafts);
      assert.deepEqual([...tokens!], [5, 6, 3, -1, 7, 1], b.name);
    }
  });
});
