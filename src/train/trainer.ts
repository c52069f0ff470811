// The trainer: the recipe's loop (sentence-transformers' SentenceTransformerTrainer over the HF Trainer), read
// top to bottom — set-up, the training loop, evaluation and checkpoints, the end. Diagnostics (log lines, the
// JSONL log, the progress bar) are fenced off from the math in their own section at the bottom.
//
// ports transformers trainer.py _inner_training_loop (gradient accumulation groups, loss / current group size,
// clip → optimizer step → scheduler step, log / evaluate / save), _save_checkpoint / _rotate_checkpoints,
// _load_best_model; sentence_transformers trainer.py compute_loss (one forward per text column).
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AdamW,
  autocast,
  buildInfo,
  clipGradNorm,
  manualSeed,
  setTf32,
  tidy,
  type Tensor,
} from "../engine/index.ts";
import type { PairRecord } from "../data/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  MatryoshkaLoss,
  MultipleNegativesRankingLoss,
  type EmbeddingLoss,
  type Embedder,
} from "../losses/index.ts";
import type { InformationRetrievalEvaluator } from "../eval/ir-evaluator.ts";
import {
  greaterIsBetter,
  listEvaluatorMetricKeys,
  validateMetricForBestModel,
  withPrefix,
} from "../eval/metric-names.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import type { TrainingArguments } from "./args.ts";
import {
  latestCheckpoint,
  loadCheckpointState,
  removeStaleTemporaries,
  rotateCheckpoints,
  saveCheckpoint,
  type LogEntry,
  type TrainerState,
} from "./checkpoint.ts";
import {
  BatchCursor,
  LengthGroupedBatchSampler,
  NoDuplicatesBatchSampler,
  ShuffledBatchSampler,
  pairTexts,
  type BatchSampler,
  type SamplerState,
} from "./samplers.ts";
import { accumulationGroups, learningRateAt, trainingSteps, warmupSteps } from "./schedule.ts";
import {
  defaultFusedBudgetBytes,
  fusedAccumulationStep,
  useFusedAccumulation,
} from "./fused-accumulation.ts";

export interface TrainInputs {
  model: SentenceTransformer;
  train: readonly PairRecord[];
  evaluator?: InformationRetrievalEvaluator;
  args: TrainingArguments;
  /** Called with every log entry (training logs and evaluations). */
  onLog?: (entry: LogEntry) => void;
  /** Write progress lines to stderr (default true). */
  verbose?: boolean;
  /**
   * Ends the run once `globalStep` reaches this many optimizer steps, as if the process had stopped there: the
   * plan (epochs, total steps, hence the learning-rate schedule) stays that of the whole run, checkpoints due
   * up to that step are written, and the end-of-run work (loading the best model, the `train_runtime` log
   * entry) is skipped. Resuming from the last checkpoint then continues the same run. For time-boxed jobs and
   * for testing resume; default: run to the end.
   */
  stopAfterSteps?: number;
}

export interface TrainResult {
  globalStep: number;
  trainingLoss: number;
  bestMetric: number | null;
  bestCheckpoint: string | null;
  /** Metrics (eval_ keys) of the model the run ends with (the best one when loadBestModelAtEnd). */
  finalMetrics: Record<string, number>;
  logHistory: LogEntry[];
  seconds: number;
  /** True when `stopAfterSteps` ended the run before its planned last step. */
  stopped: boolean;
  /** The losses as sentence-transformers' model card lists them: names and `get_config_dict()`s. */
  losses: LossCard[];
}

export interface LossCard {
  name: string;
  config: Record<string, unknown>;
}

/** Runs the training described by `args` and leaves the trained (or best) weights in `model`. */
export function train(inputs: TrainInputs): TrainResult {
  const { model, evaluator, args } = inputs;

  // ---- 1. set-up ------------------------------------------------------------------------------------------
  // The inputs are checked before any work (or file): a metric_for_best_model typo must not silently disable
  // best-model selection, nor fail at the first evaluation.
  if (inputs.train.length === 0) throw new Error("train: the training set is empty");
  const stopAfter = inputs.stopAfterSteps ?? Infinity;
  if (!(stopAfter >= 1) || (stopAfter !== Infinity && !Number.isInteger(stopAfter)))
    throw new Error(`stopAfterSteps must be a positive integer, got ${inputs.stopAfterSteps}`);
  const bestKey = evaluator
    ? validateMetricForBestModel(args.metricForBestModel, evaluatorKeys(evaluator, model))
    : null;
  const higherIsBetter = args.greaterIsBetter ?? (bestKey ? greaterIsBetter(bestKey) : true);
  const log = new RunLog(args.outputDir, inputs.verbose ?? true, inputs.onLog);
  const t0 = performance.now();
  const onCuda = model.device.startsWith("cuda");
  const bf16 = args.bf16 && onCuda; // bf16 autocast is a CUDA feature here; the CPU trains in float32
  if (onCuda) setTf32(args.tf32);
  manualSeed(args.seed);
  model.packing = args.packing; // evaluation and encoding follow --packing too

  const loss = buildLoss(args, model.embeddingDim, log);
  const columns = textColumns(inputs.train, args.queryPrompt);
  const sampler = buildSampler(args, inputs.train, columns, model);
  const plan = trainingSteps({
    examples: inputs.train.length,
    batchSize: args.perDeviceTrainBatchSize,
    gradientAccumulationSteps: args.gradientAccumulationSteps,
    epochs: args.numTrainEpochs,
    maxSteps: args.maxSteps,
    batchesPerEpoch: sampler.length,
  });
  const warmup = warmupSteps({ steps: args.warmupSteps, ratio: args.warmupRatio }, plan.totalSteps);
  const optimizer = new AdamW(model.paramGroups(args.weightDecay), {
    lr: args.learningRate,
    betas: [args.adamBeta1, args.adamBeta2],
    eps: args.adamEpsilon,
    weightDecay: args.weightDecay,
  });
  const params = model.trainableParameters();
  const rngDevices = onCuda ? ["cpu", model.device] : ["cpu"];

  let state: TrainerState = {
    global_step: 0,
    epoch: 0,
    max_steps: plan.totalSteps,
    num_train_epochs: plan.epochs,
    train_batch_size: args.perDeviceTrainBatchSize,
    logging_steps: args.loggingSteps,
    eval_steps: args.evalStrategy === "steps" ? args.evalSteps : null,
    save_steps: args.saveStrategy === "steps" ? args.saveSteps : null,
    best_metric: null,
    best_global_step: null,
    best_model_checkpoint: null,
    log_history: [],
    ragtune_sampler: new BatchCursor(sampler).state(),
  };
  let cursor = new BatchCursor(sampler);
  removeStaleTemporaries(args.outputDir); // half-written checkpoints of killed runs
  const resumeDir = resolveResume(args);
  if (resumeDir) {
    model.loadWeightsFrom(resumeDir);
    state = loadCheckpointState(resumeDir, { model, optimizer, devices: rngDevices });
    cursor = BatchCursor.resume(sampler, state.ragtune_sampler as SamplerState);
    log.info(
      `resumed from ${resumeDir} at step ${state.global_step} (epoch ${cursor.position.epoch}, batch ${cursor.position.batch})`,
    );
  }
  log.info(
    `training ${inputs.train.length.toLocaleString("en-US")} pairs on ${model.device}${bf16 ? " (bf16 autocast)" : ""}: ` +
      `${plan.epochs} epochs × ${plan.stepsPerEpoch} steps = ${plan.totalSteps} optimizer steps ` +
      `(batch ${args.perDeviceTrainBatchSize} × accumulation ${args.gradientAccumulationSteps}, warmup ${warmup}, ${args.lrSchedulerType} schedule, lr ${args.learningRate})`,
  );

  // One micro-batch: forward every text column, the loss, backward scaled by 1/(group size). Returns the loss.
  const embedder: Embedder = {
    device: model.device,
    embed: (texts) => autocast(() => model.embed(texts, { packing: args.packing }), { enabled: bf16 }),
  };
  const microStep = (batchColumns: string[][], scale: number): number => {
    if (loss instanceof CachedMultipleNegativesRankingLoss)
      return loss.step(embedder, batchColumns, { gradScale: scale }).loss;
    return tidy(() => {
      const value: Tensor = autocast(
        () => (loss as EmbeddingLoss).lossFromEmbeddings(batchColumns.map((texts) => embedder.embed(texts))),
        { enabled: bf16 },
      ); // ()
      value.mul(scale).backward();
      return value.item();
    });
  };

  // Whole accumulation groups in one packed forward + one backward (src/train/fused-accumulation.ts).
  const fused =
    useFusedAccumulation(args.fusedAccumulation, model.device) &&
    !(loss instanceof CachedMultipleNegativesRankingLoss)
      ? {
          shape: model.encoderShape,
          elementBytes: bf16 ? 2 : 4,
          budgetBytes: onCuda ? defaultFusedBudgetBytes() : Infinity,
          countTokens: (t: string) => Math.min(model.countTokens(t), model.maxSeqLength),
        }
      : null;
  const fusedGroup = (options: NonNullable<typeof fused>, groupSize: number): number => {
    const group = Array.from({ length: groupSize }, () => {
      const batch = cursor.next()!;
      return columns.map((col) => batch.map((i) => col[i]!));
    });
    return autocast(() => fusedAccumulationStep(embedder, loss as EmbeddingLoss, group, options).loss, {
      enabled: bf16,
    }); // the group's mean loss
  };
  if (args.fusedAccumulation === "on" && loss instanceof CachedMultipleNegativesRankingLoss)
    log.info(
      "note: --fused-accumulation on is ignored with --loss cached-mnrl (GradCache runs its own passes)",
    );

  // ---- 2. the training loop -----------------------------------------------------------------------------------
  model.train();
  let windowLoss = 0;
  let windowSteps = 0;
  let totalLoss = 0;
  let stepsThisRun = 0;
  let lastMetrics: Record<string, number> = {};
  let stopped = false;
  const result = (stopped: boolean, trainingLoss: number): TrainResult => ({
    globalStep: state.global_step,
    trainingLoss,
    bestMetric: state.best_metric,
    bestCheckpoint: state.best_model_checkpoint,
    finalMetrics: lastMetrics,
    logHistory: state.log_history,
    seconds: (performance.now() - t0) / 1000,
    stopped,
    losses: lossCards(loss),
  });
  const timer = log.stepTimer(plan.totalSteps, state.global_step);
  while (!stopped && state.global_step < plan.totalSteps && cursor.position.epoch < plan.epochs) {
    const epochBatches = cursor.epochBatches();
    const groups = accumulationGroups(epochBatches.length, args.gradientAccumulationSteps);
    let consumed = 0;
    for (const groupSize of groups) {
      if (state.global_step >= plan.totalSteps) break;
      if (consumed < cursor.position.batch) {
        consumed += groupSize; // done before the checkpoint this run resumed from
        continue;
      }
      optimizer.lr = learningRateAt(state.global_step, args.learningRate, args.lrSchedulerType, {
        warmupSteps: warmup,
        totalSteps: plan.totalSteps,
      });
      let stepLoss = 0;
      if (fused) stepLoss = fusedGroup(fused, groupSize);
      for (let b = 0; !fused && b < groupSize; b++) {
        const batch = cursor.next()!;
        stepLoss +=
          microStep(
            columns.map((col) => batch.map((i) => col[i]!)),
            1 / groupSize,
          ) / groupSize;
      }
      consumed += groupSize;
      const gradNorm = clipGradNorm(params, args.maxGradNorm);
      optimizer.step();
      optimizer.zeroGrad();
      state.global_step++;
      state.epoch = cursor.position.epoch + cursor.position.batch / epochBatches.length;
      state.ragtune_sampler = cursor.state();
      windowLoss += stepLoss;
      windowSteps++;
      totalLoss += stepLoss;
      stepsThisRun++;
      timer.step();

      // ---- 3. logging, evaluation and checkpoints on step boundaries ------------------------------------------
      if (state.global_step % args.loggingSteps === 0) {
        const nextLr = learningRateAt(state.global_step, args.learningRate, args.lrSchedulerType, {
          warmupSteps: warmup,
          totalSteps: plan.totalSteps,
        });
        record(log, state, {
          loss: windowLoss / windowSteps,
          grad_norm: gradNorm,
          learning_rate: nextLr,
          epoch: round(state.epoch),
          step: state.global_step,
        });
        log.stepLine(state.global_step, plan.totalSteps, windowLoss / windowSteps, nextLr, gradNorm, timer);
        windowLoss = 0;
        windowSteps = 0;
      }
      // The run's last step ends its epoch even when maxSteps stops it mid-epoch: the HF Trainer leaves the
      // epoch loop, then runs on_epoch_end (evaluate and save with the "epoch" strategies); with the "steps"
      // save strategy it saves at the last step too (DefaultFlowCallback.on_step_end).
      const lastStep = state.global_step >= plan.totalSteps;
      const epochEnd = cursor.remaining() === 0 || lastStep;
      const evalNow =
        evaluator &&
        (args.evalStrategy === "steps"
          ? state.global_step % args.evalSteps === 0
          : args.evalStrategy === "epoch" && epochEnd);
      if (evalNow)
        lastMetrics = evaluateAndTrack(evaluator!, model, state, log, bestKey, higherIsBetter, args);
      const saveNow =
        args.saveStrategy === "steps"
          ? state.global_step % args.saveSteps === 0 || lastStep
          : args.saveStrategy === "epoch" && epochEnd;
      if (saveNow) checkpoint(model, optimizer, state, args, rngDevices, log);
      if (state.global_step >= stopAfter && !lastStep) {
        stopped = true;
        log.info(`stopping after step ${state.global_step} of ${plan.totalSteps} (stopAfterSteps)`);
        break;
      }
    }
    if (cursor.remaining() === 0) cursor.nextEpoch();
  }
  timer.done();
  if (stopped) {
    model.eval();
    optimizer.dispose();
    return result(true, stepsThisRun > 0 ? totalLoss / stepsThisRun : NaN);
  }

  // ---- 4. the end: best model, final save ----------------------------------------------------------------------
  if (args.loadBestModelAtEnd && state.best_model_checkpoint && existsSync(state.best_model_checkpoint)) {
    log.info(
      `loading the best model from ${state.best_model_checkpoint} (${bestKey} = ${state.best_metric})`,
    );
    model.loadWeightsFrom(state.best_model_checkpoint);
    const bestEval = [...state.log_history]
      .reverse()
      .find((e) => e.step === state.best_global_step && bestKey! in e);
    if (bestEval) lastMetrics = pickMetrics(bestEval);
  }
  model.eval();
  const trainingLoss = stepsThisRun > 0 ? totalLoss / stepsThisRun : NaN;
  record(log, state, {
    train_runtime: round((performance.now() - t0) / 1000),
    train_loss: trainingLoss,
    epoch: round(state.epoch),
    step: state.global_step,
  });
  optimizer.dispose();
  return result(false, trainingLoss);
}

// ---------------------------------------------------------------------------------------------------------
// Pieces of the set-up

/** MatryoshkaLoss(MultipleNegativesRankingLoss) — or its cached (GradCache) form with a mini-batch size. */
function buildLoss(
  args: TrainingArguments,
  embeddingDim: number,
  log: RunLog,
): EmbeddingLoss | CachedMultipleNegativesRankingLoss {
  const dims = args.matryoshkaDims;
  for (const d of dims) {
    if (d > embeddingDim)
      throw new Error(`matryoshkaDims: ${d} is larger than the model's embedding size ${embeddingDim}`);
  }
  const mnrl = new MultipleNegativesRankingLoss({ scale: args.scale, symmetric: args.symmetric });
  const matryoshka = new MatryoshkaLoss(
    mnrl,
    dims,
    args.matryoshkaWeights ? { weights: args.matryoshkaWeights } : {},
  );
  for (const w of matryoshka.checkEmbeddingDim(embeddingDim)) log.info(`warning: ${w}`);
  if (args.loss === "cached-mnrl")
    return new CachedMultipleNegativesRankingLoss({ miniBatchSize: args.miniBatchSize, loss: matryoshka });
  return matryoshka;
}

/**
 * The model card's loss entries, from the losses themselves (ST's card lists the outer MatryoshkaLoss, then the
 * loss it wraps): MatryoshkaLoss + MultipleNegatives(Symmetric)RankingLoss, or their cached form.
 */
function lossCards(loss: EmbeddingLoss | CachedMultipleNegativesRankingLoss): LossCard[] {
  const cached = loss instanceof CachedMultipleNegativesRankingLoss ? loss : null;
  const matryoshka = (cached ? cached.loss : loss) as MatryoshkaLoss;
  const inner = matryoshka.inner;
  return [
    { name: matryoshka.name, config: (cached ?? matryoshka).configDict() },
    cached
      ? {
          name: `Cached${inner.name}`,
          config: { ...inner.configDict(), mini_batch_size: cached.miniBatchSize },
        }
      : { name: inner.name, config: inner.configDict() },
  ];
}

/** Text columns of the training set: anchors (with the query prompt), positives, then each negative column. */
function textColumns(records: readonly PairRecord[], queryPrompt: string | null): string[][] {
  const negatives = records[0]!.negatives?.length ?? 0;
  records.forEach((r, i) => {
    if ((r.negatives?.length ?? 0) !== negatives) {
      throw new Error(
        `train: row ${i} (id ${r.id}) has ${r.negatives?.length ?? 0} negatives, the first row ${negatives}: every row needs the same columns`,
      );
    }
  });
  const cols: string[][] = [
    records.map((r) => (queryPrompt ? queryPrompt + r.anchor : r.anchor)),
    records.map((r) => r.positive),
  ];
  for (let k = 0; k < negatives; k++) cols.push(records.map((r) => r.negatives![k]!));
  return cols;
}

function buildSampler(
  args: TrainingArguments,
  records: readonly PairRecord[],
  columns: string[][],
  model: SentenceTransformer,
): BatchSampler {
  const opts = { batchSize: args.perDeviceTrainBatchSize, seed: args.seed };
  const texts = pairTexts(records as PairRecord[]);
  if (args.lengthGroupedBatches > 0) {
    // The length that decides a pair's padding: tokens of its longest text.
    const lengths = records.map((_, i) =>
      Math.max(...columns.map((c) => Math.min(model.countTokens(c[i]!), model.maxSeqLength))),
    );
    return new LengthGroupedBatchSampler(lengths, {
      ...opts,
      groupBatches: args.lengthGroupedBatches,
      ...(args.batchSampler === "no_duplicates" ? { texts } : {}),
    });
  }
  return args.batchSampler === "no_duplicates"
    ? new NoDuplicatesBatchSampler(texts, opts)
    : new ShuffledBatchSampler(records.length, opts);
}

function evaluatorKeys(evaluator: InformationRetrievalEvaluator, model: SentenceTransformer): string[] {
  const names = evaluator.namesFor(model.embeddingDim).map((n) => n.name);
  return listEvaluatorMetricKeys({
    names,
    scoreFunctions: evaluator.scoreFunctions,
    config: evaluator.config,
  });
}

function resolveResume(args: TrainingArguments): string | null {
  if (!args.resumeFromCheckpoint) return null;
  if (args.resumeFromCheckpoint === "latest") {
    const latest = latestCheckpoint(args.outputDir);
    if (!latest) throw new Error(`resumeFromCheckpoint "latest": no checkpoint in ${args.outputDir}`);
    return latest.dir;
  }
  if (!existsSync(args.resumeFromCheckpoint))
    throw new Error(`resumeFromCheckpoint: ${args.resumeFromCheckpoint} does not exist`);
  return args.resumeFromCheckpoint;
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation and checkpoints

function evaluateAndTrack(
  evaluator: InformationRetrievalEvaluator,
  model: SentenceTransformer,
  state: TrainerState,
  log: RunLog,
  bestKey: string | null,
  higherIsBetter: boolean,
  args: TrainingArguments,
): Record<string, number> {
  model.eval();
  const result = evaluator.evaluate(model);
  model.train();
  const metrics = withPrefix("eval", result.metrics);
  record(log, state, {
    ...metrics,
    eval_runtime: round(result.seconds.encode + result.seconds.score),
    epoch: round(state.epoch),
    step: state.global_step,
  });
  log.evalLine(metrics, args.matryoshkaDims);
  if (bestKey) {
    const value = metrics[bestKey]!;
    const better =
      state.best_metric === null || (higherIsBetter ? value > state.best_metric : value < state.best_metric);
    if (better) {
      state.best_metric = value;
      state.best_global_step = state.global_step;
      state.best_model_checkpoint = join(args.outputDir, `checkpoint-${state.global_step}`);
    }
  }
  return metrics;
}

function checkpoint(
  model: SentenceTransformer,
  optimizer: AdamW,
  state: TrainerState,
  args: TrainingArguments,
  devices: string[],
  log: RunLog,
): void {
  const saved = saveCheckpoint(args.outputDir, state.global_step, { model, optimizer, state, args, devices });
  const deleted = rotateCheckpoints(args.outputDir, args.saveTotalLimit, state.best_model_checkpoint);
  log.info(`saved ${saved.dir}${deleted.length ? `; deleted ${deleted.join(", ")}` : ""}`);
}

function pickMetrics(entry: LogEntry): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(entry)) if (k.startsWith("eval_") && typeof v === "number") out[k] = v;
  return out;
}

function record(log: RunLog, state: TrainerState, entry: LogEntry): void {
  state.log_history.push(entry);
  log.write(entry);
}

const round = (x: number): number => Math.round(x * 1e4) / 1e4;

// ---------------------------------------------------------------------------------------------------------
// Diagnostics: log lines, the JSONL training log, step timing. Nothing here changes the training.

class RunLog {
  private readonly jsonl: string;

  constructor(
    outputDir: string,
    private readonly verbose: boolean,
    private readonly onLog?: (entry: LogEntry) => void,
  ) {
    mkdirSync(outputDir, { recursive: true });
    this.jsonl = join(outputDir, "training_log.jsonl");
    if (!existsSync(this.jsonl)) writeFileSync(this.jsonl, "");
    this.info(`libtorch ${buildInfo().torchVersion}; log: ${this.jsonl}`);
  }

  info(line: string): void {
    if (this.verbose) process.stderr.write(`${line}\n`);
  }

  write(entry: LogEntry): void {
    appendFileSync(this.jsonl, JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n");
    this.onLog?.(entry);
  }

  /** `step 12/52 | loss 0.4321 | lr 2.0e-05 | norm 0.93 | 312 ms/step | eta 2m10s` */
  stepLine(step: number, total: number, loss: number, lr: number, norm: number, timer: StepTimer): void {
    this.info(
      `step ${step}/${total} | loss ${loss.toFixed(4)} | lr ${lr.toExponential(1)} | norm ${norm.toFixed(2)} | ` +
        `${timer.msPerStep().toFixed(0)} ms/step | eta ${formatSeconds(timer.etaSeconds())}`,
    );
  }

  evalLine(metrics: Record<string, number>, dims: readonly number[]): void {
    const parts = dims.map((d) => {
      const v = metrics[`eval_dim_${d}_cosine_ndcg@10`];
      return v === undefined ? null : `${d}: ${v.toFixed(4)}`;
    });
    this.info(`eval nDCG@10 | ${parts.filter(Boolean).join(" | ")}`);
  }

  stepTimer(total: number, start: number): StepTimer {
    return new StepTimer(total, start);
  }
}

class StepTimer {
  private readonly t0 = performance.now();
  private steps = 0;

  constructor(
    private readonly total: number,
    private done_: number,
  ) {}

  step(): void {
    this.steps++;
    this.done_++;
  }

  msPerStep(): number {
    return this.steps ? (performance.now() - this.t0) / this.steps : 0;
  }

  etaSeconds(): number {
    return ((this.total - this.done_) * this.msPerStep()) / 1000;
  }

  done(): void {}
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}
