/**
 * Kernel tiers (native/cpu.c: avx2, avxvnni, avx512). For quantized matmuls every tier
 * computes the same integers and the same float steps, so they must agree bit for bit;
 * and each tier must pass the backend cases against the reference. Tiers this CPU lacks
 * run in a build whose AVX-VNNI and AVX-512 intrinsics are emulated by SIMDe
 * (native/emulated/build.sh, Debian's libsimde-dev); without SIMDe that part is skipped
 * and says so.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { before, describe, it } from "node:test";
import { native } from "../../native.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const digestScript = join(here, "..", "..", "testing", "matmul-digest.js");
const caseTests = join(here, "backend.case.test.js");
const x86 = process.arch === "x64";
const hasAvx2 = x86 && native().cpuFeatures().includes("avx2");

function run(
  args: string[],
  env: Record<string, string>,
): { status: number | null; stdout: string; stderr: string } {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.NODE_TEST_CONTEXT;
  return spawnSync(process.execPath, args, { env: e, encoding: "utf8", maxBuffer: 1 << 26 });
}

function digests(env: Record<string, string>): { tier: string; digests: Record<string, string> } {
  const r = run([digestScript], env);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { tier: string; digests: Record<string, string> };
}

describe("kernel tiers", () => {
  it("LMX_ISA caps the tier and LMX_NO_SIMD selects the scalar kernels", { skip: !hasAvx2 }, () => {
    assert.equal(digests({ LMX_ISA: "avx2" }).tier, "avx2");
    assert.equal(digests({ LMX_NO_SIMD: "1" }).tier, "scalar");
  });

  it("every tier this CPU has gives the same bits for quantized matmuls", { skip: !hasAvx2 }, () => {
    const base = digests({ LMX_ISA: "avx2" });
    const best = digests({});
    assert.deepEqual(best.digests, base.digests, `${best.tier} vs avx2`);
    if (best.tier === "avx512" && native().cpuFeatures().includes("avxvnni"))
      assert.deepEqual(digests({ LMX_ISA: "avxvnni" }).digests, base.digests, "avxvnni vs avx2");
  });
});

describe("AVX-VNNI and AVX-512 kernels, emulated by SIMDe", () => {
  const addon = join(root, "build", "emulated", "lmx.node");
  let built = false;
  let why = "";
  before(() => {
    if (!hasAvx2) {
      why = "needs an x86 CPU with AVX2";
      return;
    }
    const r = spawnSync("bash", [join(root, "native", "emulated", "build.sh")], { encoding: "utf8" });
    if (r.status === 2) why = r.stderr.trim();
    else assert.equal(r.status, 0, r.stderr);
    built = r.status === 0 && existsSync(addon);
  });

  for (const tier of ["avx512", "avxvnni"]) {
    it(`${tier}: same bits as avx2 for quantized matmuls`, (t) => {
      if (!built) return t.skip(`not built: ${why}`);
      const base = digests({ LMX_ISA: "avx2" });
      const emulated = digests({ LMX_NATIVE_ADDON: addon, LMX_ISA: tier });
      assert.equal(emulated.tier, tier);
      assert.deepEqual(emulated.digests, base.digests);
    });

    it(`${tier}: the backend cases against the reference`, (t) => {
      if (!built) return t.skip(`not built: ${why}`);
      const r = run(["--test", "--test-reporter=tap", caseTests], {
        LMX_NATIVE_ADDON: addon,
        LMX_ISA: tier,
        LMX_SKIP_SCALAR_RERUN: "1",
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /# fail 0/);
    });
  }
});
