/** A small flag parser: `--name value`, `--name=value`, booleans, and positionals. */

export interface FlagSpec {
  /** Flag names without dashes mapped to their kind. */
  [name: string]: "string" | "number" | "boolean";
}

export interface Parsed {
  flags: Record<string, string | number | boolean>;
  positionals: string[];
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], spec: FlagSpec): Parsed {
  const flags: Record<string, string | number | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.replace(/^--?/, "").slice(0, eq > 0 ? eq - (a.startsWith("--") ? 2 : 1) : undefined);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag ${a}`);
    if (kind === "boolean") {
      flags[name] = eq > 0 ? a.slice(eq + 1) !== "false" : true;
      continue;
    }
    const raw = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`flag ${a} needs a value`);
    if (kind === "number") {
      const v = Number(raw);
      if (raw.trim() === "" || Number.isNaN(v))
        throw new UsageError(`flag ${a} needs a number, got "${raw}"`);
      flags[name] = v;
    } else {
      flags[name] = raw;
    }
  }
  return { flags, positionals };
}
