// Input checks, options, model-card config and the small behaviours of the losses (no fixture needed).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { tensor, tidy, zeros, type Tensor } from "../../src/engine/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  cosSim,
  MatryoshkaLoss,
  MultipleNegativesRankingLoss,
  shrink,
  type Embedder,
} from "../../src/losses/index.ts";

// Rows of a fixed (8, 4) table: enough distinct embeddings for every test below.
const TABLE = [
  [0.9, 0.1, 0.3, 0.2],
  [0.1, 0.8, -0.2, 0.5],
  [-0.3, 0.2, 0.7, 0.1],
  [0.4, -0.6, 0.1, 0.3],
  [0.8, 0.2, 0.4, -0.1],
  [0.0, 0.9, -0.1, 0.6],
  [-0.2, 0.3, 0.8, 0.0],
  [0.5, -0.5, 0.2, 0.4],
];
const rows = (...idx: number[]): Tensor => tensor(idx.map((i) => TABLE[i] as number[])); // (n, 4)
const silent = { onWarning: () => {} };

describe("MultipleNegativesRankingLoss: checks and config", () => {
  const loss = new MultipleNegativesRankingLoss();

  test("fewer than 2 columns", () => {
    tidy(() => {
      assert.throws(() => loss.lossFromEmbeddings([rows(0, 1)]), /at least 2 embedding columns .* got 1/);
      assert.throws(() => loss.lossFromEmbeddings([]), /got 0/);
    });
  });

  test("mismatched batch sizes or dims between columns; 1-D columns; an empty batch", () => {
    tidy(() => {
      assert.throws(
        () => loss.lossFromEmbeddings([rows(0, 1), rows(4, 5), rows(2)]),
        /column 2 has shape \[1, 4\] but column 0 has \[2, 4\].*same batch size/,
      );
      assert.throws(() => loss.lossFromEmbeddings([rows(0, 1), rows(4, 5).narrow(1, 0, 3)]), /column 1/);
      assert.throws(() => loss.lossFromEmbeddings([tensor([1, 2]), tensor([1, 2])]), /\(batch, dim\)/);
      assert.throws(() => loss.lossFromEmbeddings([zeros([0, 4]), zeros([0, 4])]), /batch is empty/);
    });
  });

  test("non-positive or non-finite scale; unknown similarity", () => {
    for (const scale of [0, -20, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new MultipleNegativesRankingLoss({ scale }),
        /scale must be a positive finite number/,
      );
    }
    assert.throws(
      () => new MultipleNegativesRankingLoss({ similarity: "euclidean" as never }),
      /similarity must be "cosine" or "dot"/,
    );
  });

  test("configDict and name follow sentence-transformers (symmetric = MultipleNegativesSymmetricRankingLoss)", () => {
    assert.equal(loss.name, "MultipleNegativesRankingLoss");
    assert.deepEqual(loss.configDict(), {
      scale: 20,
      similarity_fct: "cos_sim",
      gather_across_devices: false,
    });
    const sym = new MultipleNegativesRankingLoss({ scale: 1, similarity: "dot", symmetric: true });
    assert.equal(sym.name, "MultipleNegativesSymmetricRankingLoss");
    assert.deepEqual(sym.configDict(), {
      scale: 1,
      similarity_fct: "dot_score",
      gather_across_devices: false,
    });
    assert.match(loss.citation, /@misc\{henderson2017efficient/);
  });

  test("cosine uses eps 1e-12: a zero embedding scores 0 against everything, the loss stays finite", () => {
    tidy(() => {
      const a = tensor([[0, 0, 0, 0], TABLE[1] as number[]]); // (2, 4)
      assert.deepEqual(cosSim(a, rows(4, 5)).select(0, 0).toNumbers(), [0, 0]);
      // A 1e-13 vector is below eps: normalize divides by 1e-12, not by its norm (F.normalize semantics).
      const tiny = tensor([[1e-13, 0, 0, 0]], { dtype: "float64" });
      assert.ok(
        Math.abs((cosSim(tiny, tensor([[1, 0, 0, 0]], { dtype: "float64" })).item() as number) - 0.1) < 1e-12,
      );
      const l = loss.lossFromEmbeddings([a, rows(4, 5)]).item();
      assert.ok(Number.isFinite(l));
      // Row 0 scores 0 against both candidates: CE = log 2 for it.
      assert.ok(l > Math.LN2 / 2);
    });
  });

  test("a perfect batch has ~0 loss; swapping positives makes it large", () => {
    tidy(() => {
      const good = loss.lossFromEmbeddings([rows(0, 1, 2), rows(0, 1, 2)]).item();
      const bad = loss.lossFromEmbeddings([rows(0, 1, 2), rows(1, 2, 0)]).item();
      assert.ok(good < 0.01, `${good}`);
      assert.ok(bad > 5, `${bad}`);
    });
  });
});

describe("MatryoshkaLoss: checks, config, warnings, nDimsPerStep", () => {
  const mnrl = new MultipleNegativesRankingLoss();

  test("empty dims, non-positive or fractional dims, weights of the wrong length, bad nDimsPerStep", () => {
    assert.throws(() => new MatryoshkaLoss(mnrl, []), /at least one dimension/);
    assert.throws(() => new MatryoshkaLoss(mnrl, [4, 0]), /positive integers, got 0/);
    assert.throws(() => new MatryoshkaLoss(mnrl, [4, 2.5]), /positive integers, got 2.5/);
    assert.throws(() => new MatryoshkaLoss(mnrl, [4, 2], { weights: [1] }), /1 weights for 2 dims/);
    assert.throws(() => new MatryoshkaLoss(mnrl, [4, 2], { weights: [1, Number.NaN] }), /finite/);
    assert.throws(() => new MatryoshkaLoss(mnrl, [4, 2], { nDimsPerStep: 0 }), /nDimsPerStep/);
  });

  test("a dim larger than the embedding dimension: the error names both (at the first batch, or eagerly)", () => {
    const loss = new MatryoshkaLoss(mnrl, [8, 4], silent);
    tidy(() =>
      assert.throws(
        () => loss.lossFromEmbeddings([rows(0, 1), rows(4, 5)]),
        /dimension 8 in matryoshkaDims is larger than the embedding dimension 4/,
      ),
    );
    assert.throws(() => new MatryoshkaLoss(mnrl, [8, 4], { embeddingDim: 4 }), /dimension 8 .* dimension 4/);
    assert.throws(() => tidy(() => shrink(rows(0), 5)), /dimension 5 .* embedding dimension 4/);
  });

  test("columns of different dimensions", () => {
    const loss = new MatryoshkaLoss(mnrl, [2], silent);
    tidy(() =>
      assert.throws(
        () => loss.lossFromEmbeddings([rows(0, 1), rows(4, 5).narrow(1, 0, 3)]),
        /column 1 has dimension 3 but column 0 has 4/,
      ),
    );
  });

  test("the full dim missing: one warning per dimension, through onWarning (also from checkEmbeddingDim)", () => {
    const warnings: string[] = [];
    const loss = new MatryoshkaLoss(mnrl, [2, 3], { onWarning: (m) => warnings.push(m) });
    assert.deepEqual(loss.checkEmbeddingDim(3), []);
    tidy(() => {
      loss.lossFromEmbeddings([rows(0, 1), rows(4, 5)]);
      loss.lossFromEmbeddings([rows(0, 1), rows(4, 5)]);
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /embedding dimension 4 is not in matryoshkaDims \[3, 2\].*include 4/);
    assert.equal(loss.checkEmbeddingDim(4).length, 1); // still reported, not re-warned
    assert.equal(warnings.length, 1);
  });

  test("dims and weights sorted together, large → small; configDict as ST's", () => {
    const loss = new MatryoshkaLoss(mnrl, [2, 4, 3], { weights: [0.25, 1, 0.5], ...silent });
    assert.deepEqual(loss.dims, [4, 3, 2]);
    assert.deepEqual(loss.weights, [1, 0.5, 0.25]);
    assert.equal(loss.name, "MatryoshkaLoss");
    assert.deepEqual(loss.configDict(), {
      loss: "MultipleNegativesRankingLoss",
      matryoshka_dims: [4, 3, 2],
      matryoshka_weights: [1, 0.5, 0.25],
      n_dims_per_step: -1,
    });
    assert.match(loss.citation, /kusupati2024matryoshka/);
  });

  test("L = Σ_d w_d · inner(shrink(e, d)): a sum, each dim re-normalized", () => {
    tidy(() => {
      const [a, p] = [rows(0, 1, 2), rows(4, 5, 6)];
      const term = (d: number) => mnrl.lossFromEmbeddings([shrink(a, d), shrink(p, d)]).item();
      const got = new MatryoshkaLoss(mnrl, [4, 2], { weights: [1, 0.5] }).lossFromEmbeddings([a, p]).item();
      assert.ok(Math.abs(got - (term(4) + 0.5 * term(2))) < 1e-6);
      // shrink = narrow + normalize: unit rows.
      assert.deepEqual(
        shrink(a, 2)
          .norm(2, -1)
          .toNumbers()
          .map((v) => v.toFixed(6)),
        ["1.000000", "1.000000", "1.000000"],
      );
    });
  });

  test("nDimsPerStep: each step sums a seeded draw of that many dims", () => {
    tidy(() => {
      const [a, p] = [rows(0, 1, 2), rows(4, 5, 6)];
      const term = new Map(
        [4, 3, 2].map((d) => [d, mnrl.lossFromEmbeddings([shrink(a, d), shrink(p, d)]).item()]),
      );
      const draws = (seed: number) => {
        const loss = new MatryoshkaLoss(mnrl, [4, 3, 2], { nDimsPerStep: 1, seed });
        return Array.from({ length: 12 }, () => loss.lossFromEmbeddings([a, p]).item());
      };
      const first = draws(3);
      for (const v of first)
        assert.ok(
          [...term.values()].some((t) => Math.abs(t - v) < 1e-6),
          `${v}`,
        );
      assert.ok(new Set(first.map((v) => v.toFixed(5))).size > 1, "every step drew the same dim");
      assert.deepEqual(draws(3), first, "same seed, same draws");
      const two = new MatryoshkaLoss(mnrl, [4, 3, 2], { nDimsPerStep: 2 }).lossFromEmbeddings([a, p]).item();
      const pairs = [
        [4, 3],
        [4, 2],
        [3, 2],
      ].map(([x, y]) => (term.get(x as number) as number) + (term.get(y as number) as number));
      assert.ok(pairs.some((t) => Math.abs(t - two) < 1e-6));
      // nDimsPerStep ≥ the number of dims means all of them.
      const all = new MatryoshkaLoss(mnrl, [4, 3, 2], { nDimsPerStep: 5 }).lossFromEmbeddings([a, p]).item();
      assert.ok(Math.abs(all - [...term.values()].reduce((x, y) => x + y)) < 1e-6);
    });
  });
});

describe("CachedMultipleNegativesRankingLoss: checks and config", () => {
  const lookup: Embedder = { embed: (texts) => rows(...texts.map(Number)) };

  test("fewer than 2 columns, mismatched batch sizes, an empty batch", () => {
    const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 2 });
    assert.throws(() => loss.step(lookup, [["0", "1"]]), /at least 2 text columns .* got 1/);
    assert.throws(
      () => loss.step(lookup, [["0", "1"], ["4", "5"], ["2"]]),
      /column 2 has 1 texts but column 0 has 2: every column needs the same batch size/,
    );
    assert.throws(() => loss.step(lookup, [[], []]), /batch is empty/);
    assert.throws(() => loss.lossValue(lookup, [["0"]]), /at least 2/);
  });

  test("bad miniBatchSize, scale, options given twice, gradScale", () => {
    assert.throws(() => new CachedMultipleNegativesRankingLoss({ miniBatchSize: 0 }), /miniBatchSize/);
    assert.throws(() => new CachedMultipleNegativesRankingLoss({ miniBatchSize: 1.5 }), /miniBatchSize/);
    assert.throws(() => new CachedMultipleNegativesRankingLoss({ scale: -1 }), /scale must be a positive/);
    assert.throws(
      () => new CachedMultipleNegativesRankingLoss({ scale: 10, loss: new MultipleNegativesRankingLoss() }),
      /give scale \/ similarity \/ symmetric \/ gatherAcrossDevices to the inner loss/,
    );
    const loss = new CachedMultipleNegativesRankingLoss();
    assert.throws(() => loss.step(lookup, [["0"], ["1"]], { gradScale: Number.NaN }), /gradScale/);
  });

  test("an embedder returning the wrong shape", () => {
    const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 2 });
    const bad: Embedder = { embed: (texts) => rows(...texts.map(Number), 0) };
    assert.throws(
      () =>
        loss.step(bad, [
          ["0", "1"],
          ["4", "5"],
        ]),
      /returned shape \[3, 4\] for 2 texts/,
    );
  });

  test("names and configDict as ST's equivalent composition", () => {
    const plain = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 16, scale: 10 });
    assert.equal(plain.name, "CachedMultipleNegativesRankingLoss");
    assert.deepEqual(plain.configDict(), {
      scale: 10,
      similarity_fct: "cos_sim",
      gather_across_devices: false,
      mini_batch_size: 16,
    });
    const sym = new CachedMultipleNegativesRankingLoss({ symmetric: true });
    assert.equal(sym.name, "CachedMultipleNegativesSymmetricRankingLoss");
    assert.equal(sym.miniBatchSize, 32);
    const m = new CachedMultipleNegativesRankingLoss({
      miniBatchSize: 8,
      loss: new MatryoshkaLoss(new MultipleNegativesRankingLoss(), [4, 2], silent),
    });
    assert.equal(m.name, "MatryoshkaLoss");
    assert.deepEqual(m.configDict(), {
      loss: "CachedMultipleNegativesRankingLoss",
      matryoshka_dims: [4, 2],
      matryoshka_weights: [1, 1],
      n_dims_per_step: -1,
      mini_batch_size: 8,
    });
    assert.match(plain.citation, /gao2021scaling/);
  });

  test("a frozen embedder (no graph): step returns the loss and back-propagates nothing", () => {
    const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 1 });
    const value = loss.step(lookup, [
      ["0", "1"],
      ["4", "5"],
    ]).loss;
    const want = tidy(() =>
      new MultipleNegativesRankingLoss().lossFromEmbeddings([rows(0, 1), rows(4, 5)]).item(),
    );
    assert.ok(Math.abs(value - want) < 1e-6);
  });
});
