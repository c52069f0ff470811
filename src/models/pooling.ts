// The parameter-free sentence-transformers modules: Pooling (token embeddings -> one vector per text) and
// Normalize (L2). Dense, which has weights, is in dense.ts.
//
// ports sentence_transformers@cad21198 (6.1.0.dev0) sentence_transformer/modules/pooling.py
// (Pooling.forward, _exclude_prompt_from_mask, _forward_padded) and base/modules/normalize.py.
// Where 6.x and 5.x (sentence_transformers@dfcbbd93 models/Pooling.py) differ, this follows 6.x:
//  - cls takes the first attended token (argmax of the mask), so left padding and an excluded prompt are
//    skipped; 5.x always takes position 0. The same for right-padded texts without prompt exclusion.
//  - max fills masked positions with -inf; 5.x wrote -1e9 into the (shared!) token embeddings. The same
//    unless a text has no attended token at all (then 6.x gives -inf, 5.x -1e9).
//  - the prompt is excluded after any left padding; 5.x zeroed the first promptLength positions. The same for
//    right padding.
//  - modes concatenate in the configured order (5.x: always cls, max, mean, mean_sqrt_len, weightedmean,
//    lasttoken, which is also the only order the 5.x config file can express).
import { arange, cat, full, tensor, tidy, zeros, type Tensor } from "../engine/index.ts";
import { Module } from "../nn/index.ts";
import { POOLING_MODES, type PoolingConfig, type PoolingMode } from "./st-folder.ts";
import type { PackedSequences } from "./packed.ts";

/** F.normalize's default eps: x / max(‖x‖, eps). */
export const NORMALIZE_EPS = 1e-12;
/** torch.clamp(count, min=1e-9) in mean pooling, so an all-padding row divides by 1e-9 (giving zeros). */
export const MEAN_COUNT_MIN = 1e-9;

export interface PoolingForwardOptions {
  /**
   * Number of prompt tokens at the start of every text: ST's `prompt_length`, the prompt tokenized alone with
   * special tokens, minus a trailing special token (so for BERT it counts [CLS] and not [SEP]; ST 6
   * Transformer._get_prompt_length). Only used when the config has includePrompt=false.
   */
  promptLength?: number;
}

function checkShapes(tokenEmbeddings: Tensor, attentionMask: Tensor): [number, number, number] {
  const s = tokenEmbeddings.shape;
  const m = attentionMask.shape;
  if (s.length !== 3 || m.length !== 2 || m[0] !== s[0] || m[1] !== s[1]) {
    throw new Error(
      `Pooling: expected token embeddings (B, L, H) and an attention mask (B, L), got [${s.join(", ")}] and [${m.join(", ")}]`,
    );
  }
  return s as [number, number, number];
}

/**
 * Index of the first attended token of each row (B), 0 for a row with none: ST's `mask.argmax(dim=1)`, computed
 * from values (no reliance on argmax's tie-breaking). mask: (B, L) int64 of 0/1.
 */
function firstAttended(mask: Tensor, seqLen: number): Tensor {
  const rev = arange(seqLen, 0, -1, { device: mask.device }); // (L): L, L-1, …, 1
  const [m] = mask.mul(rev).maxDim(1); // (B): L - first index, or 0 when the row is all padding
  return m.rsub(seqLen).mul(m.gt(0).to("int64")); // (B)
}

/**
 * Index of the last attended token of each row (B), 0 for a row with none: what ST's `mask.flip(1).max(1)` +
 * `where(values == 0, L - 1, …)` + `L - index - 1` yields, computed from values.
 */
function lastAttended(mask: Tensor, seqLen: number): Tensor {
  const pos = arange(0, seqLen, 1, { device: mask.device }); // (L): 0 … L-1
  return mask.mul(pos).maxDim(1)[0]; // (B)
}

/** Rows of x (B, L, H) at one position per row (B) -> (B, H). */
function gatherRows(x: Tensor, index: Tensor): Tensor {
  const [b, , h] = x.shape as [number, number, number];
  return x.gather(1, index.view([b, 1, 1]).expand([b, 1, h])).squeeze(1); // (B, H)
}

/**
 * The mask with the prompt left out: every position before (first attended token + promptLength) set to 0,
 * which covers right padding (first attended = 0) and left padding alike (ST 6 `_exclude_prompt_from_mask`).
 * Returns a new (B, L) int64 mask; the input is not modified.
 */
export function excludePromptFromMask(attentionMask: Tensor, promptLength: number): Tensor {
  if (!Number.isSafeInteger(promptLength) || promptLength < 0)
    throw new RangeError(
      `excludePromptFromMask: promptLength must be a non-negative integer, got ${promptLength}`,
    );
  return tidy(() => {
    const mask = attentionMask.to("int64"); // (B, L)
    const seqLen = mask.size(1);
    const start = firstAttended(mask, seqLen).add(promptLength).unsqueeze(1); // (B, 1)
    const positions = arange(0, seqLen, 1, { device: mask.device }).unsqueeze(0); // (1, L)
    return mask.maskedFill(positions.lt(start), 0); // (B, L)
  });
}

/** One pooling mode over embeddings x (B, L, H) with an attention mask (B, L; any dtype, 0 = padding) -> (B, H). */
export function poolOne(mode: PoolingMode, x: Tensor, mask: Tensor): Tensor {
  return tidy(() => {
    const [, seqLen] = checkShapes(x, mask);
    const maskI = mask.to("int64"); // (B, L)
    const maskF = maskI.to(x.dtype).unsqueeze(-1).expand(x.shape); // (B, L, H), ST's input_mask_expanded
    switch (mode) {
      case "cls":
        return gatherRows(x, firstAttended(maskI, seqLen)); // (B, H)
      case "max":
        return x.maskedFill(maskF.eq(0), -Infinity).maxDim(1)[0]; // (B, H)
      case "mean":
      case "mean_sqrt_len_tokens": {
        const sum = x.mul(maskF).sum(1); // (B, H)
        const count = maskF.sum(1).clampMin(MEAN_COUNT_MIN); // (B, H), every column the row's token count
        return mode === "mean" ? sum.div(count) : sum.div(count.sqrt()); // (B, H)
      }
      case "weightedmean": {
        // Position weights 1 … L (absolute positions, so left padding shifts them, as in ST).
        const weights = arange(1, seqLen + 1, 1, { dtype: x.dtype, device: x.device }).view([1, seqLen, 1]);
        const weightedMask = maskF.mul(weights); // (B, L, H)
        const sum = x.mul(weightedMask).sum(1); // (B, H)
        return sum.div(weightedMask.sum(1).clampMin(MEAN_COUNT_MIN)); // (B, H)
      }
      case "lasttoken":
        // Gathered from the masked embeddings: a row with no attended token gives zeros.
        return gatherRows(x.mul(maskF), lastAttended(maskI, seqLen)); // (B, H)
    }
  });
}

/**
 * One pooling mode over packed token embeddings x (T, H) -> (B, H) in input order, with no padded tensor:
 * gathers for cls / lasttoken, index_add for the means, scatter_reduce(amax) for max. `promptLength` (or 0)
 * tokens at the start of every segment are left out, which is what excludePromptFromMask does to a
 * right-padded mask. Matches poolOne on the padded batch of the same rows (up to summation order), including
 * its values for a row with no token left: cls takes the row's first token, lasttoken and the means give
 * zeros, max gives −inf.
 */
export function poolOnePacked(mode: PoolingMode, x: Tensor, p: PackedSequences, promptLength = 0): Tensor {
  return tidy(() => {
    const b = p.batchSize;
    const h = x.size(1);
    const device = x.device;
    const o = { dtype: x.dtype, device };
    // Tokens pooled per row: those at positions >= promptLength.
    const kept = Float64Array.from(p.lengths, (l) => Math.max(l - promptLength, 0));
    const pick = (index: Int32Array, valid: (r: number) => boolean): Tensor => {
      if (p.totalTokens === 0) return zeros([b, h], o); // (B, H)
      const rows = x.indexSelect(
        0,
        tensor(
          BigInt64Array.from(index, (i) => BigInt(i)),
          { device },
        ),
      ); // (B, H)
      if (Array.from({ length: b }, (_, r) => valid(r)).every(Boolean)) return rows;
      const m = Float32Array.from({ length: b }, (_, r) => (valid(r) ? 1 : 0));
      return rows.mul(tensor(m, { shape: [b, 1], ...o })); // (B, H)
    };
    // Per-token weight (T, 1), or null when every token counts with weight 1.
    const tokenWeights = (weight: (position: number) => number, always: boolean): Tensor | null => {
      if (always && promptLength === 0) return null;
      const w = new Float32Array(p.totalTokens);
      for (let r = 0; r < b; r++)
        for (let j = promptLength; j < p.lengths[r]!; j++) w[p.starts[r]! + j] = weight(j);
      return tensor(w, { shape: [p.totalTokens, 1], ...o });
    };
    const segmentSum = (w: Tensor | null): Tensor =>
      zeros([b, h], o).indexAdd(0, p.segmentIds, w ? x.mul(w) : x); // (B, H)
    switch (mode) {
      case "cls": {
        // ST's first attended token; a row with none left takes position 0 (its first token), as argmax does.
        const index = Int32Array.from(p.starts, (s, r) => (kept[r]! > 0 ? s + promptLength : s));
        return pick(index, (r) => p.lengths[r]! > 0);
      }
      case "lasttoken": {
        const index = Int32Array.from(p.starts, (s, r) => s + Math.max(p.lengths[r]! - 1, 0));
        return pick(index, (r) => kept[r]! > 0);
      }
      case "max": {
        const init = full([b, h], -Infinity, o); // (B, H): a row with no token stays −inf, as ST 6
        if (p.totalTokens === 0) return init;
        let src = x;
        let seg = p.segmentIds;
        if (promptLength > 0) {
          const keepIdx: bigint[] = [];
          for (let r = 0; r < b; r++)
            for (let j = promptLength; j < p.lengths[r]!; j++) keepIdx.push(BigInt(p.starts[r]! + j));
          const idx = tensor(BigInt64Array.from(keepIdx), { device });
          src = x.indexSelect(0, idx); // (T', H)
          seg = seg.indexSelect(0, idx); // (T')
        }
        const index = seg.unsqueeze(1).expand([src.size(0), h]); // (T', H)
        return init.scatterReduce(0, index, src, "amax", true); // (B, H)
      }
      case "mean":
      case "mean_sqrt_len_tokens": {
        const sum = segmentSum(tokenWeights(() => 1, true)); // (B, H)
        const count = tensor(Float32Array.from(kept), { shape: [b, 1], ...o }).clampMin(MEAN_COUNT_MIN); // (B, 1)
        return mode === "mean" ? sum.div(count) : sum.div(count.sqrt()); // (B, H)
      }
      case "weightedmean": {
        // Position weights 1 … L within each segment (ST's absolute positions of a right-padded row).
        const w = tokenWeights((j) => j + 1, false)!; // (T, 1)
        const total = Float32Array.from({ length: b }, (_, r) => {
          let t = 0;
          for (let j = promptLength; j < p.lengths[r]!; j++) t += j + 1;
          return t;
        });
        const denom = tensor(total, { shape: [b, 1], ...o }).clampMin(MEAN_COUNT_MIN); // (B, 1)
        return segmentSum(w).div(denom); // (B, H)
      }
    }
  });
}

/**
 * sentence-transformers' Pooling module: token embeddings (B, L, H) and the attention mask (B, L) -> the
 * sentence embedding (B, modes.length × H), the modes' vectors concatenated in config order.
 */
export class Pooling extends Module {
  constructor(readonly config: PoolingConfig) {
    super(null);
    if (config.modes.length === 0) throw new Error("Pooling: no pooling mode");
    // The same rules as a folder's pooling config (st-folder.ts): known modes, each once (a repeated mode only
    // multiplies the embedding width), a positive integer dimension.
    const seen = new Set<string>();
    for (const mode of config.modes) {
      if (!(POOLING_MODES as readonly string[]).includes(mode))
        throw new Error(
          `Pooling: unknown pooling mode ${JSON.stringify(mode)}; valid: ${POOLING_MODES.join(", ")}`,
        );
      if (seen.has(mode)) throw new Error(`Pooling: duplicate pooling mode "${mode}"`);
      seen.add(mode);
    }
    if (!Number.isSafeInteger(config.embeddingDimension) || config.embeddingDimension < 1)
      throw new Error(
        `Pooling: embedding dimension must be a positive integer, got ${config.embeddingDimension}`,
      );
  }

  /** Width of the output: modes.length × embeddingDimension. */
  get outputDimension(): number {
    return this.config.modes.length * this.config.embeddingDimension;
  }

  /**
   * Pools `tokenEmbeddings` (B, L, H) over the tokens the mask (B, L; any dtype, 0 = padding) marks; without a
   * mask every token counts. With includePrompt=false and a promptLength, the prompt's tokens are excluded.
   */
  forward(
    tokenEmbeddings: Tensor,
    attentionMask?: Tensor | null,
    options: PoolingForwardOptions = {},
  ): Tensor {
    return tidy(() => {
      let mask =
        attentionMask ??
        full(tokenEmbeddings.shape.slice(0, 2), 1, { dtype: "int64", device: tokenEmbeddings.device });
      checkShapes(tokenEmbeddings, mask);
      if (!this.config.includePrompt && options.promptLength !== undefined)
        mask = excludePromptFromMask(mask, options.promptLength); // (B, L)
      const parts = this.config.modes.map((mode) => poolOne(mode, tokenEmbeddings, mask)); // each (B, H)
      return parts.length === 1 ? parts[0]! : cat(parts, -1); // (B, modes × H)
    });
  }

  /**
   * Pools packed token embeddings (T, H) per segment -> (B, modes × H) in input order; the same options and
   * the same values as forward on the padded batch of the same rows.
   */
  forwardPacked(
    tokenEmbeddings: Tensor,
    packed: PackedSequences,
    options: PoolingForwardOptions = {},
  ): Tensor {
    return tidy(() => {
      if (tokenEmbeddings.ndim !== 2 || tokenEmbeddings.size(0) !== packed.totalTokens)
        throw new Error(
          `Pooling: expected packed token embeddings (${packed.totalTokens}, H), got [${tokenEmbeddings.shape.join(", ")}]`,
        );
      const promptLength = !this.config.includePrompt ? (options.promptLength ?? 0) : 0;
      const parts = this.config.modes.map((mode) =>
        poolOnePacked(mode, tokenEmbeddings, packed, promptLength),
      ); // each (B, H)
      return parts.length === 1 ? parts[0]! : cat(parts, -1); // (B, modes × H)
    });
  }
}

/** sentence-transformers' Normalize module: x / max(‖x‖₂, 1e-12) along the last dim (F.normalize). */
export class Normalize extends Module {
  constructor() {
    super(null);
  }

  forward(x: Tensor): Tensor {
    return x.normalize(-1, NORMALIZE_EPS); // (B, D)
  }
}
