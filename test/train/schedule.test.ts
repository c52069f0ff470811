// Learning-rate schedules and Trainer step arithmetic against transformers' formulas. Expected values were
// computed with the Python expressions of transformers/optimization.py (CPython floats), quoted next to each.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  accumulationGroups,
  learningRateAt,
  lrLambda,
  planSteps,
  trainingSteps,
  warmupSteps,
} from "../../src/train/schedule.ts";

const shape = { warmupSteps: 10, totalSteps: 100 };

describe("lrLambda (transformers LambdaLR multipliers)", () => {
  test("cosine, warmup 10 of 100", () => {
    // warmup: step / max(1, 10); then 0.5 * (1 + cos(pi * 0.5 * 2 * (step - 10) / 90))
    assert.equal(lrLambda("cosine", 0, shape), 0);
    assert.equal(lrLambda("cosine", 5, shape), 0.5);
    assert.equal(lrLambda("cosine", 10, shape), 1); // progress 0
    assert.equal(lrLambda("cosine", 55, shape), 0.5); // progress 0.5: 0.5 * (1 + 6.1e-17) rounds to 0.5
    // progress 89/90: 0.5 * (1 - cos(pi/90)) = sin²(pi/180); Python gives 0.00030458649045211894
    assert.equal(lrLambda("cosine", 99, shape), 0.00030458649045211894);
    assert.equal(lrLambda("cosine", 100, shape), 0); // cos(pi) = -1
    // past the end transformers does not clamp the cosine (only at 0): progress 140/90 → 0.586824088833465
    assert.equal(lrLambda("cosine", 150, shape), 0.586824088833465);
  });

  test("linear, warmup 10 of 100", () => {
    // warmup as above; then max(0, (100 - step) / max(1, 90))
    assert.deepEqual(
      [0, 5, 10, 55, 99, 100, 150].map((s) => lrLambda("linear", s, shape)),
      [0, 0.5, 1, 0.5, 1 / 90, 0, 0],
    );
    assert.equal(lrLambda("linear", 99, shape), 0.011111111111111112);
  });

  test("constant_with_warmup and constant (constant ignores warmup, as get_scheduler does)", () => {
    assert.deepEqual(
      [0, 5, 9, 10, 99, 1000].map((s) => lrLambda("constant_with_warmup", s, shape)),
      [0, 0.5, 0.9, 1, 1, 1],
    );
    assert.deepEqual(
      [0, 5, 10, 99].map((s) => lrLambda("constant", s, shape)),
      [1, 1, 1, 1],
    );
  });

  test("no warmup: the first update already uses the full rate; degenerate totals do not divide by 0", () => {
    assert.equal(lrLambda("cosine", 0, { warmupSteps: 0, totalSteps: 10 }), 1);
    assert.equal(lrLambda("linear", 0, { warmupSteps: 0, totalSteps: 10 }), 1);
    assert.equal(lrLambda("linear", 5, { warmupSteps: 0, totalSteps: 10 }), 0.5);
    // totalSteps == warmupSteps: max(1, 0) in the denominators
    assert.equal(lrLambda("linear", 3, { warmupSteps: 3, totalSteps: 3 }), 0);
    assert.equal(lrLambda("cosine", 3, { warmupSteps: 3, totalSteps: 3 }), 1);
  });

  test("cosine numCycles (transformers' num_cycles) and validation", () => {
    // one full wave: back to 1 at the end
    assert.equal(lrLambda("cosine", 100, { ...shape, numCycles: 1 }), 1);
    assert.throws(() => lrLambda("cosine", -1, shape), /step must be an integer/);
    assert.throws(() => lrLambda("cosine", 1.5, shape), /step must be an integer/);
    assert.throws(() => lrLambda("linear", 0, { warmupSteps: 2.5, totalSteps: 10 }), /warmupSteps/);
    assert.throws(() => lrLambda("bogus" as "linear", 0, shape), /unknown schedule/);
  });

  test("learningRateAt = base × λ(step), step = updates already done", () => {
    assert.equal(learningRateAt(0, 2e-5, "cosine", shape), 0);
    assert.equal(learningRateAt(5, 2e-5, "cosine", shape), 1e-5);
    assert.equal(learningRateAt(10, 2e-5, "cosine", shape), 2e-5);
    assert.throws(() => learningRateAt(0, -1, "cosine", shape), /baseLr/);
  });
});

describe("warmupSteps (TrainingArguments.get_warmup_steps)", () => {
  test("ceil(ratio × total) in floating point; explicit steps win", () => {
    assert.equal(warmupSteps(0.1, 45), 5); // ceil(4.5)
    assert.equal(warmupSteps({ ratio: 0.1 }, 45), 5);
    assert.equal(warmupSteps(0.1, 52), 6); // ceil(5.2)
    assert.equal(warmupSteps(0.1, 48), 5); // ceil(4.8)
    assert.equal(warmupSteps(0.1, 30), 3); // 0.1 × 30 is exactly 3.0 in doubles
    assert.equal(warmupSteps(0.07, 100), 8); // 0.07 × 100 = 7.000000000000001 in Python too → 8
    assert.equal(warmupSteps(0, 100), 0);
    assert.equal(warmupSteps(7, 100), 7);
    assert.equal(warmupSteps({ steps: 7, ratio: 0.5 }, 100), 7); // warmup_steps > 0 beats warmup_ratio
    assert.equal(warmupSteps({ steps: 0, ratio: 0.5 }, 100), 50);
    assert.throws(() => warmupSteps(1.5, 100), /ratio must be below 1/);
    assert.throws(() => warmupSteps(-0.1, 100), /≥ 0/);
    assert.throws(() => warmupSteps({ ratio: 2 }, 100), /\[0, 1\]/);
  });
});

describe("trainingSteps (Trainer.set_initial_training_values)", () => {
  test("the recipe: 6,300 pairs, batch 32, accumulation 16, 4 epochs", () => {
    // len(dataloader) = ceil(6300 / 32) = 197 (196 full batches + one of 28)
    // steps per epoch = max(197 // 16 + int(197 % 16 > 0), 1) = 12 + 1 = 13 (12 updates of 16 batches, one of 5)
    // total = ceil(4 × 13) = 52; warmup = ceil(0.1 × 52) = ceil(5.2) = 6
    const steps = trainingSteps({ examples: 6300, batchSize: 32, gradientAccumulationSteps: 16, epochs: 4 });
    assert.deepEqual(steps, { batchesPerEpoch: 197, stepsPerEpoch: 13, totalSteps: 52, epochs: 4 });
    assert.equal(warmupSteps(0.1, steps.totalSteps), 6);
    // lr of the first and last updates: 0, and 2e-5 × 0.5 × (1 + cos(pi × 45/46)) = 2.3312308094607382e-08
    const sched = { warmupSteps: 6, totalSteps: 52 };
    assert.equal(learningRateAt(0, 2e-5, "cosine", sched), 0);
    assert.equal(learningRateAt(6, 2e-5, "cosine", sched), 2e-5);
    assert.equal(learningRateAt(51, 2e-5, "cosine", sched), 2.3312308094607382e-8);
    // older transformers: 197 // 16 = 12 per epoch, 48 in all, warmup ceil(4.8) = 5
    const legacy = trainingSteps({
      examples: 6300,
      batchSize: 32,
      gradientAccumulationSteps: 16,
      epochs: 4,
      stepsPerEpochRule: "floor",
    });
    assert.deepEqual(legacy, { batchesPerEpoch: 197, stepsPerEpoch: 12, totalSteps: 48, epochs: 4 });
    assert.equal(warmupSteps(0.1, legacy.totalSteps), 5);
  });

  test("dropLast, max_steps, fractional epochs, tiny datasets", () => {
    // floor(6300 / 32) = 196 → 196 // 16 = 12, remainder 4 → 13
    assert.deepEqual(
      trainingSteps({
        examples: 6300,
        batchSize: 32,
        gradientAccumulationSteps: 16,
        epochs: 4,
        dropLast: true,
      }),
      { batchesPerEpoch: 196, stepsPerEpoch: 13, totalSteps: 52, epochs: 4 },
    );
    // max_steps 30: epochs = 30 // 13 + int(30 % 13 > 0) = 3
    assert.deepEqual(
      trainingSteps({
        examples: 6300,
        batchSize: 32,
        gradientAccumulationSteps: 16,
        epochs: 4,
        maxSteps: 30,
      }),
      { batchesPerEpoch: 197, stepsPerEpoch: 13, totalSteps: 30, epochs: 3 },
    );
    // 1.5 epochs: max_steps = ceil(1.5 × 13) = 20, loop epochs = ceil(1.5) = 2
    assert.deepEqual(
      trainingSteps({ examples: 6300, batchSize: 32, gradientAccumulationSteps: 16, epochs: 1.5 }),
      { batchesPerEpoch: 197, stepsPerEpoch: 13, totalSteps: 20, epochs: 2 },
    );
    // one batch per epoch, accumulation 16: max(0 + 1, 1) = 1 update per epoch
    assert.deepEqual(
      trainingSteps({ examples: 10, batchSize: 32, gradientAccumulationSteps: 16, epochs: 3 }),
      {
        batchesPerEpoch: 1,
        stepsPerEpoch: 1,
        totalSteps: 3,
        epochs: 3,
      },
    );
    // the floor rule clamps at 1 too
    assert.equal(
      trainingSteps({
        examples: 10,
        batchSize: 32,
        gradientAccumulationSteps: 16,
        epochs: 3,
        stepsPerEpochRule: "floor",
      }).stepsPerEpoch,
      1,
    );
    // accumulation 1 (the default): one update per batch
    assert.deepEqual(trainingSteps({ examples: 100, batchSize: 32, epochs: 2 }), {
      batchesPerEpoch: 4,
      stepsPerEpoch: 4,
      totalSteps: 8,
      epochs: 2,
    });
    // a sampler length can be passed as is
    assert.equal(
      trainingSteps({
        examples: 100,
        batchSize: 32,
        epochs: 1,
        batchesPerEpoch: 5,
        gradientAccumulationSteps: 2,
      }).stepsPerEpoch,
      3,
    );
  });

  test("rejects what transformers would reject", () => {
    assert.throws(
      () => trainingSteps({ examples: 10, batchSize: 32, epochs: 1, dropLast: true }),
      /no batches/,
    );
    assert.throws(() => trainingSteps({ examples: 10, batchSize: 0, epochs: 1 }), /batchSize/);
    assert.throws(() => trainingSteps({ examples: 10, batchSize: 2, epochs: 0 }), /epochs/);
    assert.throws(
      () => trainingSteps({ examples: 10, batchSize: 2, epochs: 1, gradientAccumulationSteps: 0 }),
      /gradient/,
    );
  });
});

describe("accumulationGroups (the epoch loop's chunking)", () => {
  test("GA-sized groups, the last holding the remainder", () => {
    const groups = accumulationGroups(197, 16);
    assert.equal(groups.length, 13);
    assert.deepEqual(groups, [...new Array<number>(12).fill(16), 5]);
    assert.deepEqual(accumulationGroups(32, 16), [16, 16]);
    assert.deepEqual(accumulationGroups(5, 16), [5]);
    assert.deepEqual(accumulationGroups(0, 16), []);
    assert.deepEqual(accumulationGroups(3, 1), [1, 1, 1]);
    // an epoch that yields one batch more than planned (a no-duplicates tail) still groups every batch
    assert.deepEqual(accumulationGroups(198, 16).at(-1), 6);
  });

  test("agrees with trainingSteps for every batch count", () => {
    for (let batches = 1; batches < 100; batches++) {
      for (const ga of [1, 2, 3, 8, 16]) {
        const planned = trainingSteps({
          examples: batches,
          batchSize: 1,
          gradientAccumulationSteps: ga,
          epochs: 1,
        });
        const groups = accumulationGroups(batches, ga);
        assert.equal(groups.length, planned.stepsPerEpoch, `${batches} batches, GA ${ga}`);
        assert.equal(
          groups.reduce((a, b) => a + b, 0),
          batches,
        );
      }
    }
  });
});

describe("planSteps (the trainer's plan from the sampler's real batches)", () => {
  test("equal epochs: the same plan as transformers' arithmetic, fractional epochs included", () => {
    for (const epochs of [1, 1.5, 2.3, 4]) {
      for (const ga of [1, 3, 16]) {
        const hf = trainingSteps({ examples: 6300, batchSize: 32, gradientAccumulationSteps: ga, epochs });
        const real = planSteps({ batchCount: () => 197, gradientAccumulationSteps: ga, epochs });
        assert.deepEqual(real, hf, `epochs ${epochs}, GA ${ga}`);
      }
    }
  });

  test("epochs of different lengths: the total is the sum of each epoch's groups", () => {
    const counts = [64, 66, 63];
    const plan = planSteps({ batchCount: (e) => counts[e]!, gradientAccumulationSteps: 16, epochs: 3 });
    assert.equal(plan.totalSteps, 4 + 5 + 4); // ceil(64/16), ceil(66/16), ceil(63/16)
    assert.equal(plan.epochs, 3);
    // maxSteps: the fewest epochs whose steps reach it
    const capped = planSteps({
      batchCount: (e) => counts[e]!,
      gradientAccumulationSteps: 16,
      epochs: 1,
      maxSteps: 10,
    });
    assert.deepEqual([capped.totalSteps, capped.epochs], [10, 3]);
    assert.throws(
      () => planSteps({ batchCount: () => 0, gradientAccumulationSteps: 1, epochs: 1 }),
      /epoch 0 has no batch to train on/,
    );
  });
});
