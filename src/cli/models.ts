/** `lmx list|show|rm|cp` on the model store, and `lmx ps|stop` on the running server. */
import { capabilities } from "../chat/capabilities.js";
import { renderModelfile } from "../store/modelfile.js";
import { modelFacts } from "../store/model-facts.js";
import type { ResolvedModel } from "../store/resolve.js";
import { MediaType } from "../store/manifest.js";
import { ModelStore } from "../store/store.js";
import { parseArgs, UsageError } from "./args.js";
import { resolveTarget } from "./resolve-model.js";
import { ago, humanBytes, table } from "./format.js";
import { hostAddress, serverRunning } from "./host.js";

function help(argv: string[], text: string): boolean {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(text + "\n");
    return true;
  }
  return false;
}

export async function listCommand(argv: string[]): Promise<number> {
  if (help(argv, "Usage: lmx list\n\nLists the models in the store (LMX_MODELS, default ~/.lmx/models)."))
    return 0;
  parseArgs(argv, {});
  const rows = [["NAME", "ID", "SIZE", "MODIFIED"]];
  for (const m of new ModelStore().list())
    rows.push([m.name, m.digest.slice(0, 12), humanBytes(m.size), ago(m.modifiedAt)]);
  process.stdout.write(table(rows));
  return 0;
}

const SHOW_HELP = `Usage: lmx show MODEL [--modelfile | --parameters | --template | --system | --license]

Shows a model's architecture, size, quantization, context length and capabilities, or
one of its parts. MODEL is a name in the store, a .gguf file or a model folder.`;

export async function showCommand(argv: string[]): Promise<number> {
  if (help(argv, SHOW_HELP)) return 0;
  const { flags, positionals } = parseArgs(argv, {
    modelfile: "boolean",
    parameters: "boolean",
    template: "boolean",
    system: "boolean",
    license: "boolean",
    verbose: "boolean",
  });
  const name = positionals[0];
  if (!name) throw new UsageError("give a MODEL: a name, a .gguf file or a model folder");
  const store = new ModelStore();
  // A .gguf file or a model folder is shown as `lmx run` would load it.
  const target = resolveTarget(name);
  const m: ResolvedModel = target.stored ?? { name, path: target.path, digest: "", params: {}, messages: [] };
  const facts = modelFacts(m, !!flags.verbose);
  const licenses = (m.stored?.manifest.layers ?? [])
    .filter((l) => l.mediaType === MediaType.license)
    .map((l) => store.blobText(l.digest));
  const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
  if (flags.modelfile)
    return (
      out(
        renderModelfile({
          from: m.path,
          template: m.template,
          system: m.system,
          params: m.params,
          messages: m.messages,
          license: licenses,
        }),
      ),
      0
    );
  if (flags.parameters)
    return (
      out(
        Object.entries(m.params)
          .flatMap(([k, v]) =>
            (Array.isArray(v) ? v : [v]).map((x) => `${k.padEnd(16)} ${JSON.stringify(x)}`),
          )
          .join("\n"),
      ),
      0
    );
  if (flags.template) return (out(facts.template ?? ""), 0);
  if (flags.system) return (out(m.system ?? ""), 0);
  if (flags.license) return (out(licenses.join("\n")), 0);
  const arch = facts.details.family;
  const info = facts.modelInfo;
  const section = (title: string, rows: [string, string][]) =>
    rows.length ? `  ${title}\n${rows.map(([k, v]) => `    ${k.padEnd(20)}${v}`).join("\n")}\n\n` : "";
  let s = section("Model", [
    ["architecture", arch],
    ["parameters", facts.details.parameter_size],
    ["context length", String(info[`${arch}.context_length`] ?? "")],
    ["embedding length", String(info[`${arch}.embedding_length`] ?? "")],
    ["quantization", facts.details.quantization_level],
  ]);
  s += section(
    "Capabilities",
    capabilities(facts.template, { embedding: facts.capabilities.includes("embedding") }).map((c) => [c, ""]),
  );
  s += section(
    "Parameters",
    Object.entries(m.params).map(([k, v]) => [k, JSON.stringify(v)]),
  );
  if (m.system) s += section("System", [[m.system.split("\n")[0]!, ""]]);
  if (licenses.length) s += section("License", [[licenses[0]!.split("\n")[0]!, ""]]);
  out(s);
  return 0;
}

export async function rmCommand(argv: string[]): Promise<number> {
  if (
    help(
      argv,
      "Usage: lmx rm NAME [NAME...]\n\nDeletes models from the store (blobs no other model uses are removed).",
    )
  )
    return 0;
  const { positionals } = parseArgs(argv, {});
  if (!positionals.length) throw new UsageError("give a model NAME");
  const store = new ModelStore();
  const url = hostAddress().url;
  const running = await serverRunning(url);
  for (const n of positionals) {
    store.remove(n);
    if (running)
      await fetch(`${url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: n, keep_alive: 0 }),
      }).catch(() => {});
    process.stdout.write(`deleted '${n}'\n`);
  }
  return 0;
}

export async function cpCommand(argv: string[]): Promise<number> {
  if (
    help(argv, "Usage: lmx cp SOURCE DESTINATION\n\nCopies a model under a new name (the blobs are shared).")
  )
    return 0;
  const { positionals } = parseArgs(argv, {});
  if (positionals.length !== 2) throw new UsageError("give SOURCE and DESTINATION");
  new ModelStore().copy(positionals[0]!, positionals[1]!);
  process.stdout.write(`copied '${positionals[0]}' to '${positionals[1]}'\n`);
  return 0;
}

async function server(): Promise<string> {
  const url = hostAddress().url;
  if (!(await serverRunning(url)))
    throw new Error(`no lmx server is running at ${url} (start one with "lmx serve")`);
  return url;
}

export async function psCommand(argv: string[]): Promise<number> {
  if (help(argv, "Usage: lmx ps\n\nLists the models the running server has loaded.")) return 0;
  parseArgs(argv, {});
  const url = await server();
  const r = (await (await fetch(`${url}/api/ps`)).json()) as {
    models: { name: string; digest: string; size: number; context_length: number; expires_at: string }[];
  };
  const rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]];
  for (const m of r.models) {
    const until = new Date(m.expires_at);
    const left = until.getTime() - Date.now();
    rows.push([
      m.name,
      m.digest.slice(0, 12),
      humanBytes(m.size),
      "100% CPU",
      String(m.context_length),
      left > 1e11 ? "Forever" : left <= 0 ? "Stopping..." : `${Math.ceil(left / 60000)} minutes from now`,
    ]);
  }
  process.stdout.write(table(rows));
  return 0;
}

export async function stopCommand(argv: string[]): Promise<number> {
  if (help(argv, "Usage: lmx stop NAME\n\nUnloads a model from the running server.")) return 0;
  const { positionals } = parseArgs(argv, {});
  if (!positionals[0]) throw new UsageError("give a model NAME");
  const url = await server();
  const r = await fetch(`${url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: positionals[0], keep_alive: 0 }),
  });
  if (!r.ok) throw new Error(((await r.json()) as { error: string }).error);
  return 0;
}
