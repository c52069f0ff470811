// The engine: tensors with autograd over libtorch. Everything above it (nn, models, losses, …) imports from here.
export {
  native,
  TorchError,
  threadWaitSettings,
  mallocPolicy,
  MALLOC_DEFAULTS,
  HEAP_BLOCK_BYTES,
  type BuildInfo,
} from "./native.ts";
export {
  Tensor,
  op,
  opMany,
  isDType,
  FLOAT_DTYPES,
  type DType,
  type Device,
  type Shape,
  type Scalar,
  type Reduction,
  type TypedArrayLike,
} from "./tensor.ts";
export * from "./functions.ts";
export { tidy, keep, noGrad, enableGrad, noGradGuard, isGradEnabled, liveTensors } from "./scope.ts";
export * from "./runtime.ts";
export {
  AdamW,
  ADAMW_DEFAULTS,
  clipGradNorm,
  gradNorm,
  type AdamWConfig,
  type AdamWState,
  type ParamGroup,
} from "./optim.ts";
