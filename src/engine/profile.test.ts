/** Profile keys: every weight type's matmul has its own key, apart from sync and sampling. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBlocks, uniform } from "../testing/random.js";
import { CpuBackend } from "./backends/cpu/index.js";
import { profileKind } from "./profile.js";
import { BLOCKS, DType } from "./tensor/dtype.js";
import { Graph } from "./tensor/graph.js";

describe("profile keys", () => {
  it("name every dtype's matmuls as matmuls", () => {
    for (const dt of Object.values(DType).filter((v): v is DType => typeof v === "number")) {
      assert.equal(profileKind(16 + 2 * dt), `matmul ${DType[dt]} gemm`);
      assert.equal(profileKind(16 + 2 * dt + 1), `matmul ${DType[dt]} gemv`);
    }
  });

  it("the native executor files a matmul of the highest dtype under its own name", async () => {
    const cpu = new CpuBackend();
    const K = 256,
      N = 8;
    const g = new Graph();
    const x = g.bind("x", DType.F32, 1, K, uniform(K, 1, 3).buffer as ArrayBuffer);
    const w = g.bind(
      "w",
      DType.NVFP4_I,
      N,
      K,
      randomBlocks(DType.NVFP4_I, (N * K) / BLOCKS[DType.NVFP4_I]!.size, 4).buffer as ArrayBuffer,
    );
    g.output(g.matmul(x, w));
    const p = cpu.prepare(g);
    cpu.profile(true);
    await p.execute();
    cpu.profile(false);
    const kinds = cpu.takeProfile().map((e) => e.kind);
    assert.ok(kinds.includes("matmul NVFP4_I gemv"), kinds.join(", "));
  });
});
