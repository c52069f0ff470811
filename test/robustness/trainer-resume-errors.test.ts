// Damaged checkpoints and failed saves (issue #10, item 10): a corrupt trainer_state.json, sampler state or optimizer
// file on resume gives an error naming the file and the key (never a bare JSON.parse message or "Cannot convert
// undefined or null to object"); a save that runs out of space names the file and leaves no temporary folder.
import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { AdamW, setNumThreads } from "../../src/engine/index.ts";
import type { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { saveCheckpoint, type TrainerState } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { quickArgs, ROWS, tinyModel } from "./trainer-fixtures.ts";

setNumThreads(1);

const rows = ROWS.slice(0, 32);
const source = quickArgs({ maxSteps: 2 });
{
  const model = tinyModel();
  train({ model, train: rows, verbose: false, args: source });
  model.dispose();
}

/** A copy of the run's folder with checkpoint-2 changed by `damage`; returns the error of resuming from it. */
function resumeError(damage: (checkpoint: string) => void): Error {
  const out = freshDir("damaged");
  cpSync(source.outputDir, out, { recursive: true });
  const checkpoint = join(out, "checkpoint-2");
  damage(checkpoint);
  const model = tinyModel();
  try {
    train({
      model,
      train: rows,
      verbose: false,
      args: { ...source, outputDir: out, maxSteps: 3, resumeFromCheckpoint: "latest" },
    });
  } catch (e) {
    return e as Error;
  } finally {
    model.dispose();
  }
  assert.fail("the resume did not fail");
}

function editState(checkpoint: string, edit: (state: Record<string, unknown>) => void): void {
  const path = join(checkpoint, "trainer_state.json");
  const state = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  edit(state);
  writeFileSync(path, JSON.stringify(state));
}

describe("a damaged checkpoint on resume", () => {
  test("trainer_state.json that is not JSON: the file is named", () => {
    const e = resumeError((c) => writeFileSync(join(c, "trainer_state.json"), '{"global_step": 2, '));
    assert.match(
      e.message,
      /checkpoint-2\/trainer_state\.json: not valid JSON \(.*\); the checkpoint is damaged/,
    );
  });

  test("missing or wrong keys: the file and the key are named", () => {
    const cases: Array<[(s: Record<string, unknown>) => void, RegExp]> = [
      [(s) => delete s.ragtune_sampler, /trainer_state\.json: key "ragtune_sampler" must be an object/],
      [
        (s) => ((s.ragtune_sampler as Record<string, unknown>).sampler = null),
        /trainer_state\.json: key "ragtune_sampler\.sampler" must be the sampler's config object, got null/,
      ],
      [
        (s) => ((s.ragtune_sampler as Record<string, unknown>).batch = -1),
        /key "ragtune_sampler\.batch" must be an integer ≥ 0, got -1/,
      ],
      [
        (s) => (s.global_step = "2"),
        /trainer_state\.json: key "global_step" must be an integer ≥ 0, got "2"/,
      ],
      [(s) => (s.log_history = {}), /key "log_history" must be a list of objects/],
      [(s) => (s.best_model_checkpoint = 3), /key "best_model_checkpoint" must be a folder path or null/],
    ];
    for (const [edit, expected] of cases) {
      const e = resumeError((c) => editState(c, edit));
      assert.match(e.message, expected);
      assert.doesNotMatch(e.message, /Cannot convert undefined|undefined/);
    }
    // A sampler config that no longer matches: the state file is named too.
    const e = resumeError((c) =>
      editState(c, (s) => ((s.ragtune_sampler as { sampler: { batchSize: number } }).sampler.batchSize = 4)),
    );
    assert.match(
      e.message,
      /trainer_state\.json: ragtune_sampler: the sampler differs from the checkpoint's \(batchSize/,
    );
  });

  test("a truncated or missing optimizer file: the file is named", () => {
    const truncated = resumeError((c) => truncateSync(join(c, "optimizer.safetensors"), 100));
    assert.match(truncated.message, /optimizer\.safetensors/);
    const empty = resumeError((c) => writeFileSync(join(c, "optimizer.safetensors"), ""));
    assert.match(empty.message, /optimizer\.safetensors: not a safetensors file/);
  });
});

describe("a failed checkpoint save", () => {
  test("ENOSPC names the file, removes the temporary folder, keeps the previous checkpoint", () => {
    const dir = freshDir("enospc");
    const model = tinyModel();
    const optimizer = new AdamW(model.paramGroups(0), { lr: 1e-3 });
    const state = { global_step: 1, log_history: [] } as unknown as TrainerState;
    saveCheckpoint(dir, 1, { model, optimizer, state, args: {}, devices: ["cpu"] });
    // A disk that fills while the weights are written (what the file system reports, as an errno error).
    const full = Object.create(model) as SentenceTransformer;
    full.save = (folder: string) => {
      const file = join(folder, "model.safetensors");
      writeFileSync(file, "partial");
      throw Object.assign(new Error(`ENOSPC: no space left on device, write`), {
        code: "ENOSPC",
        syscall: "write",
        path: file,
      });
    };
    assert.throws(
      () => saveCheckpoint(dir, 2, { model: full, optimizer, state, args: {}, devices: ["cpu"] }),
      /cannot save .*checkpoint-2: write .*checkpoint-2\.tmp-\d+\/model\.safetensors: no space left on the device \(ENOSPC\)/,
    );
    assert.deepEqual(readdirSync(dir), ["checkpoint-1"], "no temporary folder, no checkpoint-2");
    assert.ok(existsSync(join(dir, "checkpoint-1", "optimizer.safetensors")));
    optimizer.dispose();
    model.dispose();
  });
});
