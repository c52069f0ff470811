// Small helpers every layer may import (they import nothing of ragtune): atomic writes, plain-object checks,
// human-readable formatting, the seeded RNG.
export {
  FileWriteError,
  appendFileNoFollow,
  fsyncDir,
  tempPathFor,
  writeFileAtomic,
  writeFully,
  writeJsonAtomic,
} from "./atomic-write.ts";
export {
  FileReadError,
  READ_LIMITS,
  type ReadKind,
  isPresentRegularFile,
  jsonSyntaxDetail,
  openRegularFile,
  readJsonFile,
  readLimit,
  readRegularFile,
  readRegularText,
} from "./read-file.ts";
export { formatBytes, formatDuration } from "./format.ts";
export { isPlainObject } from "./plain-object.ts";
export { PCG32_DEFAULT_STREAM, Pcg32, seededPermutation } from "./rng.ts";
