// The trainer's side of data-parallel training (src/distributed is the process group): every rank draws the
// same global batches from one seeded sampler and trains its own shard of each; the ranks then agree on
// gradients, on whether a step was non-finite, and on the logged loss. Rank 0 alone writes the output folder.
//
// ports transformers trainer.py (DDP: the per-device batch, the global batch = per-device × world size, the loss
// logged as the mean over ranks) and accelerate's BatchSamplerShard (each rank's slice of a global batch), with
// one difference: accelerate pads an uneven trailing batch with rows from the epoch's start (even_batches);
// ragtune trims it to a multiple of the world size instead, so no row is trained twice in an epoch and
// no-duplicates holds for every global batch.
import type { ProcessGroup } from "../distributed/index.ts";
import { fromBytes, getRngState, type Tensor } from "../engine/index.ts";
import { rngKey } from "./checkpoint.ts";
import type { BatchSampler, SamplerConfig } from "./samplers.ts";

/**
 * The global batches of `inner`, each trimmed to a multiple of `worldSize` so that every rank gets the same
 * number of pairs; a batch that would leave a rank fewer than 2 pairs (MNRL needs a negative) is dropped. All
 * ranks must take the same steps, so the trimming is a property of the sampler (the step plan counts it).
 */
export class EvenShardSampler implements BatchSampler {
  readonly length: number;
  readonly config: SamplerConfig;

  constructor(
    readonly inner: BatchSampler,
    readonly worldSize: number,
  ) {
    if (!Number.isInteger(worldSize) || worldSize < 1)
      throw new Error(`worldSize must be a positive integer, got ${worldSize}`);
    this.length = inner.length;
    this.config = inner.config; // the sampler state stays global: a checkpoint names the global batches
  }

  batches(epoch: number): number[][] {
    const w = this.worldSize;
    return this.inner
      .batches(epoch)
      .map((b) => b.slice(0, b.length - (b.length % w)))
      .filter((b) => b.length >= 2 * w);
  }

  /** Rows of epoch `epoch` that the trimming leaves out (each in no batch of the epoch). */
  droppedRows(epoch: number): number {
    const before = this.inner.batches(epoch).reduce((n, b) => n + b.length, 0);
    return before - this.batches(epoch).reduce((n, b) => n + b.length, 0);
  }
}

/** Rank `rank`'s contiguous slice of a global batch (length a multiple of worldSize; EvenShardSampler). */
export function shardOf(batch: readonly number[], rank: number, worldSize: number): number[] {
  if (batch.length % worldSize !== 0)
    throw new Error(`a global batch of ${batch.length} pairs does not split over ${worldSize} ranks`);
  const per = batch.length / worldSize;
  return batch.slice(rank * per, (rank + 1) * per);
}

/**
 * After the micro-batches of one optimizer step, on every rank: whether any rank saw a non-finite loss, and the
 * loss averaged over ranks; then (unless a rank failed) the gradients averaged over ranks in place, as
 * DistributedDataParallel's backward hook leaves them. One collective for the two numbers, one per gradient
 * bucket. Every rank reaches the same decision, so a stop or a skipped update happens on all of them at once.
 */
export function syncStep(
  pg: ProcessGroup,
  params: readonly Tensor[],
  localLoss: number,
  localBad: boolean,
): { badRanks: number; loss: number } {
  const [badShare, meanLoss] = pg.meanOverRanks([localBad ? 1 : 0, localBad ? 0 : localLoss]);
  const badRanks = Math.round(badShare! * pg.worldSize);
  if (badRanks === 0) pg.allReduceGradients(params);
  return { badRanks, loss: meanLoss! };
}

/**
 * The random states of ranks 1…N−1 on rank 0 (keyed as the RNG file names them), an empty map on the others:
 * one all-gather per device (the states have the same size on every rank of one build).
 */
export function gatherPeerRngStates(pg: ProcessGroup, devices: readonly string[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const device of devices) {
    const own = getRngState(device as "cpu"); // (n) uint8
    const bytes = own.toArray() as Uint8Array;
    own.dispose();
    const all = pg.allGatherNumbers(Array.from(bytes));
    if (!pg.isMain) continue;
    all.forEach((values, rank) => {
      if (rank > 0)
        out.set(rngKey(rank, device), fromBytes(Uint8Array.from(values), "uint8", [values.length]));
    });
  }
  return out;
}

/**
 * The hint of a sampler mismatch at resume: the checkpoint's global batch is per-device × world size, so another
 * world size needs another --batch-size to draw the same batches.
 */
export function globalBatchHint(
  savedGlobal: number,
  savedWorld: number,
  global: number,
  world: number,
): string {
  if (savedGlobal === global) return "";
  const at = `the checkpoint's global batch is ${savedGlobal} (${savedGlobal / savedWorld} per device × ${savedWorld} process(es)), this run's ${global}`;
  return savedGlobal % world === 0
    ? `; ${at}: with ${world} process(es) resume with --batch-size ${savedGlobal / world}`
    : `; ${at}, and ${savedGlobal} pairs do not split over ${world} processes`;
}
