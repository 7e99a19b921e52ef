/** Element types of tensors and their conversions; ids match native/lmx.h. */

export enum DType {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  I32 = 3,
  Q4_0 = 10,
  Q4_1 = 11,
  Q5_0 = 12,
  Q5_1 = 13,
  Q8_0 = 14,
  Q4_K = 15,
  Q5_K = 16,
  Q6_K = 17,
  MXFP4 = 18,
  NVFP4 = 19,
  /** Q4_K with its codes interleaved for the cpu backend's dots (made at load, never in files). */
  Q4_K_I = 20,
  /** Q6_K likewise (engine/quant/interleaved.ts). */
  Q6_K_I = 21,
  /** Two NVFP4 blocks with interleaved codes and re-encoded scales, likewise. */
  NVFP4_I = 22,
  /** Eight Q8_0 blocks with their scales side by side, likewise. */
  Q8_0_I = 23,
  /**
   * Q4_K rows in groups of 16 whose super-blocks are stored side by side (made at load for
   * matrices of whole groups): a matrix layout, so row r lives in the group of rows r & ~15
   * (engine/quant/interleaved.ts). Each row's share of its group is 144 bytes per 256 elements.
   */
  Q4_K_R16 = 24,
  /** Q6_K rows in groups of 16 likewise (210 bytes per row and 256 elements). */
  Q6_K_R16 = 25,
}

/** Elements and bytes per block of the block-quantized types. */
export const BLOCKS: Partial<Record<DType, { size: number; bytes: number }>> = {
  [DType.Q4_0]: { size: 32, bytes: 18 },
  [DType.Q4_1]: { size: 32, bytes: 20 },
  [DType.Q5_0]: { size: 32, bytes: 22 },
  [DType.Q5_1]: { size: 32, bytes: 24 },
  [DType.Q8_0]: { size: 32, bytes: 34 },
  [DType.Q4_K]: { size: 256, bytes: 144 },
  [DType.Q5_K]: { size: 256, bytes: 176 },
  [DType.Q6_K]: { size: 256, bytes: 210 },
  [DType.MXFP4]: { size: 32, bytes: 17 },
  [DType.NVFP4]: { size: 64, bytes: 36 },
  [DType.Q4_K_I]: { size: 256, bytes: 144 },
  [DType.Q6_K_I]: { size: 256, bytes: 210 },
  [DType.NVFP4_I]: { size: 128, bytes: 72 },
  [DType.Q8_0_I]: { size: 256, bytes: 272 },
  [DType.Q4_K_R16]: { size: 256, bytes: 144 },
  [DType.Q6_K_R16]: { size: 256, bytes: 210 },
};

/** Rows a matrix layout keeps together (Q4_K_R16, Q6_K_R16: 16); 1 for row-major types. */
export function rowGroup(dt: DType): number {
  return dt === DType.Q4_K_R16 || dt === DType.Q6_K_R16 ? 16 : 1;
}

export function isQuantized(dt: DType): boolean {
  return BLOCKS[dt] !== undefined;
}

/**
 * Whether int8 activations for weights of this type are quantized per 256 (as llama.cpp
 * does for K-quants), not per 32.
 */
export function superBlockActivations(dt: DType): boolean {
  const t = interleavedBase(dt);
  return t === DType.Q4_K || t === DType.Q5_K || t === DType.Q6_K;
}

/** The GGUF type an interleaved type is made from; any other type: itself (native/lmx.h). */
function interleavedBase(dt: DType): DType {
  return dt === DType.Q4_K_I || dt === DType.Q4_K_R16
    ? DType.Q4_K
    : dt === DType.Q6_K_I || dt === DType.Q6_K_R16
      ? DType.Q6_K
      : dt === DType.NVFP4_I
        ? DType.NVFP4
        : dt === DType.Q8_0_I
          ? DType.Q8_0
          : dt;
}

/** Bytes per element of a non-quantized type. */
export function dtypeBytes(dt: DType): number {
  if (isQuantized(dt)) throw new Error(`${DType[dt]} has no per-element size`);
  return dt === DType.F32 || dt === DType.I32 ? 4 : 2;
}

/** Bytes of a row of `cols` elements. */
export function rowBytes(dt: DType, cols: number): number {
  const b = BLOCKS[dt];
  if (!b) return cols * dtypeBytes(dt);
  if (cols % b.size)
    throw new Error(`a row of ${cols} is not a whole number of ${DType[dt]} blocks of ${b.size}`);
  return (cols / b.size) * b.bytes;
}

export function dtypeName(dt: DType): string {
  return DType[dt];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits to a number (exact). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A number to IEEE binary16 bits, rounding to nearest even (with subnormals). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const s = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return s | 0x7c00 | (m ? 0x200 : 0);
  const ne = e - 127 + 15;
  if (ne >= 31) return s | 0x7c00;
  if (ne <= 0) {
    if (ne < -10) return s;
    m |= 0x800000;
    const shift = 14 - ne;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let q = m >>> shift;
    if (rest > half || (rest === half && q & 1)) q++;
    return s | q;
  }
  let q = (ne << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && q & 1)) q++;
  return s | q;
}

export function bf16ToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** A number to bfloat16 bits (round to nearest even; NaN stays a quiet NaN). */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;

/** Converts `n` elements at byte offset `off` of `buf` (any float dtype) to a new Float32Array. */
export function toF32(buf: ArrayBuffer, off: number, dt: DType, n: number): Float32Array {
  if (dt === DType.F32) {
    return off % 4 === 0
      ? new Float32Array(buf, off, n).slice()
      : new Float32Array(buf.slice(off, off + 4 * n));
  }
  const u16 = off % 2 === 0 ? new Uint16Array(buf, off, n) : new Uint16Array(buf.slice(off, off + 2 * n));
  const out = new Float32Array(n);
  if (dt === DType.F16) {
    // Every f16 value from a table: whole tensors convert here (quantizing a model).
    const table = (f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => f16ToF32(h)));
    for (let i = 0; i < n; i++) out[i] = table[u16[i]!]!;
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = u16[i]! << 16;
  }
  return out;
}

/** f32 values encoded as a float dtype (F32, F16 or BF16), in a new buffer. */
export function fromF32(values: Float32Array, dt: DType): Uint8Array {
  if (dt === DType.F32) return new Uint8Array(values.slice().buffer);
  if (dt !== DType.F16 && dt !== DType.BF16) throw new Error(`cannot encode ${DType[dt]} from f32 here`);
  const out = new Uint16Array(values.length);
  const conv = dt === DType.F16 ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
  return new Uint8Array(out.buffer);
}
