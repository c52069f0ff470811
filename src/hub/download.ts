// One file from the hub into the shared cache: the port of huggingface_hub's hf_hub_download
// (file_download._hf_hub_download_to_cache_dir), split in two steps so snapshotDownload can ask for all metadata
// first and show one progress bar for the bytes: planFile (cache lookups + the HEAD request) and fetchPlanned (the
// locked, resumable, verified download of the blob, then the snapshot symlink).
import { createHash, type Hash } from "node:crypto";
import { constants as fsConstants, createReadStream } from "node:fs";
import { lstat, mkdir, open, rename, rm, statfs } from "node:fs/promises";
import { dirname } from "node:path";

import {
  DEFAULT_REVISION,
  fileDeadlineMs,
  type HubConfig,
  type HubOptions,
  hubFileUrl,
  isCommitHash,
  resolveHubConfig,
  validateRelativeFilename,
  validateRepoId,
} from "./config.ts";
import {
  blobPath,
  exists,
  linkPointer,
  markNoExist,
  pointerPath,
  readRef,
  type RepoPaths,
  repoPaths,
  withBlobLock,
  writeRef,
} from "./cache.ts";
import {
  EntryNotFoundError,
  errorFromResponse,
  HubConnectionError,
  HubError,
  HubHTTPError,
  HubIntegrityError,
  HubValidationError,
  LocalEntryNotFoundError,
  RepositoryNotFoundError,
  type ResponseContext,
} from "./errors.ts";
import {
  describeNetworkError,
  getFileMetadata,
  hubHeaders,
  isRecoverableForCache,
  MetadataError,
} from "./http.ts";
import { ProgressBar, progressEnabled } from "./progress.ts";

/** Where progress goes: a ProgressBar fits. */
export interface ProgressSink {
  update(n: number): void;
  skip(n: number): void;
}

/** Either the file is already in the cache, or everything needed to download it. */
export type FilePlan =
  | { kind: "cached"; path: string }
  | {
      kind: "download";
      repoId: string;
      filename: string;
      commit: string;
      etag: string;
      size: number;
      url: string;
      /** Send the token to `url`? Not to another host: the CDN URL is pre-signed (see below). */
      sendToken: boolean;
      paths: RepoPaths;
      blob: string;
      pointer: string;
    };

/** How many times a dropped or stalled download is resumed before giving up (http_get's _nb_retries). */
const MAX_RETRIES = 5;
const SHA256 = /^[0-9a-f]{64}$/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Download one file of a repo into the cache (or find it there) and return its path under snapshots/<commit>/. */
export async function hfHubDownload(
  repoId: string,
  filename: string,
  opts: HubOptions = {},
): Promise<string> {
  const cfg = resolveHubConfig(opts);
  const plan = await planFile(repoId, filename, opts.revision ?? DEFAULT_REVISION, cfg);
  if (plan.kind === "cached") return plan.path;
  const bar = progressEnabled(opts.progress)
    ? new ProgressBar({ label: filename, unit: "B", total: plan.size })
    : undefined;
  try {
    return await fetchPlanned(plan, cfg, bar);
  } finally {
    bar?.done();
  }
}

/**
 * Everything of _hf_hub_download_to_cache_dir before the download: the commit-sha shortcut, the HEAD request, the
 * fallback to the cache when the hub cannot be asked (offline, network down, private repo without token, hub down),
 * the refs/ update, and the "already cached" checks.
 */
export async function planFile(
  repoId: string,
  filename: string,
  revision: string,
  cfg: HubConfig,
): Promise<FilePlan> {
  validateRepoId(repoId);
  validateRelativeFilename(filename, repoId);
  const paths = repoPaths(cfg.cacheDir, repoId);

  // A commit sha is immutable: if its snapshot has the file, no request at all.
  if (isCommitHash(revision) && !cfg.forceDownload) {
    const pointer = pointerPath(paths, revision, filename, repoId);
    if (await exists(pointer)) return { kind: "cached", path: pointer };
  }

  const ctx: ResponseContext = {
    repoId,
    revision,
    filename,
    endpoint: cfg.endpoint,
    tokenSource: cfg.tokenSource,
  };
  let meta: Awaited<ReturnType<typeof headFile>> | undefined;
  let headError: unknown;
  if (!cfg.offline) {
    try {
      meta = await headFile(repoId, filename, revision, cfg, ctx, paths);
    } catch (e) {
      if (!isRecoverableForCache(e)) throw e;
      headError = e;
    }
  }

  if (meta === undefined) {
    if (!cfg.forceDownload) {
      const commit = isCommitHash(revision) ? revision : await readRef(paths, revision);
      if (commit !== undefined) {
        const pointer = pointerPath(paths, commit, filename, repoId);
        if (await exists(pointer)) return { kind: "cached", path: pointer };
      }
    }
    throw notCachedError(headError, cfg, { repoId, revision, filename }, paths.storage);
  }

  const { commit, etag, size, location, url } = meta;
  const blob = blobPath(paths, etag, repoId);
  const pointer = pointerPath(paths, commit, filename, repoId);
  if (!cfg.forceDownload && (await exists(pointer))) {
    await writeRef(paths, revision, commit);
    return { kind: "cached", path: pointer };
  }
  await writeRef(paths, revision, commit);
  // _get_metadata_or_catch_error: a redirect to another host is a pre-signed CDN URL: don't leak the token there;
  // nor over plain http when the hub itself was asked over https (a downgrade, even to the same host).
  const sendToken = tokenMayFollow(url, location);
  return {
    kind: "download",
    repoId,
    filename,
    commit,
    etag,
    size,
    url: location,
    sendToken,
    paths,
    blob,
    pointer,
  };
}

/**
 * Whether the token sent to `from` may also go to `to`: same host, and not downgraded from https to http (where
 * anyone on the path could read it). A pre-signed CDN URL on another host needs no token.
 */
export function tokenMayFollow(from: string, to: string): boolean {
  const a = new URL(from);
  const b = new URL(to);
  return a.host === b.host && (a.protocol === b.protocol || b.protocol === "https:");
}

/** The HEAD request, with the checks of _get_metadata_or_catch_error, and one retry on a transient failure. */
async function headFile(
  repoId: string,
  filename: string,
  revision: string,
  cfg: HubConfig,
  ctx: ResponseContext,
  paths: RepoPaths,
): Promise<{ commit: string; etag: string; size: number; location: string; url: string }> {
  const url = hubFileUrl(cfg.endpoint, repoId, revision, filename);
  let meta;
  for (let attempt = 0; ; attempt++) {
    try {
      meta = await getFileMetadata(url, cfg, ctx);
      break;
    } catch (e) {
      if (e instanceof EntryNotFoundError && e.commitHash) {
        // Cache the non-existence of the file, and the revision → commit it was looked up at, like Python.
        await markNoExist(paths, e.commitHash, filename);
        await writeRef(paths, revision, e.commitHash);
      }
      // Python retries the HEAD once (retry_on_errors) when nothing is cached; a blip should not fail a training run.
      const transient =
        e instanceof HubConnectionError ||
        (e instanceof HubHTTPError && [429, 500, 502, 503, 504].includes(e.status ?? 0));
      if (!transient || attempt >= 1) throw e;
      await sleep(500);
    }
  }
  const where = { repoId, revision, filename, url };
  if (!meta.commitHash) {
    throw new MetadataError(
      `${url} answered without X-Repo-Commit: this is not a Hugging Face hub (check HF_ENDPOINT, proxy and firewall).`,
      where,
    );
  }
  if (!meta.etag)
    throw new MetadataError(`${url} answered without an ETag: cannot name the cached blob.`, where);
  if (meta.size === undefined) throw new MetadataError(`${url} answered without a file size.`, where);
  return { commit: meta.commitHash, etag: meta.etag, size: meta.size, location: meta.location, url };
}

/**
 * _raise_on_head_call_error: nothing usable in the cache. Offline → say so and where we looked; repo not found,
 * gated or 401 → the hub's own error (it says to set HF_TOKEN); anything else (network, hub down) → not cached +
 * the reason.
 */
export function notCachedError(
  cause: unknown,
  cfg: HubConfig,
  where: { repoId: string; revision: string; filename?: string | undefined },
  storage: string,
): Error {
  const what = where.filename
    ? `File "${where.filename}" of ${where.repoId} (revision "${where.revision}")`
    : `${where.repoId} (revision "${where.revision}")`;
  // With forceDownload the cache was deliberately not consulted: "not in the cache" would be misleading.
  if (cfg.forceDownload) {
    if (cause instanceof Error) return cause;
    return new HubValidationError(
      `forceDownload cannot be used while ${cfg.offlineReason} (for ${what}).`,
      where,
    );
  }
  if (cause === undefined) {
    return new LocalEntryNotFoundError(
      `${what} is not in the cache at ${storage} and ${cfg.offlineReason} forbids downloading it. Download it once ` +
        `online (without HF_HUB_OFFLINE=1), or point HF_HUB_CACHE at a cache that has it.`,
      where,
    );
  }
  if (cause instanceof RepositoryNotFoundError || (cause instanceof HubHTTPError && cause.status === 401))
    return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new LocalEntryNotFoundError(
    `${what} could not be fetched from ${cfg.endpoint} (${reason}) and is not in the cache at ${storage}. Check ` +
      `your connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use cached models only.`,
    { ...where, cause },
  );
}

/** The locked part of _hf_hub_download_to_cache_dir: reuse or download the blob, then link the snapshot file. */
export async function fetchPlanned(
  plan: Extract<FilePlan, { kind: "download" }>,
  cfg: HubConfig,
  progress?: ProgressSink,
): Promise<string> {
  await mkdir(dirname(plan.blob), { recursive: true });
  return withBlobLock(plan.paths.locks, plan.etag, async () => {
    // Another task or process may have finished this blob while we waited for the lock.
    if (cfg.forceDownload || !(await exists(plan.blob))) await downloadBlob(plan, cfg, progress);
    else progress?.skip(plan.size);
    await linkPointer(plan.blob, plan.pointer);
    return plan.pointer;
  });
}

/**
 * _download_to_tmp_and_move + http_get: stream to blobs/<etag>.incomplete, resuming what a previous run left there
 * with `Range: bytes=N-` (a 200 answer means the server ignored the Range: start over), resume again when the
 * connection drops or stalls, then check the size (and the sha256 when the etag is one, i.e. an LFS file) and
 * rename into place. A file that fails the checks is deleted: a half or wrong file never gets the final name.
 */
async function downloadBlob(
  plan: Extract<FilePlan, { kind: "download" }>,
  cfg: HubConfig,
  progress?: ProgressSink,
): Promise<void> {
  const incomplete = `${plan.blob}.incomplete`;
  const where = { repoId: plan.repoId, revision: plan.commit, filename: plan.filename, url: plan.url };
  if (plan.size > cfg.maxFileBytes) {
    throw new HubIntegrityError(
      `"${plan.filename}" of ${plan.repoId} is announced as ${plan.size} bytes, more than the ${cfg.maxFileBytes}-byte ` +
        `download bound; nothing was written (raise maxFileBytes / RAGTUNE_HUB_MAX_FILE_BYTES if it is genuine).`,
      where,
    );
  }
  // A partial file is only resumed when it is a regular file: a symlink planted in a shared cache is removed (the
  // link, never its target) and the download starts over; the open below refuses to follow one (O_NOFOLLOW).
  const partial = await lstat(incomplete).catch(() => undefined);
  if (cfg.forceDownload || (partial !== undefined && !partial.isFile()))
    await rm(incomplete, { force: true });
  let written = partial?.isFile() && !cfg.forceDownload ? partial.size : 0;
  if (written > plan.size) {
    await rm(incomplete, { force: true });
    written = 0;
  }
  await checkFreeSpace(plan, plan.size - written, where);
  const wantSha = SHA256.test(plan.etag);
  let hash: Hash | undefined = wantSha ? createHash("sha256") : undefined;
  if (hash && written > 0) await hashFile(incomplete, hash);
  progress?.skip(written);

  const ctx: ResponseContext = {
    repoId: plan.repoId,
    revision: plan.commit,
    filename: plan.filename,
    endpoint: cfg.endpoint,
    tokenSource: plan.sendToken ? cfg.tokenSource : undefined,
  };
  const fh = await open(
    incomplete,
    fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW,
    0o644,
  );
  const deadlineMs = fileDeadlineMs(cfg, plan.size);
  const deadline = Date.now() + deadlineMs;
  const pastDeadline = () =>
    new HubConnectionError(
      `Downloading "${plan.filename}" of ${plan.repoId} did not finish within ${Math.round(deadlineMs / 1000)} s ` +
        `(the overall deadline per file; raise fileTimeoutMs / RAGTUNE_HUB_FILE_TIMEOUT for a slow link); the ` +
        `${written} bytes received are kept in ${incomplete} and the next call resumes from there.`,
      where,
    );
  const restart = async () => {
    await fh.truncate(0);
    progress?.update(-written);
    written = 0;
    hash = wantSha ? createHash("sha256") : undefined;
  };
  try {
    let retries = MAX_RETRIES;
    // http_get: nothing to fetch when the partial file is already complete (or the file is empty).
    while (written < plan.size) {
      const extra: Record<string, string> = { "accept-encoding": "identity" };
      if (written > 0) extra.range = `bytes=${written}-`;
      const headers = plan.sendToken
        ? hubHeaders(cfg, extra)
        : hubHeaders({ ...cfg, token: undefined }, extra);
      if (Date.now() >= deadline) throw pastDeadline();
      const abort = new AbortController();
      // Idle timeout (restarted on every chunk), never past the overall deadline.
      const idle = () =>
        setTimeout(() => abort.abort(), Math.min(cfg.downloadTimeoutMs, deadline - Date.now()));
      let timer = idle();
      let failure: unknown;
      try {
        const res = await fetch(plan.url, { headers, signal: abort.signal });
        if (written > 0 && (res.status === 416 || (res.status === 206 && !rangeStartsAt(res, written)))) {
          // The server does not continue our partial file where it ends: start over with a plain GET.
          await res.body?.cancel();
          await restart();
          continue;
        }
        if (!res.ok) {
          const err = await errorFromResponse(res, plan.url, ctx);
          if (![408, 429, 500, 502, 503, 504].includes(res.status)) throw err;
          failure = err;
        } else {
          // A 200 to a Range request: the server ignored it and sends the whole file (http_get resets the file too).
          if (written > 0 && res.status !== 206) await restart();
          for await (const chunk of res.body ?? []) {
            clearTimeout(timer);
            if (Date.now() >= deadline) throw pastDeadline();
            timer = idle();
            const buf = chunk as Uint8Array;
            if (written + buf.length > plan.size) {
              throw oversize(plan, written + buf.length, where);
            }
            await fh.write(buf);
            hash?.update(buf);
            written += buf.length;
            progress?.update(buf.length);
            retries = MAX_RETRIES; // Progress was made: reset, as http_get does.
          }
          break; // The response ended normally; the size check below decides.
        }
      } catch (e) {
        if (e instanceof HubError) throw e;
        failure = e;
      } finally {
        clearTimeout(timer);
      }
      if (Date.now() >= deadline) throw pastDeadline();
      if (retries-- <= 0) {
        const reason = failure instanceof HubError ? failure.message : describeNetworkError(failure);
        throw new HubConnectionError(
          `Downloading "${plan.filename}" of ${plan.repoId} failed after ${MAX_RETRIES} retries (${reason}); the ` +
            `${written} bytes received are kept in ${incomplete} and the next call resumes from there.`,
          { ...where, cause: failure },
        );
      }
      await sleep(Math.min(4000, 250 * 2 ** (MAX_RETRIES - retries - 1)));
    }
  } catch (e) {
    await fh.close();
    if (e instanceof HubIntegrityError) await rm(incomplete, { force: true });
    throw e;
  }
  await fh.close();

  if (written !== plan.size) {
    await rm(incomplete, { force: true });
    throw new HubIntegrityError(
      `Consistency check failed: "${plan.filename}" of ${plan.repoId} should be ${plan.size} bytes but ${written} ` +
        `were received from ${plan.url}; the partial file was deleted, retry the download.`,
      where,
    );
  }
  const digest = hash?.digest("hex");
  if (digest !== undefined && digest !== plan.etag) {
    await rm(incomplete, { force: true });
    throw new HubIntegrityError(
      `Checksum mismatch for "${plan.filename}" of ${plan.repoId}: the hub announced sha256 ${plan.etag} but the ` +
        `downloaded bytes hash to ${digest}; the file was deleted, retry the download.`,
      where,
    );
  }
  // _chmod_and_move: the blob appears under its final name only now, complete and verified.
  await rename(incomplete, plan.blob);
}

function oversize(
  plan: Extract<FilePlan, { kind: "download" }>,
  got: number,
  where: { repoId: string; revision: string; filename: string; url: string },
): HubIntegrityError {
  return new HubIntegrityError(
    `Consistency check failed: "${plan.filename}" of ${plan.repoId} should be ${plan.size} bytes but ${plan.url} ` +
      `sent at least ${got}; the partial file was deleted, retry the download.`,
    where,
  );
}

/**
 * Refuses to start a download that cannot fit: the bytes still to come against the free space (for this user) of
 * the file system holding the blobs, before anything is written. Best effort where statfs is not available.
 */
async function checkFreeSpace(
  plan: Extract<FilePlan, { kind: "download" }>,
  needed: number,
  where: { repoId: string; revision: string; filename: string; url: string },
): Promise<void> {
  const dir = dirname(plan.blob);
  const fs = await statfs(dir).catch(() => undefined);
  if (fs === undefined) return;
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (needed > free) {
    throw new HubError(
      `Not enough disk space for "${plan.filename}" of ${plan.repoId}: ${needed} more bytes are needed but only ` +
        `${free} are free in ${dir}; nothing was written. Free some space or point HF_HUB_CACHE elsewhere.`,
      where,
    );
  }
}

/** A 206 must continue exactly where our partial file ends (Content-Range: bytes <start>-<end>/<total>). */
function rangeStartsAt(res: Response, offset: number): boolean {
  const m = /^bytes\s+(\d+)-/i.exec(res.headers.get("content-range") ?? "");
  return m !== null && Number(m[1]) === offset;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}
