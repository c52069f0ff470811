// The tokenizer layer: HF tokenizer folders (tokenizer.json or vocab.txt) → padded int64 batches. Depends on
// nothing else in src/ (see eslint.config.js).
export { HfTokenizer } from "./tokenizer.ts";
export type { EncodeBatchOptions, EncodedBatch, TokenizerFilePaths, TokenizerOrigin } from "./tokenizer.ts";
export { bertNormalize, isChineseChar } from "./rust_bert.ts";
export type { SpecialTokens, TokenizerConfigJson, TokenizerJson } from "./hf_json.ts";
