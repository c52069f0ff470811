// Resuming at another world size over Gloo on 127.0.0.1: the checkpoint's sampler position counts global batches,
// so a 2-rank run stopped at step 2 finishes on one process (and a one-process run on 2 ranks) with the batches,
// the step count and — with --gather-across-devices, which makes 2 ranks × 8 pairs one process × 16 — the
// parameters of an uninterrupted run. At the same world size every rank gets its own random state back. A
// global batch that does not match the checkpoint's is refused with the --batch-size that would.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { setNumThreads } from "../../src/engine/index.ts";
import type { TrainingArguments } from "../../src/train/args.ts";
import { train } from "../../src/train/trainer.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { ddpArgs, flatParams, readParams, RESUME_ARGS, ROWS, tinyModel } from "./train-fixture.ts";
import { launchTrainRanks } from "./launch-ranks.ts";

setNumThreads(1);

interface RankRun {
  params: Float32Array;
  globalStep: number;
  rows: number[][];
  rng: Buffer;
}

async function runRanks(scenario: "gstop" | "gresume", out: string): Promise<RankRun[]> {
  const results = freshDir("resume-ws-results");
  mkdirSync(results, { recursive: true });
  const r = await launchTrainRanks(scenario, out, results);
  assert.equal(r.exitCode, 0, r.stderr);
  return [0, 1].map((rank) => {
    const json = JSON.parse(readFileSync(join(results, `rank${rank}.json`), "utf8")) as {
      globalStep: number;
      rows: number[][];
    };
    return {
      ...json,
      params: readParams(join(results, `rank${rank}.f32`)),
      rng: readFileSync(join(results, `rank${rank}.rng`)),
    };
  });
}

/** One process, 16 pairs per step (the 2 ranks' global batch), 3 steps; `o` resumes or stops it. */
function oneProcess(out: string, o: Partial<TrainingArguments> = {}, stopAfterSteps?: number) {
  const model = tinyModel();
  const rows: number[][] = [];
  const result = train({
    model,
    train: ROWS,
    args: ddpArgs(out, { ...RESUME_ARGS, perDeviceTrainBatchSize: 16, ...o }),
    verbose: false,
    onMicroBatch: (b) => rows.push([...b]),
    ...(stopAfterSteps ? { stopAfterSteps } : {}),
  });
  return { params: flatParams(model), rows, globalStep: result.globalStep };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("resuming with another world size", () => {
  it(
    "2 ranks → 1 process and 1 process → 2 ranks finish as the uninterrupted run; 2 → 2 restores each rank's random state",
    { timeout: 240_000 },
    async () => {
      const straight = oneProcess(freshDir("resume-ws-straight"));
      assert.equal(straight.globalStep, 3);
      assert.equal(straight.rows.length, 3);

      // A 2-rank run stopped after its step-2 checkpoint (rank 1 draws random numbers the others do not).
      const stoppedDir = freshDir("resume-ws-2");
      const stopped = await runRanks("gstop", stoppedDir);
      assert.equal(stopped[0]!.globalStep, 2);
      // Its global batches are the straight run's: rank 0 takes the first 8 pairs, rank 1 the next 8.
      for (let step = 0; step < 2; step++)
        assert.deepEqual([...stopped[0]!.rows[step]!, ...stopped[1]!.rows[step]!], straight.rows[step]);
      assert.notDeepEqual(stopped[0]!.rng, stopped[1]!.rng, "the ranks' random states should differ");
      const twoToTwo = freshDir("resume-ws-2to2");
      const twoToOne = freshDir("resume-ws-2to1");
      cpSync(stoppedDir, twoToTwo, { recursive: true });
      cpSync(stoppedDir, twoToOne, { recursive: true });

      // 2 → 1 with the per-device batch of 8: another global batch, refused with the --batch-size that fits.
      assert.throws(
        () => oneProcess(twoToOne, { resumeFromCheckpoint: "latest", perDeviceTrainBatchSize: 8 }),
        /ragtune_sampler: the sampler differs from the checkpoint's \(batchSize: checkpoint 16, now 8\); the checkpoint's global batch is 16 \(8 per device × 2 process\(es\)\), this run's 8: with 1 process\(es\) resume with --batch-size 16/,
      );
      // 2 → 1 with the same global batch: the remaining step, its batch and the parameters of the straight run.
      const resumedOne = oneProcess(twoToOne, { resumeFromCheckpoint: "latest" });
      assert.equal(resumedOne.globalStep, 3);
      assert.deepEqual(resumedOne.rows, [straight.rows[2]]);
      const d21 = maxAbsDiff(resumedOne.params, straight.params);
      assert.ok(d21 < 1e-5, `2 → 1 vs uninterrupted: max |Δ| = ${d21}`);

      // 2 → 2: each rank restarts from its own random state (rank 1's is not rank 0's).
      const resumedTwo = await runRanks("gresume", twoToTwo);
      assert.deepEqual(resumedTwo[1]!.rng, stopped[1]!.rng, "rank 1 did not get its own random state back");
      assert.deepEqual(resumedTwo[0]!.rng, stopped[0]!.rng);
      const d22 = maxAbsDiff(resumedTwo[0]!.params, straight.params);
      assert.ok(d22 < 1e-5, `2 → 2 vs uninterrupted: max |Δ| = ${d22}`);

      // 1 → 2: a one-process run stopped at step 2 finishes on 2 ranks.
      const oneDir = freshDir("resume-ws-1to2");
      const first = oneProcess(oneDir, {}, 2);
      assert.equal(first.globalStep, 2);
      const resumed = await runRanks("gresume", oneDir);
      assert.equal(resumed[0]!.globalStep, 3);
      assert.deepEqual([...resumed[0]!.rows[0]!, ...resumed[1]!.rows[0]!], straight.rows[2]);
      assert.equal(resumed[0]!.rows.length, 1);
      assert.equal(maxAbsDiff(resumed[0]!.params, resumed[1]!.params), 0, "the ranks differ");
      const d12 = maxAbsDiff(resumed[0]!.params, straight.params);
      assert.ok(d12 < 1e-5, `1 → 2 vs uninterrupted: max |Δ| = ${d12}`);
    },
  );
});
