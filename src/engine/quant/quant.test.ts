/**
 * Bit-exact block formats against the known answers computed with ggml's reference C
 * code (FORMATS.md §12): decoders on patched random blocks, and the reference quantizers
 * on a fixed input row.
 */
import {
  chooseNvfp4TensorScale,
  encodeUe4m3,
  nvfp4Error,
  nvfp4TensorScale,
  quantizeMxfp4,
  quantizeMxfp4Reference,
  quantizeNvfp4,
  quantizeNvfp4Reference,
} from "./fp4-quantize.js";
import { mxfp4, nvfp4 } from "./fp4.js";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { DType } from "../tensor/dtype.js";
import { quantFormat } from "./index.js";
import { native } from "../../native.js";

const sha = (a: ArrayBufferView) =>
  createHash("sha256")
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest("hex");

function lcgBytes(n: number): Uint8Array {
  let s = 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(1103515245, s) + 12345) >>> 0;
    out[i] = (s >>> 16) & 0xff;
  }
  return out;
}

const DECODE: [DType, string, number[], (b: Uint8Array) => void][] = [
  [
    DType.Q8_0,
    "f7ad0b738279d06ea6f67c571aeebfd0381c7852b34b26df18eb42bd8976cdd6",
    [-31.75, 26.75, 18.75, -1.25],
    (b) => b.set([0x00, 0x34], 0),
  ],
  [
    DType.Q4_0,
    "d3fafab5fc061ca542855612dc3ba97bdc15f9c749eeb6801ac03a6409d5770a",
    [-1.75, 0.75, 0.75, 0.75],
    (b) => b.set([0x00, 0x34], 0),
  ],
  [
    DType.Q4_1,
    "6bb1ca20ee2d2f4712fe3a8c042807c2389751c1c8bc69e6148422866f86c2a8",
    [2.875, 2.875, 0.625, 2.875],
    (b) => b.set([0x00, 0x34, 0x00, 0x30], 0),
  ],
  [
    DType.Q5_0,
    "2b05b548a3c9a15a18912bf2accc2a1cc106909c0603ab40bcdd8348e8e10f11",
    [0.5, -1.25, -3, -2.5],
    (b) => b.set([0x00, 0x34], 0),
  ],
  [
    DType.Q5_1,
    "80a97520e83530df93a9abd88c9218e65af3d91f6dfbce017a483fe9673e5627",
    [5.125, 5.625, 3.375, 7.875],
    (b) => b.set([0x00, 0x34, 0x00, 0x30], 0),
  ],
  [
    DType.Q4_K,
    "b363f3781634a6bd4f484da67c937264147e623653e22b460ef4b0c6ab1a4fda",
    [0.25, 38.75, 0.25, 36],
    (b) => b.set([0x00, 0x34, 0x00, 0x30], 0),
  ],
  [
    DType.Q5_K,
    "143ac0c0558e6f580ce2e37f7d9b1c13f7ae7227e13a132000723a5bfde237a5",
    [69, 47, 66.25, 19.5],
    (b) => b.set([0x00, 0x34, 0x00, 0x30], 0),
  ],
  [
    DType.Q6_K,
    "e68bda29058a13cdfb58dbcec60a51a0bf5754fed9d66620ed49d1dacb9218f8",
    [-144, 48, 360, -264],
    (b) => b.set([0x00, 0x34], 208),
  ],
  [
    DType.MXFP4,
    "e8a2019b66fcca9f47e2acdd203540ff75fe7115a998791dcea452a395b2ea1f",
    [-1048576, 131072, -393216, -393216],
    (b) => (b[0] = 100 + (b[0]! % 51)),
  ],
  [
    DType.NVFP4,
    "7d00e0beb0c664d037b098de70c771e2bc45a238a119acd751c1d95fd39c6b3f",
    [-5.625, -5.625, 3.75, -5.625],
    (b) => [0, 1, 2, 3].forEach((i) => (b[i] = b[i]! % 0x7f)),
  ],
];

describe("block decoders are bit-exact with ggml", () => {
  for (const [dt, hash, first, patch] of DECODE) {
    it(DType[dt], () => {
      const q = quantFormat(dt)!;
      const bytes = lcgBytes(16 * q.blockBytes);
      for (let b = 0; b < 16; b++) patch(bytes.subarray(b * q.blockBytes, (b + 1) * q.blockBytes));
      const out = new Float32Array(16 * q.blockSize);
      q.dequantize(bytes, out);
      assert.deepEqual(Array.from(out.subarray(0, 4)), first);
      assert.equal(sha(out), hash);
    });
  }
});

/** The 4096-value input row of FORMATS.md §12. */
function inputRow(): Float32Array {
  let s = 12345;
  const x = new Float32Array(4096);
  for (let i = 0; i < 4096; i++) {
    s = (Math.imul(1103515245, s) + 12345) >>> 0;
    const k = s >>> 8;
    x[i] = Math.fround(Math.fround(k / 2 ** 24 - 0.5) * 0.25);
    if (i % 37 === 0) x[i] = Math.fround(x[i]! * 8);
  }
  return x;
}

const QUANTIZE: [DType, string, string][] = [
  [
    DType.Q8_0,
    "481d7f0710ea0df40f09ee09",
    "2dd8b95d3caf6af90a113a592f4538f23f1836855d4c82798ab493cc25ff3d9d",
  ],
  [
    DType.Q4_0,
    "3ead70789779878987877977",
    "37f98c42a7edb17eec733525682f155c8346d2f00c96f00b598c1204794f899d",
  ],
  [
    DType.Q4_K,
    "6a147a23f0d2e23709c8c836",
    "2810a14ee018ee092067dc9b45d3c920c26eaa50943b5f4f65d3dea11803c6d3",
  ],
  [
    DType.Q5_K,
    "54107a23efd2e23708c8c936",
    "5352ec7bafbe06e38bd491ca8d0808814fd49e3b794e9145e71554f66d2b50be",
  ],
  [
    DType.Q6_K,
    "415edc855d636c8e049e11bf",
    "72f3e8b22e3a5485648a3bd6a5f464b1cfdb5de826852e7fcae58331c03c1541",
  ],
  [
    DType.MXFP4,
    "7c2711911a01999101191110",
    "037327134b161389898218fc174fc3a32a2e6dd45d5d4ee37df90540573af17e",
  ],
  [
    DType.NVFP4,
    "1e0a100aa711020aa1990101",
    "be6a62a7edfc43acfbfc3f2deb794a619a04e96975929b3b1d261f66d3b8ebf5",
  ],
];

describe("reference quantizers are bit-exact with ggml", () => {
  it("the input generator reproduces the published row", () => {
    assert.equal(sha(inputRow()), "fec3f25b6ce282107903c0233dd00c8277f45c448c3aee327cbf0d3a726f9a91");
  });
  for (const [dt, head, hash] of QUANTIZE) {
    it(DType[dt], () => {
      const q = quantFormat(dt)!.quantize!(inputRow());
      assert.equal(Buffer.from(q.subarray(0, 12)).toString("hex"), head);
      assert.equal(sha(q), hash);
    });
  }
});

describe("lmx's FP4 quantizers", () => {
  const row = () => {
    let s = 7;
    const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
    // Heavy-tailed, like real weights: most small, a few large.
    return Float32Array.from({ length: 64 * 256 }, () => r() * r() * r() * 0.2);
  };
  const mse = (x: Float32Array, y: Float32Array, k = 1) =>
    x.reduce((a, v, i) => a + (v - y[i]! * k) ** 2, 0) / x.length;

  it("NVFP4 with a tensor scale and searched block scales has less error than ggml's rounding", () => {
    const x = row();
    const ref = new Float32Array(x.length);
    nvfp4.dequantize(quantizeNvfp4Reference(x), ref);
    const g = chooseNvfp4TensorScale(x);
    const ours = new Float32Array(x.length);
    nvfp4.dequantize(quantizeNvfp4(x, g), ours);
    assert.ok(mse(x, ours, g) < 0.8 * mse(x, ref), `${mse(x, ours, g)} vs ${mse(x, ref)}`);
    // The searched tensor scale is no worse than ModelOpt's amax/(6·448), one of its candidates.
    assert.ok(nvfp4Error(x, g) <= nvfp4Error(x, nvfp4TensorScale(x)));
  });

  it("MXFP4 with searched exponents has no more error than ggml's", () => {
    const x = row();
    const a = new Float32Array(x.length),
      b = new Float32Array(x.length);
    mxfp4.dequantize(quantizeMxfp4Reference(x), a);
    mxfp4.dequantize(quantizeMxfp4(x), b);
    assert.ok(mse(x, b) <= mse(x, a), `${mse(x, b)} vs ${mse(x, a)}`);
  });

  it("the native quantizers write the same bytes as these, with and without importance", () => {
    // A tensor of 3 rows x 4096 columns with large and tiny values (subnormal block scales)
    // and a zero block; 2x the sampled 1024 blocks, so the tensor scale is judged on a sample.
    const cols = 4096,
      rows = 34;
    const x = new Float32Array(rows * cols);
    const base = row();
    for (let i = 0; i < x.length; i++)
      x[i] = base[i % base.length]! * (i % 3000 < 64 ? 1e-4 : i % 777 === 5 ? 40 : 1);
    x.fill(0, 128, 192);
    let s = 3;
    const imp = Float32Array.from(
      { length: cols },
      () => ((s = (s * 69069 + 1) % 2 ** 32) / 2 ** 32) * 4 + 0.01,
    );
    const wide = (w: Float32Array) => Float32Array.from({ length: x.length }, (_, i) => w[i % cols]!);
    for (const w of [undefined, imp]) {
      const g = chooseNvfp4TensorScale(x, w && wide(w));
      assert.equal(native().nvfp4TensorScale(x, cols, w ?? null), g, "tensor scale");
      assert.equal(
        sha(native().quantizeFp4(DType.NVFP4, x, cols, w ?? null, g)),
        sha(quantizeNvfp4(x, g, w && wide(w))),
      );
      assert.equal(
        sha(native().quantizeFp4(DType.MXFP4, x, cols, w ?? null, 1)),
        sha(quantizeMxfp4(x, w && wide(w))),
      );
    }
    assert.throws(() => native().quantizeFp4(DType.Q4_K, x, cols, null, 1), /NVFP4 or MXFP4/);
    assert.throws(() => native().quantizeFp4(DType.NVFP4, x, 100, null, 1), /whole blocks/);
    assert.throws(() => native().nvfp4TensorScale(x, cols, new Float32Array(3)), /importance/);
  });

  it("encodes UE4M3 as ggml does at the edges", () => {
    assert.equal(encodeUe4m3(0), 0);
    assert.equal(encodeUe4m3(-1), 0);
    assert.equal(encodeUe4m3(NaN), 0);
    assert.equal(encodeUe4m3(1000), 0x7e);
    assert.equal(encodeUe4m3(256), 0x7e);
    assert.equal(encodeUe4m3(1), 0x38);
    assert.equal(encodeUe4m3(2 ** -9), 1);
  });
});

describe("native quantizers", () => {
  it("write the same bytes as the TypeScript ones, with and without importance", () => {
    // Rows of 768 (3 super-blocks): heavy-tailed values, a zero block, tiny values.
    let s = 17;
    const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
    const cols = 768,
      rows = 12;
    const x = Float32Array.from(
      { length: cols * rows },
      (_, i) => r() * r() * r() * (i % 1000 < 40 ? 1e-5 : 0.3),
    );
    x.fill(0, 256, 512);
    const imp = Float32Array.from({ length: cols }, (_, k) => (k % 37 === 0 ? 300 : 0.5 + Math.abs(r())));
    const wide = Float32Array.from({ length: x.length }, (_, i) => imp[i % cols]!);
    for (const dt of [DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q4_K, DType.Q5_K, DType.Q6_K]) {
      const q = quantFormat(dt)!;
      assert.equal(
        sha(native().quantizeRows(dt, x, cols, null)),
        sha(q.quantize!(x, undefined, cols)),
        `${DType[dt]}`,
      );
      if (dt !== DType.Q8_0)
        assert.equal(
          sha(native().quantizeRows(dt, x, cols, imp)),
          sha(q.quantize!(x, wide, cols)),
          `${DType[dt]} + imatrix`,
        );
    }
    assert.throws(() => native().quantizeRows(DType.NVFP4, x, cols, null), /no native quantizer/);
    assert.throws(() => native().quantizeRows(DType.Q4_K, x, 100, null), /whole blocks/);
  });
});

describe("Q4_1's reference quantizer", () => {
  it("rounds every value to within half a step of its block's grid", () => {
    let s = 5;
    const x = Float32Array.from(
      { length: 32 * 64 },
      () => ((s = (s * 69069 + 1) % 2 ** 32) / 2 ** 32 - 0.3) * 3,
    );
    const q = quantFormat(DType.Q4_1)!;
    const y = new Float32Array(x.length);
    q.dequantize(q.quantize!(x), y);
    for (let b = 0; b < x.length / 32; b++) {
      const block = x.subarray(32 * b, 32 * b + 32);
      const step = (Math.max(...block) - Math.min(...block)) / 15;
      for (let j = 0; j < 32; j++)
        assert.ok(
          Math.abs(y[32 * b + j]! - block[j]!) <= step * 0.5 + 2e-3 * step + 1e-3,
          `block ${b} value ${j}`,
        );
    }
  });
});

describe("importance-weighted K-quants, Q4_0 and Q4_1", () => {
  // Rows of 512 with a few strongly driven input columns, as an imatrix shows them.
  let s = 11;
  const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
  const K = 512,
    rows = 32;
  const x = Float32Array.from({ length: K * rows }, () => r() * r() * 0.1);
  const columns = Float32Array.from({ length: K }, (_, k) => (k % 37 === 0 ? 400 : 1 + Math.abs(r())));
  const qw = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) qw.set(columns, i * K);
  const weighted = (y: Float32Array) => x.reduce((a, v, i) => a + qw[i]! * (v - y[i]!) ** 2, 0);

  for (const dt of [DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.Q4_0, DType.Q4_1]) {
    it(`${DType[dt]}: less importance-weighted error than the reference, valid blocks`, () => {
      const q = quantFormat(dt)!;
      const plain = new Float32Array(x.length),
        imat = new Float32Array(x.length);
      q.dequantize(q.quantize!(x), plain);
      const bytes = q.quantize!(x, qw, K);
      assert.equal(bytes.length, (x.length / q.blockSize) * q.blockBytes);
      q.dequantize(bytes, imat);
      assert.ok(imat.every(Number.isFinite));
      assert.ok(weighted(imat) < 0.9 * weighted(plain), `${weighted(imat)} vs ${weighted(plain)}`);
    });
  }
});
