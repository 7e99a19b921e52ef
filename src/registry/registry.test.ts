/**
 * Pull and push against a registry written for the tests (real HTTP on loopback) with
 * injected faults. Assertions are on what a user sees: the model list, the bytes, the
 * bytes transferred on resume, and the error messages.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { createModel } from "../store/create-model.js";
import { MediaType } from "../store/manifest.js";
import { ModelStore } from "../store/store.js";
import { TestRegistry } from "../testing/registry-server.js";
import { pullModel } from "./pull.js";
import { pushModel } from "./push.js";

const FAST = { attempts: 3, baseDelayMs: 5 };

describe("pull and push", () => {
  let dir: string,
    src: ModelStore,
    reg: TestRegistry,
    host: string,
    name: string,
    modelDigest: string,
    modelSize: number;
  let n = 0;
  const fresh = () => new ModelStore(join(dir, `dst-${n++}`));
  const names = (s: ModelStore) => s.list().map((m) => m.name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "lmx-reg-"));
    reg = new TestRegistry();
    await reg.start();
    host = reg.url.replace("http://", "");
    name = `${host}/me/tiny:v1`;
    src = new ModelStore(join(dir, "src"));
    await createModel(
      src,
      name,
      `FROM ${DEFAULT_MODEL_PATH}\nSYSTEM "be brief"\nPARAMETER temperature 0.5\n`,
    );
    const layer = src.layer(src.get(name)!, MediaType.model)!;
    modelDigest = layer.digest;
    modelSize = layer.size;
  });
  after(async () => {
    await reg.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    reg.faults = {};
    reg.bytesServed = 0;
  });

  it("push then pull round-trips a model byte for byte; a second push uploads nothing", async () => {
    const seen: string[] = [];
    await pushModel(src, name, { insecure: true, onProgress: (p) => seen.push(p.status) });
    assert.equal(seen.at(-1), "success");
    assert.ok(reg.blobs.has(modelDigest));
    const puts = reg.log.filter((l) => l.startsWith("PUT")).length;
    await pushModel(src, name, { insecure: true });
    assert.equal(
      reg.log.filter((l) => l.startsWith("PUT") && l.includes("/uploads/")).length,
      puts - 1,
      "only the manifest is sent again",
    );
    const dst = fresh();
    await pullModel(dst, name, { insecure: true, partSize: 4 * 2 ** 20 });
    assert.deepEqual(names(dst), [name]);
    assert.equal(dst.manifestText(name), src.manifestText(name));
    for (const l of [src.get(name)!.manifest.config, ...src.get(name)!.manifest.layers])
      assert.ok(readFileSync(dst.blobs.path(l.digest)).equals(readFileSync(src.blobs.path(l.digest))));
    assert.ok(
      reg.log.filter((l) => l.includes(modelDigest) && l.startsWith("GET")).length >= 4,
      "ranged parts",
    );
  });

  it("a dropped connection leaves nothing visible; the next pull transfers only the missing bytes", async () => {
    const dst = fresh();
    reg.faults = { dropAfter: new Map([[modelDigest, 3_000_000]]) };
    await assert.rejects(
      pullModel(dst, name, { insecure: true, partSize: 64 * 2 ** 20, retry: { attempts: 1 } }),
      /connection|ended|terminated|socket|fetch failed/i,
    );
    assert.deepEqual(names(dst), []);
    assert.ok(!dst.blobs.has(modelDigest));
    assert.ok(readdirSync(dst.blobs.dir).some((f) => f.includes("-partial")));
    const before = reg.bytesServed;
    assert.ok(before >= 3_000_000 - 65536 && before < modelSize);
    reg.bytesServed = 0;
    await pullModel(dst, name, { insecure: true });
    assert.deepEqual(names(dst), [name]);
    const model = reg.blobs.get(modelDigest)!;
    assert.ok(readFileSync(dst.blobs.path(modelDigest)).equals(model));
    const small = [...reg.blobs.entries()]
      .filter(([d]) => d !== modelDigest)
      .reduce((a, [, b]) => a + b.length, 0);
    // What the server wrote before the drop but the client never read (socket buffers, at
    // most a few hundred KiB) is missing too and comes again; a full re-download would be
    // the whole blob.
    const inFlight = 1 << 20;
    assert.ok(
      reg.bytesServed <= modelSize - before + small + inFlight,
      `resumed transfer ${reg.bytesServed} of ${modelSize}`,
    );
    assert.deepEqual(
      readdirSync(dst.blobs.dir).filter((f) => f.includes("-partial")),
      [],
    );
  });

  it("within one pull, a drop is retried from where it stopped", async () => {
    const dst = fresh();
    reg.faults = { dropAfter: new Map([[modelDigest, 1_000_000]]) };
    await pullModel(dst, name, { insecure: true, retry: FAST });
    assert.deepEqual(names(dst), [name]);
    assert.ok(reg.bytesServed < modelSize + 1_100_000);
  });

  it("wrong bytes for a digest are rejected with a clear error and discarded", async () => {
    const dst = fresh();
    reg.faults = { corrupt: new Set([modelDigest]) };
    await assert.rejects(pullModel(dst, name, { insecure: true }), /failed verification.*discarded/);
    assert.deepEqual(names(dst), []);
    assert.ok(!dst.blobs.has(modelDigest));
    assert.deepEqual(
      readdirSync(dst.blobs.dir).filter((f) => f.includes(modelDigest.slice(7))),
      [],
    );
  });

  it("404, 500s then success, HTML and truncated manifests, missing blobs, unknown layers", async () => {
    await assert.rejects(
      pullModel(fresh(), `${host}/me/nope:v1`, { insecure: true }),
      /not found in the registry/,
    );
    reg.faults = { fail500: 2 };
    const ok = fresh();
    await pullModel(ok, name, { insecure: true, retry: FAST });
    assert.deepEqual(names(ok), [name]);
    reg.faults = { manifest: "html" };
    await assert.rejects(pullModel(fresh(), name, { insecure: true }), /not valid JSON/);
    reg.faults = { manifest: "truncated" };
    await assert.rejects(pullModel(fresh(), name, { insecure: true }), /not valid JSON/);
    reg.faults = {};
    const m = JSON.parse(reg.manifests.get("me/tiny:v1")!);
    reg.manifests.set(
      "me/broken:v1",
      JSON.stringify({
        ...m,
        layers: [...m.layers, { mediaType: MediaType.license, digest: `sha256:${"0".repeat(64)}`, size: 3 }],
      }),
    );
    const b = fresh();
    await assert.rejects(pullModel(b, `${host}/me/broken:v1`, { insecure: true }), /404/);
    assert.deepEqual(names(b), []);
    reg.manifests.set(
      "me/odd:v1",
      JSON.stringify({
        ...m,
        layers: [{ mediaType: "application/x-unknown", digest: m.layers[0].digest, size: 1 }],
      }),
    );
    await assert.rejects(
      pullModel(fresh(), `${host}/me/odd:v1`, { insecure: true }),
      /unknown layer media type/,
    );
    await assert.rejects(pullModel(fresh(), name), /--insecure|fetch failed|ECONNREFUSED|SSL|TLS|EPROTO/i);
    await assert.rejects(pullModel(fresh(), "bad name!"), /invalid model name/);
  });

  it("a slow registry still completes; an aborted pull leaves nothing visible", async () => {
    reg.faults = { slowMs: 2 };
    const dst = fresh();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(pullModel(dst, name, { insecure: true, signal: ac.signal }));
    assert.deepEqual(names(dst), []);
    reg.faults = { slowMs: 1 };
    await pullModel(dst, name, { insecure: true });
    assert.deepEqual(names(dst), [name]);
  });

  it("Hugging Face GGUF repositories: the file for the requested quantization, verified", async () => {
    const gguf = readFileSync(src.blobs.path(modelDigest));
    reg.hf.set(
      "someone/Tiny-GGUF",
      new Map([
        ["README.md", Buffer.from("hi")],
        ["tiny-Q8_0.gguf", gguf],
        ["tiny-Q4_K_M.gguf", Buffer.concat([gguf, Buffer.alloc(64)])],
      ]),
    );
    process.env.LMX_HF_ENDPOINT = reg.url;
    try {
      const dst = fresh();
      await pullModel(dst, "hf.co/someone/Tiny-GGUF");
      await pullModel(dst, "hf.co/someone/Tiny-GGUF:Q8_0");
      assert.deepEqual(
        names(dst).sort(),
        ["hf.co/someone/Tiny-GGUF:Q8_0", "hf.co/someone/Tiny-GGUF:latest"].sort(),
      );
      assert.equal(
        dst.get("hf.co/someone/Tiny-GGUF:latest")!.manifest.layers[0]!.size,
        gguf.length + 64,
        "latest = Q4_K_M",
      );
      assert.equal(dst.layer(dst.get("hf.co/someone/Tiny-GGUF:Q8_0")!, MediaType.model)!.digest, modelDigest);
      await assert.rejects(
        pullModel(dst, "hf.co/someone/Tiny-GGUF:Q2_K"),
        /no GGUF file for "Q2_K" \(available: q8_0, q4_k_m\)/,
      );
      await assert.rejects(pullModel(dst, "hf.co/someone/Missing"), /not found/);
      reg.faults = { corrupt: new Set([modelDigest]) };
      await assert.rejects(pullModel(fresh(), "hf.co/someone/Tiny-GGUF:Q8_0"), /failed verification/);
    } finally {
      delete process.env.LMX_HF_ENDPOINT;
    }
  });
});
