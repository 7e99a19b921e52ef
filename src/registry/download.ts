/**
 * Downloading one blob of known digest and size: ranged parts fetched in parallel, each
 * its own `sha256-<hex>-partial-<i>` file so that an interrupted download resumes, retries
 * with backoff, and sha256 verification before the blob takes its digest name.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { DigestError, diskError, parseDigest } from "../store/blob.js";
import type { Layer } from "../store/manifest.js";
import type { ModelStore } from "../store/store.js";
import { RegistryError, request, withRetry, type RetryOptions } from "./http-retry.js";

export interface Progress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullOptions {
  insecure?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Bytes per ranged part (default 64 MiB). */
  partSize?: number;
  /** Parts downloaded at once (default 4). */
  concurrency?: number;
  retry?: RetryOptions;
}

const MARGIN = 64 * 2 ** 20;

export function partFile(dir: string, digest: string, i: number): string {
  return join(dir, `${parseDigest(digest).replace(":", "-")}-partial-${i}`);
}

export const sizeOf = (p: string) => (existsSync(p) ? statSync(p).size : 0);

/** Free bytes in the store's file system, checked against what a pull still needs. */
export function checkDiskSpace(store: ModelStore, need: number, label: string): void {
  const fs = statfsSync(store.blobs.dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (need + MARGIN > free)
    throw new RegistryError(
      `not enough disk space for ${label}: it needs ${(need / 1e6).toFixed(1)} MB more and ${(free / 1e6).toFixed(1)} MB are free in ${store.root}`,
    );
}

export function parts(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** Downloads one blob of known digest and size from `url` into the store (resumable, verified). */
export async function downloadBlob(
  store: ModelStore,
  url: string,
  l: Pick<Layer, "digest" | "size">,
  o: PullOptions & { partSize: number; retry: RetryOptions },
): Promise<void> {
  const n = parts(l.size, o.partSize);
  const files = Array.from({ length: n }, (_, i) => partFile(store.blobs.dir, l.digest, i));
  const ranges = files.map((_, i) => [i * o.partSize, Math.min(l.size, (i + 1) * o.partSize)] as const);
  let done = files.reduce((a, f, i) => a + Math.min(sizeOf(f), ranges[i]![1] - ranges[i]![0]), 0);
  const status = `pulling ${l.digest.slice(7, 19)}`;
  const report = () => o.onProgress?.({ status, digest: l.digest, total: l.size, completed: done });
  report();
  const fetchPart = async (i: number) => {
    const [start, end] = ranges[i]!;
    const file = files[i]!;
    await withRetry(
      `downloading ${l.digest.slice(0, 19)}`,
      async () => {
        let got = sizeOf(file);
        if (got > end - start) {
          rmSync(file);
          done -= got;
          got = 0;
        }
        if (got === end - start) return;
        const res = await request(
          url,
          { headers: { Range: `bytes=${start + got}-${end - 1}` }, signal: o.signal },
          `blob ${l.digest.slice(0, 19)}`,
        );
        if (res.status === 200 && start + got > 0) {
          // The server ignored the range: the first part can restart from byte 0, others cannot.
          if (start > 0)
            throw new RegistryError(
              `the registry does not serve byte ranges of ${l.digest}; pull with larger parts`,
            );
          rmSync(file);
          done -= got;
          got = 0;
        }
        const out = createWriteStream(file, { flags: "a" });
        try {
          let left = end - start - got;
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            const c = chunk.length > left ? chunk.subarray(0, left) : chunk;
            if (c.length === 0) break;
            if (!out.write(c)) await new Promise<void>((r) => out.once("drain", () => r()));
            left -= c.length;
            done += c.length;
            report();
          }
          if (left > 0) throw new Error(`the connection ended ${left} bytes early`);
        } finally {
          await new Promise<void>((r) => out.end(r));
        }
      },
      o.retry,
    );
  };
  // A small pool of part downloads.
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: Math.min(n, o.concurrency ?? 4) }, async () => {
        while (next < n) await fetchPart(next++);
      }),
    );
  } catch (e) {
    throw diskError(e, store.blobs.dir);
  }
  // Hash the parts in order while joining them; only matching bytes get the digest name.
  const hash = createHash("sha256");
  const tmp = store.blobs.tempPath();
  try {
    const out = createWriteStream(tmp);
    for (const f of files)
      for await (const c of createReadStream(f)) {
        hash.update(c as Buffer);
        if (!out.write(c)) await new Promise<void>((r) => out.once("drain", () => r()));
      }
    await new Promise<void>((r) => out.end(r));
    const digest = `sha256:${hash.digest("hex")}`;
    if (digest !== parseDigest(l.digest)) {
      for (const f of files) rmSync(f, { force: true });
      throw new DigestError(
        `blob ${l.digest} failed verification: the downloaded bytes hash to ${digest}; they were discarded`,
      );
    }
    renameSync(tmp, store.blobs.path(l.digest));
    for (const f of files) rmSync(f, { force: true });
  } catch (e) {
    throw diskError(e, store.blobs.dir);
  } finally {
    rmSync(tmp, { force: true });
  }
}
