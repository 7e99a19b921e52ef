/** Every block-quantized weight format lmx reads, by dtype. */
import type { DType } from "../tensor/dtype.js";
import { mxfp4, nvfp4 } from "./fp4.js";
import type { QuantFormat } from "./format.js";
import { nvfp4_I, q4_K_I, q6_K_I, q8_0_I } from "./interleaved.js";
import { q4_K, q5_K, q6_K } from "./k-quants.js";
import { q4_0, q4_1 } from "./q4-0.js";
import { q5_0, q5_1 } from "./q5-0.js";
import { q8_0 } from "./q8-0.js";

export type { QuantFormat } from "./format.js";

export const QUANT_FORMATS: readonly QuantFormat[] = [
  q4_0,
  q4_1,
  q5_0,
  q5_1,
  q8_0,
  q4_K,
  q5_K,
  q6_K,
  mxfp4,
  nvfp4,
  q4_K_I,
  q6_K_I,
  nvfp4_I,
  q8_0_I,
];

export function quantFormat(dtype: DType): QuantFormat | undefined {
  return QUANT_FORMATS.find((q) => q.dtype === dtype);
}
