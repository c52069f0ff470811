// ONNX export of the BERT encoder, for transformers.js (@huggingface/transformers) and onnxruntime: writes
// `<dir>/onnx/model.onnx`, the file transformers.js loads next to a model folder's config.json and tokenizer
// files. The graph is the encoder of models/bert.ts written out op by op (no tracing, no dependency): inputs
// input_ids, attention_mask, token_type_ids (int64, [batch_size, sequence_length]); output last_hidden_state
// (float32, [batch_size, sequence_length, hidden_size]). Pooling and normalization stay outside the graph, as in
// the HF/optimum exports that transformers.js' feature-extraction pipeline expects (it pools and normalizes
// itself: `{ pooling: "mean" | "cls", normalize: true }`).
//
// Weights are float32 initializers under their HF parameter names; a Linear's weight is stored transposed, as
// `<name>.T` of shape (in, out), so that every projection is MatMul(x, Wᵀ) + b on (B, L, ·) tensors.
import { existsSync, unlinkSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";

import { noGrad, tidy, type Tensor } from "../engine/index.ts";
import { BertModel, type HiddenAct } from "../models/bert.ts";
import { XlmRobertaModel } from "../models/xlm-roberta.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { ensureRealFolder } from "../models/st-folder-write.ts";
import { writeFileAtomic, writeFully } from "../util/index.ts";
import {
  attr,
  DataType,
  encodeModel,
  type Attribute,
  type DataTypeCode,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from "./onnx-proto.ts";
import { quantizeDynamicQ8, type QuantizeStats } from "./onnx-quantize.ts";

/** ModelProto.ir_version: IR version 8 (ONNX 1.10–1.12), which opset 17 belongs to. */
export const ONNX_IR_VERSION = 8;
export type OnnxOpset = 14 | 17;
/** torch.finfo(torch.float32).min, HF's additive mask value (as models/bert.ts getExtendedAttentionMask). */
const FLOAT32_MIN = -3.4028234663852886e38;
/** Protobuf messages are limited to 2 GiB; larger models would need ONNX external data (not written here). */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------------------
// Graph builder

export interface NodeOptions {
  /** Node name prefix, e.g. "/encoder/layer.0/attention/self" (the node is named `<scope>/<op>`). */
  scope?: string;
  /** The output's name (default `<node name>_output_0`), e.g. a graph output. */
  output?: string;
}

/** A small builder of an ONNX graph: single-output nodes, initializers, deduplicated constants. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();

  /** `name`, or `name_1`, `name_2`, … when taken; not reserved. */
  private free(name: string): string {
    let n = name;
    for (let i = 1; this.names.has(n); i++) n = `${name}_${i}`;
    return n;
  }

  /** Adds an initializer (raw little-endian bytes) and returns its name, which must be new. */
  initializer(
    name: string,
    dataType: DataTypeCode,
    dims: readonly number[],
    rawData: Uint8Array,
    docString?: string,
  ): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: the name "${name}" is already used`);
    this.names.add(name);
    this.initializers.push({ name, dataType, dims, rawData, ...(docString ? { docString } : {}) });
    return name;
  }

  /** A float32 scalar (dims []) or tensor constant, one initializer per distinct value. */
  constFloat(values: number | readonly number[]): string {
    const list = typeof values === "number" ? [values] : values;
    const dims = typeof values === "number" ? [] : [list.length];
    const key = `f[${dims.join(",")}]:${list.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.initializer(this.free("/Constant"), DataType.FLOAT, dims, f32Bytes(list));
    this.constants.set(key, name);
    return name;
  }

  /** A 1-D int64 constant (shapes, axes, indices), one initializer per distinct value. */
  constInt64(values: readonly number[]): string {
    const key = `i64:${values.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const bytes = new Uint8Array(values.length * 8);
    const dv = new DataView(bytes.buffer);
    values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
    const name = this.initializer(this.free("/Constant"), DataType.INT64, [values.length], bytes);
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node of the default domain (ai.onnx) with one output and returns the output's name. */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, Attribute>> = {},
    options: NodeOptions = {},
  ): string {
    const name = this.free(`${options.scope ?? ""}/${opType}`);
    this.names.add(name);
    const output = options.output ?? `${name}_output_0`;
    if (options.output !== undefined) {
      if (this.names.has(output)) throw new Error(`ONNX graph: the name "${output}" is already used`);
      this.names.add(output);
    }
    this.nodes.push({ opType, inputs, outputs: [output], name, attributes });
    return output;
  }
}

function f32Bytes(values: readonly number[] | Float32Array): Uint8Array {
  const a = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---------------------------------------------------------------------------------------------------------
// BERT

export interface BertOnnxOptions {
  /**
   * ONNX opset of the default domain: 17 (default) uses LayerNormalization; 14 spells layer norm out with
   * ReduceMean/Sub/Mul/Add/Sqrt/Div, for runtimes older than onnxruntime 1.14.
   */
  opset?: OnnxOpset;
}

/** The names of the graph's inputs and output (those of HF/optimum BERT exports, which transformers.js feeds). */
export const ONNX_INPUTS = ["input_ids", "attention_mask", "token_type_ids"] as const;
export const ONNX_OUTPUT = "last_hidden_state";

/** The parameters' values as float32 little-endian bytes, transposed for a (out, in) Linear weight. */
export function floatBytes(t: Tensor, transpose: boolean): Uint8Array {
  return noGrad(() =>
    tidy(() => {
      let x = t.detach().to("float32");
      if (transpose) x = x.transpose(0, 1);
      const buf = x.contiguous().bytes();
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }),
  );
}

/**
 * The graph pieces every exporter builds from a model's named parameters (bertToOnnx, use-lite-onnx.ts's
 * useLiteToOnnx): a parameter as an initializer under its own name, a Linear (x · Wᵀ + b, the weight stored
 * transposed as `<name>.T`) and LayerNorm over the last axis (LayerNormalization from opset 17, basic ops below).
 */
export function parameterOps(
  g: GraphBuilder,
  params: ReadonlyMap<string, Tensor>,
  o: { model: string; opset: OnnxOpset; eps: number },
) {
  const param = (name: string): Tensor => {
    const t = params.get(name);
    if (!t) throw new Error(`ONNX export: ${o.model} has no parameter "${name}"`);
    return t;
  };
  /** A parameter as an initializer under its own name. */
  const weight = (name: string): string => {
    const t = param(name);
    return g.initializer(name, DataType.FLOAT, t.shape, floatBytes(t, false));
  };
  /** A Linear weight (out, in) stored transposed as `<name>.T` (in, out). */
  const weightT = (name: string): string => {
    const t = param(name);
    const [out, inp] = t.shape as [number, number];
    return g.initializer(
      `${name}.T`,
      DataType.FLOAT,
      [inp, out],
      floatBytes(t, true),
      `transpose of ${name}: (in, out)`,
    );
  };
  /** x (…, in) · Wᵀ + b for the Linear at `prefix` (HF names prefix.weight, prefix.bias). */
  const linear = (x: string, prefix: string, scope: string): string => {
    const y = g.node("MatMul", [x, weightT(`${prefix}.weight`)], {}, { scope });
    return g.node("Add", [y, weight(`${prefix}.bias`)], {}, { scope });
  };
  /** LayerNorm over the last axis with HF names prefix.weight / prefix.bias. */
  const layerNorm = (x: string, prefix: string, scope: string, output?: string): string => {
    const gamma = weight(`${prefix}.weight`);
    const beta = weight(`${prefix}.bias`);
    if (o.opset >= 17) {
      return g.node(
        "LayerNormalization",
        [x, gamma, beta],
        { axis: attr.int(-1), epsilon: attr.float(o.eps) },
        { scope, ...(output ? { output } : {}) },
      );
    }
    // (x - mean) / sqrt(var + eps) · gamma + beta, var the biased variance (as torch.layer_norm).
    const reduce = { axes: attr.ints([-1]), keepdims: attr.int(1) };
    const mean = g.node("ReduceMean", [x], reduce, { scope });
    const d = g.node("Sub", [x, mean], {}, { scope });
    const variance = g.node("ReduceMean", [g.node("Mul", [d, d], {}, { scope })], reduce, { scope });
    const std = g.node(
      "Sqrt",
      [g.node("Add", [variance, g.constFloat(o.eps)], {}, { scope })],
      {},
      { scope },
    );
    const normed = g.node("Div", [d, std], {}, { scope });
    const scaled = g.node("Mul", [normed, gamma], {}, { scope });
    return g.node("Add", [scaled, beta], {}, { scope, ...(output ? { output } : {}) });
  };
  return { weight, linear, layerNorm };
}

/**
 * The ONNX model of a BertModel's (or XlmRobertaModel's: the same graph but for its position ids) forward (eval
 * mode): inputs ONNX_INPUTS, output ONNX_OUTPUT.
 */
export function bertToOnnx(bert: BertModel | XlmRobertaModel, options: BertOnnxOptions = {}): ModelProto {
  if (endianness() !== "LE") throw new Error("ONNX export: raw_data is little-endian; this host is not");
  const opset = options.opset ?? 17;
  if (opset !== 14 && opset !== 17) throw new RangeError(`ONNX export: opset must be 14 or 17, got ${opset}`);
  const cfg = bert.config;
  const hidden = cfg.hiddenSize;
  const heads = cfg.numAttentionHeads;
  const headSize = hidden / heads;
  const params = new Map(bert.namedParameters());
  const g = new GraphBuilder();

  const { weight, linear, layerNorm } = parameterOps(g, params, {
    model: "the model",
    opset,
    eps: cfg.layerNormEps,
  });

  const activation = (x: string, act: HiddenAct, scope: string): string => {
    switch (act) {
      case "relu":
        return g.node("Relu", [x], {}, { scope });
      case "gelu": {
        // 0.5 · x · (1 + erf(x / √2)): torch's exact GELU.
        const e = g.node(
          "Erf",
          [g.node("Mul", [x, g.constFloat(Math.SQRT1_2)], {}, { scope })],
          {},
          { scope },
        );
        const y = g.node("Mul", [x, g.node("Add", [e, g.constFloat(1)], {}, { scope })], {}, { scope });
        return g.node("Mul", [y, g.constFloat(0.5)], {}, { scope });
      }
      case "gelu_new":
      case "gelu_pytorch_tanh": {
        // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))): NewGELUActivation / gelu(approximate="tanh").
        const x3 = g.node("Mul", [g.node("Mul", [x, x], {}, { scope }), x], {}, { scope });
        const inner = g.node(
          "Add",
          [x, g.node("Mul", [x3, g.constFloat(0.044715)], {}, { scope })],
          {},
          { scope },
        );
        const t = g.node(
          "Tanh",
          [g.node("Mul", [inner, g.constFloat(Math.sqrt(2 / Math.PI))], {}, { scope })],
          {},
          { scope },
        );
        const y = g.node("Mul", [x, g.node("Add", [t, g.constFloat(1)], {}, { scope })], {}, { scope });
        return g.node("Mul", [y, g.constFloat(0.5)], {}, { scope });
      }
    }
  };

  const [inputIds, attentionMask, tokenTypeIds] = ONNX_INPUTS;

  /** BERT: positions 0 … L-1, the first L rows of the table (L, H). */
  const bertPositions = (): string => {
    const scope = "/embeddings";
    const shape = g.node("Shape", [inputIds], {}, { scope }); // [B, L]
    const seqLen = g.node("Gather", [shape, g.constInt64([1])], { axis: attr.int(0) }, { scope }); // [L]
    return g.node(
      "Slice",
      [weight("embeddings.position_embeddings.weight"), g.constInt64([0]), seqLen, g.constInt64([0])],
      {},
      { scope },
    ); // (L, H)
  };

  // ports transformers models/xlm_roberta/modeling_xlm_roberta.py#create_position_ids_from_input_ids as ONNX
  // ops: cumsum(ids != pad) * (ids != pad) + pad, looked up in the table (B, L, H).
  const xlmrPositions = (): string => {
    const scope = "/embeddings/position_ids";
    const pad = (bert as XlmRobertaModel).config.padTokenId;
    const isPad = g.node("Equal", [inputIds, g.constInt64([pad])], {}, { scope }); // (B, L) bool
    const mask = g.node(
      "Cast",
      [g.node("Not", [isPad], {}, { scope })],
      { to: attr.int(DataType.INT64) },
      { scope },
    );
    const axisBytes = new Uint8Array(8);
    new DataView(axisBytes.buffer).setBigInt64(0, 1n, true);
    const axis = g.initializer("/embeddings/position_ids/axis", DataType.INT64, [], axisBytes); // scalar 1
    const incremental = g.node("Mul", [g.node("CumSum", [mask, axis], {}, { scope }), mask], {}, { scope });
    const positionIds = g.node("Add", [incremental, g.constInt64([pad])], {}, { scope }); // (B, L)
    return g.node("Gather", [weight("embeddings.position_embeddings.weight"), positionIds], {}, { scope }); // (B, L, H)
  };

  // Embeddings: word + token_type + position (positions 0 … L-1: the first L rows of the table), LayerNorm.
  let hiddenStates = (() => {
    const scope = "/embeddings";
    const words = g.node("Gather", [weight("embeddings.word_embeddings.weight"), inputIds], {}, { scope });
    const types = g.node(
      "Gather",
      [weight("embeddings.token_type_embeddings.weight"), tokenTypeIds],
      {},
      { scope },
    );
    const positions = bert instanceof XlmRobertaModel ? xlmrPositions() : bertPositions();
    const sum = g.node("Add", [g.node("Add", [words, types], {}, { scope }), positions], {}, { scope });
    return layerNorm(sum, "embeddings.LayerNorm", `${scope}/LayerNorm`); // (B, L, H)
  })();

  // The additive mask (B, 1, 1, L): (1 - mask) · finfo(float32).min, as getExtendedAttentionMask.
  const extendedMask = (() => {
    const scope = "/extended_attention_mask";
    const m = g.node("Cast", [attentionMask], { to: attr.int(DataType.FLOAT) }, { scope });
    const inverted = g.node("Sub", [g.constFloat(1), m], {}, { scope });
    const additive = g.node("Mul", [inverted, g.constFloat(FLOAT32_MIN)], {}, { scope });
    return g.node("Unsqueeze", [additive, g.constInt64([1, 2])], {}, { scope });
  })();

  const headsShape = g.constInt64([0, 0, heads, headSize]); // (B, L, H) -> (B, L, nh, hd); 0 copies the dim
  const mergedShape = g.constInt64([0, 0, hidden]); // (B, L, nh, hd) -> (B, L, H)
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `encoder.layer.${i}`;
    const s = `/encoder/layer.${i}`;
    const last = i === cfg.numHiddenLayers - 1;
    // Self-attention: softmax(q kᵀ / √hd + mask) v per head.
    const sa = `${s}/attention/self`;
    const split = (x: string, perm: number[]) =>
      g.node(
        "Transpose",
        [g.node("Reshape", [x, headsShape], {}, { scope: sa })],
        { perm: attr.ints(perm) },
        { scope: sa },
      );
    const q = split(linear(hiddenStates, `${p}.attention.self.query`, `${sa}/query`), [0, 2, 1, 3]); // (B, nh, L, hd)
    const kT = split(linear(hiddenStates, `${p}.attention.self.key`, `${sa}/key`), [0, 2, 3, 1]); // (B, nh, hd, L)
    const v = split(linear(hiddenStates, `${p}.attention.self.value`, `${sa}/value`), [0, 2, 1, 3]); // (B, nh, L, hd)
    const qScaled = g.node("Mul", [q, g.constFloat(1 / Math.sqrt(headSize))], {}, { scope: sa });
    const scores = g.node("MatMul", [qScaled, kT], {}, { scope: sa }); // (B, nh, L, L)
    const masked = g.node("Add", [scores, extendedMask], {}, { scope: sa });
    const probs = g.node("Softmax", [masked], { axis: attr.int(-1) }, { scope: sa });
    const context = g.node("MatMul", [probs, v], {}, { scope: sa }); // (B, nh, L, hd)
    const merged = g.node(
      "Reshape",
      [g.node("Transpose", [context], { perm: attr.ints([0, 2, 1, 3]) }, { scope: sa }), mergedShape],
      {},
      { scope: sa },
    ); // (B, L, H)
    // BertSelfOutput: dense, residual, LayerNorm.
    const so = `${s}/attention/output`;
    const attnDense = linear(merged, `${p}.attention.output.dense`, `${so}/dense`);
    const attentionOutput = layerNorm(
      g.node("Add", [attnDense, hiddenStates], {}, { scope: so }),
      `${p}.attention.output.LayerNorm`,
      `${so}/LayerNorm`,
    );
    // BertIntermediate + BertOutput: dense, activation, dense, residual, LayerNorm.
    const intermediate = activation(
      linear(attentionOutput, `${p}.intermediate.dense`, `${s}/intermediate/dense`),
      cfg.hiddenAct,
      `${s}/intermediate/intermediate_act_fn`,
    ); // (B, L, I)
    const out = linear(intermediate, `${p}.output.dense`, `${s}/output/dense`);
    hiddenStates = layerNorm(
      g.node("Add", [out, attentionOutput], {}, { scope: `${s}/output` }),
      `${p}.output.LayerNorm`,
      `${s}/output/LayerNorm`,
      last ? ONNX_OUTPUT : undefined,
    );
  }

  const tokens = ["batch_size", "sequence_length"];
  const graph: GraphProto = {
    name: "main_graph",
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: ONNX_INPUTS.map((name) => ({ name, elemType: DataType.INT64, shape: tokens })),
    outputs: [{ name: ONNX_OUTPUT, elemType: DataType.FLOAT, shape: [...tokens, hidden] }],
  };
  return {
    irVersion: ONNX_IR_VERSION,
    opsetImports: [{ domain: "", version: opset }],
    producerName: "ragtune",
    docString: `${bert.constructor.name} (${cfg.numHiddenLayers} layers, hidden ${hidden}, ${cfg.hiddenAct}): last_hidden_state`,
    graph,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Export

/** Which quantized variants to write next to the float32 file: "q8" (default) or "none". */
export type OnnxQuantize = "q8" | "none";
export const ONNX_QUANTIZE: readonly OnnxQuantize[] = ["q8", "none"];

export interface OnnxExportOptions extends BertOnnxOptions {
  /** File name under `<dir>/onnx/` (default "model.onnx", the one transformers.js loads at dtype fp32). */
  fileName?: string;
  /**
   * "q8" (default) also writes `<name>_quantized.onnx` (onnx/model_quantized.onnx: what transformers.js loads
   * for dtype "q8", its default in the browser), see onnx-quantize.ts; "none" writes the float32 file only.
   */
  quantize?: OnnxQuantize;
}

/** The feature-extraction options that make transformers.js compute the model's `encode()`. */
export interface TransformersJsOptions {
  pooling: "mean" | "cls";
  normalize: boolean;
}

export interface OnnxExportResult {
  /** Files written, relative to dir: ["onnx/model.onnx", "onnx/model_quantized.onnx"]. */
  files: string[];
  /** Size of the float32 .onnx file in bytes. */
  bytes: number;
  /** The q8 file (relative to dir), its size and what was quantized; null with quantize "none". */
  quantized: { file: string; bytes: number; stats: QuantizeStats } | null;
  opset: OnnxOpset;
  /**
   * transformers.js `pipeline("feature-extraction")` options that reproduce the SentenceTransformer's
   * embeddings from last_hidden_state; null for a bare BertModel, or when the model has modules transformers.js
   * cannot apply (Dense layers, a pooling other than one mean or cls; see warnings).
   */
  transformersJs: TransformersJsOptions | null;
  /** Differences between the model's encode() and what transformers.js will compute, and missing files. */
  warnings: string[];
}

/** How transformers.js would pool a SentenceTransformer's output, and why it may differ from encode(). */
function transformersJsOptions(model: SentenceTransformer, warnings: string[]): TransformersJsOptions | null {
  const modes = model.pooling.config.modes;
  const pooling = modes.length === 1 && (modes[0] === "mean" || modes[0] === "cls") ? modes[0] : null;
  if (pooling === null)
    warnings.push(
      `pooling ${modes.join("+")} has no transformers.js equivalent (it pools with "mean" or "cls" only)`,
    );
  if (model.dense.length > 0)
    warnings.push(
      `the model has ${model.dense.length} Dense module(s) after pooling, which are not in the ONNX graph: transformers.js' feature-extraction cannot apply them`,
    );
  if (!model.pooling.config.includePrompt)
    warnings.push("include_prompt is false: transformers.js pools the prompt's tokens too");
  if (model.spec.doLowerCase)
    warnings.push(
      "sentence_bert_config.json do_lower_case is true: transformers.js does not lowercase texts",
    );
  if (pooling === null || model.dense.length > 0) return null;
  return { pooling, normalize: model.normalizer !== null };
}

/**
 * Writes `<dir>/onnx/model.onnx`: the model's BERT encoder as an ONNX graph (inputs input_ids, attention_mask,
 * token_type_ids; output last_hidden_state), float32 weights embedded. For transformers.js the folder also needs
 * what `SentenceTransformer.save(dir)` writes (config.json, tokenizer.json, tokenizer_config.json): call it
 * first. Pooling, Dense and Normalize modules are not part of the graph; the result says which transformers.js
 * options reproduce `encode()`.
 */
export function exportOnnx(
  model: SentenceTransformer | BertModel | XlmRobertaModel,
  dir: string,
  options: OnnxExportOptions = {},
): OnnxExportResult {
  const encoder = model instanceof SentenceTransformer ? model.encoder : model;
  if (!(encoder instanceof BertModel || encoder instanceof XlmRobertaModel))
    throw new Error(
      `ONNX export supports BERT and XLM-RoBERTa encoders, not ${encoder.constructor.name} (transformers.js loads ` +
        "the others from ONNX files made by Optimum)",
    );
  const bert = encoder;
  const warnings: string[] = [];
  const transformersJs = model instanceof SentenceTransformer ? transformersJsOptions(model, warnings) : null;
  const onnxModel = bertToOnnx(bert, options);
  const chunks = encodeModel(onnxModel);
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (bytes > PROTOBUF_LIMIT) {
    throw new RangeError(
      `ONNX export: the model is ${bytes} bytes, over protobuf's 2 GiB limit (external data is not supported)`,
    );
  }
  const fileName = options.fileName ?? "model.onnx";
  if (!fileName.endsWith(".onnx") || fileName.includes("/") || fileName.includes("\\"))
    throw new RangeError(`ONNX export: fileName must be a plain name ending in .onnx, got "${fileName}"`);
  const quantize = options.quantize ?? "q8";
  if (!ONNX_QUANTIZE.includes(quantize))
    throw new RangeError(
      `ONNX export: quantize must be ${ONNX_QUANTIZE.join(" or ")}, got "${String(quantize)}"`,
    );
  const onnxDir = join(dir, "onnx");
  ensureRealFolder(onnxDir);
  const file = join(onnxDir, fileName);
  // Atomic with fsync of the file and the folder (the old private copy had no fsync): a crash leaves the
  // previous model.onnx or the new one, a failed write names the file and leaves no temp.
  writeFileAtomic(file, (fd) => {
    for (const c of chunks) writeFully(fd, c);
  });
  let quantized: OnnxExportResult["quantized"] = null;
  const quantizedName = fileName.replace(/\.onnx$/, "_quantized.onnx"); // transformers.js' q8 suffix
  if (quantize === "q8") {
    const q = quantizeDynamicQ8(onnxModel);
    const qChunks = encodeModel(q.model);
    writeFileAtomic(join(onnxDir, quantizedName), (fd) => {
      for (const c of qChunks) writeFully(fd, c);
    });
    quantized = {
      file: join("onnx", quantizedName),
      bytes: qChunks.reduce((n, c) => n + c.byteLength, 0),
      stats: q.stats,
    };
  } else if (existsSync(join(onnxDir, quantizedName))) {
    // A q8 file of an earlier export no longer matches the new float32 file, and the browser would load it by
    // default: remove it (it is an export product of this folder, like model.onnx itself) and say so.
    unlinkSync(join(onnxDir, quantizedName));
    warnings.push(`removed ${join(onnxDir, quantizedName)}: it was from an earlier export of other weights`);
  }
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
    if (!existsSync(join(dir, f))) warnings.push(`${join(dir, f)} is missing: transformers.js needs it`);
  }
  return {
    files: [join("onnx", fileName), ...(quantized ? [quantized.file] : [])],
    bytes,
    quantized,
    opset: onnxModel.opsetImports[0]!.version as OnnxOpset,
    transformersJs,
    warnings,
  };
}
