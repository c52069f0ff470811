// Shared pieces of the model benchmarks (bench/encode.ts, bench/eval.ts, bench/train.ts): the random
// bge-shaped model both sides load (ragtune creates it and saves the folder; bench/reference/encode.py reads the
// same model.safetensors into its plain-PyTorch BERT), the financial pairs, length-sorted batches and their
// padding, the token-id file the PyTorch side reads (so both sides encode exactly the same batches), and the
// comparison table with a per-benchmark target ratio.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Device, DType } from "../src/engine/index.ts";
import { BertConfig } from "../src/models/bert.ts";
import { SentenceTransformer } from "../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../src/tokenize/index.ts";
import {
  addPressure,
  fmtMs,
  fmtRatio,
  intOption,
  isNoisy,
  NOISY_PRESSURE_PERCENT,
  pressurePercent,
  printTable,
  REPO_ROOT,
  usageError,
  type CommonArgs,
  type LineResult,
  type Pressure,
} from "./util.ts";

export const VOCAB_TXT = join(REPO_ROOT, "test/fixtures/tokenizers/bert-base-uncased/vocab.txt");
export const FINANCIAL_DIR = join(REPO_ROOT, "data/financial");

// ---------------------------------------------------------------------------------------------------------
// The model

export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
}

/** BAAI/bge-small-en-v1.5's encoder shape (33.4M parameters with the 30,522-token vocabulary). */
export const BGE_SMALL: ModelShape = { layers: 12, hidden: 384, heads: 12, ffn: 1536 };
/** BAAI/bge-base-en-v1.5's encoder shape (109M parameters). */
export const BGE_BASE: ModelShape = { layers: 12, hidden: 768, heads: 12, ffn: 3072 };

/** Options that change the model shape (the benchmarks spread these into parseCli's extra options). */
export const SHAPE_OPTIONS = {
  layers: { type: "string" },
  hidden: { type: "string" },
  heads: { type: "string" },
  ffn: { type: "string" },
} as const;

export const SHAPE_HELP = `Model shape (random weights, bert-base-uncased vocabulary, CLS pooling, normalized):
  --hidden N     hidden size = embedding size (default: the benchmark's; 384 = bge-small, 768 = bge-base)
  --layers N     encoder layers (default 12)
  --heads N      attention heads (default 12)
  --ffn N        feed-forward size (default 4 × hidden)`;

export function shapeFrom(
  values: Record<string, string | boolean | undefined>,
  base: ModelShape,
): ModelShape {
  const hidden = intOption(values.hidden, "hidden", base.hidden, 1);
  const shape = {
    layers: intOption(values.layers, "layers", base.layers, 1),
    hidden,
    heads: intOption(values.heads, "heads", base.heads, 1),
    ffn: intOption(values.ffn, "ffn", hidden === base.hidden ? base.ffn : 4 * hidden, 1),
  };
  if (shape.hidden % shape.heads !== 0)
    usageError(`--hidden ${shape.hidden} is not a multiple of --heads ${shape.heads}`);
  return shape;
}

export const shapeName = (s: ModelShape): string => {
  const known =
    s.layers === 12 && s.heads === 12 && s.ffn === 4 * s.hidden
      ? s.hidden === 384
        ? "bge-small shape"
        : s.hidden === 768
          ? "bge-base shape"
          : null
      : null;
  return `${known ? `${known}, ` : ""}${s.layers}×${s.hidden}, ${s.heads} heads, FFN ${s.ffn}`;
};

export interface BenchModel {
  /** The model loaded back from `dir` onto the benchmark's device and dtype (what ragtune times). */
  model: SentenceTransformer;
  /** The saved sentence-transformers folder (config.json + model.safetensors read by the PyTorch side). */
  dir: string;
  shape: ModelShape;
  parameters: number;
  /** Seconds to create, save and load it. */
  seconds: number;
  /** Frees the model and deletes the folder. */
  dispose(): void;
}

/**
 * A random model of the given shape (HF init: N(0, 0.02) weights, seeded), created in float32 on the CPU, saved
 * to a temporary folder and loaded back onto `device` in `dtype` — the PyTorch reference loads the same file
 * and casts it the same way, so both sides hold bit-identical weights.
 */
export function createBenchModel(
  shape: ModelShape,
  options: { device: Device; dtype: DType; seed: number; maxSeqLength?: number },
): BenchModel {
  const t0 = performance.now();
  const tokenizer = HfTokenizer.fromFiles({ vocabTxt: VOCAB_TXT });
  const config = BertConfig.with({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: shape.hidden,
    numHiddenLayers: shape.layers,
    numAttentionHeads: shape.heads,
    intermediateSize: shape.ffn,
    padTokenId: tokenizer.padTokenId,
  });
  const dir = mkdtempSync(join(tmpdir(), "ragtune-bench-"));
  try {
    const created = SentenceTransformer.create({
      config,
      tokenizer,
      pooling: "cls",
      normalize: true,
      maxSeqLength: options.maxSeqLength ?? 512,
      seed: options.seed,
    });
    try {
      created.save(dir);
    } finally {
      created.dispose();
    }
    const model = SentenceTransformer.fromDir(dir, { device: options.device, dtype: options.dtype });
    return {
      model,
      dir,
      shape,
      parameters: model.bert.numParameters(),
      seconds: (performance.now() - t0) / 1000,
      dispose: () => {
        model.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Repetition defaults that depend on the device (parseCli's are fixed before the device is known): applied
 * where the user gave no --repeat / --warmup; --rounds follows.
 */
export function applyDeviceDefaults(
  common: CommonArgs,
  values: Record<string, string | boolean | undefined>,
  defaults: { cpu: { repeat: number; warmup: number }; cuda: { repeat: number; warmup: number } },
): void {
  const d = common.device.startsWith("cuda") ? defaults.cuda : defaults.cpu;
  if (values.repeat === undefined) common.repeat = d.repeat;
  if (values.warmup === undefined) common.warmup = d.warmup;
  common.rounds = Math.min(common.repeat, intOption(values.rounds, "rounds", common.repeat, 1));
}

// ---------------------------------------------------------------------------------------------------------
// Data

export interface Pair {
  id: string;
  anchor: string;
  positive: string;
}

/** data/financial/<split>.jsonl ({id, anchor, positive} a line), in file order. */
export function readPairs(split: "train" | "test"): Pair[] {
  const file = join(FINANCIAL_DIR, `${split}.jsonl`);
  const out: Pair[] = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      const r = JSON.parse(line) as { id: unknown; anchor: unknown; positive: unknown };
      if (typeof r.anchor !== "string" || typeof r.positive !== "string")
        throw new Error(`${file}:${i + 1}: anchor and positive must be strings`);
      out.push({ id: String(r.id), anchor: r.anchor, positive: r.positive });
    });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Batches, padding and the token file of the PyTorch side

/**
 * The order in which SentenceTransformer.encodeTensor batches texts: token count descending (untruncated
 * counts, as it sorts), ties by input index.
 */
export function lengthSortedOrder(counts: readonly number[]): number[] {
  return counts.map((_, i) => i).sort((a, b) => counts[b]! - counts[a]! || a - b);
}

/** Cuts an order into consecutive batches (the last may be short). */
export function cutBatches(order: readonly number[], batchSize: number): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < order.length; s += batchSize) out.push(order.slice(s, s + batchSize));
  return out;
}

export interface Padding {
  /** Real tokens. */
  real: number;
  /** Token slots processed (each batch padded to its longest row). */
  slots: number;
  /** Padding tokens / real tokens. */
  paddedPerReal: number;
  /** Padding tokens / slots. */
  fraction: number;
}

/** Padding when each batch is padded to its longest row; `lengths` already truncated to max_seq_length. */
export function padding(batches: readonly (readonly number[])[], lengths: readonly number[]): Padding {
  let real = 0;
  let slots = 0;
  for (const b of batches) {
    let longest = 0;
    for (const i of b) {
      real += lengths[i]!;
      longest = Math.max(longest, lengths[i]!);
    }
    slots += longest * b.length;
  }
  return {
    real,
    slots,
    paddedPerReal: real === 0 ? 0 : (slots - real) / real,
    fraction: slots === 0 ? 0 : (slots - real) / slots,
  };
}

export const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** One padded batch as the PyTorch side reads it: ids row-major (B × seqLen), real length of each row. */
export interface TokenBatch {
  seqLen: number;
  lengths: number[];
  ids: number[];
}

/**
 * Tokenizes a batch exactly as SentenceTransformer.tokenize does (padding to the longest row, truncation to
 * maxLength). Token type ids are all 0 for single texts; anything else is refused (the file does not carry them).
 */
export function tokenBatch(model: SentenceTransformer, texts: readonly string[]): TokenBatch {
  const prepared = model.spec.doLowerCase ? texts.map((t) => t.toLowerCase()) : texts;
  const enc = model.tokenizer.encodeBatch(prepared, { maxLength: model.maxSeqLength });
  if (enc.tokenTypeIds.some((x) => x !== 0n))
    throw new Error("tokenBatch: non-zero token type ids are not passed to the PyTorch side");
  return { seqLen: enc.seqLen, lengths: Array.from(enc.lengths), ids: Array.from(enc.inputIds, Number) };
}

/** Writes a JSON file into `dir` and returns its path. */
export function writeJsonFile(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

// ---------------------------------------------------------------------------------------------------------
// Output

/**
 * The results with `pass` judged against this benchmark's target (time ratio ragtune / PyTorch); lines whose
 * id is in `informational` get no verdict.
 */
export function withTarget(
  results: readonly LineResult[],
  target: number,
  informational: readonly string[] = [],
): LineResult[] {
  return results.map((r) => ({
    ...r,
    pass: r.ratio === null || informational.includes(r.id) ? null : r.ratio <= target,
  }));
}

/** The comparison table (bench/util.ts printComparison's columns, without GFLOP/s) against `target`. */
export function printLines(results: readonly LineResult[], target: number): void {
  const rows = results.map((r) => [
    r.label,
    fmtMs(r.ragtune.medianMs),
    fmtMs(r.ragtune.minMs),
    r.torch ? fmtMs(r.torch.medianMs) : "—",
    r.torch ? fmtMs(r.torch.minMs) : "—",
    fmtRatio(r.ratio),
    fmtRatio(r.ratioMin),
    fmtRatio(r.ratioPaired),
    fmtRatio(r.ratioCpu),
    (r.pass === null ? "—" : r.pass ? "PASS" : `over ${target.toFixed(2)}`) + (isNoisy(r) ? " *" : ""),
  ]);
  printTable(
    [
      "benchmark",
      "ragtune ms",
      "min",
      "PyTorch ms",
      "min",
      "ratio",
      "min",
      "paired",
      "cpu",
      `target ≤${target.toFixed(2)}`,
    ],
    rows,
  );
  console.log(
    "ms = median of the timed calls; ratio = ragtune time / PyTorch time (lower is better): of the medians " +
      "(the target's), of the minima, paired = median of the per-round ratios of calls run back to back, " +
      "cpu = of the process CPU time per call",
  );
  if (results.some(isNoisy))
    console.log(
      `* CPU contention over ${NOISY_PRESSURE_PERCENT}% while timing this line (other processes ran): its ` +
        "wall-clock ratios are unreliable; the paired and cpu ratios hold up best",
    );
  const total = (side: "ragtune" | "torch") =>
    pressurePercent(results.reduce<Pressure | null>((acc, r) => addPressure(acc, r[side]?.pressure), null));
  const mine = total("ragtune");
  const theirs = total("torch");
  if (mine !== null)
    console.log(
      `CPU contention while timing (/proc/pressure/cpu, share of the wall time some task waited for a CPU): ` +
        `ragtune ${mine.toFixed(0)}%${theirs === null ? "" : `, PyTorch ${theirs.toFixed(0)}%`}`,
    );
}

/** Seconds with a sensible number of digits. */
export const fmtS = (s: number): string => (s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2));
