/**
 * The subset of JSON Schema that constrained decoding enforces, compiled to a small tree:
 * types (and unions of distinct types), object properties with `required` (only declared
 * properties are generated; a schema without properties allows any keys), arrays with
 * `items`/`minItems`/`maxItems`, strings with `minLength`/`maxLength`, `enum`, `const`,
 * `anyOf`/`oneOf` whose branches start differently, and local `$ref`s. Features that
 * cannot be enforced (`pattern`, `not`, …) are refused rather than silently ignored.
 */

export type SchemaNode =
  | { kind: "any" }
  | { kind: "literals"; texts: string[] }
  | { kind: "string"; minLength: number; maxLength: number }
  | { kind: "number"; integer: boolean }
  | { kind: "object"; properties: Map<string, SchemaNode> | null; required: Set<string>; extra: SchemaNode }
  | { kind: "array"; items: SchemaNode; minItems: number; maxItems: number }
  | { kind: "union"; branches: SchemaNode[] };

export class SchemaError extends TypeError {}

const UNSUPPORTED = [
  "pattern",
  "not",
  "if",
  "then",
  "else",
  "allOf",
  "patternProperties",
  "dependentSchemas",
  "prefixItems",
  "uniqueItems",
  "contains",
];
const ANY: SchemaNode = { kind: "any" };

/** `"json"` (any JSON object) or a JSON schema object. */
export function compileSchema(format: unknown): SchemaNode {
  if (format === "json") return { kind: "object", properties: null, required: new Set(), extra: ANY };
  if (typeof format !== "object" || format === null || Array.isArray(format))
    throw new SchemaError('format must be "json" or a JSON schema object');
  const root = format as Record<string, unknown>;
  const seen = new Map<string, SchemaNode>();
  const resolveRef = (ref: string): Record<string, unknown> => {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    const defs = m ? (root[m[1]!] as Record<string, unknown> | undefined) : undefined;
    const target = m && defs ? defs[decodeURIComponent(m[2]!)] : ref === "#" ? root : undefined;
    if (typeof target !== "object" || target === null) throw new SchemaError(`cannot resolve $ref "${ref}"`);
    return target as Record<string, unknown>;
  };
  const compile = (s: unknown, depth: number): SchemaNode => {
    if (depth > 32) throw new SchemaError("the schema nests too deeply (recursive $ref?)");
    if (s === true || s === undefined) return ANY;
    if (s === false) throw new SchemaError("a schema of false admits no value");
    if (typeof s !== "object" || s === null || Array.isArray(s))
      throw new SchemaError("every schema must be an object");
    const o = s as Record<string, unknown>;
    if (typeof o.$ref === "string") {
      const hit = seen.get(o.$ref);
      if (hit) return hit;
      const node = compile(resolveRef(o.$ref), depth + 1);
      seen.set(o.$ref, node);
      return node;
    }
    for (const k of UNSUPPORTED)
      if (k in o) throw new SchemaError(`the schema keyword "${k}" is not supported`);
    if ("const" in o) return { kind: "literals", texts: [JSON.stringify(o.const)] };
    if (Array.isArray(o.enum)) {
      if (o.enum.length === 0) throw new SchemaError("enum must not be empty");
      return { kind: "literals", texts: o.enum.map((v) => JSON.stringify(v)) };
    }
    const alts = (o.anyOf ?? o.oneOf) as unknown;
    if (Array.isArray(alts)) return union(alts.map((a) => compile(a, depth + 1)));
    const type = o.type;
    if (Array.isArray(type)) return union(type.map((t) => compile({ ...o, type: t }, depth + 1)));
    switch (type) {
      case undefined:
        if (o.properties) return compile({ ...o, type: "object" }, depth);
        return ANY;
      case "string": {
        const minLength = num(o.minLength, 0),
          maxLength = num(o.maxLength, Infinity);
        return { kind: "string", minLength, maxLength };
      }
      case "number":
      case "integer":
        return { kind: "number", integer: type === "integer" };
      case "boolean":
        return { kind: "literals", texts: ["true", "false"] };
      case "null":
        return { kind: "literals", texts: ["null"] };
      case "object": {
        const props = o.properties as Record<string, unknown> | undefined;
        if (props !== undefined && (typeof props !== "object" || props === null))
          throw new SchemaError("properties must be an object");
        const required = new Set(Array.isArray(o.required) ? o.required.map(String) : []);
        const properties =
          props && Object.keys(props).length
            ? new Map(Object.entries(props).map(([k, v]) => [k, compile(v, depth + 1)]))
            : null;
        for (const r of required)
          if (properties && !properties.has(r))
            throw new SchemaError(`required property "${r}" is not among the properties`);
        const extra =
          o.additionalProperties === undefined || o.additionalProperties === true
            ? ANY
            : o.additionalProperties === false
              ? ANY
              : compile(o.additionalProperties, depth + 1);
        return { kind: "object", properties, required, extra };
      }
      case "array": {
        const minItems = num(o.minItems, 0),
          maxItems = num(o.maxItems, Infinity);
        if (minItems > maxItems) throw new SchemaError("minItems exceeds maxItems");
        return { kind: "array", items: compile(o.items, depth + 1), minItems, maxItems };
      }
      default:
        throw new SchemaError(`unknown type ${JSON.stringify(type)}`);
    }
  };
  return compile(root, 0);
}

function num(v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
    throw new SchemaError("length and item limits must be non-negative integers");
  return v;
}

/** Whether a value of this schema can start with `ch`. */
export function canStartWith(n: SchemaNode, ch: string): boolean {
  switch (n.kind) {
    case "any":
      return '{["-0123456789tfn'.includes(ch);
    case "literals":
      return n.texts.some((t) => t[0] === ch);
    case "string":
      return ch === '"';
    case "number":
      return ch === "-" || (ch >= "0" && ch <= "9");
    case "object":
      return ch === "{";
    case "array":
      return ch === "[";
    case "union":
      return n.branches.some((b) => canStartWith(b, ch));
  }
}

function union(branches: SchemaNode[]): SchemaNode {
  if (branches.length === 1) return branches[0]!;
  // Literal branches merge; others must not share a first character.
  const lits = branches.filter((b) => b.kind === "literals") as Extract<SchemaNode, { kind: "literals" }>[];
  const rest = branches.filter((b) => b.kind !== "literals");
  const merged: SchemaNode[] = [...rest];
  if (lits.length) merged.push({ kind: "literals", texts: lits.flatMap((l) => l.texts) });
  for (const c of '{["-0123456789tfn')
    if (rest.filter((b) => canStartWith(b, c)).length > 1)
      throw new SchemaError(
        "anyOf/oneOf branches that start alike (e.g. two object schemas) are not supported",
      );
  return merged.length === 1 ? merged[0]! : { kind: "union", branches: merged };
}
