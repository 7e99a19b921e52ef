/**
 * GGUF and safetensors: round trips, and bad files (truncated, corrupted, inconsistent)
 * giving clear errors that name the file and the problem, never a crash or a hang.
 */
import assert from "node:assert/strict";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createBackend } from "../engine/backends/index.js";
import { EngineModel } from "../engine/engine-model.js";
import { BLOCKS, DType } from "../engine/tensor/dtype.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { native } from "../native.js";
import { rng } from "../testing/random.js";
import { writeRandomModel } from "../testing/random-model.js";
import { readGguf } from "./gguf/read.js";
import { GgufValueType } from "./gguf/types.js";
import { encodeGguf, kv, writeGguf } from "./gguf/write.js";
import { mapFile, readFileInMemory } from "./map-file.js";
import { StringTable } from "./string-table.js";
import { openModelSource } from "./model-source.js";
import { readSafetensors } from "./safetensors.js";
import { ModelFileError } from "./tensor-source.js";
import { tokenizerFromGguf } from "../tokenizer/load.js";

const dir = mkdtempSync(join(tmpdir(), "lmx-formats-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function bytesOf(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const tinyGguf = join(dir, "tiny.gguf");
writeRandomModel(tinyGguf, {
  arch: "qwen3",
  vocab: 4096,
  hidden: 32,
  layers: 1,
  heads: 2,
  kvHeads: 1,
  headDim: 16,
  ffn: 48,
  tied: true,
});

/** Loads a model fully: parse, bind weights, one forward pass. */
async function load(path: string): Promise<void> {
  const m = new EngineModel(createBackend("cpu"), openModelSource(path), { numCtx: 16 });
  m.cache.reserve(0, 2);
  await m.forward({ tokens: [1, 2], positions: [0, 1], seqs: [0, 0], outRows: [1] });
}

/** Whether files in `folder` can be cached and mapped in 2 MiB pages here. */
function largeFileFolios(folder: string): boolean {
  if (process.platform !== "linux" || process.env.LMX_HUGE_PAGES === "0") return false;
  const [major, minor] = release().split(".").map(Number) as [number, number];
  const thp = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
  const fs = statfsSync(folder).type;
  return (
    (major > 6 || (major === 6 && minor >= 16)) &&
    !thp.includes("[never]") &&
    (fs === 0xef53 || fs === 0x58465342)
  );
}

describe("mapped weights read in place (settleFilePages)", () => {
  it("faults the ranges in, merged across alignment gaps, and reads a just-written file again in 2 MiB pages, bytes unchanged", () => {
    const path = join(dir, "weights.bin");
    const MiB = 1 << 20;
    const bytes = new Uint8Array(9 * MiB + 12345);
    const r = rng(7);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = Math.floor(r() * 256);
    bytes.fill(0x5a, 5 * MiB, 5 * MiB + 64);
    // Written 64 KiB at a time, as a download is: cached in the writes' small folios, and
    // not yet written back.
    const fd = openSync(path, "w");
    for (let o = 0; o < bytes.length; o += 65536) writeSync(fd, bytes, o, Math.min(65536, bytes.length - o));
    closeSync(fd);
    const buf = native().mapFile(path);
    // Two tensors 32 bytes apart (one run: its whole 2 MiB pages span both), and a third.
    const ranges = [32, 3 * MiB, 3 * MiB + 64, 3 * MiB - 64, 7 * MiB, 2 * MiB];
    const placed = native().settleFilePages(buf, ranges)!;
    assert.ok(placed, "a mapped file's buffer");
    assert.equal(placed.bytes, 8 * MiB - 64);
    assert.equal(placed.eligible, 2 * MiB + 2 * MiB, "[32, 6 MiB) holds 2 whole 2 MiB pages, [7, 9) MiB one");
    assert.deepEqual(new Uint8Array(buf), bytes, "the file's bytes, whatever was read again");
    // Read again exactly when under 90% of the whole pages came in as 2 MiB pages.
    assert.equal(placed.reread, placed.hugeBefore < 0.9 * placed.eligible ? placed.eligible : 0);
    // Linux 6.16+ caches ext4 and xfs files read under MADV_HUGEPAGE in 2 MiB folios.
    if (largeFileFolios(dir)) assert.ok(placed.hugeAfter >= placed.eligible, JSON.stringify(placed));
    assert.equal(native().settleFilePages(native().alloc(4 * MiB), [0, MiB]), undefined, "not a file");
    assert.equal(native().settleFilePages(readFileInMemory(path), [0, MiB]), undefined, "read into memory");
    assert.throws(() => native().settleFilePages(buf, [8 * MiB, 2 * MiB]), /range outside the buffer/);
    assert.throws(() => native().settleFilePages(buf, [0]), /expected/);
  });
});

describe("GGUF", () => {
  it("gives the header's pages back once the tokenizer has its own copy; the metadata still reads the file", () => {
    const path = join(dir, "wide-vocab.gguf");
    writeRandomModel(path, {
      arch: "qwen3",
      vocab: 40000,
      hidden: 32,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      headDim: 16,
      ffn: 48,
      tied: true,
    });
    const plain = readFileSync(path);
    const ref = readGguf(path, plain.buffer.slice(plain.byteOffset, plain.byteOffset + plain.byteLength));
    const tokens = [...(ref.metadata.get("tokenizer.ggml.tokens") as StringTable)];
    const expected = tokenizerFromGguf(ref.metadata, path).tokenizer.decode([5, 17, 300, 39999]);
    assert.ok(ref.dataStart > 512 * 1024, `header of ${ref.dataStart} bytes`);
    const rssOf = (file: string) => {
      let kb = 0;
      for (const block of readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-)/))
        if (block.split("\n")[0]!.endsWith(` ${file}`)) kb += Number(/\nRss:\s+(\d+)/.exec(block)![1]);
      return kb * 1024;
    };
    for (const mmap of [true, false]) {
      const src = openModelSource(path, { mmap });
      const { tokenizer } = src.tokenizer;
      const ids = [5, 17, 300, 39999];
      assert.equal(tokenizer.decode(ids), expected);
      // Mapped, after decoding: of the file only the page where the header ends stays
      // resident, with the pages after it the kernel mapped around that read (<= 64 KiB).
      if (mmap && process.platform === "linux")
        assert.ok(rssOf(path) <= 65536, `${rssOf(path)} bytes resident`);
      assert.deepEqual(
        [...(src.metadata.get("tokenizer.ggml.tokens") as StringTable)],
        tokens,
        `mmap ${mmap}`,
      );
    }
  });

  it("round-trips every metadata type and tensor bytes", () => {
    const kvs = [
      kv.str("general.architecture", "test"),
      { key: "u8", type: GgufValueType.U8, value: 200 },
      { key: "i8", type: GgufValueType.I8, value: -5 },
      { key: "u16", type: GgufValueType.U16, value: 60000 },
      { key: "i16", type: GgufValueType.I16, value: -30000 },
      kv.u32("u32", 4e9),
      kv.i32("i32", -2e9),
      kv.f32("f32", 0.5),
      { key: "f64", type: GgufValueType.F64, value: Math.PI },
      kv.bool("bool", true),
      { key: "u64", type: GgufValueType.U64, value: 2n ** 60n },
      { key: "i64", type: GgufValueType.I64, value: -123 },
      kv.strs("strs", ["a", "", "ü"]),
      kv.i32s("i32s", [1, -2, 3]),
      kv.f32s("f32s", [0.25, -1]),
    ];
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const file = bytesOf(
      encodeGguf(kvs, [
        { name: "w", type: 0, ne: [3, 2], data },
        { name: "v", type: 1, ne: [4], data: new Uint8Array(8) },
      ]),
    );
    const g = readGguf("mem.gguf", file.buffer as ArrayBuffer);
    assert.equal(g.metadata.get("u8"), 200);
    assert.equal(g.metadata.get("i16"), -30000);
    assert.equal(g.metadata.get("u32"), 4e9);
    assert.equal(g.metadata.get("f64"), Math.PI);
    assert.equal(g.metadata.get("u64"), 2n ** 60n);
    assert.equal(g.metadata.get("bool"), true);
    // String arrays come back as tables over the file's bytes, and write back the same.
    const strs = g.metadata.get("strs") as StringTable;
    assert.ok(strs instanceof StringTable);
    assert.deepEqual([...strs], ["a", "", "ü"]);
    assert.equal(strs.at(2), "ü");
    assert.equal(strs.at(3), undefined);
    const again = readGguf(
      "again.gguf",
      bytesOf(encodeGguf([kv.strs("strs", strs)], [])).buffer as ArrayBuffer,
    );
    assert.deepEqual([...(again.metadata.get("strs") as StringTable)], ["a", "", "ü"]);
    assert.deepEqual(Array.from(g.metadata.get("i32s") as Int32Array), [1, -2, 3]);
    const w = g.tensors.find((t) => t.name === "w")!;
    assert.deepEqual(w.shape, [2, 3]);
    assert.deepEqual(Array.from(new Float32Array(g.buffer, w.byteOffset, 6)), [1, 2, 3, 4, 5, 6]);
    assert.equal(g.tensors.find((t) => t.name === "v")!.byteOffset % 32, 0);
  });

  it("rejects truncated and corrupted files with a ModelFileError naming the file", () => {
    const good = readFileSync(tinyGguf);
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const bad = new Uint8Array(good);
      let cut = bad.length;
      if (trial % 3 === 0) cut = Math.floor(r() * bad.length);
      else
        for (let k = 0; k < 1 + (trial % 5); k++)
          bad[Math.floor(r() * Math.min(bad.length, 200_000))] = Math.floor(r() * 256);
      const buf = bad.slice(0, cut).buffer;
      try {
        readGguf("fuzz.gguf", buf);
      } catch (e) {
        assert.ok(e instanceof ModelFileError, `trial ${trial}: ${(e as Error).stack}`);
        assert.match((e as Error).message, /^fuzz\.gguf: /);
      }
    }
    // An array count far beyond the file's size: a truncation error, not an allocation failure.
    for (const itemType of [GgufValueType.STRING, GgufValueType.U8]) {
      const head = bytesOf(encodeGguf([{ key: "a", type: GgufValueType.ARRAY, itemType, value: [] }], []));
      const dv = new DataView(head.buffer, head.byteOffset);
      // magic, version, tensor and metadata counts (24 bytes), the key (8 + 1), its type and
      // the item type (4 + 4), then the array's count
      dv.setBigUint64(41, 1n << 27n, true);
      assert.throws(
        () => readGguf("huge.gguf", head.slice().buffer as ArrayBuffer),
        /^ModelFileError: huge\.gguf: truncated/,
      );
    }
  });

  it("refuses quantized weights whose block scales are NaN or infinite, naming tensor and block", async () => {
    for (const [dt, scaleAt, byte] of [
      [DType.Q4_K, 1, 0x7c],
      [DType.Q8_0, 1, 0x7e],
      [DType.MXFP4, 0, 0xff],
    ] as const) {
      const path = join(dir, `bad-scale-${DType[dt]}.gguf`);
      writeRandomModel(path, {
        arch: "qwen3",
        vocab: 4096,
        hidden: 256,
        layers: 1,
        heads: 2,
        kvHeads: 1,
        headDim: 128,
        ffn: 256,
        tied: true,
        dtype: dt,
      });
      await load(path);
      const g = readGguf(path);
      const t = g.tensors.find((x) => x.name === "blk.0.ffn_up.weight")!;
      const bytes = new Uint8Array(readFileSync(path));
      const blk = BLOCKS[dt]!.bytes;
      bytes[t.byteOffset + 3 * blk + scaleAt] = byte;
      writeFileSync(path, bytes);
      await assert.rejects(
        load(path),
        (e: Error) =>
          e instanceof ModelFileError && /blk\.0\.ffn_up\.weight block 3 .*NaN or infinite/.test(e.message),
      );
    }
  });

  it("gives clear errors for unknown architectures, missing tensors, shape mismatches and missing tokenizers", async () => {
    const g = readGguf(tinyGguf);
    const rewrite = (
      name: string,
      edit: (m: Map<string, unknown>, t: typeof g.tensors) => typeof g.tensors,
    ) => {
      const meta = new Map(g.metadata) as Map<string, unknown>;
      const tensors = edit(meta, g.tensors.slice());
      const path = join(dir, name);
      const kvs = [...meta].map(([key, value]) => {
        if (typeof value === "string") return kv.str(key, value);
        if (typeof value === "boolean") return kv.bool(key, value);
        if (typeof value === "number")
          return Number.isInteger(value) ? kv.u32(key, value) : kv.f32(key, value);
        if (value instanceof Int32Array) return kv.i32s(key, value);
        return kv.strs(key, value as string[]);
      });
      writeGguf(
        path,
        kvs,
        tensors.map((t) => ({
          name: t.name,
          type: t.type,
          ne: [...t.ne],
          data: new Uint8Array(t.buffer, t.byteOffset, t.byteLength),
        })),
      );
      return path;
    };
    const unknown = rewrite("arch.gguf", (m, t) => (m.set("general.architecture", "mamba9"), t));
    await assert.rejects(load(unknown), /arch\.gguf: unknown architecture "mamba9"/);
    const missing = rewrite("missing.gguf", (_m, t) => t.filter((x) => x.name !== "blk.0.ffn_up.weight"));
    await assert.rejects(load(missing), /missing\.gguf: missing tensor blk\.0\.ffn_up\.weight/);
    const shape = rewrite("shape.gguf", (m, t) => (m.set("qwen3.feed_forward_length", 64), t));
    await assert.rejects(load(shape), /shape\.gguf: tensor blk\.0\.ffn_gate\.weight has shape \[48, 32\]/);
    const notok = rewrite("notok.gguf", (m, t) => (m.delete("tokenizer.ggml.tokens"), t));
    await assert.rejects(load(notok), /notok\.gguf: has no tokenizer/);
    const wrongType = rewrite("type.gguf", (_m, t) =>
      t.map((x) =>
        x.name === "blk.0.attn_q.weight" ? { ...x, type: 9, ne: [32, 32], byteLength: 32 * 36 } : x,
      ),
    );
    await assert.rejects(
      load(wrongType),
      /type\.gguf: tensor blk\.0\.attn_q\.weight has type Q8_1, which lmx cannot run yet/,
    );
    await assert.rejects(load(join(dir, "nope.gguf")), /nope\.gguf: no such file/);
  });
});

describe("mapped files and buffers", () => {
  it("maps and reads files of every size byte for byte (past 2 MiB too, where memory is huge-page aligned)", () => {
    const r = rng(7);
    for (const size of [0, 1, 4095, 4097, (2 << 20) - 3, (2 << 20) + 4099, 5 * (2 << 20) + 17]) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 97) bytes[i] = Math.floor(r() * 256);
      const f = join(dir, `map-${size}.bin`);
      writeFileSync(f, bytes);
      for (const load of [mapFile, readFileInMemory]) {
        const m = new Uint8Array(load(f));
        assert.equal(m.length, size);
        assert.ok(Buffer.from(m).equals(Buffer.from(bytes)), `${load.name} of ${size} bytes differs`);
      }
    }
    for (const load of [mapFile, readFileInMemory])
      assert.throws(() => load(join(dir, "missing.bin")), /cannot open .*missing\.bin/);
  });

  it("allocates zeroed, writable buffers of every size, lazily backed or not", () => {
    for (const size of [1, 63, 4096, (1 << 20) - 1, 1 << 20, (3 << 20) + 5]) {
      const b = new Uint8Array(native().alloc(size));
      assert.equal(b.length, size);
      assert.ok(
        b.every((v) => v === 0),
        `buffer of ${size} bytes not zeroed`,
      );
      b.fill(0xa5);
      assert.equal(b[size - 1], 0xa5);
    }
  });
});

describe("safetensors", () => {
  const st = join(DEFAULT_MODEL_PATH, "model.safetensors");

  it("reads the embedded model's tensors", () => {
    const t = readSafetensors(st);
    assert.ok(t.some((e) => e.name === "model.embed_tokens.weight" && e.dtypeName === "BF16"));
  });

  it("rejects truncated and corrupted files with a ModelFileError", () => {
    const good = readFileSync(st);
    const r = rng(9);
    for (let trial = 0; trial < 200; trial++) {
      const bad = new Uint8Array(good.subarray(0, trial % 2 ? good.length : Math.floor(r() * good.length)));
      if (trial % 2) for (let k = 0; k < 3; k++) bad[Math.floor(r() * 12000)] = Math.floor(r() * 256);
      try {
        readSafetensors("fuzz.safetensors", bad.buffer);
      } catch (e) {
        assert.ok(e instanceof ModelFileError, `trial ${trial}: ${(e as Error).stack}`);
      }
    }
  });

  it("reports a Hugging Face folder without tokenizer or with an unknown architecture", async () => {
    const f = join(dir, "hf");
    mkdirSync(f);
    for (const n of ["config.json", "model.safetensors"])
      copyFileSync(join(DEFAULT_MODEL_PATH, n), join(f, n));
    await assert.rejects(load(f), /hf: missing tokenizer\.json/);
    const cfg = JSON.parse(readFileSync(join(f, "config.json"), "utf8"));
    writeFileSync(join(f, "config.json"), JSON.stringify({ ...cfg, architectures: ["FalconForCausalLM"] }));
    await assert.rejects(load(f), /config\.json: unknown architecture "FalconForCausalLM"/);
  });
});
