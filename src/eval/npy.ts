// numpy's .npy format for embedding matrices: write (N, D) float32 / int8 / uint8 for bulk use of
// `ragtune encode` output (np.load, faiss, usearch, pgvector loaders), and read float matrices back (calibration
// embeddings). Also reads the JSONL that `ragtune encode` writes (one JSON array per line).
//
// Format: numpy/lib/format.py (version 1.0): the magic "\x93NUMPY", version bytes 1 0, a little-endian uint16
// header length, then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }`
// padded with spaces and ended by "\n" so that the data starts at a multiple of 64 bytes (numpy's
// ARRAY_ALIGN), then the raw C-order data. Versions 2.0 and 3.0 (uint32 header length) are read as well.
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/index.ts";

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
const ALIGN = 64;

/** Element types ragtune writes and reads, by numpy `descr`. */
const DESCR = {
  "<f4": Float32Array,
  "<f8": Float64Array,
  "|i1": Int8Array,
  "|u1": Uint8Array,
} as const;
export type NpyDescr = keyof typeof DESCR;
export type NpyArray = Float32Array | Float64Array | Int8Array | Uint8Array;

/** The `descr` numpy uses for a typed array's element type. */
export function descrOf(data: NpyArray): NpyDescr {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int8Array) return "|i1";
  return "|u1";
}

/** The bytes of a version 1.0 .npy file holding `data` with `shape` (C order). */
export function encodeNpy(data: NpyArray, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: ${data.length} values for shape (${shape.join(", ")})`);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
    throw new Error("npy: big-endian hosts are not supported");
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1; // + "\n"
  header += " ".repeat((ALIGN - (unpadded % ALIGN)) % ALIGN) + "\n";
  if (header.length > 0xffff) throw new Error("npy: header too long for format version 1.0");
  const pre = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(pre, 0);
  pre[6] = 1; // major version
  pre[7] = 0; // minor version
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([pre, Buffer.from(header, "latin1"), body]);
}

/** Writes an .npy file atomically (a reader never sees half a file). */
export function writeNpy(path: string, data: NpyArray, shape: readonly number[]): void {
  writeFileAtomic(path, encodeNpy(data, shape));
}

/** Parses .npy bytes; `file` names the source in errors. Only C-order arrays of the types above. */
export function decodeNpy(buf: Buffer, file = "<npy>"): { data: NpyArray; shape: number[]; descr: NpyDescr } {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC))
    throw new Error(`${file}: not a .npy file (bad magic)`);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new Error(`${file}: unsupported .npy version ${major}.${buf[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? "utf8" : "latin1");
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new Error(`${file}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (!(descr in DESCR))
    throw new Error(`${file}: dtype '${descr}' is not supported (expected <f4, <f8, |i1 or |u1)`);
  if (fortran === "True")
    throw new Error(`${file}: Fortran-order arrays are not supported (save with C order)`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const ctor = DESCR[descr as NpyDescr];
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  if (buf.length - dataStart !== count * ctor.BYTES_PER_ELEMENT)
    throw new Error(
      `${file}: ${buf.length - dataStart} data bytes for shape (${shape.join(", ")}) of ${descr} (truncated file?)`,
    );
  const data = new ctor(count); // a fresh, aligned copy
  new Uint8Array(data.buffer).set(buf.subarray(dataStart));
  return { data, shape, descr: descr as NpyDescr };
}

/**
 * Reads a float embedding matrix (N, D) from an .npy file (float32 or float64) or a JSONL file of JSON arrays
 * (what `ragtune encode` writes), as float32.
 */
export function readEmbeddingMatrix(file: string): { data: Float32Array; rows: number; dim: number } {
  if (file.endsWith(".npy")) {
    const { data, shape, descr } = decodeNpy(readFileSync(file), file);
    if (shape.length !== 2)
      throw new Error(`${file}: expected a 2-D (N, D) array, got shape (${shape.join(", ")})`);
    if (descr !== "<f4" && descr !== "<f8")
      throw new Error(`${file}: expected float embeddings, got ${descr}`);
    return { data: Float32Array.from(data), rows: shape[0]!, dim: shape[1]! };
  }
  const lines = readFileSync(file, "utf8").split("\n");
  const values: number[] = [];
  let dim = -1;
  let rows = 0;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(v) || v.some((x) => typeof x !== "number" || !Number.isFinite(x)))
      throw new Error(`${file}:${i + 1}: expected an array of finite numbers`);
    if (dim === -1) dim = v.length;
    if (v.length !== dim) throw new Error(`${file}:${i + 1}: ${v.length} values, the first line has ${dim}`);
    for (const x of v as number[]) values.push(x);
    rows++;
  });
  if (rows === 0 || dim < 1) throw new Error(`${file}: no embeddings`);
  return { data: Float32Array.from(values), rows, dim };
}
