/** The KV cache type as the CLI takes it: `--kv-cache-type` flags and `LMX_KV_CACHE_TYPE`. */
import { parseKvCacheType, type KvCacheType } from "../engine/cache/kv-cache.js";
import { UsageError } from "./args.js";

/** The type named by `value`, or a usage error (its message prefixed with `source`). */
function usageParse(value: string, source = ""): KvCacheType {
  try {
    return parseKvCacheType(value);
  } catch (e) {
    throw new UsageError(source + (e as Error).message);
  }
}

/** A `--kv-cache-type` flag's value (default f16); an unknown type is a usage error. */
export function kvCacheTypeFlag(value: unknown): KvCacheType {
  return usageParse(typeof value === "string" ? value : "f16");
}

/** `LMX_KV_CACHE_TYPE`, or undefined when unset; an unknown type is a usage error naming it. */
export function kvCacheTypeFromEnv(): KvCacheType | undefined {
  const v = process.env.LMX_KV_CACHE_TYPE;
  return v ? usageParse(v, "LMX_KV_CACHE_TYPE: ") : undefined;
}
