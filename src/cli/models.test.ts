/** The store commands as a user types them: create, list, show, cp, rm (no server needed). */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { runLmx } from "../testing/lmx-cli.js";

describe("lmx create / list / show / cp / rm", () => {
  let dir: string, env: NodeJS.ProcessEnv;
  const lmx = async (...args: string[]) => {
    const r = runLmx(args, { env, cwd: dir, timeoutMs: 60_000 });
    return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "lmx-cli-store-"));
    env = { ...process.env, LMX_MODELS: join(dir, "models"), HOME: dir, LMX_HOST: "127.0.0.1:9" };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("creates from a Modelfile and shows what it stored", async () => {
    writeFileSync(
      join(dir, "Modelfile"),
      `FROM ${DEFAULT_MODEL_PATH}\nPARAMETER temperature 0.2\nPARAMETER stop "<|im_end|>"\nSYSTEM """Be brief."""\nMESSAGE user hi\nMESSAGE assistant hello\n`,
    );
    const c = await lmx("create", "me/tiny:v1");
    assert.equal(c.code, 0, c.err);
    assert.match(c.err, /converting model[\s\S]*success/);
    const l = await lmx("list");
    assert.match(l.out, /^NAME\s+ID\s+SIZE\s+MODIFIED\nme\/tiny:v1\s+[0-9a-f]{12}\s+1\d\.\d MB\s+/);
    const s = await lmx("show", "me/tiny:v1");
    assert.match(s.out, /architecture\s+qwen3/);
    assert.match(s.out, /parameters\s+7\.34M/);
    assert.match(s.out, /context length\s+8192/);
    assert.match(s.out, /thinking/);
    const mf = await lmx("show", "me/tiny:v1", "--modelfile");
    assert.match(
      mf.out,
      /^FROM .*sha256-[0-9a-f]{64}\nSYSTEM """Be brief."""\nPARAMETER temperature 0.2\nPARAMETER stop "<\|im_end\|>"\nMESSAGE user "hi"\nMESSAGE assistant "hello"\n$/,
    );
    assert.equal((await lmx("show", "me/tiny:v1", "--system")).out, "Be brief.\n");
    // A model folder (or .gguf file) is shown without being in the store.
    const byPath = await lmx("show", DEFAULT_MODEL_PATH);
    assert.equal(byPath.code, 0, byPath.err);
    assert.match(byPath.out, /architecture\s+qwen3/);
    assert.match(byPath.out, /parameters\s+7\.34M/);
  });

  it("copies, removes (collecting unused blobs) and explains bad input", async () => {
    assert.equal((await lmx("cp", "me/tiny:v1", "other")).code, 0);
    assert.match((await lmx("list")).out, /other:latest/);
    const blobs = readdirSync(join(dir, "models", "blobs")).length;
    assert.equal((await lmx("rm", "me/tiny:v1")).code, 0);
    assert.equal(
      readdirSync(join(dir, "models", "blobs")).length,
      blobs,
      "blobs still used by the copy stay",
    );
    assert.equal((await lmx("rm", "other")).code, 0);
    assert.deepEqual(readdirSync(join(dir, "models", "blobs")), []);
    const bad = await lmx("create", "../evil", "--from", DEFAULT_MODEL_PATH);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /invalid model name/);
    const missing = await lmx("show", "nope");
    assert.match(missing.err, /model "nope" not found/);
    writeFileSync(join(dir, "Bad"), "FROM x\nBOGUS y\n");
    assert.match((await lmx("create", "x", "-f", "Bad")).err, /line 2: unknown instruction "BOGUS"/);
    writeFileSync(join(dir, "Go"), `FROM ${DEFAULT_MODEL_PATH}\nTEMPLATE "{{ .Prompt }}"\n`);
    assert.match((await lmx("create", "x", "-f", "Go")).err, /Go template/);
    assert.match((await lmx("ps")).err, /no lmx server is running/);
    assert.equal((await lmx("list")).out, "NAME    ID    SIZE    MODIFIED\n");
  });
});
