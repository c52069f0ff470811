// GISTEmbedLoss: in-batch negatives ranking whose false negatives — candidates a guide model finds at least as
// close to the anchor as the anchor's own positive — are masked out.
import { arange, cat, crossEntropy, tidy, type Tensor } from "../engine/index.ts";
import {
  checkEmbeddingColumns,
  cosSim,
  type CrossDeviceGather,
  type EmbeddingLoss,
  type LossContext,
} from "./embedding-loss.ts";

export type GistMarginStrategy = "absolute" | "relative";

export interface GISTEmbedLossOptions {
  /** Divides the cosine similarities (the inverse of MNRL's scale). Default 0.01. */
  temperature?: number;
  /**
   * How the guide's anchor–positive similarity g_ii becomes the masking threshold: "absolute" (default) masks
   * candidates with guide similarity > g_ii − margin, "relative" those > g_ii × (1 − margin).
   */
  marginStrategy?: GistMarginStrategy;
  /** Default 0: only candidates the guide finds closer than the positive are masked. */
  margin?: number;
  /** Also contrast each anchor with the other anchors (anchor–anchor block). Default true, as the paper. */
  contrastAnchors?: boolean;
  /** Also contrast each positive with the other positives (positive–positive block). Default true. */
  contrastPositives?: boolean;
  /** The guide model's name, for the model card (ST's config holds the guide model itself). */
  guide?: string;
  /**
   * sentence-transformers' gather_across_devices (see MultipleNegativesRankingLoss): this rank's anchors against
   * every rank's candidates, the guide's embeddings gathered alike. Null or absent: this process's batch only.
   */
  gatherAcrossDevices?: CrossDeviceGather | null;
}

// ports sentence_transformers@85ec6455 losses/GISTEmbedLoss.py (sim_matrix and forward, L136-L240, with
// gather_across_devices) and, for more than one negative column, losses/CachedGISTEmbedLoss.py#L376-L381
// (calculate_loss: one anchor–negative block per column). Two deliberate differences when gathering, so that R
// ranks × B pairs give exactly the one-process loss over the R·B pairs: the anchor–anchor block scores this rank's
// anchors against every rank's (ST keeps it local), and the protected anchor–positive pairs are (i, rank·B + i)
// (ST protects (i, i) with torch.eye, which on ranks > 0 guards another rank's positive and, with a margin > 0,
// lets the true positive be masked to −∞).
/**
 * MultipleNegativesRankingLoss with a guide: for anchor i, the candidates are the positives of the batch, the
 * other anchors, the other positives and every hard negative; any candidate whose similarity to the anchor in
 * the GUIDE model's space exceeds the guide's anchor–positive similarity g_ii (minus the margin) is treated as a
 * false negative and masked to −∞ before the cross-entropy (the pair (i, i) never is). The scores are the
 * trained model's cosine similarities divided by the temperature. With a strong guide this removes the
 * duplicate passages and shared answers that in-batch negatives contain (the financial data has 141 passages
 * that answer several questions), so the model is not pushed away from true answers.
 *
 * Args:
 * - `temperature` (0.01); `marginStrategy` ("absolute" | "relative") and `margin` (0); `contrastAnchors` (true);
 *   `contrastPositives` (true); `guide`: the guide's name for the model card; `gatherAcrossDevices` (null): the
 *   data-parallel group whose candidates (and their guide embeddings) every anchor also ranks against.
 * - The guide model's embeddings of the same columns come in `context.guideEmbeddings` (one (B, Dg) tensor per
 *   column; Dg may differ from the trained model's D): the trainer embeds each batch with the guide under
 *   noGrad. They only build masks, so no gradient reaches the guide.
 *
 * References:
 * - Solatorio 2024, GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding
 *   Fine-tuning: https://arxiv.org/abs/2402.16829
 *
 * Inputs:
 *
 * | Texts                                           | Labels |
 * |-------------------------------------------------|--------|
 * | (anchor, positive) pairs                        | none   |
 * | (anchor, positive, negative) triplets           | none   |
 * | (anchor, positive, negative_1, ..., negative_n) | none   |
 *
 * sentence-transformers' GISTEmbedLoss takes at most one negative column; its CachedGISTEmbedLoss takes n,
 * with one anchor–negative block per column, which is what this class does for n > 1.
 *
 * Recommendations:
 * - `batchSampler: "noDuplicates"`; a guide at least as good as the model being trained (e.g. the base
 *   model itself, frozen).
 *
 * Relations:
 * - MultipleNegativesRankingLoss is this loss without a guide (and without the anchor–anchor and
 *   positive–positive blocks); MatryoshkaLoss wraps it and passes the guide embeddings on untruncated.
 *
 * Example:
 * ```ts
 * import { tensor } from "./src/engine/index.ts";
 * import { GISTEmbedLoss } from "./src/losses/index.ts";
 *
 * // Two questions whose passages say the same thing: the guide sees that positive 1 answers anchor 0 as well
 * // as positive 0 does, so it is not used as a negative of anchor 0.
 * const anchors = tensor([[0.9, 0.1, 0.3], [0.1, 0.8, -0.2]]); // (2, 3)
 * const positives = tensor([[0.8, 0.2, 0.4], [0.7, 0.3, 0.3]]); // (2, 3)
 * const guideAnchors = tensor([[1, 0], [0.9, 0.1]]); // (2, 2)
 * const guidePositives = tensor([[0.95, 0.05], [0.96, 0.04]]); // (2, 2)
 * const loss = new GISTEmbedLoss({ contrastAnchors: false, contrastPositives: false });
 * const guideEmbeddings = [guideAnchors, guidePositives];
 * const value = loss.lossFromEmbeddings([anchors, positives], null, { guideEmbeddings }); // ()
 * console.log(value.item().toFixed(4)); // 0.0000: each row's only candidate left is its positive
 * // A guide that tells the two positives apart keeps positive 1 as a negative of anchor 0.
 * const apart = [guideAnchors, tensor([[1, 0], [0, 1]])];
 * console.log(loss.lossFromEmbeddings([anchors, positives], null, { guideEmbeddings: apart }).item().toFixed(4)); // 0.0472
 * ```
 */
export class GISTEmbedLoss implements EmbeddingLoss {
  readonly name = "GISTEmbedLoss";
  readonly temperature: number;
  readonly marginStrategy: GistMarginStrategy;
  readonly margin: number;
  readonly contrastAnchors: boolean;
  readonly contrastPositives: boolean;
  readonly guide: string | null;
  readonly gatherAcrossDevices: CrossDeviceGather | null;

  constructor(options: GISTEmbedLossOptions = {}) {
    const temperature = options.temperature ?? 0.01;
    if (!Number.isFinite(temperature) || temperature <= 0)
      throw new RangeError(`GISTEmbedLoss: temperature must be a positive finite number, got ${temperature}`);
    const marginStrategy = options.marginStrategy ?? "absolute";
    if (marginStrategy !== "absolute" && marginStrategy !== "relative")
      throw new RangeError(
        `GISTEmbedLoss: marginStrategy must be "absolute" or "relative", got "${marginStrategy}"`,
      );
    const margin = options.margin ?? 0;
    if (!Number.isFinite(margin)) throw new RangeError(`GISTEmbedLoss: margin must be finite, got ${margin}`);
    this.temperature = temperature;
    this.marginStrategy = marginStrategy;
    this.margin = margin;
    this.contrastAnchors = options.contrastAnchors ?? true;
    this.contrastPositives = options.contrastPositives ?? true;
    this.guide = options.guide ?? null;
    this.gatherAcrossDevices = options.gatherAcrossDevices ?? null;
  }

  /**
   * embeddings = [anchors (B, D), positives (B, D), ...negatives (B, D)]; context.guideEmbeddings = the guide's
   * embeddings of the same columns, each (B, Dg) -> scalar loss.
   */
  lossFromEmbeddings(embeddings: readonly Tensor[], _labels?: Tensor | null, context?: LossContext): Tensor {
    const { batchSize } = checkEmbeddingColumns(this.name, embeddings);
    const guide = context?.guideEmbeddings;
    if (!guide)
      throw new RangeError(
        `${this.name}: the guide model's embeddings are missing (context.guideEmbeddings)`,
      );
    if (guide.length !== embeddings.length) {
      throw new RangeError(
        `${this.name}: ${guide.length} guide embedding columns for ${embeddings.length} embedding columns: the guide must embed every column`,
      );
    }
    const guideShape = checkEmbeddingColumns(`${this.name} (guide)`, guide);
    if (guideShape.batchSize !== batchSize) {
      throw new RangeError(
        `${this.name}: the guide embeddings have batch size ${guideShape.batchSize}, the model's ${batchSize}`,
      );
    }
    const gather = this.gatherAcrossDevices;
    return tidy(() => {
      const [anchor, positive, ...negatives] = embeddings as [Tensor, Tensor, ...Tensor[]];
      const [anchorGuide, positiveGuide, ...negativeGuides] = guide as [Tensor, Tensor, ...Tensor[]];
      // Gathered (every rank's rows, W·B of them) or local (W = 1): the candidates of each block. Only this
      // rank's anchors are scored; the gather's backward returns each candidate's gradient to its rank.
      const all = (t: Tensor) => (gather ? gather.allGatherWithGrad(t) : t); // (B, ·) -> (W * B, ·)
      const offset = gather ? gather.rank * batchSize : 0; // this rank's rows in a gathered tensor
      const rangeLabels = arange(offset, offset + batchSize, 1, { device: anchor.device }); // (B)
      const positives = all(positive); // (W * B, D)
      const positiveGuides = all(positiveGuide); // (W * B, Dg)

      // Compute the similarities given the training and guide embeddings.
      const apSim = cosSim(anchor, positives); // (B, W * B)
      const guidedApSim = cosSim(anchorGuide, positiveGuides); // (B, W * B)
      // The anchor threshold: the guide's similarity of each anchor to its own positive.
      const guidedSim = guidedApSim.gather(1, rangeLabels.unsqueeze(1)); // (B, 1)
      const threshold =
        this.marginStrategy === "absolute"
          ? guidedSim.sub(this.margin) // (B, 1)
          : guidedSim.mul(1 - this.margin); // (B, 1)

      // Masks the similarities whose guide similarity is above the threshold (false negatives) to −∞.
      const maskFalseNegatives = (guidedSimMat: Tensor, simMat: Tensor, positiveMask?: Tensor): Tensor => {
        let mask = guidedSimMat.gt(threshold); // (B, M) bool
        // Ensure true positive pairs are not masked out.
        if (positiveMask) mask = mask.logicalAnd(positiveMask.logicalNot()); // (B, M)
        return simMat.maskedFill(mask, -Infinity); // (B, M)
      };

      // Protects the true pairs of the anchor–positive block: (i, offset + i).
      const columns = arange(0, positives.size(0), 1, { device: anchor.device }); // (W * B)
      const positiveMask = columns.unsqueeze(0).eq(rangeLabels.unsqueeze(1)); // (B, W * B) bool
      const scores: Tensor[] = [maskFalseNegatives(guidedApSim, apSim, positiveMask)]; // anchor–positive
      if (this.contrastAnchors) {
        const aaSim = cosSim(anchor, all(anchor)); // (B, W * B)
        scores.push(maskFalseNegatives(cosSim(anchorGuide, all(anchorGuide)), aaSim)); // anchor–anchor
      }
      if (this.contrastPositives) {
        const ppSim = cosSim(positive, positives); // (B, W * B)
        scores.push(maskFalseNegatives(cosSim(positiveGuide, positiveGuides), ppSim)); // positive–positive
      }
      negatives.forEach((negative, i) => {
        const anSim = cosSim(anchor, all(negative)); // (B, W * B)
        scores.push(maskFalseNegatives(cosSim(anchorGuide, all(negativeGuides[i]!)), anSim)); // anchor–negative
      });
      const logits = cat(scores, 1).div(this.temperature); // (B, W * B * (1 + contrasts + k))
      // anchor[i] should be most similar to its paired positive, column offset + i.
      return crossEntropy(logits, rangeLabels); // ()
    });
  }

  configDict(): Record<string, unknown> {
    return {
      guide: this.guide,
      temperature: this.temperature,
      margin_strategy: this.marginStrategy,
      margin: this.margin,
      contrast_anchors: this.contrastAnchors,
      contrast_positives: this.contrastPositives,
      gather_across_devices: this.gatherAcrossDevices !== null,
    };
  }

  get citation(): string {
    return `@misc{solatorio2024gistembed,
    title={GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding Fine-tuning},
    author={Aivin V. Solatorio},
    year={2024},
    eprint={2402.16829},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
`;
  }
}
