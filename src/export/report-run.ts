// Reads what a `ragtune train` run folder holds, for the HTML report: the training arguments and trainer
// state (top level, else the newest checkpoint-N/), the JSONL training log (loss, learning rate, evaluations),
// baseline_results.json and eval_results.json (the float metrics before and after), and optionally
// quantized_results.json and baseline_quantized_results.json (`ragtune eval --precision … --json` of the
// saved and of the base model: the dim × precision evaluation). Every file
// is optional except that the folder must hold at least one of them; a file that exists but cannot be read is
// an error naming it (and the line, for the JSONL log).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { isPlainObject } from "../util/index.ts";
import type { PerQueryRecord } from "../eval/per-query.ts";

/** One (dim, precision[, rescore]) row of a quantized evaluation (quantized-eval.ts PrecisionRow). */
export interface ReportPrecisionRow {
  name: string;
  dim: number;
  precision: string;
  rescore: number | null;
  bytesPerVector: number;
}

/** A `ragtune eval --precision … --json` file. */
export interface QuantizedResults {
  rows: ReportPrecisionRow[];
  /** Quantized and float metrics, keys without the `eval_` prefix. */
  metrics: Record<string, number>;
  calibration: { source: string; rows: number } | null;
  rescoreCorpus: string | null;
}

export interface RunData {
  /** Folder name, used as the run's label. */
  name: string;
  dir: string;
  trainingArgs: Record<string, unknown> | null;
  trainerState: Record<string, unknown> | null;
  /** Training log entries in order (training steps, evaluations, the final summary). */
  log: Array<Record<string, unknown>>;
  /** Float metrics before training, keys without the `eval_` prefix (`dim_768_cosine_ndcg@10`). */
  baseline: Record<string, number> | null;
  /** Float metrics of the saved model, keys without the `eval_` prefix. */
  final: Record<string, number> | null;
  /** quantized_results.json: the dim × precision evaluation of the saved model. */
  quantized: QuantizedResults | null;
  /** baseline_quantized_results.json: the same for the base model (before tuning). */
  quantizedBaseline: QuantizedResults | null;
  /** per_query.jsonl / baseline_per_query.jsonl (`ragtune eval --per-query`): per-query results after / before. */
  perQuery: PerQueryRecord[] | null;
  perQueryBaseline: PerQueryRecord[] | null;
  /** Files the report found, for the config section. */
  files: string[];
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

function readObject(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  const v = readJson(file);
  if (!isPlainObject(v)) throw new Error(`${file}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** The numeric entries of a metrics object, with the trainer's `eval_` prefix removed. */
function metricsOf(obj: Record<string, unknown>, file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== "number") continue;
    if (!Number.isFinite(v)) throw new Error(`${file}: "${k}" is not a finite number`);
    out[k.startsWith("eval_") ? k.slice(5) : k] = v;
  }
  return out;
}

/** The newest checkpoint-N folder of `dir` (highest N), if any. */
function newestCheckpoint(dir: string): string | null {
  let best: [number, string] | null = null;
  for (const name of readdirSync(dir)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (m && statSync(join(dir, name)).isDirectory() && (!best || Number(m[1]) > best[0]))
      best = [Number(m[1]), name];
  }
  return best ? join(dir, best[1]) : null;
}

function readLog(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const out: Array<Record<string, unknown>> = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
      }
      if (!isPlainObject(v)) throw new Error(`${file}:${i + 1}: expected a JSON object`);
      out.push(v as Record<string, unknown>);
    });
  return out;
}

function readQuantized(file: string): QuantizedResults | null {
  const obj = readObject(file);
  if (!obj) return null;
  const q = obj.quantized;
  if (!isPlainObject(q))
    throw new Error(`${file}: no "quantized" object (write it with ragtune eval --precision … --json)`);
  const qo = q as Record<string, unknown>;
  if (!Array.isArray(qo.rows)) throw new Error(`${file}: quantized.rows must be an array`);
  const rows = qo.rows.map((r: unknown, i: number): ReportPrecisionRow => {
    const o = r as Record<string, unknown>;
    if (
      !isPlainObject(r) ||
      typeof o.name !== "string" ||
      typeof o.dim !== "number" ||
      typeof o.precision !== "string" ||
      typeof o.bytesPerVector !== "number"
    )
      throw new Error(`${file}: quantized.rows[${i}] needs name, dim, precision and bytesPerVector`);
    return {
      name: o.name,
      dim: o.dim,
      precision: o.precision,
      rescore: typeof o.rescore === "number" ? o.rescore : null,
      bytesPerVector: o.bytesPerVector,
    };
  });
  const floatMetrics = isPlainObject(obj.metrics)
    ? metricsOf(obj.metrics as Record<string, unknown>, file)
    : {};
  const qm = isPlainObject(qo.metrics) ? metricsOf(qo.metrics as Record<string, unknown>, file) : {};
  const cal = qo.calibration as Record<string, unknown> | null | undefined;
  return {
    rows,
    metrics: { ...floatMetrics, ...qm },
    calibration:
      isPlainObject(cal) && typeof cal!.source === "string" && typeof cal!.rows === "number"
        ? { source: cal!.source, rows: cal!.rows }
        : null,
    rescoreCorpus: typeof qo.rescoreCorpus === "string" ? qo.rescoreCorpus : null,
  };
}

function readPerQuery(file: string): PerQueryRecord[] {
  return readLog(file).map((r, i) => {
    if (
      typeof r.queryId !== "string" ||
      typeof r.query !== "string" ||
      typeof r["ndcg@10"] !== "number" ||
      !Array.isArray(r.top)
    )
      throw new Error(
        `${file}:${i + 1}: expected queryId, query, ndcg@10 and top (ragtune eval --per-query)`,
      );
    return r as unknown as PerQueryRecord;
  });
}

/**
 * The run folder of `dir`: its parent when `dir` is a run's final model folder (`ragtune train` saves the model to
 * RUN/final, beside the run's marker ragtune_run.json), else `dir` itself.
 */
export function runFolderOf(dir: string): string {
  const parent = resolve(dir, "..");
  return basename(resolve(dir)) === "final" && existsSync(join(parent, "ragtune_run.json"))
    ? join(dir, "..")
    : dir;
}

/** Reads one run folder. @throws naming the folder when it holds none of the files, or the unreadable file */
export function loadRun(dir: string): RunData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const ckpt = newestCheckpoint(dir);
  const pick = (name: string): string | null => {
    if (existsSync(join(dir, name))) return join(dir, name);
    if (ckpt && existsSync(join(ckpt, name))) return join(ckpt, name);
    return null;
  };
  const files: string[] = [];
  const use = (path: string | null): string | null => {
    if (path) files.push(path);
    return path;
  };
  const argsFile = use(pick("training_args.json"));
  const stateFile = use(pick("trainer_state.json"));
  const logFile = use(existsSync(join(dir, "training_log.jsonl")) ? join(dir, "training_log.jsonl") : null);
  const baseFile = use(
    existsSync(join(dir, "baseline_results.json")) ? join(dir, "baseline_results.json") : null,
  );
  const finalFile = use(existsSync(join(dir, "eval_results.json")) ? join(dir, "eval_results.json") : null);
  const quantBaseFile = use(
    existsSync(join(dir, "baseline_quantized_results.json"))
      ? join(dir, "baseline_quantized_results.json")
      : null,
  );
  const quantFile = use(
    existsSync(join(dir, "quantized_results.json")) ? join(dir, "quantized_results.json") : null,
  );
  if (files.length === 0)
    throw new Error(
      `${dir}: no run files (training_args.json, trainer_state.json, training_log.jsonl, baseline_results.json, ` +
        `eval_results.json, quantized_results.json or baseline_quantized_results.json)`,
    );
  const pqFile = use(existsSync(join(dir, "per_query.jsonl")) ? join(dir, "per_query.jsonl") : null);
  const pqBaseFile = use(
    existsSync(join(dir, "baseline_per_query.jsonl")) ? join(dir, "baseline_per_query.jsonl") : null,
  );
  const state = stateFile ? readObject(stateFile) : null;
  let log = logFile ? readLog(logFile) : [];
  // Without the JSONL log, the trainer state's log_history holds the same entries (up to its checkpoint).
  if (log.length === 0 && state && Array.isArray(state.log_history))
    log = (state.log_history as unknown[]).filter(isPlainObject) as Array<Record<string, unknown>>;
  const baseline = baseFile ? readObject(baseFile) : null;
  const final = finalFile ? readObject(finalFile) : null;
  return {
    name: basename(resolve(dir)),
    dir,
    trainingArgs: argsFile ? readObject(argsFile) : null,
    trainerState: state,
    log,
    baseline: baseline ? metricsOf(baseline, baseFile!) : null,
    final: final ? metricsOf(final, finalFile!) : null,
    quantized: quantFile ? readQuantized(quantFile) : null,
    quantizedBaseline: quantBaseFile ? readQuantized(quantBaseFile) : null,
    perQuery: pqFile ? readPerQuery(pqFile) : null,
    perQueryBaseline: pqBaseFile ? readPerQuery(pqBaseFile) : null,
    files,
  };
}

/** Matryoshka dims found in a metrics object (`dim_<d>_<score>_ndcg@10`), largest first. */
export function dimsOf(metrics: Readonly<Record<string, number>> | null): number[] {
  const dims = new Set<number>();
  for (const k of Object.keys(metrics ?? {})) {
    const m = /^dim_(\d+)_(cosine|dot)_/.exec(k);
    if (m) dims.add(Number(m[1]));
  }
  return [...dims].sort((a, b) => b - a);
}
