// Retrieval metrics for every Matryoshka dim × embedding precision, from ONE encode: the float embeddings of
// queries and corpus at full size are truncated (and re-normalized for cosine) per dim, quantized as
// sentence-transformers' `quantize_embeddings` does, scored on the quantized values (dot product, or Hamming
// distance for bits), optionally rescored with the float queries, and measured with the same metric core as
// the float evaluator (metrics.ts). The answer to "how small a vector can I store": nDCG@10 and bytes per
// vector of each (dim, precision).
//
// ports sentence_transformers@85ec64559f4414aa536eca4bf53538291e0a333f quantization.py (see quantize.ts) and
// evaluation/InformationRetrievalEvaluator.py (the metrics, via metrics.ts).
// Metric keys extend ST's `${name}_${score}_${metric}` with the precision in the name:
// `dim_128_int8_cosine_ndcg@10`, `dim_128_binary_rescore4_cosine_ndcg@10`; float32 keeps ST's own key
// (`dim_128_cosine_ndcg@10`), so the float rows are the numbers the float evaluator reports.
import {
  maxK,
  matryoshkaEvaluatorName,
  metricKey,
  resolveIrMetricsConfig,
  type IrMetricsConfig,
  type ScoreFunctionName,
} from "./metric-names.ts";
import { compareHits, computeIrMetrics, rankTopK, type Hit, type QueryHits } from "./metrics.ts";
import {
  bytesPerVector,
  calibrationRanges,
  dotRow,
  forEachQueryScores,
  quantizeEmbeddings,
  rescoreDot,
  truncateRows,
  type FloatMatrix,
  type Precision,
  type QuantizationRanges,
  type QueryScorer,
} from "./quantize.ts";
import { formatFixedTable } from "./report.ts";

/** What the rescoring step multiplies the float query with: ST's stored integers / bits, or the float corpus. */
export type RescoreCorpus = "quantized" | "float";

export interface QuantizedEvalOptions {
  /** Query embeddings at full size (Q, D), un-normalized or normalized: cosine re-normalizes per dim. */
  queries: FloatMatrix;
  /** Corpus embeddings at full size (C, D). */
  corpus: FloatMatrix;
  queryIds: readonly string[];
  corpusIds: readonly string[];
  /** Query id → its relevant corpus ids (none empty). */
  relevantDocs: ReadonlyMap<string, ReadonlySet<string>>;
  dims: readonly number[];
  /** Precisions to measure; float32 is scored here too (in float64 sums) when listed. */
  precisions: readonly Precision[];
  scoreFunctions?: readonly ScoreFunctionName[];
  /**
   * Rescoring multiplier N (ST's `rescore_multiplier`): retrieve N × k by the quantized score (k = the largest
   * metric cut-off, 100 by default), rescore those with the float query, keep k. Adds a `_rescore<N>` row per
   * quantized precision; unset: no rescoring rows.
   */
  rescore?: number;
  rescoreCorpus?: RescoreCorpus;
  /** Calibration embeddings at full size for int8 / uint8 ranges; default: the corpus embeddings. */
  calibration?: FloatMatrix;
  /** Where the calibration embeddings came from, stored with the results. */
  calibrationSource?: string;
  metrics?: Partial<IrMetricsConfig>;
  /**
   * Scores the quantized matrices (default: {@link forEachQueryScores} in JS). Integer and bit scores are exact
   * in float64 whatever the order of the sums, so an accelerated scorer gives the same metrics.
   */
  scorer?: QueryScorer;
}

/** One (dim, precision[, rescore]) row of the result. */
export interface PrecisionRow {
  /** Evaluator name in the metric keys: dim_128, dim_128_int8, dim_128_binary_rescore4. */
  name: string;
  dim: number;
  precision: Precision;
  rescore: number | null;
  bytesPerVector: number;
}

/** Ranges used at one dim (after truncation and, for cosine, re-normalization). */
export interface StoredRanges {
  dim: number;
  normalized: boolean;
  min: number[];
  max: number[];
}

export interface QuantizedEvaluation {
  metrics: Record<string, number>;
  rows: PrecisionRow[];
  calibration: { source: string; rows: number; ranges: StoredRanges[] } | null;
  seconds: number;
}

/** `dim_128` for float32 (ST's own name), `dim_128_int8`, `dim_128_binary_rescore4`. */
export function precisionEvaluatorName(
  dim: number,
  precision: Precision,
  rescore: number | null = null,
): string {
  const base = matryoshkaEvaluatorName(dim);
  if (precision === "float32") return base;
  return `${base}_${precision}${rescore === null ? "" : `_rescore${rescore}`}`;
}

/** The rows a (dims, precisions, rescore) choice yields, in table order: per dim, per precision, then rescored. */
export function precisionRows(
  dims: readonly number[],
  precisions: readonly Precision[],
  rescore: number | null = null,
): PrecisionRow[] {
  const rows: PrecisionRow[] = [];
  for (const dim of dims) {
    for (const precision of precisions) {
      const bytes = bytesPerVector(dim, precision);
      rows.push({
        name: precisionEvaluatorName(dim, precision),
        dim,
        precision,
        rescore: null,
        bytesPerVector: bytes,
      });
      // ST only rescores a quantized corpus (it warns and skips for float32).
      if (rescore !== null && precision !== "float32")
        rows.push({
          name: precisionEvaluatorName(dim, precision, rescore),
          dim,
          precision,
          rescore,
          bytesPerVector: bytes,
        });
    }
  }
  return rows;
}

/**
 * Computes the IR metrics of every dim × precision (× rescoring) from one pair of float embedding matrices.
 *
 * @throws on shape mismatches, a dim larger than the embeddings, a binary dim not divisible by 8, a bad
 *   rescore multiplier, or (from the metric core) a query without relevant documents
 */
export function evaluateQuantized(o: QuantizedEvalOptions): QuantizedEvaluation {
  const t0 = performance.now();
  const full = o.corpus.dim;
  if (o.queries.dim !== full)
    throw new Error(`quantized eval: queries have ${o.queries.dim} dims, corpus ${full}`);
  if (o.queries.rows !== o.queryIds.length)
    throw new Error(`quantized eval: ${o.queries.rows} query embeddings for ${o.queryIds.length} query ids`);
  if (o.corpus.rows !== o.corpusIds.length)
    throw new Error(
      `quantized eval: ${o.corpus.rows} corpus embeddings for ${o.corpusIds.length} corpus ids`,
    );
  if (o.calibration && o.calibration.dim < Math.max(...o.dims))
    throw new Error(
      `quantized eval: calibration embeddings have ${o.calibration.dim} dims, fewer than dim ${Math.max(...o.dims)}`,
    );
  for (const d of o.dims)
    if (d > full) throw new Error(`quantized eval: dim ${d} is larger than the embeddings (${full})`);
  const rescore = o.rescore ?? null;
  if (rescore !== null && (!Number.isSafeInteger(rescore) || rescore < 1))
    throw new Error(`quantized eval: the rescore multiplier must be a positive integer, got ${rescore}`);
  const config = resolveIrMetricsConfig(o.metrics);
  const k = Math.min(maxK(config), o.corpusIds.length);
  const scoreFunctions = o.scoreFunctions ?? ["cosine"];
  const calibrationMatrix = o.calibration ?? o.corpus;
  const needsRanges = o.precisions.includes("int8") || o.precisions.includes("uint8");

  const corpusRow = new Map(o.corpusIds.map((id, i) => [id, i])); // for rescoring by id
  const metrics: Record<string, number> = {};
  const storedRanges: StoredRanges[] = [];
  const measure = (name: string, score: ScoreFunctionName, perQuery: QueryHits[]): void => {
    const result = computeIrMetrics(perQuery, { ...config, corpusSize: o.corpusIds.length });
    for (const [suffix, v] of Object.entries(result.metrics)) metrics[metricKey(name, score, suffix)] = v;
  };
  const relevant = (qid: string): ReadonlySet<string> => {
    const r = o.relevantDocs.get(qid);
    if (!r) throw new Error(`quantized eval: query "${qid}" has no relevant documents`);
    return r;
  };

  for (const dim of o.dims) {
    for (const score of scoreFunctions) {
      const normalize = score === "cosine";
      const q = truncateRows(o.queries, dim, normalize); // (Q, dim)
      const c = truncateRows(o.corpus, dim, normalize); // (C, dim)
      let ranges: QuantizationRanges | undefined;
      if (needsRanges) {
        ranges = calibrationRanges(truncateRows(calibrationMatrix, dim, normalize));
        storedRanges.push({
          dim,
          normalized: normalize,
          min: Array.from(ranges.min),
          max: Array.from(ranges.max),
        });
      }
      for (const precision of o.precisions) {
        // Queries are quantized with the corpus' ranges (ST falls back to the queries' own ranges when given
        // neither ranges nor calibration embeddings, which its docstring calls "not recommended").
        const qq = quantizeEmbeddings(q, precision, ranges);
        const cq = quantizeEmbeddings(c, precision, ranges);
        const plain: QueryHits[] = [];
        const rescored: QueryHits[] = [];
        const withRescore = rescore !== null && precision !== "float32";
        const take = withRescore ? Math.min(rescore * k, o.corpusIds.length) : k;
        (o.scorer ?? forEachQueryScores)(qq, cq, (qi, scores) => {
          const qid = o.queryIds[qi]!;
          const top = rankTopK(scores, o.corpusIds, take);
          plain.push({ queryId: qid, hits: top.slice(0, k), relevant: relevant(qid) });
          if (!withRescore) return;
          // ST: rescored_scores = einsum("ij,ikj->ik", float_queries, top_k_embeddings), then argsort(-scores)[:top_k]
          const hits: Hit[] = top.map((h) => {
            const row = corpusRow.get(h.corpusId)!;
            const s =
              o.rescoreCorpus === "float" ? dotRow(q, qi, c.data, row * dim) : rescoreDot(q, qi, cq, row);
            return { corpusId: h.corpusId, score: s };
          });
          rescored.push({ queryId: qid, hits: hits.sort(compareHits).slice(0, k), relevant: relevant(qid) });
        });
        measure(precisionEvaluatorName(dim, precision), score, plain);
        if (withRescore) measure(precisionEvaluatorName(dim, precision, rescore), score, rescored);
      }
    }
  }
  return {
    metrics,
    rows: precisionRows(o.dims, o.precisions, rescore),
    calibration: needsRanges
      ? { source: o.calibrationSource ?? "corpus", rows: calibrationMatrix.rows, ranges: storedRanges }
      : null,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * A fixed-width table: one row per (dim, precision[, rescore]) with bytes per vector, the compression against
 * float32 at full size, nDCG@10, MRR@10, recall@10, and nDCG@10 relative to float32 at the same dim.
 */
export function formatPrecisionTable(
  metrics: Readonly<Record<string, number>>,
  rows: readonly PrecisionRow[],
  fullDim: number,
  score: ScoreFunctionName = "cosine",
): string {
  const get = (name: string, suffix: string) => metrics[metricKey(name, score, suffix)];
  const fmt = (v: number | undefined) => (v === undefined ? "—" : v.toFixed(4));
  const header = ["dim", "precision", "bytes/vec", "smaller", "nDCG@10", "MRR@10", "recall@10", "vs float32"];
  const body = rows.map((r) => {
    const ndcg = get(r.name, "ndcg@10");
    const ref = get(matryoshkaEvaluatorName(r.dim), "ndcg@10");
    return [
      String(r.dim),
      r.rescore === null ? r.precision : `${r.precision} +rescore×${r.rescore}`,
      String(r.bytesPerVector),
      `${(bytesPerVector(fullDim, "float32") / r.bytesPerVector).toFixed(0)}×`,
      fmt(ndcg),
      fmt(get(r.name, "mrr@10")),
      fmt(get(r.name, "recall@10")),
      ndcg === undefined || ref === undefined || ref === 0 ? "—" : `${((100 * ndcg) / ref).toFixed(1)}%`,
    ];
  });
  return formatFixedTable(header, body);
}
