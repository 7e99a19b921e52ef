/**
 * Interleaved weights: Q4_K and Q6_K blocks with the same scales, mins and d whose 256
 * codes are in the order the cpu backend's decode dots want them (element 32n + b holds
 * the original element slotElement(n, b)), packed as GGUF packs them; NVFP4 blocks in
 * pairs with their codes reordered and their scales re-encoded; Q8_0 blocks in groups of 8
 * with their scales side by side (the layouts and the reason: native/kernels/interleave.c).
 * Q4_K and Q6_K matrices of whole groups of 16 rows become Q4_K_R16 and Q6_K_R16 instead:
 * matrix layouts, each group's super-blocks side by side with the rows in 32-bit lanes
 * (groupRows).
 * The cpu backend makes them at load; this is their TypeScript reference (the native
 * interleaver and kernels are tested against it).
 */
import { DType } from "../tensor/dtype.js";
import { nvfp4 } from "./fp4.js";
import type { QuantFormat } from "./format.js";
import { packScalesMinsK4 } from "./k-quantize.js";
import { q4_K, q6_K, scaleMinK4 } from "./k-quants.js";
import { q8_0 } from "./q8-0.js";

/** The original element at interleaved element 32n + b (n = 0..7) of a super-block. */
export function slotElement(n: number, b: number): number {
  return 16 * (b >> 1) + 2 * n + (b & 1);
}

/** The 256 codes of a Q4_K (0..15) or Q6_K (0..63) block at `o`, in element order. */
function ggufCodes(src: Uint8Array, o: number, q6: boolean): Uint8Array {
  const u = new Uint8Array(256);
  for (let h = 0; h < (q6 ? 2 : 4); h++)
    for (let l = 0; l < 32; l++) {
      if (!q6) {
        const q = src[o + 16 + 32 * h + l]!;
        u[64 * h + l] = q & 15;
        u[64 * h + 32 + l] = q >> 4;
        continue;
      }
      const L = src[o + 64 * h + l]!,
        L2 = src[o + 64 * h + 32 + l]!,
        H = src[o + 128 + 32 * h + l]!;
      u[128 * h + l] = (L & 15) | ((H & 3) << 4);
      u[128 * h + 32 + l] = (L2 & 15) | (((H >> 2) & 3) << 4);
      u[128 * h + 64 + l] = (L >> 4) | (((H >> 4) & 3) << 4);
      u[128 * h + 96 + l] = (L2 >> 4) | (((H >> 6) & 3) << 4);
    }
  return u;
}

/** The inverse of ggufCodes: the block's code bytes at `o` from its codes. */
function ggufPack(u: Uint8Array, q6: boolean, out: Uint8Array, o: number): void {
  for (let h = 0; h < (q6 ? 2 : 4); h++)
    for (let l = 0; l < 32; l++) {
      if (!q6) {
        out[o + 16 + 32 * h + l] = u[64 * h + l]! | (u[64 * h + 32 + l]! << 4);
        continue;
      }
      const [a, b, c, d] = [0, 32, 64, 96].map((k) => u[128 * h + k + l]!) as [
        number,
        number,
        number,
        number,
      ];
      out[o + 64 * h + l] = (a & 15) | ((c & 15) << 4);
      out[o + 64 * h + 32 + l] = (b & 15) | ((d & 15) << 4);
      out[o + 128 + 32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6);
    }
}

/** Whole Q4_K/Q6_K blocks with their codes moved into (back = false) or out of the interleaved order. */
function moveCodes(src: Uint8Array, q6: boolean, back: boolean): Uint8Array {
  const bytes = q6 ? 210 : 144;
  const out = src.slice(); // scales, mins and d stay
  const moved = new Uint8Array(256);
  for (let o = 0; o < src.length; o += bytes) {
    const u = ggufCodes(src, o, q6);
    for (let n = 0; n < 8; n++)
      for (let b = 0; b < 32; b++) {
        if (back) moved[slotElement(n, b)] = u[32 * n + b]!;
        else moved[32 * n + b] = u[slotElement(n, b)]!;
      }
    ggufPack(moved, q6, out, o);
  }
  return out;
}

/** Interleaves whole GGUF Q4_K or Q6_K blocks (the native interleaver's definition). */
export function interleave(dtype: DType.Q4_K | DType.Q6_K, src: Uint8Array): Uint8Array {
  return moveCodes(src, dtype === DType.Q6_K, false);
}

/** Interleaved blocks back in their GGUF layout. */
export function deinterleave(dtype: DType.Q4_K_I | DType.Q6_K_I, src: Uint8Array): Uint8Array {
  return moveCodes(src, dtype === DType.Q6_K_I, true);
}

export const q4_K_I: QuantFormat = {
  dtype: DType.Q4_K_I,
  blockSize: 256,
  blockBytes: 144,
  f16Scales: q4_K.f16Scales,
  dequantize: (src, dst) => q4_K.dequantize(deinterleave(DType.Q4_K_I, src), dst),
};

export const q6_K_I: QuantFormat = {
  dtype: DType.Q6_K_I,
  blockSize: 256,
  blockBytes: 210,
  f16Scales: q6_K.f16Scales,
  dequantize: (src, dst) => q6_K.dequantize(deinterleave(DType.Q6_K_I, src), dst),
};

/** A UE4M3 scale byte as NVFP4_I stores it: E << 3 | m for half the value, (8 + m) 2^(E - 14); 0 for zero or NaN. */
export function nvfp4iScale(ue: number): number {
  const z = ue & 0x7f;
  if (z === 0 || z === 0x7f) return 0;
  if (z >= 8) return z + 24;
  const p = z >= 4 ? 2 : z >= 2 ? 1 : 0;
  return ((p + 1) << 3) | ((z << (3 - p)) - 8);
}

function nvfp4iScaleToUe4m3(b: number): number {
  if (b >= 32) return b - 24;
  return b ? (8 + (b & 7)) >> (4 - (b >> 3)) : 0;
}

/** Pairs of NVFP4 blocks as NVFP4_I blocks (a zero or NaN scale zeroes its sub-block's codes). */
export function interleaveNvfp4(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let o = 0; o < src.length; o += 72)
    for (let k = 0; k < 8; k++) {
      const blk = o + 36 * (k >> 2),
        s = k & 3;
      out[o + k] = nvfp4iScale(src[blk + s]!);
      if (!out[o + k]) continue;
      for (let n = 0; n < 4; n++)
        for (let i = 0; i < 4; i++) {
          const j = 4 * n + i;
          const code = (src[blk + 4 + 8 * s + (j & 7)]! >> (4 * (j >> 3))) & 15;
          out[o + 8 + 32 * (n >> 1) + 4 * k + i]! |= code << (4 * (n & 1));
        }
    }
  return out;
}

/** NVFP4_I blocks as pairs of NVFP4 blocks of the same values. */
export function deinterleaveNvfp4(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let o = 0; o < src.length; o += 72)
    for (let k = 0; k < 8; k++) {
      const blk = o + 36 * (k >> 2),
        s = k & 3;
      out[blk + s] = nvfp4iScaleToUe4m3(src[o + k]!);
      for (let n = 0; n < 4; n++)
        for (let i = 0; i < 4; i++) {
          const j = 4 * n + i;
          const code = (src[o + 8 + 32 * (n >> 1) + 4 * k + i]! >> (4 * (n & 1))) & 15;
          out[blk + 4 + 8 * s + (j & 7)]! |= code << (4 * (j >> 3));
        }
    }
  return out;
}

export const nvfp4_I: QuantFormat = {
  dtype: DType.NVFP4_I,
  blockSize: 128,
  blockBytes: 72,
  f16Scales: [],
  dequantize: (src, dst) => nvfp4.dequantize(deinterleaveNvfp4(src), dst),
};

/** Groups of 8 Q8_0 blocks as Q8_0_I (their 8 f16 scales, then their codes), or back. */
function moveQ8_0(src: Uint8Array, back: boolean): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let o = 0; o < src.length; o += 272)
    for (let b = 0; b < 8; b++) {
      const block = o + 34 * b,
        scale = o + 2 * b,
        codes = o + 16 + 32 * b;
      if (back) {
        out.set(src.subarray(scale, scale + 2), block);
        out.set(src.subarray(codes, codes + 32), block + 2);
      } else {
        out.set(src.subarray(block, block + 2), scale);
        out.set(src.subarray(block + 2, block + 34), codes);
      }
    }
  return out;
}

/** Whole groups of 8 Q8_0 blocks as Q8_0_I blocks (the native interleaver's definition). */
export function interleaveQ8_0(src: Uint8Array): Uint8Array {
  return moveQ8_0(src, false);
}

/** Q8_0_I blocks as the Q8_0 blocks they were made from. */
export function deinterleaveQ8_0(src: Uint8Array): Uint8Array {
  return moveQ8_0(src, true);
}

export const q8_0_I: QuantFormat = {
  dtype: DType.Q8_0_I,
  blockSize: 256,
  blockBytes: 272,
  f16Scales: [0, 2, 4, 6, 8, 10, 12, 14],
  dequantize: (src, dst) => q8_0.dequantize(deinterleaveQ8_0(src), dst),
};

/** Bytes of one super-block of a Q4_K_R16 group (16 rows). */
export const R16_BLOCK_BYTES = 2304;

/** A row's 6-bit scales and mins as Q4_K_R16's three 32-bit words (native/kernels/interleave.c). */
function r16Words(sc: number[], mn: number[]): [number, number, number] {
  return [
    (sc[0]! | (sc[1]! << 6) | (sc[2]! << 12) | (sc[3]! << 18) | (sc[4]! << 24) | ((sc[5]! & 3) << 30)) >>> 0,
    (mn[0]! |
      (mn[2]! << 6) |
      ((sc[5]! >> 2) << 12) |
      (mn[1]! << 16) |
      (mn[3]! << 22) |
      ((sc[6]! & 15) << 28)) >>>
      0,
    (mn[4]! |
      (mn[6]! << 6) |
      ((sc[6]! >> 4) << 12) |
      ((sc[7]! & 3) << 14) |
      (mn[5]! << 16) |
      (mn[7]! << 22) |
      ((sc[7]! >> 2) << 28)) >>>
      0,
  ];
}

/**
 * Q4_K rows (`rows` a multiple of 16, `cols` of whole super-blocks) as Q4_K_R16: per group
 * of 16 rows and super-block b, 2304 bytes at (group * cols / 256 + b) * 2304: the rows' d
 * (f16, bytes 2r), dmin (32 + 2r), their scales and mins as three 32-bit words per row (at
 * 64 + 4r, 128 + 4r, 192 + 4r; r16Words), then code byte 32c + 4q + i of row r at
 * 256 + 64(8c + q) + 4r + i (native/kernels/interleave.c says why).
 */
export function groupRows16(src: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % 16 || cols % 256)
    throw new Error(`Q4_K_R16 takes groups of 16 rows of whole super-blocks, not ${rows} x ${cols}`);
  const nb = cols / 256,
    rb = nb * 144;
  const out = new Uint8Array((rows / 16) * nb * R16_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let g = 0; g < rows / 16; g++)
    for (let b = 0; b < nb; b++) {
      const o = (g * nb + b) * R16_BLOCK_BYTES;
      for (let r = 0; r < 16; r++) {
        const blk = (16 * g + r) * rb + 144 * b;
        out.set(src.subarray(blk, blk + 2), o + 2 * r);
        out.set(src.subarray(blk + 2, blk + 4), o + 32 + 2 * r);
        const sm = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => scaleMinK4(src, blk + 4, j));
        const w = r16Words(
          sm.map((x) => x[0]),
          sm.map((x) => x[1]),
        );
        for (let k = 0; k < 3; k++) view.setUint32(o + 64 + 64 * k + 4 * r, w[k]!, true);
        for (let m = 0; m < 32; m++)
          out.set(src.subarray(blk + 16 + 4 * m, blk + 20 + 4 * m), o + 256 + 64 * m + 4 * r);
      }
    }
  return out;
}

/** Row `r` of a Q4_K_R16 matrix of `cols` columns as the Q4_K blocks it was made from. */
export function r16Row(src: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 256,
    lane = r % 16;
  const out = new Uint8Array(nb * 144);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let b = 0; b < nb; b++) {
    const o = ((r - lane) / 16) * nb * R16_BLOCK_BYTES + b * R16_BLOCK_BYTES,
      q = 144 * b;
    out.set(src.subarray(o + 2 * lane, o + 2 * lane + 2), q);
    out.set(src.subarray(o + 32 + 2 * lane, o + 34 + 2 * lane), q + 2);
    const [a, w, c] = [0, 1, 2].map((k) => view.getUint32(o + 64 + 64 * k + 4 * lane, true)) as [
      number,
      number,
      number,
    ];
    const sc = [0, 1, 2, 3, 4].map((j) => (a >>> (6 * j)) & 63);
    sc.push(
      (a >>> 30) | ((w >>> 10) & 0x3c),
      (w >>> 28) | ((c >>> 8) & 0x30),
      ((c >>> 14) & 3) | ((c >>> 26) & 0x3c),
    );
    const mn = [
      w & 63,
      (w >>> 16) & 63,
      (w >>> 6) & 63,
      (w >>> 22) & 63,
      c & 63,
      (c >>> 16) & 63,
      (c >>> 6) & 63,
      (c >>> 22) & 63,
    ];
    packScalesMinsK4(sc, mn, out, q + 4);
    for (let m = 0; m < 32; m++)
      out.set(src.subarray(o + 256 + 64 * m + 4 * lane, o + 260 + 64 * m + 4 * lane), q + 16 + 4 * m);
  }
  return out;
}

/** Bytes of one super-block of a Q6_K_R16 group (16 rows). */
export const R16Q6_BLOCK_BYTES = 3360;

/**
 * Q6_K rows (`rows` a multiple of 16) as Q6_K_R16: per group and super-block 3360 bytes,
 * the rows' d (f16, bytes 2r), scale 2k + e of row r at 32 + 32k + 2r + e, then 32-bit words
 * of row r in steps (h, q) of three registers: ql bytes 64h + 32s + 4q.. at
 * 288 + 192(8h + q) + 64s + 4r, qh bytes 32h + 4q.. at 288 + 192(8h + q) + 128 + 4r
 * (native/kernels/interleave.c).
 */
export function groupRows16Q6(src: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % 16 || cols % 256)
    throw new Error(`Q6_K_R16 takes groups of 16 rows of whole super-blocks, not ${rows} x ${cols}`);
  const nb = cols / 256,
    rb = nb * 210;
  const out = new Uint8Array((rows / 16) * nb * R16Q6_BLOCK_BYTES);
  for (let g = 0; g < rows / 16; g++)
    for (let b = 0; b < nb; b++) {
      const o = (g * nb + b) * R16Q6_BLOCK_BYTES;
      for (let r = 0; r < 16; r++) {
        const blk = (16 * g + r) * rb + 210 * b;
        out.set(src.subarray(blk + 208, blk + 210), o + 2 * r);
        for (let j = 0; j < 16; j++) out[o + 32 + 32 * (j >> 1) + 2 * r + (j & 1)] = src[blk + 192 + j]!;
        for (let h = 0; h < 2; h++)
          for (let q = 0; q < 8; q++) {
            const step = o + 288 + 192 * (8 * h + q) + 4 * r;
            out.set(src.subarray(blk + 64 * h + 4 * q, blk + 64 * h + 4 * q + 4), step);
            out.set(src.subarray(blk + 64 * h + 32 + 4 * q, blk + 64 * h + 36 + 4 * q), step + 64);
            out.set(src.subarray(blk + 128 + 32 * h + 4 * q, blk + 132 + 32 * h + 4 * q), step + 128);
          }
      }
    }
  return out;
}

/** Row `r` of a Q6_K_R16 matrix of `cols` columns as the Q6_K blocks it was made from. */
export function r16RowQ6(src: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 256,
    lane = r % 16;
  const out = new Uint8Array(nb * 210);
  for (let b = 0; b < nb; b++) {
    const o = ((r - lane) / 16) * nb * R16Q6_BLOCK_BYTES + b * R16Q6_BLOCK_BYTES,
      q = 210 * b;
    out.set(src.subarray(o + 2 * lane, o + 2 * lane + 2), q + 208);
    for (let j = 0; j < 16; j++) out[q + 192 + j] = src[o + 32 + 32 * (j >> 1) + 2 * lane + (j & 1)]!;
    for (let h = 0; h < 2; h++)
      for (let k = 0; k < 8; k++) {
        const step = o + 288 + 192 * (8 * h + k) + 4 * lane;
        out.set(src.subarray(step, step + 4), q + 64 * h + 4 * k);
        out.set(src.subarray(step + 64, step + 68), q + 64 * h + 32 + 4 * k);
        out.set(src.subarray(step + 128, step + 132), q + 128 + 32 * h + 4 * k);
      }
  }
  return out;
}

/** Q4_K or Q6_K rows (a multiple of 16) as the matching R16 type (groupRows16, groupRows16Q6). */
export function groupRows(
  dt: DType.Q4_K_R16 | DType.Q6_K_R16,
  src: Uint8Array,
  rows: number,
  cols: number,
): Uint8Array {
  return dt === DType.Q4_K_R16 ? groupRows16(src, rows, cols) : groupRows16Q6(src, rows, cols);
}

/** Row `lane` of the R16 group at `group` (a matrix of `cols` columns) decoded into `out`. */
export function dequantizeGroupedRow(
  dt: DType.Q4_K_R16 | DType.Q6_K_R16,
  group: Uint8Array,
  lane: number,
  cols: number,
  out: Float32Array,
): void {
  if (dt === DType.Q4_K_R16) q4_K.dequantize(r16Row(group, lane, cols), out);
  else q6_K.dequantize(r16RowQ6(group, lane, cols), out);
}
