/** safetensors writer (used to build Hugging Face style fixtures and, later, exports). */
import { writeFileSync } from "node:fs";

export interface SafetensorsTensorOut {
  name: string;
  /** safetensors dtype string, e.g. "BF16", "F32", "U8". */
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export function encodeSafetensors(
  tensors: SafetensorsTensorOut[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}

export function writeSafetensors(
  path: string,
  tensors: SafetensorsTensorOut[],
  metadata?: Record<string, string>,
): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}
