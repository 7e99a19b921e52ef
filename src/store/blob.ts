/**
 * Content-addressed blobs: `blobs/sha256-<hex>`, written to a temporary file in the same
 * folder and renamed into place only once their digest is known (or verified), so a
 * reader never sees a partial blob under a digest name.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const DIGEST = /^sha256[:-]([0-9a-f]{64})$/;

export class DigestError extends Error {}

/** Checks a digest string (`sha256:<hex>` or `sha256-<hex>`) and returns its `sha256:` form. */
export function parseDigest(d: string): string {
  const m = DIGEST.exec(String(d));
  if (!m) throw new DigestError(`invalid digest "${d}" (expected sha256:<64 hex digits>)`);
  return `sha256:${m[1]}`;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** ENOSPC/EDQUOT as a message a user can act on; other errors unchanged. */
export function diskError(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === "ENOSPC" || code === "EDQUOT")
    return new Error(
      `the disk holding ${dir} is full (${code}); nothing was added to the store. Free some space and try again`,
    );
  return e;
}

export interface BlobRef {
  digest: string;
  size: number;
}

export class BlobStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, "blobs");
  }

  path(digest: string): string {
    return join(this.dir, parseDigest(digest).replace(":", "-"));
  }

  /** The digest of a path that is one of this store's blobs, else undefined. */
  digestOf(path: string): string | undefined {
    const m = /[/\\]sha256-([0-9a-f]{64})$/.exec(resolve(path));
    if (!m || resolve(path) !== resolve(this.path(`sha256:${m[1]}`))) return undefined;
    return `sha256:${m[1]}`;
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  size(digest: string): number {
    return statSync(this.path(digest)).size;
  }

  /** A fresh temporary path in the blob folder (same file system, so rename is atomic). */
  tempPath(): string {
    mkdirSync(this.dir, { recursive: true });
    return join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  }

  /**
   * Streams `source` into the store while hashing it. With `expected`, a mismatch
   * discards the bytes and throws a DigestError.
   */
  async write(source: Readable, expected?: string): Promise<BlobRef> {
    const want = expected === undefined ? undefined : parseDigest(expected);
    const tmp = this.tempPath();
    const hash = createHash("sha256");
    let size = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            hash.update(c);
            size += c.length;
            yield c;
          }
        },
        createWriteStream(tmp, { flags: "wx" }),
      );
      const digest = `sha256:${hash.digest("hex")}`;
      if (want && want !== digest)
        throw new DigestError(`digest mismatch: the bytes hash to ${digest}, not ${want}`);
      renameSync(tmp, this.path(digest));
      return { digest, size };
    } catch (e) {
      throw diskError(e, this.dir);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  writeFile(path: string): Promise<BlobRef> {
    return this.write(createReadStream(path));
  }

  /** Moves a finished temporary file into the store under its digest. */
  async adopt(tmp: string): Promise<BlobRef> {
    const hash = createHash("sha256");
    let size = 0;
    for await (const c of createReadStream(tmp)) {
      hash.update(c as Buffer);
      size += (c as Buffer).length;
    }
    const digest = `sha256:${hash.digest("hex")}`;
    renameSync(tmp, this.path(digest));
    return { digest, size };
  }

  async writeBytes(bytes: Uint8Array | string): Promise<BlobRef> {
    const { Readable } = await import("node:stream");
    return this.write(Readable.from([Buffer.from(bytes)]));
  }
}
