/** Speculative decoding's parts: the prompt-lookup drafter, the policy, the chained draws. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SampleResult, Sampler } from "../engine/backends/backend.js";
import { chainedDraws } from "../engine/backends/reference/chained-draws.js";
import { NgramDrafter } from "./ngram-drafter.js";
import { Acceptance, draftsToVerify, expectedTokens, PassCosts } from "./speculation.js";

describe("prompt-lookup drafter", () => {
  it("copies what followed the latest earlier occurrence of the longest matching suffix", () => {
    const d = new NgramDrafter([1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 1, 2, 3]);
    // [1, 2, 3] (n = 3) last occurred at 0..2, followed by 4, 5, 9; [2, 3] alone would have
    // matched later (6..7, followed by 7).
    assert.deepEqual(d.draft(3), { tokens: [4, 5, 9], n: 3 });
    d.push(6);
    assert.equal(d.draft(4), null); // [3, 6] never occurred
    const e = new NgramDrafter([5, 1, 2, 8, 1, 2, 9, 1, 2]);
    assert.deepEqual(e.draft(1), { tokens: [9], n: 2 }); // the latest of two occurrences
  });

  it("continues a repeat past the end of the context", () => {
    const d = new NgramDrafter([7, 1, 2, 3, 1, 2, 3]);
    assert.deepEqual(d.draft(7), { tokens: [1, 2, 3, 1, 2, 3, 1], n: 3 });
    const run = new NgramDrafter([4, 4, 4]);
    assert.deepEqual(run.draft(3), { tokens: [4, 4, 4], n: 2 });
  });

  it("looks in the reference first, and drafts no further than it goes", () => {
    // The cache held [.., 8, 9] then the answer 5, 6, 7 before this request.
    const d = new NgramDrafter([1, 2, 8, 9, 3, 8, 9], [8, 9, 5, 6, 7]);
    assert.deepEqual(d.draft(5), { tokens: [5, 6, 7], n: 2, reference: true }); // not [3, 8, 9]
    d.push(5); // following the reference: drafted from where it is in it
    assert.deepEqual(d.draft(5), { tokens: [6, 7], n: 4, reference: true });
    d.push(4); // off the reference: the context again
    assert.equal(d.draft(2), null);
    const e = new NgramDrafter([1, 8, 9, 3, 8, 9], [8, 9, 5]);
    e.dropReference();
    assert.deepEqual(e.draft(2), { tokens: [3, 8], n: 2 });
    assert.deepEqual(new NgramDrafter([1, 2, 1, 2], [7, 7]).draft(2), { tokens: [1, 2], n: 2 }); // too short to index
  });

  it("keeps to its place in the reference, and finds it again past a change", () => {
    // [1, 2] occurs twice in the reference: while the output follows it, the draft comes
    // from where it is, not from the latest [1, 2].
    const d = new NgramDrafter([0, 8, 9], [8, 9, 1, 2, 3, 1, 2, 4, 5, 1, 2, 6]);
    assert.deepEqual(d.draft(3), { tokens: [1, 2, 3], n: 2, reference: true });
    d.push(1);
    d.push(2);
    assert.deepEqual(d.draft(4), { tokens: [3, 1, 2, 4], n: 4, reference: true });
    d.push(7); // a change: the output leaves the reference after its position 3
    d.push(1);
    d.push(2);
    // Found again at the first [1, 2] past where it was left (ending at 6), not the latest.
    assert.deepEqual(d.draft(2), { tokens: [4, 5], n: 2, reference: true });
  });

  it("drafts nothing from a context too short or without a repeat", () => {
    assert.equal(new NgramDrafter([]).draft(4), null);
    assert.equal(new NgramDrafter([1]).draft(4), null);
    assert.equal(new NgramDrafter([1, 2, 3, 4, 5, 6]).draft(4), null);
    assert.equal(new NgramDrafter([1, 2, 1, 2]).draft(0), null);
  });
});

/** A decode pass of `decoding` sequences at 100 positions, with others' drafts so far. */
const pass = (decoding: number, extraRows: number, extraTokens: number) => ({
  decoding,
  extraRows,
  extraTokens,
  depth: 100,
});

describe("speculation policy", () => {
  it("expects 1 + a + ... + a^k tokens from k drafts", () => {
    assert.equal(expectedTokens(0.5, 0), 1);
    assert.equal(expectedTokens(0.5, 2), 1.75);
    assert.equal(expectedTokens(1, 4), 5);
  });

  it("verifies more drafts the more often they come true and the less rows cost", () => {
    const costs = new PassCosts();
    // Measured: 2 rows cost what 1 does, 3 rows 1.25x, 4 rows 1.5x, 8 rows 3.2x (each
    // shape's first pass builds its plan and is not counted).
    const measured: [number, number][] = [
      [1, 10],
      [2, 10],
      [3, 12.5],
      [4, 15],
      [8, 32],
    ];
    for (const [rows, ms] of measured) for (let i = 0; i < 2; i++) costs.observe(rows, 100, ms);
    assert.equal(costs.cost(5, 100), costs.cost(8, 100)); // 5 rows run as 8 (paddedRows)
    assert.equal(draftsToVerify(costs, 0.05, 7, pass(1, 0, 0)), 1); // 2 rows are free
    assert.equal(draftsToVerify(costs, 0.6, 7, pass(1, 0, 0)), 1);
    assert.equal(draftsToVerify(costs, 0.9, 7, pass(1, 0, 0)), 3);
    assert.equal(draftsToVerify(costs, 1, 7, pass(1, 0, 0)), 3); // 4 tokens for 15 ms beat 8 for 32
    // In a pass of 4 sequences any draft takes it past 4 rows (to 8), which costs more than
    // even 4 true drafts give; the first sequence to choose counts the others' rows too.
    assert.equal(draftsToVerify(costs, 1, 4, pass(4, 0, 0)), 0);
    // Of 3 sequences, one drafting fills the pass to 4 rows; then none can.
    assert.equal(draftsToVerify(costs, 0.9, 4, pass(3, 0, 0)), 1);
    assert.equal(draftsToVerify(costs, 0.9, 4, pass(3, 1, 0.9)), 0);
    assert.equal(draftsToVerify(costs, 1, 2, pass(1, 0, 0)), 2); // at most the drafts there are
    const dear = new PassCosts();
    for (const [rows, ms] of [
      [1, 10],
      [2, 20],
    ] as const)
      for (let i = 0; i < 2; i++) dear.observe(rows, 100, ms);
    assert.equal(draftsToVerify(dear, 0.9, 1, pass(1, 0, 0)), 0); // 1.9 tokens for 2x the time
  });

  it("prices unmeasured shapes from a measured one, and ignores a plan's first pass and outliers", () => {
    const c = new PassCosts();
    c.observe(1, 100, 500); // a plan build
    assert.equal(c.cost(1, 100), 1); // nothing measured: the prior's units
    c.observe(1, 100, 10);
    assert.equal(c.cost(1, 100), 10);
    assert.ok(c.cost(4, 100) > 10 && c.cost(8, 100) > c.cost(4, 100));
    c.observe(1, 100, 100); // another process took the cores
    assert.equal(c.cost(1, 100), 10);
    // Deep in a context, passes cost more and extra rows more again: priced apart.
    c.observe(1, 3000, 40);
    assert.equal(c.cost(1, 3000), 40);
    assert.equal(c.cost(1, 100), 10);
    assert.equal(c.cost(2, 3000), 40 * 1.2); // the prior's ratio to the 1-row pass there
    assert.equal(c.cost(2, 700), 1.2); // nothing measured at 512-1023 positions yet
  });

  it("tracks how often drafts come true, per n-gram length and for the reference", () => {
    const a = new Acceptance();
    a.observe({ n: 3 }, 4, false);
    a.observe({ n: 2 }, 0, true);
    assert.ok(a.get({ n: 3 }) > 0.5 && a.get({ n: 2 }) < 0.5 && a.get({ n: 4 }) === 0.5);
    assert.equal(a.get({ n: 2, reference: true }), 0.5); // the reference's apart
    const b = new Acceptance(a, 0.9); // a new sequence, with a prediction
    assert.equal(b.get({ n: 3 }), a.get({ n: 3 }));
    assert.equal(b.get({ n: 3, reference: true }), 0.9);
  });
});

/** A sampler drawing the given tokens in order, recording what it accepts. */
function scripted(draws: number[]): Sampler & { accepted: number[]; drawn: number } {
  const r = (token: number): SampleResult => ({ token, logprob: 0, topIds: [], topLogprobs: [] });
  const s = {
    accepted: [] as number[],
    drawn: 0,
    accept: (t: number) => void s.accepted.push(t),
    reset: () => {},
    sample: () => r(draws[s.drawn++]!),
    last: () => r(draws[s.drawn - 1]!),
  };
  return s;
}

describe("chained draws", () => {
  it("draw a row fed a draft only if the row before drew it, accepting it first", () => {
    const a = scripted([5, 6, 9, 1]),
      b = scripted([3]);
    // Rows 0-3: sequence a fed drafts 5, 6, 7 after its decode row; row 4: sequence b.
    const out = chainedDraws(
      [a, a, a, a, b],
      Int32Array.from([5, 6, 7, -1, -1]),
      (s) => s.sample(new Float32Array(0)).token,
    );
    assert.deepEqual([...out], [5, 6, 9, -1, 3]); // 7 missed: row 3 is not drawn
    assert.deepEqual(a.accepted, [5, 6]);
    assert.equal(a.drawn, 3); // one draw per token kept, as without drafts
    assert.equal(b.drawn, 1);
    const c = scripted([2, 4]);
    assert.deepEqual(
      [...chainedDraws([c, c], undefined, (s) => s.sample(new Float32Array(0)).token)],
      [2, 4],
    );
    assert.deepEqual(c.accepted, []);
  });
});
