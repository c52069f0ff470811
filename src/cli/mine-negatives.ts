// `ragtune mine-negatives`: adds hard negatives to a pair file (sentence-transformers' mine_hard_negatives), for
// `ragtune train` to read as negative_1 … negative_n columns.
import { createReadStream } from "node:fs";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { openRows, readPairs, type ColumnMapping } from "../data/index.ts";
import { mineHardNegatives, SAMPLING_STRATEGIES, type SamplingStrategy } from "../eval/mine-negatives.ts";
import {
  buildMiningReport,
  formatMiningReport,
  MINING_OUTPUT_FORMATS,
  minedRows,
  writeJsonlRows,
  type MiningOutputFormat,
} from "../eval/mine-negatives-output.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { writeJsonAtomic } from "../util/index.ts";
import { DEVICE_OPTIONS, deviceOptions } from "./model-commands.ts";
import { numberOption, required, UsageError, type Command } from "./args.ts";

/**
 * Reads extra candidate passages: a .txt file holds one passage per line (blank lines skipped); any data file
 * ragtune reads (.jsonl, .json, .csv, .tsv, .parquet) gives the values of `column` (default: `text`, else
 * `positive`, whichever the first row has).
 */
export async function readCorpusFile(path: string, column?: string): Promise<string[]> {
  const out: string[] = [];
  if (extname(path).toLowerCase() === ".txt") {
    const lines = createInterface({
      input: createReadStream(path, { encoding: "utf8" }),
      crlfDelay: Infinity,
    });
    for await (const line of lines) if (line.trim() !== "") out.push(line);
    return out;
  }
  const opened = await openRows(path, column ? { columns: [column] } : {});
  let col = column;
  for await (const { row, line } of opened.rows) {
    col ??= Object.hasOwn(row, "text") ? "text" : Object.hasOwn(row, "positive") ? "positive" : undefined;
    const where = opened.unit === "line" ? `${path}:${line}` : `${path}:row ${line}`;
    if (col === undefined)
      throw new Error(
        `${where}: no "text" or "positive" column (columns: ${Object.keys(row).join(", ")}); pass --corpus-column`,
      );
    const value = row[col];
    if (typeof value !== "string")
      throw new Error(`${where}: column "${col}" must be a string, found ${typeof value}`);
    out.push(value);
  }
  return out;
}

/** The prompt of one side (SentenceTransformer.sidePrompt: text, then name, then the model's own prompts). */
export function resolveSidePrompt(
  model: Pick<SentenceTransformer, "sidePrompt">,
  side: "query" | "corpus",
  text: string | undefined,
  name: string | undefined,
): string {
  return model.sidePrompt(side === "query" ? "query" : "document", {
    ...(text !== undefined ? { prompt: text } : {}),
    ...(name !== undefined ? { promptName: name } : {}),
  });
}

const optionalNumber = (
  values: Record<string, unknown>,
  name: string,
  check: { min?: number; max?: number } = {},
) => (values[name] === undefined ? undefined : numberOption(values, name, 0, check));

export const mineNegativesCommand: Command = {
  name: "mine-negatives",
  summary:
    "add hard negatives to (anchor, positive) pairs with a model (sentence-transformers' mine_hard_negatives)",
  usage:
    "ragtune mine-negatives --model M --pairs train.jsonl --out train-hn.jsonl [--corpus passages.txt] " +
    "[--num-negatives 3] [--range-min 0] [--range-max N] [--relative-margin 0.05] [--sampling-strategy top]",
  options: {
    model: { type: "string", arg: "M", help: "model folder, hub id, or use-lite" },
    pairs: { type: "string", arg: "FILE", help: "pair file (anchor, positive[, id]) to add negatives to" },
    out: { type: "string", arg: "FILE", help: "where to write the mined rows (JSON Lines)" },
    corpus: {
      type: "string",
      arg: "FILE",
      help: "extra candidate passages: .txt (one per line) or a data file (see --corpus-column)",
    },
    "corpus-column": {
      type: "string",
      arg: "COL",
      help: "column of --corpus holding the passages (default: text, else positive)",
    },
    "anchor-column": { type: "string", arg: "COL", help: "anchor column of --pairs", default: "anchor" },
    "positive-column": {
      type: "string",
      arg: "COL",
      help: "positive column of --pairs",
      default: "positive",
    },
    "id-column": {
      type: "string",
      arg: "COL",
      help: "id column of --pairs (default: id when present, else the row index)",
    },
    "num-negatives": { type: "string", arg: "N", help: "negatives per anchor", default: "3" },
    "range-min": {
      type: "string",
      arg: "R",
      help: "skip the R best remaining candidates (ranks counted after positives and filters are removed)",
      default: "0",
    },
    "range-max": {
      type: "string",
      arg: "R",
      help: "consider remaining candidates up to rank R (default: range-min + num-negatives + the most positives of one anchor; with a margin or --max-score, 10 × num-negatives instead of num-negatives)",
    },
    "max-score": {
      type: "string",
      arg: "S",
      help: "drop candidates scoring above S (too similar: likely unlabeled positives)",
    },
    "min-score": { type: "string", arg: "S", help: "drop candidates scoring below S (too easy)" },
    "absolute-margin": {
      type: "string",
      arg: "M",
      help: "drop candidates with score + M > the positive's score (0: never closer than the positive)",
    },
    "relative-margin": {
      type: "string",
      arg: "M",
      help: "drop candidates with score > positive × (1 − M) (0.05: at most 95% as similar; NV-Retriever's choice)",
    },
    "sampling-strategy": {
      type: "string",
      arg: "S",
      help: "top: the best remaining candidates; random: a seeded draw from the rank window",
      default: "top",
    },
    "query-prompt": {
      type: "string",
      arg: "TEXT",
      help: 'prepended to the anchors (default: the model\'s "query" prompt, if any)',
    },
    "query-prompt-name": { type: "string", arg: "NAME", help: "one of the model's prompts for the anchors" },
    "corpus-prompt": {
      type: "string",
      arg: "TEXT",
      help: 'prepended to the passages (default: the model\'s "document"/"passage"/"corpus" prompt, if any)',
    },
    "corpus-prompt-name": {
      type: "string",
      arg: "NAME",
      help: "one of the model's prompts for the passages",
    },
    "output-format": {
      type: "string",
      arg: "F",
      help: "n-tuple (negative_1..n, what train reads), triplet (one row per negative), labeled-pair (anchor, passage, label)",
      default: "n-tuple",
    },
    "include-scores": {
      type: "boolean",
      help: "add a score column: [positive, negative_1, …] (labeled-pair: the pair's score)",
    },
    "batch-size": { type: "string", arg: "N", help: "texts per forward pass", default: "32" },
    "corpus-chunk-size": {
      type: "string",
      arg: "N",
      help: "passages scored per block (a block is 1,024 anchors × N float32 scores)",
      default: "16384",
    },
    "fill-random": {
      type: "boolean",
      help: "anchors with too few qualifying candidates get the rest drawn at random from the passages ranked below all retrieved ones (same filters), so no pair is dropped unless no passage of the corpus passes the filters (ragtune's extension)",
    },
    seed: {
      type: "string",
      arg: "N",
      help: "seed of --sampling-strategy random and --fill-random",
      default: "42",
    },
    report: { type: "string", arg: "FILE", help: "also write the report as JSON" },
    ...DEVICE_OPTIONS,
  },
  notes:
    "Semantics of sentence-transformers' mine_hard_negatives (v5): anchors and passages are embedded and L2-normalized,\n" +
    "so scores are cosine similarities; the corpus is the --corpus passages plus all positives, each distinct text\n" +
    "once. For every distinct anchor text the best range-max + (its most positives) passages are found by exact\n" +
    "search; its positives (the positives of every pair with that anchor text, and any passage identical to one) are\n" +
    "removed, then candidates by --absolute-margin, --relative-margin (against the anchor's lowest positive score),\n" +
    "--max-score and --min-score; the remaining ones ranked [range-min, range-max) are the window, from which\n" +
    "--num-negatives are taken. With n-tuple output, pairs whose anchor got fewer negatives are left out, as in\n" +
    "sentence-transformers (the report counts them), unless --fill-random completes them. Default output is n-tuple\n" +
    "(sentence-transformers defaults to triplet): one row per pair with its id, so the file keeps the pair file's shape.\n" +
    "Memory: the normalized embeddings, (anchors + passages) × dim × 4 bytes (7,000 × 512: 14 MB; 1M × 768: 3 GB),\n" +
    "plus one score block of 1,024 anchors × --corpus-chunk-size passages × 4 bytes (64 MiB by default) and the\n" +
    "anchors × (range-max + positives) candidates. The search is exact, so its time grows as anchors × passages × dim:\n" +
    "for millions of passages an approximate index is the better tool.",
  async run(values) {
    const modelId = required(values, "model");
    const pairsFile = required(values, "pairs");
    const outFile = required(values, "out");
    const format = values["output-format"] as MiningOutputFormat;
    if (!MINING_OUTPUT_FORMATS.includes(format))
      throw new UsageError(
        `--output-format must be one of ${MINING_OUTPUT_FORMATS.join(", ")}, got "${format}"`,
      );
    const strategy = values["sampling-strategy"] as SamplingStrategy;
    if (!SAMPLING_STRATEGIES.includes(strategy))
      throw new UsageError(`--sampling-strategy must be top or random, got "${strategy}"`);
    const numNegatives = numberOption(values, "num-negatives", 3, { integer: true, min: 1 });
    const rangeMin = numberOption(values, "range-min", 0, { integer: true, min: 0 });
    const rangeMax =
      values["range-max"] === undefined
        ? undefined
        : numberOption(values, "range-max", 0, { integer: true, min: rangeMin + 1 });
    const relativeMargin = optionalNumber(values, "relative-margin", { min: 0, max: 0.999999 });
    const absoluteMargin = optionalNumber(values, "absolute-margin");
    const maxScore = optionalNumber(values, "max-score");
    const minScore = optionalNumber(values, "min-score");
    for (const side of ["query", "corpus"])
      if (values[`${side}-prompt`] !== undefined && values[`${side}-prompt-name`] !== undefined)
        throw new UsageError(`give --${side}-prompt or --${side}-prompt-name, not both`);

    const customColumns =
      values["anchor-column"] !== "anchor" ||
      values["positive-column"] !== "positive" ||
      values["id-column"] !== undefined;
    const mapping: ColumnMapping | undefined = customColumns
      ? {
          anchor: String(values["anchor-column"]),
          positive: String(values["positive-column"]),
          ...(typeof values["id-column"] === "string" ? { id: values["id-column"] } : {}),
        }
      : undefined;
    const pairs = (await readPairs(pairsFile, mapping)).records;
    if (pairs.length === 0) throw new Error(`${pairsFile}: no pairs to mine negatives for`);
    const corpus =
      typeof values.corpus === "string"
        ? await readCorpusFile(values.corpus, values["corpus-column"] as string | undefined)
        : [];

    const model = await SentenceTransformer.load(modelId, deviceOptions(values));
    try {
      const queryPrompt = resolveSidePrompt(
        model,
        "query",
        values["query-prompt"] as string | undefined,
        values["query-prompt-name"] as string | undefined,
      );
      const corpusPrompt = resolveSidePrompt(
        model,
        "corpus",
        values["corpus-prompt"] as string | undefined,
        values["corpus-prompt-name"] as string | undefined,
      );
      const result = mineHardNegatives(model, {
        pairs,
        corpus,
        numNegatives,
        rangeMin,
        ...(rangeMax !== undefined ? { rangeMax } : {}),
        ...(maxScore !== undefined ? { maxScore } : {}),
        ...(minScore !== undefined ? { minScore } : {}),
        ...(absoluteMargin !== undefined ? { absoluteMargin } : {}),
        ...(relativeMargin !== undefined ? { relativeMargin } : {}),
        samplingStrategy: strategy,
        queryPrompt,
        corpusPrompt,
        batchSize: numberOption(values, "batch-size", 32, { integer: true, min: 1 }),
        corpusChunkSize: numberOption(values, "corpus-chunk-size", 16_384, { integer: true, min: 1 }),
        seed: numberOption(values, "seed", 42, { integer: true, min: 0 }),
        fillRandom: values["fill-random"] === true,
        progress: process.stderr.isTTY,
      });
      const written = writeJsonlRows(outFile, minedRows(result, format, values["include-scores"] === true));
      const report = buildMiningReport(result, format, written);
      process.stderr.write(formatMiningReport(report) + "\n");
      process.stderr.write(
        `encode ${result.seconds.encode.toFixed(1)} s, search ${result.seconds.search.toFixed(1)} s → ${outFile}\n`,
      );
      if (typeof values.report === "string")
        writeJsonAtomic(values.report, {
          files: { model: modelId, pairs: pairsFile, corpus: values.corpus ?? null, out: outFile },
          ...report,
        });
      if (written === 0)
        throw new Error(`no ${format} rows could be made: loosen the filters (see the report above)`);
    } finally {
      model.dispose();
    }
  },
};
