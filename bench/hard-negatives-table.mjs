#!/usr/bin/env node
// The table of bench/hard-negatives.sh: nDCG@10 and MRR@10 per dim of runs (a) pairs only, (b) pairs + mined
// negatives, (c) GIST, read from OUT/{a,b,c}-eval.json, with the wall and CPU time of each step from GNU time's
// reports (OUT/<step>.time). Refuses (exit 1) when the runs were scored on different corpora: their numbers would
// not be comparable. With --validation, the short runs of the validation phase instead: OUT/val/eval-<run>.json,
// with times from OUT/val-mine-<run>.time and OUT/val-train-<run>.time.
// Usage: node bench/hard-negatives-table.mjs OUT [--runs a,b,c] [--validation]
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) {
  console.error("usage: node bench/hard-negatives-table.mjs OUT [--runs a,b,c] [--validation]");
  process.exit(2);
}
const validation = process.argv.includes("--validation");
const runsAt = process.argv.indexOf("--runs");
const runs = (runsAt > 0 ? process.argv[runsAt + 1] : validation ? "pairs,r0,w50,gist" : "a,b,c").split(",");
const labels = {
  a: "(a) pairs only",
  b: "(b) pairs + mined negatives",
  c: "(c) GIST, guide USE-lite",
  pairs: "pairs only",
  gist: "GIST, guide USE-lite",
};
const evalFile = (run) => (validation ? join(out, "val", `eval-${run}.json`) : join(out, `${run}-eval.json`));
const step = (run, what) => (validation ? `val-${what}-${run}` : `${run}-${what}`);

/** Wall and CPU seconds of one step from GNU `time -v`'s report; null when the step has no report. */
function times(step) {
  const file = join(out, `${step}.time`);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, "utf8");
  const field = (name) => {
    const line = text.split("\n").find((l) => l.trim().startsWith(name));
    if (!line) throw new Error(`${file}: no "${name}" line (not a GNU time -v report?)`);
    return line.slice(line.lastIndexOf(": ") + 2).trim();
  };
  const wall = field("Elapsed (wall clock) time")
    .split(":")
    .reduce((s, part) => s * 60 + Number(part), 0);
  const cpu = Number(field("User time (seconds)")) + Number(field("System time (seconds)"));
  return { wall, cpu };
}
const fmt = (t) => (t ? `${Math.round(t.wall)} s / ${Math.round(t.cpu)} s` : "–");

const results = runs.map((run) => {
  const file = evalFile(run);
  return { run, file, json: JSON.parse(readFileSync(file, "utf8")) };
});
const fingerprint = (r) => JSON.stringify(r.json.corpusFingerprint ?? null);
for (const r of results) {
  if (r.json.corpusFingerprint == null) {
    console.error(`${r.file}: no corpusFingerprint (written by an older ragtune?)`);
    process.exit(1);
  }
  if (fingerprint(r) !== fingerprint(results[0])) {
    console.error(
      `${r.file} was scored on a different corpus than ${results[0].file}: ` +
        `${fingerprint(r)} vs ${fingerprint(results[0])}`,
    );
    process.exit(1);
  }
}
const dims = results[0].json.dims;
const cell = (r, dim, metric) => r.json.metrics[`dim_${dim}_cosine_${metric}`].toFixed(4);
const lines = [
  `corpus: ${results[0].json.corpus} passages, ${results[0].json.queries} queries, ` +
    `fingerprint ${results[0].json.corpusFingerprint.sha256 ?? fingerprint(results[0])} (identical for all runs)`,
  "",
  `| run | ${dims.map((d) => `nDCG@10 ${d}`).join(" | ")} | ${dims.map((d) => `MRR@10 ${d}`).join(" | ")} | ` +
    "mining wall / CPU | training wall / CPU |",
  `|---|${dims.map(() => "---:").join("|")}|${dims.map(() => "---:").join("|")}|---:|---:|`,
];
for (const r of results) {
  lines.push(
    `| ${labels[r.run] ?? r.run} | ${dims.map((d) => cell(r, d, "ndcg@10")).join(" | ")} | ` +
      `${dims.map((d) => cell(r, d, "mrr@10")).join(" | ")} | ${fmt(times(step(r.run, "mine")))} | ` +
      `${fmt(times(step(r.run, "train")))} |`,
  );
}
console.log(lines.join("\n"));
