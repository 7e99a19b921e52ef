/** `lmx serve`: the Ollama/OpenAI/Anthropic-compatible server over the model store. */
import { availableParallelism } from "node:os";
import { parseKeepAlive } from "../server/duration.js";
import { createLogger } from "../server/log.js";
import { startServer } from "../server/server.js";
import { ModelStore } from "../store/store.js";
import { parseArgs, UsageError } from "./args.js";
import { hostAddress } from "./host.js";
import { kvCacheTypeFromEnv } from "./kv-cache-type.js";

const HELP = `Usage: lmx serve

Starts the server. Settings come from the environment:
  LMX_HOST               address to listen on (default 127.0.0.1:11434)
  LMX_MODELS             model store (default ~/.lmx/models)
  LMX_KEEP_ALIVE         how long an idle model stays loaded (default 5m; 0 = unload at once, -1 = forever)
  LMX_NUM_PARALLEL       sequences each model generates at once, batched together (default 4)
  LMX_MAX_LOADED_MODELS  models loaded at the same time (default 3)
  LMX_CONTEXT_LENGTH     default context length per sequence (default: the model's, at most 4096)
  LMX_ORIGINS            extra browser origins allowed (comma-separated; * for any)
  LMX_NUM_THREADS        worker threads per model (default: the number of cores)
  LMX_KV_CACHE_TYPE      KV cache element type: f16 (default) or q8_0 (half the memory)
  LMX_DEBUG              log every request

Each model runs in its own process; logs go to stderr and ~/.lmx/logs/server.log.`;

function intEnv(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${name} must be an integer of at least ${min}, got "${v}"`);
  return n;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { help: "boolean" });
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const addr = hostAddress();
  let keepAliveMs = 5 * 60_000;
  if (process.env.LMX_KEEP_ALIVE) {
    try {
      keepAliveMs = parseKeepAlive(process.env.LMX_KEEP_ALIVE);
    } catch (e) {
      throw new UsageError(`LMX_KEEP_ALIVE: ${(e as Error).message}`);
    }
  }
  const ctx = process.env.LMX_CONTEXT_LENGTH ? intEnv("LMX_CONTEXT_LENGTH", 4096) : undefined;
  const kvCacheType = kvCacheTypeFromEnv();
  const server = await startServer({
    host: addr.host,
    port: addr.port,
    store: new ModelStore(),
    numParallel: intEnv("LMX_NUM_PARALLEL", 4),
    maxLoaded: intEnv("LMX_MAX_LOADED_MODELS", 3),
    keepAliveMs,
    contextLength: ctx,
    kvCacheType,
    threads: intEnv("LMX_NUM_THREADS", availableParallelism()),
    origins: (process.env.LMX_ORIGINS ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    log: createLogger({ debug: !!process.env.LMX_DEBUG }),
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await server.close();
  return 0;
}
