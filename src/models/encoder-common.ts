// What every encoder (bert.ts, xlm-roberta.ts, mpnet.ts, modernbert.ts) shares around its layers: building the
// module tree from a checkpoint (with or without the head's `bert.` / `roberta.` / `mpnet.` prefix) or from a
// fresh seeded initialization, loading a folder, the unused pooler weights kept through load and save, the input
// checks of forward, position ids from padding, and savePretrained. config.json reading is in encoder-config.ts.
import { join } from "node:path";

import {
  forkRng,
  keep,
  manualSeed,
  tidy,
  zeros,
  type Device,
  type DType,
  type Tensor,
} from "../engine/index.ts";
import {
  Module,
  ParamPath,
  VarStore,
  toWeightSource,
  type WeightSource,
  type WeightSourceLike,
} from "../nn/index.ts";
import { saveSafetensors, safetensorsSource } from "./weights.ts";
import { writeFileAtomic } from "../util/index.ts";

/** Inputs of every encoder's forward (BertInputs' shape): (B, L) int64 tensors. */
export interface EncoderInputs {
  inputIds: Tensor;
  attentionMask?: Tensor | null;
  tokenTypeIds?: Tensor | null;
}

export interface EncoderLoadOptions {
  /** Parameter dtype (default float32, as HF `from_pretrained`); the checkpoint's tensors are cast. */
  dtype?: DType;
  device?: Device;
}

export interface EncoderLoadResult<M> {
  model: M;
  /** Checkpoint keys the model neither uses nor keeps (lm_head.*, embeddings.position_ids, …): ignored. */
  unusedKeys: string[];
}

const POOLER_KEYS = ["pooler.dense.weight", "pooler.dense.bias"] as const;

/**
 * An encoder with HF's unused pooler (pooler.dense.*): kept from the checkpoint, or drawn like HF for new
 * models, and written back by savePretrained so that transformers loads a saved folder without reporting
 * missing weights. Not a parameter: neither trained nor checkpointed.
 */
export abstract class PretrainedEncoder extends Module {
  readonly #pooler = new Map<string, Tensor>();

  /** The word embedding table (gives dtype and device). */
  protected abstract get wordEmbeddingWeight(): Tensor;
  /** config.json as `save_pretrained` writes it. */
  abstract configJson(dtype: DType): Record<string, unknown>;
  abstract forward(inputs: EncoderInputs): Tensor;

  get dtype(): DType {
    return this.wordEmbeddingWeight.dtype;
  }

  get device(): Device {
    return this.wordEmbeddingWeight.device;
  }

  /** Copies pooler.dense.* from `source` (under `prefix`) when present. */
  adoptPooler(source: WeightSource, prefix: string, dtype: DType): string[] {
    const kept: string[] = [];
    for (const key of POOLER_KEYS) {
      const t = source.has(prefix + key) ? source.get(prefix + key) : undefined;
      if (!t) continue;
      const cast = t.to(dtype);
      const moved = cast.to(this.device);
      this.#pooler.set(key, keep(moved.clone())); // an own copy: the source may be borrowed
      cast.dispose();
      moved.dispose();
      if (source.owned) t.dispose();
      kept.push(prefix + key);
    }
    return kept;
  }

  /** A new pooler as HF `_init_weights`: weight ~ N(0, std), bias 0 (call inside the init's RNG fork). */
  initPooler(hiddenSize: number, std: number): void {
    const o = { dtype: this.dtype, device: this.device };
    this.#pooler.set("pooler.dense.weight", keep(zeros([hiddenSize, hiddenSize], o).normal_(0, std)));
    this.#pooler.set("pooler.dense.bias", keep(zeros([hiddenSize], o)));
  }

  /** name -> detached tensor with HF's names and no prefix (dispose them, or use tidy, when done). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters().map(([n, t]) => [n, t.detach()]));
  }

  /** Writes `config.json` and `model.safetensors` into `dir` (which must exist). */
  savePretrained(dir: string): void {
    writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(this.configJson(this.dtype), null, 2)}\n`);
    tidy(() =>
      saveSafetensors(join(dir, "model.safetensors"), new Map([...this.stateDict(), ...this.#pooler])),
    );
  }

  override dispose(): void {
    for (const t of this.#pooler.values()) t.dispose();
    this.#pooler.clear();
    super.dispose();
  }
}

/**
 * Builds an encoder from named tensors. Keys may carry `headPrefix` (checkpoints of *For* heads save the encoder
 * under e.g. `roberta.`): detected by `probeKey`. Missing keys and shape mismatches throw (WeightError); keys the
 * encoder does not use are returned. The model starts in eval mode.
 */
export function loadEncoder<M extends PretrainedEncoder>(
  weights: WeightSourceLike,
  build: (root: ParamPath) => M,
  o: { probeKey: string; headPrefix: string; options: EncoderLoadOptions },
): EncoderLoadResult<M> {
  const source = toWeightSource(weights);
  const prefix = !source.has(o.probeKey) && source.has(o.headPrefix + o.probeKey) ? o.headPrefix : "";
  const vs = new VarStore({ source, sourcePrefix: prefix, dtype: o.options.dtype, device: o.options.device });
  try {
    const model = build(vs.root());
    const kept = new Set(model.adoptPooler(source, prefix, o.options.dtype ?? model.dtype));
    return { model, unusedKeys: vs.unusedKeys().filter((k) => !kept.has(k)) };
  } catch (e) {
    vs.dispose();
    throw e;
  }
}

/** Loads `config.json` and `model.safetensors` (or a sharded index) from a model folder through `load`. */
export function fromPretrainedEncoder<C, M>(
  dir: string,
  loadConfig: (file: string) => C,
  load: (source: WeightSource, config: C) => EncoderLoadResult<M>,
): EncoderLoadResult<M> {
  const config = loadConfig(join(dir, "config.json"));
  const source = safetensorsSource(dir);
  try {
    return load(source, config);
  } finally {
    source.close();
  }
}

/**
 * A freshly initialized encoder (HF `_init_weights` through the modules' own initializers), then its pooler;
 * `seed` makes it reproducible without disturbing the caller's random stream.
 */
export function initEncoder<M extends PretrainedEncoder>(
  build: (root: ParamPath) => M,
  o: {
    hiddenSize: number;
    initializerRange: number;
    seed?: number;
    options: EncoderLoadOptions;
    /** false for architectures without HF pooler weights (ModernBERT). */
    withPooler?: boolean;
  },
): M {
  const vs = new VarStore({ dtype: o.options.dtype, device: o.options.device });
  const devices: Device[] = vs.device === "cpu" ? ["cpu"] : ["cpu", vs.device];
  try {
    return forkRng(() => {
      manualSeed(o.seed ?? 42);
      const model = build(vs.root());
      // After every parameter, as BertModel.init.
      if (o.withPooler !== false) model.initPooler(o.hiddenSize, o.initializerRange);
      return model;
    }, devices);
  } catch (e) {
    vs.dispose();
    throw e;
  }
}

/**
 * The checks of BertModel.forward: (B, L) inputs, L within `maxLength`, mask and type ids of the same shape.
 */
export function checkInputs(
  name: string,
  inputs: EncoderInputs,
  maxLength: number,
  limitName = "the model's maximum",
): void {
  const { inputIds } = inputs;
  if (inputIds.ndim !== 2)
    throw new RangeError(`${name}: inputIds must be (batch, seq), got [${inputIds.shape.join(", ")}]`);
  const [batchSize, seqLength] = [inputIds.size(0), inputIds.size(1)];
  if (seqLength > maxLength)
    throw new RangeError(`${name}: sequence length ${seqLength} exceeds ${limitName} ${maxLength}`);
  for (const [key, t] of [
    ["attentionMask", inputs.attentionMask],
    ["tokenTypeIds", inputs.tokenTypeIds],
  ] as const) {
    if (t && (t.ndim !== 2 || t.size(0) !== batchSize || t.size(1) !== seqLength))
      throw new RangeError(
        `${name}: ${key} has shape [${t.shape.join(", ")}], inputIds [${batchSize}, ${seqLength}]`,
      );
  }
}

// ports transformers@015bfeb8 models/xlm_roberta/modeling_xlm_roberta.py#create_position_ids_from_input_ids
// (the same function is in modeling_mpnet.py): positions count real tokens from paddingIdx + 1; padding keeps
// paddingIdx, whose embedding row is zero and gets no gradient.
export function createPositionIdsFromInputIds(inputIds: Tensor, paddingIdx: number): Tensor {
  return tidy(() => {
    const mask = inputIds.ne(paddingIdx).to("int64"); // (B, L) 1 for real tokens
    const incrementalIndices = mask.cumsum(1).mul(mask); // (B, L)
    return incrementalIndices.add(paddingIdx); // (B, L) int64
  });
}
