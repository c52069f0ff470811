// The information-retrieval evaluator at every Matryoshka dimension.
//
// ports sentence_transformers evaluation/InformationRetrievalEvaluator.py (compute_metrices: corpus chunks,
// top-k per chunk, metrics from the merged top-k), with one difference that matters for Matryoshka: queries
// and corpus are encoded ONCE at full size, and each dim is scored by slicing and re-normalizing the same
// embeddings. sentence-transformers builds one evaluator per dim and re-encodes everything each time; slicing
// after pooling is exactly what its `truncate_dim` does, so the numbers are the same for a fraction of the work.
import { corpusFingerprint, type CorpusFingerprint } from "./corpus-fingerprint.ts";
import { noGrad, tidy, keep, cat, type Tensor } from "../engine/index.ts";
import {
  DEFAULT_IR_METRICS_CONFIG,
  matryoshkaEvaluatorName,
  maxK,
  metricKey,
  primaryMetricKey,
  resolveIrMetricsConfig,
  type IrMetricsConfig,
  type ScoreFunctionName,
} from "./metric-names.ts";
import { compareHits, computeIrMetrics, type Hit, type QueryHits } from "./metrics.ts";

/** What the evaluator needs of a model: texts in, un-normalized pooled embeddings (N, D) out. */
export interface TextEmbedder {
  /** Full embedding size. */
  readonly embeddingDim: number;
  encodeTensor(
    texts: readonly string[],
    options: { batchSize: number; prompt?: string; progress?: string },
  ): Tensor;
}

export interface IrEvaluatorOptions {
  /** Query id → text. */
  queries: ReadonlyMap<string, string>;
  /** Corpus id → text. */
  corpus: ReadonlyMap<string, string>;
  /** Query id → ids of its relevant documents (queries without any are an error: filter them first). */
  relevantDocs: ReadonlyMap<string, ReadonlySet<string>>;
  /** Matryoshka dims to score (each gives metrics named dim_<d>); default: the full dim only, unnamed. */
  dims?: readonly number[];
  /** Evaluator name when `dims` is not given (ST's `name`). */
  name?: string;
  scoreFunctions?: readonly ScoreFunctionName[];
  metrics?: Partial<IrMetricsConfig>;
  batchSize?: number;
  /** Corpus rows scored at once: bounds memory at (queries × chunk) scores. ST's default is 50,000. */
  corpusChunkSize?: number;
  /** Prepended to every query (e.g. bge's "Represent this sentence for searching relevant passages: "). */
  queryPrompt?: string;
  corpusPrompt?: string;
  /** Show encoding progress on stderr. */
  progress?: boolean;
}

export interface IrEvaluation {
  /** sentence-transformers keys, e.g. dim_128_cosine_ndcg@10. */
  metrics: Record<string, number>;
  /** Per evaluator name (dim_768, …) the primary metric key. */
  primaryMetrics: Record<string, string>;
  /** The first evaluator's primary metric (what model selection uses unless told otherwise). */
  primaryMetric: string;
  dims: number[];
  queries: number;
  corpus: number;
  seconds: { encode: number; score: number };
}

/**
 * Number of extra candidates taken from libtorch's top-k before the exact re-ranking in JS. libtorch breaks
 * ties arbitrarily; re-ranking score-descending then id-ascending (metrics.ts compareHits) makes the order
 * deterministic. When the tie at the k-th score reaches the last candidate taken (more documents may tie than
 * were taken), every document of the chunk with that score or more is taken instead, so the result is exact
 * and independent of the chunk size in every case.
 */
const TIE_MARGIN = 32;

export class InformationRetrievalEvaluator {
  readonly queryIds: string[];
  readonly queryTexts: string[];
  readonly corpusIds: string[];
  readonly corpusTexts: string[];
  readonly relevantDocs: ReadonlyMap<string, ReadonlySet<string>>;
  readonly dims: readonly number[] | undefined;
  readonly name: string;
  readonly scoreFunctions: readonly ScoreFunctionName[];
  readonly config: IrMetricsConfig;
  readonly batchSize: number;
  readonly corpusChunkSize: number;
  readonly queryPrompt: string | undefined;
  readonly corpusPrompt: string | undefined;
  readonly progress: boolean;

  constructor(o: IrEvaluatorOptions) {
    if (o.corpus.size === 0) throw new Error("IR evaluator: the corpus is empty");
    if (o.queries.size === 0) throw new Error("IR evaluator: there are no queries");
    for (const qid of o.queries.keys()) {
      const rel = o.relevantDocs.get(qid);
      if (!rel || rel.size === 0) {
        throw new Error(
          `IR evaluator: query "${qid}" has no relevant documents (filter such queries out first)`,
        );
      }
      for (const cid of rel) {
        if (!o.corpus.has(cid))
          throw new Error(`IR evaluator: query "${qid}": relevant document "${cid}" is not in the corpus`);
      }
    }
    this.queryIds = [...o.queries.keys()];
    this.queryTexts = [...o.queries.values()];
    this.corpusIds = [...o.corpus.keys()];
    this.corpusTexts = [...o.corpus.values()];
    this.relevantDocs = o.relevantDocs;
    this.dims = o.dims ? [...o.dims] : undefined;
    if (this.dims) {
      if (this.dims.length === 0) throw new Error("IR evaluator: dims is empty");
      if (new Set(this.dims).size !== this.dims.length)
        throw new Error(`IR evaluator: dims repeat: ${this.dims.join(",")}`);
    }
    this.name = o.name ?? "";
    this.scoreFunctions = o.scoreFunctions ?? ["cosine"];
    this.config = resolveIrMetricsConfig(o.metrics ?? DEFAULT_IR_METRICS_CONFIG);
    this.batchSize = o.batchSize ?? 32;
    this.corpusChunkSize = o.corpusChunkSize ?? 50_000;
    this.queryPrompt = o.queryPrompt;
    this.corpusPrompt = o.corpusPrompt;
    this.progress = o.progress ?? false;
  }

  /** Evaluator names with their dims: dim_768 → 768, or the single unnamed evaluator at full size. */
  namesFor(fullDim: number): Array<{ name: string; dim: number }> {
    if (!this.dims) return [{ name: this.name, dim: fullDim }];
    return this.dims.map((d) => ({ name: matryoshkaEvaluatorName(d), dim: d }));
  }

  /** The primary metric of the first evaluator (ST's MatryoshkaEvaluation uses the first one's). */
  primaryMetric(fullDim: number): string {
    const first = this.namesFor(fullDim)[0]!;
    return primaryMetricKey(first.name, this.scoreFunctions[0] ?? "cosine", this.config);
  }

  /** The corpus's size and fingerprint, for the results files (compare refuses results of different corpora). */
  get corpusFingerprint(): CorpusFingerprint {
    this.#fingerprint ??= corpusFingerprint(this.corpusTexts);
    return this.#fingerprint;
  }
  #fingerprint: CorpusFingerprint | undefined;

  /** Encodes queries and corpus once, then scores every dim and score function. */
  evaluate(model: TextEmbedder): IrEvaluation {
    const fullDim = model.embeddingDim;
    for (const d of this.dims ?? []) {
      if (d > fullDim)
        throw new Error(`IR evaluator: dim ${d} is larger than the model's embedding size ${fullDim}`);
    }
    const t0 = performance.now();
    const [queryEmb, corpusEmb] = noGrad(() => [
      keep(
        model.encodeTensor(this.queryTexts, {
          batchSize: this.batchSize,
          prompt: this.queryPrompt,
          ...(this.progress ? { progress: "queries" } : {}),
        }),
      ),
      keep(
        model.encodeTensor(this.corpusTexts, {
          batchSize: this.batchSize,
          prompt: this.corpusPrompt,
          ...(this.progress ? { progress: "corpus" } : {}),
        }),
      ),
    ]);
    const t1 = performance.now();
    const metrics: Record<string, number> = {};
    const primaryMetrics: Record<string, string> = {};
    try {
      for (const { name, dim } of this.namesFor(fullDim)) {
        for (const score of this.scoreFunctions) {
          const perQuery = this.rank(queryEmb!, corpusEmb!, dim, score);
          const result = computeIrMetrics(perQuery, { ...this.config, corpusSize: this.corpusIds.length });
          for (const [suffix, value] of Object.entries(result.metrics))
            metrics[metricKey(name, score, suffix)] = value;
        }
        primaryMetrics[name || "full"] = primaryMetricKey(
          name,
          this.scoreFunctions[0] ?? "cosine",
          this.config,
        );
      }
    } finally {
      queryEmb!.dispose();
      corpusEmb!.dispose();
    }
    const t2 = performance.now();
    return {
      metrics,
      primaryMetrics,
      primaryMetric: this.primaryMetric(fullDim),
      dims: this.namesFor(fullDim).map((n) => n.dim),
      queries: this.queryIds.length,
      corpus: this.corpusIds.length,
      seconds: { encode: (t1 - t0) / 1000, score: (t2 - t1) / 1000 },
    };
  }

  /**
   * Top-k documents of every query at `dim`: truncate, (re-)normalize for cosine, score corpus chunks by one
   * matrix product each, keep top-(k + margin) candidates per chunk on the engine, then merge and order them
   * exactly in JS.
   */
  rank(queryEmb: Tensor, corpusEmb: Tensor, dim: number, score: ScoreFunctionName): QueryHits[] {
    const k = Math.min(maxK(this.config), this.corpusIds.length);
    const candidates: Hit[][] = this.queryIds.map(() => []);
    tidy(() => {
      const prep = (e: Tensor) => {
        const sliced = e.narrow(1, 0, dim); // (N, dim): Matryoshka truncation after pooling
        return score === "cosine" ? sliced.normalize(-1) : sliced;
      };
      const q = prep(queryEmb); // (Q, dim)
      for (let start = 0; start < this.corpusIds.length; start += this.corpusChunkSize) {
        tidy(() => {
          const len = Math.min(this.corpusChunkSize, this.corpusIds.length - start);
          const c = prep(corpusEmb.narrow(0, start, len)); // (C, dim)
          const scores = q.matmul(c.mT); // (Q, C)
          const take = Math.min(len, k + TIE_MARGIN);
          const [values, indices] = scores.topk(take, 1, true, true); // (Q, take)
          const v = values.float().toArray() as Float32Array;
          const ix = indices.toArray() as BigInt64Array;
          let all: Float32Array | undefined; // the chunk's scores, read only when a tie reaches the margin
          for (let qi = 0; qi < this.queryIds.length; qi++) {
            const list = candidates[qi]!;
            const last = v[qi * take + take - 1]!;
            if (take < len && v[qi * take + k - 1] === last) {
              // Documents beyond the ones taken may tie with the k-th: take all that score ≥ that score.
              all ??= scores.float().toArray() as Float32Array; // (Q * C)
              for (let j = 0; j < len; j++) {
                const s = all[qi * len + j]!;
                if (s >= last) list.push({ corpusId: this.corpusIds[start + j]!, score: s });
              }
              continue;
            }
            for (let j = 0; j < take; j++) {
              list.push({
                corpusId: this.corpusIds[start + Number(ix[qi * take + j])]!,
                score: v[qi * take + j]!,
              });
            }
          }
        });
      }
    });
    return this.queryIds.map((qid, qi) => ({
      queryId: qid,
      hits: candidates[qi]!.sort(compareHits).slice(0, k),
      relevant: this.relevantDocs.get(qid)!,
    }));
  }
}

/** Concatenates row blocks (helper for embedders that encode in batches). */
export function concatRows(blocks: Tensor[]): Tensor {
  return blocks.length === 1 ? blocks[0]!.alias() : cat(blocks, 0);
}
