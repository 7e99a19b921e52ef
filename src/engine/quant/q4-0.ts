/** Q4_0 and Q4_1: 32 4-bit codes (low nibbles = elements 0..15, high = 16..31). */
import { DType, f32ToF16 } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
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
  quantize(x) {
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

export const q4_1: QuantFormat = {
  dtype: DType.Q4_1,
  blockSize: 32,
  blockBytes: 20,
  f16Scales: [0, 2],
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
