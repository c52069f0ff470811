// The trainer's data-parallel pieces that need no process group: the even global batches (trimmed, never
// leaving a rank under 2 pairs), each rank's shard, and the launcher's command line without --nproc-per-node.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { withoutNproc } from "../../src/cli/train.ts";
import { EvenShardSampler, shardOf } from "../../src/train/data-parallel.ts";
import { ShuffledBatchSampler } from "../../src/train/samplers.ts";

describe("EvenShardSampler", () => {
  it("keeps full global batches and trims the trailing one to a multiple of the world size", () => {
    const inner = new ShuffledBatchSampler(23, { batchSize: 8, seed: 3, minBatchSize: 2 }); // 8, 8, 7
    const s = new EvenShardSampler(inner, 2);
    const batches = s.batches(0);
    assert.deepEqual(
      batches.map((b) => b.length),
      [8, 8, 6],
    );
    assert.deepEqual(batches.slice(0, 2), inner.batches(0).slice(0, 2)); // same rows, same order
    assert.deepEqual(batches[2], inner.batches(0)[2]!.slice(0, 6));
    assert.equal(s.droppedRows(0), 1);
    assert.deepEqual(s.config, inner.config); // the checkpointed sampler state stays the global one
  });

  it("drops a trailing batch that would leave a rank fewer than 2 pairs", () => {
    const inner = new ShuffledBatchSampler(21, { batchSize: 8, seed: 3, minBatchSize: 2 }); // 8, 8, 5
    const s = new EvenShardSampler(inner, 4);
    assert.deepEqual(
      s.batches(1).map((b) => b.length),
      [8, 8],
    );
    assert.equal(s.droppedRows(1), 5);
  });

  it("changes nothing for one rank", () => {
    const inner = new ShuffledBatchSampler(23, { batchSize: 8, seed: 3, minBatchSize: 2 });
    assert.deepEqual(new EvenShardSampler(inner, 1).batches(0), inner.batches(0));
  });
});

describe("shardOf", () => {
  it("gives each rank its contiguous slice, together the whole batch", () => {
    const batch = [9, 4, 7, 1, 0, 3];
    assert.deepEqual(shardOf(batch, 0, 3), [9, 4]);
    assert.deepEqual(shardOf(batch, 2, 3), [0, 3]);
    assert.deepEqual(
      [0, 1, 2].flatMap((r) => shardOf(batch, r, 3)),
      batch,
    );
  });

  it("refuses a batch that does not split evenly", () => {
    assert.throws(() => shardOf([1, 2, 3], 0, 2), /a global batch of 3 pairs does not split over 2 ranks/);
  });
});

describe("withoutNproc", () => {
  it("removes --nproc-per-node N and --nproc-per-node=N, nothing else", () => {
    assert.deepEqual(withoutNproc(["train", "--nproc-per-node", "2", "--out", "x"]), ["train", "--out", "x"]);
    assert.deepEqual(withoutNproc(["train", "--nproc-per-node=4", "--seed", "1"]), ["train", "--seed", "1"]);
    assert.deepEqual(withoutNproc(["train", "--", "--nproc-per-node", "2"]), [
      "train",
      "--",
      "--nproc-per-node",
      "2",
    ]);
  });
});
