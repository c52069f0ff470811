// VarStore / ParamPath: reading named tensors with shape checks, creating fresh ones, ownership, tags.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { liveTensors, noGrad, ones, tensor, zeros, type Tensor } from "../../src/engine/index.ts";
import { init, NO_DECAY, ParamPath, VarStore, WeightError, type WeightSource } from "../../src/nn/index.ts";

const values = (t: Tensor) => t.toNumbers();

describe("ParamPath", () => {
  test("pp() builds dotted HF names; numbers are list indices", () => {
    const p = new VarStore().root().pp("encoder").pp("layer").pp(0).pp("attention.self");
    assert.equal(p.prefix, "encoder.layer.0.attention.self");
    assert.equal(p.name("query"), "encoder.layer.0.attention.self.query");
    assert.equal(new VarStore().root().name("weight"), "weight");
    assert.throws(() => p.name("a..b"), WeightError);
    assert.throws(() => p.pp(""), WeightError);
  });

  test("without a source, get() creates with the initializer, float32, requiring grad", () => {
    const vs = new VarStore();
    const w = vs.root().pp("lin").get("weight", [2, 3], init.constant(0.5));
    assert.deepEqual(w.shape, [2, 3]);
    assert.equal(w.dtype, "float32");
    assert.ok(w.requiresGrad && w.isLeaf);
    assert.deepEqual(values(w), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    assert.deepEqual(
      vs.variables().map((v) => [v.name, v.loaded]),
      [["lin.weight", false]],
    );
    assert.throws(() => vs.root().get("x", [1]), /no initializer/);
    vs.dispose();
  });

  test("a name defined twice is an error", () => {
    const vs = new VarStore();
    vs.root().get("w", [1], init.zeros);
    assert.throws(() => vs.root().get("w", [1], init.zeros), /"w" is defined twice/);
    vs.dispose();
  });

  test("group() tags parameters created below it; get() can add tags", () => {
    const vs = new VarStore();
    const p = vs.root().pp("ln").group(NO_DECAY);
    p.get("weight", [2], init.ones);
    vs.root().get("bias", [2], init.zeros, { tags: [NO_DECAY, "head"] });
    vs.root().get("plain", [2], init.zeros);
    assert.deepEqual(
      vs.variables().map((v) => [v.name, [...v.tags]]),
      [
        ["ln.weight", [NO_DECAY]],
        ["bias", [NO_DECAY, "head"]],
        ["plain", []],
      ],
    );
    vs.dispose();
  });

  test("initializers: zeros, ones, normal, uniform, linearDefault", () => {
    const vs = new VarStore();
    const p = vs.root();
    assert.deepEqual(values(p.get("z", [3], init.zeros)), [0, 0, 0]);
    assert.deepEqual(values(p.get("o", [3], init.ones)), [1, 1, 1]);
    const n = values(p.get("n", [4000], init.normal(2, 0.5)));
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    assert.ok(Math.abs(mean - 2) < 0.05, `mean ${mean}`);
    const u = values(p.get("u", [1000], init.linearDefault(16)));
    assert.ok(u.every((v) => v >= -0.25 && v <= 0.25) && u.some((v) => v > 0.2), "U(-1/4, 1/4)");
    vs.dispose();
  });
});

describe("VarStore with a weight source", () => {
  test("reads a Map by full name, copying (the Map stays the caller's)", () => {
    const src = new Map([["a.weight", tensor([1, 2, 3])]]);
    const vs = new VarStore({ source: src });
    const w = vs.root().pp("a").get("weight", [3], init.zeros);
    assert.deepEqual(values(w), [1, 2, 3]);
    assert.ok(w.requiresGrad && w.isLeaf);
    assert.ok(vs.variable("a.weight")?.loaded);
    noGrad(() => w.mul_(0)); // in place on the parameter: the source is untouched
    assert.deepEqual(values(src.get("a.weight")!), [1, 2, 3]);
    vs.dispose();
    assert.ok(!src.get("a.weight")!.isDisposed);
    src.get("a.weight")!.dispose();
  });

  test("a missing key is an error naming the (prefixed) key and the source", () => {
    const src: WeightSource = { name: "model.safetensors", has: () => false, get: () => undefined };
    const vs = new VarStore({ source: src, sourcePrefix: "bert." });
    assert.throws(
      () => vs.root().pp("pooler").get("weight", [4, 4], init.zeros),
      (e: unknown) =>
        e instanceof WeightError &&
        e.key === "pooler.weight" &&
        e.message === `missing weight "bert.pooler.weight" in model.safetensors (expected shape [4, 4])`,
    );
  });

  test("a shape mismatch names the key and both shapes", () => {
    const src = new Map([["enc.q.weight", zeros([16, 32])]]);
    const vs = new VarStore({ source: src });
    assert.throws(
      () => vs.root().pp("enc.q").get("weight", [32, 32]),
      (e: unknown) =>
        e instanceof WeightError &&
        e.message === `weight "enc.q.weight" has shape [16, 32], but the model expects [32, 32]`,
    );
    src.get("enc.q.weight")!.dispose();
  });

  test("sourcePrefix maps names to prefixed keys; unusedKeys lists what nothing read", () => {
    const src = new Map([
      ["bert.x", ones([2])],
      ["bert.pooler.dense.weight", ones([2, 2])],
      ["cls.bias", ones([2])],
    ]);
    const vs = new VarStore({ source: src, sourcePrefix: "bert." });
    vs.root().get("x", [2]);
    assert.deepEqual(vs.variables()[0]?.name, "x");
    assert.deepEqual(vs.unusedKeys(), ["bert.pooler.dense.weight", "cls.bias"]);
    vs.dispose();
    for (const t of src.values()) t.dispose();
  });

  test("onMissing 'init' creates what the source lacks and reports it", () => {
    const src = new Map([["enc.w", ones([2])]]);
    const vs = new VarStore({ source: src, onMissing: "init" });
    vs.root().get("enc.w", [2]);
    const head = vs.root().pp("head").get("w", [2], init.zeros);
    assert.deepEqual(values(head), [0, 0]);
    assert.deepEqual(vs.initializedKeys(), ["head.w"]);
    vs.dispose();
    src.get("enc.w")!.dispose();
  });

  test("casts floating tensors to the store's dtype; keeps the source intact", () => {
    const src = new Map([["w", tensor([1.5, 2.5], { dtype: "float64" })]]);
    const vs = new VarStore({ source: src, dtype: "bfloat16" });
    const w = vs.root().get("w", [2]);
    assert.equal(w.dtype, "bfloat16");
    assert.deepEqual(values(w), [1.5, 2.5]);
    assert.equal(src.get("w")!.dtype, "float64");
    vs.dispose();
    src.get("w")!.dispose();
  });

  test("a function source is borrowed; it cannot list keys", () => {
    const t = tensor([4, 5]);
    const vs = new VarStore({ source: (k) => (k === "w" ? t : undefined) });
    assert.deepEqual(values(vs.root().get("w", [2])), [4, 5]);
    assert.deepEqual(vs.unusedKeys(), []);
    vs.dispose();
    assert.ok(!t.isDisposed);
    t.dispose();
  });

  test("an owned source hands its tensors over: no copy kept alive, no leak", () => {
    const before = liveTensors();
    let given: Tensor | undefined;
    const src: WeightSource = {
      owned: true,
      has: (k) => k === "w",
      get: () => (given = tensor([7, 8])),
      keys: () => ["w", "unused"],
    };
    const vs = new VarStore({ source: src });
    const w = vs.root().get("w", [2]);
    assert.deepEqual(values(w), [7, 8]);
    assert.ok(given?.isDisposed, "the store freed the source's handle");
    assert.deepEqual(vs.unusedKeys(), ["unused"]);
    assert.equal(liveTensors(), before + 1);
    vs.dispose();
    assert.equal(liveTensors(), before);
  });

  test("requiresGrad: false makes inference-only parameters", () => {
    const vs = new VarStore({ requiresGrad: false });
    assert.ok(!vs.root().get("w", [1], init.zeros).requiresGrad);
    vs.dispose();
  });
});

test("ParamPath can be built directly over a store", () => {
  const vs = new VarStore();
  const p = new ParamPath(vs, "x", ["t"]);
  p.get("w", [1], init.zeros);
  assert.deepEqual([...vs.variables()[0]!.tags], ["t"]);
  assert.equal(vs.variablesUnder("x").length, 1);
  assert.equal(vs.variablesUnder("xy").length, 0);
  vs.dispose();
});
