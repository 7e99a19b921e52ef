/**
 * FP4 quantizers. The `*Reference` functions reproduce ggml's (bit-exact, for tests and
 * compatibility): MXFP4 takes the power-of-two scale from each block's amax, NVFP4 the
 * UE4M3 scale amax/6, each element its nearest E2M1 code. `quantizeNvfp4` and
 * `quantizeMxfp4` are what `lmx create` uses: NVFP4 gets a per-tensor scale (amax / (6·448),
 * as NVIDIA's ModelOpt computes it) so block scales use the full E4M3 range, and every
 * block's scale is chosen by searching nearby codes for the least (optionally
 * importance-weighted) squared error, not rounded from amax.
 */
import { E2M1, e8m0, ue4m3 } from "./small-floats.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** ggml's nearest E2M1 code for x at a scale: first minimum of |value·scale − x| in f32. */
function nearestCodeRef(x: number, scale: number): number {
  let best = 0,
    bestErr = Infinity;
  for (let c = 0; c < 16; c++) {
    const err = Math.fround(Math.abs(Math.fround(Math.fround(E2M1[c]! * scale) - x)));
    if (err < bestErr) {
      bestErr = err;
      best = c;
    }
  }
  return best;
}

/** Nearest E2M1 magnitude code (0..7) for a non-negative value in units of the scale. */
function nearestMagnitude(v: number): number {
  // Midpoints between 0, .5, 1, 1.5, 2, 3, 4, 6; ties go to the smaller magnitude.
  return v <= 0.25
    ? 0
    : v <= 0.75
      ? 1
      : v <= 1.25
        ? 2
        : v <= 1.75
          ? 3
          : v <= 2.5
            ? 4
            : v <= 3.5
              ? 5
              : v <= 5
                ? 6
                : 7;
}

function code(x: number, inv: number): number {
  const m = nearestMagnitude(Math.abs(x) * inv);
  return m === 0 ? 0 : x < 0 ? m | 8 : m;
}

/** ggml's encodeUE4M3 (FORMATS.md §6.9), including its quirks. */
export function encodeUe4m3(v: number): number {
  if (!(v > 0)) return 0;
  f32[0] = Math.min(v, 448);
  const bits = u32[0]!;
  const E = ((bits >>> 23) & 0xff) - 127;
  let e = E + 7;
  if (e <= 0) {
    const m = Math.min(7, Math.trunc(Math.fround(f32[0]! * 512) + 0.5));
    return m < 1 ? 0 : m;
  }
  if (e >= 15) return 0x7e;
  let m = ((bits >>> 20) & 7) + ((bits >>> 19) & 1);
  if (m === 8) {
    m = 0;
    e++;
    if (e >= 15) return 0x7e;
  }
  return (e << 3) | m;
}

export function quantizeMxfp4Reference(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 17);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const e = amax > 0 ? Math.floor(Math.fround(Math.log2(amax))) - 2 + 127 : 0;
    const s = e8m0(e);
    out[b * 17] = e;
    for (let j = 0; j < 16; j++)
      out[b * 17 + 1 + j] = nearestCodeRef(x[b * 32 + j]!, s) | (nearestCodeRef(x[b * 32 + 16 + j]!, s) << 4);
  }
  return out;
}

export function quantizeNvfp4Reference(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 64) * 36);
  for (let b = 0; b < x.length / 64; b++) {
    for (let s = 0; s < 4; s++) {
      let amax = 0;
      for (let j = 0; j < 16; j++) amax = Math.max(amax, Math.abs(x[b * 64 + 16 * s + j]!));
      const ue = encodeUe4m3(Math.fround(amax / 6));
      const d = ue4m3(ue);
      out[b * 36 + s] = ue;
      for (let j = 0; j < 8; j++)
        out[b * 36 + 4 + 8 * s + j] =
          nearestCodeRef(x[b * 64 + 16 * s + j]!, d) | (nearestCodeRef(x[b * 64 + 16 * s + 8 + j]!, d) << 4);
    }
  }
  return out;
}

/** Squared error (weighted) of a group at a scale, with nearest codes; stops early past `limit`. */
function groupError(
  x: Float32Array,
  w: Float32Array | undefined,
  o: number,
  n: number,
  scale: number,
  limit = Infinity,
): number {
  if (scale <= 0) {
    let e = 0;
    for (let j = 0; j < n; j++) e += (w ? w[o + j]! : 1) * x[o + j]! ** 2;
    return e;
  }
  const inv = 1 / scale;
  let e = 0;
  for (let j = 0; j < n; j++) {
    const c = code(x[o + j]!, inv);
    const d = E2M1[c]! * scale - x[o + j]!;
    e += (w ? w[o + j]! : 1) * d * d;
    if (e >= limit) return e;
  }
  return e;
}

/** Block-scale codes tried below and above the one amax/6 gives (wider finds nothing more on tiny-qwen3). */
const SEARCH_DOWN = 10,
  SEARCH_UP = 8;

/** The per-tensor NVFP4 factor (stored as GGUF `<name>.scale`): amax / (6·448), or 1 for an all-zero tensor. */
export function nvfp4TensorScale(x: Float32Array): number {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  return amax > 0 ? Math.fround(amax / (6 * 448)) : 1;
}

/** Total squared error of quantizing `x` with NVFP4 at tensor scale `g` (for choosing g). */
export function nvfp4Error(x: Float32Array, g: number, weights?: Float32Array): number {
  const q = quantizeNvfp4(x, g, weights);
  let e = 0;
  for (let b = 0; b < x.length / 64; b++)
    for (let s = 0; s < 4; s++) {
      const d = ue4m3(q[b * 36 + s]!) * g;
      for (let j = 0; j < 16; j++) {
        const i = b * 64 + 16 * s + j;
        const byte = q[b * 36 + 4 + 8 * s + (j & 7)]!;
        const c = j < 8 ? byte & 15 : byte >> 4;
        e += (weights ? weights[i]! : 1) * (E2M1[c]! * d - x[i]!) ** 2;
      }
    }
  return e;
}

/** 2^(i/16) for i = -4..4, correctly rounded (a table, so native/kernels/quantize_fp4.c has the same numbers). */
const OCTAVE_SIXTEENTHS = [
  0.8408964152537145, 0.8781260801866497, 0.9170040432046712, 0.9576032806985737, 1, 1.0442737824274138,
  1.0905077326652577, 1.1387886347566916, 1.189207115002721,
];

/** floor(log2(a)) for a > 0, exactly (Math.log2 may round up just below a power of two). */
function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * The per-tensor scale: ModelOpt's amax / (6·448), moved by up to a quarter octave in
 * sixteenth-octave steps to where the tensor's total error is least. E4M3 block scales
 * have three mantissa bits; shifting every block's grid by a fraction of a step lets more
 * blocks land near their best scale (on tiny-qwen3 this halves Δppl at equal bits).
 */
export function chooseNvfp4TensorScale(x: Float32Array, weights?: Float32Array): number {
  const g0 = nvfp4TensorScale(x);
  // Judge the candidates on evenly spread blocks (every blocks/1024-th: fewer than 2048): enough to rank them.
  const blocks = x.length / 64,
    step = Math.max(1, Math.floor(blocks / 1024));
  if (step > 1) {
    const n = Math.floor(blocks / step);
    const xs = new Float32Array(n * 64),
      ws = weights && new Float32Array(n * 64);
    for (let i = 0; i < n; i++) {
      xs.set(x.subarray(i * step * 64, i * step * 64 + 64), i * 64);
      ws?.set(weights!.subarray(i * step * 64, i * step * 64 + 64), i * 64);
    }
    x = xs;
    weights = ws;
  }
  let best = Infinity,
    g = g0;
  for (let i = -4; i <= 4; i++) {
    const gi = Math.fround(g0 * OCTAVE_SIXTEENTHS[i + 4]!);
    const e = nvfp4Error(x, gi, weights);
    if (e < best) {
      best = e;
      g = gi;
    }
  }
  return g;
}

/**
 * NVFP4 with a per-tensor scale `g`: each 16-element sub-block's UE4M3 code is the one
 * among the neighbours of encode(amax/6/g) with the least error; values decode as
 * E2M1 · UE4M3 · g. `weights` (e.g. squared activations) make the error importance-weighted.
 */
export function quantizeNvfp4(x: Float32Array, g: number, weights?: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 64) * 36);
  for (let b = 0; b < x.length / 64; b++) {
    for (let s = 0; s < 4; s++) {
      const o = b * 64 + 16 * s;
      let amax = 0;
      for (let j = 0; j < 16; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
      let best = 0;
      if (amax > 0) {
        const c0 = encodeUe4m3(Math.fround(amax / 6 / g));
        let bestErr = Infinity;
        // Neighbouring codes are neighbouring values: search a window around amax/6.
        for (let c = Math.max(1, c0 - SEARCH_DOWN); c <= Math.min(0x7e, c0 + SEARCH_UP); c++) {
          const err = groupError(x, weights, o, 16, ue4m3(c) * g, bestErr);
          if (err < bestErr) {
            bestErr = err;
            best = c;
          }
        }
      }
      out[b * 36 + s] = best;
      const inv = best ? 1 / (ue4m3(best) * g) : 0;
      for (let j = 0; j < 8; j++)
        out[b * 36 + 4 + 8 * s + j] = code(x[o + j]!, inv) | (code(x[o + 8 + j]!, inv) << 4);
    }
  }
  return out;
}

/** MXFP4 with the block's power-of-two scale chosen among three for the least error. */
export function quantizeMxfp4(x: Float32Array, weights?: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 17);
  for (let b = 0; b < x.length / 32; b++) {
    const o = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
    let e = 0;
    if (amax > 0) {
      const e0 = floorLog2(amax) - 2 + 127;
      let bestErr = Infinity;
      for (let c = Math.max(1, e0 - 1); c <= Math.min(254, e0 + 1); c++) {
        const err = groupError(x, weights, o, 32, e8m0(c), bestErr);
        if (err < bestErr) {
          bestErr = err;
          e = c;
        }
      }
    }
    out[b * 17] = e;
    const inv = amax > 0 ? 1 / e8m0(e) : 0;
    for (let j = 0; j < 16; j++)
      out[b * 17 + 1 + j] = code(x[o + j]!, inv) | (code(x[o + 16 + j]!, inv) << 4);
  }
  return out;
}
