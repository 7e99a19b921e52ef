/**
 * Quantizes a whole model (GGUF file or Hugging Face folder) into a GGUF file, choosing
 * each tensor's type the way llama-quantize does for the same file type: embeddings and
 * norms handled specially, and for the K-quant mixes (q4_K_M, q5_K_M) the value and FFN
 * down projections of chosen layers kept at Q6_K.
 */
import { statSync } from "node:fs";
import { native } from "../native.js";
import { quantFormat } from "../engine/quant/index.js";
import { BLOCKS, DType, fromF32, isQuantized, toF32 } from "../engine/tensor/dtype.js";
import { hfToGguf } from "./convert.js";
import { readGguf } from "./gguf/read.js";
import { ggmlType, ggmlTypeOf, type GgufKv } from "./gguf/types.js";
import { kv, writeGguf, type GgufTensorOut } from "./gguf/write.js";

export const QUANTIZE_TYPES = ["q8_0", "q4_0", "q6_K", "q5_K_M", "q4_K_M", "mxfp4", "nvfp4"] as const;
export type QuantizeType = (typeof QUANTIZE_TYPES)[number];

const FILE_TYPE: Record<QuantizeType, number> = {
  q8_0: 7,
  q4_0: 2,
  q6_K: 18,
  q5_K_M: 17,
  q4_K_M: 15,
  mxfp4: 38,
  nvfp4: 39,
};
const BASE: Record<QuantizeType, DType> = {
  q8_0: DType.Q8_0,
  q4_0: DType.Q4_0,
  q6_K: DType.Q6_K,
  q5_K_M: DType.Q5_K,
  q4_K_M: DType.Q4_K,
  mxfp4: DType.MXFP4,
  nvfp4: DType.NVFP4,
};

/** llama.cpp's choice of layers that get more bits in the K-quant mixes. */
export function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.floor(n / 8);
  return i < n8 || i >= Math.floor((7 * n) / 8) || (i - n8) % 3 === 2;
}

function quantizable(t: GgufTensorOut): boolean {
  return (
    t.ne.length >= 2 &&
    t.name.endsWith("weight") &&
    !t.name.endsWith("_norm.weight") &&
    !t.name.includes("ffn_gate_inp")
  );
}

/** Visiting order of llama-quantize: non-block tensors by name, then blocks in order. */
function order(tensors: GgufTensorOut[]): GgufTensorOut[] {
  const blk = (n: string) => {
    const m = /^blk\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  };
  return [...tensors].sort((a, b) => blk(a.name) - blk(b.name) || a.name.localeCompare(b.name));
}

/** The type llama-quantize picks for one tensor. */
export function chooseType(
  type: QuantizeType,
  name: string,
  ne0: number,
  o: { tied: boolean; iAttnV: number; nAttnV: number; layer: number; nLayer: number; imatrix?: boolean },
): DType {
  const base = BASE[type];
  let t = base;
  const isOutput = name === "output.weight" || (o.tied && name === "token_embd.weight");
  // FP4 files quantize the linear layers; embeddings and the head stay at Q8_0 (ModelOpt
  // keeps them in 16 bits; Q8_0 is within 0.01 ppl of that at half the size).
  if (base === DType.MXFP4 || base === DType.NVFP4) {
    if (name === "token_embd.weight" || name === "output.weight")
      return ne0 % 32 === 0 ? DType.Q8_0 : DType.F16;
    return ne0 % BLOCKS[base]!.size === 0 ? base : ne0 % 32 === 0 ? DType.Q8_0 : DType.F16;
  }
  if (isOutput) t = ne0 % 256 !== 0 ? DType.Q8_0 : base === DType.Q8_0 ? DType.Q8_0 : DType.Q6_K;
  else if (type === "q4_K_M" || type === "q5_K_M") {
    if (/attn_v\.weight$/.test(name) && useMoreBits(o.iAttnV, o.nAttnV)) t = DType.Q6_K;
    if (/ffn_down/.test(name) && useMoreBits(o.layer, o.nLayer)) t = DType.Q6_K;
  } else if (type === "q4_0" && o.imatrix && /ffn_down/.test(name) && o.layer < Math.floor(o.nLayer / 8)) {
    // llama-quantize's guard for the first ffn_down layers, taken only with an imatrix.
    t = DType.Q4_1;
  }
  // Shape fallback when the block does not divide the row.
  if (ne0 % BLOCKS[t]!.size !== 0) {
    t = { [DType.Q4_K]: DType.Q5_0, [DType.Q5_K]: DType.Q5_1, [DType.Q6_K]: DType.Q8_0 }[t as number] ?? t;
    if (!quantFormat(t)?.quantize) t = DType.Q8_0; // lmx has no Q5_0/Q5_1 quantizer yet
    if (ne0 % 32 !== 0) t = DType.F16;
  }
  return t;
}

function ggufKvs(path: string): { kvs: GgufKv[]; tensors: GgufTensorOut[] } {
  const g = readGguf(path);
  const kvs: GgufKv[] = [];
  for (const [key, value] of g.metadata) {
    const t = g.kvTypes.get(key)!;
    kvs.push({
      key,
      type: t.type,
      itemType: t.itemType,
      value: ArrayBuffer.isView(value) ? Array.from(value as ArrayLike<number>) : value,
    });
  }
  const tensors = g.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    ne: [...t.ne],
    data: new Uint8Array(t.buffer, t.byteOffset, t.byteLength),
  }));
  return { kvs, tensors };
}

/** f32 values of a tensor in any type lmx reads. */
function valuesOf(t: GgufTensorOut): Float32Array {
  const dt = ggmlType(t.type)?.dtype;
  if (dt === undefined)
    throw new Error(`tensor ${t.name} has type ${ggmlType(t.type)?.name ?? t.type}, which lmx cannot read`);
  const n = t.ne.reduce((a, b) => a * b, 1);
  if (isQuantized(dt)) {
    const out = new Float32Array(n);
    quantFormat(dt)!.dequantize(t.data, out);
    return out;
  }
  const copy = t.data.slice();
  return toF32(copy.buffer, 0, dt, n);
}

/** Types quantized natively (native/kernels/quantize_k.c), with the same bytes as their TypeScript specifications. */
const NATIVE = new Set([DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q4_K, DType.Q5_K, DType.Q6_K]);

export interface QuantizeReport {
  tensors: { name: string; type: string }[];
  bytes: number;
}

export interface QuantizeOptions {
  /** Mean squared input per column for each weight (collectImportance); weighs rounding errors (K-quants, NVFP4, MXFP4). */
  importance?: Map<string, Float32Array>;
}

export function quantizeModel(
  src: string,
  out: string,
  type: QuantizeType,
  onTensor?: (i: number, n: number, name: string) => void,
  o: QuantizeOptions = {},
): QuantizeReport {
  if (!QUANTIZE_TYPES.includes(type))
    throw new Error(`unknown quantization type "${type}" (expected ${QUANTIZE_TYPES.join(", ")})`);
  const parts = statSync(src).isDirectory() ? hfToGguf(src) : ggufKvs(src);
  const arch = String(parts.kvs.find((k) => k.key === "general.architecture")?.value ?? "");
  const nLayer = Number(parts.kvs.find((k) => k.key === `${arch}.block_count`)?.value ?? 0);
  const tied = !parts.tensors.some((t) => t.name === "output.weight");
  const nAttnV = parts.tensors.filter((t) => /attn_v\.weight$/.test(t.name)).length;
  let iAttnV = 0;
  const tensors: GgufTensorOut[] = [];
  const report: QuantizeReport = { tensors: [], bytes: 0 };
  const scales: GgufTensorOut[] = [];
  const ordered = order(parts.tensors);
  ordered.forEach((t, i) => {
    onTensor?.(i, ordered.length, t.name);
    let outT = t;
    if (quantizable(t)) {
      const layer = Number(/^blk\.(\d+)\./.exec(t.name)?.[1] ?? -1);
      const imatrix = !!o.importance?.size;
      const dt = chooseType(type, t.name, t.ne[0]!, { tied, iAttnV, nAttnV, layer, nLayer, imatrix });
      if (/attn_v\.weight$/.test(t.name)) iAttnV++;
      const importanceOf = (v: Float32Array): Float32Array | undefined => {
        const imp = o.importance?.get(t.name);
        if (!imp || imp.length !== t.ne[0]) return undefined;
        // Every row shares its columns' importance.
        const w = new Float32Array(v.length);
        for (let r = 0; r < v.length / imp.length; r++) w.set(imp, r * imp.length);
        return w;
      };
      if (dt === DType.NVFP4 || dt === DType.MXFP4) {
        // Native, multithreaded; the same bytes as fp4-quantize.ts (tested).
        const v = valuesOf(t);
        const cols = t.ne[0]!;
        const imp = o.importance?.get(t.name);
        const w = imp && imp.length === cols ? imp : null;
        if (dt === DType.MXFP4)
          outT = { ...t, type: ggmlTypeOf(dt).id, data: native().quantizeFp4(dt, v, cols, w, 1) };
        else {
          // The per-tensor factor travels as `<name>.scale` (llama.cpp's convention).
          const g = native().nvfp4TensorScale(v, cols, w);
          outT = { ...t, type: ggmlTypeOf(dt).id, data: native().quantizeFp4(dt, v, cols, w, g) };
          scales.push({
            name: t.name.replace(/\.weight$/, ".scale"),
            type: ggmlTypeOf(DType.F32).id,
            ne: [1],
            data: new Uint8Array(new Float32Array([g]).buffer),
          });
        }
      } else if (ggmlType(t.type)?.dtype !== dt) {
        const v = valuesOf(t);
        const cols = t.ne[0]!;
        const imp = o.importance?.get(t.name);
        let data: Uint8Array;
        if (NATIVE.has(dt))
          data = native().quantizeRows(dt, v, cols, imp && imp.length === cols ? imp : null);
        else {
          const q = quantFormat(dt)?.quantize;
          data = q ? q(v, importanceOf(v), cols) : fromF32(v, DType.F16);
        }
        outT = { ...t, type: ggmlTypeOf(dt).id, data };
      }
    }
    tensors.push(outT);
    report.tensors.push({ name: outT.name, type: ggmlType(outT.type)?.name ?? String(outT.type) });
    report.bytes += outT.data.length;
  });
  tensors.push(...scales);
  const kvs = parts.kvs.filter(
    (k) => k.key !== "general.file_type" && k.key !== "general.quantization_version",
  );
  kvs.push(kv.u32("general.file_type", FILE_TYPE[type]), kv.u32("general.quantization_version", 2));
  writeGguf(out, kvs, tensors);
  return report;
}
