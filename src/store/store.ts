/**
 * The model store under LMX_MODELS (default ~/.lmx/models): `blobs/sha256-…` and
 * `manifests/<host>/<namespace>/<model>/<tag>`, as Ollama lays them out. Manifests are
 * written by rename, so a model becomes visible whole or not at all; blobs no manifest
 * references are removed when a model is deleted.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { BlobStore, type BlobRef } from "./blob.js";
import {
  MANIFEST_MEDIA_TYPE,
  CONFIG_MEDIA_TYPE,
  MediaType,
  parseManifest,
  type Layer,
  type Manifest,
  type ModelConfig,
} from "./manifest.js";
import { displayName, manifestSegments, parseModelName, type ModelName } from "./name.js";

export function defaultStoreRoot(): string {
  return process.env.LMX_MODELS || join(homedir(), ".lmx", "models");
}

export class ModelNotFoundError extends Error {
  constructor(readonly model: string) {
    super(`model "${model}" not found`);
  }
}

/** A model in the store, with its manifest and config read. */
export interface StoredModel {
  name: string;
  manifest: Manifest;
  /** sha256 of the manifest bytes, hex. */
  digest: string;
  config: ModelConfig;
  modifiedAt: Date;
  /** Sum of config and layer sizes. */
  size: number;
}

export class ModelStore {
  readonly blobs: BlobStore;

  constructor(readonly root: string = defaultStoreRoot()) {
    this.blobs = new BlobStore(root);
  }

  private manifestPath(n: ModelName): string {
    return join(this.root, "manifests", ...manifestSegments(n));
  }

  /** Reads a model by name; undefined when absent. Throws on an invalid name or manifest. */
  get(rawName: string): StoredModel | undefined {
    const n = parseModelName(rawName);
    const path = this.manifestPath(n);
    if (!existsSync(path)) return undefined;
    const bytes = readFileSync(path);
    const manifest = parseManifest(bytes.toString("utf8"), path);
    let config: ModelConfig;
    try {
      config = JSON.parse(readFileSync(this.blobs.path(manifest.config.digest), "utf8"));
    } catch (e) {
      throw new Error(
        `model "${displayName(n)}": its config blob is missing or unreadable (${(e as Error).message})`,
      );
    }
    return {
      name: displayName(n),
      manifest,
      digest: createHash("sha256").update(bytes).digest("hex"),
      config,
      modifiedAt: statSync(path).mtime,
      size: manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0),
    };
  }

  require(name: string): StoredModel {
    const m = this.get(name);
    if (!m) throw new ModelNotFoundError(name);
    return m;
  }

  /** Every model, sorted by name. Unreadable manifests are skipped, not fatal. */
  list(): StoredModel[] {
    const base = join(this.root, "manifests");
    const out: StoredModel[] = [];
    const walk = (dir: string, parts: string[]) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name.startsWith(".")) continue;
        const p = [...parts, e.name];
        if (e.isDirectory() && p.length < 4) walk(join(dir, e.name), p);
        else if (e.isFile() && p.length === 4) {
          try {
            const m = this.get(`${p[0]}/${p[1]}/${p[2]}:${p[3]}`);
            if (m) out.push(m);
          } catch {
            // A broken manifest must not hide the others.
          }
        }
      }
    };
    walk(base, []);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Writes the config blob and the manifest; the model appears atomically. */
  async put(rawName: string, config: Omit<ModelConfig, "rootfs">, layers: Layer[]): Promise<StoredModel> {
    const n = parseModelName(rawName);
    for (const l of layers)
      if (!this.blobs.has(l.digest)) throw new Error(`layer ${l.digest} is not in the store`);
    const full: ModelConfig = {
      ...config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    };
    const cfg: BlobRef = await this.blobs.writeBytes(JSON.stringify(full));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: cfg.digest, size: cfg.size },
      layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    };
    this.writeManifest(n, JSON.stringify(manifest));
    return this.get(displayName(n))!;
  }

  /** The manifest's bytes as stored (push sends them unchanged). */
  manifestText(rawName: string): string {
    const m = this.require(rawName);
    return readFileSync(this.manifestPath(parseModelName(m.name)), "utf8");
  }

  /** Installs a manifest whose blobs are all in the store already (pull's last step). */
  putManifest(rawName: string, text: string): StoredModel {
    const n = parseModelName(rawName);
    const m = parseManifest(text, `manifest for ${displayName(n)}`);
    for (const l of [m.config, ...m.layers])
      if (!this.blobs.has(l.digest))
        throw new Error(`blob ${l.digest} of ${displayName(n)} is not in the store`);
    this.writeManifest(n, text);
    return this.get(displayName(n))!;
  }

  private writeManifest(n: ModelName, text: string): void {
    const path = this.manifestPath(n);
    mkdirSync(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.tmp-${randomBytes(6).toString("hex")}`);
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }

  copy(from: string, to: string): StoredModel {
    const n = parseModelName(to);
    this.writeManifest(n, this.manifestText(from));
    return this.get(displayName(n))!;
  }

  /** Deletes a model and every blob no remaining model references. */
  remove(name: string): void {
    const n = parseModelName(name);
    const path = this.manifestPath(n);
    if (!existsSync(path)) throw new ModelNotFoundError(name);
    rmSync(path);
    // Drop empty parent folders up to manifests/.
    let dir = dirname(path);
    const stop = join(this.root, "manifests");
    while (dir.startsWith(stop) && dir !== stop && readdirSync(dir).length === 0) {
      rmSync(dir, { recursive: true });
      dir = dirname(dir);
    }
    this.collectGarbage();
  }

  /** Removes unreferenced blobs and stale temporary files. */
  collectGarbage(): void {
    const used = new Set<string>();
    for (const m of this.list()) {
      used.add(m.manifest.config.digest);
      for (const l of m.manifest.layers) used.add(l.digest);
    }
    if (!existsSync(this.blobs.dir)) return;
    for (const f of readdirSync(this.blobs.dir)) {
      if (/^sha256-[0-9a-f]{64}$/.test(f)) {
        if (!used.has(f.replace("sha256-", "sha256:"))) rmSync(join(this.blobs.dir, f), { force: true });
      } else if (f.startsWith(".tmp-") || f.includes("-partial")) {
        // Partial downloads stay for a week so that a later pull can resume them.
        // Temporary files of a live process are young; old ones are leftovers of a crash.
        const p = join(this.blobs.dir, f);
        const maxAge = f.includes("-partial") ? 7 * 86400_000 : 3600_000;
        if (Date.now() - statSync(p).mtimeMs > maxAge) rmSync(p, { force: true });
      }
    }
  }

  /** The blob of the layer with this media type, if any. */
  layer(m: StoredModel, mediaType: string): Layer | undefined {
    return m.manifest.layers.find((l) => l.mediaType === mediaType);
  }

  /** A text layer's content (template, system, license, params JSON …). */
  text(m: StoredModel, mediaType: string): string | undefined {
    const l = this.layer(m, mediaType);
    return l ? this.blobText(l.digest) : undefined;
  }

  blobText(digest: string): string {
    try {
      return readFileSync(this.blobs.path(digest), "utf8");
    } catch (e) {
      throw new Error(`blob ${digest} is missing from the store (${(e as Error).message})`);
    }
  }

  /** Path of the model weights (GGUF). */
  modelPath(m: StoredModel): string {
    const l = this.layer(m, MediaType.model);
    if (!l) throw new Error(`model "${m.name}" has no weights layer`);
    const p = this.blobs.path(l.digest);
    if (!existsSync(p)) throw new Error(`model "${m.name}": its weights blob ${l.digest} is missing`);
    return p;
  }
}
