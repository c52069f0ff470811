// Packed (padding-free) sequences: a batch of token rows becomes one flat tensor of its real tokens [T] plus
// segment offsets (cu_seqlens), per-segment position ids and the plan of its attention chunks. Every
// token-wise op of an encoder (embeddings, Linear, LayerNorm, GELU, dropout, the FFN) then runs on [T, H]:
// no padded slot is ever computed. Attention is the only op that needs the segments; it runs on
// length-sorted chunks gathered into small padded blocks (the existing SDPA / 1.13 fallback with a key mask),
// and pooling (pooling.ts) reduces each segment with gather / index_add / scatter_reduce.
//
// Layout. The segments are stored longest first (stable for equal lengths), so a chunk of consecutive
// segments is a contiguous token range and the chunks' outputs concatenate back into the packed order
// without a permutation. `segmentIds` maps every token to its row in the *input* order, so a pooled
// (B, H) result comes out in input order directly.
//
// Chunking. Chunk i holds consecutive segments padded to the chunk's longest one. Its cost is modelled as
// a fixed overhead per chunk (the ~20 small ops a chunk adds per layer, forward and backward) plus its padded
// attention work b·L·(L + κ) in units of one key position of one padded slot (4·H flops): a dynamic programme
// over the sorted lengths picks the partition of least cost. A chunk whose segments all have the same length
// needs no gather and no mask (a view of the range). Attention is a small share of an encoder's work (per
// padded slot 4·L·H flops against 24·H² per real token in the Linear layers), so few chunks suffice.
import {
  HEAP_BLOCK_BYTES,
  cat,
  scaledDotProductAttention,
  tensor,
  zeros,
  type Device,
  type DType,
  type Tensor,
} from "../engine/index.ts";

/** The additive mask value of a padded key: the dtype's lowest finite value, as HF's extended mask. */
const FINFO_MIN: Readonly<Partial<Record<DType, number>>> = {
  float32: -3.4028234663852886e38,
  float64: -Number.MAX_VALUE,
  float16: -65504,
  bfloat16: -3.3895313892515355e38,
};

/** One row of tokens to pack: its ids and, for BERT, its token type ids (zeros when omitted). */
export interface TokenRow {
  ids: ArrayLike<number>;
  typeIds?: ArrayLike<number>;
}

export interface PackOptions {
  device?: Device;
  /** dtype of the attention masks (the model's parameter dtype). Default float32. */
  maskDtype?: DType;
  /**
   * Fixed cost of one attention chunk, in units of padded-slot × key positions (see the header). Larger values
   * make fewer, more padded chunks. Default: {@link defaultChunkOverhead} of the device and hiddenSize.
   */
  chunkOverhead?: number;
  /** The attention width (for the default chunk overhead). Default 768. */
  hiddenSize?: number;
  /**
   * Attention heads: with it, no chunk's (rows, heads, L, L) score block exceeds {@link HEAP_BLOCK_BYTES} (on the
   * CPU; rows split where needed), so attention's largest temporaries come from malloc's heap and are reused
   * from step to step instead of being mmap'd and faulted in again (src/engine/native.ts MALLOC_DEFAULTS).
   */
  numHeads?: number;
}

/**
 * The default per-chunk overhead, in units of 4·H flops: the time of a chunk's ~40 ops (forward and
 * backward) times the device's rate. On the CPU (~20 µs per op at ~50 GFLOP/s, and more when the cores are
 * shared: every op is a thread barrier) ≈ 40 MFLOP; a chunk then pays for itself only where it saves tens of
 * thousands of padded slot × key positions. On CUDA (~10 µs per launch at hundreds of TFLOP/s) a chunk costs
 * as much as a whole padded batch of short texts, so the plan there is one block unless lengths differ wildly.
 */
export function defaultChunkOverhead(device: Device, hiddenSize = 768): number {
  const flops = device.startsWith("cuda") ? 1.6e11 : 4e7;
  return flops / (4 * hiddenSize);
}

/** Extra cost per padded slot, in key positions: the gathers and the scatter of the padded block. */
const SLOT_COST = 16;

/** One attention chunk: segments [first, first + rows) of the packed order, tokens [start, start + tokens). */
export interface AttentionChunk {
  start: number;
  tokens: number;
  rows: number;
  /** Longest segment of the chunk: the padded block is (rows, length). */
  length: number;
  /** (rows·length) int64 index of each padded slot into the packed tokens; null when all rows are full. */
  gather: Tensor | null;
  /** (rows, 1, 1, length) additive key mask (0 or the dtype's minimum); null when all rows are full. */
  mask: Tensor | null;
  /** (tokens) int64 position of each real token in the padded block; null when all rows are full. */
  scatter: Tensor | null;
}

/**
 * Partition of lengths sorted descending (all ≥ 1) into consecutive chunks of least modelled cost; returns the
 * end index (exclusive) of each chunk. O(n²) over at most a few thousand segments.
 */
export function planChunks(
  sortedLengths: readonly number[],
  overhead: number,
  maxRows: (length: number) => number = () => Infinity,
): number[] {
  const n = sortedLengths.length;
  if (n === 0) return [];
  const best = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  best[0] = 0;
  // best[j] = least cost of the first j segments; chunk [i, j) is padded to sortedLengths[i].
  for (let j = 1; j <= n; j++) {
    for (let i = j - 1; i >= 0; i--) {
      const L = sortedLengths[i]!;
      if (j - i > Math.max(1, maxRows(L))) break; // longer chunks start further left: longer L, fewer rows allowed
      const cost = best[i]! + overhead + (j - i) * L * (L + SLOT_COST);
      if (cost < best[j]!) {
        best[j] = cost;
        from[j] = i;
      }
    }
  }
  const ends: number[] = [];
  for (let j = n; j > 0; j = from[j]!) ends.push(j);
  return ends.reverse();
}

/** A batch of token rows packed into [T] tensors; create it with {@link packRows}. */
export interface PackedSequences {
  readonly packed: true;
  /** Rows in the input order (B). */
  readonly batchSize: number;
  /** Real tokens in all (T). */
  readonly totalTokens: number;
  /** Token count of each input row (B). */
  readonly lengths: Int32Array;
  /** packed position k -> input row: longest first, stable. */
  readonly order: Int32Array;
  /** Start of each input row's tokens in the packed layout (B); `starts[r] + lengths[r]` is its end. */
  readonly starts: Int32Array;
  /** cu_seqlens of the packed order (B + 1): segment k is tokens [cuSeqlens[k], cuSeqlens[k + 1]). */
  readonly cuSeqlens: Int32Array;
  /** Longest row (0 for a batch of empty rows). */
  readonly maxLength: number;
  inputIds: Tensor; // (T) int64
  tokenTypeIds: Tensor; // (T) int64
  positionIds: Tensor; // (T) int64, 0 … len-1 within each segment
  segmentIds: Tensor; // (T) int64, the input row of each token
  readonly chunks: readonly AttentionChunk[];
  /** The device the tensors are on. */
  readonly device: Device;
}

export function isPacked(x: unknown): x is PackedSequences {
  return typeof x === "object" && x !== null && (x as { packed?: unknown }).packed === true;
}

/**
 * Packs token rows: sorts them longest first, lays their tokens end to end and plans the attention chunks.
 * The tensors are created in the caller's scope (tidy disposes them with the rest).
 */
export function packRows(rows: readonly TokenRow[], options: PackOptions = {}): PackedSequences {
  const device = options.device ?? "cpu";
  const maskDtype = options.maskDtype ?? "float32";
  const maskMin = FINFO_MIN[maskDtype];
  if (maskMin === undefined) throw new TypeError(`packRows: ${maskDtype} is not a floating dtype`);
  const batchSize = rows.length;
  const lengths = Int32Array.from(rows, (r) => r.ids.length);
  rows.forEach((r, i) => {
    if (r.typeIds && r.typeIds.length !== r.ids.length)
      throw new RangeError(`packRows: row ${i} has ${r.ids.length} ids but ${r.typeIds.length} type ids`);
  });
  const order = Int32Array.from(
    Array.from({ length: batchSize }, (_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b),
  );
  const cuSeqlens = new Int32Array(batchSize + 1);
  for (let k = 0; k < batchSize; k++) cuSeqlens[k + 1] = cuSeqlens[k]! + lengths[order[k]!]!;
  const total = cuSeqlens[batchSize]!;
  const starts = new Int32Array(batchSize);
  const ids = new BigInt64Array(total);
  const types = new BigInt64Array(total);
  const positions = new BigInt64Array(total);
  const segments = new BigInt64Array(total);
  for (let k = 0; k < batchSize; k++) {
    const r = order[k]!;
    const row = rows[r]!;
    const s = cuSeqlens[k]!;
    starts[r] = s;
    for (let j = 0; j < row.ids.length; j++) {
      ids[s + j] = BigInt(row.ids[j]!);
      types[s + j] = BigInt(row.typeIds ? row.typeIds[j]! : 0);
      positions[s + j] = BigInt(j);
      segments[s + j] = BigInt(r);
    }
  }
  // Chunks over the non-empty segments (empty ones come last in the sorted order and take no part).
  let nonEmpty = 0;
  while (nonEmpty < batchSize && lengths[order[nonEmpty]!]! > 0) nonEmpty++;
  const sorted = Array.from({ length: nonEmpty }, (_, k) => lengths[order[k]!]!);
  const heads = options.numHeads;
  const scoreBytes = maskDtype === "float64" ? 8 : maskDtype === "float32" ? 4 : 2;
  const maxRows =
    heads && !device.startsWith("cuda")
      ? (L: number) => Math.floor(HEAP_BLOCK_BYTES / (heads * L * L * scoreBytes))
      : undefined;
  const ends = planChunks(
    sorted,
    options.chunkOverhead ?? defaultChunkOverhead(device, options.hiddenSize),
    maxRows,
  );
  const chunks: AttentionChunk[] = [];
  let first = 0;
  for (const end of ends) {
    const rowsN = end - first;
    const L = sorted[first]!;
    const start = cuSeqlens[first]!;
    const tokens = cuSeqlens[end]! - start;
    if (tokens === rowsN * L) {
      chunks.push({ start, tokens, rows: rowsN, length: L, gather: null, mask: null, scatter: null });
    } else {
      const gather = new BigInt64Array(rowsN * L);
      const scatter = new BigInt64Array(tokens);
      const mask = new Float32Array(rowsN * L);
      let t = 0;
      for (let i = 0; i < rowsN; i++) {
        const segStart = cuSeqlens[first + i]!;
        const len = sorted[first + i]!;
        for (let j = 0; j < L; j++) {
          // A padded slot reads its row's first token: any valid index does, its key is masked and its
          // query's output is dropped by the scatter.
          gather[i * L + j] = BigInt(j < len ? segStart + j : segStart);
          if (j < len) scatter[t++] = BigInt(i * L + j);
          else mask[i * L + j] = maskMin;
        }
      }
      chunks.push({
        start,
        tokens,
        rows: rowsN,
        length: L,
        gather: tensor(gather, { device }),
        mask: tensor(mask, { shape: [rowsN, 1, 1, L], dtype: maskDtype, device }),
        scatter: tensor(scatter, { device }),
      });
    }
    first = end;
  }
  return {
    packed: true,
    batchSize,
    totalTokens: total,
    lengths,
    order,
    starts,
    cuSeqlens,
    maxLength: batchSize > 0 ? lengths[order[0]!]! : 0,
    inputIds: tensor(ids, { device }),
    tokenTypeIds: tensor(types, { device }),
    positionIds: tensor(positions, { device }),
    segmentIds: tensor(segments, { device }),
    chunks,
    device,
  };
}

/** Every tensor a packed batch holds (to keep or dispose them together). */
export function packedTensors(p: PackedSequences): Tensor[] {
  const out = [p.inputIds, p.tokenTypeIds, p.positionIds, p.segmentIds];
  for (const c of p.chunks) for (const t of [c.gather, c.mask, c.scatter]) if (t) out.push(t);
  return out;
}

/** Token slots computed by the packed layout (T) and by a padded batch of the same rows (B × longest). */
export function tokenSlots(lengths: ArrayLike<number>): { packed: number; padded: number } {
  let packed = 0;
  let longest = 0;
  for (let i = 0; i < lengths.length; i++) {
    packed += lengths[i]!;
    longest = Math.max(longest, lengths[i]!);
  }
  return { packed, padded: lengths.length * longest };
}

/**
 * Multi-head self-attention over packed q, k, v (T, nh·hd) -> (T, nh·hd): softmax(q kᵀ/√hd) v within each
 * segment only, run chunk by chunk on padded blocks (rows, nh, length, hd) with the chunk's key mask.
 * dropoutP is applied to the attention probabilities as given (0 outside training).
 */
export function packedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  p: PackedSequences,
  numHeads: number,
  dropoutP = 0,
): Tensor {
  const width = q.size(1);
  const hd = width / numHeads;
  if (p.totalTokens === 0) return v.narrow(0, 0, 0); // (0, nh·hd): a batch of empty rows
  const outs: Tensor[] = [];
  for (const c of p.chunks) {
    const block = (x: Tensor) =>
      (c.gather ? x.indexSelect(0, c.gather) : x.narrow(0, c.start, c.tokens)) // (rows·L, nh·hd)
        .view([c.rows, c.length, numHeads, hd])
        .transpose(1, 2); // (rows, nh, L, hd)
    const o = scaledDotProductAttention(block(q), block(k), block(v), { mask: c.mask, dropoutP }); // (rows, nh, L, hd)
    const flat = o.transpose(1, 2).reshape([c.rows * c.length, width]); // (rows·L, nh·hd)
    outs.push(c.scatter ? flat.indexSelect(0, c.scatter) : flat); // (tokens, nh·hd)
  }
  return outs.length === 1 ? outs[0]! : cat(outs, 0); // (T, nh·hd) in packed order
}

/**
 * Packed per-token values (T, H) back into a padded batch (B, L, H) in input order, zeros at padding (for
 * tests and for callers that want the padded last hidden state).
 */
export function unpack(x: Tensor, p: PackedSequences, seqLen = p.maxLength): Tensor {
  const h = x.size(1);
  const index = new BigInt64Array(p.batchSize * seqLen);
  const keepMask = new Float32Array(p.batchSize * seqLen);
  for (let r = 0; r < p.batchSize; r++) {
    for (let j = 0; j < seqLen; j++) {
      if (j < p.lengths[r]!) {
        index[r * seqLen + j] = BigInt(p.starts[r]! + j);
        keepMask[r * seqLen + j] = 1;
      }
    }
  }
  if (p.totalTokens === 0) return zeros([p.batchSize, seqLen, h], { dtype: x.dtype, device: x.device });
  const rows = x.indexSelect(0, tensor(index, { device: p.device })); // (B·L, H)
  const m = tensor(keepMask, { shape: [p.batchSize * seqLen, 1], dtype: x.dtype, device: p.device });
  return rows.mul(m).view([p.batchSize, seqLen, h]); // (B, L, H)
}
