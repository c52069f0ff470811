// ModernBERT: golden parity with test/fixtures/modernbert (make_modernbert_golden.py: a port of transformers'
// ModernBertModel run with torch 1.13, or transformers itself; golden.json's "about" says which): three layers
// (global, local, local) with a 4-token window that cuts real tokens off; config parsing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { tensor, tidy } from "../../src/engine/index.ts";
import { ModernBertConfig, ModernBertModel } from "../../src/models/modernbert.ts";
import { safetensorsSource } from "../../src/models/weights.ts";
import { encoderParityTests, readGolden } from "./encoder-golden.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/modernbert/", import.meta.url));
const config = ModernBertConfig.load(join(FIXTURE, "config.json"));

function loadFixture(): ModernBertModel {
  const source = safetensorsSource(FIXTURE);
  try {
    const { model, unusedKeys } = ModernBertModel.load(source, config);
    assert.deepEqual(unusedKeys, []);
    return model;
  } finally {
    source.close();
  }
}

describe("ModernBERT golden parity (tiny model)", () => {
  encoderParityTests({
    name: "modernbert",
    golden: readGolden(FIXTURE),
    load: loadFixture,
    fromPretrained: (dir) => ModernBertModel.fromPretrained(dir).model,
    padRows: [["embeddings.tok_embeddings.weight", 272]],
  });
});

describe("ModernBERT config and masks", () => {
  test("config.json parses: bias-free norms, layers global / local / local", () => {
    assert.equal(config.normBias, false);
    assert.equal(config.localAttention, 4);
    const model = ModernBertModel.init(config);
    assert.deepEqual(
      model.layers.map((l) => l.attn.isGlobal),
      [true, false, false],
    );
    assert.equal(model.layers[0]!.attnNorm, null);
    assert.ok(!model.namedParameters().some(([n]) => n.endsWith(".bias")), "no bias parameters");
    model.dispose();
  });

  test("the sliding-window mask keeps |query − key| <= local_attention / 2 and the padding mask", () => {
    const model = ModernBertModel.init(config);
    tidy(() => {
      const { global, sliding } = model.attentionMasks(tensor([[1, 1, 1, 1, 1, 0]], { dtype: "int64" }), 6);
      const kept = (t: typeof global) => t.toNumbers().map((v) => (v === 0 ? 1 : 0));
      assert.deepEqual(
        kept(global),
        Array.from({ length: 36 }, (_, i) => (i % 6 < 5 ? 1 : 0)),
      );
      assert.deepEqual(
        kept(sliding),
        Array.from({ length: 36 }, (_, i) =>
          i % 6 < 5 && Math.abs((i % 6) - Math.floor(i / 6)) <= 2 ? 1 : 0,
        ),
      );
    });
    model.dispose();
  });

  test("rope_parameters override the RoPE bases; bad values name the key", () => {
    const base = JSON.parse(JSON.stringify({ ...ModernBertConfig.toJson(config) })) as Record<
      string,
      unknown
    >;
    const c = ModernBertConfig.fromJson({
      ...base,
      rope_parameters: {
        full_attention: { rope_type: "default", rope_theta: 1000 },
        sliding_attention: { rope_theta: 10 },
      },
    });
    assert.deepEqual([c.globalRopeTheta, c.localRopeTheta], [1000, 10]);
    assert.throws(() => ModernBertConfig.fromJson({ ...base, local_attention: 0 }), /"local_attention"/);
    const layerTypes = ["full_attention", "sliding_attention", "sliding_attention"];
    assert.equal(ModernBertConfig.fromJson({ ...base, layer_types: layerTypes }).numHiddenLayers, 3);
    assert.throws(
      () =>
        ModernBertConfig.fromJson({
          ...base,
          layer_types: ["full_attention", "full_attention", "sliding_attention"],
        }),
      /"layer_types" must follow global_attn_every_n_layers/,
    );
    assert.throws(() => ModernBertConfig.fromJson({ ...base, hidden_size: 36 }), /"hidden_size"/);
    assert.throws(
      () =>
        ModernBertConfig.fromJson({ ...base, rope_parameters: { full_attention: { rope_type: "yarn" } } }),
      /only the default RoPE/,
    );
  });
});
