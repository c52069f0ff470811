// BERT, the encoder of bge, all-MiniLM, e5 (v2) and gte: its config, its modules and its weight-name tree in one
// file, after candle's `bert.rs`. The classes mirror transformers' modeling_bert.py one to one (same names, same
// local variable names, same parameter names), so the two can be read side by side; pinned upstream revision:
// transformers@8ec58104181bfb34d824d89bccc009b4f6be6e0e src/transformers/models/bert/modeling_bert.py.
// Only what a sentence-embedding encoder needs is ported: no decoder / cross-attention, no past key values, no
// head mask, no relative position embeddings (their configs are rejected).
import { arange, scaledDotProductAttention, tidy, zeros, type DType, type Tensor } from "../engine/index.ts";
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
import {
  PretrainedEncoder,
  checkInputs,
  fromPretrainedEncoder,
  initEncoder,
  loadEncoder,
  type EncoderInputs,
  type EncoderLoadOptions,
  type EncoderLoadResult,
} from "./encoder-common.ts";
import { BertConfigError, readConfigJson } from "./encoder-config.ts";
import { isPacked, packedAttention, type PackedSequences } from "./packed.ts";

// Re-exported: they were born here and callers import them from bert.ts.
export { BertConfigError, getExtendedAttentionMask };

// ---------------------------------------------------------------------------------------------------------
// Config

export type HiddenAct = "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu";
const HIDDEN_ACTS: readonly HiddenAct[] = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

/** The fields of HF's BertConfig that the encoder uses (camelCase of config.json's keys). */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: HiddenAct;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  initializerRange: number;
  /** Row of word_embeddings that is the padding token (no gradient, zero at init); null for none. */
  padTokenId: number | null;
  positionEmbeddingType: "absolute";
}

/** BAAI/bge-base-en-v1.5, which is also HF `BertConfig()`'s defaults (bert-base-uncased). */
const BGE_BASE: Readonly<BertConfig> = Object.freeze({
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: "gelu",
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  initializerRange: 0.02,
  padTokenId: 0,
  positionEmbeddingType: "absolute",
});

/** sentence-transformers/all-MiniLM-L6-v2. */
const MINILM_L6: Readonly<BertConfig> = Object.freeze({
  ...BGE_BASE,
  hiddenSize: 384,
  numHiddenLayers: 6,
  intermediateSize: 1536,
});

/** config.json key of each field. */
const JSON_KEYS: Readonly<Record<keyof BertConfig, string>> = {
  vocabSize: "vocab_size",
  hiddenSize: "hidden_size",
  numHiddenLayers: "num_hidden_layers",
  numAttentionHeads: "num_attention_heads",
  intermediateSize: "intermediate_size",
  hiddenAct: "hidden_act",
  hiddenDropoutProb: "hidden_dropout_prob",
  attentionProbsDropoutProb: "attention_probs_dropout_prob",
  maxPositionEmbeddings: "max_position_embeddings",
  typeVocabSize: "type_vocab_size",
  layerNormEps: "layer_norm_eps",
  initializerRange: "initializer_range",
  padTokenId: "pad_token_id",
  positionEmbeddingType: "position_embedding_type",
};

/** Keys that fix the weight shapes: a config.json without them is an error rather than a silent bge-base. */
const REQUIRED: readonly (keyof BertConfig)[] = [
  "vocabSize",
  "hiddenSize",
  "numHiddenLayers",
  "numAttentionHeads",
  "intermediateSize",
  "maxPositionEmbeddings",
];

function checkConfig(cfg: BertConfig, file: string): BertConfig {
  const bad = (field: keyof BertConfig, detail: string) =>
    new BertConfigError(file, JSON_KEYS[field], detail);
  const positiveInts: (keyof BertConfig)[] = [...REQUIRED, "typeVocabSize"];
  for (const f of positiveInts) {
    const v = cfg[f];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0)
      throw bad(f, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  for (const f of ["hiddenDropoutProb", "attentionProbsDropoutProb"] as const) {
    const v = cfg[f];
    if (typeof v !== "number" || !(v >= 0 && v < 1)) throw bad(f, `must be a number in [0, 1), got ${v}`);
  }
  if (typeof cfg.layerNormEps !== "number" || !(cfg.layerNormEps > 0))
    throw bad("layerNormEps", `must be a positive number, got ${JSON.stringify(cfg.layerNormEps)}`);
  if (typeof cfg.initializerRange !== "number" || !(cfg.initializerRange >= 0))
    throw bad(
      "initializerRange",
      `must be a non-negative number, got ${JSON.stringify(cfg.initializerRange)}`,
    );
  if (!HIDDEN_ACTS.includes(cfg.hiddenAct))
    throw bad("hiddenAct", `must be one of ${HIDDEN_ACTS.join(", ")}, got ${JSON.stringify(cfg.hiddenAct)}`);
  if ((cfg.positionEmbeddingType as string) !== "absolute") {
    throw bad(
      "positionEmbeddingType",
      `must be "absolute" (relative position embeddings are not supported), got ${JSON.stringify(cfg.positionEmbeddingType)}`,
    );
  }
  const pad = cfg.padTokenId;
  if (
    pad !== null &&
    (typeof pad !== "number" || !Number.isSafeInteger(pad) || pad < 0 || pad >= cfg.vocabSize)
  )
    throw bad("padTokenId", `must be null or an integer in [0, vocab_size=${cfg.vocabSize}), got ${pad}`);
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new BertConfigError(
      file,
      "hidden_size",
      `(${cfg.hiddenSize}) is not a multiple of "num_attention_heads" (${cfg.numAttentionHeads})`,
    );
  }
  return cfg;
}

export const BertConfig = {
  /** BAAI/bge-base-en-v1.5 (= HF BertConfig defaults). */
  bgeBase: BGE_BASE,
  /** sentence-transformers/all-MiniLM-L6-v2. */
  miniLmL6: MINILM_L6,

  /** bge-base with the given fields replaced, validated. */
  with(overrides: Partial<BertConfig> = {}): BertConfig {
    return checkConfig({ ...BGE_BASE, ...overrides }, "BertConfig");
  },

  /**
   * Parses a parsed config.json. The shape keys (vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
   * intermediate_size, max_position_embeddings) are required; the others default to HF's BertConfig values.
   * Errors name `file` and the key.
   */
  fromJson(json: unknown, file = "config.json"): BertConfig {
    if (typeof json !== "object" || json === null || Array.isArray(json))
      throw new BertConfigError(file, undefined, "expected a JSON object");
    const obj = json as Record<string, unknown>;
    const modelType = obj.model_type;
    if (modelType !== undefined && modelType !== "bert")
      throw new BertConfigError(
        file,
        "model_type",
        `is ${JSON.stringify(modelType)}, not a BERT model ("bert")`,
      );
    const cfg: Record<string, unknown> = { ...BGE_BASE };
    for (const [field, key] of Object.entries(JSON_KEYS) as [keyof BertConfig, string][]) {
      if (Object.hasOwn(obj, key)) cfg[field] = obj[key];
      else if (REQUIRED.includes(field)) throw new BertConfigError(file, key, "is missing");
    }
    return checkConfig(cfg as unknown as BertConfig, file);
  },

  /** Reads and parses a config.json file. */
  load(path: string): BertConfig {
    return BertConfig.fromJson(readConfigJson(path), path);
  },

  /** The config.json that `BertModel.save_pretrained` writes (snake_case keys, model_type "bert"). */
  toJson(cfg: BertConfig, dtype: DType = "float32"): Record<string, unknown> {
    const out: Record<string, unknown> = { architectures: ["BertModel"], model_type: "bert" };
    for (const [field, key] of Object.entries(JSON_KEYS) as [keyof BertConfig, string][])
      out[key] = cfg[field];
    out.torch_dtype = dtype;
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------
// Modules

/**
 * What attention needs besides the hidden states: the additive (B, 1, 1, L) mask of a padded batch, null to
 * attend everywhere, or the packed batch whose segments bound attention (packed.ts).
 */
export type AttentionInput = Tensor | null | PackedSequences;

const ACT2FN: Readonly<Record<HiddenAct, (x: Tensor) => Tensor>> = {
  gelu: (x) => x.gelu("none"), // GELUActivation: the exact erf form
  // NewGELUActivation's explicit tanh formula and PytorchGELUTanh are the same function; libtorch's fused
  // tanh GELU computes it (equal up to float rounding).
  gelu_new: (x) => x.gelu("tanh"),
  gelu_pytorch_tanh: (x) => x.gelu("tanh"),
  relu: (x) => x.relu(),
};

/** HF `_init_weights` for Linear layers: weight ~ N(0, initializer_range), bias 0. */
const linearInit = (cfg: BertConfig) => ({
  weightInit: init.normal(0, cfg.initializerRange),
  biasInit: init.zeros,
});

// ports transformers@8ec58104 models/bert/modeling_bert.py BertEmbeddings
export class BertEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly tokenTypeEmbeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    const weightInit = init.normal(0, cfg.initializerRange);
    this.wordEmbeddings = new Embedding(p.pp("word_embeddings"), cfg.vocabSize, cfg.hiddenSize, {
      paddingIdx: cfg.padTokenId ?? undefined,
      init: weightInit,
    });
    this.positionEmbeddings = new Embedding(
      p.pp("position_embeddings"),
      cfg.maxPositionEmbeddings,
      cfg.hiddenSize,
      { init: weightInit },
    );
    this.tokenTypeEmbeddings = new Embedding(
      p.pp("token_type_embeddings"),
      cfg.typeVocabSize,
      cfg.hiddenSize,
      {
        init: weightInit,
      },
    );
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  /**
   * inputIds (B, L) int64, tokenTypeIds (B, L) or zeros -> (B, L, H). Packed: inputIds, tokenTypeIds and
   * positionIds (T) (each segment's own 0 … len-1) -> (T, H).
   */
  forward(inputIds: Tensor, tokenTypeIds?: Tensor | null, positionIds?: Tensor | null): Tensor {
    return tidy(() => {
      const device = inputIds.device;
      positionIds ??= arange(0, inputIds.size(-1), 1, { device }); // (L)
      tokenTypeIds ??= zeros(inputIds.shape, { dtype: "int64", device }); // (B, L)
      const inputsEmbeds = this.wordEmbeddings.forward(inputIds); // (B, L, H)
      const tokenTypeEmbeddings = this.tokenTypeEmbeddings.forward(tokenTypeIds); // (B, L, H)
      let embeddings = inputsEmbeds.add(tokenTypeEmbeddings); // (B, L, H)
      const positionEmbeddings = this.positionEmbeddings.forward(positionIds); // (L, H), packed (T, H)
      embeddings = embeddings.add(positionEmbeddings); // (B, L, H)
      embeddings = this.LayerNorm.forward(embeddings); // (B, L, H)
      return this.dropout.forward(embeddings); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertSdpaSelfAttention (= BertSelfAttention's math)
export class BertSelfAttention extends Module {
  readonly numAttentionHeads: number;
  readonly attentionHeadSize: number;
  readonly allHeadSize: number;
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropoutProb: number;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.numAttentionHeads = cfg.numAttentionHeads;
    this.attentionHeadSize = cfg.hiddenSize / cfg.numAttentionHeads;
    this.allHeadSize = this.numAttentionHeads * this.attentionHeadSize;
    this.query = new Linear(p.pp("query"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.key = new Linear(p.pp("key"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.value = new Linear(p.pp("value"), cfg.hiddenSize, this.allHeadSize, linearInit(cfg));
    this.dropoutProb = cfg.attentionProbsDropoutProb;
  }

  /** (B, L, nh·hd) -> (B, nh, L, hd) */
  transposeForScores(x: Tensor): Tensor {
    const newXShape = [x.size(0), x.size(1), this.numAttentionHeads, this.attentionHeadSize];
    return x.view(newXShape).permute([0, 2, 1, 3]);
  }

  /**
   * softmax(q kᵀ/√hd + mask) v per head, with attention dropout in training. `attentionMask` is the additive
   * (B, 1, 1, L) mask of getExtendedAttentionMask, or null to attend everywhere; with a packed batch the
   * hidden states are (T, H) and attention stays within each segment.
   */
  forward(hiddenStates: Tensor, attentionMask: AttentionInput): Tensor {
    return tidy(() => {
      if (isPacked(attentionMask)) {
        const q = this.query.forward(hiddenStates); // (T, H)
        const k = this.key.forward(hiddenStates); // (T, H)
        const v = this.value.forward(hiddenStates); // (T, H)
        const dropoutP = this.training ? this.dropoutProb : 0;
        return packedAttention(q, k, v, attentionMask, this.numAttentionHeads, dropoutP); // (T, H)
      }
      const [bsz, tgtLen] = [hiddenStates.size(0), hiddenStates.size(1)];
      const queryLayer = this.transposeForScores(this.query.forward(hiddenStates)); // (B, nh, L, hd)
      const keyLayer = this.transposeForScores(this.key.forward(hiddenStates)); // (B, nh, L, hd)
      const valueLayer = this.transposeForScores(this.value.forward(hiddenStates)); // (B, nh, L, hd)
      const attnOutput = scaledDotProductAttention(queryLayer, keyLayer, valueLayer, {
        mask: attentionMask,
        dropoutP: this.training ? this.dropoutProb : 0,
      }); // (B, nh, L, hd)
      return attnOutput.transpose(1, 2).reshape([bsz, tgtLen, this.allHeadSize]); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertSelfOutput
export class BertSelfOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.dense = new Linear(p.pp("dense"), cfg.hiddenSize, cfg.hiddenSize, linearInit(cfg));
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  forward(hiddenStates: Tensor, inputTensor: Tensor): Tensor {
    return tidy(() => {
      let h = this.dense.forward(hiddenStates); // (B, L, H)
      h = this.dropout.forward(h); // (B, L, H)
      return this.LayerNorm.forward(h.add(inputTensor)); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertAttention
export class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertSelfOutput;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.self = new BertSelfAttention(p.pp("self"), cfg);
    this.output = new BertSelfOutput(p.pp("output"), cfg);
  }

  forward(hiddenStates: Tensor, attentionMask: AttentionInput): Tensor {
    return tidy(() => {
      const selfOutputs = this.self.forward(hiddenStates, attentionMask); // (B, L, H)
      return this.output.forward(selfOutputs, hiddenStates); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertIntermediate
export class BertIntermediate extends Module {
  readonly dense: Linear;
  readonly intermediateActFn: (x: Tensor) => Tensor;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.dense = new Linear(p.pp("dense"), cfg.hiddenSize, cfg.intermediateSize, linearInit(cfg));
    this.intermediateActFn = ACT2FN[cfg.hiddenAct];
  }

  forward(hiddenStates: Tensor): Tensor {
    return tidy(() => this.intermediateActFn(this.dense.forward(hiddenStates))); // (B, L, I)
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertOutput
export class BertOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.dense = new Linear(p.pp("dense"), cfg.intermediateSize, cfg.hiddenSize, linearInit(cfg));
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  forward(hiddenStates: Tensor, inputTensor: Tensor): Tensor {
    return tidy(() => {
      let h = this.dense.forward(hiddenStates); // (B, L, H)
      h = this.dropout.forward(h); // (B, L, H)
      return this.LayerNorm.forward(h.add(inputTensor)); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertLayer (encoder only: no cross-attention, no chunking)
export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertOutput;

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.attention = new BertAttention(p.pp("attention"), cfg);
    this.intermediate = new BertIntermediate(p.pp("intermediate"), cfg);
    this.output = new BertOutput(p.pp("output"), cfg);
  }

  forward(hiddenStates: Tensor, attentionMask: AttentionInput): Tensor {
    return tidy(() => {
      const attentionOutput = this.attention.forward(hiddenStates, attentionMask); // (B, L, H)
      // feed_forward_chunk
      const intermediateOutput = this.intermediate.forward(attentionOutput); // (B, L, I)
      return this.output.forward(intermediateOutput, attentionOutput); // (B, L, H)
    });
  }
}

// ports transformers@8ec58104 models/bert/modeling_bert.py BertEncoder
export class BertEncoder extends Module {
  readonly layer: BertLayer[];

  constructor(p: ParamPath, cfg: BertConfig) {
    super(p);
    this.layer = Array.from(
      { length: cfg.numHiddenLayers },
      (_, i) => new BertLayer(p.pp("layer").pp(i), cfg),
    );
  }

  forward(hiddenStates: Tensor, attentionMask: AttentionInput): Tensor {
    return tidy(() => {
      let h = hiddenStates;
      for (const layerModule of this.layer) {
        const next = layerModule.forward(h, attentionMask); // (B, L, H)
        if (h !== hiddenStates) h.dispose(); // free each layer's output early (autograd keeps what it needs)
        h = next;
      }
      return h;
    });
  }
}

export type BertInputs = EncoderInputs;
export type BertLoadOptions = EncoderLoadOptions;
export type BertLoadResult = EncoderLoadResult<BertModel>;

/** The key whose presence tells whether a checkpoint holds a bare BertModel or one under `bert.`. */
const PROBE_KEY = "embeddings.word_embeddings.weight";

// ports transformers@8ec58104 models/bert/modeling_bert.py BertModel (add_pooling_layer=False) + _init_weights.
// HF's pooler (unused by sentence embeddings) is kept through load and save by PretrainedEncoder.
export class BertModel extends PretrainedEncoder {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;

  constructor(
    p: ParamPath,
    readonly config: BertConfig,
  ) {
    super(p);
    checkConfig(config, "BertConfig");
    this.embeddings = new BertEmbeddings(p.pp("embeddings"), config);
    this.encoder = new BertEncoder(p.pp("encoder"), config);
  }

  protected get wordEmbeddingWeight(): Tensor {
    return this.embeddings.wordEmbeddings.weight;
  }

  configJson(dtype: DType): Record<string, unknown> {
    return BertConfig.toJson(this.config, dtype);
  }

  /**
   * Loads the encoder from named tensors (a Map, a function, or a `safetensorsSource`). Keys may carry a
   * `bert.` prefix (checkpoints of BertFor* heads); keys the encoder does not use are returned, not an error. A
   * missing key or a shape mismatch throws a WeightError naming the key. The model starts in eval mode.
   */
  static load(weights: WeightSourceLike, config: BertConfig, options: BertLoadOptions = {}): BertLoadResult {
    return loadEncoder(weights, (root) => new BertModel(root, config), {
      probeKey: PROBE_KEY,
      headPrefix: "bert.",
      options,
    });
  }

  /** Loads `config.json` and `model.safetensors` (or a sharded index) from a model folder. */
  static fromPretrained(dir: string, options: BertLoadOptions = {}): BertLoadResult {
    return fromPretrainedEncoder(dir, BertConfig.load, (source, config) =>
      BertModel.load(source, config, options),
    );
  }

  /**
   * A freshly initialized model, as HF `_init_weights`: Linear and Embedding weights ~ N(0, initializer_range),
   * biases 0, the padding row 0, LayerNorm weight 1 and bias 0. The seed makes it reproducible without
   * disturbing the caller's random stream.
   */
  static init(config: BertConfig, options: BertLoadOptions & { seed?: number } = {}): BertModel {
    return initEncoder((root) => new BertModel(root, config), {
      hiddenSize: config.hiddenSize,
      initializerRange: config.initializerRange,
      seed: options.seed,
      options,
    });
  }

  /** -> lastHiddenState (B, L, H). Inputs on another device are moved to the model's. */
  forward({ inputIds, attentionMask, tokenTypeIds }: BertInputs): Tensor {
    return tidy(() => {
      checkInputs(
        "BertModel",
        { inputIds, attentionMask, tokenTypeIds },
        this.config.maxPositionEmbeddings,
        "max_position_embeddings",
      );
      const device = this.device;
      const onDevice = (t: Tensor) => (t.device === device ? t : t.to(device));
      const embeddingOutput = this.embeddings.forward(
        onDevice(inputIds),
        tokenTypeIds ? onDevice(tokenTypeIds) : null,
      ); // (B, L, H)
      // No mask means attend everywhere: adding HF's all-zero mask would change nothing.
      const extendedAttentionMask = attentionMask
        ? getExtendedAttentionMask(onDevice(attentionMask), this.dtype) // (B, 1, 1, L)
        : null;
      return this.encoder.forward(embeddingOutput, extendedAttentionMask); // (B, L, H)
    });
  }

  /**
   * Packed forward: the real tokens of a packed batch -> lastHiddenState (T, H) in the packed order (segment
   * k is rows [cuSeqlens[k], cuSeqlens[k+1])). Every op but attention runs on the T real tokens only; the
   * values at each token equal the padded forward's at that token (up to float summation order).
   */
  forwardPacked(packed: PackedSequences): Tensor {
    return tidy(() => {
      if (packed.maxLength > this.config.maxPositionEmbeddings) {
        throw new RangeError(
          `BertModel: sequence length ${packed.maxLength} exceeds max_position_embeddings ${this.config.maxPositionEmbeddings}`,
        );
      }
      if (packed.device !== this.device)
        throw new RangeError(`BertModel: packed batch on ${packed.device}, model on ${this.device}`);
      const embeddingOutput = this.embeddings.forward(
        packed.inputIds,
        packed.tokenTypeIds,
        packed.positionIds,
      ); // (T, H)
      return this.encoder.forward(embeddingOutput, packed); // (T, H)
    });
  }
}
