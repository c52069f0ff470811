// Whole gradient-accumulation groups in one pass (issue 9, item 3): the micro-batches of one optimizer step are
// encoded by one packed forward over all their texts, each micro-batch's loss is computed over its own rows only
// (its in-batch negatives unchanged: MNRL inside MatryoshkaLoss sees exactly the embeddings it would see
// sequentially), the losses are averaged over the group, and one backward runs. With dropout off this gives the
// gradients of sequential accumulation (Σ_m ∇(loss_m / groupSize)) up to float summation order; with dropout
// on, the masks are drawn in another order, which changes nothing in distribution.
//
// Why: on CUDA a micro-batch of 32 short texts is launch-bound (a few hundred small kernels per layer pass);
// one pass over 16 micro-batches does the same arithmetic with 16× fewer launches. On the CPU the arithmetic
// dominates and activation memory grows with the group, so the trainer keeps micro-batches there (auto = off).
//
// Memory: the activations kept for backward grow with the tokens of the pass. estimateActivationBytes bounds
// them (per token and layer ≈ 34·H + 5·heads·L elements, the standard transformer estimate of Korthikanti et
// al. 2022, "Reducing Activation Recomputation", with L the longest row) and splitGroup cuts a group into
// consecutive parts that each fit the budget; each part still does one forward and one backward.
import { tidy, type Tensor } from "../engine/index.ts";
import type { EmbeddingLoss } from "../losses/index.ts";

/** The texts of one micro-batch, per column: [anchors, positives, (negatives…)]. */
export type MicroBatch = readonly (readonly string[])[];

/** What the fused pass needs of the model: texts in, (n, D) embeddings out (one forward, autograd on). */
export interface BatchEmbedder {
  embed(texts: readonly string[]): Tensor;
}

/** The encoder's size, for the memory estimate. */
export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number;
}

/**
 * Bytes of activations a training pass over rows of these token counts keeps for backward: per token and layer
 * 34·H + 5·heads·L elements (L: the longest row, for the attention probabilities of its chunk).
 */
export function estimateActivationBytes(
  tokenCounts: readonly number[],
  shape: ModelShape,
  elementBytes: number,
): number {
  let tokens = 0;
  let longest = 0;
  for (const n of tokenCounts) {
    tokens += n;
    longest = Math.max(longest, n);
  }
  return tokens * shape.layers * (34 * shape.hidden + 5 * shape.heads * longest) * elementBytes;
}

/**
 * Splits a group of micro-batches into consecutive parts whose estimated activations fit `budgetBytes`
 * (a micro-batch is never split: a part holds at least one). `tokenCounts(m)` gives the token count of every
 * text of micro-batch m. Returns the parts' sizes in micro-batches.
 */
export function splitGroup(
  groupSize: number,
  tokenCounts: (m: number) => readonly number[],
  shape: ModelShape,
  elementBytes: number,
  budgetBytes: number,
): number[] {
  const parts: number[] = [];
  let current: number[] = [];
  let size = 0;
  for (let m = 0; m < groupSize; m++) {
    const counts = tokenCounts(m);
    const next = current.concat(counts);
    if (size > 0 && estimateActivationBytes(next, shape, elementBytes) > budgetBytes) {
      parts.push(size);
      current = [...counts];
      size = 1;
    } else {
      current = next;
      size++;
    }
  }
  if (size > 0) parts.push(size);
  return parts;
}

/**
 * One pass over `microBatches` (a whole group or a part of one): one forward over every text of every
 * micro-batch, each micro-batch's loss over its own rows, Σ loss_m × scale, one backward. `scale` is
 * 1/groupSize for the trainer's mean over the group. Returns Σ loss_m (unscaled values).
 */
export function fusedPass(
  embedder: BatchEmbedder,
  loss: EmbeddingLoss,
  microBatches: readonly MicroBatch[],
  scale: number,
): number {
  if (microBatches.length === 0) return 0;
  return tidy(() => {
    const texts: string[] = [];
    const offsets: number[][] = []; // [micro-batch][column] -> first row
    for (const mb of microBatches) {
      offsets.push(
        mb.map((col) => {
          const start = texts.length;
          texts.push(...col);
          return start;
        }),
      );
    }
    const embeddings = embedder.embed(texts); // (N, D): every text of the part, one forward
    if (embeddings.size(0) !== texts.length)
      throw new Error(
        `fusedPass: the embedder returned ${embeddings.size(0)} rows for ${texts.length} texts`,
      );
    const values = microBatches.map((mb, m) => {
      const columns = mb.map((col, c) => embeddings.narrow(0, offsets[m]![c]!, col.length)); // each (B_m, D)
      return loss.lossFromEmbeddings(columns); // () over this micro-batch's own pairs
    });
    const total = values.reduce((a, b) => a.add(b)); // () Σ loss_m
    const sum = total.item(); // one device sync for the logged value
    total.mul(scale).backward(); // one backward through the shared forward
    return sum;
  });
}

export interface FusedStepOptions {
  /** The encoder's shape for the memory estimate. */
  shape: ModelShape;
  /** Bytes per activation element (2 under bf16 autocast, 4 in float32). */
  elementBytes: number;
  /** Activation memory one pass may use; Infinity never splits. */
  budgetBytes: number;
  /** Token count of a text (truncated as the model truncates). */
  countTokens: (text: string) => number;
}

/**
 * The gradient of one optimizer step's accumulation group, fused: the group is split only where the memory
 * estimate requires, each part runs fusedPass with scale 1/groupSize. Returns the mean loss over the group
 * (the value the trainer logs) and the parts' sizes.
 */
export function fusedAccumulationStep(
  embedder: BatchEmbedder,
  loss: EmbeddingLoss,
  group: readonly MicroBatch[],
  options: FusedStepOptions,
): { loss: number; parts: number[] } {
  const n = group.length;
  const parts = splitGroup(
    n,
    (m) => group[m]!.flatMap((col) => col.map(options.countTokens)),
    options.shape,
    options.elementBytes,
    options.budgetBytes,
  );
  let sum = 0;
  let at = 0;
  for (const size of parts) {
    sum += fusedPass(embedder, loss, group.slice(at, at + size), 1 / n);
    at += size;
  }
  return { loss: sum / n, parts };
}

/** Default activation budget of a fused pass on CUDA when none is given: 16 GiB (RAGTUNE_FUSED_MEMORY_GB overrides). */
export function defaultFusedBudgetBytes(env: NodeJS.ProcessEnv = process.env): number {
  const gb = env.RAGTUNE_FUSED_MEMORY_GB;
  if (gb !== undefined) {
    const v = Number(gb);
    if (!(v > 0)) throw new Error(`RAGTUNE_FUSED_MEMORY_GB must be a positive number of GiB, got "${gb}"`);
    return v * 2 ** 30;
  }
  return 16 * 2 ** 30;
}

/** Whether fused accumulation runs: on / off as given; auto = on for CUDA, off on the CPU (memory). */
export function useFusedAccumulation(setting: "auto" | "on" | "off", device: string): boolean {
  return setting === "on" || (setting === "auto" && device.startsWith("cuda"));
}
