/** Server log lines to stderr and to a file under ~/.lmx/logs (debug lines only with LMX_DEBUG). */
import { appendFileSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  debug(msg: string): void;
  readonly file?: string;
}

export function createLogger(o: { dir?: string; debug?: boolean; quiet?: boolean } = {}): Logger {
  const dir = o.dir ?? join(homedir(), ".lmx", "logs");
  let file: string | undefined = join(dir, "server.log");
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    file = undefined;
  }
  const write = (level: string, msg: string) => {
    const line = `time=${new Date().toISOString()} level=${level} msg=${JSON.stringify(msg)}\n`;
    if (!o.quiet) process.stderr.write(line);
    if (file)
      try {
        appendFileSync(file, line);
      } catch {
        // A full or read-only disk must not take the server down.
      }
  };
  return {
    file,
    info: (m) => write("INFO", m),
    warn: (m) => write("WARN", m),
    error: (m) => write("ERROR", m),
    debug: (m) => (o.debug ? write("DEBUG", m) : undefined),
  };
}
