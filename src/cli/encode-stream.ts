// The streaming core of `ragtune encode`: texts are read line by line, embedded a chunk at a time and written as
// JSON lines as soon as each chunk is done, waiting for the output to drain when it asks to (back-pressure).
// Memory stays bounded by one chunk of texts and one chunk of output, whatever the input size: the old
// one-string output failed at ~30,000 texts × 1,024 dims with "Invalid string length" after encoding them all.
import { once } from "node:events";
import type { Writable } from "node:stream";
import { DatasetError } from "../data/index.ts";
import type { EmbeddingMatrix, EncodeOptions } from "../models/sentence-transformer.ts";

/** What encodeLines needs of a model (SentenceTransformer has it; tests pass fakes). */
export interface TextEncoder {
  encode(texts: readonly string[], options: EncodeOptions): EmbeddingMatrix;
}

export interface EncodeLinesOptions extends Omit<EncodeOptions, "progress"> {
  /**
   * Texts embedded per model.encode call (each call sorts its texts by length, as sentence-transformers sorts
   * the whole input). Default max(1024, batchSize).
   */
  chunkSize?: number;
  /** Output characters gathered before one write (default 1 MiB). */
  writeSize?: number;
  /** Called after each chunk with the number of texts done so far. */
  onProgress?: (done: number) => void;
}

/** One embedding as the JSON array written per line (float32 values printed as JS numbers). */
function embeddingLine(data: Float32Array, row: number, dim: number): string {
  return JSON.stringify(Array.from(data.subarray(row * dim, (row + 1) * dim))) + "\n";
}

/**
 * Writes `text` to `out`, and waits for "drain" when the stream's buffer is full. A stream error (EPIPE when the
 * reader went away, as `| head` does) is thrown here, at the next write, instead of going unnoticed.
 */
async function writeWithBackPressure(
  out: Writable,
  text: string,
  failed: () => Error | undefined,
): Promise<void> {
  const before = failed();
  if (before) throw before;
  if (!out.write(text)) await once(out, "drain"); // rejects on "error"
}

/**
 * Embeds every text of `lines` (one text per line: `{ text, line }` with 1-based line numbers, e.g. from
 * data's textLines) and writes one JSON array per text to `out`, in input order. A NUL byte in a text is an
 * error naming `name` and the line: binary input, not text. Returns the number of texts.
 */
export async function encodeLines(
  model: TextEncoder,
  lines: AsyncIterable<{ text: string; line: number }>,
  out: Writable,
  name: string,
  options: EncodeLinesOptions = {},
): Promise<number> {
  const { chunkSize: chunkOption, writeSize: writeOption, onProgress, ...encodeOptions } = options;
  const chunkSize = chunkOption ?? Math.max(1024, encodeOptions.batchSize ?? 32);
  const writeSize = writeOption ?? 1 << 20;
  let done = 0;
  let chunk: string[] = [];
  let streamError: Error | undefined;
  const onError = (e: Error) => (streamError = e);
  out.on("error", onError);
  const failed = () => streamError;
  const flushChunk = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const e = model.encode(chunk, encodeOptions);
    chunk = [];
    let pending = "";
    for (let i = 0; i < e.rows; i++) {
      pending += embeddingLine(e.data, i, e.dim);
      if (pending.length >= writeSize) {
        await writeWithBackPressure(out, pending, failed);
        pending = "";
      }
    }
    if (pending !== "") await writeWithBackPressure(out, pending, failed);
    done += e.rows;
    onProgress?.(done);
  };
  try {
    for await (const { text, line } of lines) {
      if (text.includes("\0"))
        throw new DatasetError(
          name,
          line,
          "line",
          "contains a NUL byte: this looks like binary data, not text (encode reads UTF-8 text, one text per line)",
        );
      chunk.push(text);
      if (chunk.length >= chunkSize) await flushChunk();
    }
    await flushChunk();
  } finally {
    out.off("error", onError);
  }
  return done;
}
