/**
 * The files `lmx launch` writes into other tools' configuration: each write is atomic
 * (temporary file + rename), keeps a timestamped backup of what was there under
 * ~/.lmx/backup/<integration>/ (five per file), and the first write of a file records its
 * prior state, so that `--restore` puts back the exact bytes (or removes a file lmx created).
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

interface ChangeRecord {
  files: { [path: string]: { existed: boolean; backup?: string } };
}

export function atomicWrite(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.lmx-${randomBytes(4).toString("hex")}`);
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export class ConfigFiles {
  constructor(
    readonly lmxHome: string,
    readonly integration: string,
  ) {}

  private recordPath(): string {
    return join(this.lmxHome, "launch", `${this.integration}.json`);
  }

  private record(): ChangeRecord {
    const p = this.recordPath();
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as ChangeRecord) : { files: {} };
  }

  /** Writes `content` to `path`, backing up and remembering what was there. */
  write(path: string, content: string): void {
    const rec = this.record();
    const existed = existsSync(path);
    let backup: string | undefined;
    if (existed) {
      const dir = join(this.lmxHome, "backup", this.integration);
      mkdirSync(dir, { recursive: true });
      backup = join(dir, `${basename(path)}.${Date.now()}`);
      copyFileSync(path, backup);
      this.prune(dir, basename(path), rec);
    }
    if (!rec.files[path]) {
      rec.files[path] = { existed, backup };
      atomicWrite(this.recordPath(), JSON.stringify(rec, null, 2));
    }
    atomicWrite(path, content);
  }

  /** Keeps the five newest backups of a file (and always the one restore needs). */
  private prune(dir: string, name: string, rec: ChangeRecord): void {
    const keep = new Set(Object.values(rec.files).map((f) => f.backup));
    const mine = readdirSync(dir)
      .filter((f) => f.startsWith(`${name}.`) && /^\d+$/.test(f.slice(name.length + 1)))
      .sort((a, b) => Number(b.slice(name.length + 1)) - Number(a.slice(name.length + 1)));
    for (const f of mine.slice(5)) if (!keep.has(join(dir, f))) rmSync(join(dir, f), { force: true });
  }

  /** Returns every file lmx changed to its state before the first change. */
  restore(): string[] {
    const rec = this.record();
    const done: string[] = [];
    for (const [path, f] of Object.entries(rec.files)) {
      if (f.existed && f.backup) atomicWrite(path, readFileSync(f.backup));
      else rmSync(path, { force: true });
      done.push(path);
    }
    rmSync(this.recordPath(), { force: true });
    return done;
  }

  /** Reads a JSON config file; a clear error rather than an overwrite if it does not parse. */
  static readJson(path: string): Record<string, unknown> {
    if (!existsSync(path)) return {};
    const text = readFileSync(path, "utf8");
    if (text.trim() === "") return {};
    try {
      const v = JSON.parse(text);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
      return v;
    } catch (e) {
      throw new Error(
        `${path} is not valid JSON (${(e as Error).message}); fix or move it, lmx will not overwrite it`,
      );
    }
  }
}
