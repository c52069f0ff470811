// Deterministic memory management: tidy, keep, dispose, `using`, and the liveTensors() leak counter.
import { test } from "node:test";
import assert from "node:assert/strict";
import "./devices.ts"; // one CPU thread for the engine tests
import {
  AdamW,
  keep,
  liveTensors,
  manualSeed,
  matmul,
  noGradGuard,
  randn,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from "../../src/engine/index.ts";

test("10,000 steps of typical work inside tidy keep liveTensors() exactly flat", () => {
  manualSeed(0);
  // Outside any tidy, tensors live until disposed; tidy frees the intermediates of the set-up.
  const [w, b, x, target] = tidy(() => [
    randn([8, 8]).mul(0.1).requiresGrad_(),
    zeros([8]).requiresGrad_(),
    randn([4, 8]),
    randn([4, 8]).softmax(-1),
  ]) as [Tensor, Tensor, Tensor, Tensor];
  const opt = new AdamW([w, b], { lr: 1e-3 });
  const step = () =>
    tidy(() => {
      const h = matmul(x, w).add(b).softmax(-1);
      const loss = h.sub(target).square().mean().add(h.mul(target).sum().mul(1e-3));
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
  step(); // the optimizer creates its moment tensors on the first step
  const before = liveTensors();
  let last = 0;
  for (let i = 0; i < 10_000; i++) last = step();
  assert.equal(liveTensors(), before, "tensors leaked by the training loop");
  assert.ok(Number.isFinite(last), `loss ${last}`);
  opt.dispose();
  for (const t of [w, b, x, target]) t.dispose();
});

test("tidy returns tensors nested in arrays, objects and Maps and disposes everything else", () => {
  const before = liveTensors();
  let garbage: Tensor[] = [];
  const result = tidy(() => {
    const a = tensor([1]);
    const b = tensor([2]);
    const c = tensor([3]);
    const d = tensor([4]);
    garbage = [tensor([5]), a.add(b), tensor([6])];
    return { a, list: [b, [c]], map: new Map([["d", d]]), n: 7, s: "x", nil: null };
  });
  assert.equal(liveTensors(), before + 4);
  assert.ok(
    garbage.every((t) => t.isDisposed),
    "intermediates are disposed",
  );
  const kept = [result.a, result.list[0] as Tensor, (result.list[1] as Tensor[])[0]!, result.map.get("d")!];
  assert.ok(
    kept.every((t) => !t.isDisposed),
    "returned tensors survive",
  );
  assert.deepEqual(
    kept.map((t) => t.item()),
    [1, 2, 3, 4],
  );
  for (const t of kept) t.dispose();
  assert.equal(liveTensors(), before);
});

test("tidy searches only arrays, Maps and plain objects: a tensor inside a class instance or a Set is freed", () => {
  class Box {
    constructor(readonly t: Tensor) {}
  }
  const before = liveTensors();
  const { box, set } = tidy(() => ({ box: new Box(tensor([1])), set: new Set([tensor([2])]) }));
  assert.equal(box.t.isDisposed, true);
  assert.equal([...set][0]!.isDisposed, true);
  assert.equal(liveTensors(), before);
});

test("a throwing fn inside tidy frees its tensors", () => {
  const before = liveTensors();
  let inside: Tensor[] = [];
  assert.throws(
    () =>
      tidy(() => {
        inside = [randn([3]), randn([3]).exp()];
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.ok(
    inside.every((t) => t.isDisposed),
    "tensors of the throwing fn are disposed",
  );
  assert.equal(liveTensors(), before);
});

test("tidy refuses an async fn and frees what it created", () => {
  const before = liveTensors();
  assert.throws(
    () =>
      tidy(() => {
        randn([2]);
        return Promise.resolve(1);
      }),
    /synchronous/,
  );
  assert.equal(liveTensors(), before);
});

test("nested tidy: the inner result moves to the outer scope and is freed there unless returned", () => {
  const before = liveTensors();
  let innerResult: Tensor | undefined;
  let innerGarbage: Tensor | undefined;
  const outer = tidy(() => {
    innerResult = tidy(() => {
      innerGarbage = tensor([1]);
      return tensor([2]);
    });
    assert.equal(innerGarbage!.isDisposed, true);
    assert.equal(innerResult.isDisposed, false);
    assert.equal(liveTensors(), before + 1);
    return tidy(() => innerResult!.add(1));
  });
  assert.equal(innerResult!.isDisposed, true); // not returned by the outer fn
  assert.equal(outer.item(), 3);
  assert.equal(liveTensors(), before + 1);
  outer.dispose();
  assert.equal(liveTensors(), before);
});

test("keep exempts tensors from every enclosing tidy", () => {
  const before = liveTensors();
  let kept: Tensor | undefined;
  tidy(() => {
    tidy(() => {
      kept = keep(tensor([1, 2]));
      keep({ list: [tensor([3])] }).list[0]!.dispose();
    });
  });
  assert.equal(kept!.isDisposed, false);
  assert.equal(liveTensors(), before + 1);
  kept!.dispose();
  assert.equal(liveTensors(), before);
});

test("`using` disposes at the end of the block", () => {
  const before = liveTensors();
  let ref: Tensor | undefined;
  {
    using t = tensor([1, 2, 3]);
    ref = t;
    assert.equal(liveTensors(), before + 1);
    using s = t.sum();
    assert.equal(s.item(), 6);
  }
  assert.equal(ref.isDisposed, true);
  assert.equal(liveTensors(), before);
  // [Symbol.dispose] is also callable directly
  const t2 = tensor([1]);
  t2[Symbol.dispose]();
  assert.equal(t2.isDisposed, true);
  {
    using _g = noGradGuard();
  }
});

test("double dispose is harmless and liveTensors decrements exactly once", () => {
  const before = liveTensors();
  const t = tensor([1, 2]);
  assert.equal(liveTensors(), before + 1);
  t.dispose();
  assert.equal(liveTensors(), before);
  t.dispose();
  t[Symbol.dispose]();
  assert.equal(liveTensors(), before);
  assert.equal(t.isDisposed, true);
});

test("an alias is a second handle: disposing one leaves the other usable", () => {
  const before = liveTensors();
  const t = tensor([1, 2]);
  const a = t.alias();
  assert.equal(liveTensors(), before + 2);
  t.dispose();
  assert.deepEqual(a.toNumbers(), [1, 2]);
  a.dispose();
  assert.equal(liveTensors(), before);
});

test("each grad read is a new handle that must be freed (tidy does it)", () => {
  const x = keep(tensor([1, 2]).requiresGrad_());
  tidy(() => x.sum().backward());
  const before = liveTensors();
  tidy(() => {
    for (let i = 0; i < 10; i++) assert.notEqual(x.grad, null);
  });
  assert.equal(liveTensors(), before);
  x.dispose();
});

test("optimizer state survives the tidy it was created in and is freed by dispose()", () => {
  const p = keep(tensor([1, 2]).requiresGrad_());
  const opt = new AdamW([p]);
  const before = liveTensors();
  tidy(() => {
    p.mul(p).sum().backward();
    opt.step();
  });
  assert.equal(liveTensors(), before + 2); // exp_avg and exp_avg_sq
  opt.dispose();
  assert.equal(liveTensors(), before);
  p.dispose();
});

// A leak check of the whole file: everything above cleaned up after itself (the engine's module-level state
// holds no tensors).
test("no tensors are left alive by this file", () => {
  assert.equal(liveTensors(), 0);
});
