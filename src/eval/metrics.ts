// The metric core of the information-retrieval evaluator, in plain TypeScript: given each query's top hits
// and relevant set, compute accuracy/precision/recall@k, MRR@k, nDCG@k and MAP@k exactly as
// sentence-transformers does. The scores themselves come from a later layer (libtorch); this file only ranks
// and counts, and imports nothing from other src/ folders.
//
// ports sentence_transformers@85ec6455 evaluation/InformationRetrievalEvaluator.py#L437-L554
// (compute_metrics, compute_dcg_at_k) and the top-k heap of compute_metrices (L346-L367).

import {
  irMetricEntries,
  maxK as maxKOf,
  resolveIrMetricsConfig,
  type IrMetricsConfig,
} from "./metric-names.ts";

/** One retrieved document for one query. */
export interface Hit {
  readonly corpusId: string;
  readonly score: number;
}

/** What the evaluator needs for one query. */
export interface QueryHits {
  /** Used in error messages and per-query output. */
  readonly queryId: string;
  /**
   * The query's top hits, at least `min(maxK, corpus size)` of them (maxK = 100 by default). Order does not
   * matter: they are re-sorted with {@link compareHits}, as ST re-sorts its heap. Extra hits beyond maxK are
   * ignored, like ST's bounded heap drops them.
   */
  readonly hits: readonly Hit[];
  /** The relevant corpus ids; must not be empty (ST drops such queries when it is constructed). */
  readonly relevant: ReadonlySet<string>;
}

/** Options of {@link computeIrMetrics}: the cut-offs (ST's defaults when unset) and an optional size check. */
export interface ComputeIrMetricsOptions extends Partial<IrMetricsConfig> {
  /**
   * Corpus size; when given, every query must carry at least `min(maxK, corpusSize)` hits, which catches a
   * caller that kept too few (e.g. 10 hits for MAP@100) instead of silently lowering MAP.
   */
  readonly corpusSize?: number;
}

/** One query's metric values, for debugging. */
export interface QueryMetrics {
  readonly queryId: string;
  /** Keyed like {@link IrMetricsResult.metrics}: accuracy and MRR are 0/1 and 1/rank for this query. */
  readonly values: Record<string, number>;
  /** 1-based rank of the first relevant hit among the kept hits (up to maxK), or null if none. */
  readonly firstRelevantRank: number | null;
  /** The kept hits, in ranked order. */
  readonly ranked: readonly Hit[];
}

/** Result of {@link computeIrMetrics}. */
export interface IrMetricsResult {
  /** Averages over queries, keyed `"accuracy@1"` … `"map@100"` in ST's order (see `nameMetrics` to name them). */
  readonly metrics: Record<string, number>;
  readonly perQuery: readonly QueryMetrics[];
  readonly config: IrMetricsConfig;
}

/**
 * Orders strings by Unicode code point, as Python's `str` comparison does. JS `<` compares UTF-16 code units,
 * which puts U+E000–U+FFFF after astral characters; shifting the code units fixes that (ids are rarely
 * non-ASCII, but the rule should not depend on it). Returns a negative number, 0 or a positive number.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) must sort after U+E000–U+FFFF: move them above it.
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The ranking rule used everywhere in ragtune: score descending, then corpus id ascending as strings
 * (code-point order, so "10" comes before "9").
 *
 * Why the id tie-break: ST keeps a min-heap of `(score, corpus_id)` tuples and then sorts the heap's array
 * with `sorted(..., key=lambda x: x["score"], reverse=True)` (L363-L367, L451). That sort is stable on the
 * heap's array order, which among equal scores usually — not always — puts the smaller id first. (At the
 * max-k cut-off ST's `heappushpop` evicts the smallest tuple, i.e. the smaller id, but `torch.topk` has
 * already cut each chunk by an unspecified tie rule first, so ST is not deterministic there either.) One total
 * order, applied both to the cut-off and to the ranking, makes every result reproducible.
 */
export function compareHits(a: Hit, b: Hit): number {
  if (a.score !== b.score) return a.score > b.score ? -1 : 1;
  return compareIds(a.corpusId, b.corpusId);
}

/**
 * The top `k` of one query's scores against the whole corpus, ranked by {@link compareHits} (score
 * descending, then corpus id ascending). Returns `min(k, corpus size)` hits. Equivalent to sorting all
 * documents with that rule and keeping the first `k`, but O(n log k) with a bounded heap.
 *
 * @param scores one score per corpus document (a Float32Array from libtorch is read exactly)
 * @param corpusIds the id of each document, same length as `scores`
 * @throws if lengths differ, `k` is not a positive integer, or a score is NaN (NaN has no place in a ranking)
 */
export function rankTopK(
  scores: Float32Array | Float64Array | readonly number[],
  corpusIds: readonly string[],
  k: number,
): Hit[] {
  if (scores.length !== corpusIds.length) {
    throw new Error(`rankTopK: ${scores.length} scores for ${corpusIds.length} corpus ids`);
  }
  if (!Number.isSafeInteger(k) || k < 1) throw new Error(`rankTopK: k must be a positive integer, got ${k}`);
  const n = scores.length;
  const score = (i: number): number => scores[i] as number;
  const id = (i: number): string => corpusIds[i] as string;
  // true when document i ranks below document j
  const worse = (i: number, j: number): boolean => {
    const si = score(i);
    const sj = score(j);
    return si !== sj ? si < sj : compareIds(id(i), id(j)) > 0;
  };
  // Min-heap (by rank) of kept indices: heap[0] is the worst hit kept so far.
  const heap: number[] = [];
  const at = (p: number): number => heap[p] as number;
  const siftDown = (p: number): void => {
    for (;;) {
      const l = 2 * p + 1;
      if (l >= heap.length) return;
      const r = l + 1;
      const c = r < heap.length && worse(at(r), at(l)) ? r : l;
      if (!worse(at(c), at(p))) return;
      [heap[p], heap[c]] = [at(c), at(p)];
      p = c;
    }
  };
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(score(i))) throw new Error(`rankTopK: score of corpus id "${id(i)}" is NaN`);
    if (heap.length < k) {
      heap.push(i);
      for (let p = heap.length - 1; p > 0;) {
        const parent = (p - 1) >> 1;
        if (!worse(at(p), at(parent))) break;
        [heap[p], heap[parent]] = [at(parent), at(p)];
        p = parent;
      }
    } else if (worse(at(0), i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.map((i) => ({ corpusId: id(i), score: score(i) })).sort(compareHits);
}

/**
 * numpy's pairwise summation of float64 (numpy/_core/src/umath/loops_utils.h.src `pairwise_sum`, used by
 * `np.add.reduce` on a contiguous array): 8 running sums over blocks of up to 128 values, halves above that.
 * Ported so that `np.mean` — which ST uses for precision, recall, nDCG and MAP — matches to the last bit.
 */
function pairwiseSum(a: readonly number[], start: number, n: number): number {
  const v = (i: number): number => a[start + i] as number;
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += v(i);
    return res;
  }
  if (n <= 128) {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = [v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      r0 += v(i);
      r1 += v(i + 1);
      r2 += v(i + 2);
      r3 += v(i + 3);
      r4 += v(i + 4);
      r5 += v(i + 5);
      r6 += v(i + 6);
      r7 += v(i + 7);
    }
    // numpy: res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])) (prettier drops the outer parens)
    let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += v(i);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.mean` of a float64 list, bit for bit: pairwise sum, then one division by the count. */
export function numpyMean(values: readonly number[]): number {
  return pairwiseSum(values, 0, values.length) / values.length;
}

/**
 * Discounted cumulative gain of the first `k` relevances: Σ_{i < min(len, k)} rel_i / log2(i + 2).
 * ports compute_dcg_at_k (L549-L554), summing in the same order.
 */
export function dcgAtK(relevances: readonly number[], k: number): number {
  let dcg = 0;
  const n = Math.min(relevances.length, k);
  for (let i = 0; i < n; i++) dcg += (relevances[i] as number) / Math.log2(i + 2); // +2: ranks start at 0
  return dcg;
}

/** Ranks one query's hits and checks them; the caller reports errors with the query id. */
function rankQueryHits(q: QueryHits, keep: number, minHits: number): Hit[] {
  if (q.relevant.size === 0) {
    throw new Error(
      `IR metrics: query "${q.queryId}" has no relevant documents (recall and nDCG would divide by zero); ` +
        `drop such queries first, as sentence-transformers does when it builds the evaluator`,
    );
  }
  if (q.hits.length < minHits) {
    throw new Error(
      `IR metrics: query "${q.queryId}" has ${q.hits.length} hits, expected at least ${minHits}`,
    );
  }
  const seen = new Set<string>();
  for (const h of q.hits) {
    if (Number.isNaN(h.score))
      throw new Error(`IR metrics: query "${q.queryId}": score of "${h.corpusId}" is NaN`);
    if (seen.has(h.corpusId)) {
      throw new Error(`IR metrics: query "${q.queryId}" lists corpus id "${h.corpusId}" twice`);
    }
    seen.add(h.corpusId);
  }
  // ST: `top_hits = sorted(queries_result_list[query_itr], key=lambda x: x["score"], reverse=True)` (L451),
  // over a heap that holds at most max_k hits.
  return [...q.hits].sort(compareHits).slice(0, keep);
}

/**
 * Computes ST's IR metrics, averaged over queries, exactly as `InformationRetrievalEvaluator.compute_metrics`:
 *
 * - accuracy@k = 1 if any of the top k is relevant; mean over queries (count / number of queries)
 * - precision@k = |top k ∩ R| / k — divided by k even when fewer than k hits exist (tiny corpus)
 * - recall@k = |top k ∩ R| / |R|
 * - MRR@k = 1 / rank of the first relevant hit within the top k, else 0; summed in query order, / count
 * - nDCG@k = DCG@k(hits) / DCG@k([1] × |R|), i.e. the ideal DCG uses min(|R|, k) ones
 * - MAP@k = Σ_{rank r ≤ k, hit relevant} (relevant so far / r) / min(k, |R|)
 *
 * Precision, recall, nDCG and MAP are averaged with numpy's pairwise summation ({@link numpyMean}), accuracy
 * and MRR with ST's running sums, so the floats match ST's bit for bit (given identical rankings).
 *
 * @param perQuery one entry per query; the order only matters for the last bits of MRR (as in ST)
 * @param options the @k lists (ST's defaults when unset) and an optional corpus size for a hit-count check
 * @throws on no queries, a query with an empty relevant set (named by its id), too few hits, NaN scores or a
 *   corpus id listed twice for one query
 */
export function computeIrMetrics(
  perQuery: readonly QueryHits[],
  options: ComputeIrMetricsOptions = {},
): IrMetricsResult {
  const config = resolveIrMetricsConfig(options);
  if (perQuery.length === 0) throw new Error("IR metrics: no queries to evaluate");
  const maxK = maxKOf(config);
  const minHits = options.corpusSize === undefined ? 0 : Math.min(maxK, options.corpusSize);
  const entries = irMetricEntries(config);
  const columns = new Map<string, number[]>(entries.map((e) => [e.suffix, []]));
  const queries: QueryMetrics[] = [];

  // ports compute_metrics (L437-L500): the per-query loop
  for (const q of perQuery) {
    const ranked = rankQueryHits(q, maxK, minHits);
    const isRel = ranked.map((h) => (q.relevant.has(h.corpusId) ? 1 : 0));
    const firstRel = isRel.indexOf(1);
    const numRelevant = q.relevant.size;
    // relevant hits among the first k (cumulative counts, so each @k is O(1))
    const relBefore = [0];
    for (const r of isRel) relBefore.push((relBefore[relBefore.length - 1] as number) + r);
    const correctAt = (k: number): number => relBefore[Math.min(k, isRel.length)] as number;

    const values: Record<string, number> = {};
    for (const { kind, k, suffix } of entries) {
      switch (kind) {
        case "accuracy": // "at least one relevant doc is across the top-k documents"
          values[suffix] = correctAt(k) > 0 ? 1 : 0;
          break;
        case "precision": // num_correct / k_val
          values[suffix] = correctAt(k) / k;
          break;
        case "recall": // num_correct / len(query_relevant_docs)
          values[suffix] = correctAt(k) / numRelevant;
          break;
        case "mrr": // 1.0 / (rank + 1) for the first relevant hit in top_hits[0:k_val]
          values[suffix] = firstRel >= 0 && firstRel < k ? 1.0 / (firstRel + 1) : 0;
          break;
        case "ndcg": {
          // compute_dcg_at_k(predicted_relevance, k) / compute_dcg_at_k([1] * len(query_relevant_docs), k)
          const ideal = new Array<number>(Math.min(numRelevant, k)).fill(1);
          values[suffix] = dcgAtK(isRel.slice(0, k), k) / dcgAtK(ideal, k);
          break;
        }
        case "map": {
          // sum of num_correct / (rank + 1) at each relevant rank, / min(k_val, len(query_relevant_docs))
          let numCorrect = 0;
          let sumPrecisions = 0;
          const n = Math.min(k, isRel.length);
          for (let rank = 0; rank < n; rank++) {
            if (isRel[rank] === 1) {
              numCorrect += 1;
              sumPrecisions += numCorrect / (rank + 1);
            }
          }
          values[suffix] = sumPrecisions / Math.min(k, numRelevant);
          break;
        }
      }
      columns.get(suffix)?.push(values[suffix] as number);
    }
    queries.push({
      queryId: q.queryId,
      values,
      firstRelevantRank: firstRel >= 0 ? firstRel + 1 : null,
      ranked,
    });
  }

  // ports "Compute averages" (L502-L519): accuracy and MRR are running sums divided by len(self.queries);
  // the other families go through np.mean.
  const metrics: Record<string, number> = {};
  for (const { kind, suffix } of entries) {
    const col = columns.get(suffix) ?? [];
    if (kind === "accuracy" || kind === "mrr") {
      let sum = 0;
      for (const v of col) sum += v;
      metrics[suffix] = sum / col.length;
    } else {
      metrics[suffix] = numpyMean(col);
    }
  }
  return { metrics, perQuery: queries, config };
}
