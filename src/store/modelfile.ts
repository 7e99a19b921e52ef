/**
 * Modelfiles as Ollama reads them: one instruction per line (FROM, PARAMETER, TEMPLATE,
 * SYSTEM, MESSAGE, LICENSE, ADAPTER), names case-insensitive, `#` comments, values that
 * run to the end of the line, or span lines inside `"""…"""`, or sit in `"…"`.
 */

export interface Modelfile {
  from?: string;
  parameters: [name: string, value: string][];
  template?: string;
  system?: string;
  license: string[];
  messages: { role: string; content: string }[];
  adapter?: string;
}

export class ModelfileError extends Error {
  constructor(line: number, message: string) {
    super(`Modelfile line ${line}: ${message}`);
  }
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

export function parseModelfile(text: string): Modelfile {
  const mf: Modelfile = { parameters: [], license: [], messages: [] };
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)\s*(.*)$/s.exec(line)!;
    const cmd = m[1]!.toUpperCase();
    let rest = m[2]!;
    // Multi-line value: from """ to the next """.
    const readValue = (s: string): string => {
      if (s.startsWith('"""')) {
        let body = s.slice(3);
        const parts: string[] = [];
        for (;;) {
          const end = body.indexOf('"""');
          if (end >= 0) {
            parts.push(body.slice(0, end));
            if (body.slice(end + 3).trim() !== "")
              throw new ModelfileError(lineNo, 'unexpected text after closing """');
            return parts.join("\n");
          }
          parts.push(body);
          if (++i >= lines.length) throw new ModelfileError(lineNo, 'unterminated """ block');
          body = lines[i]!;
        }
      }
      if (s.startsWith('"')) {
        if (!s.endsWith('"') || s.length < 2) throw new ModelfileError(lineNo, "unterminated quoted value");
        return s.slice(1, -1).replace(/\\"/g, '"');
      }
      return s;
    };
    switch (cmd) {
      case "FROM":
        if (!rest) throw new ModelfileError(lineNo, "FROM needs a model name or path");
        mf.from = readValue(rest);
        break;
      case "PARAMETER": {
        const p = /^(\S+)\s+(.+)$/s.exec(rest);
        if (!p) throw new ModelfileError(lineNo, "PARAMETER needs a name and a value");
        mf.parameters.push([p[1]!.toLowerCase(), readValue(p[2]!)]);
        break;
      }
      case "TEMPLATE":
        mf.template = readValue(rest);
        break;
      case "SYSTEM":
        mf.system = readValue(rest);
        break;
      case "LICENSE":
        mf.license.push(readValue(rest));
        break;
      case "ADAPTER":
        mf.adapter = readValue(rest);
        break;
      case "MESSAGE": {
        const p = /^(\S+)\s+(.+)$/s.exec(rest);
        if (!p) throw new ModelfileError(lineNo, "MESSAGE needs a role and content");
        const role = p[1]!.toLowerCase();
        if (!ROLES.has(role))
          throw new ModelfileError(
            lineNo,
            `MESSAGE role must be system, user, assistant or tool, not "${p[1]}"`,
          );
        mf.messages.push({ role, content: readValue(p[2]!) });
        break;
      }
      default:
        throw new ModelfileError(lineNo, `unknown instruction "${m[1]}"`);
    }
    rest = "";
  }
  return mf;
}

function quote(s: string): string {
  return s.includes("\n") || s.includes('"') ? `"""${s}"""` : `"${s}"`;
}

/** Renders a Modelfile (for `show --modelfile`): what was stored, in Ollama's order. */
export function renderModelfile(mf: {
  from: string;
  template?: string;
  system?: string;
  params?: Record<string, unknown>;
  messages?: { role: string; content: string }[];
  license?: string[];
}): string {
  const out = [`FROM ${mf.from}`];
  if (mf.template !== undefined) out.push(`TEMPLATE """${mf.template}"""`);
  if (mf.system !== undefined) out.push(`SYSTEM """${mf.system}"""`);
  for (const [k, v] of Object.entries(mf.params ?? {}))
    for (const one of Array.isArray(v) ? v : [v])
      out.push(`PARAMETER ${k} ${typeof one === "string" ? quote(one) : one}`);
  for (const m of mf.messages ?? []) out.push(`MESSAGE ${m.role} ${quote(m.content)}`);
  for (const l of mf.license ?? []) out.push(`LICENSE """${l}"""`);
  return out.join("\n") + "\n";
}
