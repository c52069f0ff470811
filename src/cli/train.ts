// `ragtune train`: recipe steps 2–5 — baseline evaluation, fine-tuning with MatryoshkaLoss(MNRL), evaluation
// every epoch, best model, final model folder with a model card, and the before/after table.
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readPairs } from "../data/index.ts";
import { launchWorkers, ProcessGroup, readDistributedEnv } from "../distributed/index.ts";
import { cudaAvailable } from "../engine/index.ts";
import { compareEvaluations, formatComparison, formatComparisonMarkdown } from "../eval/compare.ts";
import { InformationRetrievalEvaluator } from "../eval/ir-evaluator.ts";
import { withPrefix } from "../eval/metric-names.ts";
import { buildRetrievalTask, skippedWarning, type RelevanceRule } from "../eval/retrieval-task.ts";
import { isHubIdSyntax } from "../export/card-facts.ts";
import { renderModelCard } from "../export/model-card.ts";
import { exportOnnx, type TransformersJsOptions } from "../export/onnx.ts";
import { renderUseLiteCard } from "../export/use-lite-card.ts";
import { exportUseLiteOnnx } from "../export/use-lite-onnx.ts";
import { exportUseLiteTfjs } from "../export/use-lite-tfjs.ts";
import { writeRunReport } from "../export/report-html.ts";
import { BertModel } from "../models/bert.ts";
import { XlmRobertaModel } from "../models/xlm-roberta.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import {
  readTrainingConfig,
  resolveTrainingArguments,
  RECIPE_DEFAULTS,
  splitLanguages,
  type TrainingArguments,
} from "../train/args.ts";
import { assertNotLocked, FINAL_DIR, openRunDir } from "../train/output-dir.ts";
import { train } from "../train/trainer.ts";
import { writeFileAtomic, writeJsonAtomic } from "../util/index.ts";
import {
  intListOption,
  numberOption,
  required,
  UsageError,
  type Command,
  type OptionTable,
  onOffOption,
} from "./args.ts";
import { deviceOptions, DEVICE_OPTIONS } from "./model-commands.ts";
import { PROMPT_OPTIONS, resolvePrompts } from "./prompt-options.ts";
import { cardInput } from "./train-card.ts";
import { RECIPE_DIMS } from "./eval.ts";

const d = RECIPE_DEFAULTS;
const TRAIN_OPTIONS: OptionTable = {
  model: {
    type: "string",
    arg: "M",
    help: "base model: folder, hub id (e.g. BAAI/bge-base-en-v1.5), or use-lite (Universal Sentence Encoder lite from npm)",
  },
  train: { type: "string", arg: "FILE", help: "training pairs (JSONL from ragtune prepare)" },
  eval: {
    type: "string",
    arg: "FILE",
    help: "evaluation pairs: their anchors are the queries; the corpus is the positives of --train and --eval",
  },
  out: {
    type: "string",
    arg: "DIR",
    help:
      "the run folder: checkpoints, logs, results, report; the final model goes to DIR/final (model files only, " +
      "as sentence-transformers' training examples save it: ragtune push DIR/final uploads no checkpoint or " +
      "optimizer state); must be empty or missing for a fresh run",
  },
  "overwrite-output-dir": {
    type: "boolean",
    help: "let a fresh run replace a non-empty --out (its checkpoints, log and final/ are removed first; HF's overwrite_output_dir)",
  },
  config: {
    type: "string",
    arg: "FILE",
    help: "JSON file of training arguments (camelCase or HF snake_case); flags override it",
  },
  epochs: { type: "string", arg: "N", help: "training epochs", doc: String(d.numTrainEpochs) },
  "batch-size": {
    type: "string",
    arg: "N",
    help: "pairs per micro-batch per device (in-batch negatives = N − 1; at least 2); the global batch is N × world size",
    doc: String(d.perDeviceTrainBatchSize),
  },
  "gradient-accumulation-steps": {
    type: "string",
    arg: "N",
    help: "micro-batches per optimizer step (does NOT add negatives)",
    doc: String(d.gradientAccumulationSteps),
  },
  "learning-rate": { type: "string", arg: "LR", help: "peak learning rate", doc: String(d.learningRate) },
  "warmup-ratio": {
    type: "string",
    arg: "F",
    help: "warmup share of the optimizer steps",
    doc: String(d.warmupRatio),
  },
  "warmup-steps": { type: "string", arg: "N", help: "warmup steps (overrides the ratio when > 0)" },
  "lr-scheduler": {
    type: "string",
    arg: "KIND",
    help: "linear, cosine, constant, constant_with_warmup",
    doc: d.lrSchedulerType,
  },
  "weight-decay": { type: "string", arg: "F", help: "AdamW weight decay", doc: String(d.weightDecay) },
  "max-grad-norm": {
    type: "string",
    arg: "F",
    help: "gradient clipping norm; 0 = no clipping, as in HF (the norm is still logged)",
    doc: String(d.maxGradNorm),
  },
  "skip-nonfinite-steps": {
    type: "boolean",
    help: "skip an update whose loss or gradient norm is NaN/Inf (counted, logged) instead of stopping the run",
  },
  "matryoshka-dims": {
    type: "string",
    arg: "D,…",
    help: "Matryoshka dims (default: the model's size and the recipe's smaller dims)",
  },
  loss: {
    type: "string",
    arg: "KIND",
    help:
      "mnrl, cached-mnrl (GradCache: the whole batch is negatives at mini-batch memory), gist (GISTEmbedLoss: " +
      "negatives the --guide-model finds closer to the anchor than its positive are masked as false negatives) or cached-gist",
    doc: d.loss,
  },
  "guide-model": {
    type: "string",
    arg: "G",
    help: "gist / cached-gist: the guide model (folder, hub id or use-lite; the base model itself is a common choice), loaded on the model's device, never trained",
  },
  "gist-temperature": {
    type: "string",
    arg: "F",
    help: "GISTEmbedLoss temperature (similarities / F)",
    doc: String(d.gistTemperature),
  },
  "gist-margin-strategy": {
    type: "string",
    arg: "absolute|relative",
    help: "mask a candidate when its guide similarity > g_ii − margin (absolute) or > g_ii × (1 − margin) (relative)",
    doc: d.gistMarginStrategy,
  },
  "gist-margin": { type: "string", arg: "F", help: "GISTEmbedLoss margin", doc: String(d.gistMargin) },
  "gist-contrast-anchors": {
    type: "string",
    arg: "on|off",
    help: "GISTEmbedLoss: also contrast each anchor with the other anchors",
    doc: "on",
  },
  "gist-contrast-positives": {
    type: "string",
    arg: "on|off",
    help: "GISTEmbedLoss: also contrast each positive with the other positives",
    doc: "on",
  },
  "mini-batch-size": {
    type: "string",
    arg: "N",
    help: "cached-mnrl: texts per forward pass",
    doc: String(d.miniBatchSize),
  },
  scale: { type: "string", arg: "F", help: "MNRL scale (1/temperature)", doc: String(d.scale) },
  symmetric: { type: "boolean", help: "symmetric MNRL (also positive → anchor)" },
  "gather-across-devices": {
    type: "boolean",
    help:
      "data parallel: each anchor also ranks against every other rank's positives and negatives (the global " +
      "batch's, as sentence-transformers' gather_across_devices; every loss; one all-gather per column and dim); " +
      "a no-op with a warning on one process",
  },
  "batch-sampler": {
    type: "string",
    arg: "KIND",
    help: "no_duplicates or batch_sampler",
    doc: d.batchSampler,
  },
  "length-grouped": {
    type: "string",
    arg: "N",
    help: "draw batches from length-sorted groups of N batches (cuts padding; 0 = off)",
    doc: "0",
  },
  packing: {
    type: "string",
    arg: "on|off",
    help: "padding-free (packed) forward passes; off runs the padded reference path (same batches either way)",
    doc: "on",
  },
  "fused-accumulation": {
    type: "string",
    arg: "auto|on|off",
    help: "one packed forward + backward per optimizer step over all its micro-batches, each with its own loss (auto: on for CUDA)",
    doc: d.fusedAccumulation,
  },
  "eval-strategy": { type: "string", arg: "S", help: "epoch, steps or no", doc: d.evalStrategy },
  "eval-steps": { type: "string", arg: "N", help: "with --eval-strategy steps" },
  "save-strategy": { type: "string", arg: "S", help: "epoch, steps or no (default: the eval strategy)" },
  "save-steps": { type: "string", arg: "N", help: "with --save-strategy steps" },
  "save-total-limit": {
    type: "string",
    arg: "N",
    help: "checkpoints kept (never the best)",
    doc: String(d.saveTotalLimit),
  },
  "logging-steps": {
    type: "string",
    arg: "N",
    help: "log every N optimizer steps",
    doc: String(d.loggingSteps),
  },
  "metric-for-best-model": {
    type: "string",
    arg: "KEY",
    help: "checked against the evaluator's keys before training (default eval_dim_128_cosine_ndcg@10)",
  },
  "no-load-best-model": { type: "boolean", help: "keep the last weights instead of the best checkpoint's" },
  "max-steps": { type: "string", arg: "N", help: "stop after N optimizer steps (overrides --epochs)" },
  bf16: { type: "boolean", help: "bf16 autocast on CUDA (default on; the CPU trains in float32)" },
  "no-bf16": { type: "boolean", help: "train in float32 on CUDA too" },
  seed: {
    type: "string",
    arg: "N",
    help: "seed of initialization, sampling and dropout",
    doc: String(d.seed),
  },
  resume: {
    type: "string",
    arg: "DIR|latest",
    help: "resume from a checkpoint folder, or the newest in --out",
  },
  ...PROMPT_OPTIONS,
  "default-prompt-name": {
    type: "string",
    arg: "NAME",
    help: "default_prompt_name saved with the model (query or document; default: none, as ST)",
  },
  relevance: {
    type: "string",
    arg: "RULE",
    help: "id (recipe) or text (identical passages are relevant too)",
    doc: "id",
  },
  "no-baseline": { type: "boolean", help: "skip the evaluation of the base model before training" },
  "model-name": { type: "string", arg: "NAME", help: "name in the model card" },
  license: {
    type: "string",
    arg: "ID",
    help: "license in the model card (e.g. mit, apache-2.0); default: the base model's README.md license, else none",
  },
  language: {
    type: "string",
    arg: "CODE",
    multiple: true,
    help: "language(s) in the model card (repeatable or a comma list: en,de); default: the base model's, else none",
  },
  "base-model": {
    type: "string",
    arg: "ID",
    help: "hub id recorded as the card's base_model (default: --model when it is a hub id; a folder is not recorded)",
  },
  "dataset-name": {
    type: "string",
    arg: "ID",
    help: "hub dataset id recorded in the card's datasets (the card names only the --train file's name otherwise)",
  },
  "no-onnx": {
    type: "boolean",
    help: "do not write the exports into DIR/final: onnx/model.onnx and onnx/model_quantized.onnx (q8) for transformers.js / ONNX Runtime, and for USE-lite onnx/model.onnx and tfjs/ (the USE npm package)",
  },
  "nproc-per-node": {
    type: "string",
    arg: "N",
    help: "data-parallel training on N worker processes of this machine (Gloo on CPU; one GPU each on CUDA)",
    doc: "1",
  },
  ...DEVICE_OPTIONS,
};

const bin = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));

/** The command line without --nproc-per-node (both `--nproc-per-node N` and `--nproc-per-node=N`). */
export function withoutNproc(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (a === "--nproc-per-node") i++;
    else if (!a.startsWith("--nproc-per-node=")) out.push(a);
  }
  return out;
}

export const trainCommand: Command = {
  name: "train",
  summary: "fine-tune with MatryoshkaLoss(MultipleNegativesRankingLoss), evaluate every epoch, keep the best",
  usage: "ragtune train --model M --train train.jsonl --eval test.jsonl --out DIR [options]",
  options: TRAIN_OPTIONS,
  notes:
    "Defaults are the reference recipe (4 epochs, batch 32 × accumulation 16, lr 2e-5, cosine, warmup 0.1, no-duplicates\n" +
    "batches, Matryoshka dims 768/512/256/128/64, best model by eval_dim_128_cosine_ndcg@10).\n" +
    "Gradient accumulation does not add in-batch negatives: each anchor still sees batch-size − 1 of them. The cached loss\n" +
    "(--loss cached-mnrl --batch-size 1024 --mini-batch-size 32) does: every pair of the large batch is a negative.\n" +
    "Every row is trained once per epoch: the step plan counts the batches the sampler really makes, and a batch of one\n" +
    "pair (no negative) is merged into a neighbouring batch that shares none of its texts.\n" +
    "The run folder --out holds the lock, checkpoint-*/, training_log.jsonl, baseline_results.json, eval_results.json,\n" +
    "comparison.md and report.html; the model goes to --out/final (config, weights, tokenizer, modules, README.md model\n" +
    'card, onnx/), the layout of sentence-transformers\' training examples (save_pretrained(f"{output_dir}/final")).\n' +
    "The card states only what the run knows: license and language from the flags or the base model's README.md,\n" +
    "base_model only for a hub id, the --train file's name (no path), bf16/tf32 as they ran (false on the CPU).\n" +
    "--out is locked while a run uses it (a second run fails at once, naming the holder's pid; a lock of a dead process\n" +
    "is taken over). A fresh run needs an empty --out (or --overwrite-output-dir); --resume continues the run of the\n" +
    "checkpoint, and checkpoint rotation deletes only this run's checkpoints.\n" +
    "A NaN/Inf loss or gradient norm stops the run with exit 1, naming the step; the last checkpoint is kept and no final\n" +
    "model is written (or see --skip-nonfinite-steps). Collapsed embeddings at an evaluation are warned about.\n" +
    "Data parallel (--nproc-per-node N, or any launcher that sets the torchrun variables: ragtune launch, torchrun\n" +
    "--no-python, Slurm): --batch-size is per device and the global batch is batch × world size, drawn from one seeded\n" +
    "sampler (no-duplicates over the global batch) and split into contiguous shards; gradients are averaged over ranks\n" +
    "once per optimizer step (DDP), so each rank's anchors see only its own shard's negatives, unless\n" +
    "--gather-across-devices: then they rank against the whole global batch, and the loss and the update over N ranks ×\n" +
    "B pairs equal one process's over the N·B pairs. Resuming with another world size works: the checkpoint names the\n" +
    "global batches, so keep the global batch (batch × ranks) and the remaining batches are the same.\n" +
    "A trailing global batch is trimmed to a multiple of the world size (dropped below 2 pairs per rank) so that all\n" +
    "ranks take the same steps. The logged loss is the mean over ranks; rank 0 alone logs, evaluates and saves.\n" +
    "--loss gist / cached-gist (sentence-transformers' GISTEmbedLoss / CachedGISTEmbedLoss inside MatryoshkaLoss) embed\n" +
    "every micro-batch with the guide too (the same prompted texts, no gradient); they take the per-micro-batch path\n" +
    "(no fused accumulation), and the model card lists the loss with its guide.",
  async run(values) {
    const modelId = required(values, "model");
    const trainFile = required(values, "train");
    const outDir = required(values, "out");
    const nproc =
      values["nproc-per-node"] === undefined
        ? 1
        : numberOption(values, "nproc-per-node", 1, { integer: true, min: 1, max: 1024 });
    const dist = readDistributedEnv();
    if (nproc > 1 && !dist) {
      // The launcher: N workers running this same command (without --nproc-per-node) under the torchrun variables.
      assertNotLocked(outDir);
      const argv = withoutNproc(process.argv.slice(2));
      const r = await launchWorkers({ nproc, command: [process.execPath, bin, ...argv] });
      process.exitCode = r.exitCode;
      return;
    }
    if (nproc > 1 && dist && dist.localWorldSize !== nproc)
      throw new UsageError(
        `--nproc-per-node ${nproc} under a launcher that started ${dist.localWorldSize} workers per node: leave --nproc-per-node out`,
      );
    const main = !dist || dist.rank === 0;
    if (main) assertNotLocked(outDir); // a second run into a busy folder fails before loading anything
    const fromFile = typeof values.config === "string" ? readTrainingConfig(values.config) : {};
    // Checked before deviceOptions(), whose CPU float16 message suits encode/eval but not training.
    const dtype = values.dtype;
    if (dtype === "float16" || dtype === "bfloat16")
      throw new UsageError(
        `--dtype ${dtype}: ragtune train keeps float32 weights (AdamW steps of a small learning rate vanish in ` +
          `16-bit weights, and the CPU has no float16 kernels); leave --dtype out (float32), or use --bf16 for ` +
          `mixed precision on CUDA`,
      );
    let device = deviceOptions(values).device ?? (cudaAvailable() ? "cuda" : "cpu");
    if (dist && device === "cuda") device = `cuda:${dist.localRank}`; // one GPU per worker
    const model = await SentenceTransformer.load(modelId, { ...deviceOptions(values), device });
    for (const w of model.warnings) process.stderr.write(`warning: ${w}\n`); // e.g. the pooling a plain folder got
    const full = model.embeddingDim;
    const dims =
      values["matryoshka-dims"] !== undefined
        ? intListOption(values, "matryoshka-dims", RECIPE_DIMS)
        : (fromFile.matryoshkaDims ?? defaultDims(full));
    // Prompts: the flags, else the config file's, else the base model's own "query" / "document" prompts (the
    // ones eval and encode would use with it), so training, evaluation and the saved model agree.
    const prompts = resolvePrompts(model, {
      ...(fromFile.queryPrompt != null ? { "query-prompt": fromFile.queryPrompt } : {}),
      ...(fromFile.corpusPrompt != null ? { "corpus-prompt": fromFile.corpusPrompt } : {}),
      ...values,
    });
    const args = resolveTrainingArguments(
      derivedDefaults({
        ...fromFile,
        ...flagsToArgs(values, dims),
        queryPrompt: prompts.query || null,
        corpusPrompt: prompts.corpus || null,
        outputDir: outDir,
      }),
    );
    for (const [flag, id] of [
      ["--base-model", args.baseModel],
      ["--dataset-name", args.datasetName],
    ] as const)
      if (id !== null && !isHubIdSyntax(id))
        throw new UsageError(`${flag} must be a Hugging Face hub id (owner/name), got "${id}"`);
    const defaultPromptName = values["default-prompt-name"];
    if (defaultPromptName !== undefined && defaultPromptName !== "query" && defaultPromptName !== "document")
      throw new UsageError(
        `--default-prompt-name must be query or document, got "${String(defaultPromptName)}"`,
      );

    // The guide of a gist loss embeds every micro-batch: on the trained model's device, float32, eval mode.
    const guide = args.guideModel
      ? await SentenceTransformer.load(args.guideModel, { device: model.device })
      : undefined;
    for (const w of guide?.warnings ?? []) process.stderr.write(`warning: guide model: ${w}\n`);

    const trainRead = await readPairs(trainFile);
    const trainPairs = trainRead.records;
    let evaluator: InformationRetrievalEvaluator | undefined;
    if (typeof values.eval === "string") {
      const evalRead = await readPairs(values.eval);
      const evalPairs = evalRead.records;
      const rule = (values.relevance as string | undefined) ?? "id";
      if (rule !== "id" && rule !== "text")
        throw new UsageError(`--relevance must be id or text, got "${rule}"`);
      const task = buildRetrievalTask(evalPairs, [...trainPairs, ...evalPairs], rule as RelevanceRule, {
        ids:
          trainRead.report.columns.id !== undefined && evalRead.report.columns.id !== undefined
            ? "explicit"
            : "content",
      });
      const skipped = skippedWarning(task, evalPairs.length);
      if (skipped) process.stderr.write(`warning: ${skipped}\n`);
      evaluator = new InformationRetrievalEvaluator({
        queries: task.queries,
        corpus: task.corpus,
        relevantDocs: task.relevantDocs,
        dims: args.matryoshkaDims,
        batchSize: args.evalBatchSize,
        ...(args.queryPrompt ? { queryPrompt: args.queryPrompt } : {}),
        ...(args.corpusPrompt ? { corpusPrompt: args.corpusPrompt } : {}),
        progress: process.stderr.isTTY,
      });
    } else if (args.evalStrategy !== "no") {
      throw new UsageError(
        "--eval FILE is needed for evaluation (or pass --eval-strategy no --no-load-best-model)",
      );
    }

    // Data parallel: join the group (rank 0 hosts the rendezvous); the other ranks only train, then wait for rank
    // 0's final save at a barrier.
    const pg = dist ? ProcessGroup.fromEnv({ backend: ProcessGroup.backendFor(device) }) : null;
    if (pg && !pg.isMain) {
      try {
        train({ model, train: trainPairs, ...(evaluator ? { evaluator } : {}), args, processGroup: pg });
        pg.barrier();
      } finally {
        pg.destroy();
        model.dispose();
      }
      return;
    }
    // The folder is locked and checked (fresh: empty, or --overwrite-output-dir; resume: the checkpoint's run)
    // before anything is written into it, and stays locked through the final save.
    const run = openRunDir(outDir, {
      resumeFromCheckpoint: args.resumeFromCheckpoint,
      overwriteOutputDir: args.overwriteOutputDir,
    });
    try {
      let baseline: Record<string, number> | null = null;
      if (evaluator && !values["no-baseline"]) {
        process.stderr.write("baseline evaluation of the base model …\n");
        baseline = withPrefix("eval", evaluator.evaluate(model).metrics);
        writeJsonAtomic(join(outDir, "baseline_results.json"), {
          ...baseline,
          corpusFingerprint: evaluator.corpusFingerprint,
        });
      }

      const result = train({
        model,
        train: trainPairs,
        ...(evaluator ? { evaluator } : {}),
        ...(guide ? { guide } : {}),
        args,
        run,
        ...(pg ? { processGroup: pg } : {}),
      });
      const finalMetrics =
        evaluator && Object.keys(result.finalMetrics).length === 0
          ? withPrefix("eval", evaluator.evaluate(model).metrics)
          : result.finalMetrics;
      // The prompts trained with are saved as "query" / "document" (config_sentence_transformers.json), so the
      // saved model gets them back in eval / encode --as / mine-negatives and in ST's encode_query / encode_document.
      model.setPrompts(
        { query: args.queryPrompt ?? "", document: args.corpusPrompt ?? "" },
        typeof defaultPromptName === "string" ? defaultPromptName : undefined,
      );
      // The final model goes to --out/final, model files only (checkpoints, logs and results stay in the run
      // folder); the card is written last, once the folder's exports are known (its snippets load what is there).
      const finalDir = join(outDir, FINAL_DIR);
      model.save(finalDir);
      const exportsOn = !values["no-onnx"];
      const use = model.useLite;
      if (exportsOn && use) {
        // tfjs/: the original USE-lite graph with the fine-tuned weights, for the USE npm package.
        const tfjs = exportUseLiteTfjs(use, finalDir);
        process.stderr.write(
          `wrote ${join(finalDir, "tfjs")} (${(tfjs.bytes / 1e6).toFixed(1)} MB) for @tensorflow-models/universal-sentence-encoder\n`,
        );
      }
      // src/export/onnx.ts writes BERT and XLM-RoBERTa graphs, src/export/use-lite-onnx.ts USE-lite's.
      const onnxable = model.encoder instanceof BertModel || model.encoder instanceof XlmRobertaModel;
      if (exportsOn && !onnxable && !use)
        process.stderr.write(
          `note: no onnx/model.onnx: ONNX export supports BERT, XLM-RoBERTa and USE-lite encoders only, not ${model.encoder.constructor.name}\n`,
        );
      let onnxFiles: string[] = [];
      let transformersJs: TransformersJsOptions | null = null;
      if (exportsOn && (onnxable || use)) {
        // onnx/model.onnx makes the folder loadable by transformers.js (BERT family) or onnxruntime (USE-lite:
        // ids + mask in, the pooled and normalized embedding out).
        const onnx = use ? exportUseLiteOnnx(use, finalDir) : exportOnnx(model, finalDir);
        for (const w of onnx.warnings) process.stderr.write(`warning: ${w}\n`);
        const quantized = onnx.quantized;
        process.stderr.write(
          `wrote ${join(finalDir, onnx.files[0] ?? "onnx/model.onnx")} (${(onnx.bytes / 1e6).toFixed(1)} MB)` +
            (quantized ? ` and ${quantized.file} (${(quantized.bytes / 1e6).toFixed(1)} MB, q8)` : "") +
            ` for ${use ? "onnxruntime" : "transformers.js"}\n`,
        );
        onnxFiles = onnx.files.map((f) => f.replace(/\\/g, "/"));
        transformersJs = onnx.transformersJs;
      }
      const facts = await cardInput({
        modelId,
        model,
        args,
        trainFile,
        train: trainPairs,
        ...(evaluator ? { evaluator } : {}),
        result,
        metrics: finalMetrics,
        finalDir,
        onnxFiles,
        transformersJs,
        run: { device: model.device, worldSize: dist?.worldSize ?? 1, evaluated: evaluator !== undefined },
      });
      // USE-lite is not a sentence-transformers model: its own card (src/export/use-lite-card.ts).
      const card = use
        ? renderUseLiteCard(
            {
              modelName: facts.modelName,
              datasetName: facts.dataset.name,
              trainExamples: facts.dataset.size,
              ...(facts.evalQueries === undefined ? {} : { evalQueries: facts.evalQueries }),
              ...(facts.evalCorpus === undefined ? {} : { evalCorpus: facts.evalCorpus }),
              numParameters: use.numParameters(),
              losses: facts.losses,
              hyperparameters: facts.hyperparameters.all,
              metrics: facts.metrics,
              dims: facts.dims,
              ...(facts.trainingLogs ? { trainingLogs: facts.trainingLogs } : {}),
              versions: facts.versions,
              // USE-lite's card cites the USE paper itself and the losses, not sentence-transformers.
              citations: Object.entries(facts.citations)
                .filter(([name]) => name !== "Sentence Transformers")
                .map(([, bib]) => bib),
              tfjs: exportsOn,
              onnx: exportsOn,
            },
            {
              ...(facts.license ? { license: facts.license } : {}),
              ...(facts.languages.length > 0 ? { language: facts.languages.join(", ") } : {}),
              ...(facts.dataset.hubId ? { datasetName: facts.dataset.hubId } : {}),
            },
          )
        : renderModelCard(facts);
      writeFileAtomic(join(finalDir, "README.md"), card);
      // The corpus it was scored on (the positives of --train and --eval): compare refuses another corpus's results.
      writeJsonAtomic(join(outDir, "eval_results.json"), {
        ...finalMetrics,
        ...(evaluator ? { corpusFingerprint: evaluator.corpusFingerprint } : {}),
      });
      process.stderr.write(
        `saved the final model to ${finalDir}` +
          (result.bestCheckpoint && args.loadBestModelAtEnd
            ? ` (the weights of the best checkpoint, ${basename(result.bestCheckpoint)})`
            : "") +
          ` (${result.seconds.toFixed(0)} s)\n`,
      );
      if (baseline && Object.keys(finalMetrics).length > 0) {
        const c = compareEvaluations(baseline, finalMetrics);
        process.stdout.write(formatComparison(c) + "\n");
        writeFileAtomic(join(outDir, "comparison.md"), formatComparisonMarkdown(c) + "\n");
      }
      // report.html: config, curves and metrics of this run in one offline file (ragtune report re-makes it
      // after ragtune eval --precision / --per-query have added their results).
      process.stderr.write(`report: ${await writeRunReport(outDir)}\n`);
      pg?.barrier(); // the other ranks exit once the model is saved
    } finally {
      run.release();
      pg?.destroy();
    }
    model.dispose();
    guide?.dispose();
  },
};

/** The model's own size, then the recipe's smaller dims. */
export function defaultDims(full: number): number[] {
  return [full, ...RECIPE_DIMS.filter((x) => x < full)];
}

function flagsToArgs(v: Record<string, unknown>, dims: number[]): Partial<TrainingArguments> {
  const num = (name: string, fallback: number, check: { integer?: boolean; min?: number } = {}) =>
    numberOption(v, name, fallback, check);
  const str = (name: string) => (typeof v[name] === "string" ? (v[name] as string) : undefined);
  const given = (name: string) => v[name] !== undefined;
  const out: Partial<TrainingArguments> = { matryoshkaDims: dims };
  // Only flags the user gave override the config file (the defaults live in RECIPE_DEFAULTS).
  const pick = <K extends keyof TrainingArguments>(
    key: K,
    flag: string,
    value: () => TrainingArguments[K],
  ) => {
    if (given(flag)) out[key] = value();
  };
  pick("numTrainEpochs", "epochs", () => num("epochs", d.numTrainEpochs, { integer: true, min: 1 }));
  pick("perDeviceTrainBatchSize", "batch-size", () =>
    num("batch-size", d.perDeviceTrainBatchSize, { integer: true, min: 1 }),
  );
  pick("gradientAccumulationSteps", "gradient-accumulation-steps", () =>
    num("gradient-accumulation-steps", d.gradientAccumulationSteps, { integer: true, min: 1 }),
  );
  pick("learningRate", "learning-rate", () => num("learning-rate", d.learningRate, { min: 0 }));
  pick("warmupRatio", "warmup-ratio", () => num("warmup-ratio", d.warmupRatio, { min: 0 }));
  pick("warmupSteps", "warmup-steps", () => num("warmup-steps", 0, { integer: true, min: 0 }));
  pick("lrSchedulerType", "lr-scheduler", () => str("lr-scheduler") as TrainingArguments["lrSchedulerType"]);
  pick("weightDecay", "weight-decay", () => num("weight-decay", d.weightDecay, { min: 0 }));
  pick("maxGradNorm", "max-grad-norm", () => num("max-grad-norm", d.maxGradNorm ?? 0, { min: 0 }));
  pick("loss", "loss", () => str("loss") as TrainingArguments["loss"]);
  pick("miniBatchSize", "mini-batch-size", () =>
    num("mini-batch-size", d.miniBatchSize, { integer: true, min: 1 }),
  );
  pick("scale", "scale", () => num("scale", d.scale, { min: 0 }));
  pick("guideModel", "guide-model", () => str("guide-model")!);
  pick("gistTemperature", "gist-temperature", () => num("gist-temperature", d.gistTemperature, { min: 0 }));
  pick("gistMargin", "gist-margin", () => num("gist-margin", d.gistMargin, { min: 0 }));
  pick("gistMarginStrategy", "gist-margin-strategy", () => {
    const value = str("gist-margin-strategy");
    if (value !== "absolute" && value !== "relative")
      throw new UsageError(`--gist-margin-strategy must be absolute or relative, got "${value}"`);
    return value;
  });
  pick("gistContrastAnchors", "gist-contrast-anchors", () => onOffOption(v, "gist-contrast-anchors", true));
  pick("gistContrastPositives", "gist-contrast-positives", () =>
    onOffOption(v, "gist-contrast-positives", true),
  );
  pick("batchSampler", "batch-sampler", () => str("batch-sampler") as TrainingArguments["batchSampler"]);
  pick("lengthGroupedBatches", "length-grouped", () => num("length-grouped", 0, { integer: true, min: 0 }));
  pick("packing", "packing", () => onOffOption(v, "packing", true));
  pick("fusedAccumulation", "fused-accumulation", () => {
    const value = str("fused-accumulation");
    if (value !== "auto" && value !== "on" && value !== "off")
      throw new UsageError(`--fused-accumulation must be auto, on or off, got "${value}"`);
    return value;
  });
  pick("evalStrategy", "eval-strategy", () => str("eval-strategy") as TrainingArguments["evalStrategy"]);
  pick("evalSteps", "eval-steps", () => num("eval-steps", d.evalSteps, { integer: true, min: 1 }));
  pick("saveStrategy", "save-strategy", () => str("save-strategy") as TrainingArguments["saveStrategy"]);
  pick("saveSteps", "save-steps", () => num("save-steps", d.saveSteps, { integer: true, min: 1 }));
  pick("saveTotalLimit", "save-total-limit", () => num("save-total-limit", 3, { integer: true, min: 1 }));
  pick("loggingSteps", "logging-steps", () =>
    num("logging-steps", d.loggingSteps, { integer: true, min: 1 }),
  );
  pick("maxSteps", "max-steps", () => num("max-steps", -1, { integer: true, min: 1 }));
  pick("seed", "seed", () => num("seed", d.seed, { integer: true, min: 0 }));
  if (v.symmetric) out.symmetric = true;
  if (v["gather-across-devices"]) out.gatherAcrossDevices = true;
  if (v["overwrite-output-dir"]) out.overwriteOutputDir = true;
  if (v["skip-nonfinite-steps"]) out.skipNonfiniteSteps = true;
  if (v["no-load-best-model"]) out.loadBestModelAtEnd = false;
  if (v["no-bf16"]) out.bf16 = false;
  if (v.bf16) out.bf16 = true;
  if (str("resume")) out.resumeFromCheckpoint = str("resume")!;
  if (str("model-name")) out.modelName = str("model-name")!;
  if (str("license")) out.license = str("license")!;
  if (Array.isArray(v.language)) out.language = (v.language as string[]).flatMap(splitLanguages);
  if (str("base-model")) out.baseModel = str("base-model")!;
  if (str("dataset-name")) out.datasetName = str("dataset-name")!;
  if (str("metric-for-best-model")) out.metricForBestModel = str("metric-for-best-model")!;
  return out;
}

/**
 * Defaults that follow from other arguments, whether they came from flags or the config file: the best-model
 * metric at the smallest dim when 128 is not trained; saving follows evaluation (the best model needs a
 * checkpoint at every evaluation); no best model without evaluation.
 */
function derivedDefaults(
  a: Partial<TrainingArguments> & { outputDir: string },
): Partial<TrainingArguments> & { outputDir: string } {
  const out = { ...a };
  const dims = out.matryoshkaDims ?? d.matryoshkaDims;
  if (out.metricForBestModel === undefined && !dims.includes(128))
    out.metricForBestModel = `eval_dim_${dims[dims.length - 1]}_cosine_ndcg@10`;
  if (out.saveStrategy === undefined && out.evalStrategy !== undefined) out.saveStrategy = out.evalStrategy;
  if (out.saveSteps === undefined && out.evalSteps !== undefined) out.saveSteps = out.evalSteps;
  if (out.evalStrategy === "no" && out.loadBestModelAtEnd === undefined) out.loadBestModelAtEnd = false;
  return out;
}
