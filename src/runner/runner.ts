/**
 * One loaded model generating for one sequence: resumes from the longest cached prefix,
 * prefills the rest in chunks, then decodes token by token with sampling on the backend.
 * Stop tokens, stop strings, length limits and cancellation end a generation.
 */
import type { Sampler } from "../engine/backends/backend.js";
import type { EngineModel } from "../engine/engine-model.js";
import { Detokenizer } from "../tokenizer/detokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { DEFAULT_OPTIONS, validateOptions, type GenerateOptions } from "./options.js";
import { StopMatcher } from "./stop.js";

export type DoneReason = "stop" | "length" | "abort";

export interface TokenEvent {
  token: number;
  /** Text that became complete with this token (may be empty). */
  text: string;
  logprob?: number;
  top?: { token: number; logprob: number }[];
}

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens served from the cache instead of being processed. */
  cachedTokens: number;
  promptMs: number;
  genTokens: number;
  genMs: number;
  doneReason: DoneReason;
}

const SEQ = 0;

export class Runner {
  /** Tokens whose K/V the cache holds for the sequence, in order. */
  private cached: number[] = [];
  private busy = false;

  constructor(
    readonly model: EngineModel,
    readonly tokenizer: Tokenizer,
    readonly stopTokens: ReadonlySet<number>,
  ) {}

  /** Forgets the cached context. */
  reset(): void {
    this.model.cache.truncate(SEQ, 0);
    this.cached = [];
  }

  /**
   * Generates a continuation of `prompt`. Yields a TokenEvent per generated token and
   * returns statistics when done. Only one generation runs at a time per runner.
   */
  async *generate(
    prompt: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<TokenEvent, GenerationStats> {
    validateOptions(options);
    if (this.busy)
      throw new Error("this model is already generating; wait for the current generation to finish");
    if (prompt.length === 0) throw new Error("the prompt is empty");
    const numCtx = this.model.numCtx;
    if (prompt.length >= numCtx)
      throw new Error(
        `the prompt has ${prompt.length} tokens but the context holds ${numCtx} (raise num_ctx)`,
      );
    this.busy = true;
    try {
      return yield* this.run(prompt, { ...DEFAULT_OPTIONS, ...options });
    } finally {
      this.busy = false;
    }
  }

  private async *run(
    prompt: readonly number[],
    o: GenerateOptions & typeof DEFAULT_OPTIONS,
  ): AsyncGenerator<TokenEvent, GenerationStats> {
    const model = this.model;
    const numCtx = model.numCtx;
    const seed = o.seed === undefined || o.seed < 0 ? Math.floor(Math.random() * 2 ** 52) : o.seed;
    const repeatLastN = o.repeatLastN === -1 ? numCtx : o.repeatLastN;
    const sampler: Sampler = model.backend.createSampler({
      ...o,
      seed,
      repeatLastN,
      logprobs: o.logprobs ?? -1,
    });
    for (const t of prompt.slice(-repeatLastN)) if (repeatLastN > 0) sampler.accept(t);

    // Resume from the longest cached prefix; at least one token must be processed for logits.
    let keep = 0;
    while (keep < this.cached.length && keep < prompt.length - 1 && this.cached[keep] === prompt[keep])
      keep++;
    model.cache.truncate(SEQ, Math.min(keep, model.cache.length(SEQ)));
    this.cached.length = keep;
    const cachedTokens = keep;

    const t0 = performance.now();
    let next = -1;
    for (let pos = keep; pos < prompt.length;) {
      if (o.signal?.aborted) return this.stats(prompt.length, cachedTokens, t0, t0, 0, "abort");
      const n = Math.min(o.numBatch, prompt.length - pos);
      const last = pos + n === prompt.length;
      model.cache.reserve(SEQ, pos + n);
      const tokens = prompt.slice(pos, pos + n);
      const out = await model.forward(
        {
          tokens,
          positions: tokens.map((_, i) => pos + i),
          seqs: new Array(n).fill(SEQ),
          outRows: last ? [n - 1] : [],
        },
        last ? [sampler] : undefined,
      );
      this.cached.push(...tokens);
      pos += n;
      if (last) next = out![0]!;
    }
    const t1 = performance.now();

    const detok = new Detokenizer(this.tokenizer);
    const stop = new StopMatcher(o.stop ?? []);
    const limit = o.numPredict < 0 ? Infinity : o.numPredict;
    let generated = 0;
    let reason: DoneReason = "length";
    for (;;) {
      if (this.stopTokens.has(next)) {
        reason = "stop";
        break;
      }
      generated++;
      sampler.accept(next);
      const text = stop.push(detok.push(next));
      const ev: TokenEvent = { token: next, text };
      if ((o.logprobs ?? -1) >= 0) {
        const r = sampler.last();
        ev.logprob = r.logprob;
        ev.top = r.topIds.map((t, i) => ({ token: t, logprob: r.topLogprobs[i]! }));
      }
      yield ev;
      if (stop.stopped) {
        reason = "stop";
        break;
      }
      if (generated >= limit) break;
      if (o.signal?.aborted) {
        reason = "abort";
        break;
      }
      const pos = this.cached.length;
      if (pos + 1 >= numCtx) break;
      model.cache.reserve(SEQ, pos + 1);
      const out = await model.forward({ tokens: [next], positions: [pos], seqs: [SEQ], outRows: [0] }, [
        sampler,
      ]);
      this.cached.push(next);
      next = out![0]!;
    }
    const tail = stop.push(detok.flush()) + stop.flush();
    if (tail) yield { token: -1, text: tail };
    return this.stats(prompt.length, cachedTokens, t0, t1, generated, reason);
  }

  private stats(
    promptTokens: number,
    cachedTokens: number,
    t0: number,
    t1: number,
    genTokens: number,
    doneReason: DoneReason,
  ): GenerationStats {
    return {
      promptTokens,
      cachedTokens,
      promptMs: t1 - t0,
      genTokens,
      genMs: performance.now() - t1,
      doneReason,
    };
  }
}
