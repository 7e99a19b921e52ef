/**
 * `lmx pull hf.co/USER/REPO[:QUANT]`: a GGUF file from a Hugging Face repository, chosen
 * by quantization (default Q4_K_M, else Q8_0, else the first), downloaded like a registry
 * blob (ranged, resumable, verified against the sha256 Hugging Face lists for it) and made
 * a model in the store. LMX_HF_ENDPOINT replaces https://huggingface.co.
 */
import { mkdirSync } from "node:fs";
import { createModel } from "../store/create-model.js";
import { parseModelName } from "../store/name.js";
import type { ModelStore, StoredModel } from "../store/store.js";
import { checkDiskSpace, downloadBlob, type PullOptions } from "./download.js";
import { RegistryError, request, withRetry } from "./http-retry.js";

export function isHfName(raw: string): boolean {
  return /^(hf\.co|huggingface\.co)\//i.test(raw);
}

interface HfFile {
  type?: string;
  path?: string;
  size?: number;
  lfs?: { oid?: string; size?: number };
}

const PREFERRED = ["q4_k_m", "q8_0", "q6_k", "q5_k_m", "q4_0"];

/** The GGUF file for a quantization tag ("latest" = the preferred available one). */
export function chooseGguf(files: HfFile[], tag: string): HfFile {
  const ggufs = files.filter(
    (f) => f.type !== "directory" && /\.gguf$/i.test(f.path ?? "") && !/mmproj/i.test(f.path!),
  );
  if (!ggufs.length) throw new RegistryError("the repository has no GGUF files");
  const quantOf = (f: HfFile) =>
    /[-_.]((?:i?q\d[\w]*|f16|bf16|f32|mxfp4|nvfp4))(?:-\d{5}-of-\d{5})?\.gguf$/i
      .exec(f.path!)?.[1]
      ?.toLowerCase();
  const want = tag.toLowerCase();
  let pick: HfFile | undefined;
  if (want === "latest") {
    for (const q of PREFERRED) if ((pick = ggufs.find((f) => quantOf(f) === q))) break;
    pick ??= [...ggufs].sort((a, b) => a.path!.localeCompare(b.path!))[0];
  } else
    pick = ggufs.find((f) => quantOf(f) === want) ?? ggufs.find((f) => f.path!.toLowerCase().includes(want));
  if (!pick)
    throw new RegistryError(
      `no GGUF file for "${tag}" (available: ${[...new Set(ggufs.map((f) => quantOf(f) ?? f.path))].join(", ")})`,
      404,
    );
  if (/-\d{5}-of-\d{5}\.gguf$/i.test(pick.path!))
    throw new RegistryError(`${pick.path} is split into several files, which lmx cannot load yet`);
  return pick;
}

export async function pullFromHf(store: ModelStore, raw: string, o: PullOptions = {}): Promise<StoredModel> {
  const n = parseModelName(raw.replace(/^huggingface\.co\//i, "hf.co/"));
  const endpoint = (process.env.LMX_HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const repo = `${n.namespace}/${n.model}`;
  const progress = o.onProgress ?? (() => {});
  const retry = { ...o.retry, signal: o.signal };
  progress({ status: "pulling manifest" });
  let files: HfFile[];
  try {
    const text = await withRetry(
      `listing ${repo}`,
      async () =>
        (
          await request(`${endpoint}/api/models/${repo}/tree/main`, { signal: o.signal }, `files of ${repo}`)
        ).text(),
      retry,
    );
    files = JSON.parse(text);
    if (!Array.isArray(files)) throw new SyntaxError("not a list");
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 404 || e.status === 401))
      throw new RegistryError(`Hugging Face repository ${repo} was not found (or is private)`, 404);
    if (e instanceof SyntaxError)
      throw new RegistryError(
        `Hugging Face answered the file list of ${repo} with something that is not a JSON list`,
      );
    throw e;
  }
  const file = chooseGguf(files, n.tag);
  const oid = file.lfs?.oid;
  const size = file.lfs?.size ?? file.size;
  if (!oid || !/^[0-9a-f]{64}$/.test(oid) || !size)
    throw new RegistryError(`${file.path} has no sha256 to verify it against`);
  const digest = `sha256:${oid}`;
  mkdirSync(store.blobs.dir, { recursive: true });
  if (!store.blobs.has(digest)) {
    checkDiskSpace(store, size, raw);
    await downloadBlob(
      store,
      `${endpoint}/${repo}/resolve/main/${file.path!.split("/").map(encodeURIComponent).join("/")}`,
      { digest, size },
      {
        ...o,
        partSize: o.partSize ?? 64 * 2 ** 20,
        retry,
      },
    );
  }
  progress({ status: "verifying sha256 digest" });
  progress({ status: "writing manifest" });
  const m = await createModel(store, raw, `FROM ${store.blobs.path(digest)}\n`);
  progress({ status: "success" });
  return m;
}
