// HF's additive attention masks (padding keys get the dtype's lowest value), shared by every encoder.
import { tidy, type DType, type Tensor } from "../engine/index.ts";

/** Additive attention mask: 0 where the key is kept, the dtype's lowest value where it is padding. */
const FINFO_MIN: Readonly<Partial<Record<DType, number>>> = {
  float32: -3.4028234663852886e38,
  float64: -Number.MAX_VALUE,
  float16: -65504,
  bfloat16: -3.3895313892515355e38,
};

/**
 * (B, L) 1/0 mask -> (B, 1, 1, L) additive float mask, as HF `ModuleUtilsMixin.get_extended_attention_mask`:
 * `(1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min`.
 */
export function getExtendedAttentionMask(attentionMask: Tensor, dtype: DType): Tensor {
  const min = FINFO_MIN[dtype];
  if (min === undefined) throw new TypeError(`attention mask: ${dtype} is not a floating dtype`);
  return tidy(() => {
    const [b, l] = [attentionMask.size(0), attentionMask.size(1)];
    const extended = attentionMask.reshape([b, 1, 1, l]).to(dtype); // (B, 1, 1, L)
    return extended.rsub(1).mul(min); // (B, 1, 1, L)
  });
}

/** torch.finfo(dtype).min, the value HF's additive masks put on masked keys. */
export function finfoMin(dtype: DType): number {
  const min = FINFO_MIN[dtype];
  if (min === undefined) throw new TypeError(`attention mask: ${dtype} is not a floating dtype`);
  return min;
}
