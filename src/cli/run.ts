/** `lmx run [MODEL] [PROMPT]`: one-shot completion, or an interactive chat on a terminal. */
import { createInterface } from "node:readline";
import type { GenerateOptions } from "../runner/options.js";
import type { GenerationStats } from "../runner/runner.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { parseArgs, UsageError } from "./args.js";
import { hostAddress, serverRunning } from "./host.js";
import { resolveTarget } from "./resolve-model.js";
import { localSession, remoteSession, type Session } from "./session.js";
import { PARAMETER_NAMES, SAMPLING_FLAGS, SAMPLING_HELP, samplingOptions } from "./sampling-flags.js";

const HELP = `Usage: lmx run [MODEL] [PROMPT] [flags]

Without PROMPT and with a terminal on stdin, starts an interactive chat. A PROMPT
argument or piped stdin runs once and prints the answer.

Flags:
  --raw                  feed the prompt as is, without the chat template
  --verbose              print load time and token rates to stderr
  --think / --no-think   ask a thinking model to think, or to answer directly
  --backend NAME         cpu (default) or reference
${SAMPLING_HELP}

Interactive commands: /bye, /clear, /set parameter NAME VALUE, /show info, /? ;
start and end a multi-line message with """. Ctrl-C stops an answer, Ctrl-D exits.`;

const FLAGS = {
  ...SAMPLING_FLAGS,
  raw: "boolean",
  verbose: "boolean",
  think: "boolean",
  "no-think": "boolean",
  backend: "string",
  help: "boolean",
} as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function verbose(model: Session, s: GenerationStats): string {
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(2) : "-");
  return [
    `load duration:        ${model.loadMs.toFixed(1)} ms`,
    `prompt eval count:    ${s.promptTokens} token(s)${s.cachedTokens ? ` (${s.cachedTokens} cached)` : ""}`,
    `prompt eval duration: ${s.promptMs.toFixed(1)} ms`,
    `prompt eval rate:     ${rate(s.promptTokens - s.cachedTokens, s.promptMs)} tokens/s`,
    `eval count:           ${s.genTokens} token(s)`,
    `eval duration:        ${s.genMs.toFixed(1)} ms`,
    `eval rate:            ${rate(s.genTokens, s.genMs)} tokens/s`,
    ...(s.draftTokens
      ? [`drafts:               ${s.draftTokens} verified, ${s.acceptedDrafts} came true`]
      : []),
  ].join("\n");
}

export async function runCommand(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const [modelArg, ...promptParts] = positionals;
  const numCtx = flags["num-ctx"] as number | undefined;
  const target = resolveTarget(modelArg);
  const url = hostAddress().url;
  // A named model goes through a running server (shared with other clients); otherwise it runs here.
  const model: Session =
    target.stored && !flags.backend && !process.env.LMX_NO_SERVER && (await serverRunning(url))
      ? await remoteSession(url, target.stored.name, numCtx)
      : await localSession(target.path, target.stored, {
          backend: flags.backend as "cpu" | "reference" | undefined,
          numCtx,
        });
  const options = samplingOptions(flags);
  const think = flags["no-think"] ? false : flags.think ? true : undefined;
  let prompt = promptParts.join(" ");
  if (!process.stdin.isTTY) {
    const piped = await readStdin();
    prompt = piped && prompt ? `${piped}\n${prompt}` : piped || prompt;
    if (!prompt) throw new UsageError("no prompt: give one as an argument or on stdin");
  }
  if (prompt) return oneShot(model, prompt, options, { raw: !!flags.raw, verbose: !!flags.verbose, think });
  if (flags.raw) throw new UsageError("--raw needs a prompt");
  return interactive(model, options, { verbose: !!flags.verbose, think });
}

async function oneShot(
  model: Session,
  prompt: string,
  options: GenerateOptions,
  o: { raw: boolean; verbose: boolean; think?: boolean },
): Promise<number> {
  const ac = new AbortController();
  const onInt = () => ac.abort();
  process.once("SIGINT", onInt);
  try {
    const gen = o.raw
      ? model.raw(prompt, { ...options, signal: ac.signal })
      : model.chat([{ role: "user", content: prompt }], { ...options, think: o.think, signal: ac.signal });
    for await (const text of gen) process.stdout.write(text);
    if (!o.raw) process.stdout.write("\n");
    if (o.verbose) process.stderr.write(verbose(model, await gen.stats) + "\n");
    return 0;
  } finally {
    process.removeListener("SIGINT", onInt);
  }
}

async function interactive(
  model: Session,
  options: GenerateOptions,
  o: { verbose: boolean; think?: boolean },
): Promise<number> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: ">>> " });
  const history: ChatMessage[] = [];
  let opts: GenerateOptions = { ...options };
  let multi: string[] | null = null;
  let generating: AbortController | null = null;
  rl.on("SIGINT", () => {
    if (generating) generating.abort();
    else {
      process.stdout.write("\nUse Ctrl + d or /bye to exit.\n");
      multi = null;
      rl.setPrompt(">>> ");
      rl.prompt();
    }
  });
  const handleCommand = async (line: string): Promise<boolean> => {
    const [cmd, ...args] = line.trim().split(/\s+/);
    switch (cmd) {
      case "/bye":
        rl.close();
        return true;
      case "/clear":
        history.length = 0;
        model.reset();
        process.stdout.write("Cleared session context\n");
        return true;
      case "/set":
        if (args[0] === "parameter" && args.length === 3) {
          const key = PARAMETER_NAMES[args[1]!];
          const v = Number(args[2]);
          if (!key || Number.isNaN(v))
            process.stdout.write(`Unknown parameter or bad value: ${args[1]} ${args[2]}\n`);
          else {
            opts = { ...opts, [key]: v };
            process.stdout.write(`Set parameter '${args[1]}' to '${args[2]}'\n`);
          }
        } else process.stdout.write("Usage: /set parameter NAME VALUE\n");
        return true;
      case "/show":
        if (args[0] === "info")
          for (const [k, v] of Object.entries(await model.info()))
            process.stdout.write(`  ${k.padEnd(16)} ${v}\n`);
        else process.stdout.write("Usage: /show info\n");
        return true;
      case "/?":
      case "/help":
        process.stdout.write(
          'Commands: /bye, /clear, /set parameter NAME VALUE, /show info. Use """ to begin and end a multi-line message.\n',
        );
        return true;
      default:
        process.stdout.write(`Unknown command '${cmd}'. Type /? for help\n`);
        return true;
    }
  };
  const answer = async (text: string) => {
    history.push({ role: "user", content: text });
    // Input keeps flowing while the model answers, so that Ctrl-C (raw mode) reaches us.
    generating = new AbortController();
    let reply = "";
    try {
      const gen = model.chat(history, { ...opts, think: o.think, signal: generating.signal });
      for await (const text of gen) {
        reply += text;
        process.stdout.write(text);
      }
      process.stdout.write("\n\n");
      if (o.verbose) process.stderr.write(verbose(model, await gen.stats) + "\n");
      history.push({ role: "assistant", content: reply });
    } catch (e) {
      process.stdout.write(`\nError: ${(e as Error).message}\n`);
      history.pop();
    } finally {
      generating = null;
    }
  };
  let closed = false;
  rl.on("close", () => (closed = true));
  rl.prompt();
  for await (const line of rl) {
    if (multi) {
      if (line.trimEnd().endsWith('"""')) {
        multi.push(line.trimEnd().slice(0, -3));
        const text = multi.join("\n");
        multi = null;
        rl.setPrompt(">>> ");
        await answer(text);
      } else multi.push(line);
    } else if (line.trimStart().startsWith('"""')) {
      const rest = line.trimStart().slice(3);
      if (rest.trimEnd().endsWith('"""') && rest.trim().length >= 3)
        await answer(rest.trimEnd().slice(0, -3));
      else {
        multi = [rest];
        rl.setPrompt("... ");
      }
    } else if (line.trim().startsWith("/")) {
      await handleCommand(line);
    } else if (line.trim()) {
      await answer(line);
    }
    if (closed) break;
    rl.prompt();
  }
  return 0;
}
