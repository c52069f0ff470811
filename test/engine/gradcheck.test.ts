// Gradients of every differentiable op against central finite differences (float64), and the autograd API:
// backward(gradient), retainGraph, noGrad / enableGrad, detach, the grad setter.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addmm,
  cat,
  crossEntropy,
  dropout,
  embedding,
  enableGrad,
  getRngState,
  isGradEnabled,
  layerNorm,
  linear,
  matmul,
  native,
  noGrad,
  noGradGuard,
  scaledDotProductAttention,
  setRngState,
  stack,
  tensor,
  tidy,
  where,
  zeros,
  type Device,
  type Tensor,
} from "../../src/engine/index.ts";
import { forEachDevice } from "./devices.ts";
import { det, detAwayFromZero, gradcheck } from "./gradcheck-util.ts";

type Check = (d: Device) => void;

const idx = (values: number[], d: Device, shape?: number[]): Tensor =>
  tensor(values, { dtype: "int64", shape, device: d === "cpu" ? undefined : d });
const bool = (values: number[], shape: number[], d: Device): Tensor =>
  tensor(values, { dtype: "bool", shape, device: d === "cpu" ? undefined : d });

/** name → a gradient check on device d. Shapes are small: each element costs two evaluations. */
const CHECKS: Record<string, Check> = {
  // --- arithmetic (broadcasting, alpha, scalars) --------------------------------------------------------
  "add (broadcast, alpha)": (d) =>
    gradcheck(([a, b]) => a!.add(b!, 2.5), [det([2, 3], 1, -1, 1, d), det([3], 2, -1, 1, d)]),
  "add (broadcast both ways)": (d) =>
    gradcheck(([a, b]) => a!.add(b!), [det([2, 1, 3], 3, -1, 1, d), det([4, 1], 4, -1, 1, d)]),
  "sub (broadcast, alpha)": (d) =>
    gradcheck(([a, b]) => a!.sub(b!, 0.5), [det([2, 3], 5, -1, 1, d), det([2, 1], 6, -1, 1, d)]),
  "mul (broadcast)": (d) =>
    gradcheck(([a, b]) => a!.mul(b!), [det([2, 3], 7, -1, 1, d), det([3], 8, -1, 1, d)]),
  "div (broadcast)": (d) =>
    gradcheck(([a, b]) => a!.div(b!), [det([2, 3], 9, -1, 1, d), det([3], 10, 0.5, 2, d)]),
  "scalar add / sub / rsub / mul / div": (d) =>
    gradcheck(([a]) => a!.add(1.5).sub(0.25).rsub(3).mul(-1.75).div(0.3), [det([2, 3], 11, -1, 1, d)]),
  "pow (tensor base and exponent)": (d) =>
    gradcheck(([a, b]) => a!.pow(b!), [det([2, 3], 12, 0.5, 2, d), det([2, 3], 13, -1.5, 1.5, d)]),
  "pow (scalar exponents)": (d) =>
    gradcheck(([a]) => cat([a!.pow(2), a!.pow(0.5), a!.pow(-1.5), a!.pow(3)]), [det([4], 14, 0.5, 2, d)]),
  "neg / square / reciprocal": (d) =>
    gradcheck(([a]) => cat([a!.neg(), a!.square(), a!.reciprocal()]), [det([5], 15, 0.5, 2, d)]),
  // --- unary ---------------------------------------------------------------------------------------------
  exp: (d) => gradcheck(([a]) => a!.exp(), [det([2, 3], 16, -2, 2, d)]),
  log: (d) => gradcheck(([a]) => a!.log(), [det([2, 3], 17, 0.2, 3, d)]),
  log1p: (d) => gradcheck(([a]) => a!.log1p(), [det([2, 3], 18, -0.5, 3, d)]),
  sqrt: (d) => gradcheck(([a]) => a!.sqrt(), [det([2, 3], 19, 0.2, 3, d)]),
  rsqrt: (d) => gradcheck(([a]) => a!.rsqrt(), [det([2, 3], 20, 0.2, 3, d)]),
  tanh: (d) => gradcheck(([a]) => a!.tanh(), [det([2, 3], 21, -2, 2, d)]),
  erf: (d) => gradcheck(([a]) => a!.erf(), [det([2, 3], 22, -2, 2, d)]),
  sigmoid: (d) => gradcheck(([a]) => a!.sigmoid(), [det([2, 3], 23, -3, 3, d)]),
  "sin / cos": (d) => gradcheck(([a]) => a!.sin().mul(a!.cos()), [det([2, 3], 24, -3, 3, d)]),
  "relu (away from 0)": (d) => gradcheck(([a]) => a!.relu(), [detAwayFromZero([3, 4], 25, 0.1, d)]),
  "abs (away from 0)": (d) => gradcheck(([a]) => a!.abs(), [detAwayFromZero([3, 4], 26, 0.1, d)]),
  "gelu (erf form)": (d) => gradcheck(([a]) => a!.gelu("none"), [det([3, 4], 27, -3, 3, d)]),
  "gelu (tanh form)": (d) => gradcheck(([a]) => a!.gelu("tanh"), [det([3, 4], 28, -3, 3, d)]),
  "clamp (away from the bounds)": (d) =>
    gradcheck(
      ([a]) => cat([a!.clamp(-0.5, 0.5), a!.clamp(0.05), a!.clamp(undefined, -0.05)]),
      [
        tensor(Float64Array.from([-0.9, -0.3, 0.2, 0.7, -0.01, 0.01]), {
          device: d === "cpu" ? undefined : d,
        }),
      ],
    ),
  "maximum / minimum (distinct)": (d) => {
    const a = det([2, 3], 29, -1, 1, d);
    const off = detAwayFromZero([2, 3], 30, 0.1, d);
    gradcheck(([x, y]) => cat([x!.maximum(y!), x!.minimum(y!)]), [a, a.add(off)]);
  },
  "maximum (broadcast)": (d) => {
    const a = tensor(Float64Array.from([-0.8, 0.3, 0.9, -0.1, 0.5, -0.6]), { shape: [2, 3], device: dv(d) });
    gradcheck(([x, y]) => x!.maximum(y!), [a, tensor(Float64Array.from([0, 0.1, 0.2]), { device: dv(d) })]);
  },
  // --- neural-network functions --------------------------------------------------------------------------
  softmax: (d) => gradcheck(([a]) => a!.softmax(-1), [det([3, 4], 31, -2, 2, d)]),
  "softmax (dim 0)": (d) => gradcheck(([a]) => a!.softmax(0), [det([3, 4], 32, -2, 2, d)]),
  log_softmax: (d) => gradcheck(([a]) => a!.logSoftmax(1), [det([3, 4], 33, -2, 2, d)]),
  logsumexp: (d) =>
    gradcheck(
      ([a]) => cat([a!.logsumexp(1).flatten(), a!.logsumexp([0, 2]).flatten()]),
      [det([2, 3, 2], 34, -2, 2, d)],
    ),
  "layer_norm (input, weight, bias)": (d) =>
    gradcheck(
      ([x, w, b]) => layerNorm(x!, [4], w, b),
      [det([2, 3, 4], 35, -2, 2, d), det([4], 36, 0.5, 1.5, d), det([4], 37, -0.5, 0.5, d)],
    ),
  "layer_norm (two dims, no affine)": (d) =>
    gradcheck(([x]) => layerNorm(x!, [2, 3]), [det([2, 2, 3], 38, -2, 2, d)]),
  "linear (x, W, b)": (d) =>
    gradcheck(
      ([x, w, b]) => linear(x!, w!, b),
      [det([2, 3, 4], 39, -1, 1, d), det([5, 4], 40, -1, 1, d), det([5], 41, -1, 1, d)],
    ),
  "linear (no bias)": (d) =>
    gradcheck(([x, w]) => linear(x!, w!), [det([3, 4], 42, -1, 1, d), det([2, 4], 43, -1, 1, d)]),
  "addmm (beta, alpha, broadcast input)": (d) =>
    gradcheck(
      ([i, a, b]) => addmm(i!, a!, b!, 0.5, 2),
      [det([4], 44, -1, 1, d), det([2, 3], 45, -1, 1, d), det([3, 4], 46, -1, 1, d)],
    ),
  "matmul (batched broadcast)": (d) =>
    gradcheck(([a, b]) => matmul(a!, b!), [det([2, 1, 3, 4], 47, -1, 1, d), det([2, 4, 2], 48, -1, 1, d)]),
  "matmul (vector)": (d) =>
    gradcheck(([a, b]) => matmul(a!, b!), [det([3], 49, -1, 1, d), det([3, 2], 50, -1, 1, d)]),
  mm: (d) => gradcheck(([a, b]) => a!.mm(b!), [det([2, 3], 51, -1, 1, d), det([3, 4], 52, -1, 1, d)]),
  bmm: (d) => gradcheck(([a, b]) => a!.bmm(b!), [det([2, 2, 3], 53, -1, 1, d), det([2, 3, 2], 54, -1, 1, d)]),
  "embedding (weight, repeated indices)": (d) =>
    gradcheck(([w]) => embedding(w!, idx([0, 2, 2, 4, 0, 1], d, [2, 3])), [det([5, 3], 55, -1, 1, d)]),
  normalize: (d) => gradcheck(([x]) => x!.normalize(-1), [det([3, 4], 56, -1, 1, d)]),
  "normalize (p=1, dim 0)": (d) =>
    gradcheck(([x]) => x!.normalize(0, 1e-12, 1), [detAwayFromZero([3, 2], 57, 0.1, d)]),
  "cross_entropy (logits, mean)": (d) =>
    gradcheck(([x]) => crossEntropy(x!, idx([1, 0, 4], d)), [det([3, 5], 58, -2, 2, d)]),
  "cross_entropy (none, label smoothing, ignore_index)": (d) =>
    gradcheck(
      ([x]) => crossEntropy(x!, idx([1, -100, 4, 2], d), { reduction: "none", labelSmoothing: 0.1 }),
      [det([4, 5], 59, -2, 2, d)],
    ),
  "cross_entropy (sum, custom ignore_index)": (d) =>
    gradcheck(
      ([x]) => crossEntropy(x!, idx([1, 2, 4, 2], d), { reduction: "sum", ignoreIndex: 2 }),
      [det([4, 5], 60, -2, 2, d)],
    ),
  "sdpa (q, k, v)": (d) =>
    gradcheck(
      ([q, k, v]) => scaledDotProductAttention(q!, k!, v!),
      [det([1, 2, 3, 4], 61, -1, 1, d), det([1, 2, 3, 4], 62, -1, 1, d), det([1, 2, 3, 4], 63, -1, 1, d)],
    ),
  "sdpa (boolean key-padding mask)": (d) => {
    const mask = bool([1, 1, 0, 1, 1, 1], [2, 1, 1, 3], d);
    gradcheck(
      ([q, k, v]) => scaledDotProductAttention(q!, k!, v!, { mask }),
      [det([2, 1, 2, 4], 64, -1, 1, d), det([2, 1, 3, 4], 65, -1, 1, d), det([2, 1, 3, 4], 66, -1, 1, d)],
    );
  },
  "sdpa (additive float mask, its gradient too)": (d) =>
    gradcheck(
      ([q, k, v, m]) => scaledDotProductAttention(q!, k!, v!, { mask: m }),
      [
        det([1, 2, 2, 3], 67, -1, 1, d),
        det([1, 2, 3, 3], 68, -1, 1, d),
        det([1, 2, 3, 3], 69, -1, 1, d),
        det([1, 1, 2, 3], 70, -2, 0, d),
      ],
    ),
  "sdpa (causal)": (d) =>
    gradcheck(
      ([q, k, v]) => scaledDotProductAttention(q!, k!, v!, { isCausal: true }),
      [det([1, 3, 3], 71, -1, 1, d), det([1, 3, 3], 72, -1, 1, d), det([1, 3, 3], 73, -1, 1, d)],
    ),
  "dropout (RNG state reset before each evaluation)": (d) => {
    const rngDevice: Device = d === "cpu" ? "cpu" : "cuda";
    const state = getRngState(rngDevice);
    gradcheck(
      ([x]) => {
        setRngState(state, rngDevice);
        return dropout(x!, 0.4, true);
      },
      [det([4, 5], 74, -1, 1, d)],
    );
    // the mask really is random: some zeros, some scaled values
    setRngState(state, rngDevice);
    const y = dropout(det([4, 5], 74, -1, 1, d), 0.4, true).toNumbers();
    assert.ok(y.some((v) => v === 0) && y.some((v) => v !== 0), `dropout mask ${y}`);
  },
  // --- selection -----------------------------------------------------------------------------------------
  masked_fill: (d) => {
    const m = bool([1, 0, 0, 0, 1, 1], [2, 1, 3], d);
    gradcheck(([x]) => x!.maskedFill(m, -1e9).softmax(-1), [det([2, 2, 3], 75, -1, 1, d)]);
  },
  "where (both branches, broadcast)": (d) => {
    const c = bool([1, 0, 1, 0, 0, 1], [2, 3], d);
    gradcheck(([a, b]) => where(c, a!, b!), [det([2, 3], 76, -1, 1, d), det([3], 77, -1, 1, d)]);
  },
  // --- shape ----------------------------------------------------------------------------------------------
  "reshape / view": (d) =>
    gradcheck(
      ([x]) =>
        x!
          .reshape([3, 4])
          .view([2, 6])
          .mul(x!.reshape([2, 6])),
      [det([2, 3, 2], 78, -1, 1, d)],
    ),
  permute: (d) => gradcheck(([x]) => x!.permute([2, 0, 1]).cumsum(0), [det([2, 3, 2], 79, -1, 1, d)]),
  transpose: (d) => gradcheck(([x]) => x!.transpose(0, 2).cumsum(1), [det([2, 3, 2], 80, -1, 1, d)]),
  "expand (sums over the broadcast dims)": (d) =>
    gradcheck(([x]) => x!.expand([2, 3, 4]), [det([3, 1], 81, -1, 1, d)]),
  "unsqueeze / squeeze / flatten": (d) =>
    gradcheck(
      ([x]) => x!.unsqueeze(1).squeeze(1).unsqueeze(0).squeeze().flatten(0, 1),
      [det([2, 3, 2], 82, -1, 1, d)],
    ),
  repeat: (d) => gradcheck(([x]) => x!.repeat([2, 1, 3]), [det([2, 2], 83, -1, 1, d)]),
  "contiguous / clone / alias": (d) =>
    gradcheck(
      ([x]) => x!.transpose(0, 1).contiguous().clone().alias().cumsum(0),
      [det([2, 3], 84, -1, 1, d)],
    ),
  narrow: (d) => gradcheck(([x]) => x!.narrow(1, 1, 2), [det([3, 4], 85, -1, 1, d)]),
  "slice (step, negative start)": (d) =>
    gradcheck(
      ([x]) => cat([x!.slice(1, 1, undefined, 2).flatten(), x!.slice(0, -2).flatten()]),
      [det([3, 5], 86, -1, 1, d)],
    ),
  select: (d) => gradcheck(([x]) => x!.select(1, -1), [det([3, 4], 87, -1, 1, d)]),
  "index_select (repeated indices accumulate)": (d) =>
    gradcheck(([x]) => x!.indexSelect(0, idx([2, 0, 2, 2], d)), [det([3, 4], 88, -1, 1, d)]),
  "gather (repeated indices accumulate)": (d) =>
    gradcheck(([x]) => x!.gather(1, idx([0, 3, 3, 1, 1, 1], d, [2, 3])), [det([2, 4], 89, -1, 1, d)]),
  cat: (d) =>
    gradcheck(([a, b]) => cat([a!, b!, a!], 1), [det([2, 3], 90, -1, 1, d), det([2, 1], 91, -1, 1, d)]),
  stack: (d) =>
    gradcheck(([a, b]) => stack([a!, b!], 1), [det([2, 3], 92, -1, 1, d), det([2, 3], 93, -1, 1, d)]),
  "split (several outputs)": (d) => gradcheck(([x]) => x!.split(2, 1), [det([2, 5], 94, -1, 1, d)]),
  tril: (d) => gradcheck(([x]) => x!.tril(-1), [det([3, 4], 95, -1, 1, d)]),
  flip: (d) => gradcheck(([x]) => x!.flip([0, 1]).cumsum(1), [det([2, 3], 96, -1, 1, d)]),
  // --- reductions -----------------------------------------------------------------------------------------
  "sum (all, dims, keepdim)": (d) =>
    gradcheck(
      ([x]) => cat([x!.sum().reshape([1]), x!.sum(1).flatten(), x!.sum([0, 2], true).flatten()]),
      [det([2, 3, 2], 97, -1, 1, d)],
    ),
  "mean (all, dims)": (d) =>
    gradcheck(
      ([x]) => cat([x!.mean().reshape([1]), x!.mean([0, 1]).flatten()]),
      [det([2, 3, 2], 98, -1, 1, d)],
    ),
  "max_dim / min_dim values": (d) =>
    gradcheck(([x]) => cat([x!.maxDim(1)[0], x!.minDim(0)[0]]), [det([3, 3], 99, -1, 1, d)]),
  "max / min of all elements": (d) =>
    gradcheck(([x]) => stack([x!.max(), x!.min()]), [det([3, 4], 100, -1, 1, d)]),
  "norm (p=2 dims, p=1, all)": (d) =>
    gradcheck(
      ([x]) => cat([x!.norm(2, 1), x!.norm(1, 0), x!.norm().reshape([1]), x!.norm(3).reshape([1])]),
      [detAwayFromZero([3, 4], 101, 0.1, d)],
    ),
  cumsum: (d) => gradcheck(([x]) => x!.cumsum(-1).mul(x!.cumsum(0)), [det([3, 4], 102, -1, 1, d)]),
  "topk / sort values": (d) =>
    gradcheck(
      ([x]) => cat([x!.topk(2, -1)[0].flatten(), x!.sort(0, true)[0].flatten()]),
      [det([3, 4], 103, -1, 1, d)],
    ),
  "to float64 (a no-op conversion keeps the graph)": (d) =>
    gradcheck(([x]) => x!.to("float64").mul(x!), [det([4], 104, -1, 1, d)]),
  // --- a composite: a transformer-style block --------------------------------------------------------------
  "composite attention block": (d) => {
    const mask = bool([1, 1, 1, 0], [1, 1, 1, 4], d);
    gradcheck(
      ([x, wq, w1]) => {
        const q = linear(x!, wq!).reshape([1, 4, 2, 2]).transpose(1, 2);
        const a = scaledDotProductAttention(q, q, q, { mask }).transpose(1, 2).reshape([1, 4, 4]);
        const h = layerNorm(a.add(x!), [4]);
        return linear(h, w1!).gelu().mean(1);
      },
      [det([1, 4, 4], 105, -1, 1, d), det([4, 4], 106, -1, 1, d), det([3, 4], 107, -1, 1, d)],
    );
  },
};

function dv(d: Device): Device | undefined {
  return d === "cpu" ? undefined : d;
}

forEachDevice("gradcheck: autograd matches central finite differences", async (device, t) => {
  for (const [name, check] of Object.entries(CHECKS)) await t.test(name, () => check(device));
});

forEachDevice(
  "embedding padding_idx: the padding row gets no gradient, the others the plain one",
  (device) => {
    tidy(() => {
      const i = idx([0, 2, 2, 1, 0], device);
      const w1 = det([3, 2], 120, -1, 1, device).requiresGrad_();
      const w2 = det([3, 2], 120, -1, 1, device).requiresGrad_();
      const g = det([5, 2], 121, -1, 1, device);
      embedding(w1, i, 0).backward(g);
      embedding(w2, i).backward(g);
      const padded = w1.grad!.toNumbers();
      const plain = w2.grad!.toNumbers();
      assert.deepEqual(padded.slice(0, 2), [0, 0]);
      assert.deepEqual(padded.slice(2), plain.slice(2));
      assert.notDeepEqual(plain.slice(0, 2), [0, 0]);
      // a negative padding_idx counts from the end, as in torch.nn.functional.embedding: -1 is the last row
      const w3 = det([3, 2], 120, -1, 1, device).requiresGrad_();
      embedding(w3, i, -1).backward(g);
      const last = w3.grad!.toNumbers();
      assert.deepEqual(last.slice(4), [0, 0]);
      assert.deepEqual(last.slice(0, 4), plain.slice(0, 4));
    });
  },
);

// ---------------------------------------------------------------------------------------------------------
// The autograd API

test("backward(gradient) on a non-scalar equals the gradient of sum(out * gradient)", () => {
  tidy(() => {
    const x1 = det([2, 3], 130).requiresGrad_();
    const x2 = det([2, 3], 130).requiresGrad_();
    const g = det([2, 3], 131);
    x1.tanh().mul(x1).backward(g);
    x2.tanh().mul(x2).mul(g).sum().backward();
    const a = x1.grad!.toNumbers();
    const b = x2.grad!.toNumbers();
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-15, `${v} vs ${b[i]}`));
    // without a gradient a non-scalar cannot start backward
    assert.throws(() => x1.tanh().backward(), /scalar/);
  });
});

test("retainGraph allows a second backward, and gradients accumulate", () => {
  tidy(() => {
    const x = tensor(Float64Array.from([1, 2, 3])).requiresGrad_();
    const y = x.mul(x).sum(); // dy/dx = 2x
    y.backward(undefined, { retainGraph: true });
    assert.deepEqual(x.grad!.toNumbers(), [2, 4, 6]);
    y.backward(undefined, { retainGraph: true });
    assert.deepEqual(x.grad!.toNumbers(), [4, 8, 12]);
    y.backward();
    assert.deepEqual(x.grad!.toNumbers(), [6, 12, 18]);
    // the graph is freed now
    assert.throws(() => y.backward(), /second time|freed/);
    // separate graphs accumulate into the same leaf too
    x.mul(3).sum().backward();
    assert.deepEqual(x.grad!.toNumbers(), [9, 15, 21]);
  });
});

test("native backwardMany runs one pass through several roots", () => {
  tidy(() => {
    const x = tensor(Float64Array.from([1, 2])).requiresGrad_();
    const a = x.mul(2).sum();
    const b = x.mul(x); // non-scalar: needs a gradient
    native.backwardMany(
      [a.handle, b.handle],
      [tensor(Float64Array.from([1])).reshape([]).handle, tensor(Float64Array.from([1, 10])).handle],
    );
    // d/dx (2·Σx) = 2; d/dx Σ g·x² = 2·g·x = [2, 40]
    assert.deepEqual(x.grad!.toNumbers(), [4, 42]);
  });
});

test("noGrad produces tensors that do not require grad, and restores the mode (even on throw)", () => {
  tidy(() => {
    const x = tensor([1, 2]).requiresGrad_();
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(isGradEnabled(), true);
    assert.throws(() =>
      noGrad(() => {
        throw new Error("boom");
      }),
    );
    assert.equal(isGradEnabled(), true);
    assert.equal(x.mul(2).requiresGrad, true);
    {
      using _g = noGradGuard();
      assert.equal(isGradEnabled(), false);
      assert.equal(x.mul(2).requiresGrad, false);
    }
    assert.equal(isGradEnabled(), true);
  });
});

test("enableGrad inside noGrad records again", () => {
  tidy(() => {
    const x = tensor([1, 2]).requiresGrad_();
    const [inner, outer] = noGrad(() => {
      const i = enableGrad(() => {
        assert.equal(isGradEnabled(), true);
        return x.mul(2);
      });
      assert.equal(isGradEnabled(), false);
      return [i, x.mul(2)];
    });
    assert.equal(inner!.requiresGrad, true);
    assert.equal(outer!.requiresGrad, false);
    inner!.sum().backward();
    assert.deepEqual(x.grad!.toNumbers(), [2, 2]);
  });
});

test("detach: shares storage, does not require grad, stops the gradient", () => {
  tidy(() => {
    const x = tensor(Float64Array.from([1, 2, 3])).requiresGrad_();
    const y = x.mul(2);
    assert.equal(y.isLeaf, false);
    assert.equal(y.requiresGrad, true);
    const d = y.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.isLeaf, true);
    assert.ok(native.sameStorage(d.handle, y.handle), "detach shares storage");
    // in-place changes to the detached tensor are visible through the original
    noGrad(() => d.mul_(10));
    assert.deepEqual(y.detach().toNumbers(), [20, 40, 60]);
    x.mul(x.detach()).sum().backward(); // d/dx (x · c) = c
    assert.deepEqual(x.grad!.toNumbers(), [1, 2, 3]);
  });
});

test("the grad setter sets and clears (null) the accumulated gradient", () => {
  tidy(() => {
    const x = tensor([1, 2]).requiresGrad_();
    assert.equal(x.grad, null);
    x.mul(3).sum().backward();
    assert.deepEqual(x.grad!.toNumbers(), [3, 3]);
    x.grad = null;
    assert.equal(x.grad, null);
    x.grad = tensor([5, 6]);
    assert.deepEqual(x.grad.toNumbers(), [5, 6]);
    x.sum().backward(); // accumulates onto the set gradient
    assert.deepEqual(x.grad.toNumbers(), [6, 7]);
    assert.equal(zeros([1]).grad, null);
  });
});

test("the grad setter refuses a gradient whose shape or dtype differs from the tensor's", () => {
  tidy(() => {
    const x = tensor([1, 2]).requiresGrad_();
    assert.throws(() => {
      x.grad = tensor([1, 2, 3]);
    });
    assert.throws(() => {
      x.grad = tensor(Float64Array.from([1, 2]));
    });
  });
});
