// Checkpoints: what `checkpoint-<step>/` holds (the sentence-transformers folder, optimizer moments by parameter
// name, RNG states, trainer_state.json with the HF keys, training_args.json), the atomic write (temporary
// folders are never taken for checkpoints; those of dead writers are removed), and rotation (the newest
// `saveTotalLimit` are kept, never deleting the best, as HF's _rotate_checkpoints).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { AdamW, getRngState, manualSeed, setNumThreads, tidy, type Tensor } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { loadSafetensors } from "../../src/models/weights.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { resolveTrainingArguments } from "../../src/train/args.ts";
import {
  latestCheckpoint,
  listCheckpoints,
  loadCheckpointState,
  removeStaleTemporaries,
  rotateCheckpoints,
  saveCheckpoint,
  type TrainerState,
} from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";

setNumThreads(1); // a tiny model on a shared machine: more threads only spin

const ROWS: PairRecord[] = readFileSync(
  fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url)),
  "utf8",
)
  .trim()
  .split("\n")
  .slice(0, 32)
  .map((line) => JSON.parse(line) as PairRecord);
const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });
const tinyModel = () =>
  SentenceTransformer.create({ config: TINY_CONFIG, tokenizer, pooling: "mean", maxSeqLength: 32, seed: 42 });

function metadata(path: string): Record<string, string> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  return (JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as { __metadata__?: Record<string, string> })
    .__metadata__!;
}

const values = (t: Tensor): number[] => [...(t.detach().toArray() as Float32Array)];

/** A state as the trainer fills it (enough for the checkpoint functions). */
function fakeState(step: number): TrainerState {
  return {
    global_step: step,
    epoch: 1,
    max_steps: 10,
    num_train_epochs: 1,
    train_batch_size: 8,
    logging_steps: 1,
    eval_steps: null,
    save_steps: null,
    best_metric: null,
    best_global_step: null,
    best_model_checkpoint: null,
    log_history: [{ loss: 1.5, step }],
    ragtune_sampler: {
      epoch: 0,
      batch: step,
      sampler: { kind: "shuffled", size: 8, batchSize: 8, seed: 42, dropLast: false },
    },
  };
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

describe("checkpoint folders", () => {
  test("a training run's checkpoint holds the model folder, optimizer, RNG, trainer_state and args", () => {
    const model = tinyModel();
    const task = buildRetrievalTask(ROWS.slice(0, 8), ROWS);
    const evaluator = new InformationRetrievalEvaluator({ ...task, dims: [32, 16] });
    const args = resolveTrainingArguments({
      outputDir: freshDir("ckpt"),
      numTrainEpochs: 2,
      perDeviceTrainBatchSize: 8, // 4 steps per epoch
      gradientAccumulationSteps: 1,
      learningRate: 1e-3,
      matryoshkaDims: [32, 16],
      metricForBestModel: "eval_dim_16_cosine_ndcg@10",
      loggingSteps: 2,
    });
    const result = train({ model, train: ROWS, evaluator, args, verbose: false });
    assert.deepEqual(
      listCheckpoints(args.outputDir).map((c) => c.step),
      [4, 8],
    );
    const dir = join(args.outputDir, "checkpoint-4");
    const files = readdirSync(dir).sort();
    for (const f of [
      "modules.json",
      "config_sentence_transformers.json",
      "sentence_bert_config.json",
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "1_Pooling",
      "2_Normalize",
      "optimizer.safetensors",
      "rng_state.safetensors",
      "trainer_state.json",
      "training_args.json",
    ])
      assert.ok(files.includes(f), `${f} missing from ${files.join(", ")}`);
    assert.ok(!readdirSync(args.outputDir).some((n) => n.includes(".tmp-")), "no temporary folder is left");

    // trainer_state.json: the HF TrainerState keys, the history up to this step, the best so far.
    const state = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8")) as TrainerState;
    assert.equal(state.global_step, 4);
    assert.equal(state.epoch, 1);
    assert.equal(state.max_steps, 8);
    assert.equal(state.logging_steps, 2);
    assert.deepEqual(
      state.log_history.map((e) => e.step),
      [2, 4, 4],
    );
    assert.ok("loss" in state.log_history[0]! && "learning_rate" in state.log_history[0]!);
    assert.equal(typeof state.log_history[2]!["eval_dim_16_cosine_ndcg@10"], "number");
    assert.equal(state.best_metric, state.log_history[2]!["eval_dim_16_cosine_ndcg@10"]);
    assert.equal(state.best_global_step, 4);
    assert.equal(state.best_model_checkpoint, dir);
    assert.deepEqual(state.ragtune_sampler.epoch, 0);
    assert.deepEqual(state.ragtune_sampler.batch, 4);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "training_args.json"), "utf8")), args);
    // The final checkpoint's history holds both evaluations; the run's history is that plus the summary.
    const last = JSON.parse(readFileSync(join(args.outputDir, "checkpoint-8", "trainer_state.json"), "utf8"));
    assert.deepEqual(last.log_history, result.logHistory.slice(0, -1));

    // Optimizer: both moments of every parameter, under its name, shaped like it; the step count.
    const moments = loadSafetensors(join(dir, "optimizer.safetensors"));
    for (const [name, p] of model.namedParameters()) {
      for (const kind of ["exp_avg", "exp_avg_sq"]) {
        const m = moments.get(`${kind}.${name}`);
        assert.ok(m, `${kind}.${name} missing`);
        assert.deepEqual(m.shape, p.shape, `${kind}.${name}`);
      }
    }
    assert.equal(moments.size, 2 * model.namedParameters().length);
    for (const t of moments.values()) t.dispose();
    const meta = metadata(join(dir, "optimizer.safetensors"));
    assert.equal(meta.step, "4");
    assert.equal(meta.format, "pt");
    const rng = loadSafetensors(join(dir, "rng_state.safetensors"));
    assert.deepEqual([...rng.keys()], ["cpu"]);
    for (const t of rng.values()) t.dispose();

    // The model folder loads on its own as a sentence-transformers model.
    const loaded = SentenceTransformer.fromDir(dir);
    assert.equal(loaded.embeddingDim, 32);
    assert.equal(loaded.encode(["net revenue"]).dim, 32);
    loaded.dispose();
    model.dispose();
  });

  test("optimizer moments are saved under their parameter's name and restored to the same parameter", () => {
    const model = tinyModel();
    model.train();
    // Decayed parameters come first in the optimizer, so its order is not the model's.
    const optimizer = new AdamW(model.paramGroups(0.01), { lr: 1e-3, weightDecay: 0.01 });
    const named = model.namedParameters().map(([, t]) => t);
    assert.ok(optimizer.params.some((p, i) => p !== named[i]));
    manualSeed(7);
    tidy(() => {
      const e = model.forward(model.tokenize(ROWS.slice(0, 4).map((r) => r.anchor)));
      e.pow(3).sum().backward();
    });
    optimizer.step();
    optimizer.lr = 5e-4;
    const dir = freshDir("opt");
    const saved = saveCheckpoint(dir, 1, {
      model,
      optimizer,
      state: fakeState(1),
      args: { note: "test" },
      devices: ["cpu"],
    });
    assert.equal(saved.dir, join(dir, "checkpoint-1"));
    const sd = optimizer.stateDict();
    const byTensor = new Map(optimizer.params.map((p, i) => [p, i]));
    const file = loadSafetensors(join(saved.dir, "optimizer.safetensors"));
    for (const [name, p] of model.namedParameters()) {
      const i = byTensor.get(p)!;
      assert.deepEqual(values(file.get(`exp_avg.${name}`)!), values(sd.expAvg[i]!), name);
      assert.deepEqual(values(file.get(`exp_avg_sq.${name}`)!), values(sd.expAvgSq[i]!), name);
    }
    for (const t of file.values()) t.dispose();
    assert.equal(metadata(join(saved.dir, "optimizer.safetensors")).lr, "0.0005");

    // A fresh optimizer over the same parameters gets every moment back on the right parameter, and the RNG.
    const rngAtSave = values(getRngState("cpu"));
    manualSeed(123);
    const fresh = new AdamW(model.paramGroups(0.01), { lr: 1e-3, weightDecay: 0.01 });
    const state = loadCheckpointState(saved.dir, { model, optimizer: fresh, devices: ["cpu"] });
    assert.equal(state.global_step, 1);
    assert.equal(fresh.lr, 5e-4);
    assert.equal(fresh.stepCount, 1);
    const restored = fresh.stateDict();
    sd.expAvg.forEach((m, i) => assert.deepEqual(values(restored.expAvg[i]!), values(m!)));
    sd.expAvgSq.forEach((v, i) => assert.deepEqual(values(restored.expAvgSq[i]!), values(v!)));
    assert.deepEqual(values(getRngState("cpu")), rngAtSave);
    optimizer.dispose();
    fresh.dispose();
    model.dispose();
  });
});

describe("atomic writes", () => {
  test("temporary folders are never checkpoints; a dead writer's are removed, a live one's kept", () => {
    const dir = freshDir("atomic");
    const model = tinyModel();
    const optimizer = new AdamW(model.paramGroups(0), { lr: 1e-3 });
    saveCheckpoint(dir, 4, { model, optimizer, state: fakeState(4), args: {}, devices: ["cpu"] });
    // What a run killed while saving checkpoint-8 leaves: a complete-looking folder under a temporary name.
    const dead = deadPid();
    const stale = join(dir, `checkpoint-8.tmp-${dead}`);
    mkdirSync(stale);
    writeFileSync(join(stale, "trainer_state.json"), JSON.stringify(fakeState(8)));
    // Another run still writing (this process stands for it) and a folder without trainer_state.json.
    const live = join(dir, `checkpoint-12.tmp-${process.pid}`);
    mkdirSync(live);
    writeFileSync(join(live, "trainer_state.json"), JSON.stringify(fakeState(12)));
    mkdirSync(join(dir, "checkpoint-16"));

    assert.deepEqual(
      listCheckpoints(dir).map((c) => c.step),
      [4],
    );
    assert.equal(latestCheckpoint(dir)?.dir, join(dir, "checkpoint-4"));
    assert.deepEqual(removeStaleTemporaries(dir), [stale]);
    assert.ok(!existsSync(stale));
    assert.ok(existsSync(live));

    // Saving over a leftover temporary folder of this process, and over an existing checkpoint of that step.
    mkdirSync(join(dir, `checkpoint-20.tmp-${process.pid}`));
    writeFileSync(join(dir, `checkpoint-20.tmp-${process.pid}`, "junk.bin"), "x");
    saveCheckpoint(dir, 20, { model, optimizer, state: fakeState(20), args: {}, devices: ["cpu"] });
    assert.ok(!existsSync(join(dir, "checkpoint-20", "junk.bin")));
    assert.ok(!existsSync(join(dir, `checkpoint-20.tmp-${process.pid}`)));
    assert.equal(latestCheckpoint(dir)?.step, 20);
    optimizer.dispose();
    model.dispose();
  });
});

describe("rotation", () => {
  /** Folders that pass for checkpoints of these steps. */
  function fakeCheckpoints(steps: number[]): string {
    const dir = freshDir("rot");
    for (const s of steps) {
      mkdirSync(join(dir, `checkpoint-${s}`));
      writeFileSync(join(dir, `checkpoint-${s}`, "trainer_state.json"), "{}");
    }
    return dir;
  }
  const remaining = (dir: string) => listCheckpoints(dir).map((c) => c.step);

  test("keeps the newest saveTotalLimit, the best among them", () => {
    const dir = fakeCheckpoints([10, 20, 30, 40, 50]);
    const deleted = rotateCheckpoints(dir, 3, join(dir, "checkpoint-50"));
    assert.deepEqual(
      deleted.map((d) => d.slice(dir.length + 1)),
      ["checkpoint-10", "checkpoint-20"],
    );
    assert.deepEqual(remaining(dir), [30, 40, 50]);
  });

  test("never deletes the best: it counts toward the limit (HF moves it out of the deletion range)", () => {
    const dir = fakeCheckpoints([1, 2, 3, 4, 5, 6]);
    rotateCheckpoints(dir, 3, join(dir, "checkpoint-2"));
    assert.deepEqual(remaining(dir), [2, 5, 6]);
    rotateCheckpoints(dir, 2, join(dir, "checkpoint-2"));
    assert.deepEqual(remaining(dir), [2, 6]);
  });

  test("limit 1 with an older best keeps the best and the newest", () => {
    const dir = fakeCheckpoints([1, 2, 3]);
    rotateCheckpoints(dir, 1, join(dir, "checkpoint-1"));
    assert.deepEqual(remaining(dir), [1, 3]);
    const newest = fakeCheckpoints([1, 2, 3]);
    rotateCheckpoints(newest, 1, join(newest, "checkpoint-3"));
    assert.deepEqual(remaining(newest), [3]);
  });

  test("no limit, or no best, and the order is by step (not by name)", () => {
    const dir = fakeCheckpoints([9, 10, 100]);
    assert.deepEqual(rotateCheckpoints(dir, null, null), []);
    assert.deepEqual(remaining(dir), [9, 10, 100]);
    rotateCheckpoints(dir, 1, null);
    assert.deepEqual(remaining(dir), [100]);
  });
});
