/**
 * Which models are loaded: each in its own runner process, loaded on first use, kept
 * for keep-alive after its last request (0 = unload now, negative = forever), and
 * evicted least-recently-used first when another model needs the room (a count limit and
 * a memory estimate of weights plus KV cache).
 */
import { statSync } from "node:fs";
import { totalmem } from "node:os";
import { kvCacheDType, type KvCacheType } from "../engine/cache/kv-cache.js";
import { rowBytes } from "../engine/tensor/dtype.js";
import { readGguf } from "../formats/gguf/read.js";
import type { Logger } from "./log.js";
import { RunnerClient, RunnerError } from "./runner-client.js";

export interface SchedulerOptions {
  numParallel: number;
  maxLoaded: number;
  keepAliveMs: number;
  /** Default context length per sequence (LMX_CONTEXT_LENGTH). */
  contextLength?: number;
  /** KV cache element type (LMX_KV_CACHE_TYPE; default f16). */
  kvCacheType?: KvCacheType;
  threads?: number;
  /** Bytes models may take together (default: 90% of physical memory). */
  memoryBudget?: number;
  log: Logger;
}

export interface ModelRef {
  /** Display name (key of the loaded model). */
  name: string;
  path: string;
  digest: string;
  template?: string;
}

/** Settings a request may ask a model to be loaded with; a loaded model that differs is reloaded once idle. */
export interface LoadSettings {
  numCtx?: number;
  useMmap?: boolean;
}

export interface LoadedModel {
  ref: ModelRef;
  client: RunnerClient;
  numCtx: number | undefined;
  /** As the runner reports it, not as asked. */
  useMmap: boolean;
  refs: number;
  lastUsed: number;
  /** Epoch ms when it unloads; Infinity = never; null while in use. */
  expiresAt: number | null;
  timer?: NodeJS.Timeout;
  estimate: number;
}

/** Weights (file size) plus the KV cache for every sequence slot. */
export function estimateMemory(
  path: string,
  numCtx: number,
  numParallel: number,
  kvCacheType: KvCacheType = "f16",
): number {
  const size = statSync(path).size;
  try {
    const g = readGguf(path);
    const arch = String(g.metadata.get("general.architecture"));
    const num = (k: string) => Number(g.metadata.get(`${arch}.${k}`) ?? 0);
    const layers = num("block_count");
    const heads = num("attention.head_count") || 1;
    const kvHeads = num("attention.head_count_kv") || heads;
    const headDim = num("attention.key_length") || num("embedding_length") / heads;
    // The cache's own rule for its element type (q8_0 only for heads of whole blocks).
    const dtype = kvCacheDType(kvCacheType, [{ kind: "full", nKvHead: kvHeads, headDim }]);
    return size + layers * 2 * rowBytes(dtype, kvHeads * headDim) * numCtx * numParallel;
  } catch {
    return size;
  }
}

export class Scheduler {
  readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private waiters: (() => void)[] = [];

  constructor(readonly o: SchedulerOptions) {}

  private budget(): number {
    return this.o.memoryBudget ?? totalmem() * 0.9;
  }

  /** A loaded model for one request; call release() when the request ends. */
  async acquire(ref: ModelRef, settings: LoadSettings = {}): Promise<LoadedModel> {
    const want = settings.numCtx ?? this.o.contextLength;
    const mmap = settings.useMmap;
    for (;;) {
      const cur = this.loaded.get(ref.name);
      if (
        cur &&
        cur.client.alive &&
        cur.ref.digest === ref.digest &&
        (cur.refs > 0 ||
          ((want === undefined || cur.numCtx === want) && (mmap === undefined || cur.useMmap === mmap)))
      ) {
        this.hold(cur);
        return cur;
      }
      if (cur && cur.refs === 0) await this.unload(ref.name, "reloading with other settings");
      else if (cur && cur.client.alive) {
        await this.waitForRelease();
        continue;
      }
      const inflight = this.loading.get(ref.name);
      if (inflight) {
        await inflight.catch(() => {});
        continue;
      }
      const p = this.load(ref, want, mmap ?? true);
      this.loading.set(ref.name, p);
      try {
        const m = await p;
        this.hold(m);
        return m;
      } finally {
        this.loading.delete(ref.name);
      }
    }
  }

  private hold(m: LoadedModel): void {
    m.refs++;
    m.lastUsed = Date.now();
    m.expiresAt = null;
    if (m.timer) clearTimeout(m.timer);
    m.timer = undefined;
  }

  release(m: LoadedModel, keepAliveMs = this.o.keepAliveMs): void {
    m.refs = Math.max(0, m.refs - 1);
    m.lastUsed = Date.now();
    if (m.refs === 0) this.expireAfter(m, keepAliveMs);
    this.wakeWaiters();
  }

  /** Lets acquires waiting for a release or an unload look again. */
  private wakeWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sets when an idle model unloads. */
  expireAfter(m: LoadedModel, keepAliveMs: number): void {
    if (m.timer) clearTimeout(m.timer);
    m.timer = undefined;
    if (keepAliveMs <= 0) {
      m.expiresAt = Date.now();
      void this.unload(m.ref.name, "keep_alive expired");
    } else if (keepAliveMs === Infinity) m.expiresAt = Infinity;
    else {
      m.expiresAt = Date.now() + keepAliveMs;
      m.timer = setTimeout(
        () => void this.unload(m.ref.name, "keep_alive expired"),
        Math.min(keepAliveMs, 2 ** 31 - 1),
      );
      m.timer.unref();
    }
  }

  private waitForRelease(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  private async load(ref: ModelRef, numCtx: number | undefined, useMmap: boolean): Promise<LoadedModel> {
    const estimate = estimateMemory(ref.path, numCtx ?? 4096, this.o.numParallel, this.o.kvCacheType);
    // Make room: least recently used idle models go first.
    for (;;) {
      const used = [...this.loaded.values()].reduce((a, m) => a + m.estimate, 0);
      if (this.loaded.size < this.o.maxLoaded && (used + estimate <= this.budget() || this.loaded.size === 0))
        break;
      const idle = [...this.loaded.values()]
        .filter((m) => m.refs === 0)
        .sort((a, b) => a.lastUsed - b.lastUsed);
      if (idle.length) await this.unload(idle[0]!.ref.name, "making room for " + ref.name);
      else if (this.loaded.size === 0) break;
      else await this.waitForRelease();
    }
    const t0 = performance.now();
    const client = await RunnerClient.start(ref.name, {
      path: ref.path,
      numCtx,
      numParallel: this.o.numParallel,
      threads: this.o.threads,
      template: ref.template,
      useMmap,
      kvCacheType: this.o.kvCacheType,
    });
    const i = client.info;
    this.o.log.info(
      `loaded ${ref.name} in ${((performance.now() - t0) / 1000).toFixed(2)} s (pid ${client.pid}): ${i.architecture} on the ${i.backend} backend, ${i.threads} threads, ` +
        `weights ${(i.weightBytes / 2 ** 20).toFixed(1)} MiB, KV cache ${(i.kvBytes / 2 ** 20).toFixed(1)} MiB (${i.kvCacheType}), context ${i.numCtx} x ${i.numParallel} sequences`,
    );
    const m: LoadedModel = {
      ref,
      client,
      numCtx,
      useMmap: i.mmap,
      refs: 0,
      lastUsed: Date.now(),
      expiresAt: null,
      estimate: i.weightBytes + i.kvBytes,
    };
    client.onExit = (reason) => {
      if (this.loaded.get(ref.name) === m) {
        this.loaded.delete(ref.name);
        if (m.timer) clearTimeout(m.timer);
        this.o.log.warn(`the runner for ${ref.name} ${reason}`);
      }
      this.wakeWaiters();
    };
    this.loaded.set(ref.name, m);
    return m;
  }

  async unload(name: string, why: string): Promise<boolean> {
    const m = this.loaded.get(name);
    if (!m) return false;
    this.loaded.delete(name);
    if (m.timer) clearTimeout(m.timer);
    this.o.log.info(`unloading ${name}: ${why}`);
    await m.client.stop();
    this.wakeWaiters();
    return true;
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.loaded.keys()].map((n) => this.unload(n, "server stopping")));
  }
}

export { RunnerError };
