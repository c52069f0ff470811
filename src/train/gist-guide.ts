// The guide model of --loss gist / cached-gist (GISTEmbedLoss): checked against the arguments when a run is
// planned, and run on every micro-batch to give the loss its context. The guide only embeds — eval mode, no
// autograd, never updated — and its embeddings only build the false-negative masks.
//
// ports sentence_transformers@85ec6455 losses/GISTEmbedLoss.py#forward (the guide re-encodes the same features
// under torch.no_grad()) and losses/CachedGISTEmbedLoss.py (the guide's passes in mini-batches).
import type { Tensor } from "../engine/index.ts";
import type { LossContext } from "../losses/index.ts";
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import { isGistLoss, type TrainingArguments } from "./args.ts";

/** The guide model of a gist loss, checked against the arguments: present exactly when the loss needs it. */
export function guideOf(inputs: {
  args: TrainingArguments;
  model: SentenceTransformer;
  guide?: SentenceTransformer | undefined;
}): SentenceTransformer | null {
  const { args, guide, model } = inputs;
  if (!isGistLoss(args.loss)) {
    if (guide) throw new Error(`train: a guide model was given, but --loss ${args.loss} does not use one`);
    return null;
  }
  if (!guide)
    throw new Error(
      `train: --loss ${args.loss} needs the guide model ${args.guideModel ?? ""} (TrainInputs.guide)`,
    );
  if (guide.device !== model.device)
    throw new Error(
      `train: the guide model is on ${guide.device}, the trained model on ${model.device}: load the guide on the model's device`,
    );
  return guide;
}

/**
 * The guide's embeddings of a micro-batch's columns (each (B, Dg), float32, no autograd: encodeTensor runs the
 * guide in eval mode under noGrad), from the same texts the model embeds (anchors with the query prompt,
 * passages with the corpus prompt). `batchSize` bounds the guide's passes (default: the whole column). The
 * caller disposes them.
 */
export function guideContext(
  guide: SentenceTransformer,
  batchColumns: readonly (readonly string[])[],
  batchSize?: number,
): LossContext {
  const guideEmbeddings: Tensor[] = [];
  try {
    for (const texts of batchColumns)
      guideEmbeddings.push(guide.encodeTensor(texts, { batchSize: batchSize ?? Math.max(1, texts.length) })); // (B, Dg)
  } catch (e) {
    for (const t of guideEmbeddings) t.dispose();
    throw e;
  }
  return { guideEmbeddings };
}
