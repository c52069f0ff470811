// The query / corpus prompt flags of train and eval (mine-negatives has the same four), and their resolution
// as sentence-transformers' encode_query / encode_document do it: a text given wins, then a prompt name, then
// the model's own "query" prompt (for the corpus its "document", "passage" or "corpus" prompt), then its
// default prompt. A model trained with prompts saves them as "query" and "document", so loading it later
// (eval, encode --as, mine-negatives) uses them without flags.
import type { SentenceTransformer } from "../models/sentence-transformer.ts";
import { UsageError, type OptionTable } from "./args.ts";

export const PROMPT_OPTIONS: OptionTable = {
  "query-prompt": {
    type: "string",
    arg: "TEXT",
    help: 'prepended to queries (anchors), e.g. "query: " or bge\'s instruction (default: the model\'s "query" prompt, if any)',
  },
  "query-prompt-name": { type: "string", arg: "NAME", help: "one of the model's prompts for queries" },
  "corpus-prompt": {
    type: "string",
    arg: "TEXT",
    help: 'prepended to passages (positives, negatives, the corpus), e.g. "passage: " (default: the model\'s "document"/"passage"/"corpus" prompt, if any)',
  },
  "corpus-prompt-name": { type: "string", arg: "NAME", help: "one of the model's prompts for passages" },
};

export interface SidePrompts {
  /** "" when none. */
  query: string;
  corpus: string;
}

/** The prompts of both sides from the flags and the model's own prompts; a prompt name the model lacks fails. */
export function resolvePrompts(
  model: Pick<SentenceTransformer, "sidePrompt">,
  values: Record<string, unknown>,
): SidePrompts {
  const side = (flag: "query" | "corpus"): string => {
    const text = values[`${flag}-prompt`];
    const name = values[`${flag}-prompt-name`];
    if (text !== undefined && name !== undefined)
      throw new UsageError(`give --${flag}-prompt or --${flag}-prompt-name, not both`);
    try {
      return model.sidePrompt(flag === "query" ? "query" : "document", {
        ...(typeof text === "string" ? { prompt: text } : {}),
        ...(typeof name === "string" ? { promptName: name } : {}),
      });
    } catch (e) {
      throw new UsageError(`--${flag}-prompt-name: ${(e as Error).message}`);
    }
  };
  return { query: side("query"), corpus: side("corpus") };
}
