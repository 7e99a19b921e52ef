/** Generation on the embedded model: stop strings, limits, prefix reuse, cancellation, bad options. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { quantizeModel } from "../formats/quantize-model.js";
import { DEFAULT_MODEL_PATH, loadModel } from "../model.js";
import type { GenerateOptions } from "./options.js";
import { chunkWithoutPadding } from "./runner.js";
import { PassCosts } from "./speculation.js";
import { StopMatcher } from "./stop.js";

describe("stop strings", () => {
  it("hold back possible prefixes and cut at the first stop", () => {
    const m = new StopMatcher(["END", "\n\n"]);
    let out = "";
    for (const piece of ["hello E", "N", "x wor", "ld\n", "\nmore"]) out += m.push(piece);
    assert.equal(out, "hello ENx world");
    assert.ok(m.stopped);
    const m2 = new StopMatcher(["stop"]);
    assert.equal(m2.push("sto") + m2.push("p!") + m2.flush(), "");
    const m3 = new StopMatcher(["xyz"]);
    assert.equal(m3.push("abc x") + m3.flush(), "abc x");
  });
});

describe("prompt chunks", () => {
  it("stop short of 1-8 rows past 16 or a multiple of 32, which would pad to the next size", () => {
    assert.equal(chunkWithoutPadding(0, 40), 32);
    assert.equal(chunkWithoutPadding(0, 20), 16);
    assert.equal(chunkWithoutPadding(3, 37), 29); // with 3 decode rows: 32 in all
    assert.equal(chunkWithoutPadding(0, 49), 49); // 17 past 32: padding to 64 costs no more
    assert.equal(chunkWithoutPadding(0, 12), 12);
    assert.equal(chunkWithoutPadding(0, 256), 256);
    assert.equal(chunkWithoutPadding(32, 4), 4); // too short to leave anything behind
  });
});

describe("runner", async () => {
  const model = await loadModel(undefined, { numCtx: 256 });
  const prompt = "def fibonacci(n):\n    ";

  it("stops at num_predict with reason length, and at a stop string with reason stop", async () => {
    const g = model.generate(prompt, { temperature: 0, numPredict: 5 });
    await g.text();
    const s = await g.stats;
    assert.equal(s.genTokens, 5);
    assert.equal(s.doneReason, "length");
    const full = await model.generate(prompt, { temperature: 0, numPredict: 32 }).text();
    const stopAt = full.indexOf("LATIN");
    assert.ok(stopAt > 0);
    const g2 = model.generate(prompt, { temperature: 0, numPredict: 32, stop: ["LATIN"] });
    assert.equal(await g2.text(), full.slice(0, stopAt));
    assert.equal((await g2.stats).doneReason, "stop");
  });

  it("reuses the cached prefix and gives the same tokens as a cold start", async () => {
    model.reset();
    const base = model.tokenizer.encode(prompt);
    await model.generate(base, { temperature: 0, numPredict: 4 }).text();
    const longer = [...base, ...model.tokenizer.encode("# comment\n")];
    const warm = model.generate(longer, { temperature: 0, numPredict: 12 });
    const warmText = await warm.text();
    assert.equal((await warm.stats).cachedTokens, base.length);
    model.reset();
    const cold = model.generate(longer, { temperature: 0, numPredict: 12 });
    assert.equal(await cold.text(), warmText);
    assert.equal((await cold.stats).cachedTokens, 0);
  });

  it("feeds a 40-token prompt as 32 tokens and then 8", async () => {
    const ids = model.tokenizer
      .encode(
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n".repeat(
          3,
        ),
      )
      .slice(0, 40);
    assert.equal(ids.length, 40);
    const sizes: number[] = [];
    const engine = model.engine;
    const forward = engine.forward.bind(engine);
    engine.forward = (batch, ...rest) => {
      sizes.push(batch.tokens.length);
      return forward(batch, ...rest);
    };
    try {
      model.reset();
      const text = await model.generate(ids, { temperature: 0, numPredict: 3 }).text();
      assert.deepEqual(sizes.slice(0, 2), [32, 8]);
      assert.ok(text.length > 0);
    } finally {
      engine.forward = forward;
    }
  });

  it("stops within a step when the signal aborts", async () => {
    const ac = new AbortController();
    let n = 0;
    const g = model.generate(prompt, { temperature: 0, numPredict: 100, signal: ac.signal });
    for await (const _ of g) if (++n === 3) ac.abort();
    assert.equal((await g.stats).doneReason, "abort");
    assert.equal(n, 3);
  });

  it("rejects bad options and prompts with clear errors", async () => {
    await assert.rejects(
      model.generate(prompt, { temperature: "hot" as unknown as number }).text(),
      /option temperature must be a number/,
    );
    await assert.rejects(model.generate(prompt, { topP: 2 }).text(), /option topP must be between 0 and 1/);
    await assert.rejects(model.generate("", {}).text(), /the prompt is empty/);
    await assert.rejects(model.generate("word ".repeat(400), {}).text(), /the context holds 256/);
  });

  it("renders chats with the model's template", async () => {
    const p = model.renderChat([{ role: "user", content: "hi" }], { think: false });
    // This template's `{%-` tags strip the newlines that precede them.
    assert.equal(p, "<|im_start|>user\nhi<|im_end|><|im_start|>assistant<think>\n\n</think>");
    const chat = await model
      .chat([{ role: "user", content: "hi" }], { temperature: 0, numPredict: 8 })
      .text();
    const direct = await model
      .generate(model.renderChat([{ role: "user", content: "hi" }]), { temperature: 0, numPredict: 8 })
      .text();
    assert.equal(chat, direct);
  });
});

describe("continuous batching", async () => {
  const model = await loadModel(undefined, { numCtx: 256, numParallel: 3 });
  const prompts = ["def fibonacci(n):\n    ", "The capital of France is", "Once upon a time"];

  it("gives each concurrent sequence the tokens it gets alone", async () => {
    const alone: string[] = [];
    for (const p of prompts) {
      model.reset();
      alone.push(await model.generate(p, { temperature: 0, numPredict: 16 }).text());
    }
    model.reset();
    const together = await Promise.all(
      prompts.map((p, i) => model.generate(p, { temperature: 0, numPredict: 8 + 4 * i }).text()),
    );
    together.forEach((t, i) =>
      assert.ok(
        alone[i]!.startsWith(t) && t.length > 0,
        `sequence ${i}: ${JSON.stringify(t)} vs ${JSON.stringify(alone[i])}`,
      ),
    );
  });

  it("queues requests beyond the slots and cancels a consumer that stops reading", async () => {
    const gens = Array.from({ length: 5 }, (_, i) =>
      model.generate(prompts[i % 3]!, { temperature: 0, numPredict: 6 }),
    );
    let n = 0;
    for await (const _ of gens[0]!) if (++n === 2) break;
    const rest = await Promise.all(
      gens.slice(1).map(async (g) => (await g.text(), (await g.stats).genTokens)),
    );
    assert.deepEqual(rest, [6, 6, 6, 6]);
    assert.equal(model.runner.load, 0);
  });

  it("embeds: pooled, normalized, and the same alone or batched with generation", async () => {
    const a = await model.embed("hello world");
    assert.equal(a.length, model.engine.config.hiddenSize);
    assert.ok(Math.abs(a.reduce((s, v) => s + v * v, 0) - 1) < 1e-4);
    const [b] = await Promise.all([
      model.embed("hello world"),
      model.generate(prompts[0]!, { numPredict: 4 }).text(),
    ]);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b![i]!) < 1e-5);
    const c = await model.embed("something else entirely");
    assert.ok(a.reduce((s, v, i) => s + v * c[i]!, 0) < 0.9999);
  });
});

describe("structured outputs", async () => {
  const model = await loadModel(undefined, { numCtx: 512, numParallel: 2 });
  const schema = {
    type: "object",
    properties: {
      city: { type: "string", maxLength: 24 },
      temp: { type: "integer" },
      sunny: { type: "boolean" },
      tags: { type: "array", items: { enum: ["hot", "cold"] }, maxItems: 2 },
    },
    required: ["city", "temp", "sunny"],
  };
  // An independent check of what the schema demands.
  const valid = (v: any) =>
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).every((k) => ["city", "temp", "sunny", "tags"].includes(k)) &&
    typeof v.city === "string" &&
    [...v.city].length <= 24 &&
    Number.isInteger(v.temp) &&
    typeof v.sunny === "boolean" &&
    (v.tags === undefined ||
      (Array.isArray(v.tags) &&
        v.tags.length <= 2 &&
        v.tags.every((t: unknown) => t === "hot" || t === "cold")));

  it("every output parses and validates, greedy and sampled, alone and batched", async () => {
    const runs = [0, 0.7, 1.0, 1.5].map((temperature, i) =>
      model
        .chat([{ role: "user", content: "Weather in Paris, as JSON" }], {
          format: schema,
          temperature,
          seed: 11 + i,
          numPredict: 400,
        })
        .text(),
    );
    for (const text of await Promise.all(runs)) {
      const v = JSON.parse(text);
      assert.ok(valid(v), text);
    }
  });

  it("format json gives an object; unsupported schemas are refused", async () => {
    for (const numPredict of [400, 25, 3, 1]) {
      const g = model.generate("Data:", { format: "json", temperature: 0, numPredict });
      const text = await g.text();
      const v = JSON.parse(text);
      assert.equal(typeof v, "object");
      assert.ok(!Array.isArray(v));
      // A tight budget closes the value early (a few tokens over at most) and says so.
      if (numPredict < 30) assert.equal((await g.stats).doneReason, "length");
    }
    const tight = await model
      .chat([{ role: "user", content: "JSON please" }], {
        format: schema,
        temperature: 1,
        seed: 5,
        numPredict: 12,
      })
      .text();
    assert.ok(valid(JSON.parse(tight)), tight);
    await assert.rejects(
      model.generate("x", { format: { type: "string", pattern: "a+" } }).text(),
      /pattern/,
    );
  });
});

describe("speculative decoding", async () => {
  // Q8_0 weights: a row's logits have the same bits whether it runs alone or beside drafts
  // (the quantized dots and the split attention are per row), so the tokens must be equal
  // whatever the runner chooses to verify. (Float matmuls sum in another order past 4 rows.)
  const dir = mkdtempSync(join(tmpdir(), "lmx-spec-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "tiny-q8_0.gguf");
  quantizeModel(DEFAULT_MODEL_PATH, file, "q8_0");
  const model = await loadModel(file, { numCtx: 256, numParallel: 2 });
  // Drafting that does not depend on timing, except where a test says otherwise.
  model.runner.passCosts = new PassCosts(() => 1);
  const code = "    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n";
  const text = `def fibonacci(n):\n${code}\n\ndef fib(n):\n${code}\n\ndef f(n):\n`;
  const run = async (g: ReturnType<typeof model.generate>) => {
    const ids: number[] = [];
    for await (const ev of g) if (ev.token >= 0) ids.push(ev.token);
    return { ids, stats: await g.stats };
  };
  const tokens = (o: GenerateOptions, prompt = text) => {
    model.reset();
    return run(model.generate(prompt, { numPredict: 40, ...o }));
  };

  it("gives the tokens of one token per pass, with drafts that come true", async () => {
    const seeded = { temperature: 0.8, seed: 3 };
    const penalized = { temperature: 0, frequencyPenalty: 0.05 };
    const fixed = model.runner.passCosts;
    try {
      // Priced by measurement (what a user gets), then with every pass priced alike: the
      // runner then verifies all the drafts it finds, whatever the machine's timing.
      for (const costs of [new PassCosts(), fixed]) {
        model.runner.passCosts = costs;
        for (const o of [
          { temperature: 0 },
          seeded,
          penalized,
          { ...seeded, repeatPenalty: 1.3, topK: 0, topP: 0.95 },
        ]) {
          const one = await tokens({ ...o, numDraft: 0 });
          const spec = await tokens({ ...o, numDraft: 7 });
          assert.deepEqual(spec.ids, one.ids, JSON.stringify(o));
          assert.equal(one.stats.draftTokens, 0);
          assert.ok(spec.stats.acceptedDrafts! <= spec.stats.draftTokens!);
          // Greedy, this model soon repeats itself ("0x0000, 0x0000, ..."): drafts come
          // true, with the penalty too, which counts them (the sampler must record each).
          if (costs === fixed && o.temperature === 0)
            assert.ok(spec.stats.acceptedDrafts! >= 8, `${JSON.stringify(o)}: ${JSON.stringify(spec.stats)}`);
        }
      }
    } finally {
      model.runner.passCosts = fixed;
    }
  });

  it("drafts a retried request's answer from what the cache held", async () => {
    // A sampled request, then the same again twice: each retry finds the previous answer in
    // the slot it reuses, and one with drafts drafts it (the same seed from the same cache
    // draws the same tokens, so they come true).
    const o = { temperature: 0.8, seed: 11, numPredict: 40 };
    await tokens({ ...o, numDraft: 0 });
    const again = await run(model.generate(text, { ...o, numDraft: 0 }));
    const drafted = await run(model.generate(text, { ...o, numDraft: 7 }));
    assert.deepEqual(drafted.ids, again.ids);
    assert.equal(drafted.stats.cachedTokens, drafted.stats.promptTokens - 1);
    assert.ok(drafted.stats.acceptedDrafts! >= 30, JSON.stringify(drafted.stats));
  });

  it("drafts from a prediction, also past an edit in it", async () => {
    // Sampled, this model's text repeats little: without a prediction few drafts come true.
    const o = { temperature: 0.8, seed: 5 };
    const plain = await tokens({ ...o, numDraft: 0 });
    const alone = await tokens({ ...o, numDraft: 7 });
    assert.ok(alone.stats.acceptedDrafts! <= 10, JSON.stringify(alone.stats));
    const text0 = model.tokenizer.decode(plain.ids);
    // The expected output, and the same with a few characters changed in its middle.
    const mid = Math.floor(text0.length / 2);
    const edited = `${text0.slice(0, mid)}XYZ${text0.slice(mid + 3)}`;
    for (const prediction of [text0, edited, plain.ids]) {
      const r = await tokens({ ...o, numDraft: 7, prediction });
      assert.deepEqual(r.ids, plain.ids);
      assert.ok(
        r.stats.acceptedDrafts! >= 25,
        `${JSON.stringify(prediction).slice(0, 40)}: ${JSON.stringify(r.stats)}`,
      );
    }
    await assert.rejects(
      tokens({ prediction: [1, -2] }),
      /option prediction must be a string or a list of token ids/,
    );
    await assert.rejects(tokens({ prediction: [1e9] }), /outside the vocabulary/);
  });

  it("drafts beside another sequence's prompt chunks", async () => {
    const seqsOf: number[][] = [];
    const engine = model.engine;
    const forward = engine.forward.bind(engine);
    engine.forward = (batch, ...rest) => {
      seqsOf.push(Array.from(batch.seqs));
      return forward(batch, ...rest);
    };
    try {
      model.reset();
      // A decodes (greedy: its drafts come true), then B's prompt arrives in chunks of 16.
      const a = model.generate(text, { temperature: 0, numPredict: 120 })[Symbol.asyncIterator]();
      for (let i = 0; i < 12; i++) await a.next();
      const b = run(
        model.generate(`${text}# more\n`.repeat(2), { temperature: 0, numPredict: 4, numBatch: 16 }),
      );
      while (!(await a.next()).done);
      await b;
      const seqA = seqsOf[0]![0]!;
      const mixed = seqsOf.filter((s) => s.filter((q) => q !== seqA).length >= 8);
      assert.ok(mixed.length >= 4, `${mixed.length} passes with a prompt chunk`);
      // In some of them A's decode row came with drafts.
      assert.ok(
        mixed.some((s) => s.filter((q) => q === seqA).length > 1),
        JSON.stringify(mixed.map((s) => s.filter((q) => q === seqA).length)),
      );
    } finally {
      engine.forward = forward;
    }
  });

  it("ends at a budget in the middle of drafts that came true", async () => {
    for (const numPredict of [1, 2, 9]) {
      const spec = await tokens({ temperature: 0, numPredict, numDraft: 7 });
      assert.equal(spec.ids.length, numPredict);
      assert.deepEqual(spec.ids, (await tokens({ temperature: 0, numPredict, numDraft: 0 })).ids);
    }
  });

  it("gives two sequences drafting in one pass the tokens they get without drafts", async () => {
    // Compared with the same two requests decoded one token per pass (not alone: a prompt
    // batched with another's rows is cut into other chunks, and the int8 GEMM of a long
    // chunk rounds differently from the decode dots of a short one).
    const other = `${text}    return n * f(n - 1)\n\n\ndef g(n):\n`;
    const together = async (numDraft: number) => {
      model.reset();
      return Promise.all(
        [text, other].map((p) => run(model.generate(p, { temperature: 0, numPredict: 40, numDraft }))),
      );
    };
    const one = await together(0),
      spec = await together(7);
    assert.deepEqual(
      spec.map((r) => r.ids),
      one.map((r) => r.ids),
    );
    assert.ok(spec.every((r) => r.stats.acceptedDrafts! > 0));
  });
});
