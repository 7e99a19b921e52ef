/** GGUF v2/v3 reader: metadata and tensor infos, tensor bytes viewed in the mapped file. */
import { mapFile } from "../map-file.js";
import { ModelFileError, type TensorData } from "../tensor-source.js";
import { StringTable } from "../string-table.js";
import { ggmlType, GgufValueType, type GgufScalar, type GgufValue } from "./types.js";

export interface GgufTensorInfo extends Omit<TensorData, "dtype"> {
  readonly type: number;
  readonly typeName: string;
  /** GGUF order: ne[0] is the contiguous dimension. */
  readonly ne: readonly number[];
}

export interface GgufFile {
  readonly file: string;
  readonly version: number;
  readonly metadata: Map<string, GgufValue>;
  /** The stored type of each metadata value (and of array items), for exact rewrites. */
  readonly kvTypes: Map<string, { type: GgufValueType; itemType?: GgufValueType }>;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
  readonly buffer: ArrayBuffer;
  /** Where tensor data begins: the header (metadata, tensor infos) is the bytes before it. */
  readonly dataStart: number;
}

const MAX_ARRAY = 1 << 28;

class Cursor {
  pos = 0;
  private readonly dv: DataView;
  private readonly td = new TextDecoder("utf-8", { fatal: false });
  constructor(
    readonly buffer: ArrayBuffer,
    private readonly file: string,
  ) {
    this.dv = new DataView(buffer);
  }
  need(n: number): void {
    if (this.pos + n > this.buffer.byteLength)
      throw new ModelFileError(this.file, `truncated GGUF header (needs ${n} bytes at offset ${this.pos})`);
  }
  u8() {
    this.need(1);
    return this.dv.getUint8(this.pos++);
  }
  i8() {
    this.need(1);
    return this.dv.getInt8(this.pos++);
  }
  u16() {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16() {
    this.need(2);
    const v = this.dv.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32() {
    this.need(4);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32() {
    this.need(4);
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64() {
    this.need(8);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must fit a safe integer. */
  count(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ModelFileError(this.file, `${what} ${v} is out of range`);
    return Number(v);
  }
  /** Skips a string, returning where its bytes start and end. */
  strSpan(): [number, number] {
    const n = this.count("string length");
    this.need(n);
    this.pos += n;
    return [this.pos - n, this.pos];
  }
  str(): string {
    const n = this.count("string length");
    this.need(n);
    const s = this.td.decode(new Uint8Array(this.buffer, this.pos, n));
    this.pos += n;
    return s;
  }
}

function readScalar(c: Cursor, type: number, file: string): GgufScalar {
  switch (type) {
    case GgufValueType.U8:
      return c.u8();
    case GgufValueType.I8:
      return c.i8();
    case GgufValueType.U16:
      return c.u16();
    case GgufValueType.I16:
      return c.i16();
    case GgufValueType.U32:
      return c.u32();
    case GgufValueType.I32:
      return c.i32();
    case GgufValueType.F32:
      return c.f32();
    case GgufValueType.F64:
      return c.f64();
    case GgufValueType.BOOL: {
      const b = c.u8();
      if (b > 1) throw new ModelFileError(file, `invalid boolean value ${b}`);
      return b === 1;
    }
    case GgufValueType.STRING:
      return c.str();
    case GgufValueType.U64: {
      const v = c.u64();
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GgufValueType.I64: {
      const v = c.i64();
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
    default:
      throw new ModelFileError(file, `unknown metadata value type ${type}`);
  }
}

function readValue(c: Cursor, type: number, file: string): GgufValue {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type, file);
  const itemType = c.u32();
  const n = c.count("array length");
  if (n > MAX_ARRAY) throw new ModelFileError(file, `array of ${n} items is too large`);
  if (itemType === GgufValueType.ARRAY) throw new ModelFileError(file, "nested arrays are not supported");
  if (itemType === GgufValueType.I32) {
    c.need(4 * n);
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = c.i32();
    return a;
  }
  if (itemType === GgufValueType.F32) {
    c.need(4 * n);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = c.f32();
    return a;
  }
  if (itemType === GgufValueType.U32) {
    c.need(4 * n);
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = c.u32();
    return a;
  }
  if (itemType === GgufValueType.STRING) return readStrings(c, n, file);
  c.need(n); // at least a byte per item
  const out: GgufScalar[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readScalar(c, itemType, file);
  return out;
}

/** A string array as a table over the file's own bytes (vocabularies: no copy, no heap strings). */
function readStrings(c: Cursor, n: number, file: string): StringTable {
  c.need(8 * n); // every string has its 8-byte length: a corrupt count fails before allocating
  const base = c.pos;
  const starts = new Uint32Array(n),
    ends = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const [s, e] = c.strSpan();
    if (e - base > 0xffffffff) throw new ModelFileError(file, "string array larger than 4 GiB");
    starts[i] = s - base;
    ends[i] = e - base;
  }
  return new StringTable(new Uint8Array(c.buffer, base, c.pos - base), starts, ends);
}

export function readGguf(file: string, buffer: ArrayBuffer = mapFile(file)): GgufFile {
  const c = new Cursor(buffer, file);
  if (buffer.byteLength < 24) throw new ModelFileError(file, "too short to be a GGUF file");
  const magic = new TextDecoder().decode(new Uint8Array(buffer, 0, 4));
  if (magic !== "GGUF") throw new ModelFileError(file, "not a GGUF file (bad magic)");
  c.pos = 4;
  const version = c.u32();
  if ((version & 0xffff) === 0) throw new ModelFileError(file, "big-endian GGUF files are not supported");
  if (version !== 2 && version !== 3) throw new ModelFileError(file, `unsupported GGUF version ${version}`);
  const nTensors = c.count("tensor count");
  const nKv = c.count("metadata count");
  if (nTensors > 1_000_000 || nKv > 1_000_000)
    throw new ModelFileError(file, "implausible tensor or metadata count (corrupt header?)");
  const metadata = new Map<string, GgufValue>();
  const kvTypes = new Map<string, { type: GgufValueType; itemType?: GgufValueType }>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str();
    const type = c.u32();
    if (metadata.has(key)) throw new ModelFileError(file, `duplicate metadata key ${key}`);
    if (type === GgufValueType.ARRAY) {
      c.need(4);
      kvTypes.set(key, { type, itemType: new DataView(buffer).getUint32(c.pos, true) });
    } else kvTypes.set(key, { type });
    metadata.set(key, readValue(c, type, file));
  }
  let alignment = 32;
  const a = metadata.get("general.alignment");
  if (a !== undefined) {
    if (typeof a !== "number" || a <= 0 || (a & (a - 1)) !== 0)
      throw new ModelFileError(file, `general.alignment ${String(a)} is not a power of two`);
    alignment = a;
  }
  const infos: { name: string; ne: number[]; type: number; offset: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.str();
    const nDims = c.u32();
    if (nDims < 1 || nDims > 4) throw new ModelFileError(file, `tensor ${name} has ${nDims} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.count(`dimension of ${name}`));
    const type = c.u32();
    const offset = c.count(`offset of ${name}`);
    if (names.has(name)) throw new ModelFileError(file, `duplicate tensor ${name}`);
    names.add(name);
    infos.push({ name, ne, type, offset });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors: GgufTensorInfo[] = infos.map((t) => {
    const gt = ggmlType(t.type);
    if (!gt) throw new ModelFileError(file, `tensor ${t.name} has unknown ggml type id ${t.type}`);
    if (t.ne[0]! % gt.blockSize !== 0)
      throw new ModelFileError(
        file,
        `tensor ${t.name}: row of ${t.ne[0]} is not a multiple of ${gt.name}'s block of ${gt.blockSize}`,
      );
    const count = t.ne.reduce((x, y) => x * y, 1);
    const bytes = (count / gt.blockSize) * gt.blockBytes;
    if (t.offset % alignment !== 0)
      throw new ModelFileError(file, `tensor ${t.name} is not aligned to ${alignment}`);
    const start = dataStart + t.offset;
    if (start + bytes > buffer.byteLength) {
      throw new ModelFileError(
        file,
        `tensor ${t.name} (${gt.name} [${t.ne}]) needs ${bytes} bytes at ${start} but the file has ${buffer.byteLength} (truncated file?)`,
      );
    }
    return {
      name: t.name,
      type: t.type,
      typeName: gt.name,
      ne: t.ne,
      shape: [...t.ne].reverse(),
      buffer,
      byteOffset: start,
      byteLength: bytes,
      file,
    };
  });
  return { file, version, metadata, kvTypes, tensors, alignment, buffer, dataStart };
}
