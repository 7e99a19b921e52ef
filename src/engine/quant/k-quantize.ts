/**
 * The K-quant quantizers. Without importance weights: ggml's reference quantizers
 * (`quantize_row_q{4,5,6}_K_ref`), emulating f32 arithmetic step by step so the bytes match
 * ggml built without FMA. With importance weights (an imatrix: mean square of each input
 * column, see formats/importance.ts), the weighted searches ggml applies when llama-quantize
 * is given an imatrix: each value's error weighs importance x sqrt(sigma^2 + x^2), sub-block
 * scales and mins are themselves quantized by a weighted search with a refinement pass.
 * Those follow ggml's algorithms but are not checked byte for byte against it.
 */
import { f16ToF32, f32ToF16 } from "../tensor/dtype.js";

const f = Math.fround;
/** Round to nearest, ties to even, as ggml's nearest_int. */
const nearestInt = (x: number) => f(x + 12582912) - 12582912;
const EPS = 1e-15;
/** 0.1f: ggml's search steps are multiples of the f32 0.1, not of the double. */
const TENTH = Math.fround(0.1);

/** Weighted search for x ≈ scale * L + min, L in 0..nmax; returns [scale, -min] (ggml's make_qkx2_quants, and make_qkx3_quants with weights). */
export function makeQkx2(
  x: Float32Array,
  w: Float32Array,
  nmax: number,
  L: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [number, number] {
  const n = x.length;
  let min = x[0]!,
    max = x[0]!,
    sumW = w[0]!,
    sumX = f(sumW * x[0]!);
  for (let i = 1; i < n; i++) {
    if (x[i]! < min) min = x[i]!;
    if (x[i]! > max) max = x[i]!;
    sumW = f(sumW + w[i]!);
    sumX = f(sumX + f(w[i]! * x[i]!));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    L[i] = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i]! - min)))));
    const diff = f(f(f(scale * L[i]!) + min) - x[i]!);
    best = f(best + f(w[i]! * f(diff * diff)));
  }
  const aux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    // ggml's float parameters: rmin and rdelta are f32 (-0.9f, 0.05f, ...), and so is each step.
    iscale = f(f(f(f(rmin) + f(f(rdelta) * is)) + nmax) / f(max - min));
    let sumL = 0,
      sumL2 = 0,
      sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i]! - min)))));
      aux[i] = l;
      sumL = f(sumL + f(w[i]! * l));
      sumL2 = f(sumL2 + f(f(w[i]! * l) * l));
      sumXL = f(sumXL + f(f(w[i]! * l) * x[i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let mad = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * aux[i]!) + thisMin) - x[i]!);
        mad = f(mad + f(w[i]! * f(diff * diff)));
      }
      if (mad < best) {
        L.set(aux);
        best = mad;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** Signed fit x ≈ scale * (L - nmax) weighted by x² (or by `qw`), L stored offset by nmax; returns scale. */
export function makeQx(x: Float32Array, nmax: number, L: Uint8Array, qw?: Float32Array): number {
  let max = 0,
    amax = 0;
  for (let i = 0; i < x.length; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) [amax, max] = [ax, x[i]!];
  }
  if (amax < EPS) {
    L.fill(0);
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0,
      suml2 = 0;
    for (let i = 0; i < x.length; i++) {
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * x[i]!))));
      if (store) L[i] = l + nmax;
      const w = qw ? qw[i]! : f(x[i]! * x[i]!);
      sumlx = f(sumlx + f(f(w * x[i]!) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(f(-nmax / max), true);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(f(-f(nmax + f(TENTH * is))) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      fit(iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Unsigned fit x ≈ scale * L, L in 0..nmax, minimizing the error weighted by w: a search
 * over 9 scales, then passes that move single codes while the weighted fit improves
 * (ggml's make_qp_quants, used for the sub-block scales and mins of imatrix K-quants).
 */
function makeQp(x: number[], nmax: number, L: Uint8Array, w: number[]): number {
  const n = x.length;
  let max = 0;
  for (const v of x) if (v > max) max = v;
  if (max < EPS) {
    L.fill(0);
    return 0;
  }
  const mse = (iscale: number) => {
    const scale = f(1 / iscale);
    let e = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(f(iscale * x[i]!)));
      const diff = f(x[i]! - f(scale * l));
      e = f(e + f(f(w[i]! * diff) * diff));
    }
    return e;
  };
  let iscale = f(nmax / max),
    best = mse(iscale);
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const c = f(f(f(TENTH * is) + nmax) / max),
      e = mse(c);
    if (e < best) [best, iscale] = [e, c];
  }
  let sumlx = 0,
    suml2 = 0;
  for (let i = 0; i < n; i++) {
    L[i] = Math.min(nmax, nearestInt(f(iscale * x[i]!)));
    sumlx = f(sumlx + f(f(w[i]! * x[i]!) * L[i]!));
    suml2 = f(suml2 + f(f(w[i]! * L[i]!) * L[i]!));
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let slx = f(sumlx - f(f(w[i]! * x[i]!) * L[i]!)),
        sl2 = f(suml2 - f(f(w[i]! * L[i]!) * L[i]!));
      if (slx > 0 && sl2 > 0) {
        const l = Math.min(nmax, nearestInt(f(f(x[i]! * sl2) / slx)));
        if (l !== L[i]) {
          slx = f(slx + f(f(w[i]! * x[i]!) * l));
          sl2 = f(sl2 + f(f(w[i]! * l) * l));
          if (f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = l;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/** 8 sub-block scales and 8 mins (0..63 each) packed into a Q4_K/Q5_K super-block's 12 bytes at `o` (the inverse of scaleMinK4). */
export function packScalesMinsK4(
  ls: ArrayLike<number>,
  lm: ArrayLike<number>,
  s: Uint8Array,
  o: number,
): void {
  for (let j = 0; j < 4; j++) {
    s[o + j] = ls[j]! | ((ls[j + 4]! >> 4) << 6);
    s[o + j + 4] = lm[j]! | ((lm[j + 4]! >> 4) << 6);
    s[o + j + 8] = (ls[j + 4]! & 15) | ((lm[j + 4]! & 15) << 4);
  }
}

function putF16(out: Uint8Array, o: number, v: number): number {
  const h = f32ToF16(v);
  out[o] = h & 255;
  out[o + 1] = h >> 8;
  return f16ToF32(h);
}

/** Q4_K (nmax 15) and Q5_K (nmax 31) share everything but the code packing. */
function quantizeK45(x: Float32Array, five: boolean, qw?: Float32Array): Uint8Array {
  const blockBytes = five ? 176 : 144,
    nmax = five ? 31 : 15;
  const out = new Uint8Array((x.length / 256) * blockBytes);
  const L = new Uint8Array(256),
    w = new Float32Array(32);
  for (let b = 0; b < x.length / 256; b++) {
    const xb = x.subarray(b * 256, b * 256 + 256),
      o = b * blockBytes;
    const scales: number[] = [],
      mins: number[] = [],
      sw: number[] = [];
    let maxScale = 0,
      maxMin = 0;
    let sigma2 = 0;
    if (qw) {
      for (let l = 0; l < 256; l++) sigma2 = f(sigma2 + f(xb[l]! * xb[l]!));
      sigma2 = f(f(2 * sigma2) / 256);
    }
    for (let j = 0; j < 8; j++) {
      const xs = xb.subarray(32 * j, 32 * j + 32);
      if (qw) {
        let sum = 0;
        for (let l = 0; l < 32; l++) {
          w[l] = f(qw[b * 256 + 32 * j + l]! * f(Math.sqrt(f(sigma2 + f(xs[l]! * xs[l]!)))));
          sum = f(sum + w[l]!);
        }
        sw.push(sum);
      } else {
        let sumX2 = 0;
        for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l]! * xs[l]!));
        const av = f(Math.sqrt(f(sumX2 / 32)));
        for (let l = 0; l < 32; l++) w[l] = f(av + Math.abs(xs[l]!));
      }
      const Lj = L.subarray(32 * j, 32 * j + 32);
      const [sc, mn] = qw
        ? makeQkx2(xs, w, nmax, Lj, -0.9, 0.05, 36)
        : five
          ? makeQkx2(xs, w, nmax, Lj, -0.5, 0.1, 15)
          : makeQkx2(xs, w, nmax, Lj, -1, 0.1, 20);
      scales.push(sc);
      mins.push(mn);
      if (sc > maxScale) maxScale = sc;
      if (mn > maxMin) maxMin = mn;
    }
    const s = out.subarray(o + 4, o + 16);
    const ls: number[] = [],
      lm: number[] = [];
    let dBlock: number, mBlock: number;
    if (qw) {
      // Sub-block scales and mins quantized by a search weighted by each sub-block's weight.
      const Ls = new Uint8Array(8),
        Lm = new Uint8Array(8);
      dBlock = makeQp(scales, 63, Ls, sw);
      mBlock = makeQp(mins, 63, Lm, sw);
      ls.push(...Ls);
      lm.push(...Lm);
    } else {
      const invScale = maxScale > 0 ? f(63 / maxScale) : 0,
        invMin = maxMin > 0 ? f(63 / maxMin) : 0;
      for (let j = 0; j < 8; j++) {
        ls.push(Math.min(63, nearestInt(f(invScale * scales[j]!)) & 255));
        lm.push(Math.min(63, nearestInt(f(invMin * mins[j]!)) & 255));
      }
      dBlock = f(maxScale / 63);
      mBlock = f(maxMin / 63);
    }
    packScalesMinsK4(ls, lm, s, 0);
    const d = putF16(out, o, dBlock),
      dmin = putF16(out, o + 2, mBlock);
    for (let j = 0; j < 8; j++) {
      const D = f(d * ls[j]!);
      if (!D) continue;
      const dm = f(dmin * lm[j]!);
      for (let i = 0; i < 32; i++)
        L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(f(f(xb[32 * j + i]! + dm) / D))));
    }
    if (five) {
      const qh = out.subarray(o + 16, o + 48),
        ql = out.subarray(o + 48, o + 176);
      for (let c = 0; c < 4; c++)
        for (let j = 0; j < 32; j++) {
          let l1 = L[64 * c + j]!,
            l2 = L[64 * c + 32 + j]!;
          if (l1 > 15) {
            l1 -= 16;
            qh[j]! |= 1 << (2 * c);
          }
          if (l2 > 15) {
            l2 -= 16;
            qh[j]! |= 2 << (2 * c);
          }
          ql[32 * c + j] = l1 | (l2 << 4);
        }
    } else {
      for (let c = 0; c < 4; c++)
        for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
    }
  }
  return out;
}

/** `qw`: importance of every value of x (its column's, repeated per row), or none for ggml's reference. */
export const quantizeQ4K = (x: Float32Array, qw?: Float32Array) => quantizeK45(x, false, qw);
export const quantizeQ5K = (x: Float32Array, qw?: Float32Array) => quantizeK45(x, true, qw);

export function quantizeQ6K(x: Float32Array, qw?: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 256) * 210);
  const L = new Uint8Array(256);
  for (let b = 0; b < x.length / 256; b++) {
    const xb = x.subarray(b * 256, b * 256 + 256),
      o = b * 210;
    const scales: number[] = [];
    let maxScale = 0,
      maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const sc = makeQx(
        xb.subarray(16 * ib, 16 * ib + 16),
        32,
        L.subarray(16 * ib, 16 * ib + 16),
        qw?.subarray(b * 256 + 16 * ib, b * 256 + 16 * ib + 16),
      );
      scales.push(sc);
      if (Math.abs(sc) > maxAbs) [maxAbs, maxScale] = [Math.abs(sc), sc];
    }
    if (maxAbs < EPS) continue; // an all-zero block
    const iscale = f(-128 / maxScale);
    const d = putF16(out, o + 208, f(1 / iscale));
    const sc = new Int8Array(out.buffer, out.byteOffset + o + 192, 16);
    for (let ib = 0; ib < 16; ib++) sc[ib] = Math.min(127, nearestInt(f(iscale * scales[ib]!)));
    for (let j = 0; j < 16; j++) {
      const D = f(d * sc[j]!);
      if (!D) continue;
      for (let i = 0; i < 16; i++)
        L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(f(xb[16 * j + i]! / D)))) + 32;
    }
    for (let h = 0; h < 2; h++) {
      const ql = out.subarray(o + 64 * h, o + 64 * h + 64),
        qh = out.subarray(o + 128 + 32 * h, o + 160 + 32 * h),
        e = 128 * h;
      for (let l = 0; l < 32; l++) {
        const q1 = L[e + l]!,
          q2 = L[e + l + 32]!,
          q3 = L[e + l + 64]!,
          q4 = L[e + l + 96]!;
        ql[l] = (q1 & 15) | ((q3 & 15) << 4);
        ql[l + 32] = (q2 & 15) | ((q4 & 15) << 4);
        qh[l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return out;
}
