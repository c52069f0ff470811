// The plots of the HTML report, as Vega-Lite specs rendered to SVG strings at build time.
//
// Why Vega-Lite (with Vega as its renderer): it is maintained (UW IDL, used by Altair/Jupyter), declarative
// (a plot is a small JSON spec, so each chart here is data + encoding and nothing hand-drawn), and Vega renders
// headless in Node to an SVG string without a DOM or a browser (`View.toSVG()` with renderer "none"), so the
// report embeds plain inline SVG: no script, no CDN, nothing fetched when it is opened offline.
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { dimsOf, type QuantizedResults, type RunData } from "./report-run.ts";

/** The float metrics shown per dim: key suffix and label. */
export const REPORT_METRICS: ReadonlyArray<readonly [string, string]> = [
  ["ndcg@10", "nDCG@10"],
  ["mrr@10", "MRR@10"],
  ["recall@10", "recall@10"],
];

/** Renders a Vega-Lite spec to an SVG string (no DOM; the text is escaped by Vega's SVG writer). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile(spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const base = { width: 420, height: 220, background: "white" } as const;

/** Training loss per step; one line per run. null when no run logged a loss. */
export function lossSpec(runs: readonly RunData[], key: "loss" | "learning_rate"): TopLevelSpec | null {
  const values: Array<{ run: string; step: number; value: number }> = [];
  for (const r of runs)
    for (const e of r.log)
      if (typeof e[key] === "number" && typeof e.step === "number" && Number.isFinite(e[key]))
        values.push({ run: r.name, step: e.step, value: e[key] });
  if (values.length === 0) return null;
  const label = key === "loss" ? "training loss" : "learning rate";
  return {
    ...base,
    data: { values },
    mark: { type: "line", point: values.length <= 60 },
    encoding: {
      x: { field: "step", type: "quantitative", title: "optimizer step" },
      y: {
        field: "value",
        type: "quantitative",
        title: label,
        ...(key === "learning_rate" ? { axis: { format: ".1e" } } : {}),
      },
      color: { field: "run", type: "nominal", title: "run" },
    },
  };
}

/** Stage label of an evaluation in the log: "epoch 1 (step 52)". */
function stageOf(e: Record<string, unknown>): string {
  const epoch = typeof e.epoch === "number" ? Number(e.epoch.toFixed(2)) : "?";
  return `epoch ${epoch} (step ${String(e.step ?? "?")})`;
}

/** Rows {stage, dim, metric, value}: baseline, every evaluation in the log, final. */
export function stageMetrics(
  run: RunData,
  score = "cosine",
): Array<{ stage: string; order: number; dim: number; metric: string; value: number }> {
  const out: Array<{ stage: string; order: number; dim: number; metric: string; value: number }> = [];
  const evals = run.log.filter((e) => Object.keys(e).some((k) => k.startsWith("eval_dim_")));
  const seen: Record<string, number> = { ...run.baseline, ...run.final };
  for (const e of evals)
    for (const [k, v] of Object.entries(e))
      if (typeof v === "number" && k.startsWith("eval_")) seen[k.slice(5)] = v;
  const dims = dimsOf(seen);
  const add = (stage: string, order: number, metrics: Readonly<Record<string, unknown>>, prefix: string) => {
    for (const dim of dims) {
      for (const [suffix, label] of REPORT_METRICS) {
        const v = metrics[`${prefix}dim_${dim}_${score}_${suffix}`];
        if (typeof v === "number") out.push({ stage, order, dim, metric: label, value: v });
      }
    }
  };
  if (run.baseline) add("baseline", 0, run.baseline, "");
  let i = 1;
  for (const e of evals) add(stageOf(e), i++, e, "eval_");
  if (run.final) add("final", i, run.final, "");
  return out;
}

/** nDCG@10 / MRR@10 / recall@10 per dim, baseline vs each evaluation vs final, for one run. */
export function metricsByDimSpec(run: RunData): TopLevelSpec | null {
  const values = stageMetrics(run);
  if (values.length === 0) return null;
  return {
    data: { values },
    background: "white",
    facet: {
      column: { field: "metric", type: "nominal", title: null, sort: REPORT_METRICS.map(([, l]) => l) },
    },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 220,
      height: 200,
      mark: "bar",
      encoding: {
        x: { field: "dim", type: "ordinal", title: "dim", sort: "descending" },
        xOffset: { field: "stage", type: "nominal", sort: { field: "order" } },
        y: { field: "value", type: "quantitative", title: null },
        color: { field: "stage", type: "nominal", sort: { field: "order" }, title: "model" },
        tooltip: [{ field: "stage" }, { field: "dim" }, { field: "value", format: ".4f" }],
      },
    },
  };
}

/** nDCG@10 at each dim as a share of nDCG@10 at the largest dim, baseline and final, for every run. */
export function retentionSpec(runs: readonly RunData[]): TopLevelSpec | null {
  const values: Array<{ series: string; dim: number; retention: number }> = [];
  for (const r of runs) {
    for (const [stage, m] of [
      ["baseline", r.baseline],
      ["final", r.final],
    ] as const) {
      if (!m) continue;
      const dims = dimsOf(m);
      const top = m[`dim_${dims[0]}_cosine_ndcg@10`];
      if (!top) continue;
      for (const d of dims) {
        const v = m[`dim_${d}_cosine_ndcg@10`];
        if (typeof v === "number")
          values.push({
            series: runs.length > 1 ? `${r.name}: ${stage}` : stage,
            dim: d,
            retention: v / top,
          });
      }
    }
  }
  if (values.length === 0) return null;
  return {
    ...base,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "dim",
        type: "quantitative",
        scale: { type: "log", base: 2 },
        title: "embedding dim (log scale)",
      },
      y: {
        field: "retention",
        type: "quantitative",
        axis: { format: "%" },
        title: "nDCG@10 vs the largest dim",
      },
      color: { field: "series", type: "nominal", title: null },
    },
  };
}

/** nDCG@10 of a quantized-results row (cosine, else dot). */
export function rowNdcg(q: QuantizedResults, name: string, suffix = "ndcg@10"): number | undefined {
  return q.metrics[`${name}_cosine_${suffix}`] ?? q.metrics[`${name}_dot_${suffix}`];
}

/**
 * nDCG@10 against bytes per vector for every (dim, precision[, rescore]) of one run's quantized results: the
 * saved model solid, the base model (when baseline_quantized_results.json exists) dashed.
 */
export function precisionSpec(run: RunData): TopLevelSpec | null {
  const values: Array<{ series: string; model: string; dim: number; bytes: number; ndcg: number }> = [];
  for (const [model, q] of [
    ["base model", run.quantizedBaseline],
    ["fine-tuned", run.quantized],
  ] as const) {
    if (!q) continue;
    for (const r of q.rows) {
      const ndcg = rowNdcg(q, r.name);
      if (ndcg === undefined) continue;
      const series = r.rescore === null ? r.precision : `${r.precision} +rescore×${r.rescore}`;
      values.push({ series, model, dim: r.dim, bytes: r.bytesPerVector, ndcg });
    }
  }
  if (values.length === 0) return null;
  return {
    ...base,
    data: { values },
    layer: [
      {
        mark: { type: "line", point: true },
        encoding: {
          strokeDash: { field: "model", type: "nominal", title: "model", sort: ["fine-tuned", "base model"] },
        },
      },
      { mark: { type: "text", dy: -8, fontSize: 9 }, encoding: { text: { field: "dim" } } },
    ],
    encoding: {
      x: {
        field: "bytes",
        type: "quantitative",
        scale: { type: "log", base: 2 },
        title: "bytes per vector (log scale)",
      },
      y: { field: "ndcg", type: "quantitative", title: "nDCG@10" },
      color: { field: "series", type: "nominal", title: "precision" },
      detail: { field: "model" },
    },
  };
}
