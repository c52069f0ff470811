// `ragtune report RUN_DIR [RUN_DIR …] [--out report.html]`: one self-contained offline HTML file with the
// run's config, training curves, metrics per dim, retention and the dim × precision table; several runs side
// by side. The work is in src/export/report-*.ts.
import { buildReportHtml } from "../export/report-html.ts";
import { loadRun, runFolderOf } from "../export/report-run.ts";
import { writeFileAtomic } from "../util/index.ts";
import { UsageError, type Command } from "./args.ts";

export const reportCommand: Command = {
  name: "report",
  summary: "an offline HTML report of training runs (curves, metrics per dim, dim × precision), side by side",
  usage: "ragtune report RUN_DIR [RUN_DIR …] [--out report.html] [--title TEXT]",
  options: {
    out: {
      type: "string",
      arg: "FILE",
      help: "output file",
      doc: "RUN_DIR/report.html for one run, report.html for several",
    },
    title: { type: "string", arg: "TEXT", help: "page title" },
  },
  notes:
    "A run folder is what `ragtune train --out` writes: training_args.json and trainer_state.json (top level or the\n" +
    "newest checkpoint-N/), training_log.jsonl, baseline_results.json, eval_results.json. The dim × precision\n" +
    "section reads RUN_DIR/quantized_results.json (and RUN_DIR/baseline_quantized_results.json for the base model),\n" +
    "written by\n" +
    "  ragtune eval --model RUN_DIR/final --precision float32,int8,binary --rescore 4 --json RUN_DIR/quantized_results.json …\n" +
    "The per-query examples read RUN_DIR/per_query.jsonl and RUN_DIR/baseline_per_query.jsonl (ragtune eval --per-query).\n" +
    "The file has no scripts and loads nothing: plots are inline SVG rendered with Vega-Lite at build time.\n" +
    "Given a run's final model folder (RUN_DIR/final), the report is of its run (RUN_DIR), written there.",
  async run(values, positionals) {
    if (positionals.length === 0) throw new UsageError("give at least one RUN_DIR");
    const dirs = positionals.map(runFolderOf); // RUN_DIR/final → RUN_DIR: nothing is written into a model folder
    const runs = dirs.map((dir) => loadRun(dir));
    const names = new Set(runs.map((r) => r.name));
    if (names.size !== runs.length) {
      // Same folder names (e.g. a/out and b/out): label runs by their path instead.
      for (const r of runs) r.name = r.dir;
    }
    const out =
      typeof values.out === "string"
        ? values.out
        : runs.length === 1
          ? `${dirs[0]}/report.html`
          : "report.html";
    const html = await buildReportHtml(runs, typeof values.title === "string" ? { title: values.title } : {});
    writeFileAtomic(out, html);
    process.stdout.write(`${out}\n`);
  },
};
