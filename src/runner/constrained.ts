/**
 * Token choice under a JSON matcher (structured outputs): the most likely tokens are
 * tried in order of logit and only those whose bytes the matcher accepts compete; the
 * stop token is allowed once the value is complete. Greedy takes the best allowed token;
 * otherwise temperature, top-k, top-p and min-p apply over the allowed ones. Runs in
 * JavaScript on the row's logits (constrained rows skip the native sampler).
 */
import type { JsonMatcher } from "../chat/json-matcher.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface PickOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

const CANDIDATES = 256;

/** Indices of the `n` largest logits, best first. */
function topIndices(logits: Float32Array, n: number): number[] {
  const heapV = new Float32Array(n),
    heapI = new Int32Array(n);
  let size = 0;
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let m = i;
      if (l < size && heapV[l]! < heapV[m]!) m = l;
      if (r < size && heapV[r]! < heapV[m]!) m = r;
      if (m === i) return;
      [heapV[i], heapV[m]] = [heapV[m]!, heapV[i]!];
      [heapI[i], heapI[m]] = [heapI[m]!, heapI[i]!];
      i = m;
    }
  };
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (size < n) {
      let j = size++;
      heapV[j] = v;
      heapI[j] = i;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (heapV[p]! <= heapV[j]!) break;
        [heapV[p], heapV[j]] = [heapV[j]!, heapV[p]!];
        [heapI[p], heapI[j]] = [heapI[j]!, heapI[p]!];
        j = p;
      }
    } else if (v > heapV[0]!) {
      heapV[0] = v;
      heapI[0] = i;
      down(0);
    }
  }
  return Array.from(heapI.subarray(0, size)).sort((a, b) => logits[b]! - logits[a]!);
}

export class ConstrainedPicker {
  private readonly bytes: (Uint8Array | null)[] = [];

  constructor(
    private readonly tok: Tokenizer,
    private readonly stopTokens: ReadonlySet<number>,
  ) {}

  private tokenBytes(id: number): Uint8Array | null {
    let b = this.bytes[id];
    if (b === undefined) {
      b = this.tok.isControl(id) ? null : this.tok.tokenBytes(id);
      if (b && b.length === 0) b = null;
      this.bytes[id] = b;
    }
    return b;
  }

  allowed(m: JsonMatcher, id: number): boolean {
    if (this.stopTokens.has(id)) return m.canEnd();
    const b = this.tokenBytes(id);
    return b !== null && m.clone().feedBytes(b);
  }

  /** The chosen token, or -1 if no token of the vocabulary can continue (cannot happen for a live matcher with a complete vocabulary). */
  pick(logits: Float32Array, m: JsonMatcher, o: PickOptions, random: () => number): number {
    const want = o.temperature <= 0 ? 1 : o.topK > 0 ? o.topK : CANDIDATES;
    let ok: number[] = [];
    for (const id of topIndices(logits, CANDIDATES)) {
      if (this.allowed(m, id)) ok.push(id);
      if (ok.length >= want) break;
    }
    if (ok.length === 0) {
      // Rare: nothing allowed among the likeliest; walk the whole vocabulary in order.
      const all = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
      const first = all.find((id) => this.allowed(m, id));
      return first ?? -1;
    }
    if (o.temperature <= 0 || ok.length === 1) return ok[0]!;
    const max = logits[ok[0]!]!;
    let p = ok.map((id) => Math.exp((logits[id]! - max) / o.temperature));
    if (o.minP > 0) {
      const keep = p.map((x) => x >= o.minP * p[0]!);
      ok = ok.filter((_, i) => keep[i]);
      p = p.filter((_, i) => keep[i]);
    }
    let sum = p.reduce((a, b) => a + b, 0);
    if (o.topP < 1) {
      let acc = 0,
        n = 0;
      while (n < p.length && acc < o.topP * sum) acc += p[n++]!;
      ok = ok.slice(0, n);
      p = p.slice(0, n);
      sum = acc;
    }
    let r = random() * sum;
    for (let i = 0; i < ok.length; i++) if ((r -= p[i]!) <= 0) return ok[i]!;
    return ok[ok.length - 1]!;
  }
}

/** A seeded generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
