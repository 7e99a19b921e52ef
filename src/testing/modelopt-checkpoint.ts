/**
 * Writes a Hugging Face folder as NVIDIA ModelOpt would export it in NVFP4 (U8 codes,
 * F8_E4M3 block scales, F32 weight_scale_2, hf_quant_config.json), quantized with lmx's
 * own NVFP4 quantizer: the fixture for the import tests.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseNvfp4TensorScale, quantizeNvfp4 } from "../engine/quant/fp4-quantize.js";
import { toF32 } from "../engine/tensor/dtype.js";
import { readSafetensorsFolder } from "../formats/safetensors.js";
import { encodeSafetensors, type SafetensorsTensorOut } from "../formats/safetensors-write.js";

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/** GGUF NVFP4 blocks of one row set -> ModelOpt's packed codes and scale bytes. */
function toModelOpt(q: Uint8Array, rows: number, cols: number): { codes: Uint8Array; scales: Uint8Array } {
  const blocks = cols / 64;
  const codes = new Uint8Array((rows * cols) / 2),
    scales = new Uint8Array((rows * cols) / 16);
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < blocks; b++) {
      const o = (r * blocks + b) * 36;
      for (let s = 0; s < 4; s++) {
        scales[r * (cols / 16) + 4 * b + s] = q[o + s]!;
        for (let j = 0; j < 8; j++) {
          const byte = q[o + 4 + 8 * s + j]!;
          for (const [e, c] of [
            [64 * b + 16 * s + j, byte & 15],
            [64 * b + 16 * s + j + 8, byte >> 4],
          ] as const) {
            const k = r * (cols / 2) + (e >> 1);
            codes[k] = codes[k]! | (c << ((e & 1) * 4));
          }
        }
      }
    }
  return { codes, scales };
}

export function writeModelOptCheckpoint(src: string, out: string): void {
  mkdirSync(out, { recursive: true });
  const tensors: SafetensorsTensorOut[] = [];
  for (const e of readSafetensorsFolder(src)) {
    if (LINEAR.test(e.name) && e.shape.length === 2) {
      const [rows, cols] = e.shape as [number, number];
      const x = toF32(e.buffer, e.byteOffset, e.dtype!, rows * cols);
      const g = chooseNvfp4TensorScale(x);
      const { codes, scales } = toModelOpt(quantizeNvfp4(x, g), rows, cols);
      const base = e.name.replace(/\.weight$/, "");
      tensors.push(
        { name: e.name, dtype: "U8", shape: [rows, cols / 2], data: codes },
        { name: `${base}.weight_scale`, dtype: "F8_E4M3", shape: [rows, cols / 16], data: scales },
        {
          name: `${base}.weight_scale_2`,
          dtype: "F32",
          shape: [],
          data: new Uint8Array(new Float32Array([g]).buffer),
        },
        {
          name: `${base}.input_scale`,
          dtype: "F32",
          shape: [],
          data: new Uint8Array(new Float32Array([0.01]).buffer),
        },
      );
    } else
      tensors.push({
        name: e.name,
        dtype: e.dtypeName,
        shape: [...e.shape],
        data: new Uint8Array(e.buffer, e.byteOffset, e.byteLength),
      });
  }
  writeFileSync(join(out, "model.safetensors"), encodeSafetensors(tensors));
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"])
    if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
  writeFileSync(
    join(out, "hf_quant_config.json"),
    JSON.stringify({
      producer: { name: "modelopt", version: "lmx-test" },
      quantization: {
        quant_algo: "NVFP4",
        kv_cache_quant_algo: null,
        group_size: 16,
        exclude_modules: ["lm_head"],
      },
    }),
  );
}
