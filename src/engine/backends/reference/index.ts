/** The reference backend: plans interpreted in TypeScript; the specification tests compare against. */
import type { Graph, Tensor } from "../../tensor/graph.js";
import { compilePlan } from "../../tensor/plan.js";
import type { Backend, PreparedPlan, Sampler, SamplerOptions } from "../backend.js";
import { PlanBuffers } from "../prepared.js";
import { runPlan } from "./kernels.js";
import { chainedDraws } from "./chained-draws.js";
import { ReferenceSampler } from "./sampler.js";

export class ReferenceBackend implements Backend {
  readonly name = "reference" as const;

  allocate(bytes: number): ArrayBuffer {
    return new ArrayBuffer(Math.ceil(bytes / 64) * 64);
  }

  threads(): number {
    return 1;
  }

  kernels(): string {
    return "typescript";
  }

  createSampler(options: SamplerOptions): Sampler {
    return new ReferenceSampler(options);
  }

  prepare(graph: Graph): PreparedPlan {
    const plan = compilePlan(graph);
    const bufs = new PlanBuffers(plan, (n) => this.allocate(n));
    const buffers = plan.buffers.map((b, i) => (i === 0 ? bufs.arena : i === 1 ? bufs.input : b!));
    return {
      plan,
      setInput: (name, values) => bufs.setInput(name, values),
      read: (t) => bufs.read(t),
      execute: async (samplers?: readonly (Sampler | null)[], logits?: Tensor, drafts?: Int32Array) => {
        runPlan(plan.ints, plan.floats, plan.tensors, buffers);
        if (!samplers) return null;
        const rows = logits ? bufs.read(logits) : new Float32Array(0);
        const V = logits?.cols ?? 0;
        return chainedDraws(samplers, drafts, (s, r) =>
          logits && r < logits.rows ? s.sample(rows.subarray(r * V, r * V + V)).token : -1,
        );
      },
    };
  }
}
