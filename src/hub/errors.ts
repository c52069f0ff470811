// Errors of the hub client, named after huggingface_hub's (utils/_errors.py) so that a user who knows the Python
// stack recognises them, and `errorFromResponse`, the port of utils/_http.py:hf_raise_for_status that turns a failed
// HTTP response into the right one. Every message names the repo, the revision and (when there is one) the file, and
// says what to do: most failures on the hub are a missing token, a typo in an id, or being offline.

export interface HubErrorContext {
  repoId?: string | undefined;
  revision?: string | undefined;
  filename?: string | undefined;
  url?: string | undefined;
  status?: number | undefined;
  /** X-Repo-Commit of an error answer: a 404 for a missing file still names the commit it looked at. */
  commitHash?: string | undefined;
  cause?: unknown;
}

/** Base class: every error thrown by src/hub is a HubError. */
export class HubError extends Error {
  readonly repoId: string | undefined;
  readonly revision: string | undefined;
  readonly filename: string | undefined;
  readonly url: string | undefined;
  readonly status: number | undefined;
  readonly commitHash: string | undefined;

  constructor(message: string, ctx: HubErrorContext = {}) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.repoId = ctx.repoId;
    this.revision = ctx.revision;
    this.filename = ctx.filename;
    this.url = ctx.url;
    this.status = ctx.status;
    this.commitHash = ctx.commitHash;
  }
}

/** An invalid repo id or file name, caught before any request (utils._validators.HFValidationError). */
export class HubValidationError extends HubError {}

/** Any HTTP error answer from the hub or its CDN (utils._errors.HfHubHTTPError). */
export class HubHTTPError extends HubError {}

/** The repo does not exist, or is private/gated and we may not see it (401 and 404 look the same on purpose). */
export class RepositoryNotFoundError extends HubHTTPError {}

/** The repo exists but is gated: its conditions must be accepted on the website by the token's account. */
export class GatedRepoError extends RepositoryNotFoundError {}

/** The repo exists but not this branch, tag or commit. */
export class RevisionNotFoundError extends HubHTTPError {}

/** The repo and revision exist but not this file. */
export class EntryNotFoundError extends HubHTTPError {}

/** The hub could not be reached (DNS, refused connection, timeout, connection dropped too often). */
export class HubConnectionError extends HubError {}

/** Not in the cache, and we may not (offline) or could not (network error) download it. */
export class LocalEntryNotFoundError extends HubError {}

/** A download whose size or sha256 does not match what the hub announced; nothing was stored under its name. */
export class HubIntegrityError extends HubError {}

/** What errorFromResponse needs to know besides the response. */
export interface ResponseContext {
  repoId: string;
  revision: string;
  filename?: string | undefined;
  endpoint: string;
  /** Where the sent token came from (config.tokenSource), or undefined when no token was sent. */
  tokenSource: string | undefined;
}

const TOKEN_HINT =
  "set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) to a token from https://huggingface.co/settings/tokens, or log in " +
  "with `hf auth login`";

function what(ctx: ResponseContext): string {
  const rev = `revision "${ctx.revision}"`;
  return ctx.filename ? `file "${ctx.filename}" of ${ctx.repoId} (${rev})` : `${ctx.repoId} (${rev})`;
}

/** How much of an error answer's body is read: enough for the hub's `{"error": "..."}`, never an endless stream. */
export const ERROR_BODY_BYTES = 64 * 1024;

/**
 * The first `maxBytes` of a response body as text, then the stream is cancelled: an endless or huge body (a hostile
 * or broken server) costs at most `maxBytes` of memory. `complete` says whether the body ended within the bound.
 */
export async function readBodyPrefix(
  res: Response,
  maxBytes: number,
): Promise<{ bytes: Buffer; complete: boolean }> {
  const body = res.body;
  if (body === null) return { bytes: Buffer.alloc(0), complete: true };
  const reader = body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks, size), complete: true };
      chunks.push(Buffer.from(value));
      size += value.length;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        return { bytes: Buffer.concat(chunks, size).subarray(0, maxBytes), complete: false };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** The server's explanation: X-Error-Message, else the JSON body's "error" (GET only; a HEAD has no body). */
async function serverMessage(res: Response): Promise<string | undefined> {
  const header = res.headers.get("x-error-message");
  if (header) return header.slice(0, 2000);
  try {
    const text = (await readBodyPrefix(res, ERROR_BODY_BYTES)).bytes.toString("utf8").slice(0, 2000);
    try {
      const json = JSON.parse(text) as { error?: unknown };
      if (typeof json.error === "string") return json.error;
    } catch {
      // Not JSON: use the raw text below.
    }
    return text.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * utils/_http.py:hf_raise_for_status. The hub says what went wrong in the `X-Error-Code` header (RepoNotFound,
 * RevisionNotFound, EntryNotFound, GatedRepo); without one, a 401 on a hub URL still means "repo not found or
 * private" (the hub answers 401, not 404, for missing repos to anonymous users), unless the token itself was bad.
 */
export async function errorFromResponse(
  res: Response,
  url: string,
  ctx: ResponseContext,
): Promise<HubHTTPError> {
  const status = res.status;
  const code = res.headers.get("x-error-code");
  const msg = await serverMessage(res);
  const requestId = res.headers.get("x-request-id");
  const tail = `(HTTP ${status} from ${url}${msg ? `: ${msg}` : ""}${requestId ? `, request id ${requestId}` : ""})`;
  const commitHash = res.headers.get("x-repo-commit") ?? undefined;
  const base = {
    repoId: ctx.repoId,
    revision: ctx.revision,
    filename: ctx.filename,
    url,
    status,
    commitHash,
  };
  const onHub = url.startsWith(`${ctx.endpoint}/`);
  const isApi = url.startsWith(`${ctx.endpoint}/api/`);
  const tokenNote = ctx.tokenSource
    ? `the token from ${ctx.tokenSource} was sent but has no access to it; check HF_TOKEN`
    : `no token was sent: ${TOKEN_HINT}`;

  if (code === "RevisionNotFound" || (status === 404 && isApi && /rev/i.test(msg ?? ""))) {
    return new RevisionNotFoundError(
      `Revision "${ctx.revision}" not found in repo ${ctx.repoId}: check the branch, tag or commit sha ${tail}.`,
      base,
    );
  }
  if (code === "EntryNotFound" || (status === 404 && onHub && !isApi && !code)) {
    return new EntryNotFoundError(
      `File "${ctx.filename}" not found in repo ${ctx.repoId} at revision "${ctx.revision}" ${tail}.`,
      base,
    );
  }
  if (code === "GatedRepo") {
    return new GatedRepoError(
      `Repo ${ctx.repoId} is gated: accept its conditions at ${ctx.endpoint}/${ctx.repoId} while logged in, and ` +
        `use a token of that account (${tokenNote}) ${tail}.`,
      base,
    );
  }
  if (msg === "Access to this resource is disabled.") {
    return new HubHTTPError(`Repo ${ctx.repoId} has been disabled on the hub ${tail}.`, base);
  }
  if (status === 401 && msg === "Invalid credentials in Authorization header") {
    return new HubHTTPError(
      `The hub rejected the token from ${ctx.tokenSource ?? "the request"} while fetching ${what(ctx)}: it is ` +
        `invalid or expired; fix or unset HF_TOKEN ${tail}.`,
      base,
    );
  }
  if (code === "RepoNotFound" || (status === 401 && onHub) || (status === 404 && isApi)) {
    return new RepositoryNotFoundError(
      `Repository ${ctx.repoId} not found on ${ctx.endpoint}. Check the repo id; if it is private or gated, ` +
        `${tokenNote} ${tail}.`,
      base,
    );
  }
  if (status === 403) {
    return new HubHTTPError(
      `Access to ${what(ctx)} is forbidden: make sure the token has read access to ${ctx.repoId} ` +
        `(fine-grained tokens need it explicitly); ${tokenNote} ${tail}.`,
      base,
    );
  }
  if (status === 429) {
    return new HubHTTPError(
      `Rate-limited by ${ctx.endpoint} while fetching ${what(ctx)}: wait and retry; authenticated requests get ` +
        `higher limits (${TOKEN_HINT}) ${tail}.`,
      base,
    );
  }
  return new HubHTTPError(`Failed to fetch ${what(ctx)} ${tail}.`, base);
}

// ---- errors of `ragtune push` (writes) ----

/** A folder that push refuses before sending anything (a run folder, a linked model file, no weights). */
export class PushFolderError extends HubError {}

/** No token, or a token the hub rejects (HTTP 401): push cannot authenticate. */
export class HubAuthError extends HubError {}

/** The token is valid but may not do this (HTTP 403): read-only token, another namespace, a gated or locked repo. */
export class HubForbiddenError extends HubHTTPError {}

/** The hub refuses because of the state of the repo (HTTP 409/412): a name taken, a branch moved meanwhile. */
export class HubConflictError extends HubHTTPError {}
