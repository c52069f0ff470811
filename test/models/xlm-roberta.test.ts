// XLM-RoBERTa: golden parity with test/fixtures/xlm-roberta (make_xlmr_golden.py: a port of transformers'
// XLMRobertaModel run with torch 1.13, or transformers itself; golden.json's "about" says which), config
// parsing, position ids from padding.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { tensor, tidy } from "../../src/engine/index.ts";
import { BertConfigError } from "../../src/models/bert.ts";
import { createPositionIdsFromInputIds } from "../../src/models/encoder-common.ts";
import { XlmRobertaConfig, XlmRobertaModel } from "../../src/models/xlm-roberta.ts";
import { safetensorsSource } from "../../src/models/weights.ts";
import { encoderParityTests, readGolden } from "./encoder-golden.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/xlm-roberta/", import.meta.url));
const config = XlmRobertaConfig.load(join(FIXTURE, "config.json"));

function loadFixture(): XlmRobertaModel {
  const source = safetensorsSource(FIXTURE);
  try {
    const { model, unusedKeys } = XlmRobertaModel.load(source, config);
    assert.deepEqual(unusedKeys, []);
    return model;
  } finally {
    source.close();
  }
}

describe("XLM-RoBERTa golden parity (tiny model)", () => {
  encoderParityTests({
    name: "xlm-roberta",
    golden: readGolden(FIXTURE),
    load: loadFixture,
    fromPretrained: (dir) => XlmRobertaModel.fromPretrained(dir).model,
    padRows: [
      ["embeddings.word_embeddings.weight", 1],
      ["embeddings.position_embeddings.weight", 1],
    ],
  });
});

describe("XLM-RoBERTa config and positions", () => {
  test("config.json parses; type_vocab_size 1, pad 1", () => {
    assert.equal(config.modelType, "xlm-roberta");
    assert.equal(config.typeVocabSize, 1);
    assert.equal(config.padTokenId, 1);
    assert.equal(config.layerNormEps, 1e-5);
  });

  test("position ids count real tokens from padding_idx + 1; padding keeps padding_idx", () => {
    tidy(() => {
      const ids = tensor(
        [
          [0, 7, 9, 2, 1, 1],
          [0, 2, 1, 1, 1, 1],
        ],
        { dtype: "int64" },
      );
      assert.deepEqual(
        createPositionIdsFromInputIds(ids, 1).toNumbers(),
        [2, 3, 4, 5, 1, 1, 2, 3, 1, 1, 1, 1],
      );
    });
  });

  test("bad configs name the key; wrong model_type is refused", () => {
    const base = { vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2 };
    const full = { ...base, intermediate_size: 16, max_position_embeddings: 12, model_type: "xlm-roberta" };
    assert.throws(() => XlmRobertaConfig.fromJson({ ...full, model_type: "bert" }, "c.json"), /"model_type"/);
    assert.throws(
      () => XlmRobertaConfig.fromJson({ ...full, max_position_embeddings: 2 }, "c.json"),
      (e: Error) => e instanceof BertConfigError && /max_position_embeddings/.test(e.message),
    );
    assert.throws(() => XlmRobertaConfig.fromJson(base, "c.json"), /intermediate_size" is missing/);
    assert.equal(XlmRobertaConfig.fromJson({ ...full, pad_token_id: undefined }).padTokenId, 1);
  });

  test("sequences longer than max_position_embeddings - padding_idx - 1 are refused", () => {
    const model = XlmRobertaModel.init(XlmRobertaConfig.with({ ...config }));
    assert.equal(model.maxSequenceLength, 38);
    tidy(() => {
      const ids = tensor([Array.from({ length: 39 }, () => 5)], { dtype: "int64" });
      assert.throws(() => model.forward({ inputIds: ids }), /exceeds the model's maximum 38/);
    });
    model.dispose();
  });
});
