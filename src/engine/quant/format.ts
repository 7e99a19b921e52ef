/** The contract of a block-quantized weight format: its layout and a TypeScript reference. */
import type { DType } from "../tensor/dtype.js";

export interface QuantFormat {
  readonly dtype: DType;
  /** Elements per block (along a row). */
  readonly blockSize: number;
  readonly blockBytes: number;
  /** Decodes whole blocks: `dst.length` elements from `src` (bit-exact with ggml). */
  dequantize(src: Uint8Array, dst: Float32Array): void;
  /** Encodes whole blocks with the reference (ggml) quantizer, where lmx has one. */
  quantize?(x: Float32Array): Uint8Array;
}
