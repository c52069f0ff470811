// Losses over sentence embeddings. Each takes the embeddings the trainer computed (lossFromEmbeddings), so
// modifiers compose without touching the model; the cached loss alone runs the model, through an Embedder.
export {
  checkEmbeddingColumns,
  checkTextColumns,
  cosSim,
  type CrossDeviceGather,
  dotScore,
  NORMALIZE_EPS,
  similarityMatrix,
  ST_SIMILARITY_NAME,
  type Embedder,
  type EmbeddingLoss,
  type LossContext,
  type Similarity,
} from "./embedding-loss.ts";
export {
  MultipleNegativesRankingLoss,
  MNRL_CITATION,
  resolveRankingOptions,
  type MultipleNegativesRankingLossOptions,
} from "./MultipleNegativesRankingLoss.ts";
export { MatryoshkaLoss, shrink, type MatryoshkaLossOptions } from "./MatryoshkaLoss.ts";
export {
  CachedMultipleNegativesRankingLoss,
  type CachedMultipleNegativesRankingLossOptions,
  type CachedStepOptions,
} from "./CachedMultipleNegativesRankingLoss.ts";
export { GISTEmbedLoss, type GISTEmbedLossOptions, type GistMarginStrategy } from "./gist-embed-loss.ts";
