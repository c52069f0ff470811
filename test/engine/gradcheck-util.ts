// A generic gradient check: autograd's gradient against central finite differences, in float64.
import assert from "node:assert/strict";
import { noGrad, tensor, tidy, type Device, type Shape, type Tensor } from "../../src/engine/index.ts";

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), for inputs and projection weights. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A float64 tensor of the given shape with values uniform in [lo, hi), fixed by seed. */
export function det(shape: Shape, seed: number, lo = -1, hi = 1, device: Device = "cpu"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = prng(seed);
  const data = Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
  return tensor(data, { shape, device: device === "cpu" ? undefined : device });
}

/** Like det, but every value is at least `gap` away from 0 (for abs, relu, sign-dependent kinks). */
export function detAwayFromZero(shape: Shape, seed: number, gap = 0.1, device: Device = "cpu"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = prng(seed);
  const data = Float64Array.from({ length: n }, () => {
    const v = r() * 2 - 1;
    return Math.sign(v || 1) * (gap + Math.abs(v));
  });
  return tensor(data, { shape, device: device === "cpu" ? undefined : device });
}

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Allowed |numeric − analytic| ≤ tol·(1 + |analytic|) (default 1e-6). */
  tol?: number;
  /** Seed of the random projection weights. */
  seed?: number;
  /** Which inputs to check (default all). */
  check?: readonly boolean[];
}

/**
 * Checks the gradients autograd computes for `fn` at `inputs` (float64 tensors, any device) against central
 * finite differences. A scalar objective is formed as Σ_k sum(out_k ⊙ W_k) with fixed random weights W_k, so
 * every output element takes part with a distinct weight. `fn` must be deterministic (reset RNG state inside
 * it for random ops). The inputs are not modified; fresh copies are built for every evaluation.
 * Returns the largest absolute difference seen.
 */
export function gradcheck(
  fn: (xs: Tensor[]) => Tensor | Tensor[],
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): number {
  const eps = options.eps ?? 1e-6;
  const tol = options.tol ?? 1e-6;
  return tidy(() => {
    for (const t of inputs) assert.equal(t.dtype, "float64", "gradcheck needs float64 inputs");
    const device = inputs[0]?.device ?? "cpu";
    const shapes = inputs.map((t) => t.shape);
    const base = inputs.map((t) => Float64Array.from(t.toArray() as Float64Array));
    const make = (arrays: Float64Array[]) =>
      arrays.map((a, i) => tensor(a, { shape: shapes[i], device: device === "cpu" ? undefined : device }));
    const asList = (o: Tensor | Tensor[]) => (Array.isArray(o) ? o : [o]);

    // Analytic: one backward pass through the projected objective.
    const leaves = make(base).map((t) => t.requiresGrad_(true));
    const outs = asList(fn(leaves));
    const r = prng(options.seed ?? 17);
    const weights = outs.map((o) => {
      assert.equal(o.dtype, "float64", "gradcheck needs float64 outputs");
      const w = Float64Array.from({ length: o.numel }, () => r() * 2 - 1);
      return tensor(w, { shape: o.shape, device: device === "cpu" ? undefined : device });
    });
    const objective = (os: Tensor[]) =>
      os.map((o, k) => o.mul(weights[k] as Tensor).sum()).reduce((a, b) => a.add(b));
    objective(outs).backward();
    const analytic = leaves.map((l, i) => {
      const g = l.grad;
      return g === null ? new Float64Array(base[i]!.length) : (g.toArray() as Float64Array);
    });

    // Numeric: central differences, one element at a time.
    const evaluate = (arrays: Float64Array[]) =>
      tidy(() => noGrad(() => objective(asList(fn(make(arrays)))).item()));
    let worst = 0;
    base.forEach((values, i) => {
      if (options.check && !options.check[i]) return;
      for (let j = 0; j < values.length; j++) {
        const plus = base.map((a) => a.slice());
        const minus = base.map((a) => a.slice());
        plus[i]![j] = values[j]! + eps;
        minus[i]![j] = values[j]! - eps;
        const numeric = (evaluate(plus) - evaluate(minus)) / (2 * eps);
        const a = analytic[i]![j]!;
        const diff = Math.abs(numeric - a);
        worst = Math.max(worst, diff);
        if (!(diff <= tol * (1 + Math.abs(a)))) {
          assert.fail(
            `gradient of input ${i} (shape [${shapes[i]}]) at element ${j}: autograd ${a}, finite differences ` +
              `${numeric} (|diff| ${diff})`,
          );
        }
      }
    });
    return worst;
  });
}
