// The packed path end to end through the trainer: a short training run of a tiny model (dropout off, fixed
// seed, gradient accumulation) with packing on vs off ends within 1e-4 in every logged loss and 1e-3 in every
// nDCG@10; and fused accumulation (src/train/fused-accumulation.ts: the whole group in one packed forward, each
// micro-batch's own Matryoshka(MNRL) loss, one backward) gives sequential accumulation's loss and gradients
// within 1e-5, directly and through the trainer.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads, tidy } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { MatryoshkaLoss, MultipleNegativesRankingLoss } from "../../src/losses/index.ts";
import { BertConfig } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { resolveTrainingArguments, type TrainingArguments } from "../../src/train/args.ts";
import {
  estimateActivationBytes,
  fusedAccumulationStep,
  splitGroup,
  useFusedAccumulation,
} from "../../src/train/fused-accumulation.ts";
import { train } from "../../src/train/trainer.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";

setNumThreads(1); // a tiny model: more threads only spin on a shared machine

const TRAIN_FILE = fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url));
const ROWS: PairRecord[] = readFileSync(TRAIN_FILE, "utf8")
  .trim()
  .split("\n")
  .slice(0, 96)
  .map((line) => JSON.parse(line) as PairRecord);
const DIMS = [32, 16, 8];
const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });

function tinyModel(): SentenceTransformer {
  const config = BertConfig.with({ ...TINY_CONFIG, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });
  return SentenceTransformer.create({ config, tokenizer, pooling: "mean", maxSeqLength: 48, seed: 42 });
}

function args(o: Partial<TrainingArguments>): TrainingArguments {
  return resolveTrainingArguments({
    outputDir: freshDir("packed-train"),
    numTrainEpochs: 1,
    perDeviceTrainBatchSize: 8,
    gradientAccumulationSteps: 2,
    learningRate: 2e-3,
    warmupRatio: 0,
    matryoshkaDims: DIMS,
    metricForBestModel: "eval_dim_8_cosine_ndcg@10",
    loggingSteps: 1,
    maxSteps: 4,
    evalStrategy: "steps",
    evalSteps: 2,
    saveStrategy: "no",
    loadBestModelAtEnd: false,
    ...o,
  });
}

function run(o: Partial<TrainingArguments>) {
  const task = buildRetrievalTask(ROWS.slice(0, 48), ROWS.slice(0, 48));
  const evaluator = new InformationRetrievalEvaluator({
    queries: task.queries,
    corpus: task.corpus,
    relevantDocs: task.relevantDocs,
    dims: DIMS,
    batchSize: 16,
  });
  const model = tinyModel();
  const result = train({ model, train: ROWS, evaluator, args: args(o), verbose: false });
  model.dispose();
  const losses = result.logHistory.filter((e) => "loss" in e).map((e) => e.loss as number);
  const ndcg = result.logHistory
    .filter((e) => "eval_dim_8_cosine_ndcg@10" in e)
    .flatMap((e) => DIMS.map((d) => e[`eval_dim_${d}_cosine_ndcg@10`] as number));
  return { losses, ndcg };
}

const maxAbs = (a: readonly number[], b: readonly number[]) => {
  assert.equal(a.length, b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
};

describe("training with packing on vs off", () => {
  test("same losses (1e-4) and nDCG@10 at every dim and evaluation (1e-3)", () => {
    const on = run({ packing: true, fusedAccumulation: "off" });
    const off = run({ packing: false, fusedAccumulation: "off" });
    assert.equal(on.losses.length, 4);
    assert.equal(on.ndcg.length, 2 * DIMS.length);
    const dl = maxAbs(on.losses, off.losses);
    const dn = maxAbs(on.ndcg, off.ndcg);
    console.log(`loss maxdiff ${dl.toExponential(2)}, nDCG@10 maxdiff ${dn.toExponential(2)}`);
    assert.ok(dl <= 1e-4, `loss maxdiff ${dl}`);
    assert.ok(dn <= 1e-3, `nDCG maxdiff ${dn}`);
  });

  test("fused accumulation through the trainer follows sequential accumulation", () => {
    const fused = run({ fusedAccumulation: "on" });
    const sequential = run({ fusedAccumulation: "off" });
    const dl = maxAbs(fused.losses, sequential.losses);
    const dn = maxAbs(fused.ndcg, sequential.ndcg);
    console.log(
      `fused vs sequential: loss maxdiff ${dl.toExponential(2)}, nDCG@10 maxdiff ${dn.toExponential(2)}`,
    );
    assert.ok(dl <= 1e-4, `loss maxdiff ${dl}`);
    assert.ok(dn <= 1e-3, `nDCG maxdiff ${dn}`);
  });
});

describe("fused accumulation", () => {
  test("one pass over the group: the loss and every gradient of sequential accumulation within 1e-5", () => {
    const model = tinyModel();
    model.train();
    const loss = new MatryoshkaLoss(new MultipleNegativesRankingLoss({ scale: 20 }), DIMS, {
      embeddingDim: 32,
    });
    // 3 micro-batches of different sizes (the last group of an epoch can be short, and so can a batch).
    const sizes = [8, 8, 5];
    let at = 0;
    const group = sizes.map((n) => {
      const rows = ROWS.slice(at, at + n);
      at += n;
      return [rows.map((r) => r.anchor), rows.map((r) => r.positive)];
    });
    const params = model.namedParameters();
    const snapshot = () =>
      params.map(([, p]) => {
        const g = p.grad;
        const out = g ? (g.toArray() as Float32Array).slice() : new Float32Array(p.numel);
        g?.dispose();
        p.grad = null;
        return out;
      });
    for (const [, p] of params) p.grad = null;
    let sequential = 0;
    for (const mb of group) {
      sequential += tidy(() => {
        const v = loss.lossFromEmbeddings(mb.map((texts) => model.embed(texts)));
        v.mul(1 / group.length).backward();
        return v.item();
      });
    }
    sequential /= group.length;
    const seqGrads = snapshot();
    const embedder = { embed: (texts: readonly string[]) => model.embed(texts) };
    const countTokens = (t: string) => Math.min(model.countTokens(t), model.maxSeqLength);
    const shape = model.encoderShape;
    const fused = fusedAccumulationStep(embedder, loss, group, {
      shape,
      elementBytes: 4,
      budgetBytes: Infinity,
      countTokens,
    });
    assert.deepEqual(fused.parts, [3]);
    const fusedGrads = snapshot();
    // A budget that fits one micro-batch at a time: split into parts, still the same gradients.
    const oneBatch = estimateActivationBytes(group[0]!.flat().map(countTokens), shape, 4);
    const split = fusedAccumulationStep(embedder, loss, group, {
      shape,
      elementBytes: 4,
      budgetBytes: oneBatch * 1.5,
      countTokens,
    });
    assert.ok(split.parts.length >= 2, `parts ${split.parts}`);
    const splitGrads = snapshot();
    const worst = (gs: Float32Array[]) =>
      gs.reduce((m, g, i) => {
        const ref = seqGrads[i]!;
        let scale = 1;
        let d = 0;
        for (let k = 0; k < g.length; k++) {
          d = Math.max(d, Math.abs(g[k]! - ref[k]!));
          scale = Math.max(scale, Math.abs(ref[k]!));
        }
        return Math.max(m, d / scale);
      }, 0);
    console.log(
      `loss: sequential ${sequential.toFixed(7)}, fused ${fused.loss.toFixed(7)}; gradient maxdiff fused ` +
        `${worst(fusedGrads).toExponential(2)}, split ${worst(splitGrads).toExponential(2)}`,
    );
    assert.ok(Math.abs(fused.loss - sequential) <= 1e-5);
    assert.ok(Math.abs(split.loss - sequential) <= 1e-5);
    assert.ok(worst(fusedGrads) <= 1e-5, `fused gradient maxdiff ${worst(fusedGrads)}`);
    assert.ok(worst(splitGrads) <= 1e-5, `split gradient maxdiff ${worst(splitGrads)}`);
    model.dispose();
  });

  test("splitGroup keeps whole micro-batches and never returns an empty part", () => {
    const shape = { layers: 1, hidden: 1, heads: 0 };
    // Each micro-batch: 10 tokens -> 340 bytes at 1 byte per element.
    const counts = () => [10];
    assert.deepEqual(splitGroup(4, counts, shape, 1, Infinity), [4]);
    assert.deepEqual(splitGroup(4, counts, shape, 1, 700), [2, 2]);
    assert.deepEqual(splitGroup(3, counts, shape, 1, 1), [1, 1, 1]); // one over budget still runs alone
  });

  test("auto is on for CUDA and off on the CPU", () => {
    assert.equal(useFusedAccumulation("auto", "cuda"), true);
    assert.equal(useFusedAccumulation("auto", "cuda:1"), true);
    assert.equal(useFusedAccumulation("auto", "cpu"), false);
    assert.equal(useFusedAccumulation("on", "cpu"), true);
    assert.equal(useFusedAccumulation("off", "cuda"), false);
  });
});

describe("the packing and fused-accumulation arguments", () => {
  test("defaults: packing on, fused accumulation auto; bad values name the argument", async () => {
    const { ArgumentError } = await import("../../src/train/args.ts");
    const { onOffOption } = await import("../../src/cli/args.ts");
    const a = resolveTrainingArguments({ outputDir: "out" });
    assert.equal(a.packing, true);
    assert.equal(a.fusedAccumulation, "auto");
    assert.throws(
      () => resolveTrainingArguments({ outputDir: "out", packing: "yes" as unknown as boolean }),
      (e: unknown) => e instanceof ArgumentError && e.argument === "packing",
    );
    assert.throws(
      () => resolveTrainingArguments({ outputDir: "out", fusedAccumulation: "always" as "on" }),
      (e: unknown) => e instanceof ArgumentError && e.argument === "fusedAccumulation",
    );
    assert.equal(onOffOption({ packing: "off" }, "packing", true), false);
    assert.equal(onOffOption({}, "packing", true), true);
    assert.throws(
      () => onOffOption({ packing: "no" }, "packing", true),
      /--packing must be on or off, got "no"/,
    );
  });
});
