/** The output parser on recorded Qwen3-style outputs, fed whole and split at every character. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutputParser, promptOpensThinking, type OutputDelta } from "./output-parser.js";

function run(
  text: string,
  o: ConstructorParameters<typeof OutputParser>[0],
  split: number[],
): Required<OutputDelta> {
  const p = new OutputParser(o);
  const out = { content: "", thinking: "", toolCalls: [] as NonNullable<OutputDelta["toolCalls"]> };
  const add = (d: OutputDelta) => {
    out.content += d.content ?? "";
    out.thinking += d.thinking ?? "";
    out.toolCalls.push(...(d.toolCalls ?? []));
  };
  let at = 0;
  for (const s of [...split, text.length]) {
    add(p.push(text.slice(at, s)));
    at = s;
  }
  add(p.flush());
  return out;
}

// Recorded from Qwen3-0.6B (transformers, greedy) for a weather question with a get_weather tool.
const QWEN3_TOOL =
  "<think>\nOkay, the user wants the weather in Paris. I should call get_weather.\n</think>\n\n<tool_call>\n" +
  '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>';
const QWEN3_ANSWER = "<think>\nSimple arithmetic.\n</think>\n\n2 + 2 = 4.";
const TWO_CALLS =
  'Let me check both.\n<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": "{\\"x\\": 1}"}\n</tool_call>';

describe("output parser", () => {
  const cases: [string, string, ConstructorParameters<typeof OutputParser>[0], Required<OutputDelta>][] = [
    [
      "thinking then a tool call",
      QWEN3_TOOL,
      { tools: true },
      {
        content: "",
        thinking: "Okay, the user wants the weather in Paris. I should call get_weather.\n",
        toolCalls: [{ function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } } }],
      },
    ],
    [
      "thinking then an answer",
      QWEN3_ANSWER,
      {},
      { content: "2 + 2 = 4.", thinking: "Simple arithmetic.\n", toolCalls: [] },
    ],
    [
      "text and two calls (string arguments)",
      TWO_CALLS,
      { tools: true },
      {
        content: "Let me check both.\n",
        thinking: "",
        toolCalls: [
          { function: { name: "a", arguments: {} } },
          { function: { name: "b", arguments: { x: 1 } } },
        ],
      },
    ],
    ["tool tags without tools stay text", TWO_CALLS, {}, { content: TWO_CALLS, thinking: "", toolCalls: [] }],
    [
      "a prompt that opened <think>",
      "plan\n</think>\n\nanswer",
      { startInThinking: true },
      { content: "answer", thinking: "plan\n", toolCalls: [] },
    ],
    [
      "a malformed call reaches the client as text",
      "<tool_call>\n{not json}\n</tool_call>",
      { tools: true },
      { content: "<tool_call>\n{not json}\n</tool_call>", thinking: "", toolCalls: [] },
    ],
    [
      "an unfinished think block",
      "<think>still going",
      {},
      { content: "", thinking: "still going", toolCalls: [] },
    ],
    ["a lone < is text", "a < b and <thin", {}, { content: "a < b and <thin", thinking: "", toolCalls: [] }],
  ];
  for (const [name, text, o, want] of cases) {
    it(name, () => {
      assert.deepEqual(run(text, o, []), want);
      for (let i = 1; i < text.length; i++) assert.deepEqual(run(text, o, [i]), want, `split at ${i}`);
      assert.deepEqual(
        run(
          text,
          o,
          Array.from({ length: text.length - 1 }, (_, i) => i + 1),
        ),
        want,
        "one char at a time",
      );
    });
  }

  it("sees when a prompt leaves <think> open", () => {
    assert.equal(promptOpensThinking("<|im_start|>assistant\n<think>\n"), true);
    assert.equal(promptOpensThinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"), false);
    assert.equal(promptOpensThinking("<|im_start|>assistant\n"), false);
  });
});
