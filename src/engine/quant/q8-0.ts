/** Q8_0: 32 int8 codes with one f16 scale (34 bytes): x = q * d. */
import { DType, f32ToF16 } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
import { f16At } from "./small-floats.js";

const f = Math.fround;

export const q8_0: QuantFormat = {
  dtype: DType.Q8_0,
  blockSize: 32,
  blockBytes: 34,
  f16Scales: [0],
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 34,
        d = f16At(src, o);
      for (let j = 0; j < 32; j++) dst[b * 32 + j] = ((src[o + 2 + j]! << 24) >> 24) * d;
    }
  },
  quantize(x) {
    const out = new Uint8Array((x.length / 32) * 34);
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      const d = f(amax / 127),
        id = d ? f(1 / d) : 0;
      const h = f32ToF16(d);
      out[b * 34] = h & 255;
      out[b * 34 + 1] = h >> 8;
      for (let j = 0; j < 32; j++) {
        const v = f(x[b * 32 + j]! * id); // roundf: ties away from zero
        out[b * 34 + 2 + j] = (Math.sign(v) * Math.floor(Math.abs(v) + 0.5)) & 255;
      }
    }
    return out;
  },
};
