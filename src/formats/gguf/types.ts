/**
 * ggml tensor types as GGUF stores them. Adding a quantized type is one entry here (block
 * size and bytes per block) plus a kernel; `dtype` is set for types the engine computes with.
 */
import { DType } from "../../engine/tensor/dtype.js";
import type { StringTable } from "../string-table.js";

export interface GgmlType {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly blockBytes: number;
  readonly dtype?: DType;
}

const T = (id: number, name: string, blockSize: number, blockBytes: number, dtype?: DType): GgmlType => ({
  id,
  name,
  blockSize,
  blockBytes,
  dtype,
});

export const GGML_TYPES: readonly GgmlType[] = [
  T(0, "F32", 1, 4, DType.F32),
  T(1, "F16", 1, 2, DType.F16),
  T(2, "Q4_0", 32, 18, DType.Q4_0),
  T(3, "Q4_1", 32, 20, DType.Q4_1),
  T(6, "Q5_0", 32, 22, DType.Q5_0),
  T(7, "Q5_1", 32, 24, DType.Q5_1),
  T(8, "Q8_0", 32, 34, DType.Q8_0),
  T(9, "Q8_1", 32, 36),
  T(10, "Q2_K", 256, 84),
  T(11, "Q3_K", 256, 110),
  T(12, "Q4_K", 256, 144, DType.Q4_K),
  T(13, "Q5_K", 256, 176, DType.Q5_K),
  T(14, "Q6_K", 256, 210, DType.Q6_K),
  T(15, "Q8_K", 256, 292),
  T(24, "I8", 1, 1),
  T(25, "I16", 1, 2),
  T(26, "I32", 1, 4, DType.I32),
  T(27, "I64", 1, 8),
  T(28, "F64", 1, 8),
  T(30, "BF16", 1, 2, DType.BF16),
  T(39, "MXFP4", 32, 17, DType.MXFP4),
  T(40, "NVFP4", 64, 36, DType.NVFP4),
];

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));

export function ggmlType(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

export function ggmlTypeOf(dtype: DType): GgmlType {
  const t = GGML_TYPES.find((x) => x.dtype === dtype);
  if (!t) throw new Error(`no ggml type for dtype ${dtype}`);
  return t;
}

/** GGUF metadata value types. */
export enum GgufValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;
/** String arrays read from a file are StringTables (see string-table.ts); other arrays are plain or typed. */
export type GgufValue = GgufScalar | GgufScalar[] | StringTable | Int32Array | Float32Array | Uint32Array;

/** A metadata entry with its exact GGUF type (the writer needs it; readers are lenient). */
export interface GgufKv {
  key: string;
  type: GgufValueType;
  /** For arrays, the element type. */
  itemType?: GgufValueType;
  value: GgufValue;
}
