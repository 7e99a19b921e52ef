/** Ollama's keep_alive values: seconds as a number, or a Go duration string ("5m", "1h30m", "-1"). */

export class DurationError extends Error {}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds; Infinity for a negative value (keep forever). */
export function parseKeepAlive(v: unknown): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new DurationError(`invalid keep_alive ${v}`);
    return v < 0 ? Infinity : v * 1000;
  }
  if (typeof v !== "string")
    throw new DurationError(
      `keep_alive must be a number of seconds or a duration like "5m", got ${JSON.stringify(v)}`,
    );
  const s = v.trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return parseKeepAlive(Number(s));
  const m = /^(-)?((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(s);
  if (!m) throw new DurationError(`invalid keep_alive duration "${v}"`);
  let ms = 0;
  for (const [, n, u] of m[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * UNITS[u!]!;
  return m[1] ? Infinity : ms;
}
