/** Memory-maps a file through the native addon, with a plain read as the fallback. */
import { readFileSync } from "node:fs";
import { native } from "../native.js";

export function mapFile(path: string): ArrayBuffer {
  try {
    return native().mapFile(path);
  } catch (e) {
    if ((e as Error).message.startsWith("lmx: the native addon")) {
      const b = readFileSync(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }
    throw e;
  }
}
