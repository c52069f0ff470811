// Learning-rate schedules and the step arithmetic of the Hugging Face Trainer, in plain TypeScript (no engine).
//
// Schedules: ports `transformers/optimization.py` (`get_constant_schedule`, `get_constant_schedule_with_warmup`,
// `get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup` with num_cycles 0.5), each a multiplier
// λ(step) that torch's LambdaLR applies to the base learning rate.
//
// Which step index to pass (torch LambdaLR semantics): the scheduler is built with last_epoch = −1 and steps once
// in its constructor, so before any update the optimizer's lr is base·λ(0); the Trainer calls
// `lr_scheduler.step()` right after each `optimizer.step()`. Hence the lr used by optimizer update k (0-based,
// k = the number of updates already done = transformers' `state.global_step` before the update) is base·λ(k).
// With warmup the very first update therefore uses lr 0 (λ(0) = 0), exactly as transformers does. The value
// transformers logs as `learning_rate` at global step g (after g updates) is `get_last_lr()` = base·λ(g), i.e. the
// lr of the *next* update. The scheduler steps once per optimizer update, never per micro-batch.
//
// Step counts: ports `Trainer.set_initial_training_values` of recent transformers (checked in its source):
//   len_dataloader            = len(batch_sampler)          (sentence-transformers passes its batch sampler)
//   num_update_steps_per_epoch = max(len_dataloader // GA + int(len_dataloader % GA > 0), 1)
//   max_steps                 = args.max_steps if > 0 else ceil(num_train_epochs × num_update_steps_per_epoch)
//   num_train_epochs          = ceil(max_steps / steps_per_epoch) if args.max_steps > 0 else ceil(num_train_epochs)
// and the epoch loop of `_inner_training_loop`, which cuts an epoch of `steps_in_epoch` = len(dataloader) batches
// into groups of GA batches, the last group holding the remainder, with one optimizer update per group.
// Older transformers releases computed `max(len_dataloader // GA, 1)` instead (seen in older copies of
// trainer.py; the release that changed it was not pinned down here, nor which one the reference recipe ran);
// that rule is available as `stepsPerEpochRule: "floor"` for comparisons only.
//
// Warmup: ports `TrainingArguments.get_warmup_steps`: `warmup_steps if warmup_steps > 0 else
// ceil(num_training_steps × warmup_ratio)`, computed in floating point as Python does (0.07 × 100 =
// 7.000000000000001, so ceil gives 8).

export type ScheduleKind = "linear" | "cosine" | "constant" | "constant_with_warmup";

export const SCHEDULE_KINDS: readonly ScheduleKind[] = [
  "linear",
  "cosine",
  "constant",
  "constant_with_warmup",
];

export interface ScheduleShape {
  /** Number of warmup updates (an integer ≥ 0); ignored by "constant", as in transformers' get_scheduler. */
  warmupSteps: number;
  /** Total optimizer updates of the run (transformers' num_training_steps / max_steps); unused by the constants. */
  totalSteps: number;
  /** Cosine waves over the decay (transformers' num_cycles); default 0.5 = one half-cosine down to 0. */
  numCycles?: number;
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`step must be an integer ≥ 0, got ${step}`);
}

function checkShape(kind: ScheduleKind, shape: ScheduleShape): void {
  if (!SCHEDULE_KINDS.includes(kind)) throw new Error(`unknown schedule ${String(kind)}`);
  if (kind === "constant") return;
  const { warmupSteps, totalSteps } = shape;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(`warmupSteps must be an integer ≥ 0, got ${warmupSteps}`);
  }
  if (kind === "constant_with_warmup") return;
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw new Error(`totalSteps must be an integer ≥ 0, got ${totalSteps}`);
  }
}

/**
 * The LambdaLR multiplier λ(step) of a transformers schedule. `step` is the number of optimizer updates already
 * done (see the header: update k uses base·λ(k)). Past totalSteps, linear stays at 0 while cosine follows its
 * cosine back up (transformers clamps only below 0); a trainer never evaluates it there.
 */
export function lrLambda(kind: ScheduleKind, step: number, shape: ScheduleShape): number {
  checkStep(step);
  checkShape(kind, shape);
  const { warmupSteps, totalSteps } = shape;
  switch (kind) {
    case "constant":
      // ports _get_constant_lambda
      return 1;
    case "constant_with_warmup":
      // ports _get_constant_schedule_with_warmup_lr_lambda
      if (step < warmupSteps) return step / Math.max(1, warmupSteps);
      return 1;
    case "linear":
      // ports _get_linear_schedule_with_warmup_lr_lambda
      if (step < warmupSteps) return step / Math.max(1, warmupSteps);
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case "cosine": {
      // ports _get_cosine_schedule_with_warmup_lr_lambda (min_lr_rate 0, num_cycles default 0.5)
      if (step < warmupSteps) return step / Math.max(1, warmupSteps);
      const numCycles = shape.numCycles ?? 0.5;
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
  }
}

/** The learning rate of optimizer update `step` (0-based; = updates already done): baseLr × λ(step). */
export function learningRateAt(
  step: number,
  baseLr: number,
  kind: ScheduleKind,
  shape: ScheduleShape,
): number {
  if (!Number.isFinite(baseLr) || baseLr < 0)
    throw new Error(`baseLr must be a finite number ≥ 0, got ${baseLr}`);
  return baseLr * lrLambda(kind, step, shape);
}

/** How warmup is given: a number < 1 is a ratio, an integer ≥ 1 a step count (transformers 5's `warmup_steps`). */
export type WarmupSpec = number | { steps?: number; ratio?: number };

/**
 * Warmup updates for a run of totalSteps updates; ports `TrainingArguments.get_warmup_steps`:
 * explicit steps > 0 win, else ceil(totalSteps × ratio) in floating point (0.1 × 45 = 4.5 → 5; 0.07 × 100 =
 * 7.000000000000001 → 8, as in Python). A bare number below 1 is read as a ratio, an integer ≥ 1 as steps.
 */
export function warmupSteps(spec: WarmupSpec, totalSteps: number): number {
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw new Error(`totalSteps must be an integer ≥ 0, got ${totalSteps}`);
  }
  let steps = 0;
  let ratio = 0;
  if (typeof spec === "number") {
    if (!Number.isFinite(spec) || spec < 0) throw new Error(`warmup must be ≥ 0, got ${spec}`);
    if (spec < 1) ratio = spec;
    else if (Number.isInteger(spec)) steps = spec;
    else throw new Error(`warmup ${spec}: a ratio must be below 1 and a step count an integer`);
  } else {
    steps = spec.steps ?? 0;
    ratio = spec.ratio ?? 0;
    if (!Number.isInteger(steps) || steps < 0)
      throw new Error(`warmup steps must be an integer ≥ 0, got ${steps}`);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1)
      throw new Error(`warmup ratio must be in [0, 1], got ${ratio}`);
  }
  return steps > 0 ? steps : Math.ceil(totalSteps * ratio);
}

export interface TrainingStepsOptions {
  /** Number of training examples (rows). */
  examples: number;
  /** Per-device batch size. */
  batchSize: number;
  /** Default 1. */
  gradientAccumulationSteps?: number;
  /** May be fractional, as transformers' num_train_epochs. Ignored for the total when maxSteps > 0. */
  epochs: number;
  /** transformers' max_steps: when > 0 it fixes the total and the epoch count follows. */
  maxSteps?: number;
  /** transformers' dataloader_drop_last (default false): batches per epoch = floor instead of ceil. */
  dropLast?: boolean;
  /**
   * The batch sampler's length, when it is not the plain ceil/floor of examples / batchSize (pass
   * `sampler.length`; for every sampler of samplers.ts it equals that rule, as sentence-transformers' do).
   */
  batchesPerEpoch?: number;
  /** "ceil" (default): current transformers; "floor": releases before the gradient-accumulation rework. */
  stepsPerEpochRule?: "ceil" | "floor";
}

export interface TrainingSteps {
  /** len(dataloader): batches (micro-batches) per epoch. */
  batchesPerEpoch: number;
  /** Optimizer updates per epoch (num_update_steps_per_epoch). */
  stepsPerEpoch: number;
  /** Optimizer updates of the whole run (max_steps = num_training_steps given to the scheduler). */
  totalSteps: number;
  /** Epochs the loop runs (num_train_epochs after the ceil); the last may stop early at totalSteps. */
  epochs: number;
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be an integer ≥ 1, got ${value}`);
}

/** Batches per epoch, updates per epoch and total updates exactly as transformers' Trainer computes them. */
export function trainingSteps(options: TrainingStepsOptions): TrainingSteps {
  const { examples, batchSize, epochs } = options;
  const ga = options.gradientAccumulationSteps ?? 1;
  const maxSteps = options.maxSteps ?? -1;
  if (!Number.isInteger(examples) || examples < 0)
    throw new Error(`examples must be an integer ≥ 0, got ${examples}`);
  positiveInteger("batchSize", batchSize);
  positiveInteger("gradientAccumulationSteps", ga);
  if (!Number.isInteger(maxSteps)) throw new Error(`maxSteps must be an integer, got ${maxSteps}`);
  if (maxSteps <= 0 && (!Number.isFinite(epochs) || epochs <= 0)) {
    throw new Error(`epochs must be > 0 (or maxSteps set), got ${epochs}`);
  }
  const batchesPerEpoch =
    options.batchesPerEpoch ??
    (options.dropLast ? Math.floor(examples / batchSize) : Math.ceil(examples / batchSize));
  if (!Number.isInteger(batchesPerEpoch) || batchesPerEpoch < 0) {
    throw new Error(`batchesPerEpoch must be an integer ≥ 0, got ${batchesPerEpoch}`);
  }
  if (batchesPerEpoch === 0) {
    // transformers: `if len_dataloader:` fails and, without max_steps, it raises.
    throw new Error(
      `an epoch has no batches (${examples} examples, batch ${batchSize}${options.dropLast ? ", drop last" : ""})`,
    );
  }
  // ports set_initial_training_values: num_update_steps_per_epoch
  const stepsPerEpoch =
    (options.stepsPerEpochRule ?? "ceil") === "ceil"
      ? Math.max(Math.floor(batchesPerEpoch / ga) + (batchesPerEpoch % ga > 0 ? 1 : 0), 1)
      : Math.max(Math.floor(batchesPerEpoch / ga), 1);
  if (maxSteps > 0) {
    // max_steps // steps_per_epoch + int(max_steps % steps_per_epoch > 0)
    const runEpochs = Math.floor(maxSteps / stepsPerEpoch) + (maxSteps % stepsPerEpoch > 0 ? 1 : 0);
    return { batchesPerEpoch, stepsPerEpoch, totalSteps: maxSteps, epochs: runEpochs };
  }
  return {
    batchesPerEpoch,
    stepsPerEpoch,
    totalSteps: Math.ceil(epochs * stepsPerEpoch),
    epochs: Math.ceil(epochs),
  };
}

/**
 * How an epoch's batches group into optimizer updates: ports the chunking of transformers' `_inner_training_loop`
 * (`remainder = steps_in_epoch % GA or GA`; `total_updates = steps_in_epoch // GA + int(remainder < GA)`; every
 * group GA batches but the last, which holds `remainder`). Returns the group sizes; each group ends with one
 * optimizer update (and one scheduler step).
 *
 * Pass the number of batches the sampler actually yielded this epoch (`sampler.batches(epoch).length`), not its
 * nominal length. transformers uses len(dataloader) here: if a no-duplicates sampler yields fewer batches, its
 * last group comes up short, `do_sync_step` never fires and the leftover gradients leak into the next epoch's first
 * update; if it yields more, the extra batches are never drawn. Grouping the actual count avoids both (nothing is
 * dropped, every group ends with an update); the trainer must still stop at totalSteps (transformers stops when
 * global_step reaches max_steps), so an epoch with one group more than planned cannot overrun the schedule.
 */
export function accumulationGroups(batchesInEpoch: number, gradientAccumulationSteps: number): number[] {
  if (!Number.isInteger(batchesInEpoch) || batchesInEpoch < 0) {
    throw new Error(`batchesInEpoch must be an integer ≥ 0, got ${batchesInEpoch}`);
  }
  positiveInteger("gradientAccumulationSteps", gradientAccumulationSteps);
  const ga = gradientAccumulationSteps;
  let remainder = batchesInEpoch % ga;
  if (remainder === 0) remainder = ga;
  const totalUpdates = Math.floor(batchesInEpoch / ga) + (remainder < ga ? 1 : 0);
  return Array.from({ length: totalUpdates }, (_, u) => (u === totalUpdates - 1 ? remainder : ga));
}

/**
 * The step plan of a run from the batches the sampler really yields (`batchCount(epoch)` =
 * `sampler.batches(epoch).length`), so that the schedule's total is what the loop runs and every batch of an epoch
 * is trained. Deviates from transformers on purpose: its plan uses len(dataloader), the sampler's nominal length,
 * which the no-duplicates rule can miss (64 real batches for 2,000 rows at batch 32 against ceil(2000/32) = 63:
 * the 64th batch was never trained). Per epoch e: steps(e) = the number of accumulationGroups(batchCount(e), GA).
 * Without maxSteps: total = the sum of steps(e) over the whole epochs plus ceil(fraction × steps) of a partial last
 * epoch (transformers: ceil(num_train_epochs × steps_per_epoch), the same when every epoch has as many batches).
 * With maxSteps > 0: total = maxSteps, epochs = the fewest whose steps reach it.
 */
export function planSteps(options: {
  batchCount: (epoch: number) => number;
  gradientAccumulationSteps: number;
  epochs: number;
  maxSteps?: number;
}): TrainingSteps {
  const ga = options.gradientAccumulationSteps;
  positiveInteger("gradientAccumulationSteps", ga);
  const maxSteps = options.maxSteps ?? -1;
  if (!Number.isInteger(maxSteps)) throw new Error(`maxSteps must be an integer, got ${maxSteps}`);
  if (maxSteps <= 0 && (!Number.isFinite(options.epochs) || options.epochs <= 0))
    throw new Error(`epochs must be > 0 (or maxSteps set), got ${options.epochs}`);
  const counts: number[] = [];
  const batchesIn = (epoch: number): number => {
    const batches = (counts[epoch] ??= options.batchCount(epoch));
    if (!Number.isInteger(batches) || batches < 1)
      throw new Error(`epoch ${epoch} has no batch to train on (${batches} batches)`);
    return batches;
  };
  const stepsIn = (epoch: number): number => accumulationGroups(batchesIn(epoch), ga).length;
  const batchesPerEpoch = batchesIn(0);
  const stepsPerEpoch = stepsIn(0);
  let total = 0;
  let epochs = 0;
  if (maxSteps > 0) {
    for (; total < maxSteps; epochs++) total += stepsIn(epochs);
    return { batchesPerEpoch, stepsPerEpoch, totalSteps: maxSteps, epochs };
  }
  const whole = Math.floor(options.epochs);
  for (; epochs < whole; epochs++) total += stepsIn(epochs);
  const fraction = options.epochs - whole;
  if (fraction > 0) {
    total += Math.ceil(fraction * stepsIn(epochs));
    epochs++;
  }
  return { batchesPerEpoch, stepsPerEpoch, totalSteps: total, epochs };
}
