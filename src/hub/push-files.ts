// Which files of a local folder `ragtune push` uploads, and how it reads them. An allowlist, not a denylist: a
// model folder is a known set of files (what sentence-transformers, transformers.js and the USE npm packages
// load), and anything else found beside them (checkpoints, optimizer state, logs, eval reports, lock and
// temporary files) is skipped and listed, never sent. huggingface_hub's `upload_folder` uploads everything not
// ignored; we are stricter because a training run's folder holds the optimizer state and the training data's
// paths, which a user rarely means to publish.
//
// Each uploaded file is opened once, with O_NOFOLLOW, and checked with fstat on the open descriptor (a regular
// file, not a symlink, FIFO or device); the upload then reads that descriptor, so what was checked is what is
// sent, even if the path is swapped for a link meanwhile.
import { constants, type Dirent, type Stats } from "node:fs";
import { open, readdir, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

import { readJsonFile } from "../util/index.ts";
import { PushFolderError } from "./errors.ts";

/** What a file is, for the listing. */
export type PushFileKind = "weights" | "config" | "tokenizer" | "card" | "onnx" | "tfjs";

export interface PlannedFile {
  /** Path in the repo ("1_Pooling/config.json"), always with "/". */
  path: string;
  /** Path on disk. */
  localPath: string;
  size: number;
  kind: PushFileKind;
}

export interface SkippedEntry {
  /** Path relative to the folder; folders end with "/" and are not descended into. */
  path: string;
  reason: string;
}

export interface PushPlan {
  dir: string;
  files: PlannedFile[];
  skipped: SkippedEntry[];
  totalBytes: number;
}

// ---- the allowlist -------------------------------------------------------------------------------------------

/** Tokenizer files of the tokenizers/transformers families ragtune loads (fast JSON, WordPiece, BPE, SentencePiece). */
const TOKENIZER_FILES = new Set([
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.txt",
  "vocab.json",
  "merges.txt",
  "sentencepiece.bpe.model",
  "spiece.model",
  "tokenizer.model",
]);

/** Training state that sits beside the weights in a checkpoint: never part of a published model. */
const TRAINER_STATE = /^(optimizer|scheduler|rng_state|scaler)([._-].*)?\.(pt|pth|bin|safetensors|json)$/;

/** The kind of a model file at the root of a model folder (or of a module folder), or undefined. */
function modelFileKind(name: string): PushFileKind | undefined {
  if (TRAINER_STATE.test(name)) return undefined;
  if (/^[\w.-]+\.safetensors$/.test(name) || /^[\w.-]+\.safetensors\.index\.json$/.test(name))
    return "weights";
  if (TOKENIZER_FILES.has(name)) return "tokenizer";
  // config.json, config_sentence_transformers.json, sentence_bert_config.json (and its per-architecture
  // variants sentence_xlm-roberta_config.json, ...), modules.json.
  if (/^config[\w.-]*\.json$/.test(name) || /^sentence_[\w-]+_config\.json$/.test(name)) return "config";
  if (name === "modules.json") return "config";
  return undefined;
}

/** onnx/: the graphs transformers.js loads (model.onnx, model_quantized.onnx, ...) and their external data. */
function isOnnxFile(name: string): boolean {
  return /^[\w.-]+\.onnx$/.test(name) || /^[\w.-]+\.onnx(_data(_\d+)?|\.data)$/.test(name);
}

/** tfjs/: a tfjs graph model as the USE npm packages load it (model.json, weight shards, vocab.json). */
function isTfjsFile(name: string): boolean {
  return name === "model.json" || name === "vocab.json" || /^group\d+-shard\d+of\d+(\.bin)?$/.test(name);
}

/** Why a root file is not uploaded (the listing's wording), for a name modelFileKind rejected. */
function skipReason(name: string): string {
  if (name.startsWith(".")) return /\.tmp-|\.incomplete$/.test(name) ? "temporary file" : "hidden file";
  if (/\.tmp(-|$)|\.incomplete$|\.partial$/.test(name)) return "temporary file";
  if (/\.lock$/.test(name)) return "lock file";
  if (TRAINER_STATE.test(name) || /^(trainer_state|training_args)\.(json|bin)$/.test(name))
    return "trainer state";
  if (/\.(log|jsonl)$/.test(name) || /^events\.out\.tfevents/.test(name)) return "training/evaluation log";
  if (/(^|_)results\.json$/.test(name) || /^report\.(html|json)$/.test(name) || name === "comparison.md")
    return "evaluation report";
  if (name === "ragtune_run.json") return "run record";
  if (/\.(bin|pt|pth|ckpt|pkl)$/.test(name)) return "pickle weights (ragtune uploads safetensors only)";
  return "not a model file";
}

/** Why a folder at the root is not uploaded. */
function skipDirReason(name: string): string {
  if (/^checkpoint-\d+/.test(name)) return "training checkpoint";
  if (name.startsWith(".")) return "hidden folder";
  if (name === "runs" || name === "logs") return "training logs";
  return "not a model folder";
}

// ---- walking the folder --------------------------------------------------------------------------------------

/** Module folders named in modules.json ("1_Pooling", "2_Dense", ...; the root module has path ""). */
function modulePaths(dir: string): Set<string> {
  const out = new Set<string>();
  let modules: unknown;
  try {
    modules = readJsonFile(join(dir, "modules.json"));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return out;
    throw new PushFolderError(
      `${(e as Error).message}: not pushing a folder whose modules.json is unreadable`,
    );
  }
  if (!Array.isArray(modules)) return out;
  for (const m of modules) {
    const p = (m as { path?: unknown } | null)?.path;
    if (typeof p === "string" && p !== "" && !p.includes("/") && !p.startsWith(".")) out.add(p);
  }
  return out;
}

function describeType(d: Dirent | Stats): string {
  if (d.isSymbolicLink()) return "a symbolic link";
  if (d.isFIFO()) return "a FIFO";
  if (d.isSocket()) return "a socket";
  if (d.isCharacterDevice() || d.isBlockDevice()) return "a device";
  return "not a regular file";
}

async function listDir(path: string): Promise<Dirent[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
  } catch (e) {
    throw new PushFolderError(`${path}: cannot list the folder (${(e as Error).message})`, { cause: e });
  }
}

/**
 * The upload plan of `dir`: the model files with their sizes, and every other entry with why it stays behind.
 * Refuses (PushFolderError, nothing sent) a training run's folder, a model file that is a symlink or not a
 * regular file, and a folder without a config and weights.
 */
export async function planPush(dir: string): Promise<PushPlan> {
  let st: Stats;
  try {
    st = await stat(dir);
  } catch (e) {
    throw new PushFolderError(`${dir}: no such folder (${(e as NodeJS.ErrnoException).code ?? "error"})`, {
      cause: e,
    });
  }
  if (!st.isDirectory()) throw new PushFolderError(`${dir}: not a folder; push takes a model folder`);

  const root = await listDir(dir);
  // A training run's output folder keeps checkpoints and logs beside the model: the model to publish is final/.
  const runMarks = root.filter(
    (d) => d.isDirectory() && (d.name === "final" || /^checkpoint-\d+$/.test(d.name)),
  );
  if (runMarks.length > 0) {
    const marks = runMarks.map((d) => `${d.name}/`).join(", ");
    throw new PushFolderError(
      `${dir} looks like a training run folder (it has ${marks}); push the model folder inside it: ` +
        `ragtune push ${join(dir, "final")} --repo ...`,
    );
  }

  const modules = modulePaths(dir);
  const files: PlannedFile[] = [];
  const skipped: SkippedEntry[] = [];
  const refused: string[] = [];

  const visit = async (
    rel: string,
    entries: Dirent[],
    accept: (name: string) => PushFileKind | undefined,
  ) => {
    for (const d of entries) {
      const path = rel ? `${rel}/${d.name}` : d.name;
      const localPath = join(dir, ...path.split("/"));
      if (d.isDirectory()) {
        if (rel === "" && (modules.has(d.name) || /^\d+_[A-Za-z][\w-]*$/.test(d.name))) {
          await visit(path, await listDir(localPath), modelFileKind);
        } else if (rel === "" && d.name === "onnx") {
          // onnx/README.md (USE-lite: how to feed the graph) travels with the graphs.
          await visit(path, await listDir(localPath), (n) =>
            isOnnxFile(n) ? "onnx" : n === "README.md" ? "card" : undefined,
          );
        } else if (rel === "" && d.name === "tfjs") {
          await visit(path, await listDir(localPath), (n) => (isTfjsFile(n) ? "tfjs" : undefined));
        } else {
          skipped.push({ path: `${path}/`, reason: rel === "" ? skipDirReason(d.name) : "nested folder" });
        }
        continue;
      }
      const kind = accept(d.name);
      if (kind === undefined) {
        const reason = skipReason(d.name);
        skipped.push({ path, reason: d.isSymbolicLink() ? `${reason}; a symbolic link` : reason });
        continue;
      }
      if (d.isSymbolicLink() || !d.isFile()) {
        // A model file we would have to follow a link for: its content is somewhere else, possibly outside the
        // folder; refuse rather than upload what the link points to (or silently drop a needed file).
        refused.push(`${path} (${describeType(d)})`);
        continue;
      }
      files.push({ path, localPath, size: 0, kind });
    }
  };
  const rootAccept = (name: string) => (name === "README.md" ? "card" : modelFileKind(name));
  await visit("", root, rootAccept);
  // A module folder may be absent (2_Normalize has no files, and git keeps no empty folders), never a link.
  for (const m of modules) {
    const entry = root.find((d) => d.name === m);
    if (entry && !entry.isDirectory()) refused.push(`${m} (${describeType(entry)}; modules.json names it)`);
  }
  if (refused.length > 0) {
    throw new PushFolderError(
      `${dir}: refusing to push model files that are not regular files (links are not followed): ` +
        `${refused.join(", ")}; replace them with the files themselves`,
    );
  }

  for (const f of files) {
    try {
      f.size = (await stat(f.localPath)).size;
    } catch (e) {
      throw new PushFolderError(`${f.localPath}: cannot read it (${(e as Error).message})`, { cause: e });
    }
  }
  const names = new Set(files.map((f) => f.path));
  const hasConfig = names.has("config.json") || names.has("modules.json") || names.has("tfjs/model.json");
  const hasWeights = files.some((f) => f.kind === "weights" || f.kind === "onnx" || f.kind === "tfjs");
  if (!hasConfig || !hasWeights) {
    throw new PushFolderError(
      `${dir} is not a model folder: it has no ${hasConfig ? "weights (*.safetensors, onnx/*.onnx, tfjs/)" : "config.json"}` +
        ` (save one with ragtune train, create-model or export first)`,
    );
  }
  return { dir, files, skipped, totalBytes: files.reduce((s, f) => s + f.size, 0) };
}

// ---- reading what was planned --------------------------------------------------------------------------------

/** An open model file: its descriptor (checked with fstat) and the stats that the upload announced. */
export interface OpenedFile {
  file: PlannedFile;
  handle: FileHandle;
  size: number;
  mtimeMs: number;
}

/** Opens every planned file without following links; on any failure the ones already open are closed. */
export async function openPlanned(plan: PushPlan): Promise<OpenedFile[]> {
  const opened: OpenedFile[] = [];
  try {
    for (const file of plan.files) {
      let handle: FileHandle;
      try {
        handle = await open(file.localPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === "ELOOP" ? "it became a symbolic link" : (e as Error).message;
        throw new PushFolderError(`${file.localPath}: cannot open it (${why})`, { cause: e });
      }
      const st = await handle.stat();
      opened.push({ file, handle, size: st.size, mtimeMs: st.mtimeMs });
      if (!st.isFile())
        throw new PushFolderError(`${file.localPath}: is ${describeType(st)}, not a regular file`);
    }
    return opened;
  } catch (e) {
    await closeAll(opened);
    throw e;
  }
}

export async function closeAll(opened: readonly OpenedFile[]): Promise<void> {
  await Promise.all(opened.map((o) => o.handle.close().catch(() => undefined)));
}

/** The first opened file whose size or modification time changed since it was opened, if any. */
export async function changedSinceOpened(opened: readonly OpenedFile[]): Promise<string | undefined> {
  for (const o of opened) {
    const st = await o.handle.stat();
    if (st.size !== o.size || st.mtimeMs !== o.mtimeMs) return o.file.localPath;
  }
  return undefined;
}

const READ_CHUNK = 1 << 20;

/**
 * A Blob over a byte range of an open file, read lazily (weights can be gigabytes): @huggingface/hub hashes LFS
 * files through stream(), sends them as fetch bodies (undici reads stream()), and base64-encodes small files from
 * arrayBuffer(). Reads go through the already-checked descriptor; a file that shrank is an error, not a short
 * upload.
 */
export class OpenFileBlob extends Blob {
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #start: number;
  readonly #end: number;

  constructor(handle: FileHandle, path: string, start: number, end: number) {
    super([]);
    this.#handle = handle;
    this.#path = path;
    this.#start = start;
    this.#end = end;
  }

  // @ts-expect-error -- @types/node declares Blob#size a property; at runtime it is a getter, which undici and
  // @huggingface/hub read (as the library's own FileBlob does).
  override get size(): number {
    return this.#end - this.#start;
  }

  override slice(start = 0, end = this.size): OpenFileBlob {
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? this.size + v : v, 0), this.size);
    const s = clamp(start);
    return new OpenFileBlob(this.#handle, this.#path, this.#start + s, this.#start + Math.max(s, clamp(end)));
  }

  async #readAt(buf: Buffer, offset: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#handle.read(buf, offset + done, length - done, position + done);
      if (bytesRead === 0)
        throw new PushFolderError(`${this.#path}: the file shrank while it was being uploaded`);
      done += bytesRead;
    }
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    const out = new ArrayBuffer(this.size);
    await this.#readAt(Buffer.from(out), 0, this.size, this.#start);
    return out;
  }

  override async text(): Promise<string> {
    return Buffer.from(await this.arrayBuffer()).toString("utf8");
  }

  override stream(): ReturnType<Blob["stream"]> {
    let pos = this.#start;
    const end = this.#end;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (pos >= end) {
          controller.close();
          return;
        }
        const n = Math.min(READ_CHUNK, end - pos);
        const buf = Buffer.alloc(n);
        await this.#readAt(buf, 0, n, pos);
        pos += n;
        controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, n));
        if (pos >= end) controller.close();
      },
    }) as ReturnType<Blob["stream"]>;
  }
}
