// The Tensor class: one native handle, typed methods over the addon's op table (native/ops.cc), autograd.
// Method names follow PyTorch (camelCase); each method is one line mapping onto one table entry.
import { native, TorchError, type Handle } from "./native.ts";
import { track } from "./scope.ts";

export type DType =
  "float32" | "float16" | "bfloat16" | "float64" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";
export type Device = "cpu" | "cuda" | `cuda:${number}`;
export type Shape = readonly number[];
export type Scalar = number | boolean;
export type Reduction = "none" | "mean" | "sum";

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(["float32", "float16", "bfloat16", "float64"]);

// ---------------------------------------------------------------------------------------------------------
// Op dispatch: names are resolved to table indices once, so the addon's table order is free to change.

const OP_NAMES = [
  "add",
  "add_scalar",
  "sub",
  "sub_scalar",
  "rsub_scalar",
  "mul",
  "mul_scalar",
  "div",
  "div_scalar",
  "pow",
  "pow_scalar",
  "maximum",
  "minimum",
  "clamp",
  "neg",
  "abs",
  "exp",
  "log",
  "log1p",
  "sqrt",
  "rsqrt",
  "reciprocal",
  "square",
  "sin",
  "cos",
  "tanh",
  "erf",
  "sigmoid",
  "relu",
  "gelu",
  "sign",
  "eq",
  "eq_scalar",
  "ne",
  "ne_scalar",
  "lt",
  "lt_scalar",
  "le",
  "le_scalar",
  "gt",
  "gt_scalar",
  "ge",
  "ge_scalar",
  "logical_and",
  "logical_or",
  "logical_not",
  "where",
  "masked_fill",
  "allclose",
  "matmul",
  "mm",
  "bmm",
  "linear",
  "addmm",
  "softmax",
  "log_softmax",
  "layer_norm",
  "dropout",
  "embedding",
  "normalize",
  "cross_entropy",
  "sdpa",
  "reshape",
  "view",
  "permute",
  "transpose",
  "unsqueeze",
  "squeeze",
  "squeeze_dim",
  "expand",
  "flatten",
  "repeat",
  "contiguous",
  "clone",
  "detach",
  "alias",
  "narrow",
  "slice",
  "select",
  "index_select",
  "gather",
  "index_add",
  "scatter_reduce",
  "cat",
  "stack",
  "split",
  "tril",
  "flip",
  "to_dtype",
  "to_device",
  "sum_all",
  "sum",
  "mean_all",
  "mean",
  "max_all",
  "max_dim",
  "min_all",
  "min_dim",
  "argmax",
  "argmin",
  "norm",
  "norm_all",
  "logsumexp",
  "cumsum",
  "topk",
  "sort",
  "zeros",
  "ones",
  "empty",
  "full",
  "arange",
  "rand",
  "randn",
  "randint",
  "randperm",
  "zeros_like",
  "ones_like",
  "eye",
  "add_",
  "mul_scalar_",
  "zero_",
  "fill_",
  "copy_",
  "uniform_",
  "normal_",
] as const;
export type OpName = (typeof OP_NAMES)[number];

const OP_ID: Record<OpName, number> = (() => {
  const table = native.opNames();
  const index = new Map(table.map((n, i) => [n, i]));
  const ids = {} as Record<OpName, number>;
  const missing: string[] = [];
  for (const name of OP_NAMES) {
    const i = index.get(name);
    if (i === undefined) missing.push(name);
    else ids[name] = i;
  }
  if (missing.length > 0) {
    throw new Error(
      `The native addon lacks ops [${missing.join(", ")}]: it is out of date; run npm run build:native`,
    );
  }
  return ids;
})();

type Arg = Tensor | readonly Tensor[] | number | readonly number[] | boolean | string | null | undefined;

function toNative(a: Arg): Handle | Handle[] | number | number[] | boolean | string | null | undefined {
  if (a instanceof Tensor) return a.handle;
  if (Array.isArray(a))
    return a.length > 0 && a[0] instanceof Tensor ? (a as Tensor[]).map((t) => t.handle) : (a as number[]);
  return a as number | boolean | string | null | undefined;
}

/** Calls a table op and wraps its tensor result. */
export function op(name: OpName, ...args: Arg[]): Tensor {
  return new Tensor(native.op(OP_ID[name], ...args.map(toNative)) as Handle);
}

/** Calls a table op that returns several tensors. */
export function opMany(name: OpName, ...args: Arg[]): Tensor[] {
  return (native.op(OP_ID[name], ...args.map(toNative)) as Handle[]).map((h) => new Tensor(h));
}

function opInPlace(name: OpName, ...args: Arg[]): void {
  native.op(OP_ID[name], ...args.map(toNative));
}

const normDim = (dims: number | readonly number[]): number[] =>
  typeof dims === "number" ? [dims] : [...dims];

// ---------------------------------------------------------------------------------------------------------

export type TypedArrayLike =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | Uint16Array;

export class Tensor {
  #handle: Handle;
  #disposed = false;

  /** Wraps a native handle (engine-internal: use the factory functions). */
  constructor(handle: Handle) {
    this.#handle = handle;
    track(this);
  }

  get handle(): Handle {
    if (this.#disposed) throw new TorchError("the tensor was disposed (use after dispose())", "Tensor");
    return this.#handle;
  }

  /** Frees the native tensor now. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    native.dispose(this.#handle);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  get isDisposed(): boolean {
    return this.#disposed;
  }

  // --- metadata ------------------------------------------------------------------------------------------
  get shape(): number[] {
    return native.shape(this.handle);
  }
  get dtype(): DType {
    return native.dtype(this.handle) as DType;
  }
  get device(): Device {
    return native.device(this.handle) as Device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? s.length + dim : dim;
    const v = s[d];
    if (v === undefined)
      throw new TorchError(`dimension ${dim} out of range for shape [${s.join(", ")}]`, "size");
    return v;
  }
  get isContiguous(): boolean {
    return native.isContiguous(this.handle);
  }
  toString(): string {
    const m = native.meta(this.handle);
    return `Tensor(shape=[${m.shape.join(", ")}], dtype=${m.dtype}, device=${m.device})`;
  }

  // --- autograd ------------------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  /** Marks a leaf tensor as a parameter whose gradient autograd accumulates in `.grad`. Returns this. */
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.handle, on);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient (a new handle on it), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g === null ? null : g.handle);
  }
  /** Back-propagates from this tensor; `gradient` is required for non-scalars (a cached loss passes one). */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient?.handle ?? null, options.retainGraph);
  }
  detach(): Tensor {
    return op("detach", this);
  }

  // --- conversion ----------------------------------------------------------------------------------------
  to(target: DType | Device): Tensor {
    return FLOAT_DTYPES.has(target as DType) || INT_DTYPES.has(target as DType)
      ? op("to_dtype", this, target)
      : op("to_device", this, target);
  }
  float(): Tensor {
    return op("to_dtype", this, "float32");
  }
  contiguous(): Tensor {
    return op("contiguous", this);
  }
  clone(): Tensor {
    return op("clone", this);
  }
  /** A second handle on the same tensor (shares storage and autograd identity; dispose both). */
  alias(): Tensor {
    return op("alias", this);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    return Number(native.item(this.handle));
  }
  /** Raw row-major bytes on the CPU (bf16/f16 as their 2-byte encodings). */
  bytes(): Buffer {
    return native.toBytes(this.handle);
  }
  /** Values as a typed array matching the dtype (float16/bfloat16 are widened to Float32Array). */
  toArray(): TypedArrayLike {
    const dt = this.dtype;
    if (dt === "float16" || dt === "bfloat16") {
      const f = this.to("float32");
      try {
        return f.toArray();
      } finally {
        f.dispose();
      }
    }
    const buf = this.bytes();
    const ctor = ARRAY_OF[dt];
    // Copy into a fresh, aligned buffer: Node's Buffer may sit at an unaligned offset of a shared pool.
    const out = new ctor(buf.byteLength / ctor.BYTES_PER_ELEMENT);
    new Uint8Array(out.buffer).set(buf);
    return out;
  }
  /** Values as plain numbers (int64 converted with Number()). */
  toNumbers(): number[] {
    return Array.from(this.toArray() as ArrayLike<number | bigint>, (v) => Number(v));
  }

  // --- arithmetic (broadcasting; a number is a scalar) ---------------------------------------------------
  add(o: Tensor | Scalar, alpha = 1): Tensor {
    return o instanceof Tensor
      ? op("add", this, o, alpha)
      : op("add_scalar", this, alpha === 1 ? o : Number(o) * alpha);
  }
  sub(o: Tensor | Scalar, alpha = 1): Tensor {
    return o instanceof Tensor
      ? op("sub", this, o, alpha)
      : op("sub_scalar", this, alpha === 1 ? o : Number(o) * alpha);
  }
  /** scalar − this */
  rsub(s: Scalar): Tensor {
    return op("rsub_scalar", this, s);
  }
  mul(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("mul", this, o) : op("mul_scalar", this, o);
  }
  div(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("div", this, o) : op("div_scalar", this, o);
  }
  pow(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("pow", this, o) : op("pow_scalar", this, o);
  }
  maximum(o: Tensor): Tensor {
    return op("maximum", this, o);
  }
  minimum(o: Tensor): Tensor {
    return op("minimum", this, o);
  }
  clamp(min?: number, max?: number): Tensor {
    return op("clamp", this, min ?? null, max ?? null);
  }
  clampMin(min: number): Tensor {
    return op("clamp", this, min, null);
  }
  neg(): Tensor {
    return op("neg", this);
  }
  abs(): Tensor {
    return op("abs", this);
  }
  exp(): Tensor {
    return op("exp", this);
  }
  log(): Tensor {
    return op("log", this);
  }
  log1p(): Tensor {
    return op("log1p", this);
  }
  sqrt(): Tensor {
    return op("sqrt", this);
  }
  rsqrt(): Tensor {
    return op("rsqrt", this);
  }
  reciprocal(): Tensor {
    return op("reciprocal", this);
  }
  square(): Tensor {
    return op("square", this);
  }
  sin(): Tensor {
    return op("sin", this);
  }
  cos(): Tensor {
    return op("cos", this);
  }
  tanh(): Tensor {
    return op("tanh", this);
  }
  erf(): Tensor {
    return op("erf", this);
  }
  sigmoid(): Tensor {
    return op("sigmoid", this);
  }
  relu(): Tensor {
    return op("relu", this);
  }
  sign(): Tensor {
    return op("sign", this);
  }
  /** GELU: "none" = exact erf form (BERT's "gelu"), "tanh" = the tanh approximation ("gelu_new"). */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return op("gelu", this, approximate);
  }

  // --- comparison and selection ----------------------------------------------------------------------------
  eq(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("eq", this, o) : op("eq_scalar", this, o);
  }
  ne(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("ne", this, o) : op("ne_scalar", this, o);
  }
  lt(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("lt", this, o) : op("lt_scalar", this, o);
  }
  le(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("le", this, o) : op("le_scalar", this, o);
  }
  gt(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("gt", this, o) : op("gt_scalar", this, o);
  }
  ge(o: Tensor | Scalar): Tensor {
    return o instanceof Tensor ? op("ge", this, o) : op("ge_scalar", this, o);
  }
  logicalAnd(o: Tensor): Tensor {
    return op("logical_and", this, o);
  }
  logicalOr(o: Tensor): Tensor {
    return op("logical_or", this, o);
  }
  logicalNot(): Tensor {
    return op("logical_not", this);
  }
  /** Elements where mask is true are replaced by value. */
  maskedFill(mask: Tensor, value: Scalar): Tensor {
    return op("masked_fill", this, mask, value);
  }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    const t = op("allclose", this, o, rtol, atol);
    try {
      return Boolean(native.item(t.handle));
    } finally {
      t.dispose();
    }
  }

  // --- linear algebra ----------------------------------------------------------------------------------------
  matmul(o: Tensor): Tensor {
    return op("matmul", this, o);
  }
  mm(o: Tensor): Tensor {
    return op("mm", this, o);
  }
  bmm(o: Tensor): Tensor {
    return op("bmm", this, o);
  }

  // --- neural-network functions ------------------------------------------------------------------------------
  softmax(dim: number): Tensor {
    return op("softmax", this, dim);
  }
  logSoftmax(dim: number): Tensor {
    return op("log_softmax", this, dim);
  }
  /** L2-normalize along dim: x / max(‖x‖, eps) (torch.nn.functional.normalize). */
  normalize(dim = -1, eps = 1e-12, p = 2): Tensor {
    return op("normalize", this, p, dim, eps);
  }

  // --- shape ---------------------------------------------------------------------------------------------
  reshape(shape: Shape): Tensor {
    return op("reshape", this, shape);
  }
  view(shape: Shape): Tensor {
    return op("view", this, shape);
  }
  permute(dims: readonly number[]): Tensor {
    return op("permute", this, dims);
  }
  transpose(d0: number, d1: number): Tensor {
    return op("transpose", this, d0, d1);
  }
  /** Transpose of the last two dims. */
  get mT(): Tensor {
    return op("transpose", this, -2, -1);
  }
  unsqueeze(dim: number): Tensor {
    return op("unsqueeze", this, dim);
  }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? op("squeeze", this) : op("squeeze_dim", this, dim);
  }
  expand(shape: Shape): Tensor {
    return op("expand", this, shape);
  }
  flatten(start = 0, end = -1): Tensor {
    return op("flatten", this, start, end);
  }
  repeat(times: readonly number[]): Tensor {
    return op("repeat", this, times);
  }
  tril(diagonal = 0): Tensor {
    return op("tril", this, diagonal);
  }
  flip(dims: readonly number[]): Tensor {
    return op("flip", this, dims);
  }

  // --- indexing ------------------------------------------------------------------------------------------
  narrow(dim: number, start: number, length: number): Tensor {
    return op("narrow", this, dim, start, length);
  }
  /** Python's x[..., start:end:step] along dim (end is clamped; negative indices count from the end). */
  slice(dim: number, start: number, end: number = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return op("slice", this, dim, start, end, step);
  }
  select(dim: number, index: number): Tensor {
    return op("select", this, dim, index);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return op("index_select", this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return op("gather", this, dim, index);
  }
  /** A copy of this with source's slices added at index along dim (torch.index_add): segment sums. */
  indexAdd(dim: number, index: Tensor, source: Tensor): Tensor {
    return op("index_add", this, dim, index, source);
  }
  /**
   * A copy of this with src reduced into it at index along dim (torch.scatter_reduce; reduce "sum", "prod",
   * "mean", "amax" or "amin"); includeSelf keeps this tensor's values in the reduction.
   */
  scatterReduce(
    dim: number,
    index: Tensor,
    src: Tensor,
    reduce: "sum" | "prod" | "mean" | "amax" | "amin",
    includeSelf = true,
  ): Tensor {
    return op("scatter_reduce", this, dim, index, src, reduce, includeSelf);
  }
  split(size: number, dim = 0): Tensor[] {
    return opMany("split", this, size, dim);
  }

  // --- reductions ----------------------------------------------------------------------------------------
  sum(dims?: number | readonly number[], keepDim = false): Tensor {
    return dims === undefined ? op("sum_all", this) : op("sum", this, normDim(dims), keepDim);
  }
  mean(dims?: number | readonly number[], keepDim = false): Tensor {
    return dims === undefined ? op("mean_all", this) : op("mean", this, normDim(dims), keepDim);
  }
  max(): Tensor {
    return op("max_all", this);
  }
  min(): Tensor {
    return op("min_all", this);
  }
  /** [values, indices] of the max along dim. */
  maxDim(dim: number, keepDim = false): [Tensor, Tensor] {
    return opMany("max_dim", this, dim, keepDim) as [Tensor, Tensor];
  }
  minDim(dim: number, keepDim = false): [Tensor, Tensor] {
    return opMany("min_dim", this, dim, keepDim) as [Tensor, Tensor];
  }
  argmax(dim: number, keepDim = false): Tensor {
    return op("argmax", this, dim, keepDim);
  }
  argmin(dim: number, keepDim = false): Tensor {
    return op("argmin", this, dim, keepDim);
  }
  norm(p = 2, dims?: number | readonly number[], keepDim = false): Tensor {
    return dims === undefined ? op("norm_all", this, p) : op("norm", this, p, normDim(dims), keepDim);
  }
  logsumexp(dims: number | readonly number[], keepDim = false): Tensor {
    return op("logsumexp", this, normDim(dims), keepDim);
  }
  cumsum(dim: number): Tensor {
    return op("cumsum", this, dim);
  }
  /** [values, indices] of the k largest (or smallest) along dim. */
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return opMany("topk", this, k, dim, largest, sorted) as [Tensor, Tensor];
  }
  /** [values, indices] sorted along dim; stable keeps the order of equal elements. */
  sort(dim = -1, descending = false, stable = true): [Tensor, Tensor] {
    return opMany("sort", this, dim, descending, stable) as [Tensor, Tensor];
  }

  // --- in place (return this) -----------------------------------------------------------------------------
  add_(o: Tensor, alpha = 1): this {
    opInPlace("add_", this, o, alpha);
    return this;
  }
  mul_(s: Scalar): this {
    opInPlace("mul_scalar_", this, s);
    return this;
  }
  zero_(): this {
    opInPlace("zero_", this);
    return this;
  }
  fill_(s: Scalar): this {
    opInPlace("fill_", this, s);
    return this;
  }
  copy_(src: Tensor): this {
    opInPlace("copy_", this, src);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    opInPlace("uniform_", this, low, high);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    opInPlace("normal_", this, mean, std);
    return this;
  }
}

const INT_DTYPES: ReadonlySet<DType> = new Set(["int64", "int32", "int16", "int8", "uint8", "bool"]);

const ARRAY_OF: Record<
  Exclude<DType, "float16" | "bfloat16">,
  { new (n: number): TypedArrayLike; BYTES_PER_ELEMENT: number }
> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function isDType(s: string): s is DType {
  return FLOAT_DTYPES.has(s as DType) || INT_DTYPES.has(s as DType);
}
