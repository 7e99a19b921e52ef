/**
 * lmx launch: the config writers on fixtures (user entries kept, backups made, --restore
 * returns the prior bytes), the refusals, and one real run of the pi coding agent (a dev
 * dependency) against a real lmx serve, through a proxy that records what pi sent.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { createLogger } from "../server/log.js";
import { startServer, type RunningServer } from "../server/server.js";
import { createModel } from "../store/create-model.js";
import { ModelStore } from "../store/store.js";
import { ConfigFiles } from "./config-files.js";
import { integration } from "./integrations.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(ROOT, "bin", "lmx.js");
const CTX = {
  baseUrl: "http://127.0.0.1:9",
  model: "tiny:latest",
  contextWindow: 8192,
  capabilities: ["completion", "thinking"],
};

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeout = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env, timeout, cwd: env.HOME },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    // An agent in print mode would otherwise wait for more input on stdin.
    child.stdin?.end();
  });
}

describe("lmx launch", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "lmx-launch-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("pi: merges into the user's models.json and settings.json, backs up, restores the exact bytes", () => {
    const home = join(dir, "pi-home");
    const agent = join(home, ".pi", "agent");
    mkdirSync(agent, { recursive: true });
    const models =
      '{\n  "providers": {\n    "mine": { "baseUrl": "http://x/v1", "api": "openai-completions", "models": [{ "id": "a" }] },\n    "lmx": { "models": [{ "id": "kept" }] }\n  }\n}\n';
    writeFileSync(join(agent, "models.json"), models);
    const files = new ConfigFiles(join(home, ".lmx"), "pi");
    for (let i = 0; i < 7; i++)
      for (const f of integration("pi")!.plan({ ...CTX, home }).files) files.write(f.path, f.content);
    const m = JSON.parse(readFileSync(join(agent, "models.json"), "utf8"));
    assert.deepEqual(m.providers.mine, JSON.parse(models).providers.mine);
    assert.deepEqual(
      m.providers.lmx.models.map((x: { id: string }) => x.id),
      ["kept", "tiny:latest"],
    );
    assert.equal(m.providers.lmx.baseUrl, "http://127.0.0.1:9/v1");
    assert.equal(m.providers.lmx.models[1].contextWindow, 8192);
    assert.equal(m.providers.lmx.models[1].reasoning, true);
    assert.deepEqual(JSON.parse(readFileSync(join(agent, "settings.json"), "utf8")), {
      defaultProvider: "lmx",
      defaultModel: "tiny:latest",
    });
    const backups = readdirSync(join(home, ".lmx", "backup", "pi"));
    assert.ok(
      backups.filter((b) => b.startsWith("models.json.")).length <= 6,
      "five newest plus the pre-lmx original",
    );
    assert.ok(backups.some((b) => readFileSync(join(home, ".lmx", "backup", "pi", b), "utf8") === models));
    files.restore();
    assert.equal(readFileSync(join(agent, "models.json"), "utf8"), models);
    assert.ok(!existsSync(join(agent, "settings.json")), "a file lmx created is removed");
  });

  it("droid: keeps the user's custom models; invalid JSON is refused, not overwritten", () => {
    const home = join(dir, "droid-home");
    mkdirSync(join(home, ".factory"), { recursive: true });
    const path = join(home, ".factory", "settings.json");
    writeFileSync(
      path,
      JSON.stringify({ customModels: [{ id: "custom:theirs-0", model: "gpt" }], theme: "dark" }),
    );
    const plan = integration("droid")!.plan({ ...CTX, home });
    const s = JSON.parse(plan.files[0]!.content);
    assert.deepEqual(
      s.customModels.map((x: { id: string }) => x.id),
      ["custom:theirs-0", "custom:lmx-tiny-latest"],
    );
    assert.equal(s.theme, "dark");
    assert.equal(s.sessionDefaultSettings.model, "custom:lmx-tiny-latest");
    writeFileSync(path, "{ not json");
    assert.throws(() => integration("droid")!.plan({ ...CTX, home }), /not valid JSON.*will not overwrite/);
    assert.equal(readFileSync(path, "utf8"), "{ not json");
  });

  it("claude, codex and opencode get the server, the model and its context through env and args", () => {
    const c = integration("claude")!.plan(CTX);
    assert.equal(c.env.ANTHROPIC_BASE_URL, "http://127.0.0.1:9");
    assert.equal(c.env.ANTHROPIC_DEFAULT_SONNET_MODEL, "tiny:latest");
    assert.deepEqual(c.args, ["--model", "tiny:latest"]);
    const x = integration("codex")!.plan(CTX);
    assert.ok(x.args.includes('model_providers.lmx.base_url="http://127.0.0.1:9/v1"'));
    assert.ok(x.args.includes('model_providers.lmx.wire_api="responses"'));
    assert.ok(x.args.includes("model_context_window=8192"));
    const o = JSON.parse(integration("opencode")!.plan(CTX).env.OPENCODE_CONFIG_CONTENT!);
    assert.equal(o.model, "lmx/tiny:latest");
    assert.equal(o.provider.lmx.models["tiny:latest"].limit.context, 8192);
  });

  describe("against a real server", () => {
    let srv: RunningServer, proxy: Server, proxyUrl: string;
    const seen: { path: string; body: any }[] = [];
    before(async () => {
      const store = new ModelStore(join(dir, "models"));
      await createModel(store, "tiny", `FROM ${DEFAULT_MODEL_PATH}\n`);
      srv = await startServer({
        port: 0,
        store,
        contextLength: 4096,
        log: createLogger({ dir: join(dir, "logs"), quiet: true }),
      });
      // Records every request body, then forwards it unchanged.
      proxy = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const body = Buffer.concat(chunks);
        let parsed: unknown = null;
        try {
          parsed = body.length ? JSON.parse(body.toString()) : null;
        } catch {
          parsed = body.toString();
        }
        seen.push({ path: req.url!, body: parsed });
        const up = new URL(srv.url);
        const fwd = httpRequest(
          { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
          (r) => {
            res.writeHead(r.statusCode!, r.headers);
            r.pipe(res);
          },
        );
        fwd.end(body);
      });
      await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
      proxyUrl = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    after(async () => {
      proxy?.closeAllConnections();
      await new Promise((r) => proxy?.close(r));
      await srv?.close();
    });

    it("refuses with a clear message when the agent is not installed, or no server runs", async () => {
      const home = join(dir, "refuse-home");
      mkdirSync(home, { recursive: true });
      const env = { ...process.env, HOME: home, LMX_HOST: proxyUrl, PATH: dirname(process.execPath) };
      const r = await run(["launch", "claude", "--model", "tiny", "--yes"], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /claude is not installed.*npm install -g @anthropic-ai\/claude-code/);
      const r2 = await run(["launch", "pi", "--model", "tiny", "--config"], {
        ...env,
        LMX_HOST: "127.0.0.1:9",
      });
      assert.match(r2.stderr, /no lmx server is running at http:\/\/127\.0\.0\.1:9/);
      const r3 = await run(["launch", "pi", "--model", "nope", "--config"], env);
      assert.match(r3.stderr, /model 'nope' not found/);
    });

    it("pi runs non-interactively on lmx, sends its tools, and exits cleanly; --restore undoes the config", async () => {
      const home = join(dir, "pi-e2e");
      mkdirSync(home, { recursive: true });
      const env = {
        ...process.env,
        HOME: home,
        LMX_HOST: proxyUrl,
        PATH: [join(ROOT, "node_modules", ".bin"), process.env.PATH].join(delimiter),
      };
      const r = await run(
        ["launch", "pi", "--model", "tiny", "--yes", "--", "-p", "Say hello", "--no-session", "--offline"],
        env,
        100_000,
      );
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}\nrequests: ${seen.map((s) => s.path).join(", ")}`);
      const chats = seen.filter((s) => s.path === "/v1/chat/completions");
      assert.ok(chats.length >= 1, `pi's requests: ${seen.map((s) => s.path).join(", ")}`);
      const body = chats[0]!.body;
      assert.equal(body.model, "tiny:latest");
      assert.ok(Array.isArray(body.tools) && body.tools.length > 0, "tool definitions were sent");
      assert.ok(
        body.tools.some((t: { function: { name: string } }) => /read|bash|edit|write/.test(t.function.name)),
      );
      assert.ok(
        body.messages.some(
          (m: { role: string; content: unknown }) =>
            m.role === "user" && JSON.stringify(m.content).includes("Say hello"),
        ),
      );
      assert.ok(existsSync(join(home, ".pi", "agent", "models.json")));
      const back = await run(["launch", "pi", "--restore"], env);
      assert.equal(back.code, 0);
      assert.ok(!existsSync(join(home, ".pi", "agent", "models.json")));
    });
  });
});
