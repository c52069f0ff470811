// The trainer: the recipe's loop (sentence-transformers' SentenceTransformerTrainer over the HF Trainer), read
// top to bottom — `train()` is the loop; its phases follow: (1) plan: sampler, the step plan from the sampler's
// real batches, schedule, optimizer, resume; (2) one optimizer step over an accumulation group: micro-batches,
// non-finite checks, clipping, the update; (3) after a step: log, evaluate, save; the end of the run. The output
// folder (lock, run id, what a fresh run or a resume may find there) is output-dir.ts; log lines, the JSONL log
// and the collapse check are diagnostics.ts.
//
// Where ragtune is stricter than the HF Trainer: the step plan counts real batches (every row once per epoch); no
// batch has fewer than 2 pairs (MNRL has no negative otherwise); a NaN/Inf loss or gradient norm stops the run
// before the update (HF trains on; optionally skipped and counted, skipNonfiniteSteps); maxGradNorm 0 or null is
// no clipping as in HF, but the norm is still logged.
//
// ports transformers trainer.py _inner_training_loop (gradient accumulation groups, loss / current group size,
// clip → optimizer step → scheduler step, log / evaluate / save), _save_checkpoint / _rotate_checkpoints,
// _load_best_model; sentence_transformers trainer.py compute_loss (one forward per text column).
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  AdamW,
  autocast,
  clipGradNorm,
  gradNorm as totalGradNorm,
  manualSeed,
  setTf32,
  tidy,
  type Tensor,
} from "../engine/index.ts";
import type { PairRecord } from "../data/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  GISTEmbedLoss,
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
import type { ProcessGroup } from "../distributed/index.ts";
import { isGistLoss, type TrainingArguments } from "./args.ts";
import {
  checkpointRunId,
  listCheckpoints,
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
} from "./samplers.ts";
import { collapseWarning, RunLog, type StepTimer } from "./diagnostics.ts";
import { followRunDir, openRunDir, type RunDir } from "./output-dir.ts";
import {
  EvenShardSampler,
  gatherPeerRngStates,
  globalBatchHint,
  shardOf,
  syncStep,
} from "./data-parallel.ts";
import { guideContext, guideOf } from "./gist-guide.ts";
import {
  accumulationGroups,
  learningRateAt,
  planSteps,
  warmupSteps,
  type TrainingSteps,
} from "./schedule.ts";
import {
  defaultFusedBudgetBytes,
  fusedAccumulationStep,
  useFusedAccumulation,
  type FusedStepOptions,
  type MicroBatch,
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
  /**
   * The output folder, already locked and checked by the caller (`openRunDir`; the CLI holds it over the baseline
   * evaluation and the final save too). Default: train() opens and releases it itself.
   */
  run?: RunDir;
  /** Called with the row indices of every micro-batch trained (diagnostics and tests); a rank's own shard. */
  onMicroBatch?: (rows: readonly number[]) => void;
  /**
   * Data-parallel training (src/train/data-parallel.ts): every rank of the group calls train() with the same
   * arguments and data; `perDeviceTrainBatchSize` is per rank, so a global batch holds batch × world size pairs.
   * Rank 0 alone takes the folder (`run` is only for rank 0), logs, evaluates and saves; the caller destroys the
   * group.
   */
  processGroup?: ProcessGroup;
  /**
   * The guide model of --loss gist / cached-gist (args.guideModel names it), on the trained model's device; it
   * only embeds (no gradient, never updated). May be another instance of the base model. Required by those losses.
   */
  guide?: SentenceTransformer;
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
  /** Optimizer steps skipped for a non-finite loss or gradient norm (skipNonfiniteSteps), over the whole run. */
  nonfiniteStepsSkipped: number;
  /** Warnings raised during training (collapsed embeddings at an evaluation). */
  warnings: string[];
}

export interface LossCard {
  name: string;
  config: Record<string, unknown>;
}

/** Runs the training described by `args` and leaves the trained (or best) weights in `model`. */
export function train(inputs: TrainInputs): TrainResult {
  // The inputs are checked before any work (or file): a metric_for_best_model typo must not silently disable
  // best-model selection, nor fail at the first evaluation.
  const bestKey = checkInputs(inputs);
  const pg = inputs.processGroup ?? null;
  const folder = {
    resumeFromCheckpoint: inputs.args.resumeFromCheckpoint,
    overwriteOutputDir: inputs.args.overwriteOutputDir,
  };
  const main = !pg || pg.isMain;
  if (!main && inputs.run)
    throw new Error(`train: rank ${pg!.rank} was given the output folder; only rank 0 takes it`);
  const owned = main && !inputs.run;
  const ownRun = main ? (inputs.run ?? openRunDir(inputs.args.outputDir, folder)) : null;
  // The other ranks read the folder (the checkpoint to resume) only once rank 0 has locked and prepared it.
  pg?.barrier();
  const run = ownRun ?? followRunDir(inputs.args.outputDir, folder);
  try {
    const t = plan(inputs, run, bestKey); // sampler, real step plan, schedule, optimizer, resume
    t.model.train();
    let stopped = false;
    while (!stopped && t.state.global_step < t.steps.totalSteps && t.cursor.position.epoch < t.steps.epochs) {
      const groups = accumulationGroups(t.cursor.epochBatches().length, t.args.gradientAccumulationSteps);
      let consumed = 0;
      for (const groupSize of groups) {
        if (t.state.global_step >= t.steps.totalSteps) break;
        consumed += groupSize;
        if (consumed <= t.cursor.position.batch) continue; // done before the checkpoint this run resumed from
        const outcome = optimizerStep(t, groupSize);
        stopped = afterStep(t, outcome); // log / evaluate / save
        if (stopped) break;
      }
      if (t.cursor.remaining() === 0) t.cursor.nextEpoch();
    }
    return finish(t, stopped);
  } finally {
    if (owned) run.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 1: the plan — sampler, the real step plan, schedule, optimizer, resume

/** Everything one run needs, built once; the loop changes only `state`, `cursor`, `totals` and `lastMetrics`. */
interface Training {
  model: SentenceTransformer;
  evaluator: InformationRetrievalEvaluator | undefined;
  args: TrainingArguments;
  run: RunDir;
  /** Data parallel: the group; null for one process. Rank 0 (or the only process) logs, evaluates and saves. */
  pg: ProcessGroup | null;
  main: boolean;
  log: RunLog;
  loss: EmbeddingLoss | CachedMultipleNegativesRankingLoss;
  embedder: Embedder;
  /** The guide model of a gist loss (null otherwise): embeds each micro-batch's columns for the loss's masks. */
  guide: SentenceTransformer | null;
  /** Set when whole accumulation groups run as one pass (fused accumulation). */
  fused: FusedStepOptions | null;
  bf16: boolean;
  columns: string[][];
  steps: TrainingSteps;
  warmup: number;
  optimizer: AdamW;
  params: Tensor[];
  rngDevices: string[];
  bestKey: string | null;
  higherIsBetter: boolean;
  stopAfter: number;
  onMicroBatch: ((rows: readonly number[]) => void) | undefined;
  t0: number;
  timer: StepTimer;
  state: TrainerState;
  cursor: BatchCursor;
  totals: { windowLoss: number; windowSteps: number; totalLoss: number; steps: number };
  lastMetrics: Record<string, number>;
  warnings: string[];
}

/** Checks the inputs; returns the evaluator's key of metricForBestModel (null without an evaluator). */
function checkInputs(inputs: TrainInputs): string | null {
  if (inputs.train.length === 0) throw new Error("train: the training set is empty");
  if (inputs.train.length < 2)
    throw new Error(
      "train: the training set has 1 pair; MultipleNegativesRankingLoss takes its negatives from the other pairs of a batch and needs at least 2",
    );
  const stopAfter = inputs.stopAfterSteps ?? Infinity;
  if (!(stopAfter >= 1) || (stopAfter !== Infinity && !Number.isInteger(stopAfter)))
    throw new Error(`stopAfterSteps must be a positive integer, got ${inputs.stopAfterSteps}`);
  const { evaluator, model, args } = inputs;
  return evaluator
    ? validateMetricForBestModel(args.metricForBestModel, evaluatorKeys(evaluator, model))
    : null;
}

function plan(inputs: TrainInputs, run: RunDir, bestKey: string | null): Training {
  const { model, evaluator, args } = inputs;
  const pg = inputs.processGroup ?? null;
  const world = pg?.worldSize ?? 1;
  const main = !pg || pg.isMain;
  // Ranks other than 0 neither print nor write the log (rank 0 logs the mean loss over ranks).
  const log = new RunLog(run.dir, main && (inputs.verbose ?? true), main ? inputs.onLog : undefined, main);
  for (const note of run.notes) log.info(note);
  const t0 = performance.now();
  const onCuda = model.device.startsWith("cuda");
  const bf16 = args.bf16 && onCuda; // bf16 autocast is a CUDA feature here; the CPU trains in float32
  if (onCuda) setTf32(args.tf32);
  manualSeed(args.seed);
  model.packing = args.packing; // evaluation and encoding follow --packing too

  const warnings: string[] = [];
  const loss = buildLoss(args, model.embeddingDim, log, pg, warnings);
  const columns = textColumns(inputs.train, args.queryPrompt, args.corpusPrompt);
  // The sampler makes global batches (per-device × world size: no-duplicates holds across ranks), trimmed so
  // that they split evenly; every rank draws the same ones from the same seed and trains its shard.
  const globalBatch = args.perDeviceTrainBatchSize * world;
  const globalSampler = buildSampler(args, globalBatch, inputs.train, columns, model);
  const sampler = pg ? new EvenShardSampler(globalSampler, world) : globalSampler;
  const steps = planSteps({
    batchCount: (epoch) => sampler.batches(epoch).length,
    gradientAccumulationSteps: args.gradientAccumulationSteps,
    epochs: args.numTrainEpochs,
    maxSteps: args.maxSteps,
  });
  const warmup = warmupSteps({ steps: args.warmupSteps, ratio: args.warmupRatio }, steps.totalSteps);
  const missing = inputs.train.length - new Set(globalSampler.batches(0).flat()).size;
  if (missing > 0) {
    // mergeSingletons: a row sharing a text with every batch cannot join one without a false negative.
    const warning =
      `${missing} of ${inputs.train.length} rows are in no batch of epoch 0: each shares a text with every batch ` +
      `(no-duplicates rule), so it would be its own false negative; deduplicate the data or use a larger batch`;
    warnings.push(warning);
    log.info(`warning: ${warning}`);
  }
  if (pg) {
    // A misconfigured rank (other data, seed or batch) fails here, on every rank, instead of training out of step.
    pg.assertSameOnRanks("(training pairs, seed, global batch, optimizer steps)", [
      inputs.train.length,
      args.seed,
      globalBatch,
      steps.totalSteps,
    ]);
    const trimmed = (sampler as EvenShardSampler).droppedRows(0);
    if (trimmed > 0)
      log.info(
        `note: ${trimmed} rows of epoch 0 are left out so that every global batch splits evenly over ${world} ranks ` +
          `(the trailing batch is trimmed to a multiple of ${world}, or dropped below 2 pairs per rank)`,
      );
    // DistributedDataParallel's start: every rank from rank 0's weights (new layers drawn from other seeds too).
    pg.broadcastParameters(model.trainableParameters(), 0);
  }
  const optimizer = new AdamW(model.paramGroups(args.weightDecay), {
    lr: args.learningRate,
    betas: [args.adamBeta1, args.adamBeta2],
    eps: args.adamEpsilon,
    weightDecay: args.weightDecay,
  });
  const rngDevices = onCuda ? ["cpu", model.device] : ["cpu"];

  let state: TrainerState = {
    global_step: 0,
    epoch: 0,
    max_steps: steps.totalSteps,
    num_train_epochs: steps.epochs,
    train_batch_size: args.perDeviceTrainBatchSize,
    logging_steps: args.loggingSteps,
    eval_steps: args.evalStrategy === "steps" ? args.evalSteps : null,
    save_steps: args.saveStrategy === "steps" ? args.saveSteps : null,
    best_metric: null,
    best_global_step: null,
    best_model_checkpoint: null,
    log_history: [],
    ragtune_sampler: new BatchCursor(sampler).state(),
    ragtune_run_id: run.runId,
    ragtune_world_size: world,
  };
  let cursor = new BatchCursor(sampler);
  if (main) removeStaleTemporaries(args.outputDir); // half-written checkpoints of killed runs
  if (run.resumeDir) {
    model.loadWeightsFrom(run.resumeDir);
    state = loadCheckpointState(run.resumeDir, {
      model,
      optimizer,
      devices: rngDevices,
      rank: pg?.rank ?? 0,
      worldSize: world,
    });
    state.ragtune_run_id = run.runId;
    const savedWorld = state.ragtune_world_size ?? 1;
    try {
      cursor = BatchCursor.resume(sampler, state.ragtune_sampler);
    } catch (e) {
      throw new Error(
        `${join(run.resumeDir, "trainer_state.json")}: ragtune_sampler: ${(e as Error).message}` +
          globalBatchHint(state.ragtune_sampler.sampler.batchSize, savedWorld, globalBatch, world),
      );
    }
    if (savedWorld !== world)
      log.info(
        `note: the checkpoint was written by ${savedWorld} process(es), this run has ${world}: the remaining global ` +
          `batches and steps are the same (the data order is global), but every rank restarts from rank 0's random ` +
          `state, so dropout draws differ from an uninterrupted run (as HF Trainer resuming at another world size)`,
      );
    // From here on the checkpoints describe this run's layout.
    state.train_batch_size = args.perDeviceTrainBatchSize;
    state.ragtune_world_size = world;
    log.info(
      `resumed from ${run.resumeDir} at step ${state.global_step} (epoch ${cursor.position.epoch}, batch ${cursor.position.batch})`,
    );
  }
  log.info(
    `training ${inputs.train.length.toLocaleString("en-US")} pairs on ${model.device}${bf16 ? " (bf16 autocast)" : ""}: ` +
      `${steps.epochs} epochs × ${steps.stepsPerEpoch} steps → ${steps.totalSteps} optimizer steps ` +
      `(batch ${args.perDeviceTrainBatchSize}${pg ? ` × ${world} ranks` : ""} × accumulation ${args.gradientAccumulationSteps}, warmup ${warmup}, ${args.lrSchedulerType} schedule, lr ${args.learningRate}` +
      `${clipping(args) ? `, clip ${args.maxGradNorm}` : ", no clipping"})`,
  );
  return {
    model,
    evaluator,
    args,
    run,
    pg,
    main,
    log,
    loss,
    embedder: embedderOf(model, bf16, args.packing),
    guide: guideOf(inputs),
    fused: fusedOptionsOf(args, model, loss, bf16, log),
    bf16,
    columns,
    steps,
    warmup,
    optimizer,
    params: model.trainableParameters(),
    rngDevices,
    bestKey,
    higherIsBetter: args.greaterIsBetter ?? (bestKey ? greaterIsBetter(bestKey) : true),
    stopAfter: inputs.stopAfterSteps ?? Infinity,
    onMicroBatch: inputs.onMicroBatch,
    t0,
    timer: log.stepTimer(steps.totalSteps, state.global_step),
    state,
    cursor,
    totals: { windowLoss: 0, windowSteps: 0, totalLoss: 0, steps: 0 },
    lastMetrics: {},
    warnings,
  };
}

/**
 * The one place texts become embeddings in training: tokenize, forward (bf16 autocast on CUDA). A packing
 * embedder replaces this function's body.
 */
function embedderOf(model: SentenceTransformer, bf16: boolean, packing: boolean): Embedder {
  return {
    device: model.device,
    embed: (texts) => autocast(() => model.embed(texts, { packing }), { enabled: bf16 }),
  };
}

/**
 * Whole accumulation groups in one packed forward + one backward (src/train/fused-accumulation.ts), when
 * --fused-accumulation says so (auto: CUDA); never with the cached loss, which runs its own passes.
 */
function fusedOptionsOf(
  args: TrainingArguments,
  model: SentenceTransformer,
  loss: EmbeddingLoss | CachedMultipleNegativesRankingLoss,
  bf16: boolean,
  log: RunLog,
): FusedStepOptions | null {
  const cached = loss instanceof CachedMultipleNegativesRankingLoss;
  // GIST needs the guide's embeddings of each micro-batch, which the fused pass (one loss call per micro-batch
  // inside fusedAccumulationStep, no context) does not carry: a gist loss takes the per-micro-batch path.
  const gist = isGistLoss(args.loss);
  if (args.fusedAccumulation === "on" && (cached || gist))
    log.info(
      `note: --fused-accumulation on is ignored with --loss ${args.loss} (` +
        (cached ? "GradCache runs its own passes" : "the guide embeds each micro-batch separately") +
        ")",
    );
  if (cached || gist || !useFusedAccumulation(args.fusedAccumulation, model.device)) return null;
  return {
    shape: model.encoderShape,
    elementBytes: bf16 ? 2 : 4,
    budgetBytes: model.device.startsWith("cuda") ? defaultFusedBudgetBytes() : Infinity,
    countTokens: (text: string) => Math.min(model.countTokens(text), model.maxSeqLength),
  };
}

const clipping = (args: TrainingArguments): boolean => args.maxGradNorm !== null && args.maxGradNorm > 0;

// ---------------------------------------------------------------------------------------------------------
// Phase 2: one optimizer step over an accumulation group

interface StepOutcome {
  /** Mean loss of the group's micro-batches (NaN when skipped). */
  loss: number;
  gradNorm: number;
  /** The update was skipped for a non-finite loss or gradient norm (skipNonfiniteSteps). */
  skipped: boolean;
}

/** An optimizer step whose loss or gradient norm is NaN or infinite, with where it happened. */
export class NonFiniteStepError extends Error {
  constructor(
    readonly step: number,
    what: string,
    lastCheckpoint: string | null,
  ) {
    super(
      `step ${step}: ${what}. Training stopped before the update, so the weights are those after step ${step - 1}; ` +
        (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : "no checkpoint was saved yet") +
        ". Lower the learning rate (or set --max-grad-norm), or pass --skip-nonfinite-steps to skip such steps",
    );
    this.name = "NonFiniteStepError";
  }
}

/**
 * Micro-batches of one accumulation group: forward every text column, the loss, backward scaled by 1/(group size);
 * then the gradient norm (clipped when maxGradNorm > 0), the optimizer update and the schedule. A non-finite loss
 * or norm stops the run (or, with skipNonfiniteSteps, skips the update: gradients zeroed, the step still counts).
 */
function optimizerStep(t: Training, groupSize: number): StepOutcome {
  const { args, state, cursor, optimizer } = t;
  const step = state.global_step + 1; // as logged
  optimizer.lr = learningRateAt(state.global_step, args.learningRate, args.lrSchedulerType, {
    warmupSteps: t.warmup,
    totalSteps: t.steps.totalSteps,
  });
  let stepLoss = 0;
  let bad: string | null = null;
  const fusedGroup: MicroBatch[] = [];
  for (let b = 0; b < groupSize; b++) {
    const position = cursor.position;
    const global = cursor.next()!;
    const batch = t.pg ? shardOf(global, t.pg.rank, t.pg.worldSize) : global; // this rank's pairs
    if (bad) continue; // a skipped step still consumes its batches, so the data order stays the run's
    if (batch.length < 2)
      throw new Error(
        `step ${step}: batch ${position.batch} of epoch ${position.epoch} has ${batch.length} pair`,
      ); // mergeSingletons rules this out
    t.onMicroBatch?.(batch);
    const texts = t.columns.map((col) => batch.map((i) => col[i]!));
    if (t.fused) {
      fusedGroup.push(texts); // run below, all micro-batches of the step in one pass
      continue;
    }
    const value = microStep(t, texts, 1 / groupSize);
    if (!Number.isFinite(value))
      bad = `the loss is ${value} at micro-batch ${b + 1} of ${groupSize} (epoch ${position.epoch}, batch ${position.batch})`;
    stepLoss += value / groupSize;
  }
  if (t.fused) {
    const fused = t.fused;
    stepLoss = autocast(
      () => fusedAccumulationStep(t.embedder, t.loss as EmbeddingLoss, fusedGroup, fused).loss,
      { enabled: t.bf16 },
    ); // the group's mean loss
    if (!Number.isFinite(stepLoss))
      bad = `the loss is ${stepLoss} in the fused pass over ${groupSize} micro-batches`;
  }
  if (t.pg) {
    // Gradients averaged over ranks before clipping (DDP), the loss averaged for the log, one verdict for all.
    const synced = syncStep(t.pg, t.params, stepLoss, bad !== null);
    if (bad) bad = `rank ${t.pg.rank}: ${bad}`;
    else if (synced.badRanks > 0) bad = `the loss is not finite on ${synced.badRanks} other rank(s)`;
    else stepLoss = synced.loss;
  }
  const gradNorm = bad
    ? NaN
    : clipping(args)
      ? clipGradNorm(t.params, args.maxGradNorm!)
      : totalGradNorm(t.params);
  if (!bad && !Number.isFinite(gradNorm)) bad = `the gradient norm is ${gradNorm}`;
  if (bad) {
    if (!args.skipNonfiniteSteps) {
      optimizer.zeroGrad();
      throw new NonFiniteStepError(step, bad, lastCheckpoint(t));
    }
    optimizer.zeroGrad();
    state.ragtune_nonfinite_skipped = (state.ragtune_nonfinite_skipped ?? 0) + 1;
    const note = `step ${step}: ${bad}; update skipped (--skip-nonfinite-steps, ${state.ragtune_nonfinite_skipped} so far)`;
    t.log.info(`warning: ${note}`);
    return { loss: NaN, gradNorm, skipped: true };
  }
  optimizer.step();
  optimizer.zeroGrad();
  return { loss: stepLoss, gradNorm, skipped: false };
}

/** One micro-batch: forward every text column, the loss, backward scaled by `scale`. Returns the loss. */
function microStep(t: Training, batchColumns: string[][], scale: number): number {
  const { loss, embedder } = t;
  // The cached loss bounds activation memory by its mini-batch size; the guide's passes keep to it too.
  const context = t.guide
    ? guideContext(
        t.guide,
        batchColumns,
        loss instanceof CachedMultipleNegativesRankingLoss ? loss.miniBatchSize : undefined,
      )
    : undefined;
  try {
    if (loss instanceof CachedMultipleNegativesRankingLoss)
      return loss.step(embedder, batchColumns, { gradScale: scale, ...(context ? { context } : {}) }).loss;
    return tidy(() => {
      const value: Tensor = autocast(
        () =>
          (loss as EmbeddingLoss).lossFromEmbeddings(
            batchColumns.map((texts) => embedder.embed(texts)),
            null,
            context,
          ),
        { enabled: t.bf16 },
      ); // ()
      value.mul(scale).backward();
      return value.item();
    });
  } finally {
    for (const e of context?.guideEmbeddings ?? []) e.dispose();
  }
}

function lastCheckpoint(t: Training): string | null {
  const own = listCheckpoints(t.args.outputDir).filter((c) => checkpointRunId(c.dir) === t.run.runId);
  return own.length ? own[own.length - 1]!.dir : null;
}

// ---------------------------------------------------------------------------------------------------------
// Phase 3: after a step — log, evaluate, save (on step boundaries); the end of the run

/** Bookkeeping, then logging, evaluation and checkpoints as due. Returns true when stopAfterSteps ends the run. */
function afterStep(t: Training, outcome: StepOutcome): boolean {
  const { args, state, cursor, totals } = t;
  state.global_step++;
  state.epoch = cursor.position.epoch + cursor.position.batch / cursor.epochBatches().length;
  state.ragtune_sampler = cursor.state();
  if (!outcome.skipped) {
    totals.windowLoss += outcome.loss;
    totals.windowSteps++;
    totals.totalLoss += outcome.loss;
    totals.steps++;
  }
  t.timer.step();

  if (state.global_step % args.loggingSteps === 0) {
    const nextLr = learningRateAt(state.global_step, args.learningRate, args.lrSchedulerType, {
      warmupSteps: t.warmup,
      totalSteps: t.steps.totalSteps,
    });
    const loss = totals.windowSteps > 0 ? totals.windowLoss / totals.windowSteps : NaN;
    record(t.log, state, {
      ...(totals.windowSteps > 0 ? { loss } : {}),
      grad_norm: outcome.gradNorm,
      learning_rate: nextLr,
      ...(state.ragtune_nonfinite_skipped
        ? { nonfinite_steps_skipped: state.ragtune_nonfinite_skipped }
        : {}),
      epoch: round(state.epoch),
      step: state.global_step,
    });
    t.log.stepLine(state.global_step, t.steps.totalSteps, loss, nextLr, outcome.gradNorm, t.timer);
    totals.windowLoss = 0;
    totals.windowSteps = 0;
  }
  // The run's last step ends its epoch even when maxSteps stops it mid-epoch: the HF Trainer leaves the
  // epoch loop, then runs on_epoch_end (evaluate and save with the "epoch" strategies); with the "steps"
  // save strategy it saves at the last step too (DefaultFlowCallback.on_step_end).
  const lastStep = state.global_step >= t.steps.totalSteps;
  const epochEnd = cursor.remaining() === 0 || lastStep;
  const evalNow =
    t.evaluator &&
    (args.evalStrategy === "steps"
      ? state.global_step % args.evalSteps === 0
      : args.evalStrategy === "epoch" && epochEnd);
  if (evalNow && t.main) t.lastMetrics = evaluateAndTrack(t);
  const saveNow =
    args.saveStrategy === "steps"
      ? state.global_step % args.saveSteps === 0 || lastStep
      : args.saveStrategy === "epoch" && epochEnd;
  if (saveNow) {
    // Every rank's random state goes into the checkpoint (HF's rng_state_<rank>), so a resume at the same world
    // size replays each rank's dropout; the collective runs on every rank, the write on rank 0.
    const peerRng = t.pg ? gatherPeerRngStates(t.pg, t.rngDevices) : undefined;
    try {
      if (t.main) checkpoint(t, peerRng);
    } finally {
      for (const s of peerRng?.values() ?? []) s.dispose();
    }
  }
  if (t.pg && (evalNow || saveNow)) t.pg.barrier(); // the other ranks wait for rank 0's evaluation and save
  if (state.global_step >= t.stopAfter && !lastStep) {
    t.log.info(`stopping after step ${state.global_step} of ${t.steps.totalSteps} (stopAfterSteps)`);
    return true;
  }
  return false;
}

/** The end of the run: best model, the train_runtime entry (skipped when stopAfterSteps ended it), the result. */
function finish(t: Training, stopped: boolean): TrainResult {
  const { state, model } = t;
  t.timer.done();
  const trainingLoss = t.totals.steps > 0 ? t.totals.totalLoss / t.totals.steps : NaN;
  if (!stopped) {
    // Only rank 0 tracks the best model (it alone evaluates) and saves the final one.
    if (
      t.main &&
      t.args.loadBestModelAtEnd &&
      state.best_model_checkpoint &&
      existsSync(state.best_model_checkpoint)
    ) {
      t.log.info(
        `loading the best model from ${state.best_model_checkpoint} (${t.bestKey} = ${state.best_metric})`,
      );
      model.loadWeightsFrom(state.best_model_checkpoint);
      const bestEval = [...state.log_history]
        .reverse()
        .find((e) => e.step === state.best_global_step && t.bestKey! in e);
      if (bestEval) t.lastMetrics = pickMetrics(bestEval);
    }
    record(t.log, state, {
      train_runtime: round((performance.now() - t.t0) / 1000),
      train_loss: trainingLoss,
      epoch: round(state.epoch),
      step: state.global_step,
    });
  }
  model.eval();
  t.optimizer.dispose();
  return {
    globalStep: state.global_step,
    trainingLoss,
    bestMetric: state.best_metric,
    bestCheckpoint: state.best_model_checkpoint,
    finalMetrics: t.lastMetrics,
    logHistory: state.log_history,
    seconds: (performance.now() - t.t0) / 1000,
    stopped,
    losses: lossCards(t.loss),
    nonfiniteStepsSkipped: state.ragtune_nonfinite_skipped ?? 0,
    warnings: t.warnings,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Pieces of the set-up

/**
 * MatryoshkaLoss(MultipleNegativesRankingLoss), or MatryoshkaLoss(GISTEmbedLoss) for gist — or their cached
 * (GradCache) form with a mini-batch size (cached-mnrl, cached-gist = ST's CachedGISTEmbedLoss).
 */
function buildLoss(
  args: TrainingArguments,
  embeddingDim: number,
  log: RunLog,
  pg: ProcessGroup | null,
  warnings: string[],
): EmbeddingLoss | CachedMultipleNegativesRankingLoss {
  const dims = args.matryoshkaDims;
  for (const d of dims) {
    if (d > embeddingDim)
      throw new Error(`matryoshkaDims: ${d} is larger than the model's embedding size ${embeddingDim}`);
  }
  // gist: GISTEmbedLoss, MNRL whose false negatives (by the guide's similarities) are masked; the guide's
  // embeddings come per micro-batch as the loss context (microStep), passed through MatryoshkaLoss untruncated.
  const gatherAcrossDevices = gatherOf(args, pg, log, warnings);
  const inner: EmbeddingLoss = isGistLoss(args.loss)
    ? new GISTEmbedLoss({
        temperature: args.gistTemperature,
        marginStrategy: args.gistMarginStrategy,
        margin: args.gistMargin,
        contrastAnchors: args.gistContrastAnchors,
        contrastPositives: args.gistContrastPositives,
        ...(args.guideModel ? { guide: args.guideModel } : {}),
        gatherAcrossDevices,
      })
    : new MultipleNegativesRankingLoss({
        scale: args.scale,
        symmetric: args.symmetric,
        gatherAcrossDevices,
      });
  const matryoshka = new MatryoshkaLoss(
    inner,
    dims,
    args.matryoshkaWeights ? { weights: args.matryoshkaWeights } : {},
  );
  for (const w of matryoshka.checkEmbeddingDim(embeddingDim)) log.info(`warning: ${w}`);
  if (args.loss === "cached-mnrl" || args.loss === "cached-gist")
    return new CachedMultipleNegativesRankingLoss({ miniBatchSize: args.miniBatchSize, loss: matryoshka });
  return matryoshka;
}

/**
 * --gather-across-devices: the process group, handed to MNRL or GISTEmbedLoss as its cross-device gather (the
 * cached losses gather inside their step (2), on the cached embeddings). On one process there is nothing to gather: sentence-transformers
 * warns and computes the local loss, and so does this.
 */
function gatherOf(
  args: TrainingArguments,
  pg: ProcessGroup | null,
  log: RunLog,
  warnings: string[],
): ProcessGroup | null {
  if (!args.gatherAcrossDevices) return null;
  if (pg && pg.worldSize > 1) return pg;
  const warning =
    "--gather-across-devices does nothing on a single process (world size 1): each anchor already sees the " +
    "whole batch's negatives";
  warnings.push(warning);
  log.info(`warning: ${warning}`);
  return null;
}

/**
 * The model card's loss entries, from the losses themselves (ST's card lists the outer MatryoshkaLoss, then the
 * loss it wraps): MatryoshkaLoss + MultipleNegatives(Symmetric)RankingLoss or GISTEmbedLoss (its config names
 * the guide), or their cached form.
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

/**
 * Text columns of the training set: anchors (with the query prompt), positives, then each negative column (with
 * the corpus prompt), as sentence-transformers' trainer prepends a prompt per column.
 */
function textColumns(
  records: readonly PairRecord[],
  queryPrompt: string | null,
  corpusPrompt: string | null,
): string[][] {
  const passage = (text: string) => (corpusPrompt ? corpusPrompt + text : text);
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
    records.map((r) => passage(r.positive)),
  ];
  for (let k = 0; k < negatives; k++) cols.push(records.map((r) => passage(r.negatives![k]!)));
  return cols;
}

function buildSampler(
  args: TrainingArguments,
  batchSize: number,
  records: readonly PairRecord[],
  columns: string[][],
  model: SentenceTransformer,
): BatchSampler {
  // minBatchSize 2: MNRL needs another pair in the batch for a negative (see mergeSingletons).
  const opts = { batchSize, seed: args.seed, minBatchSize: 2 as const };
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

// ---------------------------------------------------------------------------------------------------------
// Evaluation and checkpoints

function evaluateAndTrack(t: Training): Record<string, number> {
  const { model, state, args } = t;
  model.eval();
  const result = t.evaluator!.evaluate(model);
  const collapse = collapseWarning(model, t.evaluator!.corpusTexts);
  model.train();
  if (collapse) {
    const warning = `step ${state.global_step}: ${collapse}`;
    t.warnings.push(warning);
    t.log.info(`warning: ${warning}`);
  }
  const metrics = withPrefix("eval", result.metrics);
  record(t.log, state, {
    ...metrics,
    eval_runtime: round(result.seconds.encode + result.seconds.score),
    epoch: round(state.epoch),
    step: state.global_step,
  });
  t.log.evalLine(metrics, args.matryoshkaDims);
  if (t.bestKey) {
    const value = metrics[t.bestKey]!;
    const better =
      state.best_metric === null ||
      (t.higherIsBetter ? value > state.best_metric : value < state.best_metric);
    if (better) {
      state.best_metric = value;
      state.best_global_step = state.global_step;
      state.best_model_checkpoint = join(args.outputDir, `checkpoint-${state.global_step}`);
    }
  }
  return metrics;
}

function checkpoint(t: Training, peerRngStates?: ReadonlyMap<string, Tensor>): void {
  const { model, optimizer, state, args } = t;
  const saved = saveCheckpoint(args.outputDir, state.global_step, {
    model,
    optimizer,
    state,
    args,
    devices: t.rngDevices,
    ...(peerRngStates ? { peerRngStates } : {}),
  });
  // Only this run's checkpoints rotate (a run id in each trainer_state.json).
  const deleted = rotateCheckpoints(
    args.outputDir,
    args.saveTotalLimit,
    state.best_model_checkpoint,
    t.run.runId,
  );
  t.log.info(`saved ${saved.dir}${deleted.length ? `; deleted ${deleted.join(", ")}` : ""}`);
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
