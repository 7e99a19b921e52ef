/** `lmx perplexity` as a user runs it: llama.cpp's method, JSON fields, KL divergence against a base. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { runLmx } from "../testing/lmx-cli.js";

const lmx = (args: string[]) => runLmx(args, { timeoutMs: 300_000 });
const evalTxt = join(DEFAULT_MODEL_PATH, "eval.txt");

describe("lmx perplexity", () => {
  it("reports ppl, its error and the scored tokens as JSON", () => {
    const r = lmx(["perplexity", "tiny-qwen3", "--file", evalTxt, "--ctx", "256", "--chunks", "4", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.tokens, 4 * 127); // ctx - 1 - ctx/2 per window
    assert.equal(j.chunks, 4);
    assert.ok(j.ppl > 10 && j.ppl < 200 && j.ppl_stderr > 0);
  });

  it("against itself as the base: zero divergence and full agreement", () => {
    const r = lmx([
      "perplexity",
      "tiny-qwen3",
      "--file",
      evalTxt,
      "--ctx",
      "128",
      "--chunks",
      "2",
      "--base",
      DEFAULT_MODEL_PATH,
      "--json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(Math.abs(j.kld_mean) < 1e-9);
    assert.equal(j.top1_agree, 1);
    assert.ok(Math.abs(j.base_ppl - j.ppl) < 1e-9);
  });

  it("needs --file", () => {
    const r = lmx(["perplexity", "tiny-qwen3"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--file is required/);
  });
});
