/** The lmx command as tests run it: `node bin/lmx.js ARGS`, waited for. */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const LMX_BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "lmx.js");

export interface LmxRunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Runs lmx to its end. A run killed at its timeout is run once more: Node 20 can deadlock
 * at exit, rarely (a CI run hung in `lmx show` with the main thread in
 * NodePlatform::DrainTasks waiting for a concurrent TurboFan job, itself waiting in V8's
 * CollectionBarrier for a GC only the main thread runs: gdb, session 13). A second hang is
 * returned as it is, and fails the test.
 */
export function runLmx(args: readonly string[], o: LmxRunOptions = {}): SpawnSyncReturns<string> {
  const once = () =>
    spawnSync(process.execPath, [LMX_BIN, ...args], {
      encoding: "utf8",
      input: o.input,
      env: o.env,
      cwd: o.cwd,
      timeout: o.timeoutMs ?? 120_000,
    });
  const r = once();
  if ((r.error as NodeJS.ErrnoException | undefined)?.code !== "ETIMEDOUT") return r;
  process.stderr.write(`lmx ${args.join(" ")} hung; running it again\n`);
  return once();
}
