// A whole model from the hub: the port of huggingface_hub's snapshot_download (_snapshot_download.py, the v0.x
// design that lists files with the repo info), restricted by default to what a sentence-transformers model needs,
// and resolveModelPath, the "local folder or hub id?" decision every entry point (CLI, training, encoding) makes.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";

import {
  DEFAULT_REVISION,
  type HubOptions,
  isCommitHash,
  repoIdProblem,
  repoInfoUrl,
  resolveHubConfig,
  validateRepoId,
} from "./config.ts";
import { exists, readRef, repoPaths, snapshotPath, writeRef } from "./cache.ts";
import { fetchPlanned, type FilePlan, notCachedError, planFile } from "./download.ts";
import {
  GatedRepoError,
  HubError,
  HubValidationError,
  type ResponseContext,
  RepositoryNotFoundError,
  RevisionNotFoundError,
} from "./errors.ts";
import { fetchRepoInfo, isRecoverableForCache, type RepoInfo } from "./http.ts";
import { effectivePatterns, filterRepoObjects } from "./patterns.ts";
import { ProgressBar, progressEnabled } from "./progress.ts";

export interface SnapshotOptions extends HubOptions {
  /**
   * fnmatch patterns of the files to fetch (`*` also matches "/"; "dir/" means "dir/*"). Default: the files of a
   * sentence-transformers model (SENTENCE_TRANSFORMERS_ALLOW_PATTERNS); ["*"] fetches everything.
   */
  allowPatterns?: string | readonly string[];
  /** fnmatch patterns of files to skip (with the default allow list, added to its default vetoes). */
  ignorePatterns?: string | readonly string[];
  /** Files fetched in parallel (snapshot_download's max_workers, default 8). */
  maxWorkers?: number;
}

/**
 * Run fn over items with at most `limit` in flight. On the first failure no new item starts, the running ones are
 * awaited (so nothing keeps writing into the cache after we return), and that first error is thrown.
 */
async function mapPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (e) {
        if (!failed) firstError = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw firstError;
  return results;
}

/**
 * Download a model repo (or the files of it selected by the patterns) into the cache and return the snapshot
 * folder <cache>/models--org--name/snapshots/<commit>. Mirrors snapshot_download: one repo-info request lists the
 * files and resolves the revision to a commit; each file is then fetched at that commit, so files already in the
 * snapshot cost no request at all. When the hub cannot be asked (offline, network down, private repo without a
 * token), the cached snapshot of refs/<revision> (or of the commit sha itself) is returned if it exists.
 */
export async function snapshotDownload(repoId: string, opts: SnapshotOptions = {}): Promise<string> {
  validateRepoId(repoId);
  const cfg = resolveHubConfig(opts);
  const revision = opts.revision ?? DEFAULT_REVISION;
  const paths = repoPaths(cfg.cacheDir, repoId);
  const ctx: ResponseContext = { repoId, revision, endpoint: cfg.endpoint, tokenSource: cfg.tokenSource };

  let info: RepoInfo | undefined;
  let apiError: unknown;
  if (!cfg.offline) {
    try {
      info = await fetchRepoInfo(repoInfoUrl(cfg.endpoint, repoId, revision), cfg, ctx);
    } catch (e) {
      // RevisionNotFound is definitive; network and other HTTP errors may still be served from the cache.
      if (e instanceof RevisionNotFoundError || !isRecoverableForCache(e)) throw e;
      apiError = e;
    }
  }

  if (info === undefined) {
    const commit = isCommitHash(revision) ? revision : await readRef(paths, revision);
    if (commit !== undefined) {
      const folder = snapshotPath(paths, commit, repoId);
      // Like Python we cannot tell whether every file is there; the loader will say which one is missing.
      if (await exists(folder)) return folder;
    }
    throw notCachedError(apiError, cfg, { repoId, revision }, paths.storage);
  }

  if (!isCommitHash(info.sha)) {
    throw new HubError(
      `The hub returned "${info.sha}" as the commit of ${repoId} (revision "${revision}").`,
      ctx,
    );
  }
  const commit = info.sha;
  await writeRef(paths, revision, commit);

  const { allow, ignore } = effectivePatterns(opts.allowPatterns, opts.ignorePatterns);
  const files = filterRepoObjects(info.files, allow, ignore);
  const workers = opts.maxWorkers ?? 8;

  // First all metadata (cheap HEADs, none for files already in this commit's snapshot), then the bytes, so that one
  // bar can show the total of what is really downloaded.
  const plans = await mapPool(files, workers, (f) => planFile(repoId, f, commit, cfg));
  const todo = plans.filter((p): p is Extract<FilePlan, { kind: "download" }> => p.kind === "download");
  if (todo.length > 0) {
    const total = todo.reduce((s, p) => s + p.size, 0);
    const label = `${repoId}: ${todo.length} file${todo.length === 1 ? "" : "s"}`;
    const bar = progressEnabled(opts.progress) ? new ProgressBar({ label, unit: "B", total }) : undefined;
    try {
      await mapPool(todo, workers, (p) => fetchPlanned(p, cfg, bar));
    } finally {
      bar?.done();
    }
  }
  return snapshotPath(paths, commit, repoId);
}

/** Does `s` look like a file-system path rather than a hub id ("./x", "../x", "/x", "~/x", "C:\x", "a\b")? */
function looksLikePath(s: string): boolean {
  return /^(\.{1,2}([/\\]|$)|[/\\~])/.test(s) || /^[A-Za-z]:/.test(s) || s.includes("\\");
}

/**
 * The model folder for `idOrDir`: an existing local directory is returned as is; otherwise a hub id ("org/name",
 * or a legacy bare "name") is downloaded (snapshotDownload, sentence-transformers files by default) and its snapshot
 * folder returned. Anything else is an error saying both that the folder does not exist and why it is not a repo id.
 */
export async function resolveModelPath(idOrDir: string, opts: SnapshotOptions = {}): Promise<string> {
  // Only "nothing there" makes it a hub id: a path that exists but cannot be read (a symlink loop, no permission)
  // is reported as such, never retried against the hub.
  const st = await stat(idOrDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
    const why =
      e.code === "ELOOP"
        ? "too many levels of symbolic links (ELOOP)"
        : e.code === "EACCES" || e.code === "EPERM"
          ? `permission denied (${e.code})`
          : e.message;
    throw new HubValidationError(`The model folder "${idOrDir}" cannot be read: ${why}.`, { cause: e });
  });
  if (st?.isDirectory()) return idOrDir;
  if (st !== undefined) {
    throw new HubValidationError(`"${idOrDir}" is a file, not a model folder or a Hugging Face repo id.`);
  }
  const problem = looksLikePath(idOrDir) ? "it looks like a path" : repoIdProblem(idOrDir);
  if (problem !== undefined) {
    throw new HubValidationError(
      `Model "${idOrDir}" not found: the folder ${resolve(idOrDir)} does not exist, and it is not a valid Hugging ` +
        `Face repo id (${problem}).`,
    );
  }
  let folder: string;
  try {
    folder = await snapshotDownload(idOrDir, opts);
  } catch (e) {
    if (e instanceof RepositoryNotFoundError && !(e instanceof GatedRepoError)) {
      e.message += ` (There is no local folder ${resolve(idOrDir)} either.)`;
    }
    throw e;
  }
  if (!(await exists(folder))) {
    throw new HubError(
      `Repo ${idOrDir} (revision "${opts.revision ?? DEFAULT_REVISION}") has none of the files of a ` +
        `sentence-transformers model (modules.json, config.json, model.safetensors, ...).`,
      { repoId: idOrDir, revision: opts.revision ?? DEFAULT_REVISION },
    );
  }
  return folder;
}
