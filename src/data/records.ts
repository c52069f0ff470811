// Column mapping: turns the rows of one or more dataset files into (anchor, positive[, negatives]) records.
// Strict on purpose: a missing column, a non-string text or a duplicate id stops the run with `file:line`,
// because a silently coerced `null` or number would end up as a training text ("null", "42").

import { DatasetError, describeValue, formatWhere, openRows } from "./readers.ts";
import type { DataFormat, LocationUnit } from "./readers.ts";

/** A record id: the id column's value as found (number or string), or the 0-based row index. */
export type RecordId = number | string;

export interface PairRecord {
  id: RecordId;
  anchor: string;
  positive: string;
  /** Hard negatives, in the order of the mapping's negative columns; absent when there are none. */
  negatives?: string[];
}

/** Which source column feeds each field. */
export interface ColumnMapping {
  anchor: string;
  positive: string;
  negatives?: readonly string[];
  /** Column holding the record id; without it the id is the 0-based row index over all input files. */
  id?: string;
}

/** Where a record came from: for messages and for the report. */
export interface RecordSource {
  file: string;
  line: number;
  unit: LocationUnit;
}

export interface LocatedRecord {
  record: PairRecord;
  source: RecordSource;
}

export interface FileSummary {
  file: string;
  /** The format actually read (a .json file holding JSON Lines says "jsonl"). */
  format: DataFormat;
  rows: number;
}

export interface ReadRecordsOptions {
  /** Overrides the format implied by each file's extension. */
  format?: DataFormat;
  /**
   * The column mapping. Without it, ragtune's own pair-file layout is detected from the first row of the first
   * file: `anchor`, `positive`, `id` when present, and negatives `negative` / `negative_1`, `negative_2`, ….
   */
  columns?: ColumnMapping;
}

export interface LoadedRecords {
  records: LocatedRecord[];
  files: FileSummary[];
  /** The mapping used (the given one, or the detected one). */
  columns: ColumnMapping;
}

export function whereOf(source: RecordSource): string {
  return formatWhere(source.file, source.line, source.unit);
}

const NEGATIVE_COLUMN = /^negative(?:_(\d+))?$/;

/**
 * The mapping for ragtune's own pair files, given the columns of their first row. Negatives are the columns
 * `negative` (= 1) and `negative_N`, ordered by N.
 */
export function detectPairColumns(columnNames: readonly string[]): ColumnMapping {
  const negatives = columnNames
    .map((name) => ({ name, match: NEGATIVE_COLUMN.exec(name) }))
    .filter((c): c is { name: string; match: RegExpExecArray } => c.match !== null)
    .map((c) => ({ name: c.name, order: c.match[1] === undefined ? 1 : Number(c.match[1]) }))
    .sort((a, b) => a.order - b.order);
  for (let i = 1; i < negatives.length; i++) {
    if (negatives[i]!.order === negatives[i - 1]!.order) {
      throw new Error(`ambiguous negative columns "${negatives[i - 1]!.name}" and "${negatives[i]!.name}"`);
    }
  }
  const mapping: ColumnMapping = { anchor: "anchor", positive: "positive" };
  if (negatives.length > 0) mapping.negatives = negatives.map((n) => n.name);
  if (columnNames.includes("id")) mapping.id = "id";
  return mapping;
}

/** Rejects mappings that name no column or the same column twice. */
export function validateColumnMapping(mapping: ColumnMapping): void {
  const named: [string, unknown][] = [
    ["anchor", mapping.anchor],
    ["positive", mapping.positive],
    ...(mapping.negatives ?? []).map((c, i): [string, unknown] => [`negatives[${i}]`, c]),
  ];
  if (mapping.id !== undefined) named.push(["id", mapping.id]);
  const seen = new Map<string, string>();
  for (const [field, column] of named) {
    if (typeof column !== "string" || column === "") {
      throw new Error(`column mapping: ${field} must name a column, got ${describeValue(column)}`);
    }
    const other = seen.get(column);
    if (other !== undefined) throw new Error(`column mapping: ${other} and ${field} both name column "${column}"`);
    seen.set(column, field);
  }
}

/** The source columns a mapping reads (for columnar readers). */
export function mappedColumns(mapping: ColumnMapping): string[] {
  return [mapping.anchor, mapping.positive, ...(mapping.negatives ?? []), ...(mapping.id ? [mapping.id] : [])];
}

function cell(row: Record<string, unknown>, column: string, source: RecordSource): unknown {
  if (!Object.hasOwn(row, column)) {
    const present = Object.keys(row);
    throw new DatasetError(
      source.file,
      source.line,
      source.unit,
      `missing column "${column}" (columns present: ${present.length > 0 ? present.join(", ") : "none"})`,
      column,
    );
  }
  return row[column];
}

function textCell(row: Record<string, unknown>, column: string, source: RecordSource): string {
  const value = cell(row, column, source);
  if (typeof value !== "string") {
    throw new DatasetError(
      source.file,
      source.line,
      source.unit,
      `column "${column}": expected a string, found ${describeValue(value)}`,
      column,
    );
  }
  return value;
}

function idCell(row: Record<string, unknown>, column: string, source: RecordSource): RecordId {
  const value = cell(row, column, source);
  // Parquet INT64 columns arrive as bigint; ids must stay JSON-serializable numbers.
  if (typeof value === "bigint" && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(value);
  }
  if ((typeof value === "number" && Number.isSafeInteger(value)) || (typeof value === "string" && value !== "")) {
    return value;
  }
  throw new DatasetError(
    source.file,
    source.line,
    source.unit,
    `id column "${column}": expected an integer or a non-empty string, found ${describeValue(value)}`,
    column,
  );
}

/** Maps one row; `rowIndex` is the 0-based index over all files, the id when no id column is named. */
export function mapRow(
  row: Record<string, unknown>,
  mapping: ColumnMapping,
  source: RecordSource,
  rowIndex: number,
): PairRecord {
  const record: PairRecord = {
    id: mapping.id === undefined ? rowIndex : idCell(row, mapping.id, source),
    anchor: textCell(row, mapping.anchor, source),
    positive: textCell(row, mapping.positive, source),
  };
  if (mapping.negatives && mapping.negatives.length > 0) {
    record.negatives = mapping.negatives.map((column) => textCell(row, column, source));
  }
  return record;
}

/**
 * Streams the records of one or more files (in the order given), checking that ids are unique across all of
 * them. Ids 1 and "1" count as the same id, because evaluators compare ids as strings.
 */
export async function* readRecords(
  inputs: string | readonly string[],
  options: ReadRecordsOptions = {},
  onFile?: (summary: FileSummary) => void,
  onColumns?: (mapping: ColumnMapping) => void,
): AsyncGenerator<LocatedRecord> {
  const files = typeof inputs === "string" ? [inputs] : inputs;
  let mapping = options.columns;
  if (mapping) {
    validateColumnMapping(mapping);
    onColumns?.(mapping);
  }
  const firstSeen = new Map<string, string>();
  let rowIndex = 0;
  for (const file of files) {
    const opened = await openRows(file, {
      format: options.format,
      columns: mapping ? mappedColumns(mapping) : undefined,
    });
    const summary: FileSummary = { file, format: opened.format, rows: 0 };
    for await (const { row, line } of opened.rows) {
      const source: RecordSource = { file, line, unit: opened.unit };
      if (mapping === undefined) {
        try {
          mapping = detectPairColumns(Object.keys(row));
        } catch (error) {
          throw new DatasetError(file, line, opened.unit, (error as Error).message);
        }
        onColumns?.(mapping);
      }
      const record = mapRow(row, mapping, source, rowIndex);
      if (mapping.id !== undefined) {
        const key = String(record.id);
        const previous = firstSeen.get(key);
        if (previous !== undefined) {
          throw new DatasetError(
            file,
            line,
            opened.unit,
            `duplicate id ${JSON.stringify(record.id)} (first seen at ${previous})`,
            mapping.id,
          );
        }
        firstSeen.set(key, whereOf(source));
      }
      rowIndex++;
      summary.rows++;
      yield { record, source };
    }
    onFile?.(summary);
  }
}

/** Reads all records of the inputs into memory, with per-file counts and the mapping used. */
export async function loadRecords(
  inputs: string | readonly string[],
  options: ReadRecordsOptions = {},
): Promise<LoadedRecords> {
  const records: LocatedRecord[] = [];
  const files: FileSummary[] = [];
  let columns: ColumnMapping | undefined = options.columns;
  for await (const located of readRecords(
    inputs,
    options,
    (summary) => files.push(summary),
    (mapping) => (columns = mapping),
  )) {
    records.push(located);
  }
  // A dataset with no rows at all never shows its columns; report the default layout then.
  return { records, files, columns: columns ?? { anchor: "anchor", positive: "positive" } };
}
