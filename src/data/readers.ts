// Row readers for the dataset formats `ragtune prepare` accepts. Every reader yields plain objects with the
// position of the row in its file, so that every later error and report entry can point at `file:line`.
//   - JSON Lines (.jsonl/.ndjson): streamed line by line; blank lines skipped; line = physical line.
//   - CSV/TSV (.csv/.tsv): streamed through csv-parse; header row; line = physical line where the record starts.
//   - JSON (.json): a top-level array of objects, or an object with a single array field ({"data": [...]}).
//     Such a document is parsed whole (JSON.parse needs all of it). A .json file that is really JSON Lines (what
//     Hugging Face `Dataset.to_json` writes) is detected from its first line and streamed as JSON Lines.
//   - Parquet (.parquet): read one row group at a time with hyparquet; "line" = 1-based row number.
// Text is decoded as strict UTF-8: invalid bytes are an error, never silently replaced.

import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { Readable, pipeline } from "node:stream";
import { extname } from "node:path";
import { CsvError, parse as parseCsv } from "csv-parse";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { isPlainObject } from "../util/plain-object.ts";

export type DataFormat = "json" | "jsonl" | "csv" | "tsv" | "parquet";
export const DATA_FORMATS: readonly DataFormat[] = ["json", "jsonl", "csv", "tsv", "parquet"];

/** Whether a row's number is a physical text line or a 1-based row number (Parquet, JSON array element). */
export type LocationUnit = "line" | "row";

export interface SourceRow {
  row: Record<string, unknown>;
  /** 1-based physical line where the row starts, or 1-based row number when the unit is "row". */
  line: number;
}

export interface RowSource {
  /** The path as given (messages quote it unchanged). */
  file: string;
  /** The format actually read: a .json file holding JSON Lines reads as "jsonl". */
  format: DataFormat;
  unit: LocationUnit;
  rows: AsyncIterable<SourceRow>;
}

export interface ReadRowsOptions {
  /** Overrides the format implied by the file extension. */
  format?: DataFormat;
  /** Columns the caller needs; columnar formats (Parquet) then skip the others when all of these exist. */
  columns?: readonly string[];
}

/** An error tied to a place in a dataset file; the message starts with `file:line` (or `file:row N`). */
export class DatasetError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly unit: LocationUnit,
    readonly detail: string,
    readonly column?: string,
  ) {
    super(`${line === undefined ? file : formatWhere(file, line, unit)}: ${detail}`);
    this.name = "DatasetError";
  }
}

export function formatWhere(file: string, line: number, unit: LocationUnit): string {
  return unit === "line" ? `${file}:${line}` : `${file}:row ${line}`;
}

/** Says what a value is, for messages: `null`, `number 12`, `object {"a":1}` (long values shortened). */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return `array ${shorten(safeJson(value))}`;
  if (typeof value === "object") return `object ${shorten(safeJson(value))}`;
  if (typeof value === "string") return `string ${shorten(JSON.stringify(value))}`;
  return `${typeof value} ${String(value)}`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

function shorten(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const EXTENSION_FORMATS: Record<string, DataFormat> = {
  ".json": "json",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".csv": "csv",
  ".tsv": "tsv",
  ".tab": "tsv",
  ".parquet": "parquet",
};

/** The format implied by a file's extension; throws for an unknown one (pass `format` to override). */
export function formatFromPath(path: string): DataFormat {
  const format = EXTENSION_FORMATS[extname(path).toLowerCase()];
  if (format === undefined) {
    throw new Error(
      `${path}: cannot tell the dataset format from the extension "${extname(path)}" ` +
        `(known: ${Object.keys(EXTENSION_FORMATS).join(", ")}); pass a format (${DATA_FORMATS.join(", ")})`,
    );
  }
  return format;
}

/** Opens a dataset file for streaming; for format "json" this peeks at the start to tell JSON from JSON Lines. */
export async function openRows(path: string, options: ReadRowsOptions = {}): Promise<RowSource> {
  const format = options.format ?? formatFromPath(path);
  await checkReadableFile(path);
  switch (format) {
    case "jsonl":
      return { file: path, format, unit: "line", rows: jsonLinesRows(path) };
    case "json":
      return (await looksLikeJsonLines(path))
        ? { file: path, format: "jsonl", unit: "line", rows: jsonLinesRows(path) }
        : { file: path, format, unit: "row", rows: jsonDocumentRows(path) };
    case "csv":
      return { file: path, format, unit: "line", rows: delimitedRows(path, ",") };
    case "tsv":
      return { file: path, format, unit: "line", rows: delimitedRows(path, "\t") };
    case "parquet":
      return { file: path, format, unit: "row", rows: parquetRows(path, options.columns) };
    default:
      throw new Error(`unknown dataset format "${String(format)}" (known: ${DATA_FORMATS.join(", ")})`);
  }
}

/** The unified row stream: `{ row, line }` for every record of the file, in file order. */
export async function* readRows(path: string, options: ReadRowsOptions = {}): AsyncGenerator<SourceRow> {
  const source = await openRows(path, options);
  yield* source.rows;
}

/** A missing path, a folder or an unreadable file is an error naming the path, before any reader opens it. */
export async function checkReadableFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES" || code === "EPERM"
          ? `permission denied (${code})`
          : code === "ENOTDIR"
            ? "a component of the path is not a folder"
            : (error as Error).message;
    throw new DatasetError(path, undefined, "line", why);
  }
  if (info.isDirectory())
    throw new DatasetError(path, undefined, "line", "is a folder; give the data file(s) inside it");
  if (!info.isFile()) throw new DatasetError(path, undefined, "line", "is not a regular file");
}

// ---------------------------------------------------------------------------------------------------------
// JSON Lines

/** Physical lines of a file (split at "\n", a trailing "\r" removed), decoded as strict UTF-8. */
function physicalLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  return textLines(createReadStream(path) as AsyncIterable<Buffer>, path);
}

/**
 * The lines of a byte stream (a file, stdin) split at "\n" with a trailing "\r" removed, each decoded as strict
 * UTF-8: an invalid byte is a DatasetError naming `file` and the 1-based line. Streams: one line in memory.
 */
export async function* textLines(
  chunks: AsyncIterable<Buffer>,
  file: string,
): AsyncGenerator<{ text: string; line: number }> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const decode = (bytes: Buffer, line: number): string => {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    try {
      return decoder.decode(bytes.subarray(0, end));
    } catch {
      throw new DatasetError(file, line, "line", "not valid UTF-8");
    }
  };
  let pending: Buffer[] = [];
  let line = 0;
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, nl));
      start = nl + 1;
      line++;
      yield { text: decode(pending.length === 1 ? pending[0]! : Buffer.concat(pending), line), line };
      pending = [];
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length > 0) {
    line++;
    yield { text: decode(Buffer.concat(pending), line), line };
  }
}

async function* jsonLinesRows(path: string): AsyncGenerator<SourceRow> {
  for await (const { text, line } of physicalLines(path)) {
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new DatasetError(path, line, "line", `invalid JSON: ${(error as Error).message}`);
    }
    if (!isPlainObject(value)) {
      throw new DatasetError(path, line, "line", `expected a JSON object, found ${describeValue(value)}`);
    }
    yield { row: value, line };
  }
}

/**
 * For a .json file: JSON Lines when the first non-blank line is a complete JSON object by itself, unless that
 * object is a one-field wrapper around an array ({"data": [...]} written on one line).
 */
async function looksLikeJsonLines(path: string): Promise<boolean> {
  const lines = physicalLines(path);
  try {
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      const text = next.value.text.trim();
      if (text === "") continue;
      if (!text.startsWith("{")) return false;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return false; // a pretty-printed document: its first line is not complete JSON
      }
      if (!isPlainObject(value)) return false;
      const keys = Object.keys(value);
      return !(keys.length === 1 && Array.isArray(value[keys[0]!]));
    }
    return false;
  } finally {
    await lines.return(undefined);
  }
}

async function* jsonDocumentRows(path: string): AsyncGenerator<SourceRow> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await readFile(path));
  } catch (error) {
    if (error instanceof TypeError) throw new DatasetError(path, undefined, "row", "not valid UTF-8");
    throw error;
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    // V8 gives "at position N" only for some syntax errors; find the offset ourselves for the line number.
    const offset = jsonErrorOffset(text);
    const line = offset === undefined ? undefined : text.slice(0, offset).split("\n").length;
    throw new DatasetError(path, line, "line", `invalid JSON: ${(error as Error).message}`);
  }
  let items: unknown[];
  if (Array.isArray(document)) items = document;
  else if (isPlainObject(document)) {
    const arrayFields = Object.keys(document).filter((k) => Array.isArray(document[k]));
    if (arrayFields.length !== 1) {
      throw new DatasetError(
        path,
        undefined,
        "row",
        `expected a top-level array of objects, or an object with exactly one array field; found an object ` +
          `with fields ${Object.keys(document).join(", ") || "(none)"}`,
      );
    }
    items = document[arrayFields[0]!] as unknown[];
  } else {
    throw new DatasetError(path, undefined, "row", `expected a JSON array, found ${describeValue(document)}`);
  }
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!isPlainObject(item)) {
      throw new DatasetError(path, i + 1, "row", `expected a JSON object, found ${describeValue(item)}`);
    }
    yield { row: item, line: i + 1 };
  }
}

/**
 * The offset of the first JSON syntax error in `text` (the end of the text for a truncated document), found by
 * a validating scan that builds nothing; undefined when the scan finds no error. Only used to locate errors.
 */
export function jsonErrorOffset(text: string): number | undefined {
  try {
    return scanJson(text);
  } catch {
    return undefined; // e.g. a regex stack overflow on a pathological string: no line then, still an error
  }
}

function scanJson(text: string): number | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  // Sticky regexes match at `i` without copying the text.
  const literal = /true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  // Runs of plain characters are matched by one `+`, so the backtracking stack grows per escape, not per char.
  const string = /"(?:[^"\\\u0000-\u001f]+|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const match = (re: RegExp): boolean => {
    re.lastIndex = i;
    if (!re.test(text)) return false;
    i = re.lastIndex;
    return true;
  };
  // Iterative, so deep nesting cannot overflow the stack: `stack` holds the open containers.
  const stack: ("[" | "{")[] = [];
  const fail = (): number => i;
  ws();
  for (;;) {
    // Expect a value.
    const ch = text[i];
    if (ch === "[" || ch === "{") {
      stack.push(ch);
      i++;
      ws();
      if (text[i] === (ch === "[" ? "]" : "}")) {
        stack.pop();
        i++;
      } else if (ch === "{") {
        if (!match(string)) return fail();
        ws();
        if (text[i] !== ":") return fail();
        i++;
        ws();
        continue;
      } else continue;
    } else {
      if (!match(ch === '"' ? string : literal)) return fail();
    }
    // After a value: close containers or move to the next element.
    for (;;) {
      ws();
      const open = stack[stack.length - 1];
      if (open === undefined) return i === text.length ? undefined : fail();
      if (text[i] === (open === "[" ? "]" : "}")) {
        stack.pop();
        i++;
        continue;
      }
      if (text[i] !== ",") return fail();
      i++;
      ws();
      if (open === "{") {
        if (!match(string)) return fail();
        ws();
        if (text[i] !== ":") return fail();
        i++;
        ws();
      }
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// CSV / TSV

/**
 * Counts physical lines in the raw text csv-parse hands back with each record. csv-parse's own `info.lines` is
 * the line where a record *ends* and over-counts CRLF inside quoted fields, so the start line is computed here:
 * "\r\n", lone "\r" and lone "\n" each end one line, also when a "\r\n" is split across two raw pieces.
 */
class LineCounter {
  /** Line breaks consumed so far. */
  breaks = 0;
  private afterCR = false;

  /** Number of line breaks at the start of `raw` (blank lines csv-parse skipped before the record). */
  leadingBreaks(raw: string): number {
    let n = 0;
    let afterCR = this.afterCR;
    for (const ch of raw) {
      if (ch === "\n") {
        if (!afterCR) n++;
        afterCR = false;
      } else if (ch === "\r") {
        n++;
        afterCR = true;
      } else break;
    }
    return n;
  }

  feed(raw: string): void {
    for (let i = 0; i < raw.length; i++) {
      const code = raw.charCodeAt(i);
      if (code === 0x0a) {
        if (!this.afterCR) this.breaks++;
        this.afterCR = false;
      } else if (code === 0x0d) {
        this.breaks++;
        this.afterCR = true;
      } else this.afterCR = false;
    }
  }
}

async function* strictUtf8(path: string): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true }); // also strips a leading BOM
  let offset = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      const text = decoder.decode(chunk, { stream: true });
      offset += chunk.length;
      if (text !== "") yield text;
    }
    const rest = decoder.decode();
    if (rest !== "") yield rest;
  } catch (error) {
    if (error instanceof TypeError) {
      throw new DatasetError(path, undefined, "line", `not valid UTF-8 (in the chunk at byte ${offset})`);
    }
    throw error;
  }
}

interface CsvRecordWithInfo {
  record: string[];
  raw: string;
}

function describeCsvError(error: CsvError): string {
  if (error.code === "CSV_QUOTE_NOT_CLOSED")
    return "malformed record: a quoted field is not closed before the end of the file";
  const text = typeof error.field === "string" ? error.field : "";
  // `--format csv` on a JSON (Lines) file fails on its first quote; say what the file looks like.
  const hint = /^\s*[[{]/.test(text) ? " (the file looks like JSON or JSON Lines: check --format and the extension)" : "";
  return `malformed record: ${error.message}${hint}`;
}

async function* delimitedRows(path: string, delimiter: "," | "\t"): AsyncGenerator<SourceRow> {
  const parser = parseCsv({
    delimiter,
    bom: true,
    raw: true,
    skip_empty_lines: true,
    // Field counts are checked below, where the record's start line is known: csv-parse reads ahead, so its own
    // check fails before the records before the bad one (the header included) reach this loop.
    relax_column_count: true,
    // TSV exports rarely escape quotes inside fields; take a stray quote literally there.
    relax_quotes: delimiter === "\t",
  });
  pipeline(Readable.from(strictUtf8(path)), parser, () => {
    // Errors surface through the parser's async iterator below (pipeline destroys it with the error).
  });
  const lines = new LineCounter();
  let header: string[] | undefined;
  try {
    for await (const item of parser as AsyncIterable<CsvRecordWithInfo>) {
      const startLine = lines.breaks + 1 + lines.leadingBreaks(item.raw);
      lines.feed(item.raw);
      if (header === undefined) {
        header = item.record;
        const seen = new Set<string>();
        for (const name of header) {
          if (seen.has(name)) throw new DatasetError(path, startLine, "line", `duplicate column "${name}" in header`);
          seen.add(name);
        }
        continue;
      }
      if (item.record.length !== header.length) {
        const n = item.record.length;
        throw new DatasetError(
          path,
          startLine,
          "line",
          `row has ${n} field${n === 1 ? "" : "s"}, the header has ${header.length}`,
        );
      }
      const row: Record<string, unknown> = {};
      header.forEach((name, i) => (row[name] = item.record[i]));
      yield { row, line: startLine };
    }
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    if (error instanceof CsvError) {
      // An unclosed quote is found at the end of the file: every earlier record has come through this loop, so
      // the count here is where the broken record starts. Other errors: csv-parse's `lines` is the line it was
      // reading when it failed (it reads ahead of this loop's count).
      const raw = typeof error.raw === "string" ? error.raw : "";
      const line =
        error.code === "CSV_QUOTE_NOT_CLOSED" || typeof error.lines !== "number" || error.lines < 1
          ? lines.breaks + 1 + lines.leadingBreaks(raw)
          : error.lines;
      throw new DatasetError(path, line, "line", describeCsvError(error));
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parquet

async function* parquetRows(path: string, wanted: readonly string[] | undefined): AsyncGenerator<SourceRow> {
  const fail = (error: unknown): never => {
    const message = (error as Error).message ?? String(error);
    const hint = /unsupported compression codec/.test(message)
      ? " (hyparquet reads uncompressed and snappy pages out of the box; other codecs need the " +
        "hyparquet-compressors package, which ragtune does not ship: re-save the file with snappy)"
      : "";
    throw new DatasetError(path, undefined, "row", `cannot read Parquet: ${message}${hint}`);
  };
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file).catch(fail);
  const present = parquetSchema(metadata).children.map((c) => c.element.name);
  // Read only the needed columns when they all exist; otherwise read all, so a missing-column error can list them.
  const columns = wanted && wanted.every((c) => present.includes(c)) ? [...new Set(wanted)] : undefined;
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd }).catch(fail);
    for (let i = 0; i < rows.length; i++) yield { row: { ...rows[i] }, line: rowStart + i + 1 };
    rowStart = rowEnd;
  }
}
