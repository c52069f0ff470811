// Checkpoints: `checkpoint-<step>/` holds the model (a sentence-transformers folder), the optimizer moments,
// the random generators' states, the sampler position and `trainer_state.json` (the Hugging Face Trainer's file:
// log history, best metric, best checkpoint). Each is written into a temporary folder and renamed into place, so
// a killed run leaves the previous checkpoint intact and never a half-written one under the final name.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { getRngState, setRngState, tidy, type AdamW, type Tensor } from "../engine/index.ts";
import { loadSafetensors, saveSafetensors } from "../models/weights.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import { FileWriteError, fsyncDir, isPlainObject, writeJsonAtomic } from "../util/index.ts";
import type { SamplerState } from "./samplers.ts";

export const CHECKPOINT_PREFIX = "checkpoint-";
const OPTIMIZER_FILE = "optimizer.safetensors";
const RNG_FILE = "rng_state.safetensors";
export const STATE_FILE = "trainer_state.json";

/** One entry of the log history (training logs and evaluations), as the HF Trainer records them. */
export type LogEntry = Record<string, number | string>;

/** trainer_state.json: the HF TrainerState fields ragtune fills, plus its sampler position. */
export interface TrainerState {
  global_step: number;
  epoch: number;
  max_steps: number;
  num_train_epochs: number;
  train_batch_size: number;
  logging_steps: number;
  eval_steps: number | null;
  save_steps: number | null;
  best_metric: number | null;
  best_global_step: number | null;
  best_model_checkpoint: string | null;
  log_history: LogEntry[];
  /** Where the data order resumes: the epoch, the micro-batches of it already consumed, the sampler config. */
  ragtune_sampler: SamplerState;
  /** The run this checkpoint belongs to: rotation deletes only its own run's checkpoints (see output-dir.ts). */
  ragtune_run_id?: string;
  /** Optimizer steps skipped for a non-finite loss or gradient norm (skipNonfiniteSteps). */
  ragtune_nonfinite_skipped?: number;
  /**
   * The data-parallel world size that wrote the checkpoint (absent: 1). Everything else in it is global (the
   * sampler position counts global batches; weights and moments are the same on every rank), so another world
   * size resumes the same remaining batches; only the ranks' random states are per rank (rank<r>.* in the RNG
   * file) and can be restored only at the same world size.
   */
  ragtune_world_size?: number;
}

export interface SavedCheckpoint {
  dir: string;
  step: number;
}

/** Writes checkpoint-<step> under outputDir atomically. The model folder goes at the checkpoint's root. */
export function saveCheckpoint(
  outputDir: string,
  step: number,
  parts: {
    model: SentenceTransformer;
    optimizer: AdamW;
    state: TrainerState;
    args: unknown;
    devices: string[];
    /**
     * Data parallel: the random states of ranks 1…N−1 (gathered by the trainer), keyed `rank<r>.cpu` and
     * `rank<r>.cuda`; this process's (rank 0's) are saved under their device names as in a one-process run.
     */
    peerRngStates?: ReadonlyMap<string, Tensor>;
  },
): SavedCheckpoint {
  const final = join(outputDir, `${CHECKPOINT_PREFIX}${step}`);
  const tmp = `${final}.tmp-${process.pid}`;
  try {
    mkdirSync(outputDir, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    parts.model.save(tmp);
    tidy(() => {
      // Moments are stored by parameter name, so a checkpoint stays readable if parameter order changes. The
      // optimizer's order (its parameter groups) differs from the model's, hence the lookup by tensor identity.
      const nameOf = parameterNames(parts.model);
      const sd = parts.optimizer.stateDict();
      const tensors = new Map<string, Tensor>();
      const steps: Record<string, number> = {};
      parts.optimizer.params.forEach((p, i) => {
        const name = nameOf.get(p);
        const m = sd.expAvg[i];
        const v = sd.expAvgSq[i];
        if (name === undefined || !m || !v) return;
        tensors.set(`exp_avg.${name}`, m);
        tensors.set(`exp_avg_sq.${name}`, v);
        steps[name] = sd.paramSteps?.[i] ?? sd.step;
      });
      saveSafetensors(join(tmp, OPTIMIZER_FILE), tensors, {
        format: "pt",
        step: String(sd.step),
        lr: String(parts.optimizer.lr),
        param_steps: JSON.stringify(steps),
      });
      const rng = new Map<string, Tensor>(parts.devices.map((d) => [d, getRngState(d as "cpu")]));
      for (const [k, v] of parts.peerRngStates ?? []) rng.set(k, v);
      saveSafetensors(join(tmp, RNG_FILE), rng, { format: "pt" });
    });
    writeJsonAtomic(join(tmp, STATE_FILE), parts.state);
    writeJsonAtomic(join(tmp, "training_args.json"), parts.args);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    // A half-written checkpoint (ENOSPC, EIO, …) never stays behind, nor under its final name.
    rmSync(tmp, { recursive: true, force: true });
    throw checkpointWriteError(e, tmp, final);
  }
  fsyncDir(outputDir);
  return { dir: final, step };
}

/** The error of a failed checkpoint write, naming the file (a FileWriteError already does). */
function checkpointWriteError(e: unknown, tmp: string, final: string): Error {
  if (e instanceof FileWriteError) return new FileWriteError(e.path, `save ${final}: write`, e.cause ?? e);
  const errno = e as NodeJS.ErrnoException;
  if (errno?.code !== undefined) return new FileWriteError(errno.path ?? tmp, `save ${final}: write`, e);
  return e instanceof Error ? e : new Error(String(e));
}

/** The key of rank `rank`'s random state of `device` in the RNG file (rank 0: the device's own name). */
export function rngKey(rank: number, device: string): string {
  return rank === 0 ? device : `rank${rank}.${device.startsWith("cuda") ? "cuda" : "cpu"}`;
}

/**
 * Restores optimizer moments and step, RNG states; returns the trainer state. Model weights are loaded by the caller.
 * Data parallel (`rank` of `worldSize`): each rank takes its own random states when the checkpoint was written by
 * as many ranks; at another world size every rank takes rank 0's (as HF Trainer, which warns that the random draws
 * then differ from an uninterrupted run: the trainer says so).
 */
export function loadCheckpointState(
  dir: string,
  parts: {
    model: SentenceTransformer;
    optimizer: AdamW;
    devices: string[];
    rank?: number;
    worldSize?: number;
  },
): TrainerState {
  const statePath = join(dir, STATE_FILE);
  if (!existsSync(statePath)) throw new Error(`${dir} is not a ragtune checkpoint: ${STATE_FILE} is missing`);
  const state = readTrainerState(statePath);
  const optPath = join(dir, OPTIMIZER_FILE);
  const meta = readMetadata(optPath);
  const steps = parseParamSteps(optPath, meta.param_steps);
  const step = Number(meta.step ?? state.global_step);
  if (!Number.isInteger(step) || step < 0)
    throw new Error(`${optPath}: __metadata__.step must be an integer ≥ 0, got ${JSON.stringify(meta.step)}`);
  if (meta.lr !== undefined && !Number.isFinite(Number(meta.lr)))
    throw new Error(`${optPath}: __metadata__.lr must be a number, got ${JSON.stringify(meta.lr)}`);
  const tensors = loadSafetensors(optPath);
  try {
    const nameOf = parameterNames(parts.model);
    const names = parts.optimizer.params.map((p) => nameOf.get(p) ?? "");
    parts.optimizer.loadStateDict({
      step,
      expAvg: names.map((n) => tensors.get(`exp_avg.${n}`) ?? null),
      expAvgSq: names.map((n) => tensors.get(`exp_avg_sq.${n}`) ?? null),
      paramSteps: names.map((n) => steps[n] ?? null),
    });
    if (meta.lr !== undefined) parts.optimizer.lr = Number(meta.lr);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  const rng = loadSafetensors(join(dir, RNG_FILE));
  const rank = parts.rank ?? 0;
  const ownStates = (state.ragtune_world_size ?? 1) === (parts.worldSize ?? 1);
  try {
    for (const d of parts.devices) {
      // Rank 0's CUDA state is under its own device name (cuda:0, or whichever the run used).
      const rank0 =
        rng.get(d) ?? [...rng.entries()].find(([k]) => k.startsWith("cuda") && d.startsWith("cuda"))?.[1];
      const s = (ownStates && rank > 0 ? rng.get(rngKey(rank, d)) : undefined) ?? rank0;
      if (s) setRngState(s, d as "cpu");
    }
  } finally {
    for (const t of rng.values()) t.dispose();
  }
  return state;
}

/** Parameter tensor → a unique name (the model's parameter names; a repeated name gets a #k suffix). */
function parameterNames(model: SentenceTransformer): Map<Tensor, string> {
  const out = new Map<Tensor, string>();
  const seen = new Map<string, number>();
  for (const [name, t] of model.namedParameters()) {
    const k = seen.get(name) ?? 0;
    seen.set(name, k + 1);
    out.set(t, k === 0 ? name : `${name}#${k}`);
  }
  return out;
}

/** The `__metadata__` of a safetensors header; errors name the file. */
function readMetadata(path: string): Record<string, string> {
  if (!existsSync(path)) throw new Error(`${path} is missing: the checkpoint is incomplete`);
  const buf = readFileSync(path);
  const n = buf.length >= 8 ? Number(buf.readBigUInt64LE(0)) : -1;
  if (n < 0 || 8 + n > buf.length)
    throw new Error(`${path}: not a safetensors file (header length ${n}, file ${buf.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  } catch (e) {
    throw new Error(`${path}: the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw new Error(`${path}: the safetensors header is not a JSON object`);
  const meta = header.__metadata__ ?? {};
  if (!isPlainObject(meta) || Object.values(meta).some((v) => typeof v !== "string"))
    throw new Error(`${path}: __metadata__ must be an object of strings`);
  return meta as Record<string, string>;
}

function parseParamSteps(path: string, text: string | undefined): Record<string, number> {
  let steps: unknown;
  try {
    steps = JSON.parse(text ?? "{}");
  } catch (e) {
    throw new Error(`${path}: __metadata__.param_steps is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(steps)) throw new Error(`${path}: __metadata__.param_steps must be a JSON object`);
  for (const [name, v] of Object.entries(steps))
    if (!Number.isInteger(v) || (v as number) < 0)
      throw new Error(
        `${path}: __metadata__.param_steps["${name}"] must be an integer ≥ 0, got ${JSON.stringify(v)}`,
      );
  return steps as Record<string, number>;
}

/**
 * Reads and checks trainer_state.json: every key the trainer relies on, with an error naming the file and the key
 * (a corrupt or hand-edited file must not surface as a bare JSON or `undefined` error deep in the resume).
 */
export function readTrainerState(path: string): TrainerState {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); the checkpoint is damaged`);
  }
  const bad = (key: string, want: string, got: unknown): Error =>
    new Error(`${path}: key "${key}" must be ${want}, got ${JSON.stringify(got) ?? "nothing"}`);
  if (!isPlainObject(v)) throw bad("(root)", "a JSON object", v);
  const count = (o: Record<string, unknown>, key: string, prefix = ""): void => {
    if (!Number.isInteger(o[key]) || (o[key] as number) < 0)
      throw bad(prefix + key, "an integer ≥ 0", o[key]);
  };
  for (const key of ["global_step", "max_steps", "num_train_epochs", "train_batch_size", "logging_steps"])
    count(v, key);
  if (typeof v.epoch !== "number" || !Number.isFinite(v.epoch)) throw bad("epoch", "a number", v.epoch);
  for (const key of ["eval_steps", "save_steps", "best_global_step"])
    if (v[key] !== null && v[key] !== undefined) count(v, key);
  if (v.best_metric !== null && v.best_metric !== undefined && typeof v.best_metric !== "number")
    throw bad("best_metric", "a number or null", v.best_metric);
  if (v.best_model_checkpoint !== null && typeof v.best_model_checkpoint !== "string")
    throw bad("best_model_checkpoint", "a folder path or null", v.best_model_checkpoint);
  if (!Array.isArray(v.log_history) || !v.log_history.every(isPlainObject))
    throw bad("log_history", "a list of objects", v.log_history);
  const sampler = v.ragtune_sampler;
  if (!isPlainObject(sampler)) throw bad("ragtune_sampler", "an object {epoch, batch, sampler}", sampler);
  count(sampler, "epoch", "ragtune_sampler.");
  count(sampler, "batch", "ragtune_sampler.");
  if (!isPlainObject(sampler.sampler))
    throw bad("ragtune_sampler.sampler", "the sampler's config object", sampler.sampler);
  if (v.ragtune_run_id !== undefined && typeof v.ragtune_run_id !== "string")
    throw bad("ragtune_run_id", "a string", v.ragtune_run_id);
  if (v.ragtune_nonfinite_skipped !== undefined) count(v, "ragtune_nonfinite_skipped");
  if (
    v.ragtune_world_size !== undefined &&
    (!Number.isInteger(v.ragtune_world_size) || (v.ragtune_world_size as number) < 1)
  )
    throw bad("ragtune_world_size", "an integer ≥ 1", v.ragtune_world_size);
  return v as unknown as TrainerState;
}

/** checkpoint-<step> folders under outputDir, oldest first (by step). Temporary folders are ignored. */
export function listCheckpoints(outputDir: string): SavedCheckpoint[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ dir: join(outputDir, m[0]), step: Number(m[1]) }))
    .filter((c) => existsSync(join(c.dir, STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint, or undefined. */
export function latestCheckpoint(outputDir: string): SavedCheckpoint | undefined {
  const all = listCheckpoints(outputDir);
  return all[all.length - 1];
}

/**
 * Removes `checkpoint-<step>.tmp-<pid>` folders whose writer is gone (a run killed while saving); those of a
 * live process (this one, or another run writing into the same folder) are left alone. Returns the removed ones.
 */
export function removeStaleTemporaries(outputDir: string): string[] {
  if (!existsSync(outputDir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(outputDir)) {
    const m = /^checkpoint-\d+\.tmp-(\d+)$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    rmSync(join(outputDir, name), { recursive: true, force: true });
    removed.push(join(outputDir, name));
  }
  return removed;
}

/** The run id in a checkpoint's trainer_state.json; null for checkpoints written before run ids (or unreadable). */
export function checkpointRunId(checkpointDir: string): string | null {
  try {
    const v: unknown = JSON.parse(readFileSync(join(checkpointDir, STATE_FILE), "utf8"));
    return isPlainObject(v) && typeof v.ragtune_run_id === "string" ? v.ragtune_run_id : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists on this host. */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0); // signal 0 only checks that the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // it exists, under another user
  }
}

/**
 * Deletes the oldest checkpoints beyond `limit`, never the best one (HF Trainer `_rotate_checkpoints`: the best
 * checkpoint is moved out of the deletion range, so with limit 1 and a best that is not the newest, two remain).
 * Also removes temporary folders left by killed runs (removeStaleTemporaries). With `runId`, only checkpoints
 * whose trainer_state.json names that run are counted or deleted. Returns the deleted folders.
 */
export function rotateCheckpoints(
  outputDir: string,
  limit: number | null,
  bestDir: string | null,
  runId?: string,
): string[] {
  removeStaleTemporaries(outputDir);
  if (limit === null || limit <= 0) return [];
  // With a run id only this run's checkpoints count (HF sorts every checkpoint-* of the folder, whoever wrote it).
  const all = listCheckpoints(outputDir).filter(
    (c) => runId === undefined || checkpointRunId(c.dir) === runId,
  );
  const bestName = bestDir ? basename(bestDir) : null;
  let keep = limit;
  // HF: when the best checkpoint would be deleted and the limit is 1, keep one more so the newest survives too.
  if (bestName && keep === 1 && all[all.length - 1] && basename(all[all.length - 1]!.dir) !== bestName)
    keep = 2;
  const deletable = all.filter((c) => basename(c.dir) !== bestName);
  const excess = all.length - keep;
  const deleted: string[] = [];
  for (const c of deletable.slice(0, Math.max(0, excess))) {
    rmSync(c.dir, { recursive: true, force: true });
    deleted.push(c.dir);
  }
  return deleted;
}
