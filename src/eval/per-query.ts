// Per-query results of the float evaluation at one dim: each query's nDCG@10, the rank of its first relevant
// document and its top passages. Written by `ragtune eval --per-query FILE` for the base and the fine-tuned
// model, they let the HTML report show the queries that gained and lost most, with their passages before and
// after. Computed from the embeddings the evaluator already encoded (no second encode), ranked with the
// evaluator's rule (score descending, then id) and measured with the same metric core (metrics.ts).
import { computeIrMetrics, rankTopK, type QueryHits } from "./metrics.ts";
import {
  forEachQueryScores,
  quantizeEmbeddings,
  truncateRows,
  type FloatMatrix,
  type QueryScorer,
} from "./quantize.ts";
import type { ScoreFunctionName } from "./metric-names.ts";

export interface PerQueryPassage {
  corpusId: string;
  text: string;
  score: number;
  relevant: boolean;
}

/** One line of the per-query JSONL. */
export interface PerQueryRecord {
  queryId: string;
  query: string;
  dim: number;
  score: ScoreFunctionName;
  "ndcg@10": number;
  /** 1-based rank of the first relevant document within the top 100, or null. */
  firstRelevantRank: number | null;
  top: PerQueryPassage[];
}

export interface PerQueryOptions {
  queries: FloatMatrix;
  corpus: FloatMatrix;
  queryIds: readonly string[];
  queryTexts: readonly string[];
  corpusIds: readonly string[];
  corpusTexts: readonly string[];
  relevantDocs: ReadonlyMap<string, ReadonlySet<string>>;
  dim: number;
  score?: ScoreFunctionName;
  /** Passages kept per query (default 3). */
  top?: number;
  /** Default: the JS scorer (float64 sums); quantized-scorer-torch.ts is faster for large corpora. */
  scorer?: QueryScorer;
}

/** Ranks every query at `dim` and returns one record per query, in query order. */
export function perQueryResults(o: PerQueryOptions): PerQueryRecord[] {
  const score = o.score ?? "cosine";
  const keep = o.top ?? 3;
  const q = quantizeEmbeddings(truncateRows(o.queries, o.dim, score === "cosine"), "float32"); // (Q, dim)
  const c = quantizeEmbeddings(truncateRows(o.corpus, o.dim, score === "cosine"), "float32"); // (C, dim)
  const k = Math.min(100, o.corpusIds.length); // ST's max k (MAP@100), so firstRelevantRank sees the same hits
  const hits: QueryHits[] = [];
  (o.scorer ?? forEachQueryScores)(q, c, (qi, scores) => {
    const qid = o.queryIds[qi]!;
    const relevant = o.relevantDocs.get(qid);
    if (!relevant) throw new Error(`per-query results: query "${qid}" has no relevant documents`);
    hits.push({ queryId: qid, hits: rankTopK(scores, o.corpusIds, k), relevant });
  });
  const metrics = computeIrMetrics(hits, { ndcgAtK: [10], corpusSize: o.corpusIds.length });
  const textOf = new Map(o.corpusIds.map((id, i) => [id, o.corpusTexts[i]!]));
  return metrics.perQuery.map((m, qi) => ({
    queryId: m.queryId,
    query: o.queryTexts[qi]!,
    dim: o.dim,
    score,
    "ndcg@10": m.values["ndcg@10"]!,
    firstRelevantRank: m.firstRelevantRank,
    top: m.ranked.slice(0, keep).map((h) => ({
      corpusId: h.corpusId,
      text: textOf.get(h.corpusId) ?? "",
      score: h.score,
      relevant: hits[qi]!.relevant.has(h.corpusId),
    })),
  }));
}
