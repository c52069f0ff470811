// BertConfig: config.json parsing, presets and errors that name the file and the key.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { BertConfig, BertConfigError } from "../../src/models/bert.ts";

/** config.json of BAAI/bge-base-en-v1.5 as published on the Hub. */
const BGE_BASE_JSON = {
  _name_or_path: "/root/.cache/torch/sentence_transformers/BAAI_bge-base-en/",
  architectures: ["BertModel"],
  attention_probs_dropout_prob: 0.1,
  classifier_dropout: null,
  gradient_checkpointing: false,
  hidden_act: "gelu",
  hidden_dropout_prob: 0.1,
  hidden_size: 768,
  id2label: { "0": "LABEL_0" },
  initializer_range: 0.02,
  intermediate_size: 3072,
  label2id: { LABEL_0: 0 },
  layer_norm_eps: 1e-12,
  max_position_embeddings: 512,
  model_type: "bert",
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 0,
  position_embedding_type: "absolute",
  torch_dtype: "float32",
  transformers_version: "4.30.0",
  type_vocab_size: 2,
  use_cache: true,
  vocab_size: 30522,
};

/** config.json of sentence-transformers/all-MiniLM-L6-v2. */
const MINILM_JSON = {
  ...BGE_BASE_JSON,
  hidden_size: 384,
  intermediate_size: 1536,
  num_hidden_layers: 6,
};

const dir = mkdtempSync(join(tmpdir(), "ragtune-bert-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const expectError = (json: unknown, key: string | undefined, pattern: RegExp) =>
  assert.throws(
    () => BertConfig.fromJson(json),
    (e: unknown) =>
      e instanceof BertConfigError &&
      e.key === key &&
      e.message.startsWith("config.json: ") &&
      pattern.test(e.message),
  );

describe("BertConfig", () => {
  test("bge-base's config.json is the default; MiniLM's is the miniLmL6 preset", () => {
    assert.deepEqual(BertConfig.fromJson(BGE_BASE_JSON), BertConfig.bgeBase);
    assert.deepEqual(BertConfig.fromJson(MINILM_JSON), BertConfig.miniLmL6);
    assert.equal(BertConfig.miniLmL6.hiddenSize, 384);
    assert.equal(BertConfig.miniLmL6.numHiddenLayers, 6);
  });

  test("optional keys default to HF's BertConfig values", () => {
    const cfg = BertConfig.fromJson({
      vocab_size: 100,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 40,
    });
    assert.equal(cfg.hiddenAct, "gelu");
    assert.equal(cfg.layerNormEps, 1e-12);
    assert.equal(cfg.typeVocabSize, 2);
    assert.equal(cfg.padTokenId, 0);
    assert.equal(cfg.positionEmbeddingType, "absolute");
  });

  test("a missing shape key is an error naming config.json and the key", () => {
    const { hidden_size: _drop, ...rest } = BGE_BASE_JSON;
    expectError(rest, "hidden_size", /^config\.json: "hidden_size" is missing$/);
  });

  test("invalid values are errors naming the key", () => {
    expectError(
      { ...BGE_BASE_JSON, num_hidden_layers: "12" },
      "num_hidden_layers",
      /positive integer, got "12"/,
    );
    expectError({ ...BGE_BASE_JSON, vocab_size: 0 }, "vocab_size", /positive integer/);
    expectError({ ...BGE_BASE_JSON, hidden_act: "swish" }, "hidden_act", /one of gelu, gelu_new/);
    expectError({ ...BGE_BASE_JSON, hidden_dropout_prob: 1.5 }, "hidden_dropout_prob", /\[0, 1\)/);
    expectError({ ...BGE_BASE_JSON, layer_norm_eps: 0 }, "layer_norm_eps", /positive number/);
    expectError({ ...BGE_BASE_JSON, pad_token_id: 30522 }, "pad_token_id", /\[0, vocab_size=30522\)/);
    expectError(
      { ...BGE_BASE_JSON, num_attention_heads: 7 },
      "hidden_size",
      /not a multiple of "num_attention_heads" \(7\)/,
    );
    expectError(
      { ...BGE_BASE_JSON, position_embedding_type: "relative_key" },
      "position_embedding_type",
      /must be "absolute"/,
    );
    expectError({ ...BGE_BASE_JSON, model_type: "xlm-roberta" }, "model_type", /not a BERT model/);
    expectError([1, 2], undefined, /expected a JSON object/);
  });

  test("pad_token_id may be null (no padding row)", () => {
    assert.equal(BertConfig.fromJson({ ...BGE_BASE_JSON, pad_token_id: null }).padTokenId, null);
  });

  test("load() names the file; toJson() round-trips through fromJson()", () => {
    const path = join(dir, "config.json");
    writeFileSync(path, "{ not json");
    assert.throws(
      () => BertConfig.load(path),
      (e: unknown) => e instanceof BertConfigError && e.message.startsWith(path),
    );
    const json = BertConfig.toJson(BertConfig.miniLmL6);
    assert.equal(json.model_type, "bert");
    assert.equal(json.hidden_size, 384);
    writeFileSync(path, JSON.stringify(json));
    assert.deepEqual(BertConfig.load(path), BertConfig.miniLmL6);
  });

  test("with() overrides bge-base and validates", () => {
    assert.equal(BertConfig.with({ numHiddenLayers: 3 }).numHiddenLayers, 3);
    assert.throws(
      () => BertConfig.with({ hiddenSize: 100 }),
      /BertConfig: "hidden_size" \(100\) is not a multiple/,
    );
  });
});
