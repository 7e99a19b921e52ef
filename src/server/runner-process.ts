/**
 * The process that holds one loaded model (`lmx serve` forks one per model): it renders
 * prompts, runs the batching runner and streams tokens back over IPC. A crash here ends
 * only this process; the server fails the requests in flight and starts a fresh one.
 */
import { loadModel, type Model } from "../model.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { promptOpensThinking } from "../chat/output-parser.js";
import type { FromRunner, RunRequest, ToRunner, TokenLogprob, EmbedRequest } from "./runner-protocol.js";

const send = (m: FromRunner) => process.send!(m);
let model: Model;
const running = new Map<number, AbortController>();

class BadRequest extends Error {}

function fail(id: number, e: unknown): void {
  send({
    t: "error",
    id,
    message: (e as Error).message,
    status: e instanceof BadRequest || e instanceof RangeError || e instanceof TypeError ? 400 : 500,
  });
}

/** Renders and tokenizes; drops the oldest non-system messages while the prompt overflows. */
function prompt(req: RunRequest): { text: string; tokens: number[] } {
  const limit = model.engine.numCtx - 1;
  if ("raw" in req.input) {
    const tokens = model.tokenizer.encode(req.input.raw);
    if (tokens.length > limit)
      throw new BadRequest(
        `the prompt has ${tokens.length} tokens but the context holds ${model.engine.numCtx} (raise num_ctx)`,
      );
    return { text: req.input.raw, tokens };
  }
  const { tools, think } = req.input;
  const msgs: ChatMessage[] = [...req.input.messages];
  for (;;) {
    const text = model.renderChat(msgs, { tools, think });
    const tokens = model.tokenizer.encode(text);
    if (tokens.length <= limit) return { text, tokens };
    const drop = msgs.findIndex((m, i) => m.role !== "system" && i < msgs.length - 1);
    if (drop < 0)
      throw new BadRequest(
        `the prompt has ${tokens.length} tokens but the context holds ${model.engine.numCtx} (raise num_ctx)`,
      );
    msgs.splice(drop, 1);
  }
}

function piece(id: number, logprob: number): TokenLogprob {
  const token = model.tokenizer.decode([id], { skipSpecial: false });
  return { token, logprob, bytes: [...Buffer.from(token)] };
}

async function run(req: RunRequest): Promise<void> {
  const ac = new AbortController();
  running.set(req.id, ac);
  try {
    const p = prompt(req);
    send({
      t: "start",
      id: req.id,
      opensThinking: promptOpensThinking(p.text),
      promptTokens: p.tokens.length,
    });
    const gen = model.generate(p.tokens, { ...req.options, signal: ac.signal });
    for await (const ev of gen) {
      const m: FromRunner = { t: "token", id: req.id, text: ev.text };
      if (ev.logprob !== undefined && ev.token >= 0)
        m.logprob = {
          ...piece(ev.token, ev.logprob),
          top: (ev.top ?? []).map((t) => piece(t.token, t.logprob)),
        };
      send(m);
    }
    send({ t: "done", id: req.id, stats: await gen.stats });
  } catch (e) {
    fail(req.id, e);
  } finally {
    running.delete(req.id);
  }
}

async function embed(req: EmbedRequest): Promise<void> {
  try {
    const limit = model.engine.numCtx;
    let promptTokens = 0;
    const out: Float32Array[] = [];
    for (const s of req.inputs) {
      let tokens = model.tokenizer.encode(s);
      if (tokens.length > limit) {
        if (!req.truncate)
          throw new BadRequest(`an input has ${tokens.length} tokens but the context holds ${limit}`);
        tokens = tokens.slice(0, limit);
      }
      if (tokens.length === 0) throw new BadRequest("an input is empty");
      promptTokens += tokens.length;
      out.push(await model.embed(tokens));
    }
    send({ t: "embedded", id: req.id, embeddings: out, promptTokens });
  } catch (e) {
    fail(req.id, e);
  }
}

process.on("message", async (m: ToRunner) => {
  switch (m.t) {
    case "load":
      try {
        model = await loadModel(m.path, {
          numCtx: m.numCtx,
          numParallel: m.numParallel,
          threads: m.threads,
          template: m.template,
          useMmap: m.useMmap,
          kvCacheType: m.kvCacheType,
        });
        send({
          t: "ready",
          info: {
            architecture: model.engine.metadata.arch,
            numCtx: model.engine.numCtx,
            numParallel: model.runner.numSeq,
            backend: `${model.engine.backend.name} (${model.engine.backend.kernels()})`,
            threads: model.engine.backend.threads(),
            weightBytes: model.engine.weightBytes(),
            kvBytes: model.engine.cache.bytes(),
            kvCacheType: model.engine.cache.type,
            loadMs: model.loadMs,
            mmap: model.source.mmap,
          },
        });
      } catch (e) {
        send({ t: "fatal", message: (e as Error).message });
        process.exit(1);
      }
      break;
    case "run":
      void run(m);
      break;
    case "embed":
      void embed(m);
      break;
    case "count":
      try {
        // The prompt exactly as a generation would see it (template, tools), untruncated.
        const text =
          "raw" in m.input
            ? m.input.raw
            : model.renderChat(m.input.messages, { tools: m.input.tools, think: m.input.think });
        send({ t: "counted", id: m.id, tokens: model.tokenizer.encode(text).length });
      } catch (e) {
        fail(m.id, e);
      }
      break;
    case "cancel":
      running.get(m.id)?.abort();
      break;
  }
});
// The server went away: nothing left to serve.
process.on("disconnect", () => process.exit(0));
