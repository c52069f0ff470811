// A minimal Parquet *writer* for test fixtures only. No Parquet writer is installed (hyparquet reads only; its
// companion hyparquet-writer is not a dependency, and the machine's Python has no pyarrow), so the tests build
// small files by hand, following the format spec (github.com/apache/parquet-format, parquet.thrift):
//   "PAR1" | column chunks (one v1 DATA_PAGE each, PLAIN values) | FileMetaData (Thrift compact) | len | "PAR1"
// Supported: flat schemas of UTF8 strings (BYTE_ARRAY), INT32 and INT64 columns, REQUIRED or OPTIONAL (nulls are
// written as definition levels, RLE-encoded), several row groups, and UNCOMPRESSED or SNAPPY pages (snappy here
// is a literal-only stream: valid snappy that hyparquet's built-in decoder must still parse).

export type ParquetFixtureValue = string | number | bigint | null;

export interface ParquetFixtureColumn {
  name: string;
  type: "string" | "int32" | "int64";
  /** OPTIONAL columns may hold nulls; REQUIRED ones may not. */
  optional?: boolean;
  values: readonly ParquetFixtureValue[];
}

export interface ParquetFixtureOptions {
  /** Rows per row group (default: all rows in one group). */
  rowGroupSize?: number;
  codec?: "uncompressed" | "snappy";
}

// parquet.thrift enum values used below.
const PARQUET_TYPE = { int32: 1, int64: 2, string: 6 } as const;
const REPETITION = { required: 0, optional: 1 } as const;
const CONVERTED_UTF8 = 0;
const ENCODING_PLAIN = 0;
const ENCODING_RLE = 3;
const CODEC = { uncompressed: 0, snappy: 1 } as const;
const PAGE_DATA = 0;

// Thrift compact-protocol type ids.
const T_I32 = 5;
const T_I64 = 6;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;

class ByteSink {
  private readonly bytes: number[] = [];

  get length(): number {
    return this.bytes.length;
  }

  byte(b: number): void {
    this.bytes.push(b & 0xff);
  }

  raw(data: Uint8Array): void {
    for (const b of data) this.bytes.push(b);
  }

  uvarint(value: bigint): void {
    let v = value;
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  u32le(value: number): void {
    for (let i = 0; i < 4; i++) this.byte(value >>> (8 * i));
  }

  i64le(value: bigint): void {
    const v = BigInt.asUintN(64, value);
    for (let i = 0n; i < 8n; i++) this.byte(Number((v >> (8n * i)) & 0xffn));
  }

  toUint8Array(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const zigzag = (v: bigint): bigint => BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));

/** A Thrift compact-protocol struct; fields must be added in increasing id order. */
class ThriftStruct {
  readonly out = new ByteSink();
  private lastId = 0;

  private header(id: number, type: number): void {
    const delta = id - this.lastId;
    if (delta <= 0 || delta > 15) throw new Error("fixture writer only supports small increasing field ids");
    this.out.byte((delta << 4) | type);
    this.lastId = id;
  }

  i32(id: number, v: number): this {
    this.header(id, T_I32);
    this.out.uvarint(zigzag(BigInt(v)));
    return this;
  }

  i64(id: number, v: number | bigint): this {
    this.header(id, T_I64);
    this.out.uvarint(zigzag(BigInt(v)));
    return this;
  }

  binary(id: number, v: string): this {
    this.header(id, T_BINARY);
    const data = new TextEncoder().encode(v);
    this.out.uvarint(BigInt(data.length));
    this.out.raw(data);
    return this;
  }

  struct(id: number, s: ThriftStruct): this {
    this.header(id, T_STRUCT);
    this.out.raw(s.end());
    return this;
  }

  list(id: number, elemType: number, items: readonly (number | string | ThriftStruct)[]): this {
    this.header(id, T_LIST);
    if (items.length < 15) this.out.byte((items.length << 4) | elemType);
    else {
      this.out.byte(0xf0 | elemType);
      this.out.uvarint(BigInt(items.length));
    }
    for (const item of items) {
      if (item instanceof ThriftStruct) this.out.raw(item.end());
      else if (typeof item === "number") this.out.uvarint(zigzag(BigInt(item)));
      else {
        const data = new TextEncoder().encode(item);
        this.out.uvarint(BigInt(data.length));
        this.out.raw(data);
      }
    }
    return this;
  }

  end(): Uint8Array {
    const body = this.out.toUint8Array();
    const withStop = new Uint8Array(body.length + 1);
    withStop.set(body);
    return withStop; // trailing 0 = field stop
  }
}

/** A valid snappy stream made only of literal elements (format_description.txt of google/snappy). */
function snappyLiteral(data: Uint8Array): Uint8Array {
  const out = new ByteSink();
  out.uvarint(BigInt(data.length));
  const maxLiteral = 1 << 16;
  for (let start = 0; start < data.length; start += maxLiteral) {
    const chunk = data.subarray(start, Math.min(data.length, start + maxLiteral));
    const n = chunk.length - 1;
    if (n < 60) out.byte(n << 2);
    else if (n < 0x100) {
      out.byte(60 << 2);
      out.byte(n);
    } else {
      out.byte(61 << 2);
      out.byte(n);
      out.byte(n >>> 8);
    }
    out.raw(chunk);
  }
  return out.toUint8Array();
}

function encodeValues(column: ParquetFixtureColumn, values: readonly ParquetFixtureValue[]): Uint8Array {
  const out = new ByteSink();
  if (column.optional) {
    // Definition levels (bit width 1) as RLE runs, prefixed by their byte length (data page v1).
    const levels = new ByteSink();
    let i = 0;
    while (i < values.length) {
      const defined = values[i] !== null;
      let run = 0;
      while (i < values.length && (values[i] !== null) === defined) {
        run++;
        i++;
      }
      levels.uvarint(BigInt(run) << 1n);
      levels.byte(defined ? 1 : 0);
    }
    out.u32le(levels.length);
    out.raw(levels.toUint8Array());
  }
  for (const value of values) {
    if (value === null) {
      if (!column.optional) throw new Error(`null in REQUIRED column ${column.name}`);
      continue;
    }
    if (column.type === "string") {
      const data = new TextEncoder().encode(String(value));
      out.u32le(data.length);
      out.raw(data);
    } else if (column.type === "int32") out.u32le(Number(value));
    else out.i64le(BigInt(value));
  }
  return out.toUint8Array();
}

/** Builds a Parquet file holding the given columns (all of the same length). */
export function buildParquet(
  columns: readonly ParquetFixtureColumn[],
  options: ParquetFixtureOptions = {},
): Uint8Array {
  const numRows = columns[0]?.values.length ?? 0;
  if (columns.some((c) => c.values.length !== numRows)) throw new Error("columns differ in length");
  const groupSize = Math.max(1, options.rowGroupSize ?? numRows);
  const codec = options.codec ?? "uncompressed";

  const file = new ByteSink();
  file.raw(new TextEncoder().encode("PAR1"));
  const rowGroups: ThriftStruct[] = [];
  for (let start = 0; start < numRows || (numRows === 0 && start === 0); start += groupSize) {
    const end = Math.min(numRows, start + groupSize);
    const chunks: ThriftStruct[] = [];
    let groupBytes = 0;
    for (const column of columns) {
      const plain = encodeValues(column, column.values.slice(start, end));
      const body = codec === "snappy" ? snappyLiteral(plain) : plain;
      const dataPageHeader = new ThriftStruct()
        .i32(1, end - start)
        .i32(2, ENCODING_PLAIN)
        .i32(3, ENCODING_RLE)
        .i32(4, ENCODING_RLE);
      const pageHeader = new ThriftStruct()
        .i32(1, PAGE_DATA)
        .i32(2, plain.length)
        .i32(3, body.length)
        .struct(5, dataPageHeader)
        .end();
      const offset = file.length;
      file.raw(pageHeader);
      file.raw(body);
      const chunkBytes = pageHeader.length + body.length;
      groupBytes += chunkBytes;
      const meta = new ThriftStruct()
        .i32(1, PARQUET_TYPE[column.type])
        .list(2, T_I32, [ENCODING_PLAIN, ENCODING_RLE])
        .list(3, T_BINARY, [column.name])
        .i32(4, CODEC[codec])
        .i64(5, end - start)
        .i64(6, pageHeader.length + plain.length)
        .i64(7, chunkBytes)
        .i64(9, offset);
      chunks.push(new ThriftStruct().i64(2, offset).struct(3, meta));
    }
    rowGroups.push(new ThriftStruct().list(1, T_STRUCT, chunks).i64(2, groupBytes).i64(3, end - start));
    if (numRows === 0) break;
  }

  const schema: ThriftStruct[] = [new ThriftStruct().binary(4, "schema").i32(5, columns.length)];
  for (const column of columns) {
    const element = new ThriftStruct()
      .i32(1, PARQUET_TYPE[column.type])
      .i32(3, column.optional ? REPETITION.optional : REPETITION.required)
      .binary(4, column.name);
    if (column.type === "string") element.i32(6, CONVERTED_UTF8);
    schema.push(element);
  }
  const footer = new ThriftStruct()
    .i32(1, 1)
    .list(2, T_STRUCT, schema)
    .i64(3, numRows)
    .list(4, T_STRUCT, rowGroups)
    .binary(6, "ragtune test fixture writer")
    .end();
  file.raw(footer);
  file.u32le(footer.length);
  file.raw(new TextEncoder().encode("PAR1"));
  return file.toUint8Array();
}
