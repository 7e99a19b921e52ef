/** The KV cache type as the CLI takes it: `--kv-cache-type` flags and `LMX_KV_CACHE_TYPE`. */
import { parseKvCacheType, type KvCacheType } from "../engine/cache/kv-cache.js";
import { UsageError } from "./args.js";

/** A `--kv-cache-type` flag's value (default f16); an unknown type is a usage error. */
export function kvCacheTypeFlag(value: unknown): KvCacheType {
  return parseKvCacheType(typeof value === "string" ? value : "f16", UsageError);
}

/** `LMX_KV_CACHE_TYPE`, or undefined when unset; an unknown type is a usage error naming it. */
export function kvCacheTypeFromEnv(): KvCacheType | undefined {
  const v = process.env.LMX_KV_CACHE_TYPE;
  if (!v) return undefined;
  try {
    return parseKvCacheType(v);
  } catch (e) {
    throw new UsageError(`LMX_KV_CACHE_TYPE: ${(e as Error).message}`);
  }
}
