/**
 * Every op on the cpu backend against the reference backend, on random inputs with
 * awkward sizes, and the cpu results against themselves across thread counts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { native } from "../../native.js";
import { groupRows, interleaveNvfp4 } from "../quant/interleaved.js";
import { randomBlocks, uniform } from "../../testing/random.js";
import { BLOCKS, DType, fromF32, rowBytes } from "../tensor/dtype.js";
import { Graph, type Tensor } from "../tensor/graph.js";
import { NO_BARRIER, OP_INTS, Op, RopePairing } from "../tensor/ops.js";
import { compilePlan } from "../tensor/plan.js";
import type { Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";
import { ReferenceBackend } from "./reference/index.js";

const backends: Backend[] = [new ReferenceBackend(), new CpuBackend()];

function rand(
  g: Graph,
  name: string,
  rows: number,
  cols: number,
  seed: number,
  dt = DType.F32,
  scale = 1,
): Tensor {
  return g.bind(name, dt, rows, cols, fromF32(uniform(rows * cols, scale, seed), dt).buffer as ArrayBuffer);
}

/** Builds the same graph for each backend and returns each backend's output values. */
async function runBoth(
  build: (g: Graph) => { out: Tensor; inputs?: Record<string, number[]> },
): Promise<Float32Array[]> {
  const results: Float32Array[] = [];
  for (const b of backends) {
    const g = new Graph();
    const { out, inputs } = build(g);
    g.output(out);
    const p = b.prepare(g);
    for (const [k, v] of Object.entries(inputs ?? {})) p.setInput(k, v);
    await p.execute();
    results.push(p.read(out).slice());
  }
  return results;
}

function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let scale = 1e-6,
    err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  assert.ok(err / scale <= tol, `${what}: max error ${err} relative ${err / scale} > ${tol}`);
}

describe("cpu backend matches the reference backend", () => {
  for (const dt of [DType.F32, DType.F16, DType.BF16]) {
    for (const [T, K, N] of [
      [1, 7, 5],
      [1, 256, 64],
      [2, 33, 13],
      [3, 100, 9],
      [4, 64, 12],
      [5, 257, 31],
      [17, 96, 40],
      [64, 128, 50],
    ] as const) {
      it(`matmul ${DType[dt]} T=${T} K=${K} N=${N}`, async () => {
        const [ref, cpu] = await runBoth((g) => ({
          out: g.matmul(rand(g, "x", T, K, 1), rand(g, "w", N, K, 2, dt), rand(g, "b", 1, N, 3)),
        }));
        assertClose(cpu!, ref!, 1e-5, "matmul");
      });
    }
  }

  for (const qt of [
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
    DType.Q4_K_I,
    DType.Q6_K_I,
    DType.NVFP4_I,
    DType.Q8_0_I,
  ]) {
    it(`${DType[qt]} weights: getRows exactly, matmul (GEMV and GEMM, with a per-tensor scale)`, async () => {
      const K = 512,
        N = 13,
        V = 9;
      const wbuf = randomBlocks(qt, (N * K) / BLOCKS[qt]!.size, 50 + qt).buffer as ArrayBuffer;
      const tbuf = randomBlocks(qt, (V * K) / BLOCKS[qt]!.size, 60 + qt).buffer as ArrayBuffer;
      const [r0, c0] = await runBoth((g) => ({
        out: g.getRows(g.bind("t", qt, V, K, tbuf), g.input("ids", 1, 4)),
        inputs: { ids: [8, 0, 3, 3] },
      }));
      assertClose(c0!, r0!, 0, "getRows");
      // 1 and 5 tokens take the decode path (one weight pass for all tokens), 20 and 70 the
      // int8 GEMM (panels of 8 rows: 13 = 8 + 5; token chunks of 64 with tails).
      for (const T of [1, 5, 20, 70]) {
        const [ref, cpu] = await runBoth((g) => {
          const w = g.bind("w", qt, N, K, wbuf);
          w.outScale = qt === DType.NVFP4 || qt === DType.NVFP4_I ? 0.37 : 1;
          return { out: g.matmul(rand(g, "x", T, K, 70 + T), w) };
        });
        assertClose(cpu!, ref!, 1e-5, `matmul T=${T}`);
      }
    });
  }

  for (const dt of [DType.Q4_K_R16, DType.Q6_K_R16] as const)
    it(`${DType[dt]} weights (rows in groups of 16): getRows exactly, matmul for 1-70 tokens, codes and scales at their extremes`, async () => {
      const K = 512,
        N = 48; // three groups
      const q6 = dt === DType.Q6_K_R16,
        bytes = q6 ? 210 : 144;
      const q = randomBlocks(q6 ? DType.Q6_K : DType.Q4_K, (N * K) / 256, 91 + dt);
      // The largest sums the int32 lanes hold, in the second group: Q4_K codes all 15 and
      // every scale and min 63; Q6_K codes all 63 under scales of 127, and in the third group
      // codes all 0 (-32) under scales of -128.
      const extreme = q.slice();
      for (let b = 32; b < 64; b++)
        if (q6) extreme.fill(0xff, bytes * b, bytes * b + 192).fill(0x7f, bytes * b + 192, bytes * b + 208);
        else extreme.fill(0xff, bytes * b + 4, bytes * b + 144);
      if (q6)
        for (let b = 64; b < 96; b++)
          extreme.fill(0, bytes * b, bytes * b + 192).fill(0x80, bytes * b + 192, bytes * b + 208);
      for (const [what, src] of [
        ["random", q],
        ["extreme", extreme],
      ] as const) {
        const wbuf = groupRows(dt, src, N, K).buffer as ArrayBuffer;
        const [r0, c0] = await runBoth((g) => ({
          out: g.getRows(g.bind("t", dt, N, K, wbuf), g.input("ids", 1, 5)),
          inputs: { ids: [47, 0, 17, 17, 31] },
        }));
        assertClose(c0!, r0!, 0, `${what} getRows`);
        // 1-17 tokens take the decode dots (tiles of 4 tokens with tails), 20 and 70 the int8 GEMM.
        for (const T of [1, 2, 3, 5, 17, 20, 70])
          for (const first of what === "extreme" ? [1, -1] : [0]) {
            const x = first
              ? new Float32Array(T * K).map((_, i) => (i % 256 === 0 ? first : 1))
              : uniform(T * K, 1, 70 + T);
            const [ref, cpu] = await runBoth((g) => ({
              out: g.matmul(
                g.bind("x", DType.F32, T, K, x.buffer as ArrayBuffer),
                g.bind("w", dt, N, K, wbuf),
              ),
            }));
            assertClose(cpu!, ref!, 1e-5, `${what} matmul T=${T} first ${first}`);
          }
      }
    });

  it("quantized matmul at the extremes: largest codes against largest activations", async () => {
    // The int8 kernels sum products in 16 bits before widening where the codes allow it;
    // every code at its largest (or, for signed forms, its most negative) against
    // activation codes of 127 (stored as 255 where activations are biased by 128) is the
    // case that would overflow if a type were summed too far. Activations of one value
    // all quantize to -127 for K-quants (their scale takes the sign of the first largest
    // element), so the second pattern makes the first of every 256 negative: the rest
    // then quantize to +127.
    const codeBytes: [DType, number, number, number][] = [
      [DType.Q4_0, 2, 18, 0xff],
      [DType.Q4_1, 4, 20, 0xff],
      [DType.Q5_0, 2, 22, 0xff],
      [DType.Q5_1, 4, 24, 0xff],
      [DType.Q8_0, 2, 34, 0x81],
      [DType.Q4_K, 16, 144, 0xff],
      [DType.Q5_K, 16, 176, 0xff],
      [DType.Q6_K, 0, 192, 0xff],
      [DType.Q6_K, 0, 192, 0x00],
      [DType.Q4_K_I, 16, 144, 0xff],
      [DType.Q6_K_I, 0, 192, 0xff],
      [DType.Q6_K_I, 0, 192, 0x00],
      [DType.NVFP4_I, 8, 72, 0x77],
      [DType.Q8_0_I, 16, 272, 0x81],
      [DType.Q8_0_I, 16, 272, 0x80],
      [DType.MXFP4, 1, 17, 0x77],
      [DType.NVFP4, 4, 36, 0x77],
    ];
    for (const [qt, from, to, fill] of codeBytes) {
      const K = 512,
        N = 9;
      const spec = BLOCKS[qt]!;
      const nb = (N * K) / spec.size;
      const w = randomBlocks(qt, nb, 40 + qt);
      for (let b = 0; b < nb; b++) w.fill(fill, b * spec.bytes + from, b * spec.bytes + to);
      const wbuf = w.buffer as ArrayBuffer;
      for (const T of [1, 20])
        for (const first of [1, -1]) {
          const x = new Float32Array(T * K).map((_, i) => (i % 256 === 0 ? first : 1));
          const [ref, cpu] = await runBoth((g) => ({
            out: g.matmul(g.bind("x", DType.F32, T, K, x.buffer as ArrayBuffer), g.bind("w", qt, N, K, wbuf)),
          }));
          assertClose(cpu!, ref!, 1e-5, `${DType[qt]} fill ${fill} T=${T} first ${first}`);
        }
    }
  });

  it("blocks of 32: row lengths that leave a tail after the decode dots' steps of four blocks", async () => {
    for (const qt of [DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q8_0, DType.MXFP4]) {
      for (const K of [32, 96, 544]) {
        const N = 7;
        const wbuf = randomBlocks(qt, (N * K) / 32, 30 + K + qt).buffer as ArrayBuffer;
        for (const T of [1, 3]) {
          const [ref, cpu] = await runBoth((g) => ({
            out: g.matmul(rand(g, "x", T, K, 5 + T), g.bind("w", qt, N, K, wbuf)),
          }));
          assertClose(cpu!, ref!, 1e-5, `${DType[qt]} K=${K} T=${T}`);
        }
      }
    }
  });

  it("NVFP4 and NVFP4_I matmul with every scale byte (subnormal, NaN, sign bit), scales far apart and odd block counts", async () => {
    // The decode kernel takes 64-blocks in pairs and decodes scales in registers, with a
    // table path for pairs holding a subnormal or NaN scale: cover both, and a lone block.
    // The GEMM turns the two scales of a pair of sub-blocks into integer multipliers of at
    // most 32767, and rows where they do not fit take a float path: rows 1, 4, 7, 10 hold
    // a pair 15 * 2^12 apart (does not fit), rows 2, 5, 8 pairs 15 * 2^11 apart (the
    // largest that fits) and a zero scale beside the largest; rows 0, 3, 6, 9 a NaN scale
    // among normal ones (read as zero).
    // NVFP4_I (pairs of blocks: even counts only) re-encodes the same bytes.
    for (const [qt, K] of [
      [DType.NVFP4, 64],
      [DType.NVFP4, 192],
      [DType.NVFP4, 576],
      [DType.NVFP4_I, 128],
      [DType.NVFP4_I, 384],
    ] as const) {
      const N = 11;
      const nb = (N * K) / 64;
      const wbytes = randomBlocks(DType.NVFP4, nb, 90 + K);
      // Small normal scales (2^-6 up), and in every third block the unusual bytes.
      const unusual = [0, 1, 2, 3, 4, 5, 6, 7, 0x7f, 0xff, 0x80, 0x87, 0x88, 0x8f];
      const farApart: Record<number, number[]> = {
        0: [0x7f, 0x38, 0x38, 0xff],
        1: [0x6f, 0x01, 0x67, 0x01],
        2: [0x01, 0x67, 0x00, 0x7e],
      };
      for (let b = 0; b < nb; b++)
        for (let s = 0; s < 4; s++) {
          const row = Math.floor((b * 64) / K),
            first = (b * 64) % K === 0;
          const far = first ? farApart[row % 3] : undefined;
          wbytes[b * 36 + s] = far
            ? far[s]!
            : b % 3 === 0
              ? unusual[(b * 4 + s) % unusual.length]!
              : 0x08 + ((b + s) % 16);
        }
      const wbuf = (qt === DType.NVFP4 ? wbytes : interleaveNvfp4(wbytes)).buffer as ArrayBuffer;
      for (const T of [1, 3, 20]) {
        const [ref, cpu] = await runBoth((g) => ({
          out: g.matmul(rand(g, "x", T, K, 7 + T), g.bind("w", qt, N, K, wbuf)),
        }));
        assertClose(cpu!, ref!, 1e-5, `${DType[qt]} matmul K=${K} T=${T}`);
      }
    }
  });

  it("getRows from f16, bf16 and f32 tables", async () => {
    for (const dt of [DType.F32, DType.F16, DType.BF16]) {
      const [ref, cpu] = await runBoth((g) => ({
        out: g.getRows(rand(g, "t", 50, 37, 4, dt), g.input("ids", 1, 6)),
        inputs: { ids: [0, 49, 3, 3, 17, 8] },
      }));
      assertClose(cpu!, ref!, 0, "getRows");
    }
  });

  it("rmsNorm with and without weight, and fused add+norm", async () => {
    for (const D of [1, 15, 256, 1000]) {
      const [r1, c1] = await runBoth((g) => ({
        out: g.rmsNorm(rand(g, "x", 5, D, 5), rand(g, "w", 1, D, 6), 1e-6),
      }));
      assertClose(c1!, r1!, 1e-6, "rmsNorm");
      const [r2, c2] = await runBoth((g) => ({ out: g.rmsNorm(rand(g, "x", 3, D, 5), null, 1e-5) }));
      assertClose(c2!, r2!, 1e-6, "rmsNorm without weight");
      const [r3, c3] = await runBoth((g) => {
        const s = g.add(rand(g, "a", 4, D, 7), rand(g, "b", 4, D, 8));
        const n = g.rmsNorm(s, rand(g, "w", 1, D, 9), 1e-6);
        return { out: g.add(n, s) };
      });
      assertClose(c3!, r3!, 1e-6, "add+rmsNorm");
    }
  });

  it("rope: both pairings, partial rotation, frequency factors and fused head norm", async () => {
    for (const pairing of [RopePairing.Neox, RopePairing.Interleaved]) {
      for (const [hd, nRot] of [
        [32, 32],
        [64, 32],
        [6, 6],
      ] as const) {
        const [ref, cpu] = await runBoth((g) => ({
          out: g.rope(rand(g, "x", 4, 3 * hd, 10), g.input("pos", 1, 4), {
            nHead: 3,
            headDim: hd,
            nRot,
            theta: 10000,
            pairing,
            freqFactors: rand(g, "ff", 1, nRot / 2, 11, DType.F32, 0.5),
            norm: rand(g, "nw", 1, hd, 12),
            normEps: 1e-6,
          }),
          inputs: { pos: [0, 1, 100, 4095] },
        }));
        assertClose(cpu!, ref!, 1e-5, `rope pairing ${pairing} hd ${hd}`);
      }
    }
  });

  it("swiglu, geglu and add", async () => {
    for (const op of ["swiglu", "geglu", "add"] as const) {
      const [ref, cpu] = await runBoth((g) => ({
        out: g[op](rand(g, "a", 3, 77, 13, DType.F32, 6), rand(g, "b", 3, 77, 14)),
      }));
      assertClose(cpu!, ref!, 1e-5, op);
    }
  });

  it("a gated activation fused into the quantized matmul after it: the unfused pair's bits, on both backends", async () => {
    const K = 512,
      N = 21;
    for (const qt of [DType.Q4_K, DType.Q8_0, DType.NVFP4]) {
      const wbuf = randomBlocks(qt, (N * K) / BLOCKS[qt]!.size, 90 + qt).buffer as ArrayBuffer;
      for (const op of ["swiglu", "geglu"] as const) {
        for (const T of [1, 5, 70]) {
          const results: Float32Array[][] = [];
          for (const b of backends) {
            const both: Float32Array[] = [];
            for (const keepGlu of [false, true]) {
              const g = new Graph();
              const glu = g[op](rand(g, "a", T, K, 13 + T, DType.F32, 4), rand(g, "b", T, K, 14 + T));
              const out = g.matmul(glu, g.bind("w", qt, N, K, wbuf));
              g.output(out);
              if (keepGlu) g.output(glu); // a GLU result read elsewhere stays its own node
              const ops = compilePlan(g).nodes.map((n) => n.op);
              assert.equal(
                ops.includes(op === "swiglu" ? Op.SwiGlu : Op.GeGlu),
                keepGlu,
                `${op} node present`,
              );
              const p = b.prepare(g);
              await p.execute();
              both.push(p.read(out).slice());
            }
            assert.deepEqual(
              both[0],
              both[1],
              `${b.name} ${DType[qt]} ${op} T=${T}: fused and unfused differ`,
            );
            results.push(both);
          }
          // The AVX2 exp is within 2 ulp of the reference's, and an activation that sits on an
          // int8 rounding boundary can take the other code: one step, not an error in the fusion.
          assertClose(results[1]![0]!, results[0]![0]!, 1e-3, `${DType[qt]} ${op} T=${T} cpu vs reference`);
        }
      }
    }
  });

  it("gate and up projections fused with their gated activation: the unfused nodes' bits, on both backends", async () => {
    const K = 256;
    // 136 rows: claims of 16 (decode) or 32 (int8 GEMM) leave a short last claim; 100 rows
    // also end on a scalar tail (the unfused GLU splits elements between threads anywhere
    // on a multiple of 8, so there the two agree within the exp's 2 ulp, not in bits).
    for (const N of [136, 100]) {
      for (const dt of [DType.F32, DType.F16, DType.Q8_0, DType.Q4_K_I, DType.NVFP4]) {
        const elems = N * K;
        const wbufs = [0, 1].map((j) =>
          dt === DType.F32 || dt === DType.F16
            ? (fromF32(uniform(elems, 0.1, 200 + j), dt).buffer as ArrayBuffer)
            : (randomBlocks(dt, elems / BLOCKS[dt]!.size, 210 + j + dt).buffer as ArrayBuffer),
        );
        for (const op of ["swiglu", "geglu"] as const) {
          // 1 and 5: decode; 20: int8 GEMM or the float row-block path; 70: the GEMM tiles.
          for (const T of [1, 5, 20, 70]) {
            const what = `${DType[dt]} N=${N} ${op} T=${T}`;
            const results: Float32Array[][] = [];
            for (const b of backends) {
              const both: Float32Array[] = [];
              for (const keepGate of [false, true]) {
                const g = new Graph();
                const x = rand(g, "x", T, K, 220 + T);
                const [wg, wu] = [0, 1].map((j) => g.bind(`w${j}`, dt, N, K, wbufs[j]!));
                wg!.outScale = dt === DType.NVFP4 ? 0.37 : 1;
                wu!.outScale = dt === DType.NVFP4 ? 1.9 : 1;
                const gate = g.matmul(x, wg!);
                const out = g[op](gate, g.matmul(x, wu!));
                g.output(out);
                if (keepGate) g.output(gate); // a projection read elsewhere stays its own node
                const ops = compilePlan(g).nodes.map((n) => n.op);
                assert.equal(ops.includes(Op.MatmulGlu), !keepGate, `${what}: fused node present`);
                const p = b.prepare(g);
                await p.execute();
                both.push(p.read(out).slice());
              }
              if (N % 8 === 0 || b.name === "reference")
                assert.deepEqual(both[0], both[1], `${b.name} ${what}: fused and unfused differ`);
              else assertClose(both[0]!, both[1]!, 1e-6, `${b.name} ${what}: fused vs unfused`);
              results.push(both);
            }
            assertClose(results[1]![0]!, results[0]![0]!, 1e-3, `${what}: cpu vs reference`);
          }
        }
      }
    }
  });

  it("RMSNorms folded into the quantized matmuls reading them, residual adds into the matmuls before them: the unfused nodes' bits", async () => {
    const K = 256,
      F = 256;
    const wq = (qt: DType, rows: number, seed: number) =>
      randomBlocks(qt, (rows * K) / BLOCKS[qt]!.size, seed).buffer as ArrayBuffer;
    // Two projections of different types reading one norm, each adding into the residual
    // stream (from either side of the add), an FFN with fused gate and up reading a norm
    // without weight, and a down projection whose K is the FFN's.
    for (const [qa, qb] of [
      [DType.Q4_K, DType.Q6_K],
      [DType.Q8_0, DType.Q4_K_I],
      [DType.NVFP4, DType.Q8_0],
    ] as const) {
      const bufs = {
        a: wq(qa, K, 400 + qa),
        b: wq(qb, K, 410 + qb),
        g: wq(qa, F, 420 + qa),
        u: wq(qa, F, 430 + qa),
        d: wq(qb === DType.Q4_K_I ? DType.Q4_K : qb, K, 440 + qb),
      };
      const dDown = qb === DType.Q4_K_I ? DType.Q4_K : qb;
      const build = (g: Graph, keep: boolean, T: number) => {
        const x = rand(g, "x", T, K, 450 + T, DType.F32, 3);
        const wn = rand(g, "wn", 1, K, 451);
        const h = g.rmsNorm(x, wn, 1e-6);
        const pa = g.matmul(h, g.bind("wa", qa, K, K, bufs.a));
        const x1 = g.add(x, pa);
        const pb = g.matmul(h, g.bind("wb", qb, K, K, bufs.b));
        const x2 = g.add(pb, x1);
        const f = g.rmsNorm(x2, null, 1e-5);
        const glu = g.swiglu(
          g.matmul(f, g.bind("wg", qa, F, K, bufs.g)),
          g.matmul(f, g.bind("wu", qa, F, K, bufs.u)),
        );
        const down = g.matmul(glu, g.bind("wd", dDown, K, F, bufs.d));
        const y = g.add(x2, down);
        // Read elsewhere (an output), a norm or projection result stays its own node.
        if (keep) for (const t of [h, pa, pb, f, down]) g.output(t);
        return g.output(y);
      };
      for (const T of [1, 5, 20, 70]) {
        const what = `${DType[qa]}/${DType[qb]} T=${T}`;
        const results: Float32Array[][] = [];
        for (const b of backends) {
          const both: Float32Array[] = [];
          for (const keep of [false, true]) {
            const g = new Graph();
            const out = build(g, keep, T);
            const plan = compilePlan(g);
            const ops = plan.nodes.map((n) => n.op);
            assert.equal(
              ops.includes(Op.RmsNorm) || ops.includes(Op.AddRmsNorm),
              keep,
              `${what}: norm nodes`,
            );
            assert.equal(ops.includes(Op.Add) || ops.includes(Op.AddRmsNorm), keep, `${what}: add nodes`);
            const p = b.prepare(g);
            await p.execute();
            both.push(p.read(out).slice());
          }
          assert.deepEqual(both[0], both[1], `${b.name} ${what}: fused and unfused differ`);
          results.push(both);
        }
        assertClose(results[1]![0]!, results[0]![0]!, 1e-3, `${what}: cpu vs reference`);
      }
    }
  });

  it("attention over the paged cache: GQA, two sequences, sliding window, chunked prefill", async () => {
    const nHead = 4,
      nKv = 2,
      hd = 40,
      bs = 4;
    for (const window of [0, 5]) {
      const results: Float32Array[] = [];
      for (const b of backends) {
        const kpool = b.allocate(16 * bs * nKv * hd * 2),
          vpool = b.allocate(16 * bs * nKv * hd * 2);
        const run = async (T: number, pos: number[], seq: number[], seed: number) => {
          const g = new Graph();
          const kv = {
            k: g.bind("k", DType.F16, 16 * bs, nKv * hd, kpool),
            v: g.bind("v", DType.F16, 16 * bs, nKv * hd, vpool),
          };
          const batch = g.batchInputs(T, 0, 2, 5);
          g.kvStore(kv, rand(g, "kx", T, nKv * hd, seed), rand(g, "vx", T, nKv * hd, seed + 1), batch, bs);
          const out = g.output(
            g.attention(rand(g, "q", T, nHead * hd, seed + 2), kv, batch, {
              nHead,
              nKvHead: nKv,
              headDim: hd,
              scale: 0.15,
              blockSize: bs,
              slidingWindow: window,
            }),
          );
          const p = b.prepare(g);
          p.setInput("positions", pos);
          p.setInput("rowSeq", seq);
          p.setInput("blockTables", [3, 7, 1, 9, 0, 2, 5, 11, 0, 0]);
          await p.execute();
          return p.read(out).slice();
        };
        // A prefill of 7 tokens of seq 0 and 3 of seq 1 in one batch, then a chunk continuing both.
        const first = await run(10, [0, 1, 2, 3, 4, 5, 6, 0, 1, 2], [0, 0, 0, 0, 0, 0, 0, 1, 1, 1], 20);
        const second = await run(4, [7, 8, 3, 9], [0, 0, 1, 0], 30);
        const all = new Float32Array(first.length + second.length);
        all.set(first);
        all.set(second, first.length);
        results.push(all);
      }
      assertClose(results[1]!, results[0]!, 1e-3, `attention window ${window}`);
    }
  });
});

describe("long attention", () => {
  it("spans several key tiles of the online softmax (600 positions, window 300 and none; 150 positions of 4-head groups x 128 dims)", async () => {
    const bs = 32,
      slots = 32 * bs;
    for (const [T, nHead, nKv, hd, window] of [
      [600, 2, 1, 16, 0],
      [600, 2, 1, 16, 300],
      [150, 8, 2, 128, 0],
      [150, 8, 2, 128, 70],
    ] as const) {
      const results: Float32Array[] = [];
      for (const b of backends) {
        const kpool = b.allocate(slots * nKv * hd * 2),
          vpool = b.allocate(slots * nKv * hd * 2);
        const g = new Graph();
        const kv = {
          k: g.bind("k", DType.F16, slots, nKv * hd, kpool),
          v: g.bind("v", DType.F16, slots, nKv * hd, vpool),
        };
        const batch = g.batchInputs(T, 0, 1, 20);
        g.kvStore(
          kv,
          rand(g, "kx", T, nKv * hd, 41, DType.F32, 3),
          rand(g, "vx", T, nKv * hd, 42),
          batch,
          bs,
        );
        const out = g.output(
          g.attention(rand(g, "q", T, nHead * hd, 43, DType.F32, 3), kv, batch, {
            nHead,
            nKvHead: nKv,
            headDim: hd,
            scale: 0.25,
            blockSize: bs,
            slidingWindow: window,
          }),
        );
        const p = b.prepare(g);
        p.setInput(
          "positions",
          Array.from({ length: T }, (_, i) => i),
        );
        p.setInput("rowSeq", new Array(T).fill(0));
        p.setInput(
          "blockTables",
          Array.from({ length: 20 }, (_, i) => ((i * 7) % 31) + 1),
        );
        await p.execute();
        results.push(p.read(out).slice());
      }
      assertClose(
        results[1]!,
        results[0]!,
        1e-3,
        `attention over ${T} positions, ${nHead}/${nKv} heads of ${hd}, window ${window}`,
      );
    }
  });
});

describe("decode attention", () => {
  it("one query row over a long cache (several key tiles, window and none) matches the reference", async () => {
    const bs = 16,
      slots = 40 * bs,
      nHead = 8,
      nKv = 2,
      hd = 64,
      filled = 300;
    for (const window of [0, 100]) {
      const results: Float32Array[] = [];
      for (const b of backends) {
        const kpool = b.allocate(slots * nKv * hd * 2),
          vpool = b.allocate(slots * nKv * hd * 2);
        const step = async (T: number, first: number, seed: number) => {
          const g = new Graph();
          const kv = {
            k: g.bind("k", DType.F16, slots, nKv * hd, kpool),
            v: g.bind("v", DType.F16, slots, nKv * hd, vpool),
          };
          const batch = g.batchInputs(T, 0, 1, 40);
          g.kvStore(
            kv,
            rand(g, "kx", T, nKv * hd, seed, DType.F32, 2),
            rand(g, "vx", T, nKv * hd, seed + 1),
            batch,
            bs,
          );
          const opts = { nHead, nKvHead: nKv, headDim: hd, scale: 0.2, blockSize: bs, slidingWindow: window };
          const out = g.output(
            g.attention(rand(g, "q", T, nHead * hd, seed + 2, DType.F32, 2), kv, batch, opts),
          );
          const p = b.prepare(g);
          p.setInput(
            "positions",
            Array.from({ length: T }, (_, i) => first + i),
          );
          p.setInput("rowSeq", new Array(T).fill(0));
          p.setInput(
            "blockTables",
            Array.from({ length: 40 }, (_, i) => (i * 11) % 40),
          );
          await p.execute();
          return p.read(out).slice();
        };
        await step(filled, 0, 50);
        const one = await step(1, filled, 60);
        const two = await step(1, filled + 1, 70);
        results.push(new Float32Array([...one, ...two]));
      }
      assertClose(results[1]!, results[0]!, 1e-3, `decode attention, window ${window}`);
    }
  });
});

/**
 * A decode step of several sequences over a cache written by a chunked prefill: rows of
 * different sequences split the keys into chunks of 128 positions (attention_split.c);
 * lengths straddle chunk edges, and the head shapes reach the paired, odd-group, padded and
 * scalar (head size not a multiple of 8) paths. Returns one backend's decode outputs.
 */
async function decodeSteps(
  b: Backend,
  nHead: number,
  nKv: number,
  hd: number,
  window: number,
  lengths: readonly number[],
  dt: DType.F16 | DType.Q8_0 = DType.F16,
): Promise<Float32Array> {
  const bs = 32,
    perSeq = 40,
    nSeq = lengths.length,
    slots = (nSeq * perSeq + 1) * bs;
  const kpool = b.allocate(slots * rowBytes(dt, nKv * hd)),
    vpool = b.allocate(slots * rowBytes(dt, nKv * hd));
  // Sequence s owns blocks s + 1 + nSeq * i (interleaved, so no sequence is contiguous).
  const tables = Array.from({ length: nSeq * perSeq }, (_, i) => {
    const s = Math.floor(i / perSeq);
    return s + 1 + nSeq * (i % perSeq);
  });
  // The prefill only stores K/V (the reference's attention over long prompts is slow, and
  // prompt attention has its own tests); the decode steps store and attend.
  const step = async (pos: number[], seq: number[], seed: number, attend: boolean) => {
    const T = pos.length;
    const g = new Graph();
    const kv = {
      k: g.bind("k", dt, slots, nKv * hd, kpool),
      v: g.bind("v", dt, slots, nKv * hd, vpool),
    };
    const batch = g.batchInputs(T, 0, nSeq, perSeq);
    g.kvStore(
      kv,
      rand(g, "kx", T, nKv * hd, seed, DType.F32, 3),
      rand(g, "vx", T, nKv * hd, seed + 1),
      batch,
      bs,
    );
    const opts = { nHead, nKvHead: nKv, headDim: hd, scale: 0.3, blockSize: bs, slidingWindow: window };
    const out = attend
      ? g.output(g.attention(rand(g, "q", T, nHead * hd, seed + 2, DType.F32, 3), kv, batch, opts))
      : null;
    const p = b.prepare(g);
    p.setInput("positions", pos);
    p.setInput("rowSeq", seq);
    p.setInput("blockTables", tables);
    await p.execute();
    return out ? p.read(out).slice() : new Float32Array(0);
  };
  for (let s = 0; s < nSeq; s++)
    for (let at = 0; at < lengths[s]!; at += 256) {
      const n = Math.min(256, lengths[s]! - at);
      await step(
        Array.from({ length: n }, (_, i) => at + i),
        new Array(n).fill(s),
        100 + s * 10 + at,
        false,
      );
    }
  const one = await step(
    [...lengths],
    lengths.map((_, s) => s),
    7,
    true,
  );
  const two = await step(
    lengths.map((l) => l + 1),
    lengths.map((_, s) => s),
    8,
    true,
  );
  return new Float32Array([...one, ...two]);
}

describe("split decode attention", () => {
  const shapes = [
    [16, 8, 128], // Qwen3: query heads in pairs per KV head, 8 at a time
    [12, 4, 24], // groups of 3: a pair and a single, padded to 16 heads, 8-wide slabs only
    [12, 3, 16], // groups of 4: two pairs per KV head, padded to 16 heads
    [6, 2, 40], // head size not a multiple of 8: the scalar path
  ] as const;
  for (const [nHead, nKv, hd] of shapes)
    it(`one row per sequence over chunks of the cache matches the reference (${nHead}/${nKv} heads of ${hd})`, async () => {
      for (const window of [0, 300]) {
        const results: Float32Array[] = [];
        for (const b of backends) results.push(await decodeSteps(b, nHead, nKv, hd, window, [700, 255, 1]));
        assertClose(results[1]!, results[0]!, 1e-3, `split decode ${nHead}/${nKv}x${hd} window ${window}`);
      }
      // Short rows take shorter chunks (at least 32 positions, four or five per row).
      for (const lengths of [[1], [100, 5]]) {
        const results: Float32Array[] = [];
        for (const b of backends) results.push(await decodeSteps(b, nHead, nKv, hd, 0, lengths));
        assertClose(results[1]!, results[0]!, 1e-3, `short split decode ${nHead}/${nKv}x${hd} ${lengths}`);
      }
    });

  it("a sequence's consecutive rows (a decode row and drafts) match the reference, with each row's bits alone", async () => {
    // Speculative decoding verifies a decode row and the drafts fed after it in one pass:
    // the split kernel takes such a group chunk by chunk, each row over its own keys, so
    // every row must come out as it does in a decode step of its own (the runner's drafts
    // then give exactly the tokens decoding one at a time gives).
    const nHead = 16,
      nKv = 8,
      hd = 128,
      bs = 32,
      perSeq = 40,
      nSeq = 2,
      slots = (nSeq * perSeq + 1) * bs;
    const tables = Array.from(
      { length: nSeq * perSeq },
      (_, i) => Math.floor(i / perSeq) + 1 + nSeq * (i % perSeq),
    );
    const pos = [300, 301, 302, 303, 40],
      seq = [0, 0, 0, 0, 1],
      T = pos.length;
    const q = uniform(T * nHead * hd, 3, 77);
    const opts = { nHead, nKvHead: nKv, headDim: hd, scale: 0.3, blockSize: bs, slidingWindow: 0 };
    const outs: Float32Array[] = [];
    for (const b of backends) {
      const kpool = b.allocate(slots * rowBytes(DType.F16, nKv * hd)),
        vpool = b.allocate(slots * rowBytes(DType.F16, nKv * hd));
      const run = async (
        rows: number[],
        seqs: number[],
        qRows: Float32Array,
        store: boolean,
        seed: number,
      ) => {
        const g = new Graph();
        const kv = {
          k: g.bind("k", DType.F16, slots, nKv * hd, kpool),
          v: g.bind("v", DType.F16, slots, nKv * hd, vpool),
        };
        const batch = g.batchInputs(rows.length, 0, nSeq, perSeq);
        if (store)
          g.kvStore(
            kv,
            rand(g, "kx", rows.length, nKv * hd, seed, DType.F32, 3),
            rand(g, "vx", rows.length, nKv * hd, seed + 1),
            batch,
            bs,
          );
        const out =
          qRows.length > 0
            ? g.output(
                g.attention(
                  g.bind("q", DType.F32, rows.length, nHead * hd, qRows.slice().buffer),
                  kv,
                  batch,
                  opts,
                ),
              )
            : null;
        const p = b.prepare(g);
        p.setInput("positions", rows);
        p.setInput("rowSeq", seqs);
        p.setInput("blockTables", tables);
        await p.execute();
        return out ? p.read(out).slice() : new Float32Array(0);
      };
      await run(
        Array.from({ length: 256 }, (_, i) => i),
        new Array(256).fill(0),
        new Float32Array(0),
        true,
        1,
      );
      await run(
        Array.from({ length: 44 }, (_, i) => 256 + i),
        new Array(44).fill(0),
        new Float32Array(0),
        true,
        3,
      );
      await run(
        Array.from({ length: 40 }, (_, i) => i),
        new Array(40).fill(1),
        new Float32Array(0),
        true,
        5,
      );
      const together = await run(pos, seq, q, true, 7);
      outs.push(together);
      if (b.name !== "cpu") continue;
      const w = nHead * hd;
      for (let i = 0; i < T; i++) {
        const alone = await run([pos[i]!], [seq[i]!], q.subarray(i * w, (i + 1) * w), false, 0);
        assert.deepEqual(
          new Uint32Array(alone.buffer),
          new Uint32Array(together.buffer, i * w * 4, w),
          `row ${i} (position ${pos[i]} of sequence ${seq[i]}) alone`,
        );
      }
    }
    assertClose(outs[1]!, outs[0]!, 1e-3, "a sequence's consecutive decode rows");
  });

  it("two decode attentions in one barrier group both match the reference", async () => {
    // Two layers' decode attention with nothing between them: the planner puts them in one
    // group (asserted), so threads run both at once and each has its own part of the plan's
    // partials buffer. A shared part would be a race this test's timing seldom hits (the
    // first node's merge usually ends before the second writes); it checks the results and
    // that the case arises.
    const bs = 32,
      slots = 48 * bs,
      nHead = 8,
      nKv = 4,
      hd = 64,
      filled = 1200;
    const results: Float32Array[] = [];
    for (const b of backends) {
      const pools = [0, 1].map(() => [b.allocate(slots * nKv * hd * 2), b.allocate(slots * nKv * hd * 2)]);
      const tables = Array.from({ length: 48 }, (_, i) => (i * 5) % 48);
      const run = async (T: number, first: number, seed: number, attend: boolean) => {
        const g = new Graph();
        const batch = g.batchInputs(T, 0, 1, 48);
        const outs = pools.map(([kp, vp], l) => {
          const kv = {
            k: g.bind(`k${l}`, DType.F16, slots, nKv * hd, kp!),
            v: g.bind(`v${l}`, DType.F16, slots, nKv * hd, vp!),
          };
          g.kvStore(
            kv,
            rand(g, `kx${l}`, T, nKv * hd, seed + l, DType.F32, 3),
            rand(g, `vx${l}`, T, nKv * hd, seed + 5 + l),
            batch,
            bs,
          );
          if (!attend) return null;
          const opts = { nHead, nKvHead: nKv, headDim: hd, scale: 0.3, blockSize: bs };
          return g.output(
            g.attention(rand(g, `q${l}`, T, nHead * hd, seed + 9 + l, DType.F32, 3), kv, batch, opts),
          );
        });
        if (attend) {
          const plan = compilePlan(g);
          const at = plan.nodes.flatMap((n, i) => (n.op === Op.Attention ? [i] : []));
          assert.equal(at.length, 2);
          assert.ok(
            plan.nodes
              .slice(at[0]! + 1, at[1]! + 1)
              .every((_, k) => plan.ints[(at[0]! + 1 + k) * OP_INTS]! & NO_BARRIER),
            "the two attentions share a barrier group",
          );
        }
        const p = b.prepare(g);
        p.setInput(
          "positions",
          Array.from({ length: T }, (_, i) => first + i),
        );
        p.setInput("rowSeq", new Array(T).fill(0));
        p.setInput("blockTables", tables);
        await p.execute();
        return outs.map((o) => (o ? p.read(o).slice() : new Float32Array(0)));
      };
      await run(filled, 0, 1, false);
      const [a, c] = await run(1, filled, 20, true);
      results.push(new Float32Array([...a!, ...c!]));
    }
    assertClose(results[1]!, results[0]!, 1e-3, "two attentions in one group");
  });

  it("gives the same bits on 1, 2 and 3 threads", async () => {
    const cpu = new CpuBackend();
    const before = native().threads();
    const got: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      native().setThreads(threads);
      got.push(await decodeSteps(cpu, 16, 8, 128, 0, [1100, 300]));
    }
    native().setThreads(before);
    assert.deepEqual(got[1], got[0]);
    assert.deepEqual(got[2], got[0]);
  });
});

describe("q8_0 KV cache", () => {
  // The pools hold Q8_0 blocks: kv_store quantizes as ggml does, attention reads the codes
  // (the split decode kernel scales them in registers, the blocked prompt kernel converts
  // tiles). Heads must be whole blocks of 32.
  const shapes = [
    [16, 8, 128], // pairs of query heads per KV head: codes scaled in registers
    [12, 4, 32], // groups of 3: the key row converted once, a pair and a single per group
    [8, 8, 64], // one query head per KV head
  ] as const;
  for (const [nHead, nKv, hd] of shapes)
    it(`split decode attention matches the reference (${nHead}/${nKv} heads of ${hd})`, async () => {
      for (const window of [0, 300]) {
        const results: Float32Array[] = [];
        for (const b of backends)
          results.push(await decodeSteps(b, nHead, nKv, hd, window, [700, 255, 1], DType.Q8_0));
        assertClose(
          results[1]!,
          results[0]!,
          1e-3,
          `q8_0 split decode ${nHead}/${nKv}x${hd} window ${window}`,
        );
      }
      for (const lengths of [[1], [100, 5]]) {
        const results: Float32Array[] = [];
        for (const b of backends) results.push(await decodeSteps(b, nHead, nKv, hd, 0, lengths, DType.Q8_0));
        assertClose(
          results[1]!,
          results[0]!,
          1e-3,
          `q8_0 short split decode ${nHead}/${nKv}x${hd} ${lengths}`,
        );
      }
    });

  it("kv_store writes the reference quantizer's bytes, and prompt attention over them matches", async () => {
    const bs = 16,
      slots = 20 * bs,
      nHead = 8,
      nKv = 2,
      hd = 64;
    for (const window of [0, 70]) {
      const outs: Float32Array[] = [],
        pools: Uint8Array[] = [];
      for (const b of backends) {
        const kpool = b.allocate(slots * rowBytes(DType.Q8_0, nKv * hd)),
          vpool = b.allocate(slots * rowBytes(DType.Q8_0, nKv * hd));
        // A 150-token prompt in tiles of the blocked kernel, then chunks of 2 rows of one
        // sequence (8 query heads: few enough for its direct f16 path, which q8_0 skips).
        const step = async (T: number, first: number, seed: number) => {
          const g = new Graph();
          const kv = {
            k: g.bind("k", DType.Q8_0, slots, nKv * hd, kpool),
            v: g.bind("v", DType.Q8_0, slots, nKv * hd, vpool),
          };
          const batch = g.batchInputs(T, 0, 1, 20);
          g.kvStore(
            kv,
            rand(g, "kx", T, nKv * hd, seed, DType.F32, 3),
            rand(g, "vx", T, nKv * hd, seed + 1),
            batch,
            bs,
          );
          const opts = { nHead, nKvHead: nKv, headDim: hd, scale: 0.2, blockSize: bs, slidingWindow: window };
          const out = g.output(
            g.attention(rand(g, "q", T, nHead * hd, seed + 2, DType.F32, 3), kv, batch, opts),
          );
          const p = b.prepare(g);
          p.setInput(
            "positions",
            Array.from({ length: T }, (_, i) => first + i),
          );
          p.setInput("rowSeq", new Array(T).fill(0));
          p.setInput(
            "blockTables",
            Array.from({ length: 20 }, (_, i) => ((i * 7) % 19) + 1),
          );
          await p.execute();
          return p.read(out).slice();
        };
        const a = await step(150, 0, 80);
        const c = await step(2, 150, 90);
        const d = await step(2, 152, 100);
        outs.push(new Float32Array([...a, ...c, ...d]));
        pools.push(new Uint8Array([...new Uint8Array(kpool), ...new Uint8Array(vpool)]));
      }
      assert.deepEqual(pools[1], pools[0], "the pools' bytes");
      assertClose(outs[1]!, outs[0]!, 1e-3, `q8_0 prompt attention, window ${window}`);
    }
  });

  it("gives the same bits on 1, 2 and 3 threads", async () => {
    const cpu = new CpuBackend();
    const before = native().threads();
    const got: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      native().setThreads(threads);
      got.push(await decodeSteps(cpu, 16, 8, 128, 0, [1100, 300], DType.Q8_0));
    }
    native().setThreads(before);
    assert.deepEqual(got[1], got[0]);
    assert.deepEqual(got[2], got[0]);
  });

  it("is refused for heads that are not whole blocks", () => {
    const g = new Graph();
    const pool = new ArrayBuffer(64 * rowBytes(DType.Q8_0, 96));
    const kv = { k: g.bind("k", DType.Q8_0, 64, 96, pool), v: g.bind("v", DType.Q8_0, 64, 96, pool) };
    const batch = g.batchInputs(1, 0, 1, 2);
    assert.throws(
      () =>
        g.attention(rand(g, "q", 1, 4 * 48, 1), kv, batch, {
          nHead: 4,
          nKvHead: 2,
          headDim: 48,
          scale: 1,
          blockSize: 32,
        }),
      /whole 32-blocks \(head dim 48\)/,
    );
  });
});

describe("cpu results do not depend on the thread count", () => {
  it("matmul (GEMV and GEMM, float and quantized weights) gives identical bits on 1, 2 and 3 threads", async () => {
    const cpu = new CpuBackend();
    const outputs: Float32Array[][] = [];
    const before = native().threads();
    const q4k = randomBlocks(DType.Q4_K, (203 * 512) / 256, 7).buffer as ArrayBuffer;
    for (const threads of [1, 2, 3]) {
      native().setThreads(threads);
      const got: Float32Array[] = [];
      for (const T of [1, 7, 33]) {
        const g = new Graph();
        const out = g.output(g.matmul(rand(g, "x", T, 300, 1), rand(g, "w", 97, 300, 2, DType.F16)));
        const p = cpu.prepare(g);
        await p.execute();
        got.push(p.read(out).slice());
      }
      for (const T of [3, 45]) {
        const g = new Graph();
        const out = g.output(g.matmul(rand(g, "x", T, 512, 3), g.bind("w", DType.Q4_K, 203, 512, q4k)));
        const p = cpu.prepare(g);
        await p.execute();
        got.push(p.read(out).slice());
      }
      outputs.push(got);
    }
    native().setThreads(before);
    for (let i = 1; i < outputs.length; i++)
      outputs[i]!.forEach((o, j) => assert.deepEqual(o, outputs[0]![j]));
  });
});

describe("shared GEMM activations", () => {
  // Prefill GEMMs with quantized weights quantize their activations once for all threads,
  // and matmuls of one barrier group reading the same tensor in the same layout reuse it.
  // Four matmuls of x in three layouts (a third fill in one group), then two of different
  // tensors in one layout, then the same shapes again in a later group (the arena reuses
  // memory, so a stale slot would be read if reuse crossed groups).
  const K = 256,
    T = 41;
  const w = (qt: DType, seed: number) =>
    randomBlocks(qt, (K * K) / BLOCKS[qt]!.size, seed).buffer as ArrayBuffer;
  const weights = [DType.Q4_K, DType.Q8_0, DType.Q6_K, DType.Q4_K, DType.Q4_K, DType.Q4_K].map((qt, i) => ({
    qt,
    buf: w(qt, 300 + i),
  }));
  const build = (g: Graph) => {
    const W = (i: number) => g.bind(`w${i}`, weights[i]!.qt, K, K, weights[i]!.buf);
    let h = rand(g, "x", T, K, 31, DType.F32, 0.5);
    for (let layer = 0; layer < 2; layer++) {
      const [a, b, c, d] = [0, 1, 2, 3].map((i) => g.matmul(h, W(i)));
      h = g.add(g.matmul(g.add(a!, b!), W(4)), g.matmul(g.add(c!, d!), W(5)));
      h = g.rmsNorm(h, null, 1e-6);
    }
    // An odd number of fills per run: each run must start from the same slot on every
    // thread, whichever threads ran the runs before.
    return g.matmul(h, W(0));
  };

  it("give the reference's values and the same bits on 1, 2 and 3 threads", async () => {
    const [ref] = await runBoth((g) => ({ out: build(g) }));
    const cpu = new CpuBackend();
    const before = native().threads();
    const got: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      native().setThreads(threads);
      const g = new Graph();
      const out = g.output(build(g));
      const p = cpu.prepare(g);
      for (let run = 0; run < 4; run++) {
        await p.execute();
        got.push(p.read(out).slice());
      }
    }
    native().setThreads(before);
    for (const o of got.slice(1)) assert.deepEqual(o, got[0]);
    assertClose(got[0]!, ref!, 1e-4, "shared activations vs reference");
  });
});

describe("decode batches", () => {
  it("of up to 8 tokens give every token the bits it gets alone, for float weights", async () => {
    // A decode row and drafts (speculative decoding), or several sequences' rows: float
    // weights stay on the GEMV path there (tiles of 2 rows by 2 tokens, and an odd row or
    // token alone, all in the one-token order per output).
    const cpu = new CpuBackend();
    const K = 520,
      N = 37;
    for (const dt of [DType.F16, DType.BF16, DType.F32])
      for (const T of [2, 3, 4, 7, 8]) {
        const x = uniform(T * K, 1, 31 + T);
        const wbuf = fromF32(uniform(N * K, 1, 40 + dt), dt).buffer as ArrayBuffer;
        const run = async (rows: Float32Array, n: number) => {
          const g = new Graph();
          const out = g.output(
            g.matmul(
              g.bind("x", DType.F32, n, K, rows.slice().buffer as ArrayBuffer),
              g.bind("w", dt, N, K, wbuf),
            ),
          );
          const p = cpu.prepare(g);
          await p.execute();
          return p.read(out).slice();
        };
        const batch = await run(x, T);
        for (let t = 0; t < T; t++)
          assert.deepEqual(
            await run(x.subarray(t * K, (t + 1) * K), 1),
            batch.subarray(t * N, (t + 1) * N),
            `${DType[dt]} token ${t} of ${T}`,
          );
      }
  });

  // Batches of 2, 5 and 7 tokens: the tiled kernels' tiles of 2, 4 + 1 and 4 + 3.
  it("give every token the bits it gets alone, for every quantized type (the batch and one-token loops agree)", async () => {
    const cpu = new CpuBackend();
    const K = 512,
      N = 37;
    for (const T of [2, 5, 7]) {
      const x = uniform(T * K, 1, 91 + T);
      for (const qt of [
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
        DType.Q4_K_I,
        DType.Q6_K_I,
        DType.NVFP4_I,
        DType.Q8_0_I,
      ]) {
        const wbuf = randomBlocks(qt, (N * K) / BLOCKS[qt]!.size, 80 + qt).buffer as ArrayBuffer;
        const run = async (rows: Float32Array, n: number) => {
          const g = new Graph();
          const xs = g.bind("x", DType.F32, n, K, rows.slice().buffer as ArrayBuffer);
          const out = g.output(g.matmul(xs, g.bind("w", qt, N, K, wbuf)));
          const p = cpu.prepare(g);
          await p.execute();
          return p.read(out).slice();
        };
        const batch = await run(x, T);
        for (let t = 0; t < T; t++) {
          const alone = await run(x.subarray(t * K, (t + 1) * K), 1);
          assert.deepEqual(alone, batch.subarray(t * N, (t + 1) * N), `${DType[qt]} token ${t} of ${T}`);
        }
      }
    }
  });
});

describe("the scalar fallback", () => {
  // Skipped inside that re-run, and where the kernel-tier test re-runs this file.
  const skip = !!process.env.LMX_NO_SIMD || !!process.env.LMX_SKIP_SCALAR_RERUN;
  it("passes this whole file with SIMD disabled (LMX_NO_SIMD=1)", { skip }, () => {
    native();
    const env: NodeJS.ProcessEnv = { ...process.env, LMX_NO_SIMD: "1" };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", fileURLToPath(import.meta.url)], {
      env,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# fail 0/);
  });
});
