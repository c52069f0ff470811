// `ragtune encode` and `ragtune create-model`: embed texts with a model; make small random models for tests and
// offline demos.
import { readFileSync } from "node:fs";
import { BertConfig } from "../models/bert.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { POOLING_MODES, type PoolingMode } from "../models/st-folder.ts";
import { HfTokenizer } from "../tokenize/index.ts";
import { isDType, type DType, type Device } from "../engine/index.ts";
import { numberOption, onOffOption, required, UsageError, type Command } from "./args.ts";

/** --device / --dtype flags shared by the model-loading commands. */
export const DEVICE_OPTIONS = {
  device: { type: "string", arg: "DEV", help: "cpu, cuda or cuda:N (default: cuda when available)" },
  dtype: { type: "string", arg: "T", help: "parameter dtype: float32, bfloat16, float16 (default float32)" },
} as const;

/** --packing, shared by the commands that run the model. */
export const PACKING_OPTION = {
  packing: {
    type: "string",
    arg: "on|off",
    help: "padding-free (packed) forward passes (default on); off runs the padded reference path",
  },
} as const;

/** Applies --packing to a loaded model. */
export function applyPacking(model: SentenceTransformer, values: Record<string, unknown>): void {
  model.packing = onOffOption(values, "packing", true);
}

export function deviceOptions(values: Record<string, unknown>): { device?: Device; dtype?: DType } {
  const out: { device?: Device; dtype?: DType } = {};
  if (typeof values.device === "string") {
    if (!/^(cpu|cuda(:\d+)?)$/.test(values.device))
      throw new UsageError(`--device must be cpu, cuda or cuda:N, got "${values.device}"`);
    out.device = values.device as Device;
  }
  if (typeof values.dtype === "string") {
    if (!isDType(values.dtype) || !["float32", "bfloat16", "float16", "float64"].includes(values.dtype)) {
      throw new UsageError(`--dtype must be float32, bfloat16, float16 or float64, got "${values.dtype}"`);
    }
    out.dtype = values.dtype;
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const encodeCommand: Command = {
  name: "encode",
  summary: "embed texts (one per line on stdin) → one JSON array per line on stdout",
  usage:
    "ragtune encode --model M [--dim D] [--prompt-name query | --prompt TEXT] [--batch-size 32] < texts.txt > vectors.jsonl",
  options: {
    model: { type: "string", arg: "M", help: "model folder or hub id (e.g. BAAI/bge-small-en-v1.5)" },
    dim: {
      type: "string",
      arg: "D",
      help: "Matryoshka truncation: keep the first D dimensions (re-normalized for cosine models)",
    },
    "prompt-name": {
      type: "string",
      arg: "NAME",
      help: "one of the model's prompts (config_sentence_transformers.json)",
    },
    prompt: { type: "string", arg: "TEXT", help: "a prompt text prepended to every input" },
    "batch-size": { type: "string", arg: "N", help: "texts per forward pass", default: "32" },
    input: { type: "string", arg: "FILE", help: "read texts from FILE instead of stdin" },
    ...DEVICE_OPTIONS,
    ...PACKING_OPTION,
  },
  notes:
    "Each input line is one text (an empty line is an empty text). Output line i is the embedding of input line i.",
  async run(values) {
    const modelId = required(values, "model");
    const raw = typeof values.input === "string" ? readFileSync(values.input, "utf8") : await readStdin();
    const texts = raw.split("\n");
    if (texts.length > 0 && texts[texts.length - 1] === "") texts.pop(); // the final newline ends the last line
    const model = await SentenceTransformer.load(modelId, deviceOptions(values));
    applyPacking(model, values);
    const dim =
      values.dim === undefined
        ? undefined
        : numberOption(values, "dim", 0, { integer: true, min: 1, max: model.embeddingDim });
    const e = model.encode(texts, {
      batchSize: numberOption(values, "batch-size", 32, { integer: true, min: 1 }),
      ...(dim !== undefined ? { truncateDim: dim } : {}),
      ...(typeof values["prompt-name"] === "string" ? { promptName: values["prompt-name"] } : {}),
      ...(typeof values.prompt === "string" ? { prompt: values.prompt } : {}),
      progress: process.stderr.isTTY ? "encode" : false,
    });
    const lines: string[] = [];
    for (let i = 0; i < e.rows; i++)
      lines.push(JSON.stringify(Array.from(e.data.subarray(i * e.dim, (i + 1) * e.dim))));
    process.stdout.write(lines.length ? lines.join("\n") + "\n" : "");
  },
};

export const createModelCommand: Command = {
  name: "create-model",
  summary: "create a small randomly initialized BERT sentence-transformers model (tests, offline demos)",
  usage:
    "ragtune create-model --layers L --hidden H --heads A --intermediate I --vocab <vocab.txt|tokenizer.json|DIR> --pooling cls|mean [--seed S] --out DIR",
  options: {
    layers: { type: "string", arg: "L", help: "encoder layers", default: "2" },
    hidden: { type: "string", arg: "H", help: "hidden size (= embedding size)", default: "128" },
    heads: { type: "string", arg: "A", help: "attention heads (must divide the hidden size)", default: "4" },
    intermediate: { type: "string", arg: "I", help: "feed-forward size", default: "512" },
    "max-position": { type: "string", arg: "N", help: "max_position_embeddings", default: "512" },
    "max-seq-length": { type: "string", arg: "N", help: "tokens kept per text", default: "512" },
    vocab: {
      type: "string",
      arg: "PATH",
      help: "tokenizer: a vocab.txt, a tokenizer.json, or a folder holding one",
    },
    pooling: {
      type: "string",
      arg: "MODE",
      help: `pooling mode: ${POOLING_MODES.join(", ")}`,
      default: "cls",
    },
    "no-normalize": { type: "boolean", help: "leave out the Normalize module (dot-product model)" },
    seed: { type: "string", arg: "S", help: "initialization seed", default: "42" },
    out: { type: "string", arg: "DIR", help: "output folder" },
  },
  async run(values) {
    const out = required(values, "out");
    const vocab = required(values, "vocab");
    const pooling = values.pooling as string;
    if (!(POOLING_MODES as readonly string[]).includes(pooling))
      throw new UsageError(`--pooling must be one of ${POOLING_MODES.join(", ")}, got "${pooling}"`);
    const tokenizer = loadTokenizer(vocab);
    const hidden = numberOption(values, "hidden", 128, { integer: true, min: 1 });
    const heads = numberOption(values, "heads", 4, { integer: true, min: 1 });
    if (hidden % heads !== 0)
      throw new UsageError(`--hidden ${hidden} is not a multiple of --heads ${heads}`);
    const maxPosition = numberOption(values, "max-position", 512, { integer: true, min: 2 });
    const config = BertConfig.with({
      vocabSize: tokenizer.vocabSize,
      hiddenSize: hidden,
      numHiddenLayers: numberOption(values, "layers", 2, { integer: true, min: 1 }),
      numAttentionHeads: heads,
      intermediateSize: numberOption(values, "intermediate", 512, { integer: true, min: 1 }),
      maxPositionEmbeddings: maxPosition,
      padTokenId: tokenizer.padTokenId,
    });
    const model = SentenceTransformer.create({
      config,
      tokenizer,
      pooling: pooling as PoolingMode,
      normalize: !values["no-normalize"],
      maxSeqLength: numberOption(values, "max-seq-length", 512, { integer: true, min: 2, max: maxPosition }),
      seed: numberOption(values, "seed", 42, { integer: true, min: 0 }),
    });
    model.save(out);
    const params = model.bert.numParameters();
    model.dispose();
    process.stderr.write(
      `created ${out}: BERT ${config.numHiddenLayers}×${hidden}, ${heads} heads, FFN ${config.intermediateSize}, ` +
        `${params.toLocaleString("en-US")} parameters, ${pooling} pooling${values["no-normalize"] ? "" : ", normalized"}\n`,
    );
  },
};

function loadTokenizer(path: string): HfTokenizer {
  if (path.endsWith(".json")) return HfTokenizer.fromFiles({ tokenizerJson: path });
  if (path.endsWith(".txt")) return HfTokenizer.fromFiles({ vocabTxt: path });
  return HfTokenizer.fromDir(path);
}
