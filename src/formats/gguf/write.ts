/** GGUF v3 writer: metadata with exact types, tensors aligned and zero-padded, written atomically. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { StringTable } from "../string-table.js";
import { GgufValueType, ggmlType, type GgufKv, type GgufScalar } from "./types.js";

export interface GgufTensorOut {
  name: string;
  /** ggml type id. */
  type: number;
  /** GGUF order: ne[0] is contiguous. */
  ne: number[];
  data: Uint8Array;
}

class Sink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private dv = new DataView(this.cur.buffer);
  private pos = 0;
  length = 0;
  private room(n: number) {
    if (this.pos + n > this.cur.length) {
      this.chunks.push(this.cur.subarray(0, this.pos));
      this.cur = new Uint8Array(Math.max(1 << 16, n));
      this.dv = new DataView(this.cur.buffer);
      this.pos = 0;
    }
  }
  u8(v: number) {
    this.room(1);
    this.dv.setUint8(this.pos, v);
    this.pos += 1;
    this.length += 1;
  }
  i8(v: number) {
    this.room(1);
    this.dv.setInt8(this.pos, v);
    this.pos += 1;
    this.length += 1;
  }
  u16(v: number) {
    this.room(2);
    this.dv.setUint16(this.pos, v, true);
    this.pos += 2;
    this.length += 2;
  }
  i16(v: number) {
    this.room(2);
    this.dv.setInt16(this.pos, v, true);
    this.pos += 2;
    this.length += 2;
  }
  u32(v: number) {
    this.room(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  i32(v: number) {
    this.room(4);
    this.dv.setInt32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  f32(v: number) {
    this.room(4);
    this.dv.setFloat32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  f64(v: number) {
    this.room(8);
    this.dv.setFloat64(this.pos, v, true);
    this.pos += 8;
    this.length += 8;
  }
  u64(v: number | bigint) {
    this.room(8);
    this.dv.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.length += 8;
  }
  i64(v: number | bigint) {
    this.room(8);
    this.dv.setBigInt64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.length += 8;
  }
  bytes(b: Uint8Array) {
    this.room(b.length);
    this.cur.set(b, this.pos);
    this.pos += b.length;
    this.length += b.length;
  }
  str(s: string) {
    this.strBytes(new TextEncoder().encode(s));
  }
  /** A string given as its UTF-8 bytes (written as they are: a StringTable round-trips exactly). */
  strBytes(b: Uint8Array) {
    this.u64(b.length);
    this.bytes(b);
  }
  pad(align: number) {
    while (this.length % align) this.u8(0);
  }
  result(): Uint8Array[] {
    return [...this.chunks, this.cur.subarray(0, this.pos)];
  }
}

function writeScalar(s: Sink, type: GgufValueType, v: GgufScalar): void {
  switch (type) {
    case GgufValueType.U8:
      return s.u8(Number(v));
    case GgufValueType.I8:
      return s.i8(Number(v));
    case GgufValueType.U16:
      return s.u16(Number(v));
    case GgufValueType.I16:
      return s.i16(Number(v));
    case GgufValueType.U32:
      return s.u32(Number(v));
    case GgufValueType.I32:
      return s.i32(Number(v));
    case GgufValueType.F32:
      return s.f32(Number(v));
    case GgufValueType.F64:
      return s.f64(Number(v));
    case GgufValueType.BOOL:
      return s.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      return s.str(String(v));
    case GgufValueType.U64:
      return s.u64(typeof v === "bigint" ? v : Number(v));
    case GgufValueType.I64:
      return s.i64(typeof v === "bigint" ? v : Number(v));
    default:
      throw new Error(`gguf writer: cannot write value type ${type}`);
  }
}

/** Serializes a GGUF file into memory (used by writeGguf and by tests). */
export function encodeGguf(kvs: GgufKv[], tensors: GgufTensorOut[], alignment = 32): Uint8Array[] {
  const s = new Sink();
  s.bytes(new TextEncoder().encode("GGUF"));
  s.u32(3);
  s.u64(tensors.length);
  s.u64(kvs.length);
  for (const kv of kvs) {
    s.str(kv.key);
    s.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY && kv.value instanceof StringTable) {
      if (kv.itemType !== GgufValueType.STRING) throw new Error(`gguf writer: ${kv.key} holds strings`);
      s.u32(GgufValueType.STRING);
      s.u64(kv.value.length);
      for (let i = 0; i < kv.value.length; i++) s.strBytes(kv.value.bytesAt(i));
    } else if (kv.type === GgufValueType.ARRAY) {
      const items = Array.from(kv.value as ArrayLike<GgufScalar>);
      s.u32(kv.itemType!);
      s.u64(items.length);
      for (const it of items) writeScalar(s, kv.itemType!, it);
    } else {
      writeScalar(s, kv.type, kv.value as GgufScalar);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    const gt = ggmlType(t.type);
    if (!gt) throw new Error(`gguf writer: unknown type ${t.type} for ${t.name}`);
    const count = t.ne.reduce((a, b) => a * b, 1);
    const bytes = (count / gt.blockSize) * gt.blockBytes;
    if (t.ne[0]! % gt.blockSize || bytes !== t.data.length)
      throw new Error(`gguf writer: ${t.name} has ${t.data.length} bytes for [${t.ne}] ${gt.name}`);
    if (new TextEncoder().encode(t.name).length >= 64)
      throw new Error(`gguf writer: tensor name ${t.name} is too long`);
    s.str(t.name);
    s.u32(t.ne.length);
    for (const d of t.ne) s.u64(d);
    s.u32(t.type);
    s.u64(offset);
    offset += Math.ceil(bytes / alignment) * alignment;
  }
  s.pad(alignment);
  const out = s.result();
  for (const t of tensors) {
    out.push(t.data);
    const pad = (alignment - (t.data.length % alignment)) % alignment;
    if (pad) out.push(new Uint8Array(pad));
  }
  return out;
}

/** Writes a GGUF file atomically: a temporary file renamed into place once complete. */
export function writeGguf(path: string, kvs: GgufKv[], tensors: GgufTensorOut[], alignment = 32): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    for (const chunk of encodeGguf(kvs, tensors, alignment)) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Convenience builders for typed metadata entries. */
export const kv = {
  str: (key: string, value: string): GgufKv => ({ key, type: GgufValueType.STRING, value }),
  u32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.U32, value }),
  i32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.I32, value }),
  f32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.F32, value }),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: GgufValueType.BOOL, value }),
  strs: (key: string, value: string[] | StringTable): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.STRING,
    value,
  }),
  i32s: (key: string, value: ArrayLike<number>): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.I32,
    value: Array.from(value),
  }),
  f32s: (key: string, value: ArrayLike<number>): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.F32,
    value: Array.from(value),
  }),
};
