/**
 * FP4 (E2M1) block formats as GGUF stores them. MXFP4: 32 codes under an E8M0 power-of-two
 * scale (17 bytes; low nibble = element j, high = j + 16). NVFP4: 64 codes in four
 * sub-blocks of 16, each under a UE4M3 scale (36 bytes; in sub-block s, byte 8s + j holds
 * elements 16s + j and 16s + j + 8). NVFP4's per-tensor scale is a separate tensor.
 */
import { DType } from "../tensor/dtype.js";
import type { QuantFormat } from "./format.js";
import { quantizeMxfp4Reference, quantizeNvfp4Reference } from "./fp4-quantize.js";
import { E2M1, e8m0, ue4m3 } from "./small-floats.js";

export const mxfp4: QuantFormat = {
  dtype: DType.MXFP4,
  blockSize: 32,
  blockBytes: 17,
  f16Scales: [],
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 32; b++) {
      const o = b * 17,
        s = e8m0(src[o]!);
      for (let j = 0; j < 16; j++) {
        dst[b * 32 + j] = E2M1[src[o + 1 + j]! & 15]! * s;
        dst[b * 32 + j + 16] = E2M1[src[o + 1 + j]! >> 4]! * s;
      }
    }
  },
  quantize: quantizeMxfp4Reference,
};

export const nvfp4: QuantFormat = {
  dtype: DType.NVFP4,
  blockSize: 64,
  blockBytes: 36,
  f16Scales: [],
  dequantize(src, dst) {
    for (let b = 0; b < dst.length / 64; b++) {
      const o = b * 36;
      for (let s = 0; s < 4; s++) {
        const d = ue4m3(src[o + s]!);
        for (let j = 0; j < 8; j++) {
          const q = src[o + 4 + 8 * s + j]!;
          dst[b * 64 + 16 * s + j] = E2M1[q & 15]! * d;
          dst[b * 64 + 16 * s + j + 8] = E2M1[q >> 4]! * d;
        }
      }
    }
  },
  quantize: quantizeNvfp4Reference,
};
