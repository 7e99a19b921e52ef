/** Human-readable sizes, ages and tables for CLI listings. */

export function humanBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n >= 100 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function ago(d: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? "" : "s"} ago`;
  if (s < 60) return s < 2 ? "Less than a second ago" : unit(s, "second");
  if (s < 3600) return unit(Math.floor(s / 60), "minute");
  if (s < 86400) return unit(Math.floor(s / 3600), "hour");
  if (s < 86400 * 30) return unit(Math.floor(s / 86400), "day");
  return unit(Math.floor(s / (86400 * 30)), "month");
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return (
    rows
      .map((r) =>
        r
          .map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]! + 4)))
          .join("")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}
