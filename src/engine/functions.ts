// Tensor creation and the functional ops (torch.* / torch.nn.functional.*) over the addon's op table.
import { native } from "./native.ts";
import {
  FLOAT_DTYPES,
  op,
  opMany,
  Tensor,
  type Device,
  type DType,
  type Reduction,
  type Scalar,
  type Shape,
  type TypedArrayLike,
} from "./tensor.ts";

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(t: Tensor, o: CreateOptions): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

type NestedNumbers = number | boolean | readonly NestedNumbers[];

function inferShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let d: NestedNumbers = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0] as NestedNumbers;
  }
  return shape;
}

function flatten(data: NestedNumbers, shape: number[], depth: number, out: number[]): void {
  if (depth === shape.length) {
    if (Array.isArray(data)) throw new Error(`tensor(): ragged nested array at depth ${depth}`);
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new Error(`tensor(): ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const v of data) flatten(v as NestedNumbers, shape, depth + 1, out);
}

const FROM_NUMBERS: Record<DType, (xs: number[]) => ArrayBufferView> = {
  float32: (xs) => Float32Array.from(xs),
  float64: (xs) => Float64Array.from(xs),
  float16: (xs) => Float32Array.from(xs),
  bfloat16: (xs) => Float32Array.from(xs),
  int64: (xs) => BigInt64Array.from(xs, (x) => BigInt(Math.trunc(x))),
  int32: (xs) => Int32Array.from(xs),
  int16: (xs) => Int16Array.from(xs),
  int8: (xs) => Int8Array.from(xs),
  uint8: (xs) => Uint8Array.from(xs),
  bool: (xs) => Uint8Array.from(xs, (x) => (x ? 1 : 0)),
};

/**
 * A tensor from (nested) numbers or a typed array. Numbers default to float32; typed arrays keep their own
 * type (Float64Array → float64, BigInt64Array → int64, Int32Array → int32, Uint8Array → uint8) unless dtype
 * says otherwise. `shape` is required for a flat typed array that is not 1-D.
 */
export function tensor(
  data: NestedNumbers | TypedArrayLike,
  options: CreateOptions & { shape?: Shape } = {},
): Tensor {
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfArray(data);
    const shape = options.shape ?? [data.length];
    let t = new Tensor(native.fromBytes(data, own, [...shape]));
    if (options.dtype && options.dtype !== own) t = replace(t, t.to(options.dtype));
    if (options.device && options.device !== "cpu") t = replace(t, t.to(options.device));
    return finish(t, options);
  }
  const shape = options.shape ? [...options.shape] : inferShape(data);
  const flat: number[] = [];
  if (options.shape) {
    // An explicit shape reinterprets the values in row-major order (like torch.tensor(data).reshape(shape)).
    const values = Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data];
    for (const v of values) flat.push(Number(v));
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== flat.length)
      throw new Error(`tensor(): ${flat.length} values do not fill shape [${shape.join(", ")}]`);
  } else {
    flatten(data, shape, 0, flat);
  }
  const dtype = options.dtype ?? "float32";
  const staging: DType = dtype === "float16" || dtype === "bfloat16" ? "float32" : dtype;
  let t = new Tensor(native.fromBytes(FROM_NUMBERS[dtype](flat), staging, shape));
  if (staging !== dtype) t = replace(t, t.to(dtype));
  if (options.device && options.device !== "cpu") t = replace(t, t.to(options.device));
  return finish(t, options);
}

function replace(old: Tensor, next: Tensor): Tensor {
  old.dispose();
  return next;
}

function dtypeOfArray(a: ArrayBufferView): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array) return "uint8";
  throw new Error(`tensor(): unsupported typed array ${a.constructor.name}`);
}

/** A tensor over raw little-endian bytes (e.g. a safetensors entry); the bytes are copied. */
export function fromBytes(bytes: ArrayBufferView, dtype: DType, shape: Shape, device?: Device): Tensor {
  return new Tensor(native.fromBytes(bytes, dtype, [...shape], device));
}

export const zeros = (shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("zeros", shape, o.dtype, o.device), o);
export const ones = (shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("ones", shape, o.dtype, o.device), o);
export const empty = (shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("empty", shape, o.dtype, o.device), o);
export const full = (shape: Shape, value: Scalar, o: CreateOptions = {}): Tensor =>
  finish(op("full", shape, value, o.dtype ?? (typeof value === "boolean" ? "bool" : "float32"), o.device), o);
/** [start, end) with step; integer arguments give int64 unless dtype says otherwise (like torch.arange). */
export function arange(start: number, end?: number, step = 1, o: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const integral = [s, e, step].every(Number.isInteger);
  return finish(op("arange", s, e, step, o.dtype ?? (integral ? "int64" : "float32"), o.device), o);
}
/** Uniform [0, 1) from the default generator (seed with manualSeed). */
export const rand = (shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("rand", shape, o.dtype, o.device), o);
export const randn = (shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("randn", shape, o.dtype, o.device), o);
/** Integers in [low, high). */
export const randint = (low: number, high: number, shape: Shape, o: CreateOptions = {}): Tensor =>
  finish(op("randint", low, high, shape, o.dtype ?? "int64", o.device), o);
export const randperm = (n: number, o: CreateOptions = {}): Tensor =>
  op("randperm", n, o.dtype ?? "int64", o.device);
export const eye = (n: number, o: CreateOptions = {}): Tensor => finish(op("eye", n, o.dtype, o.device), o);
export const zerosLike = (t: Tensor): Tensor => op("zeros_like", t);
export const onesLike = (t: Tensor): Tensor => op("ones_like", t);

// --- combination ---------------------------------------------------------------------------------------------
export const cat = (ts: readonly Tensor[], dim = 0): Tensor => op("cat", ts, dim);
export const stack = (ts: readonly Tensor[], dim = 0): Tensor => op("stack", ts, dim);
/** cond ? a : b elementwise (broadcasting). */
export const where = (cond: Tensor, a: Tensor, b: Tensor): Tensor => op("where", cond, a, b);

// --- linear algebra --------------------------------------------------------------------------------------------
export const matmul = (a: Tensor, b: Tensor): Tensor => op("matmul", a, b);
/** x Wᵀ + b with W of shape (out, in), as torch.nn.functional.linear. */
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor =>
  op("linear", x, weight, bias ?? null);
/** beta·input + alpha·(a @ b) */
export const addmm = (input: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor =>
  op("addmm", input, a, b, beta, alpha);

// --- neural-network functions --------------------------------------------------------------------------------------
export const layerNorm = (
  x: Tensor,
  normalizedShape: Shape,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor => op("layer_norm", x, normalizedShape, weight ?? null, bias ?? null, eps);
/** Dropout with probability p when training (scales kept values by 1/(1−p)); identity otherwise. */
export const dropout = (x: Tensor, p: number, training: boolean): Tensor =>
  training && p > 0 ? op("dropout", x, p, true) : op("alias", x);
/**
 * Rows of weight selected by integer indices (torch.nn.functional.embedding); a negative paddingIdx counts from
 * the end, as in PyTorch.
 */
export const embedding = (weight: Tensor, indices: Tensor, paddingIdx?: number): Tensor =>
  op(
    "embedding",
    weight,
    indices,
    paddingIdx !== undefined && paddingIdx < 0 ? weight.size(0) + paddingIdx : (paddingIdx ?? null),
  );
/**
 * Cross-entropy of logits (N, C) against integer class targets (N), averaged by default
 * (torch.nn.functional.cross_entropy).
 */
export const crossEntropy = (
  logits: Tensor,
  targets: Tensor,
  options: { reduction?: Reduction; labelSmoothing?: number; ignoreIndex?: number } = {},
): Tensor =>
  op(
    "cross_entropy",
    logits,
    targets,
    options.reduction ?? "mean",
    options.labelSmoothing ?? 0,
    options.ignoreIndex ?? -100,
  );

/**
 * softmax(q kᵀ/√d + mask) v over (..., L, d) tensors: libtorch 2.x's fused kernels (flash / memory-efficient on
 * CUDA), the same math in plain ops on 1.13. A boolean mask marks positions that take part (true = attend); a
 * float mask is added to the scores (−inf or a large negative value for padding). dropoutP is applied as given:
 * pass 0 outside training.
 */
export const scaledDotProductAttention = (
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: { mask?: Tensor | null; dropoutP?: number; isCausal?: boolean } = {},
): Tensor => op("sdpa", q, k, v, options.mask ?? null, options.dropoutP ?? 0, options.isCausal ?? false);

export const topk = (t: Tensor, k: number, dim = -1, largest = true): [Tensor, Tensor] =>
  opMany("topk", t, k, dim, largest, true) as [Tensor, Tensor];

export const isFloating = (t: Tensor): boolean => FLOAT_DTYPES.has(t.dtype);
