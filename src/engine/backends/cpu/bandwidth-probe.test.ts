/** The bandwidth probe (native/kernels/bandwidth.c) that bench/vs-llama-bench.mjs takes the decode bound from. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { native } from "../../../native.js";

describe("bandwidth probe", () => {
  it("gives one figure per read, each a positive finite GB/s", () => {
    const reads = native().bandwidthProbe(8, 4);
    assert.equal(reads.length, 4);
    for (const gbs of reads) assert.ok(Number.isFinite(gbs) && gbs > 0, `read ${gbs} GB/s`);
  });

  it("reads at least once whatever the count asked", () => {
    assert.equal(native().bandwidthProbe(8, 0).length, 1);
    assert.equal(native().bandwidthProbe(8, Number.NaN).length, 1);
  });
});
