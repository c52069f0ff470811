// The options of `ragtune eval` that reuse the float evaluation's embeddings (one encode): `--precision`,
// `--rescore`, `--rescore-corpus` and `--calibration` (the dim × precision evaluation of quantized embeddings,
// src/eval/quantized-eval.ts) and `--per-query FILE` (each query's nDCG@10 and top passages, for the report's
// examples, src/eval/per-query.ts). eval.ts calls the three hooks below; everything else lives here.
import type { InformationRetrievalEvaluator, TextEmbedder } from "../eval/ir-evaluator.ts";
import { CapturingEmbedder } from "../eval/embedding-capture.ts";
import { readEmbeddingMatrix } from "../eval/npy.ts";
import {
  evaluateQuantized,
  formatPrecisionTable,
  precisionRows,
  type PrecisionRow,
  type QuantizedEvaluation,
} from "../eval/quantized-eval.ts";
import { floatMatrix, parsePrecisions, type Precision } from "../eval/quantize.ts";
import type { ScoreFunctionName } from "../eval/metric-names.ts";
import { perQueryResults } from "../eval/per-query.ts";
import { torchQueryScores } from "../eval/quantized-scorer-torch.ts";
import { writeFileAtomic } from "../util/index.ts";
import { numberOption, UsageError, type OptionTable } from "./args.ts";

export const EVAL_EXTRA_OPTIONS: OptionTable = {
  precision: {
    type: "string",
    arg: "P,…",
    help:
      "also score quantized embeddings: float32,int8,uint8,binary,ubinary (sentence-transformers' " +
      "quantize_embeddings); prints nDCG@10 and bytes per vector of every dim × precision",
  },
  rescore: {
    type: "string",
    arg: "N",
    help:
      "with --precision: also retrieve N × 100 candidates (100 = the largest metric cut-off) by the quantized " +
      "score and rescore them with the float query, as ST's rescore_multiplier (rows named …_rescoreN)",
  },
  "rescore-corpus": {
    type: "string",
    arg: "WHAT",
    help: "what the float query is multiplied with when rescoring: quantized (ST: the stored integers / bits) or float",
    default: "quantized",
  },
  calibration: {
    type: "string",
    arg: "FILE",
    help: "int8/uint8 ranges from these full-size float embeddings (.npy or encode's JSONL) instead of the corpus",
  },
  "per-query": {
    type: "string",
    arg: "FILE",
    help: "write each query's nDCG@10 and top-3 passages at the first dim (JSONL; the report's examples)",
  },
};

/** The --help notes of these options: where ragtune follows sentence-transformers and where it is stricter. */
export const EVAL_EXTRA_NOTES = [
  "Quantization (--precision) follows sentence-transformers' quantize_embeddings on the embeddings of the same encode,",
  "truncated to each dim (and re-normalized for cosine). int8/uint8: per-dimension ranges from the corpus embeddings",
  "(or --calibration), applied to queries and corpus alike; values outside the range saturate (numpy's cast wraps).",
  "binary/ubinary: sign bits packed 8 per byte (np.packbits), dims must be multiples of 8. Scores: dot product of the",
  "stored integers (faiss IndexFlatIP / usearch ip), Hamming distance for bits. Rescoring multiplies the float query",
  "with the stored integers / 0-1 bits as ST's semantic_search_faiss / _usearch do (--rescore-corpus float: with the",
  "float corpus). Keys extend ST's: dim_128_int8_cosine_ndcg@10, dim_128_binary_rescore4_cosine_ndcg@10; float32 keeps",
  'dim_128_cosine_ndcg@10. --json stores them under "quantized" with bytes per vector and the calibration ranges.',
].join("\n");

/** What `--precision` and `--per-query` asked for; `null` when neither was given. */
export class EvalExtras {
  private capture: CapturingEmbedder | null = null;

  private constructor(
    readonly perQueryFile: string | null,
    /** Empty: no quantized evaluation. */
    readonly precisions: Precision[],
    readonly rescore: number | null,
    readonly rescoreCorpus: "quantized" | "float",
    readonly calibrationFile: string | null,
  ) {}

  /** Parses the options; `null` without `--precision` and `--per-query`. @throws UsageError naming the flag */
  static fromOptions(values: Record<string, unknown>): EvalExtras | null {
    const perQuery = typeof values["per-query"] === "string" ? values["per-query"] : null;
    if (typeof values.precision !== "string") {
      for (const flag of ["rescore", "calibration"])
        if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --precision`);
      return perQuery === null ? null : new EvalExtras(perQuery, [], null, "quantized", null);
    }
    let precisions: Precision[];
    try {
      precisions = parsePrecisions(values.precision);
    } catch (e) {
      throw new UsageError(`--precision: ${(e as Error).message}`);
    }
    const rescore =
      values.rescore === undefined ? null : numberOption(values, "rescore", 1, { integer: true, min: 1 });
    const rc = values["rescore-corpus"] ?? "quantized";
    if (rc !== "quantized" && rc !== "float")
      throw new UsageError(`--rescore-corpus must be quantized or float, got "${String(rc)}"`);
    const calibration = typeof values.calibration === "string" ? values.calibration : null;
    return new EvalExtras(perQuery, precisions, rescore, rc, calibration);
  }

  /** Hook 1: the model to hand to `evaluator.evaluate`, keeping a copy of the embeddings it computes. */
  wrap(model: TextEmbedder): TextEmbedder {
    this.capture = new CapturingEmbedder(model);
    return this.capture;
  }

  /**
   * Hook 2: after `evaluator.evaluate(extras.wrap(model))`, writes the per-query file and scores every dim ×
   * quantized precision on the same embeddings. The float32 rows are the float evaluator's own metrics
   * (`floatMetrics`).
   */
  evaluate(
    evaluator: InformationRetrievalEvaluator,
    dims: readonly number[],
    scoreFunctions: readonly ScoreFunctionName[],
    floatMetrics: Readonly<Record<string, number>>,
  ): ExtrasResult {
    if (!this.capture)
      throw new Error("EvalExtras.evaluate: call wrap() and evaluate the wrapped model first");
    const queries = this.capture.embeddingsOf(evaluator.queryTexts, "queries");
    const corpus = this.capture.embeddingsOf(evaluator.corpusTexts, "corpus");
    if (this.perQueryFile !== null) {
      const records = perQueryResults({
        queries,
        corpus,
        queryIds: evaluator.queryIds,
        queryTexts: evaluator.queryTexts,
        corpusIds: evaluator.corpusIds,
        corpusTexts: evaluator.corpusTexts,
        relevantDocs: evaluator.relevantDocs,
        dim: dims[0] ?? corpus.dim,
        score: scoreFunctions[0] ?? "cosine",
        scorer: torchQueryScores,
      });
      writeFileAtomic(this.perQueryFile, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    }
    if (this.precisions.length === 0) return { table: null, json: null };
    let calibration;
    if (this.calibrationFile !== null) {
      const m = readEmbeddingMatrix(this.calibrationFile);
      if (m.dim !== corpus.dim)
        throw new UsageError(
          `--calibration ${this.calibrationFile}: embeddings have ${m.dim} dims, the model ${corpus.dim}`,
        );
      calibration = floatMatrix(m.data, m.rows, m.dim);
    }
    const quantized = evaluateQuantized({
      queries,
      corpus,
      queryIds: evaluator.queryIds,
      corpusIds: evaluator.corpusIds,
      relevantDocs: evaluator.relevantDocs,
      dims,
      precisions: this.precisions.filter((p) => p !== "float32"),
      scoreFunctions,
      ...(this.rescore !== null ? { rescore: this.rescore } : {}),
      rescoreCorpus: this.rescoreCorpus,
      ...(calibration ? { calibration, calibrationSource: this.calibrationFile! } : {}),
      metrics: evaluator.config,
      scorer: torchQueryScores,
    });
    const rows = precisionRows(dims, this.precisions, this.rescore);
    const metrics = { ...floatMetrics, ...quantized.metrics };
    return {
      quantized,
      rows,
      table: formatPrecisionTable(metrics, rows, corpus.dim, scoreFunctions[0] ?? "cosine"),
      json: {
        precisions: this.precisions,
        rescore: this.rescore,
        rescoreCorpus: this.rescore === null ? null : this.rescoreCorpus,
        rows,
        metrics: quantized.metrics,
        calibration: quantized.calibration,
        seconds: quantized.seconds,
      },
    };
  }
}

/** Hook 3 prints `table` and stores `json` under `quantized` in the --json output (both null without --precision). */
export interface ExtrasResult {
  quantized?: QuantizedEvaluation;
  rows?: PrecisionRow[];
  table: string | null;
  json: Record<string, unknown> | null;
}
