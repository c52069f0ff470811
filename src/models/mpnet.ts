// MPNet, the encoder of all-mpnet-base-v2 (and multi-qa-mpnet-*): BERT-like layers whose attention adds a learned
// relative position bias, one scalar per head and bucket of the (key − query) distance (T5's buckets), shared by
// every layer; RoBERTa-style absolute positions from padding_idx + 1 as well; no token type embeddings.
// Pinned upstream revision: transformers@00099b9f15ad8bea330364709453fc49cbba90e5
// src/transformers/models/mpnet/modeling_mpnet.py. MPNetIntermediate and MPNetOutput are "Copied from" BERT's, so
// they are bert.ts's classes (same parameter names); the rest is ported here, with HF's names (attn.q/k/v/o,
// attention.LayerNorm, encoder.relative_attention_bias).
import { arange, noGrad, tidy, where, type DType, type Tensor } from "../engine/index.ts";
import {
  Dropout,
  Embedding,
  init,
  LayerNorm,
  Linear,
  Module,
  ParamPath,
  type WeightSourceLike,
} from "../nn/index.ts";
import { getExtendedAttentionMask } from "./attention-mask.ts";
import { BertConfig, BertIntermediate, BertOutput } from "./bert.ts";
import {
  PretrainedEncoder,
  checkInputs,
  createPositionIdsFromInputIds,
  fromPretrainedEncoder,
  initEncoder,
  loadEncoder,
  type EncoderInputs,
  type EncoderLoadOptions,
  type EncoderLoadResult,
} from "./encoder-common.ts";
import { BertConfigError, configObject, readConfigJson } from "./encoder-config.ts";

/** MPNetEmbeddings hard-codes `self.padding_idx = 1`, whatever config.json's pad_token_id says. */
export const MPNET_PADDING_IDX = 1;

/** compute_position_bias's default: always 32 buckets (16 per direction), whatever the config says. */
const NUM_BUCKETS = 32;
const MAX_DISTANCE = 128;

/** HF MPNetConfig's fields the encoder uses. */
export interface MpnetConfig extends Omit<
  BertConfig,
  "typeVocabSize" | "positionEmbeddingType" | "padTokenId"
> {
  modelType: "mpnet";
  /** Rows of encoder.relative_attention_bias (>= 32: the bias looks up buckets 0..31). */
  relativeAttentionNumBuckets: number;
  /** config.json pad_token_id (written back; the embeddings use MPNET_PADDING_IDX). */
  padTokenId: number;
}

/** sentence-transformers/all-mpnet-base-v2. */
const ALL_MPNET_BASE: Readonly<MpnetConfig> = Object.freeze({
  ...(({ typeVocabSize: _t, positionEmbeddingType: _p, ...rest }) => rest)(BertConfig.bgeBase),
  modelType: "mpnet",
  vocabSize: 30527,
  maxPositionEmbeddings: 514,
  layerNormEps: 1e-5,
  relativeAttentionNumBuckets: 32,
  padTokenId: 1,
});

/** The BertConfig that bert.ts's reused layer classes (BertIntermediate, BertOutput) read. */
function bertView(cfg: MpnetConfig): BertConfig {
  const { modelType: _m, relativeAttentionNumBuckets: _r, ...rest } = cfg;
  return { ...rest, typeVocabSize: 1, positionEmbeddingType: "absolute", padTokenId: MPNET_PADDING_IDX };
}

function checkMpnet(cfg: MpnetConfig, file: string): MpnetConfig {
  BertConfig.with(bertView(cfg)); // BERT's checks on the shared fields
  const b = cfg.relativeAttentionNumBuckets;
  if (!Number.isSafeInteger(b) || b < NUM_BUCKETS)
    throw new BertConfigError(
      file,
      "relative_attention_num_buckets",
      `must be an integer >= ${NUM_BUCKETS} (MPNet always looks up ${NUM_BUCKETS} buckets), got ${JSON.stringify(b)}`,
    );
  if (cfg.maxPositionEmbeddings <= MPNET_PADDING_IDX + 1)
    throw new BertConfigError(
      file,
      "max_position_embeddings",
      `(${cfg.maxPositionEmbeddings}) leaves no position after padding_idx + 1`,
    );
  return cfg;
}

export const MpnetConfig = {
  allMpnetBase: ALL_MPNET_BASE,

  with(overrides: Partial<MpnetConfig> = {}): MpnetConfig {
    return checkMpnet({ ...ALL_MPNET_BASE, ...overrides }, "MpnetConfig");
  },

  /** Parses a parsed config.json of model_type "mpnet" (BERT's shape keys required, MPNetConfig's defaults). */
  fromJson(json: unknown, file = "config.json"): MpnetConfig {
    const obj = configObject(json, file, ["mpnet"]);
    // MPNet configs carry neither type_vocab_size nor position_embedding_type; BERT's parser gets neutral ones.
    const bert = BertConfig.fromJson(
      {
        ...obj,
        model_type: "bert",
        type_vocab_size: 1,
        position_embedding_type: "absolute",
        pad_token_id: obj.pad_token_id ?? 1,
      },
      file,
    );
    const { typeVocabSize: _t, positionEmbeddingType: _p, padTokenId, ...rest } = bert;
    const buckets = obj.relative_attention_num_buckets ?? NUM_BUCKETS;
    return checkMpnet(
      {
        ...rest,
        modelType: "mpnet",
        relativeAttentionNumBuckets: buckets as number,
        padTokenId: padTokenId as number,
      },
      file,
    );
  },

  load(path: string): MpnetConfig {
    return MpnetConfig.fromJson(readConfigJson(path), path);
  },

  /** The config.json that `MPNetModel.save_pretrained` writes. */
  toJson(cfg: MpnetConfig, dtype: DType = "float32"): Record<string, unknown> {
    const json = BertConfig.toJson({ ...bertView(cfg), padTokenId: cfg.padTokenId }, dtype);
    delete json.type_vocab_size;
    delete json.position_embedding_type;
    return {
      ...json,
      architectures: ["MPNetModel"],
      model_type: "mpnet",
      relative_attention_num_buckets: cfg.relativeAttentionNumBuckets,
      bos_token_id: 0,
      eos_token_id: 2,
    };
  },
};

/** HF `_init_weights` for Linear layers: weight ~ N(0, initializer_range), bias 0. */
const linearInit = (cfg: MpnetConfig) => ({
  weightInit: init.normal(0, cfg.initializerRange),
  biasInit: init.zeros,
});

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetEmbeddings
export class MpnetEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: MpnetConfig) {
    super(p);
    const weightInit = init.normal(0, cfg.initializerRange);
    this.wordEmbeddings = new Embedding(p.pp("word_embeddings"), cfg.vocabSize, cfg.hiddenSize, {
      paddingIdx: MPNET_PADDING_IDX,
      init: weightInit,
    });
    this.positionEmbeddings = new Embedding(
      p.pp("position_embeddings"),
      cfg.maxPositionEmbeddings,
      cfg.hiddenSize,
      { paddingIdx: MPNET_PADDING_IDX, init: weightInit },
    );
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  /** inputIds (B, L) int64 -> (B, L, H). */
  forward(inputIds: Tensor): Tensor {
    return tidy(() => {
      const positionIds = createPositionIdsFromInputIds(inputIds, MPNET_PADDING_IDX); // (B, L)
      const inputsEmbeds = this.wordEmbeddings.forward(inputIds); // (B, L, H)
      const positionEmbeddings = this.positionEmbeddings.forward(positionIds); // (B, L, H)
      const embeddings = this.LayerNorm.forward(inputsEmbeds.add(positionEmbeddings)); // (B, L, H)
      return this.dropout.forward(embeddings); // (B, L, H)
    });
  }
}

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetSelfAttention. Eager arithmetic (not SDPA):
// the position bias needs its gradient, and the order (scale, + bias, + mask) is HF's.
export class MpnetSelfAttention extends Module {
  readonly numAttentionHeads: number;
  readonly attentionHeadSize: number;
  readonly allHeadSize: number;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: MpnetConfig) {
    super(p);
    this.numAttentionHeads = cfg.numAttentionHeads;
    this.attentionHeadSize = cfg.hiddenSize / cfg.numAttentionHeads;
    this.allHeadSize = this.numAttentionHeads * this.attentionHeadSize;
    this.q = new Linear(p.pp("q"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.k = new Linear(p.pp("k"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.v = new Linear(p.pp("v"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.o = new Linear(p.pp("o"), cfg.hiddenSize, cfg.hiddenSize, linearInit(cfg));
    this.dropout = new Dropout(cfg.attentionProbsDropoutProb);
  }

  /** (B, L, H) -> (B, nh, L, hd) */
  private heads(x: Tensor): Tensor {
    return x.view([x.size(0), -1, this.numAttentionHeads, this.attentionHeadSize]).transpose(1, 2);
  }

  /** positionBias (1, nh, L, L), attentionMask the additive (B, 1, 1, L) mask or null. */
  forward(hiddenStates: Tensor, attentionMask: Tensor | null, positionBias: Tensor): Tensor {
    return tidy(() => {
      const [batchSize, seqLength] = [hiddenStates.size(0), hiddenStates.size(1)];
      const q = this.heads(this.q.forward(hiddenStates)); // (B, nh, L, hd)
      const k = this.heads(this.k.forward(hiddenStates)); // (B, nh, L, hd)
      const v = this.heads(this.v.forward(hiddenStates)); // (B, nh, L, hd)
      let attentionScores = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(this.attentionHeadSize)); // (B, nh, L, L)
      attentionScores = attentionScores.add(positionBias); // (B, nh, L, L)
      if (attentionMask) attentionScores = attentionScores.add(attentionMask); // (B, nh, L, L)
      let attentionProbs = attentionScores.softmax(-1); // (B, nh, L, L)
      attentionProbs = this.dropout.forward(attentionProbs);
      const c = attentionProbs
        .matmul(v)
        .permute([0, 2, 1, 3])
        .reshape([batchSize, seqLength, this.allHeadSize]); // (B, L, H)
      return this.o.forward(c); // (B, L, H)
    });
  }
}

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetAttention
export class MpnetAttention extends Module {
  readonly attn: MpnetSelfAttention;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: MpnetConfig) {
    super(p);
    this.attn = new MpnetSelfAttention(p.pp("attn"), cfg);
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  forward(hiddenStates: Tensor, attentionMask: Tensor | null, positionBias: Tensor): Tensor {
    return tidy(() => {
      const selfOutputs = this.attn.forward(hiddenStates, attentionMask, positionBias); // (B, L, H)
      return this.LayerNorm.forward(this.dropout.forward(selfOutputs).add(hiddenStates)); // (B, L, H)
    });
  }
}

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetLayer
export class MpnetLayer extends Module {
  readonly attention: MpnetAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertOutput;

  constructor(p: ParamPath, cfg: MpnetConfig) {
    super(p);
    this.attention = new MpnetAttention(p.pp("attention"), cfg);
    this.intermediate = new BertIntermediate(p.pp("intermediate"), bertView(cfg));
    this.output = new BertOutput(p.pp("output"), bertView(cfg));
  }

  forward(hiddenStates: Tensor, attentionMask: Tensor | null, positionBias: Tensor): Tensor {
    return tidy(() => {
      const attentionOutput = this.attention.forward(hiddenStates, attentionMask, positionBias); // (B, L, H)
      const intermediateOutput = this.intermediate.forward(attentionOutput); // (B, L, I)
      return this.output.forward(intermediateOutput, attentionOutput); // (B, L, H)
    });
  }
}

/**
 * ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetEncoder.relative_position_bucket (T5's): the
 * sign of −(key − query) picks a half of the 32 buckets; distances below 8 have a bucket each, longer ones share
 * log-spaced buckets up to 128. With libtorch's own float32 log, division and truncation, as HF.
 */
export function relativePositionBucket(relativePosition: Tensor): Tensor {
  return tidy(() => {
    let n = relativePosition.neg(); // (L, L) int64
    const numBuckets = NUM_BUCKETS / 2;
    let ret = n.lt(0).to("int64").mul(numBuckets);
    n = n.abs();
    const maxExact = numBuckets / 2;
    const isSmall = n.lt(maxExact);
    let valIfLarge = n
      .to("float32")
      .div(maxExact)
      .log()
      .div(Math.log(MAX_DISTANCE / maxExact))
      .mul(numBuckets - maxExact)
      .to("int64")
      .add(maxExact);
    valIfLarge = valIfLarge.clamp(undefined, numBuckets - 1);
    ret = ret.add(where(isSmall, n, valIfLarge));
    return ret; // (L, L) in [0, 32)
  });
}

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetEncoder
export class MpnetEncoder extends Module {
  readonly layer: MpnetLayer[];
  readonly relativeAttentionBias: Embedding;

  constructor(p: ParamPath, cfg: MpnetConfig) {
    super(p);
    this.layer = Array.from(
      { length: cfg.numHiddenLayers },
      (_, i) => new MpnetLayer(p.pp("layer").pp(i), cfg),
    );
    this.relativeAttentionBias = new Embedding(
      p.pp("relative_attention_bias"),
      cfg.relativeAttentionNumBuckets,
      cfg.numAttentionHeads,
      { init: init.normal(0, cfg.initializerRange) },
    );
  }

  /** compute_position_bias: (1, nh, L, L), broadcast over the batch (HF expands it to B rows of equal values). */
  computePositionBias(seqLength: number): Tensor {
    return tidy(() => {
      const rpBucket = noGrad(() => {
        const contextPosition = arange(0, seqLength, 1, { dtype: "int64" }).unsqueeze(1); // (L, 1)
        const memoryPosition = arange(0, seqLength, 1, { dtype: "int64" }).unsqueeze(0); // (1, L)
        return relativePositionBucket(memoryPosition.sub(contextPosition)); // (L, L)
      });
      const device = this.relativeAttentionBias.weight.device;
      const values = this.relativeAttentionBias.forward(
        rpBucket.device === device ? rpBucket : rpBucket.to(device),
      ); // (L, L, nh)
      return values.permute([2, 0, 1]).unsqueeze(0); // (1, nh, L, L)
    });
  }

  forward(hiddenStates: Tensor, attentionMask: Tensor | null): Tensor {
    return tidy(() => {
      const positionBias = this.computePositionBias(hiddenStates.size(1)); // (1, nh, L, L)
      let h = hiddenStates;
      for (const layerModule of this.layer) {
        const next = layerModule.forward(h, attentionMask, positionBias); // (B, L, H)
        if (h !== hiddenStates) h.dispose(); // free each layer's output early (autograd keeps what it needs)
        h = next;
      }
      return h;
    });
  }
}

const PROBE_KEY = "embeddings.word_embeddings.weight";

// ports transformers@00099b9f models/mpnet/modeling_mpnet.py MPNetModel (pooler kept as weights only) +
// MPNetPreTrainedModel._init_weights
export class MpnetModel extends PretrainedEncoder {
  readonly embeddings: MpnetEmbeddings;
  readonly encoder: MpnetEncoder;

  constructor(
    p: ParamPath,
    readonly config: MpnetConfig,
  ) {
    super(p);
    checkMpnet(config, "MpnetConfig");
    this.embeddings = new MpnetEmbeddings(p.pp("embeddings"), config);
    this.encoder = new MpnetEncoder(p.pp("encoder"), config);
  }

  /** Longest input: positions run to seq_len + padding_idx, which must be a row of the table. */
  get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings - MPNET_PADDING_IDX - 1;
  }

  protected get wordEmbeddingWeight(): Tensor {
    return this.embeddings.wordEmbeddings.weight;
  }

  configJson(dtype: DType): Record<string, unknown> {
    return MpnetConfig.toJson(this.config, dtype);
  }

  /** Loads from named tensors; keys may carry the `mpnet.` prefix of MPNetFor* checkpoints. */
  static load(
    weights: WeightSourceLike,
    config: MpnetConfig,
    options: EncoderLoadOptions = {},
  ): EncoderLoadResult<MpnetModel> {
    return loadEncoder(weights, (root) => new MpnetModel(root, config), {
      probeKey: PROBE_KEY,
      headPrefix: "mpnet.",
      options,
    });
  }

  static fromPretrained(dir: string, options: EncoderLoadOptions = {}): EncoderLoadResult<MpnetModel> {
    return fromPretrainedEncoder(dir, MpnetConfig.load, (source, config) =>
      MpnetModel.load(source, config, options),
    );
  }

  static init(config: MpnetConfig, options: EncoderLoadOptions & { seed?: number } = {}): MpnetModel {
    return initEncoder((root) => new MpnetModel(root, config), {
      hiddenSize: config.hiddenSize,
      initializerRange: config.initializerRange,
      seed: options.seed,
      options,
    });
  }

  /** -> lastHiddenState (B, L, H); tokenTypeIds are ignored (MPNet has none, as HF's tokenizer gives none). */
  forward({ inputIds, attentionMask }: EncoderInputs): Tensor {
    return tidy(() => {
      checkInputs("MpnetModel", { inputIds, attentionMask }, this.maxSequenceLength);
      const device = this.device;
      const onDevice = (t: Tensor) => (t.device === device ? t : t.to(device));
      const embeddingOutput = this.embeddings.forward(onDevice(inputIds)); // (B, L, H)
      const extendedAttentionMask = attentionMask
        ? getExtendedAttentionMask(onDevice(attentionMask), this.dtype) // (B, 1, 1, L)
        : null;
      return this.encoder.forward(embeddingOutput, extendedAttentionMask); // (B, L, H)
    });
  }
}
