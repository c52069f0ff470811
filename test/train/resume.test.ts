// Resuming: a run stopped part-way (mid-epoch) and resumed from its last checkpoint ends with the same weights,
// metrics and log as an uninterrupted run, with dropout on (so the restored random state matters: a checkpoint
// with another RNG state diverges); and a `ragtune train` killed with SIGKILL right after its first checkpoint
// finishes with `--resume latest` and saves the same model as an uninterrupted run.
import assert from "node:assert/strict";
import { type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { getRngState, manualSeed, setNumThreads } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { saveSafetensors } from "../../src/models/weights.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { resolveTrainingArguments, type TrainingArguments } from "../../src/train/args.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";
import { ragtune as runCli } from "../helpers/run-cli.ts";

setNumThreads(1); // a tiny model on a shared machine: more threads only spin

const readJsonl = (name: string): PairRecord[] =>
  readFileSync(fileURLToPath(new URL(`../../data/financial/${name}`, import.meta.url)), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as PairRecord);
const ROWS = readJsonl("train.jsonl").slice(0, 48);
const EVAL_ROWS = readJsonl("test.jsonl").slice(0, 16);
const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });
/** Dropout 0.1 (TINY_CONFIG): training draws from the CPU generator. */
const tinyModel = () =>
  SentenceTransformer.create({ config: TINY_CONFIG, tokenizer, pooling: "mean", maxSeqLength: 32, seed: 42 });

const snapshot = (model: SentenceTransformer): Map<string, Float32Array> =>
  new Map(model.namedParameters().map(([n, t]) => [n, t.detach().toArray() as Float32Array]));

function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

/** Log entries without what depends on the clock, or on where the run started (the summary). */
const comparable = (log: LogEntry[]): LogEntry[] =>
  log
    .filter((e) => !("train_runtime" in e))
    .map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== "eval_runtime")));

describe("resume equivalence (in process)", () => {
  const task = buildRetrievalTask(ROWS.slice(0, 16), ROWS);
  const evaluator = new InformationRetrievalEvaluator({ ...task, dims: [32, 16] });
  const args = (o: Partial<TrainingArguments>): TrainingArguments =>
    resolveTrainingArguments({
      outputDir: freshDir("resume"),
      numTrainEpochs: 3,
      perDeviceTrainBatchSize: 8,
      gradientAccumulationSteps: 2, // 6 micro-batches = 3 steps per epoch, 9 in all
      learningRate: 2e-3,
      warmupRatio: 0.2,
      matryoshkaDims: [32, 16],
      metricForBestModel: "eval_dim_16_cosine_ndcg@10",
      evalStrategy: "steps",
      evalSteps: 2,
      saveStrategy: "steps",
      saveSteps: 4,
      saveTotalLimit: null,
      loadBestModelAtEnd: false, // compare the last step's weights, the strictest check
      loggingSteps: 1,
      ...o,
    });
  const run = (a: TrainingArguments, stopAfterSteps?: number) => {
    const model = tinyModel();
    const result = train({
      model,
      train: ROWS,
      evaluator,
      args: a,
      verbose: false,
      ...(stopAfterSteps ? { stopAfterSteps } : {}),
    });
    const weights = snapshot(model);
    model.dispose();
    return { result, weights };
  };

  test("stopped after step 5 (mid-epoch; last checkpoint 4) and resumed = uninterrupted", () => {
    const full = run(args({}));
    assert.equal(full.result.globalStep, 9);
    assert.deepEqual(
      readdirSync(full.result.bestCheckpoint!.replace(/checkpoint-\d+$/, ""))
        .filter((n) => n.startsWith("checkpoint-"))
        .map((n) => Number(n.slice(11)))
        .sort((x, y) => x - y),
      [4, 8, 9], // every 4 steps, and the last step (as HF with the "steps" strategy)
    );

    const a = args({});
    const stopped = run(a, 5);
    assert.equal(stopped.result.stopped, true);
    assert.equal(stopped.result.globalStep, 5);
    assert.ok(!existsSync(join(a.outputDir, "checkpoint-6")));
    assert.ok(maxAbsDiff(stopped.weights, full.weights) > 1e-4, "the stopped run is not finished");

    const resumed = run({ ...a, resumeFromCheckpoint: "latest" });
    assert.equal(resumed.result.stopped, false);
    assert.equal(resumed.result.globalStep, 9);
    const diff = maxAbsDiff(resumed.weights, full.weights);
    console.log(`resumed vs uninterrupted: weights maxdiff ${diff}`);
    assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
    assert.deepEqual(comparable(resumed.result.logHistory), comparable(full.result.logHistory));
    assert.equal(resumed.result.bestMetric, full.result.bestMetric);
    assert.equal(
      resumed.result.bestCheckpoint!.slice(a.outputDir.length),
      full.result.bestCheckpoint!.replace(/^.*(\/checkpoint-\d+)$/, "$1"),
    );
    assert.deepEqual(resumed.result.finalMetrics, full.result.finalMetrics);

    // The random state is part of what makes it equal: the same checkpoint with another generator state
    // (different dropout masks from step 5 on) ends elsewhere.
    manualSeed(2024);
    saveSafetensors(
      join(a.outputDir, "checkpoint-4", "rng_state.safetensors"),
      new Map([["cpu", getRngState("cpu")]]),
    );
    const otherRng = run({ ...a, resumeFromCheckpoint: join(a.outputDir, "checkpoint-4") });
    assert.ok(maxAbsDiff(otherRng.weights, full.weights) > 1e-5, "dropout draws from the restored generator");
  });

  test("resuming with a different sampler (batch size) is refused", () => {
    const a = args({ saveSteps: 2 });
    run(a, 2);
    assert.throws(
      () => run({ ...a, perDeviceTrainBatchSize: 4, resumeFromCheckpoint: "latest" }),
      /sampler differs from the checkpoint's/,
    );
    assert.throws(() => run({ ...args({}), resumeFromCheckpoint: "latest" }), /no checkpoint in/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// A killed `ragtune train`

const ragtune = (args: string[], onStart?: (child: ChildProcess) => void) =>
  runCli(args, { onStart, threads: "preload", env: { RAGTUNE_DEBUG: "1" } });

describe("a killed ragtune train resumes", () => {
  test("SIGKILL after the first checkpoint, --resume latest: the same model as an uninterrupted run", async () => {
    const work = freshDir("kill");
    const modelDir = join(work, "base");
    const base = tinyModel();
    base.save(modelDir);
    base.dispose();
    const trainFile = join(work, "train.jsonl");
    const evalFile = join(work, "test.jsonl");
    writeFileSync(trainFile, ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
    writeFileSync(evalFile, EVAL_ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const flags = (out: string) => [
      "train",
      ...["--model", modelDir, "--train", trainFile, "--eval", evalFile, "--out", out],
      ...["--epochs", "3", "--batch-size", "8", "--gradient-accumulation-steps", "1"], // 6 steps per epoch
      ...["--learning-rate", "2e-3", "--matryoshka-dims", "32,16", "--logging-steps", "1"],
      ...["--no-baseline", "--device", "cpu"],
    ];
    const killedOut = join(work, "killed");
    const fullOut = join(work, "full");
    const first = join(killedOut, "checkpoint-6", "trainer_state.json");

    const [killed, full] = await Promise.all([
      ragtune(flags(killedOut), (child) => {
        // The folder appears by rename, complete: kill as soon as it is there.
        const poll = setInterval(() => {
          if (existsSync(first)) {
            clearInterval(poll);
            child.kill("SIGKILL");
          }
        }, 5);
        child.on("close", () => clearInterval(poll));
      }),
      ragtune(flags(fullOut)),
    ]);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(killed.signal, "SIGKILL", `the run ended by itself first:\n${killed.stderr}`);
    assert.ok(!existsSync(join(killedOut, "final")), "the killed run did not finish");
    const left = readdirSync(killedOut).filter((n) => n.startsWith("checkpoint-"));
    assert.ok(left.includes("checkpoint-6"), left.join(", "));
    assert.ok(!left.includes("checkpoint-18"), left.join(", "));

    const resumed = await ragtune([...flags(killedOut), "--resume", "latest"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-\d+ at step \d+/);
    assert.ok(!readdirSync(killedOut).some((n) => n.includes(".tmp-")), "no temporary folder is left");

    // Both final folders load; they encode the same, and hold the same metrics.
    const a = SentenceTransformer.fromDir(join(killedOut, "final"));
    const b = SentenceTransformer.fromDir(join(fullOut, "final"));
    const texts = EVAL_ROWS.slice(0, 6).flatMap((r) => [r.anchor, r.positive]);
    const ea = a.encode(texts).data;
    const eb = b.encode(texts).data;
    let diff = 0;
    for (let i = 0; i < ea.length; i++) diff = Math.max(diff, Math.abs(ea[i]! - eb[i]!));
    assert.ok(diff <= 1e-6, `embeddings differ by ${diff}`);
    const metrics = (dir: string) => {
      const { eval_runtime: _, ...rest } = JSON.parse(
        readFileSync(join(dir, "eval_results.json"), "utf8"),
      ) as Record<string, number>;
      return rest;
    };
    assert.deepEqual(metrics(killedOut), metrics(fullOut));
    assert.equal(typeof metrics(fullOut)["eval_dim_16_cosine_ndcg@10"], "number");
    // The final model is the best checkpoint's (loadBestModelAtEnd, the default).
    const state = JSON.parse(
      readFileSync(join(killedOut, "checkpoint-18", "trainer_state.json"), "utf8"),
    ) as {
      best_model_checkpoint: string;
    };
    const best = SentenceTransformer.fromDir(state.best_model_checkpoint);
    const ebest = best.encode(texts).data;
    assert.deepEqual([...ebest], [...ea]);
    for (const m of [a, b, best]) m.dispose();
  });
});
