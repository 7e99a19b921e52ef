/** Deterministic random data for tests and benchmarks (no Math.random: runs must repeat). */
import { interleave, interleaveNvfp4, interleaveQ8_0 } from "../engine/quant/interleaved.js";
import { BLOCKS, DType, f32ToF16 } from "../engine/tensor/dtype.js";

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` uniform values in [-scale, scale). */
export function uniform(n: number, scale: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * `nBlocks` random blocks of a quantized type with scale fields set to small, finite
 * values, so that every code decodes to a usable number.
 */
export function randomBlocks(dtype: DType, nBlocks: number, seed: number): Uint8Array {
  if (dtype === DType.Q4_K_I) return interleave(DType.Q4_K, randomBlocks(DType.Q4_K, nBlocks, seed));
  if (dtype === DType.Q6_K_I) return interleave(DType.Q6_K, randomBlocks(DType.Q6_K, nBlocks, seed));
  if (dtype === DType.NVFP4_I) return interleaveNvfp4(randomBlocks(DType.NVFP4, 2 * nBlocks, seed));
  if (dtype === DType.Q8_0_I) return interleaveQ8_0(randomBlocks(DType.Q8_0, 8 * nBlocks, seed));
  const spec = BLOCKS[dtype];
  if (!spec) throw new Error(`${DType[dtype]} is not block-quantized`);
  const r = rng(seed);
  const out = new Uint8Array(nBlocks * spec.bytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const f16 = (b: Uint8Array, o: number, v: number) => {
    const h = f32ToF16(v);
    b[o] = h & 255;
    b[o + 1] = h >> 8;
  };
  for (let k = 0; k < nBlocks; k++) {
    const b = out.subarray(k * spec.bytes, (k + 1) * spec.bytes);
    switch (dtype) {
      case DType.Q8_0:
      case DType.Q4_0:
      case DType.Q5_0:
        f16(b, 0, 0.005 + r() * 0.02);
        break;
      case DType.Q4_1:
      case DType.Q5_1:
      case DType.Q4_K:
      case DType.Q5_K:
        f16(b, 0, 0.001 + r() * 0.004);
        f16(b, 2, 0.001 + r() * 0.004);
        break;
      case DType.Q6_K:
        f16(b, 208, 0.0005 + r() * 0.001);
        break;
      case DType.MXFP4:
        b[0] = 118 + Math.floor(r() * 6);
        break;
      case DType.NVFP4:
        for (let s = 0; s < 4; s++) b[s] = 0x20 + Math.floor(r() * 0x18);
        break;
    }
  }
  return out;
}
