/** Op codes and plan record sizes shared with the native executor (native/lmx.h). */

export enum Op {
  GetRows = 1,
  RmsNorm = 2,
  Matmul = 3,
  Rope = 4,
  KvStore = 5,
  Attention = 6,
  SwiGlu = 7,
  GeGlu = 8,
  Add = 9,
  AddRmsNorm = 10,
  /** dst = glu(x . Wg^T * floats[0], x . Wu^T * floats[1]): src [x, Wg, -, -, Wu], glu op in ints[0]. */
  MatmulGlu = 11,
}

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
