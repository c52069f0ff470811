// `ragtune eval`: the information-retrieval evaluation at every Matryoshka dim (recipe step 2), as a table and
// as JSON with sentence-transformers' metric keys.
import { readPairs } from "../data/index.ts";
import { InformationRetrievalEvaluator, type IrEvaluation } from "../eval/ir-evaluator.ts";
import { buildRetrievalTask, skippedWarning, type RelevanceRule } from "../eval/retrieval-task.ts";
import { formatMetricsTable } from "../eval/report.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { writeJsonAtomic } from "../util/index.ts";
import { DEVICE_OPTIONS, deviceOptions, applyPacking, PACKING_OPTION } from "./model-commands.ts";
import { EVAL_EXTRA_NOTES, EVAL_EXTRA_OPTIONS, EvalExtras } from "./eval-extras.ts";
import { intListOption, numberOption, required, UsageError, type Command } from "./args.ts";
import { PROMPT_OPTIONS, resolvePrompts } from "./prompt-options.ts";

export const RECIPE_DIMS = [768, 512, 256, 128, 64];

export const evalCommand: Command = {
  name: "eval",
  summary: "retrieval metrics (nDCG@10, MRR@10, recall@k, …) at every Matryoshka dimension",
  usage:
    "ragtune eval --model M --queries test.jsonl --corpus train.jsonl,test.jsonl [--dims 768,512,256,128,64] [--query-prompt TEXT] [--corpus-prompt TEXT] [--json out.json] [--precision float32,int8,uint8,binary,ubinary [--rescore N] [--calibration FILE]] [--per-query FILE]",
  options: {
    model: { type: "string", arg: "M", help: "model folder or hub id" },
    queries: { type: "string", arg: "FILE", help: "pair file whose anchors are the queries" },
    corpus: {
      type: "string",
      arg: "FILES",
      help: "comma-separated pair files whose positives form the corpus",
    },
    dims: {
      type: "string",
      arg: "D,…",
      help: "Matryoshka dims (default: 768,512,256,128,64 capped at the model's size)",
    },
    relevance: {
      type: "string",
      arg: "RULE",
      help:
        "id: the query's own pair (recipe); text: also identical passages. Files without an id column are matched " +
        "by passage text (never by row position)",
      default: "id",
    },
    ...PROMPT_OPTIONS,
    "batch-size": { type: "string", arg: "N", help: "texts per forward pass", default: "32" },
    score: { type: "string", arg: "FN", help: "cosine, dot, or cosine,dot", default: "cosine" },
    json: {
      type: "string",
      arg: "FILE",
      help: "write the metrics (sentence-transformers keys) and run metadata",
    },
    ...EVAL_EXTRA_OPTIONS,
    ...DEVICE_OPTIONS,
    ...PACKING_OPTION,
  },
  notes: EVAL_EXTRA_NOTES,
  async run(values) {
    const modelId = required(values, "model");
    const queriesFile = required(values, "queries");
    const corpusFiles = required(values, "corpus")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const relevance = values.relevance as string;
    if (relevance !== "id" && relevance !== "text")
      throw new UsageError(`--relevance must be id or text, got "${relevance}"`);
    const scores = String(values.score).split(",");
    for (const s of scores)
      if (s !== "cosine" && s !== "dot")
        throw new UsageError(`--score must be cosine and/or dot, got "${s}"`);
    const extras = EvalExtras.fromOptions(values);
    const queries = await readPairs(queriesFile);
    const corpus = await readPairs(corpusFiles);
    // Row indexes are no ids: without an id column on both sides, documents are identified by their text.
    const explicitIds = queries.report.columns.id !== undefined && corpus.report.columns.id !== undefined;
    if (!explicitIds)
      process.stderr.write(
        `note: ${queries.report.columns.id === undefined ? queriesFile : corpusFiles.join(",")} has no id column: ` +
          "documents are identified by their text, and a query's relevant document is the one holding its positive\n",
      );
    const task = buildRetrievalTask(queries.records, corpus.records, relevance as RelevanceRule, {
      ids: explicitIds ? "explicit" : "content",
    });
    const warning = skippedWarning(task, queries.records.length);
    if (warning) process.stderr.write(`warning: ${warning}\n`);

    const t0 = performance.now();
    const model = await SentenceTransformer.load(modelId, deviceOptions(values));
    for (const w of model.warnings) process.stderr.write(`warning: ${w}\n`); // e.g. the pooling a plain folder got
    applyPacking(model, values);
    const full = model.embeddingDim;
    const dims =
      values.dims === undefined
        ? RECIPE_DIMS.filter((d) => d <= full)
        : intListOption(values, "dims", RECIPE_DIMS);
    if (dims.length === 0) dims.push(full);
    for (const d of dims)
      if (d > full) throw new UsageError(`--dims: ${d} is larger than the model's embedding size ${full}`);
    // Flags, else the model's own "query" / "document" prompts (a model trained with prompts saved them).
    const prompts = resolvePrompts(model, values);
    const queryPrompt = prompts.query || undefined;
    const corpusPrompt = prompts.corpus || undefined;
    const evaluator = new InformationRetrievalEvaluator({
      queries: task.queries,
      corpus: task.corpus,
      relevantDocs: task.relevantDocs,
      dims,
      scoreFunctions: scores as ("cosine" | "dot")[],
      batchSize: numberOption(values, "batch-size", 32, { integer: true, min: 1 }),
      ...(queryPrompt ? { queryPrompt } : {}),
      ...(corpusPrompt ? { corpusPrompt } : {}),
      progress: true,
    });
    const result: IrEvaluation = evaluator.evaluate(extras ? extras.wrap(model) : model);
    const quantized = extras?.evaluate(evaluator, dims, scores as ("cosine" | "dot")[], result.metrics);
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(formatMetricsTable(result.metrics, dims, scores[0] as "cosine" | "dot") + "\n");
    if (quantized?.table) process.stdout.write(`\n${quantized.table}\n`);
    process.stderr.write(
      `${result.queries} queries, ${result.corpus} documents; encode ${result.seconds.encode.toFixed(1)} s, ` +
        `scoring ${result.seconds.score.toFixed(1)} s, total ${seconds.toFixed(1)} s\n`,
    );
    if (typeof values.json === "string") {
      const out = {
        model: modelId,
        dims,
        relevance,
        queryPrompt: queryPrompt ?? null,
        corpusPrompt: corpusPrompt ?? null,
        queries: result.queries,
        corpus: result.corpus,
        corpusFingerprint: evaluator.corpusFingerprint,
        skippedQueries: task.skipped.length,
        seconds: { ...result.seconds, total: seconds },
        device: model.device,
        createdAt: new Date().toISOString(),
        metrics: result.metrics,
        ...(quantized?.json ? { quantized: quantized.json } : {}),
      };
      writeJsonAtomic(values.json, out);
    }
    model.dispose();
  },
};
