/**
 * Stop strings over streamed text: text that might be the start of a stop string is held
 * back until it is known not to be, so a stop string never reaches the output.
 */
export class StopMatcher {
  private held = "";
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns what may be emitted now. Sets `stopped` when a stop string completes. */
  push(text: string): string {
    if (this.stopped) return "";
    if (!this.stops.length) return text;
    this.held += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.held.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.held.slice(0, cut);
      this.held = "";
      return out;
    }
    let keep = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.held.length); n > keep; n--) {
        if (this.held.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** Releases held text at the end of generation. */
  flush(): string {
    const out = this.stopped ? "" : this.held;
    this.held = "";
    return out;
  }
}
