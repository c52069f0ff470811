// `ragtune compare baseline.json finetuned.json`: the before/after table per Matryoshka dim.
import { readFileSync } from "node:fs";
import { compareEvaluations, formatComparison, formatComparisonMarkdown } from "../eval/compare.ts";
import { corpusMismatch, readCorpusFingerprint, type CorpusFingerprint } from "../eval/corpus-fingerprint.ts";
import { isPlainObject } from "../util/index.ts";
import { UsageError, type Command } from "./args.ts";

/** Reads the metrics of an evaluation JSON: `ragtune eval --json` output, eval_results.json, or a flat map. */
export function readMetricsFile(path: string): Record<string, number> {
  return readResultsFile(path).metrics;
}

/** The metrics of a results file and the corpus it was scored on (null for files without one). */
export function readResultsFile(path: string): {
  metrics: Record<string, number>;
  corpus: CorpusFingerprint | null;
} {
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
  return { metrics: out, corpus: readCorpusFingerprint(json, path) };
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
    force: {
      type: "boolean",
      help: "compare results scored on different corpora anyway (with a warning); without it compare refuses",
    },
  },
  notes:
    "Results record the corpus they were scored on (size and a sha256 of its texts). Results of different corpora\n" +
    "are not comparable (a smaller corpus has fewer distractors and scores higher): compare exits 1 naming both,\n" +
    "unless --force. Files without the record (written by older versions) are compared with a warning.",
  async run(values, positionals) {
    if (positionals.length !== 2) throw new UsageError("expected two files: baseline.json finetuned.json");
    const score = values.score as string;
    if (score !== "cosine" && score !== "dot")
      throw new UsageError(`--score must be cosine or dot, got "${score}"`);
    const [a, b] = [readResultsFile(positionals[0]!), readResultsFile(positionals[1]!)];
    if (a.corpus && b.corpus) {
      const mismatch = corpusMismatch(
        { file: positionals[0]!, corpus: a.corpus },
        { file: positionals[1]!, corpus: b.corpus },
      );
      if (mismatch && !values.force) throw new Error(`${mismatch} (or pass --force)`);
      if (mismatch) process.stderr.write(`WARNING: ${mismatch}\n`);
    } else {
      const without = positionals.filter((_, i) => !(i === 0 ? a : b).corpus);
      process.stderr.write(
        `warning: ${without.join(" and ")} record${without.length === 1 ? "s" : ""} no corpus fingerprint: ` +
          `cannot check that both were scored on the same corpus\n`,
      );
    }
    const c = compareEvaluations(a.metrics, b.metrics, {
      metric: values.metric as string,
      score,
    });
    process.stdout.write((values.markdown ? formatComparisonMarkdown(c) : formatComparison(c)) + "\n");
  },
};
