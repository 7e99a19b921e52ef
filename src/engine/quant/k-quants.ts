/**
 * The K-quants: 256-element super-blocks. Q4_K and Q5_K carry eight 6-bit sub-block
 * scales and mins under f16 super-scales (x = d*sc*q - dmin*m); Q6_K carries sixteen int8
 * sub-block scales (x = d*sc*(q - 32)).
 */
import { DType } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from "./k-quantize.js";
import { f16At } from "./small-floats.js";

/** Sub-block scale and min j (0..7) from the 12 packed bytes at `o`. */
export function scaleMinK4(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 15) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

export const q4_K: QuantFormat = {
  dtype: DType.Q4_K,
  blockSize: 256,
  blockBytes: 144,
  f16Scales: [0, 2],
  quantize: quantizeQ4K,
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 256; b++) {
      const o = b * 144,
        d = f16At(src, o),
        dmin = f16At(src, o + 2);
      for (let c = 0; c < 4; c++) {
        const [sc0, m0] = scaleMinK4(src, o + 4, 2 * c),
          [sc1, m1] = scaleMinK4(src, o + 4, 2 * c + 1);
        for (let l = 0; l < 32; l++) {
          const q = src[o + 16 + 32 * c + l]!;
          dst[b * 256 + 64 * c + l] = d * sc0 * (q & 15) - dmin * m0;
          dst[b * 256 + 64 * c + 32 + l] = d * sc1 * (q >> 4) - dmin * m1;
        }
      }
    }
  },
};

export const q5_K: QuantFormat = {
  dtype: DType.Q5_K,
  blockSize: 256,
  blockBytes: 176,
  f16Scales: [0, 2],
  quantize: quantizeQ5K,
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 256; b++) {
      const o = b * 176,
        d = f16At(src, o),
        dmin = f16At(src, o + 2);
      for (let c = 0; c < 4; c++) {
        const [sc0, m0] = scaleMinK4(src, o + 4, 2 * c),
          [sc1, m1] = scaleMinK4(src, o + 4, 2 * c + 1);
        for (let l = 0; l < 32; l++) {
          const q = src[o + 48 + 32 * c + l]!,
            h = src[o + 16 + l]!;
          dst[b * 256 + 64 * c + l] = d * sc0 * ((q & 15) | (((h >> (2 * c)) & 1) << 4)) - dmin * m0;
          dst[b * 256 + 64 * c + 32 + l] = d * sc1 * ((q >> 4) | (((h >> (2 * c + 1)) & 1) << 4)) - dmin * m1;
        }
      }
    }
  },
};

export const q6_K: QuantFormat = {
  dtype: DType.Q6_K,
  blockSize: 256,
  blockBytes: 210,
  f16Scales: [208],
  quantize: quantizeQ6K,
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 256; b++) {
      const o = b * 210,
        d = f16At(src, o + 208);
      const sc = (e: number) => (src[o + 192 + (e >> 4)]! << 24) >> 24;
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const L = src[o + 64 * h + l]!,
            L2 = src[o + 64 * h + 32 + l]!,
            H = src[o + 128 + 32 * h + l]!;
          const e = b * 256 + 128 * h;
          const put = (k: number, q: number) => (dst[e + k + l] = d * sc(128 * h + k + l) * (q - 32));
          put(0, (L & 15) | ((H & 3) << 4));
          put(32, (L2 & 15) | (((H >> 2) & 3) << 4));
          put(64, (L >> 4) | (((H >> 4) & 3) << 4));
          put(96, (L2 >> 4) | (((H >> 6) & 3) << 4));
        }
      }
    }
  },
};
