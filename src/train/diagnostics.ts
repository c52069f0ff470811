// The trainer's diagnostics: log lines, the JSONL training log, step timing, and the collapse check at
// evaluations. Nothing here changes the training.
import { join } from "node:path";
import { buildInfo } from "../engine/index.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import { appendFileNoFollow, formatDuration } from "../util/index.ts";
import type { LogEntry } from "./checkpoint.ts";
import { LOG_FILE } from "./output-dir.ts";

export class RunLog {
  private readonly jsonl: string;

  constructor(
    outputDir: string,
    private readonly verbose: boolean,
    private readonly onLog?: (entry: LogEntry) => void,
    /** False on data-parallel ranks other than 0: rank 0 alone writes training_log.jsonl. */
    private readonly writeFile = true,
  ) {
    // openRunDir started (fresh run) or truncated (resume) the log: it holds this run's entries only.
    this.jsonl = join(outputDir, LOG_FILE);
    this.info(`libtorch ${buildInfo().torchVersion}; log: ${this.jsonl}`);
  }

  info(line: string): void {
    if (this.verbose) process.stderr.write(`${line}\n`);
  }

  write(entry: LogEntry): void {
    if (this.writeFile)
      appendFileNoFollow(this.jsonl, JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n");
    this.onLog?.(entry);
  }

  /** `step 12/52 | loss 0.4321 | lr 2.0e-05 | norm 0.93 | 312 ms/step | eta 2m10s` */
  stepLine(step: number, total: number, loss: number, lr: number, norm: number, timer: StepTimer): void {
    this.info(
      `step ${step}/${total} | loss ${loss.toFixed(4)} | lr ${lr.toExponential(1)} | norm ${norm.toFixed(2)} | ` +
        `${timer.msPerStep().toFixed(0)} ms/step | eta ${formatDuration(timer.etaSeconds())}`,
    );
  }

  evalLine(metrics: Record<string, number>, dims: readonly number[]): void {
    const parts = dims.map((d) => {
      const v = metrics[`eval_dim_${d}_cosine_ndcg@10`];
      return v === undefined ? null : `${d}: ${v.toFixed(4)}`;
    });
    this.info(`eval nDCG@10 | ${parts.filter(Boolean).join(" | ")}`);
  }

  /** Times the optimizer steps; after the first one it prints the estimated training time of the run. */
  stepTimer(total: number, start: number): StepTimer {
    return new StepTimer(total, start, (seconds, remaining) =>
      this.info(
        `first step took ${formatDuration(seconds)}: the ${remaining} remaining steps should take about ` +
          `${formatDuration(seconds * remaining)} (evaluations and checkpoints not included)`,
      ),
    );
  }
}

export class StepTimer {
  private readonly t0 = performance.now();
  private steps = 0;

  constructor(
    private readonly total: number,
    private done_: number,
    private readonly onFirstStep?: (seconds: number, remaining: number) => void,
  ) {}

  step(): void {
    this.steps++;
    this.done_++;
    if (this.steps === 1 && this.done_ < this.total)
      this.onFirstStep?.((performance.now() - this.t0) / 1000, this.total - this.done_);
  }

  msPerStep(): number {
    return this.steps ? (performance.now() - this.t0) / this.steps : 0;
  }

  etaSeconds(): number {
    return ((this.total - this.done_) * this.msPerStep()) / 1000;
  }

  done(): void {}
}

/**
 * A warning when the model maps all texts to nearly one vector (a collapsed model scores near-random retrieval yet
 * can still be the "best" checkpoint). Mean pairwise cosine over up to 32 corpus texts, evenly spaced: ≥ 0.99 is
 * collapse (a trained retriever's unrelated passages sit far lower). Costs one small encode per evaluation.
 */
export function collapseWarning(model: SentenceTransformer, corpus: readonly string[]): string | null {
  const n = Math.min(32, corpus.length);
  if (n < 2) return null;
  const texts = Array.from({ length: n }, (_, i) => corpus[Math.floor((i * corpus.length) / n)]!);
  const { data, dim } = model.encode(texts, { batchSize: n, normalize: true });
  let sum = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += data[i * dim + k]! * data[j * dim + k]!;
      sum += dot;
    }
  const mean = sum / ((n * (n - 1)) / 2);
  if (!Number.isFinite(mean)) return `the embeddings of ${n} corpus texts are not finite (NaN/Inf weights?)`;
  if (mean < 0.99) return null;
  return (
    `the embeddings have collapsed: mean pairwise cosine ${mean.toFixed(4)} over ${n} corpus texts ` +
    `(all texts map to nearly one vector; retrieval metrics are meaningless). Lower the learning rate or check the data`
  );
}
