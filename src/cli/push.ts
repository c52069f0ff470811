// `ragtune push DIR --repo user/name`: publish a model folder to the Hugging Face hub (src/hub/push.ts does the
// work). Prints what will be uploaded and what stays behind before anything is sent; --dry-run stops there.
// Failures exit with a code per cause, so scripts can tell a missing token from a network outage.
import {
  DEFAULT_COMMIT_MESSAGE,
  HubAuthError,
  HubConflictError,
  HubConnectionError,
  HubForbiddenError,
  HubValidationError,
  planPush,
  type PushPlan,
  pushToHub,
  PushFolderError,
  resolveHubConfig,
  resolvePushToken,
  tokenSearchList,
} from "../hub/index.ts";
import { formatBytes } from "../util/index.ts";
import { UsageError, type Command } from "./args.ts";

/** Exit codes of `ragtune push` (also in --help). */
export const PUSH_EXIT = {
  /** Bad flags, or a folder push refuses (nothing was sent). */
  usage: 2,
  /** No token, or the hub rejected it (401). */
  auth: 3,
  /** The token may not write there (403), or is read-only. */
  forbidden: 4,
  /** 409/412: name taken, concurrent commit, --private on an existing public repo. */
  conflict: 5,
  /** The hub (or its upload storage) could not be reached. */
  network: 6,
} as const;

function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError || e instanceof PushFolderError || e instanceof HubValidationError)
    return PUSH_EXIT.usage;
  if (e instanceof HubAuthError) return PUSH_EXIT.auth;
  if (e instanceof HubForbiddenError) return PUSH_EXIT.forbidden;
  if (e instanceof HubConflictError) return PUSH_EXIT.conflict;
  if (e instanceof HubConnectionError) return PUSH_EXIT.network;
  return 1;
}

/** The listing printed before an upload: each file with its size and kind, then what is skipped and why. */
export function describePlan(plan: PushPlan): string[] {
  const width = Math.max(...plan.files.map((f) => f.path.length), 10);
  const lines = [`${plan.files.length} files, ${formatBytes(plan.totalBytes)}, from ${plan.dir}:`];
  for (const f of plan.files)
    lines.push(`  ${f.path.padEnd(width)}  ${formatBytes(f.size).padStart(8)}  ${f.kind}`);
  if (plan.skipped.length > 0) {
    lines.push(`not uploaded (${plan.skipped.length}, not model files):`);
    const w = Math.max(...plan.skipped.map((s) => s.path.length));
    for (const s of plan.skipped) lines.push(`  ${s.path.padEnd(w)}  ${s.reason}`);
  }
  if (!plan.files.some((f) => f.path === "README.md"))
    lines.push("warning: no README.md, so the repo gets no model card (ragtune train writes one)");
  return lines;
}

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

export const pushCommand: Command = {
  name: "push",
  summary: "upload a model folder to the Hugging Face hub (model files only; creates the repo or branch)",
  usage:
    "ragtune push DIR --repo user/name [--private] [--revision BRANCH] [--commit-message TEXT] [--dry-run]",
  options: {
    repo: {
      type: "string",
      arg: "ID",
      help: "repo id user/name or org/name (a bare name goes under the token's user)",
    },
    private: { type: "boolean", help: "create the repo private (refused if it exists and is public)" },
    revision: {
      type: "string",
      arg: "BRANCH",
      help: "branch to commit to, created from main if missing (default: main)",
    },
    "commit-message": {
      type: "string",
      arg: "TEXT",
      help: `commit title (default: "${DEFAULT_COMMIT_MESSAGE}")`,
    },
    "commit-description": { type: "string", arg: "TEXT", help: "commit description" },
    endpoint: {
      type: "string",
      arg: "URL",
      help: "hub root (default: $HF_ENDPOINT, else https://huggingface.co)",
    },
    "dry-run": { type: "boolean", help: "list what would be uploaded and where; send nothing" },
  },
  notes:
    "Uploaded (an allowlist: what sentence-transformers, transformers and transformers.js, and the USE npm packages\n" +
    "load): README.md; config*.json, sentence_*_config.json, modules.json; *.safetensors and their index; tokenizer\n" +
    "files (tokenizer.json, tokenizer_config.json, special_tokens_map.json, added_tokens.json, vocab.txt, vocab.json,\n" +
    "merges.txt, *.model of SentencePiece); module folders (1_Pooling/, 2_Dense/, ... as modules.json names them);\n" +
    "onnx/*.onnx with external data; tfjs/ (model.json, weight shards, vocab.json). Everything else is listed and\n" +
    "skipped: checkpoint folders, optimizer/scheduler/RNG state, trainer_state.json, training_args.json, logs,\n" +
    "eval results and reports, lock and temporary files, pickle weights. A training run's folder (with final/ or\n" +
    "checkpoint-N/) is refused: push RUN/final. A model file that is a symlink, FIFO or device is refused.\n" +
    "Stricter than huggingface_hub's upload_folder, which uploads everything not ignored.\n" +
    "\n" +
    "Token, as huggingface_hub resolves it: $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN, else the token file\n" +
    "($HF_TOKEN_PATH, default $HF_HOME/token = ~/.cache/huggingface/token, written by `hf auth login`). It needs\n" +
    "write access; it is never printed. Large and binary files go through LFS as the hub decides (preupload).\n" +
    "The push is one commit; files already in the repo and not in DIR are kept (as upload_folder does).\n" +
    "\n" +
    "Exit codes: 0 pushed; 1 other hub error; 2 bad flags or refused folder (nothing sent); 3 no token or token\n" +
    "rejected (401); 4 no write access (403, read-only token, another namespace); 5 conflict (409: name taken,\n" +
    "concurrent commit; --private on an existing public repo); 6 hub unreachable.",
  async run(values, positionals) {
    try {
      await runPush(values, positionals);
    } catch (e) {
      const code = exitCodeOf(e);
      if (code === 1) throw e; // main prints it and exits 1
      process.stderr.write(`ragtune push: ${(e as Error).message}\n`);
      if (process.env.RAGTUNE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = code;
    }
  },
};

async function runPush(values: Record<string, unknown>, positionals: string[]): Promise<void> {
  if (positionals.length !== 1)
    throw new UsageError(`give exactly one model folder (got ${positionals.length})`);
  const dir = positionals[0] as string;
  const repo = str(values.repo);
  if (!repo) throw new UsageError("missing --repo user/name");
  const endpoint = str(values.endpoint);
  const revision = str(values.revision);

  const plan = await planPush(dir);
  for (const line of describePlan(plan)) process.stderr.write(`${line}\n`);

  if (values["dry-run"] === true) {
    const hubUrl = resolveHubConfig(endpoint ? { endpoint, token: false } : { token: false }).endpoint;
    let tokenLine: string;
    try {
      tokenLine = `token from ${resolvePushToken({}, process.env, hubUrl).source}`;
    } catch (e) {
      tokenLine = e instanceof HubAuthError ? `no token found (looked at ${tokenSearchList()})` : String(e);
    }
    process.stderr.write(
      `dry run: would push to ${hubUrl}/${repo} (revision ${revision ?? "main"}${values.private ? ", private" : ""}), ` +
        `${tokenLine}; nothing was sent\n`,
    );
    return;
  }

  const r = await pushToHub(dir, {
    repo,
    ...(values.private === true ? { private: true } : {}),
    ...(revision ? { revision } : {}),
    ...(str(values["commit-message"]) ? { commitMessage: str(values["commit-message"]) } : {}),
    ...(str(values["commit-description"]) ? { commitDescription: str(values["commit-description"]) } : {}),
    ...(endpoint ? { endpoint } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(
    `pushed ${r.plan.files.length} files (${formatBytes(r.plan.totalBytes)}) to ${r.url} ` +
      `(${r.private ? "private" : "public"}, commit ${r.commitOid.slice(0, 12)})\n`,
  );
}
