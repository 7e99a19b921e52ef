/** `lmx pull NAME` and `lmx push NAME`: models from and to a registry, with progress. */
import { pullModel, type Progress as PullProgress } from "../registry/pull.js";
import { pushModel } from "../registry/push.js";
import { ModelStore } from "../store/store.js";
import { parseArgs, UsageError } from "./args.js";
import { Progress } from "./progress.js";

const PULL_HELP = `Usage: lmx pull NAME [--insecure]

Downloads a model from a registry that speaks Ollama's protocol: NAME is
[host/][namespace/]model[:tag] (default host registry.ollama.ai, namespace library,
tag latest; LMX_REGISTRY replaces the default host's URL). Blobs come in parallel ranged
parts, resume after an interruption, and are verified by sha256 before use.

Flags:
  --insecure   allow plain HTTP`;

const PUSH_HELP = `Usage: lmx push NAME [--insecure]

Uploads a model to the registry its name names (blobs the registry lacks, then the
manifest).

Flags:
  --insecure   allow plain HTTP`;

function reporter(): (p: PullProgress) => void {
  const bar = new Progress();
  let last = "";
  return (p) => {
    if (p.total !== undefined && p.completed !== undefined) bar.transfer(p.status, p.completed, p.total);
    else if (p.status !== last) bar.status(p.status);
    last = p.status;
  };
}

export async function pullCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { insecure: "boolean", help: "boolean" });
  if (flags.help) return (process.stdout.write(PULL_HELP + "\n"), 0);
  if (!positionals[0]) throw new UsageError("give a model NAME");
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  await pullModel(new ModelStore(), positionals[0], {
    insecure: !!flags.insecure,
    onProgress: reporter(),
    signal: ac.signal,
  });
  return 0;
}

export async function pushCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { insecure: "boolean", help: "boolean" });
  if (flags.help) return (process.stdout.write(PUSH_HELP + "\n"), 0);
  if (!positionals[0]) throw new UsageError("give a model NAME");
  await pushModel(new ModelStore(), positionals[0], { insecure: !!flags.insecure, onProgress: reporter() });
  return 0;
}
