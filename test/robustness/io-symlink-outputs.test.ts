// Planted symbolic links at the output paths of `create-model --out`, `prepare --out` and `export-onnx` (issue
// #16 item 1 for these commands; issue #10's writers): every file is written to a temporary file and renamed
// over the link, so the link's target is never written; a linked sub-folder (1_Pooling, onnx) is refused. Also
// `create-model --out` onto a folder holding a model is refused unless --overwrite (issue #10 item 9).
import assert from "node:assert/strict";
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "node:test";

import { BERT_VOCAB, freshDir, tinyModelDir } from "../helpers/tiny-model.ts";
import { ragtune as runCli, type CliRun as Run } from "../helpers/run-cli.ts";

const ragtune = (args: string[]) => runCli(args, { threads: "env" });

function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

/** Files under `dir`, relative, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const work = freshDir("symlinks");
const victims = join(work, "victims");
mkdirSync(victims);

/** Plants a link at `dir/rel` to a fresh victim file; returns the victim's path and content. */
function plant(dir: string, rel: string): { victim: string; content: string } {
  const victim = join(victims, rel.replaceAll("/", "__"));
  const content = `victim of ${rel}\n`;
  writeFileSync(victim, content);
  mkdirSync(join(dir, rel, ".."), { recursive: true });
  symlinkSync(victim, join(dir, rel));
  return { victim, content };
}

function assertUntouched(planted: Map<string, { victim: string; content: string }>, dir: string): void {
  for (const [rel, { victim, content }] of planted) {
    assert.equal(readFileSync(victim, "utf8"), content, `${rel}: the link's target was written`);
    assert.ok(!lstatSync(join(dir, rel)).isSymbolicLink(), `${rel} is now a regular file`);
  }
}

const createArgs = (out: string, ...extra: string[]) => [
  "create-model",
  ...["--layers", "1", "--hidden", "16", "--heads", "2", "--intermediate", "32"],
  ...["--vocab", BERT_VOCAB, "--out", out, ...extra],
];

// create-model: a link at every file a model folder holds (the list comes from the tiny model's folder).
const modelFiles = filesUnder(tinyModelDir()).filter((f) => !f.startsWith("onnx/"));
const linkedModel = join(work, "linked-model");
const modelLinks = new Map(modelFiles.map((f) => [f, plant(linkedModel, f)]));
const linkedPoolingModel = join(work, "linked-pooling");
mkdirSync(linkedPoolingModel);
const poolingTarget = join(victims, "pooling-folder");
mkdirSync(poolingTarget);
symlinkSync(poolingTarget, join(linkedPoolingModel, "1_Pooling"));

// prepare: links at train.jsonl, test.jsonl, report.json.
const pairs = join(work, "pairs.jsonl");
writeFileSync(
  pairs,
  Array.from({ length: 20 }, (_, i) => JSON.stringify({ anchor: `q ${i}`, positive: `p ${i}` })).join("\n") +
    "\n",
);
const prepOut = join(work, "prep");
const prepLinks = new Map(["train.jsonl", "test.jsonl", "report.json"].map((f) => [f, plant(prepOut, f)]));

// export-onnx: a link at onnx/model.onnx; another model whose onnx/ folder is a link.
const onnxModel = join(work, "onnx-model");
cpSync(tinyModelDir(), onnxModel, { recursive: true });
const onnxLinks = new Map([
  ["onnx/model.onnx", plant(onnxModel, "onnx/model.onnx")],
  ["onnx/model_quantized.onnx", plant(onnxModel, "onnx/model_quantized.onnx")],
]);
const onnxFolderModel = join(work, "onnx-folder-model");
cpSync(tinyModelDir(), onnxFolderModel, { recursive: true });
const onnxTarget = join(victims, "onnx-folder");
mkdirSync(onnxTarget);
symlinkSync(onnxTarget, join(onnxFolderModel, "onnx"));

// create-model onto an existing model.
const existing = join(work, "existing");
cpSync(tinyModelDir(), existing, { recursive: true });
const existingConfig = readFileSync(join(existing, "config.json"), "utf8");

const runs = {
  model: ragtune(createArgs(linkedModel, "--overwrite")),
  pooling: ragtune(createArgs(linkedPoolingModel, "--overwrite")),
  prepare: ragtune(["prepare", pairs, "--test-size", "0.25", "--out", prepOut]),
  onnx: ragtune(["export-onnx", "--model", onnxModel]),
  onnxFolder: ragtune(["export-onnx", "--model", onnxFolderModel]),
  existing: ragtune(createArgs(existing)),
  fresh: ragtune(createArgs(join(work, "fresh"))),
};
for (const p of Object.values(runs)) p.catch(() => {});

describe("planted links at output paths are replaced, never written through", () => {
  test("create-model --out: every file of the model folder", async () => {
    assertExit(await runs.model, 0);
    assert.ok(modelLinks.size >= 9, `links planted: ${[...modelLinks.keys()].join(", ")}`);
    assertUntouched(modelLinks, linkedModel);
    assert.ok(JSON.parse(readFileSync(join(linkedModel, "config.json"), "utf8")).hidden_size === 16);
  });

  test("create-model --out: a linked module folder is refused", async () => {
    const r = await runs.pooling;
    assertExit(r, 1);
    assert.match(r.stderr, /1_Pooling is a symbolic link; ragtune does not write through links/);
    assert.deepEqual(readdirSync(poolingTarget), []);
  });

  test("prepare --out: train.jsonl, test.jsonl, report.json", async () => {
    assertExit(await runs.prepare, 0);
    assertUntouched(prepLinks, prepOut);
    assert.equal(readFileSync(join(prepOut, "train.jsonl"), "utf8").split("\n").filter(Boolean).length, 15);
  });

  test("export-onnx: onnx/model.onnx and model_quantized.onnx, and a linked onnx/ folder is refused", async () => {
    assertExit(await runs.onnx, 0);
    assertUntouched(onnxLinks, onnxModel);
    const r = await runs.onnxFolder;
    assertExit(r, 1);
    assert.match(r.stderr, /onnx is a symbolic link/);
    assert.deepEqual(readdirSync(onnxTarget), []);
  });
});

describe("create-model --out onto an existing model", () => {
  test("is refused without --overwrite, and the model is left as it was", async () => {
    const r = await runs.existing;
    assertExit(r, 2);
    assert.match(r.stderr, /--out .*existing already holds files \(.*config\.json.*\); pass --overwrite/);
    assert.equal(readFileSync(join(existing, "config.json"), "utf8"), existingConfig);
    assertExit(await runs.fresh, 0); // a new folder needs no flag
  });
});
