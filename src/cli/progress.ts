/** Progress on stderr: a redrawn bar on a terminal, plain status lines otherwise. */

export class Progress {
  private readonly tty = !!process.stderr.isTTY;
  private drawn = false;

  status(line: string): void {
    this.clear();
    process.stderr.write(`${line}\n`);
  }

  bar(done: number, total: number, label: string): void {
    if (!this.tty) return;
    const width = 30;
    const n = Math.round((width * done) / Math.max(1, total));
    process.stderr.write(`\r\x1b[K[${"#".repeat(n)}${" ".repeat(width - n)}] ${done}/${total} ${label}`);
    this.drawn = true;
  }

  private rate = new Map<string, { t0: number; c0: number; last: number }>();

  /** A download or upload: bar, bytes, speed and time left (redrawn at most 10 times a second). */
  transfer(label: string, completed: number, total: number): void {
    const now = performance.now();
    let r = this.rate.get(label);
    if (!r) this.rate.set(label, (r = { t0: now, c0: completed, last: 0 }));
    if (completed < total && now - r.last < 100) return;
    r.last = now;
    const secs = (now - r.t0) / 1000;
    const speed = secs > 0 ? (completed - r.c0) / secs : 0;
    const eta = speed > 0 ? (total - completed) / speed : Infinity;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    const time = (t: number) =>
      Number.isFinite(t)
        ? t >= 60
          ? `${Math.floor(t / 60)}m${Math.round(t % 60)}s`
          : `${Math.round(t)}s`
        : "?";
    const width = 25;
    const n = Math.round((width * completed) / Math.max(1, total));
    const line = `${label} [${"#".repeat(n)}${" ".repeat(width - n)}] ${mb(completed)}/${mb(total)} ${mb(speed)}/s ${completed >= total ? "" : `ETA ${time(eta)}`}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${line}`);
      this.drawn = true;
      if (completed >= total) this.clear();
    } else if (completed >= total) process.stderr.write(`${line}\n`);
  }

  clear(): void {
    if (this.drawn) process.stderr.write("\r\x1b[K");
    this.drawn = false;
  }
}
