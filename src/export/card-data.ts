// What a model card shows of the data, computed from the data itself: the training dataset's columns with their
// length statistics (min / mean / max tokens per column, as sentence-transformers' model cards show them), and the
// hub widget's examples (an evaluation query with a few passages, its relevant one first).
//
// ports sentence_transformers@dfcbbd93 model_card.py SentenceTransformerModelCardData.compute_dataset_metrics
// (the statistics of the first 1,000 samples; tokens counted with the model's tokenizer, truncated at its maximum
// sequence length, no prompt) and get_widget_examples (source_sentence + sentences).

/** Length statistics of one text column. */
export interface ColumnStats {
  name: string;
  min: number;
  mean: number;
  max: number;
}

/** The statistics section of a dataset: how many samples they cover and in which unit. */
export interface DatasetStats {
  /** Samples the statistics are based on (the first `samples` rows). */
  samples: number;
  unit: "tokens" | "characters";
  columns: ColumnStats[];
}

/** Rows sentence-transformers bases its statistics on (the first 1,000 samples). */
export const STATS_SAMPLE_LIMIT = 1000;

/**
 * Min / mean / max length per column over the first `limit` rows. `columns` are the column names, `rows` the
 * texts of each row in that order (a row may lack trailing columns: they are skipped for it), `length` the
 * length of one text in `unit`s.
 */
export function datasetStats(
  columns: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  length: (text: string) => number,
  unit: DatasetStats["unit"] = "tokens",
  limit = STATS_SAMPLE_LIMIT,
): DatasetStats {
  const used = rows.slice(0, limit);
  const stats = columns.map((name, c) => {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let n = 0;
    for (const row of used) {
      const text = row[c];
      if (text === undefined) continue;
      const l = length(text);
      min = Math.min(min, l);
      max = Math.max(max, l);
      sum += l;
      n++;
    }
    return n === 0 ? { name, min: 0, mean: 0, max: 0 } : { name, min, mean: sum / n, max };
  });
  return { samples: used.length, unit, columns: stats };
}

/** The statistics as sentence-transformers' card table: a type row and a details row per column. */
export function statsTable(s: DatasetStats): string {
  const u = s.unit;
  const cells = s.columns.map(
    (c) =>
      `<ul><li>min: ${c.min} ${u}</li><li>mean: ${c.mean.toFixed(2)} ${u}</li><li>max: ${c.max} ${u}</li></ul>`,
  );
  return [
    `|         | ${s.columns.map((c) => c.name).join(" | ")} |`,
    `|:--------|${s.columns.map(() => ":--").join("|")}|`,
    `| type    | ${s.columns.map(() => "string").join(" | ")} |`,
    `| details | ${cells.join(" | ")} |`,
  ].join("\n");
}

/** One example of the hub's sentence-similarity widget. */
export interface WidgetExample {
  source_sentence: string;
  sentences: string[];
}

/** What the widget is built from: the evaluator's queries, corpus and relevance (InformationRetrievalEvaluator). */
export interface WidgetSource {
  queryIds: readonly string[];
  queryTexts: readonly string[];
  corpusIds: readonly string[];
  corpusTexts: readonly string[];
  relevantDocs: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * Up to `count` widget examples from the evaluation queries, in their order: each query with its first relevant
 * passage, then the first relevant passages of the next queries (other passages of the same corpus), `perQuery`
 * passages in all, none repeated within an example.
 */
export function widgetExamples(source: WidgetSource, count = 3, perQuery = 3): WidgetExample[] {
  const text = new Map(source.corpusIds.map((id, i) => [id, source.corpusTexts[i]!]));
  const firstRelevant = (q: number): string | undefined => {
    for (const id of source.relevantDocs.get(source.queryIds[q]!) ?? []) {
      const t = text.get(id);
      if (t !== undefined) return t;
    }
    return undefined;
  };
  const out: WidgetExample[] = [];
  const n = source.queryIds.length;
  for (let q = 0; q < n && out.length < count; q++) {
    const own = firstRelevant(q);
    if (own === undefined) continue;
    const sentences = [own];
    for (let k = 1; k < n && sentences.length < perQuery; k++) {
      const other = firstRelevant((q + k) % n);
      if (other !== undefined && !sentences.includes(other)) sentences.push(other);
    }
    out.push({ source_sentence: source.queryTexts[q]!, sentences });
  }
  return out;
}

/**
 * A YAML scalar: plain when it is safe as one, else double-quoted. JSON string syntax is YAML's double-quoted
 * scalar syntax (escapes included), so any text (newlines, quotes, colons, "#") round-trips.
 */
export function yamlScalar(s: string): string {
  return /^[A-Za-z_][\w .@/-]*$/.test(s) && !/\s$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s)
    ? s
    : JSON.stringify(s);
}

/** The widget as YAML lines of the front matter (empty when there is no example). */
export function widgetYaml(examples: readonly WidgetExample[]): string[] {
  if (examples.length === 0) return [];
  const lines = ["widget:"];
  for (const e of examples) {
    lines.push(`- source_sentence: ${JSON.stringify(e.source_sentence)}`, "  sentences:");
    for (const s of e.sentences) lines.push(`  - ${JSON.stringify(s)}`);
  }
  return lines;
}

/**
 * The head of one model-index result in a card's front matter: an information-retrieval task on the `dim_<d>`
 * "dataset" (sentence-transformers' card template), up to its `metrics:` key. Both cards write it.
 */
export function modelIndexTaskLines(dim: number): string[] {
  return [
    "  - task:",
    "      type: information-retrieval",
    "      name: Information Retrieval",
    "    dataset:",
    `      name: dim ${dim}`,
    `      type: dim_${dim}`,
    "    metrics:",
  ];
}

/** A metric by its sentence-transformers key, with or without the trainer's `eval_` prefix. */
export function metricValue(m: Record<string, number>, key: string): number | undefined {
  return m[key] ?? m[`eval_${key}`];
}
