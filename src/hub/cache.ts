// The on-disk cache layout shared with huggingface_hub (see file_download._hf_hub_download_to_cache_dir):
//
//   <cache>/models--org--name/
//     blobs/<etag>                      file contents, named by git sha1 (small files) or sha256 (LFS files)
//     blobs/<etag>.incomplete           a download in progress, resumed with a Range request
//     snapshots/<commit>/<path>         relative symlinks ../../blobs/<etag> (a copy where symlinks fail)
//     refs/<branch-or-tag>              the commit sha the name pointed to at the last online lookup
//     .no_exist/<commit>/<path>         empty marker: this file was asked for and does not exist at that commit
//   <cache>/.locks/models--org--name/   lock files, one per blob being downloaded
import { constants as fsConstants } from "node:fs";
import { copyFile, mkdir, open, rename, rm, stat, symlink, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";

import { repoFolderName } from "./config.ts";
import { HubError } from "./errors.ts";
import { appendFileNoFollow, tempPathFor, writeFileAtomic } from "../util/atomic-write.ts";
import { readRegularText } from "../util/read-file.ts";

export interface RepoPaths {
  /** <cache>/models--org--name */
  storage: string;
  /** <cache>/.locks/models--org--name */
  locks: string;
}

export function repoPaths(cacheDir: string, repoId: string): RepoPaths {
  const folder = repoFolderName(repoId);
  return { storage: join(cacheDir, folder), locks: join(cacheDir, ".locks", folder) };
}

/** A name taken from a server header becomes a path component: refuse anything that is not a plain name. */
function assertPlainName(kind: string, value: string, repoId: string): void {
  if (!/^[A-Za-z0-9._+=-]+$/.test(value) || value === "." || value === "..") {
    throw new HubError(`The hub sent an unusable ${kind} "${value}" for ${repoId}.`, { repoId });
  }
}

export function blobPath(paths: RepoPaths, etag: string, repoId: string): string {
  assertPlainName("ETag", etag, repoId);
  return join(paths.storage, "blobs", etag);
}

/** file_download._get_pointer_path: snapshots/<commit>/<file>, which must stay inside snapshots/. */
export function pointerPath(paths: RepoPaths, commit: string, filename: string, repoId: string): string {
  assertPlainName("commit", commit, repoId);
  const snapshots = resolve(paths.storage, "snapshots");
  const pointer = resolve(snapshots, commit, ...filename.split("/"));
  if (!pointer.startsWith(snapshots + sep)) {
    throw new HubError(`Invalid pointer path for "${filename}" at ${commit} in ${repoId}.`, {
      repoId,
      filename,
    });
  }
  return join(paths.storage, "snapshots", commit, ...filename.split("/"));
}

export function snapshotPath(paths: RepoPaths, commit: string, repoId: string): string {
  assertPlainName("commit", commit, repoId);
  return join(paths.storage, "snapshots", commit);
}

/** os.path.exists: follows symlinks, so a dangling snapshot link (blob deleted) counts as missing. */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

function refPath(paths: RepoPaths, revision: string): string | undefined {
  const refs = resolve(paths.storage, "refs");
  const p = resolve(refs, ...revision.split("/"));
  // A revision such as "../x" must not read or write outside refs/ ("refs/pr/1" nests, as in Python).
  return p.startsWith(refs + sep) ? p : undefined;
}

/** The commit a branch/tag pointed to when last seen online (refs/<revision>), or undefined. */
export async function readRef(paths: RepoPaths, revision: string): Promise<string | undefined> {
  const p = refPath(paths, revision);
  if (!p) return undefined;
  try {
    // A regular file of bounded size (util/read-file.ts): a FIFO or /dev/zero planted in a shared cache reads as
    // "no ref", never as a hang.
    const commit = readRegularText(p, "config").trim();
    return commit || undefined;
  } catch {
    return undefined;
  }
}

/**
 * file_download._cache_commit_hash_for_specific_revision: record revision → commit, only when it changed (a
 * read-only shared cache must keep working for already-cached repos), written atomically (tmp file + rename) so a
 * concurrent reader never sees half a sha. No trailing newline, as Python writes it.
 */
export async function writeRef(paths: RepoPaths, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const p = refPath(paths, revision);
  if (!p) return;
  if ((await readRef(paths, revision)) === commit) return;
  try {
    // Exclusive temp file + rename (util/atomic-write.ts): never writes through a link planted at refs/<name>.
    writeFileAtomic(p, commit);
  } catch {
    // Best effort, like snapshot_download: the ref only speeds up offline use; the download itself succeeded.
  }
}

/** Remember that a file does not exist at a commit (.no_exist/<commit>/<file>), like _get_metadata_or_catch_error. */
export async function markNoExist(paths: RepoPaths, commit: string, filename: string): Promise<void> {
  try {
    assertPlainName("commit", commit, "");
    const p = join(paths.storage, ".no_exist", commit, ...filename.split("/"));
    if (!resolve(p).startsWith(resolve(paths.storage, ".no_exist") + sep)) return;
    await mkdir(dirname(p), { recursive: true });
    appendFileNoFollow(p, ""); // creates the marker, never through a planted symlink
  } catch {
    // Only an optimisation for other tools (try_to_load_from_cache); never fail a call because of it.
  }
}

/**
 * file_download._create_symlink: snapshots/<commit>/<file> → a relative link to the blob (relative so the cache can
 * be moved or mounted elsewhere). Where symlinks are not allowed (Windows without developer mode, some network file
 * systems) the blob is copied instead; Python moves a new blob there, we copy so the blob stays shared and resumable.
 */
export async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  const target = relative(dirname(pointer), blob);
  try {
    await symlink(target, pointer);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Another task linked it between our rm and symlink: fine if it points to the same blob.
    if (code === "EEXIST" && (await exists(pointer))) return;
    if (!["EPERM", "EACCES", "ENOTSUP", "EOPNOTSUPP", "EINVAL", "EXDEV", "ENOSYS"].includes(code ?? ""))
      throw e;
  }
  // COPYFILE_EXCL: the fresh temporary name is created, never written through a link planted there.
  const tmp = tempPathFor(pointer);
  try {
    await copyFile(blob, tmp, fsConstants.COPYFILE_EXCL);
    await rename(tmp, pointer);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Locking. Python serialises downloads of one blob with a flock on .locks/<repo>/<etag>.lock and leaves that file
// behind, so we cannot use the same name with exclusive-create semantics; flock itself is not reachable from Node.
// We use our own <etag>.ragtune.lock, created with O_EXCL, holding {pid, host}; a holder that died (same host, pid
// gone) or stopped refreshing its mtime (other host) is stale and its lock is broken. Within one process, a promise
// chain per lock path serialises tasks (two repo files can share a blob: identical configs in two folders).

const STALE_MS = 30_000;
const HEARTBEAT_MS = 5_000;
const inProcess = new Map<string, Promise<void>>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  try {
    const content = readRegularText(lockPath, "config");
    const st = await stat(lockPath);
    const holder = JSON.parse(content) as { pid?: unknown; host?: unknown };
    if (holder.host === hostname() && typeof holder.pid === "number") return !pidAlive(holder.pid);
    return Date.now() - st.mtimeMs > STALE_MS;
  } catch {
    // Unreadable or half-written (the holder is between open and write): stale only if old.
    const st = await stat(lockPath).catch(() => undefined);
    return st === undefined || Date.now() - st.mtimeMs > STALE_MS;
  }
}

async function acquire(lockPath: string): Promise<() => Promise<void>> {
  await mkdir(dirname(lockPath), { recursive: true });
  for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
    try {
      const fh = await open(lockPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY);
      await fh.writeFile(JSON.stringify({ pid: process.pid, host: hostname() }));
      await fh.close();
      const beat = setInterval(() => {
        const now = new Date();
        utimes(lockPath, now, now).catch(() => undefined);
      }, HEARTBEAT_MS);
      beat.unref();
      return async () => {
        clearInterval(beat);
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (await isStale(lockPath)) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Run fn while holding the lock of one blob, against other tasks of this process and other processes. */
export async function withBlobLock<T>(locksDir: string, etag: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = join(locksDir, `${etag}.ragtune.lock`);
  const previous = inProcess.get(lockPath) ?? Promise.resolve();
  let releaseLocal!: () => void;
  const mine = new Promise<void>((r) => (releaseLocal = r));
  const chained = previous.then(() => mine);
  inProcess.set(lockPath, chained);
  await previous;
  try {
    const release = await acquire(lockPath);
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    releaseLocal();
    if (inProcess.get(lockPath) === chained) inProcess.delete(lockPath);
  }
}
