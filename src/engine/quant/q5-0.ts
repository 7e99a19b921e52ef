/** Q5_0 and Q5_1: 4 low bits as in Q4_x plus a fifth bit per element in a 32-bit mask. */
import { DType } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
import { f16At } from "./small-floats.js";

function codes(src: Uint8Array, qh: number, qs: number, out: number[]): void {
  const h = (src[qh]! | (src[qh + 1]! << 8) | (src[qh + 2]! << 16) | (src[qh + 3]! << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    out[j] = (src[qs + j]! & 15) | (((h >>> j) & 1) << 4);
    out[j + 16] = (src[qs + j]! >> 4) | (((h >>> (j + 16)) & 1) << 4);
  }
}

export const q5_0: QuantFormat = {
  dtype: DType.Q5_0,
  blockSize: 32,
  blockBytes: 22,
  f16Scales: [0],
  dequantize(src, dst) {
    const q: number[] = [];
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 22,
        d = f16At(src, o);
      codes(src, o + 2, o + 6, q);
      for (let j = 0; j < 32; j++) dst[b * 32 + j] = (q[j]! - 16) * d;
    }
  },
};

export const q5_1: QuantFormat = {
  dtype: DType.Q5_1,
  blockSize: 32,
  blockBytes: 24,
  f16Scales: [0, 2],
  dequantize(src, dst) {
    const q: number[] = [];
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 24,
        d = f16At(src, o),
        m = f16At(src, o + 2);
      codes(src, o + 4, o + 8, q);
      for (let j = 0; j < 32; j++) dst[b * 32 + j] = q[j]! * d + m;
    }
  },
};
