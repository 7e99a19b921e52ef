/**
 * Model files as ArrayBuffers: memory-mapped (the default: zero-copy, shared with the page
 * cache and with other processes) or read into memory in huge pages (use_mmap=false), both
 * through the native addon, with a plain read as the fallback.
 */
import { readFileSync } from "node:fs";
import { native } from "../native.js";

/** How a model file becomes bytes the engine reads. */
export type FileLoader = (path: string) => ArrayBuffer;

/** Whether an error is native()'s for an addon that is not built. */
function addonMissing(e: unknown): boolean {
  return (e as Error).message.startsWith("lmx: the native addon");
}

function withFallback(path: string, f: () => ArrayBuffer): ArrayBuffer {
  try {
    return f();
  } catch (e) {
    if (addonMissing(e)) {
      const b = readFileSync(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }
    throw e;
  }
}

export function mapFile(path: string): ArrayBuffer {
  return withFallback(path, () => native().mapFile(path));
}

/**
 * The file read into private memory aligned to 2 MiB pages. Decode streams every weight per
 * token; a mapping is in huge pages only where the page cache holds the file in 2 MiB
 * folios, which a busy machine splits over time, while this copy stays in huge pages. It
 * costs the read at load and is not shared with other processes.
 */
export function readFileInMemory(path: string): ArrayBuffer {
  return withFallback(path, () => native().readFile(path));
}

/**
 * Gives back the pages of a range of a model file's buffer once nothing reads it any more
 * (the GGUF header after loading); a stray read still sees the file's bytes. A buffer
 * read without the addon is left as it is.
 */
export function releaseFileBytes(buffer: ArrayBuffer, byteOffset: number, length: number): void {
  try {
    native().releaseFileBytes(buffer, byteOffset, length);
  } catch (e) {
    if (!addonMissing(e)) throw e;
  }
}
