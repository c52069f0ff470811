// The output folder of a training run: who may write into it (an exclusive lock), whose it is (a run id in a
// marker file and in every checkpoint's trainer_state.json), and what a fresh run or a resume may find there.
//
// HF Trainer has neither a lock nor run ids: two runs into one folder interleave their checkpoints and logs, and
// checkpoint rotation sorts every `checkpoint-*` by step, whoever wrote it. The example scripts of transformers
// refuse a non-empty output_dir unless `--overwrite_output_dir`; ragtune does the same for a fresh run (stricter:
// also without a checkpoint in it, since the final model's README.md/config.json would overwrite the folder's) and,
// with the flag, removes the earlier run's checkpoints and log first so nothing of it is rotated, resumed or mixed
// into this run's log. A ragtune run that ended before its first checkpoint (its marker, log and baseline only)
// holds nothing to resume and is replaced without the flag, so a failed start can simply be run again.
//
// The lock is `.ragtune-train.lock`, created with link(2) from a complete temporary file (so it never exists
// half-written) and holding {pid, host, started}. A lock whose pid is gone on this host is stale (a run killed by
// SIGKILL, or by SIGINT: the training loop is synchronous, so no JS signal handler could run before the process
// ends) and is taken over with a note; a lock of another host cannot be checked and is never taken over.
import { randomUUID } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import {
  FileWriteError,
  isPlainObject,
  tempPathFor,
  writeFileAtomic,
  writeJsonAtomic,
} from "../util/index.ts";
import {
  CHECKPOINT_PREFIX,
  STATE_FILE,
  checkpointRunId,
  latestCheckpoint,
  processAlive,
} from "./checkpoint.ts";

export const LOCK_FILE = ".ragtune-train.lock";
/** Marks a folder as a ragtune training run's and names the run. */
export const RUN_MARKER = "ragtune_run.json";
export const LOG_FILE = "training_log.jsonl";
/**
 * The final model's folder inside the run folder: model files only (the layout of sentence-transformers' training
 * examples, `model.save_pretrained(f"{output_dir}/final")`), so that it can be uploaded or copied without the
 * run's checkpoints, optimizer state and logs.
 */
export const FINAL_DIR = "final";

/** A held output folder: the run's id, the checkpoint to resume from (if any), and the lock to release. */
export interface RunDir {
  readonly dir: string;
  readonly runId: string;
  /** The checkpoint folder this run resumes from, or null for a fresh run. */
  readonly resumeDir: string | null;
  /** Lines worth telling the user (a stale lock taken over, an earlier run removed). */
  readonly notes: readonly string[];
  /** Removes the lock (idempotent). */
  release(): void;
}

export interface OpenRunDirOptions {
  /** A checkpoint folder, or "latest" for the newest in `dir`; null for a fresh run. */
  resumeFromCheckpoint: string | null;
  /** HF's overwrite_output_dir: a fresh run may replace what the folder holds. */
  overwriteOutputDir: boolean;
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/**
 * Locks `dir` (created if missing) for this process and checks it for the run: a fresh run needs an empty folder
 * (or `overwriteOutputDir`, which removes an earlier run's checkpoints, log and marker); a resume adopts the run id
 * of its checkpoint. Writes the marker and starts (fresh) or truncates (resume) the training log. Throws, with the
 * lock released, when the folder is not this run's to use.
 */
export function openRunDir(dir: string, options: OpenRunDirOptions): RunDir {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new FileWriteError(dir, "create the output folder", e);
  }
  const notes: string[] = [];
  const release = acquireLock(dir, notes);
  try {
    const resumeDir = resolveResume(dir, options.resumeFromCheckpoint);
    const runId = resumeDir ? adoptRun(dir, resumeDir, options, notes) : freshRun(dir, options, notes);
    writeJsonAtomic(join(dir, RUN_MARKER), { run_id: runId, tool: "ragtune train" });
    return { dir, runId, resumeDir, notes, release };
  } catch (e) {
    release();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The lock

function acquireLock(dir: string, notes: string[]): () => void {
  const path = join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const tmp = tempPathFor(path);
  writeFileAtomic(tmp, JSON.stringify(mine) + "\n");
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path); // atomic, fails with EEXIST: the lock appears complete or not at all
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST")
          throw new FileWriteError(path, "create the lock", e);
      }
      const holder = readLock(path);
      if (attempt === 0 && holder && holder.host === mine.host && !processAlive(holder.pid)) {
        notes.push(
          `took over a stale lock of process ${holder.pid} (started ${holder.started}, no longer running)`,
        );
        rmSync(path, { force: true });
        continue;
      }
      throw lockedError(dir, holder);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener("exit", release);
    const holder = readLock(path);
    if (holder && holder.pid === mine.pid && holder.started === mine.started) rmSync(path, { force: true });
  };
  process.on("exit", release); // an uncaught throw ends the process without reaching the caller's finally
  return release;
}

function lockedError(dir: string, holder: LockInfo | null): Error {
  const path = join(dir, LOCK_FILE);
  return new Error(
    holder
      ? `${dir} is in use by another ragtune train (pid ${holder.pid} on ${holder.host}, started ${holder.started}); ` +
          `wait for it to end or use another --out (if that process is gone, delete ${path})`
      : `${dir} is locked by ${path}, which is not a ragtune lock file (delete it if no run is using the folder)`,
  );
}

/**
 * Fails at once when a live run holds `dir` (before a caller loads a model only to find the folder taken); the
 * lock itself is taken by openRunDir.
 */
export function assertNotLocked(dir: string): void {
  const path = join(dir, LOCK_FILE);
  if (!existsSync(path)) return;
  const holder = readLock(path);
  if (holder && holder.host === hostname() && !processAlive(holder.pid)) return; // stale: openRunDir takes it
  throw lockedError(dir, holder);
}

function readLock(path: string): LockInfo | null {
  try {
    const v: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (isPlainObject(v) && Number.isInteger(v.pid) && typeof v.host === "string")
      return { pid: v.pid as number, host: v.host, started: String(v.started) };
  } catch {
    // unreadable or not JSON: reported by the caller as a foreign lock
  }
  return null;
}

/**
 * The folder as a data-parallel rank other than 0 sees it, after rank 0 has opened it (openRunDir): no lock, no
 * writes; only the checkpoint to resume from, resolved as rank 0 resolved it. The run id is the folder's.
 */
export function followRunDir(dir: string, options: OpenRunDirOptions): RunDir {
  const resumeDir = resolveResume(dir, options.resumeFromCheckpoint);
  return { dir, runId: markedRunId(dir) ?? "", resumeDir, notes: [], release: () => {} };
}

// ---------------------------------------------------------------------------------------------------------
// Whose folder: fresh runs and resumes

function resolveResume(dir: string, from: string | null): string | null {
  if (!from) return null;
  if (from === "latest") {
    const latest = latestCheckpoint(dir);
    if (!latest) throw new Error(`--resume latest: no checkpoint in ${dir}`);
    return latest.dir;
  }
  if (!existsSync(from)) throw new Error(`--resume: ${from} does not exist`);
  if (!existsSync(join(from, STATE_FILE)))
    throw new Error(`--resume: ${from} is not a ragtune checkpoint (${STATE_FILE} is missing)`);
  return from;
}

/** Entries of `dir` that belong to no run (the lock and temporary files aside). */
function contents(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n !== LOCK_FILE && !/^\..*\.tmp-\d+-[0-9a-f]+$/.test(n))
    .sort();
}

/** The run id a folder's marker names, or null (no marker, or not readable as one). */
export function markedRunId(dir: string): string | null {
  try {
    const v: unknown = JSON.parse(readFileSync(join(dir, RUN_MARKER), "utf8"));
    return isPlainObject(v) && typeof v.run_id === "string" ? v.run_id : null;
  } catch {
    return null;
  }
}

function freshRun(dir: string, options: OpenRunDirOptions, notes: string[]): string {
  const found = contents(dir);
  const run = markedRunId(dir);
  // A run that ended before its first checkpoint (a failed start: bad data, a NaN at step 1) left nothing to resume
  // or keep but its log: the same command may simply run again.
  const abandoned =
    run !== null && found.every((n) => n === RUN_MARKER || n === LOG_FILE || n === "baseline_results.json");
  if (abandoned) {
    notes.push(`replacing the run ${run} in ${dir}, which ended before its first checkpoint`);
  } else if (found.length > 0) {
    const what = run
      ? `the ragtune run ${run}`
      : found.some((n) => n.startsWith(CHECKPOINT_PREFIX))
        ? "another training run"
        : "files that are not a ragtune run";
    if (!options.overwriteOutputDir) {
      const shown = found.slice(0, 5).join(", ") + (found.length > 5 ? `, … (${found.length} entries)` : "");
      throw new Error(
        `--out ${dir} is not empty: it holds ${what} (${shown}). A fresh run needs an empty folder: ` +
          `pass --resume latest to continue that run, --overwrite-output-dir to replace it, or another --out`,
      );
    }
    // Everything that a later rotation, resume or log reader would take for this run's.
    // The earlier final model too: the new one is written into a fresh folder, so none of the old files (an
    // onnx/ of another architecture, a Dense folder) can stay behind in it.
    const removed = found.filter(
      (n) => n.startsWith(CHECKPOINT_PREFIX) || n === LOG_FILE || n === RUN_MARKER || n === FINAL_DIR,
    );
    for (const n of removed) rmSync(join(dir, n), { recursive: true, force: true });
    notes.push(
      `--overwrite-output-dir: replacing ${what} in ${dir}` +
        (removed.length ? ` (removed ${removed.join(", ")})` : ""),
    );
  }
  writeFileAtomic(join(dir, LOG_FILE), "");
  return randomUUID();
}

function adoptRun(dir: string, resumeDir: string, options: OpenRunDirOptions, notes: string[]): string {
  const fromCheckpoint = checkpointRunId(resumeDir);
  const marked = markedRunId(dir);
  const inside = resolve(resumeDir, "..") === resolve(dir);
  if (marked && fromCheckpoint && marked !== fromCheckpoint && !options.overwriteOutputDir)
    throw new Error(
      `--out ${dir} belongs to the ragtune run ${marked}, the checkpoint ${resumeDir} to the run ${fromCheckpoint}: ` +
        `resume into that run's folder, or pass --overwrite-output-dir`,
    );
  if (!inside && !marked && contents(dir).length > 0 && !options.overwriteOutputDir)
    throw new Error(
      `--out ${dir} is not empty and is not the folder of the run ${resumeDir} belongs to: ` +
        `use an empty --out, or pass --overwrite-output-dir`,
    );
  const runId = fromCheckpoint ?? randomUUID();
  if (!fromCheckpoint)
    notes.push(`${resumeDir} has no run id (written by an older ragtune): the resumed run is ${runId}`);
  truncateLog(join(dir, LOG_FILE), stepOf(resumeDir));
  return runId;
}

function stepOf(checkpointDir: string): number {
  const m = /checkpoint-(\d+)$/.exec(checkpointDir.replace(/[\\/]+$/, ""));
  if (m) return Number(m[1]);
  const v: unknown = JSON.parse(readFileSync(join(checkpointDir, STATE_FILE), "utf8"));
  return isPlainObject(v) && typeof v.global_step === "number" ? v.global_step : 0;
}

/**
 * Keeps the log's entries up to `step` (those the checkpoint's log_history holds too), so the resumed run's
 * entries follow without repeating the steps it redoes; a torn last line of a killed run is dropped as well.
 */
export function truncateLog(path: string, step: number): void {
  if (!existsSync(path)) {
    writeFileAtomic(path, "");
    return;
  }
  if (statSync(path).isDirectory()) throw new FileWriteError(path, "write the log", { code: "EISDIR" });
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => {
      if (line.trim() === "") return false;
      try {
        const entry: unknown = JSON.parse(line);
        return isPlainObject(entry) && typeof entry.step === "number" && entry.step <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, kept.map((l) => l + "\n").join(""));
}

/** Who holds the lock of `dir` (pid, host, start time), or null when nobody (or not a ragtune lock). */
export function lockHolder(dir: string): LockInfo | null {
  return readLock(join(dir, LOCK_FILE));
}
