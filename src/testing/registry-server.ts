/**
 * A registry for tests: Ollama's registry protocol (OCI distribution paths) over real
 * HTTP on a loopback port, holding manifests and blobs in memory, with faults to inject:
 * a connection dropped mid-blob, wrong bytes for a digest, 500s before success, slow
 * answers, HTML or truncated manifests.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Faults {
  /** Drop the connection after this many bytes of the next answer for a digest (once). */
  dropAfter?: Map<string, number>;
  /** Serve different bytes for these digests. */
  corrupt?: Set<string>;
  /** Answer this many requests with 500 first. */
  fail500?: number;
  /** Wait this long before each 64 KiB of a blob. */
  slowMs?: number;
  /** Answer manifest requests with an HTML page, or with cut-off JSON. */
  manifest?: "html" | "truncated";
}

export class TestRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, string>();
  /** Hugging Face repositories: "user/repo" -> file path -> bytes. */
  readonly hf = new Map<string, Map<string, Buffer>>();
  faults: Faults = {};
  bytesServed = 0;
  readonly log: string[] = [];
  private server?: Server;
  url = "";

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server?.closeAllConnections();
      this.server?.close(() => r());
    });
  }

  private async handle(
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
  ): Promise<void> {
    const url = new URL(req.url!, this.url);
    this.log.push(`${req.method} ${url.pathname}`);
    if (this.faults.fail500 && this.faults.fail500 > 0) {
      this.faults.fail500--;
      res.writeHead(500).end("internal error");
      return;
    }
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(url.pathname);
    if (tree) {
      const files = this.hf.get(tree[1]!);
      if (!files) return void res.writeHead(404).end('{"error":"Repository not found"}');
      const list = [...files].map(([path, data]) => ({
        type: "file",
        path,
        size: data.length,
        lfs: { oid: createHash("sha256").update(data).digest("hex"), size: data.length },
      }));
      return void res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(list));
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const data = this.hf.get(resolve[1]!)?.get(decodeURIComponent(resolve[2]!));
      if (!data) return void res.writeHead(404).end();
      return this.serveBytes(req, res, data, `sha256:${createHash("sha256").update(data).digest("hex")}`);
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    const body = async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    if (m && m[2] === "manifests") {
      const key = `${m[1]}:${m[3]}`;
      if (req.method === "PUT") {
        this.manifests.set(key, (await body()).toString("utf8"));
        res.writeHead(201).end();
        return;
      }
      const text = this.manifests.get(key);
      if (!text)
        return void res
          .writeHead(404, { "Content-Type": "application/json" })
          .end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      if (this.faults.manifest === "html")
        return void res
          .writeHead(200, { "Content-Type": "text/html" })
          .end("<html><body>Sign in</body></html>");
      const out = this.faults.manifest === "truncated" ? text.slice(0, text.length >> 1) : text;
      res.writeHead(200, { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json" }).end(out);
      return;
    }
    if (m && m[2] === "blobs" && m[3] === "uploads/" && req.method === "POST") {
      res.writeHead(202, { Location: `/v2/${m[1]}/blobs/uploads/${randomUUID()}` }).end();
      return;
    }
    if (m && m[2] === "blobs" && m[3]!.startsWith("uploads/") && req.method === "PUT") {
      const data = await body();
      const digest = url.searchParams.get("digest") ?? "";
      if (`sha256:${createHash("sha256").update(data).digest("hex")}` !== digest)
        return void res.writeHead(400).end("digest mismatch");
      this.blobs.set(digest, data);
      res.writeHead(201).end();
      return;
    }
    if (m && m[2] === "blobs") {
      const digest = m[3]!;
      const data = this.blobs.get(digest);
      if (!data) return void res.writeHead(404).end();
      if (req.method === "HEAD") return void res.writeHead(200, { "Content-Length": data.length }).end();
      return this.serveBytes(req, res, data, digest);
    }
    res.writeHead(404).end();
  }

  private async serveBytes(
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
    data: Buffer,
    digest: string,
  ): Promise<void> {
    {
      if (this.faults.corrupt?.has(digest)) {
        data = Buffer.from(data);
        data[data.length >> 1] ^= 0xff;
      }
      let start = 0,
        end = data.length - 1,
        status = 200;
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), end) : end;
        status = 206;
      }
      const slice = data.subarray(start, end + 1);
      res.writeHead(status, {
        "Content-Length": slice.length,
        "Content-Type": "application/octet-stream",
        ...(status === 206 ? { "Content-Range": `bytes ${start}-${end}/${data.length}` } : {}),
      });
      const drop = this.faults.dropAfter?.get(digest);
      if (drop !== undefined) this.faults.dropAfter!.delete(digest);
      for (let off = 0; off < slice.length; off += 65536) {
        if (this.faults.slowMs) await new Promise((r) => setTimeout(r, this.faults.slowMs));
        let chunk = slice.subarray(off, off + 65536);
        if (drop !== undefined && off + chunk.length > drop) {
          chunk = chunk.subarray(0, Math.max(0, drop - off));
          this.bytesServed += chunk.length;
          res.write(chunk);
          await new Promise((r) => setTimeout(r, 10));
          res.destroy();
          return;
        }
        this.bytesServed += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
      }
      res.end();
    }
  }
}
