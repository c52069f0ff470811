// The two metadata requests of the hub protocol: HEAD {endpoint}/{repo}/resolve/{rev}/{file} (one file's commit,
// blob id, size and download location: file_download.get_hf_file_metadata) and GET /api/models/{repo}/revision/{rev}
// (the commit sha and file list: HfApi.model_info). Uses Node's global fetch (undici), no dependency.
import { type HubConfig, validateRepoId } from "./config.ts";
import {
  EntryNotFoundError,
  errorFromResponse,
  HubConnectionError,
  HubError,
  HubHTTPError,
  type ResponseContext,
  readBodyPrefix,
  RevisionNotFoundError,
} from "./errors.ts";

/** Identifies the client to the hub (huggingface_hub sends "<library>/<version>; hf_hub/<version>; python/..."). */
export const USER_AGENT = `ragtune/0.1; hf_hub-compatible; node/${process.versions.node}`;

/** utils/_headers.build_hf_headers: user agent, and the token as a Bearer header when there is one. */
export function hubHeaders(cfg: HubConfig, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { "user-agent": USER_AGENT, ...extra };
  if (cfg.token) headers.authorization = `Bearer ${cfg.token}`;
  return headers;
}

/** Short reason of a failed fetch: undici hides the useful part ("ECONNREFUSED", "ENOTFOUND") in `cause`. */
export function describeNetworkError(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === "TimeoutError" || e.name === "AbortError") return `timed out (${e.message})`;
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
    }
    return e.message;
  }
  return String(e);
}

/** fetch, with a deadline, turning a network failure (not an HTTP error status) into a HubConnectionError. */
export async function hubFetch(
  url: string,
  init: RequestInit,
  timeoutMs: number,
  ctx: { repoId: string; revision: string; filename?: string | undefined },
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new HubConnectionError(`Could not reach ${new URL(url).origin}: ${describeNetworkError(e)}.`, {
      ...ctx,
      url,
      cause: e,
    });
  }
}

/**
 * Whether a failed metadata request may fall back to the cache: network errors and HTTP errors (a private repo
 * without token, hub downtime) may, like Python's ConnectionError/Timeout/HTTPError branches of
 * _get_metadata_or_catch_error; "revision not found" and "entry not found" are definitive answers that a cached copy
 * must not hide, so Python re-raises them, and so do we.
 */
export function isRecoverableForCache(e: unknown): boolean {
  if (e instanceof RevisionNotFoundError || e instanceof EntryNotFoundError) return false;
  return e instanceof HubConnectionError || e instanceof HubHTTPError || e instanceof MetadataError;
}

/** The HEAD answer lacks X-Repo-Commit, an ETag or a size (file_download.FileMetadataError): a proxy, not the hub. */
export class MetadataError extends HubError {}

export interface FileMetadata {
  /** X-Repo-Commit: the commit the revision resolved to. */
  commitHash: string | undefined;
  /** X-Linked-Etag (LFS: the sha256) or ETag (git blob sha1), normalised: the blob's name in the cache. */
  etag: string | undefined;
  /** Where to GET the bytes: the CDN URL of a redirect, else the (relatively redirected) resolve URL. */
  location: string;
  /** X-Linked-Size, else Content-Length of a non-redirect answer. */
  size: number | undefined;
}

/** file_download._normalize_etag: drop a weak-etag "W/" prefix and the quotes. */
export function normalizeEtag(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  return etag.replace(/^W\//, "").replace(/^"+|"+$/g, "");
}

function intOrUndefined(v: string | null): number | undefined {
  if (v === null || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/** A Location header with no host part ("/api/resolve-cache/...") is a relative redirect (urlparse netloc == ""). */
function isRelativeLocation(location: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//");
}

/**
 * file_download.get_hf_file_metadata: HEAD the resolve URL without following redirects to other hosts (the LFS
 * redirect to the CDN carries the metadata we want, and following it would hit a signed URL for nothing), but
 * following relative ones (a renamed repo, /api/resolve-cache/ for small files), keeping the original query and
 * replacing only the path, like _httpx_follow_relative_redirects_with_backoff. Accept-Encoding: identity so that
 * Content-Length is the real file size.
 */
export async function getFileMetadata(
  url: string,
  cfg: HubConfig,
  ctx: ResponseContext,
): Promise<FileMetadata> {
  const headers = hubHeaders(cfg, { "accept-encoding": "identity" });
  let current = url;
  for (let hops = 0; ; hops++) {
    const res = await hubFetch(
      current,
      { method: "HEAD", headers, redirect: "manual" },
      cfg.etagTimeoutMs,
      ctx,
    );
    const isRedirect = res.status >= 300 && res.status < 400;
    if (!res.ok && !isRedirect) throw await errorFromResponse(res, current, ctx);
    const location = res.headers.get("location");
    if (isRedirect && location !== null && isRelativeLocation(location) && hops < 10) {
      const next = new URL(current);
      next.pathname = new URL(location, current).pathname;
      current = next.href;
      continue;
    }
    return {
      commitHash: res.headers.get("x-repo-commit") ?? undefined,
      etag: normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag")),
      location: location !== null ? new URL(location, current).href : current,
      size:
        intOrUndefined(res.headers.get("x-linked-size")) ??
        (isRedirect ? undefined : intOrUndefined(res.headers.get("content-length"))),
    };
  }
}

export interface RepoInfo {
  /** The commit the revision points to. */
  sha: string;
  /** Every file of the repo at that commit, as repo-relative POSIX paths. */
  files: string[];
}

/** HfApi.model_info(repo_id, revision): the commit sha and the `siblings` file list. */
export async function fetchRepoInfo(url: string, cfg: HubConfig, ctx: ResponseContext): Promise<RepoInfo> {
  validateRepoId(ctx.repoId);
  const res = await hubFetch(
    url,
    { headers: hubHeaders(cfg, { accept: "application/json" }) },
    cfg.etagTimeoutMs,
    ctx,
  );
  if (!res.ok) throw await errorFromResponse(res, url, ctx);
  let body: unknown;
  try {
    // Bounded: an endless or huge answer is an error after cfg.maxJsonBytes, not gigabytes of memory.
    const { bytes, complete } = await readBodyPrefix(res, cfg.maxJsonBytes);
    if (!complete) {
      throw new HubError(
        `The repo info at ${url} is larger than ${cfg.maxJsonBytes} bytes: not a Hugging Face hub answer (raise ` +
          `RAGTUNE_HUB_MAX_JSON_BYTES if it is genuine).`,
        { ...ctx, url },
      );
    }
    body = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    if (e instanceof HubError) throw e;
    if (
      e instanceof Error &&
      (e.name === "TimeoutError" || e.name === "AbortError" || e.name === "TypeError")
    ) {
      throw new HubConnectionError(`Reading ${url} failed: ${describeNetworkError(e)}.`, {
        ...ctx,
        url,
        cause: e,
      });
    }
    throw new HubError(`The hub answered ${url} with something that is not JSON.`, { ...ctx, url, cause: e });
  }
  const info = body as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== "string" || !Array.isArray(info.siblings)) {
    throw new HubError(
      `The repo info at ${url} has no "sha" or no "siblings": is HF_ENDPOINT a Hugging Face hub?`,
      {
        ...ctx,
        url,
      },
    );
  }
  const files = info.siblings
    .map((s: unknown) => (s as { rfilename?: unknown }).rfilename)
    .filter((f): f is string => typeof f === "string");
  return { sha: info.sha, files };
}
