/**
 * `lmx push`: asks the registry which blobs it has (HEAD), uploads the others (POST an
 * upload session, PUT the bytes with their digest), then PUTs the manifest unchanged.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { MANIFEST_MEDIA_TYPE } from "../store/manifest.js";
import type { ModelStore } from "../store/store.js";
import { blobUrl, endpointFor, manifestUrl, uploadUrl } from "./endpoint.js";
import { RegistryError, request, withRetry, type RetryOptions } from "./http-retry.js";
import type { Progress } from "./pull.js";

export interface PushOptions {
  insecure?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  retry?: RetryOptions;
}

export async function pushModel(store: ModelStore, raw: string, o: PushOptions = {}): Promise<void> {
  const m = store.require(raw);
  const ep = endpointFor(m.name, o);
  const progress = o.onProgress ?? (() => {});
  const retry = { ...o.retry, signal: o.signal };
  progress({ status: "retrieving manifest" });
  for (const l of [m.manifest.config, ...m.manifest.layers]) {
    const status = `pushing ${l.digest.slice(7, 19)}`;
    const head = await withRetry(
      `checking ${l.digest.slice(0, 19)}`,
      async () => {
        const r = await fetch(blobUrl(ep, l.digest), { method: "HEAD", signal: o.signal });
        if (r.status >= 500) throw new RegistryError(`the registry answered ${r.status}`, r.status);
        return r.status;
      },
      retry,
    );
    if (head === 200) {
      progress({ status, digest: l.digest, total: l.size, completed: l.size });
      continue;
    }
    await withRetry(
      `uploading ${l.digest.slice(0, 19)}`,
      async () => {
        const start = await request(
          uploadUrl(ep),
          { method: "POST", signal: o.signal },
          "starting an upload",
        );
        const loc = start.headers.get("location");
        if (!loc) throw new RegistryError("the registry started an upload without a Location");
        const url = new URL(loc, uploadUrl(ep));
        url.searchParams.set("digest", l.digest);
        let sent = 0;
        const body = Readable.toWeb(
          createReadStream(store.blobs.path(l.digest)).on("data", (c) => {
            sent += c.length;
            progress({ status, digest: l.digest, total: l.size, completed: sent });
          }),
        ) as ReadableStream;
        await request(
          url.toString(),
          {
            method: "PUT",
            body,
            headers: { "Content-Type": "application/octet-stream", "Content-Length": String(l.size) },
            signal: o.signal,
            duplex: "half",
          } as RequestInit,
          `uploading ${l.digest.slice(0, 19)}`,
        );
      },
      retry,
    );
  }
  progress({ status: "pushing manifest" });
  await withRetry(
    "pushing the manifest",
    () =>
      request(
        manifestUrl(ep),
        {
          method: "PUT",
          body: store.manifestText(m.name),
          headers: { "Content-Type": MANIFEST_MEDIA_TYPE },
          signal: o.signal,
        },
        "pushing the manifest",
      ),
    retry,
  );
  progress({ status: "success" });
}
