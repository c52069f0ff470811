// MatryoshkaLoss: any EmbeddingLoss summed over truncated (and re-normalized) prefixes of the embeddings.
import { tidy, type Tensor } from "../engine/index.ts";
import { NORMALIZE_EPS, type EmbeddingLoss, type LossContext } from "./embedding-loss.ts";

// ports sentence_transformers@85ec6455 losses/MatryoshkaLoss.py#L22-30 shrink
/** (..., D) -> (..., dim): the first `dim` values, L2-normalized (eps 1e-12). */
export function shrink(tensor: Tensor, dim: number): Tensor {
  const tensorDim = tensor.size(-1);
  if (dim > tensorDim) {
    throw new RangeError(
      `MatryoshkaLoss: dimension ${dim} in matryoshkaDims is larger than the embedding dimension ${tensorDim}`,
    );
  }
  const sliced = tensor.narrow(-1, 0, dim); // (..., dim)
  const out = sliced.normalize(-1, NORMALIZE_EPS); // (..., dim)
  sliced.dispose();
  return out;
}

export interface MatryoshkaLossOptions {
  /** One weight per dim, in the order of `dims` (sorted along with them). Default 1 each. */
  weights?: readonly number[];
  /**
   * Train only this many dims per step, drawn uniformly without replacement (ST's n_dims_per_step); -1 (the
   * default) trains all of them every step.
   */
  nDimsPerStep?: number;
  /** Seed of the draw of nDimsPerStep dims (a generator of its own: torch's random stream is untouched). */
  seed?: number;
  /** The model's embedding dimension, when known: dims are checked now instead of at the first batch. */
  embeddingDim?: number;
  /** Receives the warning for a missing full dimension (once per dimension). Default console.warn. */
  onWarning?: (message: string) => void;
}

// ports sentence_transformers@85ec6455 losses/MatryoshkaLoss.py#L120-292
/**
 * Trains embeddings whose prefixes are embeddings too: L = Σ_d w_d · inner(shrink(e, d)) over the dims, where
 * shrink keeps the first d values and re-normalizes. A sum, not a mean. The model runs once per batch and
 * every dim re-scores the same embeddings (ST gets this by caching the model's forward in a ForwardDecorator;
 * here the inner loss simply takes embeddings). Users can then truncate to any trained dim for speed.
 *
 * Args:
 * - `inner`: the loss applied at each dim, e.g. MultipleNegativesRankingLoss.
 * - `dims`: e.g. [768, 512, 256, 128, 64]; sorted large → small (with their weights). Include the full one.
 * - `options.weights` (1 each), `options.nDimsPerStep` (-1: all), `options.seed`, `options.embeddingDim`.
 *
 * References:
 * - Kusupati et al. 2022, Matryoshka Representation Learning: https://arxiv.org/abs/2205.13147
 *
 * Inputs:
 *
 * | Texts | Labels |
 * |-------|--------|
 * | any   | any    |
 *
 * Recommendations:
 * - Put the model's full dimension in `dims` (a warning says when it is missing), and evaluate every dim.
 *
 * Relations:
 * - Inside CachedMultipleNegativesRankingLoss (`loss: new MatryoshkaLoss(…)`) it gives the same loss and
 *   gradient as this plain composition, at mini-batch memory.
 *
 * Example:
 * ```ts
 * import { tensor } from "./src/engine/index.ts";
 * import { MatryoshkaLoss, MultipleNegativesRankingLoss } from "./src/losses/index.ts";
 *
 * const anchors = tensor([[0.9, 0.1, 0.3, 0.2], [0.1, 0.8, -0.2, 0.5]]); // (2, 4)
 * const positives = tensor([[0.3, 0.2, 0.4, -0.1], [0.5, 0.9, -0.1, 0.6]]); // (2, 4)
 * const loss = new MatryoshkaLoss(new MultipleNegativesRankingLoss(), [4, 2], { weights: [1, 0.5] });
 * const value = loss.lossFromEmbeddings([anchors, positives]); // (): 1 · L(4 dims) + 0.5 · L(2 dims)
 * console.log(value.item().toFixed(6)); // 0.012615 = 0.011058 + 0.5 · 0.003113
 * ```
 */
export class MatryoshkaLoss implements EmbeddingLoss {
  readonly name = "MatryoshkaLoss";
  /** Sorted large → small. */
  readonly dims: readonly number[];
  /** The weight of each of `dims`. */
  readonly weights: readonly number[];
  readonly nDimsPerStep: number;
  readonly #onWarning: (message: string) => void;
  readonly #warned = new Set<number>();
  readonly #rng: () => number;

  constructor(
    readonly inner: EmbeddingLoss,
    dims: readonly number[],
    options: MatryoshkaLossOptions = {},
  ) {
    if (dims.length === 0)
      throw new RangeError("MatryoshkaLoss: matryoshkaDims must hold at least one dimension");
    const bad = dims.find((d) => !Number.isSafeInteger(d) || d <= 0);
    if (bad !== undefined)
      throw new RangeError(`MatryoshkaLoss: dimensions must be positive integers, got ${bad}`);
    const weights = options.weights ?? dims.map(() => 1);
    if (weights.length !== dims.length) {
      throw new RangeError(
        `MatryoshkaLoss: ${weights.length} weights for ${dims.length} dims: give one weight per dimension`,
      );
    }
    const badWeight = weights.find((w) => !Number.isFinite(w));
    if (badWeight !== undefined)
      throw new RangeError(`MatryoshkaLoss: weights must be finite, got ${badWeight}`);
    const nDimsPerStep = options.nDimsPerStep ?? -1;
    if (!Number.isSafeInteger(nDimsPerStep) || (nDimsPerStep !== -1 && nDimsPerStep < 1)) {
      throw new RangeError(
        `MatryoshkaLoss: nDimsPerStep must be -1 (all) or a positive integer, got ${nDimsPerStep}`,
      );
    }
    // Sort the dimensions and weights in descending order (a stable sort, as Python's sorted).
    const pairs = dims.map((d, i) => [d, weights[i] as number] as const).sort((a, b) => b[0] - a[0]);
    this.dims = pairs.map(([d]) => d);
    this.weights = pairs.map(([, w]) => w);
    this.nDimsPerStep = nDimsPerStep;
    this.#rng = mulberry32(options.seed ?? 42);
    this.#onWarning = options.onWarning ?? ((m) => console.warn(m));
    if (options.embeddingDim !== undefined) this.checkEmbeddingDim(options.embeddingDim);
  }

  /**
   * Checks the dims against the model's embedding dimension: throws when one is larger, warns (once) when the
   * full dimension is missing, and returns the warnings it gave.
   */
  checkEmbeddingDim(embeddingDim: number): string[] {
    const tooLarge = this.dims.find((d) => d > embeddingDim);
    if (tooLarge !== undefined) {
      throw new RangeError(
        `MatryoshkaLoss: dimension ${tooLarge} in matryoshkaDims is larger than the embedding dimension ${embeddingDim}`,
      );
    }
    if (this.dims.includes(embeddingDim)) return [];
    const message =
      `MatryoshkaLoss: the embedding dimension ${embeddingDim} is not in matryoshkaDims [${this.dims.join(", ")}]: ` +
      `the full dimension won't be trained, which may degrade the model used without truncation; include ` +
      `${embeddingDim} in matryoshkaDims.`;
    if (!this.#warned.has(embeddingDim)) {
      this.#warned.add(embeddingDim);
      this.#onWarning(message);
    }
    return [message];
  }

  /** The indices into `dims` this step trains: all, or nDimsPerStep drawn without replacement, ascending. */
  #dimIndices(): number[] {
    const all = this.dims.map((_, i) => i);
    if (this.nDimsPerStep <= 0 || this.nDimsPerStep >= all.length) return all;
    for (let i = 0; i < this.nDimsPerStep; i++) {
      const j = i + Math.floor(this.#rng() * (all.length - i));
      [all[i], all[j]] = [all[j] as number, all[i] as number];
    }
    return all.slice(0, this.nDimsPerStep).sort((a, b) => a - b);
  }

  /** Σ_d w_d · inner(shrink(e, d) for each column e). Labels shaped like the embeddings are truncated too. */
  lossFromEmbeddings(embeddings: readonly Tensor[], labels?: Tensor | null, context?: LossContext): Tensor {
    const first = embeddings[0];
    if (first === undefined) throw new RangeError("MatryoshkaLoss: no embedding columns");
    const embeddingDim = first.size(-1);
    embeddings.forEach((e, i) => {
      if (e.size(-1) !== embeddingDim) {
        throw new RangeError(
          `MatryoshkaLoss: column ${i} has dimension ${e.size(-1)} but column 0 has ${embeddingDim}`,
        );
      }
    });
    this.checkEmbeddingDim(embeddingDim);
    return tidy(() => {
      let loss: Tensor | null = null;
      for (const idx of this.#dimIndices()) {
        const dim = this.dims[idx] as number;
        const weight = this.weights[idx] as number;
        const truncated = embeddings.map((e) => shrink(e, dim)); // each (B, dim)
        // If the labels seem to be embeddings (distillation), truncate them to match.
        const dimLabels =
          labels && labels.ndim === 2 && labels.size(-1) === embeddingDim
            ? labels.narrow(-1, 0, dim)
            : labels;
        // The context (a guide model's embeddings) is not the trained model's output: passed on untruncated.
        const term = this.inner.lossFromEmbeddings(truncated, dimLabels, context).mul(weight); // ()
        loss = loss === null ? term : loss.add(term); // ()
      }
      return loss as Tensor;
    });
  }

  configDict(): Record<string, unknown> {
    return {
      loss: this.inner.name,
      matryoshka_dims: [...this.dims],
      matryoshka_weights: [...this.weights],
      n_dims_per_step: this.nDimsPerStep,
    };
  }

  get citation(): string {
    return `@misc{kusupati2024matryoshka,
    title={Matryoshka Representation Learning},
    author={Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and Ali Farhadi},
    year={2024},
    eprint={2205.13147},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
`;
  }
}

/** A small seeded PRNG (mulberry32): uniform [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
