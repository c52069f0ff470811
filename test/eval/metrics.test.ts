// Tests of the IR metric core: key names as sentence-transformers writes them, hand-worked metric values,
// an independent reference implementation of the formulas in shared/reference/semantics.md, and values
// produced by sentence-transformers' own compute_metrics (bit for bit).
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  compareHits,
  compareIds,
  computeIrMetrics,
  numpyMean,
  rankTopK,
  type Hit,
  type QueryHits,
} from "../../src/eval/metrics.ts";
import {
  closestKey,
  editDistance,
  greaterIsBetter,
  irMetricKeys,
  listEvaluatorMetricKeys,
  maxK,
  nameMetrics,
  primaryMetricKey,
  resolveIrMetricsConfig,
  validateMetricForBestModel,
  withPrefix,
} from "../../src/eval/metric-names.ts";

/** Small deterministic PRNG (mulberry32), so the random cases are the same on every run. */
function mulberry32(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Hits with strictly decreasing scores, in the order given. */
function hitsOf(ids: string[]): Hit[] {
  return ids.map((corpusId, i) => ({ corpusId, score: 1 - i / 1000 }));
}

/** `n` filler ids "x0", "x1", … that are never relevant. */
function filler(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `x${i}`);
}

const DEFAULT_SUFFIXES = [
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
];

describe("metric names", () => {
  it("gives exactly ST's keys, in ST's order", () => {
    // ST: f"{score_function}_{metric_name.replace('@k', '@' + str(k))}" over accuracy, precision, recall,
    // ndcg, mrr, map, then prefix_name_to_metrics adds "dim_128_". With the defaults that is 4+4+4+1+1+1 = 15.
    assert.deepEqual(irMetricKeys("dim_128", "cosine"), [
      "dim_128_cosine_accuracy@1",
      "dim_128_cosine_accuracy@3",
      "dim_128_cosine_accuracy@5",
      "dim_128_cosine_accuracy@10",
      "dim_128_cosine_precision@1",
      "dim_128_cosine_precision@3",
      "dim_128_cosine_precision@5",
      "dim_128_cosine_precision@10",
      "dim_128_cosine_recall@1",
      "dim_128_cosine_recall@3",
      "dim_128_cosine_recall@5",
      "dim_128_cosine_recall@10",
      "dim_128_cosine_ndcg@10",
      "dim_128_cosine_mrr@10",
      "dim_128_cosine_map@100",
    ]);
    assert.deepEqual(
      irMetricKeys("", "dot"),
      DEFAULT_SUFFIXES.map((s) => `dot_${s}`),
    );
  });

  it("names the primary metric, prefixes eval_ and lists every evaluator key", () => {
    assert.equal(primaryMetricKey("dim_128", "cosine"), "dim_128_cosine_ndcg@10");
    assert.equal(primaryMetricKey("", "cosine"), "cosine_ndcg@10");
    const cfg = resolveIrMetricsConfig({ ndcgAtK: [5, 20, 10] });
    assert.equal(primaryMetricKey("dim_64", "dot", cfg), "dim_64_dot_ndcg@20"); // ndcg@max(ndcg_at_k)
    assert.equal(maxK(), 100);
    assert.equal(greaterIsBetter("eval_dim_128_cosine_ndcg@10"), true);
    assert.equal(greaterIsBetter("eval_loss"), false);

    const named = nameMetrics("dim_128", "cosine", { "ndcg@10": 0.5, "map@100": 0.25 });
    assert.deepEqual(named, { "dim_128_cosine_ndcg@10": 0.5, "dim_128_cosine_map@100": 0.25 });
    // HF's evaluation loop only adds the prefix to keys that lack it
    assert.deepEqual(withPrefix("eval", { ...named, eval_loss: 1 }), {
      "eval_dim_128_cosine_ndcg@10": 0.5,
      "eval_dim_128_cosine_map@100": 0.25,
      eval_loss: 1,
    });

    const keys = listEvaluatorMetricKeys({ dims: [768, 512, 256, 128, 64] });
    assert.equal(keys.length, 5 * 15);
    assert.equal(keys[0], "dim_768_cosine_accuracy@1");
    assert.equal(keys[keys.length - 1], "dim_64_cosine_map@100");
    assert.ok(keys.includes("dim_128_cosine_ndcg@10"));
    const both = listEvaluatorMetricKeys({ names: [""], scoreFunctions: ["cosine", "dot"] });
    assert.deepEqual(both.slice(14, 16), ["cosine_map@100", "dot_accuracy@1"]);
    assert.deepEqual(listEvaluatorMetricKeys(), irMetricKeys("", "cosine"));
  });

  it("validates the @k lists", () => {
    assert.throws(() => resolveIrMetricsConfig({ mapAtK: [] }), /mapAtK must list at least one k/);
    assert.throws(() => resolveIrMetricsConfig({ mrrAtK: [0] }), /positive integers, got 0/);
    assert.throws(() => resolveIrMetricsConfig({ ndcgAtK: [2.5] }), /positive integers, got 2.5/);
    // ST would count a repeated k twice per query (accuracy above 1): refused
    assert.throws(() => resolveIrMetricsConfig({ accuracyAtK: [1, 3, 1] }), /accuracyAtK lists k=1 twice/);
  });

  it("checks metric_for_best_model and suggests the closest key", () => {
    const valid = [...listEvaluatorMetricKeys({ dims: [768, 512, 256, 128, 64] }), "loss"];
    // the HF Trainer adds "eval_" when it is missing
    assert.equal(
      validateMetricForBestModel("eval_dim_128_cosine_ndcg@10", valid),
      "eval_dim_128_cosine_ndcg@10",
    );
    assert.equal(validateMetricForBestModel("dim_128_cosine_ndcg@10", valid), "eval_dim_128_cosine_ndcg@10");
    assert.equal(validateMetricForBestModel("loss", valid), "eval_loss");

    const attempt = (requested: string): string => {
      try {
        validateMetricForBestModel(requested, valid);
      } catch (e) {
        return (e as Error).message;
      }
      assert.fail(`${requested} was accepted`);
    };
    assert.match(attempt("eval_dim_128_cosine_ndcg@100"), /did you mean "eval_dim_128_cosine_ndcg@10"\?/);
    assert.match(attempt("dim_128_cos_sim_ndcg@10"), /did you mean "eval_dim_128_cosine_ndcg@10"\?/); // ST 2 name
    assert.match(attempt("eval_dim_128_cosine_ndgc@10"), /did you mean "eval_dim_128_cosine_ndcg@10"\?/);
    assert.match(attempt("eval_dim128_cosine_NDCG@10"), /did you mean "eval_dim_128_cosine_ndcg@10"\?/);
    const msg = attempt("eval_dim_100_cosine_ndcg@10");
    assert.match(msg, /^metric_for_best_model "eval_dim_100_cosine_ndcg@10" \(looked up as/);
    assert.match(msg, /Valid keys: eval_dim_768_cosine_accuracy@1, .*\(56 more\)$/);

    assert.equal(editDistance("kitten", "sitting"), 3);
    assert.equal(editDistance("", "abc"), 3);
    assert.equal(closestKey("x", []), undefined);
  });
});

describe("ranking", () => {
  it("breaks score ties by corpus id ascending as strings (code-point order)", () => {
    const hits = rankTopK(new Float32Array([0.5, 0.5, 0.9, 0.5]), ["9", "10", "2", "100"], 3);
    // "2" has the best score; then "10" < "100" < "9" as strings, and k = 3 cuts "9"
    assert.deepEqual(
      hits.map((h) => h.corpusId),
      ["2", "10", "100"],
    );
    // Python's sorted() on the same ids; JS `<` would put "\ue000" after "😀" (UTF-16 code units)
    const pythonOrder = ["", "10", "9", "B", "a", "ab", "a\uffff", "a😀", "é", "\ue000", "😀"];
    const shuffled = [...pythonOrder].reverse();
    assert.deepEqual(shuffled.sort(compareIds), pythonOrder);
    assert.ok(compareHits({ corpusId: "b", score: 1 }, { corpusId: "a", score: 0.5 }) < 0);
  });

  it("equals a full sort on tie-heavy data, whatever the input order", () => {
    const rnd = mulberry32(7);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(rnd() * 200);
      const ids = Array.from({ length: n }, (_, i) => String(i));
      const scores = Float32Array.from({ length: n }, () => Math.floor(rnd() * 6) / 4 - 0.5); // many ties
      const all = ids.map((corpusId, i) => ({ corpusId, score: scores[i] as number })).sort(compareHits);
      for (const k of [1, 3, 10, 100, 500]) {
        assert.deepEqual(rankTopK(scores, ids, k), all.slice(0, k));
      }
      // the same documents presented in reverse give the same top k
      const rev = [...ids.keys()].reverse();
      const revScores = Float64Array.from(rev, (i) => scores[i] as number);
      assert.deepEqual(
        rankTopK(
          revScores,
          rev.map((i) => ids[i] as string),
          10,
        ),
        all.slice(0, 10),
      );
    }
  });

  it("keeps float32 scores exact and rejects bad input", () => {
    const [top] = rankTopK(new Float32Array([0.1, 0.3]), ["a", "b"], 1);
    assert.deepEqual(top, { corpusId: "b", score: Math.fround(0.3) });
    assert.throws(() => rankTopK([1, 2], ["a"], 1), /2 scores for 1 corpus ids/);
    assert.throws(() => rankTopK([1], ["a"], 0), /k must be a positive integer/);
    assert.throws(() => rankTopK([1, NaN], ["a", "b"], 1), /score of corpus id "b" is NaN/);
  });
});

// Hand-worked queries. Hits are listed best-first; "x…" ids are never relevant.
// A: R = {a, c, f}, relevant at ranks 1, 3, 6.
const queryA: QueryHits = {
  queryId: "A",
  relevant: new Set(["a", "c", "f"]),
  hits: hitsOf(["a", "x0", "c", "x1", "x2", "f", ...filler(200).slice(3)]),
};
// B: the relevant doc is not retrieved at all.
const queryB: QueryHits = { queryId: "B", relevant: new Set(["zz"]), hits: hitsOf(filler(100)) };
// C: the only relevant doc is at rank 11: outside every @10 metric but inside MAP@100.
const queryC: QueryHits = {
  queryId: "C",
  relevant: new Set(["r"]),
  hits: hitsOf([...filler(10), "r", ...filler(120).slice(10)]),
};
// D: |R| = 12 > 10. Ranks 1–10 are all relevant, and r10, r11 come at ranks 15 and 20.
const relD = Array.from({ length: 12 }, (_, i) => `r${i}`);
const queryD: QueryHits = {
  queryId: "D",
  relevant: new Set(relD),
  hits: hitsOf([
    ...relD.slice(0, 10),
    "x0",
    "x1",
    "x2",
    "x3",
    "r10",
    "x4",
    "x5",
    "x6",
    "x7",
    "r11",
    ...filler(100).slice(8),
  ]),
};

describe("computeIrMetrics, hand-worked", () => {
  it("several relevant docs (A)", () => {
    const v = computeIrMetrics([queryA]).metrics;
    assert.deepEqual(Object.keys(v), DEFAULT_SUFFIXES);
    // relevant at ranks 1, 3, 6: accuracy is 1 from @1 on
    assert.deepEqual([v["accuracy@1"], v["accuracy@3"], v["accuracy@5"], v["accuracy@10"]], [1, 1, 1, 1]);
    // precision = hits in top k / k: 1/1, 2/3, 2/5, 3/10
    assert.deepEqual(
      [v["precision@1"], v["precision@3"], v["precision@5"], v["precision@10"]],
      [1, 2 / 3, 2 / 5, 3 / 10],
    );
    // recall = hits in top k / |R| = /3: 1/3, 2/3, 2/3, 3/3
    assert.deepEqual([v["recall@1"], v["recall@3"], v["recall@5"], v["recall@10"]], [1 / 3, 2 / 3, 2 / 3, 1]);
    assert.equal(v["mrr@10"], 1); // first relevant at rank 1
    // DCG = 1/log2(2) + 1/log2(4) + 1/log2(7); IDCG (3 ones) = 1/log2(2) + 1/log2(3) + 1/log2(4)
    // np: (1 + 0.5 + 1/np.log2(7)) / (1 + 1/np.log2(3) + 0.5) = 0.8710785440003369
    assert.equal(v["ndcg@10"], 0.8710785440003369);
    // AP = (1/1 + 2/3 + 3/6) / min(100, 3) = 13/18
    assert.equal(v["map@100"], 13 / 18);
  });

  it("no relevant doc retrieved (B) and a hit at rank 11 (C)", () => {
    const b = computeIrMetrics([queryB]);
    assert.ok(Object.values(b.metrics).every((x) => x === 0));
    assert.equal(b.perQuery[0]?.firstRelevantRank, null);
    const c = computeIrMetrics([queryC]);
    // every @1..@10 metric is 0; MAP@100 = (1/11) / min(100, 1)
    for (const [key, value] of Object.entries(c.metrics))
      assert.equal(value, key === "map@100" ? 1 / 11 : 0, key);
    assert.equal(c.perQuery[0]?.firstRelevantRank, 11);
  });

  it("|R| larger than k (D): precision, recall, nDCG and MAP normalisation", () => {
    const v = computeIrMetrics([queryD]).metrics;
    assert.equal(v["precision@10"], 1); // 10 / 10
    assert.equal(v["recall@10"], 10 / 12);
    assert.equal(v["recall@1"], 1 / 12);
    assert.equal(v["ndcg@10"], 1); // the ideal DCG uses min(12, 10) = 10 ones, all matched
    // AP@100 = (1/1 + 2/2 + … + 10/10 + 11/15 + 12/20) / min(100, 12) = (10 + 11/15 + 0.6) / 12
    assert.equal(v["map@100"], 0.9444444444444443);
    // MAP@5 normalises by min(5, 12) = 5: (1/1 + … + 5/5) / 5 = 1
    assert.equal(computeIrMetrics([queryD], { mapAtK: [5] }).metrics["map@5"], 1);
  });

  it("averages over queries (A, B, C, D) and keeps per-query values", () => {
    const r = computeIrMetrics([queryA, queryB, queryC, queryD]);
    assert.equal(r.metrics["accuracy@1"], 0.5); // (1 + 0 + 0 + 1) / 4
    assert.equal(r.metrics["precision@3"], (2 / 3 + 0 + 0 + 1) / 4);
    assert.equal(r.metrics["mrr@10"], 0.5); // (1 + 0 + 0 + 1) / 4
    assert.equal(r.metrics["map@100"], (13 / 18 + 0 + 1 / 11 + 0.9444444444444443) / 4);
    assert.deepEqual(
      r.perQuery.map((q) => [q.queryId, q.values["recall@10"], q.firstRelevantRank]),
      [
        ["A", 1, 1],
        ["B", 0, null],
        ["C", 0, 11],
        ["D", 10 / 12, 1],
      ],
    );
    assert.equal(r.perQuery[0]?.ranked.length, 100); // kept: max k = 100 of A's 200 hits
  });

  it("ties are ranked by id, whatever order the hits arrive in", () => {
    // "10" and "9" tie at the top; "10" < "9" as strings, so the relevant "9" is rank 2
    const q: QueryHits = {
      queryId: "T",
      relevant: new Set(["9"]),
      hits: [
        { corpusId: "9", score: 0.75 },
        { corpusId: "x", score: 0.5 },
        { corpusId: "10", score: 0.75 },
      ],
    };
    const v = computeIrMetrics([q]).metrics;
    assert.equal(v["accuracy@1"], 0);
    assert.equal(v["mrr@10"], 0.5);
  });

  it("a corpus smaller than k: precision still divides by k", () => {
    // 2 documents, relevant "b" at rank 2
    const q: QueryHits = { queryId: "S", relevant: new Set(["b"]), hits: hitsOf(["a", "b"]) };
    const v = computeIrMetrics([q], { corpusSize: 2 }).metrics;
    assert.equal(v["precision@10"], 1 / 10);
    assert.equal(v["precision@3"], 1 / 3);
    assert.equal(v["map@100"], 1 / 2); // (1/2) / min(100, 1)
    assert.equal(v["ndcg@10"], 0.6309297535714575); // (1/log2(3)) / (1/log2(2))
  });

  it("rejects what ST would not compute", () => {
    assert.throws(
      () => computeIrMetrics([queryA, { queryId: "q-empty", relevant: new Set(), hits: hitsOf(["a"]) }]),
      /query "q-empty" has no relevant documents/,
    );
    assert.throws(() => computeIrMetrics([]), /no queries to evaluate/);
    assert.throws(
      () => computeIrMetrics([{ queryId: "q1", relevant: new Set(["a"]), hits: hitsOf(["a", "b", "a"]) }]),
      /query "q1" lists corpus id "a" twice/,
    );
    assert.throws(
      () =>
        computeIrMetrics([
          { queryId: "q2", relevant: new Set(["a"]), hits: [{ corpusId: "a", score: NaN }] },
        ]),
      /query "q2": score of "a" is NaN/,
    );
    // with corpusSize 500, every query needs min(100, 500) hits
    assert.throws(
      () => computeIrMetrics([queryB, { ...queryA, hits: hitsOf(filler(10)) }], { corpusSize: 500 }),
      /query "A" has 10 hits, expected at least 100/,
    );
  });
});

/** Random queries over a corpus of ids "0".."nd-1"; relevant docs get a random boost so they rank high often. */
function randomQueries(
  seed: number,
  nq: number,
  nd: number,
): Array<{ scores: Float32Array; relevant: Set<string> }> {
  const rnd = mulberry32(seed);
  const out = [];
  for (let q = 0; q < nq; q++) {
    const relevant = new Set<string>();
    const size = 1 + Math.floor(rnd() * 5);
    while (relevant.size < size) relevant.add(String(Math.floor(rnd() * nd)));
    const quantize = q % 2 === 0; // every other query has coarse scores, hence many ties
    const scores = Float32Array.from({ length: nd }, (_, i) => {
      const s = rnd() + (relevant.has(String(i)) ? rnd() * 0.3 : 0);
      return quantize ? Math.floor(s * 16) / 16 : s;
    });
    out.push({ scores, relevant });
  }
  return out;
}

/**
 * Straight from semantics.md, with no shared code: sort the whole corpus (score desc, id asc), then the
 * formulas with plain loops, and plain means.
 */
function referenceMetrics(
  queries: Array<{ scores: Float32Array; relevant: Set<string> }>,
): Record<string, number> {
  const sums: Record<string, number> = Object.fromEntries(DEFAULT_SUFFIXES.map((s) => [s, 0]));
  for (const { scores, relevant } of queries) {
    const order = Array.from(scores, (score, i) => ({ id: String(i), score }));
    order.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const rel = order.map((d) => relevant.has(d.id));
    const inTop = (k: number): number => rel.slice(0, k).filter(Boolean).length;
    for (const k of [1, 3, 5, 10]) {
      sums[`accuracy@${k}`]! += inTop(k) > 0 ? 1 : 0;
      sums[`precision@${k}`]! += inTop(k) / k;
      sums[`recall@${k}`]! += inTop(k) / relevant.size;
    }
    const first = rel.findIndex(Boolean);
    sums["mrr@10"]! += first >= 0 && first < 10 ? 1 / (first + 1) : 0;
    let dcg = 0;
    let idcg = 0;
    for (let r = 1; r <= 10; r++) {
      if (rel[r - 1]) dcg += 1 / Math.log2(r + 1);
      if (r <= relevant.size) idcg += 1 / Math.log2(r + 1);
    }
    sums["ndcg@10"]! += dcg / idcg;
    let hitsSoFar = 0;
    let ap = 0;
    for (let r = 1; r <= 100; r++) {
      if (rel[r - 1]) ap += ++hitsSoFar / r;
    }
    sums["map@100"]! += ap / Math.min(100, relevant.size);
  }
  return Object.fromEntries(Object.entries(sums).map(([k, s]) => [k, s / queries.length]));
}

function evaluate(queries: Array<{ scores: Float32Array; relevant: Set<string> }>, nd: number) {
  const ids = Array.from({ length: nd }, (_, i) => String(i));
  return computeIrMetrics(
    queries.map((q, i) => ({ queryId: `q${i}`, hits: rankTopK(q.scores, ids, 100), relevant: q.relevant })),
    { corpusSize: nd },
  );
}

describe("computeIrMetrics on random data", () => {
  it("matches an independent reference implementation to 1e-12 (200 queries x 300 docs)", () => {
    const queries = randomQueries(42, 200, 300);
    const got = evaluate(queries, 300).metrics;
    const want = referenceMetrics(queries);
    assert.deepEqual(Object.keys(got), DEFAULT_SUFFIXES);
    for (const key of DEFAULT_SUFFIXES) {
      assert.ok(
        Math.abs((got[key] as number) - (want[key] as number)) <= 1e-12,
        `${key}: ${got[key]} vs ${want[key]}`,
      );
    }
    // the data exercises every metric (none stuck at 0 or 1)
    for (const key of DEFAULT_SUFFIXES) assert.ok((got[key] as number) > 0 && (got[key] as number) < 1, key);
  });

  it("matches sentence-transformers' compute_metrics bit for bit (300 queries x 200 docs)", () => {
    // Expected values: the same queries (ranked by rankTopK, top 100 each) fed to ST's own
    // InformationRetrievalEvaluator.compute_metrics (sentence_transformers@85ec6455, numpy 2.4), e.g.
    //   e.relevant_docs = {f"q{i}": set(rel) for ...}; r = e.compute_metrics([[{"corpus_id": c, "score": s} ...]])
    //   print({m.replace("@k", f"@{k}"): repr(float(v)) for m, d in r.items() for k, v in d.items()})
    // ST's sort is stable, so feeding it our ranking makes the tie order identical. Precision, recall, nDCG
    // and MAP go through np.mean's pairwise summation, which numpyMean reproduces.
    const got = evaluate(randomQueries(2024, 300, 200), 200).metrics;
    const st: Record<string, number> = {
      "accuracy@1": 0.36666666666666664,
      "accuracy@3": 0.39,
      "accuracy@5": 0.41333333333333333,
      "accuracy@10": 0.4633333333333333,
      "precision@1": 0.36666666666666664,
      "precision@3": 0.1522222222222222,
      "precision@5": 0.1,
      "precision@10": 0.05766666666666667,
      "recall@1": 0.1231111111111111,
      "recall@3": 0.14711111111111114,
      "recall@5": 0.15761111111111112,
      "recall@10": 0.1785,
      "ndcg@10": 0.20820108870112516,
      "mrr@10": 0.3896269841269842,
      "map@100": 0.1685682544229891,
    };
    assert.deepEqual(got, st);
  });

  it("numpyMean reproduces np.mean's pairwise summation", () => {
    // np.mean([0.1] * n) for n = 16, 100, 129, 300; a running sum gives 0.10000000000000002,
    // 0.09999999999999981, 0.09999999999999977 and 0.10000000000000052
    assert.equal(numpyMean(new Array(16).fill(0.1)), 0.1);
    assert.equal(numpyMean(new Array(100).fill(0.1)), 0.09999999999999998);
    assert.equal(numpyMean(new Array(129).fill(0.1)), 0.09999999999999999);
    assert.equal(numpyMean(new Array(300).fill(0.1)), 0.09999999999999999);
  });
});
