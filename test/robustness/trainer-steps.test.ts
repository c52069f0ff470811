// The trainer's optimizer steps (issue #10, items 1, 6, 7, 8): --max-grad-norm 0 means no clipping; a NaN loss
// stops the run naming the step (or is skipped with skipNonfiniteSteps); collapsed embeddings are warned about; the
// step plan comes from the sampler's real batches, so every row is trained once per epoch; no batch has fewer than
// 2 pairs, and batch size 1 or a 1-row training set is refused.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import { resolveTrainingArguments } from "../../src/train/args.ts";
import {
  LengthGroupedBatchSampler,
  NoDuplicatesBatchSampler,
  ShuffledBatchSampler,
  mergeSingletons,
  pairTexts,
} from "../../src/train/samplers.ts";
import { NonFiniteStepError, train } from "../../src/train/trainer.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { evaluatorOver, quickArgs, ROWS, tinyModel, weightBytes } from "./trainer-fixtures.ts";

setNumThreads(1);

describe("gradient clipping", () => {
  test("maxGradNorm 0 (and null) means no clipping: the same weights as an unreachable norm, and they move", () => {
    const rows = ROWS.slice(0, 32);
    const run = (maxGradNorm: number | null) => {
      const model = tinyModel();
      const base = weightBytes(model);
      const result = train({
        model,
        train: rows,
        verbose: false,
        args: quickArgs({ maxGradNorm, saveStrategy: "no", maxSteps: 2 }),
      });
      const weights = weightBytes(model);
      model.dispose();
      const norms = result.logHistory.filter((e) => "grad_norm" in e).map((e) => e.grad_norm as number);
      return { moved: !weights.equals(base), weights, norms };
    };
    const off = run(0);
    const none = run(null);
    const huge = run(1e9);
    assert.ok(off.moved, "maxGradNorm 0 must not zero the gradients (the model stayed the base model)");
    assert.ok(off.weights.equals(huge.weights), "maxGradNorm 0 = no clipping");
    assert.ok(none.weights.equals(huge.weights), "maxGradNorm null = no clipping");
    assert.equal(off.norms.length, 2);
    for (const n of off.norms) assert.ok(Number.isFinite(n) && n > 0, `grad_norm still logged: ${n}`);
    off.norms.forEach((n, i) =>
      assert.ok(Math.abs(n - huge.norms[i]!) <= 1e-6 * n, `${n} vs ${huge.norms[i]}`),
    );
  });
});

describe("non-finite loss", () => {
  // A learning rate of 1e30 makes the weights ~1e30 after the first update; LayerNorm's variance then overflows.
  const diverging = { learningRate: 1e30, maxGradNorm: 0, lrSchedulerType: "constant" as const };

  test("stops the run naming the step and micro-batch; the last good checkpoint stays, nothing after it", () => {
    const model = tinyModel();
    const args = quickArgs(diverging);
    assert.throws(
      () => train({ model, train: ROWS.slice(0, 64), verbose: false, args }),
      (e: unknown) => {
        assert.ok(e instanceof NonFiniteStepError, String(e));
        assert.match(e.message, /^step 2: the loss is NaN at micro-batch 1 of 1 \(epoch 0, batch 1\)/);
        assert.match(e.message, /the last good checkpoint is .*checkpoint-1/);
        assert.match(e.message, /--skip-nonfinite-steps/);
        return true;
      },
    );
    const left = readdirSync(args.outputDir).filter((n) => n.startsWith("checkpoint-"));
    assert.deepEqual(left, ["checkpoint-1"]);
    assert.ok(!existsSync(join(args.outputDir, "model.safetensors")));
    assert.ok(
      !existsSync(join(args.outputDir, ".ragtune-train.lock")),
      "the lock is released after the throw",
    );
    model.dispose();
  });

  test("skipNonfiniteSteps: the updates are skipped and counted, the run ends, the weights stay finite", () => {
    const model = tinyModel();
    const result = train({
      model,
      train: ROWS.slice(0, 32),
      verbose: false,
      args: quickArgs({ ...diverging, skipNonfiniteSteps: true, saveStrategy: "no" }),
    });
    assert.equal(result.globalStep, 4);
    assert.equal(result.nonfiniteStepsSkipped, 3);
    assert.ok(Number.isFinite(result.trainingLoss), "the mean loss counts the finite steps only");
    const last = result.logHistory.filter((e) => e.step === 4 && "grad_norm" in e)[0]!;
    assert.equal(last.nonfinite_steps_skipped, 3);
    assert.ok(!("loss" in last), "no loss is logged for a window of skipped steps");
    const weights = new Float32Array(weightBytes(model).buffer.slice(0));
    assert.ok(weights.every(Number.isFinite), "a skipped step never applies NaN gradients");
    model.dispose();
  });
});

describe("collapsed embeddings", () => {
  test("an evaluation of a collapsed model warns (mean pairwise cosine); a healthy one does not", () => {
    const rows = ROWS.slice(0, 64);
    const evaluator = evaluatorOver(rows.slice(0, 8), rows);
    const run = (pooling: "mean" | "cls", learningRate: number) => {
      const model = tinyModel(pooling);
      const result = train({
        model,
        train: rows,
        evaluator,
        verbose: false,
        args: quickArgs({
          evalStrategy: "steps",
          evalSteps: 1,
          saveStrategy: "no",
          maxSteps: 1,
          learningRate,
          metricForBestModel: "eval_dim_16_cosine_ndcg@10",
        }),
      });
      model.dispose();
      return result.warnings;
    };
    // A random CLS-pooled BERT gives every text nearly the same vector (cosine ~1 − 1e-5).
    const collapsed = run("cls", 1e-6);
    assert.equal(collapsed.length, 1);
    assert.match(
      collapsed[0]!,
      /^step 1: the embeddings have collapsed: mean pairwise cosine (0\.99\d\d|1\.0000) over 32/,
    );
    // One step of learning spreads a mean-pooled one (mean cosine ≈ 0.9 on these texts).
    assert.deepEqual(run("mean", 2e-3), []);
  });
});

/** Rows where several share a positive: the no-duplicates rule leaves short tail batches. */
function rowsWithDuplicates(): PairRecord[] {
  const base = ROWS.slice(0, 24);
  const extra = ROWS.slice(24, 40).map((r, i) => ({ ...r, id: `dup-${i}`, positive: base[i % 2]!.positive }));
  return [...base, ...extra];
}

describe("the step plan comes from the real batches", () => {
  for (const lengthGrouped of [0, 2]) {
    test(`every row is trained once per epoch (no-duplicates${lengthGrouped ? ", length-grouped" : ""})`, () => {
      const rows = rowsWithDuplicates();
      const texts = pairTexts(rows);
      const sampler = lengthGrouped
        ? new LengthGroupedBatchSampler(
            texts.map((t) => t[0]!.length),
            { batchSize: 8, groupBatches: lengthGrouped, texts, minBatchSize: 2 },
          )
        : new NoDuplicatesBatchSampler(texts, { batchSize: 8, minBatchSize: 2 });
      // The case of the issue: more real batches than the nominal ceil(rows / batch).
      assert.ok(
        sampler.batches(0).length > sampler.length,
        `${sampler.batches(0).length} vs ${sampler.length}`,
      );
      const seen: number[] = [];
      const model = tinyModel();
      const result = train({
        model,
        train: rows,
        verbose: false,
        onMicroBatch: (batch) => seen.push(...batch),
        args: quickArgs({ numTrainEpochs: 2, saveStrategy: "no", lengthGroupedBatches: lengthGrouped }),
      });
      model.dispose();
      const counts = new Map<number, number>();
      for (const i of seen) counts.set(i, (counts.get(i) ?? 0) + 1);
      assert.equal(counts.size, rows.length, "every row trained");
      for (const [row, n] of counts) assert.equal(n, 2, `row ${row} trained ${n} times in 2 epochs`);
      assert.equal(result.globalStep, sampler.batches(0).length + sampler.batches(1).length);
      const planned = result.logHistory.find((e) => "train_runtime" in e)!;
      assert.equal(planned.step, result.globalStep, "the schedule's total is what ran");
    });
  }
});

describe("no batch of one pair", () => {
  test("a 1-row remainder merges into the batch before it (shuffled sampler)", () => {
    const sampler = new ShuffledBatchSampler(17, { batchSize: 8, minBatchSize: 2 });
    const batches = sampler.batches(0);
    assert.deepEqual(
      batches.map((b) => b.length),
      [8, 9],
    );
    assert.equal(sampler.length, 2);
    assert.deepEqual(
      batches.flat().sort((a, b) => a - b),
      Array.from({ length: 17 }, (_, i) => i),
    );
    // Without minBatchSize the sentence-transformers batches stay as they are.
    assert.deepEqual(
      new ShuffledBatchSampler(17, { batchSize: 8 }).batches(0).map((b) => b.length),
      [8, 8, 1],
    );
  });

  test("no-duplicates: a single conflicting row joins the nearest batch it does not conflict with", () => {
    // rows 0..3 share text "a" two by two; row 4 conflicts with batch [0, 1] ("a") but not with [2, 3]
    const ids = [
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [0, 9],
    ].map((r) => Int32Array.from(r));
    assert.deepEqual(mergeSingletons([[2, 3], [0, 1], [4]], ids), [
      [2, 3, 4],
      [0, 1],
    ]);
    // two singles that do not conflict form a pair; a row conflicting with every batch sits the epoch out
    assert.deepEqual(mergeSingletons([[2], [3]], ids), [[3, 2]]);
    assert.deepEqual(mergeSingletons([[0, 2], [4]], ids), [[0, 2]]);
  });

  test("over many seeds, the no-duplicates samplers never yield a batch below 2 and lose no row", () => {
    const rows = rowsWithDuplicates();
    const texts = pairTexts(rows);
    for (let seed = 0; seed < 40; seed++) {
      for (const sampler of [
        new NoDuplicatesBatchSampler(texts, { batchSize: 8, seed, minBatchSize: 2 }),
        new LengthGroupedBatchSampler(
          texts.map((t) => t[1]!.length),
          { batchSize: 8, seed, texts, groupBatches: 2, minBatchSize: 2 },
        ),
      ]) {
        const batches = sampler.batches(0);
        assert.ok(
          batches.every((b) => b.length >= 2),
          `seed ${seed}: ${batches.map((b) => b.length)}`,
        );
        assert.equal(new Set(batches.flat()).size, rows.length, `seed ${seed}: a row is missing`);
      }
    }
  });

  test("rows that share a text with every batch sit the epoch out, with a warning", () => {
    // 17 rows with one positive: at most one of them per batch, and the data make only 6 batches.
    const base = ROWS.slice(0, 40);
    const rows = [
      ...base,
      ...ROWS.slice(40, 56).map((r, i) => ({ ...r, id: `same-${i}`, positive: base[0]!.positive })),
    ];
    const model = tinyModel();
    const result = train({
      model,
      train: rows,
      verbose: false,
      args: quickArgs({ maxSteps: 1, saveStrategy: "no" }),
    });
    model.dispose();
    assert.equal(result.warnings.length, 1);
    assert.match(
      result.warnings[0]!,
      /^11 of 56 rows are in no batch of epoch 0: each shares a text with every batch/,
    );
  });

  test("batch size 1 and a 1-row training set are refused for the in-batch loss", () => {
    assert.throws(
      () => resolveTrainingArguments({ outputDir: freshDir("bs1"), perDeviceTrainBatchSize: 1 }),
      /perDeviceTrainBatchSize: must be at least 2: MultipleNegativesRankingLoss uses the other pairs/,
    );
    const model = tinyModel();
    const args = quickArgs();
    assert.throws(
      () => train({ model, train: ROWS.slice(0, 1), verbose: false, args }),
      /the training set has 1 pair; MultipleNegativesRankingLoss .* needs at least 2/,
    );
    assert.deepEqual(readdirSync(args.outputDir), [], "refused before anything was written");
    // 17 rows at batch 8: the one-row remainder is merged, so every trained batch has ≥ 2 pairs.
    const sizes: number[] = [];
    train({
      model,
      train: ROWS.slice(0, 17),
      verbose: false,
      onMicroBatch: (b) => sizes.push(b.length),
      args: quickArgs({ batchSampler: "batch_sampler", saveStrategy: "no" }),
    });
    assert.deepEqual(sizes, [8, 9]);
    model.dispose();
  });
});
