// A dependency-free protobuf writer for the subset of onnx.proto3 that an exported model needs: ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto (+ TypeProto, TensorShapeProto) and
// OperatorSetIdProto. Field numbers are those of onnx/onnx.proto3 (the same in onnx.proto); each is documented
// where it is written. Messages encode to a list of chunks, so a tensor's raw_data is never copied: the chunks
// are written to the file one after the other.

// ---------------------------------------------------------------------------------------------------------
// Protobuf wire format

/** Wire types (protobuf encoding spec). */
const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Bytes gathered before they become a chunk; raw data larger than this is kept as its own chunk. */
const SMALL = 4096;

/**
 * Builds one protobuf message. Scalars go into a pending byte array; byte fields at least SMALL long and nested
 * messages are appended as chunks by reference. `length` is the encoded size so far.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  private flushed = 0;

  get length(): number {
    return this.flushed + this.pending.length;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.flushed += this.pending.length;
    this.pending = [];
  }

  private push(chunk: Uint8Array): void {
    if (chunk.byteLength < SMALL) {
      for (const b of chunk) this.pending.push(b);
      return;
    }
    this.flush();
    this.chunks.push(chunk);
    this.flushed += chunk.byteLength;
  }

  /** A base-128 varint; negative values as 64-bit two's complement (10 bytes), as protobuf's int32/int64. */
  private varint(value: number | bigint): void {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
      let v = value;
      while (v >= 0x80) {
        this.pending.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      this.pending.push(v);
      return;
    }
    if (typeof value === "number" && !Number.isSafeInteger(value))
      throw new RangeError(`protobuf: ${value} is not a safe integer`);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.pending.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int32 / int64 / enum field (wire type 0). */
  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** float field (wire type 5, little-endian IEEE 754 single). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.pending.push(x);
    return this;
  }

  /** bytes field (wire type 2). Large arrays are referenced, not copied: do not change them afterwards. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(data.byteLength);
    this.push(data);
    return this;
  }

  /** string field (wire type 2, UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** Embedded message field (wire type 2). */
  message(field: number, m: ProtoWriter): this {
    this.tag(field, WIRE_LEN);
    this.varint(m.length);
    this.flush();
    for (const c of m.finish()) this.chunks.push(c);
    this.flushed += m.length;
    return this;
  }

  /** Packed repeated int64 (proto3's default encoding for repeated scalars). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.tag(field, WIRE_LEN);
    this.varint(inner.length);
    for (const b of inner.pending) this.pending.push(b);
    return this;
  }

  /** Packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  /** The encoded message as chunks, to be concatenated in order. */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }
}

/** The chunks of a message as one array (for tests and small messages). */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// ONNX messages

/** TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** An attribute value; the kind fixes AttributeProto.type (JS numbers do not tell an int from a float). */
export type Attribute =
  | { kind: "float"; value: number }
  | { kind: "int"; value: number }
  | { kind: "string"; value: string }
  | { kind: "floats"; value: readonly number[] }
  | { kind: "ints"; value: readonly number[] };

/** Constructors of attribute values: `{ axis: attr.int(-1), epsilon: attr.float(1e-12) }`. */
export const attr = {
  float: (value: number): Attribute => ({ kind: "float", value }),
  int: (value: number): Attribute => ({ kind: "int", value }),
  string: (value: string): Attribute => ({ kind: "string", value }),
  floats: (value: readonly number[]): Attribute => ({ kind: "floats", value }),
  ints: (value: readonly number[]): Attribute => ({ kind: "ints", value }),
};

/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE: Readonly<Record<Attribute["kind"], number>> = {
  float: 1, // FLOAT
  int: 2, // INT
  string: 3, // STRING
  floats: 6, // FLOATS
  ints: 7, // INTS
};

export interface TensorProto {
  name: string;
  dataType: DataTypeCode;
  dims: readonly number[];
  /** Row-major, little-endian element bytes. */
  rawData: Uint8Array;
  docString?: string;
}

export interface NodeProto {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** Operator domain; "" (the default ai.onnx) when absent. */
  domain?: string;
  attributes?: Readonly<Record<string, Attribute>>;
}

/** A graph input or output: a tensor of elemType whose dims are sizes or symbolic names. */
export interface ValueInfoProto {
  name: string;
  elemType: DataTypeCode;
  shape: readonly (number | string)[];
  docString?: string;
}

export interface GraphProto {
  name: string;
  nodes: readonly NodeProto[];
  initializers: readonly TensorProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
  docString?: string;
}

export interface ModelProto {
  irVersion: number;
  opsetImports: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: GraphProto;
  /** ModelProto.metadata_props (key/value strings, e.g. shown by Netron). */
  metadata?: Readonly<Record<string, string>>;
}

function encodeAttribute(name: string, a: Attribute): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, name); // AttributeProto.name = 1
  w.int(20, ATTRIBUTE_TYPE[a.kind]); // AttributeProto.type = 20
  switch (a.kind) {
    case "float":
      w.float(2, a.value); // AttributeProto.f = 2
      break;
    case "int":
      w.int(3, a.value); // AttributeProto.i = 3
      break;
    case "string":
      w.string(4, a.value); // AttributeProto.s = 4
      break;
    case "floats":
      w.packedFloats(7, a.value); // AttributeProto.floats = 7
      break;
    case "ints":
      w.packedInts(8, a.value); // AttributeProto.ints = 8
      break;
  }
  return w;
}

function encodeNode(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i); // NodeProto.input = 1
  for (const o of n.outputs) w.string(2, o); // NodeProto.output = 2
  if (n.name) w.string(3, n.name); // NodeProto.name = 3
  w.string(4, n.opType); // NodeProto.op_type = 4
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(name, a)); // NodeProto.attribute = 5
  if (n.domain) w.string(7, n.domain); // NodeProto.domain = 7
  return w;
}

function encodeTensor(t: TensorProto): ProtoWriter {
  const count = t.dims.reduce((a, b) => a * b, 1);
  const size = ELEMENT_SIZE[t.dataType];
  if (size !== undefined && t.rawData.byteLength !== count * size) {
    throw new RangeError(
      `ONNX initializer "${t.name}": ${t.rawData.byteLength} bytes for dims [${t.dims.join(", ")}] of ${size}-byte elements`,
    );
  }
  const w = new ProtoWriter();
  w.packedInts(1, t.dims); // TensorProto.dims = 1
  w.int(2, t.dataType); // TensorProto.data_type = 2
  w.string(8, t.name); // TensorProto.name = 8
  w.bytes(9, t.rawData); // TensorProto.raw_data = 9
  if (t.docString) w.string(12, t.docString); // TensorProto.doc_string = 12
  return w;
}

const ELEMENT_SIZE: Readonly<Partial<Record<DataTypeCode, number>>> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
};

function encodeValueInfo(v: ValueInfoProto): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === "number")
      dim.int(1, d); // TensorShapeProto.Dimension.dim_value = 1
    else dim.string(2, d); // TensorShapeProto.Dimension.dim_param = 2
    shape.message(1, dim); // TensorShapeProto.dim = 1
  }
  const tensorType = new ProtoWriter()
    .int(1, v.elemType) // TypeProto.Tensor.elem_type = 1
    .message(2, shape); // TypeProto.Tensor.shape = 2
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type = 1
  const w = new ProtoWriter();
  w.string(1, v.name); // ValueInfoProto.name = 1
  w.message(2, type); // ValueInfoProto.type = 2
  if (v.docString) w.string(3, v.docString); // ValueInfoProto.doc_string = 3
  return w;
}

function encodeGraph(g: GraphProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n)); // GraphProto.node = 1
  w.string(2, g.name); // GraphProto.name = 2
  for (const t of g.initializers) w.message(5, encodeTensor(t)); // GraphProto.initializer = 5
  if (g.docString) w.string(10, g.docString); // GraphProto.doc_string = 10
  for (const i of g.inputs) w.message(11, encodeValueInfo(i)); // GraphProto.input = 11
  for (const o of g.outputs) w.message(12, encodeValueInfo(o)); // GraphProto.output = 12
  return w;
}

/** Encodes a ModelProto; concatenate the chunks (or write them in order) to get the .onnx file. */
export function encodeModel(m: ModelProto): Uint8Array[] {
  const w = new ProtoWriter();
  w.int(1, m.irVersion); // ModelProto.ir_version = 1
  w.string(2, m.producerName); // ModelProto.producer_name = 2
  if (m.producerVersion) w.string(3, m.producerVersion); // ModelProto.producer_version = 3
  if (m.docString) w.string(6, m.docString); // ModelProto.doc_string = 6
  w.message(7, encodeGraph(m.graph)); // ModelProto.graph = 7
  for (const o of m.opsetImports) {
    const op = new ProtoWriter();
    op.string(1, o.domain); // OperatorSetIdProto.domain = 1
    op.int(2, o.version); // OperatorSetIdProto.version = 2
    w.message(8, op); // ModelProto.opset_import = 8
  }
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    const kv = new ProtoWriter().string(1, key).string(2, value); // StringStringEntryProto.key = 1, .value = 2
    w.message(14, kv); // ModelProto.metadata_props = 14
  }
  return w.finish();
}
