/**
 * Interleaved K-quants: the TypeScript definition against itself (a lossless reordering)
 * and the native interleaver against it. The kernels that read them are compared with the
 * reference backend in backends/backend.case.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { native } from "../../native.js";
import { randomBlocks } from "../../testing/random.js";
import { BLOCKS, DType } from "../tensor/dtype.js";
import {
  deinterleave,
  deinterleaveNvfp4,
  deinterleaveQ8_0,
  groupRows,
  groupRows16,
  groupRows16Q6,
  interleave,
  interleaveNvfp4,
  interleaveQ8_0,
  r16Row,
  r16RowQ6,
  slotElement,
} from "./interleaved.js";
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

  it("NVFP4_I: pairs of NVFP4 blocks that decode to the same values, with every scale byte", () => {
    const src = randomBlocks(DType.NVFP4, 128, 3);
    for (let b = 0; b < 128; b++) for (let s = 0; s < 4; s++) src[36 * b + s] = (4 * b + s) & 0xff;
    const packed = interleaveNvfp4(src);
    const a = new Float32Array(128 * 64),
      b = new Float32Array(128 * 64),
      c = new Float32Array(128 * 64);
    quantFormat(DType.NVFP4)!.dequantize(src, a);
    quantFormat(DType.NVFP4_I)!.dequantize(packed, b);
    quantFormat(DType.NVFP4)!.dequantize(deinterleaveNvfp4(packed), c);
    // The same numbers (a zero scale over negative codes decoded to -0 before, +0 now).
    const plus = (x: Float32Array) => x.map((v) => v + 0);
    assert.deepEqual(plus(b), plus(a));
    assert.deepEqual(plus(c), plus(a));
    // Every scale byte as the decode dot reads it, (b << 20) + (116 << 23) as an f32, is
    // half the UE4M3 value (zero and NaN: byte 0, over zeroed codes).
    const f = new Float32Array(1),
      u = new Uint32Array(f.buffer),
      v = new Float32Array(64);
    for (let p = 0; p < 64; p++)
      for (let k = 0; k < 8; k++) {
        const byte = packed[72 * p + k]!,
          ue = src[36 * (2 * p + (k >> 2)) + (k & 3)]!;
        const one = new Uint8Array(36).fill(0x22, 4); // every code 1.0 (E2M1 code 2)
        one[0] = ue;
        quantFormat(DType.NVFP4)!.dequantize(one, v);
        u[0] = ((byte << 20) + (116 << 23)) >>> 0;
        assert.equal(byte ? 2 * f[0]! : 0, v[0], `scale byte ${ue}`);
      }
  });

  it("Q8_0_I: groups of 8 Q8_0 blocks, scales first, that decode to the same values", () => {
    const src = randomBlocks(DType.Q8_0, 24, 11);
    const packed = interleaveQ8_0(src);
    assert.deepEqual(deinterleaveQ8_0(packed), src);
    for (let g = 0; g < 3; g++)
      for (let b = 0; b < 8; b++) {
        const o = 272 * g,
          blk = 34 * (8 * g + b);
        assert.deepEqual(packed.subarray(o + 2 * b, o + 2 * b + 2), src.subarray(blk, blk + 2));
        assert.deepEqual(packed.subarray(o + 16 + 32 * b, o + 48 + 32 * b), src.subarray(blk + 2, blk + 34));
      }
    const a = new Float32Array(24 * 32),
      b = new Float32Array(24 * 32);
    quantFormat(DType.Q8_0)!.dequantize(src, a);
    quantFormat(DType.Q8_0_I)!.dequantize(packed, b);
    assert.deepEqual(b, a);
  });

  it("Q4_K_R16: groups of 16 Q4_K rows that give every row back, scales and mins at every value", () => {
    const rows = 32,
      cols = 768;
    const src = randomBlocks(DType.Q4_K, (rows * cols) / 256, 17);
    // Every 6-bit value in every field: scale/min byte patterns that sweep 0..63.
    for (let k = 0; k < (rows * cols) / 256; k++)
      for (let i = 0; i < 12; i++) src[144 * k + 4 + i] = (k * 13 + i * 29) & 0xff;
    const packed = groupRows16(src, rows, cols);
    assert.equal(packed.length, src.length);
    assert.notDeepEqual(packed, src);
    for (let r = 0; r < rows; r++)
      assert.deepEqual(r16Row(packed, r, cols), src.subarray(r * 432, (r + 1) * 432), `row ${r}`);
    assert.throws(() => groupRows16(src.subarray(0, 8 * 432), 8, cols), /groups of 16 rows/);
  });

  it("Q6_K_R16: groups of 16 Q6_K rows that give every row back", () => {
    const rows = 32,
      cols = 512;
    const src = randomBlocks(DType.Q6_K, (rows * cols) / 256, 19);
    const packed = groupRows16Q6(src, rows, cols);
    assert.equal(packed.length, src.length);
    assert.notDeepEqual(packed, src);
    for (let r = 0; r < rows; r++)
      assert.deepEqual(r16RowQ6(packed, r, cols), src.subarray(r * 420, (r + 1) * 420), `row ${r}`);
    assert.throws(() => groupRows16Q6(src.subarray(0, 8 * 420), 8, cols), /groups of 16 rows/);
  });

  it("the native interleaver writes the TypeScript one's bytes, for the types it takes", () => {
    const tensors = [
      { dt: DType.Q4_K, rows: 3, cols: 512 },
      { dt: DType.Q8_0, rows: 2, cols: 64 },
      { dt: DType.Q6_K, rows: 5, cols: 768 },
      { dt: DType.NVFP4, rows: 3, cols: 384 },
      { dt: DType.NVFP4, rows: 3, cols: 192 },
      { dt: DType.Q8_0, rows: 3, cols: 512 },
      { dt: DType.Q4_K, rows: 32, cols: 512 },
      { dt: DType.Q6_K, rows: 16, cols: 768 },
    ].map((t, i) => ({
      ...t,
      bytes: randomBlocks(t.dt, (t.rows * t.cols) / BLOCKS[t.dt]!.size, 20 + i),
    }));
    // Zero and NaN scales of NVFP4 sub-blocks (their codes must come out zeroed).
    for (const [block, sub, byte] of [
      [1, 0, 0x00],
      [2, 2, 0x7f],
      [5, 1, 0xff],
      [6, 3, 0x80],
    ] as const)
      tensors[3]!.bytes[36 * block + sub] = byte;
    // Each tensor at an odd offset of a larger buffer, as in a file.
    const bufs = tensors.map((t) => {
      const b = new Uint8Array(t.bytes.length + 37);
      b.set(t.bytes, 37);
      return b.buffer;
    });
    const r = native().interleaveWeights(tensors.map((t, i) => [bufs[i]!, 37, t.dt, t.rows, t.cols]));
    if (native().simdPath() === "scalar") {
      assert.equal(r, undefined);
      return;
    }
    assert.ok(r);
    // Q8_0 rows that are not whole groups of 8 blocks stay Q8_0; NVFP4 rows of an odd
    // number of blocks stay NVFP4.
    for (const i of [1, 4]) {
      assert.equal(r.offsets[i], -1);
      assert.equal(r.dtypes[i], 0);
    }
    // K-quant matrices of whole groups of 16 rows become Q4_K_R16 / Q6_K_R16, others Q4_K_I / Q6_K_I.
    const want = [
      DType.Q4_K_I,
      0,
      DType.Q6_K_I,
      DType.NVFP4_I,
      0,
      DType.Q8_0_I,
      DType.Q4_K_R16,
      DType.Q6_K_R16,
    ];
    for (const i of [0, 2, 3, 5, 6, 7]) {
      const t = tensors[i]!;
      assert.equal(r.dtypes[i], want[i]);
      assert.equal(r.offsets[i]! % 64, 0);
      const got: Uint8Array = new Uint8Array(r.buffer, r.offsets[i]!, t.bytes.length);
      const ts =
        t.dt === DType.NVFP4
          ? interleaveNvfp4(t.bytes)
          : t.dt === DType.Q8_0
            ? interleaveQ8_0(t.bytes)
            : want[i] === DType.Q4_K_R16 || want[i] === DType.Q6_K_R16
              ? groupRows(want[i] as DType.Q4_K_R16 | DType.Q6_K_R16, t.bytes, t.rows, t.cols)
              : interleave(t.dt as DType.Q4_K, t.bytes);
      assert.deepEqual(got, ts);
    }
    // The sources were plain memory, not a model file's: left as they were.
    assert.deepEqual(new Uint8Array(bufs[0]!, 37, tensors[0]!.bytes.length), tensors[0]!.bytes);
  });
});

describe("interleaved weights in huge pages", () => {
  it("what the load leaves in 4 KiB pages is collapsed in the background, bytes unchanged", async (t) => {
    if (native().simdPath() === "scalar") return t.skip("no interleaved kernels on this CPU");
    if (process.env.LMX_HUGE_PAGES === "0") return t.skip("huge pages turned off (LMX_HUGE_PAGES=0)");
    // No prefault budget: every 2 MiB page goes to the background thread. Q4_K rows of
    // 4096 (2304 bytes) x 4096 make 9 MiB, four whole huge pages at least.
    const rows = 4096,
      cols = 4096;
    const src = randomBlocks(DType.Q4_K, (rows * cols) / 256, 77);
    const before = native().hugePages();
    process.env.LMX_HUGE_PAGE_BUDGET_MS = "0";
    let r: ReturnType<ReturnType<typeof native>["interleaveWeights"]>;
    try {
      r = native().interleaveWeights([[src.buffer as ArrayBuffer, src.byteOffset, DType.Q4_K, rows, cols]]);
    } finally {
      delete process.env.LMX_HUGE_PAGE_BUDGET_MS;
    }
    assert.ok(r);
    const view = new Uint8Array(r.buffer, r.offsets[0]!, src.length);
    const copy = view.slice();
    // The first group of rows matches the TypeScript grouping (the rest is the same code).
    assert.equal(r.dtypes[0], DType.Q4_K_R16);
    assert.deepEqual(copy.subarray(0, 16 * 2304), groupRows16(src.subarray(0, 16 * 2304), 16, cols));
    let h = native().hugePages();
    for (const t0 = Date.now(); h.pending > 0 && Date.now() - t0 < 20_000; h = native().hugePages())
      await new Promise((res) => setTimeout(res, 10));
    assert.equal(h.pending, 0, "the background collapse finished");
    // Every whole 2 MiB page of the buffer (it starts at one) was tried: collapsed, or
    // refused where the kernel has no huge page free; without MADV_COLLAPSE at all the first
    // refusal drops the rest.
    const huge = 2 << 20,
      tried = h.collapsed + h.failed - before.collapsed - before.failed;
    const unsupported = h.collapsed === before.collapsed && tried === huge;
    assert.ok(tried === Math.floor(r.buffer.byteLength / huge) * huge || unsupported, `${tried} bytes tried`);
    assert.deepEqual(view, copy);
  });
});
