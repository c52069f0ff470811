// `ragtune train` as a user runs it, on the trainer's failure cases (issue #10, items 1, 4, 6, 8, 9, 10): the help
// says what changed; --dtype float16 is refused in user terms; a second run into a held --out fails at once naming
// the holder's pid; a diverging run exits 1 naming the step with its last checkpoint kept and no final model; an
// unrelated --out is left alone; --batch-size 1 is refused.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { setNumThreads } from "../../src/engine/index.ts";
import { openRunDir } from "../../src/train/output-dir.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { ROWS, tinyModel } from "./trainer-fixtures.ts";
import { ragtune as runCli } from "../helpers/run-cli.ts";
import type { ChildProcess } from "node:child_process";

setNumThreads(1);

const ragtune = (args: string[], onStart?: (child: ChildProcess) => void) =>
  runCli(args, { onStart, threads: "preload" });

const work = freshDir("train-robust-cli");
const modelDir = join(work, "base");
{
  const base = tinyModel();
  base.save(modelDir);
  base.dispose();
}
const trainFile = join(work, "train.jsonl");
writeFileSync(
  trainFile,
  ROWS.slice(0, 32)
    .map((r) => JSON.stringify(r))
    .join("\n") + "\n",
);
const common = (out: string) => [
  ...["train", "--model", modelDir, "--train", trainFile, "--out", out, "--device", "cpu"],
  ...["--batch-size", "8", "--gradient-accumulation-steps", "1", "--matryoshka-dims", "32,16"],
  ...["--eval-strategy", "no", "--no-load-best-model", "--no-onnx", "--epochs", "1"],
];

const heldOut = freshDir("held");
const held = openRunDir(heldOut, { resumeFromCheckpoint: null, overwriteOutputDir: false });
const divergingOut = join(work, "diverging");
const unrelatedOut = freshDir("unrelated");
writeFileSync(join(unrelatedOut, "README.md"), "# not a run\n");

// Ctrl-C during training: the loop is synchronous, so no JS handler runs; the process ends and leaves its lock,
// which the next run takes over as stale (its pid is gone).
const interruptedOut = join(work, "interrupted");
const interrupted = ragtune(
  [...common(interruptedOut), "--save-strategy", "steps", "--save-steps", "1"],
  (child) => {
    const poll = setInterval(() => {
      if (existsSync(join(interruptedOut, "checkpoint-1", "trainer_state.json"))) {
        clearInterval(poll);
        child.kill("SIGINT");
      }
    }, 5);
    child.on("close", () => clearInterval(poll));
  },
).then(async (first) => ({
  first,
  lockLeft: existsSync(join(interruptedOut, ".ragtune-train.lock")),
  resumed: await ragtune([
    ...common(interruptedOut),
    "--save-strategy",
    "steps",
    "--save-steps",
    "1",
    "--resume",
    "latest",
  ]),
}));

const runs = {
  help: ragtune(["train", "--help"]),
  float16: ragtune([...common(join(work, "f16")), "--dtype", "float16"]),
  batchOne: ragtune([...common(join(work, "bs1")), "--batch-size", "1"]),
  held: ragtune(common(heldOut)),
  diverging: ragtune([
    ...common(divergingOut),
    ...[
      "--learning-rate",
      "1e30",
      "--max-grad-norm",
      "0",
      "--lr-scheduler",
      "constant",
      "--warmup-ratio",
      "0",
    ],
    ...["--save-strategy", "steps", "--save-steps", "1", "--logging-steps", "1"],
  ]),
  unrelated: ragtune([...common(unrelatedOut), "--max-steps", "1"]),
};

describe("ragtune train on the failure cases", () => {
  test("--help says how clipping, the output folder, non-finite steps and batch size behave", async () => {
    const r = await runs.help;
    assert.equal(r.code, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, " ");
    assert.match(
      help,
      /--max-grad-norm F gradient clipping norm; 0 = no clipping, as in HF \(the norm is still logged\)/,
    );
    assert.match(help, /--overwrite-output-dir let a fresh run replace a non-empty --out/);
    assert.match(help, /--skip-nonfinite-steps skip an update whose loss or gradient norm is NaN\/Inf/);
    assert.match(help, /in-batch negatives = N − 1; at least 2/);
    assert.match(help, /--out is locked while a run uses it/);
    assert.match(help, /A NaN\/Inf loss or gradient norm stops the run with exit 1/);
  });

  test("--dtype float16 is refused before any model is loaded, in user terms", async () => {
    const r = await runs.float16;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--dtype float16: ragtune train keeps float32 weights/);
    assert.doesNotMatch(r.stderr, /not implemented for 'Half'/);
  });

  test("--batch-size 1 is refused: MNRL needs another pair of the batch as a negative", async () => {
    const r = await runs.batchOne;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /perDeviceTrainBatchSize: must be at least 2/);
  });

  test("a second run into a held --out fails at once, naming the holder's pid", async () => {
    const r = await runs.held;
    held.release();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`is in use by another ragtune train \\(pid ${process.pid} on `));
    assert.doesNotMatch(r.stderr, /libtorch/, "it failed before loading the model");
  });

  test("a NaN loss: exit 1 naming the step, the last checkpoint kept, no final model, the lock released", async () => {
    const r = await runs.diverging;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ragtune train: step 2: the loss is NaN at micro-batch 1 of 1/);
    assert.match(r.stderr, /the last good checkpoint is .*checkpoint-1/);
    const left = readdirSync(divergingOut);
    assert.ok(left.includes("checkpoint-1"), left.join(", "));
    assert.ok(!left.includes("final") && !left.includes("model.safetensors"), "no final model");
    assert.ok(!left.includes(".ragtune-train.lock"), "the lock is gone");
    assert.ok(!r.stderr.includes("saved the final model"));
  });

  test("an --out holding unrelated files is refused and left untouched", async () => {
    const r = await runs.unrelated;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /is not empty: it holds files that are not a ragtune run \(README\.md\)/);
    assert.deepEqual(readdirSync(unrelatedOut), ["README.md"]);
    assert.equal(readFileSync(join(unrelatedOut, "README.md"), "utf8"), "# not a run\n");
    assert.ok(!existsSync(join(unrelatedOut, "training_log.jsonl")));
  });

  test("after Ctrl-C the lock is stale: --resume latest takes it over and finishes", async () => {
    const { first, lockLeft, resumed } = await interrupted;
    assert.notEqual(first.code, 0, "the first run was interrupted");
    assert.ok(lockLeft, "the interrupted run left its lock");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /took over a stale lock of process \d+/);
    assert.match(resumed.stderr, /resumed from .*checkpoint-\d+/);
    assert.ok(!existsSync(join(interruptedOut, ".ragtune-train.lock")), "released at the end");
    assert.ok(existsSync(join(interruptedOut, "final", "model.safetensors")));
    assert.match(resumed.stderr, new RegExp(`saved the final model to .*interrupted[\\\\/]final \\(`));
  });
});
