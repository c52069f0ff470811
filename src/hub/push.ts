// `ragtune push`: publish a model folder to the Hugging Face hub with @huggingface/hub. The calls follow `hf upload`
// (huggingface_hub commands/upload.py), with two differences: the token is checked first (a bad one fails before
// anything is created), and the repo is looked up before create_repo(exist_ok=True) so that --private on an
// existing public repo is refused instead of silently ignored. The JS library's endpoints, in order:
//   1. GET  /api/whoami-v2                        the token is valid (401 here = a bad token) and may write
//   2. GET  /api/models/{repo}/revision/HEAD      does the repo exist, is it private
//   3. POST /api/repos/create                     only when it does not (visibility from --private)
//   4. GET  /api/models/{repo}/revision/{rev}     with --revision: does the branch exist;
//      POST /api/models/{repo}/branch/{rev}       if not, create it from the default branch (as `hf upload` does)
//   5. commit: POST .../preupload/{rev} (the hub says which files go to LFS), POST {repo}.git/info/lfs/objects/batch
//      + PUT to the storage URLs it returns (single or multipart), POST .../commit/{rev} (one commit, all files).
//      The library also offers the xet transfer; the hub picks one (the tests' fake hub speaks basic + multipart).
// Every failure becomes an error that says which step failed and what to do (hub errors: errors.ts); the token is
// never printed, only where it came from.
import {
  commitIter,
  createBranch,
  createRepo,
  HubApiError,
  modelInfo,
  whoAmI,
  type CommitOperation,
} from "@huggingface/hub";

import {
  DEFAULT_REVISION,
  findToken,
  isCommitHash,
  resolveHubConfig,
  tokenFilePath,
  validateRepoId,
} from "./config.ts";
import {
  HubAuthError,
  HubConflictError,
  HubConnectionError,
  HubError,
  HubForbiddenError,
  HubHTTPError,
  HubValidationError,
  PushFolderError,
  RepositoryNotFoundError,
  RevisionNotFoundError,
} from "./errors.ts";
import { formatBytes, formatDuration } from "../util/index.ts";
import {
  changedSinceOpened,
  closeAll,
  OpenFileBlob,
  openPlanned,
  planPush,
  type PushPlan,
} from "./push-files.ts";

export interface PushOptions {
  /** "user/name" (or a bare "name": the token's user is the namespace, as in huggingface_hub). */
  repo: string;
  /** Create the repo private; refused when the repo already exists and is public. */
  private?: boolean;
  /** Branch to commit to (created from the default branch when missing); default "main". */
  revision?: string;
  commitMessage?: string;
  commitDescription?: string;
  /** Hub root; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Token; default $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, then the token file. */
  token?: string;
  env?: NodeJS.ProcessEnv;
  /** Progress lines (phases, LFS files done). */
  log?: (line: string) => void;
}

export interface PushResult {
  repoId: string;
  revision: string;
  /** The repo's page (the branch's, for a revision other than main). */
  url: string;
  createdRepo: boolean;
  createdBranch: boolean;
  private: boolean;
  commitOid: string;
  commitUrl: string;
  plan: PushPlan;
}

export const DEFAULT_COMMIT_MESSAGE = "Upload model with ragtune";

/** Where push looks for a token, in order, for the "no token" error and --dry-run. */
export function tokenSearchList(env: NodeJS.ProcessEnv = process.env): string {
  return `$HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, then the token file ${tokenFilePath(env)} ($HF_TOKEN_PATH, else $HF_HOME/token)`;
}

/** The token push would send and where it came from (utils._auth.get_token's order); an error when there is none. */
export function resolvePushToken(opts: Pick<PushOptions, "token">, env: NodeJS.ProcessEnv, endpoint: string) {
  const found = opts.token ? { token: opts.token.trim(), source: "the `token` option" } : findToken(env);
  if (!found) {
    throw new HubAuthError(
      `No Hugging Face token found (looked at ${tokenSearchList(env)}); pushing needs a token with write access: ` +
        `create one at ${endpoint}/settings/tokens and set HF_TOKEN, or run \`hf auth login\`.`,
    );
  }
  // @huggingface/hub refuses (with a bare TypeError) any token that does not start with hf_; say it our way.
  if (!found.token.startsWith("hf_")) {
    throw new HubAuthError(
      `The token from ${found.source} does not look like a Hugging Face token (they start with "hf_"); ` +
        `check HF_TOKEN or the token file.`,
    );
  }
  return found;
}

/**
 * The fetch given to @huggingface/hub: (1) the hub token goes to the hub's own origin only: the library sends it
 * wherever an LFS batch answer points its xet token refresh, so a request to another origin (or over http when
 * the hub is https) that carries it loses the header; other credentials (the xet JWT for the CAS host) pass.
 * (2) A network failure becomes a HubConnectionError naming the host, never the signed URL.
 */
function hubFetch(endpoint: string, token: string): typeof fetch {
  const hubOrigin = new URL(endpoint).origin;
  return async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    let origin = url;
    try {
      origin = new URL(url).origin;
    } catch {
      // keep the raw string
    }
    let sent = init;
    if (origin !== hubOrigin && init?.headers !== undefined) {
      const headers = new Headers(init.headers);
      if (headers.get("authorization") === `Bearer ${token}`) {
        headers.delete("authorization");
        sent = { ...init, headers };
      }
    }
    try {
      return await fetch(input, sent);
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      const where =
        origin === hubOrigin ? `the hub at ${endpoint}` : `${origin} (upload storage of ${endpoint})`;
      throw new HubConnectionError(
        `Cannot reach ${where}: ${why}. Check the network, a proxy, or HF_ENDPOINT.`,
        { url: origin, cause: e },
      );
    }
  };
}

interface Ctx {
  repoId: string;
  revision: string;
  endpoint: string;
  tokenSource: string;
  user: string;
}

/** Turns what @huggingface/hub throws at `step` into one of our errors, naming the step and the fix. */
function explain(e: unknown, step: string, ctx: Ctx): unknown {
  if (e instanceof HubError || !(e instanceof HubApiError)) return e;
  const status = e.statusCode;
  const base = { repoId: ctx.repoId, revision: ctx.revision, url: e.url, status, cause: e };
  const tail = `(HTTP ${status} while ${step}: ${e.message})`;
  const settings = `${ctx.endpoint}/settings/tokens`;
  // A 401/403 from the upload storage is an expired or refused signed URL, not a problem of the token.
  if (e.url !== "" && !e.url.startsWith(`${ctx.endpoint}/`)) {
    return new HubHTTPError(
      `The upload storage of ${ctx.endpoint} refused a file of ${ctx.repoId}; a signed upload URL may have ` +
        `expired: run push again (uploaded objects are not sent twice) ${tail}.`,
      base,
    );
  }
  if (status === 401) {
    return new HubAuthError(
      `The hub at ${ctx.endpoint} rejected the token from ${ctx.tokenSource}: it is invalid, expired or revoked; ` +
        `create a write token at ${settings} and set HF_TOKEN ${tail}.`,
      base,
    );
  }
  if (status === 403) {
    const ns = ctx.repoId.split("/")[0];
    const who = ctx.user
      ? `the token of ${ctx.user} (from ${ctx.tokenSource})`
      : `the token from ${ctx.tokenSource}`;
    const why =
      step === "creating the repo"
        ? `${who} may not create repos under "${ns}": push to your own namespace or ask an admin of ${ns} for write access`
        : `${who} has no write access to ${ctx.repoId} (a read-only or fine-grained token without write permission ` +
          `on it, or a repo of someone else, gated, or locked): use a token with write access (${settings})`;
    return new HubForbiddenError(`Forbidden: ${why} ${tail}.`, base);
  }
  if (status === 409 || status === 412) {
    const why =
      step === "creating the repo"
        ? `the name ${ctx.repoId} is taken by a repo this token cannot see (another type, or being deleted); pick ` +
          `another name`
        : `revision "${ctx.revision}" of ${ctx.repoId} changed while pushing (a concurrent commit): run push again`;
    return new HubConflictError(`Conflict: ${why} ${tail}.`, base);
  }
  if (status === 404) {
    // The server's own words (the message also holds the URL, which names /revision/ on every info call).
    const said = (e.data as { error?: unknown } | undefined)?.error;
    return typeof said === "string" && /\brev(ision)?\b/i.test(said)
      ? new RevisionNotFoundError(`Revision "${ctx.revision}" of ${ctx.repoId} not found ${tail}.`, base)
      : new RepositoryNotFoundError(`Repository ${ctx.repoId} not found on ${ctx.endpoint} ${tail}.`, base);
  }
  if (status === 429)
    return new HubHTTPError(`Rate-limited by ${ctx.endpoint}: wait and retry ${tail}.`, base);
  return new HubHTTPError(`Push to ${ctx.repoId} failed ${tail}.`, base);
}

async function step<T>(what: string, ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw explain(e, what, ctx);
  }
}

/** The repo's visibility, or undefined when it does not exist (404) for this token. */
async function repoState(
  ctx: Ctx,
  common: { hubUrl: string; accessToken: string; fetch: typeof fetch },
  revision?: string,
): Promise<{ private: boolean } | undefined> {
  try {
    const info = await modelInfo({ name: ctx.repoId, ...common, ...(revision ? { revision } : {}) });
    return { private: info.private };
  } catch (e) {
    if (e instanceof HubApiError && e.statusCode === 404) return undefined;
    throw explain(e, revision ? `looking up revision "${revision}"` : "looking up the repo", ctx);
  }
}

/** Pushes the model files of `dir` to the hub as one commit. */
export async function pushToHub(dir: string, opts: PushOptions): Promise<PushResult> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const { endpoint } = resolveHubConfig(
    opts.endpoint ? { endpoint: opts.endpoint, token: false } : { token: false },
    env,
  );
  const revision = opts.revision ?? DEFAULT_REVISION;
  if (isCommitHash(revision) || revision.trim() === "" || /\s|\.\./.test(revision)) {
    throw new HubValidationError(
      `--revision "${revision}" is not a branch name: push commits to a branch (created if missing), not to a commit.`,
    );
  }
  if (opts.repo.includes("/")) validateRepoId(opts.repo);

  const plan = await planPush(dir);
  const { token, source: tokenSource } = resolvePushToken(opts, env, endpoint);
  const common = { hubUrl: endpoint, accessToken: token, fetch: hubFetch(endpoint, token) };
  const ctx: Ctx = { repoId: opts.repo, revision, endpoint, tokenSource, user: "" };

  // 1. Who is this token? A bad token fails here, before anything is created.
  const me = await step("checking the token (whoami)", ctx, () => whoAmI(common));
  ctx.user = me.name;
  if (me.auth.accessToken?.role === "read") {
    throw new HubForbiddenError(
      `The token from ${tokenSource} (user ${me.name}) is read-only; pushing needs a token with write access ` +
        `(${endpoint}/settings/tokens).`,
    );
  }
  const repoId = opts.repo.includes("/") ? opts.repo : `${me.name}/${opts.repo}`;
  validateRepoId(repoId);
  ctx.repoId = repoId;

  // 2-3. The repo: created when missing; an existing public repo is never pushed to when --private was asked.
  let state = await repoState(ctx, common);
  let createdRepo = false;
  if (state === undefined) {
    try {
      await createRepo({
        repo: { type: "model", name: repoId },
        ...(opts.private !== undefined ? { private: opts.private } : {}),
        ...common,
      });
      createdRepo = true;
      log(`created ${opts.private ? "private" : "public"} repo ${endpoint}/${repoId}`);
    } catch (e) {
      // 409: created meanwhile (huggingface_hub's exist_ok=True accepts that) or a name this token cannot see.
      if (!(e instanceof HubApiError && e.statusCode === 409)) throw explain(e, "creating the repo", ctx);
      if ((await repoState(ctx, common)) === undefined) throw explain(e, "creating the repo", ctx);
    }
    state = (await repoState(ctx, common)) ?? { private: opts.private === true };
  }
  if (opts.private && !state.private) {
    throw new HubConflictError(
      `--private was given but ${repoId} already exists and is public: nothing was uploaded. Make it private in ` +
        `its settings (${endpoint}/${repoId}/settings) first, or push without --private.`,
      { repoId },
    );
  }

  // 4. The branch: `hf upload --revision` creates a missing one from the default branch.
  // ports huggingface_hub commands/upload.py#UploadCommand._upload (repo_info(revision) → RevisionNotFoundError →
  // create_branch(exist_ok=True)); PR refs (refs/pr/N) are the hub's to create, never ours.
  let createdBranch = false;
  if (revision !== DEFAULT_REVISION && !revision.startsWith("refs/pr/")) {
    if (createdRepo || (await repoState(ctx, common, revision)) === undefined) {
      try {
        await createBranch({ repo: { type: "model", name: repoId }, branch: revision, ...common });
        createdBranch = true;
        log(`created branch ${revision}`);
      } catch (e) {
        // 409: it exists (created meanwhile): commit to it.
        if (!(e instanceof HubApiError && e.statusCode === 409))
          throw explain(e, `creating branch "${revision}"`, ctx);
      }
    }
  }

  // 5. One commit with every file, read through the descriptors opened (and checked) now.
  const opened = await openPlanned(plan);
  const abort = new AbortController();
  let changed: string | undefined;
  let commit: { oid: string; url: string } | undefined;
  try {
    const operations: CommitOperation[] = opened.map((o) => ({
      operation: "addOrUpdate",
      path: o.file.path,
      content: new OpenFileBlob(o.handle, o.file.localPath, 0, o.size),
    }));
    const it = commitIter({
      repo: { type: "model", name: repoId },
      operations,
      title: opts.commitMessage ?? DEFAULT_COMMIT_MESSAGE,
      ...(opts.commitDescription ? { description: opts.commitDescription } : {}),
      branch: revision,
      abortSignal: abort.signal,
      ...common,
    });
    const t0 = performance.now();
    const done = new Set<string>();
    const lfs = new Set<string>();
    for (;;) {
      const r = await it.next();
      if (r.done) {
        commit = r.value?.commit;
        break;
      }
      const ev = r.value;
      if (ev.event === "phase") {
        if (ev.phase === "committing") {
          // The LFS uploads hashed and sent the files; a file rewritten meanwhile (a training run still saving)
          // would commit a mix of old and new bytes: stop before the commit is made.
          changed = await changedSinceOpened(opened);
          if (changed) abort.abort();
        }
        log(ev.phase === "uploadingLargeFiles" ? "uploading large files (LFS)" : ev.phase);
      } else if (ev.state === "hashing") {
        lfs.add(ev.path);
      } else if (ev.state === "uploading" && ev.progress === 1 && lfs.has(ev.path) && !done.has(ev.path)) {
        done.add(ev.path);
        const size = opened.find((o) => o.file.path === ev.path)?.size ?? 0;
        log(
          `uploaded ${ev.path} (${formatBytes(size)}, LFS, ${formatDuration((performance.now() - t0) / 1000)})`,
        );
      }
    }
  } catch (e) {
    if (changed) {
      throw new PushFolderError(
        `${changed} changed while it was being uploaded; nothing was committed. Push again once the folder is final.`,
        { cause: e },
      );
    }
    throw explain(e, "uploading and committing the files", ctx);
  } finally {
    await closeAll(opened);
  }
  if (!commit)
    throw new HubHTTPError(`The hub answered the commit to ${repoId} without a commit id.`, { repoId });
  const url = `${endpoint}/${repoId}${revision === DEFAULT_REVISION ? "" : `/tree/${encodeURIComponent(revision)}`}`;
  return {
    repoId,
    revision,
    url,
    createdRepo,
    createdBranch,
    private: state.private,
    commitOid: commit.oid,
    commitUrl: commit.url,
    plan,
  };
}
