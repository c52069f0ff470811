// Byte-level safetensors reader/writer with strict validation and no dependencies.
//
// Layout (https://github.com/huggingface/safetensors, README "Format"): 8-byte little-endian u64 N, then N
// bytes of UTF-8 JSON header `{"<name>": {"dtype","shape","data_offsets"}, ..., "__metadata__"?: {..}}`,
// then the byte buffer the offsets index into. This module only deals in bytes: turning them into libtorch
// tensors is the job of a higher layer, so nothing here imports from other src/ folders.
//
// Everything in a header is attacker-controlled (weights come from the Hub), so every field is checked
// before it is used for an allocation or a read, and every error names the file and the offending key.
// Reading is synchronous: weight loading happens once at start-up and a sync fd API gives deterministic
// close(); `SafetensorsFile` reads tensors on demand so a large file is never held in memory twice.

import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { isPlainObject, writeFileAtomic } from "../util/index.ts";
import { jsonSyntaxDetail, openRegularFile } from "../util/read-file.ts";

/** Element types the parser knows, with their size in bytes (safetensors `Dtype::bitsize() / 8`). */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const satisfies Record<string, number>;

export type Dtype = keyof typeof DTYPE_SIZES;

/**
 * Rank of each dtype in the declaration order of the Rust `enum Dtype` (safetensors/src/tensor.rs), whose
 * derived `Ord` the writer sorts by. Upstream also declares F4, F6_*, F8_E8M0, F8_*FNUZ and C64 in between;
 * only the relative order matters, and it has been stable for these dtypes since safetensors 0.3 (2023).
 */
const DTYPE_RANK: Readonly<Record<Dtype, number>> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  F8_E5M2: 3,
  F8_E4M3: 4,
  I16: 5,
  U16: 6,
  F16: 7,
  BF16: 8,
  I32: 9,
  U32: 10,
  F32: 11,
  F64: 12,
  I64: 13,
  U64: 14,
};

/** The dtypes ragtune can turn into libtorch tensors; the others parse but cannot be loaded. */
export const LOADABLE_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>([
  "F32",
  "F16",
  "BF16",
  "F64",
  "I64",
  "I32",
  "BOOL",
  "U8",
  "I8",
]);

export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

export function isLoadableDtype(d: Dtype): boolean {
  return LOADABLE_DTYPES.has(d);
}

/** Mirrors `MAX_HEADER_SIZE` in safetensors/src/tensor.rs: refuse headers above 100 MB before reading them. */
export const MAX_HEADER_SIZE = 100_000_000;
const N_LEN = 8;

/** What the header says about one tensor. `dataOffsets` are relative to the start of the byte buffer. */
export interface TensorInfo {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
  readonly dataOffsets: readonly [number, number];
}

export interface SafetensorsHeader {
  /** Tensors in byte-buffer order (upstream `Metadata::offset_keys`). */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** Absolute file offset of the byte buffer: 8 + N. */
  readonly dataStart: number;
  readonly dataLength: number;
}

/** Every failure to read or write a safetensors file; `file` and (when one is at fault) `key` are set. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    detail: string,
  ) {
    super(key === undefined ? `${file}: ${detail}` : `${file}: tensor ${JSON.stringify(key)}: ${detail}`);
    this.name = "SafetensorsError";
  }
}

/** Common read API of a single file and of a sharded checkpoint (see safetensors-index.ts). */
export interface TensorReader {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  keys(): string[];
  has(key: string): boolean;
  info(key: string): TensorInfo;
  /** A fresh Buffer with byteOffset 0, so it can be viewed as any typed array without copying. */
  read(key: string): Buffer;
  close(): void;
  [Symbol.dispose](): void;
}

// ---------------------------------------------------------------------------------------------------------
// Pickle refusal

const PICKLE_EXTENSIONS = [".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"];

export const PICKLE_CONVERSION_HINT =
  "ragtune never unpickles weights (unpickling can run arbitrary code). Convert the checkpoint to safetensors " +
  "once, with Python, e.g.\n" +
  `  python -c "import torch; from safetensors.torch import save_file; ` +
  `sd = torch.load('pytorch_model.bin', map_location='cpu', weights_only=True); ` +
  `save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors', metadata={'format': 'pt'})"\n` +
  "or load the model with sentence-transformers and re-save it:\n" +
  `  python -c "from sentence_transformers import SentenceTransformer; ` +
  `SentenceTransformer('<model dir or id>').save('<out dir>', safe_serialization=True)"`;

function pickleError(file: string, why: string): SafetensorsError {
  return new SafetensorsError(
    file,
    undefined,
    `refusing to load a PyTorch pickle checkpoint (${why}). ${PICKLE_CONVERSION_HINT}`,
  );
}

/**
 * Whether the first bytes are a zip (torch.save since 1.6) or pickle protocol 2-5 (legacy torch.save).
 * A genuine safetensors file whose N happens to start with 0x80 0x02 (N = 640, say) is not misread: when
 * the prefix is a plausible safetensors header (N in bounds and the JSON starts with '{') it is not pickle.
 */
export function sniffPickle(head: Uint8Array, fileSize: number): "zip" | "pickle" | undefined {
  const zip = head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  const b1 = head[1] ?? 0;
  const pickle = head[0] === 0x80 && b1 >= 2 && b1 <= 5;
  if (!zip && !pickle) return undefined;
  if (head.length >= N_LEN + 1) {
    const n = Buffer.from(head.buffer, head.byteOffset, N_LEN).readBigUInt64LE(0);
    if (n <= BigInt(MAX_HEADER_SIZE) && Number(n) + N_LEN <= fileSize && head[N_LEN] === 0x7b)
      return undefined;
  }
  return zip ? "zip" : "pickle";
}

/**
 * The model loader's gate: throws, with conversion instructions, when `path` names a pickle checkpoint by
 * extension or when the file's bytes are a zip/pickle. A missing file or a folder passes (the open reports it).
 */
export function refusePickle(path: string): void {
  const lower = path.toLowerCase();
  const ext = PICKLE_EXTENSIONS.find((e) => lower.endsWith(e));
  if (ext !== undefined) throw pickleError(path, `"${ext}" file`);
  let fd: number;
  try {
    if (!statSync(path).isFile()) return;
    fd = openSync(path, "r");
  } catch {
    return;
  }
  try {
    const head = Buffer.alloc(N_LEN + 1);
    const got = readSync(fd, head, 0, head.length, 0);
    const kind = sniffPickle(head.subarray(0, got), fstatSync(fd).size);
    if (kind !== undefined)
      throw pickleError(path, kind === "zip" ? "zip archive magic PK\\x03\\x04" : "pickle magic");
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing and validation (mirrors `SafeTensors::read_metadata` and `Metadata::validate`)

/** Checks the 8-byte prefix (and pickle magic); returns N. Mirrors the first half of `read_metadata`. */
function readHeaderLength(head: Uint8Array, fileSize: number, file: string): number {
  const kind = sniffPickle(head, fileSize);
  if (kind !== undefined)
    throw pickleError(file, kind === "zip" ? "zip archive magic PK\\x03\\x04" : "pickle magic");
  if (fileSize < N_LEN) {
    throw new SafetensorsError(
      file,
      undefined,
      `file is ${fileSize} bytes, shorter than the 8-byte header length`,
    );
  }
  const n = Buffer.from(head.buffer, head.byteOffset, N_LEN).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${n} exceeds the ${MAX_HEADER_SIZE}-byte limit`,
    );
  }
  if (Number(n) + N_LEN > fileSize) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${n} runs past the end of the ${fileSize}-byte file`,
    );
  }
  return Number(n);
}

const LONE_SURROGATE = /\p{Cs}/u;
const PLAIN_UINT = /^(0|[1-9][0-9]*)$/;

/**
 * Walks JSON text that JSON.parse already accepted and rejects what JSON.parse silently tolerates but
 * serde_json (with usize fields) or the spec does not: duplicate keys in any object (the README says they are
 * disallowed; JSON.parse keeps the last, which invites parser-differential tricks), numbers that are not plain
 * non-negative integers (`1.0`, `1e3`, `-0`; unless `plainIntegersOnly` is false), and lone-surrogate escapes
 * (Rust strings are valid UTF-8).
 */
export function checkJsonStrictness(
  text: string,
  fail: (detail: string, topKey: string | undefined) => never,
  plainIntegersOnly = true,
): void {
  const stack: { obj: boolean; keys: Set<string>; expectKey: boolean }[] = [];
  let topKey: string | undefined;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const s = JSON.parse(text.slice(i, j + 1)) as string;
      if (LONE_SURROGATE.test(s))
        fail(`string ${JSON.stringify(s)} contains a lone UTF-16 surrogate`, topKey);
      const frame = stack.at(-1);
      if (frame !== undefined && frame.obj && frame.expectKey) {
        if (stack.length === 1) topKey = s;
        if (frame.keys.has(s)) fail(`duplicate JSON key ${JSON.stringify(s)}`, topKey);
        frame.keys.add(s);
        frame.expectKey = false;
      }
      i = j + 1;
    } else if (c === "{" || c === "[") {
      stack.push({ obj: c === "{", keys: new Set(), expectKey: c === "{" });
      i++;
    } else if (c === "}" || c === "]") {
      stack.pop();
      i++;
    } else if (c === ",") {
      const frame = stack.at(-1);
      if (frame?.obj) frame.expectKey = true;
      i++;
    } else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < text.length && /[-+.eE0-9]/.test(text[j] ?? "")) j++;
      const tok = text.slice(i, j);
      if (plainIntegersOnly && !PLAIN_UINT.test(tok))
        fail(`number ${tok} is not a plain non-negative integer`, topKey);
      i = j;
    } else {
      i++;
    }
  }
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates the N header bytes against a byte buffer of `dataLength` bytes. Like upstream, the
 * tensors sorted by data_offsets must tile the buffer exactly: the first begins at 0, each begins where the
 * previous ended (no overlap, no hole) and the last ends at the buffer's end (`Metadata::validate` plus the
 * `MetadataIncompleteBuffer` check of `read_metadata`), which rules out polyglot files with hidden bytes.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataLength: number,
  file: string,
): SafetensorsHeader {
  let text: string;
  try {
    // fatal: reject invalid UTF-8 rather than substituting U+FFFD; ignoreBOM: keep a BOM so '{' check sees it.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, undefined, "header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    throw new SafetensorsError(
      file,
      undefined,
      // Not the text itself: a model file may be a link to anything (errors never quote a file).
      `header must start with '{', got character U+${text.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, undefined, `header is not valid JSON (${jsonSyntaxDetail(e, text)})`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(file, undefined, "header JSON is not an object");
  checkJsonStrictness(text, (detail, key) => {
    if (key === "__metadata__") throw new SafetensorsError(file, undefined, `header __metadata__: ${detail}`);
    throw new SafetensorsError(file, key, `header: ${detail}`);
  });

  let metadata: Readonly<Record<string, string>> | undefined;
  const entries: [string, TensorInfo][] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === "__metadata__") {
      if (!isPlainObject(value))
        throw new SafetensorsError(file, undefined, "__metadata__ must be an object");
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(
            file,
            undefined,
            `__metadata__[${JSON.stringify(k)}] must be a string, got ${typeof v}`,
          );
        }
      }
      metadata = Object.freeze(Object.fromEntries(Object.entries(value) as [string, string][]));
      continue;
    }
    entries.push([key, parseEntry(key, value, dataLength, file)]);
  }

  // Sort by (begin, end) like `TryFrom<HashMetadata> for Metadata`, then require contiguity.
  entries.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  for (const [key, info] of entries) {
    const [begin] = info.dataOffsets;
    if (begin < cursor) {
      throw new SafetensorsError(
        file,
        key,
        `data_offsets begin ${begin} overlaps the previous tensor (ends at ${cursor})`,
      );
    }
    if (begin > cursor) {
      throw new SafetensorsError(
        file,
        key,
        `data_offsets begin ${begin} leaves a hole after byte ${cursor} of the buffer`,
      );
    }
    cursor = info.dataOffsets[1];
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError(
      file,
      entries.at(-1)?.[0],
      `tensors cover ${cursor} bytes but the byte buffer has ${dataLength}`,
    );
  }
  return { tensors: new Map(entries), metadata, dataStart: N_LEN + headerBytes.length, dataLength };
}

function parseEntry(key: string, value: unknown, dataLength: number, file: string): TensorInfo {
  const bad = (detail: string) => new SafetensorsError(file, key, detail);
  // Unknown fields are ignored, as serde does for `TensorInfo` (no deny_unknown_fields).
  if (!isPlainObject(value)) throw bad("entry must be an object with dtype, shape and data_offsets");
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDtype(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isUint)) {
    throw bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isUint)) {
    throw bad(`data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`data_offsets begin ${begin} > end ${end}`);
  // BigInt: the element count of a hostile shape can overflow a double long before it is compared.
  const nbytes = shape.reduce((acc: bigint, d: number) => acc * BigInt(d), 1n) * BigInt(DTYPE_SIZES[dtype]);
  if (BigInt(end - begin) !== nbytes) {
    throw bad(
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${nbytes}`,
    );
  }
  if (end > dataLength) {
    throw bad(`data_offsets [${begin}, ${end}] run past the ${dataLength}-byte byte buffer`);
  }
  return Object.freeze({
    dtype,
    shape: Object.freeze([...(shape as number[])]),
    byteLength: end - begin,
    dataOffsets: Object.freeze([begin, end] as [number, number]),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Eager reading

export interface LoadedTensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** A view into the file buffer (no copy). */
  readonly data: Buffer;
}

export interface SafetensorsContents {
  readonly tensors: ReadonlyMap<string, LoadedTensor>;
  readonly metadata: Readonly<Record<string, string>> | undefined;
}

/** Parses a whole safetensors file held in memory; tensor data are zero-copy views into `buf`. */
export function parseSafetensors(buf: Uint8Array, sourceName = "<buffer>"): SafetensorsContents {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = readHeaderLength(b.subarray(0, N_LEN + 1), b.length, sourceName);
  const start = N_LEN + n;
  const header = parseSafetensorsHeader(b.subarray(N_LEN, start), b.length - start, sourceName);
  const tensors = new Map<string, LoadedTensor>();
  for (const [key, { dtype, shape, dataOffsets }] of header.tensors) {
    tensors.set(key, { dtype, shape, data: b.subarray(start + dataOffsets[0], start + dataOffsets[1]) });
  }
  return { tensors, metadata: header.metadata };
}

/** Reads and validates a whole file; for large checkpoints prefer `SafetensorsFile.open`. */
export function readSafetensors(path: string): SafetensorsContents {
  return parseSafetensors(readFileSync(path), path);
}

// ---------------------------------------------------------------------------------------------------------
// Lazy reading

const IO_CHUNK = 1 << 30; // fs.readSync/writeSync take at most 2^31-1 bytes per call.

function readFully(fd: number, out: Buffer, position: number, file: string, key: string | undefined): void {
  let done = 0;
  while (done < out.length) {
    const got = readSync(fd, out, done, Math.min(IO_CHUNK, out.length - done), position + done);
    if (got === 0)
      throw new SafetensorsError(
        file,
        key,
        `file ended after ${position + done} bytes (truncated while open?)`,
      );
    done += got;
  }
}

/** Reads only the header at open, then tensor bytes on demand from the file descriptor. */
export class SafetensorsFile implements TensorReader {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    readonly header: SafetensorsHeader,
  ) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    // A regular file within RAGTUNE_MAX_WEIGHTS_BYTES: a FIFO would block the open forever (read-file.ts).
    const { fd, size } = openRegularFile(path, "weights");
    try {
      const head = Buffer.alloc(Math.min(N_LEN + 1, size));
      readFully(fd, head, 0, path, undefined);
      const n = readHeaderLength(head, size, path);
      const headerBytes = Buffer.alloc(n);
      readFully(fd, headerBytes, N_LEN, path, undefined);
      const header = parseSafetensorsHeader(headerBytes, size - N_LEN - n, path);
      return new SafetensorsFile(path, fd, header);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  get metadata(): Readonly<Record<string, string>> | undefined {
    return this.header.metadata;
  }

  keys(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(key: string): boolean {
    return this.header.tensors.has(key);
  }

  info(key: string): TensorInfo {
    const info = this.header.tensors.get(key);
    if (info === undefined) throw new SafetensorsError(this.path, key, "no such tensor in this file");
    return info;
  }

  read(key: string): Buffer {
    const info = this.info(key);
    if (this.fd === undefined) throw new SafetensorsError(this.path, key, "read after close()");
    // allocUnsafeSlow: an unpooled buffer at byteOffset 0, aligned for any typed-array view; filled below.
    const out = Buffer.allocUnsafeSlow(info.byteLength);
    readFully(this.fd, out, this.header.dataStart + info.dataOffsets[0], this.path, key);
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing (mirrors `prepare` + `serialize_to_file` in safetensors/src/tensor.rs)

export interface TensorToWrite {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Little-endian element bytes in row-major order; a typed array must match the dtype's width. */
  readonly data: Uint8Array | ArrayBufferView;
}

export type NamedTensorToWrite = TensorToWrite & { readonly name: string };
export type TensorsToWrite = readonly NamedTensorToWrite[] | Readonly<Record<string, TensorToWrite>>;

/** The `__metadata__` transformers' `save_pretrained` writes; its loader refuses files without it. */
export const PT_FORMAT_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: "pt" });

/** Typed arrays whose element type pins the dtype; Uint8Array/Buffer/DataView are raw bytes for any dtype. */
const TYPED_ARRAY_DTYPES: Readonly<Record<string, readonly Dtype[]>> = {
  Float64Array: ["F64"],
  Float32Array: ["F32"],
  BigInt64Array: ["I64"],
  BigUint64Array: ["U64"],
  Int32Array: ["I32"],
  Uint32Array: ["U32"],
  Int16Array: ["I16"],
  Uint16Array: ["U16", "F16", "BF16"],
  Int8Array: ["I8"],
};

/** Rust `String: Ord` compares UTF-8 bytes; JS `<` compares UTF-16 units, which differs above U+FFFF. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

interface Prepared {
  readonly header: Buffer; // the 8-byte N followed by the padded JSON
  readonly tensors: readonly Buffer[];
  readonly totalSize: number;
}

function prepare(
  input: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | undefined,
  file: string,
): Prepared {
  if (endianness() !== "LE")
    throw new SafetensorsError(file, undefined, "writing requires a little-endian host");
  const list: NamedTensorToWrite[] = Array.isArray(input)
    ? [...(input as readonly NamedTensorToWrite[])]
    : Object.entries(input as Readonly<Record<string, TensorToWrite>>).map(([name, t]) => ({ ...t, name }));
  const seen = new Set<string>();
  const items = list.map((t) => {
    const bad = (detail: string) => new SafetensorsError(file, t.name, detail);
    if (typeof t.name !== "string" || LONE_SURROGATE.test(t.name))
      throw bad("name must be a well-formed string");
    if (t.name === "__metadata__") throw bad("name is reserved for the metadata block");
    if (seen.has(t.name)) throw bad("duplicate tensor name");
    seen.add(t.name);
    if (!isDtype(t.dtype)) throw bad(`unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isUint)) throw bad(`bad shape ${JSON.stringify(t.shape)}`);
    if (!ArrayBuffer.isView(t.data)) throw bad("data must be a Buffer or typed array");
    const tag = (t.data as unknown as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] ?? "";
    const allowed = TYPED_ARRAY_DTYPES[tag];
    if (allowed !== undefined && !allowed.includes(t.dtype))
      throw bad(`${tag} data cannot hold dtype ${t.dtype}`);
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const want = t.shape.reduce((a, d) => a * d, 1) * DTYPE_SIZES[t.dtype];
    if (bytes.length !== want)
      throw bad(`data is ${bytes.length} bytes but ${t.dtype}${JSON.stringify(t.shape)} needs ${want}`);
    return { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
  });
  // Descending dtype rank, then name: upstream `prepare` sorts `right.dtype().cmp(&left.dtype())
  // .then(lname.cmp(rname))`, so wider types come first and every tensor stays aligned to its element size.
  items.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareUtf8(a.name, b.name));

  // serde_json::to_string is compact; for well-formed strings its escaping (\" \\ \b \f \n \r \t, other
  // controls as \u00XX lowercase, everything else raw UTF-8) is exactly JSON.stringify's.
  const parts: string[] = [];
  if (metadata !== undefined) {
    // Upstream metadata is a Rust HashMap, so with 2+ keys its order is random per process; we sort by UTF-8
    // bytes to be deterministic. With 0 or 1 key (the usual {"format":"pt"}) the bytes match upstream.
    const keys = Object.keys(metadata).sort(compareUtf8);
    const kv = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== "string" || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
        throw new SafetensorsError(
          file,
          undefined,
          `__metadata__[${JSON.stringify(k)}] must be a well-formed string`,
        );
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(",")}}`);
  }
  let offset = 0;
  for (const t of items) {
    const end = offset + t.bytes.length;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const n = Math.ceil(json.length / N_LEN) * N_LEN; // `next_multiple_of(N_LEN)`, padded with b' '
  if (n > MAX_HEADER_SIZE)
    throw new SafetensorsError(file, undefined, `header of ${n} bytes exceeds ${MAX_HEADER_SIZE}`);
  const header = Buffer.alloc(N_LEN + n, 0x20);
  header.writeBigUInt64LE(BigInt(n), 0);
  json.copy(header, N_LEN);
  return { header, tensors: items.map((t) => t.bytes), totalSize: N_LEN + n + offset };
}

/** The whole file in memory, byte-identical to Python `safetensors.serialize` for the same input. */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>>,
): Buffer {
  const p = prepare(tensors, metadata, "<buffer>");
  return Buffer.concat([p.header, ...p.tensors], p.totalSize);
}

/** Writes all of `buf` in IO_CHUNK pieces (one writeSync of a multi-GB tensor can fail). */
function writeChunked(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, Math.min(IO_CHUNK, buf.length - done));
}

/**
 * Writes `path` like Python `safetensors.torch.save_file`, streaming tensor bytes rather than building the
 * file in memory. Atomic through util's writeFileAtomic (upstream `buffered_write_to_file` also persists a
 * sibling temp file), so readers never see a partial file and a failed write names `path` and leaves no temp.
 * Pass `PT_FORMAT_METADATA` for files that transformers' `from_pretrained` must accept.
 */
export function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>>,
): void {
  const p = prepare(tensors, metadata, path);
  writeFileAtomic(path, (fd) => {
    writeChunked(fd, p.header);
    for (const t of p.tensors) writeChunked(fd, t);
  });
}
