/** The lmx command as a user runs it: exact raw output, bench JSON, usage errors. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { RUNNER_V8_FLAGS } from "../server/runner-client.js";
import { LMX_BIN, runLmx } from "../testing/lmx-cli.js";

const lmx = (args: string[], input?: string) => runLmx(args, { input });

describe("lmx CLI", () => {
  it("run --raw --temperature 0 prints exactly the greedy continuation", () => {
    const ref = JSON.parse(readFileSync(join(DEFAULT_MODEL_PATH, "reference_logits.json"), "utf8")).cases[0];
    const r = lmx(["run", "tiny-qwen3", "--raw", "--temperature", "0", "--num-predict", "32", ref.prompt]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, ref.greedy_text);
    assert.equal(r.stderr, "");
  });

  it("run reads the prompt from stdin and --verbose reports rates on stderr", () => {
    const r = lmx(["run", "--temperature", "0", "--num-predict", "8", "--verbose"], "Say hello");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 0);
    assert.match(r.stderr, /prompt eval rate: +[\d.]+ tokens\/s/);
    assert.match(r.stderr, /eval count: +8 token\(s\)/);
  });

  it("bench --json reports the required fields", () => {
    const r = lmx(["bench", "--prompt-tokens", "64", "--gen-tokens", "8", "--runs", "1", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const k of [
      "pp_tok_s",
      "tg_tok_s",
      "prompt_tokens",
      "gen_tokens",
      "runs",
      "backend",
      "kernels",
      "threads",
      "use_mmap",
      "huge_pages",
      "file_pages",
    ])
      assert.ok(k in j, k);
    assert.ok(j.pp_tok_s > 0 && j.tg_tok_s > 0);
    for (const k of ["collapsed_bytes", "failed_bytes", "wait_ms"])
      assert.ok(Number.isFinite(j.huge_pages[k]) && j.huge_pages[k] >= 0, k);
    // The embedded model's weights are read in place from its mapped file (none repacked).
    assert.ok(
      j.file_pages.bytes > 0.9 * j.weight_bytes && j.file_pages.bytes <= j.weight_bytes,
      JSON.stringify(j),
    );
    for (const k of ["huge_bytes", "reread_bytes", "ms"])
      assert.ok(Number.isFinite(j.file_pages[k]) && j.file_pages[k] >= 0, k);
    assert.equal(j.backend, "cpu");
    assert.equal(j.use_mmap, true);
    assert.match(j.kernels, /^(scalar|avx2|avxvnni|avx512)$/);
  });

  it("bench --depth runs both tests after a context of that many tokens", () => {
    const run = (depth: number) => {
      const r = lmx([
        "bench",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "4",
        "--runs",
        "1",
        "--json",
        "--depth",
        String(depth),
      ]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const [shallow, deep] = [run(0), run(200)];
    assert.equal(deep.depth, 200);
    assert.ok(deep.pp_tok_s > 0 && deep.tg_tok_s > 0);
    // The cache holds the depth plus the longer test.
    assert.ok(deep.kv_bytes > shallow.kv_bytes * 2, `${deep.kv_bytes} vs ${shallow.kv_bytes}`);
    // kv_bytes_per_token is one slot of every layer's K and V: the cache is whole slots.
    assert.ok(deep.kv_bytes_per_token > 0 && deep.kv_bytes % deep.kv_bytes_per_token === 0);
    assert.ok(deep.kv_bytes >= (200 + 8) * deep.kv_bytes_per_token, `${deep.kv_bytes} bytes`);
    const bad = lmx(["bench", "--depth", "-3", "--runs", "1"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--depth needs a whole number/);
  });

  it("bench --parallel decodes that many sequences together, each after its own depth", () => {
    const args = ["bench", "--prompt-tokens", "8", "--gen-tokens", "16", "--runs", "1", "--json"];
    // 17 positions per sequence: not a whole 32-slot block, which the cache's size once missed.
    const r = lmx([...args, "--parallel", "3", "--depth", "20"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.parallel, 3);
    assert.ok(j.tg_tok_s > 0 && j.pp_tok_s > 0);
    assert.ok(j.kv_bytes >= 3 * (20 + 16) * j.kv_bytes_per_token, `${j.kv_bytes} bytes`);
    const text = lmx([
      "bench",
      "--prompt-tokens",
      "4",
      "--gen-tokens",
      "4",
      "--runs",
      "1",
      "--parallel",
      "2",
    ]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^tg4 x 2 sequences: [\d.]+ tok\/s together \(median of 1\)$/m);
    const bad = lmx(["bench", "--parallel", "0", "--runs", "1"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--parallel needs a whole number of sequences/);
  });

  it("bench --kv-cache-type q8_0 runs with a q8_0 cache of 34 bytes per 32 values", () => {
    const run = (type: string) =>
      lmx([
        "bench",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "4",
        "--runs",
        "1",
        "--json",
        "--kv-cache-type",
        type,
      ]);
    const [f16, q8] = [run("f16"), run("q8_0")].map((r) => {
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    });
    assert.equal(f16.kv_cache_type, "f16");
    assert.equal(q8.kv_cache_type, "q8_0");
    assert.ok(q8.pp_tok_s > 0 && q8.tg_tok_s > 0);
    assert.equal(q8.kv_bytes_per_token * 64, f16.kv_bytes_per_token * 34);
    const bad = run("q4");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown KV cache type "q4" \(supported: f16, q8_0\)/);
  });

  it("ends quietly when its reader goes away (lmx … | head)", async () => {
    const child = spawn(process.execPath, [
      LMX_BIN,
      "bench",
      "--prompt-tokens",
      "8",
      "--gen-tokens",
      "4",
      "--runs",
      "1",
    ]);
    child.stdout.destroy(); // the reader is gone before the first line is written
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on("close", resolve));
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
  });

  it("started as a user starts it (bin/lmx.js), runs with V8's young generation capped", async (t) => {
    if (process.platform !== "linux") return t.skip("reads /proc");
    const child = spawn(LMX_BIN, ["bench", "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "1"]);
    child.stdout.resume();
    const closed = new Promise((resolve) => child.on("close", resolve));
    // The pid runs sh first (bin/lmx.js's first two lines), which execs node with the flags.
    const isNode = (a: string[]) => a.some((x) => x.endsWith("lmx.js")) && !/(^|\/)sh$/.test(a[0] ?? "");
    let args: string[] = [];
    for (let i = 0; i < 200 && !isNode(args); i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        args = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0");
      } catch {
        break; // already gone
      }
    }
    for (const flag of RUNNER_V8_FLAGS) assert.ok(args.includes(flag), `${flag} in ${args.join(" ")}`);
    assert.equal(await closed, 0);
  });

  it("usage errors exit with 2 and a clear message", () => {
    const r = lmx(["run", "tiny-qwen3", "--temprature", "0", "hi"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown flag --temprature/);
    const m = lmx(["run", "no-such-model", "hi"]);
    assert.equal(m.status, 2);
    assert.match(m.stderr, /model "no-such-model" not found/);
    const bad = lmx(["run", "tiny-qwen3", "--top-p", "7", "hi"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /option topP must be between 0 and 1/);
    assert.equal(lmx(["frobnicate"]).status, 2);
    assert.match(lmx(["toString"]).stderr, /unknown command "toString"/); // not Object.prototype's
  });

  it("run reads LMX_KV_CACHE_TYPE (an unknown type is a usage error)", () => {
    const run = (type: string) =>
      runLmx(["run", "tiny-qwen3", "--raw", "--num-predict", "4", "Once"], {
        env: { ...process.env, LMX_KV_CACHE_TYPE: type },
      });
    const ok = run("q8_0");
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(ok.stdout.length > 0);
    const bad = run("q4");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /LMX_KV_CACHE_TYPE: unknown KV cache type "q4"/);
  });
});
