/** `lmx launch [INTEGRATION]`: point a coding agent at the running `lmx serve` and start it. */
import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, openSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { ConfigFiles } from "../launch/config-files.js";
import { integration, INTEGRATIONS, type Integration } from "../launch/integrations.js";
import { parseArgs, UsageError } from "./args.js";
import { hostAddress, serverRunning } from "./host.js";

const HELP = `Usage: lmx launch [INTEGRATION] [--model NAME] [--config] [--restore] [--yes] [-- ARGS...]

Configures a coding agent to use the running lmx server and starts it; ARGS after -- go
to the agent. Without INTEGRATION, asks which. Integrations:
${INTEGRATIONS.map((i) => `  ${i.name.padEnd(10)} ${i.description}`).join("\n")}

Files of other tools that lmx changes are written atomically, with a timestamped backup
under ~/.lmx/backup/<integration>/; the user's own entries are kept.

Flags:
  --model NAME   the model to use (default: ask)
  --config       configure only; do not start the agent
  --restore      undo lmx's changes to the agent's files
  --yes, -y      do not ask: start the server if needed (needs --model)`;

const lmxHome = () => join(homedir(), ".lmx");

function onPath(binary: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const p = join(d, binary);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

async function pick<T>(what: string, items: T[], label: (t: T) => string): Promise<T> {
  process.stderr.write(`${what}:\n${items.map((t, i) => `  ${i + 1}) ${label(t)}`).join("\n")}\n`);
  const a = await ask("> ");
  const i = Number(a) - 1;
  const hit = items[i] ?? items.find((t) => label(t).split(" ")[0] === a);
  if (!hit) throw new UsageError(`no such choice: ${a}`);
  return hit;
}

async function startServer(url: string): Promise<void> {
  mkdirSync(join(lmxHome(), "logs"), { recursive: true });
  const out = openSync(join(lmxHome(), "logs", "serve.out"), "a");
  const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "lmx.js");
  // With this process's V8 flags (bin/lmx.js's #! line), as if started from the shell.
  spawn(process.execPath, [...process.execArgv, bin, "serve"], {
    detached: true,
    stdio: ["ignore", out, out],
  }).unref();
  for (let i = 0; i < 100; i++) {
    if (await serverRunning(url)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`started lmx serve but it does not answer at ${url} (see ~/.lmx/logs/)`);
}

export async function launchCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const passthrough = dash >= 0 ? argv.slice(dash + 1) : [];
  const { flags, positionals } = parseArgs(dash >= 0 ? argv.slice(0, dash) : argv, {
    model: "string",
    config: "boolean",
    restore: "boolean",
    yes: "boolean",
    y: "boolean",
    help: "boolean",
  });
  if (flags.help) return (process.stdout.write(HELP + "\n"), 0);
  const yes = !!(flags.yes || flags.y);
  const interactive = process.stdin.isTTY && !yes;
  let integ: Integration | undefined;
  if (positionals[0]) {
    integ = integration(positionals[0]);
    if (!integ)
      throw new UsageError(
        `unknown integration "${positionals[0]}" (known: ${INTEGRATIONS.map((i) => i.name).join(", ")})`,
      );
  } else if (interactive)
    integ = await pick("Which agent", [...INTEGRATIONS], (i) => `${i.name} - ${i.description}`);
  else throw new UsageError(`name an integration (${INTEGRATIONS.map((i) => i.name).join(", ")})`);

  if (flags.restore) {
    const files = new ConfigFiles(lmxHome(), integ.name).restore();
    process.stderr.write(
      files.length ? `restored ${files.join(", ")}\n` : `lmx had not changed any ${integ.name} files\n`,
    );
    return 0;
  }

  const binary = onPath(integ.binary);
  if (!binary && !flags.config)
    throw new Error(
      `${integ.name} is not installed (no "${integ.binary}" on PATH); install it with: ${integ.install}`,
    );

  const url = hostAddress().url;
  if (!(await serverRunning(url))) {
    const start =
      yes ||
      (interactive &&
        /^(y|yes|)$/i.test(await ask(`No lmx server at ${url}. Start "lmx serve" now? [Y/n] `)));
    if (!start) throw new Error(`no lmx server is running at ${url}; start one with "lmx serve"`);
    await startServer(url);
  }

  let model = flags.model as string | undefined;
  if (!model) {
    if (!interactive) throw new UsageError("--model NAME is required without a terminal (or with --yes)");
    const tags = (await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] };
    if (!tags.models.length) throw new Error("the store has no models; create or pull one first");
    model = (await pick("Which model", tags.models, (m) => m.name)).name;
  }
  const res = await fetch(`${url}/api/show`, { method: "POST", body: JSON.stringify({ model }) });
  const show = (await res.json()) as {
    error?: string;
    capabilities?: string[];
    context_length?: number;
    model_info?: Record<string, unknown>;
  };
  if (!res.ok) throw new Error(`${show.error} (lmx pull ${model}, or lmx create)`);
  const name =
    ((await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] }).models.find(
      (m) => m.name === model || m.name === `${model}:latest`,
    )?.name ?? model;
  const plan = integ.plan({
    baseUrl: url,
    model: name,
    contextWindow: show.context_length ?? 4096,
    capabilities: show.capabilities ?? [],
  });
  const files = new ConfigFiles(lmxHome(), integ.name);
  for (const f of plan.files) files.write(f.path, f.content);
  if (plan.files.length)
    process.stderr.write(`configured ${integ.name}: ${plan.files.map((f) => f.path).join(", ")}\n`);
  if (flags.config) {
    if (!plan.files.length)
      process.stderr.write(
        `${integ.name} takes its settings from the environment at launch; nothing to write\n`,
      );
    return 0;
  }
  const child = spawn(binary!, [...plan.args, ...passthrough], {
    stdio: "inherit",
    env: { ...process.env, ...plan.env },
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(signal ? 1 : (code ?? 0)));
  });
}
