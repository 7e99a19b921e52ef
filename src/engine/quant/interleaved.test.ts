/**
 * Interleaved K-quants: the TypeScript definition against itself (a lossless reordering)
 * and the native interleaver against it. The kernels that read them are compared with the
 * reference backend in backends/backend.case.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { native } from "../../native.js";
import { randomBlocks } from "../../testing/random.js";
import { DType } from "../tensor/dtype.js";
import { deinterleave, interleave, slotElement } from "./interleaved.js";
import { quantFormat } from "./index.js";

const pairs = [
  [DType.Q4_K, DType.Q4_K_I, 144],
  [DType.Q6_K, DType.Q6_K_I, 210],
] as const;

describe("interleaved K-quants", () => {
  it("place every element of a super-block once", () => {
    const seen = new Set<number>();
    for (let n = 0; n < 8; n++) for (let b = 0; b < 32; b++) seen.add(slotElement(n, b));
    assert.equal(seen.size, 256);
    assert.equal(Math.max(...seen), 255);
  });

  for (const [base, il, bytes] of pairs) {
    it(`${DType[il]}: a reordering of ${DType[base]} that decodes to the same values`, () => {
      const src = randomBlocks(base, 9, 5 + base);
      const packed = interleave(base, src);
      assert.notDeepEqual(packed, src);
      assert.deepEqual(deinterleave(il, packed), src);
      const a = new Float32Array(9 * 256),
        b = new Float32Array(9 * 256);
      quantFormat(base)!.dequantize(src, a);
      quantFormat(il)!.dequantize(packed, b);
      assert.deepEqual(b, a);
      // Scales, mins and d stay where GGUF has them.
      for (let k = 0; k < 9; k++) {
        const o = k * bytes;
        const keep = base === DType.Q4_K ? [0, 16] : [192, 210];
        assert.deepEqual(
          packed.subarray(o + keep[0]!, o + keep[1]!),
          src.subarray(o + keep[0]!, o + keep[1]!),
        );
      }
    });
  }

  it("the native interleaver writes the TypeScript one's bytes, for the types it takes", () => {
    const tensors = [
      { dt: DType.Q4_K, rows: 3, cols: 512 },
      { dt: DType.Q8_0, rows: 2, cols: 64 },
      { dt: DType.Q6_K, rows: 5, cols: 768 },
    ].map((t, i) => ({
      ...t,
      bytes: randomBlocks(t.dt, (t.rows * t.cols) / (t.dt === DType.Q8_0 ? 32 : 256), 20 + i),
    }));
    // Each tensor at an odd offset of a larger buffer, as in a file.
    const bufs = tensors.map((t) => {
      const b = new Uint8Array(t.bytes.length + 37);
      b.set(t.bytes, 37);
      return b.buffer;
    });
    const r = native().interleaveWeights(tensors.map((t, i) => [bufs[i]!, 37, t.dt, t.rows, t.cols]));
    if (!native().cpuFeatures().includes("avx2")) {
      assert.equal(r, undefined);
      return;
    }
    assert.ok(r);
    assert.equal(r.offsets[1], -1);
    assert.equal(r.dtypes[1], 0);
    for (const i of [0, 2]) {
      const t = tensors[i]!;
      assert.equal(r.dtypes[i], t.dt === DType.Q4_K ? DType.Q4_K_I : DType.Q6_K_I);
      assert.equal(r.offsets[i]! % 64, 0);
      const got: Uint8Array = new Uint8Array(r.buffer, r.offsets[i]!, t.bytes.length);
      assert.deepEqual(got, interleave(t.dt as DType.Q4_K | DType.Q6_K, t.bytes));
    }
    // The sources were plain memory, not a model file's: left as they were.
    assert.deepEqual(new Uint8Array(bufs[0]!, 37, tensors[0]!.bytes.length), tensors[0]!.bytes);
  });
});
