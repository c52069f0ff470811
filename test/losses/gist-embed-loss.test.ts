// GISTEmbedLoss against sentence-transformers' formulas in PyTorch: test/fixtures/losses/make_gist_golden.py
// (torch 1.13, ST@85ec6455 GISTEmbedLoss / CachedGISTEmbedLoss negatives / MatryoshkaLoss ported line by line)
// wrote gist_golden.json — fixed model embeddings (B=6, D=32), guide embeddings (B=6, Dg=16) built so that
// every case masks some candidates, and per case the loss and its gradient w.r.t. every model column, in
// float32 and float64. Then: the guide-less limit equals MNRL, no gradient reaches the guide, and the errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { liveTensors, tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  GISTEmbedLoss,
  MatryoshkaLoss,
  MultipleNegativesRankingLoss,
  type EmbeddingLoss,
  type GISTEmbedLossOptions,
} from "../../src/losses/index.ts";

interface Result {
  loss: number;
  masked: number;
  grads: number[][][];
}
interface Case {
  name: string;
  config: GISTEmbedLossOptions & { matryoshka?: { dims: number[] } };
  columns: string[];
  float32: Result;
  float64: Result;
}
interface Golden {
  torch: string;
  sentence_transformers: string;
  B: number;
  D: number;
  DG: number;
  columns: Record<string, number[][]>;
  guide: Record<string, number[][]>;
  cases: Case[];
}

const golden = JSON.parse(
  readFileSync(new URL("../fixtures/losses/gist_golden.json", import.meta.url), "utf8"),
) as Golden;
const TOL: Record<"float32" | "float64", number> = { float32: 1e-5, float64: 1e-10 };

function build(c: Case): EmbeddingLoss {
  const { matryoshka, ...options } = c.config;
  const gist = new GISTEmbedLoss(options);
  return matryoshka ? new MatryoshkaLoss(gist, matryoshka.dims) : gist;
}

function maxAbsDiff(t: Tensor, want: number[][]): number {
  assert.deepEqual(t.shape, [want.length, want[0]?.length]);
  const flat = want.flat();
  return t.toNumbers().reduce((m, v, i) => Math.max(m, Math.abs(v - flat[i]!)), 0);
}

describe(`GISTEmbedLoss vs sentence-transformers@${golden.sentence_transformers.slice(0, 8)} in torch ${golden.torch}`, () => {
  test("the fixture holds every case, each masking some candidates", () => {
    assert.deepEqual([golden.B, golden.D, golden.DG], [6, 32, 16]);
    assert.equal(golden.cases.length, 9);
    for (const c of golden.cases) assert.ok(c.float32.masked > 0, c.name);
  });

  for (const dtype of ["float32", "float64"] as const) {
    test(`loss and column gradients (${dtype}, tol ${TOL[dtype]})`, () => {
      const lines: string[] = [];
      for (const c of golden.cases) {
        tidy(() => {
          const cols = c.columns.map((n) => tensor(golden.columns[n]!, { dtype, requiresGrad: true }));
          const guideEmbeddings = c.columns.map((n) => tensor(golden.guide[n]!, { dtype }));
          const loss = build(c).lossFromEmbeddings(cols, null, { guideEmbeddings });
          assert.equal(loss.dtype, dtype);
          assert.deepEqual(loss.shape, []);
          loss.backward();
          const want = c[dtype];
          const lossDiff = Math.abs(loss.item() - want.loss);
          const gradDiff = Math.max(...cols.map((t, i) => maxAbsDiff(t.grad as Tensor, want.grads[i]!)));
          assert.ok(
            lossDiff <= TOL[dtype] * Math.max(1, Math.abs(want.loss)),
            `${c.name}: loss ${loss.item()} vs ${want.loss}`,
          );
          assert.ok(gradDiff <= TOL[dtype], `${c.name}: grad maxdiff ${gradDiff}`);
          lines.push(`${c.name}: loss ${lossDiff.toExponential(1)} grads ${gradDiff.toExponential(1)}`);
        });
      }
      console.log(`maxdiff ${dtype}\n  ${lines.join("\n  ")}`);
    });
  }

  // CachedGISTEmbedLoss = the cached loss around GIST with the guide's whole-batch embeddings as context. A
  // lookup "model": text "c:i" is row i of column c's leaf, so the leaves' .grad after a cached step is
  // d loss / d embeddings. miniBatchSize 4 splits B=6 into 4 + 2.
  for (const dtype of ["float32", "float64"] as const) {
    test(`the cached loss around GISTEmbedLoss reproduces every case (${dtype})`, () => {
      for (const c of golden.cases) {
        tidy(() => {
          const cols = c.columns.map((n) => tensor(golden.columns[n]!, { dtype, requiresGrad: true }));
          const guideEmbeddings = c.columns.map((n) => tensor(golden.guide[n]!, { dtype }));
          const embedder = {
            embed: (texts: readonly string[]) => {
              const col = Number(texts[0]!.split(":")[0]);
              const rows = texts.map((t) => Number(t.split(":")[1]));
              return cols[col]!.indexSelect(0, tensor(rows, { dtype: "int64" })); // (mb, D)
            },
          };
          const texts = c.columns.map((_, ci) => Array.from({ length: golden.B }, (_, i) => `${ci}:${i}`));
          const cached = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 4, loss: build(c) });
          if (!c.config.matryoshka) assert.equal(cached.name, "CachedGISTEmbedLoss");
          const before = liveTensors();
          const { loss } = cached.step(embedder, texts, { context: { guideEmbeddings } });
          assert.equal(liveTensors(), before, "step() leaks no tensor");
          assert.ok(Math.abs(cached.lossValue(embedder, texts, { guideEmbeddings }) - loss) <= 1e-9);
          const want = c[dtype];
          assert.ok(
            Math.abs(loss - want.loss) <= TOL[dtype] * Math.max(1, Math.abs(want.loss)),
            `${c.name}: loss`,
          );
          cols.forEach((t, i) => {
            const diff = maxAbsDiff(t.grad as Tensor, want.grads[i]!);
            assert.ok(diff <= TOL[dtype], `${c.name}: column ${i} grad maxdiff ${diff}`);
          });
        });
      }
    });
  }
});

describe("GISTEmbedLoss semantics", () => {
  const col = (n: string) => tensor(golden.columns[n]!); // (6, 32)

  test("a guide that masks nothing but the anchor–positive pair gives MNRL with scale 1 / temperature", () => {
    tidy(() => {
      // One-hot guide vectors in 7 dims: the guide's anchor–positive similarity is 1, every other one 0, and
      // the negative column's guide vectors point along a 7th direction, orthogonal to every anchor.
      const oneHot = (at: (i: number) => number) =>
        tensor(
          Array.from({ length: golden.B }, (_, i) =>
            Array.from({ length: 7 }, (_, j) => (j === at(i) ? 1 : 0)),
          ),
        ); // (6, 7)
      const embeddings = [col("anchor"), col("positive"), col("negative_1")];
      const gist = new GISTEmbedLoss({ temperature: 0.05, contrastAnchors: false, contrastPositives: false });
      const guideEmbeddings = [oneHot((i) => i), oneHot((i) => i), oneHot(() => 6)];
      const got = gist.lossFromEmbeddings(embeddings, null, { guideEmbeddings }).item();
      const mnrl = new MultipleNegativesRankingLoss({ scale: 20 }).lossFromEmbeddings(embeddings).item();
      assert.ok(Math.abs(got - mnrl) < 1e-5, `${got} vs MNRL ${mnrl}`);
    });
  });

  test("masking a shared answer changes the loss; no gradient reaches the guide", () => {
    tidy(() => {
      const embeddings = [col("anchor"), col("positive")].map((t) => t.detach().requiresGrad_(true));
      const guide = ["anchor", "positive"].map((n) => tensor(golden.guide[n]!, { requiresGrad: true }));
      const loss = new GISTEmbedLoss().lossFromEmbeddings(embeddings, null, { guideEmbeddings: guide });
      loss.backward();
      for (const g of guide) assert.ok(g.grad === null || g.grad === undefined, "the guide got a gradient");
      for (const e of embeddings) assert.ok(e.grad, "the model's embeddings got no gradient");
      // The same model embeddings scored with a guide equal to the model (masks differ) give another loss.
      const self = new GISTEmbedLoss().lossFromEmbeddings(embeddings, null, { guideEmbeddings: embeddings });
      assert.notEqual(self.item().toFixed(6), loss.item().toFixed(6));
    });
  });

  test("configDict and citation", () => {
    const loss = new GISTEmbedLoss({
      guide: "BAAI/bge-small-en-v1.5",
      marginStrategy: "relative",
      margin: 0.05,
    });
    assert.deepEqual(loss.configDict(), {
      guide: "BAAI/bge-small-en-v1.5",
      temperature: 0.01,
      margin_strategy: "relative",
      margin: 0.05,
      contrast_anchors: true,
      contrast_positives: true,
      gather_across_devices: false,
    });
    assert.match(loss.citation, /solatorio2024gistembed/);
  });

  test("errors name what is wrong", () => {
    tidy(() => {
      const e = [col("anchor"), col("positive")];
      const gist = new GISTEmbedLoss();
      assert.throws(() => gist.lossFromEmbeddings(e), /guide model's embeddings are missing/);
      assert.throws(
        () => gist.lossFromEmbeddings(e, null, { guideEmbeddings: [e[0]!] }),
        /1 guide embedding columns for 2 embedding columns/,
      );
      const short = [e[0]!.narrow(0, 0, 3), e[1]!.narrow(0, 0, 3)];
      assert.throws(
        () => gist.lossFromEmbeddings(e, null, { guideEmbeddings: short }),
        /guide embeddings have batch size 3, the model's 6/,
      );
      assert.throws(
        () => new GISTEmbedLoss({ temperature: 0 }),
        /temperature must be a positive finite number/,
      );
      assert.throws(
        () => new GISTEmbedLoss({ marginStrategy: "percent" as "absolute" }),
        /marginStrategy must be "absolute" or "relative"/,
      );
    });
  });
});
