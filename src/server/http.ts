/** Minimal HTTP plumbing: a router with `:param` segments, bounded JSON bodies, streams, CORS. */
import type { IncomingMessage, ServerResponse } from "node:http";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  url: URL;
  /** Aborts when the client goes away before the response ends. */
  signal: AbortSignal;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

/** How errors look on a family of routes (Ollama, OpenAI, Anthropic). */
export type ErrorShape = (status: number, message: string) => unknown;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
  errors: ErrorShape;
}

export const ollamaError: ErrorShape = (_s, message) => ({ error: message });

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler, errors: ErrorShape = ollamaError): void {
    this.routes.push({ method, parts: path.split("/").filter(Boolean), handler, errors });
  }

  match(method: string, path: string): { route?: Route; params: Record<string, string>; pathKnown: boolean } {
    const segs = path.split("/").filter(Boolean);
    let pathKnown = false;
    for (const r of this.routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segs.length && ok; i++) {
        const p = r.parts[i]!;
        if (p.startsWith(":")) {
          try {
            params[p.slice(1)] = decodeURIComponent(segs[i]!);
          } catch {
            ok = false;
          }
        } else ok = p === segs[i];
      }
      if (!ok) continue;
      pathKnown = true;
      if (r.method === method || (method === "HEAD" && r.method === "GET"))
        return { route: r, params, pathKnown };
    }
    return { params: {}, pathKnown };
  }
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit)
    throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The JSON object in the body; a clear 400 for anything else. */
export async function readJson(req: IncomingMessage, limit = 64 * 2 ** 20): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  if (body.length === 0) throw new HttpError(400, "missing request body");
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new HttpError(400, `invalid JSON in request body: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new HttpError(400, "the request body must be a JSON object");
  return v as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts an NDJSON stream; returns a writer of one object per line. */
export function ndjson(res: ServerResponse): (obj: unknown) => void {
  res.writeHead(200, { "Content-Type": "application/x-ndjson" });
  return (obj) => void res.write(JSON.stringify(obj) + "\n");
}

/** Starts a server-sent event stream; `event` names the event where the API uses names. */
export function sse(res: ServerResponse): (data: unknown, event?: string) => void {
  res.writeHead(200, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
  });
  return (data, event) =>
    void res.write(
      `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`,
    );
}

/** Typed field access on a request body, with 400s that name the field. */
export const field = {
  str(o: Record<string, unknown>, k: string, required = false): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw new HttpError(400, `"${k}" is required`);
      return undefined;
    }
    if (typeof v !== "string") throw new HttpError(400, `"${k}" must be a string`);
    return v;
  },
  bool(o: Record<string, unknown>, k: string): boolean | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") throw new HttpError(400, `"${k}" must be true or false`);
    return v;
  },
  num(o: Record<string, unknown>, k: string): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `"${k}" must be a number`);
    return v;
  },
  array(o: Record<string, unknown>, k: string): unknown[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new HttpError(400, `"${k}" must be an array`);
    return v;
  },
  obj(o: Record<string, unknown>, k: string): Record<string, unknown> | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) throw new HttpError(400, `"${k}" must be an object`);
    return v as Record<string, unknown>;
  },
};

const LOCAL_ORIGINS = [
  /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0)(:\d+)?$/,
  /^(app|file|tauri|vscode-webview|vscode-file):\/\//,
];

/** Browsers from origins outside the allow-list are refused (LMX_ORIGINS adds entries; `*` allows all). */
export function originAllowed(origin: string | undefined, extra: readonly string[]): boolean {
  if (!origin) return true;
  if (extra.includes("*") || extra.includes(origin)) return true;
  for (const e of extra) if (e.endsWith("*") && origin.startsWith(e.slice(0, -1))) return true;
  return LOCAL_ORIGINS.some((r) => r.test(origin));
}
