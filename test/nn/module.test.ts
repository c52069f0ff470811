// Module tree (train/eval, namedParameters, freeze, AdamW groups, dispose) and the basic layers against
// hand-worked values.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AdamW,
  liveTensors,
  manualSeed,
  noGrad,
  ones,
  tensor,
  tidy,
  type Tensor,
} from "../../src/engine/index.ts";
import {
  Dropout,
  Embedding,
  init,
  LayerNorm,
  Linear,
  Module,
  NO_DECAY,
  ParamPath,
  VarStore,
} from "../../src/nn/index.ts";

const close = (a: readonly number[], b: readonly number[], tol = 1e-6) =>
  assert.ok(
    a.length === b.length && a.every((v, i) => Math.abs(v - (b[i] ?? NaN)) <= tol),
    `${JSON.stringify(a)} != ${JSON.stringify(b)}`,
  );

/** A two-level model: blocks.{i}.{fc,ln} and a head, with dropout. */
class Block extends Module {
  readonly fc: Linear;
  readonly ln: LayerNorm;
  readonly drop = new Dropout(0.5);
  constructor(p: ParamPath) {
    super(p);
    this.fc = new Linear(p.pp("fc"), 3, 3);
    this.ln = new LayerNorm(p.pp("ln"), 3);
  }
  forward(x: Tensor): Tensor {
    return this.ln.forward(this.drop.forward(this.fc.forward(x)));
  }
}
class Net extends Module {
  readonly blocks: Block[];
  readonly head: Linear;
  constructor(p: ParamPath) {
    super(p);
    this.blocks = [0, 1].map((i) => new Block(p.pp("blocks").pp(i)));
    this.head = new Linear(p.pp("head"), 3, 1, { bias: false });
  }
}

describe("Module", () => {
  test("namedParameters: full names from the root, relative ones from a child, in definition order", () => {
    const net = new Net(new VarStore().root());
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      [
        "blocks.0.fc.weight",
        "blocks.0.fc.bias",
        "blocks.0.ln.weight",
        "blocks.0.ln.bias",
        "blocks.1.fc.weight",
        "blocks.1.fc.bias",
        "blocks.1.ln.weight",
        "blocks.1.ln.bias",
        "head.weight",
      ],
    );
    assert.deepEqual(
      net.blocks[1]!.namedParameters().map(([n]) => n),
      ["fc.weight", "fc.bias", "ln.weight", "ln.bias"],
    );
    assert.equal(net.parameters().length, 9);
    assert.equal(net.numParameters(), 2 * (9 + 3 + 3 + 3) + 3);
    net.dispose();
  });

  test("train()/eval() reach every descendant, arrays included; models start in eval", () => {
    const net = new Net(new VarStore().root());
    const drops = () => net.blocks.map((b) => b.drop.training);
    assert.deepEqual(drops(), [false, false]);
    net.train();
    assert.deepEqual(drops(), [true, true]);
    assert.ok(net.head.training);
    net.eval();
    assert.deepEqual(drops(), [false, false]);
    assert.equal(net.modules().length, 1 + 2 * 4 + 1);
    net.dispose();
  });

  test("freeze() stops gradients; paramGroups split decay / noDecay among trainable parameters", () => {
    const net = new Net(new VarStore().root());
    const [decay, noDecay] = net.paramGroups(0.01);
    assert.equal(decay?.params.length, 3); // two fc weights + head weight
    assert.equal(decay?.weightDecay, 0.01);
    assert.equal(noDecay?.params.length, 6); // fc biases, LayerNorm weights and biases
    assert.equal(noDecay?.weightDecay, 0);
    assert.deepEqual(net.decayParameterNames(), ["blocks.0.fc.weight", "blocks.1.fc.weight", "head.weight"]);
    net.blocks[0]!.freeze();
    assert.ok(!net.blocks[0]!.fc.weight.requiresGrad);
    assert.equal(net.trainableParameters().length, 5);
    assert.equal(net.numParameters({ trainableOnly: true }), 18 + 3);
    const groups = net.paramGroups(0.01);
    assert.deepEqual(
      groups.map((g) => g.params.length),
      [2, 3],
    );
    net.blocks[0]!.unfreeze();
    assert.equal(net.trainableParameters().length, 9);
    net.dispose();
  });

  test("paramGroups drive AdamW: noDecay parameters are not decayed", () => {
    const vs = new VarStore();
    const lin = new Linear(vs.root().pp("lin"), 2, 1, { weightInit: init.ones, biasInit: init.ones });
    const opt = new AdamW(lin.paramGroups(0.5), { lr: 0.1 });
    tidy(() => {
      // Zero gradients: only decoupled weight decay moves the parameters (w ← w − lr·wd·w).
      lin.weight.grad = tensor([[0, 0]]);
      lin.bias!.grad = tensor([0]);
      opt.step();
    });
    close(lin.weight.toNumbers(), [0.95, 0.95]);
    close(lin.bias!.toNumbers(), [1]);
    opt.dispose();
    vs.dispose();
  });

  test("dispose() frees the module's parameters and removes them from the store", () => {
    const before = liveTensors();
    const vs = new VarStore();
    const net = new Net(vs.root());
    assert.equal(liveTensors(), before + 9);
    net.blocks[0]!.dispose();
    assert.equal(vs.variables().length, 5);
    assert.ok(net.blocks[0]!.fc.weight.isDisposed);
    net.dispose();
    assert.equal(liveTensors(), before);
  });
});

describe("layers", () => {
  test("Linear: x Wᵀ + b; (out, in) weight; PyTorch default init bound 1/√in", () => {
    const vs = new VarStore({
      source: new Map([
        [
          "l.weight",
          tensor([
            [1, 2],
            [3, 4],
            [5, 6],
          ]),
        ],
        ["l.bias", tensor([0.5, -0.5, 0])],
      ]),
    });
    const l = new Linear(vs.root().pp("l"), 2, 3);
    // [1, 1] @ Wᵀ + b = [1+2+0.5, 3+4-0.5, 5+6]
    tidy(() => close(l.forward(tensor([[1, 1]])).toNumbers(), [3.5, 6.5, 11]));
    vs.dispose();
    const fresh = new VarStore();
    const f = new Linear(fresh.root(), 4, 2);
    assert.ok(f.weight.toNumbers().every((v) => Math.abs(v) <= 0.5));
    assert.ok([...fresh.variable("bias")!.tags].includes(NO_DECAY));
    assert.ok(!fresh.variable("weight")!.tags.has(NO_DECAY));
    fresh.dispose();
  });

  test("LayerNorm: normalized over the last dim with the given eps; weight/bias tagged noDecay", () => {
    const vs = new VarStore();
    const ln = new LayerNorm(vs.root().pp("LayerNorm"), 2, { eps: 0 });
    // [1, 3]: mean 2, var 1 -> [-1, 1]
    tidy(() => close(ln.forward(tensor([[1, 3]])).toNumbers(), [-1, 1]));
    assert.ok(vs.variables().every((v) => v.tags.has(NO_DECAY)));
    assert.equal(ln.eps, 0);
    vs.dispose();
  });

  test("Embedding: rows by index; paddingIdx row zero at init and without gradient", () => {
    manualSeed(3);
    const vs = new VarStore();
    const emb = new Embedding(vs.root(), 4, 2, { paddingIdx: 1 });
    assert.deepEqual(emb.weight.select(0, 1).toNumbers(), [0, 0]);
    tidy(() => {
      const out = emb.forward(tensor([[1, 2, 1]], { dtype: "int64" })); // (1, 3, 2)
      assert.deepEqual(out.shape, [1, 3, 2]);
      out.sum().backward();
      // Row 2 is used once -> gradient 1; padding row 1 gets none though used twice.
      assert.deepEqual(emb.weight.grad!.toNumbers(), [0, 0, 0, 0, 1, 1, 0, 0]);
    });
    assert.throws(() => new Embedding(vs.root().pp("bad"), 4, 2, { paddingIdx: 4 }), RangeError);
    vs.dispose();
  });

  test("Dropout: identity in eval; zeros and 1/(1−p) scaling in training", () => {
    const d = new Dropout(0.5);
    tidy(() =>
      noGrad(() => {
        const x = ones([1000]);
        assert.deepEqual(new Set(d.forward(x).toNumbers()), new Set([1]));
        d.train();
        const y = d.forward(x).toNumbers();
        assert.deepEqual(new Set(y), new Set([0, 2]));
        const kept = y.filter((v) => v === 2).length;
        assert.ok(kept > 400 && kept < 600, `kept ${kept}`);
      }),
    );
    assert.throws(() => new Dropout(1.5), RangeError);
    assert.deepEqual(d.namedParameters(), []);
  });
});
