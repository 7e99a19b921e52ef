/** GGUF `general.file_type` values (llama.cpp's llama_ftype) and their display names. */
import type { GgufFile } from "./read.js";

const NAMES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  7: "Q8_0",
  8: "Q5_0",
  9: "Q5_1",
  10: "Q2_K",
  11: "Q3_K_S",
  12: "Q3_K_M",
  13: "Q3_K_L",
  14: "Q4_K_S",
  15: "Q4_K_M",
  16: "Q5_K_S",
  17: "Q5_K_M",
  18: "Q6_K",
  32: "BF16",
  38: "MXFP4",
  39: "NVFP4",
};

/** The file type's name; without the key, the type most weights have. */
export function fileTypeName(g: GgufFile): string {
  const ft = g.metadata.get("general.file_type");
  if (typeof ft === "number" && NAMES[ft]) return NAMES[ft]!;
  const bytes = new Map<string, number>();
  for (const t of g.tensors)
    if (t.ne.length >= 2)
      bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + t.ne.reduce((a, b) => a * b, 1));
  let best = "unknown",
    most = -1;
  for (const [k, v] of bytes) if (v > most) [best, most] = [k, v];
  return best.toUpperCase();
}

/** Parameter count from the tensor shapes. */
export function parameterCount(g: GgufFile): number {
  return g.tensors.reduce((a, t) => a + t.ne.reduce((x, y) => x * y, 1), 0);
}

/** Ollama's way of writing sizes: 596.05M, 8.0B. */
export function formatParameterSize(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return `${(n / 1e3).toFixed(2)}K`;
}
