// The HTML report of one or more training runs: ONE self-contained file that works offline — inline CSS,
// inline SVG plots rendered at build time (report-plots.ts), no script, no font, nothing fetched; a Content-
// Security-Policy of `default-src 'none'` makes the browser enforce that. Every string taken from a run (names,
// config values, metric keys, paths) is HTML-escaped: run folders hold user data.
import { formatDuration } from "../util/index.ts";
import {
  lossSpec,
  metricsByDimSpec,
  precisionSpec,
  renderSvg,
  REPORT_METRICS,
  retentionSpec,
  rowNdcg,
} from "./report-plots.ts";
import { dimsOf, loadRun, type RunData } from "./report-run.ts";
import { writeFileAtomic } from "../util/index.ts";
import { join } from "node:path";

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (v: number | undefined, digits = 4): string => (v === undefined ? "—" : v.toFixed(digits));

function valueText(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, numericFrom = 1): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const tr = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="num"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`,
    )
    .join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const note = (text: string): string => `<p class="note">${escapeHtml(text)}</p>`;
const figure = (svg: string, caption: string): string =>
  `<figure>${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;

/** Config and run facts of one run: trainer state summary, training arguments, files read. */
function configSection(r: RunData): string {
  const s = r.trainerState ?? {};
  const facts: Array<[string, string]> = [];
  for (const k of [
    "global_step",
    "epoch",
    "max_steps",
    "num_train_epochs",
    "train_batch_size",
    "best_metric",
  ])
    if (k in s) facts.push([k, valueText(s[k])]);
  if ("best_model_checkpoint" in s) facts.push(["best_model_checkpoint", valueText(s.best_model_checkpoint)]);
  const end = [...r.log].reverse().find((e) => typeof e.train_runtime === "number");
  if (end) {
    facts.push(["train_runtime", formatDuration(end.train_runtime as number)]);
    if (typeof end.train_loss === "number") facts.push(["train_loss (mean)", end.train_loss.toFixed(4)]);
  }
  const steps = r.log.filter((e) => typeof e.loss === "number").length;
  const evals = r.log.filter((e) => Object.keys(e).some((k) => k.startsWith("eval_dim_"))).length;
  facts.push(["logged steps / evaluations", `${steps} / ${evals}`]);
  const args = Object.entries(r.trainingArgs ?? {}).map(([k, v]) => [k, valueText(v)]);
  return [
    `<h3>${escapeHtml(r.name)}</h3>`,
    table(["run", "value"], facts, 2),
    args.length
      ? `<details><summary>training arguments (${args.length})</summary>${table(["argument", "value"], args, 2)}</details>`
      : note("no training_args.json"),
    `<p class="files">read: ${r.files.map((f) => `<code>${escapeHtml(f)}</code>`).join(", ")}</p>`,
  ].join("\n");
}

/** Baseline vs final per dim for the three report metrics, with the change. */
function metricsTable(r: RunData): string {
  const dims = dimsOf({ ...r.baseline, ...r.final });
  if (dims.length === 0)
    return note(`${r.name}: no baseline_results.json or eval_results.json with dim_… metrics`);
  const header = ["dim"];
  for (const [, label] of REPORT_METRICS) header.push(`${label} base`, `${label} final`, "Δ");
  const rows = dims.map((d) => {
    const row = [String(d)];
    for (const [suffix] of REPORT_METRICS) {
      const b = r.baseline?.[`dim_${d}_cosine_${suffix}`];
      const f = r.final?.[`dim_${d}_cosine_${suffix}`];
      row.push(
        fmt(b),
        fmt(f),
        b === undefined || f === undefined ? "—" : `${f - b >= 0 ? "+" : ""}${(f - b).toFixed(4)}`,
      );
    }
    return row;
  });
  return table(header, rows);
}

/** The dim × precision table of one run: the saved model, and the base model's nDCG@10 when measured. */
function precisionTable(r: RunData): string {
  const q = (r.quantized ?? r.quantizedBaseline)!;
  const b = r.quantized ? r.quantizedBaseline : null;
  const full = Math.max(...q.rows.map((x) => x.dim));
  const rows = q.rows.map((x) => {
    const ndcg = rowNdcg(q, x.name);
    const ref = rowNdcg(q, `dim_${x.dim}`);
    return [
      String(x.dim),
      x.rescore === null ? x.precision : `${x.precision} +rescore×${x.rescore}`,
      String(x.bytesPerVector),
      `${((4 * full) / x.bytesPerVector).toFixed(0)}×`,
      ...(b ? [fmt(rowNdcg(b, x.name))] : []),
      fmt(ndcg),
      fmt(rowNdcg(q, x.name, "mrr@10")),
      fmt(rowNdcg(q, x.name, "recall@10")),
      ndcg === undefined || !ref ? "—" : `${((100 * ndcg) / ref).toFixed(1)}%`,
    ];
  });
  const which = r.quantized ? "fine-tuned" : "base model";
  const header = [
    "dim",
    "precision",
    "bytes/vec",
    "smaller",
    ...(b ? ["nDCG@10 base"] : []),
    `nDCG@10 ${which}`,
    "MRR@10",
    "recall@10",
    "vs float32",
  ];
  const cal = q.calibration
    ? `int8/uint8 ranges from ${q.calibration.source} (${q.calibration.rows} embeddings)`
    : "";
  const rc = q.rescoreCorpus
    ? `; rescoring multiplies the float query with the ${q.rescoreCorpus} corpus vectors`
    : "";
  return table(header, rows, 2) + (cal || rc ? note(cal + rc) : "");
}

const clip = (s: string, n = 220): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function passages(list: ReadonlyArray<{ text: string; relevant: boolean; score: number }>): string {
  return `<ol>${list
    .map(
      (p) =>
        `<li class="${p.relevant ? "rel" : ""}">${p.relevant ? "✓ " : ""}${escapeHtml(clip(p.text))} ` +
        `<span class="score">${p.score.toFixed(3)}</span></li>`,
    )
    .join("")}</ol>`;
}

/**
 * The queries whose nDCG@10 gained and lost most between the base model (baseline_per_query.jsonl) and the
 * fine-tuned one (per_query.jsonl), each with its top-3 passages before and after (✓ = relevant).
 */
function perQuerySection(r: RunData, count = 5): string {
  const head = `<h3>${escapeHtml(r.name)}</h3>`;
  if (!r.perQuery || !r.perQueryBaseline)
    return (
      head +
      note(
        "not available: needs per_query.jsonl and baseline_per_query.jsonl in the run folder, written by " +
          "ragtune eval --per-query FILE for the fine-tuned and the base model (npm run demo writes both).",
      )
    );
  const before = new Map(r.perQueryBaseline.map((q) => [q.queryId, q]));
  const pairs = r.perQuery
    .filter((q) => before.has(q.queryId))
    .map((q) => ({
      after: q,
      before: before.get(q.queryId)!,
      delta: q["ndcg@10"] - before.get(q.queryId)!["ndcg@10"],
    }));
  const block = (title: string, list: typeof pairs) =>
    `<h4>${escapeHtml(title)}</h4>` +
    (list.length === 0
      ? note("none")
      : list
          .map(
            (p) =>
              `<div class="query"><p><b>${escapeHtml(p.after.query)}</b> — nDCG@10 ${p.before["ndcg@10"].toFixed(3)} → ` +
              `${p.after["ndcg@10"].toFixed(3)} (${p.delta >= 0 ? "+" : ""}${p.delta.toFixed(3)})</p>` +
              `<div class="runs"><div class="run"><i>before</i>${passages(p.before.top)}</div>` +
              `<div class="run"><i>after</i>${passages(p.after.top)}</div></div></div>`,
          )
          .join("\n"));
  const gained = pairs
    .filter((p) => p.delta > 0)
    .sort((a, b) => b.delta - a.delta)
    .slice(0, count);
  const lost = pairs
    .filter((p) => p.delta < 0)
    .sort((a, b) => a.delta - b.delta)
    .slice(0, count);
  const dim = r.perQuery[0]?.dim;
  const summary =
    `${pairs.length} queries at dim ${dim ?? "?"}: ${pairs.filter((p) => p.delta > 0).length} gained, ` +
    `${pairs.filter((p) => p.delta < 0).length} lost, ${pairs.filter((p) => p.delta === 0).length} unchanged`;
  return head + `<p>${escapeHtml(summary)}</p>` + block("gained most", gained) + block("lost most", lost);
}

/** Builds the report of `runs` (one run, or several side by side). */
export async function buildReportHtml(
  runs: readonly RunData[],
  opts: { title?: string; generatedAt?: Date } = {},
): Promise<string> {
  if (runs.length === 0) throw new Error("report: no runs");
  const title =
    opts.title ??
    (runs.length === 1
      ? `ragtune report: ${runs[0]!.name}`
      : `ragtune report: ${runs.map((r) => r.name).join(" vs ")}`);
  const svg = async (spec: Parameters<typeof renderSvg>[0] | null, caption: string, missing: string) =>
    spec ? figure(await renderSvg(spec), caption) : note(missing);
  const sideBySide = (parts: string[]) =>
    `<div class="runs">${parts.map((p) => `<div class="run">${p}</div>`).join("\n")}</div>`;

  const sections: string[] = [];
  sections.push(`<section><h2>Runs</h2>${sideBySide(runs.map(configSection))}</section>`);

  sections.push(
    `<section><h2>Training</h2><div class="runs">` +
      (await svg(
        lossSpec(runs, "loss"),
        "training loss (mean over each logging window)",
        "no training loss in the log",
      )) +
      (await svg(lossSpec(runs, "learning_rate"), "learning rate", "no learning rate in the log")) +
      `</div></section>`,
  );

  const perDim: string[] = [];
  for (const r of runs)
    perDim.push(
      `<h3>${escapeHtml(r.name)}</h3>` +
        (await svg(
          metricsByDimSpec(r),
          "baseline, each evaluation during training, and the saved model",
          "no evaluation metrics",
        )) +
        metricsTable(r),
    );
  sections.push(`<section><h2>Retrieval metrics per Matryoshka dim</h2>${sideBySide(perDim)}</section>`);

  sections.push(
    `<section><h2>Retention vs dim</h2>` +
      (await svg(
        retentionSpec(runs),
        "nDCG@10 at each dim relative to the largest dim",
        "no per-dim nDCG@10 to compare",
      )) +
      `</section>`,
  );

  const prec: string[] = [];
  for (const r of runs) {
    if (!r.quantized && !r.quantizedBaseline) {
      prec.push(
        `<h3>${escapeHtml(r.name)}</h3>` +
          note(
            "no quantized_results.json in this run; write one with " +
              `ragtune eval --model ${r.dir} --precision float32,int8,binary --rescore 4 --json ${r.dir}/quantized_results.json …`,
          ),
      );
      continue;
    }
    prec.push(
      `<h3>${escapeHtml(r.name)}</h3>` +
        (await svg(
          precisionSpec(r),
          "nDCG@10 against storage per vector; labels are dims",
          "no nDCG@10 in the quantized results",
        )) +
        precisionTable(r),
    );
  }
  sections.push(`<section><h2>Dim × precision</h2>${sideBySide(prec)}</section>`);

  sections.push(
    `<section><h2>Per-query examples</h2>${sideBySide(runs.map((r) => perQuerySection(r)))}</section>`,
  );

  const generated = (opts.generatedAt ?? new Date()).toISOString();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: .8rem 0 .4rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0; }
th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.runs { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.run { min-width: 0; overflow-x: auto; }
figure { margin: .4rem 0; } figcaption { font-size: .8rem; color: #555; }
.note { color: #666; font-style: italic; } .files { font-size: .75rem; color: #666; word-break: break-all; }
code { font-size: .8em; }
.query { border-left: 3px solid #ddd; padding-left: .6rem; margin: .6rem 0; font-size: .85rem; }
.query ol { margin: .2rem 0; padding-left: 1.2rem; max-width: 600px; } li.rel { color: #1a6b1a; }
.score { color: #888; font-size: .75rem; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="files">generated ${escapeHtml(generated)} by ragtune report from ${runs.map((r) => `<code>${escapeHtml(r.dir)}</code>`).join(", ")}</p>
${sections.join("\n")}
</body>
</html>
`;
}

/**
 * Writes `<dir>/report.html` (or `out`) for the run folder `dir` and returns its path: what `ragtune train`
 * calls at the end of a run, and `ragtune report` for one run.
 */
export async function writeRunReport(dir: string, out: string = join(dir, "report.html")): Promise<string> {
  writeFileAtomic(out, await buildReportHtml([loadRun(dir)]));
  return out;
}
