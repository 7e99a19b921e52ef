/** safetensors reader (single file and sharded index), validating as the reference reader does. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DType } from "../engine/tensor/dtype.js";
import { mapFile, type FileLoader } from "./map-file.js";
import { ModelFileError, type TensorData } from "./tensor-source.js";

const DTYPES: Record<string, { bits: number; dtype?: DType }> = {
  BOOL: { bits: 8 },
  U8: { bits: 8 },
  I8: { bits: 8 },
  U16: { bits: 16 },
  I16: { bits: 16 },
  U32: { bits: 32 },
  I32: { bits: 32, dtype: DType.I32 },
  U64: { bits: 64 },
  I64: { bits: 64 },
  F16: { bits: 16, dtype: DType.F16 },
  BF16: { bits: 16, dtype: DType.BF16 },
  F32: { bits: 32, dtype: DType.F32 },
  F64: { bits: 64 },
  F8_E4M3: { bits: 8 },
  F8_E5M2: { bits: 8 },
  F8_E8M0: { bits: 8 },
};

/** A tensor whose element type lmx cannot compute with yet is still listed, with this dtype. */
export interface SafetensorsEntry extends Omit<TensorData, "dtype"> {
  readonly dtype: DType | undefined;
  readonly dtypeName: string;
}

export function readSafetensors(file: string, buffer: ArrayBuffer = mapFile(file)): SafetensorsEntry[] {
  const size = buffer.byteLength;
  if (size < 8) throw new ModelFileError(file, "too short to be a safetensors file");
  const dv = new DataView(buffer);
  const n = Number(dv.getBigUint64(0, true));
  if (n > 100_000_000 || 8 + n > size)
    throw new ModelFileError(file, `header length ${n} is invalid (file is ${size} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buffer, 8, n)));
  } catch (e) {
    throw new ModelFileError(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new ModelFileError(file, "header is not an object");
  const dataStart = 8 + n;
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dt = typeof info.dtype === "string" ? DTYPES[info.dtype] : undefined;
    if (!dt) throw new ModelFileError(file, `tensor ${name} has unknown dtype ${JSON.stringify(info.dtype)}`);
    const shape = info.shape;
    const offs = info.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new ModelFileError(file, `tensor ${name} has an invalid shape`);
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      offs[1] < offs[0]
    ) {
      throw new ModelFileError(file, `tensor ${name} has invalid data_offsets`);
    }
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    const bytes = (count * dt.bits) / 8;
    if (offs[1] - offs[0] !== bytes)
      throw new ModelFileError(
        file,
        `tensor ${name}: ${offs[1] - offs[0]} bytes for shape [${shape}] of ${info.dtype}`,
      );
    entries.push({
      name,
      dtype: dt.dtype,
      dtypeName: info.dtype as string,
      shape: shape as number[],
      buffer,
      byteOffset: dataStart + offs[0],
      byteLength: bytes,
      file,
    });
  }
  const sorted = [...entries].sort((a, b) => a.byteOffset - b.byteOffset);
  let expect = dataStart;
  for (const e of sorted) {
    if (e.byteOffset !== expect)
      throw new ModelFileError(
        file,
        `tensor ${e.name} overlaps or leaves a gap in the data (truncated or corrupt file?)`,
      );
    expect += e.byteLength;
  }
  if (expect !== size)
    throw new ModelFileError(
      file,
      `data section is ${size - dataStart} bytes but the tensors need ${expect - dataStart} (truncated or corrupt file?)`,
    );
  return entries;
}

/** Reads every safetensors file of a Hugging Face folder (sharded or not). */
export function readSafetensorsFolder(dir: string, load: FileLoader = mapFile): SafetensorsEntry[] {
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, "utf8")).weight_map;
    } catch (e) {
      throw new ModelFileError(index, `not valid JSON: ${(e as Error).message}`);
    }
    if (!map || typeof map !== "object") throw new ModelFileError(index, "has no weight_map");
    const files = [...new Set(Object.values(map))];
    const out: SafetensorsEntry[] = [];
    for (const f of files) {
      const path = join(dirname(index), f);
      if (!existsSync(path))
        throw new ModelFileError(path, "shard listed in model.safetensors.index.json is missing");
      out.push(...readSafetensors(path, load(path)));
    }
    return out;
  }
  const single = join(dir, "model.safetensors");
  if (!existsSync(single))
    throw new ModelFileError(dir, "no model.safetensors or model.safetensors.index.json");
  return readSafetensors(single, load(single));
}
