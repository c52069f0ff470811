// ModernBERT, the encoder of gte-modernbert and modernbert-embed: pre-norm layers without biases, rotary position
// embeddings (no position table), a GeGLU feed-forward, and attention that is global every
// `global_attn_every_n_layers` layers and a sliding window of `local_attention` tokens otherwise (each kind with
// its own RoPE base); no token type ids. Pinned upstream revision: transformers@000c33fdfde12e1ffafbfcdb3c926df5727a00b6
// src/transformers/models/modernbert/modeling_modernbert.py, its padded (eager / SDPA) path: the flash-attention
// path computes the same function on unpadded tokens.
import {
  arange,
  cat,
  full,
  layerNorm,
  noGrad,
  scaledDotProductAttention,
  tidy,
  where,
  type DType,
  type Tensor,
} from "../engine/index.ts";
import {
  Dropout,
  Embedding,
  init,
  LayerNorm,
  Linear,
  Module,
  NO_DECAY,
  ParamPath,
  type Init,
  type WeightSourceLike,
} from "../nn/index.ts";
import { finfoMin, getExtendedAttentionMask } from "./attention-mask.ts";
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
import { BertConfigError, configObject, readConfigJson } from "./encoder-config.ts";

/** HF ModernBertConfig's fields the encoder uses (camelCase of config.json's keys). */
export interface ModernBertConfig {
  modelType: "modernbert";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  hiddenActivation: "gelu" | "gelu_pytorch_tanh" | "gelu_new";
  maxPositionEmbeddings: number;
  initializerRange: number;
  initializerCutoffFactor: number;
  normEps: number;
  normBias: boolean;
  padTokenId: number;
  globalRopeTheta: number;
  localRopeTheta: number;
  globalAttnEveryNLayers: number;
  localAttention: number;
  attentionBias: boolean;
  attentionDropout: number;
  embeddingDropout: number;
  mlpBias: boolean;
  mlpDropout: number;
}

/** answerdotai/ModernBERT-base (= HF ModernBertConfig defaults). */
const MODERNBERT_BASE: Readonly<ModernBertConfig> = Object.freeze({
  modelType: "modernbert",
  vocabSize: 50368,
  hiddenSize: 768,
  intermediateSize: 1152,
  numHiddenLayers: 22,
  numAttentionHeads: 12,
  hiddenActivation: "gelu",
  maxPositionEmbeddings: 8192,
  initializerRange: 0.02,
  initializerCutoffFactor: 2.0,
  normEps: 1e-5,
  normBias: false,
  padTokenId: 50283,
  globalRopeTheta: 160000,
  localRopeTheta: 10000,
  globalAttnEveryNLayers: 3,
  localAttention: 128,
  attentionBias: false,
  attentionDropout: 0,
  embeddingDropout: 0,
  mlpBias: false,
  mlpDropout: 0,
});

const JSON_KEYS: Readonly<Record<Exclude<keyof ModernBertConfig, "modelType">, string>> = {
  vocabSize: "vocab_size",
  hiddenSize: "hidden_size",
  intermediateSize: "intermediate_size",
  numHiddenLayers: "num_hidden_layers",
  numAttentionHeads: "num_attention_heads",
  hiddenActivation: "hidden_activation",
  maxPositionEmbeddings: "max_position_embeddings",
  initializerRange: "initializer_range",
  initializerCutoffFactor: "initializer_cutoff_factor",
  normEps: "norm_eps",
  normBias: "norm_bias",
  padTokenId: "pad_token_id",
  globalRopeTheta: "global_rope_theta",
  localRopeTheta: "local_rope_theta",
  globalAttnEveryNLayers: "global_attn_every_n_layers",
  localAttention: "local_attention",
  attentionBias: "attention_bias",
  attentionDropout: "attention_dropout",
  embeddingDropout: "embedding_dropout",
  mlpBias: "mlp_bias",
  mlpDropout: "mlp_dropout",
};

const REQUIRED = [
  "vocabSize",
  "hiddenSize",
  "intermediateSize",
  "numHiddenLayers",
  "numAttentionHeads",
] as const;
const ACTIVATIONS = ["gelu", "gelu_pytorch_tanh", "gelu_new"] as const;

function checkConfig(cfg: ModernBertConfig, file: string): ModernBertConfig {
  const bad = (field: keyof typeof JSON_KEYS, detail: string) =>
    new BertConfigError(file, JSON_KEYS[field], detail);
  for (const f of [
    ...REQUIRED,
    "maxPositionEmbeddings",
    "globalAttnEveryNLayers",
    "localAttention",
  ] as const) {
    const v = cfg[f];
    if (!Number.isSafeInteger(v) || v <= 0)
      throw bad(f, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  for (const f of ["attentionDropout", "embeddingDropout", "mlpDropout"] as const)
    if (!(cfg[f] >= 0 && cfg[f] < 1))
      throw bad(f, `must be a number in [0, 1), got ${JSON.stringify(cfg[f])}`);
  for (const f of ["normEps", "globalRopeTheta", "localRopeTheta", "initializerCutoffFactor"] as const)
    if (!(typeof cfg[f] === "number" && cfg[f] > 0)) throw bad(f, `must be a positive number, got ${cfg[f]}`);
  for (const f of ["normBias", "attentionBias", "mlpBias"] as const)
    if (typeof cfg[f] !== "boolean") throw bad(f, `must be true or false, got ${JSON.stringify(cfg[f])}`);
  if (!ACTIVATIONS.includes(cfg.hiddenActivation))
    throw bad(
      "hiddenActivation",
      `must be one of ${ACTIVATIONS.join(", ")}, got ${JSON.stringify(cfg.hiddenActivation)}`,
    );
  if (!Number.isSafeInteger(cfg.padTokenId) || cfg.padTokenId < 0 || cfg.padTokenId >= cfg.vocabSize)
    throw bad("padTokenId", `must be an integer in [0, vocab_size=${cfg.vocabSize}), got ${cfg.padTokenId}`);
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0 || (cfg.hiddenSize / cfg.numAttentionHeads) % 2 !== 0)
    throw bad(
      "hiddenSize",
      `(${cfg.hiddenSize}) must be an even multiple of num_attention_heads (${cfg.numAttentionHeads}) for RoPE`,
    );
  return cfg;
}

export const ModernBertConfig = {
  modernBertBase: MODERNBERT_BASE,

  with(overrides: Partial<ModernBertConfig> = {}): ModernBertConfig {
    return checkConfig({ ...MODERNBERT_BASE, ...overrides }, "ModernBertConfig");
  },

  /**
   * Parses config.json (model_type "modernbert"). The RoPE bases come from `global_rope_theta` /
   * `local_rope_theta`, or from the newer `rope_parameters.{full,sliding}_attention.rope_theta`.
   */
  fromJson(json: unknown, file = "config.json"): ModernBertConfig {
    const obj = configObject(json, file, ["modernbert"]);
    const cfg: Record<string, unknown> = { ...MODERNBERT_BASE };
    for (const [field, key] of Object.entries(JSON_KEYS)) {
      if (Object.hasOwn(obj, key) && obj[key] !== null) cfg[field] = obj[key];
      else if ((REQUIRED as readonly string[]).includes(field))
        throw new BertConfigError(file, key, "is missing");
    }
    const rope = obj.rope_parameters as
      Record<string, { rope_theta?: unknown; rope_type?: unknown }> | undefined;
    for (const [kind, field] of [
      ["full_attention", "globalRopeTheta"],
      ["sliding_attention", "localRopeTheta"],
    ] as const) {
      const p = rope?.[kind];
      if (p?.rope_type !== undefined && p.rope_type !== "default")
        throw new BertConfigError(
          file,
          "rope_parameters",
          `${kind}: only the default RoPE is supported, got ${JSON.stringify(p.rope_type)}`,
        );
      if (p?.rope_theta !== undefined) cfg[field] = p.rope_theta;
    }
    const checked = checkConfig(cfg as unknown as ModernBertConfig, file);
    // transformers 5 also writes layer_types; HF picks the window by global_attn_every_n_layers but the RoPE base
    // by layer_types, so a file where the two disagree is refused rather than half-followed.
    const layerTypes = obj.layer_types;
    if (layerTypes !== undefined && layerTypes !== null) {
      const want = Array.from({ length: checked.numHiddenLayers }, (_, i) =>
        isGlobalLayer(checked, i) ? "full_attention" : "sliding_attention",
      );
      if (JSON.stringify(layerTypes) !== JSON.stringify(want))
        throw new BertConfigError(
          file,
          "layer_types",
          `must follow global_attn_every_n_layers (${JSON.stringify(want)}), got ${JSON.stringify(layerTypes)}`,
        );
    }
    return checked;
  },

  load(path: string): ModernBertConfig {
    return ModernBertConfig.fromJson(readConfigJson(path), path);
  },

  toJson(cfg: ModernBertConfig, dtype: DType = "float32"): Record<string, unknown> {
    const out: Record<string, unknown> = { architectures: ["ModernBertModel"], model_type: "modernbert" };
    for (const [field, key] of Object.entries(JSON_KEYS)) out[key] = cfg[field as keyof typeof JSON_KEYS];
    out.torch_dtype = dtype;
    return out;
  },
};

/** Whether layer `i` attends globally (HF: layer_id % global_attn_every_n_layers == 0). */
export const isGlobalLayer = (cfg: ModernBertConfig, i: number) => i % cfg.globalAttnEveryNLayers === 0;

/**
 * HF `init.trunc_normal_(w, 0, std, a=-cutoff·std, b=cutoff·std)`: N(0, std²) conditioned on [a, b], drawn by
 * redrawing the values outside (the same distribution; not HF's random stream).
 */
const truncNormal =
  (std: number, cutoff: number): Init =>
  (t) => {
    t.normal_(0, std);
    for (let i = 0; i < 100; i++) {
      const outside = tidy(() =>
        t
          .abs()
          .gt(cutoff * std)
          .sum()
          .item(),
      );
      if (outside === 0) return;
      tidy(() => {
        const fresh = t.detach().clone().normal_(0, std);
        t.copy_(where(t.abs().gt(cutoff * std), fresh, t));
      });
    }
  };

/** nn.LayerNorm(hidden, eps, bias=norm_bias): a weight, and a bias only when norm_bias. */
export class ModernBertNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly #inner: LayerNorm | null;

  constructor(
    p: ParamPath,
    readonly size: number,
    readonly eps: number,
    bias: boolean,
  ) {
    super(p);
    if (bias) {
      this.#inner = new LayerNorm(p, size, { eps });
      this.weight = this.#inner.weight!;
      this.bias = this.#inner.bias;
    } else {
      this.#inner = null;
      this.weight = p.group(NO_DECAY).get("weight", [size], init.ones);
      this.bias = null;
    }
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.size], this.weight, this.bias, this.eps); // same shape as x
  }
}

const ACT: Readonly<Record<ModernBertConfig["hiddenActivation"], (x: Tensor) => Tensor>> = {
  gelu: (x) => x.gelu("none"),
  gelu_pytorch_tanh: (x) => x.gelu("tanh"),
  gelu_new: (x) => x.gelu("tanh"),
};

const linear = (p: ParamPath, i: number, o: number, bias: boolean, std: number, cutoff: number) =>
  new Linear(p, i, o, { bias, weightInit: truncNormal(std, cutoff), biasInit: init.zeros });

// ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertEmbeddings
export class ModernBertEmbeddings extends Module {
  readonly tokEmbeddings: Embedding;
  readonly norm: ModernBertNorm;
  readonly drop: Dropout;

  constructor(p: ParamPath, cfg: ModernBertConfig) {
    super(p);
    this.tokEmbeddings = new Embedding(p.pp("tok_embeddings"), cfg.vocabSize, cfg.hiddenSize, {
      paddingIdx: cfg.padTokenId,
      init: truncNormal(cfg.initializerRange, cfg.initializerCutoffFactor),
    });
    this.norm = new ModernBertNorm(p.pp("norm"), cfg.hiddenSize, cfg.normEps, cfg.normBias);
    this.drop = new Dropout(cfg.embeddingDropout);
  }

  forward(inputIds: Tensor): Tensor {
    return tidy(() => this.drop.forward(this.norm.forward(this.tokEmbeddings.forward(inputIds)))); // (B, L, H)
  }
}

// ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertMLP (GeGLU)
export class ModernBertMLP extends Module {
  readonly Wi: Linear;
  readonly Wo: Linear;
  readonly drop: Dropout;
  readonly act: (x: Tensor) => Tensor;
  readonly intermediateSize: number;

  constructor(p: ParamPath, cfg: ModernBertConfig) {
    super(p);
    const out = cfg.initializerRange / Math.sqrt(2 * cfg.numHiddenLayers);
    const c = cfg.initializerCutoffFactor;
    this.Wi = linear(
      p.pp("Wi"),
      cfg.hiddenSize,
      2 * cfg.intermediateSize,
      cfg.mlpBias,
      cfg.initializerRange,
      c,
    );
    this.Wo = linear(p.pp("Wo"), cfg.intermediateSize, cfg.hiddenSize, cfg.mlpBias, out, c);
    this.drop = new Dropout(cfg.mlpDropout);
    this.act = ACT[cfg.hiddenActivation];
    this.intermediateSize = cfg.intermediateSize;
  }

  forward(hiddenStates: Tensor): Tensor {
    return tidy(() => {
      const [input, gate] = this.Wi.forward(hiddenStates).split(this.intermediateSize, -1); // 2 × (B, L, I)
      return this.Wo.forward(this.drop.forward(this.act(input!).mul(gate!))); // (B, L, H)
    });
  }
}

/**
 * ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertRotaryEmbedding (default RoPE):
 * cos and sin (L, hd) of positions 0..L-1 with inv_freq = 1 / base^(2i/hd), computed with libtorch's float32
 * pow, reciprocal, matmul, cos and sin as HF.
 */
export function ropeCosSin(base: number, headDim: number, seqLength: number): [Tensor, Tensor] {
  return noGrad(() =>
    tidy(() => {
      const exponent = arange(0, headDim, 2, { dtype: "int64" }).to("float32").div(headDim); // (hd/2)
      const invFreq = full([headDim / 2], base)
        .pow(exponent)
        .reciprocal(); // (hd/2)
      const positions = arange(0, seqLength, 1, { dtype: "int64" }).to("float32"); // (L)
      const freqs = invFreq.unsqueeze(1).matmul(positions.unsqueeze(0)).transpose(0, 1); // (L, hd/2)
      const emb = cat([freqs, freqs], -1); // (L, hd)
      return [emb.cos(), emb.sin()] as [Tensor, Tensor];
    }),
  );
}

/** rotate_half: (x1, x2) -> (−x2, x1) over the last dim. */
function rotateHalf(x: Tensor): Tensor {
  const half = x.size(-1) / 2;
  const [x1, x2] = x.split(half, -1);
  return cat([x2!.neg(), x1!], -1);
}

// ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertAttention + sdpa_attention_forward
// + apply_rotary_pos_emb
export class ModernBertAttention extends Module {
  readonly Wqkv: Linear;
  readonly Wo: Linear;
  readonly outDrop: Dropout;
  readonly numHeads: number;
  readonly headDim: number;
  readonly attentionDropout: number;
  readonly isGlobal: boolean;

  constructor(p: ParamPath, cfg: ModernBertConfig, layerId: number) {
    super(p);
    this.numHeads = cfg.numAttentionHeads;
    this.headDim = cfg.hiddenSize / cfg.numAttentionHeads;
    this.attentionDropout = cfg.attentionDropout;
    this.isGlobal = isGlobalLayer(cfg, layerId);
    const out = cfg.initializerRange / Math.sqrt(2 * cfg.numHiddenLayers);
    const c = cfg.initializerCutoffFactor;
    this.Wqkv = linear(
      p.pp("Wqkv"),
      cfg.hiddenSize,
      3 * cfg.hiddenSize,
      cfg.attentionBias,
      cfg.initializerRange,
      c,
    );
    this.Wo = linear(p.pp("Wo"), cfg.hiddenSize, cfg.hiddenSize, cfg.attentionBias, out, c);
    this.outDrop = new Dropout(cfg.attentionDropout);
  }

  /** cos / sin (L, hd) of this layer's kind; mask the additive (B, 1, L, L) mask of this layer's kind. */
  forward(hiddenStates: Tensor, cos: Tensor, sin: Tensor, mask: Tensor): Tensor {
    return tidy(() => {
      const [bs, seqLength, dim] = [hiddenStates.size(0), hiddenStates.size(1), hiddenStates.size(2)];
      const qkv = this.Wqkv.forward(hiddenStates).view([bs, seqLength, 3, this.numHeads, this.headDim]); // (B, L, 3, nh, hd)
      const [query, key, value] = [0, 1, 2].map((i) => qkv.select(2, i).transpose(1, 2)); // 3 × (B, nh, L, hd)
      const qEmbed = query!.mul(cos).add(rotateHalf(query!).mul(sin)); // (B, nh, L, hd)
      const kEmbed = key!.mul(cos).add(rotateHalf(key!).mul(sin)); // (B, nh, L, hd)
      const attnOutput = scaledDotProductAttention(qEmbed, kEmbed, value!, {
        mask,
        dropoutP: this.training ? this.attentionDropout : 0,
      }); // (B, nh, L, hd)
      const merged = attnOutput.transpose(1, 2).reshape([bs, seqLength, dim]); // (B, L, H)
      return this.outDrop.forward(this.Wo.forward(merged)); // (B, L, H)
    });
  }
}

// ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertEncoderLayer (pre-norm; layer 0
// has no attn_norm: the embeddings' norm precedes it)
export class ModernBertEncoderLayer extends Module {
  readonly attnNorm: ModernBertNorm | null;
  readonly attn: ModernBertAttention;
  readonly mlpNorm: ModernBertNorm;
  readonly mlp: ModernBertMLP;

  constructor(p: ParamPath, cfg: ModernBertConfig, layerId: number) {
    super(p);
    this.attnNorm =
      layerId === 0 ? null : new ModernBertNorm(p.pp("attn_norm"), cfg.hiddenSize, cfg.normEps, cfg.normBias);
    this.attn = new ModernBertAttention(p.pp("attn"), cfg, layerId);
    this.mlpNorm = new ModernBertNorm(p.pp("mlp_norm"), cfg.hiddenSize, cfg.normEps, cfg.normBias);
    this.mlp = new ModernBertMLP(p.pp("mlp"), cfg);
  }

  forward(hiddenStates: Tensor, cos: Tensor, sin: Tensor, mask: Tensor): Tensor {
    return tidy(() => {
      const normed = this.attnNorm ? this.attnNorm.forward(hiddenStates) : hiddenStates; // (B, L, H)
      const h = hiddenStates.add(this.attn.forward(normed, cos, sin, mask)); // (B, L, H)
      return h.add(this.mlp.forward(this.mlpNorm.forward(h))); // (B, L, H)
    });
  }
}

const PROBE_KEY = "embeddings.tok_embeddings.weight";

// ports transformers@000c33fd models/modernbert/modeling_modernbert.py ModernBertModel (+ _update_attention_mask,
// _init_weights)
export class ModernBertModel extends PretrainedEncoder {
  readonly embeddings: ModernBertEmbeddings;
  readonly layers: ModernBertEncoderLayer[];
  readonly finalNorm: ModernBertNorm;

  constructor(
    p: ParamPath,
    readonly config: ModernBertConfig,
  ) {
    super(p);
    checkConfig(config, "ModernBertConfig");
    this.embeddings = new ModernBertEmbeddings(p.pp("embeddings"), config);
    this.layers = Array.from(
      { length: config.numHiddenLayers },
      (_, i) => new ModernBertEncoderLayer(p.pp("layers").pp(i), config, i),
    );
    this.finalNorm = new ModernBertNorm(
      p.pp("final_norm"),
      config.hiddenSize,
      config.normEps,
      config.normBias,
    );
  }

  /** RoPE has no position table; max_position_embeddings is the length the model was trained for. */
  get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings;
  }

  protected get wordEmbeddingWeight(): Tensor {
    return this.embeddings.tokEmbeddings.weight;
  }

  configJson(dtype: DType): Record<string, unknown> {
    return ModernBertConfig.toJson(this.config, dtype);
  }

  /** Loads from named tensors; keys may carry the `model.` prefix of ModernBertFor* checkpoints. */
  static load(
    weights: WeightSourceLike,
    config: ModernBertConfig,
    options: EncoderLoadOptions = {},
  ): EncoderLoadResult<ModernBertModel> {
    return loadEncoder(weights, (root) => new ModernBertModel(root, config), {
      probeKey: PROBE_KEY,
      headPrefix: "model.",
      options,
    });
  }

  static fromPretrained(dir: string, options: EncoderLoadOptions = {}): EncoderLoadResult<ModernBertModel> {
    return fromPretrainedEncoder(dir, ModernBertConfig.load, (source, config) =>
      ModernBertModel.load(source, config, options),
    );
  }

  /** A fresh model as HF `_init_weights`: truncated normals (std in / out per layer kind), norms at 1. */
  static init(
    config: ModernBertConfig,
    options: EncoderLoadOptions & { seed?: number } = {},
  ): ModernBertModel {
    return initEncoder((root) => new ModernBertModel(root, config), {
      hiddenSize: config.hiddenSize,
      initializerRange: config.initializerRange,
      seed: options.seed,
      options,
      withPooler: false,
    });
  }

  /**
   * _update_attention_mask: the global (B, 1, L, L) additive padding mask, and the sliding-window one that also
   * masks keys farther than local_attention / 2 from the query.
   */
  attentionMasks(attentionMask: Tensor, seqLength: number): { global: Tensor; sliding: Tensor } {
    return tidy(() => {
      const [b, l] = [attentionMask.size(0), seqLength];
      const global = getExtendedAttentionMask(attentionMask, this.dtype).expand([b, 1, l, l]).contiguous(); // (B, 1, L, L)
      const rows = arange(0, l, 1, { dtype: "int64", device: this.device }).unsqueeze(0); // (1, L)
      const distance = rows.sub(rows.transpose(0, 1)).abs(); // (L, L)
      const outside = distance.gt(Math.floor(this.config.localAttention / 2)); // (L, L) bool
      const sliding = global.maskedFill(outside, finfoMin(this.dtype)); // (B, 1, L, L)
      return { global, sliding };
    });
  }

  /** -> lastHiddenState (B, L, H); tokenTypeIds are ignored (ModernBERT has none). */
  forward({ inputIds, attentionMask }: EncoderInputs): Tensor {
    return tidy(() => {
      checkInputs("ModernBertModel", { inputIds, attentionMask }, this.maxSequenceLength);
      const device = this.device;
      const onDevice = (t: Tensor) => (t.device === device ? t : t.to(device));
      const ids = onDevice(inputIds);
      const [b, l] = [ids.size(0), ids.size(1)];
      const mask = attentionMask ? onDevice(attentionMask) : full([b, l], 1, { dtype: "int64", device });
      const { global, sliding } = this.attentionMasks(mask, l);
      const rope = (base: number) =>
        ropeCosSin(base, this.config.hiddenSize / this.config.numAttentionHeads, l).map((t) =>
          t.to(device).to(this.dtype),
        );
      const [gCos, gSin] = rope(this.config.globalRopeTheta); // (L, hd) each
      const [lCos, lSin] = rope(this.config.localRopeTheta); // (L, hd) each
      let h = this.embeddings.forward(ids); // (B, L, H)
      for (const layer of this.layers) {
        const g = layer.attn.isGlobal;
        const next = layer.forward(h, g ? gCos! : lCos!, g ? gSin! : lSin!, g ? global : sliding); // (B, L, H)
        h.dispose();
        h = next;
      }
      return this.finalNorm.forward(h); // (B, L, H)
    });
  }
}
