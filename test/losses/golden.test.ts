// Golden parity of the losses against sentence-transformers' formulas in PyTorch:
// test/fixtures/losses/make_loss_golden.py (torch 1.13, ST@85ec6455 formulas copied line by line) wrote
// golden.json — fixed embeddings (B=6, D=32), and per case the loss and its gradient w.r.t. every column, in
// float32 and float64. Each case prints its maxdiff.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { liveTensors, tensor, tidy, type DType, type Tensor } from "../../src/engine/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  MatryoshkaLoss,
  MultipleNegativesRankingLoss,
  type EmbeddingLoss,
  type Similarity,
} from "../../src/losses/index.ts";

interface Result {
  loss: number;
  grads: number[][][];
}
interface Case {
  name: string;
  config: {
    scale: number;
    similarity: Similarity;
    symmetric?: boolean;
    matryoshka?: { dims: number[]; weights?: number[] };
  };
  columns: string[];
  float32: Result;
  float64: Result;
}
interface Golden {
  torch: string;
  sentence_transformers: string;
  B: number;
  D: number;
  columns: Record<string, number[][]>;
  cases: Case[];
}

const golden = JSON.parse(
  readFileSync(new URL("../fixtures/losses/golden.json", import.meta.url), "utf8"),
) as Golden;
const TOL: Record<"float32" | "float64", number> = { float32: 1e-5, float64: 1e-10 };

function build(c: Case, warnings: string[] = []): EmbeddingLoss {
  const { scale, similarity, symmetric, matryoshka } = c.config;
  const base = new MultipleNegativesRankingLoss({ scale, similarity, symmetric });
  if (!matryoshka) return base;
  return new MatryoshkaLoss(base, matryoshka.dims, {
    weights: matryoshka.weights,
    onWarning: (m) => warnings.push(m),
  });
}

function maxAbsDiff(t: Tensor, want: number[][]): number {
  assert.deepEqual(t.shape, [want.length, want[0]?.length]);
  const got = t.toNumbers();
  const flat = want.flat();
  return got.reduce((m, v, i) => Math.max(m, Math.abs(v - (flat[i] as number))), 0);
}

/** Compares a loss value and the column gradients with the golden ones; returns the worst diffs. */
function compare(c: Case, dtype: "float32" | "float64", loss: number, grads: Tensor[]): string {
  const want = c[dtype];
  const lossDiff = Math.abs(loss - want.loss);
  const gradDiff = Math.max(...grads.map((g, i) => maxAbsDiff(g, want.grads[i] as number[][])));
  const tol = TOL[dtype];
  // The loss is compared relative to its size: the f32 dot-product cases have logits up to ~60.
  assert.ok(
    lossDiff <= tol * Math.max(1, Math.abs(want.loss)),
    `${c.name} ${dtype}: loss ${loss} vs ${want.loss}`,
  );
  assert.ok(gradDiff <= tol, `${c.name} ${dtype}: grad maxdiff ${gradDiff}`);
  return `loss ${lossDiff.toExponential(1)} grads ${gradDiff.toExponential(1)}`;
}

const leaves = (c: Case, dtype: DType) =>
  c.columns.map((n) => tensor(golden.columns[n] as number[][], { dtype, requiresGrad: true }));

describe(`losses vs sentence-transformers@${golden.sentence_transformers.slice(0, 8)} in torch ${golden.torch}`, () => {
  test("the fixture holds every case the tests expect", () => {
    assert.equal(golden.B, 6);
    assert.equal(golden.D, 32);
    assert.equal(golden.cases.length, 13);
  });

  for (const dtype of ["float32", "float64"] as const) {
    test(`lossFromEmbeddings: loss and column gradients (${dtype}, tol ${TOL[dtype]})`, () => {
      const lines: string[] = [];
      for (const c of golden.cases) {
        tidy(() => {
          const cols = leaves(c, dtype);
          const loss = build(c).lossFromEmbeddings(cols);
          assert.equal(loss.dtype, dtype);
          assert.deepEqual(loss.shape, []);
          loss.backward();
          lines.push(
            `${c.name}: ${compare(
              c,
              dtype,
              loss.item(),
              cols.map((t) => t.grad as Tensor),
            )}`,
          );
        });
      }
      console.log(`maxdiff ${dtype}\n  ${lines.join("\n  ")}`);
    });
  }

  // A lookup "model": text "c:i" is row i of column c's leaf tensor, so the leaves' .grad after a cached step
  // is d loss / d embeddings, comparable with the golden gradients. miniBatchSize 4 splits B=6 into 4 + 2.
  for (const dtype of ["float32", "float64"] as const) {
    test(`CachedMultipleNegativesRankingLoss over a lookup embedder reproduces every case (${dtype})`, () => {
      const lines: string[] = [];
      for (const c of golden.cases) {
        tidy(() => {
          const cols = leaves(c, dtype);
          const embedder = {
            embed: (texts: readonly string[]) => {
              const [col] = (texts[0] as string).split(":").map(Number) as [number];
              const rows = texts.map((t) => Number(t.split(":")[1]));
              return (cols[col] as Tensor).indexSelect(0, tensor(rows, { dtype: "int64" })); // (mb, D)
            },
          };
          const texts = c.columns.map((_, ci) => Array.from({ length: golden.B }, (_, i) => `${ci}:${i}`));
          const cached = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 4, loss: build(c) });
          const before = liveTensors();
          const { loss } = cached.step(embedder, texts);
          assert.equal(liveTensors(), before, "step() leaks no tensor");
          assert.ok(Math.abs(cached.lossValue(embedder, texts) - loss) <= 1e-12);
          lines.push(
            `${c.name}: ${compare(
              c,
              dtype,
              loss,
              cols.map((t) => t.grad as Tensor),
            )}`,
          );
        });
      }
      console.log(`maxdiff cached ${dtype}\n  ${lines.join("\n  ")}`);
    });
  }

  test("a Matryoshka case without the full dim warns once, naming the dims", () => {
    const c = golden.cases.find((x) => x.name === "matryoshka_16_4_dot") as Case;
    const warnings: string[] = [];
    const loss = build(c, warnings);
    tidy(() => {
      loss.lossFromEmbeddings(leaves(c, "float32"));
      loss.lossFromEmbeddings(leaves(c, "float32"));
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /embedding dimension 32 is not in matryoshkaDims \[16, 4\]/);
  });
});
