// A dependency-free, one-line progress bar for long jobs (downloads, encoding, training).
//
// On a TTY it redraws a single line in place (`\r` + erase-to-end-of-line), throttled so that even a tight loop of
// update() calls costs almost nothing. Anywhere else (CI logs, files, pipes) carriage returns turn into noise, so the
// same bar degrades to an occasional plain line (at most one every `plainIntervalMs`) plus a final summary line.
// It deliberately lives in src/hub (the lowest layer that needs it) and imports nothing from src/, so any other
// module may reuse it.

/** The part of a writable stream the bar needs; `process.stderr` fits, and so does a test double. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressBarOptions {
  /** Expected final count; omit (or 0) when unknown: the bar then shows the count and rate only. */
  total?: number;
  /** Text before the bar, e.g. a file name or "epoch 1". */
  label?: string;
  /** "B" formats counts as bytes (kB, MB, GB); any other unit is printed after plain counts ("it", "ex"). */
  unit?: string;
  /** Where to draw; defaults to process.stderr. */
  stream?: ProgressStream;
  /** Force the redrawing (true) or plain-line (false) style instead of asking `stream.isTTY`. */
  tty?: boolean;
  /** Minimum time between two redraws on a TTY (default 100 ms). */
  minIntervalMs?: number;
  /** Minimum time between two plain lines when not on a TTY (default 10 s). */
  plainIntervalMs?: number;
  /** Injectable clock (ms) for tests. */
  now?: () => number;
}

const BAR_WIDTH = 20;

import { formatBytes, formatDuration } from "../util/format.ts";

export { formatBytes, formatDuration };

export class ProgressBar {
  label: string;
  private total: number;
  private readonly unit: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly minIntervalMs: number;
  private readonly plainIntervalMs: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private current = 0;
  /** Units moved since start, never decreased: the rate must not go negative when a download restarts. */
  private transferred = 0;
  private lastDraw = -Infinity;
  private finished = false;

  constructor(opts: ProgressBarOptions = {}) {
    this.label = opts.label ?? "";
    this.total = Math.max(0, opts.total ?? 0);
    this.unit = opts.unit ?? "it";
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.plainIntervalMs = opts.plainIntervalMs ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
    this.startedAt = this.now();
    // Plain mode: the first line only after one interval, so short jobs print just their summary line.
    if (!this.tty) this.lastDraw = this.startedAt;
  }

  /** Current count (after all update() calls). */
  get value(): number {
    return this.current;
  }

  /** Advance by n (may be negative, e.g. when a download restarts from zero). */
  update(n: number): void {
    if (this.finished) return;
    this.current = Math.max(0, this.current + n);
    if (n > 0) this.transferred += n;
    this.maybeDraw();
  }

  /** Count n units that were done before this run (e.g. the part of a resumed download) without them being in the rate. */
  skip(n: number): void {
    if (this.finished) return;
    this.current = Math.max(0, this.current + n);
    this.maybeDraw();
  }

  /** Grow or set the expected total while running (e.g. as file sizes become known). */
  setTotal(total: number): void {
    this.total = Math.max(0, total);
    this.maybeDraw();
  }

  /** Draw the final state and end the line; further calls are no-ops. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    const line = this.tty ? this.render() : this.summary();
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  /** The line as it would be drawn now (exposed for tests and for callers that log it themselves). */
  render(): string {
    const elapsed = (this.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.transferred / elapsed : 0;
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    if (this.total > 0) {
      const frac = Math.min(1, this.current / this.total);
      const filled = Math.round(frac * BAR_WIDTH);
      parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`);
      parts.push(`|${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}|`);
      parts.push(`${this.fmt(this.current)}/${this.fmt(this.total)}`);
    } else {
      parts.push(this.fmt(this.current));
    }
    parts.push(this.fmtRate(rate));
    if (this.total > 0 && !this.finished && rate > 0 && this.current < this.total) {
      parts.push(`eta ${formatDuration((this.total - this.current) / rate)}`);
    } else if (this.finished) {
      parts.push(formatDuration(elapsed));
    }
    return this.fit(parts.join(" "));
  }

  private summary(): string {
    const elapsed = (this.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.transferred / elapsed : 0;
    const head = this.label ? `${this.label}: ` : "";
    return `${head}${this.fmt(this.current)} in ${formatDuration(elapsed)} (${this.fmtRate(rate)})`;
  }

  private maybeDraw(): void {
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw < this.minIntervalMs) return;
      this.lastDraw = t;
      this.stream.write(`\r${this.render()}\x1b[K`);
    } else {
      if (t - this.lastDraw < this.plainIntervalMs) return;
      this.lastDraw = t;
      this.stream.write(`${this.render()}\n`);
    }
  }

  private fmt(n: number): string {
    return this.unit === "B" ? formatBytes(n) : `${Math.round(n)}`;
  }

  private fmtRate(rate: number): string {
    return this.unit === "B"
      ? `${formatBytes(rate)}/s`
      : `${rate.toFixed(rate >= 100 ? 0 : 1)} ${this.unit}/s`;
  }

  /** Keep a TTY line shorter than the terminal, or the `\r` redraw would wrap and scroll. */
  private fit(line: string): string {
    const cols = this.tty ? (this.stream.columns ?? 0) : 0;
    if (cols <= 10 || line.length < cols) return line;
    return `${line.slice(0, cols - 2)}…`;
  }
}

/**
 * Whether to show a bar: an explicit option wins, then `HF_HUB_DISABLE_PROGRESS_BARS` (huggingface_hub's
 * constants.py lets that env var override code, we only honour its "disable" side), then "is stderr a TTY".
 */
export function progressEnabled(
  option: boolean | undefined,
  stream: ProgressStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (option !== undefined) return option;
  const disabled = env.HF_HUB_DISABLE_PROGRESS_BARS;
  if (disabled !== undefined && ["1", "ON", "YES", "TRUE"].includes(disabled.toUpperCase())) return false;
  return Boolean(stream.isTTY);
}
