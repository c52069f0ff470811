// MultipleNegativesRankingLoss and GISTEmbedLoss with gatherAcrossDevices, in one process: W simulated ranks, each holding a
// contiguous shard of the global batch, whose "gather" returns every shard of the global leaf tensors (its own
// shard being the tensor it was given). Summing each rank's gradient into the leaves is what the real gather's
// backward (a reduce-scatter) and the gradient average over ranks do, so the mean over ranks of the losses and
// of the gradients must equal the one-process loss over the whole batch. The 2-process Gloo version of this,
// through the trainer, is test/distributed/trainer-gather.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cat, manualSeed, noGrad, randn, tidy, type Tensor } from "../../src/engine/index.ts";
import {
  CachedMultipleNegativesRankingLoss,
  GISTEmbedLoss,
  MultipleNegativesRankingLoss,
  type CrossDeviceGather,
} from "../../src/losses/index.ts";

const W = 2;
const B = 4;
const D = 6;

/** Rank `rank`'s view of the group: it finds which global column `t` is a shard of, by value. */
function simulatedGather(rank: number, columns: readonly Tensor[]): CrossDeviceGather & { calls: number } {
  return {
    rank,
    worldSize: W,
    calls: 0,
    allGatherWithGrad(t: Tensor): Tensor {
      this.calls++;
      const full = columns.find((c) =>
        noGrad(
          () =>
            c
              .narrow(0, rank * B, B)
              .sub(t)
              .abs()
              .max()
              .item() === 0,
        ),
      );
      if (!full) throw new Error("the gathered tensor is no shard of a global column");
      const shards = Array.from({ length: W }, (_, k) => (k === rank ? t : full.narrow(0, k * B, B)));
      return cat(shards, 0); // (W * B, D)
    },
  };
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return noGrad(() => a.sub(b).abs().max().item());
}

/** The global leaves: anchors, positives, one hard-negative column, each (W * B, D). */
function leaves(): Tensor[] {
  manualSeed(7);
  return [0, 1, 2].map(() => randn([W * B, D]).requiresGrad_(true));
}

for (const symmetric of [false, true]) {
  describe(`MultipleNegativesRankingLoss${symmetric ? " (symmetric)" : ""}: gatherAcrossDevices`, () => {
    test("the mean over ranks of the loss and its gradient equals the one-process loss over the global batch", () => {
      tidy(() => {
        const global = leaves();
        const reference = new MultipleNegativesRankingLoss({ symmetric }).lossFromEmbeddings(global); // ()
        reference.backward();
        const refGrads = global.map((g) => g.grad!.clone());
        for (const g of global) g.grad!.zero_();

        let total = 0;
        for (let rank = 0; rank < W; rank++) {
          const gather = simulatedGather(rank, global);
          const loss = new MultipleNegativesRankingLoss({ symmetric, gatherAcrossDevices: gather });
          const local = global.map((g) => g.narrow(0, rank * B, B)); // each (B, D)
          const value = loss.lossFromEmbeddings(local); // ()
          value.div(W).backward(); // the gradient average over ranks
          total += value.item() / W;
          // Positives and negatives are gathered; the symmetric form gathers the anchors too.
          assert.equal(gather.calls, symmetric ? 3 : 2);
        }
        assert.ok(Math.abs(total - reference.item()) < 1e-5, `${total} vs ${reference.item()}`);
        global.forEach((g, c) => {
          const diff = maxAbsDiff(g.grad!, refGrads[c]!);
          assert.ok(diff < 1e-6, `column ${c}: max |Δgrad| = ${diff}`);
        });
      });
    });

    test("without the gather each rank sees only its shard: the loss differs from the global one", () => {
      tidy(() => {
        const global = leaves();
        const reference = new MultipleNegativesRankingLoss({ symmetric }).lossFromEmbeddings(global).item();
        let total = 0;
        for (let rank = 0; rank < W; rank++) {
          const local = global.map((g) => g.narrow(0, rank * B, B));
          total += new MultipleNegativesRankingLoss({ symmetric }).lossFromEmbeddings(local).item() / W;
        }
        assert.ok(Math.abs(total - reference) > 1e-3, `${total} vs ${reference}`);
      });
    });
  });
}

for (const options of [{}, { margin: 0.1 }, { marginStrategy: "relative" as const, margin: 0.05 }]) {
  describe(`GISTEmbedLoss ${JSON.stringify(options)}: gatherAcrossDevices`, () => {
    test("the mean over ranks of the loss and its gradient equals the one-process loss over the global batch", () => {
      tidy(() => {
        const global = leaves();
        manualSeed(11);
        // The guide's columns (no gradient), close enough to the model's that some candidates get masked.
        const guide = global.map((g) => noGrad(() => g.add(randn([W * B, D]).mul(0.5)))); // each (W * B, D)
        const reference = new GISTEmbedLoss(options).lossFromEmbeddings(global, null, {
          guideEmbeddings: guide,
        }); // ()
        assert.ok(Number.isFinite(reference.item()));
        reference.backward();
        const refGrads = global.map((g) => g.grad!.clone());
        for (const g of global) g.grad!.zero_();

        let total = 0;
        for (let rank = 0; rank < W; rank++) {
          const gather = simulatedGather(rank, [...global, ...guide]);
          const loss = new GISTEmbedLoss({ ...options, gatherAcrossDevices: gather });
          const shard = (t: Tensor) => t.narrow(0, rank * B, B); // (B, D)
          const value = loss.lossFromEmbeddings(global.map(shard), null, {
            guideEmbeddings: guide.map(shard),
          }); // ()
          value.div(W).backward();
          total += value.item() / W;
        }
        assert.ok(Math.abs(total - reference.item()) < 1e-5, `${total} vs ${reference.item()}`);
        global.forEach((g, c) => {
          const diff = maxAbsDiff(g.grad!, refGrads[c]!);
          assert.ok(diff < 1e-6, `column ${c}: max |Δgrad| = ${diff}`);
        });
      });
    });
  });
}

describe("gatherAcrossDevices: options and config", () => {
  test("the model card's config says gather_across_devices", () => {
    const gather = simulatedGather(0, []);
    assert.equal(
      new MultipleNegativesRankingLoss({ gatherAcrossDevices: gather }).configDict().gather_across_devices,
      true,
    );
    assert.equal(new MultipleNegativesRankingLoss().configDict().gather_across_devices, false);
    const cached = new CachedMultipleNegativesRankingLoss({ gatherAcrossDevices: gather });
    assert.equal(cached.configDict().gather_across_devices, true);
    assert.equal(new GISTEmbedLoss({ gatherAcrossDevices: gather }).configDict().gather_across_devices, true);
  });

  test("the cached loss takes gatherAcrossDevices on its inner loss when given one", () => {
    assert.throws(
      () =>
        new CachedMultipleNegativesRankingLoss({
          loss: new MultipleNegativesRankingLoss(),
          gatherAcrossDevices: simulatedGather(0, []),
        }),
      /give scale \/ similarity \/ symmetric \/ gatherAcrossDevices to the inner loss/,
    );
  });
});
