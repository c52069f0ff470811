// `ragtune prepare`: the user's pairs → train.jsonl + test.jsonl with a validation report (recipe step 1).
import { join } from "node:path";
import { DATA_FORMATS, prepareDataset, type DataFormat } from "../data/index.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { writeJsonAtomic } from "../util/index.ts";
import { numberOption, required, UsageError, type Command } from "./args.ts";

export const prepareCommand: Command = {
  name: "prepare",
  summary: "turn (query, passage) pairs into train.jsonl / test.jsonl with a validation report",
  usage:
    "ragtune prepare <file> [<file> ...] --anchor COL --positive COL [--negative COL ...] [--id COL] [--test-size 0.1] [--seed 42] --out DIR",
  options: {
    anchor: { type: "string", arg: "COL", help: "column holding the query / anchor text", default: "anchor" },
    positive: {
      type: "string",
      arg: "COL",
      help: "column holding the relevant passage",
      default: "positive",
    },
    negative: { type: "string", arg: "COL", multiple: true, help: "hard-negative column (repeatable)" },
    id: { type: "string", arg: "COL", help: "id column (default: the row index)" },
    format: {
      type: "string",
      arg: "FMT",
      help: `input format: ${DATA_FORMATS.join(", ")} (default: from the extension)`,
    },
    "test-size": { type: "string", arg: "F", help: "fraction (0–1) or number of test rows", default: "0.1" },
    seed: { type: "string", arg: "N", help: "seed of the split", default: "42" },
    "drop-invalid": {
      type: "boolean",
      help: "drop rows whose anchor or positive is empty (default: keep and report)",
    },
    model: {
      type: "string",
      arg: "M",
      help: "count tokens with this model's tokenizer and report texts over its max_seq_length",
    },
    "max-seq-length": {
      type: "string",
      arg: "N",
      help: "with --model: the limit to report against (default: the model's)",
    },
    out: { type: "string", arg: "DIR", help: "output folder (train.jsonl, test.jsonl, report.json)" },
  },
  notes:
    "Reads JSON arrays, JSON Lines, CSV/TSV and Parquet. Nothing is dropped silently: empty texts, duplicate pairs and\n" +
    "shared passages are reported with file:line; --drop-invalid drops empty texts. The split is reproducible from --seed.",
  async run(values, positionals) {
    if (positionals.length === 0) throw new UsageError("missing input file(s)");
    const outDir = required(values, "out");
    const format = values.format as string | undefined;
    if (format !== undefined && !(DATA_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--format must be one of ${DATA_FORMATS.join(", ")}, got "${format}"`);
    }
    const testSizeRaw = numberOption(values, "test-size", 0.1, { min: 0 });
    let tokens: { countTokens?: (text: string) => number; maxSeqLength?: number } = {};
    if (typeof values.model === "string") {
      const { tokenizer, maxSeqLength } = await SentenceTransformer.loadTokenizer(values.model);
      const limit = numberOption(values, "max-seq-length", maxSeqLength ?? 512, { integer: true, min: 1 });
      tokens = { countTokens: (t) => tokenizer.countTokens(t), maxSeqLength: limit };
    } else if (values["max-seq-length"] !== undefined) {
      throw new UsageError("--max-seq-length needs --model (its tokenizer counts the tokens)");
    }
    const result = await prepareDataset({
      input: positionals,
      format: format as DataFormat | undefined,
      columns: {
        anchor: values.anchor as string,
        positive: values.positive as string,
        ...(values.negative ? { negatives: values.negative as string[] } : {}),
        ...(values.id ? { id: values.id as string } : {}),
      },
      testSize: testSizeRaw,
      seed: numberOption(values, "seed", 42, { integer: true, min: 0 }),
      dropInvalid: Boolean(values["drop-invalid"]),
      ...tokens,
      outDir,
    });
    writeJsonAtomic(join(outDir, "report.json"), result.report);
    process.stderr.write(result.report.format() + "\n");
    process.stderr.write(
      `wrote ${result.trainPath} (${result.train} rows), ${result.testPath} (${result.test} rows)\n`,
    );
  },
};
