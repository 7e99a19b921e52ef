// Decode attention alone: one query row against a long f16 (or q8_0) KV cache, for every
// layer of a Qwen3-0.6B-shaped model (16 query heads, 8 KV heads of 128), each layer with
// its own cache so that the rows come from memory as they do in decode. Prints the time
// per layer and the K/V bytes read per second, medians over runs.
// The pools are filled, then moved into 2 MiB pages as a KV cache's filled part is
// (backend.settled); LMX_HUGE_PAGES=0 leaves them in 4 KiB pages.
//   node bench/attention-decode.mjs [positions=4096] [threads] [runs=7] [f16|q8_0]
import { CpuBackend } from "../dist/engine/backends/cpu/index.js";
import { Graph } from "../dist/engine/tensor/graph.js";
import { DType, rowBytes } from "../dist/engine/tensor/dtype.js";
import { native } from "../dist/native.js";
import { uniform } from "../dist/testing/random.js";

const P = Number(process.argv[2] ?? 4096),
  threads = Number(process.argv[3] ?? 0),
  runs = Number(process.argv[4] ?? 7),
  kvType = process.argv[5] === "q8_0" ? DType.Q8_0 : DType.F16;
const layers = Number(process.env.LAYERS ?? 28),
  nHead = 16,
  nKv = 8,
  hd = 128,
  bs = 32;
const cpu = new CpuBackend(threads || undefined);
const blocks = Math.ceil(P / bs);
const rowB = rowBytes(kvType, nKv * hd);
const g = new Graph();
const batch = g.batchInputs(1, 0, 1, blocks);
const outs = [];
for (let l = 0; l < layers; l++) {
  const pools = [0, 1].map(() => {
    const buf = cpu.allocate(blocks * bs * rowB);
    const u8 = new Uint8Array(buf);
    if (kvType === DType.F16) {
      // f16 values in [-1, 1): sign, exponent 0..14 below the bias, any mantissa.
      const r = uniform(u8.length / 2, 1, 7 + l);
      const u16 = new Uint16Array(buf);
      for (let i = 0; i < u16.length; i++)
        u16[i] = (r[i] < 0 ? 0x8000 : 0) | ((5 + ((i * 7) % 10)) << 10) | (i & 0x3ff);
    } else {
      for (let i = 0; i < u8.length; i++) u8[i] = (i * 37 + l) & 0xff;
      for (let o = 0; o < u8.length; o += 34) ((u8[o] = 0x00), (u8[o + 1] = 0x20)); // scale 2^-7
    }
    cpu.settled(buf, 0, buf.byteLength);
    return g.bind(`kv${l}`, kvType, blocks * bs, nKv * hd, buf);
  });
  const q = g.bind(`q${l}`, DType.F32, 1, nHead * hd, uniform(nHead * hd, 1, 100 + l).buffer);
  outs.push(
    g.output(
      g.attention(q, { k: pools[0], v: pools[1] }, batch, {
        nHead,
        nKvHead: nKv,
        headDim: hd,
        scale: 1 / Math.sqrt(hd),
        blockSize: bs,
      }),
    ),
  );
}
const p = cpu.prepare(g);
p.setInput("positions", [P - 1]);
p.setInput("rowSeq", [0]);
p.setInput(
  "blockTables",
  Array.from({ length: blocks }, (_, i) => i),
);
const times = [];
await cpu.weightsSettled(60_000);
await p.execute();
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  await p.execute();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const ms = times[times.length >> 1];
const bytes = layers * 2 * P * rowB;
console.log(
  `${P} positions, ${DType[kvType]} cache, ${native().threads()} thread(s): ${((ms * 1000) / layers).toFixed(1)} us per layer, ` +
    `${(bytes / ms / 1e6).toFixed(1)} GB/s of K/V (median of ${runs}; ${(bytes / 1e6).toFixed(0)} MB per pass)`,
);
