// The one way ragtune reads a file that came with a model (config JSON, tokenizer files, weights): it must be a
// regular file (a FIFO would block forever, /dev/zero would never end, a folder is a mistake) and no larger than
// a bound per kind of file, and it is read with exactly as many bytes as fstat announced. Symlinks are followed:
// the Hugging Face cache is made of them (snapshots/<commit>/<file> → ../../blobs/<etag>).
//
// The file is opened with O_NONBLOCK so that opening a FIFO returns at once (instead of waiting for a writer);
// fstat on the open descriptor then decides, so the check and the read concern the same file.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";

/** The kinds of model file, each with its size bound and the environment variable that overrides it. */
export const READ_LIMITS = {
  /** config.json, modules.json, tokenizer_config.json, 1_Pooling/config.json, …: a few KB in practice. */
  config: { bytes: 16 * 2 ** 20, env: "RAGTUNE_MAX_CONFIG_BYTES", what: "JSON config file" },
  /** tokenizer.json (XLM-R: 17 MB, Gemma: 33 MB). */
  tokenizer: { bytes: 256 * 2 ** 20, env: "RAGTUNE_MAX_TOKENIZER_BYTES", what: "tokenizer file" },
  /** vocab.txt (BERT: 232 KB for 30,522 tokens). */
  vocab: { bytes: 16 * 2 ** 20, env: "RAGTUNE_MAX_VOCAB_BYTES", what: "vocabulary file" },
  /** model.safetensors and its shards (7B float32: 28 GB). */
  weights: { bytes: 64 * 2 ** 30, env: "RAGTUNE_MAX_WEIGHTS_BYTES", what: "weights file" },
} as const;
export type ReadKind = keyof typeof READ_LIMITS;

/** A model file that cannot be read, is not a regular file, or is too large; names the file. */
export class FileReadError extends Error {
  readonly path: string;
  readonly code: string | undefined;
  /** The message without the leading path, for callers that wrap it in their own error type. */
  readonly detail: string;

  constructor(path: string, detail: string, options: { cause?: unknown; code?: string } = {}) {
    super(`${path}: ${detail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FileReadError";
    this.path = path;
    this.detail = detail;
    this.code = options.code ?? (options.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** The byte bound of a kind of file: its environment variable when set (a positive integer), else the default. */
export function readLimit(kind: ReadKind, env: NodeJS.ProcessEnv = process.env): number {
  const { bytes, env: name } = READ_LIMITS[kind];
  const raw = env[name];
  if (raw === undefined || raw === "") return bytes;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`${name} must be a positive integer (bytes), got "${raw}"`);
  return n;
}

/** What a non-regular file is, in words, for the error. */
export function fileTypeName(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** Throws unless `st` is a regular file within the bound of `kind`. */
function checkStats(path: string, st: Stats, kind: ReadKind): void {
  if (!st.isFile())
    throw new FileReadError(
      path,
      `is ${fileTypeName(st)}, not a regular file; ragtune reads only regular files`,
    );
  const limit = readLimit(kind);
  if (st.size > limit) {
    const { env, what } = READ_LIMITS[kind];
    throw new FileReadError(
      path,
      `${st.size} bytes is larger than the ${limit}-byte bound for a ${what}; if the file is genuine, raise ${env}`,
    );
  }
}

function describeOpenError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "does not exist (ENOENT)";
    case "EACCES":
    case "EPERM":
      return `cannot be read: permission denied (${code})`;
    case "ELOOP":
      return "cannot be read: too many levels of symbolic links (ELOOP)";
    case "EISDIR":
      return "is a directory, not a regular file";
    default:
      return `cannot be read: ${(e as Error).message}`;
  }
}

/**
 * Opens a model file for reading after checking it (regular, within the bound of `kind`); returns the descriptor
 * and its size. The caller closes it. For readers that read parts of a file (safetensors).
 */
export function openRegularFile(path: string, kind: ReadKind): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FileReadError(path, describeOpenError(e), { cause: e });
  }
  try {
    const st = fstatSync(fd);
    checkStats(path, st, kind);
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The whole of a model file (regular, within the bound of `kind`), never more bytes than fstat announced. */
export function readRegularFile(path: string, kind: ReadKind): Buffer {
  const { fd, size } = openRegularFile(path, kind);
  try {
    const out = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const got = readSync(fd, out, done, Math.min(size - done, 1 << 30), done);
      if (got === 0) break; // truncated while open: parse what is there, the parser reports it
      done += got;
    }
    return done === size ? out : out.subarray(0, done);
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(path, `cannot be read: ${(e as Error).message}`, { cause: e });
  } finally {
    closeSync(fd);
  }
}

/** readRegularFile decoded as UTF-8, a leading byte-order mark dropped. */
export function readRegularText(path: string, kind: ReadKind): string {
  const text = readRegularFile(path, kind).toString("utf8");
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Whether a model file is present: false when nothing is at `path`, true for a regular file; anything else at the
 * path (a FIFO, a device, a directory, a dangling or looping symlink, a permission error) is an error naming it,
 * so that an unreadable file is never mistaken for an absent one (and a different default silently taken).
 */
export function isPresentRegularFile(path: string): boolean {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw new FileReadError(path, describeOpenError(e), { cause: e });
  }
  if (!st.isFile())
    throw new FileReadError(
      path,
      `is ${fileTypeName(st)}, not a regular file; ragtune reads only regular files`,
    );
  return true;
}

/** "line L, column C" (1-based) of a character offset. */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

/**
 * JSON.parse's complaint without the text it quotes: V8 echoes the start of the input ("Unexpected token 'r',
 * "root:x:0:0"... is not valid JSON"), and a model file may be anything (a link to /etc/passwd, a secret); the
 * position becomes a line and column instead.
 */
export function jsonSyntaxDetail(e: unknown, text: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  const pos = /at position (\d+)/.exec(msg);
  const where = pos ? ` at ${lineColumn(text, Number(pos[1]))}` : "";
  const what = /^Unexpected token/.test(msg)
    ? "unexpected character (not JSON)"
    : msg.replace(/ in JSON at position \d+.*$/s, "").replace(/, ".*$/s, "");
  return `invalid JSON${where}: ${what}`;
}

/** Reads and parses a model JSON file (regular, within the bound of `kind`); errors name the file, never echo it. */
export function readJsonFile(path: string, kind: ReadKind = "config"): unknown {
  const text = readRegularText(path, kind);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileReadError(path, jsonSyntaxDetail(e, text), { cause: e });
  }
}
