// The PyTorch golden fixture (test/fixtures/engine/ops_golden.json, written by make_ops_golden.py) and the
// comparison helpers the engine tests share.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromBytes, tensor, type Device, type DType, type Tensor } from "../../src/engine/index.ts";

/** A tensor as the fixture writes it: row-major values, non-finite numbers as strings. */
export interface Encoded {
  dtype: DType;
  shape: number[];
  data: (number | string)[];
}

export interface GoldenCase {
  id: string;
  /** The op of the addon's table (native/ops.cc) the case exercises. */
  op: string;
  inputs: Encoded[];
  args: Record<string, unknown>;
  out: Encoded | Encoded[];
}

export interface AdamWGolden {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  p1: Encoded;
  p2: Encoded;
  grads1: Encoded[];
  grads2: (Encoded | null)[];
  steps: { p1: Encoded; p2: Encoded; expAvg1: Encoded; expAvgSq1: Encoded; expAvg2: Encoded | null }[];
}

export interface ClipGolden {
  maxNorm: number;
  normType: number | string;
  grads: Encoded[];
  totalNorm: number;
  clipped: Encoded[];
}

export interface Golden {
  torch: string;
  cases: GoldenCase[];
  adamw: AdamWGolden;
  clipGradNorm: ClipGolden[];
}

let cached: Golden | undefined;
export function loadGolden(): Golden {
  cached ??= JSON.parse(
    readFileSync(new URL("../fixtures/engine/ops_golden.json", import.meta.url), "utf8"),
  ) as Golden;
  return cached;
}

/** A fixture number: "Infinity", "-Infinity" and "NaN" are written as strings. */
export function num(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (v === "NaN") return NaN;
  throw new Error(`not a fixture number: ${JSON.stringify(v)}`);
}

/** Builds the tensor a fixture entry describes, on `device`. */
export function decode(e: Encoded, device: Device = "cpu"): Tensor {
  const values = e.data.map(num);
  const dev = device === "cpu" ? undefined : device;
  switch (e.dtype) {
    case "float64":
      return tensor(Float64Array.from(values), { shape: e.shape, device: dev });
    case "float32":
      return tensor(Float32Array.from(values), { shape: e.shape, device: dev });
    case "float16":
    case "bfloat16":
      return tensor(Float32Array.from(values), { shape: e.shape, dtype: e.dtype, device: dev });
    case "int64":
      return tensor(
        BigInt64Array.from(values, (v) => BigInt(v)),
        { shape: e.shape, device: dev },
      );
    case "int32":
      return tensor(Int32Array.from(values), { shape: e.shape, device: dev });
    case "int16":
      return tensor(Int16Array.from(values), { shape: e.shape, device: dev });
    case "int8":
      return tensor(Int8Array.from(values), { shape: e.shape, device: dev });
    case "uint8":
      return tensor(Uint8Array.from(values), { shape: e.shape, device: dev });
    case "bool":
      return fromBytes(Uint8Array.from(values), "bool", e.shape, dev);
  }
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** Default tolerances by dtype: float64 1e-12, float32 1e-6 (1e-5 on CUDA), conversions to 16-bit exact. */
export function toleranceFor(dtype: DType, device: Device = "cpu"): Tolerance {
  if (dtype === "float64") return { rtol: 1e-12, atol: 1e-12 };
  if (dtype === "float32") return device === "cpu" ? { rtol: 1e-6, atol: 1e-6 } : { rtol: 1e-5, atol: 1e-5 };
  if (dtype === "float16" || dtype === "bfloat16") return { rtol: 0, atol: 0 };
  return { rtol: 0, atol: 0 };
}

/** |a − e| ≤ atol + rtol·|e|, with NaN matching NaN and infinities matching exactly. */
export function closeTo(a: number, e: number, tol: Tolerance): boolean {
  if (Number.isNaN(e)) return Number.isNaN(a);
  if (!Number.isFinite(e)) return a === e;
  return Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
}

/** Asserts numbers match elementwise; the message names the first mismatch. */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label = "",
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${label}: ${actual.length} values, expected ${expected.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!closeTo(a, e, tol)) {
      assert.fail(
        `${label}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e)}, rtol ${tol.rtol}, atol ${tol.atol})`,
      );
    }
  }
}

/** Asserts a tensor equals a fixture entry: dtype, shape and values (integers exactly, int64 as BigInt). */
export function assertMatches(actual: Tensor, expected: Encoded, label: string, tol?: Tolerance): void {
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  const values = actual.toArray();
  const want = expected.data.map(num);
  if (values instanceof BigInt64Array) {
    assert.deepEqual(
      Array.from(values),
      want.map((v) => BigInt(v)),
      `${label}: int64 values`,
    );
    return;
  }
  assertAllClose(values, want, tol ?? toleranceFor(expected.dtype, actual.device), label);
}
