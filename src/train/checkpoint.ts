// Checkpoints: `checkpoint-<step>/` holds the model (a sentence-transformers folder), the optimizer moments,
// the random generators' states, the sampler position and `trainer_state.json` (the Hugging Face Trainer's file:
// log history, best metric, best checkpoint). Each is written into a temporary folder and renamed into place, so
// a killed run leaves the previous checkpoint intact and never a half-written one under the final name.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { getRngState, setRngState, tidy, type AdamW, type Tensor } from "../engine/index.ts";
import { loadSafetensors, saveSafetensors } from "../models/weights.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import type { SamplerState } from "./samplers.ts";

export const CHECKPOINT_PREFIX = "checkpoint-";
const OPTIMIZER_FILE = "optimizer.safetensors";
const RNG_FILE = "rng_state.safetensors";
const STATE_FILE = "trainer_state.json";

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
  },
): SavedCheckpoint {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, `${CHECKPOINT_PREFIX}${step}`);
  const tmp = `${final}.tmp-${process.pid}`;
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
    saveSafetensors(join(tmp, RNG_FILE), rng, { format: "pt" });
  });
  writeFileSync(join(tmp, STATE_FILE), JSON.stringify(parts.state, null, 2) + "\n");
  writeFileSync(join(tmp, "training_args.json"), JSON.stringify(parts.args, null, 2) + "\n");
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  return { dir: final, step };
}

/** Restores optimizer moments and step, RNG states; returns the trainer state. Model weights are loaded by the caller. */
export function loadCheckpointState(
  dir: string,
  parts: { model: SentenceTransformer; optimizer: AdamW; devices: string[] },
): TrainerState {
  const statePath = join(dir, STATE_FILE);
  if (!existsSync(statePath)) throw new Error(`${dir} is not a ragtune checkpoint: ${STATE_FILE} is missing`);
  const state = JSON.parse(readFileSync(statePath, "utf8")) as TrainerState;
  const optPath = join(dir, OPTIMIZER_FILE);
  const tensors = loadSafetensors(optPath);
  try {
    const nameOf = parameterNames(parts.model);
    const meta = readMetadata(optPath);
    const steps = JSON.parse(meta.param_steps ?? "{}") as Record<string, number>;
    const names = parts.optimizer.params.map((p) => nameOf.get(p) ?? "");
    parts.optimizer.loadStateDict({
      step: Number(meta.step ?? state.global_step),
      expAvg: names.map((n) => tensors.get(`exp_avg.${n}`) ?? null),
      expAvgSq: names.map((n) => tensors.get(`exp_avg_sq.${n}`) ?? null),
      paramSteps: names.map((n) => steps[n] ?? null),
    });
    if (meta.lr !== undefined) parts.optimizer.lr = Number(meta.lr);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  const rng = loadSafetensors(join(dir, RNG_FILE));
  try {
    for (const d of parts.devices) {
      const s = rng.get(d);
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

function readMetadata(path: string): Record<string, string> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as {
    __metadata__?: Record<string, string>;
  };
  return header.__metadata__ ?? {};
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

function processAlive(pid: number): boolean {
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
 * Also removes temporary folders left by killed runs (removeStaleTemporaries). Returns the deleted folders.
 */
export function rotateCheckpoints(outputDir: string, limit: number | null, bestDir: string | null): string[] {
  removeStaleTemporaries(outputDir);
  if (limit === null || limit <= 0) return [];
  const all = listCheckpoints(outputDir);
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
