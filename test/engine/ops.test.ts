// Values of every op in the addon's table (native/ops.cc): PyTorch goldens for all of them (float64, and some
// float32), hand-checked cases whose arithmetic is in the comments, and statistical checks for the random ops.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addmm,
  arange,
  cat,
  crossEntropy,
  dropout,
  embedding,
  empty,
  eye,
  fromBytes,
  full,
  layerNorm,
  linear,
  manualSeed,
  matmul,
  native,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randperm,
  scaledDotProductAttention,
  stack,
  tensor,
  tidy,
  topk,
  where,
  zeros,
  zerosLike,
  type Device,
  type DType,
  type Reduction,
  type Tensor,
} from "../../src/engine/index.ts";
import { forEachDevice } from "./devices.ts";
import { assertAllClose, assertMatches, decode, loadGolden, num, type GoldenCase } from "./golden.ts";

// ---------------------------------------------------------------------------------------------------------
// Golden values from PyTorch

type Args = Record<string, unknown>;
type Result = Tensor | Tensor[] | boolean;
type Run = (x: Tensor[], a: Args, device: Device) => Result;

const n = (v: unknown): number => num(v);
const ints = (v: unknown): number[] => (v as unknown[]).map(num);
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : num(v));
const x0 = (x: Tensor[]): Tensor => x[0] as Tensor;
const x1 = (x: Tensor[]): Tensor => x[1] as Tensor;
const dev = (device: Device): Device | undefined => (device === "cpu" ? undefined : device);
const dtypeOpt = (a: Args): DType | undefined => (a.dtype ?? undefined) as DType | undefined;

const unary =
  (
    m:
      | "neg"
      | "abs"
      | "exp"
      | "log"
      | "log1p"
      | "sqrt"
      | "rsqrt"
      | "reciprocal"
      | "square"
      | "sin"
      | "cos"
      | "tanh"
      | "erf"
      | "sigmoid"
      | "relu"
      | "sign",
  ): Run =>
  (x) =>
    x0(x)[m]();

/** How each table op is reached through the public API, keyed by the op's table name. */
const RUN: Record<string, Run> = {
  add: (x, a) => x0(x).add(x1(x), n(a.alpha)),
  add_scalar: (x, a) => x0(x).add(n(a.s), a.alpha === undefined ? 1 : n(a.alpha)),
  sub: (x, a) => x0(x).sub(x1(x), n(a.alpha)),
  sub_scalar: (x, a) => x0(x).sub(n(a.s)),
  rsub_scalar: (x, a) => x0(x).rsub(n(a.s)),
  mul: (x) => x0(x).mul(x1(x)),
  mul_scalar: (x, a) => x0(x).mul(n(a.s)),
  div: (x) => x0(x).div(x1(x)),
  div_scalar: (x, a) => x0(x).div(n(a.s)),
  pow: (x) => x0(x).pow(x1(x)),
  pow_scalar: (x, a) => x0(x).pow(n(a.s)),
  maximum: (x) => x0(x).maximum(x1(x)),
  minimum: (x) => x0(x).minimum(x1(x)),
  clamp: (x, a) => x0(x).clamp(optNum(a.min), optNum(a.max)),
  neg: unary("neg"),
  abs: unary("abs"),
  exp: unary("exp"),
  log: unary("log"),
  log1p: unary("log1p"),
  sqrt: unary("sqrt"),
  rsqrt: unary("rsqrt"),
  reciprocal: unary("reciprocal"),
  square: unary("square"),
  sin: unary("sin"),
  cos: unary("cos"),
  tanh: unary("tanh"),
  erf: unary("erf"),
  sigmoid: unary("sigmoid"),
  relu: unary("relu"),
  sign: unary("sign"),
  gelu: (x, a) => x0(x).gelu(a.approximate as "none" | "tanh"),
  eq: (x) => x0(x).eq(x1(x)),
  eq_scalar: (x, a) => x0(x).eq(n(a.s)),
  ne: (x) => x0(x).ne(x1(x)),
  ne_scalar: (x, a) => x0(x).ne(n(a.s)),
  lt: (x) => x0(x).lt(x1(x)),
  lt_scalar: (x, a) => x0(x).lt(n(a.s)),
  le: (x) => x0(x).le(x1(x)),
  le_scalar: (x, a) => x0(x).le(n(a.s)),
  gt: (x) => x0(x).gt(x1(x)),
  gt_scalar: (x, a) => x0(x).gt(n(a.s)),
  ge: (x) => x0(x).ge(x1(x)),
  ge_scalar: (x, a) => x0(x).ge(n(a.s)),
  logical_and: (x) => x0(x).logicalAnd(x1(x)),
  logical_or: (x) => x0(x).logicalOr(x1(x)),
  logical_not: (x) => x0(x).logicalNot(),
  where: (x) => where(x0(x), x1(x), x[2] as Tensor),
  masked_fill: (x, a) => x0(x).maskedFill(x1(x), n(a.value)),
  allclose: (x, a) => x0(x).allclose(x1(x), n(a.rtol), n(a.atol)),
  matmul: (x) => matmul(x0(x), x1(x)),
  mm: (x) => x0(x).mm(x1(x)),
  bmm: (x) => x0(x).bmm(x1(x)),
  linear: (x) => linear(x0(x), x1(x), x[2]),
  addmm: (x, a) => addmm(x0(x), x1(x), x[2] as Tensor, n(a.beta), n(a.alpha)),
  softmax: (x, a) => x0(x).softmax(n(a.dim)),
  log_softmax: (x, a) => x0(x).logSoftmax(n(a.dim)),
  layer_norm: (x, a) => layerNorm(x0(x), ints(a.shape), x[1], x[2], n(a.eps)),
  embedding: (x, a) => embedding(x0(x), x1(x), optNum(a.padding_idx)),
  normalize: (x, a) => x0(x).normalize(n(a.dim), n(a.eps), n(a.p)),
  cross_entropy: (x, a) =>
    crossEntropy(x0(x), x1(x), {
      reduction: a.reduction as Reduction,
      labelSmoothing: n(a.label_smoothing),
      ignoreIndex: n(a.ignore_index),
    }),
  sdpa: (x, a) =>
    scaledDotProductAttention(x0(x), x1(x), x[2] as Tensor, { mask: x[3], isCausal: a.causal as boolean }),
  reshape: (x, a) => (a.transposeFirst ? x0(x).transpose(0, 2) : x0(x)).reshape(ints(a.shape)),
  view: (x, a) => x0(x).view(ints(a.shape)),
  permute: (x, a) => x0(x).permute(ints(a.dims)),
  transpose: (x, a) => x0(x).transpose(n(a.d0), n(a.d1)),
  unsqueeze: (x, a) => x0(x).unsqueeze(n(a.dim)),
  squeeze: (x) => x0(x).squeeze(),
  squeeze_dim: (x, a) => x0(x).squeeze(n(a.dim)),
  expand: (x, a) => x0(x).expand(ints(a.shape)),
  flatten: (x, a) => x0(x).flatten(n(a.start), n(a.end)),
  repeat: (x, a) => x0(x).repeat(ints(a.times)),
  contiguous: (x) => {
    const t = x0(x).transpose(0, 1);
    assert.equal(t.isContiguous, false);
    const c = t.contiguous();
    assert.equal(c.isContiguous, true);
    return c;
  },
  clone: (x) => x0(x).clone(),
  detach: (x) => x0(x).detach(),
  alias: (x) => x0(x).alias(),
  narrow: (x, a) => x0(x).narrow(n(a.dim), n(a.start), n(a.length)),
  slice: (x, a) => x0(x).slice(n(a.dim), n(a.start), optNum(a.end), n(a.step)),
  select: (x, a) => x0(x).select(n(a.dim), n(a.index)),
  index_select: (x, a) => x0(x).indexSelect(n(a.dim), x1(x)),
  gather: (x, a) => x0(x).gather(n(a.dim), x1(x)),
  index_add: (x, a) => x0(x).indexAdd(n(a.dim), x1(x), x[2]!),
  scatter_reduce: (x, a) =>
    x0(x).scatterReduce(n(a.dim), x1(x), x[2]!, a.reduce as "amax" | "sum", a.include_self as boolean),
  cat: (x, a) => cat(x, n(a.dim)),
  stack: (x, a) => stack(x, n(a.dim)),
  split: (x, a) => x0(x).split(n(a.size), n(a.dim)),
  tril: (x, a) => x0(x).tril(n(a.diagonal)),
  flip: (x, a) => x0(x).flip(ints(a.dims)),
  to_dtype: (x, a) => x0(x).to(a.dtype as DType),
  to_device: (x, a) => x0(x).to(a.device as Device),
  sum_all: (x) => x0(x).sum(),
  sum: (x, a) => x0(x).sum(ints(a.dims), a.keepdim as boolean),
  mean_all: (x) => x0(x).mean(),
  mean: (x, a) => x0(x).mean(ints(a.dims), a.keepdim as boolean),
  max_all: (x) => x0(x).max(),
  max_dim: (x, a) => x0(x).maxDim(n(a.dim), a.keepdim as boolean),
  min_all: (x) => x0(x).min(),
  min_dim: (x, a) => x0(x).minDim(n(a.dim), a.keepdim as boolean),
  argmax: (x, a) => x0(x).argmax(n(a.dim), a.keepdim as boolean),
  argmin: (x, a) => x0(x).argmin(n(a.dim), a.keepdim as boolean),
  norm: (x, a) => x0(x).norm(n(a.p), ints(a.dims), a.keepdim as boolean),
  norm_all: (x, a) => x0(x).norm(n(a.p)),
  logsumexp: (x, a) => x0(x).logsumexp(ints(a.dims), a.keepdim as boolean),
  cumsum: (x, a) => x0(x).cumsum(n(a.dim)),
  topk: (x, a) => x0(x).topk(n(a.k), n(a.dim), a.largest as boolean),
  sort: (x, a) => x0(x).sort(n(a.dim), a.descending as boolean),
  zeros: (_x, a, d) => zeros(ints(a.shape), { dtype: dtypeOpt(a), device: dev(d) }),
  ones: (_x, a, d) => ones(ints(a.shape), { dtype: dtypeOpt(a), device: dev(d) }),
  full: (_x, a, d) =>
    full(ints(a.shape), typeof a.value === "boolean" ? a.value : n(a.value), {
      dtype: dtypeOpt(a),
      device: dev(d),
    }),
  eye: (_x, a, d) => eye(n(a.n), { dtype: dtypeOpt(a), device: dev(d) }),
  arange: (_x, a, d) => arange(n(a.start), optNum(a.end), n(a.step), { dtype: dtypeOpt(a), device: dev(d) }),
  zeros_like: (x) => zerosLike(x0(x)),
  ones_like: (x) => onesLike(x0(x)),
  add_: (x, a) => x0(x).add_(x1(x), n(a.alpha)),
  mul_scalar_: (x, a) => x0(x).mul_(n(a.s)),
  zero_: (x) => x0(x).zero_(),
  fill_: (x, a) => x0(x).fill_(n(a.s)),
  copy_: (x) => x0(x).copy_(x1(x)),
};

/** Table ops whose values are random: checked statistically further down instead of against a golden. */
const PROPERTY_TESTED = ["empty", "rand", "randn", "randint", "randperm", "uniform_", "normal_", "dropout"];

const golden = loadGolden();

function runCase(c: GoldenCase, device: Device): void {
  tidy(() => {
    const run = RUN[c.op];
    assert.ok(run, `no runner for op ${c.op}`);
    const inputs = c.inputs.map((e) => decode(e, device));
    const result = run(inputs, c.args, device);
    if (typeof result === "boolean") {
      assert.ok(!Array.isArray(c.out), `${c.id}: one output`);
      assert.equal(result, num(c.out.data[0]) === 1, c.id);
      return;
    }
    const outs = Array.isArray(result) ? result : [result];
    const want = Array.isArray(c.out) ? c.out : [c.out];
    assert.equal(outs.length, want.length, `${c.id}: number of outputs`);
    outs.forEach((o, i) => {
      if (device !== "cpu" && c.op !== "to_device") assert.match(o.device, /^cuda/, `${c.id}: device`);
      assertMatches(o, want[i]!, `${c.id}${want.length > 1 ? `[${i}]` : ""}`);
    });
  });
}

test("every op of the native table is covered by a golden case or a property test", () => {
  const covered = new Set([...golden.cases.map((c) => c.op), ...PROPERTY_TESTED]);
  const missing = native.opNames().filter((name) => !covered.has(name));
  assert.deepEqual(missing, [], `ops without a value test: ${missing.join(", ")}`);
  for (const c of golden.cases) assert.ok(RUN[c.op], `golden case ${c.id} names an op without a runner`);
  assert.ok(golden.cases.length > 200, `${golden.cases.length} cases`);
  assert.match(golden.torch, /^1\.13|^2\./);
});

forEachDevice("golden values from PyTorch", async (device, t) => {
  const byOp = new Map<string, GoldenCase[]>();
  for (const c of golden.cases) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);
  for (const [op, cases] of byOp) {
    await t.test(op, () => {
      for (const c of cases) runCase(c, device);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Hand-checked values

test("matmul 2x2: [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]", () => {
  tidy(() => {
    // 1·5+2·7 = 19, 1·6+2·8 = 22, 3·5+4·7 = 43, 3·6+4·8 = 50
    const c = matmul(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      tensor([
        [5, 6],
        [7, 8],
      ]),
    );
    assert.deepEqual(c.shape, [2, 2]);
    assert.equal(c.dtype, "float32");
    assert.deepEqual(c.toNumbers(), [19, 22, 43, 50]);
  });
});

test("softmax of [0, ln 2] is [1/3, 2/3]", () => {
  tidy(() => {
    // e^0 = 1, e^ln2 = 2, sum 3
    const s = tensor(Float64Array.from([0, Math.LN2])).softmax(-1);
    assertAllClose(s.toNumbers(), [1 / 3, 2 / 3], { rtol: 1e-15, atol: 1e-15 }, "softmax");
    // log_softmax = [−ln 3, ln 2 − ln 3]
    const ls = tensor(Float64Array.from([0, Math.LN2])).logSoftmax(0);
    assertAllClose(
      ls.toNumbers(),
      [-Math.log(3), Math.LN2 - Math.log(3)],
      { rtol: 1e-15, atol: 1e-15 },
      "lsm",
    );
  });
});

test("normalize of [3, 4] is [0.6, 0.8]; a zero vector stays zero", () => {
  tidy(() => {
    // ‖(3,4)‖ = 5
    const v = tensor(Float64Array.from([3, 4, 0, 0]), { shape: [2, 2] }).normalize(-1);
    assertAllClose(v.toNumbers(), [0.6, 0.8, 0, 0], { rtol: 1e-15, atol: 0 }, "normalize");
    // L1: |3|+|4| = 7
    const l1 = tensor(Float64Array.from([3, 4])).normalize(0, 1e-12, 1);
    assertAllClose(l1.toNumbers(), [3 / 7, 4 / 7], { rtol: 1e-15, atol: 0 }, "normalize p=1");
  });
});

test("cross_entropy of a 2x2 case", () => {
  tidy(() => {
    // row 0: logits [0, 0], target 0 → −log(1/2) = ln 2
    // row 1: logits [0, ln 3], target 1 → softmax [1/4, 3/4] → −log(3/4) = ln(4/3)
    // mean: (ln 2 + ln(4/3)) / 2 = ln(8/3) / 2
    const logits = tensor(Float64Array.from([0, 0, 0, Math.log(3)]), { shape: [2, 2] });
    const targets = tensor([0, 1], { dtype: "int64" });
    const mean = crossEntropy(logits, targets).item();
    assert.ok(Math.abs(mean - Math.log(8 / 3) / 2) < 1e-15, `${mean}`);
    const none = crossEntropy(logits, targets, { reduction: "none" }).toNumbers();
    assertAllClose(none, [Math.LN2, Math.log(4 / 3)], { rtol: 1e-15, atol: 1e-15 }, "none");
    const sum = crossEntropy(logits, targets, { reduction: "sum" }).item();
    assert.ok(Math.abs(sum - Math.log(8 / 3)) < 1e-15, `sum ${sum}`);
    // ignore_index drops row 1 from the numerator and the denominator: mean = ln 2
    const ignored = crossEntropy(logits, tensor([0, -100], { dtype: "int64" })).item();
    assert.ok(Math.abs(ignored - Math.LN2) < 1e-15, `ignored ${ignored}`);
    // label smoothing ε=0.2 with C=2: target distribution (1−ε)·onehot + ε/C → row 0 still ln 2 (uniform
    // prediction); row 1: −(0.1·log(1/4) + 0.9·log(3/4)) = 0.1·ln 4 + 0.9·ln(4/3)
    const smooth = crossEntropy(logits, targets, { reduction: "none", labelSmoothing: 0.2 }).toNumbers();
    assertAllClose(
      smooth,
      [Math.LN2, 0.1 * Math.log(4) + 0.9 * Math.log(4 / 3)],
      { rtol: 1e-14, atol: 0 },
      "ls",
    );
  });
});

test("topk with ties returns the tied values and both of their indices", () => {
  tidy(() => {
    const [values, indices] = tensor([1, 3, 3, 2]).topk(2);
    assert.deepEqual(values.toNumbers(), [3, 3]);
    assert.deepEqual([...indices.toNumbers()].sort(), [1, 2]);
    assert.equal(indices.dtype, "int64");
    const [v2, i2] = topk(tensor([5, 1, 1, 4]), 2, -1, false);
    assert.deepEqual(v2.toNumbers(), [1, 1]);
    assert.deepEqual([...i2.toNumbers()].sort(), [1, 2]);
    // sort is stable: equal elements keep their order
    const [, order] = tensor([2, 1, 2, 1]).sort(-1, false, true);
    assert.deepEqual(order.toNumbers(), [1, 3, 0, 2]);
  });
});

test("an integer scalar keeps an int64 tensor int64; a fractional one promotes to float32", () => {
  tidy(() => {
    const i = tensor([1, 2, 3], { dtype: "int64" });
    const plus = i.add(1); // 2, 3, 4
    assert.equal(plus.dtype, "int64");
    assert.deepEqual(plus.toNumbers(), [2, 3, 4]);
    assert.equal(i.mul(3).dtype, "int64");
    assert.equal(i.sub(1).dtype, "int64");
    assert.equal(i.rsub(10).dtype, "int64");
    assert.equal(i.pow(2).dtype, "int64");
    assert.equal(i.add(1, 2).dtype, "int64"); // 1·2 is still an integer
    const half = i.add(0.5);
    assert.equal(half.dtype, "float32");
    assert.deepEqual(half.toNumbers(), [1.5, 2.5, 3.5]);
    assert.equal(i.div(2).dtype, "float32"); // true division, like torch.div
    assert.equal(i.eq(2).dtype, "bool");
    // a float tensor stays float whatever the scalar
    assert.equal(tensor([1.5]).add(1).dtype, "float32");
    assert.equal(tensor(Float64Array.from([1.5])).mul(2).dtype, "float64");
    assert.equal(tensor([1], { dtype: "int32" }).add(1).dtype, "int32");
  });
});

test("arange dtype rules: integer arguments give int64, any fractional one float32, dtype overrides", () => {
  tidy(() => {
    const a = arange(5);
    assert.equal(a.dtype, "int64");
    assert.deepEqual(a.toNumbers(), [0, 1, 2, 3, 4]);
    const b = arange(2, 8, 2);
    assert.equal(b.dtype, "int64");
    assert.deepEqual(b.toNumbers(), [2, 4, 6]);
    const c = arange(0, 1, 0.25);
    assert.equal(c.dtype, "float32");
    assert.deepEqual(c.toNumbers(), [0, 0.25, 0.5, 0.75]);
    const d = arange(0.5, 3);
    assert.equal(d.dtype, "float32");
    assert.deepEqual(d.toNumbers(), [0.5, 1.5, 2.5]);
    const e = arange(0, 3, 1, { dtype: "float64" });
    assert.equal(e.dtype, "float64");
    assert.deepEqual(e.toNumbers(), [0, 1, 2]);
    assert.equal(arange(3, undefined, 1, { dtype: "int32" }).dtype, "int32");
    assert.deepEqual(arange(0).shape, [0]);
  });
});

test("dtype conversions: float32 ↔ float64 ↔ int, bfloat16 and float16 rounding and round trips", () => {
  tidy(() => {
    // 1.1 in bfloat16 (8 significant bits): 1 + 13/128 = 1.1015625; in float16 (11 bits): 1 + 102/1024
    const x = tensor([1.1, -2.5, 65504, 70000]);
    assert.deepEqual(x.to("bfloat16").toNumbers(), [1.1015625, -2.5, 65536, 70144]);
    assert.deepEqual(x.to("float16").toNumbers(), [1.099609375, -2.5, 65504, Infinity]);
    // values representable in 16 bits survive the round trip exactly
    const exact = [1.5, -0.25, 256, 0.0078125, -3];
    for (const dt of ["bfloat16", "float16"] as const) {
      const rt = tensor(exact).to(dt).to("float32");
      assert.equal(rt.dtype, "float32");
      assert.deepEqual(rt.toNumbers(), exact, dt);
    }
    // 16-bit tensors' bytes are their 2-byte encodings: 1.0 = 0x3F80 (bf16), 0x3C00 (f16), little-endian
    assert.deepEqual([...tensor([1]).to("bfloat16").bytes()], [0x80, 0x3f]);
    assert.deepEqual([...tensor([1]).to("float16").bytes()], [0x00, 0x3c]);
    const bf = fromBytes(Uint16Array.from([0x3f80, 0xc020, 0x4049]), "bfloat16", [3]);
    assert.equal(bf.dtype, "bfloat16");
    // 0xC020 = −2.5, 0x4049 = 3.140625
    assert.deepEqual(bf.toNumbers(), [1, -2.5, 3.140625]);
    // float → int truncates toward zero
    assert.deepEqual(tensor([-1.7, -0.5, 0.5, 2.9]).to("int64").toNumbers(), [-1, 0, 0, 2]);
    assert.deepEqual(tensor([-1.7, 0, 2.9]).to("bool").toNumbers(), [1, 0, 1]);
    // float32 → float64 is exact; float64 → float32 rounds
    const d = tensor(Float64Array.from([0.1]))
      .to("float32")
      .to("float64")
      .toNumbers()[0];
    assert.equal(d, Math.fround(0.1));
    assert.equal(tensor([1]).float().dtype, "float32");
  });
});

test("int64 ↔ BigInt64Array is exact beyond 2^53", () => {
  tidy(() => {
    const big = 2n ** 53n + 1n;
    const t = tensor(BigInt64Array.from([1n, -2n, big, -(2n ** 62n)]));
    assert.equal(t.dtype, "int64");
    const back = t.toArray();
    assert.ok(back instanceof BigInt64Array, "int64 reads back as BigInt64Array");
    assert.deepEqual(Array.from(back), [1n, -2n, big, -(2n ** 62n)]);
    // integer arithmetic stays exact
    assert.deepEqual(Array.from(t.add(1).toArray() as BigInt64Array), [2n, -1n, big + 1n, -(2n ** 62n) + 1n]);
    // toNumbers converts with Number() (and so rounds past 2^53)
    assert.equal(t.toNumbers()[2], Number(big));
    // numbers → int64 via dtype
    const fromNumbers = tensor([3, -4], { dtype: "int64" }).toArray();
    assert.deepEqual(Array.from(fromNumbers as BigInt64Array), [3n, -4n]);
    // int32 / int16 / int8 / uint8 typed arrays keep their dtype
    assert.equal(tensor(Int32Array.from([1])).dtype, "int32");
    assert.equal(tensor(Int16Array.from([1])).dtype, "int16");
    assert.equal(tensor(Int8Array.from([1])).dtype, "int8");
    assert.equal(tensor(Uint8Array.from([1])).dtype, "uint8");
    assert.equal(tensor(Float64Array.from([1])).dtype, "float64");
  });
});

test("bool tensors: creation, logic, reductions, item", () => {
  tidy(() => {
    const b = tensor([1, 0, 1, 1], { dtype: "bool" });
    assert.equal(b.dtype, "bool");
    const arr = b.toArray();
    assert.ok(arr instanceof Uint8Array, "bool reads back as Uint8Array");
    assert.deepEqual(Array.from(arr), [1, 0, 1, 1]);
    assert.deepEqual(b.logicalNot().toNumbers(), [0, 1, 0, 0]);
    const s = b.sum(); // torch sums bools into int64
    assert.equal(s.dtype, "int64");
    assert.equal(s.item(), 3);
    assert.equal(tensor([true], { dtype: "bool" }).item(), 1);
    assert.equal(full([2], false).dtype, "bool");
    assert.deepEqual(tensor([0.5, 2]).gt(1).toNumbers(), [0, 1]);
    assert.equal(b.to("float32").dtype, "float32");
  });
});

test("sdpa: a boolean mask excludes keys; an all-zero float mask equals no mask; a causal mask", () => {
  tidy(() => {
    // One query, keys [1,0] and [0,1], values 10 and 20, d = 2: scores (q·k)/√2 with q = [0, 0] are equal,
    // so attention averages the values → 15; masking key 1 leaves 10.
    const q = tensor(Float64Array.from([0, 0]), { shape: [1, 1, 2] });
    const k = tensor(Float64Array.from([1, 0, 0, 1]), { shape: [1, 2, 2] });
    const v = tensor(Float64Array.from([10, 10, 20, 20]), { shape: [1, 2, 2] });
    assert.deepEqual(scaledDotProductAttention(q, k, v).toNumbers(), [15, 15]);
    const mask = tensor([1, 0], { dtype: "bool", shape: [1, 1, 2] });
    assert.deepEqual(scaledDotProductAttention(q, k, v, { mask }).toNumbers(), [10, 10]);
    const zero = zeros([1, 1, 2], { dtype: "float64" });
    assert.deepEqual(scaledDotProductAttention(q, k, v, { mask: zero }).toNumbers(), [15, 15]);
    // additive mask [0, ln 3] weights the values 1:3 → 10·1/4 + 20·3/4 = 17.5
    const add = tensor(Float64Array.from([0, Math.log(3)]), { shape: [1, 1, 2] });
    assertAllClose(
      scaledDotProductAttention(q, k, v, { mask: add }).toNumbers(),
      [17.5, 17.5],
      {
        rtol: 1e-14,
        atol: 0,
      },
      "additive",
    );
    // causal over 2 positions: query 0 sees only key 0
    const q2 = zeros([1, 2, 2], { dtype: "float64" });
    assert.deepEqual(scaledDotProductAttention(q2, k, v, { isCausal: true }).toNumbers(), [10, 10, 15, 15]);
  });
});

test("layer_norm normalizes to zero mean and unit variance, then applies weight and bias", () => {
  tidy(() => {
    // [1, 2, 3]: mean 2, biased variance 2/3 → (x−2)/√(2/3) = [−1.2247…, 0, 1.2247…]
    const x = tensor(Float64Array.from([1, 2, 3]));
    const s = Math.sqrt(2 / 3 + 1e-5);
    assertAllClose(layerNorm(x, [3]).toNumbers(), [-1 / s, 0, 1 / s], { rtol: 1e-14, atol: 1e-15 }, "ln");
    const w = tensor(Float64Array.from([2, 2, 2]));
    const b = tensor(Float64Array.from([1, 1, 1]));
    assertAllClose(
      layerNorm(x, [3], w, b).toNumbers(),
      [1 - 2 / s, 1, 1 + 2 / s],
      { rtol: 1e-14, atol: 0 },
      "wb",
    );
  });
});

test("embedding with padding_idx: the forward values are the plain lookup", () => {
  tidy(() => {
    const w = tensor(
      [
        [0, 0],
        [1, 2],
        [3, 4],
      ],
      { dtype: "float64" },
    );
    const idx = tensor([2, 0, 1], { dtype: "int64" });
    assert.deepEqual(embedding(w, idx, 0).toNumbers(), [3, 4, 0, 0, 1, 2]);
    assert.deepEqual(embedding(w, idx).shape, [3, 2]);
    assert.equal(embedding(w, tensor([[1]], { dtype: "int64" })).ndim, 3);
  });
});

test("gelu: erf form and tanh form at hand-computed points", () => {
  tidy(() => {
    // gelu(x) = x·Φ(x); Φ(1) = 0.8413447460685429 (standard normal CDF)
    const x = tensor(Float64Array.from([0, 1, -1]));
    assertAllClose(
      x.gelu().toNumbers(),
      [0, 0.8413447460685429, -(1 - 0.8413447460685429)],
      { rtol: 1e-14, atol: 1e-16 },
      "erf",
    );
    // tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715x³)))
    const tanhForm = (v: number) =>
      0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    assertAllClose(
      x.gelu("tanh").toNumbers(),
      [0, tanhForm(1), tanhForm(-1)],
      { rtol: 1e-14, atol: 1e-16 },
      "tanh",
    );
  });
});

test("creation ops: zeros / ones / full / eye / empty shapes and dtypes", () => {
  tidy(() => {
    assert.deepEqual(zeros([2, 3]).toNumbers(), [0, 0, 0, 0, 0, 0]);
    assert.equal(zeros([2]).dtype, "float32");
    assert.deepEqual(ones([2], { dtype: "int64" }).toNumbers(), [1, 1]);
    assert.deepEqual(full([2, 1], 2.5, { dtype: "float64" }).toNumbers(), [2.5, 2.5]);
    assert.deepEqual(eye(2).toNumbers(), [1, 0, 0, 1]);
    const e = empty([3, 4], { dtype: "float16" });
    assert.deepEqual(e.shape, [3, 4]);
    assert.equal(e.dtype, "float16");
    assert.deepEqual(empty([0]).shape, [0]);
    const g = zeros([2], { requiresGrad: true });
    assert.equal(g.requiresGrad, true);
    assert.equal(zeros([]).ndim, 0);
    assert.equal(zeros([]).numel, 1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Random ops: shapes, ranges, statistics, seeded reproducibility

forEachDevice("rand / randn / randint / randperm: shapes, ranges, statistics", (device) => {
  tidy(() => {
    const d = dev(device);
    manualSeed(1234);
    const u = rand([200, 100], { device: d });
    assert.deepEqual(u.shape, [200, 100]);
    assert.equal(u.dtype, "float32");
    const uv = u.toNumbers();
    assert.ok(
      uv.every((x) => x >= 0 && x < 1),
      "rand in [0, 1)",
    );
    const mean = uv.reduce((a, b) => a + b, 0) / uv.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `rand mean ${mean}`);

    const z = randn([200, 100], { device: d, dtype: "float64" });
    assert.equal(z.dtype, "float64");
    const zv = z.toNumbers();
    const zm = zv.reduce((a, b) => a + b, 0) / zv.length;
    const zs = Math.sqrt(zv.reduce((a, b) => a + (b - zm) ** 2, 0) / zv.length);
    assert.ok(Math.abs(zm) < 0.03, `randn mean ${zm}`);
    assert.ok(Math.abs(zs - 1) < 0.03, `randn std ${zs}`);

    const r = randint(-3, 4, [5000], { device: d });
    assert.equal(r.dtype, "int64");
    const rv = r.toNumbers();
    assert.deepEqual(
      [...new Set(rv)].sort((a, b) => a - b),
      [-3, -2, -1, 0, 1, 2, 3],
    );
    assert.equal(randint(0, 10, [2, 3], { dtype: "int32", device: d }).dtype, "int32");

    const p = randperm(50, { device: d });
    assert.equal(p.dtype, "int64");
    assert.deepEqual(
      [...p.toNumbers()].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.notDeepEqual(
      p.toNumbers(),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });
});

forEachDevice("random ops are reproducible under manualSeed", (device) => {
  tidy(() => {
    const d = dev(device);
    const draw = () => [
      ...rand([5], { device: d }).toNumbers(),
      ...randn([5], { device: d }).toNumbers(),
      ...randint(0, 100, [5], { device: d }).toNumbers(),
      ...randperm(10, { device: d }).toNumbers(),
      ...zeros([5], { device: d }).uniform_(-2, 3).toNumbers(),
      ...zeros([5], { device: d }).normal_(10, 2).toNumbers(),
      ...dropout(ones([20], { device: d }), 0.5, true).toNumbers(),
    ];
    manualSeed(42);
    const a = draw();
    manualSeed(42);
    const b = draw();
    const c = draw();
    assert.deepEqual(a, b);
    assert.notDeepEqual(b, c);
  });
});

forEachDevice("uniform_ and normal_ fill in place with the requested distribution", (device) => {
  tidy(() => {
    manualSeed(5);
    const t = zeros([20000], { device: dev(device), dtype: "float64" });
    const same = t.uniform_(-2, 3);
    assert.equal(same, t); // returns this
    const u = t.toNumbers();
    assert.ok(
      u.every((x) => x >= -2 && x < 3),
      "uniform_ in [-2, 3)",
    );
    const um = u.reduce((a, b) => a + b, 0) / u.length;
    assert.ok(Math.abs(um - 0.5) < 0.05, `uniform mean ${um}`);
    t.normal_(10, 2);
    const v = t.toNumbers();
    const vm = v.reduce((a, b) => a + b, 0) / v.length;
    const vs = Math.sqrt(v.reduce((a, b) => a + (b - vm) ** 2, 0) / v.length);
    assert.ok(Math.abs(vm - 10) < 0.05, `normal mean ${vm}`);
    assert.ok(Math.abs(vs - 2) < 0.05, `normal std ${vs}`);
  });
});

forEachDevice(
  "dropout: identity when not training; zeros ≈ p and kept values scaled by 1/(1−p)",
  (device) => {
    tidy(() => {
      const d = dev(device);
      manualSeed(9);
      const x = rand([100000], { device: d }).add(0.5); // all > 0, so a zero means "dropped"
      const xs = x.toNumbers();
      const off = dropout(x, 0.3, false);
      assert.deepEqual(off.toNumbers(), xs);
      assert.deepEqual(dropout(x, 0, true).toNumbers(), xs);
      for (const p of [0.1, 0.3, 0.7]) {
        const y = dropout(x, p, true).toNumbers();
        let zeros = 0;
        for (let i = 0; i < y.length; i++) {
          if (y[i] === 0) zeros++;
          else {
            const want = xs[i]! / (1 - p);
            assert.ok(Math.abs(y[i]! - want) <= 1e-6 * want, `kept value ${y[i]} vs ${want}`);
          }
        }
        assert.ok(Math.abs(zeros / y.length - p) < 0.01, `p=${p}: zero fraction ${zeros / y.length}`);
      }
      // p = 1 drops everything
      assert.ok(
        dropout(x, 1, true)
          .toNumbers()
          .every((v) => v === 0),
        "p = 1 drops everything",
      );
      // seeded: the same mask twice
      manualSeed(3);
      const a = dropout(x, 0.5, true).toNumbers();
      manualSeed(3);
      const b = dropout(x, 0.5, true).toNumbers();
      assert.deepEqual(a, b);
    });
  },
);
