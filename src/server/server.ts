/**
 * `lmx serve`: the HTTP server. Routes for the Ollama, OpenAI and Anthropic APIs share
 * one service (store + scheduler); every error becomes the JSON shape its API expects,
 * and an unexpected one is logged and answered without taking the server down.
 */
import type { KvCacheType } from "../engine/cache/kv-cache.js";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { ModelStore } from "../store/store.js";
import { anthropicRoutes } from "./anthropic-api.js";
import { HttpError, ollamaError, originAllowed, Router, sendJson, type Ctx } from "./http.js";
import { createLogger, type Logger } from "./log.js";
import { ollamaRoutes } from "./ollama-api.js";
import { openaiRoutes } from "./openai-api.js";
import { responsesRoutes } from "./responses-api.js";
import { Scheduler } from "./scheduler.js";
import { Service } from "./service.js";

export interface ServeOptions {
  host?: string;
  port?: number;
  store?: ModelStore;
  numParallel?: number;
  maxLoaded?: number;
  keepAliveMs?: number;
  contextLength?: number;
  /** KV cache element type of every model loaded (LMX_KV_CACHE_TYPE; default f16). */
  kvCacheType?: KvCacheType;
  threads?: number;
  origins?: string[];
  log?: Logger;
}

export interface RunningServer {
  url: string;
  server: Server;
  service: Service;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions = {}): Promise<RunningServer> {
  const log = o.log ?? createLogger();
  const store = o.store ?? new ModelStore();
  store.collectGarbage();
  const scheduler = new Scheduler({
    numParallel: o.numParallel ?? 4,
    maxLoaded: o.maxLoaded ?? 3,
    keepAliveMs: o.keepAliveMs ?? 5 * 60_000,
    contextLength: o.contextLength,
    kvCacheType: o.kvCacheType,
    threads: o.threads ?? (Number(process.env.LMX_NUM_THREADS || 0) || availableParallelism()),
    log,
  });
  const service = new Service(store, scheduler, log);
  const router = new Router();
  ollamaRoutes(router, service);
  openaiRoutes(router, service);
  responsesRoutes(router, service);
  anthropicRoutes(router, service);
  const origins = o.origins ?? [];

  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const origin = req.headers.origin;
    const ac = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    const t0 = performance.now();
    const { route, params, pathKnown } = router.match(req.method ?? "GET", url.pathname);
    const errors = route?.errors ?? ollamaError;
    try {
      if (!originAllowed(origin, origins))
        throw new HttpError(403, `origin ${origin} is not allowed (set LMX_ORIGINS)`);
      if (origin) {
        res.setHeader("Access-Control-Allow-Origin", origin);
        res.setHeader("Vary", "Origin");
      }
      if (req.method === "OPTIONS") {
        res.writeHead(204, {
          "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, HEAD, OPTIONS",
          "Access-Control-Allow-Headers":
            req.headers["access-control-request-headers"] ?? "Authorization, Content-Type",
        });
        res.end();
        return;
      }
      if (!route)
        throw new HttpError(
          pathKnown ? 405 : 404,
          pathKnown ? `method ${req.method} not allowed` : `${url.pathname} not found`,
        );
      const ctx: Ctx = { req, res, params, url, signal: ac.signal };
      await route.handler(ctx);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      const message = e instanceof HttpError ? e.message : `internal error: ${(e as Error).message}`;
      if (!(e instanceof HttpError)) log.error(`${req.method} ${url.pathname}: ${(e as Error).stack}`);
      if (!res.headersSent) sendJson(res, status, errors(status, message));
      else res.end();
    } finally {
      log.debug(`${req.method} ${url.pathname} ${res.statusCode} ${(performance.now() - t0).toFixed(1)} ms`);
    }
  });
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 11434, o.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info(`lmx listening on ${url} (models in ${store.root}${log.file ? `, log in ${log.file}` : ""})`);
  return {
    url,
    server,
    service,
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await scheduler.shutdown();
    },
  };
}
