// USE-lite's ONNX graph through the CLI (`node bin/ragtune.mjs` in child processes): `export-onnx --model DIR`
// on a saved USE-lite folder (it refused with "ONNX export supports BERT and XLM-RoBERTa encoders" before), and
// `train --model use-lite` writing onnx/model.onnx into the fine-tuned folder (it printed "note: no
// onnx/model.onnx" before) unless --no-onnx. The trained folder's graph, run in onnxruntime-web with ids from
// the USE package's Tokenizer, reproduces the folder's encode().
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Tokenizer as UseTokenizer } from "@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js";
import * as ort from "onnxruntime-web";

import { setNumThreads } from "../../src/engine/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { UseLite } from "../../src/models/use-lite.ts";
import { freshDir } from "../helpers/tiny-model.ts";
import { ragtune as runCli, type CliRun as Run } from "../helpers/run-cli.ts";

setNumThreads(1);
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const ragtune = (args: string[]) => runCli(args, { threads: "preload" });

function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

const work = freshDir("use-lite-onnx-cli");
const baseDir = join(work, "base");
const base = SentenceTransformer.fromUseLite(UseLite.fromNpm());
base.save(baseDir);
base.dispose();
const trainFile = join(work, "train.jsonl");
writeFileSync(
  trainFile,
  readFileSync(fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url)), "utf8")
    .trim()
    .split("\n")
    .slice(0, 16)
    .join("\n") + "\n",
);
const trainArgs = (out: string) => [
  ...["train", "--model", "use-lite", "--train", trainFile, "--out", out],
  ...["--max-steps", "2", "--batch-size", "8", "--learning-rate", "1e-3", "--eval-strategy", "no"],
  ...["--save-strategy", "no", "--matryoshka-dims", "512", "--device", "cpu"],
];
const trainedRun = join(work, "trained");
const trained = join(trainedRun, "final"); // the run folder keeps checkpoints and logs, final/ the model
const noOnnx = join(work, "no-onnx");
const runs = {
  exportOnnx: ragtune(["export-onnx", "--model", baseDir, "--opset", "14"]),
  train: ragtune(trainArgs(trainedRun)),
  trainNoOnnx: ragtune([...trainArgs(noOnnx), "--no-onnx"]),
};
for (const p of Object.values(runs)) p.catch(() => {});

describe("USE-lite ONNX through the CLI", () => {
  test("export-onnx adds onnx/model.onnx to a USE-lite folder and names the graph's I/O", async () => {
    const r = await runs.exportOnnx;
    assertExit(r, 0);
    assert.ok(existsSync(join(baseDir, "onnx", "model.onnx")));
    assert.match(r.stderr, /opset 14/);
    assert.match(
      r.stderr,
      /inputs input_ids, attention_mask \(int64 \[batch, seq\]\), output sentence_embedding/,
    );
  });

  test("train writes onnx/model.onnx into the fine-tuned USE-lite folder; it reproduces encode()", async () => {
    const r = await runs.train;
    assertExit(r, 0);
    assert.doesNotMatch(r.stderr, /no onnx/);
    assert.match(r.stderr, /model\.onnx \([\d.]+ MB\) for onnxruntime/);
    const file = join(trained, "onnx", "model.onnx");
    assert.ok(existsSync(file), `${file} is missing`);

    const texts = ["What was the total revenue in 2023?", "", "net income"];
    const model = SentenceTransformer.fromDir(trained);
    const expected = model.encode(texts).data;
    model.dispose();
    const tokenizer = new UseTokenizer(JSON.parse(readFileSync(join(trained, "vocab.json"), "utf8")));
    const rows = texts.map((t) => tokenizer.encode(t));
    const seq = Math.max(1, ...rows.map((x) => x.length));
    const ids = new BigInt64Array(rows.length * seq);
    const mask = new BigInt64Array(rows.length * seq);
    rows.forEach((row, i) =>
      row.forEach((id, j) => {
        ids[i * seq + j] = BigInt(id);
        mask[i * seq + j] = 1n;
      }),
    );
    const session = await ort.InferenceSession.create(readFileSync(file), { executionProviders: ["wasm"] });
    const out = await session.run({
      input_ids: new ort.Tensor("int64", ids, [rows.length, seq]),
      attention_mask: new ort.Tensor("int64", mask, [rows.length, seq]),
    });
    const got = out.sentence_embedding!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i]! - expected[i]!));
    console.log(`maxdiff trained folder onnx vs encode: ${d.toExponential(2)}`);
    assert.ok(d <= 1e-5, `maxdiff ${d}`);
    await session.release();
  });

  test("train --no-onnx writes no ONNX file", async () => {
    const r = await runs.trainNoOnnx;
    assertExit(r, 0);
    assert.ok(existsSync(join(noOnnx, "final")), "no final/ model folder");
    assert.ok(!existsSync(join(noOnnx, "final", "onnx")), "onnx/ was written despite --no-onnx");
  });
});
