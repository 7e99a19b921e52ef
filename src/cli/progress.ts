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

  clear(): void {
    if (this.drawn) process.stderr.write("\r\x1b[K");
    this.drawn = false;
  }
}
