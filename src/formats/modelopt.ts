/**
 * NVIDIA ModelOpt NVFP4 checkpoints (safetensors): per quantized linear layer a U8
 * `weight` [out, in/2] of E2M1 codes (element 2k in the low nibble of byte k), an F8_E4M3
 * `weight_scale` [out, in/16] and an F32 `weight_scale_2` (the per-tensor multiplier).
 * They import without re-quantizing or widening: codes and scale bytes are regrouped into
 * GGUF NVFP4 blocks (4.5 bits per weight, as stored) and `weight_scale_2` becomes the
 * `.scale` tensor the engine applies after the matmul. The stored scales are used as they
 * are; scales that decode to NaN are refused.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DType } from "../engine/tensor/dtype.js";
import { readJsonFile } from "./json-file.js";
import type { SafetensorsEntry } from "./safetensors.js";
import { ModelFileError, type TensorData } from "./tensor-source.js";

/** The checkpoint's quantization, from hf_quant_config.json or config.json's quantization_config. */
export function modelOptQuantization(dir: string, cfg: Record<string, any>): "nvfp4" | undefined {
  const side = join(dir, "hf_quant_config.json");
  let algo: unknown, where: string;
  if (existsSync(side)) {
    const q = readJsonFile(side);
    algo = q.quantization?.quant_algo;
    where = side;
  } else if (cfg.quantization_config && typeof cfg.quantization_config === "object") {
    const q = cfg.quantization_config;
    if (q.quant_method !== "modelopt")
      throw new ModelFileError(
        join(dir, "config.json"),
        `quantization method ${JSON.stringify(q.quant_method)} is not supported (lmx imports NVIDIA ModelOpt NVFP4)`,
      );
    algo = q.quant_algo;
    where = join(dir, "config.json");
  } else return undefined;
  if (algo === "NVFP4" || algo === "W4A16_NVFP4") return "nvfp4";
  throw new ModelFileError(
    where,
    `ModelOpt quant_algo ${JSON.stringify(algo)} is not supported (lmx imports NVFP4 and W4A16_NVFP4)`,
  );
}

/** Suffixes of the companion tensors a quantized layer carries. */
export const MODELOPT_COMPANIONS = /\.(weight_scale|weight_scale_2|input_scale|k_scale|v_scale)$/;

function f32Scalar(e: SafetensorsEntry): number {
  if (e.dtypeName !== "F32" || e.byteLength !== 4)
    throw new ModelFileError(e.file, `${e.name} must be one F32 value`);
  return new DataView(e.buffer, e.byteOffset, 4).getFloat32(0, true);
}

/**
 * The GGUF NVFP4 tensor (and its `.scale`) for one ModelOpt layer whose packed weight is
 * `w`, found with its companions in `byName`.
 */
export function importNvfp4(
  w: SafetensorsEntry,
  ggufName: string,
  byName: Map<string, SafetensorsEntry>,
): TensorData[] {
  const base = w.name.replace(/\.weight$/, "");
  const s = byName.get(`${base}.weight_scale`),
    s2 = byName.get(`${base}.weight_scale_2`);
  if (!s || !s2)
    throw new ModelFileError(
      w.file,
      `${w.name} is U8 but ${base}.weight_scale or .weight_scale_2 is missing`,
    );
  if (w.shape.length !== 2 || s.shape.length !== 2)
    throw new ModelFileError(w.file, `${w.name}: expected 2-D weight and scale`);
  const [rows, half] = w.shape as [number, number];
  const cols = half * 2;
  if (s.dtypeName !== "F8_E4M3" || s.shape[0] !== rows || s.shape[1] !== cols / 16)
    throw new ModelFileError(
      s.file,
      `${s.name} must be F8_E4M3 [${rows}, ${cols / 16}], not ${s.dtypeName} [${s.shape.join(", ")}]`,
    );
  if (cols % 64 !== 0)
    throw new ModelFileError(w.file, `${w.name} has ${cols} columns; NVFP4 rows must be a multiple of 64`);
  const g = f32Scalar(s2);
  if (!Number.isFinite(g) || g <= 0)
    throw new ModelFileError(s2.file, `${s2.name} is ${g}, not a positive finite scale`);
  const codes = new Uint8Array(w.buffer, w.byteOffset, rows * half);
  const scales = new Uint8Array(s.buffer, s.byteOffset, rows * (cols / 16));
  const blocks = cols / 64;
  const out = new Uint8Array(rows * blocks * 36);
  const code = (r: number, e: number) => (codes[r * half + (e >> 1)]! >> ((e & 1) * 4)) & 15;
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < blocks; b++) {
      const o = (r * blocks + b) * 36;
      for (let sb = 0; sb < 4; sb++) {
        const sc = scales[r * (cols / 16) + 4 * b + sb]!;
        if ((sc & 0x7f) === 0x7f) throw new ModelFileError(s.file, `${s.name} row ${r} holds a NaN scale`);
        out[o + sb] = sc & 0x7f;
        const e0 = 64 * b + 16 * sb;
        for (let j = 0; j < 8; j++) out[o + 4 + 8 * sb + j] = code(r, e0 + j) | (code(r, e0 + j + 8) << 4);
      }
    }
  const scale = new Float32Array([g]);
  return [
    {
      name: ggufName,
      dtype: DType.NVFP4,
      shape: [rows, cols],
      buffer: out.buffer,
      byteOffset: 0,
      byteLength: out.length,
      file: w.file,
    },
    {
      name: ggufName.replace(/\.weight$/, ".scale"),
      dtype: DType.F32,
      shape: [1],
      buffer: scale.buffer,
      byteOffset: 0,
      byteLength: 4,
      file: s2.file,
    },
  ];
}
