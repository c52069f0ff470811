// The one way ragtune writes a file: a temporary file created exclusively (O_EXCL, so never through a planted
// symlink) in the same folder as the target, written, fsynced, renamed over the target (rename replaces a symlink
// at the final path instead of following it), then the folder fsynced so the rename survives a power cut. A reader
// sees the old file or the new one, never half of one; a failed write (ENOSPC, EIO, a throw from the caller)
// removes the temporary file and reports the target path. Appends (JSONL logs) open with O_NOFOLLOW.
import { closeSync, constants, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

/** An I/O failure, with the file it concerns and the operation in its message. */
export class FileWriteError extends Error {
  readonly path: string;
  readonly code: string | undefined;

  constructor(path: string, action: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`cannot ${action} ${path}: ${explain(code) ?? detail}`, { cause });
    this.name = "FileWriteError";
    this.path = path;
    this.code = code;
  }
}

function explain(code: string | undefined): string | undefined {
  switch (code) {
    case "ENOSPC":
      return "no space left on the device (ENOSPC); nothing was written";
    case "EDQUOT":
      return "disk quota exceeded (EDQUOT); nothing was written";
    case "EACCES":
    case "EPERM":
      return `permission denied (${code})`;
    case "EROFS":
      return "read-only file system (EROFS)";
    case "ELOOP":
      return "it is a symbolic link (ELOOP); ragtune does not write through links";
    case "EISDIR":
      return "it is a directory (EISDIR)";
    case "ENOTDIR":
      return "a component of the path is not a directory (ENOTDIR)";
    default:
      return undefined;
  }
}

/** Writes all of `data` to `fd` (writeSync may write less than asked). */
export function writeFully(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
}

/** fsync of a folder, so a rename or a new file in it is durable; best effort where folders cannot be opened. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on folders (EINVAL); the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A fresh temporary name beside `path`, hidden, marked with this process's pid (stale ones can be recognized). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Writes `path` atomically. `data` is the whole content, or a function that writes it to the open descriptor
 * (streaming writers: safetensors, ONNX). Creates the parent folder. Throws a FileWriteError naming `path`.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array | ((fd: number) => void),
  options: { mode?: number } = {},
): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new FileWriteError(dir, "create the folder", e);
  }
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      options.mode ?? 0o644,
    );
    if (typeof data === "function") data(fd);
    else writeFully(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
    fsyncSync(fd);
    const open = fd;
    fd = undefined;
    closeSync(open);
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error matters
      }
    }
    rmSync(tmp, { force: true });
    if (e instanceof FileWriteError) throw e;
    // An error thrown by the caller's writer (not an errno) keeps its own message.
    if ((e as NodeJS.ErrnoException).code === undefined) throw e;
    throw new FileWriteError(path, "write", e);
  }
  fsyncDir(dir);
}

/** `JSON.stringify(value, null, 2)` plus a newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Appends `text` to `path` (created 0644 if missing) without following a symlink at `path`: a planted link makes
 * this throw instead of writing into its target. For logs that grow line by line (training_log.jsonl).
 */
export function appendFileNoFollow(path: string, text: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o644,
    );
    writeFully(fd, Buffer.from(text, "utf8"));
  } catch (e) {
    throw new FileWriteError(path, "append to", e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
