// --gather-across-devices end to end over Gloo on 127.0.0.1 (2 worker processes started by the real launcher):
// one optimizer step of 2 ranks × 16 pairs, MatryoshkaLoss over MNRL, cached MNRL or GIST, gives the logged loss
// and the parameters of one process training the same 32 pairs as one batch (dropout off). Without the gather
// each rank's anchors see only its 15 shard negatives: the loss and the update differ, which the last test
// checks so that the equality above cannot pass by accident.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { setNumThreads } from "../../src/engine/index.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { ddpArgs, flatParams, GATHER_ARGS, readParams, ROWS, tinyModel } from "./train-fixture.ts";
import { launchTrainRanks } from "./launch-ranks.ts";

setNumThreads(1);

const each = { timeout: 90_000 }; // per test: two tsx start-ups and one step of a tiny model on a busy box

async function runRanks(scenario: string) {
  const out = freshDir("gather-out");
  const results = freshDir("gather-results");
  mkdirSync(results, { recursive: true });
  const r = await launchTrainRanks(scenario, out, results);
  assert.equal(r.exitCode, 0, r.stderr);
  const rank0 = readParams(join(results, "rank0.f32"));
  const rank1 = readParams(join(results, "rank1.f32"));
  assert.equal(maxAbsDiff(rank0, rank1), 0, "the ranks' parameters differ");
  const { losses } = JSON.parse(readFileSync(join(results, "rank0.json"), "utf8")) as { losses: number[] };
  assert.equal(losses.length, 1);
  return { params: rank0, loss: losses[0]!, stderr: r.stderr };
}

/** One process, the same 32 pairs as one batch (gather off: there is nothing to gather). */
function reference(loss: "mnrl" | "cached" | "gist", o: { gatherAcrossDevices?: boolean } = {}) {
  const model = tinyModel();
  const losses: number[] = [];
  const result = train({
    model,
    train: ROWS,
    args: ddpArgs(freshDir("gather-ref"), {
      ...GATHER_ARGS[`nogather-${loss}`],
      perDeviceTrainBatchSize: 32,
      ...o,
    }),
    verbose: false,
    ...(loss === "gist" ? { guide: tinyModel() } : {}),
    onLog: (e: LogEntry) => {
      if (typeof e.loss === "number") losses.push(e.loss);
    },
  });
  return { params: flatParams(model), loss: losses[0]!, warnings: result.warnings };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("data-parallel train() with gatherAcrossDevices", () => {
  for (const loss of ["mnrl", "cached", "gist"] as const) {
    it(`2 ranks × 16 pairs gathered = 1 process × 32 pairs (Matryoshka over ${loss})`, each, async () => {
      const ddp = await runRanks(`gather-${loss}`);
      const ref = reference(loss);
      assert.ok(Math.abs(ddp.loss - ref.loss) < 1e-5, `loss: 2 ranks ${ddp.loss} vs 1 process ${ref.loss}`);
      const diff = maxAbsDiff(ddp.params, ref.params);
      assert.ok(diff < 1e-6, `parameters: 2 ranks vs 1 process: max |Δ| = ${diff}`);
      assert.ok(maxAbsDiff(ddp.params, flatParams(tinyModel())) > 1e-5, "the parameters did not move");
    });
  }

  it("without the gather, the 2-rank loss and update differ from the 32-pair batch's", each, async () => {
    const ddp = await runRanks("nogather-mnrl");
    const ref = reference("mnrl");
    // Each anchor ranks 16 candidates instead of 32: a lower loss.
    assert.ok(ref.loss - ddp.loss > 0.1, `loss: 2 ranks ${ddp.loss} vs 1 process ${ref.loss}`);
    assert.ok(maxAbsDiff(ddp.params, ref.params) > 1e-5, "the update did not change");
  });

  it("on one process --gather-across-devices is a no-op with a warning", () => {
    const gathered = reference("mnrl", { gatherAcrossDevices: true });
    const plain = reference("mnrl");
    assert.equal(maxAbsDiff(gathered.params, plain.params), 0);
    assert.ok(
      gathered.warnings.some((m) => /--gather-across-devices does nothing on a single process/.test(m)),
      gathered.warnings.join("\n"),
    );
  });
});
