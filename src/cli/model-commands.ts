// `ragtune encode` and `ragtune create-model`: embed texts with a model; make small random models for tests and
// offline demos.
import { createReadStream, readdirSync, statSync } from "node:fs";
import {
  ARCHITECTURE_NAMES,
  ARCHITECTURES,
  encoderConfigFor,
  maxSequenceLengthFor,
  type Architecture,
} from "../models/encoders.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { POOLING_MODES, type PoolingMode } from "../models/st-folder.ts";
import { HfTokenizer } from "../tokenize/index.ts";
import { cudaAvailable, isDType, type DType, type Device } from "../engine/index.ts";
import { checkReadableFile, textLines } from "../data/index.ts";
import { ProgressBar } from "../hub/progress.ts";
import { numberOption, required, UsageError, type Command, onOffOption } from "./args.ts";
import { encodeLines } from "./encode-stream.ts";
import { ENCODE_OUTPUT_OPTIONS, encodedOutputRequested, writeEncodedOutput } from "./encode-output.ts";

/** --device / --dtype flags shared by the model-loading commands. */
export const DEVICE_OPTIONS = {
  device: { type: "string", arg: "DEV", help: "cpu, cuda or cuda:N (default: cuda when available)" },
  dtype: {
    type: "string",
    arg: "T",
    help: "parameter dtype: float32, bfloat16, float16 (CUDA only) (default float32)",
  },
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
    // libtorch has no CPU kernels for half-precision LayerNorm and friends: say so before loading anything,
    // instead of its raw `"LayerNormKernelImpl" not implemented for 'Half'` at the first forward.
    const device = out.device ?? (cudaAvailable() ? "cuda" : "cpu");
    if (out.dtype === "float16" && device === "cpu")
      throw new UsageError(
        "--dtype float16 is not supported on the CPU; use float32 or bfloat16" +
          (out.device === undefined ? " (no CUDA device is available)" : ""),
      );
  }
  return out;
}

/** encode's prompt: --prompt / --prompt-name as given; --as query|document resolves the model's side prompt. */
function encodePrompt(
  model: SentenceTransformer,
  values: Record<string, unknown>,
): { prompt?: string; promptName?: string } {
  const given = {
    ...(typeof values["prompt-name"] === "string" ? { promptName: values["prompt-name"] } : {}),
    ...(typeof values.prompt === "string" ? { prompt: values.prompt } : {}),
  };
  const side = values.as;
  if (side === undefined) return given;
  if (side !== "query" && side !== "document")
    throw new UsageError(`--as must be query or document, got "${String(side)}"`);
  return { prompt: model.sidePrompt(side, given) };
}

export const encodeCommand: Command = {
  name: "encode",
  summary: "embed texts (one per line on stdin) → one JSON array per line on stdout",
  usage:
    "ragtune encode --model M [--dim D] [--as query|document | --prompt-name query | --prompt TEXT] [--batch-size 32] [--precision int8|uint8|binary|ubinary [--calibration FILE]] [--format jsonl|npy --out FILE] < texts.txt > vectors.jsonl",
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
    as: {
      type: "string",
      arg: "query|document",
      help:
        'encode the inputs as queries or documents: the model\'s "query" prompt, or its "document"/"passage"/"corpus" ' +
        "prompt (sentence-transformers' encode_query / encode_document); --prompt / --prompt-name override it",
    },
    "batch-size": { type: "string", arg: "N", help: "texts per forward pass", default: "32" },
    input: { type: "string", arg: "FILE", help: "read texts from FILE instead of stdin" },
    ...ENCODE_OUTPUT_OPTIONS,
    ...DEVICE_OPTIONS,
    ...PACKING_OPTION,
  },
  notes:
    "Each input line is one text (an empty line is an empty text; a final \\r is dropped). Output line i is the\n" +
    "embedding of input line i, written as soon as its chunk of 1,024 texts is embedded (memory stays bounded).\n" +
    "Input must be UTF-8 text: invalid bytes or a NUL byte stop with the line number.",
  async run(values) {
    const modelId = required(values, "model");
    const batchSize = numberOption(values, "batch-size", 32, { integer: true, min: 1 });
    const options = deviceOptions(values);
    const input = typeof values.input === "string" ? values.input : undefined;
    // Check the input before loading the model, so a missing file fails fast and names itself.
    if (input !== undefined) await checkReadableFile(input);
    const source = input === undefined ? process.stdin : createReadStream(input);
    const model = await SentenceTransformer.load(modelId, options);
    for (const w of model.warnings) process.stderr.write(`warning: ${w}\n`); // e.g. the pooling a plain folder got
    applyPacking(model, values);
    const promptOptions = encodePrompt(model, values);
    const dim =
      values.dim === undefined
        ? undefined
        : numberOption(values, "dim", 0, { integer: true, min: 1, max: model.embeddingDim });
    if (encodedOutputRequested(values)) {
      // Quantized / .npy output: int8 ranges taken from the vectors themselves need every row, so this path
      // holds the whole matrix (the plain JSONL path below streams with bounded memory).
      const texts: string[] = [];
      for await (const { text } of textLines(source as AsyncIterable<Buffer>, input ?? "<stdin>"))
        texts.push(text);
      const e = model.encode(texts, {
        batchSize,
        ...(dim !== undefined ? { truncateDim: dim } : {}),
        ...promptOptions,
        progress: process.stderr.isTTY ? "encode" : false,
      });
      const renormalized =
        dim !== undefined && dim < model.embeddingDim && model.similarityFnName === "cosine";
      try {
        return writeEncodedOutput(e, values, { fullDim: model.embeddingDim, renormalized });
      } finally {
        model.dispose();
      }
    }
    const bar = process.stderr.isTTY ? new ProgressBar({ label: "encode", unit: "texts" }) : null;
    let shown = 0;
    try {
      await encodeLines(
        model,
        textLines(source as AsyncIterable<Buffer>, input ?? "<stdin>"),
        process.stdout,
        input ?? "<stdin>",
        {
          batchSize,
          ...(dim !== undefined ? { truncateDim: dim } : {}),
          ...promptOptions,
          onProgress: (done) => {
            bar?.update(done - shown);
            shown = done;
          },
        },
      );
    } catch (e) {
      // The reader closed the pipe (`| head`): stop quietly, as Unix filters do; anything else is an error.
      if ((e as NodeJS.ErrnoException).code !== "EPIPE") throw e;
      process.stderr.write("note: the reader closed the output (EPIPE); stopped encoding\n");
    } finally {
      model.dispose();
    }
    bar?.done();
  },
};

export const createModelCommand: Command = {
  name: "create-model",
  summary:
    "create a small randomly initialized sentence-transformers model (BERT, XLM-RoBERTa, MPNet or ModernBERT; tests, offline demos)",
  usage:
    "ragtune create-model [--architecture bert|xlm-roberta|mpnet|modernbert] --layers L --hidden H --heads A --intermediate I --vocab <vocab.txt|tokenizer.json|DIR> --pooling cls|mean [--seed S] --out DIR",
  options: {
    architecture: {
      type: "string",
      arg: "ARCH",
      help: `encoder architecture: ${ARCHITECTURES.join(", ")} (config.json model_type; MPNet needs a tokenizer padding with id 1)`,
      default: "bert",
    },
    layers: { type: "string", arg: "L", help: "encoder layers", default: "2" },
    hidden: { type: "string", arg: "H", help: "hidden size (= embedding size)", default: "128" },
    heads: { type: "string", arg: "A", help: "attention heads (must divide the hidden size)", default: "4" },
    intermediate: { type: "string", arg: "I", help: "feed-forward size", default: "512" },
    "max-position": { type: "string", arg: "N", help: "max_position_embeddings", default: "512" },
    "max-seq-length": {
      type: "string",
      arg: "N",
      help: "tokens kept per text (default: 512, or what the position table allows: XLM-R and MPNet use 2 rows for padding)",
    },
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
    out: { type: "string", arg: "DIR", help: "output folder (new or empty, unless --overwrite)" },
    overwrite: {
      type: "boolean",
      help: "write into a folder that already holds files (a model there is replaced file by file)",
    },
  },
  notes:
    "--out must be a new or empty folder: a folder holding files (another model, say) is refused unless\n" +
    "--overwrite, like transformers' overwrite_output_dir. Files are written atomically and never through links.",
  async run(values) {
    const out = required(values, "out");
    refuseNonEmptyOut(out, Boolean(values.overwrite));
    const vocab = required(values, "vocab");
    const pooling = values.pooling as string;
    if (!(POOLING_MODES as readonly string[]).includes(pooling))
      throw new UsageError(`--pooling must be one of ${POOLING_MODES.join(", ")}, got "${pooling}"`);
    const tokenizer = loadTokenizer(vocab);
    const hidden = numberOption(values, "hidden", 128, { integer: true, min: 1 });
    const heads = numberOption(values, "heads", 4, { integer: true, min: 1 });
    if (hidden % heads !== 0)
      throw new UsageError(`--hidden ${hidden} is not a multiple of --heads ${heads}`);
    const architecture = values.architecture as string;
    if (!(ARCHITECTURES as readonly string[]).includes(architecture))
      throw new UsageError(
        `--architecture must be one of ${ARCHITECTURES.join(", ")}, got "${architecture}"`,
      );
    const maxPosition = numberOption(values, "max-position", 512, { integer: true, min: 2 });
    const config = encoderConfigFor(architecture as Architecture, {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: hidden,
      numHiddenLayers: numberOption(values, "layers", 2, { integer: true, min: 1 }),
      numAttentionHeads: heads,
      intermediateSize: numberOption(values, "intermediate", 512, { integer: true, min: 1 }),
      maxPositionEmbeddings: maxPosition,
      padTokenId: tokenizer.padTokenId,
    });
    const limit = maxSequenceLengthFor(config);
    const model = SentenceTransformer.create({
      config,
      tokenizer,
      pooling: pooling as PoolingMode,
      normalize: !values["no-normalize"],
      maxSeqLength: numberOption(values, "max-seq-length", Math.min(512, limit), {
        integer: true,
        min: 2,
        max: limit,
      }),
      seed: numberOption(values, "seed", 42, { integer: true, min: 0 }),
    });
    model.save(out);
    const params = model.encoder.numParameters();
    model.dispose();
    process.stderr.write(
      `created ${out}: ${ARCHITECTURE_NAMES[architecture as Architecture]} ${config.numHiddenLayers}×${hidden}, ${heads} heads, FFN ${config.intermediateSize}, ` +
        `${params.toLocaleString("en-US")} parameters, ${pooling} pooling${values["no-normalize"] ? "" : ", normalized"}\n`,
    );
  },
};

/** Refuses an --out that is a file, or a folder holding files, unless overwriting was asked for. */
function refuseNonEmptyOut(out: string, overwrite: boolean): void {
  let entries: string[];
  try {
    if (!statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a file, not a folder`);
    entries = readdirSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (entries.length > 0 && !overwrite) {
    const shown = entries.sort().slice(0, 4).join(", ") + (entries.length > 4 ? ", …" : "");
    throw new UsageError(
      `--out ${out} already holds files (${shown}); pass --overwrite to write the new model over them`,
    );
  }
}

function loadTokenizer(path: string): HfTokenizer {
  if (path.endsWith(".json")) return HfTokenizer.fromFiles({ tokenizerJson: path });
  if (path.endsWith(".txt")) return HfTokenizer.fromFiles({ vocabTxt: path });
  return HfTokenizer.fromDir(path);
}
