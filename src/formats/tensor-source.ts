/** What every weight file reader produces: named tensors over (memory-mapped) bytes. */
import type { DType } from "../engine/tensor/dtype.js";

export interface TensorData {
  readonly name: string;
  readonly dtype: DType;
  /** Row-major shape as PyTorch writes it: the last dimension is contiguous. */
  readonly shape: readonly number[];
  readonly buffer: ArrayBuffer;
  readonly byteOffset: number;
  readonly byteLength: number;
  /** The file the bytes come from, for error messages. */
  readonly file: string;
}

/** A clear, file-naming error for malformed model files. */
export class ModelFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "ModelFileError";
  }
}
