// Before/after comparison of two evaluations, per Matryoshka dim (recipe step 5): baseline, fine-tuned, change,
// and retention = the dim's score as a share of the same model's full-dim score.
import { metricKey, type ScoreFunctionName } from "./metric-names.ts";
import { formatFixedTable } from "./report.ts";

export interface ComparisonRow {
  dim: number;
  baseline: number;
  finetuned: number;
  /** Relative change in percent: (finetuned − baseline) / baseline × 100. */
  changePct: number;
  /** finetuned(dim) / finetuned(largest dim) × 100. */
  retentionPct: number;
}

export interface Comparison {
  metric: string;
  rows: ComparisonRow[];
}

/** Dims present in a metrics map (from keys dim_<d>_<score>_<metric>), largest first. */
export function dimsIn(metrics: Record<string, number>): number[] {
  const dims = new Set<number>();
  for (const k of Object.keys(metrics)) {
    const m = /^(?:eval_)?dim_(\d+)_/.exec(k);
    if (m) dims.add(Number(m[1]));
  }
  return [...dims].sort((a, b) => b - a);
}

function lookup(
  metrics: Record<string, number>,
  dim: number,
  score: ScoreFunctionName,
  metric: string,
): number | undefined {
  const key = metricKey(`dim_${dim}`, score, metric);
  return metrics[key] ?? metrics[`eval_${key}`];
}

/** Compares two metric maps (sentence-transformers keys, with or without the eval_ prefix). */
export function compareEvaluations(
  baseline: Record<string, number>,
  finetuned: Record<string, number>,
  options: { metric?: string; score?: ScoreFunctionName } = {},
): Comparison {
  const metric = options.metric ?? "ndcg@10";
  const score = options.score ?? "cosine";
  const dims = dimsIn(finetuned).filter((d) => lookup(baseline, d, score, metric) !== undefined);
  if (dims.length === 0) {
    throw new Error(
      `no dim has "${metric}" (${score}) in both evaluations; baseline dims: [${dimsIn(baseline).join(", ")}], fine-tuned dims: [${dimsIn(finetuned).join(", ")}]`,
    );
  }
  const top = lookup(finetuned, dims[0]!, score, metric)!;
  const rows = dims.map((dim) => {
    const b = lookup(baseline, dim, score, metric)!;
    const f = lookup(finetuned, dim, score, metric)!;
    return {
      dim,
      baseline: b,
      finetuned: f,
      changePct: b === 0 ? NaN : ((f - b) / b) * 100,
      retentionPct: top === 0 ? NaN : (f / top) * 100,
    };
  });
  return { metric, rows };
}

const pct = (v: number): string => (Number.isNaN(v) ? "n/a" : `${v >= 0 ? "+" : ""}${v.toFixed(1)}%`);

/** A fixed-width text table. */
export function formatComparison(c: Comparison): string {
  const header = ["dim", `baseline ${c.metric}`, `fine-tuned ${c.metric}`, "change", "retention"];
  const rows = c.rows.map((r) => [
    String(r.dim),
    r.baseline.toFixed(4),
    r.finetuned.toFixed(4),
    pct(r.changePct),
    Number.isNaN(r.retentionPct) ? "n/a" : `${r.retentionPct.toFixed(1)}%`,
  ]);
  return formatFixedTable(header, rows);
}

/** A Markdown table (for READMEs and model cards). */
export function formatComparisonMarkdown(c: Comparison): string {
  const lines = [
    `| dim | baseline ${c.metric} | fine-tuned ${c.metric} | change | retention |`,
    "|---:|---:|---:|---:|---:|",
  ];
  for (const r of c.rows) {
    lines.push(
      `| ${r.dim} | ${r.baseline.toFixed(4)} | ${r.finetuned.toFixed(4)} | ${pct(r.changePct)} | ${Number.isNaN(r.retentionPct) ? "n/a" : `${r.retentionPct.toFixed(1)}%`} |`,
    );
  }
  return lines.join("\n");
}
