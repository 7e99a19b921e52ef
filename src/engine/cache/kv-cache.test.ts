/** The KV cache's block bookkeeping and what it tells the backend about filled pools. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backend } from "../backends/backend.js";
import { CpuBackend } from "../backends/cpu/index.js";
import { native } from "../../native.js";
import { DType } from "../tensor/dtype.js";
import { BlockPool } from "./block-pool.js";
import { KvCache } from "./kv-cache.js";

const MiB = 1024 * 1024;

/** A backend that only allocates and records what it is told is settled. */
function recorder() {
  const calls: { buffer: ArrayBuffer; from: number; to: number }[] = [];
  const backend = {
    allocate: (n: number) => new ArrayBuffer(n),
    settled: (buffer: ArrayBuffer, byteOffset: number, length: number) =>
      calls.push({ buffer, from: byteOffset, to: byteOffset + length }),
  } as unknown as Backend;
  return { backend, calls };
}

describe("block pool", () => {
  it("hands out the lowest free ids first and remembers the highest", () => {
    const p = new BlockPool(8);
    assert.equal(p.highWater(), 0);
    assert.deepEqual([p.allocate(), p.allocate(), p.allocate()], [1, 2, 3]);
    assert.equal(p.highWater(), 3);
    p.release(2);
    assert.equal(p.allocate(), 2, "a freed block is reused before a new one");
    assert.equal(p.highWater(), 3);
    p.release(3);
    p.release(2);
    assert.equal(p.highWater(), 3, "the mark never goes back");
  });
});

describe("kv cache settling", () => {
  // One layer of 8 x 128 f16 heads: 2 KiB per position, 32 KiB per 16-position block,
  // 64 blocks per 2 MiB.
  const layers = [{ kind: "full" as const, nKvHead: 8, headDim: 128 }];

  it("reports each pool's whole 2 MiB once the blocks below them are handed out", () => {
    const { backend, calls } = recorder();
    const c = new KvCache(backend, layers, { blockSize: 16, nSeq: 2, nCtx: 4096, dtype: DType.F16 });
    c.reserve(0, 16 * 62); // blocks 1..62: block 0 (null) + 62 end at 63 x 32 KiB < 2 MiB
    assert.equal(calls.length, 0);
    c.reserve(0, 16 * 63); // block 63 ends the first 2 MiB of both pools
    assert.deepEqual(
      calls.map((x) => [x.from, x.to]),
      [
        [0, 2 * MiB],
        [0, 2 * MiB],
      ],
    );
    assert.notEqual(calls[0]!.buffer, calls[1]!.buffer, "K and V pools");
    c.reserve(1, 16 * 100); // another sequence: blocks 64..163 end at 164 x 32 KiB
    assert.deepEqual(
      calls.slice(2).map((x) => [x.from, x.to]),
      [
        [2 * MiB, 4 * MiB],
        [2 * MiB, 4 * MiB],
      ],
    );
    c.truncate(1, 0);
    c.reserve(1, 16 * 100); // the same blocks again: nothing new
    assert.equal(calls.length, 4);
    for (const x of calls) assert.ok(x.to <= x.buffer.byteLength);
  });

  it("leaves pools alone on a backend that does not want to hear", () => {
    const c = new KvCache({ allocate: (n: number) => new ArrayBuffer(n) } as unknown as Backend, layers, {
      blockSize: 16,
      nSeq: 1,
      nCtx: 4096,
    });
    c.reserve(0, 4096);
    assert.equal(c.length(0), 4096);
  });
});

describe("native collapseLater", () => {
  it("takes alloc's large buffers only, and keeps their bytes", async () => {
    const big = new Uint32Array(native().alloc(4 * MiB));
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 0;
    assert.equal(native().collapseLater(big.buffer as ArrayBuffer, 0, big.byteLength), true);
    assert.throws(() => native().collapseLater(big.buffer as ArrayBuffer, 4096, big.byteLength), /outside/);
    assert.equal(native().collapseLater(native().alloc(4096), 0, 4096), false);
    assert.equal(native().collapseLater(new ArrayBuffer(4 * MiB), 0, 4 * MiB), false);
    // Whether the kernel moves them into huge pages depends on it; the bytes must not change.
    await new CpuBackend().weightsSettled(10_000);
    let bad = 0;
    for (let i = 0; i < big.length; i++) if (big[i] !== (i * 2654435761) >>> 0) bad++;
    assert.equal(bad, 0);
  });
});
