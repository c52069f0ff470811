// ONNX export of XLM-RoBERTa (src/export/onnx.ts with the position ids of create_position_ids_from_input_ids as
// ONNX ops), checked with onnxruntime-web on the golden tiny XLM-R folder: last_hidden_state of a padded batch
// equals ragtune's. MPNet and ModernBERT are refused with a clear error.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as ort from "onnxruntime-web";

import { noGrad, tensor, tidy } from "../../src/engine/index.ts";
import { exportOnnx, ONNX_OUTPUT } from "../../src/export/onnx.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-onnx-encoders-"));
after(() => rmSync(work, { recursive: true, force: true }));

describe("ONNX export of the other encoders", () => {
  test("XLM-RoBERTa: onnxruntime's last_hidden_state equals ragtune's within 1e-5 (padded batch)", async () => {
    const model = SentenceTransformer.fromDir(join(FIXTURES, "xlm-roberta", "st"));
    const r = exportOnnx(model, work);
    assert.deepEqual(r.transformersJs, { pooling: "mean", normalize: true });
    const enc = model.tokenizer.encodeBatch(["Hello world", "Привет мир", "日本語のテキスト Hello, world."], {
      maxLength: 32,
    });
    const shape = [enc.batchSize, enc.seqLen];
    const session = await ort.InferenceSession.create(readFileSync(join(work, "onnx", "model.onnx")), {
      executionProviders: ["wasm"],
    });
    const t = (xs: BigInt64Array) => new ort.Tensor("int64", xs, shape);
    const out = await session.run({
      input_ids: t(enc.inputIds),
      attention_mask: t(enc.attentionMask),
      token_type_ids: t(enc.tokenTypeIds),
    });
    const got = out[ONNX_OUTPUT]!.data as Float32Array;
    const want = noGrad(() =>
      tidy(
        () =>
          model.encoder
            .forward({
              inputIds: tensor(enc.inputIds, { shape }),
              attentionMask: tensor(enc.attentionMask, { shape }),
              tokenTypeIds: tensor(enc.tokenTypeIds, { shape }),
            })
            .contiguous()
            .toArray() as Float32Array,
      ),
    );
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i]! - want[i]!));
    console.log(`xlm-roberta onnx vs ragtune last_hidden_state: maxdiff ${d.toExponential(2)}`);
    assert.ok(d <= 1e-5, `maxdiff ${d}`);
    model.dispose();
  });

  for (const arch of ["mpnet", "modernbert"])
    test(`${arch}: export is refused with the reason`, () => {
      const model = SentenceTransformer.fromDir(join(FIXTURES, arch, "st"));
      assert.throws(() => exportOnnx(model, work), /ONNX export supports BERT and XLM-RoBERTa encoders, not/);
      model.dispose();
    });
});
