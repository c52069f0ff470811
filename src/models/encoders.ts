// The transformer architectures a sentence-transformers folder may hold, chosen by config.json `model_type` as
// transformers' AutoModel does: "bert" (bge, MiniLM, e5-v2, gte), "xlm-roberta" / "roberta" (bge-m3,
// multilingual-e5), "mpnet" (all-mpnet-base-v2), "modernbert" (gte-modernbert, modernbert-embed). One place to load, create and size them, so that
// SentenceTransformer and the CLI never name an architecture.
import { join } from "node:path";

import { BertConfig, BertModel } from "./bert.ts";
import { type EncoderLoadOptions } from "./encoder-common.ts";
import { BertConfigError, readConfigJson } from "./encoder-config.ts";
import { ModernBertConfig, ModernBertModel } from "./modernbert.ts";
import { MPNET_PADDING_IDX, MpnetConfig, MpnetModel } from "./mpnet.ts";
import { XlmRobertaConfig, XlmRobertaModel } from "./xlm-roberta.ts";

export type Encoder = BertModel | XlmRobertaModel | MpnetModel | ModernBertModel;
export type EncoderConfig = BertConfig | XlmRobertaConfig | MpnetConfig | ModernBertConfig;

/** Names accepted by `create-model --architecture` (config.json model_type spellings). */
export const ARCHITECTURES = ["bert", "xlm-roberta", "mpnet", "modernbert"] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** How each architecture is written in messages. */
export const ARCHITECTURE_NAMES: Readonly<Record<Architecture, string>> = {
  bert: "BERT",
  "xlm-roberta": "XLM-RoBERTa",
  mpnet: "MPNet",
  modernbert: "ModernBERT",
};

/** config.json model_type -> architecture ("roberta" has XLM-R's module tree). */
const MODEL_TYPES: Readonly<Record<string, Architecture>> = {
  bert: "bert",
  "xlm-roberta": "xlm-roberta",
  roberta: "xlm-roberta",
  mpnet: "mpnet",
  modernbert: "modernbert",
};

export function architectureOf(config: EncoderConfig): Architecture {
  if (!("modelType" in config)) return "bert";
  if (config.modelType === "roberta") return "xlm-roberta";
  return config.modelType;
}

/** Parses a config.json by its model_type (absent: BERT, as ragtune always read it). */
export function encoderConfigFromJson(json: unknown, file = "config.json"): EncoderConfig {
  const modelType = (json as { model_type?: unknown } | null)?.model_type;
  if (modelType === undefined) return BertConfig.fromJson(json, file);
  const arch = typeof modelType === "string" ? MODEL_TYPES[modelType] : undefined;
  if (arch === undefined)
    throw new BertConfigError(
      file,
      "model_type",
      `is ${JSON.stringify(modelType)}; supported: ${Object.keys(MODEL_TYPES).join(", ")}`,
    );
  if (arch === "xlm-roberta") return XlmRobertaConfig.fromJson(json, file);
  if (arch === "mpnet") return MpnetConfig.fromJson(json, file);
  if (arch === "modernbert") return ModernBertConfig.fromJson(json, file);
  return BertConfig.fromJson(json, file);
}

/** Loads the encoder of a model folder (config.json + model.safetensors), dispatching on model_type. */
export function encoderFromPretrained(
  dir: string,
  options: EncoderLoadOptions = {},
): { model: Encoder; unusedKeys: string[] } {
  const file = join(dir, "config.json");
  const config = encoderConfigFromJson(readConfigJson(file), file);
  switch (architectureOf(config)) {
    case "bert":
      return BertModel.fromPretrained(dir, options);
    case "xlm-roberta":
      return XlmRobertaModel.fromPretrained(dir, options);
    case "mpnet":
      return MpnetModel.fromPretrained(dir, options);
    case "modernbert":
      return ModernBertModel.fromPretrained(dir, options);
  }
}

/** A freshly initialized encoder of the config's architecture (HF `_init_weights`, seeded). */
export function initEncoderFor(
  config: EncoderConfig,
  options: EncoderLoadOptions & { seed?: number } = {},
): Encoder {
  if (!("modelType" in config)) return BertModel.init(config, options);
  if (config.modelType === "mpnet") return MpnetModel.init(config, options);
  if (config.modelType === "modernbert") return ModernBertModel.init(config, options);
  return XlmRobertaModel.init(config, options);
}

/**
 * Longest input (special tokens included) the encoder's position table allows: max_position_embeddings for
 * BERT and ModernBERT (RoPE: the trained length); XLM-R and MPNet count positions from padding_idx + 1, so two
 * fewer for their usual padding_idx 1.
 */
export function maxSequenceLengthOf(encoder: Encoder): number {
  return maxSequenceLengthFor(encoder.config);
}

/** {@link maxSequenceLengthOf} from a config. */
export function maxSequenceLengthFor(config: EncoderConfig): number {
  if (!("modelType" in config) || config.modelType === "modernbert") return config.maxPositionEmbeddings;
  const paddingIdx = config.modelType === "mpnet" ? MPNET_PADDING_IDX : config.padTokenId;
  return config.maxPositionEmbeddings - paddingIdx - 1;
}

/** The shape of a new encoder (create-model): what every architecture's config needs. */
export interface EncoderShape {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** The tokenizer's pad id. */
  padTokenId: number;
}

/**
 * A validated config of `arch` with the given shape and the architecture's usual other values (bge-base,
 * xlm-roberta-base, all-mpnet-base-v2, ModernBERT-base). MPNet's padding_idx is fixed at 1 by HF, so its
 * tokenizer must pad with id 1.
 */
export function encoderConfigFor(arch: Architecture, shape: EncoderShape): EncoderConfig {
  switch (arch) {
    case "bert":
      return BertConfig.with(shape);
    case "xlm-roberta":
      return XlmRobertaConfig.with(shape);
    case "mpnet":
      if (shape.padTokenId !== 1)
        throw new RangeError(
          `MPNet pads with id 1 (transformers hard-codes MPNetEmbeddings.padding_idx = 1); the tokenizer's pad id is ${shape.padTokenId}`,
        );
      return MpnetConfig.with(shape);
    case "modernbert":
      return ModernBertConfig.with(shape);
  }
}
