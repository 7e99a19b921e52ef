/**
 * The executable specification of every op: plain TypeScript over the same plan the
 * native executor runs. Slow and simple on purpose; tests compare the cpu backend to it.
 */
import {
  DType,
  f16ToF32,
  f32ToF16,
  isQuantized,
  rowBytes,
  rowGroup,
  superBlockActivations,
  toF32,
} from "../../tensor/dtype.js";
import { quantFormat } from "../../quant/index.js";
import { dequantizeGroupedRow } from "../../quant/interleaved.js";
import { q8_0 } from "../../quant/q8-0.js";
import {
  MAX_SRC,
  MM_NORM,
  OP_FLOATS,
  OP_INTS,
  OP_MASK,
  Op,
  RopePairing,
  TENSOR_FIELDS,
} from "../../tensor/ops.js";

/** A tensor resolved against the plan's buffers. */
export interface TensorView {
  buffer: ArrayBuffer;
  offset: number;
  dtype: DType;
  ne0: number;
  ne1: number;
  nb1: number;
}

const f32Cache = new WeakMap<ArrayBuffer, Map<string, Float32Array>>();

/** Row r as f32. Float32 rows of writable tensors are live views; others are converted (cached). */
function rowF32(t: TensorView, r: number): Float32Array {
  const off = t.offset + r * t.nb1;
  if (t.dtype === DType.F32 && off % 4 === 0) return new Float32Array(t.buffer, off, t.ne0);
  let m = f32Cache.get(t.buffer);
  if (!m) f32Cache.set(t.buffer, (m = new Map()));
  const key = `${off}:${t.dtype}:${t.ne0}`;
  let v = m.get(key);
  if (!v) {
    if (rowGroup(t.dtype) > 1) {
      // A matrix layout: the row's group starts where row r - r % 16 would.
      const lane = r % rowGroup(t.dtype),
        group = new Uint8Array(t.buffer, off - lane * t.nb1, rowGroup(t.dtype) * rowBytes(t.dtype, t.ne0));
      v = new Float32Array(t.ne0);
      dequantizeGroupedRow(t.dtype as DType.Q4_K_R16 | DType.Q6_K_R16, group, lane, t.ne0, v);
    } else if (isQuantized(t.dtype)) {
      v = new Float32Array(t.ne0);
      quantFormat(t.dtype)!.dequantize(new Uint8Array(t.buffer, off, rowBytes(t.dtype, t.ne0)), v);
    } else v = toF32(t.buffer, off, t.dtype, t.ne0);
    m.set(key, v);
  }
  return v;
}

/**
 * Head `kvh` of a KV pool's slot as f32, read fresh every time (the pool is written
 * between runs, so rowF32's cache must not see it): f16, or Q8_0 whose heads are whole
 * blocks.
 */
function kvHead(pool: TensorView, slot: number, kvh: number, hd: number): Float32Array {
  const base = pool.offset + slot * pool.nb1;
  const out = new Float32Array(hd);
  if (pool.dtype === DType.Q8_0) {
    const bytes = rowBytes(DType.Q8_0, hd);
    q8_0.dequantize(new Uint8Array(pool.buffer, base + kvh * bytes, bytes), out);
  } else {
    const h = new Uint16Array(pool.buffer, base + kvh * hd * 2, hd);
    for (let i = 0; i < hd; i++) out[i] = f16ToF32(h[i]!);
  }
  return out;
}

/** Writes an f32 row into a KV pool's slot as the pool stores it (f16 or Q8_0). */
function kvWrite(pool: TensorView, slot: number, x: Float32Array): void {
  if (pool.dtype === DType.Q8_0) {
    new Uint8Array(pool.buffer, pool.offset + slot * pool.nb1).set(q8_0.quantize!(x));
    return;
  }
  const d = new Uint16Array(pool.buffer, pool.offset + slot * pool.nb1, pool.ne0);
  for (let i = 0; i < x.length; i++) d[i] = f32ToF16(x[i]!);
}

function i32(t: TensorView): Int32Array {
  return new Int32Array(t.buffer, t.offset, t.ne0 * t.ne1);
}

function out(t: TensorView, r: number): Float32Array {
  return new Float32Array(t.buffer, t.offset + r * t.nb1, t.ne0);
}

/**
 * Σ x[i]² in the order of the native kernels (norm.c): 16 lanes (i mod 16) of running
 * sums, combined pairwise, then the tail in order. Products of floats are exact in double,
 * so this gives the native bits.
 */
function sumSquares(x: Float32Array): number {
  const a = new Float64Array(16);
  let i = 0;
  for (; i + 16 <= x.length; i += 16) for (let k = 0; k < 16; k++) a[k] += x[i + k]! * x[i + k]!;
  const s = [0, 1, 2, 3].map((j) => a[j]! + a[4 + j]! + (a[8 + j]! + a[12 + j]!));
  let r = s[0]! + s[2]! + (s[1]! + s[3]!);
  for (; i < x.length; i++) r += x[i]! * x[i]!;
  return r;
}

function rmsRow(x: Float32Array, w: Float32Array | null, eps: number, d: Float32Array): void {
  const r = Math.fround(1 / Math.sqrt(sumSquares(x) / x.length + eps));
  for (let i = 0; i < x.length; i++) d[i] = w ? x[i]! * r * w[i]! : x[i]! * r;
}

/**
 * An activation row as the int8 decode path sees it, quantized as llama.cpp does for the
 * weight type: per 32 with an f16 scale amax/127 (Q8_0, Q4_0), or per 256 with scale
 * 1/(-127/max) (K-quants); codes round to nearest even. Returns scale * code.
 */
export function quantizeActivations(x: Float32Array, superBlocks: boolean): Float64Array {
  const f = Math.fround;
  const n = superBlocks ? 256 : 32;
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length / n; b++) {
    let amax = 0,
      max = 0;
    for (let i = 0; i < n; i++) {
      const a = Math.abs(x[n * b + i]!);
      if (a > amax) [amax, max] = [a, x[n * b + i]!];
    }
    let id: number, d: number;
    if (superBlocks) {
      id = amax > 0 ? f(-127 / max) : 0;
      d = amax > 0 ? f(1 / id) : 0;
    } else {
      id = amax > 0 ? f(127 / amax) : 0;
      d = f16ToF32(f32ToF16(f(amax / 127)));
    }
    for (let i = 0; i < n; i++) {
      const v = f(x[n * b + i]! * id);
      let q = Math.round(v);
      if (Math.abs(v - Math.trunc(v)) === 0.5) q = 2 * Math.round(v / 2); // ties to even
      out[n * b + i] = d * Math.max(-127, Math.min(127, q));
    }
  }
  return out;
}

type Kernel = (dst: TensorView, src: (TensorView | null)[], ip: Int32Array, fp: Float32Array) => void;

/** A gated activation of one row: silu(x) * y or gelu_tanh(x) * y. */
function gluRow(op: number, x: Float32Array, y: Float32Array): Float32Array {
  const o = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    o[i] =
      op === Op.GeGlu
        ? 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v * v * v))) * y[i]!
        : (v / (1 + Math.exp(-v))) * y[i]!;
  }
  return o;
}

/** rows(t) . w^T * scale (+ bias) for T activation rows, each output rounded to f32. */
function matmulRows(
  rows: (t: number) => Float32Array,
  T: number,
  w: TensorView,
  fpScale: number,
  bias: TensorView | null,
): Float32Array[] {
  const K = w.ne0;
  const scale = fpScale !== 0 && fpScale !== 1 ? fpScale : 1;
  // Quantized weights meet int8 activations in decode (fused integer dots,
  // native/kernels/qdot_x86.h) and prefill (int8 GEMM, gemm_q8.c) alike.
  const int8 = isQuantized(w.dtype);
  const superBlocks = superBlockActivations(w.dtype);
  const xs = Array.from({ length: T }, (_, t) =>
    int8 ? quantizeActivations(rows(t), superBlocks) : rows(t),
  );
  const b = bias ? rowF32(bias, 0) : null;
  const y = Array.from({ length: T }, () => new Float32Array(w.ne1));
  for (let n = 0; n < w.ne1; n++) {
    const wr = rowF32(w, n);
    for (let t = 0; t < T; t++) {
      const xr = xs[t]!;
      let s = 0;
      for (let k = 0; k < K; k++) s += xr[k]! * wr[k]!;
      const v = Math.fround(s) * scale;
      y[t]![n] = b ? Math.fround(v) + b[n]! : v;
    }
  }
  return y;
}

/** A matmul's activation rows: x's, or fused into it (plan.ts fuse) glu(x, up) or rmsnorm(x). */
function matmulInput(
  x: TensorView,
  up: TensorView | null,
  norm: TensorView | null,
  ip: Int32Array,
  fp: Float32Array,
): (t: number) => Float32Array {
  if (ip[1] === MM_NORM) {
    const w = norm ? rowF32(norm, 0) : null;
    return (t) => {
      const r = new Float32Array(x.ne0);
      rmsRow(rowF32(x, t), w, fp[2]!, r);
      return r;
    };
  }
  if (up) return (t) => gluRow(ip[0]!, rowF32(x, t), rowF32(up, t));
  return (t) => rowF32(x, t);
}

const kernels: Record<number, Kernel> = {
  [Op.GetRows](d, [table, ids]) {
    const id = i32(ids!);
    for (let r = 0; r < d.ne1; r++) {
      const row = id[r]! >= 0 && id[r]! < table!.ne1 ? id[r]! : 0;
      out(d, r).set(rowF32(table!, row));
    }
  },
  [Op.RmsNorm](d, [x, w], _ip, fp) {
    const wr = w ? rowF32(w, 0) : null;
    for (let r = 0; r < x!.ne1; r++) rmsRow(rowF32(x!, r), wr, fp[0]!, out(d, r));
  },
  [Op.AddRmsNorm](d, [a, b, w, s], _ip, fp) {
    const wr = w ? rowF32(w, 0) : null;
    for (let r = 0; r < a!.ne1; r++) {
      const pa = rowF32(a!, r),
        pb = rowF32(b!, r),
        ps = out(s!, r);
      for (let i = 0; i < pa.length; i++) ps[i] = pa[i]! + pb[i]!;
      rmsRow(ps, wr, fp[0]!, out(d, r));
    }
  },
  [Op.Matmul](d, [x, w, bias, up, res, norm], ip, fp) {
    const y = matmulRows(matmulInput(x!, up ?? null, norm ?? null, ip, fp), x!.ne1, w!, fp[0]!, bias);
    for (let t = 0; t < x!.ne1; t++) {
      const o = out(d, t);
      o.set(y[t]!);
      // A fused residual add (plan.ts fuse): the stream the projection adds to.
      if (res) {
        const r = rowF32(res, t);
        for (let i = 0; i < o.length; i++) o[i] = o[i]! + r[i]!;
      }
    }
  },
  [Op.MatmulGlu](d, [x, wg, , , wu, norm], ip, fp) {
    const row = matmulInput(x!, null, norm ?? null, ip, fp);
    const gate = matmulRows(row, x!.ne1, wg!, fp[0]!, null);
    const up = matmulRows(row, x!.ne1, wu!, fp[1]!, null);
    for (let t = 0; t < x!.ne1; t++) out(d, t).set(gluRow(ip[0]!, gate[t]!, up[t]!));
  },
  [Op.Rope](d, [x, pos, ff, nw], ip, fp) {
    const [nHead, hd, nRot, pairing] = [ip[0]!, ip[1]!, ip[2]!, ip[3]!];
    const p = i32(pos!);
    const f = ff ? rowF32(ff, 0) : null;
    const w = nw ? rowF32(nw, 0) : null;
    const buf = new Float32Array(hd);
    for (let t = 0; t < x!.ne1; t++) {
      const xr = rowF32(x!, t),
        dr = out(d, t);
      for (let h = 0; h < nHead; h++) {
        const src = xr.subarray(h * hd, h * hd + hd);
        if (w) rmsRow(src, w, fp[1]!, buf);
        else buf.set(src);
        const half = nRot / 2;
        for (let i = 0; i < half; i++) {
          let inv = Math.pow(fp[0]!, (-2 * i) / nRot);
          if (f) inv /= f[i]!;
          const a = p[t]! * inv;
          const c = Math.fround(Math.cos(a)),
            s = Math.fround(Math.sin(a));
          const i0 = pairing === RopePairing.Interleaved ? 2 * i : i;
          const i1 = pairing === RopePairing.Interleaved ? 2 * i + 1 : i + half;
          const x0 = buf[i0]!,
            x1 = buf[i1]!;
          dr[h * hd + i0] = x0 * c - x1 * s;
          dr[h * hd + i1] = x0 * s + x1 * c;
        }
        for (let i = nRot; i < hd; i++) dr[h * hd + i] = buf[i]!;
      }
    }
  },
  [Op.KvStore](kpool, [k, v, vpool, pos, rowSeq, tables], ip) {
    const bs = ip[0]!;
    const p = i32(pos!),
      seq = i32(rowSeq!),
      tab = i32(tables!);
    for (let t = 0; t < k!.ne1; t++) {
      const table = seq[t]! * tables!.ne0;
      const slot = tab[table + Math.floor(p[t]! / bs)]! * bs + (p[t]! % bs);
      kvWrite(kpool, slot, rowF32(k!, t));
      kvWrite(vpool!, slot, rowF32(v!, t));
    }
  },
  [Op.Attention](d, [q, kpool, vpool, pos, rowSeq, tables], ip, fp) {
    const [nHead, nKv, hd, bs, window] = [ip[0]!, ip[1]!, ip[2]!, ip[3]!, ip[4]!];
    const scale = fp[0]!;
    const p = i32(pos!),
      seq = i32(rowSeq!),
      tab = i32(tables!);
    for (let t = 0; t < q!.ne1; t++) {
      const qr = rowF32(q!, t),
        dr = out(d, t);
      const first = window > 0 ? Math.max(0, p[t]! - window + 1) : 0;
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / (nHead / nKv));
        const scores: number[] = [];
        const slots: number[] = [];
        for (let j = first; j <= p[t]!; j++) {
          const slot = tab[seq[t]! * tables!.ne0 + Math.floor(j / bs)]! * bs + (j % bs);
          const kr = kvHead(kpool!, slot, kvh, hd);
          let s = 0;
          for (let i = 0; i < hd; i++) s += qr[h * hd + i]! * kr[i]!;
          scores.push(s * scale);
          slots.push(slot);
        }
        const m = Math.max(...scores);
        let l = 0;
        const acc = new Float64Array(hd);
        scores.forEach((s, j) => {
          const e = Math.exp(s - m);
          l += e;
          const vr = kvHead(vpool!, slots[j]!, kvh, hd);
          for (let i = 0; i < hd; i++) acc[i]! += e * vr[i]!;
        });
        for (let i = 0; i < hd; i++) dr[h * hd + i] = acc[i]! / l;
      }
    }
  },
  [Op.SwiGlu](d, [a, b]) {
    for (let r = 0; r < a!.ne1; r++) out(d, r).set(gluRow(Op.SwiGlu, rowF32(a!, r), rowF32(b!, r)));
  },
  [Op.GeGlu](d, [a, b]) {
    for (let r = 0; r < a!.ne1; r++) out(d, r).set(gluRow(Op.GeGlu, rowF32(a!, r), rowF32(b!, r)));
  },
  [Op.Add](d, [a, b]) {
    for (let r = 0; r < a!.ne1; r++) {
      const x = rowF32(a!, r),
        y = rowF32(b!, r),
        o = out(d, r);
      for (let i = 0; i < x.length; i++) o[i] = x[i]! + y[i]!;
    }
  },
};

/** Runs every node of an encoded plan over resolved buffers. */
export function runPlan(
  ints: Int32Array,
  floats: Float32Array,
  tensors: Float64Array,
  buffers: ArrayBuffer[],
): void {
  const views: (TensorView | null)[] = [];
  for (let i = 0; i < tensors.length / TENSOR_FIELDS; i++) {
    const f = i * TENSOR_FIELDS;
    const buf = tensors[f]!;
    views.push(
      buf < 0
        ? null
        : {
            buffer: buffers[buf]!,
            offset: tensors[f + 1]!,
            dtype: tensors[f + 2]!,
            ne0: tensors[f + 3]!,
            ne1: tensors[f + 4]!,
            nb1: tensors[f + 5]!,
          },
    );
  }
  for (let n = 0; n < ints.length / OP_INTS; n++) {
    const o = n * OP_INTS;
    const k = kernels[ints[o]! & OP_MASK];
    if (!k) throw new Error(`reference: unknown op ${ints[o]! & OP_MASK}`);
    const src = Array.from({ length: MAX_SRC }, (_, s) =>
      ints[o + 2 + s]! >= 0 ? views[ints[o + 2 + s]!]! : null,
    );
    k(
      views[ints[o + 1]!]!,
      src,
      ints.subarray(o + 2 + MAX_SRC, o + OP_INTS),
      floats.subarray(n * OP_FLOATS, n * OP_FLOATS + OP_FLOATS),
    );
  }
}
