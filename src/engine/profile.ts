/**
 * Names for the native executor's profile keys (native/lmx.h, LMX_PROFILE_*): op ids below
 * 16, matmuls by weight type and kernel shape from 16, barrier waits and sampling at 80/81.
 */
import type { ProfileEntry } from "./backends/backend.js";
import { DType, dtypeName } from "./tensor/dtype.js";
import { Op } from "./tensor/ops.js";

const MATMUL = 16,
  SYNC = 80,
  SAMPLE = 81,
  KEYS = 82;

const OP_NAMES: Record<number, string> = {
  [Op.GetRows]: "get_rows",
  [Op.RmsNorm]: "rms_norm",
  [Op.Rope]: "rope",
  [Op.KvStore]: "kv_store",
  [Op.Attention]: "attention",
  [Op.SwiGlu]: "swiglu",
  [Op.GeGlu]: "geglu",
  [Op.Add]: "add",
  [Op.AddRmsNorm]: "add_rms_norm",
};

/** The kind a profile key stands for. */
export function profileKind(key: number): string {
  if (key === SYNC) return "sync";
  if (key === SAMPLE) return "sampling";
  if (key >= MATMUL && key < SYNC) {
    const dt = (key - MATMUL) >> 1;
    return `matmul ${DType[dt] === undefined ? `type ${dt}` : dtypeName(dt)} ${key & 1 ? "gemv" : "gemm"}`;
  }
  return OP_NAMES[key] ?? `op ${key}`;
}

/** Non-empty entries of a raw [ns..., calls...] profile, largest first. */
export function decodeProfile(raw: Float64Array): ProfileEntry[] {
  const out: ProfileEntry[] = [];
  for (let k = 0; k < KEYS; k++) {
    const calls = raw[KEYS + k]!;
    if (calls > 0) out.push({ kind: profileKind(k), ms: raw[k]! / 1e6, calls });
  }
  return out.sort((a, b) => b.ms - a.ms);
}
