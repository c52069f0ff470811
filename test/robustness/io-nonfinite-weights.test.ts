// NaN / ±Inf weights in a loaded safetensors file are refused at load, naming the file and the tensor (issue #10
// item 6, loading part). Before, they loaded silently and `encode` printed `[null, …]` with exit 0.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";

import { tensor } from "../../src/engine/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { loadSafetensors, saveSafetensors } from "../../src/models/weights.ts";
import { tinyModelCopy } from "../helpers/tiny-model.ts";

/** A copy of the tiny model whose tensor `key` has `value` at element 5 (stored as `dtype`). */
function poisoned(value: number, dtype: "float32" | "bfloat16"): { dir: string; key: string } {
  const dir = tinyModelCopy();
  const file = join(dir, "model.safetensors");
  const tensors = loadSafetensors(file);
  const key = [...tensors.keys()].find((k) => k.endsWith("attention.self.query.weight"))!;
  const t = tensors.get(key)!;
  const data = t.toArray() as Float32Array;
  data[5] = value;
  tensors.set(key, tensor(data, { shape: t.shape }).to(dtype));
  t.dispose();
  saveSafetensors(file, tensors);
  for (const x of tensors.values()) x.dispose();
  return { dir, key };
}

describe("non-finite weights are refused at load", () => {
  for (const [value, dtype] of [
    [Number.NaN, "float32"],
    [Number.POSITIVE_INFINITY, "float32"],
    [Number.NEGATIVE_INFINITY, "bfloat16"],
  ] as const) {
    test(`${value} in a ${dtype} tensor: the error names the file and the tensor`, () => {
      const { dir, key } = poisoned(value, dtype);
      const where = new RegExp(
        `model\\.safetensors.*${key.replaceAll(".", "\\.")}.*1 non-finite value \\(NaN or ±Inf\\) of \\d+`,
      );
      assert.throws(() => SentenceTransformer.fromDir(dir), where);
      assert.throws(() => loadSafetensors(join(dir, "model.safetensors")), where);
    });
  }

  test("finite weights load as before (large finite values included)", () => {
    const { dir } = poisoned(3e38, "float32");
    SentenceTransformer.fromDir(dir).dispose();
  });
});
