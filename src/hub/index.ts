// Public surface of src/hub: fetch models from the Hugging Face hub into the cache huggingface_hub uses
// (~/.cache/huggingface/hub), so Python and ragtune share downloads; push a model folder to it; plus the reusable
// progress bar.
export {
  DEFAULT_ENDPOINT,
  DEFAULT_REVISION,
  findToken,
  hfHome,
  hubCacheDir,
  hubFileUrl,
  type HubConfig,
  type HubOptions,
  isCommitHash,
  isRepoId,
  repoFolderName,
  repoIdProblem,
  repoInfoUrl,
  resolveHubConfig,
  tokenFilePath,
  validateRepoId,
} from "./config.ts";
export { hfHubDownload } from "./download.ts";
export {
  EntryNotFoundError,
  GatedRepoError,
  HubAuthError,
  HubConflictError,
  HubConnectionError,
  HubForbiddenError,
  HubError,
  HubHTTPError,
  HubIntegrityError,
  HubValidationError,
  LocalEntryNotFoundError,
  PushFolderError,
  RepositoryNotFoundError,
  RevisionNotFoundError,
} from "./errors.ts";
export {
  filterRepoObjects,
  fnmatch,
  SENTENCE_TRANSFORMERS_ALLOW_PATTERNS,
  SENTENCE_TRANSFORMERS_IGNORE_PATTERNS,
} from "./patterns.ts";
export {
  formatBytes,
  formatDuration,
  ProgressBar,
  type ProgressBarOptions,
  progressEnabled,
  type ProgressStream,
} from "./progress.ts";
export { resolveModelPath, type SnapshotOptions, snapshotDownload } from "./snapshot.ts";
export {
  type PlannedFile,
  planPush,
  type PushFileKind,
  type PushPlan,
  type SkippedEntry,
} from "./push-files.ts";
export {
  DEFAULT_COMMIT_MESSAGE,
  type PushOptions,
  type PushResult,
  pushToHub,
  resolvePushToken,
  tokenSearchList,
} from "./push.ts";
