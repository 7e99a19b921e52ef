/**
 * The reference sampler: the same filters, order, tie-breaks and random sequence as
 * native/kernels/sample.c, in TypeScript. Tests hold the two to identical choices.
 */
import type { SampleResult, Sampler, SamplerOptions } from "../backend.js";

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64, the generator the native sampler uses. */
export class SplitMix64 {
  private s: bigint;
  constructor(seed: number | bigint) {
    this.s = BigInt(seed) & MASK64;
  }
  next(): bigint {
    this.s = (this.s + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }
  /** A double in [0, 1) from the top 53 bits. */
  nextUnit(): number {
    return Number(this.next() >> 11n) / 9007199254740992;
  }
}

/** Indices of the k best values, best first; ties go to the lower id. */
export function topKIndices(v: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b]! - v[a]! || a - b);
  return idx.slice(0, k);
}

export class ReferenceSampler implements Sampler {
  private readonly o: Required<SamplerOptions>;
  private hist: number[] = [];
  private rng: SplitMix64;
  private lastResult: SampleResult = { token: -1, logprob: 0, topIds: [], topLogprobs: [] };

  constructor(options: SamplerOptions) {
    this.o = {
      temperature: 0,
      topK: 0,
      topP: 1,
      minP: 0,
      repeatPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
      repeatLastN: 64,
      seed: 0,
      logprobs: -1,
      ...options,
    };
    this.rng = new SplitMix64(Math.max(0, Math.floor(this.o.seed)));
  }

  accept(token: number): void {
    if (this.o.repeatLastN <= 0) return;
    this.hist.push(token);
    if (this.hist.length > this.o.repeatLastN) this.hist.shift();
  }

  reset(): void {
    this.hist = [];
    this.rng = new SplitMix64(Math.max(0, Math.floor(this.o.seed)));
  }

  last(): SampleResult {
    return this.lastResult;
  }

  sample(logits: Float32Array): SampleResult {
    const o = this.o;
    const f = Math.fround;
    let v: Float32Array = logits;
    const penalize =
      this.hist.length > 0 &&
      ((o.repeatPenalty !== 1 && o.repeatPenalty > 0) || o.presencePenalty !== 0 || o.frequencyPenalty !== 0);
    if (penalize) {
      v = logits.slice();
      const counts = new Map<number, number>();
      for (const t of this.hist) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (const [tok, count] of counts) {
        let x = v[tok]!;
        if (o.repeatPenalty !== 1 && o.repeatPenalty > 0)
          x = x < 0 ? f(x * o.repeatPenalty) : f(x / o.repeatPenalty);
        x = f(x - f(f(o.presencePenalty) + f(f(o.frequencyPenalty) * count)));
        v[tok] = x;
      }
    }
    let token: number;
    if (o.temperature <= 0) {
      token = 0;
      for (let i = 1; i < v.length; i++) if (v[i]! > v[token]!) token = i;
    } else {
      const k = o.topK > 0 && o.topK < v.length ? o.topK : v.length;
      const ids = topKIndices(v, k);
      const p = new Float32Array(ids.length);
      let sum = 0;
      const t = f(o.temperature);
      for (let i = 0; i < ids.length; i++) {
        const e = Math.exp((v[ids[i]!]! - v[ids[0]!]!) / t);
        p[i] = e;
        sum += e;
      }
      for (let i = 0; i < ids.length; i++) p[i] = p[i]! / sum;
      let keep = ids.length;
      const topP = f(o.topP);
      if (topP > 0 && topP < 1) {
        let cum = 0;
        for (let i = 0; i < ids.length; i++) {
          if (cum >= topP) {
            keep = i;
            break;
          }
          cum += p[i]!;
        }
      }
      if (o.minP > 0) {
        const floor = f(p[0]! * f(o.minP));
        for (let i = 1; i < keep; i++) {
          if (p[i]! < floor) {
            keep = i;
            break;
          }
        }
      }
      let total = 0;
      for (let i = 0; i < keep; i++) total += p[i]!;
      const u = this.rng.nextUnit() * total;
      token = ids[keep - 1]!;
      let cum = 0;
      for (let i = 0; i < keep; i++) {
        cum += p[i]!;
        if (u < cum) {
          token = ids[i]!;
          break;
        }
      }
    }
    const result: SampleResult = { token, logprob: 0, topIds: [], topLogprobs: [] };
    if (o.logprobs >= 0) {
      let mx = -Infinity;
      for (const x of logits) mx = Math.max(mx, x);
      let s = 0;
      for (const x of logits) s += Math.exp(x - mx);
      const lse = f(mx + Math.log(s));
      result.logprob = f(logits[token]! - lse);
      for (const id of topKIndices(logits, Math.min(o.logprobs, 20))) {
        result.topIds.push(id);
        result.topLogprobs.push(f(logits[id]! - lse));
      }
    }
    this.lastResult = result;
    return result;
  }
}
