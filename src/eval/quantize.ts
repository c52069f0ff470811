// Embedding quantization and the scores retrieval uses on quantized vectors: int8 / uint8 with per-dimension
// calibration ranges, binary / ubinary sign bits packed 8 per byte, dot products on the integers, Hamming
// distance on the bits, and the float-query rescoring of sentence-transformers' search helpers.
//
// ports sentence_transformers@85ec64559f4414aa536eca4bf53538291e0a333f quantization.py#quantize_embeddings,
// and the scoring/rescoring of quantization.py#semantic_search_faiss / #semantic_search_usearch.
// Pure TypeScript on typed arrays (row-major matrices): this file imports nothing from other src/ folders.
//
// Where ST's behaviour is undefined we are stricter, and say so:
// - int8/uint8: numpy's `.astype(np.int8)` of a value outside the type's range is a C cast (undefined; on x86
//   it wraps around). That happens to every query or document outside the calibration range. Here values
//   saturate at the range's ends, which keeps the order of values along each dimension.
// - A dimension whose calibration range is empty (min == max) divides by zero in ST (NaN → garbage); here
//   every value of it maps to the lowest bucket, so it adds the same to every score.
// - binary: ST packs the flattened (N, D) matrix, so rows share bytes when D is not a multiple of 8 (and the
//   reshape then fails or mixes rows). Here D must be a multiple of 8.

/** The precisions of ST's `quantize_embeddings`. */
export type Precision = "float32" | "int8" | "uint8" | "binary" | "ubinary";

export const PRECISIONS: readonly Precision[] = Object.freeze([
  "float32",
  "int8",
  "uint8",
  "binary",
  "ubinary",
]);

export function isPrecision(s: string): s is Precision {
  return (PRECISIONS as readonly string[]).includes(s);
}

/** Parses "float32,int8,binary" (order kept, repeats refused). */
export function parsePrecisions(list: string): Precision[] {
  const out: Precision[] = [];
  for (const raw of list.split(",")) {
    const p = raw.trim();
    if (!isPrecision(p))
      throw new Error(`unknown precision "${p}" (expected one of ${PRECISIONS.join(", ")})`);
    if (out.includes(p)) throw new Error(`precision "${p}" is listed twice`);
    out.push(p);
  }
  return out;
}

/** Storage per vector: 4 bytes per float32 component, 1 per int8/uint8 component, 1 bit per binary one. */
export function bytesPerVector(dim: number, precision: Precision): number {
  switch (precision) {
    case "float32":
      return 4 * dim;
    case "int8":
    case "uint8":
      return dim;
    case "binary":
    case "ubinary":
      return Math.ceil(dim / 8);
  }
}

/** Row-major float matrix (rows × dim). */
export interface FloatMatrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
}

export function floatMatrix(data: Float32Array, rows: number, dim: number): FloatMatrix {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(dim) || rows < 0 || dim < 1)
    throw new Error(`float matrix: bad shape (${rows}, ${dim})`);
  if (data.length !== rows * dim)
    throw new Error(`float matrix: ${data.length} values for shape (${rows}, ${dim})`);
  return { data, rows, dim };
}

/** Per-dimension quantization ranges: ST's `ranges` array, row 0 the minima, row 1 the maxima. */
export interface QuantizationRanges {
  readonly min: Float32Array;
  readonly max: Float32Array;
}

/** ST: `np.vstack((np.min(calibration_embeddings, axis=0), np.max(calibration_embeddings, axis=0)))`. */
export function calibrationRanges(m: FloatMatrix): QuantizationRanges {
  if (m.rows === 0) throw new Error("calibration ranges: no calibration embeddings");
  const min = new Float32Array(m.dim).fill(Infinity);
  const max = new Float32Array(m.dim).fill(-Infinity);
  for (let r = 0; r < m.rows; r++) {
    const off = r * m.dim;
    for (let j = 0; j < m.dim; j++) {
      const v = m.data[off + j]!;
      if (Number.isNaN(v)) throw new Error(`calibration ranges: embedding ${r} is NaN at dimension ${j}`);
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  }
  return { min, max };
}

/** A quantized matrix: `data` holds `rows × width` values (width = dim, or dim / 8 bytes for binary). */
export interface QuantizedMatrix {
  readonly precision: Precision;
  readonly rows: number;
  /** Components of the float vectors it came from. */
  readonly dim: number;
  /** Stored values per row: dim, or dim / 8 for binary / ubinary. */
  readonly width: number;
  readonly data: Float32Array | Int8Array | Uint8Array;
}

/**
 * ST's `quantize_embeddings(embeddings, precision, ranges)`:
 * - float32: a copy;
 * - uint8: `((x - starts) / steps).astype(np.uint8)` with `starts = ranges[0]`, `steps = (ranges[1] - ranges[0]) / 255`;
 * - int8: the same minus 128, `.astype(np.int8)`;
 * - ubinary: `np.packbits(x > 0)` (8 components per byte, the first one in the high bit);
 * - binary: `(packbits - 128).astype(np.int8)`.
 *
 * The arithmetic is done in float32 as numpy does on float32 embeddings and ranges (`Math.fround` after each
 * operation), and float → int truncates toward zero like the C cast, so in-range values match ST exactly.
 *
 * @param ranges needed for int8 / uint8 (ST computes them from `embeddings` itself when none are given;
 *   pass {@link calibrationRanges} of the same matrix for that)
 */
export function quantizeEmbeddings(
  m: FloatMatrix,
  precision: Precision,
  ranges?: QuantizationRanges,
): QuantizedMatrix {
  const { rows, dim, data } = m;
  switch (precision) {
    case "float32":
      return { precision, rows, dim, width: dim, data: Float32Array.from(data) };
    case "int8":
    case "uint8": {
      if (!ranges) throw new Error(`quantize ${precision}: calibration ranges are required`);
      if (ranges.min.length !== dim || ranges.max.length !== dim)
        throw new Error(
          `quantize ${precision}: ranges cover ${ranges.min.length} dimensions, embeddings have ${dim}`,
        );
      const starts = ranges.min;
      const steps = new Float32Array(dim); // float32, as `(ranges[1, :] - ranges[0, :]) / 255` in numpy
      for (let j = 0; j < dim; j++) steps[j] = Math.fround(ranges.max[j]! - starts[j]!) / 255;
      const signed = precision === "int8";
      const out = signed ? new Int8Array(rows * dim) : new Uint8Array(rows * dim);
      const lo = signed ? -128 : 0;
      const hi = signed ? 127 : 255;
      for (let i = 0; i < rows * dim; i++) {
        const j = i % dim;
        const step = steps[j]!;
        let v = lo; // empty range: the lowest bucket (see the header)
        if (step > 0) {
          const x = data[i]!;
          if (Number.isNaN(x)) throw new Error(`quantize ${precision}: row ${(i - j) / dim} is NaN at ${j}`);
          v = Math.fround(Math.fround(x - starts[j]!) / step);
          if (signed) v = Math.fround(v - 128);
          v = Math.trunc(v); // the C cast truncates toward zero
          v = v < lo ? lo : v > hi ? hi : v; // saturate instead of wrapping (see the header)
        }
        out[i] = v;
      }
      return { precision, rows, dim, width: dim, data: out };
    }
    case "binary":
    case "ubinary": {
      const packed = packSignBits(m);
      if (precision === "ubinary") return { precision, rows, dim, width: dim / 8, data: packed };
      const out = new Int8Array(packed.length);
      for (let i = 0; i < packed.length; i++) out[i] = packed[i]! - 128;
      return { precision, rows, dim, width: dim / 8, data: out };
    }
  }
}

/** `np.packbits(x > 0)` row by row: bit 7 of byte b holds component 8b, bit 0 holds component 8b + 7. */
export function packSignBits(m: FloatMatrix): Uint8Array {
  if (m.dim % 8 !== 0)
    throw new Error(`binary quantization needs a dimension divisible by 8, got ${m.dim} (see quantize.ts)`);
  const out = new Uint8Array((m.rows * m.dim) / 8);
  for (let i = 0; i < m.data.length; i++) if (m.data[i]! > 0) out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

/** `np.unpackbits`: one 0/1 per bit, high bit first. */
export function unpackBits(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length * 8);
  for (let i = 0; i < out.length; i++) out[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return out;
}

/** The packed sign bits of a binary / ubinary matrix as unsigned bytes (binary stores them minus 128). */
export function bitBytes(q: QuantizedMatrix): Uint8Array {
  if (q.precision === "ubinary") return q.data as Uint8Array;
  const out = new Uint8Array(q.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (q.data[i]! + 128) & 0xff;
  return out;
}

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let c = 0;
  for (let x = i; x; x &= x - 1) c++;
  return c;
});

/** Number of differing bits between `n` bytes of `a` from `ai` and of `b` from `bi`. */
export function hammingDistance(a: Uint8Array, ai: number, b: Uint8Array, bi: number, n: number): number {
  let d = 0;
  for (let j = 0; j < n; j++) d += POPCOUNT[a[ai + j]! ^ b[bi + j]!]!;
  return d;
}

/** What scores queries against a corpus: {@link forEachQueryScores}, or an accelerated equivalent. */
export type QueryScorer = (
  queries: QuantizedMatrix,
  corpus: QuantizedMatrix,
  onRow: (queryIndex: number, scores: Float64Array) => void,
) => void;

/**
 * Scores of every query against every document, both quantized the same way; higher is better. float32 and
 * int8 / uint8: the dot product of the stored values (faiss' `IndexFlatIP` on the uint8 values; usearch's "ip"
 * metric on int8 is 1 − that). binary / ubinary: minus the Hamming distance of the sign bits (faiss'
 * `IndexBinaryFlat`, usearch's "hamming"); binary's "−128" flips the same bit in both vectors, so both give
 * the same distances. Integer sums are exact in float64.
 *
 * @param onRow receives each query's scores (one per document; the array is reused between calls)
 */
export function forEachQueryScores(
  queries: QuantizedMatrix,
  corpus: QuantizedMatrix,
  onRow: (queryIndex: number, scores: Float64Array) => void,
): void {
  if (queries.precision !== corpus.precision || queries.width !== corpus.width)
    throw new Error(
      `quantized scores: queries are ${queries.precision}×${queries.width}, corpus ${corpus.precision}×${corpus.width}`,
    );
  const w = corpus.width;
  const scores = new Float64Array(corpus.rows);
  if (corpus.precision === "binary" || corpus.precision === "ubinary") {
    const qb = bitBytes(queries);
    const cb = bitBytes(corpus);
    for (let qi = 0; qi < queries.rows; qi++) {
      for (let c = 0; c < corpus.rows; c++) scores[c] = -hammingDistance(qb, qi * w, cb, c * w, w);
      onRow(qi, scores);
    }
    return;
  }
  const qd = queries.data;
  const cd = corpus.data;
  for (let qi = 0; qi < queries.rows; qi++) {
    const qo = qi * w;
    for (let c = 0; c < corpus.rows; c++) {
      const co = c * w;
      let s = 0;
      for (let j = 0; j < w; j++) s += qd[qo + j]! * cd[co + j]!;
      scores[c] = s;
    }
    onRow(qi, scores);
  }
}

/**
 * The values a rescoring step multiplies the float query with, for one document: ST takes the corpus
 * vectors back out of the index and computes `einsum("ij,ikj->ik", float_queries, top_k_embeddings)` with
 * `top_k_embeddings = np.unpackbits(...)` (0/1 bits) for binary / ubinary and the stored integers
 * `astype(int)` for int8 / uint8 — not dequantized values. (usearch's binary path unpacks the int8 bytes, whose
 * high bit is flipped by the −128; the true sign bits are used here for both binary flavours.)
 */
export function rescoreVector(corpus: QuantizedMatrix, row: number): Float64Array {
  const out = new Float64Array(corpus.dim);
  if (corpus.precision === "binary" || corpus.precision === "ubinary") {
    const bits = corpus.data;
    const off = row * corpus.width;
    const flip = corpus.precision === "binary" ? 128 : 0;
    for (let j = 0; j < corpus.dim; j++)
      out[j] = (((bits[off + (j >> 3)]! + flip) & 0xff) >> (7 - (j & 7))) & 1;
    return out;
  }
  const off = row * corpus.dim;
  for (let j = 0; j < corpus.dim; j++) out[j] = corpus.data[off + j]!;
  return out;
}

/**
 * Float query row `qi` · {@link rescoreVector}(corpus, row) without building the vector: the rescoring
 * score, summed in float64 in dimension order.
 */
export function rescoreDot(q: FloatMatrix, qi: number, corpus: QuantizedMatrix, row: number): number {
  if (q.dim !== corpus.dim) throw new Error(`rescore: query has ${q.dim} dims, corpus ${corpus.dim}`);
  const qo = qi * q.dim;
  let s = 0;
  if (corpus.precision === "binary" || corpus.precision === "ubinary") {
    const off = row * corpus.width;
    const flip = corpus.precision === "binary" ? 128 : 0;
    for (let j = 0; j < corpus.dim; j++)
      if ((((corpus.data[off + (j >> 3)]! + flip) & 0xff) >> (7 - (j & 7))) & 1) s += q.data[qo + j]!;
    return s;
  }
  const off = row * corpus.dim;
  for (let j = 0; j < corpus.dim; j++) s += q.data[qo + j]! * corpus.data[off + j]!;
  return s;
}

/** Float query row `qi` · a document vector, summed in float64. */
export function dotRow(q: FloatMatrix, qi: number, v: ArrayLike<number>, vOffset = 0): number {
  let s = 0;
  const off = qi * q.dim;
  for (let j = 0; j < q.dim; j++) s += q.data[off + j]! * v[vOffset + j]!;
  return s;
}

/**
 * Matryoshka truncation for one dim: the first `dim` components of each row, L2-normalized when `normalize`
 * (cosine scoring), as `F.normalize` does: `x / max(‖x‖, 1e-12)`, rounded to float32.
 */
export function truncateRows(m: FloatMatrix, dim: number, normalize: boolean): FloatMatrix {
  if (!Number.isSafeInteger(dim) || dim < 1 || dim > m.dim)
    throw new Error(`truncate: dim ${dim} is not in 1..${m.dim}`);
  const out = new Float32Array(m.rows * dim);
  for (let r = 0; r < m.rows; r++) {
    const src = r * m.dim;
    let norm = 1;
    if (normalize) {
      let ss = 0;
      for (let j = 0; j < dim; j++) ss += m.data[src + j]! * m.data[src + j]!;
      norm = Math.max(Math.sqrt(ss), 1e-12);
    }
    for (let j = 0; j < dim; j++) out[r * dim + j] = m.data[src + j]! / norm;
  }
  return { data: out, rows: m.rows, dim };
}
