/**
 * Prints one JSON line: the cpu backend's kernel tier and a SHA-256 of its matmul outputs
 * for every block-quantized weight type, on decode-sized and prefill-sized batches with
 * ragged row counts. Kernel tiers are meant to give identical bits: the tier test runs this
 * under each tier (LMX_ISA, LMX_NATIVE_ADDON) and compares the digests.
 */
import { createHash } from "node:crypto";
import { CpuBackend } from "../engine/backends/cpu/index.js";
import { groupRows } from "../engine/quant/interleaved.js";
import { BLOCKS, DType, rowGroup } from "../engine/tensor/dtype.js";
import { Graph } from "../engine/tensor/graph.js";
import { native } from "../native.js";
import { randomBlocks, uniform } from "./random.js";

const QUANTIZED = [
  DType.Q4_0,
  DType.Q4_1,
  DType.Q5_0,
  DType.Q5_1,
  DType.Q8_0,
  DType.Q4_K,
  DType.Q5_K,
  DType.Q6_K,
  DType.MXFP4,
  DType.NVFP4,
  // What the engine runs for Q4_K, Q6_K, NVFP4 and Q8_0 weights (interleaved at load).
  DType.Q4_K_I,
  DType.Q6_K_I,
  DType.NVFP4_I,
  DType.Q8_0_I,
  DType.Q4_K_R16,
  DType.Q6_K_R16,
];

async function matmulDigests(): Promise<Record<string, string>> {
  const cpu = new CpuBackend();
  const out: Record<string, string> = {};
  for (const dt of QUANTIZED) {
    // 53 rows: a full claim of 32 and a ragged one (panels of 8 or 16 with missing rows);
    // Q4_K_R16 and Q6_K_R16 take whole groups of 16 (48 rows: three).
    const K = 768,
      N = rowGroup(dt) > 1 ? 48 : 53;
    const w = (
      dt === DType.Q4_K_R16 || dt === DType.Q6_K_R16
        ? groupRows(
            dt,
            randomBlocks(dt === DType.Q4_K_R16 ? DType.Q4_K : DType.Q6_K, (N * K) / 256, 900 + dt),
            N,
            K,
          )
        : randomBlocks(dt, (N * K) / BLOCKS[dt]!.size, 900 + dt)
    ).buffer as ArrayBuffer;
    const hash = createHash("sha256");
    for (const T of [1, 3, 16, 17, 45]) {
      const g = new Graph();
      const x = g.bind("x", DType.F32, T, K, uniform(T * K, 2, 40 + T).buffer as ArrayBuffer);
      const y = g.output(g.matmul(x, g.bind("w", dt, N, K, w)));
      const p = cpu.prepare(g);
      await p.execute();
      hash.update(new Uint8Array(p.read(y).slice().buffer));
    }
    out[DType[dt]] = hash.digest("hex");
  }
  return out;
}

const digests = await matmulDigests();
process.stdout.write(JSON.stringify({ tier: native().simdPath(), digests }) + "\n");
