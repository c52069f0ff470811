// XLM-RoBERTa, the encoder of bge-m3 and multilingual-e5-*: BERT's layers with RoBERTa's embeddings, whose
// position ids count real tokens from padding_idx + 1 (padding keeps padding_idx, a zero row without gradient).
// Pinned upstream revision: transformers@015bfeb86891c5f5e450f48942260ac3e2cd2bf2
// src/transformers/models/xlm_roberta/modeling_xlm_roberta.py. Its XLMRobertaSelfAttention, SelfOutput,
// Attention, Intermediate, Output, Layer and Encoder are "Copied from" RoBERTa's, which are BERT's line for line,
// so the encoder is bert.ts's BertEncoder (same parameter names: encoder.layer.N.attention.self.query, …);
// only the embeddings and the model differ. `model_type` "roberta" (RobertaModel) is the same architecture and
// loads here too.
import { tidy, zeros, type DType, type Tensor } from "../engine/index.ts";
import {
  Dropout,
  Embedding,
  init,
  LayerNorm,
  Module,
  ParamPath,
  type WeightSourceLike,
} from "../nn/index.ts";
import { getExtendedAttentionMask } from "./attention-mask.ts";
import { BertConfig, BertEncoder } from "./bert.ts";
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

export type XlmRobertaModelType = "xlm-roberta" | "roberta";

/** HF XLMRobertaConfig's fields the encoder uses: BertConfig's, a required padding row, and the model type. */
export interface XlmRobertaConfig extends BertConfig {
  modelType: XlmRobertaModelType;
  padTokenId: number;
}

/** FacebookAI/xlm-roberta-base (also the shape of multilingual-e5-base; bge-m3 is the -large shape, 8194 positions). */
const XLMR_BASE: Readonly<XlmRobertaConfig> = Object.freeze({
  ...BertConfig.bgeBase,
  modelType: "xlm-roberta",
  vocabSize: 250002,
  maxPositionEmbeddings: 514,
  typeVocabSize: 1,
  layerNormEps: 1e-5,
  padTokenId: 1,
});

function checkXlmr(cfg: XlmRobertaConfig, file: string): XlmRobertaConfig {
  BertConfig.with(cfg); // BERT's checks (shapes, dropout, activation, padding row in the vocabulary)
  if (typeof cfg.padTokenId !== "number")
    throw new BertConfigError(
      file,
      "pad_token_id",
      "must be an integer (XLM-RoBERTa positions count from it)",
    );
  // Position ids run up to seq_len + padding_idx: at least one real position must fit.
  if (cfg.maxPositionEmbeddings <= cfg.padTokenId + 1)
    throw new BertConfigError(
      file,
      "max_position_embeddings",
      `(${cfg.maxPositionEmbeddings}) leaves no position after padding_idx + 1 (${cfg.padTokenId + 1})`,
    );
  return cfg;
}

export const XlmRobertaConfig = {
  xlmRobertaBase: XLMR_BASE,

  /** xlm-roberta-base with the given fields replaced, validated. */
  with(overrides: Partial<XlmRobertaConfig> = {}): XlmRobertaConfig {
    return checkXlmr({ ...XLMR_BASE, ...overrides }, "XlmRobertaConfig");
  },

  /**
   * Parses a parsed config.json of model_type "xlm-roberta" (or "roberta"): BERT's keys and rules
   * (BertConfig.fromJson), with HF XLMRobertaConfig's default pad_token_id 1 when the key is absent.
   */
  fromJson(json: unknown, file = "config.json"): XlmRobertaConfig {
    const obj = configObject(json, file, ["xlm-roberta", "roberta"]);
    const bert = BertConfig.fromJson(
      { ...obj, model_type: "bert", pad_token_id: obj.pad_token_id ?? 1 },
      file,
    );
    const modelType = (obj.model_type ?? "xlm-roberta") as XlmRobertaModelType;
    return checkXlmr({ ...bert, modelType, padTokenId: bert.padTokenId as number }, file);
  },

  load(path: string): XlmRobertaConfig {
    return XlmRobertaConfig.fromJson(readConfigJson(path), path);
  },

  /** The config.json that `XLMRobertaModel.save_pretrained` writes. */
  toJson(cfg: XlmRobertaConfig, dtype: DType = "float32"): Record<string, unknown> {
    const { modelType: _m, ...bert } = cfg;
    return {
      ...BertConfig.toJson(bert, dtype),
      architectures: [cfg.modelType === "roberta" ? "RobertaModel" : "XLMRobertaModel"],
      model_type: cfg.modelType,
      // XLMRobertaConfig's defaults for the special ids (<s> = 0, </s> = 2); unused by the encoder.
      bos_token_id: 0,
      eos_token_id: 2,
    };
  },
};

// ports transformers@015bfeb8 models/xlm_roberta/modeling_xlm_roberta.py XLMRobertaEmbeddings
export class XlmRobertaEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly tokenTypeEmbeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  readonly paddingIdx: number;

  constructor(p: ParamPath, cfg: XlmRobertaConfig) {
    super(p);
    const weightInit = init.normal(0, cfg.initializerRange);
    this.paddingIdx = cfg.padTokenId;
    this.wordEmbeddings = new Embedding(p.pp("word_embeddings"), cfg.vocabSize, cfg.hiddenSize, {
      paddingIdx: cfg.padTokenId,
      init: weightInit,
    });
    // Unlike BERT's, the position table has a padding row too (HF re-creates it with padding_idx).
    this.positionEmbeddings = new Embedding(
      p.pp("position_embeddings"),
      cfg.maxPositionEmbeddings,
      cfg.hiddenSize,
      { paddingIdx: cfg.padTokenId, init: weightInit },
    );
    this.tokenTypeEmbeddings = new Embedding(
      p.pp("token_type_embeddings"),
      cfg.typeVocabSize,
      cfg.hiddenSize,
      { init: weightInit },
    );
    this.LayerNorm = new LayerNorm(p.pp("LayerNorm"), cfg.hiddenSize, { eps: cfg.layerNormEps });
    this.dropout = new Dropout(cfg.hiddenDropoutProb);
  }

  /** inputIds (B, L) int64, tokenTypeIds (B, L) or zeros -> (B, L, H). */
  forward(inputIds: Tensor, tokenTypeIds?: Tensor | null): Tensor {
    return tidy(() => {
      const [batchSize, seqLength] = [inputIds.size(0), inputIds.size(1)];
      const positionIds = createPositionIdsFromInputIds(inputIds, this.paddingIdx); // (B, L)
      tokenTypeIds ??= zeros([batchSize, seqLength], { dtype: "int64", device: inputIds.device }); // (B, L)
      const inputsEmbeds = this.wordEmbeddings.forward(inputIds); // (B, L, H)
      const tokenTypeEmbeddings = this.tokenTypeEmbeddings.forward(tokenTypeIds); // (B, L, H)
      let embeddings = inputsEmbeds.add(tokenTypeEmbeddings); // (B, L, H)
      const positionEmbeddings = this.positionEmbeddings.forward(positionIds); // (B, L, H)
      embeddings = embeddings.add(positionEmbeddings); // (B, L, H)
      embeddings = this.LayerNorm.forward(embeddings); // (B, L, H)
      return this.dropout.forward(embeddings); // (B, L, H)
    });
  }
}

const PROBE_KEY = "embeddings.word_embeddings.weight";

// ports transformers@015bfeb8 models/xlm_roberta/modeling_xlm_roberta.py XLMRobertaModel (add_pooling_layer kept
// as weights only) + XLMRobertaPreTrainedModel._init_weights
export class XlmRobertaModel extends PretrainedEncoder {
  readonly embeddings: XlmRobertaEmbeddings;
  readonly encoder: BertEncoder;

  constructor(
    p: ParamPath,
    readonly config: XlmRobertaConfig,
  ) {
    super(p);
    checkXlmr(config, "XlmRobertaConfig");
    this.embeddings = new XlmRobertaEmbeddings(p.pp("embeddings"), config);
    this.encoder = new BertEncoder(p.pp("encoder"), config);
  }

  /** Longest input: positions run to seq_len + padding_idx, which must be a row of the table. */
  get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings - this.config.padTokenId - 1;
  }

  protected get wordEmbeddingWeight(): Tensor {
    return this.embeddings.wordEmbeddings.weight;
  }

  configJson(dtype: DType): Record<string, unknown> {
    return XlmRobertaConfig.toJson(this.config, dtype);
  }

  /** Loads from named tensors; keys may carry the `roberta.` prefix of XLMRobertaFor* checkpoints. */
  static load(
    weights: WeightSourceLike,
    config: XlmRobertaConfig,
    options: EncoderLoadOptions = {},
  ): EncoderLoadResult<XlmRobertaModel> {
    return loadEncoder(weights, (root) => new XlmRobertaModel(root, config), {
      probeKey: PROBE_KEY,
      headPrefix: "roberta.",
      options,
    });
  }

  /** Loads `config.json` and `model.safetensors` (or a sharded index) from a model folder. */
  static fromPretrained(dir: string, options: EncoderLoadOptions = {}): EncoderLoadResult<XlmRobertaModel> {
    return fromPretrainedEncoder(dir, XlmRobertaConfig.load, (source, config) =>
      XlmRobertaModel.load(source, config, options),
    );
  }

  /** A freshly initialized model, as HF `_init_weights` (N(0, initializer_range), padding rows 0, LN (1, 0)). */
  static init(
    config: XlmRobertaConfig,
    options: EncoderLoadOptions & { seed?: number } = {},
  ): XlmRobertaModel {
    return initEncoder((root) => new XlmRobertaModel(root, config), {
      hiddenSize: config.hiddenSize,
      initializerRange: config.initializerRange,
      seed: options.seed,
      options,
    });
  }

  /** -> lastHiddenState (B, L, H). Inputs on another device are moved to the model's. */
  forward({ inputIds, attentionMask, tokenTypeIds }: EncoderInputs): Tensor {
    return tidy(() => {
      checkInputs("XlmRobertaModel", { inputIds, attentionMask, tokenTypeIds }, this.maxSequenceLength);
      const device = this.device;
      const onDevice = (t: Tensor) => (t.device === device ? t : t.to(device));
      const embeddingOutput = this.embeddings.forward(
        onDevice(inputIds),
        tokenTypeIds ? onDevice(tokenTypeIds) : null,
      ); // (B, L, H)
      const extendedAttentionMask = attentionMask
        ? getExtendedAttentionMask(onDevice(attentionMask), this.dtype) // (B, 1, 1, L)
        : null;
      return this.encoder.forward(embeddingOutput, extendedAttentionMask); // (B, L, H)
    });
  }
}
