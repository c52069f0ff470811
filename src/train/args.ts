// Training arguments: the recipe's values as defaults, the Hugging Face / sentence-transformers names in
// camelCase, validation with errors that name the argument, and the JSON config file form.
import { readFileSync } from "node:fs";
import { closestKey, editDistance } from "../eval/metric-names.ts";

export type SchedulerKind = "linear" | "cosine" | "constant" | "constant_with_warmup";
export type Strategy = "epoch" | "steps" | "no";
export type BatchSamplerKind = "no_duplicates" | "batch_sampler";
export type LossKind = "mnrl" | "cached-mnrl" | "gist" | "cached-gist";

/** The losses that need a guide model (GISTEmbedLoss and its cached form). */
export const isGistLoss = (loss: LossKind): boolean => loss === "gist" || loss === "cached-gist";

export interface TrainingArguments {
  outputDir: string;
  /** May be fractional, as HF's num_train_epochs (the last epoch stops part-way). */
  numTrainEpochs: number;
  perDeviceTrainBatchSize: number;
  gradientAccumulationSteps: number;
  learningRate: number;
  /** Used when warmupSteps is 0: warmup = ceil(ratio × total optimizer steps). */
  warmupRatio: number;
  warmupSteps: number;
  lrSchedulerType: SchedulerKind;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** Gradient clipping norm; 0 or null = no clipping (HF: `max_grad_norm` None or 0). The norm is logged either way. */
  maxGradNorm: number | null;
  bf16: boolean;
  tf32: boolean;
  seed: number;
  batchSampler: BatchSamplerKind;
  /** ragtune: draw batches from length-sorted groups of this many batches (0 = off) to cut padding. */
  lengthGroupedBatches: number;
  /** ragtune: padding-free (packed) forward passes; false runs the padded reference path. */
  packing: boolean;
  /**
   * ragtune: one packed forward and one backward per optimizer step over all its micro-batches, each with its
   * own loss (src/train/fused-accumulation.ts). auto = on for CUDA, off on the CPU (memory).
   */
  fusedAccumulation: "auto" | "on" | "off";
  evalStrategy: Strategy;
  evalSteps: number;
  saveStrategy: Strategy;
  saveSteps: number;
  loggingSteps: number;
  saveTotalLimit: number | null;
  loadBestModelAtEnd: boolean;
  metricForBestModel: string;
  /** Default: from the metric name (false only for losses), as the HF Trainer. */
  greaterIsBetter: boolean | null;
  /** > 0 overrides numTrainEpochs. */
  maxSteps: number;
  /** A checkpoint folder, or "latest" for the newest checkpoint in outputDir. */
  resumeFromCheckpoint: string | null;
  /** HF's overwrite_output_dir: a fresh run may replace a non-empty outputDir (its checkpoints and log are removed). */
  overwriteOutputDir: boolean;
  /**
   * ragtune: a step whose loss or gradient norm is NaN/Inf is skipped (gradients zeroed, no optimizer update; the
   * step still counts for the schedule, as torch's GradScaler skips an inf step) instead of stopping the run.
   */
  skipNonfiniteSteps: boolean;
  loss: LossKind;
  miniBatchSize: number;
  matryoshkaDims: number[];
  matryoshkaWeights: number[] | null;
  /** MNRL scale (1 / temperature). */
  scale: number;
  /**
   * gist / cached-gist: the guide model (folder or hub id) whose similarities mask false negatives; required for
   * those losses, refused with the others. The trainer gets the loaded model (TrainInputs.guide).
   */
  guideModel: string | null;
  /** GISTEmbedLoss temperature (ST default 0.01; MNRL's scale 20 is a temperature of 0.05). */
  gistTemperature: number;
  /** GISTEmbedLoss margin_strategy: absolute (g > g_ii − margin masked) or relative (g > g_ii × (1 − margin)). */
  gistMarginStrategy: "absolute" | "relative";
  /** GISTEmbedLoss margin (ST default 0). */
  gistMargin: number;
  /** GISTEmbedLoss contrast_anchors / contrast_positives (ST defaults true). */
  gistContrastAnchors: boolean;
  gistContrastPositives: boolean;
  /** Symmetric MNRL (adds the positive → anchor direction). */
  symmetric: boolean;
  /**
   * Data parallel: every rank's anchors rank against the positives and negatives of all ranks (sentence-
   * transformers' gather_across_devices on MNRL / GISTEmbedLoss and their cached forms inside Matryoshka), so the
   * negatives per anchor are those of the global batch. A no-op (with a warning) on one process.
   */
  gatherAcrossDevices: boolean;
  /** Prepended to anchors in training and to queries in evaluation (e.g. bge's instruction). */
  queryPrompt: string | null;
  /** Prepended to positives and negatives in training and to the corpus in evaluation (e.g. e5's "passage: "). */
  corpusPrompt: string | null;
  evalBatchSize: number;
  device: string | null;
  /** Model card metadata. */
  modelName: string | null;
  /**
   * Languages (ISO 639-1 codes) for the card; null = the base model's README.md front matter's, else none (the
   * card never invents one). A config file may give one string or a comma list.
   */
  language: string[] | null;
  /** License id for the card; null = the base model's README.md front matter's, else none. */
  license: string | null;
  /** Hub id of the base model to record as `base_model` (default: the --model id when it is a hub id). */
  baseModel: string | null;
  /** Hub id of the training dataset to record under `datasets:` (none by default). */
  datasetName: string | null;
}

/**
 * The recipe's values (sentence-transformers blog "Fine-tune Embedding models for RAG"; see
 * ../shared/reference/recipe.md). Where the recipe is silent: HF Trainer defaults.
 */
export const RECIPE_DEFAULTS: Omit<TrainingArguments, "outputDir"> = {
  numTrainEpochs: 4,
  perDeviceTrainBatchSize: 32,
  gradientAccumulationSteps: 16,
  learningRate: 2e-5, // the recipe; BGE's own fine-tuning examples use 1e-5
  warmupRatio: 0.1,
  warmupSteps: 0,
  lrSchedulerType: "cosine",
  weightDecay: 0, // HF default
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1.0,
  bf16: true, // on CUDA; ignored on the CPU
  tf32: true, // on CUDA
  seed: 42,
  batchSampler: "no_duplicates",
  lengthGroupedBatches: 0,
  packing: true,
  fusedAccumulation: "auto",
  evalStrategy: "epoch",
  evalSteps: 500,
  saveStrategy: "epoch",
  saveSteps: 500,
  loggingSteps: 10,
  saveTotalLimit: 3,
  loadBestModelAtEnd: true,
  metricForBestModel: "eval_dim_128_cosine_ndcg@10",
  greaterIsBetter: null,
  maxSteps: -1,
  resumeFromCheckpoint: null,
  overwriteOutputDir: false,
  skipNonfiniteSteps: false,
  loss: "mnrl",
  miniBatchSize: 32,
  matryoshkaDims: [768, 512, 256, 128, 64],
  matryoshkaWeights: null,
  scale: 20,
  guideModel: null,
  gistTemperature: 0.01,
  gistMarginStrategy: "absolute",
  gistMargin: 0,
  gistContrastAnchors: true,
  gistContrastPositives: true,
  symmetric: false,
  gatherAcrossDevices: false,
  queryPrompt: null,
  corpusPrompt: null,
  evalBatchSize: 32,
  device: null,
  modelName: null,
  language: null,
  license: null,
  baseModel: null,
  datasetName: null,
};

export class ArgumentError extends Error {
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
    this.name = "ArgumentError";
  }
}

const positiveInt = (a: TrainingArguments, k: keyof TrainingArguments): void => {
  const v = a[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    throw new ArgumentError(k, `must be a positive integer, got ${String(v)}`);
};
const nonNegative = (a: TrainingArguments, k: keyof TrainingArguments): void => {
  const v = a[k];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    throw new ArgumentError(k, `must be a non-negative number, got ${String(v)}`);
};
const boolean = (a: TrainingArguments, k: keyof TrainingArguments, nullable = false): void => {
  const v = a[k];
  if (typeof v !== "boolean" && !(nullable && v === null))
    throw new ArgumentError(
      k,
      `must be true or false${nullable ? " (or null)" : ""}, got ${JSON.stringify(v)}`,
    );
};
const text = (a: TrainingArguments, k: keyof TrainingArguments, nullable = false): void => {
  const v = a[k];
  if (typeof v !== "string" && !(nullable && v === null))
    throw new ArgumentError(k, `must be a string${nullable ? " (or null)" : ""}, got ${JSON.stringify(v)}`);
};
const oneOf = <T extends string>(
  a: TrainingArguments,
  k: keyof TrainingArguments,
  values: readonly T[],
): void => {
  if (!values.includes(a[k] as T))
    throw new ArgumentError(k, `must be one of ${values.join(", ")}, got ${JSON.stringify(a[k])}`);
};

/** Fills defaults and validates; every error names the argument. */
export function resolveTrainingArguments(
  partial: Partial<TrainingArguments> & { outputDir: string },
): TrainingArguments {
  const known = new Set([...Object.keys(RECIPE_DEFAULTS), "outputDir"]);
  for (const k of Object.keys(partial)) {
    if (!known.has(k))
      throw new ArgumentError(k, `unknown training argument (known: ${[...known].sort().join(", ")})`);
  }
  const a: TrainingArguments = {
    ...RECIPE_DEFAULTS,
    ...stripUndefined(partial),
    outputDir: partial.outputDir,
  };
  const language: unknown = a.language;
  if (typeof language === "string") a.language = splitLanguages(language);
  if (typeof a.outputDir !== "string" || a.outputDir === "")
    throw new ArgumentError("outputDir", `must be a folder path, got ${JSON.stringify(a.outputDir)}`);
  if (typeof a.numTrainEpochs !== "number" || !Number.isFinite(a.numTrainEpochs) || a.numTrainEpochs <= 0)
    throw new ArgumentError("numTrainEpochs", `must be a positive number, got ${String(a.numTrainEpochs)}`);
  for (const k of [
    "perDeviceTrainBatchSize",
    "gradientAccumulationSteps",
    "loggingSteps",
    "miniBatchSize",
    "evalBatchSize",
    "evalSteps",
    "saveSteps",
  ] as const)
    positiveInt(a, k);
  for (const k of [
    "learningRate",
    "warmupSteps",
    "weightDecay",
    "adamEpsilon",
    "scale",
    "lengthGroupedBatches",
  ] as const)
    nonNegative(a, k);
  if (a.maxGradNorm !== null) nonNegative(a, "maxGradNorm");
  // MultipleNegativesRankingLoss takes its negatives from the other pairs of the batch: one pair has none (loss 0,
  // gradient 0), so sentence-transformers' batch size 1 "trains" nothing; refused here.
  if (a.perDeviceTrainBatchSize < 2)
    throw new ArgumentError(
      "perDeviceTrainBatchSize",
      `must be at least 2: MultipleNegativesRankingLoss uses the other pairs of a batch as negatives, a batch of 1 has none (got ${a.perDeviceTrainBatchSize})`,
    );
  if (typeof a.warmupRatio !== "number" || !(a.warmupRatio >= 0 && a.warmupRatio <= 1))
    throw new ArgumentError("warmupRatio", `must be in [0, 1], got ${String(a.warmupRatio)}`);
  if (!Number.isInteger(a.warmupSteps))
    throw new ArgumentError("warmupSteps", `must be an integer, got ${a.warmupSteps}`);
  for (const k of ["adamBeta1", "adamBeta2"] as const)
    if (typeof a[k] !== "number" || !(a[k] >= 0 && a[k] < 1))
      throw new ArgumentError(k, `must be in [0, 1), got ${String(a[k])}`);
  for (const k of [
    "bf16",
    "tf32",
    "loadBestModelAtEnd",
    "symmetric",
    "gatherAcrossDevices",
    "overwriteOutputDir",
    "skipNonfiniteSteps",
    "packing",
    "gistContrastAnchors",
    "gistContrastPositives",
  ] as const)
    boolean(a, k);
  oneOf(a, "fusedAccumulation", ["auto", "on", "off"]);
  boolean(a, "greaterIsBetter", true);
  text(a, "metricForBestModel");
  if (
    a.language !== null &&
    (!Array.isArray(a.language) || a.language.some((l) => typeof l !== "string" || !/^[\w-]+$/.test(l)))
  )
    throw new ArgumentError(
      "language",
      `must be language codes (e.g. ["en", "de"] or "en,de") or null, got ${JSON.stringify(a.language)}`,
    );
  for (const k of [
    "resumeFromCheckpoint",
    "queryPrompt",
    "corpusPrompt",
    "device",
    "modelName",
    "guideModel",
    "license",
    "baseModel",
    "datasetName",
  ] as const)
    text(a, k, true);
  oneOf(a, "lrSchedulerType", ["linear", "cosine", "constant", "constant_with_warmup"]);
  oneOf(a, "evalStrategy", ["epoch", "steps", "no"]);
  oneOf(a, "saveStrategy", ["epoch", "steps", "no"]);
  oneOf(a, "batchSampler", ["no_duplicates", "batch_sampler"]);
  oneOf(a, "loss", ["mnrl", "cached-mnrl", "gist", "cached-gist"]);
  oneOf(a, "gistMarginStrategy", ["absolute", "relative"]);
  if (typeof a.gistTemperature !== "number" || !Number.isFinite(a.gistTemperature) || a.gistTemperature <= 0)
    throw new ArgumentError("gistTemperature", `must be a positive number, got ${String(a.gistTemperature)}`);
  nonNegative(a, "gistMargin");
  if (isGistLoss(a.loss) && !a.guideModel)
    throw new ArgumentError(
      "guideModel",
      `--loss ${a.loss} needs a guide model (--guide-model G; the base model itself is a common choice)`,
    );
  if (isGistLoss(a.loss) && a.symmetric)
    throw new ArgumentError(
      "symmetric",
      `is a MultipleNegativesRankingLoss option; GISTEmbedLoss has no symmetric form`,
    );
  if (!isGistLoss(a.loss) && a.guideModel)
    throw new ArgumentError("guideModel", `is used by --loss gist or cached-gist only, not ${a.loss}`);
  if (!Number.isInteger(a.maxSteps) || (a.maxSteps < 1 && a.maxSteps !== -1))
    throw new ArgumentError("maxSteps", `must be -1 (off) or a positive integer, got ${a.maxSteps}`);
  if (!Number.isInteger(a.seed) || a.seed < 0)
    throw new ArgumentError("seed", `must be a non-negative integer, got ${a.seed}`);
  if (a.saveTotalLimit !== null && (!Number.isInteger(a.saveTotalLimit) || a.saveTotalLimit < 1))
    throw new ArgumentError("saveTotalLimit", `must be a positive integer or null, got ${a.saveTotalLimit}`);
  if (
    !Array.isArray(a.matryoshkaDims) ||
    a.matryoshkaDims.length === 0 ||
    a.matryoshkaDims.some((d) => !Number.isInteger(d) || d < 1)
  )
    throw new ArgumentError(
      "matryoshkaDims",
      `must be a non-empty list of positive integers, got ${JSON.stringify(a.matryoshkaDims)}`,
    );
  if (new Set(a.matryoshkaDims).size !== a.matryoshkaDims.length)
    throw new ArgumentError("matryoshkaDims", `repeat a dim: [${a.matryoshkaDims.join(", ")}]`);
  if (
    a.matryoshkaWeights !== null &&
    (!Array.isArray(a.matryoshkaWeights) || a.matryoshkaWeights.some((w) => !Number.isFinite(w)))
  )
    throw new ArgumentError(
      "matryoshkaWeights",
      `must be a list of numbers or null, got ${JSON.stringify(a.matryoshkaWeights)}`,
    );
  if (a.matryoshkaWeights && a.matryoshkaWeights.length !== a.matryoshkaDims.length)
    throw new ArgumentError(
      "matryoshkaWeights",
      `has ${a.matryoshkaWeights.length} weights for ${a.matryoshkaDims.length} dims`,
    );
  if (a.loadBestModelAtEnd && a.evalStrategy === "no")
    throw new ArgumentError("loadBestModelAtEnd", "needs an evaluation (evalStrategy is 'no')");
  if (a.loadBestModelAtEnd && a.saveStrategy !== a.evalStrategy)
    throw new ArgumentError(
      "loadBestModelAtEnd",
      `needs saveStrategy == evalStrategy (${a.saveStrategy} vs ${a.evalStrategy}), as in the HF Trainer`,
    );
  if (a.loadBestModelAtEnd && a.saveStrategy === "steps" && a.saveSteps % a.evalSteps !== 0)
    throw new ArgumentError(
      "saveSteps",
      `must be a multiple of evalSteps (${a.evalSteps}) with loadBestModelAtEnd`,
    );
  return a;
}

/** "en, de" → ["en", "de"] (empty entries dropped). */
export function splitLanguages(list: string): string[] {
  return list
    .split(",")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Reads a JSON config file: keys in camelCase (ragtune) or snake_case (HF TrainingArguments names, e.g.
 * `per_device_train_batch_size`), so a sentence-transformers user's arguments carry over.
 */
export function readTrainingConfig(path: string): Partial<TrainingArguments> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error(`${path}: expected a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    const camel = k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const name = ALIASES[camel] ?? camel;
    if (!(name in RECIPE_DEFAULTS) && name !== "outputDir") {
      const known = [...Object.keys(RECIPE_DEFAULTS), "outputDir"];
      const snake = k.includes("_") || k === k.toLowerCase();
      const candidate = closestKey(name, known);
      // Only a near miss is worth suggesting (a typo), not whichever name happens to be closest.
      const near =
        candidate && editDistance(name.toLowerCase(), candidate.toLowerCase()) <= Math.max(2, name.length / 4)
          ? candidate
          : undefined;
      const shown = near && snake ? near.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : near;
      throw new Error(
        `${path}: unknown key "${k}"` +
          (shown ? ` (did you mean "${shown}"?)` : "") +
          " — see ragtune train --help",
      );
    }
    out[name] = v;
  }
  return out as Partial<TrainingArguments>;
}

/** HF names that differ from ragtune's. */
const ALIASES: Record<string, string> = {
  evaluationStrategy: "evalStrategy",
  lrScheduler: "lrSchedulerType",
  perDeviceEvalBatchSize: "evalBatchSize",
};
