// Typed access to the parts of @huggingface/tokenizers 0.2.0 that this folder uses.
//
// Why this file: the package ships types/index.d.ts, but its declaration files import each other without file
// extensions ("./core/Tokenizer"), which `moduleResolution: NodeNext` does not resolve inside an ESM package.
// With skipLibCheck on, every export then silently types as `any` (and BertNormalizer is not found at all).
// Rather than spread `any` through the code, we declare the surface we rely on, copied from the package's own
// .d.ts (types/core/Tokenizer.d.ts, Normalizer.d.ts, PreTokenizer.d.ts, PostProcessor.d.ts), and cast the
// runtime exports to it once, here.

import * as lib from "@huggingface/tokenizers";

/** A normalizer object: callable (`n(text)`), with `normalize(text)` and its constructor's `config`. */
export interface LibNormalizer {
  (text: string): string;
  config: Record<string, unknown>;
  normalize(text: string): string;
}

/** A pre-tokenizer object: callable (`p(text)`), splitting text into words via `pre_tokenize_text`. */
export interface LibPreTokenizer {
  (text: string | string[], options?: object): string[];
  pre_tokenize_text(text: string, options?: object): string[];
}

/** Output of a post-processor: the token strings with specials added, and their token type ids. */
export interface LibPostProcessed {
  tokens: string[];
  token_type_ids?: number[];
}

/** The post-processor's call signature (tokens of text A, tokens of text B or null, add specials). */
export type LibPostProcessor = (
  tokens: string[],
  pair: string[] | null,
  addSpecialTokens: boolean,
) => LibPostProcessed;

/** The Tokenizer class of the package (core/Tokenizer.d.ts), the members we call. */
export interface LibTokenizer {
  normalizer: LibNormalizer | null;
  pre_tokenizer: LibPreTokenizer | null;
  post_processor: LibPostProcessor | null;
  model: { unk_token_id?: number } | null;
  encode(
    text: string,
    options?: { text_pair?: string | null; add_special_tokens?: boolean },
  ): { ids: number[] };
  tokenize(text: string, options?: { add_special_tokens?: boolean }): string[];
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

type LibExports = {
  /** `new Tokenizer(tokenizerJson, tokenizerConfig)`; throws when tokenizer.json lacks a required key. */
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => LibTokenizer;
  BertNormalizer: new (config: object) => LibNormalizer;
  BertPreTokenizer: new () => LibPreTokenizer;
};

const exported = lib as unknown as LibExports;

/** The package's Tokenizer class. */
export const Tokenizer = exported.Tokenizer;
/** The package's BertNormalizer class (subclassed in rust_bert.ts). */
export const BertNormalizer = exported.BertNormalizer;
/** The package's BertPreTokenizer class (subclassed in rust_bert.ts). */
export const BertPreTokenizer = exported.BertPreTokenizer;

/** A Sequence normalizer keeps its members here (core/normalizer/Sequence.d.ts). */
export function sequenceMembers(n: LibNormalizer): (LibNormalizer | null)[] | null {
  const members = (n as unknown as { normalizers?: unknown }).normalizers;
  return Array.isArray(members) ? (members as (LibNormalizer | null)[]) : null;
}
