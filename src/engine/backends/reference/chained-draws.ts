/**
 * The draws of one forward pass, with rows fed drafts (speculative decoding): the
 * reference of the native exec_run. drafts[r] >= 0 says row r + 1 continues row r's
 * sequence with that guessed token; row r + 1 is drawn only if row r drew it, after the
 * sampler accepted it, and a chain stops at its first miss (-1 for the rest), so each
 * sequence draws once per token it keeps, as without drafts.
 */
import type { Sampler } from "../backend.js";

export function chainedDraws(
  samplers: readonly (Sampler | null)[],
  drafts: Int32Array | undefined,
  draw: (s: Sampler, row: number) => number,
): Int32Array {
  const out = new Int32Array(samplers.length).fill(-1);
  let skip = false;
  samplers.forEach((s, r) => {
    const chained = drafts !== undefined && r < drafts.length && drafts[r]! >= 0;
    if (skip || !s) {
      skip = skip && chained;
      return;
    }
    out[r] = draw(s, r);
    if (!chained) return;
    if (out[r] === drafts[r]) s.accept(out[r]!);
    else skip = true;
  });
  return out;
}
