/** Typed access to GGUF-style metadata (`{arch}.embedding_length`, ...), lenient about integer types. */
import type { GgufValue } from "../../formats/gguf/types.js";

export class Metadata {
  constructor(
    readonly map: ReadonlyMap<string, GgufValue>,
    readonly source = "model",
  ) {}

  get arch(): string {
    return this.str("general.architecture");
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  str(key: string, fallback?: string): string {
    const v = this.map.get(key);
    if (typeof v === "string") return v;
    if (v === undefined && fallback !== undefined) return fallback;
    throw new Error(`${this.source}: metadata ${key} is ${v === undefined ? "missing" : "not a string"}`);
  }

  num(key: string, fallback?: number): number {
    let v = this.map.get(key);
    if (Array.isArray(v) || ArrayBuffer.isView(v)) v = (v as ArrayLike<GgufValue>)[0] as GgufValue;
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    if (v === undefined && fallback !== undefined) return fallback;
    throw new Error(`${this.source}: metadata ${key} is ${v === undefined ? "missing" : "not a number"}`);
  }

  /** An architecture key, e.g. archNum("embedding_length") reads `qwen3.embedding_length`. */
  archNum(key: string, fallback?: number): number {
    return this.num(`${this.arch}.${key}`, fallback);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.map.get(key);
    return typeof v === "boolean" ? v : fallback;
  }
}
