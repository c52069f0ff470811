// Whose output folder (issue #10, items 3, 4, 9): a fresh run refuses a folder holding another run's checkpoints
// or unrelated files unless overwriteOutputDir (which removes the old run's checkpoints and log); rotation deletes
// only this run's checkpoints; a resume adopts its checkpoint's run; an exclusive lock with the holder's pid,
// stale-lock takeover and release after a throw; the training log is never appended to by a fresh run and holds
// no repeated steps after a resume.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { setNumThreads } from "../../src/engine/index.ts";
import { rotateCheckpoints } from "../../src/train/checkpoint.ts";
import { FINAL_DIR, LOCK_FILE, openRunDir, RUN_MARKER } from "../../src/train/output-dir.ts";
import { train } from "../../src/train/trainer.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { quickArgs, ROWS, tinyModel } from "./trainer-fixtures.ts";

setNumThreads(1);

const rows = ROWS.slice(0, 32); // 4 steps per epoch at batch 8
const json = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
const checkpoints = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /^checkpoint-\d+$/.test(n))
    .sort();
const runIdOf = (checkpoint: string) => json(join(checkpoint, "trainer_state.json")).ragtune_run_id;
const logLines = (dir: string) =>
  readFileSync(join(dir, "training_log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** A pid that is not running (a child that has exited). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

describe("a fresh run and the folder it is given", () => {
  test("another run's checkpoints: refused; overwriteOutputDir removes them and their log first", () => {
    const first = quickArgs({ saveTotalLimit: 2 });
    const model = tinyModel();
    train({ model, train: rows, verbose: false, args: first });
    const out = first.outputDir;
    const oldRun = runIdOf(join(out, "checkpoint-4"));
    assert.deepEqual(checkpoints(out), ["checkpoint-3", "checkpoint-4"]);

    const again = { ...first, maxSteps: 3 };
    assert.throws(
      () => train({ model, train: rows, verbose: false, args: again }),
      new RegExp(
        `is not empty: it holds the ragtune run ${oldRun} \\(checkpoint-3, checkpoint-4, .*--overwrite-output-dir`,
      ),
    );
    assert.deepEqual(checkpoints(out), ["checkpoint-3", "checkpoint-4"], "nothing was touched");

    // The case: a later run whose checkpoints 1–3 sort below the old run's 4; with the flag the old run is
    // gone, so rotation (limit 2) never deletes the new run's own newest checkpoints.
    train({ model, train: rows, verbose: false, args: { ...again, overwriteOutputDir: true } });
    assert.deepEqual(checkpoints(out), ["checkpoint-2", "checkpoint-3"]);
    const newRun = runIdOf(join(out, "checkpoint-3"));
    assert.notEqual(newRun, oldRun);
    assert.equal(json(join(out, RUN_MARKER)).run_id, newRun);
    const steps = logLines(out)
      .filter((e) => "loss" in e)
      .map((e) => e.step);
    assert.deepEqual(steps, [1, 2, 3], "the log holds this run's entries only");
    model.dispose();
  });

  test("a folder of unrelated files (a model, a README) is refused and left as it was", () => {
    const out = freshDir("unrelated");
    writeFileSync(join(out, "README.md"), "# my notes\n");
    writeFileSync(join(out, "config.json"), "{}\n");
    writeFileSync(join(out, "training_log.jsonl"), "not json\n");
    const model = tinyModel();
    assert.throws(
      () => train({ model, train: rows, verbose: false, args: quickArgs({ outputDir: out, maxSteps: 1 }) }),
      /holds files that are not a ragtune run \(README\.md, config\.json, training_log\.jsonl\)/,
    );
    assert.equal(readFileSync(join(out, "README.md"), "utf8"), "# my notes\n");
    assert.deepEqual(readdirSync(out).sort(), ["README.md", "config.json", "training_log.jsonl"]);
    // With the flag the run proceeds; its log is a fresh, valid JSONL file (never appended to the old one).
    train({
      model,
      train: rows,
      verbose: false,
      args: quickArgs({ outputDir: out, maxSteps: 1, overwriteOutputDir: true }),
    });
    assert.deepEqual(
      logLines(out).map((e) => e.step),
      [1, 1],
    );
    model.dispose();
  });

  test("overwriteOutputDir removes the earlier run's final model folder too (no stale model file survives)", () => {
    const out = freshDir("old-final");
    const first = openRunDir(out, { resumeFromCheckpoint: null, overwriteOutputDir: false });
    first.release();
    mkdirSync(join(out, "checkpoint-3"));
    mkdirSync(join(out, FINAL_DIR, "onnx"), { recursive: true });
    writeFileSync(join(out, FINAL_DIR, "onnx", "model.onnx"), "an earlier model's graph");
    writeFileSync(join(out, "eval_results.json"), "{}");
    assert.throws(
      () => openRunDir(out, { resumeFromCheckpoint: null, overwriteOutputDir: false }),
      /is not empty: it holds the ragtune run .* \(checkpoint-3, eval_results\.json, final,/,
    );
    const again = openRunDir(out, { resumeFromCheckpoint: null, overwriteOutputDir: true });
    again.release();
    assert.ok(!existsSync(join(out, FINAL_DIR)), "final/ was removed");
    assert.ok(!existsSync(join(out, "checkpoint-3")));
    assert.match(again.notes.join("\n"), /removed checkpoint-3, .*final/);
  });

  test("a run that failed before its first checkpoint does not block the same command", () => {
    const args = quickArgs({ maxSteps: 1, matryoshkaDims: [64, 32] }); // 64 > the model's 32 dims: fails in set-up
    const model = tinyModel();
    assert.throws(() => train({ model, train: rows, verbose: false, args }), /matryoshkaDims: 64 is larger/);
    assert.deepEqual(readdirSync(args.outputDir).sort(), [RUN_MARKER, "training_log.jsonl"]);
    const result = train({ model, train: rows, verbose: false, args: { ...args, matryoshkaDims: [32, 16] } });
    assert.equal(result.globalStep, 1);
    model.dispose();
  });
});

describe("rotation and resume stay within one run", () => {
  test("rotation skips another run's checkpoints; the resumed run keeps its id; no repeated log steps", () => {
    const args = quickArgs({ numTrainEpochs: 2, saveSteps: 2, saveTotalLimit: 1 }); // 8 steps
    const out = args.outputDir;
    const model = tinyModel();
    train({ model, train: rows, verbose: false, args, stopAfterSteps: 5 });
    const runId = runIdOf(join(out, "checkpoint-4"));
    // A checkpoint of some other run in the folder (copied in by hand, or left by older tools).
    mkdirSync(join(out, "checkpoint-1"));
    writeFileSync(
      join(out, "checkpoint-1", "trainer_state.json"),
      JSON.stringify({ ragtune_run_id: "other" }),
    );
    const logBefore = logLines(out).map((e) => e.step);
    assert.ok(logBefore.includes(5), "the stopped run logged step 5, after its last checkpoint");

    const resumed = tinyModel();
    train({
      model: resumed,
      train: rows,
      verbose: false,
      args: { ...args, resumeFromCheckpoint: "latest" },
    });
    assert.deepEqual(
      checkpoints(out),
      ["checkpoint-1", "checkpoint-8"],
      "only this run's checkpoints rotated",
    );
    assert.equal(runIdOf(join(out, "checkpoint-8")), runId, "the resume adopted the checkpoint's run");
    const trainingSteps = logLines(out)
      .filter((e) => "loss" in e)
      .map((e) => e.step);
    assert.deepEqual(trainingSteps, [1, 2, 3, 4, 5, 6, 7, 8], "steps 5.. were redone, logged once");

    // rotateCheckpoints itself: only the named run's checkpoints count toward the limit.
    const dir = freshDir("rot");
    for (const [step, run] of [
      [1, "a"],
      [2, "b"],
      [3, "a"],
      [4, "b"],
      [5, "a"],
    ] as const) {
      mkdirSync(join(dir, `checkpoint-${step}`));
      writeFileSync(
        join(dir, `checkpoint-${step}`, "trainer_state.json"),
        JSON.stringify({ ragtune_run_id: run }),
      );
    }
    rotateCheckpoints(dir, 1, null, "a");
    assert.deepEqual(checkpoints(dir), ["checkpoint-2", "checkpoint-4", "checkpoint-5"]);
    model.dispose();
    resumed.dispose();
  });

  test("resuming another run's checkpoint into a folder marked for a different run is refused", () => {
    const a = quickArgs({ maxSteps: 2 });
    const b = quickArgs({ maxSteps: 2 });
    const model = tinyModel();
    train({ model, train: rows, verbose: false, args: a });
    train({ model, train: rows, verbose: false, args: b });
    assert.throws(
      () =>
        train({
          model,
          train: rows,
          verbose: false,
          args: { ...a, resumeFromCheckpoint: join(b.outputDir, "checkpoint-1") },
        }),
      /belongs to the ragtune run .*, the checkpoint .*checkpoint-1 to the run /,
    );
    model.dispose();
  });
});

describe("the lock", () => {
  test("a second run into a held folder fails at once, naming the holder's pid; released after the run", () => {
    const out = freshDir("lock");
    const held = openRunDir(out, { resumeFromCheckpoint: null, overwriteOutputDir: false });
    const lock = json(join(out, LOCK_FILE));
    assert.equal(lock.pid, process.pid);
    assert.equal(lock.host, hostname());
    assert.equal(typeof lock.started, "string");
    const model = tinyModel();
    assert.throws(
      () => train({ model, train: rows, verbose: false, args: quickArgs({ outputDir: out, maxSteps: 1 }) }),
      new RegExp(`is in use by another ragtune train \\(pid ${process.pid} on `),
    );
    // The holder itself trains through its handle, then releases.
    train({
      model,
      train: rows,
      verbose: false,
      run: held,
      args: quickArgs({ outputDir: out, maxSteps: 1 }),
    });
    assert.ok(existsSync(join(out, LOCK_FILE)), "a lent handle stays held until its owner releases it");
    held.release();
    assert.ok(!existsSync(join(out, LOCK_FILE)));
    model.dispose();
  });

  test("a dead process's lock is taken over with a note; another host's lock is not", () => {
    const out = freshDir("stale");
    const dead = deadPid();
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: "earlier" }));
    const run = openRunDir(out, { resumeFromCheckpoint: null, overwriteOutputDir: false });
    assert.match(run.notes.join("\n"), new RegExp(`took over a stale lock of process ${dead}`));
    assert.equal(json(join(out, LOCK_FILE)).pid, process.pid);
    run.release();

    const remote = freshDir("remote");
    writeFileSync(
      join(remote, LOCK_FILE),
      JSON.stringify({ pid: dead, host: "elsewhere", started: "earlier" }),
    );
    assert.throws(
      () => openRunDir(remote, { resumeFromCheckpoint: null, overwriteOutputDir: false }),
      new RegExp(`in use by another ragtune train \\(pid ${dead} on elsewhere`),
    );
    // A refused fresh run releases the lock it took.
    const busy = freshDir("busy");
    writeFileSync(join(busy, "notes.txt"), "x");
    assert.throws(
      () => openRunDir(busy, { resumeFromCheckpoint: null, overwriteOutputDir: false }),
      /not empty/,
    );
    assert.ok(!existsSync(join(busy, LOCK_FILE)));
  });
});
