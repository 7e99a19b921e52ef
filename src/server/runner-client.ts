/**
 * The server's handle on a runner process: forks it, loads the model, multiplexes
 * requests over IPC, and turns an unexpected exit into a clear error for every request
 * in flight.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { GenerationStats } from "../runner/runner.js";
import type {
  FromRunner,
  LoadRequest,
  ModelInfo,
  RunRequest,
  TokenLogprob,
  ToRunner,
} from "./runner-protocol.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class RunnerError extends Error {
  constructor(
    message: string,
    readonly status = 500,
  ) {
    super(message);
  }
}

export type RunEvent =
  | { t: "start"; opensThinking: boolean; promptTokens: number }
  | { t: "token"; text: string; logprob?: TokenLogprob & { top: TokenLogprob[] } }
  | { t: "done"; stats: GenerationStats };

interface Pending {
  push(m: FromRunner): void;
  fail(e: Error): void;
}

const ENTRY = fileURLToPath(new URL("./runner-process.js", import.meta.url));

/**
 * A runner's JavaScript holds little (the model lives in native memory) but allocates a
 * little per token: V8's young generation otherwise grows to several MiB of semi-spaces
 * that stay resident beside the model (a 1 MiB cap: peak RSS -5 to -7 MiB in the Q4_K_M
 * bench, no change in speed).
 */
export const RUNNER_V8_FLAGS = ["--max-semi-space-size=1"];

export class RunnerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited = false;
  private stopping = false;
  info!: ModelInfo;
  /** Why the process ended, if it did. */
  exitReason?: string;
  onExit?: (reason: string) => void;

  private constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.on("message", (m: FromRunner) => {
      if ("id" in m) this.pending.get(m.id)?.push(m);
    });
    child.on("exit", (code, signal) => {
      this.exited = true;
      this.exitReason = signal ? `killed by ${signal}` : `exited with code ${code}`;
      const err = new RunnerError(
        this.stopping
          ? `${label} was unloaded while this request ran`
          : `the runner for ${label} stopped unexpectedly (${this.exitReason})`,
      );
      for (const p of this.pending.values()) p.fail(err);
      this.pending.clear();
      this.onExit?.(this.exitReason);
    });
  }

  static start(
    label: string,
    load: Omit<LoadRequest, "t">,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<RunnerClient> {
    const child = fork(ENTRY, [], {
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env,
      execArgv: [...process.execArgv, ...RUNNER_V8_FLAGS],
    });
    const client = new RunnerClient(child, label);
    return new Promise((resolve, reject) => {
      const onMsg = (m: FromRunner) => {
        if (m.t === "ready") {
          client.info = m.info;
          cleanup();
          resolve(client);
        } else if (m.t === "fatal") {
          cleanup();
          reject(new RunnerError(m.message, 400));
        }
      };
      const onExit = () => {
        cleanup();
        reject(new RunnerError(`the runner for ${label} failed to start (${client.exitReason})`));
      };
      const cleanup = () => {
        child.off("message", onMsg);
        child.off("exit", onExit);
      };
      child.on("message", onMsg);
      child.on("exit", onExit);
      child.send({ t: "load", ...load });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Requests in flight. */
  get busy(): number {
    return this.pending.size;
  }

  private check(): void {
    if (this.exited)
      throw new RunnerError(`the runner for ${this.label} is not running (${this.exitReason})`);
  }

  /** Streams one generation; returning early from the iteration cancels it in the runner. */
  async *run(input: RunRequest["input"], options: RunRequest["options"]): AsyncGenerator<RunEvent> {
    this.check();
    const id = this.nextId++;
    const queue: (FromRunner | Error)[] = [];
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    this.pending.set(id, {
      push: (m) => (queue.push(m), notify()),
      fail: (e) => (queue.push(e), notify()),
    });
    let finished = false;
    try {
      this.child.send({ t: "run", id, input, options });
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const m = queue.shift()!;
        if (m instanceof Error) throw m;
        if (m.t === "error") throw new RunnerError(m.message, m.status);
        if (m.t === "start")
          yield { t: "start", opensThinking: m.opensThinking, promptTokens: m.promptTokens };
        else if (m.t === "token") yield { t: "token", text: m.text, logprob: m.logprob };
        else if (m.t === "done") {
          finished = true;
          yield { t: "done", stats: m.stats };
          return;
        }
      }
    } finally {
      this.pending.delete(id);
      if (!finished && !this.exited) this.child.send({ t: "cancel", id });
    }
  }

  /** One request, one answer (`ok` picks the value out of the answer it expects). */
  private call<T>(
    message: DistributiveOmit<ToRunner, "id">,
    ok: (m: FromRunner) => T | undefined,
  ): Promise<T> {
    this.check();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        push: (m) => {
          this.pending.delete(id);
          if (m.t === "error") reject(new RunnerError(m.message, m.status));
          else {
            const v = ok(m);
            if (v === undefined)
              reject(new RunnerError(`the runner answered "${m.t}" to a "${message.t}" request`));
            else resolve(v);
          }
        },
        fail: reject,
      });
      this.child.send({ ...message, id });
    });
  }

  embed(inputs: string[], truncate: boolean): Promise<{ embeddings: Float32Array[]; promptTokens: number }> {
    return this.call({ t: "embed", inputs, truncate }, (m) =>
      m.t === "embedded" ? { embeddings: m.embeddings, promptTokens: m.promptTokens } : undefined,
    );
  }

  /** Tokens of the prompt a generation with this input would process. */
  count(input: RunRequest["input"]): Promise<number> {
    return this.call({ t: "count", input }, (m) => (m.t === "counted" ? m.tokens : undefined));
  }

  /** Stops the process (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      this.child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      this.stopping = true;
      this.child.kill("SIGTERM");
    });
  }
}
