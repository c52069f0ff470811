// Safetensors checkpoints <-> engine tensors. safetensors.ts and safetensors-index.ts deal only in bytes; this
// file turns their entries into libtorch tensors (one copy: file bytes -> tensor) and writes tensors back.
import {
  fromBytes,
  type Device,
  type DType,
  FLOAT_DTYPES,
  noGrad,
  type Tensor,
  tidy,
} from "../engine/index.ts";
import type { WeightSource } from "../nn/index.ts";
import {
  isLoadableDtype,
  LOADABLE_DTYPES,
  PT_FORMAT_METADATA,
  SafetensorsError,
  writeSafetensors,
  type Dtype,
  type NamedTensorToWrite,
  type TensorReader,
} from "./safetensors.ts";
import { openSafetensors } from "./safetensors-index.ts";

/** Safetensors element type -> engine dtype, for the dtypes ragtune loads. */
export const DTYPE_FROM_SAFETENSORS: Readonly<Partial<Record<Dtype, DType>>> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  I64: "int64",
  I32: "int32",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

/** Engine dtype -> safetensors element type (what `save_file` writes for the torch dtype). */
export const DTYPE_TO_SAFETENSORS: Readonly<Record<DType, Dtype>> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  float64: "F64",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

export interface LoadOptions {
  /** Floating tensors are cast to this dtype (integer ones keep theirs); default: as stored. */
  dtype?: DType;
  device?: Device;
}

/** One entry of a checkpoint as a tensor of its stored dtype, on the CPU. */
export function readTensor(reader: TensorReader, key: string): Tensor {
  const info = reader.info(key);
  const dtype = DTYPE_FROM_SAFETENSORS[info.dtype];
  if (dtype === undefined || !isLoadableDtype(info.dtype)) {
    throw new SafetensorsError(
      reader.path,
      key,
      `dtype ${info.dtype} cannot be loaded (ragtune loads ${[...LOADABLE_DTYPES].join(", ")})`,
    );
  }
  const t = fromBytes(reader.read(key), dtype, info.shape);
  if (FLOAT_DTYPES.has(dtype)) {
    const bad = nonFiniteCount(t);
    if (bad > 0) {
      t.dispose();
      const total = info.shape.reduce((a, b) => a * b, 1);
      throw new SafetensorsError(
        reader.path,
        key,
        `holds ${bad} non-finite value${bad === 1 ? "" : "s"} (NaN or ±Inf) of ${total}: the checkpoint is ` +
          "corrupt or was saved from a diverged run; ragtune refuses to load it",
      );
    }
  }
  return t;
}

/**
 * NaN and ±Inf elements of a floating tensor: x − x is 0 for every finite x (no overflow, unlike a sum) and NaN
 * otherwise, and NaN ≠ 0. One elementwise pass and one reduction per tensor, on the CPU copy just read.
 */
function nonFiniteCount(t: Tensor): number {
  return tidy(() => noGrad(() => t.sub(t).ne(0).sum().item())); // (…) → (…) bool → () int64
}

function convert(t: Tensor, options: LoadOptions): Tensor {
  let out = t;
  const swap = (next: Tensor) => {
    out.dispose();
    out = next;
  };
  noGrad(() => {
    if (options.dtype !== undefined && FLOAT_DTYPES.has(out.dtype) && out.dtype !== options.dtype)
      swap(out.to(options.dtype));
    if (options.device !== undefined && out.device !== options.device) swap(out.to(options.device));
  });
  return out;
}

/** A lazily read checkpoint as a WeightSource: each `get` reads one tensor, which the VarStore takes over. */
export interface SafetensorsSource extends WeightSource {
  readonly reader: TensorReader;
  close(): void;
  [Symbol.dispose](): void;
}

/**
 * Opens a `.safetensors` file, a `*.safetensors.index.json` or a model folder (see `openSafetensors`) as a weight
 * source. Tensors are read on demand in their stored dtype; the VarStore casts them. Close it after loading.
 */
export function safetensorsSource(path: string): SafetensorsSource {
  const reader = openSafetensors(path);
  return {
    reader,
    name: reader.path,
    owned: true,
    has: (key) => reader.has(key),
    get: (key) => (reader.has(key) ? readTensor(reader, key) : undefined),
    keys: () => reader.keys(),
    close: () => reader.close(),
    [Symbol.dispose]: () => reader.close(),
  };
}

/** Reads a whole checkpoint into tensors (floating ones cast to `dtype` if given). The caller disposes them. */
export function loadSafetensors(path: string, options: LoadOptions = {}): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const reader = openSafetensors(path);
  try {
    for (const key of reader.keys()) out.set(key, convert(readTensor(reader, key), options));
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    reader.close();
  }
  return out;
}

/**
 * Writes tensors as a safetensors file, like `safetensors.torch.save_file` (with `{"format": "pt"}` metadata by
 * default, which transformers' loader requires). Tensors may live on any device; their bytes are copied out.
 */
export function saveSafetensors(
  path: string,
  tensors: ReadonlyMap<string, Tensor> | Iterable<readonly [string, Tensor]>,
  metadata: Readonly<Record<string, string>> | undefined = PT_FORMAT_METADATA,
): void {
  const list: NamedTensorToWrite[] = [];
  for (const [name, t] of tensors) {
    list.push({ name, dtype: DTYPE_TO_SAFETENSORS[t.dtype], shape: t.shape, data: t.bytes() });
  }
  writeSafetensors(path, list, metadata);
}
