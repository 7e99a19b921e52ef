/** Shared plumbing of prepared plans: the arena and the input buffer. */
import type { Tensor } from "../tensor/graph.js";
import { ARENA_BUFFER, type EncodedPlan } from "../tensor/plan.js";
import { TENSOR_FIELDS } from "../tensor/ops.js";

export class PlanBuffers {
  readonly arena: ArrayBuffer;
  readonly input: ArrayBuffer;
  private readonly inputI32: Int32Array;

  constructor(
    readonly plan: EncodedPlan,
    allocate: (bytes: number) => ArrayBuffer,
  ) {
    this.arena = allocate(plan.arenaBytes);
    this.input = allocate(plan.inputBytes);
    this.inputI32 = new Int32Array(this.input);
  }

  setInput(name: string, values: ArrayLike<number>): void {
    const slot = this.plan.inputs.get(name);
    if (!slot) return;
    if (values.length > slot.length)
      throw new Error(`input ${name}: ${values.length} values for ${slot.length} slots`);
    this.inputI32.set(values, slot.offset);
  }

  read(t: Tensor): Float32Array {
    const f = t.id * TENSOR_FIELDS;
    if (this.plan.tensors[f] !== ARENA_BUFFER) throw new Error(`read: ${t.name} is not an activation`);
    if (t.rowStride !== t.cols * 4) throw new Error(`read: ${t.name} is not contiguous`);
    return new Float32Array(this.arena, this.plan.tensors[f + 1]!, t.rows * t.cols);
  }
}
