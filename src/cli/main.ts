/** The `lmx` command: dispatches to one file per subcommand. */
import { UsageError } from "./args.js";

const USAGE = `Usage: lmx COMMAND [ARGS]

Commands:
  run [MODEL] [PROMPT]   chat with a model, or complete PROMPT once (default model: the embedded tiny-qwen3)
  bench [MODEL]          measure prompt processing and generation speed
  perplexity MODEL       perplexity of a text, and KL divergence from a base model
  serve                  start the server (Ollama, OpenAI and Anthropic APIs)
  create NAME -f FILE    create a model in the store from a Modelfile (or quantize into a GGUF file)
  list, ls               list the models in the store
  show NAME              show a model's details, Modelfile, parameters, template
  rm NAME                delete a model
  cp SOURCE DEST         copy a model
  ps                     list the models the server has loaded
  stop NAME              unload a model from the server
  pull NAME              download a model from a registry
  push NAME              upload a model to a registry
  launch [AGENT]         start a coding agent (pi, claude, codex, opencode, droid) on lmx

MODEL is a model in the store (NAME[:TAG]), a .gguf file, a Hugging Face model folder, or tiny-qwen3 (the embedded model). Run "lmx COMMAND --help" for a command's flags.`;

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command's module is loaded when it runs: a command compiles only its own code (the
 * server's, say, stays out of `lmx bench`: ~2 MiB less resident beside the model).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import("./run.js")).runCommand,
  bench: async () => (await import("./bench.js")).benchCommand,
  perplexity: async () => (await import("./perplexity.js")).perplexityCommand,
  create: async () => (await import("./create.js")).createCommand,
  serve: async () => (await import("./serve.js")).serveCommand,
  list: async () => (await import("./models.js")).listCommand,
  ls: async () => (await import("./models.js")).listCommand,
  show: async () => (await import("./models.js")).showCommand,
  rm: async () => (await import("./models.js")).rmCommand,
  cp: async () => (await import("./models.js")).cpCommand,
  ps: async () => (await import("./models.js")).psCommand,
  stop: async () => (await import("./models.js")).stopCommand,
  pull: async () => (await import("./registry.js")).pullCommand,
  push: async () => (await import("./registry.js")).pushCommand,
  launch: async () => (await import("./launch.js")).launchCommand,
};

export async function main(argv: string[]): Promise<void> {
  // A reader that went away (`lmx list | head`) ends the command quietly, as other CLIs do.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  if (cmd === "--version" || cmd === "-v") {
    process.stdout.write("lmx 0.1.0\n");
    return;
  }
  const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!load) {
    process.stderr.write(`lmx: unknown command "${cmd}"\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    process.exitCode = await (await load())(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`lmx ${cmd}: ${e.message}\n(see lmx ${cmd} --help)\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`lmx ${cmd}: ${(e as Error).message}\n`);
      if (process.env.LMX_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    }
  }
}
