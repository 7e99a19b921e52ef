/** Ollama's HTTP API (`/api/*`): generation, chat, embeddings and model management. */
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { RegistryError } from "../registry/http-retry.js";
import { pullModel, type Progress } from "../registry/pull.js";
import { pushModel } from "../registry/push.js";
import { DigestError } from "../store/blob.js";
import { createModel, CreateError } from "../store/create-model.js";
import { MediaType } from "../store/manifest.js";
import { ModelfileError, parseModelfile, renderModelfile, type Modelfile } from "../store/modelfile.js";
import { InvalidNameError, normalizeName } from "../store/name.js";
import { ModelNotFoundError } from "../store/store.js";
import { OptionError } from "../runner/ollama-options.js";
import { DurationError, parseKeepAlive } from "./duration.js";
import { field, HttpError, ndjson, readJson, sendJson, type Ctx, type Router } from "./http.js";
import { checkOllamaMessages, checkTools } from "./messages.js";
import { modelFacts } from "../store/model-facts.js";
import { checkFormat, collect, started, type GenEvent, type ResolvedModel, type Service } from "./service.js";
import type { RunInput } from "./runner-protocol.js";

export const VERSION = "0.1.0";

function keepAlive(body: Record<string, unknown>): number | undefined {
  if (body.keep_alive === undefined || body.keep_alive === null) return undefined;
  try {
    return parseKeepAlive(body.keep_alive);
  } catch (e) {
    if (e instanceof DurationError) throw new HttpError(400, e.message);
    throw e;
  }
}

function think(body: Record<string, unknown>): boolean | undefined {
  const t = body.think;
  if (t === undefined || t === null) return undefined;
  if (typeof t === "boolean") return t;
  if (t === "high" || t === "medium" || t === "low") return true;
  throw new HttpError(400, `"think" must be true, false, "high", "medium" or "low"`);
}

function logprobs(body: Record<string, unknown>): number | undefined {
  if (!field.bool(body, "logprobs")) return undefined;
  const top = field.num(body, "top_logprobs") ?? 0;
  if (!Number.isInteger(top) || top < 0 || top > 20)
    throw new HttpError(400, '"top_logprobs" must be an integer from 0 to 20');
  return top;
}

const now = () => new Date().toISOString();

function timings(ev: Extract<GenEvent, { t: "done" }>) {
  const s = ev.stats;
  return {
    done_reason: ev.doneReason,
    done: true,
    total_duration: ev.totalNs,
    load_duration: ev.loadNs,
    prompt_eval_count: s.promptTokens,
    prompt_eval_duration: Math.round(s.promptMs * 1e6),
    eval_count: s.genTokens,
    eval_duration: Math.round(s.genMs * 1e6),
  };
}

/** Answers a request with an empty prompt: load (or unload with keep_alive 0) the model. */
async function loadOnly(svc: Service, ctx: Ctx, m: ResolvedModel, ka: number | undefined, chat: boolean) {
  const { loaded } = await svc.acquire(m);
  svc.scheduler.release(loaded, ka);
  const unloading = ka !== undefined && ka <= 0;
  sendJson(ctx.res, 200, {
    model: m.name,
    created_at: now(),
    ...(chat ? { message: { role: "assistant", content: "" } } : { response: "" }),
    done_reason: unloading ? "unload" : "load",
    done: true,
  });
}

async function streamGeneration(
  svc: Service,
  ctx: Ctx,
  m: ResolvedModel,
  body: Record<string, unknown>,
  input: RunInput,
  chat: boolean,
) {
  const stream = field.bool(body, "stream") ?? true;
  const gen = svc.generate({
    model: m,
    input,
    options: body.options,
    logprobs: logprobs(body),
    format: checkFormat(body.format),
    keepAliveMs: keepAlive(body),
    signal: ctx.signal,
  });
  // The first event decides the status: errors before it are a clean 4xx/5xx response.
  const events = await started(gen);
  const shape = (d: Omit<Extract<GenEvent, { t: "delta" }>, "t">) => {
    const lp = d.logprobs?.length
      ? d.logprobs.map(({ top, ...l }) => ({ ...l, top_logprobs: top }))
      : undefined;
    if (chat) {
      const message: Record<string, unknown> = { role: "assistant", content: d.content ?? "" };
      if (d.thinking) message.thinking = d.thinking;
      if (d.toolCalls?.length) message.tool_calls = d.toolCalls;
      return { message, ...(lp ? { logprobs: lp } : {}) };
    }
    return {
      response: d.content ?? "",
      ...(d.thinking ? { thinking: d.thinking } : {}),
      ...(lp ? { logprobs: lp } : {}),
    };
  };
  if (!stream) {
    const c = await collect(events);
    sendJson(ctx.res, 200, { model: m.name, created_at: now(), ...shape(c), ...timings(c.done) });
    return;
  }
  const write = ndjson(ctx.res);
  try {
    for await (const ev of events) {
      if (ev.t === "delta") write({ model: m.name, created_at: now(), ...shape(ev), done: false });
      else write({ model: m.name, created_at: now(), ...shape({}), ...timings(ev) });
    }
  } catch (e) {
    write({ error: (e as Error).message });
  }
  ctx.res.end();
}

function paramsText(params: Record<string, unknown>): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(params))
    for (const one of Array.isArray(v) ? v : [v])
      lines.push(`${k.padEnd(30)} ${typeof one === "string" ? JSON.stringify(one) : one}`);
  return lines.join("\n");
}

function storeErrors(e: unknown): never {
  if (
    e instanceof InvalidNameError ||
    e instanceof ModelfileError ||
    e instanceof CreateError ||
    e instanceof OptionError ||
    e instanceof DigestError
  )
    throw new HttpError(400, (e as Error).message);
  if (e instanceof ModelNotFoundError) throw new HttpError(404, e.message);
  throw e;
}

export function ollamaRoutes(r: Router, svc: Service): void {
  const store = svc.store;
  const running = (ctx: Ctx) => {
    ctx.res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
    ctx.res.end(ctx.req.method === "HEAD" ? undefined : "lmx is running");
  };
  r.add("GET", "/", running);
  r.add("GET", "/api/version", (ctx) => sendJson(ctx.res, 200, { version: VERSION }));

  r.add("POST", "/api/generate", async (ctx) => {
    const body = await readJson(ctx.req);
    const m = svc.resolve(body.model);
    const prompt = field.str(body, "prompt") ?? "";
    const system = field.str(body, "system");
    if (field.array(body, "images")?.length) throw new HttpError(400, "this model does not support images");
    if (field.str(body, "suffix")) throw new HttpError(400, `${m.name} does not support insert (suffix)`);
    if (prompt === "") return loadOnly(svc, ctx, m, keepAlive(body), false);
    const input: RunInput = field.bool(body, "raw")
      ? { raw: prompt }
      : { messages: svc.conversation(m, [{ role: "user", content: prompt }], system), think: think(body) };
    await streamGeneration(svc, ctx, m, body, input, false);
  });

  r.add("POST", "/api/chat", async (ctx) => {
    const body = await readJson(ctx.req);
    const m = svc.resolve(body.model);
    const messages = checkOllamaMessages(body.messages);
    const tools = checkTools(body.tools);
    if (messages.length === 0) return loadOnly(svc, ctx, m, keepAlive(body), true);
    await streamGeneration(
      svc,
      ctx,
      m,
      body,
      { messages: svc.conversation(m, messages), tools, think: think(body) },
      true,
    );
  });

  const embed = async (ctx: Ctx, legacy: boolean) => {
    const body = await readJson(ctx.req);
    const m = svc.resolve(body.model);
    let inputs: string[];
    const raw = legacy ? body.prompt : body.input;
    if (typeof raw === "string") inputs = [raw];
    else if (Array.isArray(raw) && raw.every((s) => typeof s === "string")) inputs = raw;
    else
      throw new HttpError(
        400,
        `"${legacy ? "prompt" : "input"}" must be a string${legacy ? "" : " or a list of strings"}`,
      );
    if (inputs.length === 0 || inputs.some((s) => s === "")) {
      if (legacy) return sendJson(ctx.res, 200, { embedding: [] });
      throw new HttpError(400, "input must not be empty");
    }
    const dims = field.num(body, "dimensions");
    const out = await svc.embed(m, inputs, {
      truncate: field.bool(body, "truncate") ?? true,
      options: body.options,
      keepAliveMs: keepAlive(body),
    });
    const vecs = out.embeddings.map((e) => {
      let v = Array.from(e);
      if (dims !== undefined) {
        if (!Number.isInteger(dims) || dims < 1 || dims > v.length)
          throw new HttpError(400, `dimensions must be between 1 and ${v.length}`);
        v = v.slice(0, dims);
        const n = Math.hypot(...v) || 1;
        v = v.map((x) => x / n);
      }
      return v;
    });
    if (legacy) return sendJson(ctx.res, 200, { embedding: vecs[0] });
    sendJson(ctx.res, 200, {
      model: m.name,
      embeddings: vecs,
      total_duration: out.totalNs,
      load_duration: out.loadNs,
      prompt_eval_count: out.promptTokens,
    });
  };
  r.add("POST", "/api/embed", (ctx) => embed(ctx, false));
  r.add("POST", "/api/embeddings", (ctx) => embed(ctx, true));

  r.add("GET", "/api/tags", (ctx) => {
    const models = store.list().map((s) => {
      const m = svc.resolve(s.name);
      return {
        name: s.name,
        model: s.name,
        modified_at: s.modifiedAt.toISOString(),
        size: s.size,
        digest: s.digest,
        details: modelFacts(m).details,
      };
    });
    sendJson(ctx.res, 200, { models });
  });

  r.add("POST", "/api/show", async (ctx) => {
    const body = await readJson(ctx.req);
    const m = svc.resolve(body.model ?? body.name);
    const facts = modelFacts(m, field.bool(body, "verbose") ?? false);
    const licenses = (m.stored?.manifest.layers ?? [])
      .filter((l) => l.mediaType === MediaType.license)
      .map((l) => store.blobText(l.digest));
    sendJson(ctx.res, 200, {
      license: licenses.join("\n"),
      modelfile: renderModelfile({
        from: m.ref.path,
        template: m.ref.template,
        system: m.system,
        params: m.params,
        messages: m.messages,
        license: licenses,
      }),
      parameters: paramsText(m.params),
      template: facts.template ?? "",
      ...(m.system !== undefined ? { system: m.system } : {}),
      details: facts.details,
      model_info: facts.modelInfo,
      capabilities: facts.capabilities,
      modified_at: (m.stored?.modifiedAt ?? new Date()).toISOString(),
      // Not in Ollama's answer: the context a request gets here without num_ctx (what launch tells agents).
      context_length: svc.defaultContext(m, facts.contextLength),
      ...(m.messages.length ? { messages: m.messages } : {}),
    });
  });

  r.add("GET", "/api/ps", (ctx) => {
    const models = [...svc.scheduler.loaded.values()].map((l) => ({
      name: l.ref.name,
      model: l.ref.name,
      size: l.estimate,
      digest: l.ref.digest,
      details: modelFacts(svc.resolve(l.ref.name)).details,
      expires_at:
        l.expiresAt === null
          ? new Date(Date.now() + svc.scheduler.o.keepAliveMs).toISOString()
          : l.expiresAt === Infinity
            ? "2318-08-21T00:00:00Z"
            : new Date(l.expiresAt).toISOString(),
      size_vram: 0,
      context_length: l.client.info.numCtx,
    }));
    sendJson(ctx.res, 200, { models });
  });

  r.add("POST", "/api/create", async (ctx) => {
    const body = await readJson(ctx.req);
    const name = field.str(body, "model") ?? field.str(body, "name");
    if (!name) throw new HttpError(400, '"model" is required');
    try {
      normalizeName(name);
    } catch (e) {
      storeErrors(e);
    }
    let mf: Modelfile;
    try {
      mf =
        typeof body.modelfile === "string"
          ? parseModelfile(body.modelfile)
          : { parameters: [], license: [], messages: [] };
    } catch (e) {
      storeErrors(e);
    }
    const from = field.str(body, "from");
    if (from) mf.from = from;
    const files = field.obj(body, "files");
    if (files) {
      const gguf = Object.entries(files).find(([f]) => f.endsWith(".gguf")) ?? Object.entries(files)[0];
      if (!gguf || typeof gguf[1] !== "string")
        throw new HttpError(400, '"files" must map file names to blob digests');
      let path: string;
      try {
        path = store.blobs.path(gguf[1]);
      } catch (e) {
        storeErrors(e);
      }
      if (!store.blobs.has(gguf[1]))
        throw new HttpError(400, `blob ${gguf[1]} is not on the server; upload it to /api/blobs first`);
      mf.from = path;
    }
    if (mf.from?.startsWith("@sha256:")) mf.from = store.blobs.path(mf.from.slice(1));
    const t = field.str(body, "template");
    if (t !== undefined) mf.template = t;
    const s = field.str(body, "system");
    if (s !== undefined) mf.system = s;
    const params = field.obj(body, "parameters");
    for (const [k, v] of Object.entries(params ?? {}))
      for (const one of Array.isArray(v) ? v : [v]) mf.parameters.push([k, String(one)]);
    if (body.messages !== undefined)
      mf.messages = checkOllamaMessages(body.messages).map((x) => ({ role: x.role, content: x.content }));
    if (typeof body.license === "string") mf.license = [body.license];
    else if (Array.isArray(body.license)) mf.license = body.license.map(String);
    const quantize = field.str(body, "quantize");
    const stream = field.bool(body, "stream") ?? true;
    const statuses: string[] = [];
    const write = stream ? ndjson(ctx.res) : null;
    try {
      await createModel(store, name, mf, {
        quantize,
        baseDir: mf.from && !mf.from.startsWith("/") ? process.cwd() : dirname(mf.from ?? "/"),
        onStatus: (st) => (write ? write({ status: st }) : statuses.push(st)),
      });
    } catch (e) {
      if (!write) storeErrors(e);
      write({ error: (e as Error).message });
      ctx.res.end();
      return;
    }
    if (write) ctx.res.end();
    else sendJson(ctx.res, 200, { status: "success" });
  });

  const transfer = (kind: "pull" | "push") => async (ctx: Ctx) => {
    const body = await readJson(ctx.req);
    const name = field.str(body, "model") ?? field.str(body, "name");
    if (!name) throw new HttpError(400, '"model" is required');
    try {
      normalizeName(name);
    } catch (e) {
      storeErrors(e);
    }
    const stream = field.bool(body, "stream") ?? true;
    const insecure = field.bool(body, "insecure") ?? false;
    const write = stream ? ndjson(ctx.res) : null;
    const o = { insecure, signal: ctx.signal, onProgress: (p: Progress) => write?.(p) };
    try {
      if (kind === "pull") await pullModel(store, name, o);
      else await pushModel(store, name, o);
    } catch (e) {
      if (!write) {
        if (e instanceof ModelNotFoundError) throw new HttpError(404, e.message);
        // The registry's failures are not the client's: 404 when the model is not there, else 502.
        throw new HttpError(e instanceof RegistryError && e.status === 404 ? 404 : 502, (e as Error).message);
      }
      write({ error: (e as Error).message });
    }
    if (write) ctx.res.end();
    else sendJson(ctx.res, 200, { status: "success" });
  };
  r.add("POST", "/api/pull", transfer("pull"));
  r.add("POST", "/api/push", transfer("push"));

  r.add("POST", "/api/copy", async (ctx) => {
    const body = await readJson(ctx.req);
    const source = field.str(body, "source", true)!;
    const destination = field.str(body, "destination", true)!;
    try {
      store.copy(source, destination);
    } catch (e) {
      storeErrors(e);
    }
    ctx.res.writeHead(200).end();
  });

  r.add("DELETE", "/api/delete", async (ctx) => {
    const body = await readJson(ctx.req);
    const name = field.str(body, "model") ?? field.str(body, "name");
    if (!name) throw new HttpError(400, '"model" is required');
    try {
      store.remove(name);
    } catch (e) {
      storeErrors(e);
    }
    ctx.res.writeHead(200).end();
  });

  r.add("HEAD", "/api/blobs/:digest", (ctx) => {
    let has: boolean;
    try {
      has = store.blobs.has(ctx.params.digest!);
    } catch (e) {
      storeErrors(e);
    }
    ctx.res.writeHead(has ? 200 : 404).end();
  });

  r.add("POST", "/api/blobs/:digest", async (ctx) => {
    const digest = ctx.params.digest!;
    try {
      if (store.blobs.has(digest)) {
        ctx.req.resume();
        ctx.res.writeHead(200).end();
        return;
      }
      await store.blobs.write(ctx.req as unknown as Readable, digest);
    } catch (e) {
      storeErrors(e);
    }
    ctx.res.writeHead(201).end();
  });
}
