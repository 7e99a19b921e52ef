/**
 * `lmx pull`: manifest by tag, then every missing blob by digest, in ranged parts fetched
 * in parallel. Each part is its own `sha256-<hex>-partial-<i>` file, so an interrupted
 * pull resumes where it stopped; retries back off on transient errors; the bytes are
 * hashed before the blob takes its digest name, and the manifest is written last, so a
 * failed pull shows no model and leaves no blob a later pull would trust.
 */
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DigestError, parseDigest } from "../store/blob.js";
import { MANIFEST_MEDIA_TYPE, parseManifest, type Layer } from "../store/manifest.js";
import { displayName } from "../store/name.js";
import type { ModelStore, StoredModel } from "../store/store.js";
import { blobUrl, endpointFor, manifestUrl, type Endpoint } from "./endpoint.js";
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

function partFile(dir: string, digest: string, i: number): string {
  return join(dir, `${parseDigest(digest).replace(":", "-")}-partial-${i}`);
}

const sizeOf = (p: string) => (existsSync(p) ? statSync(p).size : 0);

export async function pullModel(store: ModelStore, raw: string, o: PullOptions = {}): Promise<StoredModel> {
  const ep = endpointFor(raw, o);
  const label = displayName(ep.name);
  const progress = o.onProgress ?? (() => {});
  const retry = { ...o.retry, signal: o.signal };
  progress({ status: "pulling manifest" });
  let text: string;
  try {
    text = await withRetry(
      `fetching the manifest of ${label}`,
      async () =>
        (
          await request(
            manifestUrl(ep),
            { headers: { Accept: MANIFEST_MEDIA_TYPE }, signal: o.signal },
            `manifest of ${label}`,
          )
        ).text(),
      retry,
    );
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404)
      throw new RegistryError(`model "${label}" was not found in the registry (${ep.base})`, 404);
    throw e;
  }
  const manifest = parseManifest(text, `the registry's manifest for ${label}`);
  const blobs = new Map<string, Layer>();
  for (const l of [manifest.config, ...manifest.layers]) blobs.set(parseDigest(l.digest), l);
  const missing = [...blobs.values()].filter((l) => !store.blobs.has(l.digest));
  mkdirSync(store.blobs.dir, { recursive: true });
  const partSize = o.partSize ?? 64 * 2 ** 20;
  const have = (l: Layer) =>
    Array.from({ length: parts(l.size, partSize) }, (_, i) =>
      sizeOf(partFile(store.blobs.dir, l.digest, i)),
    ).reduce((a, b) => a + b, 0);
  const need = missing.reduce((a, l) => a + l.size - have(l), 0);
  const fs = statfsSync(store.blobs.dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (need + MARGIN > free)
    throw new RegistryError(
      `not enough disk space for ${label}: it needs ${(need / 1e6).toFixed(1)} MB more and ${(free / 1e6).toFixed(1)} MB are free in ${store.root}`,
    );
  for (const l of [...blobs.values()]) {
    if (store.blobs.has(l.digest))
      progress({
        status: `pulling ${l.digest.slice(7, 19)}`,
        digest: l.digest,
        total: l.size,
        completed: l.size,
      });
    else await download(store, ep, l, { ...o, partSize, retry });
  }
  progress({ status: "verifying sha256 digest" });
  progress({ status: "writing manifest" });
  const m = store.putManifest(label, text);
  progress({ status: "success" });
  return m;
}

function parts(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

async function download(
  store: ModelStore,
  ep: Endpoint,
  l: Layer,
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
          blobUrl(ep, l.digest),
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
  await Promise.all(
    Array.from({ length: Math.min(n, o.concurrency ?? 4) }, async () => {
      while (next < n) await fetchPart(next++);
    }),
  );
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
  } finally {
    rmSync(tmp, { force: true });
  }
}
