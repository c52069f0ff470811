// The facts of a finished `ragtune train` run that its model card states, gathered from what actually ran: the
// hyperparameters as used (precision as it ran on the device, not as requested), the base model and dataset as
// the card may name them (hub ids only as hub ids, file names instead of paths), the base model's own license and
// languages, the dataset's column statistics, the widget's examples, the architecture, the versions that ran and
// the citations of each loss used. renderModelCard (src/export/model-card.ts) turns them into README.md.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join, relative, isAbsolute, basename } from "node:path";
import type { PairRecord } from "../data/index.ts";
import { buildInfo } from "../engine/index.ts";
import type { InformationRetrievalEvaluator } from "../eval/ir-evaluator.ts";
import { datasetStats, widgetExamples } from "../export/card-data.ts";
import {
  baseModelFacts,
  datasetFileName,
  frontMatterOf,
  isHubIdSyntax,
  type BaseModelFacts,
} from "../export/card-facts.ts";
import { MATRYOSHKA_CITATION, SBERT_CITATION, type ModelCardInput } from "../export/model-card.ts";
import type { TransformersJsOptions } from "../export/onnx.ts";
import {
  CachedMultipleNegativesRankingLoss,
  GISTEmbedLoss,
  MultipleNegativesRankingLoss,
} from "../losses/index.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import { ACTIVATION_FULLNAME, LEGACY_POOLING_FLAGS } from "../models/st-folder.ts";
import { USE_LITE_PACKAGE } from "../models/use-lite.ts";
import { ragtuneVersion } from "../models/st-folder-write.ts";
import { resolveModelPath } from "../hub/index.ts";
import { RECIPE_DEFAULTS, type TrainingArguments } from "../train/args.ts";
import { useFusedAccumulation } from "../train/fused-accumulation.ts";
import { FINAL_DIR } from "../train/output-dir.ts";
import type { LossCard, TrainResult } from "../train/trainer.ts";
import { readJsonFile } from "../util/index.ts";

// ---------------------------------------------------------------------------------------------------------
// Hyperparameters as they ran

/** HF TrainingArguments' (and sentence-transformers' batch_sampler) defaults: what "non-default" is measured by. */
const HF_DEFAULTS: Record<string, unknown> = {
  eval_strategy: "no",
  per_device_train_batch_size: 8,
  per_device_eval_batch_size: 8,
  gradient_accumulation_steps: 1,
  learning_rate: 5e-5,
  weight_decay: 0,
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  max_grad_norm: 1,
  num_train_epochs: 3,
  max_steps: -1,
  lr_scheduler_type: "linear",
  warmup_ratio: 0,
  warmup_steps: 0,
  logging_steps: 500,
  save_strategy: "steps",
  save_steps: 500,
  save_total_limit: null,
  seed: 42,
  fp16: false,
  bf16: false,
  tf32: null,
  load_best_model_at_end: false,
  metric_for_best_model: null,
  batch_sampler: "batch_sampler",
  // ragtune's own settings: measured against ragtune's defaults
  world_size: 1,
  packing: RECIPE_DEFAULTS.packing,
  fused_accumulation: "off",
  length_grouped_batches: RECIPE_DEFAULTS.lengthGroupedBatches,
  skip_nonfinite_steps: RECIPE_DEFAULTS.skipNonfiniteSteps,
};

export interface RunFacts {
  /** The device the model trained on ("cpu", "cuda:0"). */
  device: string;
  /** Data-parallel ranks (1 without --nproc-per-node / a launcher). */
  worldSize: number;
  /** True when an evaluator ran (eval_strategy is "no" otherwise, whatever the argument said). */
  evaluated: boolean;
}

/**
 * The hyperparameters with HF's names and the values the run used: precision as it ran (bf16 autocast and TF32
 * are CUDA features here, so a CPU run says false whatever was asked; ragtune has no fp16 training), the evaluation
 * and best-model settings only as far as an evaluation ran, the fused accumulation as resolved for the device
 * and loss. `nonDefault` holds those that differ from HF TrainingArguments' defaults (ragtune's own settings: from
 * ragtune's), as sentence-transformers' cards list them.
 */
export function hyperparametersAsRun(
  a: TrainingArguments,
  run: RunFacts,
): { nonDefault: Record<string, unknown>; all: Record<string, unknown> } {
  const onCuda = run.device.startsWith("cuda");
  const evalStrategy = run.evaluated ? a.evalStrategy : "no";
  const fused = a.loss === "mnrl" && useFusedAccumulation(a.fusedAccumulation, run.device); // cached and GIST losses never fuse
  const all: Record<string, unknown> = {
    eval_strategy: evalStrategy,
    ...(evalStrategy === "steps" ? { eval_steps: a.evalSteps } : {}),
    per_device_train_batch_size: a.perDeviceTrainBatchSize,
    ...(run.evaluated ? { per_device_eval_batch_size: a.evalBatchSize } : {}),
    gradient_accumulation_steps: a.gradientAccumulationSteps,
    learning_rate: a.learningRate,
    weight_decay: a.weightDecay,
    adam_beta1: a.adamBeta1,
    adam_beta2: a.adamBeta2,
    adam_epsilon: a.adamEpsilon,
    max_grad_norm: a.maxGradNorm ?? 0,
    num_train_epochs: a.numTrainEpochs,
    max_steps: a.maxSteps,
    lr_scheduler_type: a.lrSchedulerType,
    warmup_ratio: a.warmupRatio,
    warmup_steps: a.warmupSteps,
    logging_steps: a.loggingSteps,
    save_strategy: a.saveStrategy,
    ...(a.saveStrategy === "steps" ? { save_steps: a.saveSteps } : {}),
    save_total_limit: a.saveTotalLimit,
    seed: a.seed,
    fp16: false,
    bf16: a.bf16 && onCuda,
    tf32: a.tf32 && onCuda,
    load_best_model_at_end: a.loadBestModelAtEnd && run.evaluated,
    ...(a.loadBestModelAtEnd && run.evaluated ? { metric_for_best_model: a.metricForBestModel } : {}),
    batch_sampler: a.batchSampler,
    world_size: run.worldSize,
    ...(a.gatherAcrossDevices && run.worldSize > 1 ? { gather_across_devices: true } : {}),
    packing: a.packing,
    fused_accumulation: fused ? "on" : "off",
    length_grouped_batches: a.lengthGroupedBatches,
    skip_nonfinite_steps: a.skipNonfiniteSteps,
  };
  const nonDefault = Object.fromEntries(Object.entries(all).filter(([k, v]) => HF_DEFAULTS[k] !== v));
  return { nonDefault, all };
}

// ---------------------------------------------------------------------------------------------------------
// Losses and their citations

/** A model reference (a guide model) as the card may print it: a hub id, else words without a path. */
function modelReference(id: string): string {
  const facts = baseModelFacts(id, null, id === "use-lite" ? "USE-lite (npm)" : undefined);
  return facts.hubId ?? facts.description;
}

/** The losses' configs with every model reference (GIST's guide) reduced to what a card may print. */
export function cardLosses(losses: readonly LossCard[]): LossCard[] {
  return losses.map((l) => ({
    name: l.name,
    config: Object.fromEntries(
      Object.entries(l.config).map(([k, v]) => [
        k,
        k === "guide" && typeof v === "string" ? modelReference(v) : v,
      ]),
    ),
  }));
}

/** sentence-transformers' citation, then each loss used: its paper (GradCache for a cached loss). */
export function citationsFor(losses: readonly LossCard[]): Record<string, string> {
  const out: Record<string, string> = { "Sentence Transformers": SBERT_CITATION };
  for (const { name } of losses) {
    if (name === "MatryoshkaLoss") out[name] = MATRYOSHKA_CITATION;
    else if (name === "MultipleNegativesRankingLoss") out[name] = new MultipleNegativesRankingLoss().citation;
    else if (name === "CachedMultipleNegativesRankingLoss") {
      out.MultipleNegativesRankingLoss = new MultipleNegativesRankingLoss().citation;
      out[name] = new CachedMultipleNegativesRankingLoss().citation;
    } else if (name === "GISTEmbedLoss") out[name] = new GISTEmbedLoss().citation;
    else if (name === "CachedGISTEmbedLoss") {
      out.GISTEmbedLoss = new GISTEmbedLoss().citation;
      out[name] = new CachedMultipleNegativesRankingLoss().citation; // GradCache
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The model

/** Python's repr of a flat dict of strings, numbers and booleans ({'a': 1, 'b': True}). */
function pyDict(o: Record<string, string | number | boolean | null>): string {
  const repr = (v: string | number | boolean | null) =>
    v === null
      ? "None"
      : typeof v === "boolean"
        ? v
          ? "True"
          : "False"
        : typeof v === "string"
          ? `'${v}'`
          : String(v);
  return `{${Object.entries(o)
    .map(([k, v]) => `'${k}': ${repr(v)}`)
    .join(", ")}}`;
}

/** The module list as sentence-transformers 5 prints a model (`print(model)`). */
export function architectureString(model: SentenceTransformer, architecture: string): string {
  const lines = model.spec.modules.map((m, i) => {
    switch (m.kind) {
      case "transformer":
        return `(${i}): Transformer(${pyDict({ max_seq_length: model.maxSeqLength, do_lower_case: model.spec.doLowerCase, architecture })})`;
      case "pooling": {
        const c: Record<string, string | number | boolean> = {
          word_embedding_dimension: m.config.embeddingDimension,
        };
        for (const [key, mode] of LEGACY_POOLING_FLAGS) c[key] = m.config.modes.includes(mode);
        const ordered: Record<string, string | number | boolean> = {
          word_embedding_dimension: c.word_embedding_dimension!,
          pooling_mode_cls_token: c.pooling_mode_cls_token!,
          pooling_mode_mean_tokens: c.pooling_mode_mean_tokens!,
          pooling_mode_max_tokens: c.pooling_mode_max_tokens!,
          pooling_mode_mean_sqrt_len_tokens: c.pooling_mode_mean_sqrt_len_tokens!,
          pooling_mode_weightedmean_tokens: c.pooling_mode_weightedmean_tokens!,
          pooling_mode_lasttoken: c.pooling_mode_lasttoken!,
          include_prompt: m.config.includePrompt,
        };
        return `(${i}): Pooling(${pyDict(ordered)})`;
      }
      case "dense":
        return `(${i}): Dense(${pyDict({
          in_features: m.config.inFeatures,
          out_features: m.config.outFeatures,
          bias: m.config.bias,
          activation_function: ACTIVATION_FULLNAME[m.config.activation],
        })})`;
      case "normalize":
        return `(${i}): Normalize()`;
    }
  });
  return ["SentenceTransformer(", ...lines.map((l) => `  ${l}`), ")"].join("\n");
}

/** config.json `architectures[0]` of a saved folder (the class transformers loads), else the encoder's name. */
function architectureOf(dir: string, model: SentenceTransformer): string {
  try {
    const cfg = readJsonFile(join(dir, "config.json")) as { architectures?: unknown };
    if (Array.isArray(cfg.architectures) && typeof cfg.architectures[0] === "string")
      return cfg.architectures[0];
  } catch {
    // fall through to the encoder's own name
  }
  return model.encoder.constructor.name;
}

/** The installed USE-lite package's version ("" when it cannot be read). */
function useLitePackageVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require(`${USE_LITE_PACKAGE}/package.json`) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "";
  } catch {
    return "";
  }
}

/**
 * The base model as the card names it, with the license and languages it declares (its README.md front matter,
 * from the local folder or the hub snapshot already in the cache), the flags taking precedence.
 */
export async function baseModelCardFacts(
  modelId: string,
  a: TrainingArguments,
): Promise<{ base: BaseModelFacts; license: string | null; languages: string[] }> {
  const useLite = modelId === "use-lite";
  const version = useLite ? useLitePackageVersion() : "";
  const base = baseModelFacts(
    modelId,
    a.baseModel,
    useLite
      ? `Universal Sentence Encoder lite (USE-lite) from the npm package ${USE_LITE_PACKAGE}${version ? `@${version}` : ""}`
      : undefined,
  );
  let declared = {};
  if (!useLite) {
    const dir = existsSync(modelId)
      ? modelId
      : isHubIdSyntax(modelId)
        ? await resolveModelPath(modelId, { localFilesOnly: true, progress: false }).catch(() => null)
        : null;
    if (dir) declared = frontMatterOf(dir);
  }
  const d = declared as { license?: string; languages?: string[] };
  return { base, license: a.license ?? d.license ?? null, languages: a.language ?? d.languages ?? [] };
}

/** The usage snippets' path of the final folder: relative to the working directory when inside it. */
export function snippetFolder(finalDir: string): string {
  const rel = relative(process.cwd(), finalDir);
  if (rel !== "" && !rel.startsWith("..") && !isAbsolute(rel)) return rel.replace(/\\/g, "/");
  return `${basename(join(finalDir, ".."))}/${FINAL_DIR}`;
}

/** Everything the card states about the run. */
export interface CardRun {
  modelId: string;
  model: SentenceTransformer;
  args: TrainingArguments;
  trainFile: string;
  train: readonly PairRecord[];
  evaluator?: InformationRetrievalEvaluator;
  result: TrainResult;
  metrics: Record<string, number>;
  finalDir: string;
  /** The ONNX files written into finalDir and the transformers.js options that reproduce the model. */
  onnxFiles: readonly string[];
  transformersJs: TransformersJsOptions | null;
  run: RunFacts;
}

/** The model card input of a finished run. */
export async function cardInput(r: CardRun): Promise<ModelCardInput> {
  const { model, args } = r;
  const facts = await baseModelCardFacts(r.modelId, args);
  const negatives = r.train[0]?.negatives?.length ?? 0;
  const columns = ["anchor", "positive", ...Array.from({ length: negatives }, (_, i) => `negative_${i + 1}`)];
  const rows = r.train.map((p) => [p.anchor, p.positive, ...(p.negatives ?? [])]);
  const stats = datasetStats(columns, rows, (t) =>
    Math.min(model.countTokens(t, model.maxSeqLength), model.maxSeqLength),
  );
  const losses = cardLosses(r.result.losses);
  const stModel = !model.useLite;
  return {
    modelName: args.modelName ?? `${basename(r.modelId)} fine-tuned with ragtune (Matryoshka)`,
    baseModel: facts.base,
    languages: facts.languages,
    license: facts.license,
    dataset: {
      name: datasetFileName(r.trainFile),
      hubId: args.datasetName,
      size: r.train.length,
      columns,
      stats,
    },
    ...(r.evaluator
      ? { evalQueries: r.evaluator.queryIds.length, evalCorpus: r.evaluator.corpusIds.length }
      : {}),
    embeddingDim: model.embeddingDim,
    maxSeqLength: model.maxSeqLength,
    similarityFnName: model.similarityFnName,
    architecture: stModel ? architectureString(model, architectureOf(r.finalDir, model)) : null,
    folder: snippetFolder(r.finalDir),
    sentenceTransformers: stModel,
    transformersJs: r.transformersJs ? { ...r.transformersJs, onnxFiles: r.onnxFiles } : null,
    prompts: model.spec.prompts,
    defaultPromptName: model.spec.defaultPromptName,
    losses,
    hyperparameters: hyperparametersAsRun(args, r.run),
    metrics: r.metrics,
    dims: args.matryoshkaDims,
    trainingLogs: r.result.logHistory
      .filter((e) => typeof e[`eval_dim_${args.matryoshkaDims[0]}_cosine_ndcg@10`] === "number")
      .map((e) => ({
        epoch: e.epoch!,
        step: e.step!,
        ...Object.fromEntries(
          args.matryoshkaDims.map((dd) => [`dim_${dd}_cosine_ndcg@10`, e[`eval_dim_${dd}_cosine_ndcg@10`]!]),
        ),
      })),
    widget: r.evaluator ? widgetExamples(r.evaluator) : [],
    versions: { ragtune: ragtuneVersion(), libtorch: buildInfo().torchVersion, "Node.js": process.version },
    citations: citationsFor(r.result.losses),
  };
}
