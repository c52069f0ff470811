// Training arguments: the defaults are the reference recipe's, every validation error names the argument, and
// the JSON config file takes ragtune's camelCase or the HF TrainingArguments snake_case names.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import {
  ArgumentError,
  readTrainingConfig,
  RECIPE_DEFAULTS,
  resolveTrainingArguments,
  type TrainingArguments,
} from "../../src/train/args.ts";
import { freshDir } from "../helpers/tiny-model.ts";

describe("recipe defaults", () => {
  test("are the reference recipe's values (HF Trainer defaults where it is silent)", () => {
    const a = resolveTrainingArguments({ outputDir: "out" });
    assert.deepEqual(a, { ...RECIPE_DEFAULTS, outputDir: "out" });
    // ../shared/reference/recipe.md: SentenceTransformerTrainingArguments of the blog post
    assert.equal(a.numTrainEpochs, 4);
    assert.equal(a.perDeviceTrainBatchSize, 32);
    assert.equal(a.gradientAccumulationSteps, 16);
    assert.equal(a.learningRate, 2e-5);
    assert.equal(a.lrSchedulerType, "cosine");
    assert.equal(a.warmupRatio, 0.1);
    assert.equal(a.warmupSteps, 0);
    assert.equal(a.batchSampler, "no_duplicates");
    assert.deepEqual(a.matryoshkaDims, [768, 512, 256, 128, 64]);
    assert.equal(a.matryoshkaWeights, null);
    assert.equal(a.evalStrategy, "epoch");
    assert.equal(a.saveStrategy, "epoch");
    assert.equal(a.saveTotalLimit, 3);
    assert.equal(a.loadBestModelAtEnd, true);
    assert.equal(a.metricForBestModel, "eval_dim_128_cosine_ndcg@10");
    assert.equal(a.greaterIsBetter, null); // → true for an nDCG key, as HF derives it
    assert.equal(a.bf16, true);
    assert.equal(a.tf32, true);
    assert.equal(a.loss, "mnrl");
    assert.equal(a.scale, 20);
    // HF Trainer defaults
    assert.equal(a.weightDecay, 0);
    assert.deepEqual([a.adamBeta1, a.adamBeta2, a.adamEpsilon], [0.9, 0.999, 1e-8]);
    assert.equal(a.maxGradNorm, 1);
    assert.equal(a.seed, 42);
    assert.equal(a.maxSteps, -1);
    assert.equal(a.resumeFromCheckpoint, null);
  });

  test("given values replace defaults; undefined ones do not", () => {
    const a = resolveTrainingArguments({ outputDir: "o", learningRate: 1e-4, numTrainEpochs: undefined });
    assert.equal(a.learningRate, 1e-4);
    assert.equal(a.numTrainEpochs, 4);
    // Fractional epochs, as HF's num_train_epochs (a float).
    assert.equal(resolveTrainingArguments({ outputDir: "o", numTrainEpochs: 1.5 }).numTrainEpochs, 1.5);
  });
});

describe("validation errors name the argument", () => {
  const cases: Array<[string, Partial<TrainingArguments> & Record<string, unknown>, RegExp?]> = [
    ["numTrainEpochs", { numTrainEpochs: 0 }],
    ["numTrainEpochs", { numTrainEpochs: "4" as unknown as number }],
    ["perDeviceTrainBatchSize", { perDeviceTrainBatchSize: 1.5 }, /positive integer, got 1\.5/],
    ["gradientAccumulationSteps", { gradientAccumulationSteps: 0 }],
    ["learningRate", { learningRate: -1 }, /non-negative/],
    ["learningRate", { learningRate: "2e-5" as unknown as number }],
    ["warmupRatio", { warmupRatio: 1.5 }, /\[0, 1\]/],
    ["warmupRatio", { warmupRatio: "0.1" as unknown as number }],
    ["warmupSteps", { warmupSteps: 2.5 }],
    ["adamBeta1", { adamBeta1: 1 }],
    ["maxGradNorm", { maxGradNorm: -0.5 }],
    ["lrSchedulerType", { lrSchedulerType: "cosin" as "cosine" }, /linear, cosine, constant/],
    ["evalStrategy", { evalStrategy: "epochs" as "epoch" }],
    ["saveStrategy", { saveStrategy: "always" as "epoch" }],
    ["batchSampler", { batchSampler: "noDuplicates" as "no_duplicates" }],
    ["loss", { loss: "infonce" as "mnrl" }, /mnrl, cached-mnrl/],
    ["miniBatchSize", { miniBatchSize: 0 }],
    ["maxSteps", { maxSteps: 0 }, /-1 \(off\)/],
    ["seed", { seed: -1 }],
    ["saveTotalLimit", { saveTotalLimit: 0 }],
    ["matryoshkaDims", { matryoshkaDims: [] }],
    ["matryoshkaDims", { matryoshkaDims: [64, 64] }, /repeat/],
    ["matryoshkaDims", { matryoshkaDims: 64 as unknown as number[] }],
    ["matryoshkaWeights", { matryoshkaWeights: [1, 1] }, /2 weights for 5 dims/],
    ["bf16", { bf16: "yes" as unknown as boolean }],
    ["greaterIsBetter", { greaterIsBetter: "false" as unknown as boolean }],
    ["metricForBestModel", { metricForBestModel: 128 as unknown as string }],
    ["loadBestModelAtEnd", { evalStrategy: "no", saveStrategy: "no" }, /needs an evaluation/],
    ["loadBestModelAtEnd", { evalStrategy: "epoch", saveStrategy: "steps" }, /saveStrategy == evalStrategy/],
    ["saveSteps", { evalStrategy: "steps", saveStrategy: "steps", evalSteps: 30, saveSteps: 50 }, /multiple/],
    ["learningrate", { learningrate: 1e-5 }, /unknown training argument/],
  ];
  for (const [name, partial, message] of cases) {
    test(`${name}: ${JSON.stringify(partial)}`, () => {
      assert.throws(
        () => resolveTrainingArguments({ outputDir: "o", ...partial }),
        (e: unknown) => {
          assert.ok(e instanceof ArgumentError, String(e));
          assert.equal(e.argument, name);
          assert.ok(e.message.startsWith(`${name}: `), e.message);
          if (message) assert.match(e.message, message);
          return true;
        },
      );
    });
  }

  test("consistent combinations pass", () => {
    resolveTrainingArguments({
      outputDir: "o",
      evalStrategy: "no",
      saveStrategy: "no",
      loadBestModelAtEnd: false,
    });
    resolveTrainingArguments({
      outputDir: "o",
      evalStrategy: "steps",
      saveStrategy: "steps",
      evalSteps: 25,
      saveSteps: 50,
    });
    resolveTrainingArguments({
      outputDir: "o",
      evalStrategy: "steps",
      saveStrategy: "epoch",
      loadBestModelAtEnd: false,
    });
    resolveTrainingArguments({ outputDir: "o", saveTotalLimit: null, greaterIsBetter: false, maxSteps: 10 });
  });

  test("maxGradNorm 0 or null (HF: no clipping); the run-folder and non-finite switches are booleans", () => {
    assert.equal(resolveTrainingArguments({ outputDir: "o", maxGradNorm: null }).maxGradNorm, null);
    assert.equal(resolveTrainingArguments({ outputDir: "o", maxGradNorm: 0 }).maxGradNorm, 0);
    const a = resolveTrainingArguments({ outputDir: "o" });
    assert.deepEqual([a.overwriteOutputDir, a.skipNonfiniteSteps], [false, false]);
    for (const k of ["overwriteOutputDir", "skipNonfiniteSteps"] as const)
      assert.throws(
        () => resolveTrainingArguments({ outputDir: "o", [k]: "yes" as never }),
        new RegExp(`${k}: must be true or false`),
      );
  });
});

describe("readTrainingConfig", () => {
  const dir = freshDir("args");
  const write = (name: string, body: unknown): string => {
    const path = join(dir, name);
    writeFileSync(path, typeof body === "string" ? body : JSON.stringify(body));
    return path;
  };

  test("reads HF snake_case names (a sentence-transformers user's arguments) and camelCase", () => {
    const path = write("hf.json", {
      output_dir: "bge-base-financial-matryoshka",
      num_train_epochs: 4,
      per_device_train_batch_size: 32,
      gradient_accumulation_steps: 16,
      per_device_eval_batch_size: 16,
      warmup_ratio: 0.1,
      learning_rate: 2e-5,
      lr_scheduler_type: "cosine",
      tf32: true,
      bf16: true,
      batch_sampler: "no_duplicates",
      evaluation_strategy: "epoch",
      save_strategy: "epoch",
      logging_steps: 10,
      save_total_limit: 3,
      load_best_model_at_end: true,
      metric_for_best_model: "eval_dim_128_cosine_ndcg@10",
      max_grad_norm: 1.0,
      adam_beta2: 0.98,
      greater_is_better: true,
      resume_from_checkpoint: "latest",
      matryoshkaDims: [768, 256],
    });
    const partial = readTrainingConfig(path);
    assert.deepEqual(partial, {
      outputDir: "bge-base-financial-matryoshka",
      numTrainEpochs: 4,
      perDeviceTrainBatchSize: 32,
      gradientAccumulationSteps: 16,
      evalBatchSize: 16,
      warmupRatio: 0.1,
      learningRate: 2e-5,
      lrSchedulerType: "cosine",
      tf32: true,
      bf16: true,
      batchSampler: "no_duplicates",
      evalStrategy: "epoch",
      saveStrategy: "epoch",
      loggingSteps: 10,
      saveTotalLimit: 3,
      loadBestModelAtEnd: true,
      metricForBestModel: "eval_dim_128_cosine_ndcg@10",
      maxGradNorm: 1.0,
      adamBeta2: 0.98,
      greaterIsBetter: true,
      resumeFromCheckpoint: "latest",
      matryoshkaDims: [768, 256],
    });
    // ... and they resolve into valid arguments.
    const a = resolveTrainingArguments({ ...partial, outputDir: "o" });
    assert.equal(a.adamBeta2, 0.98);
    assert.deepEqual(a.matryoshkaDims, [768, 256]);
  });

  test("rejects an unknown key naming the file and the key (with a near miss suggested)", () => {
    const typo = write("typo.json", { per_device_train_batch_size: 8, per_device_train_batchsize: 8 });
    assert.throws(
      () => readTrainingConfig(typo),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${typo}: unknown key "per_device_train_batchsize"`), e.message);
        assert.match(e.message, /did you mean "per_device_train_batch_size"\?/);
        return true;
      },
    );
    const other = write("other.json", { report_to: "none" });
    assert.throws(
      () => readTrainingConfig(other),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${other}: unknown key "report_to"`), e.message);
        assert.doesNotMatch(e.message, /did you mean/);
        return true;
      },
    );
  });

  test("invalid JSON and non-objects name the file; bad values fail in validation naming the argument", () => {
    const broken = write("broken.json", "{ num_train_epochs: 4 }");
    assert.throws(
      () => readTrainingConfig(broken),
      (e: Error) => e.message.startsWith(`${broken}: `),
    );
    const list = write("list.json", [1, 2]);
    assert.throws(
      () => readTrainingConfig(list),
      new RegExp(`${list.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: expected a JSON object`),
    );
    const bad = readTrainingConfig(write("bad.json", { learning_rate: "2e-5" }));
    assert.throws(
      () => resolveTrainingArguments({ ...bad, outputDir: "o" }),
      /^ArgumentError: learningRate: /,
    );
  });
});
