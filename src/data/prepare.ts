// The engine behind `ragtune prepare`: read + map + validate + (optionally) drop + split + write, and the
// reader of the pair files it writes (`readPairs`, used by eval and train).
//
// Pair-file layout (JSON Lines, UTF-8, "\n" line ends), one record per line, keys in this order:
//   {"id": <number|string>, "anchor": "...", "positive": "..."[, "negative_1": "...", "negative_2": "...", …]}
// Negatives are always written as `negative_1`, `negative_2`, … (whatever their source columns were called), so
// their order is explicit; readPairs also accepts a single `negative` column (the sentence-transformers triplet
// name). sentence-transformers itself reads the columns positionally: anchor, positive, then the negatives.
//
// Seeded train/test split. The reference recipe used HF `train_test_split(test_size=0.1)` with no seed, so its
// split cannot be reproduced by anyone; ragtune's can, on any platform and Node version:
//   - PRNG: PCG32 (PCG-XSH-RR 64/32, M. E. O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically
//     Good Algorithms for Random Number Generation", 2014; reference C code pcg32_srandom_r / pcg32_random_r),
//     with exact 64-bit integer arithmetic (BigInt), so no floating point is involved anywhere;
//   - unbiased bounded draws by rejection (pcg32_boundedrand_r);
//   - a Fisher–Yates shuffle of the row indices (Durstenfeld: i from n−1 down to 1, j uniform in [0, i]).
// Sizes follow sklearn / HF `train_test_split`: test = ceil(testSize × n) for a fraction (in floating point, as
// they do: 0.07 × 100 = 7.000000000000001 gives 8), testSize itself for an integer; train = n − test.
// Which rows go to test: the first `test` indices of the shuffled permutation (as HF does). This is a different
// generator from NumPy's, so the rows chosen differ from HF's for the same seed; only the sizes match.
// Output order: each side keeps the input order (sorted by original row index), not the shuffled order, so that
// written files read and diff naturally; training shuffles batches itself.

import { join } from "node:path";
import { writeFileAtomic, writeFully } from "../util/atomic-write.ts";
import { PCG32_DEFAULT_STREAM, Pcg32, seededPermutation } from "../util/rng.ts";
import type { DataFormat } from "./readers.ts";
import { loadRecords } from "./records.ts";
import type { ColumnMapping, PairRecord } from "./records.ts";
import { buildReport } from "./report.ts";
import type { DatasetReport, ReportOptions } from "./report.ts";

// ---------------------------------------------------------------------------------------------------------
// Seeded split

export { PCG32_DEFAULT_STREAM, Pcg32, seededPermutation };

export interface SplitOptions {
  /**
   * A fraction in [0, 1) (test = ceil(testSize × n)) or an integer count ≥ 1 of test rows (so 1 means one row:
   * JavaScript cannot tell 1 from 1.0, unlike sklearn). Default 0.1.
   */
  testSize?: number;
  /** Default 42. */
  seed?: number;
}

/** The number of test rows for n rows (sklearn / HF rule); throws when the split would leave no train rows. */
export function testCount(n: number, testSize: number): number {
  if (!Number.isFinite(testSize) || testSize < 0) throw new Error(`testSize must be ≥ 0, got ${testSize}`);
  let count: number;
  if (Number.isInteger(testSize) && testSize >= 1) count = testSize;
  else if (testSize < 1) count = Math.ceil(testSize * n);
  else throw new Error(`testSize must be a fraction below 1 or an integer count, got ${testSize}`);
  if (count > n) throw new Error(`testSize ${testSize} asks for ${count} test rows but there are only ${n}`);
  if (n > 0 && count === n) throw new Error(`testSize ${testSize} leaves no rows for training (${n} rows)`);
  return count;
}

/** A reproducible split; each side keeps the input order. */
export function splitTrainTest<T>(records: readonly T[], options: SplitOptions = {}): { train: T[]; test: T[] } {
  const n = records.length;
  const count = testCount(n, options.testSize ?? 0.1);
  const inTest = new Uint8Array(n);
  const permutation = seededPermutation(n, options.seed ?? 42);
  for (let k = 0; k < count; k++) inTest[permutation[k]!] = 1;
  const train: T[] = [];
  const test: T[] = [];
  records.forEach((record, i) => (inTest[i] ? test : train).push(record));
  return { train, test };
}

/** How much of a test set also appears in train (rows counted on the test side). */
export function splitOverlap(
  train: readonly { anchor: string; positive: string }[],
  test: readonly { anchor: string; positive: string }[],
): { testRowsWithPositiveInTrain: number; testRowsWithAnchorInTrain: number } {
  const trainPositives = new Set(train.map((r) => r.positive));
  const trainAnchors = new Set(train.map((r) => r.anchor));
  return {
    testRowsWithPositiveInTrain: test.filter((r) => trainPositives.has(r.positive)).length,
    testRowsWithAnchorInTrain: test.filter((r) => trainAnchors.has(r.anchor)).length,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Pair files and prepare

/** The JSON object written for one record (the key order above). */
export function pairToJson(record: PairRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { id: record.id, anchor: record.anchor, positive: record.positive };
  record.negatives?.forEach((text, i) => (out[`negative_${i + 1}`] = text));
  return out;
}

/**
 * Writes records as JSON Lines through util's writeFileAtomic: a reader never sees a half-written file, a
 * failed write (ENOSPC, …) names `path`, leaves no temporary file and keeps any previous file intact. Lines are
 * written in ~1 MiB pieces, so a large dataset is never one string.
 */
export async function writeJsonl(path: string, records: Iterable<PairRecord>): Promise<number> {
  let count = 0;
  writeFileAtomic(path, (fd) => {
    let pending = "";
    for (const record of records) {
      count++;
      pending += `${JSON.stringify(pairToJson(record))}\n`;
      if (pending.length >= WRITE_PIECE) {
        writeFully(fd, Buffer.from(pending, "utf8"));
        pending = "";
      }
    }
    if (pending !== "") writeFully(fd, Buffer.from(pending, "utf8"));
  });
  return count;
}

const WRITE_PIECE = 1 << 20;

export interface LoadDatasetOptions extends ReportOptions {
  /** Overrides the format implied by each file's extension. */
  format?: DataFormat;
  /** Column mapping; without it, ragtune's pair-file layout is detected (see readPairs). */
  columns?: ColumnMapping;
}

/** Reads, maps and validates one or more files; returns the kept records and the report. */
export async function loadDataset(
  input: string | readonly string[],
  options: LoadDatasetOptions = {},
): Promise<{ records: PairRecord[]; report: DatasetReport }> {
  const loaded = await loadRecords(input, { format: options.format, columns: options.columns });
  const { report, kept } = buildReport(loaded.records, loaded.files, loaded.columns, options);
  return { records: kept.map((r) => r.record), report };
}

/**
 * Reads a ragtune pair file (what prepareDataset writes, or any file in that layout): by default the columns
 * `anchor`, `positive`, `id` (when present; else the row index) and `negative`/`negative_N`. Malformed lines,
 * missing columns, non-string texts and duplicate ids throw with `file:line`; other findings go to the report.
 */
export async function readPairs(
  path: string | readonly string[],
  columns?: ColumnMapping,
  options: Omit<LoadDatasetOptions, "columns"> = {},
): Promise<{ records: PairRecord[]; report: DatasetReport }> {
  return loadDataset(path, { ...options, columns });
}

export interface PrepareOptions extends ReportOptions {
  /** One file, or several read in order as one dataset (ids must be unique across them). */
  input: string | readonly string[];
  format?: DataFormat;
  columns: ColumnMapping;
  /** Fraction (test = ceil(testSize × n)) or integer count; default 0.1. */
  testSize?: number;
  /** Default 42. */
  seed?: number;
  /** Folder that receives train.jsonl and test.jsonl (created if missing). */
  outDir: string;
}

export interface PrepareResult {
  train: number;
  test: number;
  report: DatasetReport;
  trainPath: string;
  testPath: string;
}

/** `ragtune prepare`: writes outDir/train.jsonl and outDir/test.jsonl and returns the counts and the report. */
export async function prepareDataset(options: PrepareOptions): Promise<PrepareResult> {
  const testSize = options.testSize ?? 0.1;
  const seed = options.seed ?? 42;
  const { records, report } = await loadDataset(options.input, options);
  if (records.length === 0) {
    throw new Error(`no records to split (${report.rowsRead} read, ${report.rowsRead - report.rowsKept} dropped)`);
  }
  const { train, test } = splitTrainTest(records, { testSize, seed });
  report.split = { testSize, seed, train: train.length, test: test.length, ...splitOverlap(train, test) };
  const trainPath = join(options.outDir, "train.jsonl");
  const testPath = join(options.outDir, "test.jsonl");
  await writeJsonl(trainPath, train);
  await writeJsonl(testPath, test);
  return { train: train.length, test: test.length, report, trainPath, testPath };
}
