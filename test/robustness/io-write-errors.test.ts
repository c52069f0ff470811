// Write errors (issue #10 item 10, writers): a full disk (ENOSPC, simulated by failing fs.writeSync) or a path
// that cannot be replaced stops the writer with a message naming the file, and leaves no temporary file beside it.
// Before, prepare's ENOSPC named no file and the writers had three temp-name schemes of their own.
import assert from "node:assert/strict";
import fs, { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { describe, test } from "node:test";

import { prepareDataset } from "../../src/data/index.ts";
import { exportOnnx } from "../../src/export/onnx.ts";
import { writeSafetensors } from "../../src/models/safetensors.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB, freshDir, tinyModelDir } from "../helpers/tiny-model.ts";

/** Runs `fn` (sync or async) with every fs.writeSync failing as a full disk does. */
function withFullDisk<T>(fn: () => T): T {
  const original = fs.writeSync;
  const restore = () => {
    fs.writeSync = original;
    syncBuiltinESMExports();
  };
  fs.writeSync = (() => {
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28 });
  }) as typeof fs.writeSync;
  syncBuiltinESMExports(); // the named `writeSync` imports of the writers see the replacement
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const noTemps = (dir: string) =>
  assert.deepEqual(
    readdirSync(dir, { recursive: true }).filter((f) => String(f).includes(".tmp")),
    [],
    `temporary files left in ${dir}`,
  );
const enospc = (file: string) =>
  new RegExp(`cannot write ${escape(file)}: no space left on the device \\(ENOSPC\\)`);

describe("a full disk: the error names the file, no temporary is left", () => {
  test("prepare (train.jsonl)", async () => {
    const dir = freshDir("enospc-prepare");
    const input = join(dir, "pairs.jsonl");
    writeFileSync(input, '{"anchor":"a","positive":"b"}\n{"anchor":"c","positive":"d"}\n');
    const out = join(dir, "out");
    await assert.rejects(
      withFullDisk(() =>
        prepareDataset({
          input,
          columns: { anchor: "anchor", positive: "positive" },
          testSize: 1,
          outDir: out,
        }),
      ),
      enospc(join(out, "train.jsonl")),
    );
    noTemps(out);
  });

  test("safetensors, the tokenizer, the model folder, ONNX", () => {
    const dir = freshDir("enospc-writers");
    const st = join(dir, "w.safetensors");
    assert.throws(
      () =>
        withFullDisk(() =>
          writeSafetensors(st, [{ name: "w", dtype: "F32", shape: [2], data: new Uint8Array(8) }]),
        ),
      enospc(st),
    );
    const tokDir = join(dir, "tok");
    const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });
    assert.throws(() => withFullDisk(() => tokenizer.save(tokDir)), enospc(join(tokDir, "tokenizer.json")));
    const model = SentenceTransformer.fromDir(tinyModelDir());
    try {
      const modelDir = join(dir, "model");
      assert.throws(() => withFullDisk(() => model.save(modelDir)), enospc(join(modelDir, "config.json")));
      const onnxDir = join(dir, "onnx-model");
      mkdirSync(onnxDir);
      assert.throws(
        () => withFullDisk(() => exportOnnx(model, onnxDir)),
        enospc(join(onnxDir, "onnx", "model.onnx")),
      );
    } finally {
      model.dispose();
    }
    noTemps(dir);
  });
});

describe("an output path that cannot be replaced", () => {
  test("prepare: a folder at test.jsonl's path is named in the error", async () => {
    const dir = freshDir("eisdir");
    const input = join(dir, "pairs.jsonl");
    writeFileSync(input, '{"anchor":"a","positive":"b"}\n{"anchor":"c","positive":"d"}\n');
    const out = join(dir, "out");
    mkdirSync(join(out, "test.jsonl", "inside"), { recursive: true });
    await assert.rejects(
      prepareDataset({
        input,
        columns: { anchor: "anchor", positive: "positive" },
        testSize: 1,
        outDir: out,
      }),
      new RegExp(`cannot write ${escape(join(out, "test.jsonl"))}: `),
    );
    noTemps(out);
  });
});
