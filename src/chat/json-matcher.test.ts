/** The schema compiler and the byte matcher on valid and invalid documents. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JsonMatcher } from "./json-matcher.js";
import { compileSchema, SchemaError } from "./json-schema.js";

function accepts(schema: unknown, text: string): boolean {
  const m = new JsonMatcher(compileSchema(schema));
  return m.feedBytes(Buffer.from(text)) && m.canEnd();
}

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", maxLength: 12 },
    unit: { enum: ["celsius", "fahrenheit"] },
    temp: { type: "integer" },
    sunny: { type: "boolean" },
    tags: { type: "array", items: { type: "string" }, maxItems: 2 },
    note: { anyOf: [{ type: "string" }, { type: "null" }] },
  },
  required: ["city", "temp"],
};

describe("JSON matcher", () => {
  it("accepts documents that validate", () => {
    for (const t of [
      '{"city":"Paris","temp":21}',
      '{ "temp": -3, "city": "Oslo", "unit": "celsius", "sunny": false }',
      '{\n  "city": "Rome",\n  "temp": 30,\n  "tags": ["hot", "dry"],\n  "note": null\n}',
      '{"city":"Caf\\u00e9 \\"x\\"","temp":0,"note":"ok"}',
      '{"city":"Zürich","temp":10}',
    ])
      assert.ok(accepts(WEATHER, t), t);
    assert.ok(accepts("json", '{"a":[1,2.5e3,{"b":null}],"c":"d","e":true}'));
    assert.ok(accepts({ type: "array", items: { type: "number" }, minItems: 1 }, "[1, -0.5]"));
    assert.ok(accepts({ type: "integer" }, "42"));
    assert.ok(accepts({ const: "yes" }, '"yes"'));
  });

  it("rejects documents that do not, at the first wrong byte", () => {
    for (const t of [
      '{"city":"Paris"}', // temp is required
      '{"city":"Paris","temp":21.5}', // integer
      '{"city":"Paris","temp":21,"wind":3}', // undeclared property
      '{"city":"Paris","temp":21,"city":"x"}', // duplicate
      '{"city":"a very long city name","temp":1}', // maxLength
      '{"city":"Paris","temp":1,"unit":"kelvin"}',
      '{"city":"Paris","temp":1,"tags":["a","b","c"]}', // maxItems
      '{"city":"Paris","temp":01}',
      '{"city":"Pa\nris","temp":1}', // raw control character
      '{"city":"Paris","temp":1} extra',
      "[]",
      '{"city":"Paris","temp":1,"tags":[,"a"]}',
      '{"city":"Paris","temp":1,"tags":["a",]}',
      '{"city":"Paris","temp":1,}',
      '{,"city":"Paris","temp":1}',
    ])
      assert.ok(!accepts(WEATHER, t), t);
    assert.ok(!accepts({ type: "array", items: { type: "number" }, minItems: 1 }, "[]"));
    assert.ok(!accepts("json", "[1]"), "format json asks for an object");
    const m = new JsonMatcher(compileSchema(WEATHER));
    assert.ok(m.feedBytes(Buffer.from('{"city":"P')));
    assert.ok(!m.canEnd());
    assert.ok(m.clone().feed(0x7d), "} inside a string is text");
    assert.ok(m.feed(0x22) && !m.clone().feed(0x7d), "but after it, the object may not close without temp");
  });

  it("closes any prefix of a valid document into a valid document", () => {
    const docs: [unknown, string][] = [
      [WEATHER, '{ "temp": -3, "city": "Oslo", "unit": "celsius", "sunny": false }'],
      [WEATHER, '{\n  "city": "Ro\\u00e9me",\n  "tags": ["hot", "dry"],\n  "note": null,\n  "temp": 30\n}'],
      ["json", '{"a":[1,2.5e3,{"b":null}],"c":"d\\n","e":true}'],
      [
        {
          type: "array",
          items: { type: "object", properties: { x: { type: "string", minLength: 2 } }, required: ["x"] },
          minItems: 2,
        },
        '[{"x":"ab"},{"x":"cd"},{"x":"ef"}]',
      ],
    ];
    for (const [schema, doc] of docs) {
      assert.ok(accepts(schema, doc), doc);
      for (let i = 0; i < doc.length; i++) {
        const m = new JsonMatcher(compileSchema(schema));
        assert.ok(m.feedBytes(Buffer.from(doc.slice(0, i))));
        const closed = doc.slice(0, i) + m.closing();
        assert.ok(
          accepts(schema, closed),
          `prefix ${JSON.stringify(doc.slice(0, i))} closed as ${JSON.stringify(closed)}`,
        );
        JSON.parse(closed);
      }
    }
  });

  it("limits runaway whitespace", () => {
    assert.ok(!accepts("json", "{" + " ".repeat(2) + "}"));
    assert.ok(accepts("json", '{\n        "a": 1\n}'));
    assert.ok(!accepts("json", "{\n" + " ".repeat(9) + "}"));
    assert.ok(!accepts("json", "{\t}"));
  });

  it("refuses schema features it cannot enforce", () => {
    assert.throws(() => compileSchema({ type: "string", pattern: "^a" }), SchemaError);
    assert.throws(
      () => compileSchema({ anyOf: [{ type: "object" }, { type: "object", properties: { a: {} } }] }),
      /start alike/,
    );
    assert.throws(
      () => compileSchema({ type: "object", properties: { a: {} }, required: ["b"] }),
      /required/,
    );
    assert.throws(() => compileSchema("yaml"), SchemaError);
  });

  it("follows local $refs (as pydantic writes them)", () => {
    const s = {
      $defs: { P: { type: "object", properties: { x: { type: "integer" } }, required: ["x"] } },
      type: "array",
      items: { $ref: "#/$defs/P" },
    };
    assert.ok(accepts(s, '[{"x":1},{"x":2}]'));
    assert.ok(!accepts(s, '[{"y":1}]'));
  });
});
