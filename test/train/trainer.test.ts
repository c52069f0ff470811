// The trainer on a tiny random model (2 layers × 32 hidden, mean pooling, dropout on) and a slice of the bundled
// financial data: training raises nDCG@10 at every Matryoshka dim (a retrieval task over the training pairs
// themselves, where a few steps of learning are visible), the log history and training_log.jsonl, the logged
// learning rate = learningRateAt, best-model selection (an earlier checkpoint's weights are loaded at the end),
// metric_for_best_model validated before any work, greater_is_better false, max_steps, and the cached loss
// (same trajectory as the plain one on a dropout-free model).
//
// Mean pooling, not CLS: in a randomly initialized BERT (weights ~N(0, 0.02)) the [CLS] output is nearly the
// same vector for every text (cosine 1 − 1e-5 between any two), so its retrieval signal sits in differences far
// below the dropout noise of training mode, and MNRL first only learns to remove that noise (loss → ln(batch)).
// A mean-pooled random model starts from a bag-of-words signal and learns within a few steps.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { BertConfig } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { loadSafetensors } from "../../src/models/weights.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { resolveTrainingArguments, type TrainingArguments } from "../../src/train/args.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { learningRateAt, warmupSteps } from "../../src/train/schedule.ts";
import { train } from "../../src/train/trainer.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";

// One intra-op thread: for a model this small, libtorch's threads only spin against the other processes of a
// busy machine (several times slower with 2 threads on 2 shared cores).
setNumThreads(1);

const TRAIN_FILE = fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url));
const ROWS: PairRecord[] = readFileSync(TRAIN_FILE, "utf8")
  .trim()
  .split("\n")
  .slice(0, 128)
  .map((line) => JSON.parse(line) as PairRecord);
const DIMS = [32, 16, 8];
const NDCG = (d: number) => `eval_dim_${d}_cosine_ndcg@10`;
const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });

/** A fresh tiny random model: mean pooling, Normalize, 32 tokens per text (fast), dropout 0.1 unless off. */
function tinyModel(o: { dropout?: boolean } = {}): SentenceTransformer {
  const config =
    o.dropout === false
      ? BertConfig.with({ ...TINY_CONFIG, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 })
      : TINY_CONFIG;
  return SentenceTransformer.create({ config, tokenizer, pooling: "mean", maxSeqLength: 32, seed: 42 });
}

/** Queries = the anchors of `queries`, corpus = the positives of `corpus` (memorization is what is measured). */
function evaluatorOver(queries: PairRecord[], corpus: PairRecord[]): InformationRetrievalEvaluator {
  const task = buildRetrievalTask(queries, corpus);
  return new InformationRetrievalEvaluator({
    queries: task.queries,
    corpus: task.corpus,
    relevantDocs: task.relevantDocs,
    dims: DIMS,
    batchSize: 64,
  });
}

function args(o: Partial<TrainingArguments> = {}): TrainingArguments {
  return resolveTrainingArguments({
    outputDir: freshDir("trainer"),
    numTrainEpochs: 2,
    perDeviceTrainBatchSize: 16,
    gradientAccumulationSteps: 1,
    learningRate: 2e-3,
    matryoshkaDims: DIMS,
    metricForBestModel: NDCG(8),
    loggingSteps: 1,
    ...o,
  });
}

const snapshot = (model: SentenceTransformer): Map<string, Float32Array> =>
  new Map(model.namedParameters().map(([n, t]) => [n, t.detach().toArray() as Float32Array]));

function savedWeights(dir: string): Map<string, Float32Array> {
  const tensors = loadSafetensors(join(dir, "model.safetensors"));
  const out = new Map([...tensors].map(([n, t]) => [n, t.toArray() as Float32Array]));
  for (const t of tensors.values()) t.dispose();
  return out;
}

function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [name, x] of a) {
    const y = b.get(name);
    assert.ok(y && y.length === x.length, `${name} is missing or has another size`);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

const evalEntries = (log: LogEntry[]) => log.filter((e) => NDCG(8) in e);
const lossEntries = (log: LogEntry[]) => log.filter((e) => "loss" in e);
const checkpoints = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("checkpoint-"));

describe("train() on a tiny model", () => {
  test("raises nDCG@10 at every Matryoshka dim; logs, JSONL log, lr schedule, best model", () => {
    const model = tinyModel();
    const evaluator = evaluatorOver(ROWS.slice(0, 64), ROWS);
    const baseline = evaluator.evaluate(model).metrics;
    const before = snapshot(model);
    const a = args({ warmupRatio: 0.1, lrSchedulerType: "cosine" });
    const seen: LogEntry[] = [];
    const result = train({
      model,
      train: ROWS,
      evaluator,
      args: a,
      verbose: false,
      onLog: (e) => seen.push(e),
    });

    // 128 pairs / 16 = 8 steps per epoch, 2 epochs.
    assert.equal(result.globalStep, 16);
    assert.equal(result.stopped, false);
    const evals = evalEntries(result.logHistory);
    assert.deepEqual(
      evals.map((e) => e.step),
      [8, 16],
    );
    const finalEval = evaluator.evaluate(model).metrics;
    for (const d of DIMS) {
      const base = baseline[`dim_${d}_cosine_ndcg@10`]!;
      const last = evals[evals.length - 1]![NDCG(d)] as number;
      assert.ok(last > base + 0.1, `dim ${d}: nDCG@10 ${base.toFixed(4)} → ${last.toFixed(4)}`);
      console.log(`dim ${d}: nDCG@10 ${base.toFixed(4)} → ${last.toFixed(4)}`);
      // What the run ends with is what the evaluator measures on the returned model.
      assert.equal(result.finalMetrics[NDCG(d)], finalEval[`dim_${d}_cosine_ndcg@10`]);
    }
    // Gradients reached every parameter (the concern of a run that did not learn).
    const after = snapshot(model);
    for (const [name, w] of before) {
      const changed = after.get(name)!.some((x, i) => x !== w[i]);
      assert.ok(changed, `${name} did not change`);
    }
    assert.equal(model.training, false, "the model is returned in eval mode");

    // Log history: a loss entry per step (loggingSteps 1), eval entries with every dim's keys, the summary.
    const losses = lossEntries(result.logHistory);
    assert.equal(losses.length, 16);
    for (const e of losses) assert.ok(Number.isFinite(e.loss) && Number.isFinite(e.grad_norm));
    const firstEpoch = losses.slice(0, 8).reduce((s, e) => s + (e.loss as number), 0) / 8;
    const secondEpoch = losses.slice(8).reduce((s, e) => s + (e.loss as number), 0) / 8;
    assert.ok(secondEpoch < firstEpoch - 0.5, `mean loss ${firstEpoch} → ${secondEpoch}`);
    for (const e of evals) for (const d of DIMS) assert.equal(typeof e[NDCG(d)], "number");
    assert.ok(result.logHistory.some((e) => "train_runtime" in e && "train_loss" in e));
    assert.deepEqual(seen, result.logHistory, "onLog sees every entry");

    // training_log.jsonl holds the same entries (plus a timestamp).
    const jsonl = readFileSync(join(a.outputDir, "training_log.jsonl"), "utf8").trim().split("\n");
    assert.deepEqual(
      jsonl.map((line) => {
        const { time, ...rest } = JSON.parse(line) as LogEntry;
        assert.equal(typeof time, "string");
        return rest;
      }),
      result.logHistory,
    );

    // The learning rate logged at step g is the one of the next update: learningRateAt(g).
    const warmup = warmupSteps({ ratio: 0.1 }, 16);
    assert.equal(warmup, 2);
    for (const e of losses) {
      const expected = learningRateAt(e.step as number, 2e-3, "cosine", {
        warmupSteps: warmup,
        totalSteps: 16,
      });
      assert.ok(Math.abs((e.learning_rate as number) - expected) < 1e-15, `step ${e.step}`);
    }
    assert.equal(losses[losses.length - 1]!.learning_rate, 0);
    assert.equal(losses[0]!.learning_rate, 1e-3); // after 1 of 2 warmup steps: half the peak

    // Best model: the checkpoint of the eval with the highest metric, and the final weights are its weights.
    const best = evals.reduce((b, e) => ((e[NDCG(8)] as number) > (b[NDCG(8)] as number) ? e : b));
    assert.equal(result.bestCheckpoint, join(a.outputDir, `checkpoint-${best.step}`));
    assert.equal(result.bestMetric, best[NDCG(8)]);
    assert.equal(maxAbsDiff(snapshot(model), savedWeights(result.bestCheckpoint!)), 0);
    assert.deepEqual(checkpoints(a.outputDir).sort(), ["checkpoint-16", "checkpoint-8"]);
    model.dispose();
  });

  test("greaterIsBetter false: the best is the lowest metric, an earlier checkpoint loaded at the end", () => {
    const rows = ROWS.slice(0, 96); // 6 steps per epoch
    const model = tinyModel();
    const evaluator = evaluatorOver(rows.slice(0, 48), rows);
    const a = args({ greaterIsBetter: false, numTrainEpochs: 3, warmupRatio: 0, saveTotalLimit: 1 });
    const result = train({ model, train: rows, evaluator, args: a, verbose: false });
    const evals = evalEntries(result.logHistory);
    assert.deepEqual(
      evals.map((e) => e.step),
      [6, 12, 18],
    );
    const values = evals.map((e) => e[NDCG(8)] as number);
    // nDCG rises while training, so the "best" (lowest) is the first epoch's.
    assert.ok(values[0]! < values[2]!, `nDCG@10 per epoch: ${values.join(", ")}`);
    const worst = evals[values.indexOf(Math.min(...values))]!;
    assert.equal(result.bestCheckpoint, join(a.outputDir, `checkpoint-${worst.step}`));
    assert.equal(result.bestMetric, Math.min(...values));
    assert.notEqual(worst.step, 18);

    // The model holds the best checkpoint's weights, not the last step's.
    const final = snapshot(model);
    assert.equal(maxAbsDiff(final, savedWeights(result.bestCheckpoint!)), 0);
    assert.ok(maxAbsDiff(final, savedWeights(join(a.outputDir, "checkpoint-18"))) > 1e-4);
    // Its metrics are reported, and they are what the model now scores.
    assert.equal(result.finalMetrics[NDCG(8)], worst[NDCG(8)]);
    assert.equal(evaluator.evaluate(model).metrics["dim_8_cosine_ndcg@10"], worst[NDCG(8)]);
    // The best checkpoint survives rotation: limit 1 keeps it and the newest.
    assert.ok(existsSync(result.bestCheckpoint!));
    assert.deepEqual(checkpoints(a.outputDir).sort(), [`checkpoint-${worst.step}`, "checkpoint-18"].sort());
    model.dispose();
  });

  test("a metricForBestModel typo fails before any training, with a suggestion", () => {
    const model = tinyModel();
    const before = snapshot(model);
    const a = args({ metricForBestModel: "eval_dim_8_cosine_ndgc@10" });
    const seen: LogEntry[] = [];
    assert.throws(
      () =>
        train({
          model,
          train: ROWS.slice(0, 32),
          evaluator: evaluatorOver(ROWS.slice(0, 8), ROWS.slice(0, 32)),
          args: a,
          verbose: false,
          onLog: (e) => seen.push(e),
        }),
      (e: Error) => {
        assert.match(e.message, /eval_dim_8_cosine_ndgc@10/);
        assert.match(e.message, /did you mean "eval_dim_8_cosine_ndcg@10"\?/);
        return true;
      },
    );
    assert.equal(seen.length, 0);
    assert.ok(!existsSync(join(a.outputDir, "training_log.jsonl")), "nothing was written");
    assert.equal(maxAbsDiff(before, snapshot(model)), 0);
    // A dim the evaluator does not have is refused too.
    assert.throws(
      () =>
        train({
          model,
          train: ROWS.slice(0, 32),
          evaluator: evaluatorOver(ROWS.slice(0, 8), ROWS.slice(0, 32)),
          args: args({ metricForBestModel: "eval_dim_128_cosine_ndcg@10" }),
          verbose: false,
        }),
      /did you mean "eval_dim_(8|16|32)_cosine_ndcg@10"/,
    );
    model.dispose();
  });

  test("maxSteps stops the run, sets the schedule's length, and still evaluates and saves at the end", () => {
    const rows = ROWS.slice(0, 96); // 6 steps per epoch: maxSteps 4 ends mid-epoch
    const model = tinyModel();
    const evaluator = evaluatorOver(rows.slice(0, 16), rows);
    const a = args({ maxSteps: 4, numTrainEpochs: 5, lrSchedulerType: "linear", warmupSteps: 1 });
    const result = train({ model, train: rows, evaluator, args: a, verbose: false });
    assert.equal(result.globalStep, 4);
    const losses = lossEntries(result.logHistory);
    assert.deepEqual(
      losses.map((e) => e.step),
      [1, 2, 3, 4],
    );
    // linear over 4 steps (not the 5 epochs' 30) with 1 warmup step: λ(1..4) = 1, 2/3, 1/3, 0
    assert.deepEqual(
      losses.map((e) => Number((e.learning_rate as number).toExponential(6))),
      [2e-3, 1.333333e-3, 6.666667e-4, 0],
    );
    // As the HF Trainer (on_epoch_end after max_steps): the last step is evaluated and checkpointed.
    assert.deepEqual(
      evalEntries(result.logHistory).map((e) => e.step),
      [4],
    );
    assert.deepEqual(checkpoints(a.outputDir), ["checkpoint-4"]);
    assert.equal(result.bestCheckpoint, join(a.outputDir, "checkpoint-4"));
    model.dispose();
  });

  test("cached-mnrl trains: the same trajectory as mnrl (dropout off), with accumulation and mini-batches", () => {
    const rows = ROWS.slice(0, 64);
    const run = (loss: "mnrl" | "cached-mnrl") => {
      const model = tinyModel({ dropout: false });
      const result = train({
        model,
        train: rows,
        args: args({
          loss,
          perDeviceTrainBatchSize: 8,
          gradientAccumulationSteps: 2, // the cached loss gets gradScale 1/2
          miniBatchSize: 3, // mini-batches of 3, 3, 2
          maxSteps: 3,
          evalStrategy: "no",
          saveStrategy: "no",
          loadBestModelAtEnd: false,
          warmupRatio: 0,
        }),
        verbose: false,
      });
      const weights = snapshot(model);
      model.dispose();
      const logs = lossEntries(result.logHistory);
      return {
        weights,
        losses: logs.map((e) => e.loss as number),
        norms: logs.map((e) => e.grad_norm as number),
      };
    };
    const plain = run("mnrl");
    const cached = run("cached-mnrl");
    const init = snapshot(tinyModel({ dropout: false }));
    const diff = maxAbsDiff(plain.weights, cached.weights);
    const moved = maxAbsDiff(plain.weights, init);
    console.log(
      `cached vs plain: weights maxdiff ${diff.toExponential(2)} (moved ${moved.toExponential(2)})`,
    );
    assert.ok(moved > 1e-3, "the weights moved");
    // The gradient norm before clipping (logged) checks the gradient's scale (1/accumulation) — Adam alone
    // would hide a wrong scale — and the loss value its averaging over the micro-batches.
    plain.norms.forEach((n, i) =>
      assert.ok(Math.abs(n / cached.norms[i]! - 1) < 1e-4, `grad norm, step ${i + 1}`),
    );
    plain.losses.forEach((l, i) => assert.ok(Math.abs(l - cached.losses[i]!) < 1e-5, `loss, step ${i + 1}`));
    // The weights agree to a fraction of one step (lr 2e-3), not bitwise: the mini-batches pad differently, and
    // Adam's first steps (≈ lr·g/(|g| + eps)) magnify rounding in the few elements whose gradient is near eps.
    assert.ok(diff < 1e-4, `cached vs plain weights differ by ${diff}`);
    assert.ok(cached.losses[2]! < cached.losses[0]!, `losses ${cached.losses.join(", ")}`);
  });
});
