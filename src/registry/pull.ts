/**
 * `lmx pull`: manifest by tag, then every missing blob by digest, in ranged parts fetched
 * in parallel. Each part is its own `sha256-<hex>-partial-<i>` file, so an interrupted
 * pull resumes where it stopped; retries back off on transient errors; the bytes are
 * hashed before the blob takes its digest name, and the manifest is written last, so a
 * failed pull shows no model and leaves no blob a later pull would trust.
 */
import { mkdirSync } from "node:fs";
import { parseDigest } from "../store/blob.js";
import { MANIFEST_MEDIA_TYPE, parseManifest, type Layer } from "../store/manifest.js";
import { displayName } from "../store/name.js";
import type { ModelStore, StoredModel } from "../store/store.js";
import { blobUrl, endpointFor, manifestUrl } from "./endpoint.js";
import {
  checkDiskSpace,
  downloadBlob,
  partFile,
  parts,
  sizeOf,
  type Progress,
  type PullOptions,
} from "./download.js";
import { RegistryError, request, withRetry } from "./http-retry.js";
import { isHfName, pullFromHf } from "./hugging-face.js";

export type { Progress, PullOptions };

export async function pullModel(store: ModelStore, raw: string, o: PullOptions = {}): Promise<StoredModel> {
  if (isHfName(raw)) return pullFromHf(store, raw, o);
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
  checkDiskSpace(store, need, label);
  for (const l of [...blobs.values()]) {
    if (store.blobs.has(l.digest))
      progress({
        status: `pulling ${l.digest.slice(7, 19)}`,
        digest: l.digest,
        total: l.size,
        completed: l.size,
      });
    else await downloadBlob(store, blobUrl(ep, l.digest), l, { ...o, partSize, retry });
  }
  progress({ status: "verifying sha256 digest" });
  progress({ status: "writing manifest" });
  const m = store.putManifest(label, text);
  progress({ status: "success" });
  return m;
}
