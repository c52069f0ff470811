// Shared inputs of the trainer's robustness tests: a tiny mean-pooling model (32 tokens per text, fast), slices of
// the bundled financial pairs, training arguments for runs of a few steps, and an evaluator over the pairs.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { resolveTrainingArguments, type TrainingArguments } from "../../src/train/args.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";

export const DIMS = [32, 16];

export const ROWS: PairRecord[] = readFileSync(
  fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url)),
  "utf8",
)
  .trim()
  .split("\n")
  .slice(0, 200)
  .map((line) => JSON.parse(line) as PairRecord);

const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });

/** A fresh tiny random model (seed 42): mean pooling unless `cls` (a random CLS model maps every text alike). */
export function tinyModel(pooling: "mean" | "cls" = "mean"): SentenceTransformer {
  return SentenceTransformer.create({ config: TINY_CONFIG, tokenizer, pooling, maxSeqLength: 32, seed: 42 });
}

/** Arguments of a short run without evaluation: batch 8, one epoch, no warmup, a checkpoint every step. */
export function quickArgs(o: Partial<TrainingArguments> = {}): TrainingArguments {
  return resolveTrainingArguments({
    outputDir: freshDir("robust"),
    numTrainEpochs: 1,
    perDeviceTrainBatchSize: 8,
    gradientAccumulationSteps: 1,
    learningRate: 2e-3,
    warmupRatio: 0,
    matryoshkaDims: DIMS,
    evalStrategy: "no",
    loadBestModelAtEnd: false,
    saveStrategy: "steps",
    saveSteps: 1,
    saveTotalLimit: null,
    loggingSteps: 1,
    ...o,
  });
}

/** Queries = anchors of `queries`, corpus = positives of `corpus`. */
export function evaluatorOver(queries: PairRecord[], corpus: PairRecord[]): InformationRetrievalEvaluator {
  const task = buildRetrievalTask(queries, corpus);
  return new InformationRetrievalEvaluator({
    queries: task.queries,
    corpus: task.corpus,
    relevantDocs: task.relevantDocs,
    dims: DIMS,
    batchSize: 64,
  });
}

/** The model's weights as raw bytes, in parameter order (to compare two models, or a model with its base). */
export function weightBytes(model: SentenceTransformer): Buffer {
  return Buffer.concat(model.namedParameters().map(([, t]) => t.bytes()));
}
