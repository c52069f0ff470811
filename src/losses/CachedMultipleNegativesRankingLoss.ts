// CachedMultipleNegativesRankingLoss: GradCache — the in-batch-negatives loss of a large batch at the memory
// of a mini-batch, with the exact gradient.
import {
  cat,
  cudaAvailable,
  enableGrad,
  forkRng,
  getRngState,
  keep,
  noGrad,
  setRngState,
  tidy,
  type Device,
  type Tensor,
} from "../engine/index.ts";
import { checkTextColumns, type EmbeddingLoss, type Embedder, type LossContext } from "./embedding-loss.ts";
import { MatryoshkaLoss } from "./MatryoshkaLoss.ts";
import {
  MultipleNegativesRankingLoss,
  type MultipleNegativesRankingLossOptions,
} from "./MultipleNegativesRankingLoss.ts";

export interface CachedMultipleNegativesRankingLossOptions extends MultipleNegativesRankingLossOptions {
  /**
   * Texts embedded at once: bounds the memory of the model's activations. As large as memory allows (faster);
   * it does not change the loss or the gradient. Default 32 (ST).
   */
  miniBatchSize?: number;
  /**
   * The loss of step (2) on the whole batch's embeddings. Default: MultipleNegativesRankingLoss with this
   * object's scale / similarity / symmetric. Give e.g.
   * `new MatryoshkaLoss(new MultipleNegativesRankingLoss(), dims)` for cached Matryoshka training (then leave
   * scale / similarity / symmetric to the inner loss).
   */
  loss?: EmbeddingLoss;
  /**
   * Replay each mini-batch's random state in step (3) (ST's RandContext): default true. Without it, dropout
   * draws new masks in step (3) and the gradient is no longer the loss's. false exists to test exactly that.
   */
  replayRandomState?: boolean;
}

export interface CachedStepOptions {
  /** Multiplies the back-propagated gradient (1 / accumulation steps, or a loss scale). Default 1. */
  gradScale?: number;
  /**
   * Handed to the loss of step (2) with the whole batch's embeddings: e.g. a guide model's (B, Dg) embeddings
   * of every column for GISTEmbedLoss, which makes this CachedGISTEmbedLoss.
   */
  context?: LossContext;
}

/** The random state of the CPU and of the model's CUDA device before one mini-batch (ST's RandContext). */
type RandState = (readonly [Device, Tensor])[];

function captureRandState(devices: readonly Device[]): RandState {
  return devices.map((d) => [d, keep(getRngState(d))] as const);
}

/** Runs fn with the generators set to `state`, and puts them back afterwards (fork_rng + set_rng_state). */
function withRandState<T>(state: RandState, fn: () => T): T {
  return forkRng(
    () => {
      for (const [d, s] of state) setRngState(s, d);
      return fn();
    },
    state.map(([d]) => d),
  );
}

const NAME = "CachedMultipleNegativesRankingLoss";

// ports sentence_transformers@85ec6455 losses/CachedMultipleNegativesRankingLoss.py
// (RandContext L19-39, _backward_hook L42-66, embed_minibatch L180-200, forward L286-313)
/**
 * MultipleNegativesRankingLoss with GradCache (Gao et al. 2021): the loss and gradient of a batch of B texts
 * per column at the activation memory of `miniBatchSize` texts.
 *
 * - Step (1): embed every column in mini-batches without graph, saving the random state before each one.
 * - Step (2): compute the loss on the full batch's detached embeddings and back-propagate it to them only:
 *   the cached gradients d loss / d embeddings. With gatherAcrossDevices (on the inner MNRL) the loss gathers
 *   every rank's candidate embeddings here, and the gather's backward sums each rank's share of the gradient
 *   of every rank's loss into the cache: step (3) stays local.
 * - Step (3): re-embed each mini-batch with graph, its random state restored (same dropout masks), and
 *   back-propagate its slice of the cached gradients into the model's parameters.
 *
 * The parameters' `.grad` then equals what the plain loss on the same embeddings gives. Unlike gradient
 * accumulation, which splits a batch into independent losses (each anchor sees only its micro-batch's
 * candidates), every anchor here ranks against the whole batch's candidates: more in-batch negatives, at
 * mini-batch memory, for about twice the compute (two forward passes).
 *
 * `step()` performs the backward pass itself: the trainer must not call backward again, only clip and step
 * the optimizer. Step (2) scores the full batch at once (B × B·(1+k) similarities), whereas ST chunks it by
 * anchors; that matrix is small next to the activations it replaces.
 *
 * Args:
 * - `miniBatchSize` (32); `scale` (20), `similarity` ("cosine"), `symmetric` (false), `gatherAcrossDevices` (null) as
 *   MultipleNegativesRankingLoss; or `loss`: any EmbeddingLoss for step (2), e.g. a MatryoshkaLoss.
 *
 * References:
 * - Gao et al. 2021, Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup:
 *   https://arxiv.org/abs/2101.06983
 * - Henderson et al. 2017, Efficient Natural Language Response Suggestion for Smart Reply, §4.4
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
 * - A large batch size with a `miniBatchSize` as large as memory allows, and `batchSampler: "noDuplicates"`.
 *
 * Relations:
 * - Same loss and gradient as MultipleNegativesRankingLoss (or as its `loss`), ~2× slower per batch.
 *
 * Example:
 * ```ts
 * import { arange, tensor } from "./src/engine/index.ts";
 * import { CachedMultipleNegativesRankingLoss } from "./src/losses/index.ts";
 *
 * // A toy embedder: a trainable (26, 4) table, each text the sum of its letters' rows.
 * const table = arange(0, 104, 1, { dtype: "float32" }).mul(0.37).sin().reshape([26, 4]); // (26, 4)
 * table.requiresGrad_();
 * const letters = "abcdefghijklmnopqrstuvwxyz";
 * const embedder = {
 *   embed: (texts: readonly string[]) => {
 *     const counts = texts.map((t) => [...letters].map((l) => t.split(l).length - 1)); // n × 26
 *     return tensor(counts).matmul(table); // (n, 4)
 *   },
 * };
 * const loss = new CachedMultipleNegativesRankingLoss({ miniBatchSize: 1 });
 * const { loss: value } = loss.step(embedder, [
 *   ["it's nice weather outside today.", "he drove to work."],
 *   ["it's so sunny.", "he took the car to the office."],
 * ]);
 * console.log(value.toFixed(4), table.grad?.shape); // 3.6147 [ 26, 4 ]: the loss, and backward is done
 * ```
 */
export class CachedMultipleNegativesRankingLoss {
  readonly miniBatchSize: number;
  /** The loss of step (2). */
  readonly loss: EmbeddingLoss;
  readonly replayRandomState: boolean;

  constructor(options: CachedMultipleNegativesRankingLossOptions = {}) {
    const miniBatchSize = options.miniBatchSize ?? 32;
    if (!Number.isSafeInteger(miniBatchSize) || miniBatchSize < 1) {
      throw new RangeError(`${NAME}: miniBatchSize must be a positive integer, got ${miniBatchSize}`);
    }
    if (
      options.loss &&
      [options.scale, options.similarity, options.symmetric, options.gatherAcrossDevices].some(
        (o) => o !== undefined,
      )
    ) {
      throw new RangeError(
        `${NAME}: give scale / similarity / symmetric / gatherAcrossDevices to the inner loss when passing loss`,
      );
    }
    this.miniBatchSize = miniBatchSize;
    this.loss =
      options.loss ??
      new MultipleNegativesRankingLoss({
        scale: options.scale,
        similarity: options.similarity,
        symmetric: options.symmetric,
        gatherAcrossDevices: options.gatherAcrossDevices,
      });
    this.replayRandomState = options.replayRandomState ?? true;
  }

  /**
   * Steps (1)–(3) on one batch: `columns` = [anchors, positives, ...negatives], B texts each. Accumulates the
   * gradient into the parameters behind `embedder` (backward is done here) and returns the loss value.
   */
  step(
    embedder: Embedder,
    columns: readonly (readonly string[])[],
    options: CachedStepOptions = {},
  ): { loss: number } {
    const gradScale = options.gradScale ?? 1;
    if (!Number.isFinite(gradScale))
      throw new RangeError(`${NAME}: gradScale must be finite, got ${gradScale}`);
    checkTextColumns(this.name, columns);
    const devices = this.#rngDevices(embedder);
    const reps: Tensor[][] = []; // per column, per mini-batch: (mb, D), no graph
    const randomStates: RandState[][] = [];
    const cache: Tensor[] = []; // per column: d loss / d embeddings (B, D)
    try {
      // Step (1): a quick embedding step without gradients/computation graphs to get all the embeddings,
      // copying the random state before each mini-batch to reproduce it exactly in step (3).
      for (const column of columns) {
        const repsMbs: Tensor[] = [];
        const statesMbs: RandState[] = [];
        reps.push(repsMbs);
        randomStates.push(statesMbs);
        for (const texts of this.#miniBatches(column)) {
          if (this.replayRandomState) statesMbs.push(captureRandState(devices));
          repsMbs.push(tidy(() => noGrad(() => this.#embed(embedder, texts)))); // (mb, D)
        }
      }

      // Step (2): calculate the loss, backward up to the embeddings and cache the gradients w.r.t. them.
      const loss = enableGrad(() =>
        tidy(() => {
          const full = reps.map((rs) => noGrad(() => cat(rs, 0)).requiresGrad_(true)); // each (B, D), a leaf
          const value = this.loss.lossFromEmbeddings(full, null, options.context); // ()
          value.backward();
          for (const [c, f] of full.entries()) {
            const grad = f.grad; // (B, D)
            if (grad === null) throw new Error(`${NAME}: the loss does not depend on column ${c}`);
            cache.push(keep(grad));
          }
          return value.item();
        }),
      );

      // Step (3): a second embedding step with graph, connecting the cached gradients to the backward chain.
      enableGrad(() => {
        for (const [c, column] of columns.entries()) {
          let begin = 0;
          for (const [i, texts] of this.#miniBatches(column).entries()) {
            const run = () =>
              tidy(() => {
                const repsMb = this.#embed(embedder, texts); // (mb, D)
                if (repsMb.size(1) !== (cache[c] as Tensor).size(1)) {
                  throw new Error(`${NAME}: the embedder changed the embedding size between the two passes`);
                }
                // A model whose parameters are all frozen yields embeddings without graph: nothing to do.
                if (!repsMb.requiresGrad) return;
                let gradMb = (cache[c] as Tensor).narrow(0, begin, texts.length); // (mb, D)
                if (gradScale !== 1) gradMb = gradMb.mul(gradScale); // (mb, D)
                if (gradMb.dtype !== repsMb.dtype) gradMb = gradMb.to(repsMb.dtype); // (mb, D)
                repsMb.backward(gradMb);
              });
            const state = randomStates[c]?.[i];
            if (state) withRandState(state, run);
            else run();
            begin += texts.length;
          }
        }
      });
      return { loss };
    } finally {
      for (const t of reps.flat()) t.dispose();
      for (const t of cache) t.dispose();
      for (const state of randomStates.flat()) for (const [, s] of state) s.dispose();
    }
  }

  /** The loss value without any gradient (evaluation): step (1) and the loss, nothing kept. */
  lossValue(embedder: Embedder, columns: readonly (readonly string[])[], context?: LossContext): number {
    checkTextColumns(this.name, columns);
    return tidy(() =>
      noGrad(() => {
        const full = columns.map((column) =>
          cat(
            this.#miniBatches(column).map((texts) => this.#embed(embedder, texts)),
            0,
          ),
        ); // each (B, D)
        return this.loss.lossFromEmbeddings(full, null, context).item();
      }),
    );
  }

  #miniBatches(column: readonly string[]): (readonly string[])[] {
    const out: (readonly string[])[] = [];
    for (let b = 0; b < column.length; b += this.miniBatchSize)
      out.push(column.slice(b, b + this.miniBatchSize));
    return out;
  }

  #embed(embedder: Embedder, texts: readonly string[]): Tensor {
    const reps = embedder.embed(texts); // (mb, D)
    if (reps.ndim !== 2 || reps.size(0) !== texts.length) {
      throw new RangeError(
        `${NAME}: the embedder returned shape [${reps.shape.join(", ")}] for ${texts.length} texts; expected (${texts.length}, D)`,
      );
    }
    return reps;
  }

  /** The generators RandContext saves: the CPU's, and the model's CUDA device's. */
  #rngDevices(embedder: Embedder): Device[] {
    const device = embedder.device;
    if (device !== undefined) return device === "cpu" ? ["cpu"] : ["cpu", device];
    return cudaAvailable() ? ["cpu", "cuda"] : ["cpu"];
  }

  /** ST's name for this composition: MatryoshkaLoss wrapping the cached loss, or the cached loss. */
  get name(): string {
    return this.loss instanceof MatryoshkaLoss ? "MatryoshkaLoss" : `Cached${this.loss.name}`;
  }

  /** ST's get_config_dict of the same composition, plus mini_batch_size. */
  configDict(): Record<string, unknown> {
    if (this.loss instanceof MatryoshkaLoss) {
      return {
        ...this.loss.configDict(),
        loss: `Cached${this.loss.inner.name}`,
        mini_batch_size: this.miniBatchSize,
      };
    }
    return { ...this.loss.configDict(), mini_batch_size: this.miniBatchSize };
  }

  get citation(): string {
    return `@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
`;
  }
}
