// Keeps a float copy of the embeddings the IR evaluator computes, so that the dim × precision evaluation
// (quantized-eval.ts) reuses the ONE encode of the float evaluation instead of running the model again. It
// wraps the model as a TextEmbedder: the evaluator does not change, and needs no hook.
import type { Tensor } from "../engine/index.ts";
import type { TextEmbedder } from "./ir-evaluator.ts";
import { floatMatrix, type FloatMatrix } from "./quantize.ts";

export interface CapturedEncode {
  /** The texts array the evaluator passed (the evaluator's own queryTexts / corpusTexts). */
  readonly texts: readonly string[];
  readonly embeddings: FloatMatrix;
}

/** A TextEmbedder that forwards to `model` and records each encodeTensor result as a float32 matrix. */
export class CapturingEmbedder implements TextEmbedder {
  readonly captured: CapturedEncode[] = [];

  constructor(private readonly model: TextEmbedder) {}

  get embeddingDim(): number {
    return this.model.embeddingDim;
  }

  encodeTensor(
    texts: readonly string[],
    options: { batchSize: number; prompt?: string; progress?: string },
  ): Tensor {
    const t = this.model.encodeTensor(texts, options); // (N, D)
    const f = t.float(); // (N, D) float32 copy on the same device (bf16/f16 models)
    try {
      const [rows, dim] = t.shape as [number, number];
      this.captured.push({ texts, embeddings: floatMatrix(f.toArray() as Float32Array, rows, dim) });
    } finally {
      if (f !== t) f.dispose();
    }
    return t;
  }

  /**
   * The embeddings of the call that encoded exactly `texts` (the same array, or else equal contents), e.g. the
   * evaluator's `queryTexts`.
   * @throws if no captured call encoded those texts
   */
  embeddingsOf(texts: readonly string[], what: string): FloatMatrix {
    const hit =
      this.captured.find((c) => c.texts === texts) ??
      this.captured.find((c) => c.texts.length === texts.length && c.texts.every((s, i) => s === texts[i]));
    if (!hit)
      throw new Error(`no embeddings of the ${what} were captured (the evaluator did not encode them)`);
    return hit.embeddings;
  }
}
