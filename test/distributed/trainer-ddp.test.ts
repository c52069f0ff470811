// Data-parallel training end to end over Gloo on 127.0.0.1 (2 worker processes started by the real launcher):
// 2 ranks × 8 pairs per step give the parameters and logged losses of one process training the same 16 pairs as
// 2 accumulated micro-batches of 8 (DDP's gradient average = accumulation's 1/2 scaling); only rank 0 writes the
// output folder; a failing rank stops the run with a non-zero exit; ranks given different data fail at the start.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { setNumThreads } from "../../src/engine/index.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { freshDir, tinyModelDir } from "../helpers/tiny-model.ts";
import { ddpArgs, flatParams, readParams, ROWS, tinyModel } from "./train-fixture.ts";
import { launchTrainRanks } from "./launch-ranks.ts";

setNumThreads(1);

const BIN = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));
const each = { timeout: 90_000 }; // per test: two tsx start-ups and a few steps of a tiny model on a busy box

async function runRanks(scenario: string, out = freshDir("ddp-out")) {
  const results = freshDir("ddp-results");
  mkdirSync(results, { recursive: true });
  const r = await launchTrainRanks(scenario, out, results);
  return { ...r, out, results };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("data-parallel train()", () => {
  it(
    "2 ranks × 8 pairs = 1 process, accumulation 2 × 8 (parameters and logged losses); only rank 0 writes",
    each,
    async () => {
      const ddp = await runRanks("ddp");
      assert.equal(ddp.exitCode, 0, ddp.stderr);

      // The reference: one process, the same 16 pairs per step as two micro-batches of 8.
      const model = tinyModel();
      const losses: number[] = [];
      train({
        model,
        train: ROWS,
        args: ddpArgs(freshDir("ddp-ref"), { gradientAccumulationSteps: 2 }),
        verbose: false,
        onLog: (e: LogEntry) => {
          if (typeof e.loss === "number") losses.push(e.loss);
        },
      });
      const ref = flatParams(model);
      const rank0 = readParams(join(ddp.results, "rank0.f32"));
      const rank1 = readParams(join(ddp.results, "rank1.f32"));
      assert.equal(maxAbsDiff(rank0, rank1), 0, "the ranks' parameters differ");
      const diff = maxAbsDiff(rank0, ref);
      assert.ok(diff < 1e-5, `rank 0 vs single process: max |Δ| = ${diff}`);
      const initial = flatParams(tinyModel());
      assert.ok(maxAbsDiff(rank0, initial) > 1e-4, "the parameters did not move");

      const r0 = JSON.parse(readFileSync(join(ddp.results, "rank0.json"), "utf8")) as { losses: number[] };
      assert.equal(r0.losses.length, 3);
      r0.losses.forEach((l, i) =>
        assert.ok(Math.abs(l - losses[i]!) < 1e-5, `step ${i + 1}: ${l} vs ${losses[i]}`),
      );

      // Rank 0 alone wrote the folder: each step logged once, the checkpoints of steps 2 and 3.
      const log = readFileSync(join(ddp.out, "training_log.jsonl"), "utf8").trim().split("\n");
      assert.equal(log.filter((l) => (JSON.parse(l) as LogEntry).loss !== undefined).length, 3);
      assert.deepEqual(
        readdirSync(ddp.out)
          .filter((n) => n.startsWith("checkpoint-"))
          .sort(),
        ["checkpoint-2", "checkpoint-3"],
      );
    },
  );

  it(
    "a 2-rank run stopped after a checkpoint resumes on both ranks to the uninterrupted run's parameters",
    each,
    async () => {
      const stopped = await runRanks("stop");
      assert.equal(stopped.exitCode, 0, stopped.stderr);
      const atStop = readParams(join(stopped.results, "rank0.f32"));
      const resumed = await runRanks("resume", stopped.out);
      assert.equal(resumed.exitCode, 0, resumed.stderr);
      const rank0 = readParams(join(resumed.results, "rank0.f32"));
      assert.equal(maxAbsDiff(rank0, readParams(join(resumed.results, "rank1.f32"))), 0, "the ranks differ");
      assert.ok(maxAbsDiff(rank0, atStop) > 1e-6, "the resumed run did not train");
      // The uninterrupted run, as one process (equal to 2 ranks: the test above).
      const model = tinyModel();
      train({
        model,
        train: ROWS,
        args: ddpArgs(freshDir("ddp-ref"), { gradientAccumulationSteps: 2 }),
        verbose: false,
      });
      const diff = maxAbsDiff(rank0, flatParams(model));
      assert.ok(diff < 1e-5, `resumed vs uninterrupted: max |Δ| = ${diff}`);
    },
  );

  it("a rank that fails stops the run: the launcher exits non-zero naming the rank", each, async () => {
    const r = await runRanks("fail");
    assert.notEqual(r.exitCode, 0);
    assert.equal(r.failedRank, 1);
    assert.match(r.stderr, /rank 1 fails on purpose/);
    assert.ok(!existsSync(join(r.results, "rank0.f32")), "rank 0 finished despite its peer's failure");
  });

  it("a non-finite loss on one rank stops every rank at the same step, before the update", each, async () => {
    const r = await runRanks("nan");
    assert.equal(r.exitCode, 0, r.stderr);
    const error = (rank: number) => readFileSync(join(r.results, `rank${rank}.error.txt`), "utf8");
    assert.match(error(1), /^step 2: rank 1: the loss is NaN at micro-batch 1 of 1/);
    assert.match(
      error(0),
      /^step 2: the loss is not finite on 1 other rank\(s\)\. Training stopped before the update/,
    );
    assert.match(error(0), /the last good checkpoint is .*checkpoint-2|no checkpoint was saved yet/);
  });

  it("ranks with different training data fail at the start, naming what differs", each, async () => {
    const r = await runRanks("mismatch");
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /ranks disagree on \(training pairs, seed, global batch, optimizer steps\)/);
    assert.ok(!existsSync(join(r.out, "checkpoint-2")));
  });
});

describe("ragtune train --nproc-per-node 2", () => {
  it("trains on 2 Gloo workers and rank 0 writes one model folder", each, async () => {
    const data = freshDir("ddp-cli-data");
    writeFileSync(join(data, "train.jsonl"), ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const testFile = fileURLToPath(new URL("../../data/financial/test.jsonl", import.meta.url));
    const evalRows = readFileSync(testFile, "utf8").split("\n").slice(0, 16);
    writeFileSync(join(data, "eval.jsonl"), evalRows.join("\n") + "\n");
    const out = join(freshDir("ddp-cli"), "model");
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        "train",
        "--model",
        tinyModelDir(),
        "--train",
        join(data, "train.jsonl"),
        "--eval",
        join(data, "eval.jsonl"),
        "--out",
        out,
        "--nproc-per-node",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--gradient-accumulation-steps",
        "2",
        "--matryoshka-dims",
        "32,16",
        "--logging-steps",
        "1",
        "--no-onnx",
      ],
      { encoding: "utf8", env: { ...process.env, RAGTUNE_DIST_TIMEOUT: "60" }, timeout: 80_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    // 64 pairs = 4 global batches of 16 = 2 optimizer steps of 2 accumulated global batches.
    assert.match(
      r.stderr,
      /\[rank 0\] training 64 pairs on cpu: 1 epochs × 2 steps → 2 optimizer steps \(batch 8 × 2 ranks × accumulation 2/,
    );
    assert.doesNotMatch(r.stderr, /\[rank 1\] (training|saved|eval)/);
    for (const f of [
      "final/model.safetensors",
      "final/README.md",
      "eval_results.json",
      "checkpoint-2/trainer_state.json",
    ])
      assert.ok(existsSync(join(out, f)), f);
    const log = readFileSync(join(out, "training_log.jsonl"), "utf8").trim().split("\n");
    assert.equal(log.filter((l) => (JSON.parse(l) as LogEntry).loss !== undefined).length, 2);
    assert.ok(!existsSync(join(out, ".ragtune-train.lock")), "the lock was left behind");
  });
});
