/** The cpu backend keeps a large plan arena resident only while that plan is the last one run. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { native } from "../../../native.js";
import { DType } from "../../tensor/dtype.js";
import { Graph } from "../../tensor/graph.js";
import { CpuBackend } from "./index.js";

describe("cpu plan arenas", () => {
  it("releaseScratch empties alloc's large buffers and nothing else", () => {
    const big = new Float32Array(native().alloc(2 << 20));
    big.fill(3);
    assert.equal(native().releaseScratch(big.buffer as ArrayBuffer), true);
    assert.equal(big[0], 0);
    assert.equal(big[big.length - 1], 0);
    const small = new Float32Array(native().alloc(4096));
    small.fill(3);
    assert.equal(native().releaseScratch(small.buffer as ArrayBuffer), false);
    assert.equal(small[7], 3);
    const js = new Float32Array(1 << 20).fill(3);
    assert.equal(native().releaseScratch(js.buffer), false);
    assert.equal(js[7], 3);
  });

  it("running another plan, large or small, empties the last large arena", async () => {
    const b = new CpuBackend();
    // x + x over [rows, 1024] f32: arenas of 2 MiB and more.
    const plan = (rows: number) => {
      const g = new Graph();
      const x = g.bind(
        "x",
        DType.F32,
        rows,
        1024,
        new Float32Array(rows * 1024).fill(1).buffer as ArrayBuffer,
      );
      const y = g.output(g.add(x, x));
      return { p: b.prepare(g), y };
    };
    const a = plan(512),
      c = plan(768),
      tiny = plan(4);
    await a.p.execute();
    assert.equal(a.p.read(a.y)[0], 2);
    await a.p.execute(); // the last large arena run again: kept
    assert.equal(a.p.read(a.y)[5], 2);
    await tiny.p.execute(); // a decode step after a prompt: the prompt's arena goes
    assert.equal(tiny.p.read(tiny.y)[0], 2);
    assert.equal(a.p.read(a.y)[0], 0, "the large arena was given back");
    await tiny.p.execute(); // small arenas stay
    assert.equal(tiny.p.read(tiny.y)[0], 2);
    await a.p.execute();
    assert.equal(a.p.read(a.y)[0], 2);
    await c.p.execute();
    assert.equal(c.p.read(c.y)[0], 2);
    assert.equal(a.p.read(a.y)[0], 0, "the earlier arena was given back");
    await a.p.execute(); // and it still runs
    assert.equal(a.p.read(a.y)[0], 2);
    assert.equal(c.p.read(c.y)[0], 0);
  });
});
