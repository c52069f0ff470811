// Golden parity of ragtune's BertModel against a PyTorch port of transformers' BertModel (eager attention):
// test/fixtures/bert/make_bert_golden.py made config.json, model.safetensors and golden.json with torch 1.13.
// Each parity test prints its maxdiff.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";

import { liveTensors, noGrad, tensor, tidy, type DType, type Tensor } from "../../src/engine/index.ts";
import { WeightError } from "../../src/nn/index.ts";
import { BertConfig, BertModel, getExtendedAttentionMask } from "../../src/models/bert.ts";
import { loadSafetensors, saveSafetensors, safetensorsSource } from "../../src/models/weights.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/bert/", import.meta.url));
const WEIGHTS = join(FIXTURE, "model.safetensors");

interface Dumped {
  shape: number[];
  data: number[];
}
interface Golden {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  embedding_output: Dumped;
  last_hidden_state: Dumped;
  last_hidden_state_f64: Dumped;
  pair: { token_type_ids: number[][]; last_hidden_state: Dumped };
  loss_weights: Dumped;
  loss: number;
  grads: Record<string, Dumped>;
  grad_norms: Record<string, number>;
}

const golden = JSON.parse(readFileSync(join(FIXTURE, "golden.json"), "utf8")) as Golden;
const config = BertConfig.load(join(FIXTURE, "config.json"));
const work = mkdtempSync(join(tmpdir(), "ragtune-bert-"));
after(() => rmSync(work, { recursive: true, force: true }));

const ids = (rows: number[][]) => tensor(rows, { dtype: "int64" });
const inputs = () => ({
  inputIds: ids(golden.input_ids),
  attentionMask: ids(golden.attention_mask),
  tokenTypeIds: ids(golden.token_type_ids),
});

/** Max |a − b| over the (B, L, H) positions whose mask is `keep` (1 = real token, 0 = padding). */
function maxDiff(t: Tensor, want: Dumped, keep?: 0 | 1): number {
  assert.deepEqual(t.shape, want.shape);
  const got = t.toNumbers();
  const [, l = 1, h = 1] = want.shape;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const b = Math.floor(i / (l * h));
    const pos = Math.floor(i / h) % l;
    if (keep !== undefined && golden.attention_mask[b]?.[pos] !== keep) continue;
    m = Math.max(m, Math.abs((got[i] ?? NaN) - (want.data[i] ?? NaN)));
  }
  return m;
}

function loadFixture(dtype: DType = "float32"): BertModel {
  const weights = loadSafetensors(WEIGHTS);
  try {
    const { model, unusedKeys } = BertModel.load(weights, config, { dtype });
    // The pooler is kept (and saved back) rather than reported: nothing else is left over.
    assert.deepEqual(unusedKeys, []);
    return model;
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

describe("BertModel golden parity (tiny BERT, torch 1.13)", () => {
  test("config.json parses to the tiny config", () => {
    assert.equal(config.hiddenSize, 32);
    assert.equal(config.numHiddenLayers, 2);
    assert.equal(config.numAttentionHeads, 4);
    assert.equal(config.padTokenId, 0);
  });

  test("float32 eval forward matches HF within 1e-5 (tokens and padding positions)", () => {
    const model = loadFixture();
    tidy(() =>
      noGrad(() => {
        const x = inputs();
        const emb = model.embeddings.forward(x.inputIds, x.tokenTypeIds);
        const embDiff = maxDiff(emb, golden.embedding_output);
        const out = model.forward(x);
        const tokens = maxDiff(out, golden.last_hidden_state, 1);
        const padding = maxDiff(out, golden.last_hidden_state, 0);
        console.log(
          `maxdiff embedding_output ${embDiff.toExponential(2)} | last_hidden_state tokens ` +
            `${tokens.toExponential(2)} padding ${padding.toExponential(2)}`,
        );
        assert.ok(embDiff <= 1e-5, `embedding_output maxdiff ${embDiff}`);
        assert.ok(tokens <= 1e-5, `last_hidden_state maxdiff ${tokens}`);
        assert.ok(padding <= 1e-5, `padding positions maxdiff ${padding}`);
      }),
    );
    model.dispose();
  });

  test("token_type_ids of a sentence pair match HF within 1e-5", () => {
    const model = loadFixture();
    tidy(() =>
      noGrad(() => {
        const out = model.forward({ ...inputs(), tokenTypeIds: ids(golden.pair.token_type_ids) });
        const d = maxDiff(out, golden.pair.last_hidden_state);
        console.log(`maxdiff pair last_hidden_state ${d.toExponential(2)}`);
        assert.ok(d <= 1e-5, `maxdiff ${d}`);
      }),
    );
    model.dispose();
  });

  test("float64 forward matches HF's float64 run within 1e-12", () => {
    const model = loadFixture("float64");
    assert.equal(model.dtype, "float64");
    tidy(() =>
      noGrad(() => {
        const out = model.forward(inputs());
        assert.equal(out.dtype, "float64");
        const d = maxDiff(out, golden.last_hidden_state_f64);
        console.log(`maxdiff float64 last_hidden_state ${d.toExponential(2)}`);
        assert.ok(d <= 1e-12, `maxdiff ${d}`);
      }),
    );
    model.dispose();
  });

  test("gradients of sum(last_hidden_state * W) match HF within 1e-5", () => {
    const model = loadFixture();
    tidy(() => {
      const w = tensor(golden.loss_weights.data, { shape: golden.loss_weights.shape });
      const loss = model.forward(inputs()).mul(w).sum();
      const lossDiff = Math.abs(loss.item() - golden.loss);
      loss.backward();
      const params = new Map(model.namedParameters());
      const lines: string[] = [`loss ${lossDiff.toExponential(2)}`];
      for (const [name, want] of Object.entries(golden.grads)) {
        const g = params.get(name)?.grad;
        assert.ok(g, `no gradient for ${name}`);
        const d = maxDiff(g, want);
        lines.push(`${name} ${d.toExponential(2)}`);
        assert.ok(d <= 1e-5, `${name}: grad maxdiff ${d}`);
      }
      // Padding token 0 is padding_idx: its row gets no gradient although padding positions enter the loss.
      const padRow = params.get("embeddings.word_embeddings.weight")?.grad?.select(0, 0);
      assert.deepEqual(new Set(padRow?.toNumbers()), new Set([0]));
      let worstNorm = 0;
      for (const [name, want] of Object.entries(golden.grad_norms)) {
        const g = params.get(name)?.grad;
        assert.ok(g, `no gradient for ${name}`);
        // key.bias's gradient is 0 in exact arithmetic (softmax ignores a shift), ~1e-8 float noise here.
        const diff = Math.abs(g.norm().item() - want);
        worstNorm = Math.max(worstNorm, diff);
        assert.ok(diff <= 1e-5 + 1e-5 * want, `${name}: grad norm ${g.norm().item()} vs ${want}`);
      }
      assert.equal(params.size, Object.keys(golden.grad_norms).length);
      console.log(
        `maxdiff grads: ${lines.join(" | ")} | grad norms of all ${params.size} parameters ${worstNorm.toExponential(2)}`,
      );
      assert.ok(lossDiff <= 1e-4 * Math.abs(golden.loss), `loss ${loss.item()} vs ${golden.loss}`);
    });
    model.dispose();
  });

  test("train mode applies dropout; eval mode is deterministic again", () => {
    const model = loadFixture();
    tidy(() =>
      noGrad(() => {
        const x = inputs();
        model.train();
        assert.ok(model.encoder.layer[1]?.output.dropout.training);
        const a = model.forward(x);
        const b = model.forward(x);
        assert.ok(maxDiff(a, golden.last_hidden_state, 1) > 1e-3, "train mode looks like eval mode");
        assert.ok(!a.allclose(b), "two dropout draws were equal");
        model.eval();
        assert.ok(!model.encoder.layer[1]?.output.dropout.training);
        assert.ok(maxDiff(model.forward(x), golden.last_hidden_state) <= 1e-5);
      }),
    );
    model.dispose();
  });
});

describe("BertModel loading and saving", () => {
  test("stateDict -> safetensors -> load gives bit-identical outputs; names have no bert. prefix", () => {
    const model = loadFixture();
    const path = join(work, "roundtrip.safetensors");
    tidy(() => saveSafetensors(path, model.stateDict()));
    const source = safetensorsSource(path);
    const { model: again, unusedKeys } = BertModel.load(source, config);
    source.close();
    assert.deepEqual(unusedKeys, []);
    assert.deepEqual(
      again.namedParameters().map(([n]) => n),
      model.namedParameters().map(([n]) => n),
    );
    tidy(() =>
      noGrad(() => {
        const a = model.forward(inputs()).toArray();
        const b = again.forward(inputs()).toArray();
        assert.deepEqual(b, a);
      }),
    );
    model.dispose();
    again.dispose();
  });

  test("savePretrained / fromPretrained round-trip the folder", () => {
    const model = loadFixture();
    model.savePretrained(work);
    // HF BertModel's pooler goes back into the file (transformers would report it missing otherwise), unchanged.
    const saved = loadSafetensors(join(work, "model.safetensors"));
    const original = loadSafetensors(WEIGHTS);
    for (const key of ["pooler.dense.weight", "pooler.dense.bias"]) {
      assert.deepEqual(saved.get(key)?.toArray(), original.get(key)?.toArray(), key);
    }
    for (const t of [...saved.values(), ...original.values()]) t.dispose();
    const { model: again, unusedKeys } = BertModel.fromPretrained(work);
    assert.deepEqual(unusedKeys, []);
    assert.deepEqual(again.config, model.config);
    tidy(() =>
      noGrad(() => assert.deepEqual(again.forward(inputs()).toArray(), model.forward(inputs()).toArray())),
    );
    model.dispose();
    again.dispose();
  });

  test("keys under bert. load; cls and position_ids are reported unused, the pooler is kept", () => {
    const plain = loadSafetensors(WEIGHTS);
    const prefixed = new Map<string, Tensor>([...plain].map(([k, t]) => [`bert.${k}`, t]));
    prefixed.set("bert.embeddings.position_ids", tensor([[0, 1, 2]], { dtype: "int64" }));
    prefixed.set("cls.predictions.bias", tensor([0, 0, 0]));
    const { model, unusedKeys } = BertModel.load(prefixed, config);
    assert.deepEqual(unusedKeys.sort(), ["bert.embeddings.position_ids", "cls.predictions.bias"]);
    assert.equal(model.namedParameters()[0]?.[0], "embeddings.word_embeddings.weight");
    tidy(() =>
      noGrad(() => assert.ok(maxDiff(model.forward(inputs()), golden.last_hidden_state, 1) <= 1e-5)),
    );
    // The source was borrowed: its tensors are still alive and not aliased by the model's parameters.
    const src = plain.get("encoder.layer.0.attention.self.query.weight");
    assert.ok(src && !src.isDisposed);
    noGrad(() => model.encoder.layer[0]?.attention.self.query.weight.zero_());
    assert.notEqual(src.abs().sum().item(), 0);
    model.dispose();
    for (const t of prefixed.values()) t.dispose();
  });

  test("a missing key is an error naming it", () => {
    const weights = loadSafetensors(WEIGHTS);
    weights.get("encoder.layer.1.intermediate.dense.bias")?.dispose();
    weights.delete("encoder.layer.1.intermediate.dense.bias");
    const before = liveTensors();
    assert.throws(
      () => BertModel.load(weights, config),
      (e: unknown) =>
        e instanceof WeightError &&
        e.key === "encoder.layer.1.intermediate.dense.bias" &&
        /missing weight "encoder\.layer\.1\.intermediate\.dense\.bias"/.test(e.message),
    );
    assert.equal(liveTensors(), before, "a failed load leaks no tensors");
    for (const t of weights.values()) t.dispose();
  });

  test("a shape mismatch is an error naming the key and both shapes", () => {
    const weights = loadSafetensors(WEIGHTS);
    const small = BertConfig.with({ ...config, intermediateSize: 48 });
    assert.throws(
      () => BertModel.load(weights, small),
      (e: unknown) =>
        e instanceof WeightError &&
        e.message.includes(`"encoder.layer.0.intermediate.dense.weight"`) &&
        e.message.includes("[64, 32]") &&
        e.message.includes("[48, 32]"),
    );
    for (const t of weights.values()) t.dispose();
  });

  test("loading into bfloat16 casts every parameter; the mask uses the dtype's min", () => {
    const model = loadFixture("bfloat16");
    assert.ok(model.parameters().every((p) => p.dtype === "bfloat16"));
    tidy(() =>
      noGrad(() => {
        const out = model.forward(inputs()).to("float32");
        const d = maxDiff(out, golden.last_hidden_state, 1);
        assert.ok(d < 0.2, `bfloat16 maxdiff ${d}`); // bf16 has 8 bits of mantissa
        const m = getExtendedAttentionMask(ids([[1, 0]]), "bfloat16")
          .to("float32")
          .toNumbers()
          .map((v) => v + 0); // (1 - 1) * min is -0
        assert.deepEqual(m, [0, -3.3895313892515355e38]);
      }),
    );
    model.dispose();
  });
});

describe("BertModel.init", () => {
  test("HF _init_weights: N(0, initializer_range), zero biases and padding row, LayerNorm (1, 0)", () => {
    const cfg = BertConfig.with({ ...config, initializerRange: 0.05 });
    const model = BertModel.init(cfg, { seed: 7 });
    const p = new Map(model.namedParameters());
    tidy(() => {
      const word = p.get("embeddings.word_embeddings.weight")!;
      assert.deepEqual(new Set(word.select(0, 0).toNumbers()), new Set([0]));
      const q = p.get("encoder.layer.0.attention.self.query.weight")!.toNumbers();
      const mean = q.reduce((a, b) => a + b, 0) / q.length;
      const std = Math.sqrt(q.reduce((a, b) => a + (b - mean) ** 2, 0) / q.length);
      assert.ok(Math.abs(std - 0.05) < 0.005, `std ${std}`);
      assert.deepEqual(new Set(p.get("encoder.layer.1.output.dense.bias")!.toNumbers()), new Set([0]));
      assert.deepEqual(new Set(p.get("embeddings.LayerNorm.weight")!.toNumbers()), new Set([1]));
      assert.deepEqual(
        new Set(p.get("encoder.layer.0.attention.output.LayerNorm.bias")!.toNumbers()),
        new Set([0]),
      );
    });
    // Same seed, same weights; another seed, other weights.
    const again = BertModel.init(cfg, { seed: 7 });
    const other = BertModel.init(cfg, { seed: 8 });
    const w = (m: BertModel) => m.encoder.layer[1]!.intermediate.dense.weight;
    assert.ok(w(model).allclose(w(again), 0, 0));
    assert.ok(!w(model).allclose(w(other)));
    for (const m of [model, again, other]) m.dispose();
  });

  test("HF parameter names, in HF order", () => {
    const model = BertModel.init(BertConfig.with({ ...config, numHiddenLayers: 1 }));
    const layer = [
      "attention.self.query",
      "attention.self.key",
      "attention.self.value",
      "attention.output.dense",
      "attention.output.LayerNorm",
      "intermediate.dense",
      "output.dense",
      "output.LayerNorm",
    ].flatMap((m) => [`encoder.layer.0.${m}.weight`, `encoder.layer.0.${m}.bias`]);
    assert.deepEqual(
      model.namedParameters().map(([n]) => n),
      [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
        ...layer,
      ],
    );
    // HF Trainer's get_decay_parameter_names: everything but biases and LayerNorm weights.
    assert.deepEqual(model.decayParameterNames(), [
      "embeddings.word_embeddings.weight",
      "embeddings.position_embeddings.weight",
      "embeddings.token_type_embeddings.weight",
      "encoder.layer.0.attention.self.query.weight",
      "encoder.layer.0.attention.self.key.weight",
      "encoder.layer.0.attention.self.value.weight",
      "encoder.layer.0.attention.output.dense.weight",
      "encoder.layer.0.intermediate.dense.weight",
      "encoder.layer.0.output.dense.weight",
    ]);
    model.dispose();
  });

  test("forward rejects a sequence longer than max_position_embeddings and mismatched masks", () => {
    const model = BertModel.init(config);
    tidy(() => {
      const long = ids([Array.from({ length: 65 }, () => 5)]);
      assert.throws(
        () => model.forward({ inputIds: long }),
        /sequence length 65 exceeds max_position_embeddings 64/,
      );
      assert.throws(
        () => model.forward({ inputIds: ids([[2, 3]]), attentionMask: ids([[1, 1, 1]]) }),
        /attentionMask has shape \[1, 3\]/,
      );
    });
    model.dispose();
  });

  test("forward frees its intermediates", () => {
    const model = BertModel.init(config);
    const x = inputs();
    const before = liveTensors();
    const out = noGrad(() => model.forward(x));
    assert.equal(liveTensors(), before + 1);
    out.dispose();
    for (const t of Object.values(x)) t.dispose();
    model.dispose();
  });
});
