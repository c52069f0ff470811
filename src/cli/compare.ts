// `ragtune compare baseline.json finetuned.json`: the before/after table per Matryoshka dim.
import { readFileSync } from "node:fs";
import { compareEvaluations, formatComparison, formatComparisonMarkdown } from "../eval/compare.ts";
import { isPlainObject } from "../util/index.ts";
import { UsageError, type Command } from "./args.ts";

/** Reads the metrics of an evaluation JSON: `ragtune eval --json` output, eval_results.json, or a flat map. */
export function readMetricsFile(path: string): Record<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (!isPlainObject(json)) throw new Error(`${path}: expected a JSON object of metrics`);
  const metrics = isPlainObject(json.metrics) ? json.metrics : json;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) if (typeof v === "number") out[k] = v;
  if (Object.keys(out).length === 0) throw new Error(`${path}: no numeric metrics found`);
  return out;
}

export const compareCommand: Command = {
  name: "compare",
  summary: "before/after table per Matryoshka dim: baseline, fine-tuned, change %, retention",
  usage: "ragtune compare baseline.json finetuned.json [--metric ndcg@10] [--markdown]",
  options: {
    metric: {
      type: "string",
      arg: "M",
      help: "metric suffix, e.g. ndcg@10, mrr@10, recall@10",
      default: "ndcg@10",
    },
    score: { type: "string", arg: "FN", help: "cosine or dot", default: "cosine" },
    markdown: { type: "boolean", help: "print a Markdown table" },
  },
  async run(values, positionals) {
    if (positionals.length !== 2) throw new UsageError("expected two files: baseline.json finetuned.json");
    const score = values.score as string;
    if (score !== "cosine" && score !== "dot")
      throw new UsageError(`--score must be cosine or dot, got "${score}"`);
    const c = compareEvaluations(readMetricsFile(positionals[0]!), readMetricsFile(positionals[1]!), {
      metric: values.metric as string,
      score,
    });
    process.stdout.write((values.markdown ? formatComparisonMarkdown(c) : formatComparison(c)) + "\n");
  },
};
