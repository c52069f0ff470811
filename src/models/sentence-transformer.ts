// A sentence-transformers model: tokenizer → BERT encoder → Pooling → (Dense…) → (Normalize), loaded from and
// saved to the sentence-transformers folder format, from a local folder or the Hugging Face hub.
//
// ports sentence_transformers SentenceTransformer.py: encode (length-sorted batches, order restored, prompts,
// truncate_dim, normalize_embeddings), similarity, save.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import {
  noGrad,
  tensor,
  tidy,
  keep,
  cat,
  zerosLike,
  type Device,
  type DType,
  type Tensor,
} from "../engine/index.ts";
import { Module } from "../nn/index.ts";
import { HfTokenizer } from "../tokenize/index.ts";
import { ProgressBar, resolveModelPath, type SnapshotOptions } from "../hub/index.ts";
import { BertModel } from "./bert.ts";
import {
  encoderFromPretrained,
  initEncoderFor,
  maxSequenceLengthOf,
  type Encoder,
  type EncoderConfig,
} from "./encoders.ts";
import { UseLite } from "./use-lite.ts";
import { Dense } from "./dense.ts";
import { Normalize, Pooling } from "./pooling.ts";
import { isPacked, packRows, type PackedSequences } from "./packed.ts";
import { refusePickle } from "./safetensors.ts";
import { loadSafetensors, saveSafetensors } from "./weights.ts";
import { readStFolder, type PoolingMode, type SimilarityFnName, type StFolderSpec } from "./st-folder.ts";
import { writeStFolder } from "./st-folder-write.ts";
import { writeFileAtomic } from "../util/index.ts";
import { readJsonFile } from "../util/read-file.ts";

export interface LoadOptions extends Pick<
  SnapshotOptions,
  "revision" | "token" | "cacheDir" | "localFilesOnly" | "endpoint"
> {
  device?: Device;
  /** Parameter dtype (default float32). */
  dtype?: DType;
  /** Show download progress (default: when stderr is a terminal). */
  progress?: boolean;
}

export interface EncodeOptions {
  /** Texts per forward pass (default 32). Texts are sorted by token count first, so batches pad little. */
  batchSize?: number;
  /** Keep the first d dimensions (Matryoshka). */
  truncateDim?: number;
  /**
   * L2-normalize the output. Default: true when truncating a model whose similarity is cosine (the slice of a
   * unit vector is not a unit vector), otherwise whatever the model's own modules do.
   */
  normalize?: boolean;
  /** A prompt text prepended to every text. */
  prompt?: string;
  /** A prompt of the model by name (config_sentence_transformers.json `prompts`), e.g. "query". */
  promptName?: string;
  /** A progress bar on stderr (a string is its label). */
  progress?: boolean | string;
  /** Packed (padding-free) forward passes; default: the model's `packing` (true). */
  packing?: boolean;
}

/** Row-major float32 embeddings: row i is the embedding of text i. */
export interface EmbeddingMatrix {
  data: Float32Array;
  rows: number;
  dim: number;
}

/** Texts tokenized into a padded batch, as tensors on the model's device. */
export interface Features {
  inputIds: Tensor; // (B, L) int64
  attentionMask: Tensor; // (B, L) int64
  tokenTypeIds: Tensor; // (B, L) int64
}

export interface CreateModelOptions {
  /** The architecture follows the config: BertConfig, XlmRobertaConfig, MpnetConfig or ModernBertConfig. */
  config: EncoderConfig;
  tokenizer: HfTokenizer;
  pooling: PoolingMode;
  normalize?: boolean;
  maxSeqLength?: number;
  seed?: number;
  device?: Device;
  dtype?: DType;
  prompts?: Record<string, string>;
}

export class SentenceTransformer extends Module {
  /**
   * The transformer: a BERT, XLM-RoBERTa, MPNet or ModernBERT encoder (encoders.ts), or Universal Sentence Encoder lite
   * (which pools and normalizes itself).
   */
  readonly encoder: Encoder | UseLite;
  readonly #tokenizer: HfTokenizer | null;
  readonly pooling: Pooling;
  readonly dense: Dense[];
  readonly normalizer: Normalize | null;
  /** The folder description (what save() writes back). */
  spec: StFolderSpec;
  maxSeqLength: number;
  /** Warnings from loading (fallbacks taken, unused checkpoint keys). */
  readonly warnings: string[];
  /**
   * Whether embed() and encode() run packed (padding-free) forward passes: the default, since they compute
   * only real tokens. false runs the padded reference path (same values up to float summation order).
   */
  packing = true;

  private constructor(parts: {
    tokenizer: HfTokenizer | null;
    encoder: Encoder | UseLite;
    pooling: Pooling;
    dense: Dense[];
    normalize: boolean;
    spec: StFolderSpec;
    maxSeqLength: number;
    warnings: string[];
  }) {
    super(null);
    this.#tokenizer = parts.tokenizer;
    this.encoder = parts.encoder;
    this.pooling = parts.pooling;
    this.dense = parts.dense;
    this.normalizer = parts.normalize ? new Normalize() : null;
    this.spec = parts.spec;
    this.maxSeqLength = parts.maxSeqLength;
    this.warnings = parts.warnings;
  }

  /** The BERT encoder (an error for USE-lite and the other architectures). */
  /**
   * Whether this model has the packed (padding-free) path: BERT and USE-lite. XLM-RoBERTa, MPNet and ModernBERT
   * run padded (their encoders take no packed sequences yet), whatever `packing` says.
   */
  get canPack(): boolean {
    return this.encoder instanceof BertModel || this.encoder instanceof UseLite;
  }

  get bert(): BertModel {
    if (this.encoder instanceof BertModel) return this.encoder;
    const what =
      this.encoder instanceof UseLite ? "Universal Sentence Encoder lite" : this.encoder.config.modelType;
    throw new Error(`this model is ${what}, not a BERT encoder`);
  }

  /** The USE-lite encoder, or null for BERT models. */
  get useLite(): UseLite | null {
    return this.encoder instanceof UseLite ? this.encoder : null;
  }

  /** The Hugging Face tokenizer (an error for USE-lite, whose SentencePiece tokenizer lives in the encoder). */
  get tokenizer(): HfTokenizer {
    if (this.#tokenizer) return this.#tokenizer;
    throw new Error("this model is Universal Sentence Encoder lite: it has no Hugging Face tokenizer");
  }

  /** Tokens of a text with the model's tokenizer (special tokens included; truncated to maxLength if given). */
  countTokens(text: string, maxLength?: number): number {
    const use = this.useLite;
    return use ? use.tokenizer.encode(text).length : this.tokenizer.countTokens(text, maxLength);
  }

  /**
   * Loads a model from a local folder or a hub repo id (downloaded into the Hugging Face cache; honours
   * HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE). Module types of sentence-transformers 3.x–6.x are understood; a
   * plain transformers folder gets mean pooling, as sentence-transformers does.
   */
  static async load(idOrDir: string, options: LoadOptions = {}): Promise<SentenceTransformer> {
    if (idOrDir === USE_LITE_ID) return SentenceTransformer.fromUseLite(UseLite.fromNpm(options));
    const dir = await resolveModelPath(idOrDir, hubOptions(options));
    return SentenceTransformer.fromDir(dir, options);
  }

  /**
   * The tokenizer and the max sequence length of a model folder or hub id, without loading its weights (for
   * reports that count tokens, e.g. `ragtune prepare --model`).
   */
  static async loadTokenizer(
    idOrDir: string,
    options: LoadOptions = {},
  ): Promise<{ tokenizer: HfTokenizer; maxSeqLength: number | null }> {
    const dir = await resolveModelPath(idOrDir, hubOptions({ ...options, progress: false }));
    const folder = readStFolder(dir);
    const transformer = folder.modules.find((m) => m.kind === "transformer");
    return {
      tokenizer: HfTokenizer.fromDir(join(dir, transformer?.path ?? "")),
      maxSeqLength: folder.maxSeqLength,
    };
  }

  /** Loads a local sentence-transformers (or plain transformers) folder. */
  static fromDir(dir: string, options: Pick<LoadOptions, "device" | "dtype"> = {}): SentenceTransformer {
    // A `ragtune train` run folder keeps its model in final/ (src/train/output-dir.ts FINAL_DIR, RUN_MARKER).
    if (
      !existsSync(join(dir, "config.json")) &&
      existsSync(join(dir, "ragtune_run.json")) &&
      existsSync(join(dir, "final"))
    )
      throw new Error(`${dir} is a ragtune train run folder; its model is ${join(dir, "final")}`);
    if (isUseLiteFolder(dir)) return SentenceTransformer.fromUseLite(UseLite.fromPretrained(dir, options));
    const folder = readStFolder(dir);
    const warnings = [...folder.warnings];
    const transformer = folder.modules.find((m) => m.kind === "transformer");
    if (!transformer) throw new Error(`${join(dir, "modules.json")}: no Transformer module`);
    const tdir = join(dir, transformer.path);
    if (!hasSafetensors(tdir)) {
      for (const name of ["pytorch_model.bin", "model.pt", "model.bin"]) {
        if (existsSync(join(tdir, name))) refusePickle(join(tdir, name));
      }
      throw new Error(`${tdir}: no model.safetensors (or model.safetensors.index.json) found`);
    }
    const tokenizer = HfTokenizer.fromDir(tdir);
    const { model: bert, unusedKeys } = encoderFromPretrained(tdir, options);
    // Token ids index the embedding matrix: an id past its rows would read outside it.
    if (tokenizer.vocabSize > bert.config.vocabSize)
      throw new Error(
        `${tokenizer.source}: ${tokenizer.vocabSize} token ids, but the embedding matrix has ${bert.config.vocabSize} rows (vocab_size in ${join(tdir, "config.json")})`,
      );
    if (unusedKeys.length > 0)
      warnings.push(`${tdir}: checkpoint keys not used by the encoder: ${unusedKeys.join(", ")}`);
    const poolingSpec = folder.modules.find((m) => m.kind === "pooling");
    const pooling = new Pooling(
      poolingSpec?.kind === "pooling"
        ? poolingSpec.config
        : { embeddingDimension: bert.config.hiddenSize, modes: ["mean"], includePrompt: true },
    );
    const dense = folder.modules.flatMap((m) =>
      m.kind === "dense" ? [Dense.load(join(dir, m.path), m.config, options)] : [],
    );
    const normalize = folder.modules.some((m) => m.kind === "normalize");
    const limit = folder.maxSeqLength ?? maxSequenceLengthOf(bert);
    const maxSeqLength = Math.min(limit, maxSequenceLengthOf(bert));
    const { source: _s, warnings: _w, ...spec } = folder;
    return new SentenceTransformer({
      tokenizer,
      encoder: bert,
      pooling,
      dense,
      normalize,
      spec,
      maxSeqLength,
      warnings,
    });
  }

  /**
   * Wraps Universal Sentence Encoder lite (src/models/use-lite.ts): its encoder pools and normalizes itself, so
   * the Pooling module here only describes the output (512 dims, cosine); no Dense, no extra Normalize.
   */
  static fromUseLite(use: UseLite): SentenceTransformer {
    const dim = use.embeddingDim;
    const poolingConfig = { embeddingDimension: dim, modes: ["mean" as const], includePrompt: true };
    return new SentenceTransformer({
      tokenizer: null,
      encoder: use,
      pooling: new Pooling(poolingConfig),
      dense: [],
      normalize: false,
      spec: {
        modules: [{ kind: "transformer", path: "" }],
        maxSeqLength: use.config.maxLength,
        doLowerCase: false,
        prompts: {},
        defaultPromptName: null,
        similarityFnName: "cosine",
        truncateDim: null,
      },
      maxSeqLength: use.config.maxLength,
      warnings: [],
    });
  }

  /** A freshly initialized model (for tests and offline demos; `ragtune create-model`). */
  static create(o: CreateModelOptions): SentenceTransformer {
    if (o.tokenizer.vocabSize > o.config.vocabSize) {
      throw new Error(
        `create: the tokenizer has ${o.tokenizer.vocabSize} tokens, the config's vocab_size is ${o.config.vocabSize}`,
      );
    }
    const bert = initEncoderFor(o.config, { seed: o.seed ?? 42, device: o.device, dtype: o.dtype });
    const maxSeqLength = Math.min(o.maxSeqLength ?? maxSequenceLengthOf(bert), maxSequenceLengthOf(bert));
    const normalize = o.normalize ?? true;
    const poolingConfig = {
      embeddingDimension: o.config.hiddenSize,
      modes: [o.pooling],
      includePrompt: true,
    };
    const spec: StFolderSpec = {
      modules: [
        { kind: "transformer", path: "" },
        { kind: "pooling", path: "1_Pooling", config: poolingConfig },
        ...(normalize ? [{ kind: "normalize" as const, path: "2_Normalize" }] : []),
      ],
      maxSeqLength,
      doLowerCase: false,
      prompts: o.prompts ?? {},
      defaultPromptName: null,
      similarityFnName: "cosine",
      truncateDim: null,
    };
    return new SentenceTransformer({
      tokenizer: o.tokenizer,
      encoder: bert,
      pooling: new Pooling(poolingConfig),
      dense: [],
      normalize,
      spec,
      maxSeqLength,
      warnings: [],
    });
  }

  /**
   * Copies the weights of a saved folder of the same architecture into this model's parameters, in place (the
   * optimizer keeps its references): used to resume training and to load the best checkpoint at the end.
   */
  loadWeightsFrom(dir: string): void {
    const copyInto = (module: Module, file: string) => {
      const saved = loadSafetensors(file);
      try {
        noGrad(() => {
          for (const [name, p] of module.namedParameters()) {
            const t = saved.get(name);
            if (!t) throw new Error(`${file}: missing tensor "${name}"`);
            if (t.shape.join(",") !== p.shape.join(",")) {
              throw new Error(
                `${file}: "${name}" has shape [${t.shape.join(", ")}], the model [${p.shape.join(", ")}]`,
              );
            }
            p.copy_(t);
          }
        });
      } finally {
        for (const t of saved.values()) t.dispose();
      }
    };
    copyInto(this.encoder, join(dir, "model.safetensors"));
    this.spec.modules
      .filter((m) => m.kind === "dense")
      .forEach((m, i) => {
        const d = this.dense[i];
        if (d) copyInto(d, join(dir, m.path, "model.safetensors"));
      });
  }

  /** The encoder's layers, width and heads (for memory estimates). */
  get encoderShape(): { layers: number; hidden: number; heads: number } {
    if (this.encoder instanceof UseLite) {
      const c = this.encoder.config;
      return { layers: c.numLayers, hidden: c.hiddenSize, heads: c.numHeads };
    }
    const c = this.encoder.config;
    return { layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads };
  }

  /** Size of the output embedding. */
  get embeddingDim(): number {
    if (this.encoder instanceof UseLite) return this.encoder.embeddingDim;
    const last = this.dense[this.dense.length - 1];
    return last ? last.config.outFeatures : this.pooling.outputDimension;
  }

  get device(): Device {
    return this.encoder.device;
  }

  get similarityFnName(): SimilarityFnName {
    return this.spec.similarityFnName;
  }

  /** Resolves a prompt option to its text ("" when none). */
  promptText(options: Pick<EncodeOptions, "prompt" | "promptName">): string {
    if (options.prompt !== undefined) return options.prompt;
    const name = options.promptName ?? this.spec.defaultPromptName;
    if (name === null || name === undefined) return "";
    const text = this.spec.prompts[name];
    if (text === undefined) {
      const known = Object.keys(this.spec.prompts);
      throw new Error(
        `prompt name "${name}" is not one of the model's prompts (${known.length ? known.join(", ") : "it has none"})`,
      );
    }
    return text;
  }

  /**
   * The prompt of one side of retrieval, as sentence-transformers' encode_query / encode_document choose it: a
   * text given wins, then a prompt name, then the model's own "query" prompt (for documents the first of
   * "document", "passage", "corpus" it has), then its default prompt ("" when none).
   */
  sidePrompt(side: "query" | "document", options: Pick<EncodeOptions, "prompt" | "promptName"> = {}): string {
    if (options.prompt !== undefined) return options.prompt;
    if (options.promptName !== undefined) return this.promptText({ promptName: options.promptName });
    const names = side === "query" ? ["query"] : ["document", "passage", "corpus"];
    const own = names.find((n) => Object.hasOwn(this.spec.prompts, n));
    return this.promptText(own !== undefined ? { promptName: own } : {});
  }

  /**
   * Sets the prompts the model was trained with, as ST's trainer saves them: "query" and "document" in
   * config_sentence_transformers.json (an empty text removes the name), the other prompts kept; the default
   * prompt name stays only while it still names a prompt.
   */
  setPrompts(prompts: { query?: string; document?: string }, defaultPromptName?: string | null): void {
    const next = { ...this.spec.prompts };
    for (const [name, text] of Object.entries(prompts)) {
      if (text === undefined) continue;
      if (text) next[name] = text;
      else delete next[name];
    }
    let fallback = defaultPromptName === undefined ? this.spec.defaultPromptName : defaultPromptName;
    if (fallback !== null && !(fallback in next)) {
      if (defaultPromptName !== undefined)
        throw new Error(
          `default prompt name "${fallback}" is not one of the prompts (${Object.keys(next).join(", ") || "none"})`,
        );
      fallback = null;
    }
    this.spec = { ...this.spec, prompts: next, defaultPromptName: fallback };
  }

  /** Tokenizes a batch (padding to its longest text, truncation to maxSeqLength) onto the model's device. */
  tokenize(texts: readonly string[]): Features {
    const use = this.useLite;
    if (use) {
      const f = use.tokenize(texts);
      return { ...f, tokenTypeIds: zerosLike(f.inputIds) };
    }
    const prepared = this.spec.doLowerCase ? texts.map((t) => t.toLowerCase()) : texts;
    const enc = this.tokenizer.encodeBatch(prepared, { maxLength: this.maxSeqLength });
    const shape = [enc.batchSize, enc.seqLen];
    const device = this.device;
    return {
      inputIds: tensor(enc.inputIds, { shape, device }),
      attentionMask: tensor(enc.attentionMask, { shape, device }),
      tokenTypeIds: tensor(enc.tokenTypeIds, { shape, device }),
    };
  }

  /**
   * Tokenizes a batch into packed sequences (no padding; truncation to maxSeqLength) on the model's device:
   * what forward() takes on the padding-free path.
   */
  tokenizePacked(texts: readonly string[], options: { chunkOverhead?: number } = {}): PackedSequences {
    const use = this.useLite;
    if (use) return use.tokenizePacked(texts, options);
    const prepared = this.spec.doLowerCase ? texts.map((t) => t.toLowerCase()) : texts;
    const enc = this.tokenizer.encodeBatch(prepared, { maxLength: this.maxSeqLength });
    const rows = Array.from({ length: enc.batchSize }, (_, i) => {
      const s = i * enc.seqLen;
      const e = s + enc.lengths[i]!;
      return {
        ids: Array.from(enc.inputIds.subarray(s, e), Number),
        typeIds: Array.from(enc.tokenTypeIds.subarray(s, e), Number),
      };
    });
    return packRows(rows, {
      device: this.device,
      maskDtype: this.bert.dtype,
      hiddenSize: this.bert.config.hiddenSize,
      numHeads: this.encoderShape.heads,
      ...options,
    });
  }

  /**
   * Embeddings of a tokenized batch (B, D), recording autograd when enabled (training): a padded batch from
   * tokenize() or packed sequences from tokenizePacked(). `promptLength` is the number of leading prompt
   * tokens, which pooling leaves out when the model's include_prompt is false.
   */
  forward(features: Features | PackedSequences, options: { promptLength?: number } = {}): Tensor {
    return tidy(() => {
      if (isPacked(features)) {
        if (this.encoder instanceof UseLite) return this.encoder.forwardPacked(features); // (B, 512)
        const tokens = this.bert.forwardPacked(features); // (T, H); canPack: only BERT gets here
        let x = this.pooling.forwardPacked(tokens, features, options); // (B, P)
        for (const d of this.dense) x = d.forward(x); // (B, D)
        return this.normalizer ? this.normalizer.forward(x) : x; // (B, D)
      }
      if (this.encoder instanceof UseLite) return this.encoder.forward(features); // (B, 512), pooled + normalized
      const tokenEmbeddings = this.encoder.forward(features); // (B, L, H)
      let x = this.pooling.forward(tokenEmbeddings, features.attentionMask, options); // (B, P)
      for (const d of this.dense) x = d.forward(x); // (B, D)
      return this.normalizer ? this.normalizer.forward(x) : x; // (B, D)
    });
  }

  /**
   * Embeddings (B, D) of texts, recording autograd when enabled: the trainer's and the losses' entry point.
   * Packed unless `packing` (default: the model's `packing`) is false.
   */
  embed(texts: readonly string[], options: { packing?: boolean; promptLength?: number } = {}): Tensor {
    return tidy(() => {
      const packing = (options.packing ?? this.packing) && this.canPack;
      const features = packing ? this.tokenizePacked(texts) : this.tokenize(texts);
      return this.forward(
        features,
        options.promptLength === undefined ? {} : { promptLength: options.promptLength },
      );
    });
  }

  /** Tokens of the prompt that precede the text, [CLS] included (ST's prompt_length). */
  promptLength(prompt: string): number | undefined {
    if (this.useLite) return undefined; // USE-lite pools every token
    return prompt ? this.tokenizer.tokenIds(prompt).length - 1 : undefined;
  }

  /**
   * Embeddings (N, D) of many texts as one float32 tensor on the model's device, in input order, without
   * truncation or extra normalization (the evaluator slices it per Matryoshka dim). No autograd.
   */
  encodeTensor(
    texts: readonly string[],
    options: { batchSize?: number; prompt?: string; progress?: boolean | string; packing?: boolean } = {},
  ): Tensor {
    const packing = (options.packing ?? this.packing) && this.canPack;
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const prompt = options.prompt ?? "";
    const inputs = prompt ? texts.map((t) => prompt + t) : [...texts];
    const promptLength = this.promptLength(prompt);
    // Longest first (as ST), by token count rather than characters: batches of similar length pad little.
    const lengths = inputs.map((t) => this.countTokens(t, this.maxSeqLength));
    const order = inputs.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
    const bar = options.progress
      ? new ProgressBar({
          total: inputs.length,
          label: typeof options.progress === "string" ? options.progress : "encode",
          unit: "texts",
        })
      : null;
    const wasTraining = this.training;
    this.eval();
    try {
      return noGrad(() =>
        tidy(() => {
          const blocks: Tensor[] = [];
          for (let start = 0; start < order.length; start += batchSize) {
            const idx = order.slice(start, start + batchSize);
            blocks.push(
              keep(
                tidy(() => {
                  const batch = idx.map((i) => inputs[i]!);
                  const features = packing ? this.tokenizePacked(batch) : this.tokenize(batch);
                  return this.forward(features, promptLength === undefined ? {} : { promptLength }).float(); // (b, D)
                }),
              ),
            );
            bar?.update(idx.length);
          }
          bar?.done();
          if (blocks.length === 0)
            return tensor(new Float32Array(0), { shape: [0, this.embeddingDim], device: this.device });
          const sorted = cat(blocks, 0); // (N, D) in length order
          for (const b of blocks) b.dispose();
          const inverse = new BigInt64Array(order.length);
          order.forEach((orig, pos) => (inverse[orig] = BigInt(pos)));
          return sorted.indexSelect(0, tensor(inverse, { device: this.device })); // (N, D) in input order
        }),
      );
    } finally {
      if (wasTraining) this.train();
    }
  }

  /** Embeddings of texts as a float32 matrix on the CPU (ST's encode with convert_to_numpy). */
  encode(texts: readonly string[], options: EncodeOptions = {}): EmbeddingMatrix {
    const prompt = this.promptText(options);
    const truncateDim = options.truncateDim ?? this.spec.truncateDim ?? undefined;
    if (
      truncateDim !== undefined &&
      (!Number.isInteger(truncateDim) || truncateDim < 1 || truncateDim > this.embeddingDim)
    ) {
      throw new RangeError(`truncateDim must be an integer in 1..${this.embeddingDim}, got ${truncateDim}`);
    }
    const normalize =
      options.normalize ??
      (truncateDim !== undefined && truncateDim < this.embeddingDim && this.similarityFnName === "cosine");
    return tidy(() => {
      let e = this.encodeTensor(texts, {
        batchSize: options.batchSize,
        prompt,
        progress: options.progress,
        packing: options.packing,
      }); // (N, D)
      if (truncateDim !== undefined) e = e.narrow(1, 0, truncateDim); // (N, d)
      if (normalize) e = e.normalize(-1);
      const dim = e.shape[1] ?? 0;
      return { data: e.contiguous().toArray() as Float32Array, rows: texts.length, dim };
    });
  }

  /** Pairwise similarity matrix (a.rows × b.rows) with the model's similarity function. */
  similarity(a: EmbeddingMatrix, b: EmbeddingMatrix): EmbeddingMatrix {
    return similarity(a, b, this.similarityFnName);
  }

  /**
   * Writes the sentence-transformers folder: modules.json, config_sentence_transformers.json,
   * sentence_bert_config.json, config.json + model.safetensors + tokenizer files at the root, 1_Pooling/,
   * Dense folders, 2_Normalize/. Returns the files written.
   */
  save(dir: string, options: { modelCard?: string } = {}): string[] {
    mkdirSync(dir, { recursive: true });
    if (this.encoder instanceof UseLite) {
      // ragtune's own folder for USE-lite: config.json (architectures UseLite), model.safetensors, vocab.json.
      this.encoder.savePretrained(dir);
      if (options.modelCard !== undefined) writeFileAtomic(join(dir, "README.md"), options.modelCard);
      return [
        "config.json",
        "model.safetensors",
        "vocab.json",
        ...(options.modelCard !== undefined ? ["README.md"] : []),
      ];
    }
    this.encoder.savePretrained(dir);
    const written = ["config.json", "model.safetensors"];
    // HfTokenizer.save returns full paths; this list is relative to dir, like writeStFolder's.
    written.push(
      ...this.tokenizer.save(dir, { modelMaxLength: this.maxSeqLength }).map((p) => relative(dir, p)),
    );
    const spec: StFolderSpec = { ...this.spec, maxSeqLength: this.maxSeqLength };
    written.push(...writeStFolder(dir, spec));
    // Dense modules keep their weights in their own folder (ST Dense.save: model.safetensors, keys linear.*).
    const denseSpecs = this.spec.modules.filter((m) => m.kind === "dense");
    denseSpecs.forEach((m, i) => {
      const d = this.dense[i];
      if (!d) return;
      mkdirSync(join(dir, m.path), { recursive: true });
      tidy(() =>
        saveSafetensors(
          join(dir, m.path, "model.safetensors"),
          d.namedParameters().map(([n, t]) => [n, t.detach()] as const),
        ),
      );
      written.push(join(m.path, "model.safetensors"));
    });
    if (options.modelCard !== undefined) {
      writeFileAtomic(join(dir, "README.md"), options.modelCard);
      written.push("README.md");
    }
    return written;
  }
}

/** The hub options of LoadOptions (only those given: the hub's own defaults and env vars apply otherwise). */
function hubOptions(options: LoadOptions): SnapshotOptions {
  return {
    ...(options.revision ? { revision: options.revision } : {}),
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.localFilesOnly ? { localFilesOnly: true } : {}),
    ...(options.progress !== undefined ? { progress: options.progress } : {}),
  };
}

/** The model id that loads Universal Sentence Encoder lite from its npm package (no download). */
export const USE_LITE_ID = "use-lite";

/** A folder saved from a USE-lite model (config.json names the architecture). */
function isUseLiteFolder(dir: string): boolean {
  const cfg = join(dir, "config.json");
  if (existsSync(join(dir, "modules.json")) || !existsSync(cfg)) return false;
  try {
    // Bounded, regular files only: a FIFO here falls through to readStFolder, which names it.
    const json = readJsonFile(cfg) as { architectures?: unknown };
    return Array.isArray(json.architectures) && json.architectures.includes("UseLite");
  } catch {
    return false;
  }
}

function hasSafetensors(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((f) => f === "model.safetensors" || f === "model.safetensors.index.json");
}

/** Similarity matrix between the rows of a and b (cosine, dot, or negative euclidean / manhattan distance). */
export function similarity(
  a: EmbeddingMatrix,
  b: EmbeddingMatrix,
  fn: SimilarityFnName = "cosine",
): EmbeddingMatrix {
  if (a.dim !== b.dim) throw new RangeError(`similarity: dimensions differ (${a.dim} vs ${b.dim})`);
  return tidy(() => {
    const ta = tensor(a.data, { shape: [a.rows, a.dim] });
    const tb = tensor(b.data, { shape: [b.rows, b.dim] });
    let s: Tensor;
    switch (fn) {
      case "cosine":
        s = ta.normalize(-1).matmul(tb.normalize(-1).mT);
        break;
      case "dot":
        s = ta.matmul(tb.mT);
        break;
      case "euclidean":
        s = ta.unsqueeze(1).sub(tb.unsqueeze(0)).norm(2, -1).neg();
        break;
      case "manhattan":
        s = ta.unsqueeze(1).sub(tb.unsqueeze(0)).abs().sum(-1).neg();
        break;
    }
    return { data: s.contiguous().toArray() as Float32Array, rows: a.rows, dim: b.rows };
  });
}
