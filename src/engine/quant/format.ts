/** The contract of a block-quantized weight format: its layout and a TypeScript reference. */
import type { DType } from "../tensor/dtype.js";

export interface QuantFormat {
  readonly dtype: DType;
  /** Elements per block (along a row). */
  readonly blockSize: number;
  readonly blockBytes: number;
  /** Byte offsets of the f16 scales in a block (checked for NaN/Inf at load). */
  readonly f16Scales: readonly number[];
  /** Decodes whole blocks: `dst.length` elements from `src` (bit-exact with ggml). */
  dequantize(src: Uint8Array, dst: Float32Array): void;
  /**
   * Encodes whole blocks with the reference (ggml) quantizer, where lmx has one; `weights`
   * (one per value: its input column's importance) selects the importance-weighted search
   * where the format has one (K-quants, Q4_0), and is ignored otherwise. `cols` is the row
   * length, for weightings that use whole-row statistics (Q4_0's; default: all of x).
   */
  quantize?(x: Float32Array, weights?: Float32Array, cols?: number): Uint8Array;
}

/**
 * The first block whose scales are not finite (an f16 of exponent 31, or MXFP4's NaN
 * exponent byte 0xFF), or -1. Such a block would turn a whole row of outputs into NaN.
 */
export function firstBadScale(q: QuantFormat, bytes: Uint8Array, mxfp4 = false): number {
  const n = bytes.length / q.blockBytes;
  for (let b = 0; b < n; b++) {
    const o = b * q.blockBytes;
    for (const s of q.f16Scales) if ((bytes[o + s + 1]! & 0x7c) === 0x7c) return b;
    if (mxfp4 && bytes[o] === 0xff) return b;
  }
  return -1;
}
