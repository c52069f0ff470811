// GradCache parity on a real encoder: the tiny BERT fixture (test/fixtures/bert, 2 layers, H=32, dropout
// 0.1) with CLS pooling. Texts are token ids written as "101 17 42 102", so no tokenizer is needed. The
// cached loss must give the plain loss's value and parameter gradients, in eval mode and — thanks to the
// random-state replay — in train mode with dropout on; without the replay the gradients differ.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { cat, liveTensors, manualSeed, rand, tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import { BertModel } from "../../src/models/bert.ts";
import {
  CachedMultipleNegativesRankingLoss,
  MatryoshkaLoss,
  MultipleNegativesRankingLoss,
  type Embedder,
  type EmbeddingLoss,
} from "../../src/losses/index.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/bert/", import.meta.url));
const { model } = BertModel.fromPretrained(FIXTURE);
const params = model.namedParameters();

/** "101 17 42 102" -> ids, padded with 0 to the longest text of the call; CLS pooling. */
const embedder: Embedder = {
  embed(texts: readonly string[]): Tensor {
    return tidy(() => {
      const rows = texts.map((t) => t.split(" ").map(Number));
      const len = Math.max(...rows.map((r) => r.length));
      const inputIds = tensor(
        rows.map((r) => [...r, ...Array<number>(len - r.length).fill(0)]),
        { dtype: "int64" },
      ); // (n, L)
      const attentionMask = tensor(
        rows.map((r) => Array.from({ length: len }, (_, i) => (i < r.length ? 1 : 0))),
        { dtype: "int64" },
      ); // (n, L)
      const lastHiddenState = model.forward({ inputIds, attentionMask }); // (n, L, H)
      return lastHiddenState.select(1, 0); // (n, H): the [CLS] token
    });
  },
};

// B = 10 texts per column, token ids in [5, 119], lengths 3..9: a deterministic LCG, no torch RNG.
const B = 10;
let lcg = 12345;
const next = () => (lcg = (lcg * 1103515245 + 12345) % 2 ** 31);
const text = () => [
  "101",
  ...Array.from({ length: 1 + (next() % 7) }, () => String(5 + (next() % 115))),
  "102",
];
const columns = [0, 1, 2].map(() => Array.from({ length: B }, () => text().join(" ")));

function zeroGrads(): void {
  for (const [, p] of params) p.grad = null;
}

/** Every parameter's gradient as numbers (zero if none). */
function grads(): Map<string, number[]> {
  return tidy(
    () => new Map(params.map(([n, p]) => [n, p.grad?.toNumbers() ?? Array<number>(p.numel).fill(0)])),
  );
}

function maxGradDiff(a: Map<string, number[]>, b: Map<string, number[]>): number {
  let m = 0;
  for (const [n, ga] of a) {
    const gb = b.get(n) as number[];
    for (let i = 0; i < ga.length; i++) m = Math.max(m, Math.abs((ga[i] as number) - (gb[i] as number)));
  }
  return m;
}

const gradScaleOf = (g: Map<string, number[]>) => Math.max(...[...g.values()].flat().map(Math.abs));

/**
 * The plain loss: the model embeds each column (in chunks of `chunk` texts: with dropout on, the masks depend
 * on how the batch is split, so the train-mode reference splits like the cached loss), then loss + backward.
 */
function plain(loss: EmbeddingLoss, cols: string[][], chunk: number, seed: number) {
  zeroGrads();
  manualSeed(seed);
  const value = tidy(() => {
    const embs = cols.map((col) => {
      const parts: Tensor[] = [];
      for (let b = 0; b < col.length; b += chunk) parts.push(embedder.embed(col.slice(b, b + chunk)));
      return cat(parts, 0); // (B, H)
    });
    const l = loss.lossFromEmbeddings(embs); // ()
    l.backward();
    return l.item();
  });
  const after = tidy(() => rand([4]).toNumbers()); // where the random stream was left
  return { loss: value, grads: grads(), after };
}

function cached(loss: CachedMultipleNegativesRankingLoss, cols: string[][], seed: number, gradScale = 1) {
  zeroGrads();
  manualSeed(seed);
  const { loss: value } = loss.step(embedder, cols, { gradScale });
  const after = tidy(() => rand([4]).toNumbers());
  return { loss: value, grads: grads(), after };
}

const MB = 4; // 10 = 4 + 4 + 2

describe("CachedMultipleNegativesRankingLoss on the tiny BERT (CLS pooling, B=10, miniBatchSize 4)", () => {
  test("eval mode: same loss and parameter gradients as the plain loss on the full batch", () => {
    model.eval();
    const mnrl = new MultipleNegativesRankingLoss();
    const want = plain(mnrl, columns, B, 1);
    const got = cached(new CachedMultipleNegativesRankingLoss({ miniBatchSize: MB }), columns, 1);
    const d = maxGradDiff(got.grads, want.grads);
    console.log(
      `eval: loss ${want.loss.toFixed(6)} diff ${Math.abs(got.loss - want.loss).toExponential(1)} | ` +
        `grad maxdiff ${d.toExponential(1)} (max |grad| ${gradScaleOf(want.grads).toExponential(1)})`,
    );
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5);
    assert.ok(d <= 1e-5, `grad maxdiff ${d}`);
    assert.ok(gradScaleOf(want.grads) > 1e-3, "the gradients are not trivially zero");
  });

  test("eval mode, symmetric and gradScale 0.5: the plain symmetric gradient, halved", () => {
    model.eval();
    const want = plain(new MultipleNegativesRankingLoss({ symmetric: true }), columns.slice(0, 2), B, 1);
    const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 3, symmetric: true });
    const got = cached(loss, columns.slice(0, 2), 1, 0.5);
    const halved = new Map([...want.grads].map(([n, g]) => [n, g.map((v) => v / 2)]));
    const d = maxGradDiff(got.grads, halved);
    console.log(`eval symmetric, gradScale 0.5: grad maxdiff ${d.toExponential(1)}`);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5);
    assert.ok(d <= 1e-5, `grad maxdiff ${d}`);
  });

  test("train mode (dropout on): same loss and gradients thanks to the random-state replay", () => {
    model.train();
    try {
      const mnrl = new MultipleNegativesRankingLoss();
      const want = plain(mnrl, columns, MB, 7);
      const got = cached(new CachedMultipleNegativesRankingLoss({ miniBatchSize: MB }), columns, 7);
      const d = maxGradDiff(got.grads, want.grads);
      // Dropout is really on: the eval-mode loss differs.
      model.eval();
      const evalLoss = plain(mnrl, columns, MB, 7).loss;
      model.train();
      console.log(
        `train: loss ${want.loss.toFixed(6)} (eval ${evalLoss.toFixed(6)}) diff ` +
          `${Math.abs(got.loss - want.loss).toExponential(1)} | grad maxdiff ${d.toExponential(1)}`,
      );
      assert.ok(Math.abs(evalLoss - want.loss) > 1e-3, "dropout changed nothing");
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-5);
      assert.ok(d <= 1e-5, `grad maxdiff ${d}`);
      // Step (3) runs under forked generators: the random stream is left where the plain step leaves it.
      assert.deepEqual(got.after, want.after);
    } finally {
      model.eval();
    }
  });

  test("train mode without the replay: the same loss, but different gradients", () => {
    model.train();
    try {
      const want = plain(new MultipleNegativesRankingLoss(), columns, MB, 7);
      const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: MB, replayRandomState: false });
      const got = cached(loss, columns, 7);
      const d = maxGradDiff(got.grads, want.grads);
      console.log(`train, replay off: grad maxdiff ${d.toExponential(1)} (must be large)`);
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-5, "step (1) and (2) do not depend on the replay");
      assert.ok(d > 1e-3, `without the replay the gradients should differ, maxdiff ${d}`);
    } finally {
      model.eval();
    }
  });

  test("train mode: MatryoshkaLoss [32, 16, 8] inside the cached loss equals plain Matryoshka", () => {
    model.train();
    try {
      const matryoshka = () =>
        new MatryoshkaLoss(new MultipleNegativesRankingLoss(), [8, 32, 16], { embeddingDim: 32 });
      const want = plain(matryoshka(), columns, MB, 11);
      const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: MB, loss: matryoshka() });
      const got = cached(loss, columns, 11);
      const d = maxGradDiff(got.grads, want.grads);
      console.log(
        `train Matryoshka: loss ${want.loss.toFixed(6)} diff ${Math.abs(got.loss - want.loss).toExponential(1)}` +
          ` | grad maxdiff ${d.toExponential(1)}`,
      );
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-5);
      assert.ok(d <= 1e-5, `grad maxdiff ${d}`);
    } finally {
      model.eval();
    }
  });

  test("a step leaks no tensor; lossValue matches the step's loss without touching gradients", () => {
    model.eval();
    const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: MB });
    zeroGrads();
    loss.step(embedder, columns); // creates the parameters' .grad
    const before = liveTensors();
    const { loss: value } = loss.step(embedder, columns);
    assert.equal(liveTensors(), before);
    const g = grads();
    assert.ok(Math.abs(loss.lossValue(embedder, columns) - value) <= 1e-6);
    assert.equal(maxGradDiff(grads(), g), 0);
    zeroGrads();
  });
});
