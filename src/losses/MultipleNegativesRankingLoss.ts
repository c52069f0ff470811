// MultipleNegativesRankingLoss (InfoNCE with in-batch negatives) and its symmetric variant.
import { arange, cat, crossEntropy, tidy, type Tensor } from "../engine/index.ts";
import {
  checkEmbeddingColumns,
  similarityMatrix,
  type CrossDeviceGather,
  ST_SIMILARITY_NAME,
  type EmbeddingLoss,
  type Similarity,
} from "./embedding-loss.ts";

export interface MultipleNegativesRankingLossOptions {
  /** Multiplies the similarities: 1 / temperature. Default 20 (temperature 0.05); use ~1 with "dot". */
  scale?: number;
  /** "cosine" (ST's cos_sim, the default) or "dot" (ST's dot_score). */
  similarity?: Similarity;
  /**
   * Also rank the anchors for each positive (positives → anchors over the B×B positive block) and average the
   * two directions: sentence-transformers' MultipleNegativesSymmetricRankingLoss. Default false.
   */
  symmetric?: boolean;
  /**
   * sentence-transformers' gather_across_devices: score this rank's anchors against the candidates of every
   * rank of the data-parallel group (the trainer passes its process group; null or absent: this process's batch
   * only). The loss over R ranks × B pairs then equals the one-process loss over the R·B pairs.
   */
  gatherAcrossDevices?: CrossDeviceGather | null;
}

/** Checks and fills in the options (shared with the cached loss). */
export function resolveRankingOptions(
  loss: string,
  options: MultipleNegativesRankingLossOptions,
): Required<Omit<MultipleNegativesRankingLossOptions, "gatherAcrossDevices">> {
  const scale = options.scale ?? 20;
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new RangeError(`${loss}: scale must be a positive finite number (1 / temperature), got ${scale}`);
  }
  const similarity = options.similarity ?? "cosine";
  if (similarity !== "cosine" && similarity !== "dot") {
    throw new RangeError(`${loss}: similarity must be "cosine" or "dot", got ${JSON.stringify(similarity)}`);
  }
  return { scale, similarity, symmetric: options.symmetric ?? false };
}

// ports sentence_transformers@85ec6455 losses/MultipleNegativesRankingLoss.py
// (compute_loss_from_embeddings, L117-156) and losses/MultipleNegativesSymmetricRankingLoss.py (L98-136),
// gather_across_devices included (the gather is injected: see CrossDeviceGather).
/**
 * For each anchor, pick its own positive out of every candidate in the batch: the positives of all anchors,
 * then every hard-negative column. L = mean_i CE(S_i, i) with S_ij = scale · sim(a_i, c_j), candidates
 * c = [positives; negatives_1; …; negatives_k]. A larger batch gives more in-batch negatives. Also known as
 * InfoNCE, the SimCSE loss, or in-batch negatives loss.
 *
 * Args:
 * - `scale` (20): 1 / temperature; `similarity` ("cosine" | "dot"); `symmetric` (false): add the
 *   positive → anchor direction and average (ST's MultipleNegativesSymmetricRankingLoss);
 *   `gatherAcrossDevices` (null): the data-parallel group whose candidates every anchor also ranks against.
 *
 * References:
 * - Henderson et al. 2017, Efficient Natural Language Response Suggestion for Smart Reply, §4.4:
 *   https://arxiv.org/abs/1705.00652
 *
 * Inputs:
 *
 * | Texts                                           | Labels |
 * |-------------------------------------------------|--------|
 * | (anchor, positive) pairs                        | none   |
 * | (anchor, positive, negative) triplets           | none   |
 * | (anchor, positive, negative_1, ..., negative_n) | none   |
 *
 * Recommendations:
 * - `batchSampler: "noDuplicates"`, so that no in-batch negative is a duplicate of an anchor's positive.
 *
 * Relations:
 * - CachedMultipleNegativesRankingLoss computes the same loss and gradient with GradCache: much larger
 *   batches (more negatives) at the memory of a mini-batch, for ~2× the compute.
 * - MatryoshkaLoss wraps it to train every truncated dimension.
 *
 * Example:
 * ```ts
 * import { tensor } from "./src/engine/index.ts";
 * import { MultipleNegativesRankingLoss } from "./src/losses/index.ts";
 *
 * // Embeddings of "It's nice weather outside today." / "He drove to work." and their positives
 * // "It's so sunny." / "He took the car to the office." (what the trainer gets from the model).
 * const anchors = tensor([[0.9, 0.1, 0.3], [0.1, 0.8, -0.2]]); // (2, 3)
 * const positives = tensor([[0.8, 0.2, 0.4], [0.0, 0.9, -0.1]]); // (2, 3)
 * const loss = new MultipleNegativesRankingLoss({ scale: 20 });
 * const value = loss.lossFromEmbeddings([anchors, positives]); // ()
 * console.log(value.item().toFixed(4)); // 0.0000: each anchor is far closer to its own positive
 * const swapped = loss.lossFromEmbeddings([anchors, positives.flip([0])]); // (): positives in the wrong rows
 * console.log(swapped.item().toFixed(4)); // 16.8781
 * ```
 */
export class MultipleNegativesRankingLoss implements EmbeddingLoss {
  readonly scale: number;
  readonly similarity: Similarity;
  readonly symmetric: boolean;
  readonly gatherAcrossDevices: CrossDeviceGather | null;

  constructor(options: MultipleNegativesRankingLossOptions = {}) {
    const resolved = resolveRankingOptions("MultipleNegativesRankingLoss", options);
    this.scale = resolved.scale;
    this.similarity = resolved.similarity;
    this.symmetric = resolved.symmetric;
    this.gatherAcrossDevices = options.gatherAcrossDevices ?? null;
  }

  get name(): string {
    return this.symmetric ? "MultipleNegativesSymmetricRankingLoss" : "MultipleNegativesRankingLoss";
  }

  /** embeddings = [anchors (B, D), positives (B, D), ...hardNegativeColumns (B, D)] -> scalar loss. */
  lossFromEmbeddings(embeddings: readonly Tensor[], _labels?: Tensor | null): Tensor {
    const { batchSize } = checkEmbeddingColumns(this.name, embeddings);
    const gather = this.gatherAcrossDevices;
    return tidy(() => {
      const anchors = embeddings[0] as Tensor; // (B, D)
      let columns = embeddings.slice(1); // 1 + k tensors (B, D)
      let offset = 0;
      if (gather) {
        // Gather every rank's positives and negatives, with gradients, but not the anchors: only this rank's
        // anchors are scored, against all candidates, and the gather's backward sends each candidate's gradient
        // back to the rank that embedded it.
        columns = columns.map((c) => gather.allGatherWithGrad(c)); // 1 + k tensors (W * B, D)
        offset = gather.rank * batchSize; // this rank's positives sit at rank × B in the gathered column
      }
      const candidates = cat(columns, 0); // (W * B * (1 + k), D); W = 1 without the gather
      // anchor[i] should be most similar to candidates[offset + i], its paired positive.
      const rangeLabels = arange(offset, offset + batchSize, 1, { device: anchors.device }); // (B)
      const similarities = similarityMatrix(this.similarity, anchors, candidates); // (B, W * B * (1 + k))
      const scores = similarities.mul(this.scale); // (B, W * B * (1 + k))
      const forwardLoss = crossEntropy(scores, rangeLabels); // ()
      if (!this.symmetric) return forwardLoss;
      let backwardScores: Tensor;
      if (gather) {
        // Given each of this rank's positives, find its anchor among every rank's anchors.
        const allAnchors = gather.allGatherWithGrad(anchors); // (W * B, D)
        const positives = candidates.narrow(0, offset, batchSize); // (B, D)
        backwardScores = similarityMatrix(this.similarity, positives, allAnchors).mul(this.scale); // (B, W * B)
      } else {
        // Given a positive, find its anchor: the transposed positive block.
        backwardScores = scores.narrow(1, 0, batchSize).transpose(0, 1); // (B, B)
      }
      const backwardLoss = crossEntropy(backwardScores, rangeLabels); // ()
      return forwardLoss.add(backwardLoss).div(2); // ()
    });
  }

  configDict(): Record<string, unknown> {
    return {
      scale: this.scale,
      similarity_fct: ST_SIMILARITY_NAME[this.similarity],
      gather_across_devices: this.gatherAcrossDevices !== null,
    };
  }

  get citation(): string {
    return MNRL_CITATION;
  }
}

export const MNRL_CITATION = `@misc{henderson2017efficient,
    title={Efficient Natural Language Response Suggestion for Smart Reply},
    author={Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-hsuan Sung and Laszlo Lukacs and Ruiqi Guo and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
    year={2017},
    eprint={1705.00652},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
`;
