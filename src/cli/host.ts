/** LMX_HOST (`[scheme://]host[:port]`, default 127.0.0.1:11434) as a bind address and a base URL. */

export interface HostAddress {
  host: string;
  port: number;
  url: string;
}

export function hostAddress(raw = process.env.LMX_HOST ?? ""): HostAddress {
  let s = raw.trim() || "127.0.0.1:11434";
  let scheme = "http";
  const m = /^(https?):\/\//.exec(s);
  if (m) {
    scheme = m[1]!;
    s = s.slice(m[0].length);
  }
  s = s.replace(/\/+$/, "");
  let host = s,
    port = 11434;
  const pm = /^(.*):(\d+)$/.exec(s);
  if (pm) {
    host = pm[1]!;
    port = Number(pm[2]);
  }
  host = host.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  if (!(port >= 0 && port < 65536)) throw new Error(`LMX_HOST has an invalid port: ${raw}`);
  const connect = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return { host, port, url: `${scheme}://${connect.includes(":") ? `[${connect}]` : connect}:${port}` };
}

/** Whether an lmx server answers at the base URL. */
export async function serverRunning(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1000) });
    return r.ok;
  } catch {
    return false;
  }
}
