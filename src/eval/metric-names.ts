// One source of truth for the information-retrieval metric names: the @k lists, the key format, the primary
// metric, the trainer's `eval_` prefix and the validation of `metric_for_best_model`.
//
// ports sentence_transformers@85ec6455 evaluation/InformationRetrievalEvaluator.py#L125-L291
// (defaults of __init__, the key comprehension in __call__) and evaluation/SentenceEvaluator.py#L57-L69
// (prefix_name_to_metrics). Pure TypeScript: this file imports nothing from other src/ folders.

/** Similarity used to score a query against the corpus; the names are ST's `SimilarityFunction` values. */
export type ScoreFunctionName = "cosine" | "dot";

/** Every score function the evaluator knows, in ST's `SimilarityFunction` order. */
export const SCORE_FUNCTION_NAMES: readonly ScoreFunctionName[] = Object.freeze(["cosine", "dot"]);

/** The six IR metric families, in the order ST's `compute_metrics` returns them (and so the key order). */
export type IrMetricKind = "accuracy" | "precision" | "recall" | "ndcg" | "mrr" | "map";

/** The cut-offs for each metric family (ST's `*_at_k` constructor arguments). */
export interface IrMetricsConfig {
  readonly accuracyAtK: readonly number[];
  readonly precisionRecallAtK: readonly number[];
  readonly mrrAtK: readonly number[];
  readonly ndcgAtK: readonly number[];
  readonly mapAtK: readonly number[];
}

/** ST's defaults: `mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 3, 5, 10], precision_recall_at_k=[1, 3, 5, 10], map_at_k=[100]`. */
export const DEFAULT_IR_METRICS_CONFIG: IrMetricsConfig = Object.freeze({
  accuracyAtK: Object.freeze([1, 3, 5, 10]),
  precisionRecallAtK: Object.freeze([1, 3, 5, 10]),
  mrrAtK: Object.freeze([10]),
  ndcgAtK: Object.freeze([10]),
  mapAtK: Object.freeze([100]),
});

/**
 * Every metric in this module is greater-is-better (ST sets `self.greater_is_better = True` in
 * `SentenceEvaluator.__init__` and the IR evaluator never changes it).
 */
export const IR_METRICS_GREATER_IS_BETTER = true;

/** Type guard for {@link ScoreFunctionName}. */
export function isScoreFunctionName(s: string): s is ScoreFunctionName {
  return (SCORE_FUNCTION_NAMES as readonly string[]).includes(s);
}

function checkKs(field: keyof IrMetricsConfig, ks: readonly number[]): readonly number[] {
  // ST calls max() on every list (compute_metrices, L303-L309), so an empty list is an error there too.
  if (ks.length === 0) throw new Error(`IR metrics config: ${field} must list at least one k`);
  const out: number[] = [];
  for (const k of ks) {
    if (!Number.isSafeInteger(k) || k < 1) {
      throw new Error(`IR metrics config: ${field} must hold positive integers, got ${String(k)}`);
    }
    // ST keys its dicts by k but loops over the list, so a repeated k is counted twice per query (accuracy
    // and MRR can then exceed 1): refuse it rather than reproduce that.
    if (out.includes(k)) throw new Error(`IR metrics config: ${field} lists k=${k} twice`);
    out.push(k);
  }
  return Object.freeze(out);
}

/**
 * Fills unset fields of `overrides` with ST's defaults and validates them: non-empty lists of distinct
 * positive integers (order kept: it is the key order).
 */
export function resolveIrMetricsConfig(overrides: Partial<IrMetricsConfig> = {}): IrMetricsConfig {
  const d = DEFAULT_IR_METRICS_CONFIG;
  return Object.freeze({
    accuracyAtK: checkKs("accuracyAtK", overrides.accuracyAtK ?? d.accuracyAtK),
    precisionRecallAtK: checkKs("precisionRecallAtK", overrides.precisionRecallAtK ?? d.precisionRecallAtK),
    mrrAtK: checkKs("mrrAtK", overrides.mrrAtK ?? d.mrrAtK),
    ndcgAtK: checkKs("ndcgAtK", overrides.ndcgAtK ?? d.ndcgAtK),
    mapAtK: checkKs("mapAtK", overrides.mapAtK ?? d.mapAtK),
  });
}

/** How many hits per query the evaluator must keep: the largest k over all families (ST's `max_k`). */
export function maxK(config: IrMetricsConfig = DEFAULT_IR_METRICS_CONFIG): number {
  return Math.max(
    ...config.mrrAtK,
    ...config.ndcgAtK,
    ...config.accuracyAtK,
    ...config.precisionRecallAtK,
    ...config.mapAtK,
  );
}

/** `"ndcg@10"`: ST's `metric_name.replace("@k", "@" + str(k))`. */
export function metricSuffix(kind: IrMetricKind, k: number): string {
  return `${kind}@${k}`;
}

/** The (kind, k) pairs in ST's key order: all accuracy, all precision, all recall, ndcg, mrr, map. */
export function irMetricEntries(
  config: IrMetricsConfig = DEFAULT_IR_METRICS_CONFIG,
): Array<{ kind: IrMetricKind; k: number; suffix: string }> {
  const families: Array<[IrMetricKind, readonly number[]]> = [
    ["accuracy", config.accuracyAtK],
    ["precision", config.precisionRecallAtK],
    ["recall", config.precisionRecallAtK],
    ["ndcg", config.ndcgAtK],
    ["mrr", config.mrrAtK],
    ["map", config.mapAtK],
  ];
  return families.flatMap(([kind, ks]) => ks.map((k) => ({ kind, k, suffix: metricSuffix(kind, k) })));
}

/** The metric keys without name and score function (`"accuracy@1"`, …, `"map@100"`), in ST's order. */
export function irMetricSuffixes(config: IrMetricsConfig = DEFAULT_IR_METRICS_CONFIG): string[] {
  return irMetricEntries(config).map((e) => e.suffix);
}

/**
 * The full key ST reports: `${name}_${score}_${suffix}`, or `${score}_${suffix}` when `name` is empty
 * (ST's `prefix_name_to_metrics` only adds `name + "_"` when the name is truthy).
 */
export function metricKey(name: string, score: ScoreFunctionName, suffix: string): string {
  return name ? `${name}_${score}_${suffix}` : `${score}_${suffix}`;
}

/** Every key one evaluator (one name, one score function) produces, in ST's order. */
export function irMetricKeys(
  name: string,
  score: ScoreFunctionName,
  config: IrMetricsConfig = DEFAULT_IR_METRICS_CONFIG,
): string[] {
  return irMetricSuffixes(config).map((s) => metricKey(name, score, s));
}

/** Renames `{ "ndcg@10": v }` to `{ "dim_128_cosine_ndcg@10": v }`, keeping the insertion order. */
export function nameMetrics(
  name: string,
  score: ScoreFunctionName,
  metrics: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [suffix, v] of Object.entries(metrics)) out[metricKey(name, score, suffix)] = v;
  return out;
}

/**
 * ST's primary metric for IR: `${name}_${score}_ndcg@${max(ndcg_at_k)}` (L273-L289). ST picks the score
 * function with the best nDCG when several are configured and `main_score_function` is unset; here the
 * caller names it.
 */
export function primaryMetricKey(
  name: string,
  score: ScoreFunctionName,
  config: IrMetricsConfig = DEFAULT_IR_METRICS_CONFIG,
): string {
  return metricKey(name, score, metricSuffix("ndcg", Math.max(...config.ndcgAtK)));
}

/** The evaluator name used for one Matryoshka dimension in the recipe: `dim_${dim}`. */
export function matryoshkaEvaluatorName(dim: number): string {
  if (!Number.isSafeInteger(dim) || dim < 1)
    throw new Error(`Matryoshka dim must be a positive integer, got ${dim}`);
  return `dim_${dim}`;
}

/** What {@link listEvaluatorMetricKeys} needs to know about the evaluators that will run. */
export interface EvaluatorKeySpec {
  /** Matryoshka dims; each yields an evaluator named `dim_${d}`, in this order (like ST's SequentialEvaluator). */
  readonly dims?: readonly number[];
  /** Further evaluator names, listed before the dims; `[""]` means one unnamed evaluator. */
  readonly names?: readonly string[];
  /** Defaults to `["cosine"]` (ST uses the model's `similarity_fn_name` when `score_functions` is unset). */
  readonly scoreFunctions?: readonly ScoreFunctionName[];
  readonly config?: Partial<IrMetricsConfig>;
}

/**
 * Every key (without the trainer's `eval_` prefix) that the IR evaluators described by `spec` will produce:
 * for each evaluator name, for each score function, the 17 default metrics. With neither `dims` nor `names`
 * it describes a single unnamed evaluator. Used to validate `metric_for_best_model` before training.
 */
export function listEvaluatorMetricKeys(spec: EvaluatorKeySpec = {}): string[] {
  const config = resolveIrMetricsConfig(spec.config);
  const names = [...(spec.names ?? []), ...(spec.dims ?? []).map(matryoshkaEvaluatorName)];
  const scores = spec.scoreFunctions ?? ["cosine"];
  if (scores.length === 0) throw new Error("listEvaluatorMetricKeys: scoreFunctions must not be empty");
  const keys: string[] = [];
  for (const name of names.length > 0 ? names : [""]) {
    for (const score of scores) keys.push(...irMetricKeys(name, score, config));
  }
  return keys;
}

/**
 * Prefixes every key with `${prefix}_` as the HF Trainer's evaluation loop does with `metric_key_prefix`
 * (`"eval"`): keys that already start with `${prefix}_` are left as they are.
 */
export function withPrefix(
  prefix: string,
  metrics: Readonly<Record<string, number>>,
): Record<string, number> {
  const p = `${prefix}_`;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) out[k.startsWith(p) ? k : p + k] = v;
  return out;
}

/**
 * HF `TrainingArguments` default for `greater_is_better`: true unless the metric name ends in "loss".
 * True for every IR key (see {@link IR_METRICS_GREATER_IS_BETTER}).
 */
export function greaterIsBetter(metricName: string): boolean {
  return !metricName.endsWith("loss");
}

/** Levenshtein distance (insertions, deletions, substitutions each cost 1), over UTF-16 code units. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The candidate nearest to `key` by case-insensitive edit distance (the first one on ties), if any. */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

/**
 * Checks `metric_for_best_model` against the keys the evaluators will produce, before training starts (a typo
 * there silently disables best-model selection in the HF Trainer).
 *
 * Follows the HF Trainer: a name that does not start with `eval_` gets that prefix. `validKeys` are the
 * unprefixed keys (e.g. from {@link listEvaluatorMetricKeys}, plus `"loss"` if the trainer reports one).
 *
 * @returns the key as the trainer will look it up, e.g. `"eval_dim_128_cosine_ndcg@10"`.
 * @throws Error naming the closest valid key when `requested` is not produced.
 */
export function validateMetricForBestModel(requested: string, validKeys: readonly string[]): string {
  const key = requested.startsWith("eval_") ? requested : `eval_${requested}`;
  const valid = validKeys.map((k) => `eval_${k}`);
  if (valid.includes(key)) return key;
  const suggestion = closestKey(key, valid);
  const shown = valid.slice(0, 20).join(", ") + (valid.length > 20 ? `, … (${valid.length - 20} more)` : "");
  throw new Error(
    `metric_for_best_model "${requested}" (looked up as "${key}") is not a metric the evaluators produce` +
      (suggestion === undefined ? "" : `; did you mean "${suggestion}"?`) +
      ` Valid keys: ${shown || "(none)"}`,
  );
}
