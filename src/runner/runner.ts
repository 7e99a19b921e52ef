/**
 * One loaded model generating for up to `numSeq` sequences at once (continuous batching):
 * every step packs one decode row per generating sequence and prompt chunks of the ones
 * still prefilling into a single forward pass, with sampling on the backend. Requests
 * beyond the slots wait; a new request takes the free slot whose cached tokens share the
 * longest prefix with its prompt, so a returning conversation resumes where it left off.
 */
import type { Sampler } from "../engine/backends/backend.js";
import { paddedRows, type EngineModel } from "../engine/engine-model.js";
import { Detokenizer } from "../tokenizer/detokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { JsonMatcher } from "../chat/json-matcher.js";
import { compileSchema } from "../chat/json-schema.js";
import { ConstrainedPicker, seededRandom } from "./constrained.js";
import { MAX_NGRAM, NgramDrafter, type Draft } from "./ngram-drafter.js";
import { DEFAULT_OPTIONS, validateOptions, type GenerateOptions } from "./options.js";
import { Acceptance, draftsToVerify, expectedTokens, PassCosts, type PassSoFar } from "./speculation.js";
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
  /** Speculative decoding: drafted tokens verified, and how many of them came true. */
  draftTokens?: number;
  acceptedDrafts?: number;
}

type Resolved = GenerateOptions & typeof DEFAULT_OPTIONS;

type Item = { ev: TokenEvent } | { end: GenerationStats } | { error: unknown };

/**
 * How many of a prompt's next `n` tokens to feed in a batch that already holds `before`
 * rows. Past 16 rows, batches pad to the next multiple of 32 (paddedRows), and a padding
 * row costs what a real one does, so a chunk that would leave a batch 1-8 rows past an
 * unpadded size stops there and leaves those rows to the next step, whose small batch runs
 * on the decode dots (Q4_K_M, one thread: a 40-token prompt took 250 ms as one padded
 * 64-row pass, 205 ms as 32 + 8; at 16 rows past, the two cost the same).
 */
export function chunkWithoutPadding(before: number, n: number): number {
  const total = before + n;
  if (total <= 16) return n;
  let base = total;
  while (paddedRows(base) !== base) base--;
  const over = total - base;
  return over <= 8 && n > over ? n - over : n;
}
/** A generation in flight. */
interface Job {
  kind: "generate";
  prompt: readonly number[];
  o: Resolved;
  sampler?: Sampler;
  slot: number;
  /** Next prompt index to process. */
  pos: number;
  /** Sampled token to feed next, or -1 while prefilling. */
  next: number;
  cachedTokens: number;
  generated: number;
  detok: Detokenizer;
  stop: StopMatcher;
  t0: number;
  t1: number;
  /** Structured output: the matcher the text must keep satisfying, and its random source. */
  matcher?: JsonMatcher;
  random?: () => number;
  /** Tokens that close the structured output when the budget runs out. */
  forced?: number[];
  /** Speculative decoding (numDraft > 0): the guesser over prompt and output, and how
   * often its guesses came true. */
  drafter?: NgramDrafter;
  acceptance?: Acceptance;
  drafted: number;
  accepted: number;
  /** The consumer went away. */
  cancelled: boolean;
  finished: boolean;
  items: Item[];
  wake: (() => void) | null;
}

/** Drafts ride beside a prompt chunk for sequences whose drafts come true at least this often. */
const MIN_RATE_BESIDE_PROMPT = 0.5;

/** A pass being gathered: what its decode rows' drafts are chosen against. */
interface PassPlan extends PassSoFar {
  /** A prompt chunk rides in it. */
  prefilling: boolean;
}

/** A job's output rows in a pass: its decode row and the k drafts fed after it, or its
 * prompt's last row. */
interface Out {
  job: Job;
  first: number;
  guess: Draft | null;
  k: number;
}

interface EmbedJob {
  kind: "embed";
  tokens: readonly number[];
  resolve: (h: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class Runner {
  /** Per slot: tokens whose K/V the cache holds, in order. */
  private readonly cached: number[][];
  private readonly lastUse: number[];
  private readonly busySlots = new Set<number>();
  private readonly active: Job[] = [];
  private readonly pending: (Job | EmbedJob)[] = [];
  private looping = false;
  private useClock = 0;
  /** Rows per forward pass across all sequences. */
  readonly batchSize = DEFAULT_OPTIONS.numBatch;
  /** What decode passes cost by their number of rows (for speculative decoding). */
  passCosts = new PassCosts();
  /** How often drafts came true, over every sequence: where a new one's estimate starts. */
  private readonly acceptance = new Acceptance();
  private readonly picker: ConstrainedPicker;

  constructor(
    readonly model: EngineModel,
    readonly tokenizer: Tokenizer,
    readonly stopTokens: ReadonlySet<number>,
    /** Control tokens kept in the text (thinking and tool-call tags). */
    readonly textTokens: ReadonlySet<number> = new Set(),
  ) {
    this.picker = new ConstrainedPicker(tokenizer, stopTokens);
    this.cached = Array.from({ length: model.numSeq }, () => []);
    this.lastUse = new Array(model.numSeq).fill(0);
  }

  /** Sequences that can generate at once. */
  get numSeq(): number {
    return this.model.numSeq;
  }

  /** Generations running or waiting. */
  get load(): number {
    return this.active.length + this.pending.length;
  }

  /** Forgets the cached context of idle slots. */
  reset(): void {
    for (let s = 0; s < this.numSeq; s++) {
      if (this.busySlots.has(s)) continue;
      this.model.cache.truncate(s, 0);
      this.cached[s] = [];
    }
  }

  /**
   * Generates a continuation of `prompt`. Yields a TokenEvent per generated token and
   * returns statistics when done. Stopping the iteration early cancels the generation.
   */
  async *generate(
    prompt: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<TokenEvent, GenerationStats> {
    validateOptions(options);
    if (prompt.length === 0) throw new Error("the prompt is empty");
    const numCtx = this.model.numCtx;
    if (prompt.length >= numCtx)
      throw new Error(
        `the prompt has ${prompt.length} tokens but the context holds ${numCtx} (raise num_ctx)`,
      );
    for (const ids of [prompt, typeof options.prediction === "object" ? options.prediction : []])
      for (const t of ids)
        if (!(Number.isInteger(t) && t >= 0 && t < this.model.vocabSize))
          throw new Error(`token id ${t} is outside the vocabulary of ${this.model.vocabSize}`);
    const o: Resolved = { ...DEFAULT_OPTIONS, ...options };
    const schema = o.format === undefined ? undefined : compileSchema(o.format);
    const job: Job = {
      kind: "generate",
      prompt,
      o,
      slot: -1,
      pos: 0,
      next: -1,
      cachedTokens: 0,
      generated: 0,
      drafted: 0,
      accepted: 0,
      detok: new Detokenizer(this.tokenizer, true, this.textTokens),
      stop: new StopMatcher(o.stop ?? []),
      t0: 0,
      t1: 0,
      cancelled: false,
      finished: false,
      items: [],
      wake: null,
      matcher: schema && new JsonMatcher(schema),
    };
    this.pending.push(job);
    this.kick();
    try {
      for (;;) {
        while (job.items.length === 0) await new Promise<void>((r) => (job.wake = r));
        const it = job.items.shift()!;
        if ("ev" in it) yield it.ev;
        else if ("end" in it) return it.end;
        else throw it.error;
      }
    } finally {
      if (!job.finished) job.cancelled = true;
      const i = this.pending.indexOf(job);
      if (i >= 0) this.pending.splice(i, 1);
    }
  }

  /** Final-norm hidden states of every position of `tokens`: [tokens.length, hidden]. */
  embed(tokens: readonly number[]): Promise<Float32Array> {
    if (tokens.length === 0) return Promise.reject(new Error("the input is empty"));
    if (tokens.length > this.model.numCtx)
      return Promise.reject(
        new Error(`the input has ${tokens.length} tokens but the context holds ${this.model.numCtx}`),
      );
    return new Promise((resolve, reject) => {
      this.pending.push({ kind: "embed", tokens, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop().finally(() => {
      this.looping = false;
      if (this.pending.length) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      while (this.pending.length && this.busySlots.size < this.numSeq) {
        const job = this.pending.shift()!;
        if (job.kind === "embed") await this.runEmbed(job);
        else this.admit(job);
      }
      if (this.active.length === 0) return;
      try {
        await this.step();
      } catch (e) {
        // A failed pass leaves the caches of the jobs in it unknown: fail them and forget.
        for (const job of [...this.active]) {
          this.cached[job.slot] = [];
          this.model.cache.truncate(job.slot, 0);
          this.fail(job, e);
        }
      }
    }
  }

  /**
   * The free slot whose cached tokens share the longest prefix with `prompt`, cut back to
   * that prefix; `previous` is what it held from a few tokens before the cut on (a draft
   * source: when a request is retried, its earlier answer).
   */
  private takeSlot(prompt: readonly number[]): { slot: number; keep: number; previous: number[] } {
    let best = -1,
      bestKeep = -1;
    for (let s = 0; s < this.numSeq; s++) {
      if (this.busySlots.has(s)) continue;
      const c = this.cached[s]!;
      let keep = 0;
      while (keep < c.length && keep < prompt.length - 1 && c[keep] === prompt[keep]) keep++;
      if (keep > bestKeep || (keep === bestKeep && this.lastUse[s]! < this.lastUse[best]!)) {
        best = s;
        bestKeep = keep;
      }
    }
    this.busySlots.add(best);
    this.lastUse[best] = ++this.useClock;
    this.model.cache.truncate(best, Math.min(bestKeep, this.model.cache.length(best)));
    const c = this.cached[best]!;
    // (Only after a common prefix: a slot of another conversation is no guide to this one.)
    const previous = bestKeep > 0 && c.length > bestKeep ? c.slice(Math.max(0, bestKeep - MAX_NGRAM)) : [];
    c.length = bestKeep;
    return { slot: best, keep: bestKeep, previous };
  }

  private admit(job: Job): void {
    if (job.cancelled) return;
    const { slot, keep, previous } = this.takeSlot(job.prompt);
    const o = job.o;
    const numCtx = this.model.numCtx;
    const seed = o.seed === undefined || o.seed < 0 ? Math.floor(Math.random() * 2 ** 52) : o.seed;
    const repeatLastN = o.repeatLastN === -1 ? numCtx : o.repeatLastN;
    job.sampler = this.model.backend.createSampler({ ...o, seed, repeatLastN, logprobs: o.logprobs ?? -1 });
    if (repeatLastN > 0) for (const t of job.prompt.slice(-repeatLastN)) job.sampler.accept(t);
    if (job.matcher) job.random = seededRandom(seed);
    // Verified draws keep one sampler state per sequence; log-probabilities report only the
    // last draw of a pass, and structured output picks its tokens in JavaScript.
    if (o.numDraft > 0 && !job.matcher && (o.logprobs ?? -1) < 0) {
      // A prediction follows the prompt: anchored by its last tokens, so the first step finds it.
      const predicted =
        typeof o.prediction === "string"
          ? this.tokenizer.encode(o.prediction, { parseSpecial: false, addBos: false })
          : o.prediction;
      job.drafter = new NgramDrafter(
        job.prompt,
        predicted?.length ? [...job.prompt.slice(-MAX_NGRAM), ...predicted] : previous,
      );
      job.acceptance = new Acceptance(this.acceptance, predicted?.length ? 0.9 : undefined);
    }
    job.slot = slot;
    job.pos = keep;
    job.cachedTokens = keep;
    job.t0 = performance.now();
    this.active.push(job);
  }

  private async runEmbed(job: EmbedJob): Promise<void> {
    const { slot } = this.takeSlot([]);
    try {
      const D = this.model.config.hiddenSize as number;
      const out = new Float32Array(job.tokens.length * D);
      // Recompute every position: cached prefixes hold K/V, not the hidden states asked for.
      this.model.cache.truncate(slot, 0);
      this.cached[slot] = [];
      for (let pos = 0; pos < job.tokens.length;) {
        const n = Math.min(this.batchSize, job.tokens.length - pos);
        const tokens = job.tokens.slice(pos, pos + n);
        this.model.cache.reserve(slot, pos + n);
        const rows = tokens.map((_, i) => i);
        const h = await this.model.hidden({
          tokens,
          positions: rows.map((i) => pos + i),
          seqs: new Array(n).fill(slot),
          outRows: rows,
        });
        out.set(h, pos * D);
        this.cached[slot]!.push(...tokens);
        pos += n;
      }
      job.resolve(out);
    } catch (e) {
      this.model.cache.truncate(slot, 0);
      this.cached[slot] = [];
      job.reject(e);
    } finally {
      this.busySlots.delete(slot);
    }
  }

  /** One forward pass over every active job. */
  private async step(): Promise<void> {
    const tokens: number[] = [],
      positions: number[] = [],
      seqs: number[] = [],
      outRows: number[] = [],
      samplers: (Sampler | null)[] = [],
      drafts: number[] = [],
      outs: Out[] = [];
    const fed: [Job, number][] = [];
    for (const job of [...this.active]) if (job.cancelled || job.o.signal?.aborted) this.finish(job, "abort");
    const decoding = this.active.filter((j) => j.next >= 0);
    const pass: PassPlan = {
      prefilling: decoding.length < this.active.length,
      // Passes are priced by the positions their deepest row sees (attention grows with them).
      depth: Math.max(0, ...decoding.map((j) => this.cached[j.slot]!.length)),
      decoding: decoding.length,
      extraRows: 0,
      extraTokens: 0,
    };
    for (const job of decoding) {
      const pos = this.cached[job.slot]!.length;
      const guess = this.guess(job, pos);
      const k = guess ? this.draftCount(job, guess, pass) : 0;
      pass.extraRows += k;
      if (k > 0) pass.extraTokens += expectedTokens(job.acceptance!.get(guess!), k) - 1;
      const fedTokens = [job.next, ...(guess?.tokens.slice(0, k) ?? [])];
      this.model.cache.reserve(job.slot, pos + fedTokens.length);
      outs.push({ job, first: outRows.length, guess, k });
      fedTokens.forEach((t, i) => {
        outRows.push(tokens.length);
        samplers.push(job.matcher ? null : job.sampler!);
        drafts.push(i < k ? guess!.tokens[i]! : -1);
        tokens.push(t);
        positions.push(pos + i);
        seqs.push(job.slot);
      });
      fed.push([job, 1]);
    }
    for (const job of this.active) {
      if (job.next >= 0) continue;
      const room = this.batchSize - tokens.length;
      if (room <= 0) break;
      const n = chunkWithoutPadding(
        tokens.length,
        Math.min(job.o.numBatch, job.prompt.length - job.pos, room),
      );
      this.model.cache.reserve(job.slot, job.pos + n);
      for (let i = 0; i < n; i++) {
        tokens.push(job.prompt[job.pos + i]!);
        positions.push(job.pos + i);
        seqs.push(job.slot);
      }
      if (job.pos + n === job.prompt.length) {
        outs.push({ job, first: outRows.length, guess: null, k: 0 });
        outRows.push(tokens.length - 1);
        samplers.push(job.matcher ? null : job.sampler!);
        drafts.push(-1);
      }
      fed.push([job, n]);
    }
    if (tokens.length === 0) return;
    const t0 = performance.now();
    const out = await this.model.forward({ tokens, positions, seqs, outRows }, samplers, drafts);
    if (!pass.prefilling) this.passCosts.observe(tokens.length, pass.depth, performance.now() - t0);
    for (const [job, n] of fed) {
      const c = this.cached[job.slot]!;
      if (job.next >= 0) c.push(job.next);
      else {
        c.push(...job.prompt.slice(job.pos, job.pos + n));
        job.pos += n;
      }
    }
    let logits: Float32Array | undefined;
    for (const { job, first, guess, k } of outs) {
      if (job.finished) continue;
      if (!job.matcher) {
        this.onDraws(job, out!.subarray(first, first + 1 + k), guess, k);
        continue;
      }
      if (job.forced?.length) {
        this.onToken(job, job.forced.shift()!);
        continue;
      }
      logits ??= this.model.logits(tokens.length, outRows.length);
      const V = this.model.vocabSize;
      const id = this.picker.pick(
        logits.subarray(first * V, (first + 1) * V),
        job.matcher,
        job.o,
        job.random!,
      );
      if (id < 0) this.fail(job, new Error("no token can continue the structured output"));
      else this.onToken(job, id);
    }
  }

  /**
   * How many of `guess`'s tokens `job` verifies in this pass. In a decode pass, as many as
   * make the most tokens per cost (draftsToVerify). Beside a prompt chunk, a pass costs
   * about what its rows do and a draft row takes one from the chunk: a sequence whose
   * drafts come true often enough verifies them all, as they cost the prefilling sequence
   * a token each and can give this one several for a pass that may take a second or more.
   * A pass holds batchSize rows (the backend draws as many); beside a prompt chunk drafts
   * take at most an eighth of them.
   */
  private draftCount(job: Job, guess: Draft, pass: PassPlan): number {
    const a = job.acceptance!.get(guess);
    const want = pass.prefilling
      ? a >= MIN_RATE_BESIDE_PROMPT
        ? guess.tokens.length
        : 0
      : draftsToVerify(this.passCosts, a, guess.tokens.length, pass);
    const room = (pass.prefilling ? this.batchSize / 8 : this.batchSize - pass.decoding) - pass.extraRows;
    return Math.max(0, Math.min(room, want));
  }

  /** The drafts a decode step could verify for `job` at position `pos`, within its limits. */
  private guess(job: Job, pos: number): Draft | null {
    if (!job.drafter) return null;
    const limit = job.o.numPredict < 0 ? Infinity : job.o.numPredict;
    // Every draft that comes true is a token generated, and one more position of the
    // context: the last drafted row, at pos + max, stays below numCtx - 2.
    const max = Math.min(job.o.numDraft, limit - job.generated - 1, this.model.numCtx - 3 - pos);
    return max > 0 ? job.drafter.draft(max) : null;
  }

  /**
   * A decode row's draw and those of the k drafts fed after it: the drafts that came true
   * (the backend drew each one right before its row) are kept in the cache and delivered
   * with the draw after the last of them; the cache forgets the rest.
   */
  private onDraws(job: Job, draws: Int32Array, guess: Draft | null, k: number): void {
    // A guess not verified (k = 0) is still scored, on its first token against the draw,
    // so that drafting can resume.
    const scored = guess ? Math.max(k, 1) : 0;
    let hits = 0;
    while (hits < scored && draws[hits] === guess!.tokens[hits]) hits++;
    if (guess) {
      job.acceptance!.observe(guess, hits, hits < scored);
      this.acceptance.observe(guess, hits, hits < scored);
      // A retried request's earlier answer guides only until the new one leaves it (a
      // prediction stays: an edited file's output comes back to it after each change).
      if (guess.reference && hits === 0 && !job.o.prediction) job.drafter!.dropReference();
    }
    // The drafts that came true are those verified.
    hits = Math.min(hits, k);
    job.drafted += k;
    job.accepted += hits;
    const c = this.cached[job.slot]!;
    this.model.cache.truncate(job.slot, c.length + hits);
    for (let i = 0; i <= hits; i++) {
      if (i > 0) c.push(draws[i - 1]!);
      // The sampler has recorded the draws that came true; the last one it has not.
      this.onToken(job, draws[i]!, i < hits);
      if (job.next < 0) return;
    }
  }

  private onToken(job: Job, token: number, accepted = false): void {
    if (job.next < 0) job.t1 = performance.now();
    job.next = -1;
    // A token sampled after the consumer stopped is dropped, not delivered.
    if (job.cancelled || job.o.signal?.aborted) return this.finish(job, "abort");
    if (this.stopTokens.has(token)) return this.finish(job, "stop");
    if (job.matcher) job.matcher.feedBytes(this.tokenizer.tokenBytes(token));
    job.generated++;
    if (!accepted) job.sampler!.accept(token);
    job.drafter?.push(token);
    const ev: TokenEvent = { token, text: job.stop.push(job.detok.push(token)) };
    if ((job.o.logprobs ?? -1) >= 0) {
      const r = job.sampler!.last();
      ev.logprob = r.logprob;
      ev.top = r.topIds.map((t, i) => ({ token: t, logprob: r.topLogprobs[i]! }));
    }
    this.emit(job, { ev });
    // A value closed early because the budget ran out still ended for lack of room.
    if (job.stop.stopped || job.matcher?.finished) return this.finish(job, job.forced ? "length" : "stop");
    const limit = job.o.numPredict < 0 ? Infinity : job.o.numPredict;
    const room = Math.min(limit - job.generated, this.model.numCtx - 1 - this.cached[job.slot]!.length - 1);
    if (job.matcher && !job.forced) {
      // Close the value in time: the output must parse even when the budget ends it.
      const closing = job.matcher.closing();
      if (closing.length + 1 >= room) {
        const toks = this.tokenizer.encode(closing, { parseSpecial: false, addBos: false });
        if (toks.length + 1 >= room) job.forced = toks;
      }
    }
    if (job.forced) {
      if (job.forced.length === 0) return this.finish(job, job.matcher!.canEnd() ? "stop" : "length");
      if (this.cached[job.slot]!.length + 1 >= this.model.numCtx) return this.finish(job, "length");
    } else {
      if (job.generated >= limit) return this.finish(job, "length");
      if (this.cached[job.slot]!.length + 1 >= this.model.numCtx) return this.finish(job, "length");
    }
    job.next = token;
  }

  private emit(job: Job, it: Item): void {
    job.items.push(it);
    const w = job.wake;
    job.wake = null;
    w?.();
  }

  private release(job: Job): void {
    job.finished = true;
    const i = this.active.indexOf(job);
    if (i >= 0) this.active.splice(i, 1);
    this.busySlots.delete(job.slot);
  }

  private finish(job: Job, reason: DoneReason): void {
    this.release(job);
    const tail = job.stop.push(job.detok.flush()) + job.stop.flush();
    if (tail) this.emit(job, { ev: { token: -1, text: tail } });
    const now = performance.now();
    const t1 = job.t1 || now;
    this.emit(job, {
      end: {
        promptTokens: job.prompt.length,
        cachedTokens: job.cachedTokens,
        promptMs: t1 - job.t0,
        genTokens: job.generated,
        genMs: now - t1,
        doneReason: reason,
        draftTokens: job.drafted,
        acceptedDrafts: job.accepted,
      },
    });
  }

  private fail(job: Job, e: unknown): void {
    this.release(job);
    this.emit(job, { error: e });
  }
}
