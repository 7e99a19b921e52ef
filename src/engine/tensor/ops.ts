/** Op codes and plan record sizes shared with the native executor (native/lmx.h). */

export enum Op {
  GetRows = 1,
  RmsNorm = 2,
  /**
   * dst = x . W^T * floats[0] (+ bias) (+ residual): src [x, W, bias, up, residual, norm].
   * With up, the rows are glu(x, up) (ints[0] the glu op); with ints[1] = MM_NORM they are
   * rmsnorm(x) * norm (eps floats[2]); both only for quantized W (plan.ts fuse).
   */
  Matmul = 3,
  Rope = 4,
  KvStore = 5,
  Attention = 6,
  SwiGlu = 7,
  GeGlu = 8,
  Add = 9,
  AddRmsNorm = 10,
  /**
   * dst = glu(x . Wg^T * floats[0], x . Wu^T * floats[1]): src [x, Wg, -, -, Wu, norm], glu
   * op in ints[0], ints[1] and floats[2] as for Matmul.
   */
  MatmulGlu = 11,
}

/** ints[1] of a matmul whose activation rows are the RMSNorm of its input (native LMX_MM_NORM). */
export const MM_NORM = 1;

/** Set in a node's op word when it may start before every thread has finished the node before it. */
export const NO_BARRIER = 0x100;
/** The op in a node's op word. */
export const OP_MASK = 0xff;

/** Source slots per node. */
export const MAX_SRC = 6;
/** Int32 words per node: op, dst, MAX_SRC sources, then op parameters. */
export const OP_INTS = 20;
export const OP_PARAM_INTS = OP_INTS - 2 - MAX_SRC;
/** Float32 parameters per node. */
export const OP_FLOATS = 4;
/** Float64 fields per tensor: buffer index, byte offset, dtype, ne0, ne1, row stride in bytes. */
export const TENSOR_FIELDS = 6;

/** RoPE pairing: rotate-half (HF, NeoX) or adjacent pairs (llama.cpp NORM for permuted Llama GGUFs). */
export enum RopePairing {
  Neox = 0,
  Interleaved = 1,
}
