/** Q4_0 and Q4_1: 32 4-bit codes (low nibbles = elements 0..15, high = 16..31). */
import { DType, f32ToF16 } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
import { makeQkx2, makeQx } from "./k-quantize.js";
import { f16At } from "./small-floats.js";

const f = Math.fround;

export const q4_0: QuantFormat = {
  dtype: DType.Q4_0,
  blockSize: 32,
  blockBytes: 18,
  f16Scales: [0],
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 18,
        d = f16At(src, o);
      for (let j = 0; j < 16; j++) {
        dst[b * 32 + j] = ((src[o + 2 + j]! & 15) - 8) * d;
        dst[b * 32 + j + 16] = ((src[o + 2 + j]! >> 4) - 8) * d;
      }
    }
  },
  quantize(x, weights, cols = x.length) {
    if (weights) return quantizeQ40Weighted(x, weights, cols);
    const out = new Uint8Array((x.length / 32) * 18);
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0,
        max = 0;
      for (let j = 0; j < 32; j++) {
        const v = x[b * 32 + j]!;
        if (Math.abs(v) > amax) [amax, max] = [Math.abs(v), v];
      }
      const d = f(max / -8),
        id = d ? f(1 / d) : 0;
      const h = f32ToF16(d);
      out[b * 18] = h & 255;
      out[b * 18 + 1] = h >> 8;
      const code = (v: number) => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
      for (let j = 0; j < 16; j++)
        out[b * 18 + 2 + j] = code(x[b * 32 + j]!) | (code(x[b * 32 + 16 + j]!) << 4);
    }
    return out;
  },
};

/**
 * Blocks of 32 with importance weights, as ggml weighs them for Q4_0 and Q4_1 when
 * llama-quantize has an imatrix: each value's error weighs importance x sqrt(sigma² + x²),
 * sigma² the mean square of its row. `block` writes block b from its values and weights.
 */
function eachWeightedBlock(
  x: Float32Array,
  qw: Float32Array,
  cols: number,
  block: (b: number, xb: Float32Array, w: Float32Array) => void,
): void {
  const w = new Float32Array(32);
  for (let r = 0; r < x.length / cols; r++) {
    let sumX2 = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) sumX2 = f(sumX2 + f(x[j]! * x[j]!));
    const sigma2 = f(sumX2 / cols);
    for (let b = (r * cols) / 32; b < ((r + 1) * cols) / 32; b++) {
      const xb = x.subarray(32 * b, 32 * b + 32);
      for (let j = 0; j < 32; j++) w[j] = f(qw[32 * b + j]! * f(Math.sqrt(f(sigma2 + f(xb[j]! * xb[j]!)))));
      block(b, xb, w);
    }
  }
}

function putF16(out: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  out[o] = h & 255;
  out[o + 1] = h >> 8;
}

/** Q4_0 with importance: each block's scale from the weighted signed search (ggml's make_qx_quants). */
function quantizeQ40Weighted(x: Float32Array, qw: Float32Array, cols: number): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 18);
  const L = new Uint8Array(32);
  eachWeightedBlock(x, qw, cols, (b, xb, w) => {
    putF16(out, b * 18, makeQx(xb, 8, L, w));
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = L[j]! | (L[j + 16]! << 4);
  });
  return out;
}

/** Q4_1 with importance: scale and min by the weighted search K-quants use (ggml's make_qkx3_quants). */
function quantizeQ41Weighted(x: Float32Array, qw: Float32Array, cols: number): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 20);
  const L = new Uint8Array(32);
  eachWeightedBlock(x, qw, cols, (b, xb, w) => {
    const [d, negMin] = makeQkx2(xb, w, 15, L, -0.9, 0.05, 36);
    putF16(out, b * 20, d);
    putF16(out, b * 20 + 2, -negMin);
    for (let j = 0; j < 16; j++) out[b * 20 + 4 + j] = L[j]! | (L[j + 16]! << 4);
  });
  return out;
}

export const q4_1: QuantFormat = {
  dtype: DType.Q4_1,
  blockSize: 32,
  blockBytes: 20,
  f16Scales: [0, 2],
  quantize(x, weights, cols = x.length) {
    if (weights) return quantizeQ41Weighted(x, weights, cols);
    // ggml's reference: min and max of each block, codes rounded from (x - min) / d.
    const out = new Uint8Array((x.length / 32) * 20);
    for (let b = 0; b < x.length / 32; b++) {
      let min = Infinity,
        max = -Infinity;
      for (let j = 0; j < 32; j++) {
        const v = x[b * 32 + j]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const d = f(f(max - min) / 15),
        id = d ? f(1 / d) : 0;
      putF16(out, b * 20, d);
      putF16(out, b * 20 + 2, min);
      const code = (v: number) => Math.min(15, Math.trunc(f(f(f(v - min) * id) + 0.5)));
      for (let j = 0; j < 16; j++)
        out[b * 20 + 4 + j] = code(x[b * 32 + j]!) | (code(x[b * 32 + 16 + j]!) << 4);
    }
    return out;
  },
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 20,
        d = f16At(src, o),
        m = f16At(src, o + 2);
      for (let j = 0; j < 16; j++) {
        dst[b * 32 + j] = (src[o + 4 + j]! & 15) * d + m;
        dst[b * 32 + j + 16] = (src[o + 4 + j]! >> 4) * d + m;
      }
    }
  },
};
