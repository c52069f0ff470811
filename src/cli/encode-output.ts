// The `--precision`, `--format`, `--out` and `--calibration` options of `ragtune encode`: quantized vectors
// (sentence-transformers' quantize_embeddings, see src/eval/quantize.ts) written as JSONL or as a numpy .npy
// file for bulk loading (np.load, faiss, usearch, pgvector / sqlite-vec importers). model-commands.ts calls
// `writeEncodedOutput` when one of these options is given; everything else lives here.
import { createWriteStream, type WriteStream } from "node:fs";
import { readEmbeddingMatrix, writeNpy } from "../eval/npy.ts";
import {
  calibrationRanges,
  floatMatrix,
  isPrecision,
  PRECISIONS,
  quantizeEmbeddings,
  truncateRows,
  type QuantizedMatrix,
} from "../eval/quantize.ts";
import { UsageError, type OptionTable } from "./args.ts";

export const ENCODE_OUTPUT_OPTIONS: OptionTable = {
  precision: {
    type: "string",
    arg: "P",
    help: `${PRECISIONS.join(", ")} (sentence-transformers' quantize_embeddings; binary packs 8 dims per byte)`,
    default: "float32",
  },
  format: {
    type: "string",
    arg: "F",
    help: "jsonl (one JSON array per line) or npy (numpy .npy, needs --out)",
    default: "jsonl",
  },
  out: { type: "string", arg: "FILE", help: "write to FILE instead of stdout" },
  calibration: {
    type: "string",
    arg: "FILE",
    help:
      "int8/uint8 ranges from these float embeddings (.npy or JSONL; full size or --dim) — e.g. the corpus, " +
      "so that queries and corpus share buckets; default: the encoded texts themselves (as ST)",
  },
};

/** True when the encode command should hand its output to {@link writeEncodedOutput}. */
export function encodedOutputRequested(values: Record<string, unknown>): boolean {
  return (
    (values.precision !== undefined && values.precision !== "float32") ||
    (values.format !== undefined && values.format !== "jsonl") ||
    values.out !== undefined
  );
}

/**
 * Quantizes the encoded matrix as asked and writes it.
 *
 * @param e the float embeddings (N, d) as the model returned them (truncated to --dim, re-normalized when
 *   `renormalized`)
 * @param fullDim the model's embedding size (a calibration file of that size is truncated like `e`)
 */
export async function writeEncodedOutput(
  e: { data: Float32Array; rows: number; dim: number },
  values: Record<string, unknown>,
  opts: { fullDim: number; renormalized: boolean },
): Promise<void> {
  const precision = String(values.precision ?? "float32");
  if (!isPrecision(precision))
    throw new UsageError(`--precision must be one of ${PRECISIONS.join(", ")}, got "${precision}"`);
  const format = String(values.format ?? "jsonl");
  if (format !== "jsonl" && format !== "npy")
    throw new UsageError(`--format must be jsonl or npy, got "${format}"`);
  const out = typeof values.out === "string" ? values.out : undefined;
  if (format === "npy" && out === undefined) throw new UsageError("--format npy needs --out FILE");
  if ((precision === "binary" || precision === "ubinary") && e.dim % 8 !== 0)
    throw new UsageError(`--precision ${precision} needs a dimension divisible by 8, got ${e.dim}`);
  const m = floatMatrix(e.data, e.rows, e.dim);

  let ranges;
  if (precision === "int8" || precision === "uint8") {
    if (typeof values.calibration === "string") {
      const c = readEmbeddingMatrix(values.calibration);
      if (c.dim !== e.dim && c.dim !== opts.fullDim)
        throw new UsageError(
          `--calibration ${values.calibration}: ${c.dim} dims; expected ${e.dim}${e.dim !== opts.fullDim ? ` or ${opts.fullDim}` : ""}`,
        );
      const cm = floatMatrix(c.data, c.rows, c.dim);
      ranges = calibrationRanges(c.dim === e.dim ? cm : truncateRows(cm, e.dim, opts.renormalized));
    } else {
      if (e.rows < 100)
        process.stderr.write(
          `warning: ${precision} ranges from only ${e.rows} embeddings; pass --calibration with more (e.g. the corpus)\n`,
        );
      ranges = calibrationRanges(m);
    }
  } else if (values.calibration !== undefined) {
    throw new UsageError(`--calibration only applies to int8 and uint8, not ${precision}`);
  }
  const q = quantizeEmbeddings(m, precision, ranges);

  if (format === "npy") {
    writeNpy(out!, q.data, [q.rows, q.width]);
    process.stderr.write(`wrote ${out}: ${q.rows} × ${q.width} ${precision}\n`);
    return;
  }
  const stream: WriteStream | NodeJS.WriteStream =
    out === undefined ? process.stdout : createWriteStream(out);
  await writeJsonl(q, stream);
  if (out !== undefined) {
    await new Promise<void>((resolve, reject) => {
      stream.on("error", reject);
      (stream as WriteStream).end(resolve);
    });
  }
}

/** One JSON array per row (float32 values as written by JSON.stringify, integers for the others). */
async function writeJsonl(q: QuantizedMatrix, stream: NodeJS.WritableStream): Promise<void> {
  for (let r = 0; r < q.rows; r++) {
    const line = JSON.stringify(Array.from(q.data.subarray(r * q.width, (r + 1) * q.width))) + "\n";
    if (!stream.write(line)) await new Promise((resolve) => stream.once("drain", resolve));
  }
}
