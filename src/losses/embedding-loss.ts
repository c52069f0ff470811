// What every loss shares: the EmbeddingLoss contract (embed once, score many: modifiers such as
// MatryoshkaLoss and the cached loss compose through `lossFromEmbeddings` instead of patching the model's
// forward like ST's ForwardDecorator), the Embedder a loss that runs the model itself needs (the cached
// loss), the similarity matrices and the input checks. src/losses sees only the engine.
import type { Device, Tensor } from "../engine/index.ts";

/**
 * A loss over sentence embeddings. The trainer embeds each text column once — (anchor, positive, …) for
 * the ranking losses — and passes the (B, D) tensors, still attached to the model's graph; the loss returns a
 * scalar tensor the trainer back-propagates. A loss never runs the model: that is what lets MatryoshkaLoss
 * re-score the same embeddings at every dimension.
 */
export interface EmbeddingLoss {
  /** The sentence-transformers class this loss corresponds to (for the model card), e.g. "MatryoshkaLoss". */
  readonly name: string;
  /**
   * The loss of one batch. `embeddings` holds one (B, D) tensor per input column; `labels` is for losses
   * that take them (none of the ranking losses do). Returns a 0-d tensor on the embeddings' device and dtype.
   */
  lossFromEmbeddings(embeddings: readonly Tensor[], labels?: Tensor | null, context?: LossContext): Tensor;
  /** The loss's settings with sentence-transformers' keys (`get_config_dict`), for the model card. */
  configDict(): Record<string, unknown>;
  /** BibTeX of the paper behind the loss (sentence-transformers' `citation`). */
  readonly citation: string;
}

/**
 * sentence-transformers' `gather_across_devices`: the data-parallel group as a loss sees it (src/distributed's
 * ProcessGroup fits this interface; the trainer injects it, so losses import nothing above the engine). With it,
 * each rank scores its own anchors against every rank's candidates, so an anchor sees the negatives of the whole
 * global batch instead of its shard's.
 */
export interface CrossDeviceGather {
  /** This process's rank: its rows sit at rank × B in a gathered tensor. */
  readonly rank: number;
  readonly worldSize: number;
  /**
   * (B, …) -> (worldSize · B, …): every rank's rows in rank order, differentiable (the backward pass sums the
   * gradient of the gathered rows over ranks and hands each rank its own rows' slice: torch.distributed.nn's
   * all_gather). Every rank must call it at the same point with the same shape.
   */
  allGatherWithGrad(t: Tensor): Tensor;
}

/**
 * What a loss may need besides the trained model's embeddings and the labels. Modifiers that re-score the
 * embeddings (MatryoshkaLoss) hand it to the inner loss unchanged.
 */
export interface LossContext {
  /**
   * GISTEmbedLoss: the guide model's embeddings of the same columns, one (B, Dg) tensor per column, computed
   * without autograd. They only choose which similarities are masked, so no gradient flows through them, and a
   * modifier never truncates them (sentence-transformers' MatryoshkaLoss shrinks the trained model's output only).
   */
  guideEmbeddings?: readonly Tensor[];
}

/**
 * What a loss that runs the model itself (CachedMultipleNegativesRankingLoss) needs of it: texts in,
 * pooled sentence embeddings (n, D) out — un-normalized, as the model's forward returns them, and recorded by
 * autograd when grad mode is on. The model's train/eval mode (dropout) is the caller's business; the loss
 * only replays the random state. A `(texts, options?) => Tensor` method fits this interface too.
 */
export interface Embedder {
  embed(texts: readonly string[]): Tensor;
  /**
   * Where the model runs. A CUDA device here makes the cached loss save and replay that device's generator
   * as well as the CPU's; when absent it does so for cuda:0 whenever CUDA is available.
   */
  readonly device?: Device;
}

/** Similarity of every row of one set of embeddings to every row of another. */
export type Similarity = "cosine" | "dot";

/** sentence-transformers' name of each similarity function (`similarity_fct.__name__`). */
export const ST_SIMILARITY_NAME: Readonly<Record<Similarity, string>> = {
  cosine: "cos_sim",
  dot: "dot_score",
};

/** The eps of torch.nn.functional.normalize, which sentence-transformers' `normalize_embeddings` uses. */
export const NORMALIZE_EPS = 1e-12;

// ports sentence_transformers@85ec6455 util/similarity.py#L29-45 cos_sim, #L71-85 dot_score
/** (N, D), (M, D) -> (N, M): cos_sim = normalize(a) · normalize(b)ᵀ, normalize = x / max(‖x‖, 1e-12). */
export function cosSim(a: Tensor, b: Tensor): Tensor {
  const aNorm = a.normalize(-1, NORMALIZE_EPS); // (N, D)
  const bNorm = b.normalize(-1, NORMALIZE_EPS); // (M, D)
  const bT = bNorm.transpose(0, 1); // (D, M)
  const out = aNorm.mm(bT); // (N, M)
  for (const t of [aNorm, bNorm, bT]) t.dispose();
  return out;
}

/** (N, D), (M, D) -> (N, M): dot_score = a · bᵀ. */
export function dotScore(a: Tensor, b: Tensor): Tensor {
  const bT = b.transpose(0, 1); // (D, M)
  const out = a.mm(bT); // (N, M)
  bT.dispose();
  return out;
}

export function similarityMatrix(similarity: Similarity, a: Tensor, b: Tensor): Tensor {
  return similarity === "cosine" ? cosSim(a, b) : dotScore(a, b);
}

const shapeOf = (t: Tensor) => `[${t.shape.join(", ")}]`;

/**
 * Checks the embedding columns of a ranking loss: at least `minColumns` of them, each (B, D) with the same
 * B ≥ 1 and the same D. Returns B and D.
 */
export function checkEmbeddingColumns(
  loss: string,
  embeddings: readonly Tensor[],
  minColumns = 2,
): { batchSize: number; dim: number } {
  if (embeddings.length < minColumns) {
    throw new RangeError(
      `${loss}: expected at least ${minColumns} embedding columns (anchor, positive[, negative…]), got ${embeddings.length}`,
    );
  }
  const first = embeddings[0] as Tensor;
  if (first.ndim !== 2) throw new RangeError(`${loss}: column 0 must be (batch, dim), got ${shapeOf(first)}`);
  const [batchSize, dim] = first.shape as [number, number];
  if (batchSize < 1) throw new RangeError(`${loss}: the batch is empty`);
  embeddings.forEach((e, i) => {
    if (e.ndim !== 2 || e.size(0) !== batchSize || e.size(1) !== dim) {
      throw new RangeError(
        `${loss}: column ${i} has shape ${shapeOf(e)} but column 0 has [${batchSize}, ${dim}]: every column needs ` +
          `the same batch size and embedding dimension`,
      );
    }
  });
  return { batchSize, dim };
}

/** The same check on text columns (for a loss that embeds them itself). Returns the batch size. */
export function checkTextColumns(
  loss: string,
  columns: readonly (readonly string[])[],
  minColumns = 2,
): number {
  if (columns.length < minColumns) {
    throw new RangeError(
      `${loss}: expected at least ${minColumns} text columns (anchor, positive[, negative…]), got ${columns.length}`,
    );
  }
  const batchSize = (columns[0] as readonly string[]).length;
  if (batchSize < 1) throw new RangeError(`${loss}: the batch is empty`);
  columns.forEach((c, i) => {
    if (c.length !== batchSize) {
      throw new RangeError(
        `${loss}: column ${i} has ${c.length} texts but column 0 has ${batchSize}: every column needs the same batch size`,
      );
    }
  });
  return batchSize;
}
