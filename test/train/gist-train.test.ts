// Training with --loss gist / cached-gist: MatryoshkaLoss(GISTEmbedLoss) with a guide model (here another
// instance of the same tiny model) learns on the tiny model (finite losses, weights move), the cached form
// follows the same trajectory, a stopped run resumes to the uninterrupted weights, the losses' card names the
// guide, and a gist loss without its guide (or a guide without a gist loss) is refused before any work.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import { GISTEmbedLoss } from "../../src/losses/index.ts";
import { BertConfig } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { ArgumentError, resolveTrainingArguments, type TrainingArguments } from "../../src/train/args.ts";
import { train } from "../../src/train/trainer.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";

setNumThreads(1);

const TRAIN_FILE = fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url));
const ROWS: PairRecord[] = readFileSync(TRAIN_FILE, "utf8")
  .trim()
  .split("\n")
  .slice(0, 48)
  .map((line) => JSON.parse(line) as PairRecord);
const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });

/** The tiny random model without dropout (runs are then deterministic), mean pooling, 32 tokens a text. */
function tinyModel(): SentenceTransformer {
  const config = BertConfig.with({ ...TINY_CONFIG, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });
  return SentenceTransformer.create({ config, tokenizer, pooling: "mean", maxSeqLength: 32, seed: 42 });
}

function args(o: Partial<TrainingArguments> = {}): TrainingArguments {
  return resolveTrainingArguments({
    outputDir: freshDir("gist"),
    loss: "gist",
    guideModel: "tiny-guide",
    perDeviceTrainBatchSize: 8,
    gradientAccumulationSteps: 2,
    learningRate: 2e-3,
    warmupRatio: 0,
    matryoshkaDims: [32, 16],
    maxSteps: 3,
    loggingSteps: 1,
    evalStrategy: "no",
    saveStrategy: "no",
    loadBestModelAtEnd: false,
    ...o,
  });
}

const weightsOf = (model: SentenceTransformer): Float32Array[] =>
  model.namedParameters().map(([, t]) => t.detach().toArray() as Float32Array);

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, k) => x.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[k]![i]!)))));
  return m;
}

/** The GIST loss (full dim) of the model over all rows as one batch, guided by a fresh tiny guide. */
function heldLoss(model: SentenceTransformer): number {
  const guide = tinyModel();
  const columns = [ROWS.map((r) => r.anchor), ROWS.map((r) => r.positive)];
  const embeddings = columns.map((c) => model.encodeTensor(c)); // (N, 32) each
  const guideEmbeddings = columns.map((c) => guide.encodeTensor(c)); // (N, 32) each
  const loss = new GISTEmbedLoss().lossFromEmbeddings(embeddings, null, { guideEmbeddings }); // ()
  const value = loss.item();
  for (const t of [loss, ...embeddings, ...guideEmbeddings]) t.dispose();
  guide.dispose();
  return value;
}

/** Trains a fresh tiny model with a fresh tiny guide; returns its weights, logged losses and the result. */
function run(a: TrainingArguments, o: { stopAfterSteps?: number } = {}) {
  const model = tinyModel();
  const guide = tinyModel();
  const guideBefore = weightsOf(guide);
  const withGuide = a.guideModel !== null ? { guide } : {};
  const result = train({ model, ...withGuide, train: ROWS, args: a, verbose: false, ...o });
  const out = {
    weights: weightsOf(model),
    heldLoss: heldLoss(model),
    losses: result.logHistory.filter((e) => "loss" in e).map((e) => e.loss as number),
    result,
    guideMoved: maxAbsDiff(guideBefore, weightsOf(guide)),
  };
  model.dispose();
  guide.dispose();
  return out;
}

describe("train() with a GIST loss", () => {
  test("gist learns (finite losses, weights move, guide untouched); cached-gist follows it; the card names the guide", () => {
    const start = tinyModel();
    const init = weightsOf(start);
    const before = heldLoss(start);
    start.dispose();
    const gist = run(args());
    assert.equal(gist.losses.length, 3);
    assert.ok(gist.losses.every(Number.isFinite), `losses ${gist.losses.join(", ")}`);
    // Learning: the GIST loss over all the training rows at once fell (the logged losses are of other batches).
    console.log(`GIST loss over the ${ROWS.length} rows: ${before.toFixed(4)} → ${gist.heldLoss.toFixed(4)}`);
    assert.ok(gist.heldLoss < before, `GIST loss over the rows ${before} → ${gist.heldLoss}`);
    assert.ok(maxAbsDiff(gist.weights, init) > 1e-3, "the weights moved");
    assert.equal(gist.guideMoved, 0, "the guide is never trained");
    assert.deepEqual(
      gist.result.losses.map((l) => l.name),
      ["MatryoshkaLoss", "GISTEmbedLoss"],
    );
    assert.equal(gist.result.losses[0]!.config.loss, "GISTEmbedLoss");
    assert.equal(gist.result.losses[1]!.config.guide, "tiny-guide");
    assert.equal(gist.result.losses[1]!.config.temperature, 0.01);

    // A guide changes the loss: plain MNRL's first loss differs (another scale and no masking).
    const mnrl = run(args({ loss: "mnrl", guideModel: null }));
    assert.notEqual(mnrl.losses[0], gist.losses[0]);

    // Fused accumulation (one loss call per micro-batch without the guide's context) is not used with GIST: "on"
    // runs the per-micro-batch path, with the same losses.
    const fused = run(args({ fusedAccumulation: "on" }));
    assert.deepEqual(fused.losses, gist.losses);

    const cached = run(args({ loss: "cached-gist", miniBatchSize: 3 }));
    assert.deepEqual(
      cached.result.losses.map((l) => l.name),
      ["MatryoshkaLoss", "CachedGISTEmbedLoss"],
    );
    gist.losses.forEach((l, i) =>
      assert.ok(Math.abs(l - cached.losses[i]!) < 1e-4, `step ${i + 1}: ${l} vs ${cached.losses[i]}`),
    );
    const diff = maxAbsDiff(gist.weights, cached.weights);
    assert.ok(diff < 1e-4, `cached-gist vs gist weights differ by ${diff}`);
  });

  test("a run stopped after step 2 and resumed ends with the uninterrupted run's weights", () => {
    const whole = run(args({ maxSteps: 4, saveStrategy: "steps", saveSteps: 2 }));
    const a = args({ maxSteps: 4, saveStrategy: "steps", saveSteps: 2 });
    const first = run(a, { stopAfterSteps: 2 });
    assert.ok(first.result.stopped);
    const resumed = run({ ...a, resumeFromCheckpoint: "latest" });
    assert.equal(resumed.result.globalStep, 4);
    assert.ok(resumed.losses.every(Number.isFinite));
    const diff = maxAbsDiff(whole.weights, resumed.weights);
    assert.ok(diff < 1e-5, `resumed vs uninterrupted weights differ by ${diff}`);
  });

  test("a gist loss without its guide, or a guide without a gist loss, is refused", () => {
    assert.throws(
      () => resolveTrainingArguments({ outputDir: freshDir("gist"), loss: "gist" }),
      (e: unknown) =>
        e instanceof ArgumentError && /guideModel: --loss gist needs a guide model/.test(e.message),
    );
    assert.throws(
      () => resolveTrainingArguments({ outputDir: freshDir("gist"), loss: "cached-gist", guideModel: null }),
      /guideModel: --loss cached-gist needs a guide model/,
    );
    assert.throws(
      () => resolveTrainingArguments({ outputDir: freshDir("gist"), loss: "mnrl", guideModel: "g" }),
      /guideModel: is used by --loss gist or cached-gist only, not mnrl/,
    );
    assert.throws(
      () =>
        resolveTrainingArguments({
          outputDir: freshDir("gist"),
          loss: "gist",
          guideModel: "g",
          symmetric: true,
        }),
      /symmetric: is a MultipleNegativesRankingLoss option; GISTEmbedLoss has no symmetric form/,
    );
    assert.throws(
      () => resolveTrainingArguments({ outputDir: freshDir("gist"), gistTemperature: 0 }),
      /gistTemperature: must be a positive number/,
    );
    const model = tinyModel();
    assert.throws(
      () => train({ model, train: ROWS, args: args(), verbose: false }),
      /--loss gist needs the guide model tiny-guide/,
    );
    model.dispose();
  });
});
