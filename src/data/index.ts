// Datasets of (anchor, positive[, negatives]) pairs: readers, column mapping, validation report, seeded split
// and the pair-file writer/reader. This folder imports no other src/ folder (eval and train build on it).

export {
  checkReadableFile,
  DATA_FORMATS,
  DatasetError,
  describeValue,
  formatFromPath,
  formatWhere,
  openRows,
  readRows,
  textLines,
} from "./readers.ts";
export type { DataFormat, LocationUnit, ReadRowsOptions, RowSource, SourceRow } from "./readers.ts";
export {
  detectPairColumns,
  loadRecords,
  mapRow,
  mappedColumns,
  readRecords,
  validateColumnMapping,
  whereOf,
} from "./records.ts";
export type {
  ColumnMapping,
  FileSummary,
  LoadedRecords,
  LocatedRecord,
  PairRecord,
  ReadRecordsOptions,
  RecordId,
  RecordSource,
} from "./records.ts";
export { DatasetReport, REPORT_LIST_LIMIT, buildReport } from "./report.ts";
export type {
  DatasetReportData,
  DroppedStats,
  DuplicatePairStats,
  PassageSharingStats,
  ReportOptions,
  RowRef,
  SplitStats,
  TextColumnStats,
  TextSharingStats,
  TokenColumnStats,
  TokenStats,
} from "./report.ts";
export {
  PCG32_DEFAULT_STREAM,
  Pcg32,
  loadDataset,
  pairToJson,
  prepareDataset,
  readPairs,
  seededPermutation,
  splitOverlap,
  splitTrainTest,
  testCount,
  writeJsonl,
} from "./prepare.ts";
export type { LoadDatasetOptions, PrepareOptions, PrepareResult, SplitOptions } from "./prepare.ts";
