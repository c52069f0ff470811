// Tables of IR metrics for people: one row per Matryoshka dim, the recipe's metrics as columns.
import { matryoshkaEvaluatorName, metricKey, type ScoreFunctionName } from "./metric-names.ts";

const COLUMNS: Array<[string, string]> = [
  ["ndcg@10", "nDCG@10"],
  ["mrr@10", "MRR@10"],
  ["map@100", "MAP@100"],
  ["accuracy@1", "acc@1"],
  ["accuracy@3", "acc@3"],
  ["accuracy@5", "acc@5"],
  ["accuracy@10", "acc@10"],
  ["recall@10", "recall@10"],
];

/** A fixed-width table: dims × (nDCG@10, MRR@10, MAP@100, accuracy@k, recall@10). */
export function formatMetricsTable(
  metrics: Record<string, number>,
  dims: readonly number[],
  score: ScoreFunctionName = "cosine",
): string {
  const header = ["dim", ...COLUMNS.map(([, label]) => label)];
  const rows = dims.map((d) => [
    String(d),
    ...COLUMNS.map(([suffix]) => {
      const v = metrics[metricKey(matryoshkaEvaluatorName(d), score, suffix)];
      return v === undefined ? "—" : v.toFixed(4);
    }),
  ]);
  return formatFixedTable(header, rows);
}

/** A right-aligned fixed-width text table: header, a dashed rule, then the rows. */
export function formatFixedTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
