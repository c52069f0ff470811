// Dynamic int8 quantization of an exported ONNX model: the graph transformers.js loads for `dtype: "q8"` from
// `onnx/model_quantized.onnx` (utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING: q8 → "_quantized"; the browser's
// default device "wasm" defaults to q8, Node's "cpu" to fp32 → model.onnx).
//
// ports transformers.js scripts/quantize.py#quantize_q8 (the script that makes the hub's model_quantized.onnx
// files) and what it calls: onnxruntime python/tools/quantization/onnx_quantizer.py#ONNXQuantizer.quantize_model
// in QuantizationMode.IntegerOps, static=False, with operators/matmul.py#MatMulInteger,
// operators/gather.py#GatherQuant, base_quantizer.py#quantize_initializer_impl and
// quant_utils.py#compute_scale_zp / quantize_nparray. The settings are quantize_q8's for a graph without Conv:
// - weight type QInt8 (its QUINT8_OPS rule picks QUInt8 only for Conv / GroupQueryAttention / MultiHeadAttention),
//   symmetric (base_quantizer.is_weight_symmetric is true for INT8): range [-127, 127], zero point 0;
// - per-tensor scales: quantize.py's per_channel defaults to None (off), as does onnxruntime's quantize_dynamic;
//   one scale per weight matrix keeps MatMulInteger's scalar zero point, which every runtime implements;
// - reduce_range off (its default None), activations QUInt8 quantized at run time by DynamicQuantizeLinear;
// - op types: IntegerOpsRegistry's keys (Conv, MatMul, Attention, LSTM, Gather, …) with MatMulConstBOnly=True, so
//   only a MatMul whose B is an initializer (the Linear weights) becomes MatMulInteger; q·kᵀ and probs·v stay
//   float. Gemm is not in that registry (quantize_dynamic leaves it float too); the encoders here have none.
// - a Gather whose table is a float initializer (word / token-type / XLM-R position embeddings) reads a table
//   quantized with the *activation* type (GatherQuant calls quantize_activation): uint8, asymmetric, then a
//   DequantizeLinear restores the float value for the Add that consumes it.
// Node, value and initializer names are those onnxruntime gives (`<matmul>_quant`, `<x>_QuantizeLinear`,
// `<w>_quantized`, `<w>_scale`, `<w>_zero_point`, …), so a graph diff against an onnxruntime-quantized export
// lines up.
import { DataType, type ModelProto, type NodeProto, type TensorProto } from "./onnx-proto.ts";

/** numpy.finfo(float32).tiny: compute_scale_zp's threshold under which a range is treated as empty. */
const FLOAT32_TINY = 1.1754943508222875e-38;

/** What quantizeDynamicQ8 changed. */
export interface QuantizeStats {
  /** MatMul nodes with a constant B that became DynamicQuantizeLinear → MatMulInteger → Cast → Mul. */
  matMuls: number;
  /** Gather nodes that read a uint8 table followed by DequantizeLinear. */
  gathers: number;
  /** MatMul nodes left in float32 (B not an initializer: attention's q·kᵀ and probs·v). */
  floatMatMuls: number;
}

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function floatData(t: TensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`ONNX quantize: initializer "${t.name}" is not float32`);
  const raw = t.rawData;
  // Copy when unaligned: a Float32Array view needs a 4-byte aligned offset.
  const bytes = raw.byteOffset % 4 === 0 ? raw : raw.slice();
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** min(data, 0) and max(data, 0) as float32 (compute_scale_zp widens the range to hold zero). */
function range(name: string, data: Float32Array): { rmin: number; rmax: number } {
  let rmin = 0;
  let rmax = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v))
      throw new Error(
        `ONNX quantize: initializer "${name}" holds ${v} at flat index ${i}; cannot quantize it`,
      );
    if (v < rmin) rmin = v;
    else if (v > rmax) rmax = v;
  }
  return { rmin, rmax };
}

export interface Quantized {
  /** Quantized values, row-major like the float tensor. */
  data: Int8Array | Uint8Array;
  /** float32 scale: x ≈ scale · (q − zeroPoint). */
  scale: number;
  zeroPoint: number;
}

/**
 * A weight as onnxruntime quantizes a QInt8 weight: symmetric per-tensor, q = clip(round(x / s), -128, 127)
 * with s = max|x| / 127 (compute_scale_zp with qmin -127, qmax 127; quantize_nparray clips to int8's range).
 */
export function quantizeInt8Symmetric(name: string, data: Float32Array): Quantized {
  const { rmin, rmax } = range(name, data);
  const absmax = Math.max(Math.abs(rmin), Math.abs(rmax));
  // dr = rmax - rmin in float32 (exact for ±absmax), divided in float64 by qmax - qmin = 254.
  const scale64 = Math.fround(2 * absmax) / 254;
  if (scale64 < FLOAT32_TINY) return { data: new Int8Array(data.length), scale: 1, zeroPoint: 0 };
  const scale = Math.fround(scale64);
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = roundHalfEven(Math.fround(data[i]! / scale)); // float32 division, as numpy's
    q[i] = v < -128 ? -128 : v > 127 ? 127 : v;
  }
  return { data: q, scale, zeroPoint: 0 };
}

/**
 * A table as onnxruntime quantizes it with the activation type QUInt8: asymmetric per-tensor over [min, max]
 * widened to hold 0, s = (max − min) / 255, zero point round(−min / s).
 */
export function quantizeUint8Asymmetric(name: string, data: Float32Array): Quantized {
  const { rmin, rmax } = range(name, data);
  const scale64 = Math.fround(rmax - rmin) / 255;
  if (scale64 < FLOAT32_TINY) return { data: new Uint8Array(data.length), scale: 1, zeroPoint: 0 };
  // The zero point uses the float64 scale, before the cast to float32 (as compute_scale_zp).
  const zeroPoint = roundHalfEven(0 - rmin / scale64);
  const scale = Math.fround(scale64);
  const q = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = roundHalfEven(Math.fround(data[i]! / scale)) + zeroPoint;
    q[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { data: q, scale, zeroPoint };
}

function f32Scalar(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return b;
}

/** A quantized value: its integer tensor, scale and zero point (onnxruntime's QuantizedValue). */
interface QValue {
  q: string;
  scale: string;
  zeroPoint: string;
}

/**
 * The model with its constant-B MatMuls as dynamically quantized MatMulInteger and its float-table Gathers
 * reading uint8 tables; the float weights they replace are dropped. The input model is not changed (its
 * initializers' bytes are shared with the result where kept).
 */
export function quantizeDynamicQ8(model: ModelProto): { model: ModelProto; stats: QuantizeStats } {
  const opset = model.opsetImports.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0;
  if (opset < 11)
    throw new Error(
      `ONNX quantize: opset ${opset} has no DynamicQuantizeLinear (opset 11 or later is needed)`,
    );
  const graph = model.graph;
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const isFloatInit = (name: string) => initializers.get(name)?.dataType === DataType.FLOAT;

  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const stats: QuantizeStats = { matMuls: 0, gathers: 0, floatMatMuls: 0 };
  /** Initializers already quantized (a weight shared by two nodes is quantized once). */
  const quantizedInits = new Map<string, QValue>();
  /** Activations quantized by a DynamicQuantizeLinear, and Gather outputs renamed to their uint8 form. */
  const quantizedValues = new Map<string, QValue>();
  /** Gather outputs whose float value no longer exists: a float consumer needs a DequantizeLinear first. */
  const renamed = new Set<string>();
  const dequantized = new Set<string>();

  const quantizeInit = (name: string, kind: "weight" | "activation"): QValue => {
    const known = quantizedInits.get(name);
    if (known) return known;
    const t = initializers.get(name)!;
    const data = floatData(t);
    const r = kind === "weight" ? quantizeInt8Symmetric(name, data) : quantizeUint8Asymmetric(name, data);
    const type = kind === "weight" ? DataType.INT8 : DataType.UINT8;
    const v: QValue = { q: `${name}_quantized`, scale: `${name}_scale`, zeroPoint: `${name}_zero_point` };
    const zp = type === DataType.INT8 ? Int8Array.of(r.zeroPoint) : Uint8Array.of(r.zeroPoint);
    // quantize_initializer_impl's order: scale, zero point, then the quantized tensor.
    added.push(
      { name: v.scale, dataType: DataType.FLOAT, dims: [], rawData: f32Scalar(r.scale) },
      { name: v.zeroPoint, dataType: type, dims: [], rawData: new Uint8Array(zp.buffer) },
      {
        name: v.q,
        dataType: type,
        dims: t.dims,
        rawData: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
        docString: `${kind === "weight" ? "int8 symmetric" : "uint8 asymmetric"} per-tensor quantization of ${name}`,
      },
    );
    quantizedInits.set(name, v);
    return v;
  };

  /** _dequantize_value: a DequantizeLinear that brings back a renamed Gather output, once. */
  const dequantize = (value: string) => {
    if (!renamed.has(value) || dequantized.has(value)) return;
    const v = quantizedValues.get(value)!;
    nodes.push({
      opType: "DequantizeLinear",
      name: `${value}_DequantizeLinear`,
      inputs: [v.q, v.scale, v.zeroPoint],
      outputs: [value],
    });
    dequantized.add(value);
  };

  for (const node of graph.nodes) {
    const standard = !node.domain || node.domain === "ai.onnx";
    if (standard && node.opType === "MatMul" && node.inputs.length === 2 && isFloatInit(node.inputs[1]!)) {
      const [a, b] = node.inputs as [string, string];
      const out = node.outputs[0]!;
      const name = node.name;
      if (!name) throw new Error(`ONNX quantize: the MatMul producing "${out}" has no name`);
      if (initializers.has(a))
        throw new Error(`ONNX quantize: MatMul "${name}" has a constant A input "${a}"`);
      // A Gather output feeding a MatMul is used in its uint8 form, as onnxruntime does (no DequantizeLinear).
      let qa = quantizedValues.get(a);
      if (!qa) {
        qa = { q: `${a}_quantized`, scale: `${a}_scale`, zeroPoint: `${a}_zero_point` };
        nodes.push({
          opType: "DynamicQuantizeLinear",
          name: `${a}_QuantizeLinear`,
          inputs: [a],
          outputs: [qa.q, qa.scale, qa.zeroPoint],
        });
        quantizedValues.set(a, qa);
      }
      const qb = quantizeInit(b, "weight");
      const integer = `${out}_output_quantized`; // (…, N) int32
      const cast = `${integer}_cast_output`; // (…, N) float32
      const scales = `${name}_quant_scales_mul`;
      nodes.push(
        {
          opType: "MatMulInteger",
          name: `${name}_quant`,
          inputs: [qa.q, qb.q, qa.zeroPoint, qb.zeroPoint],
          outputs: [integer],
        },
        {
          opType: "Cast",
          name: `${integer}_cast`,
          inputs: [integer],
          outputs: [cast],
          attributes: { to: { kind: "int", value: DataType.FLOAT } },
        },
        { opType: "Mul", name: scales, inputs: [qa.scale, qb.scale], outputs: [`${scales}:0`] },
        {
          opType: "Mul",
          name: `${name}_quant_output_scale_mul`,
          inputs: [cast, `${scales}:0`],
          outputs: [out],
        },
      );
      stats.matMuls++;
      continue;
    }
    if (standard && node.opType === "Gather" && isFloatInit(node.inputs[0]!)) {
      const [table, ...rest] = node.inputs as [string, ...string[]];
      const out = node.outputs[0]!;
      for (const i of rest) dequantize(i);
      const qt = quantizeInit(table, "activation");
      const qOut = `${out}_quantized`;
      nodes.push({ ...node, inputs: [qt.q, ...rest], outputs: [qOut] });
      quantizedValues.set(out, { q: qOut, scale: qt.scale, zeroPoint: qt.zeroPoint });
      renamed.add(out);
      stats.gathers++;
      continue;
    }
    if (standard && node.opType === "MatMul") stats.floatMatMuls++;
    for (const i of node.inputs) dequantize(i);
    nodes.push(node);
  }
  for (const o of graph.outputs) dequantize(o.name); // _dequantize_outputs

  // clean_initializers: drop the float weights nothing reads any more.
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const kept = [...graph.initializers, ...added].filter((t) => used.has(t.name));
  return {
    model: {
      ...model,
      docString: `${model.docString ?? "model"}; dynamic int8 quantization (q8: MatMulInteger with int8 symmetric per-tensor weights, uint8 activations)`,
      graph: { ...graph, nodes, initializers: kept },
    },
    stats,
  };
}
