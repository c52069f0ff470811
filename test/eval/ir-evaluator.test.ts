// The information-retrieval evaluator end to end: a fake keyword embedder with metrics worked out by hand (several
// relevant documents, ties, a query with no hit in the top 10), sentence-transformers' key names, the one-encode
// Matryoshka path against re-encoding per dim (fake random embeddings and the tiny model), corpus chunking, dot vs
// cosine, the errors; then buildRetrievalTask's relevance rules and the metrics table.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import {
  InformationRetrievalEvaluator,
  type IrEvaluatorOptions,
  type TextEmbedder,
} from "../../src/eval/ir-evaluator.ts";
import { irMetricKeys, listEvaluatorMetricKeys } from "../../src/eval/metric-names.ts";
import { formatMetricsTable } from "../../src/eval/report.ts";
import { buildRetrievalTask, skippedWarning } from "../../src/eval/retrieval-task.ts";
import type { PairRecord } from "../../src/data/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { TINY_DIM, tinyModelVariant } from "../helpers/tiny-model.ts";

// ---------------------------------------------------------------------------------------------------------
// Fake embedders

/** Texts → fixed vectors; records every call so tests can count encodes. */
class FakeEmbedder implements TextEmbedder {
  readonly calls: Array<{ texts: readonly string[]; prompt: string | undefined }> = [];
  constructor(
    readonly embeddingDim: number,
    private readonly vectorOf: (text: string) => readonly number[],
  ) {}

  encodeTensor(texts: readonly string[], options: { batchSize: number; prompt?: string }): Tensor {
    this.calls.push({ texts, prompt: options.prompt });
    const data = new Float32Array(texts.length * this.embeddingDim);
    texts.forEach((t, i) => data.set(this.vectorOf((options.prompt ?? "") + t), i * this.embeddingDim));
    return tensor(data, { shape: [texts.length, this.embeddingDim] }); // (N, D)
  }
}

/** What sentence-transformers does per Matryoshka dim: encode with truncate_dim (slice, then L2-normalize). */
class TruncatingEmbedder implements TextEmbedder {
  constructor(
    private readonly inner: TextEmbedder,
    readonly embeddingDim: number,
    private readonly normalize: boolean,
  ) {}

  encodeTensor(texts: readonly string[], options: { batchSize: number; prompt?: string }): Tensor {
    return tidy(() => {
      const sliced = this.inner.encodeTensor(texts, options).narrow(1, 0, this.embeddingDim); // (N, d)
      return this.normalize ? sliced.normalize(-1) : sliced.contiguous(); // (N, d)
    });
  }
}

// A bag-of-keywords embedder: dimension i counts the occurrences of KEYWORDS[i].
const KEYWORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
const keywordVector = (text: string) => KEYWORDS.map((k) => text.split(/\s+/).filter((w) => w === k).length);

/** Deterministic PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------------
// The hand-worked case
//
// Corpus (ids compare as strings, so the zero-score ties come out d1, d10, d2, d3, d4, d5, d6, d9, f1, f10, f2, …):
//   d1 "alpha"   d2 "alpha beta"   d3 "beta"   d4 "delta"   d5 "eta theta"   d6 "alpha alpha beta"
//   d9 "gamma"   d10 "gamma"       f1 … f10 "eta" (ten fillers)
// Queries and relevant documents:
//   qA "alpha" {d1, d3}   qB "gamma" {d9}   qC "eta" {d4}   qD "beta delta" {d2, d3, d4}

const CORPUS = new Map<string, string>([
  ["d1", "alpha"],
  ["d2", "alpha beta"],
  ["d3", "beta"],
  ["d4", "delta"],
  ["d5", "eta theta"],
  ["d6", "alpha alpha beta"],
  ["d9", "gamma"],
  ["d10", "gamma"],
  ...Array.from({ length: 10 }, (_, i) => [`f${i + 1}`, "eta"] as [string, string]),
]);
const QUERIES = new Map([
  ["qA", "alpha"],
  ["qB", "gamma"],
  ["qC", "eta"],
  ["qD", "beta delta"],
]);
const RELEVANT = new Map([
  ["qA", new Set(["d1", "d3"])],
  ["qB", new Set(["d9"])],
  ["qC", new Set(["d4"])],
  ["qD", new Set(["d2", "d3", "d4"])],
]);

const SUFFIXES = [
  "accuracy@1",
  "accuracy@3",
  "accuracy@5",
  "accuracy@10",
  "precision@1",
  "precision@3",
  "precision@5",
  "precision@10",
  "recall@1",
  "recall@3",
  "recall@5",
  "recall@10",
  "ndcg@10",
  "mrr@10",
  "map@100",
] as const;
type Values = Record<(typeof SUFFIXES)[number], number>;

const log2 = Math.log2;

/**
 * One query's values from the 1-based ranks of its relevant documents (all of them within the top 100), with
 * ST's formulas: accuracy@k = any relevant in the top k; precision@k = hits / k; recall@k = hits / |R|;
 * nDCG@10 = Σ 1/log2(rank + 1) / Σ_{i ≤ min(|R|, 10)} 1/log2(i + 1); MRR@10 = 1 / first rank ≤ 10;
 * MAP@100 = Σ (hits so far / rank) / min(100, |R|).
 */
function byHand(ranks: number[], numRelevant: number): Values {
  const sorted = [...ranks].sort((a, b) => a - b);
  const hits = (k: number) => sorted.filter((r) => r <= k).length;
  const v: Partial<Values> = {};
  for (const k of [1, 3, 5, 10] as const) {
    v[`accuracy@${k}`] = hits(k) > 0 ? 1 : 0;
    v[`precision@${k}`] = hits(k) / k;
    v[`recall@${k}`] = hits(k) / numRelevant;
  }
  let dcg = 0;
  for (const r of sorted) if (r <= 10) dcg += 1 / log2(r + 1);
  let idcg = 0;
  for (let i = 1; i <= Math.min(numRelevant, 10); i++) idcg += 1 / log2(i + 1);
  v["ndcg@10"] = dcg / idcg;
  v["mrr@10"] = sorted[0]! <= 10 ? 1 / sorted[0]! : 0;
  v["map@100"] = sorted.reduce((s, r, i) => s + (i + 1) / r, 0) / Math.min(100, numRelevant);
  return v as Values;
}

// The rankings, worked out (cos = cosine score, dot = dot product):
//  qA cosine: d1 (1), d6 (2/√5 ≈ 0.894), d2 (1/√2), then zeros d10, d3 → d1 at 1, d3 at 5
//  qA dot:    d6 (2), d1 (1) and d2 (1) tie → id order, then zeros d10, d3 → d1 at 2, d3 at 5
//  qB both:   d10 and d9 tie at 1, and "d10" < "d9" → d9 at 2
//  qC cosine: f1, f10, f2, …, f9 (1), d5 (1/√2), zeros d1, d10, d2, d3, d4 → d4 at 16: no hit in the top 10
//  qC dot:    d5 and the ten fillers tie at 1, "d5" first; then zeros d1, d10, d2, d3, d4 → d4 at 16
//  qD cosine: d3 and d4 tie at 1/√2, d2 (1/2), d6 → d3 1, d4 2, d2 3: all three relevant on top
//  qD dot:    d2, d3, d4, d6 tie at 1 → d2 1, d3 2, d4 3
const EXPECTED_AT_8 = {
  cosine: [byHand([1, 5], 2), byHand([2], 1), byHand([16], 1), byHand([1, 2, 3], 3)],
  dot: [byHand([2, 5], 2), byHand([2], 1), byHand([16], 1), byHand([1, 2, 3], 3)],
};
// At dim 4 only alpha … delta remain: "eta" embeds to zeros, every score of qC is 0 and the id order puts d4
// at 5 (d1, d10, d2, d3, d4); the other queries rank as at dim 8.
const EXPECTED_AT_4 = {
  cosine: [byHand([1, 5], 2), byHand([2], 1), byHand([5], 1), byHand([1, 2, 3], 3)],
  dot: [byHand([2, 5], 2), byHand([2], 1), byHand([5], 1), byHand([1, 2, 3], 3)],
};

/** Mean over queries, summed in query order (as ST: running sums, and numpy's sum for fewer than 8 values). */
function average(perQuery: Values[]): Values {
  const out: Partial<Values> = {};
  for (const s of SUFFIXES) out[s] = perQuery.reduce((sum, v) => sum + v[s], 0) / perQuery.length;
  return out as Values;
}

function keywordEvaluator(extra: Partial<IrEvaluatorOptions> = {}): InformationRetrievalEvaluator {
  return new InformationRetrievalEvaluator({
    queries: QUERIES,
    corpus: CORPUS,
    relevantDocs: RELEVANT,
    ...extra,
  });
}

function assertMetricsClose(got: Record<string, number>, want: Record<string, number>, tol: number): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [k, v] of Object.entries(want))
    assert.ok(Math.abs(got[k]! - v) <= tol, `${k}: got ${got[k]}, expected ${v}`);
}

describe("InformationRetrievalEvaluator on hand-worked rankings", () => {
  test("spot checks of the hand values", () => {
    // qA cosine: d1 at 1 and d3 at 5 → nDCG@10 = (1 + 1/log2(6)) / (1 + 1/log2(3)), MAP = (1/1 + 2/5) / 2
    assert.equal(EXPECTED_AT_8.cosine[0]!["ndcg@10"], (1 + 1 / log2(6)) / (1 + 1 / log2(3)));
    assert.equal(EXPECTED_AT_8.cosine[0]!["map@100"], 0.7);
    // qA dot: d1 at 2 → MRR 1/2, MAP = (1/2 + 2/5) / 2 = 0.45
    assert.equal(EXPECTED_AT_8.dot[0]!["mrr@10"], 0.5);
    assert.ok(Math.abs(EXPECTED_AT_8.dot[0]!["map@100"] - 0.45) < 1e-15);
    // qC: no hit in the top 10, but MAP@100 still sees d4 at 16
    assert.equal(EXPECTED_AT_8.cosine[2]!["ndcg@10"], 0);
    assert.equal(EXPECTED_AT_8.cosine[2]!["map@100"], 1 / 16);
    // precision@10 divides by 10 even with 3 hits of 3 relevant
    assert.equal(EXPECTED_AT_8.cosine[3]!["precision@10"], 0.3);
  });

  test("cosine and dot at dims 8 and 4, with exactly sentence-transformers' keys", () => {
    const embedder = new FakeEmbedder(8, keywordVector);
    const result = keywordEvaluator({ dims: [8, 4], scoreFunctions: ["cosine", "dot"] }).evaluate(embedder);
    // The keys, in ST's order: per dim, per score function, the 15 metrics.
    assert.deepEqual(
      Object.keys(result.metrics),
      listEvaluatorMetricKeys({ dims: [8, 4], scoreFunctions: ["cosine", "dot"] }),
    );
    assert.deepEqual(irMetricKeys("dim_8", "cosine").slice(12), [
      "dim_8_cosine_ndcg@10",
      "dim_8_cosine_mrr@10",
      "dim_8_cosine_map@100",
    ]);
    const want: Record<string, number> = {};
    for (const [dim, table] of [
      [8, EXPECTED_AT_8],
      [4, EXPECTED_AT_4],
    ] as const) {
      for (const score of ["cosine", "dot"] as const) {
        const avg = average(table[score]);
        for (const s of SUFFIXES) want[`dim_${dim}_${score}_${s}`] = avg[s];
      }
    }
    assertMetricsClose(result.metrics, want, 1e-12);
    assert.equal(result.primaryMetric, "dim_8_cosine_ndcg@10");
    assert.deepEqual(result.primaryMetrics, { dim_8: "dim_8_cosine_ndcg@10", dim_4: "dim_4_cosine_ndcg@10" });
    assert.deepEqual([result.dims, result.queries, result.corpus], [[8, 4], 4, 18]);
    // Dot and cosine differ where the hand values say so (qA's first hit).
    assert.notEqual(result.metrics["dim_8_cosine_mrr@10"], result.metrics["dim_8_dot_mrr@10"]);
    // Queries and corpus were encoded once each, whatever the number of dims and score functions.
    assert.equal(embedder.calls.length, 2);
  });

  test("without dims: one evaluator at full size, named like ST's (no name → no prefix)", () => {
    const plain = keywordEvaluator().evaluate(new FakeEmbedder(8, keywordVector));
    const avg = average(EXPECTED_AT_8.cosine);
    assertMetricsClose(
      plain.metrics,
      Object.fromEntries(SUFFIXES.map((s) => [`cosine_${s}`, avg[s]])),
      1e-12,
    );
    assert.equal(plain.primaryMetric, "cosine_ndcg@10");
    const named = keywordEvaluator({ name: "financial" }).evaluate(new FakeEmbedder(8, keywordVector));
    assert.ok("financial_cosine_ndcg@10" in named.metrics);
  });

  test("the query prompt is prepended to queries only", () => {
    const embedder = new FakeEmbedder(8, keywordVector);
    // "gamma " before every query makes d9/d10 the best hits of qA as well.
    const r = keywordEvaluator({ queryPrompt: "gamma " }).evaluate(embedder);
    assert.deepEqual(
      embedder.calls.map((c) => c.prompt),
      ["gamma ", undefined],
    );
    assert.ok(r.metrics["cosine_ndcg@10"]! < average(EXPECTED_AT_8.cosine)["ndcg@10"]);
  });

  test("a corpus chunk smaller than the corpus gives the same numbers as one chunk", () => {
    const one = keywordEvaluator({ dims: [8, 4], scoreFunctions: ["cosine", "dot"] });
    const base = one.evaluate(new FakeEmbedder(8, keywordVector)).metrics;
    for (const corpusChunkSize of [1, 3, 7]) {
      const chunked = keywordEvaluator({ dims: [8, 4], scoreFunctions: ["cosine", "dot"], corpusChunkSize });
      assert.deepEqual(
        chunked.evaluate(new FakeEmbedder(8, keywordVector)).metrics,
        base,
        `chunk ${corpusChunkSize}`,
      );
    }
  });
});

describe("ties wider than the candidates top-k keeps", () => {
  test("200 documents with one score: id order decides, for any corpus chunk size", () => {
    // maxK = 100, so each chunk's top-k keeps 132 candidates; all 200 documents tie. "a" sits at index 0 and
    // ranks first by id; "d005" ranks 6th (a, d001, …, d005).
    const corpus = new Map<string, string>();
    for (let i = 0; i < 200; i++) corpus.set(i === 0 ? "a" : `d${String(i).padStart(3, "0")}`, "same");
    const queries = new Map([
      ["q1", "same"],
      ["q2", "same"],
    ]);
    const relevantDocs = new Map([
      ["q1", new Set(["a"])],
      ["q2", new Set(["d005"])],
    ]);
    for (const corpusChunkSize of [50_000, 150, 50, 7]) {
      const r = new InformationRetrievalEvaluator({
        queries,
        corpus,
        relevantDocs,
        corpusChunkSize,
      }).evaluate(new FakeEmbedder(2, () => [1, 1]));
      assert.equal(r.metrics["cosine_mrr@10"], (1 + 1 / 6) / 2, `chunk ${corpusChunkSize}`);
      assert.equal(r.metrics["cosine_accuracy@1"], 0.5, `chunk ${corpusChunkSize}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("Matryoshka: one encode, sliced per dim = re-encoding per dim", () => {
  // 30 queries, 150 documents with random 16-dim embeddings; each query has 1-3 relevant documents.
  const rand = mulberry32(7);
  const vectors = new Map<string, number[]>();
  const queries = new Map<string, string>();
  const corpus = new Map<string, string>();
  const relevant = new Map<string, Set<string>>();
  for (let i = 0; i < 150; i++) corpus.set(`c${i}`, `doc ${i}`);
  for (let i = 0; i < 30; i++) {
    queries.set(`q${i}`, `query ${i}`);
    relevant.set(`q${i}`, new Set(Array.from({ length: 1 + (i % 3) }, () => `c${Math.floor(rand() * 150)}`)));
  }
  for (const text of [...queries.values(), ...corpus.values()])
    vectors.set(
      text,
      Array.from({ length: 16 }, () => rand() * 2 - 1),
    );
  // Queries lean towards their first relevant document, so the metrics are not all near zero.
  for (const [qid, rel] of relevant) {
    const q = vectors.get(queries.get(qid)!)!;
    const d = vectors.get(corpus.get([...rel][0]!)!)!;
    vectors.set(
      queries.get(qid)!,
      q.map((x, j) => 0.6 * x + d[j]!),
    );
  }
  const full = () => new FakeEmbedder(16, (t) => vectors.get(t)!);
  const options = { queries, corpus, relevantDocs: relevant };

  test("every metric at 16, 8, 4 and 2 dims, cosine and dot, within 1e-9", () => {
    const dims = [16, 8, 4, 2];
    const embedder = full();
    const once = new InformationRetrievalEvaluator({ ...options, dims, scoreFunctions: ["cosine", "dot"] });
    const result = once.evaluate(embedder);
    assert.equal(embedder.calls.length, 2);
    let compared = 0;
    for (const d of dims) {
      for (const score of ["cosine", "dot"] as const) {
        // ST's way: one evaluator per dim, named dim_<d>, on embeddings encoded with truncate_dim.
        const perDim = new InformationRetrievalEvaluator({
          ...options,
          name: `dim_${d}`,
          scoreFunctions: [score],
        });
        const metrics = perDim.evaluate(new TruncatingEmbedder(full(), d, score === "cosine")).metrics;
        for (const [k, v] of Object.entries(metrics)) {
          assert.ok(k in result.metrics, `${k} missing`);
          assert.ok(Math.abs(result.metrics[k]! - v) <= 1e-9, `${k}: ${result.metrics[k]} vs ${v}`);
          compared++;
        }
      }
    }
    assert.equal(compared, Object.keys(result.metrics).length);
    // The numbers move with the dim: the test is not comparing constants.
    assert.notEqual(result.metrics["dim_16_cosine_ndcg@10"], result.metrics["dim_2_cosine_ndcg@10"]);
    assert.ok(result.metrics["dim_16_cosine_accuracy@10"]! > 0.5);
  });

  test("corpus chunks of 7 and 64 (maxK = 100 kept per chunk) give identical results", () => {
    const base = new InformationRetrievalEvaluator({ ...options, dims: [16, 4] }).evaluate(full()).metrics;
    for (const corpusChunkSize of [7, 64]) {
      const chunked = new InformationRetrievalEvaluator({ ...options, dims: [16, 4], corpusChunkSize });
      assert.deepEqual(chunked.evaluate(full()).metrics, base);
    }
  });

  test("with the tiny model: evaluate([32, 16, 8]) equals evaluating encode({ truncateDim })", () => {
    const rows = readFileSync(
      fileURLToPath(new URL("../../data/financial/test.jsonl", import.meta.url)),
      "utf8",
    )
      .split("\n")
      .filter(Boolean)
      .slice(0, 40)
      .map((l) => JSON.parse(l) as { id: number; anchor: string; positive: string });
    const q = new Map<string, string>();
    const c = new Map<string, string>();
    const rel = new Map<string, Set<string>>();
    const seen = new Set<string>();
    for (const r of rows) {
      if (seen.has(r.positive)) continue; // identical passages tie up to float noise: leave them out
      seen.add(r.positive);
      q.set(String(r.id), r.anchor);
      c.set(String(r.id), r.positive);
      rel.set(String(r.id), new Set([String(r.id)]));
    }
    // Mean pooling: the random CLS-pooled model embeds every text to nearly the same vector (cosines within
    // 3e-5 of 1), where float noise reorders documents; mean-pooled cosines spread over 0.7-0.97.
    const model = SentenceTransformer.fromDir(tinyModelVariant({ mode: "mean" }));
    try {
      const dims = [TINY_DIM, 16, 8];
      const result = new InformationRetrievalEvaluator({
        queries: q,
        corpus: c,
        relevantDocs: rel,
        dims,
      }).evaluate(model);
      for (const d of dims) {
        const reencoding: TextEmbedder = {
          embeddingDim: d,
          encodeTensor: (texts, o) => {
            const e = model.encode(texts, { truncateDim: d, batchSize: o.batchSize, prompt: o.prompt ?? "" });
            return tensor(e.data, { shape: [e.rows, e.dim] });
          },
        };
        const perDim = new InformationRetrievalEvaluator({
          queries: q,
          corpus: c,
          relevantDocs: rel,
          name: `dim_${d}`,
        });
        for (const [k, v] of Object.entries(perDim.evaluate(reencoding).metrics))
          assert.ok(Math.abs(result.metrics[k]! - v) <= 1e-9, `${k}: ${result.metrics[k]} vs ${v}`);
      }
    } finally {
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("evaluator errors", () => {
  test("an empty corpus", () => {
    assert.throws(
      () =>
        new InformationRetrievalEvaluator({ queries: QUERIES, corpus: new Map(), relevantDocs: RELEVANT }),
      /the corpus is empty/,
    );
  });

  test("no queries", () => {
    assert.throws(
      () => new InformationRetrievalEvaluator({ queries: new Map(), corpus: CORPUS, relevantDocs: RELEVANT }),
      /there are no queries/,
    );
  });

  test("a query without relevant documents is named", () => {
    for (const rel of [undefined, new Set<string>()]) {
      const relevantDocs = new Map(RELEVANT);
      if (rel) relevantDocs.set("qC", rel);
      else relevantDocs.delete("qC");
      assert.throws(
        () => new InformationRetrievalEvaluator({ queries: QUERIES, corpus: CORPUS, relevantDocs }),
        /query "qC" has no relevant documents/,
      );
    }
  });

  test("a relevant document that is not in the corpus is named", () => {
    const relevantDocs = new Map(RELEVANT).set("qB", new Set(["d9", "d404"]));
    assert.throws(
      () => new InformationRetrievalEvaluator({ queries: QUERIES, corpus: CORPUS, relevantDocs }),
      /query "qB": relevant document "d404" is not in the corpus/,
    );
  });

  test("a dim larger than the model's, before anything is encoded", () => {
    const embedder = new FakeEmbedder(8, keywordVector);
    assert.throws(
      () => keywordEvaluator({ dims: [16, 8] }).evaluate(embedder),
      /dim 16 is larger than the model's embedding size 8/,
    );
    assert.equal(embedder.calls.length, 0);
  });

  test("repeated or empty dims", () => {
    assert.throws(() => keywordEvaluator({ dims: [8, 8] }), /dims repeat/);
    assert.throws(() => keywordEvaluator({ dims: [] }), /dims is empty/);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("buildRetrievalTask", () => {
  // Test file: queries 1-3 and 9; passage "P shared" belongs to pairs 1, 3 (test) and 4 (train).
  const test_: PairRecord[] = [
    { id: 1, anchor: "q one", positive: "P shared" },
    { id: 2, anchor: "q two", positive: "P two" },
    { id: 3, anchor: "q three", positive: "P shared" },
    { id: 9, anchor: "q nine", positive: "P five" },
  ];
  const train: PairRecord[] = [
    { id: 4, anchor: "q four", positive: "P shared" },
    { id: 5, anchor: "q five", positive: "P five" },
  ];
  const corpusRecords = [...train, ...test_.slice(0, 3)]; // pair 9 is not in the corpus

  test("id rule (the recipe's): the query's own pair; a query whose pair is not in the corpus is skipped", () => {
    const task = buildRetrievalTask(test_, corpusRecords, "id");
    assert.deepEqual([...task.corpus.keys()], ["4", "5", "1", "2", "3"]);
    assert.equal(task.corpus.get("3"), "P shared");
    assert.deepEqual(
      [...task.queries],
      [
        ["1", "q one"],
        ["2", "q two"],
        ["3", "q three"],
      ],
    );
    assert.deepEqual(
      [...task.relevantDocs].map(([q, r]) => [q, [...r].sort()]),
      [
        ["1", ["1"]],
        ["2", ["2"]],
        ["3", ["3"]],
      ],
    );
    assert.deepEqual(task.skipped, [{ id: "9", reason: "no relevant document in the corpus" }]);
  });

  test("text rule: every corpus document with the query's passage text is relevant too", () => {
    const task = buildRetrievalTask(test_, corpusRecords, "text");
    assert.deepEqual(
      [...task.relevantDocs].map(([q, r]) => [q, [...r].sort()]),
      [
        ["1", ["1", "3", "4"]],
        ["2", ["2"]],
        ["3", ["1", "3", "4"]],
        ["9", ["5"]], // its own pair is absent, but "P five" is document 5
      ],
    );
    assert.deepEqual(task.skipped, []);
  });

  test("the default is the id rule; repeated ids are errors", () => {
    assert.deepEqual(
      buildRetrievalTask(test_, corpusRecords),
      buildRetrievalTask(test_, corpusRecords, "id"),
    );
    assert.throws(
      () => buildRetrievalTask(test_, [...corpusRecords, train[0]!]),
      /corpus id "4" occurs twice/,
    );
    assert.throws(
      () => buildRetrievalTask([...test_, test_[1]!], corpusRecords),
      /query id "2" occurs twice/,
    );
  });

  test("ids: content — documents are their texts, the corpus order does not matter, unmatched queries are skipped", () => {
    // Files without an id column: row indexes 0, 1, … on both sides, which must not pair query i with row i.
    const q: PairRecord[] = [
      { id: 0, anchor: "q a", positive: "P a" },
      { id: 1, anchor: "q b", positive: "P b" },
      { id: 2, anchor: "q z", positive: "P nowhere" },
    ];
    const other: PairRecord[] = [
      { id: 0, anchor: "x", positive: "P other" },
      { id: 1, anchor: "y", positive: "P a" }, // the same passage as q's row 0: one document
    ];
    const inCorpus = q.slice(0, 2); // "P nowhere" is not in the corpus
    const ab = buildRetrievalTask(q, [...other, ...inCorpus], "id", { ids: "content" });
    const ba = buildRetrievalTask(q, [...inCorpus, ...other], "id", { ids: "content" });
    assert.deepEqual([...ab.corpus], [...ba.corpus]);
    assert.deepEqual(ab.relevantDocs, ba.relevantDocs);
    assert.equal(ab.corpus.size, 3); // "P other", "P a", "P b"
    for (const [qid, rel] of ab.relevantDocs) {
      const i = Number(qid.replace("query-", ""));
      assert.deepEqual(
        [...rel].map((d) => ab.corpus.get(d)),
        [q[i]!.positive],
      );
    }
    assert.deepEqual(ab.skipped, [{ id: "query-2", reason: "no relevant document in the corpus" }]);
    assert.match(skippedWarning(ab, 3)!, /^1 of 3 queries have no relevant document .* excluded/);
    assert.equal(
      skippedWarning(buildRetrievalTask(q.slice(0, 2), q, "id", { ids: "content" }), 2),
      undefined,
    );
  });

  test("a corpus holding none of the queries' passages is an error, not metrics", () => {
    const q: PairRecord[] = [{ id: 0, anchor: "q a", positive: "P a" }];
    const other: PairRecord[] = [{ id: 0, anchor: "x", positive: "P other" }];
    assert.throws(
      () => buildRetrievalTask(q, other, "id", { ids: "content" }),
      /none of the 1 queries has a relevant document in the corpus/,
    );
    assert.throws(
      () => buildRetrievalTask([{ id: 7, anchor: "q", positive: "P" }], other),
      /none of the 1 queries has a relevant document/,
    );
  });

  test("its output feeds the evaluator", () => {
    const task = buildRetrievalTask(test_, corpusRecords, "text");
    const vec = (t: string) => [
      t.includes("shared") || t.includes("one") || t.includes("three") ? 1 : 0,
      t.length / 10,
    ];
    const r = new InformationRetrievalEvaluator(task).evaluate(new FakeEmbedder(2, vec));
    assert.deepEqual([r.queries, r.corpus], [4, 5]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("formatMetricsTable", () => {
  test("a header, a rule, one row per dim with 4-decimal values; missing values show as —", () => {
    const result = keywordEvaluator({ dims: [8, 4] }).evaluate(new FakeEmbedder(8, keywordVector));
    const table = formatMetricsTable(result.metrics, [8, 4, 2]);
    const lines = table.split("\n");
    assert.equal(lines.length, 5);
    assert.deepEqual(lines[0]!.trim().split(/\s+/), [
      "dim",
      "nDCG@10",
      "MRR@10",
      "MAP@100",
      "acc@1",
      "acc@3",
      "acc@5",
      "acc@10",
      "recall@10",
    ]);
    assert.match(lines[1]!, /^-+( +-+){8}$/);
    assert.ok(
      lines.every((l) => l.length === lines[0]!.length),
      "columns are aligned",
    );
    const cells = lines[2]!.trim().split(/\s+/);
    assert.equal(cells[0], "8");
    assert.equal(cells[1], result.metrics["dim_8_cosine_ndcg@10"]!.toFixed(4));
    assert.equal(cells[3], result.metrics["dim_8_cosine_map@100"]!.toFixed(4));
    assert.equal(cells[8], result.metrics["dim_8_cosine_recall@10"]!.toFixed(4));
    assert.equal(lines[3]!.trim().split(/\s+/)[0], "4");
    assert.deepEqual(lines[4]!.trim().split(/\s+/), ["2", ...Array<string>(8).fill("—")]);
    // The dot table reads the dot keys (absent here).
    assert.match(formatMetricsTable(result.metrics, [8], "dot").split("\n")[2]!, /^ *8( +—){8}$/);
  });
});
