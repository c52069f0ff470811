// Where the hub is, where the cache is, which token to send, whether we may go online: huggingface_hub reads all of
// this from environment variables once at import time (constants.py); we read them at call time instead, so that
// tests and long-lived processes see changes, but with exactly the same names, precedence and defaults so Python and
// ragtune agree on one cache. Also the naming rules of the cache layout and of hub URLs.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, posix, resolve, win32 } from "node:path";

import { HubValidationError } from "./errors.ts";

/** Options shared by every hub call. Each one overrides the matching environment variable. */
export interface HubOptions {
  /** Branch, tag or full commit sha; default "main" (constants.DEFAULT_REVISION). */
  revision?: string;
  /** Hub root; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Cache root (the folder holding models--org--name); default $HF_HUB_CACHE, else $HF_HOME/hub. */
  cacheDir?: string;
  /** Token to send as `Authorization: Bearer`; false sends none; default $HF_TOKEN, then the token file. */
  token?: string | false;
  /** Never touch the network (like `local_files_only=True`); $HF_HUB_OFFLINE=1 forces it. */
  localFilesOnly?: boolean;
  /** Re-download even when the file is cached (a partial `.incomplete` file is discarded). */
  forceDownload?: boolean;
  /** Show a progress bar on stderr: default only when stderr is a TTY (and not HF_HUB_DISABLE_PROGRESS_BARS). */
  progress?: boolean;
  /** Timeout of metadata requests (HEAD, repo info); default $HF_HUB_ETAG_TIMEOUT or 10 s. */
  etagTimeoutMs?: number;
  /** Max silence while streaming a download before retrying; default $HF_HUB_DOWNLOAD_TIMEOUT or 10 s. */
  downloadTimeoutMs?: number;
  /**
   * Largest file ragtune downloads (the size the hub announces, checked before any byte is written); default
   * $RAGTUNE_HUB_MAX_FILE_BYTES or 64 GiB (the local bound on a weights file, RAGTUNE_MAX_WEIGHTS_BYTES).
   */
  maxFileBytes?: number;
  /**
   * Overall deadline of one file's download, resumes included (a server that drips one byte every few seconds
   * never trips the idle timeout); default $RAGTUNE_HUB_FILE_TIMEOUT seconds, else 10 min + 1 s per MB announced.
   * On expiry the partial `.incomplete` file is kept and the next call resumes it.
   */
  fileTimeoutMs?: number;
  /** Largest JSON answer (repo info) read; default $RAGTUNE_HUB_MAX_JSON_BYTES or 32 MiB. */
  maxJsonBytes?: number;
}

/** The options after defaults and environment variables have been applied. */
export interface HubConfig {
  endpoint: string;
  cacheDir: string;
  token: string | undefined;
  /** Where the token came from, for error messages ("HF_TOKEN", "the token file ~/.cache/huggingface/token", ...). */
  tokenSource: string | undefined;
  offline: boolean;
  /** Why we are offline ("HF_HUB_OFFLINE=1", "localFilesOnly: true"), for error messages. */
  offlineReason: string | undefined;
  forceDownload: boolean;
  etagTimeoutMs: number;
  downloadTimeoutMs: number;
  maxFileBytes: number;
  /** undefined: the size-dependent default (fileDeadlineMs). */
  fileTimeoutMs: number | undefined;
  maxJsonBytes: number;
}

/** Default bound of one download (= the local bound of a weights file). */
export const DEFAULT_MAX_FILE_BYTES = 64 * 2 ** 30;
/** Default bound of a JSON answer: the repo info of a repo with tens of thousands of files stays far below. */
export const DEFAULT_MAX_JSON_BYTES = 32 * 2 ** 20;

/** The overall deadline of one file: the configured one, else 10 min plus 1 s per MB (at worst ~1 MB/s). */
export function fileDeadlineMs(cfg: Pick<HubConfig, "fileTimeoutMs">, size: number): number {
  return cfg.fileTimeoutMs ?? 600_000 + Math.ceil(size / 1000);
}

export const DEFAULT_ENDPOINT = "https://huggingface.co";
export const DEFAULT_REVISION = "main";
/** constants.REPO_ID_SEPARATOR: "org/name" becomes "models--org--name" on disk. */
export const REPO_ID_SEPARATOR = "--";
/** file_download.REGEX_COMMIT_HASH: only a full 40-hex sha counts as a commit (a short sha is stored as a ref). */
const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** constants._is_true: ENV_VARS_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}, case-insensitive. */
export function envTrue(value: string | undefined): boolean {
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value.toUpperCase());
}

/** os.path.expanduser for a leading "~" (the common case in HF_HOME=~/...). */
function expandUser(p: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/") || p.startsWith("~\\")) return join(homedir(), p.slice(2));
  return p;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/** constants.HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = nonEmpty(env.HF_HOME);
  if (home) return expandUser(home);
  const xdg = nonEmpty(env.XDG_CACHE_HOME) ?? join(homedir(), ".cache");
  return join(expandUser(xdg), "huggingface");
}

/** constants.HF_HUB_CACHE: $HF_HUB_CACHE, else the legacy $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return dir ? expandUser(dir) : join(hfHome(env), "hub");
}

/** utils._auth._clean_token: strip spaces/newlines; an empty token is no token. */
function cleanToken(t: string | undefined): string | undefined {
  const s = t?.replace(/\r|\n/g, "").trim();
  return s ? s : undefined;
}

/** constants.HF_TOKEN_PATH: $HF_TOKEN_PATH, else $HF_HOME/token (the file `hf auth login` writes). */
export function tokenFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return expandUser(nonEmpty(env.HF_TOKEN_PATH) ?? join(hfHome(env), "token"));
}

/**
 * utils._auth.get_token (minus the Colab vault): $HF_TOKEN, else the legacy $HUGGING_FACE_HUB_TOKEN, else the file
 * $HF_TOKEN_PATH (default $HF_HOME/token) that `hf auth login` writes.
 */
export function findToken(
  env: NodeJS.ProcessEnv = process.env,
): { token: string; source: string } | undefined {
  // Python uses `HF_TOKEN or HUGGING_FACE_HUB_TOKEN`, so an empty HF_TOKEN falls through to the legacy name.
  const fromEnv = nonEmpty(env.HF_TOKEN) !== undefined ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN";
  const envToken = cleanToken(nonEmpty(env.HF_TOKEN) ?? env.HUGGING_FACE_HUB_TOKEN);
  if (envToken) return { token: envToken, source: fromEnv };
  const path = tokenFilePath(env);
  try {
    const fileToken = cleanToken(readFileSync(path, "utf8"));
    if (fileToken) return { token: fileToken, source: `the token file ${path}` };
  } catch {
    // No token file: anonymous access, exactly like _get_token_from_file's FileNotFoundError branch.
  }
  return undefined;
}

function seconds(v: string | undefined, fallbackMs: number): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? n * 1000 : fallbackMs;
}

/** A byte bound from the environment: undefined when unset; anything but a positive integer is an error. */
function positiveInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new HubValidationError(`${name} must be a positive integer (bytes), got "${raw}".`);
  return n;
}

/** A duration in seconds from the environment, in ms: undefined when unset; not a positive number → an error. */
function positiveSeconds(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new HubValidationError(`${name} must be a positive number of seconds, got "${raw}".`);
  return n * 1000;
}

/** Apply defaults: explicit options first, then the environment (read now, not at import), then the defaults. */
export function resolveHubConfig(opts: HubOptions = {}, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const endpoint = (opts.endpoint ?? nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  const cacheDir = resolve(expandUser(opts.cacheDir ?? hubCacheDir(env)));

  let token: string | undefined;
  let tokenSource: string | undefined;
  if (typeof opts.token === "string") {
    token = cleanToken(opts.token);
    tokenSource = "the `token` option";
  } else if (opts.token === undefined && !envTrue(env.HF_HUB_DISABLE_IMPLICIT_TOKEN)) {
    // utils._headers.get_token_to_send: the implicit token is sent unless HF_HUB_DISABLE_IMPLICIT_TOKEN is set.
    const found = findToken(env);
    token = found?.token;
    tokenSource = found?.source;
  }

  // constants.HF_HUB_OFFLINE = _is_true(HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE): a set-but-false HF_HUB_OFFLINE
  // ("0") shadows TRANSFORMERS_OFFLINE, as Python's `or` does.
  const offlineVar = nonEmpty(env.HF_HUB_OFFLINE) !== undefined ? "HF_HUB_OFFLINE" : "TRANSFORMERS_OFFLINE";
  const envOffline = envTrue(nonEmpty(env.HF_HUB_OFFLINE) ?? env.TRANSFORMERS_OFFLINE);
  let offlineReason: string | undefined;
  if (envOffline) offlineReason = `${offlineVar}=${env[offlineVar]}`;
  else if (opts.localFilesOnly) offlineReason = "localFilesOnly: true";

  return {
    endpoint,
    cacheDir,
    token,
    tokenSource,
    offline: offlineReason !== undefined,
    offlineReason,
    forceDownload: opts.forceDownload ?? false,
    etagTimeoutMs: opts.etagTimeoutMs ?? seconds(env.HF_HUB_ETAG_TIMEOUT, 10_000),
    downloadTimeoutMs: opts.downloadTimeoutMs ?? seconds(env.HF_HUB_DOWNLOAD_TIMEOUT, 10_000),
    maxFileBytes:
      opts.maxFileBytes ?? positiveInt(env, "RAGTUNE_HUB_MAX_FILE_BYTES") ?? DEFAULT_MAX_FILE_BYTES,
    fileTimeoutMs: opts.fileTimeoutMs ?? positiveSeconds(env, "RAGTUNE_HUB_FILE_TIMEOUT"),
    maxJsonBytes:
      opts.maxJsonBytes ?? positiveInt(env, "RAGTUNE_HUB_MAX_JSON_BYTES") ?? DEFAULT_MAX_JSON_BYTES,
  };
}

export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH.test(revision);
}

/** utils._validators.REPO_ID_REGEX, ASCII version (the hub only allows ASCII names). */
const REPO_ID = /^(\b[\w\-.]+\b\/)?\b[\w\-.]{1,96}\b$/;

/** Why `s` is not a valid repo id (validate_repo_id's rules), or undefined when it is one. */
export function repoIdProblem(s: string): string | undefined {
  if ((s.match(/\//g) ?? []).length > 1)
    return "a repo id is 'name' or 'namespace/name', with at most one '/'";
  if (!REPO_ID.test(s)) {
    return "a repo id uses letters, digits, '-', '_' or '.', cannot start or end with '-' or '.', max 96 chars";
  }
  if (s.includes("--") || s.includes("..")) return "a repo id cannot contain '--' or '..'";
  if (s.endsWith(".git")) return "a repo id cannot end with '.git'";
  return undefined;
}

/** True for "org/name" or a bare legacy "name" that huggingface_hub would accept as a repo id. */
export function isRepoId(s: string): boolean {
  return repoIdProblem(s) === undefined;
}

export function validateRepoId(repoId: string): void {
  const problem = repoIdProblem(repoId);
  if (problem) throw new HubValidationError(`Invalid repo id "${repoId}": ${problem}.`, { repoId });
}

/** file_download.repo_folder_name: "org/name" → "models--org--name" (one flat folder per repo). */
export function repoFolderName(repoId: string): string {
  return ["models", ...repoId.split("/")].join(REPO_ID_SEPARATOR);
}

/**
 * _local_folder._validate_relative_filename: a repo file name becomes a path under snapshots/<sha>/, so reject
 * anything that could escape it (a ".." segment, an absolute, drive or UNC path under POSIX or Windows rules).
 */
export function validateRelativeFilename(filename: string, repoId: string): void {
  // A NUL or another control character (from a hostile repo listing) is no file name; say so before any fs call
  // turns it into a raw ERR_INVALID_ARG_VALUE.
  const control = /[\u0000-\u001f\u007f]/.exec(filename);
  if (control) {
    const code = `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new HubValidationError(
      `Invalid file name ${JSON.stringify(filename)} in repo ${repoId}: it contains the control character ${code}.`,
      { repoId, filename },
    );
  }
  const bad =
    filename === "" ||
    filename.replace(/\\/g, "/").split("/").includes("..") ||
    posix.isAbsolute(filename) ||
    filename.split("/").some((part) => win32.isAbsolute(part) || /^[A-Za-z]:/.test(part));
  if (bad) {
    throw new HubValidationError(
      `Invalid file name "${filename}" in repo ${repoId}: it would escape the snapshot.`,
      {
        repoId,
        filename,
      },
    );
  }
}

/**
 * Python's urllib.parse.quote: percent-encode UTF-8 bytes of everything except ASCII letters, digits, "_.-~" and the
 * `safe` characters. (encodeURIComponent leaves "!'()*" alone, which would give a different URL than Python's.)
 */
export function pyQuote(s: string, safe = "/"): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.\-~]/.test(ch) || (byte < 0x80 && safe.includes(ch))) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** file_download.hf_hub_url: {endpoint}/{repo_id}/resolve/{quote(revision, safe="")}/{quote(filename)}. */
export function hubFileUrl(endpoint: string, repoId: string, revision: string, filename: string): string {
  return `${endpoint}/${repoId}/resolve/${pyQuote(revision, "")}/${pyQuote(filename)}`;
}

/** HfApi.model_info with a revision: {endpoint}/api/models/{repo_id}/revision/{quote(revision, safe="")}. */
export function repoInfoUrl(endpoint: string, repoId: string, revision: string): string {
  return `${endpoint}/api/models/${repoId}/revision/${pyQuote(revision, "")}`;
}
