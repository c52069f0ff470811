// The module system: parameters addressed by Hugging Face names (VarStore / ParamPath, after tch-rs and candle),
// the Module base class (train/eval, namedParameters, freeze, AdamW groups) and the basic layers.
export {
  init,
  NO_DECAY,
  ParamPath,
  toWeightSource,
  VarStore,
  WeightError,
  type GetOptions,
  type Init,
  type Variable,
  type VarStoreOptions,
  type WeightSource,
  type WeightSourceLike,
} from "./var-store.ts";
export { Module } from "./module.ts";
export {
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  type EmbeddingOptions,
  type LayerNormOptions,
  type LinearOptions,
} from "./layers.ts";
