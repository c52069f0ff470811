// Batch samplers: which dataset rows form each training batch, per epoch, reproducibly. Plain TypeScript (no
// engine): a sampler returns index lists; the trainer tokenizes and embeds them.
//
// Randomness: every epoch is driven by PCG32 seeded with `seed + epoch` (epoch 0-based), the rule
// sentence-transformers applies in its samplers' `__iter__` (`generator.manual_seed(self.seed + self.epoch)`, the
// Trainer calling `set_epoch(epoch)` before each epoch). The shuffles are Fisher–Yates driven by PCG32 (see
// src/data/prepare.ts), not torch.randperm, so the orders differ from PyTorch's for the same seed; the rules match.
// Because an epoch's batches are a pure function of (data, options, epoch), resuming mid-epoch is exact: recompute
// the epoch and skip the batches already done (`BatchCursor`).
//
// Samplers:
//   - ShuffledBatchSampler: a seeded permutation cut into batches (torch BatchSampler over a random sampler, as
//     sentence-transformers' DefaultBatchSampler; that one draws from one generator that runs on across epochs
//     instead of re-seeding with seed + epoch).
//   - NoDuplicatesBatchSampler: ports sentence-transformers' NoDuplicatesBatchSampler (see its class comment).
//   - LengthGroupedBatchSampler: random batches with little padding: groups of `groupBatches` batches' worth of
//     shuffled rows are sorted by length and cut into batches, whose order is then shuffled; optionally under the
//     no-duplicates rule.

import { PCG32_DEFAULT_STREAM, Pcg32, seededPermutation } from "../data/index.ts";
import type { PairRecord } from "../data/index.ts";

export type SamplerKind = "shuffled" | "no_duplicates" | "length_grouped";

/** What determines a sampler's batches (JSON-serializable); a resumed run must present the same. */
export interface SamplerConfig {
  kind: SamplerKind;
  /** Dataset rows. */
  size: number;
  batchSize: number;
  seed: number;
  dropLast: boolean;
  /** length_grouped: rows per sorting group = groupBatches × batchSize. */
  groupBatches?: number;
  /** length_grouped: whether the no-duplicates rule applies. */
  noDuplicates?: boolean;
  /** length_grouped: whether the batch holding the longest row is put first. */
  longestFirst?: boolean;
  /** FNV-1a (32-bit, hex) of the texts and/or lengths the batches depend on. */
  fingerprint?: string;
  /** 2: batches of one row are merged into a neighbour (`mergeSingletons`); absent = 1, sentence-transformers' batches. */
  minBatchSize?: number;
}

export interface BatchSampler {
  /**
   * Nominal batches per epoch, the sampler's `__len__` in sentence-transformers (what the Trainer's step
   * arithmetic uses): ceil(size / batchSize), or floor with dropLast. Exact for the shuffled and the plain
   * length-grouped samplers; with the no-duplicates rule the real count can differ (see NoDuplicatesBatchSampler).
   * The trainer plans its steps from `batches(epoch).length`, never from this.
   */
  readonly length: number;
  readonly config: SamplerConfig;
  /** The batches of one epoch (0-based), as row indices into the dataset; a new array on every call. */
  batches(epoch: number): number[][];
}

export interface SamplerOptions {
  batchSize: number;
  /** Default 42 (the Trainer's default seed). */
  seed?: number;
  /** Drop incomplete batches (transformers' dataloader_drop_last); default false. */
  dropLast?: boolean;
  /**
   * 2 for in-batch losses (MNRL sees no negative in a batch of one pair: loss 0, gradient 0, yet the step counts):
   * every batch of one row is merged into a neighbouring batch (see `mergeSingletons`). Default 1: the batches
   * sentence-transformers draws.
   */
  minBatchSize?: 1 | 2;
}

/** The texts of each record as sentence-transformers sees its columns: anchor, positive, then the negatives. */
export function pairTexts(records: readonly PairRecord[]): string[][] {
  return records.map((r) => [r.anchor, r.positive, ...(r.negatives ?? [])]);
}

/**
 * Padding tokens / all tokens when every batch is padded to its longest row: Σ (max·|b| − Σ len) / Σ max·|b|.
 * `lengths[i]` is row i's length in tokens (for pairs, e.g. the longest column's).
 */
export function paddingFraction(batches: readonly (readonly number[])[], lengths: readonly number[]): number {
  let padded = 0;
  let real = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const i of batch) {
      const length = lengths[i];
      if (length === undefined) throw new Error(`index ${i} has no length (${lengths.length} lengths)`);
      longest = Math.max(longest, length);
      real += length;
    }
    padded += longest * batch.length;
  }
  return padded === 0 ? 0 : (padded - real) / padded;
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

function checkOptions(
  size: number,
  options: SamplerOptions,
): { batchSize: number; seed: number; dropLast: boolean; minBatchSize?: number } {
  if (!Number.isInteger(size) || size < 0)
    throw new Error(`dataset size must be an integer ≥ 0, got ${size}`);
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batchSize must be an integer ≥ 1, got ${batchSize}`);
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be an integer ≥ 0, got ${seed}`);
  const min = options.minBatchSize ?? 1;
  if (min !== 1 && min !== 2) throw new Error(`minBatchSize must be 1 or 2, got ${String(min)}`);
  // Only a non-default value enters the config, so checkpoints of samplers without it still resume.
  return { batchSize, seed, dropLast: options.dropLast ?? false, ...(min === 2 ? { minBatchSize: 2 } : {}) };
}

function epochSeed(seed: number, epoch: number): number {
  if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`epoch must be an integer ≥ 0, got ${epoch}`);
  const s = seed + epoch;
  if (!Number.isSafeInteger(s)) throw new Error(`seed + epoch overflows: ${seed} + ${epoch}`);
  return s;
}

function nominalLength(size: number, batchSize: number, dropLast: boolean): number {
  // ports NoDuplicatesBatchSampler.__len__ (= torch BatchSampler.__len__)
  return dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
}

/** Cuts `order` into consecutive batches; the last one may be short unless dropLast. */
function cut(order: readonly number[], batchSize: number, dropLast: boolean): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (batch.length === batchSize || !dropLast) out.push(batch);
  }
  return out;
}

/**
 * ragtune's rule for in-batch losses (sentence-transformers has none: its no-duplicates tail and a shuffled
 * remainder of one row yield 1-pair batches, which MNRL scores 0 with a zero gradient). Batches are visited in
 * order; a batch of one row moves into the nearest batch before it (then after it) that shares none of its texts
 * (`ids` given: the no-duplicates rule; without `ids` any batch), which may be another single row (the two then
 * form a pair). A row that shares a text with every other batch cannot join one without breaking the
 * no-duplicates rule and sits out this epoch (it is in another epoch's batches unless the data make that
 * impossible everywhere). Pure in its inputs, so the epoch's batches stay a function of (data, options, epoch) and
 * resume is unchanged. A merged batch may hold batchSize + 1 rows.
 */
export function mergeSingletons(batches: number[][], ids?: readonly Int32Array[]): number[][] {
  const out = batches.map((b) => [...b]);
  const conflicts = (batch: readonly number[], row: number): boolean => {
    if (!ids) return false;
    const own = ids[row]!;
    for (const other of batch) for (const v of ids[other]!) if (own.includes(v)) return true;
    return false;
  };
  for (let i = 0; i < out.length;) {
    const batch = out[i]!;
    if (batch.length !== 1) {
      i++;
      continue;
    }
    const row = batch[0]!;
    let target = -1;
    for (let j = i - 1; j >= 0 && target < 0; j--) if (!conflicts(out[j]!, row)) target = j;
    for (let j = i + 1; j < out.length && target < 0; j++) if (!conflicts(out[j]!, row)) target = j;
    if (target < 0 && ids === undefined) {
      i++; // the only batch of a 1-row data set: nothing to merge with (the trainer refuses that data set)
      continue;
    }
    if (target >= 0) out[target]!.push(row);
    out.splice(i, 1); // merged, or sits out the epoch; the next batch now has index i
  }
  return out;
}

function fnv1a(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // a separator, so ["ab", "c"] and ["a", "bc"] differ
  h ^= 0xff;
  return Math.imul(h, 0x01000193) >>> 0;
}

function fingerprintOf(
  texts: readonly (readonly string[])[] | undefined,
  lengths?: readonly number[],
): string {
  let h = 0x811c9dc5;
  if (texts) for (const row of texts) h = fnv1a(h, row.join("\u0000"));
  if (lengths) for (const length of lengths) h = fnv1a(h, String(length));
  return h.toString(16).padStart(8, "0");
}

/** Interns every distinct text to a small integer; row i → the ids of its texts (duplicates within a row kept). */
function internTexts(texts: readonly (readonly string[])[]): { ids: Int32Array[]; distinct: number } {
  const table = new Map<string, number>();
  const ids = texts.map((row, i) => {
    if (!Array.isArray(row) || row.length === 0) throw new Error(`row ${i} has no texts`);
    return Int32Array.from(row, (text) => {
      if (typeof text !== "string") throw new Error(`row ${i} has a non-string value`);
      let id = table.get(text);
      if (id === undefined) {
        id = table.size;
        table.set(text, id);
      }
      return id;
    });
  });
  return { ids, distinct: table.size };
}

/**
 * ports sentence-transformers' NoDuplicatesBatchSampler.__iter__ loop (sampler.py; the singly linked list over
 * shuffled positions of v6, same batches as the `dict.fromkeys` loop of 3.x–5.x): until no row remains, scan the
 * remaining rows in order; skip a row sharing any text with the batch so far; take it otherwise (removing it from
 * the remaining rows); a batch reaching batchSize is yielded and the next scan starts again from the first
 * remaining row. A scan that reaches the end unfilled ends a batch early: it is yielded ("partial") or dropped,
 * its rows lost for the epoch ("dropLast"), and the scans go on over the rows it skipped, so the tail of an epoch
 * can hold several short batches. "fullOnly" (length grouping) stops at the first unfilled scan and hands back
 * every row not in a full batch, in order, for the next group.
 */
function noDuplicateBatches(
  order: readonly number[],
  ids: readonly Int32Array[],
  stamp: Int32Array,
  batchSize: number,
  mode: "partial" | "dropLast" | "fullOnly",
): { batches: number[][]; leftover: number[] } {
  const n = order.length;
  const next = new Int32Array(n);
  for (let p = 0; p < n; p++) next[p] = p + 1;
  if (n > 0) next[n - 1] = -1;
  let head = n > 0 ? 0 : -1;
  const batches: number[][] = [];
  const inFullBatch = mode === "fullOnly" ? new Uint8Array(n) : undefined;
  stamp.fill(-1);
  let batchNumber = 0;
  while (head !== -1) {
    const batch: number[] = [];
    const positions: number[] = [];
    let current = head;
    let previous = -1;
    let full = false;
    while (current !== -1) {
      const following = next[current]!;
      const row = order[current]!;
      const values = ids[row]!;
      let overlap = false;
      for (const v of values) {
        if (stamp[v] === batchNumber) {
          overlap = true;
          break;
        }
      }
      if (overlap) {
        // Defer conflicting rows to later batches instead of reordering them.
        previous = current;
        current = following;
        continue;
      }
      batch.push(row);
      positions.push(current);
      if (previous === -1) head = following;
      else next[previous] = following;
      if (batch.length === batchSize) {
        full = true;
        break;
      }
      for (const v of values) stamp[v] = batchNumber;
      current = following;
    }
    batchNumber++;
    if (full) {
      batches.push(batch);
      if (inFullBatch) for (const p of positions) inFullBatch[p] = 1;
    } else if (mode === "fullOnly") {
      break;
    } else if (mode === "partial") {
      batches.push(batch);
    }
  }
  const leftover = inFullBatch ? order.filter((_, p) => !inFullBatch[p]) : [];
  return { batches, leftover };
}

// ---------------------------------------------------------------------------------------------------------
// Samplers

/** A seeded permutation (seed + epoch) cut into batches of batchSize; the last may be short unless dropLast. */
export class ShuffledBatchSampler implements BatchSampler {
  readonly length: number;
  readonly config: SamplerConfig;

  constructor(size: number, options: SamplerOptions) {
    const checked = checkOptions(size, options);
    const { batchSize, dropLast } = checked;
    this.config = { kind: "shuffled", size, ...checked };
    // A remainder of one row merges into the batch before it under minBatchSize 2.
    const merged =
      checked.minBatchSize === 2 && !dropLast && batchSize > 1 && size > 1 && size % batchSize === 1 ? 1 : 0;
    this.length = nominalLength(size, batchSize, dropLast) - merged;
  }

  batches(epoch: number): number[][] {
    const { size, batchSize, seed, dropLast, minBatchSize } = this.config;
    const batches = cut(seededPermutation(size, epochSeed(seed, epoch)), batchSize, dropLast);
    return minBatchSize === 2 ? mergeSingletons(batches) : batches;
  }
}

/**
 * ports sentence-transformers' NoDuplicatesBatchSampler: shuffle all rows with seed + epoch, then fill each batch
 * greedily, skipping any row any of whose texts (anchor, positive, every negative; compared as exact strings,
 * across columns: one row's positive equal to another's anchor also conflicts) is already in the batch; skipped
 * rows stay, in order, at the front of the pool for the next batches. Nothing is lost unless dropLast.
 *
 * The end of an epoch (checked in the source): when a scan cannot fill a batch, the short batch is yielded
 * (dropLast false, the Trainer's default) or discarded with its rows (dropLast true), and the remaining rows it
 * skipped form further batches, so an epoch can end with more than one short batch. `length` is
 * sentence-transformers' `__len__`, ceil(size / batchSize) (floor with dropLast), which its docstring calls an
 * upper bound; the real count can be below it (dropLast, many duplicates) or above it (several short batches at
 * the tail). The Trainer plans its steps from `length`; group the real batches with `accumulationGroups`.
 */
export class NoDuplicatesBatchSampler implements BatchSampler {
  readonly length: number;
  readonly config: SamplerConfig;
  private readonly ids: Int32Array[];
  private readonly distinct: number;

  /** `texts[i]`: row i's column values (see `pairTexts`). */
  constructor(texts: readonly (readonly string[])[], options: SamplerOptions) {
    const checked = checkOptions(texts.length, options);
    const { batchSize, dropLast } = checked;
    ({ ids: this.ids, distinct: this.distinct } = internTexts(texts));
    this.config = {
      kind: "no_duplicates",
      size: texts.length,
      ...checked,
      fingerprint: fingerprintOf(texts),
    };
    this.length = nominalLength(texts.length, batchSize, dropLast);
  }

  batches(epoch: number): number[][] {
    const { size, batchSize, seed, dropLast, minBatchSize } = this.config;
    const order = seededPermutation(size, epochSeed(seed, epoch));
    const stamp = new Int32Array(this.distinct);
    const { batches } = noDuplicateBatches(
      order,
      this.ids,
      stamp,
      batchSize,
      dropLast ? "dropLast" : "partial",
    );
    return minBatchSize === 2 ? mergeSingletons(batches, this.ids) : batches;
  }
}

export interface LengthGroupedOptions extends SamplerOptions {
  /** Batches' worth of rows sorted together; default 8 (the recipe's measurement: 3% padding vs 68% random). */
  groupBatches?: number;
  /** Row texts (see `pairTexts`); when given, the no-duplicates rule applies within each group. */
  texts?: readonly (readonly string[])[];
  /** Put the batch holding the longest row first (its memory peak shows at once); default false. */
  longestFirst?: boolean;
}

/** Stream of the generator that shuffles batch order (the row shuffle uses the default stream). */
const BATCH_ORDER_STREAM = PCG32_DEFAULT_STREAM + 1n;

/**
 * Random batches that cut padding: shuffle all rows with seed + epoch; take them in groups of groupBatches ×
 * batchSize rows; sort each group by length, longest first (stable, so ties keep the shuffled order); cut it into
 * batches of batchSize; finally shuffle the order of all batches (PCG32, seed + epoch, a separate stream). A group
 * whose rows do not fill whole batches (only the last, without the no-duplicates rule) hands its rest to the next
 * group; the final rest is one short batch (dropped with dropLast).
 *
 * With `texts`, each group is cut by the no-duplicates loop instead (full batches only): rows that cannot complete
 * a batch of their group carry over to the next group, and the final rest goes through the sentence-transformers
 * tail rule (short batches, or dropped with dropLast). Every row still appears exactly once unless dropLast.
 */
export class LengthGroupedBatchSampler implements BatchSampler {
  readonly length: number;
  readonly config: SamplerConfig;
  private readonly lengths: readonly number[];
  private readonly ids: Int32Array[] | undefined;
  private readonly distinct: number;

  /** `lengths[i]`: row i's length (tokens of its longest column, or any proxy). */
  constructor(lengths: readonly number[], options: LengthGroupedOptions) {
    const checked = checkOptions(lengths.length, options);
    const { batchSize, dropLast } = checked;
    lengths.forEach((length, i) => {
      if (!Number.isFinite(length) || length < 0)
        throw new Error(`lengths[${i}] must be a finite number ≥ 0, got ${length}`);
    });
    const groupBatches = options.groupBatches ?? 8;
    if (!Number.isInteger(groupBatches) || groupBatches < 1) {
      throw new Error(`groupBatches must be an integer ≥ 1, got ${groupBatches}`);
    }
    const texts = options.texts;
    if (texts && texts.length !== lengths.length) {
      throw new Error(`texts has ${texts.length} rows but lengths has ${lengths.length}`);
    }
    this.lengths = [...lengths];
    if (texts) ({ ids: this.ids, distinct: this.distinct } = internTexts(texts));
    else this.distinct = 0;
    this.config = {
      kind: "length_grouped",
      size: lengths.length,
      ...checked,
      groupBatches,
      noDuplicates: texts !== undefined,
      longestFirst: options.longestFirst ?? false,
      fingerprint: fingerprintOf(texts, lengths),
    };
    this.length = nominalLength(lengths.length, batchSize, dropLast);
  }

  batches(epoch: number): number[][] {
    const { size, batchSize, seed, dropLast, groupBatches = 8, longestFirst, minBatchSize } = this.config;
    const s = epochSeed(seed, epoch);
    const order = seededPermutation(size, s);
    const lengths = this.lengths;
    const byLength = (a: number, b: number): number => lengths[b]! - lengths[a]!;
    const stamp = new Int32Array(this.distinct);
    const groupSize = groupBatches * batchSize;
    let batches: number[][] = [];
    let pool: number[] = [];
    for (let start = 0; start < size; start += groupSize) {
      pool = pool.concat(order.slice(start, start + groupSize)).sort(byLength);
      if (this.ids) {
        const result = noDuplicateBatches(pool, this.ids, stamp, batchSize, "fullOnly");
        batches.push(...result.batches);
        pool = result.leftover;
      } else {
        const whole = pool.length - (pool.length % batchSize);
        batches.push(...cut(pool.slice(0, whole), batchSize, true));
        pool = pool.slice(whole);
      }
    }
    if (pool.length > 0) {
      if (this.ids) {
        batches.push(
          ...noDuplicateBatches(pool, this.ids, stamp, batchSize, dropLast ? "dropLast" : "partial").batches,
        );
      } else {
        batches.push(...cut(pool, batchSize, dropLast));
      }
    }
    // The short batches sit at the end here, before the order shuffle: a single row joins one of them.
    if (minBatchSize === 2) batches = mergeSingletons(batches, this.ids);
    // Shuffle the batch order (Fisher–Yates from the top, as seededPermutation).
    const rng = new Pcg32(s, BATCH_ORDER_STREAM);
    for (let i = batches.length - 1; i > 0; i--) {
      const j = rng.nextBelow(i + 1);
      const t = batches[i]!;
      batches[i] = batches[j]!;
      batches[j] = t;
    }
    if (longestFirst && batches.length > 1) {
      let best = 0;
      let bestLength = -1;
      batches.forEach((batch, b) => {
        for (const i of batch) {
          if (lengths[i]! > bestLength) {
            bestLength = lengths[i]!;
            best = b;
          }
        }
      });
      const t = batches[0]!;
      batches[0] = batches[best]!;
      batches[best] = t;
    }
    return batches;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Position, checkpoint and resume

/** Where a run stands: `batch` batches of epoch `epoch` are done (so `batch` is the index of the next one). */
export interface SamplerPosition {
  epoch: number;
  batch: number;
}

/** A checkpointable position (JSON-serializable): the position plus the sampler's config, checked on resume. */
export interface SamplerState extends SamplerPosition {
  sampler: SamplerConfig;
}

function sameConfig(a: SamplerConfig, b: SamplerConfig): string | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof SamplerConfig)[]);
  for (const key of keys) {
    if (a[key] !== b[key])
      return `${key}: checkpoint ${JSON.stringify(b[key])}, now ${JSON.stringify(a[key])}`;
  }
  return undefined;
}

/**
 * Walks a sampler's batches epoch by epoch and can say where it stands. Resuming at {epoch, batch: k} recomputes
 * that epoch's batches (deterministic in seed + epoch) and skips the first k, so a resumed run draws exactly the
 * batches an uninterrupted one would have.
 */
export class BatchCursor {
  private current: number[][] | undefined;
  private epochIndex: number;
  private batchIndex: number;

  constructor(
    readonly sampler: BatchSampler,
    position: SamplerPosition = { epoch: 0, batch: 0 },
  ) {
    const { epoch, batch } = position;
    if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`epoch must be an integer ≥ 0, got ${epoch}`);
    if (!Number.isInteger(batch) || batch < 0) throw new Error(`batch must be an integer ≥ 0, got ${batch}`);
    this.epochIndex = epoch;
    this.batchIndex = batch;
    if (batch > 0 && batch > this.epochBatches().length) {
      throw new Error(
        `epoch ${epoch} has ${this.epochBatches().length} batches; cannot resume after ${batch}`,
      );
    }
  }

  /** Resumes from a checkpointed state; throws when the sampler no longer matches the one that wrote it. */
  static resume(sampler: BatchSampler, state: SamplerState): BatchCursor {
    const mismatch = sameConfig(sampler.config, state.sampler);
    if (mismatch) throw new Error(`the sampler differs from the checkpoint's (${mismatch})`);
    return new BatchCursor(sampler, { epoch: state.epoch, batch: state.batch });
  }

  get position(): SamplerPosition {
    return { epoch: this.epochIndex, batch: this.batchIndex };
  }

  /** All batches of the current epoch (computed once per epoch). */
  epochBatches(): readonly number[][] {
    this.current ??= this.sampler.batches(this.epochIndex);
    return this.current;
  }

  /** Batches left in the current epoch. */
  remaining(): number {
    return this.epochBatches().length - this.batchIndex;
  }

  /** The next batch of the current epoch, or undefined once it is exhausted (then call nextEpoch()). */
  next(): number[] | undefined {
    const batches = this.epochBatches();
    if (this.batchIndex >= batches.length) return undefined;
    return [...batches[this.batchIndex++]!];
  }

  /** Moves to the start of the following epoch. */
  nextEpoch(): void {
    this.epochIndex++;
    this.batchIndex = 0;
    this.current = undefined;
  }

  /** The position and sampler config, to store in a checkpoint. */
  state(): SamplerState {
    return { epoch: this.epochIndex, batch: this.batchIndex, sampler: { ...this.sampler.config } };
  }
}
