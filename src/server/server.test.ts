/**
 * A real `lmx serve` on a loopback port with a temporary store holding the embedded
 * model, driven by the official `ollama`, `openai` and `@anthropic-ai/sdk` clients.
 * Outputs are compared with the same model run in-process (greedy), so the assertions
 * are on content, not only on shapes.
 */
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { OutputParser } from "../chat/output-parser.js";
import { DEFAULT_MODEL_PATH, loadModel, type Model } from "../model.js";
import { createModel } from "../store/create-model.js";
import { ModelStore } from "../store/store.js";
import { TestRegistry } from "../testing/registry-server.js";
import { createLogger } from "./log.js";
import { RUNNER_V8_FLAGS } from "./runner-client.js";
import { startServer, type RunningServer } from "./server.js";

const GREEDY = { temperature: 0, num_predict: 12 };

describe("lmx serve with official clients", () => {
  let dir: string, srv: RunningServer, ollama: Ollama, openai: OpenAI, anthropic: Anthropic, local: Model;
  const chatLocal = async (messages: { role: "user" | "system"; content: string }[], think?: boolean) => {
    const text = await local.chat(messages, { temperature: 0, numPredict: 12, think }).text();
    const p = new OutputParser({});
    const d = p.push(text);
    const f = p.flush();
    return {
      content: (d.content ?? "") + (f.content ?? ""),
      thinking: (d.thinking ?? "") + (f.thinking ?? ""),
    };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "lmx-serve-"));
    const store = new ModelStore(join(dir, "models"));
    await createModel(
      store,
      "tiny",
      `FROM ${DEFAULT_MODEL_PATH}\nLICENSE "test licence"\n# Greedy unless a request says otherwise (the Anthropic SDK has no temperature).\nPARAMETER temperature 0\n`,
    );
    srv = await startServer({
      port: 0,
      store,
      numParallel: 4,
      log: createLogger({ dir: join(dir, "logs"), quiet: true }),
      threads: 2,
    });
    ollama = new Ollama({ host: srv.url });
    openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "lmx" });
    anthropic = new Anthropic({ baseURL: srv.url, apiKey: "lmx" });
    local = await loadModel(DEFAULT_MODEL_PATH, { numCtx: 4096 });
  });
  after(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ollama: generate (raw) matches the model run in-process, streamed and not", async () => {
    const want = await local.generate("Once upon a time", { temperature: 0, numPredict: 12 }).text();
    const r = await ollama.generate({
      model: "tiny",
      prompt: "Once upon a time",
      raw: true,
      options: GREEDY,
    });
    assert.equal(r.response, want);
    assert.equal(r.eval_count, 12);
    assert.equal(r.done_reason, "length");
    assert.ok(r.prompt_eval_count > 0 && r.total_duration > 0 && r.eval_duration > 0);
    let streamed = "";
    let chunks = 0;
    for await (const part of await ollama.generate({
      model: "tiny",
      prompt: "Once upon a time",
      raw: true,
      options: GREEDY,
      stream: true,
    })) {
      streamed += part.response;
      chunks++;
    }
    assert.equal(streamed, want);
    assert.ok(chunks > 5);
  });

  it("ollama: chat, streamed and not, with thinking split out", async () => {
    const want = await chatLocal([{ role: "user", content: "Say hi" }]);
    const r = await ollama.chat({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      options: GREEDY,
    });
    assert.equal(r.message.role, "assistant");
    assert.equal(r.message.content, want.content);
    assert.equal(r.message.thinking ?? "", want.thinking);
    let content = "";
    for await (const part of await ollama.chat({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      options: GREEDY,
      stream: true,
    }))
      content += part.message.content;
    assert.equal(content, want.content);
    const noThink = await chatLocal([{ role: "user", content: "Say hi" }], false);
    const r2 = await ollama.chat({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      options: GREEDY,
      think: false,
    });
    assert.equal(r2.message.content, noThink.content);
  });

  it("ollama: embed, list, show, ps, create, copy, delete", async () => {
    const e = await ollama.embed({ model: "tiny", input: ["hello world", "something else"] });
    const want = await local.embed("hello world");
    assert.equal(e.embeddings.length, 2);
    assert.equal(e.embeddings[0]!.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(e.embeddings[0]![i]! - want[i]!) < 1e-4);
    assert.ok(e.prompt_eval_count > 0);

    const created = [];
    for await (const p of await ollama.create({
      model: "tiny-creative",
      from: "tiny",
      system: "You are terse.",
      parameters: { temperature: 0.3, stop: ["END"] },
      stream: true,
    }))
      created.push(p.status);
    assert.equal(created.at(-1), "success");
    const show = await ollama.show({ model: "tiny-creative" });
    assert.equal(show.system, "You are terse.");
    assert.match(show.parameters, /temperature\s+0.3/);
    assert.match(show.parameters, /stop\s+"END"/);
    assert.equal(show.details.family, "qwen3");
    assert.equal(show.license, "test licence");
    assert.ok(show.capabilities.includes("completion"));
    assert.equal(
      (show.model_info as unknown as Record<string, unknown>)["qwen3.block_count"],
      local.engine.config.numHiddenLayers,
    );

    await ollama.copy({ source: "tiny-creative", destination: "ns/copy:v1" });
    const names = (await ollama.list()).models.map((m) => m.name).sort();
    assert.deepEqual(names, ["ns/copy:v1", "tiny-creative:latest", "tiny:latest"]);
    const ps = await ollama.ps();
    assert.deepEqual(
      ps.models.map((m) => m.name),
      ["tiny:latest"],
    );
    assert.ok(ps.models[0]!.size > 0);
    await ollama.delete({ model: "ns/copy:v1" });
    await ollama.delete({ model: "tiny-creative" });
    assert.deepEqual(
      (await ollama.list()).models.map((m) => m.name),
      ["tiny:latest"],
    );
    await assert.rejects(ollama.delete({ model: "tiny-creative" }), /not found/);
  });

  it("openai: chat completions streamed and not, tools accepted, embeddings, models", async () => {
    const want = await chatLocal([{ role: "user", content: "Say hi" }]);
    const r = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      temperature: 0,
      max_tokens: 12,
    });
    assert.equal(r.choices[0]!.message.content, want.content);
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage!.completion_tokens, 12);
    let streamed = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    const stream = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      temperature: 0,
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const c of stream) {
      streamed += c.choices[0]?.delta.content ?? "";
      if (c.usage) usage = c.usage;
    }
    assert.equal(streamed, want.content);
    assert.equal(usage?.completion_tokens, 12);

    // Predicted outputs: the expected answer drafts the tokens, and usage says how many
    // drafts were accepted (how many the server verifies depends on
    // its measured pass costs: the runner's tests count them).
    const long = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      temperature: 0,
      max_tokens: 32,
    });
    const predicted = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Say hi" }],
      temperature: 0,
      max_tokens: 32,
      prediction: { type: "content", content: [{ type: "text", text: long.choices[0]!.message.content! }] },
    });
    // (The same text up to float rounding: the embedded model's weights are bf16, whose
    // matmuls round differently past 4 rows; the runner's tests compare on Q8_0.)
    assert.equal(predicted.usage!.completion_tokens, 32);
    const details = predicted.usage!.completion_tokens_details!;
    const { accepted_prediction_tokens: ok, rejected_prediction_tokens: no } = details;
    assert.ok(Number.isInteger(ok) && Number.isInteger(no) && ok! <= 32, JSON.stringify(predicted.usage));
    assert.equal(long.usage!.completion_tokens_details, undefined);

    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const withTools = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      temperature: 0,
      max_tokens: 4,
    });
    const without = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      temperature: 0,
      max_tokens: 4,
    });
    // The tool definitions reach the template: the prompt grows by their rendering.
    assert.ok(withTools.usage!.prompt_tokens > without.usage!.prompt_tokens + 20);

    const emb = await openai.embeddings.create({ model: "tiny", input: "hello world" });
    const local1 = await local.embed("hello world");
    assert.ok(Math.abs(emb.data[0]!.embedding[3]! - local1[3]!) < 1e-4);
    const models = await openai.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ["tiny:latest"],
    );
    assert.equal((await openai.models.retrieve("tiny")).id, "tiny:latest");
    await assert.rejects(openai.models.retrieve("nope"), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it("openai: responses API streamed and not, with function-call items in the input", async () => {
    const want = await chatLocal([{ role: "user", content: "Say hi" }]);
    const r = await openai.responses.create({ model: "tiny", input: "Say hi", max_output_tokens: 12 });
    assert.equal(r.output_text, want.content);
    assert.equal(r.status, "incomplete");
    assert.equal(r.usage?.output_tokens, 12);
    let streamed = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of await openai.responses.create({
      model: "tiny",
      input: [{ role: "user", content: "Say hi" }],
      max_output_tokens: 12,
      stream: true,
    })) {
      if (ev.type === "response.output_text.delta") streamed += ev.delta;
      if (ev.type === "response.incomplete" || ev.type === "response.completed") completed = ev.response;
    }
    assert.equal(streamed, want.content);
    assert.equal(completed?.usage?.output_tokens, 12);
    const withCall = await openai.responses.create({
      model: "tiny",
      instructions: "Use tools.",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" } } },
          strict: false,
        },
      ],
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "call_1", output: "21 C, sunny" },
      ],
      max_output_tokens: 4,
    });
    assert.ok((withCall.usage?.input_tokens ?? 0) > 40);
  });

  it("anthropic: messages streamed and not", async () => {
    const want = await chatLocal([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say hi" },
    ]);
    const r = await anthropic.messages.create({
      model: "tiny",
      max_tokens: 12,
      system: "Be brief.",
      messages: [{ role: "user", content: "Say hi" }],
    });
    const text = r.content
      .filter((b) => b.type === "text")
      .map((b) => (b as Anthropic.TextBlock).text)
      .join("");
    assert.equal(text, want.content);
    assert.equal(r.stop_reason, "max_tokens");
    assert.equal(r.usage.output_tokens, 12);
    const stream = anthropic.messages.stream({
      model: "tiny",
      max_tokens: 12,
      system: "Be brief.",
      messages: [{ role: "user", content: "Say hi" }],
    });
    let streamed = "";
    stream.on("text", (t) => (streamed += t));
    const final = await stream.finalMessage();
    assert.equal(streamed, want.content);
    assert.equal(final.usage.output_tokens, 12);
    const counted = await anthropic.messages.countTokens({
      model: "tiny",
      system: "Be brief.",
      messages: [{ role: "user", content: "Say hi" }],
    });
    assert.equal(
      counted.input_tokens,
      r.usage.input_tokens,
      "count_tokens agrees with what a generation reports",
    );
    await assert.rejects(
      anthropic.messages.create({ model: "tiny", max_tokens: 0, messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => e instanceof Anthropic.BadRequestError,
    );
  });

  it("structured outputs: ollama format and openai json_schema outputs parse and validate", async () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 16 },
        age: { type: "integer" },
        pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 },
      },
      required: ["name", "age"],
    };
    const check = (text: string) => {
      const v = JSON.parse(text);
      assert.deepEqual(
        Object.keys(v).filter((k) => !["name", "age", "pets"].includes(k)),
        [],
      );
      assert.equal(typeof v.name, "string");
      assert.ok(Number.isInteger(v.age));
    };
    const r = await ollama.chat({
      model: "tiny",
      messages: [{ role: "user", content: "A person as JSON" }],
      format: schema,
      options: { temperature: 0.9, seed: 1, num_predict: 60 },
    });
    check(r.message.content);
    const g = await ollama.generate({
      model: "tiny",
      prompt: "JSON:",
      format: "json",
      options: { num_predict: 20 },
    });
    assert.equal(typeof JSON.parse(String(g.response)), "object");
    const c = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "A person as JSON" }],
      response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
      max_tokens: 60,
    });
    check(c.choices[0]!.message.content!);
    await assert.rejects(
      openai.chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "x" }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "p", schema: { type: "string", pattern: "a" } },
        },
      }),
      /pattern/,
    );
  });

  const post = (path: string, body: unknown, init: RequestInit = {}) =>
    fetch(`${srv.url}${path}`, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...init,
    });

  it("batches concurrent requests: each gets what it gets alone", async () => {
    const prompts = ["Once upon a time", "The capital of France", "def main():", "Hello"];
    const alone = [];
    for (const p of prompts)
      alone.push((await ollama.generate({ model: "tiny", prompt: p, raw: true, options: GREEDY })).response);
    const together = await Promise.all(
      prompts.map((p) => ollama.generate({ model: "tiny", prompt: p, raw: true, options: GREEDY })),
    );
    assert.deepEqual(
      together.map((r) => r.response),
      alone,
    );
  });

  it("a client that disconnects stops its generation and frees its slot", async () => {
    const ac = new AbortController();
    const res = await post(
      "/api/generate",
      { model: "tiny", prompt: "Once", raw: true, options: { num_predict: 100000 } },
      { signal: ac.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const loaded = srv.service.scheduler.loaded.get("tiny:latest")!;
    for (let i = 0; i < 100 && loaded.refs > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(loaded.refs, 0);
    assert.equal(loaded.client.busy, 0);
    const r = await ollama.generate({
      model: "tiny",
      prompt: "Once upon a time",
      raw: true,
      options: GREEDY,
    });
    assert.equal(r.eval_count, 12);
  });

  it("runners run with V8's young generation capped (RUNNER_V8_FLAGS)", async (t) => {
    if (process.platform !== "linux") return t.skip("reads /proc");
    await ollama.generate({ model: "tiny", prompt: "Once", raw: true, options: GREEDY });
    const pid = srv.service.scheduler.loaded.get("tiny:latest")!.client.pid!;
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    for (const flag of RUNNER_V8_FLAGS) assert.ok(args.includes(flag), `${flag} in ${args.join(" ")}`);
    assert.ok(RUNNER_V8_FLAGS.length > 0);
  });

  it("a runner killed mid-stream fails that stream; the next request gets a fresh runner", async () => {
    const res = await post("/api/generate", {
      model: "tiny",
      prompt: "Once",
      raw: true,
      options: { num_predict: 100000 },
    });
    const reader = res.body!.getReader();
    await reader.read();
    const pid = srv.service.scheduler.loaded.get("tiny:latest")!.client.pid!;
    process.kill(pid, "SIGKILL");
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const last = JSON.parse(text.trim().split("\n").at(-1)!);
    assert.match(last.error, /stopped unexpectedly/);
    const r = await ollama.generate({
      model: "tiny",
      prompt: "Once upon a time",
      raw: true,
      options: GREEDY,
    });
    assert.equal(r.eval_count, 12);
    assert.notEqual(srv.service.scheduler.loaded.get("tiny:latest")!.client.pid, pid);
  });

  it("use_mmap false reloads the model with its weights read into memory; the answer is the same", async () => {
    const ask = (options: Record<string, unknown>) =>
      ollama.generate({
        model: "tiny",
        prompt: "Once upon a time",
        raw: true,
        options: { ...GREEDY, ...options },
      });
    const mapped = await ask({ use_mmap: true });
    const pid = srv.service.scheduler.loaded.get("tiny:latest")!.client.pid;
    const read = await ask({ use_mmap: false });
    const loaded = srv.service.scheduler.loaded.get("tiny:latest")!;
    assert.equal(loaded.useMmap, false);
    assert.notEqual(loaded.client.pid, pid);
    assert.equal(read.response, mapped.response);
    await ask({}); // no preference: the loaded model serves it as it is
    assert.equal(srv.service.scheduler.loaded.get("tiny:latest")!.client.pid, loaded.client.pid);
  });

  it("LMX_KV_CACHE_TYPE=q8_0: the runner loads a q8_0 KV cache at about half the bytes, and answers", async () => {
    const s = srv.service.scheduler;
    const ask = () =>
      ollama.generate({ model: "tiny", prompt: "Once upon a time", raw: true, options: GREEDY });
    const f16 = await ask();
    const before = s.loaded.get("tiny:latest")!.client.info;
    assert.equal(before.kvCacheType, "f16");
    await s.unload("tiny:latest", "test");
    (s.o as { kvCacheType?: string }).kvCacheType = "q8_0";
    try {
      const q8 = await ask();
      const info = s.loaded.get("tiny:latest")!.client.info;
      assert.equal(info.kvCacheType, "q8_0");
      assert.equal(info.kvBytes * 32, before.kvBytes * 17);
      assert.ok(q8.response && f16.response, "both answer");
    } finally {
      (s.o as { kvCacheType?: string }).kvCacheType = undefined;
      await s.unload("tiny:latest", "test");
    }
  });

  it("bad input gets a 4xx with a clear message in each API's shape", async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ["/api/chat", "{not json", 400, /invalid JSON/],
      ["/api/chat", "[1,2]", 400, /JSON object/],
      ["/api/chat", { model: "nope", messages: [] }, 404, /not found/],
      ["/api/chat", { model: "../../etc/passwd", messages: [] }, 400, /invalid model name/],
      ["/api/generate", { model: "tiny", prompt: "x", options: { temperature: "hot" } }, 400, /temperature/],
      [
        "/api/generate",
        { model: "tiny", prompt: "x", options: { num_ctx: 64 }, stream: false, raw: true },
        200,
        /./,
      ],
      [
        "/api/generate",
        { model: "tiny", prompt: "word ".repeat(200), raw: true, options: { num_ctx: 64 } },
        400,
        /context holds 64/,
      ],
      ["/api/chat", { model: "tiny", messages: [{ role: "wizard", content: "x" }] }, 400, /role/],
      ["/api/generate", { model: "tiny", prompt: "x", keep_alive: "soon" }, 400, /keep_alive/],
      ["/api/create", { model: "bad name!", from: "tiny" }, 400, /invalid model name/],
      ["/api/copy", { source: "nope", destination: "x" }, 404, /not found/],
      ["/v1/chat/completions", { model: "tiny", messages: "hi" }, 400, /messages/],
      [
        "/v1/chat/completions",
        { model: "tiny", messages: [{ role: "user", content: "x" }], prediction: { type: "text" } },
        400,
        /prediction/,
      ],
      ["/v1/messages", { model: "tiny", messages: [{ role: "user", content: "x" }] }, 400, /max_tokens/],
    ];
    for (const [path, body, status, msg] of cases) {
      const r = await post(path, body);
      const j = (await r.json()) as { error?: unknown; type?: string };
      assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 60)}: ${JSON.stringify(j)}`);
      if (status >= 400) {
        const m = path.startsWith("/v1/messages")
          ? (j.error as { message: string }).message
          : path.startsWith("/v1")
            ? (j.error as { message: string }).message
            : (j.error as string);
        assert.match(m, msg);
      }
    }
    const big = await post("/api/chat", "x".repeat(65 * 2 ** 20)).catch((e) => e);
    assert.ok(big instanceof Error || big.status === 413);
    assert.equal((await fetch(`${srv.url}/api/nothing`)).status, 404);
    assert.equal((await fetch(`${srv.url}/api/chat`)).status, 405);
    const cors = await fetch(`${srv.url}/api/tags`, { headers: { Origin: "https://evil.example" } });
    assert.equal(cors.status, 403);
    const okCors = await fetch(`${srv.url}/api/tags`, { headers: { Origin: "http://localhost:3000" } });
    assert.equal(okCors.headers.get("access-control-allow-origin"), "http://localhost:3000");
  });

  it("fuzz: generated requests on every route never get a 5xx", async () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
    const values = (): unknown =>
      pick([
        null,
        0,
        -1,
        1.5,
        1e308,
        "",
        "tiny",
        "x".repeat(300),
        true,
        [],
        [1],
        {},
        { a: 1 },
        [{ role: "user" }],
        "../x",
        "tiny:latest",
      ]);
    const keys = [
      "model",
      "prompt",
      "messages",
      "options",
      "stream",
      "raw",
      "format",
      "keep_alive",
      "tools",
      "think",
      "input",
      "source",
      "destination",
      "max_tokens",
      "system",
      "logprobs",
      "top_logprobs",
      "prediction",
      "from",
      "files",
      "template",
      "parameters",
    ];
    const routes = [
      "/api/generate",
      "/api/chat",
      "/api/embed",
      "/api/embeddings",
      "/api/show",
      "/api/create",
      "/api/copy",
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/embeddings",
      "/v1/messages",
    ];
    for (let i = 0; i < 300; i++) {
      const body: Record<string, unknown> = { model: rnd() < 0.7 ? "tiny" : values() };
      for (let k = 0; k < 4; k++) body[pick(keys)] = values();
      if (body.options && typeof body.options === "object")
        (body.options as Record<string, unknown>).num_predict = 2;
      else body.options = { num_predict: 2 };
      body.max_tokens = typeof body.max_tokens === "number" ? 2 : body.max_tokens;
      const route = pick(routes);
      const r = await post(route, body);
      await r.arrayBuffer();
      assert.ok(r.status < 500, `${route} ${JSON.stringify(body).slice(0, 200)} -> ${r.status}`);
    }
    for (const m of ["DELETE", "HEAD"] as const)
      assert.ok(
        (await fetch(`${srv.url}/api/delete`, { method: m, body: m === "DELETE" ? "{}" : undefined }))
          .status < 500,
      );
    assert.deepEqual(
      (await ollama.list()).models.map((m) => m.name),
      ["tiny:latest"],
    );
  });

  it("scheduler: keep_alive unloads (now, or after the duration), and the least recently used model makes room", async () => {
    await ollama.create({ model: "tiny-b", from: "tiny" });
    const loaded = () => srv.service.scheduler.loaded;
    await ollama.generate({ model: "tiny", prompt: "" });
    assert.ok(loaded().has("tiny:latest"));
    await ollama.generate({ model: "tiny", prompt: "", keep_alive: 0 });
    for (let i = 0; i < 50 && loaded().has("tiny:latest"); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(!loaded().has("tiny:latest"), "keep_alive 0 unloads");
    await ollama.generate({
      model: "tiny-b",
      prompt: "hi",
      raw: true,
      keep_alive: "1s",
      options: { num_predict: 2 },
    });
    assert.ok(loaded().has("tiny-b:latest"));
    const until = new Date((await ollama.ps()).models[0]!.expires_at).getTime() - Date.now();
    assert.ok(until > 0 && until <= 1000, `expires in ${until} ms`);
    await new Promise((r) => setTimeout(r, 1300));
    assert.ok(!loaded().has("tiny-b:latest"), "unloaded after keep_alive");
    // With room for one model, loading a second unloads the idle first.
    const max = srv.service.scheduler.o.maxLoaded;
    (srv.service.scheduler.o as { maxLoaded: number }).maxLoaded = 1;
    try {
      await ollama.generate({ model: "tiny", prompt: "" });
      await ollama.generate({ model: "tiny-b", prompt: "" });
      assert.deepEqual(
        (await ollama.ps()).models.map((m) => m.name),
        ["tiny-b:latest"],
      );
    } finally {
      (srv.service.scheduler.o as { maxLoaded: number }).maxLoaded = max;
      await ollama.delete({ model: "tiny-b" });
    }
  });

  it("ollama: push to and pull from a registry through /api/push and /api/pull", async () => {
    const reg = new TestRegistry();
    await reg.start();
    try {
      const remote = `${reg.url.replace("http://", "")}/me/tiny:v1`;
      await ollama.copy({ source: "tiny", destination: remote });
      const pushed: string[] = [];
      for await (const p of await ollama.push({ model: remote, insecure: true, stream: true }))
        pushed.push(p.status);
      assert.equal(pushed.at(-1), "success");
      await ollama.delete({ model: remote });
      let last: { status: string; completed?: number; total?: number } | undefined;
      let sawBytes = false;
      for await (const p of await ollama.pull({ model: remote, insecure: true, stream: true })) {
        last = p;
        if (p.total && p.completed) sawBytes = true;
      }
      assert.equal(last?.status, "success");
      assert.ok(sawBytes);
      assert.ok((await ollama.list()).models.some((m) => m.name === remote));
      const r = await ollama.generate({
        model: remote,
        prompt: "Once upon a time",
        raw: true,
        options: GREEDY,
      });
      assert.equal(r.eval_count, 12);
      await assert.rejects(
        ollama.pull({ model: `${reg.url.replace("http://", "")}/me/none:v1`, insecure: true }),
        /not found/,
      );
      await ollama.delete({ model: remote });
    } finally {
      await reg.close();
    }
  });
});
