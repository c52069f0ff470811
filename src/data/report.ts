// The validation report of a dataset: what `ragtune prepare` found, so that nothing is dropped silently.
// Statistics cover every row read (before any drop); `dropped` lists what `dropInvalid` removed.
// The report is plain data (JSON.stringify gives all of it) with a `format()` for people.

import type { ColumnMapping, FileSummary, LocatedRecord, RecordId } from "./records.ts";
import { whereOf } from "./records.ts";

/** How many example locations each list keeps. */
export const REPORT_LIST_LIMIT = 10;

/** One row, by id and `file:line`. */
export interface RowRef {
  id: RecordId;
  where: string;
}

export interface TextColumnStats {
  /** Role in the record: "anchor", "positive", "negative_1", …. */
  field: string;
  /** Source column it was read from. */
  column: string;
  /** Texts that are empty or whitespace-only. */
  empty: number;
  /** The first of them (at most REPORT_LIST_LIMIT), in read order. */
  emptyRows: RowRef[];
  meanChars: number;
  maxChars: number;
}

export interface DuplicatePairStats {
  /** Distinct (anchor, positive) pairs that occur in more than one row. */
  groups: number;
  /** Rows belonging to those groups (every copy counted, the first included). */
  rowsInGroups: number;
  /** Copies beyond the first of each group (= rowsInGroups − groups): rows that repeat an earlier pair. */
  extraCopies: number;
  largestGroup: number;
  /** The first groups (at most REPORT_LIST_LIMIT), each as its rows. */
  examples: RowRef[][];
}

export interface TextSharingStats {
  /** Distinct texts in the column. */
  unique: number;
  /** Distinct texts that occur in more than one row. */
  repeated: number;
  /** Rows whose text is one of the repeated ones. */
  rowsWithRepeated: number;
  /** Most rows sharing one text. */
  maxRows: number;
}

export interface PassageSharingStats extends TextSharingStats {
  /** Distinct passages that are the positive of two or more *different* anchors. */
  sharedByDistinctAnchors: number;
  /** Most distinct anchors sharing one passage. */
  maxDistinctAnchors: number;
}

export interface TokenColumnStats {
  field: string;
  /** Texts with more tokens than maxSeqLength (0 when no maxSeqLength was given). */
  overLimit: number;
  meanTokens: number;
  longest: RowRef & { tokens: number };
}

export interface TokenStats {
  maxSeqLength: number | null;
  columns: TokenColumnStats[];
}

export interface DroppedStats {
  count: number;
  /** The first dropped rows (at most REPORT_LIST_LIMIT) and why. */
  rows: (RowRef & { reason: string })[];
}

export interface SplitStats {
  testSize: number;
  seed: number;
  train: number;
  test: number;
  /** Test rows whose positive text also occurs as a positive in train (leakage of passages into training). */
  testRowsWithPositiveInTrain: number;
  /** Test rows whose anchor text also occurs as an anchor in train. */
  testRowsWithAnchorInTrain: number;
}

export interface DatasetReportData {
  files: FileSummary[];
  columns: ColumnMapping;
  rowsRead: number;
  rowsKept: number;
  texts: TextColumnStats[];
  duplicatePairs: DuplicatePairStats;
  anchors: TextSharingStats;
  positives: PassageSharingStats;
  /** Present when a countTokens callback was given. */
  tokens: TokenStats | null;
  /** Present when dropInvalid was set (count 0 when nothing needed dropping). */
  dropped: DroppedStats | null;
  /** Present after a train/test split (prepareDataset). */
  split: SplitStats | null;
}

export interface ReportOptions {
  /** Drop rows whose anchor or positive is empty or whitespace-only (default: keep and report). */
  dropInvalid?: boolean;
  /** Token counter for the length check (e.g. the model's tokenizer, special tokens included). */
  countTokens?: (text: string) => number;
  /** Texts with more tokens than this are counted as over the limit (they would be truncated). */
  maxSeqLength?: number;
}

const isBlank = (text: string): boolean => text.trim() === "";

const refOf = (located: LocatedRecord): RowRef => ({ id: located.record.id, where: whereOf(located.source) });

/** The texts of a record by field, in a fixed order: anchor, positive, negative_1, …. */
function fieldsOf(columns: ColumnMapping): { field: string; column: string; index: number }[] {
  return [
    { field: "anchor", column: columns.anchor, index: -2 },
    { field: "positive", column: columns.positive, index: -1 },
    ...(columns.negatives ?? []).map((column, i) => ({ field: `negative_${i + 1}`, column, index: i })),
  ];
}

function textAt(located: LocatedRecord, index: number): string {
  const r = located.record;
  return index === -2 ? r.anchor : index === -1 ? r.positive : (r.negatives?.[index] ?? "");
}

function sharing(counts: Map<string, number>): TextSharingStats {
  const stats: TextSharingStats = { unique: counts.size, repeated: 0, rowsWithRepeated: 0, maxRows: 0 };
  for (const n of counts.values()) {
    if (n > 1) {
      stats.repeated++;
      stats.rowsWithRepeated += n;
    }
    stats.maxRows = Math.max(stats.maxRows, n);
  }
  return stats;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

function duplicatePairs(records: readonly LocatedRecord[]): DuplicatePairStats {
  // JSON of the pair is an unambiguous key (no separator can collide with the texts).
  const groups = new Map<string, LocatedRecord[]>();
  for (const located of records) {
    const key = JSON.stringify([located.record.anchor, located.record.positive]);
    const group = groups.get(key);
    if (group) group.push(located);
    else groups.set(key, [located]);
  }
  const stats: DuplicatePairStats = { groups: 0, rowsInGroups: 0, extraCopies: 0, largestGroup: 0, examples: [] };
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    stats.groups++;
    stats.rowsInGroups += group.length;
    stats.extraCopies += group.length - 1;
    stats.largestGroup = Math.max(stats.largestGroup, group.length);
    if (stats.examples.length < REPORT_LIST_LIMIT) stats.examples.push(group.map(refOf));
  }
  return stats;
}

function passageSharing(records: readonly LocatedRecord[]): PassageSharingStats {
  const anchorsByPassage = new Map<string, Set<string>>();
  for (const { record } of records) {
    const anchors = anchorsByPassage.get(record.positive);
    if (anchors) anchors.add(record.anchor);
    else anchorsByPassage.set(record.positive, new Set([record.anchor]));
  }
  let sharedByDistinctAnchors = 0;
  let maxDistinctAnchors = 0;
  for (const anchors of anchorsByPassage.values()) {
    if (anchors.size > 1) sharedByDistinctAnchors++;
    maxDistinctAnchors = Math.max(maxDistinctAnchors, anchors.size);
  }
  return {
    ...sharing(countBy(records, (r) => r.record.positive)),
    sharedByDistinctAnchors,
    maxDistinctAnchors,
  };
}

function tokenStats(
  records: readonly LocatedRecord[],
  columns: ColumnMapping,
  countTokens: (text: string) => number,
  maxSeqLength: number | undefined,
): TokenStats {
  const stats: TokenStats = { maxSeqLength: maxSeqLength ?? null, columns: [] };
  for (const { field, index } of fieldsOf(columns)) {
    const column: TokenColumnStats = { field, overLimit: 0, meanTokens: 0, longest: { id: 0, where: "", tokens: -1 } };
    let total = 0;
    for (const located of records) {
      const tokens = countTokens(textAt(located, index));
      total += tokens;
      if (maxSeqLength !== undefined && tokens > maxSeqLength) column.overLimit++;
      if (tokens > column.longest.tokens) column.longest = { ...refOf(located), tokens };
    }
    column.meanTokens = records.length > 0 ? total / records.length : 0;
    stats.columns.push(column);
  }
  return stats;
}

/** Builds the report of the records read and returns the records to keep (all of them unless dropInvalid). */
export function buildReport(
  records: readonly LocatedRecord[],
  files: readonly FileSummary[],
  columns: ColumnMapping,
  options: ReportOptions = {},
): { report: DatasetReport; kept: LocatedRecord[] } {
  if (options.maxSeqLength !== undefined && options.countTokens === undefined) {
    throw new Error("maxSeqLength needs a countTokens callback to measure texts");
  }
  const texts: TextColumnStats[] = fieldsOf(columns).map(({ field, column, index }) => {
    const stats: TextColumnStats = { field, column, empty: 0, emptyRows: [], meanChars: 0, maxChars: 0 };
    let totalChars = 0;
    for (const located of records) {
      const text = textAt(located, index);
      totalChars += text.length;
      stats.maxChars = Math.max(stats.maxChars, text.length);
      if (isBlank(text)) {
        stats.empty++;
        if (stats.emptyRows.length < REPORT_LIST_LIMIT) stats.emptyRows.push(refOf(located));
      }
    }
    stats.meanChars = records.length > 0 ? totalChars / records.length : 0;
    return stats;
  });

  let kept: LocatedRecord[] = [...records];
  let dropped: DroppedStats | null = null;
  if (options.dropInvalid) {
    dropped = { count: 0, rows: [] };
    kept = [];
    for (const located of records) {
      const reasons = [
        isBlank(located.record.anchor) ? "anchor" : "",
        isBlank(located.record.positive) ? "positive" : "",
      ].filter((r) => r !== "");
      if (reasons.length === 0) {
        kept.push(located);
        continue;
      }
      dropped.count++;
      if (dropped.rows.length < REPORT_LIST_LIMIT) {
        dropped.rows.push({ ...refOf(located), reason: `empty ${reasons.join(" and ")}` });
      }
    }
  }

  const report = new DatasetReport({
    files: files.map((f) => ({ ...f })),
    columns,
    rowsRead: records.length,
    rowsKept: kept.length,
    texts,
    duplicatePairs: duplicatePairs(records),
    anchors: sharing(countBy(records, (r) => r.record.anchor)),
    positives: passageSharing(records),
    tokens: options.countTokens ? tokenStats(records, columns, options.countTokens, options.maxSeqLength) : null,
    dropped,
    split: null,
  });
  return { report, kept };
}

const num = (n: number): string => n.toLocaleString("en-US");
const plural = (n: number, one: string, many: string): string => `${num(n)} ${n === 1 ? one : many}`;
const rows = (n: number): string => plural(n, "row", "rows");
const refText = (ref: RowRef): string => `${ref.where} (id ${JSON.stringify(ref.id)})`;

/** The report: plain data (JSON-serializable as is) plus `format()`. */
export class DatasetReport implements DatasetReportData {
  files!: FileSummary[];
  columns!: ColumnMapping;
  rowsRead!: number;
  rowsKept!: number;
  texts!: TextColumnStats[];
  duplicatePairs!: DuplicatePairStats;
  anchors!: TextSharingStats;
  positives!: PassageSharingStats;
  tokens!: TokenStats | null;
  dropped!: DroppedStats | null;
  split!: SplitStats | null;

  constructor(data: DatasetReportData) {
    Object.assign(this, data);
  }

  /** Rebuilds a report from its JSON form. */
  static fromJSON(data: DatasetReportData): DatasetReport {
    return new DatasetReport(data);
  }

  /** A human-readable, multi-line summary. */
  format(): string {
    const out: string[] = [];
    const c = this.columns;
    const mapping = [
      `anchor ← "${c.anchor}"`,
      `positive ← "${c.positive}"`,
      ...(c.negatives ?? []).map((n, i) => `negative_${i + 1} ← "${n}"`),
      c.id === undefined ? "id ← row index (0-based)" : `id ← "${c.id}"`,
    ];
    out.push("Dataset report");
    out.push(`  files: ${this.files.map((f) => `${f.file} (${f.format}, ${rows(f.rows)})`).join("; ") || "none"}`);
    out.push(`  columns: ${mapping.join(", ")}`);
    const droppedCount = this.rowsRead - this.rowsKept;
    out.push(`  rows read: ${num(this.rowsRead)}; kept: ${num(this.rowsKept)}; dropped: ${num(droppedCount)}`);
    out.push(`  (the statistics below cover all ${rows(this.rowsRead)} read, before any drop)`);

    out.push("Empty or whitespace-only texts:");
    for (const t of this.texts) {
      const list = t.emptyRows.map(refText).join(", ");
      const more = t.empty > t.emptyRows.length ? `, … ${num(t.empty - t.emptyRows.length)} more` : "";
      out.push(`  ${t.field}: ${t.empty === 0 ? "none" : `${rows(t.empty)}: ${list}${more}`}`);
    }

    const d = this.duplicatePairs;
    out.push(
      d.groups === 0
        ? "Exact duplicate (anchor, positive) pairs: none"
        : `Exact duplicate (anchor, positive) pairs: ${plural(d.groups, "group", "groups")} (distinct pairs ` +
            `that occur more than once) covering ${rows(d.rowsInGroups)} = ` +
            `${plural(d.groups, "first occurrence", "first occurrences")} + ` +
            `${plural(d.extraCopies, "extra copy", "extra copies")} (largest group: ${rows(d.largestGroup)})`,
    );
    for (const group of d.examples) out.push(`  ${group.map(refText).join(" = ")}`);
    if (d.groups > d.examples.length) out.push(`  … ${num(d.groups - d.examples.length)} more groups`);

    const a = this.anchors;
    out.push(
      `Anchors: ${num(a.unique)} distinct texts; ${num(a.repeated)} of them occur in more than one row ` +
        `(${rows(a.rowsWithRepeated)} in all; at most ${rows(a.maxRows)} share one anchor)`,
    );
    const p = this.positives;
    out.push(
      `Positives: ${num(p.unique)} distinct passages; ${num(p.repeated)} of them are the positive of more than ` +
        `one row (${rows(p.rowsWithRepeated)} in all; at most ${rows(p.maxRows)} share one passage); ` +
        `${num(p.sharedByDistinctAnchors)} are shared by two or more different anchors (at most ` +
        `${num(p.maxDistinctAnchors)} anchors)`,
    );
    out.push(
      `Lengths in characters: ${this.texts
        .map((t) => `${t.field} mean ${t.meanChars.toFixed(1)}, max ${num(t.maxChars)}`)
        .join("; ")}`,
    );

    if (this.tokens) {
      const limit = this.tokens.maxSeqLength;
      out.push(`Lengths in tokens${limit === null ? "" : ` (maxSeqLength ${num(limit)})`}:`);
      for (const t of this.tokens.columns) {
        const over = limit === null ? "" : `${num(t.overLimit)} over the limit (truncated in training), `;
        out.push(
          `  ${t.field}: ${over}mean ${t.meanTokens.toFixed(1)}, longest ${num(t.longest.tokens)} at ${refText(t.longest)}`,
        );
      }
    }

    if (this.dropped) {
      out.push(`Dropped (dropInvalid: empty anchor or positive): ${rows(this.dropped.count)}`);
      for (const r of this.dropped.rows) out.push(`  ${refText(r)}: ${r.reason}`);
      if (this.dropped.count > this.dropped.rows.length) {
        out.push(`  … ${num(this.dropped.count - this.dropped.rows.length)} more`);
      }
    } else {
      const blank = this.texts.filter((t) => t.field === "anchor" || t.field === "positive").some((t) => t.empty > 0);
      if (blank) out.push("Kept rows with an empty anchor or positive (dropInvalid drops them).");
    }

    if (this.split) {
      const s = this.split;
      out.push(
        `Split (seed ${s.seed}, testSize ${s.testSize}): train ${rows(s.train)}, test ${rows(s.test)}; ` +
          `${rows(s.testRowsWithPositiveInTrain)} of test have a positive that also occurs in train, ` +
          `${rows(s.testRowsWithAnchorInTrain)} an anchor that also occurs in train`,
      );
    }
    return out.join("\n");
  }
}
