// MPNet: golden parity with test/fixtures/mpnet (make_mpnet_golden.py: a port of transformers' MPNetModel run with
// torch 1.13, or transformers itself; golden.json's "about" says which), the relative position buckets, config
// parsing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { arange, tidy } from "../../src/engine/index.ts";
import { MpnetConfig, MpnetModel, relativePositionBucket } from "../../src/models/mpnet.ts";
import { safetensorsSource } from "../../src/models/weights.ts";
import { encoderParityTests, readGolden } from "./encoder-golden.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/mpnet/", import.meta.url));
const config = MpnetConfig.load(join(FIXTURE, "config.json"));

function loadFixture(): MpnetModel {
  const source = safetensorsSource(FIXTURE);
  try {
    const { model, unusedKeys } = MpnetModel.load(source, config);
    assert.deepEqual(unusedKeys, []);
    return model;
  } finally {
    source.close();
  }
}

describe("MPNet golden parity (tiny model)", () => {
  encoderParityTests({
    name: "mpnet",
    golden: readGolden(FIXTURE),
    load: loadFixture,
    fromPretrained: (dir) => MpnetModel.fromPretrained(dir).model,
    padRows: [
      ["embeddings.word_embeddings.weight", 1],
      ["embeddings.position_embeddings.weight", 1],
    ],
  });
});

describe("MPNet relative positions and config", () => {
  test("relative_position_bucket of key − query in -130..130 equals HF's (torch 1.13 run of modeling_mpnet.py)", () => {
    // Runs of [bucket, count] from rel = -130 upwards, printed by make_mpnet_golden.py's relative_position_bucket.
    const runs = [
      [15, 40],
      [14, 27],
      [13, 18],
      [12, 14],
      [11, 9],
      [10, 7],
      [9, 4],
      [8, 4],
      [7, 1],
      [6, 1],
      [5, 1],
      [4, 1],
      [3, 1],
      [2, 1],
      [1, 1],
      [0, 1],
      [17, 1],
      [18, 1],
      [19, 1],
      [20, 1],
      [21, 1],
      [22, 1],
      [23, 1],
      [24, 4],
      [25, 4],
      [26, 7],
      [27, 9],
      [28, 14],
      [29, 18],
      [30, 27],
      [31, 40],
    ];
    const want = runs.flatMap(([b, n]) => Array<number>(n!).fill(b!));
    tidy(() => assert.deepEqual(relativePositionBucket(arange(-130, 131)).toNumbers(), want));
  });

  test("config.json parses; no token types; 32 buckets", () => {
    assert.equal(config.modelType, "mpnet");
    assert.equal(config.relativeAttentionNumBuckets, 32);
    const json = MpnetConfig.toJson(config);
    assert.equal(json.model_type, "mpnet");
    assert.equal("type_vocab_size" in json, false);
    assert.equal(json.relative_attention_num_buckets, 32);
  });

  test("bad configs name the key", () => {
    const full = {
      model_type: "mpnet",
      vocab_size: 10,
      hidden_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 16,
      max_position_embeddings: 12,
    };
    assert.throws(
      () => MpnetConfig.fromJson({ ...full, relative_attention_num_buckets: 16 }),
      /relative_attention_num_buckets/,
    );
    assert.throws(() => MpnetConfig.fromJson({ ...full, model_type: "bert" }), /"model_type"/);
    assert.throws(() => MpnetConfig.fromJson({ ...full, hidden_size: 7 }), /hidden_size/);
  });
});
