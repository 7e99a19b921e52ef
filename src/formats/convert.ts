/**
 * Hugging Face folder -> GGUF, the way llama.cpp's converter lays it out: GGUF tensor
 * names, norms and 1-D tensors in F32, matrices in the chosen float type, Llama q/k rows
 * permuted for adjacent-pair RoPE, the tokenizer in `tokenizer.*` metadata.
 */
import { DType, dtypeBytes, fromF32, isQuantized, rowBytes, toF32 } from "../engine/tensor/dtype.js";
import { tokenizerFromHf, tokenizerToGguf } from "../tokenizer/load.js";
import { ggmlTypeOf, type GgufKv } from "./gguf/types.js";
import { kv, writeGguf, type GgufTensorOut } from "./gguf/write.js";
import { readHfFolder } from "./hf.js";
import type { TensorData } from "./tensor-source.js";

/** Metadata keys written as F32; every other number is a U32. */
const FLOAT_KEYS = /(epsilon|freq_base|factor|scale)$/;

/**
 * Reorders the rows of a Llama q or k projection from rotate-half to adjacent pairs:
 * GGUF row h*d + 2i + j = HF row h*d + j*(d/2) + i.
 */
export function permuteQkRows(rows: Uint8Array, nHead: number, rowBytes: number): Uint8Array {
  const n = rows.length / rowBytes;
  const d = n / nHead;
  const out = new Uint8Array(rows.length);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < d / 2; i++)
      for (let j = 0; j < 2; j++) {
        const from = h * d + j * (d / 2) + i,
          to = h * d + 2 * i + j;
        out.set(rows.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
  return out;
}

function encodeAs(t: TensorData, dtype: DType): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === dtype) return new Uint8Array(t.buffer, t.byteOffset, t.byteLength).slice();
  return fromF32(toF32(t.buffer, t.byteOffset, t.dtype, n), dtype);
}

export interface ConvertOptions {
  /** Type of the matrices (default: as stored). */
  outtype?: DType;
}

/** The GGUF metadata and tensors of a Hugging Face folder, converted in memory. */
export function hfToGguf(dir: string, o: ConvertOptions = {}): { kvs: GgufKv[]; tensors: GgufTensorOut[] } {
  const hf = readHfFolder(dir);
  const arch = hf.metadata.get("general.architecture") as string;
  const permute = arch === "llama" && hf.metadata.get("lmx.rope.pairing") === "neox";
  const kvs: GgufKv[] = [
    kv.str("general.architecture", arch),
    kv.str("general.name", dir.split("/").filter(Boolean).pop() ?? arch),
  ];
  for (const [key, value] of hf.metadata) {
    if (key === "general.architecture" || key.startsWith("lmx.")) continue;
    if (typeof value === "number") kvs.push(FLOAT_KEYS.test(key) ? kv.f32(key, value) : kv.u32(key, value));
  }
  const tensors: GgufTensorOut[] = [];
  const nHead = hf.metadata.get(`${arch}.attention.head_count`) as number;
  const nKv = hf.metadata.get(`${arch}.attention.head_count_kv`) as number;
  let matrixType: DType | undefined;
  for (const t of [...hf.tensors.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const isMatrix = t.shape.length >= 2 && !t.name.endsWith("_norm.weight");
    // Imported quantized weights (ModelOpt NVFP4) keep their bytes.
    const dtype = isQuantized(t.dtype) ? t.dtype : isMatrix ? (o.outtype ?? t.dtype) : DType.F32;
    if (isMatrix && (matrixType === undefined || isQuantized(dtype))) matrixType = dtype;
    let data = encodeAs(t, dtype);
    const unit = t.shape.length === 1 ? dtypeBytes(dtype) : rowBytes(dtype, t.shape[t.shape.length - 1]!);
    if (permute && /attn_q\.(weight|bias)$/.test(t.name)) data = permuteQkRows(data, nHead, unit);
    if (permute && /attn_k\.(weight|bias)$/.test(t.name)) data = permuteQkRows(data, nKv, unit);
    tensors.push({ name: t.name, type: ggmlTypeOf(dtype).id, ne: [...t.shape].reverse(), data });
  }
  const fileType =
    matrixType === DType.F32 ? 0 : matrixType === DType.BF16 ? 32 : matrixType === DType.NVFP4 ? 39 : 1;
  kvs.push(kv.u32("general.file_type", fileType));
  kvs.push(...tokenizerToGguf(tokenizerFromHf(dir)));
  return { kvs, tensors };
}

export function convertHfToGguf(dir: string, out: string, o: ConvertOptions = {}): void {
  const { kvs, tensors } = hfToGguf(dir, o);
  writeGguf(out, kvs, tensors);
}
