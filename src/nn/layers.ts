// The basic layers, each a thin Module over one engine function, with PyTorch's parameter names, shapes and
// default initializers. Biases and LayerNorm parameters are tagged noDecay (HF Trainer excludes them from weight
// decay). Each layer takes the ParamPath of its own name: `new Linear(p.pp("query"), 768, 768)` owns
// `query.weight` (out, in) and `query.bias` (out).
import { dropout, embedding, layerNorm, linear, type Shape, type Tensor } from "../engine/index.ts";
import { Module } from "./module.ts";
import { init, NO_DECAY, type Init, type ParamPath } from "./var-store.ts";

export interface LinearOptions {
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** Default: PyTorch's U(−1/√in, 1/√in). */
  weightInit?: Init;
  biasInit?: Init;
}

/** y = x Wᵀ + b, torch.nn.Linear. */
export class Linear extends Module {
  readonly weight: Tensor; // (out, in)
  readonly bias: Tensor | null; // (out)

  constructor(
    p: ParamPath,
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super(p);
    const fallback = init.linearDefault(inFeatures);
    this.weight = p.get("weight", [outFeatures, inFeatures], options.weightInit ?? fallback);
    this.bias =
      options.bias === false
        ? null
        : p.get("bias", [outFeatures], options.biasInit ?? fallback, { tags: [NO_DECAY] });
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias); // (..., in) -> (..., out)
  }
}

export interface LayerNormOptions {
  eps?: number;
  /** Learnable weight and bias (default true). */
  elementwiseAffine?: boolean;
}

/** Normalizes over the trailing `normalizedShape` dims, torch.nn.LayerNorm (weight 1, bias 0 at init). */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(p: ParamPath, normalizedShape: number | Shape, options: LayerNormOptions = {}) {
    super(p);
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    const q = p.group(NO_DECAY);
    this.weight = affine ? q.get("weight", this.normalizedShape, init.ones) : null;
    this.bias = affine ? q.get("bias", this.normalizedShape, init.zeros) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps); // same shape as x
  }
}

export interface EmbeddingOptions {
  /** Row that gets no gradient (and is zeroed at init), torch's padding_idx. */
  paddingIdx?: number;
  /** Default: N(0, 1), as torch.nn.Embedding. */
  init?: Init;
}

/** A lookup table of `numEmbeddings` rows of size `embeddingDim`, torch.nn.Embedding. */
export class Embedding extends Module {
  readonly weight: Tensor; // (numEmbeddings, embeddingDim)
  readonly paddingIdx: number | undefined;

  constructor(
    p: ParamPath,
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingOptions = {},
  ) {
    super(p);
    const pad = options.paddingIdx;
    if (pad !== undefined && (!Number.isInteger(pad) || pad < 0 || pad >= numEmbeddings)) {
      throw new RangeError(`Embedding ${p.prefix}: paddingIdx ${pad} is not a row of ${numEmbeddings}`);
    }
    this.paddingIdx = pad;
    const fill = options.init ?? init.normal(0, 1);
    this.weight = p.get("weight", [numEmbeddings, embeddingDim], (t) => {
      fill(t);
      if (pad !== undefined) {
        const row = t.select(0, pad);
        row.zero_();
        row.dispose();
      }
    });
  }

  forward(indices: Tensor): Tensor {
    return embedding(this.weight, indices, this.paddingIdx); // (...) -> (..., embeddingDim)
  }
}

/** Zeroes elements with probability p in training and scales the rest by 1/(1−p); identity in eval. */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super(null);
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: probability must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}
