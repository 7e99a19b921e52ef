/** The backends lmx can run plans on, chosen by name. */
import type { Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";
import { ReferenceBackend } from "./reference/index.js";

export type { Backend, PreparedPlan, SampleResult, Sampler, SamplerOptions } from "./backend.js";
export { CpuBackend, ReferenceBackend };

export function createBackend(name: string = "cpu", threads?: number): Backend {
  switch (name) {
    case "cpu":
      return new CpuBackend(threads);
    case "reference":
      return new ReferenceBackend();
    default:
      throw new Error(`unknown backend "${name}" (expected cpu or reference)`);
  }
}
