/** The small number formats block quantization uses: FP4 E2M1, FP8 E4M3 / UE4M3, E8M0. */
import { f16ToF32 } from "../tensor/dtype.js";

/** E2M1 codes 0..15 (code 8, "-0", decodes as +0 as in ggml). */
export const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** FP8 E4M3 (fn) magnitude of bits 6..0. */
function e4m3Magnitude(b: number): number {
  const e = (b >> 3) & 15,
    m = b & 7;
  return e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
}

const UE4M3 = Float64Array.from({ length: 128 }, (_, v) => (v === 0 || v === 0x7f ? 0 : e4m3Magnitude(v)));

/** ggml's NVFP4 block scale: E4M3 bits with the sign ignored; 0x00 and 0x7F decode to 0. */
export function ue4m3(b: number): number {
  return UE4M3[b & 0x7f]!;
}

/** E8M0: 2^(b - 127). */
export function e8m0(b: number): number {
  return 2 ** (b - 127);
}

/** A little-endian f16 at byte offset `o`. */
export function f16At(b: Uint8Array, o: number): number {
  return f16ToF32(b[o]! | (b[o + 1]! << 8));
}
