// HfTokenizer: the tokenizer of a BERT-family sentence-transformers model (bge, MiniLM, e5, gte).
//
// One implementation for both kinds of folder: a tokenizer.json runs through @huggingface/tokenizers (the
// tokenizer code of transformers.js) as is; a folder with only vocab.txt first becomes the tokenizer.json
// that transformers would convert it to (hf_json.ts bertTokenizerJson) and then takes the same road. The
// library's BertNormalizer and BertPreTokenizer are swapped for the Rust rules (rust_bert.ts) so that ids
// match HF `tokenizers`.
//
// What the library does not do, and we do here, as HF does for `tokenizer(texts, padding=True,
// truncation=True, max_length=L)` (sentence-transformers' Transformer.tokenize):
//   - truncation: the content tokens are cut so that content + special tokens <= L; [CLS] and [SEP] stay;
//   - padding: right-padding with the pad id to the longest row of the batch (optionally rounded up to a
//     multiple, like HF's pad_to_multiple_of).
// The `truncation` and `padding` blocks of tokenizer.json (all-MiniLM-L6-v2 carries max_length 128 and
// Fixed(128)) are never applied: the caller chooses the length. The truncation length is exposed as
// `truncationMaxLength` for whoever resolves max_seq_length.

import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { isPlainObject, writeFileAtomic } from "../util/index.ts";
import { isPresentRegularFile, jsonSyntaxDetail, readRegularText } from "../util/read-file.ts";
import { installRustBert } from "./rust_bert.ts";
import { type LibTokenizer, Tokenizer } from "./lib.ts";
import {
  TokenizerRegexError,
  budgetError,
  budgetLibTokenizer,
  checkTokenizerRegexes,
  regexBudgetMs,
  withTimeBudget,
} from "./regex-guard.ts";
import {
  type SpecialTokens,
  type TokenizerConfigJson,
  type TokenizerJson,
  SPECIAL_TOKEN_KEYS,
  bertTokenizerJson,
  bertVocabOptions,
  parseVocabTxt,
  readJsonObject,
  reconcileBertNormalizer,
  serializeTokenizerJson,
  specialTokensMapText,
  specialTokensOf,
  tokenizerConfigText,
  vocabEntries,
} from "./hf_json.ts";

/** Options of {@link HfTokenizer.encodeBatch}. */
export interface EncodeBatchOptions {
  /** Longest row incl. special tokens (sentence-transformers' max_seq_length); >= numSpecialTokens. */
  maxLength: number;
  /** Round the padded length up to a multiple of this (HF pad_to_multiple_of; may then exceed maxLength). */
  padToMultipleOf?: number;
}

/**
 * A padded batch in flat row-major layout: element (i, j) of every matrix is at `i * seqLen + j`. The three
 * matrices are BigInt64Array so they copy straight into int64 (torch.long) tensors of shape [batchSize,
 * seqLen], which is what BERT's embedding lookup and HF's attention_mask expect. Row i holds `lengths[i]`
 * real tokens ([CLS] … [SEP]) followed by padding (id padTokenId, mask 0, type 0).
 */
export interface EncodedBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  batchSize: number;
  seqLen: number;
  /** Real (unpadded, post-truncation) length of each row. */
  lengths: Int32Array;
}

/** Which file a tokenizer came from. */
export type TokenizerOrigin = "tokenizer.json" | "vocab.txt";

/** Paths of the files of a tokenizer; give tokenizerJson or vocabTxt (tokenizerJson wins if both). */
export interface TokenizerFilePaths {
  tokenizerJson?: string;
  vocabTxt?: string;
  tokenizerConfig?: string;
  specialTokensMap?: string;
}

interface Init {
  json: TokenizerJson;
  /** The file's own text, kept for a byte-for-byte save; null when the object was built or changed. */
  jsonText: string | null;
  config: TokenizerConfigJson;
  origin: TokenizerOrigin;
  source: string;
}

// Truncation before tokenization (truncatedContentIds): a first prefix of (budget + margin) × 16 characters holds
// enough tokens for English and code (≈ 4–5 characters per WordPiece token); denser or sparser text grows it.
const PREFIX_CHARS_PER_TOKEN = 16;
const PREFIX_MARGIN_TOKENS = 8;

/**
 * Where to cut `text` near `at`: just before the last ASCII whitespace in (at/2, at], else before the first one
 * after `at`, else the text's end (one huge "word" is tokenized whole: cutting inside it could change its ids).
 */
function whitespaceCut(text: string, at: number): number {
  for (let i = at; i > at / 2; i--) if (isAsciiSpace(text.charCodeAt(i))) return i;
  const next = /[ \t\n\r\f\v]/g;
  next.lastIndex = at;
  return next.exec(text)?.index ?? text.length;
}

function isAsciiSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

// A token string no tokenizer produces, used to find where the post-processor puts the sequence.
const SEQUENCE_MARK = "\u0000ragtune:sequence\u0000";

export class HfTokenizer {
  /** The effective tokenizer.json object (what `save` writes). Do not mutate. */
  readonly json: TokenizerJson;
  /** The merged tokenizer_config.json (+ special_tokens_map.json) this tokenizer was loaded with. */
  readonly config: TokenizerConfigJson;
  readonly origin: TokenizerOrigin;
  /** The file (or "<memory>") this came from, for messages. */
  readonly source: string;
  readonly specialTokens: SpecialTokens;
  readonly padTokenId: number;
  readonly clsTokenId: number;
  readonly sepTokenId: number;
  readonly unkTokenId: number;
  readonly maskTokenId: number | null;
  /** Number of ids (highest id + 1 over the vocabulary and the added tokens): the embedding-table size. */
  readonly vocabSize: number;

  private readonly tok: LibTokenizer;
  private readonly jsonText: string | null;
  // Ids the post-processor puts before / after the text, and the token type of each, for one sequence.
  private readonly prefixIds: number[];
  private readonly suffixIds: number[];
  private readonly prefixTypes: number[];
  private readonly suffixTypes: number[];
  private readonly sequenceType: number;

  private constructor(init: Init) {
    this.json = init.json;
    this.jsonText = init.jsonText;
    this.config = init.config;
    this.origin = init.origin;
    this.source = init.source;
    // The library insists on these keys being present (null is fine); HF files always have them.
    const forLibrary = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...init.json,
    };
    forLibrary.added_tokens ??= [];
    // Untrusted regexes: refused at load when they backtrack exponentially, else timed (regex-guard.ts); the
    // constructor already runs the normalizer over the added tokens.
    const untrusted = checkTokenizerRegexes(init.json, init.source);
    const budgetMs = untrusted.length > 0 ? regexBudgetMs() : 0;
    try {
      this.tok =
        untrusted.length > 0
          ? withTimeBudget(
              () => new Tokenizer(forLibrary, init.config),
              budgetMs,
              () => budgetError(init.source, untrusted, budgetMs, "building the tokenizer"),
            )
          : new Tokenizer(forLibrary, init.config);
    } catch (e) {
      if (e instanceof TokenizerRegexError) throw e;
      throw new Error(`${init.source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    installRustBert(this.tok);
    budgetLibTokenizer(this.tok, untrusted, init.source, budgetMs);

    const idOf = (token: string): number => {
      const id = this.tok.token_to_id(token);
      if (id === undefined) throw new Error(`${init.source}: token "${token}" is not in the vocabulary`);
      return id;
    };
    const marked = this.tok.post_processor?.([SEQUENCE_MARK], null, true) ?? { tokens: [SEQUENCE_MARK] };
    const at = marked.tokens.indexOf(SEQUENCE_MARK);
    if (at < 0)
      throw new Error(`${init.source}: the post-processor drops the text; cannot place special tokens`);
    const types = marked.token_type_ids ?? marked.tokens.map(() => 0);
    this.prefixIds = marked.tokens.slice(0, at).map(idOf);
    this.suffixIds = marked.tokens.slice(at + 1).map(idOf);
    this.prefixTypes = types.slice(0, at);
    this.suffixTypes = types.slice(at + 1);
    this.sequenceType = types[at] ?? 0;

    this.specialTokens = specialTokensOf(init.config);
    const optionalId = (token: string) => this.tok.token_to_id(token) ?? null;
    const first = this.prefixIds[0];
    const last = this.suffixIds[this.suffixIds.length - 1];
    // Config names first; the post-processor template as fallback for tokenizers whose config is silent.
    this.clsTokenId = optionalId(this.specialTokens.cls_token) ?? first ?? idOf(this.specialTokens.cls_token);
    this.sepTokenId = optionalId(this.specialTokens.sep_token) ?? last ?? idOf(this.specialTokens.sep_token);
    this.unkTokenId = this.tok.model?.unk_token_id ?? idOf(this.specialTokens.unk_token);
    this.maskTokenId = optionalId(this.specialTokens.mask_token);
    const padFromJson = init.json.padding?.pad_id;
    this.padTokenId =
      optionalId(this.specialTokens.pad_token) ??
      (typeof padFromJson === "number" ? padFromJson : idOf(this.specialTokens.pad_token));

    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
  }

  /**
   * Loads the tokenizer of a model folder: tokenizer.json if present, else vocab.txt; tokenizer_config.json
   * and special_tokens_map.json when present. mirrors the file lookup of transformers AutoTokenizer for BERT.
   */
  static fromDir(dir: string): HfTokenizer {
    const isDir = existsSync(dir) && statSync(dir).isDirectory();
    const file = (name: string) => join(dir, name);
    // A FIFO, device or folder under one of these names is an error naming it, not "absent" (read-file.ts).
    const has = (name: string) => isDir && isPresentRegularFile(file(name));
    if (!has("tokenizer.json") && !has("vocab.txt")) {
      const why = isDir ? "neither exists" : "the folder does not exist";
      throw new Error(`No tokenizer in ${dir}: looked for tokenizer.json and vocab.txt (${why})`);
    }
    return HfTokenizer.fromFiles({
      tokenizerJson: has("tokenizer.json") ? file("tokenizer.json") : undefined,
      vocabTxt: has("vocab.txt") ? file("vocab.txt") : undefined,
      tokenizerConfig: has("tokenizer_config.json") ? file("tokenizer_config.json") : undefined,
      specialTokensMap: has("special_tokens_map.json") ? file("special_tokens_map.json") : undefined,
    });
  }

  /** Loads from explicit file paths (see {@link TokenizerFilePaths}). */
  static fromFiles(paths: TokenizerFilePaths): HfTokenizer {
    const config: TokenizerConfigJson = paths.tokenizerConfig
      ? readJsonObject(paths.tokenizerConfig).value
      : {};
    if (paths.specialTokensMap) {
      // transformers' _from_pretrained lets special_tokens_map.json override the config's special tokens.
      const map = readJsonObject(paths.specialTokensMap).value;
      for (const key of SPECIAL_TOKEN_KEYS) if (map[key] !== undefined) config[key] = map[key];
    }
    if (paths.tokenizerJson) {
      const text = readRegularText(paths.tokenizerJson, "tokenizer");
      return HfTokenizer.fromTokenizerJson(text, config, paths.tokenizerJson);
    }
    if (paths.vocabTxt)
      return HfTokenizer.fromVocab(readRegularText(paths.vocabTxt, "vocab"), config, paths.vocabTxt);
    throw new Error("HfTokenizer.fromFiles: give tokenizerJson or vocabTxt");
  }

  /**
   * From a tokenizer.json (text or parsed object) and an optional tokenizer_config.json object. Given as
   * text, it is what `save` writes back, byte for byte, unless tokenizer_config.json changed the normalizer.
   */
  static fromTokenizerJson(
    tokenizerJson: string | TokenizerJson,
    config: TokenizerConfigJson = {},
    source = "<memory>",
  ): HfTokenizer {
    let text = typeof tokenizerJson === "string" ? tokenizerJson : null;
    let json: TokenizerJson;
    if (typeof tokenizerJson === "string") {
      try {
        json = JSON.parse(tokenizerJson) as TokenizerJson;
      } catch (e) {
        throw new Error(`Malformed JSON in ${source}: ${jsonSyntaxDetail(e, tokenizerJson)}`);
      }
    } else {
      json = structuredClone(tokenizerJson);
    }
    if (!isPlainObject(json) || !isPlainObject(json.model)) {
      throw new Error(`${source}: not a tokenizer.json (no "model" object)`);
    }
    if (reconcileBertNormalizer(json, config)) text = null;
    return new HfTokenizer({ json, jsonText: text, config, origin: "tokenizer.json", source });
  }

  /** From the text of a vocab.txt (or its lines) and an optional tokenizer_config.json object. */
  static fromVocab(vocab: string | readonly string[], config: TokenizerConfigJson = {}, source = "<memory>") {
    const tokens = typeof vocab === "string" ? parseVocabTxt(vocab) : vocab;
    if (tokens.length === 0) throw new Error(`${source}: empty vocabulary`);
    const json = bertTokenizerJson(tokens, bertVocabOptions(config), source);
    return new HfTokenizer({ json, jsonText: null, config, origin: "vocab.txt", source });
  }

  /** Number of special tokens added around one text (2 for BERT: [CLS], [SEP]). */
  get numSpecialTokens(): number {
    return this.prefixIds.length + this.suffixIds.length;
  }

  /** Whether the normalizer lowercases (BertNormalizer.lowercase, else tokenizer_config do_lower_case). */
  get doLowerCase(): boolean {
    const n = this.json.normalizer;
    if (n?.type === "BertNormalizer") return n.lowercase !== false;
    return this.config.do_lower_case === true;
  }

  /** BertNormalizer.strip_accents: null means "same as lowercase". */
  get stripAccents(): boolean | null {
    const v = this.json.normalizer?.strip_accents;
    return typeof v === "boolean" ? v : null;
  }

  /** BertNormalizer.handle_chinese_chars. */
  get tokenizeChineseChars(): boolean {
    return this.json.normalizer?.handle_chinese_chars !== false;
  }

  /**
   * tokenizer_config.json `model_max_length`, or null when absent or "unknown": transformers writes int(1e30)
   * there when it knows no limit, so anything above 1e6 is treated as unknown.
   */
  get modelMaxLength(): number | null {
    const v = this.config.model_max_length;
    return typeof v === "number" && v > 0 && v <= 1e6 ? v : null;
  }

  /** `truncation.max_length` of tokenizer.json (all-MiniLM-L6-v2: 128) or null; never applied. */
  get truncationMaxLength(): number | null {
    const v = this.json.truncation?.max_length;
    return typeof v === "number" ? v : null;
  }

  /** Tokens of `text` without special tokens, untruncated (e.g. ["hello", "n", "##vid", "##ia"]). */
  tokenize(text: string): string[] {
    return this.tok.tokenize(text, { add_special_tokens: false });
  }

  /** Ids of `text` with special tokens ([CLS] … [SEP]), untruncated. */
  tokenIds(text: string): number[] {
    return [...this.prefixIds, ...this.contentIds(text), ...this.suffixIds];
  }

  /**
   * Length of {@link tokenIds}: HF's length without truncation (to flag long texts). With `maxLength`, the
   * length after truncation to it, min(length, maxLength), found without tokenizing all of a huge text (to
   * sort texts by the padded length they will have).
   */
  countTokens(text: string, maxLength?: number): number {
    if (maxLength === undefined) return this.contentIds(text).length + this.numSpecialTokens;
    const budget = Math.max(0, maxLength - this.numSpecialTokens);
    return Math.min(this.truncatedContentIds(text, budget).length + this.numSpecialTokens, maxLength);
  }

  /** Text of ids, special tokens dropped by default (WordPiece decoder: "##" joins, cleanup of spaces). */
  decode(ids: readonly number[], { skipSpecialTokens = true } = {}): string {
    if (ids.length === 0) return "";
    return this.tok.decode([...ids], { skip_special_tokens: skipSpecialTokens });
  }

  /** Token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Id of a token string (vocabulary or added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /**
   * Tokenizes, truncates and pads a batch, like HF `tokenizer(texts, padding=True, truncation=True,
   * max_length=maxLength, pad_to_multiple_of=...)`: each text keeps its first maxLength − numSpecialTokens
   * content tokens between [CLS] and [SEP]; rows are right-padded to the longest row of this batch.
   */
  encodeBatch(texts: readonly string[], opts: EncodeBatchOptions): EncodedBatch {
    const { maxLength, padToMultipleOf } = opts;
    if (!Number.isInteger(maxLength) || maxLength < this.numSpecialTokens) {
      throw new Error(
        `encodeBatch: maxLength must be an integer >= ${this.numSpecialTokens}, got ${maxLength}`,
      );
    }
    if (padToMultipleOf !== undefined && !(Number.isInteger(padToMultipleOf) && padToMultipleOf > 0)) {
      throw new Error(`encodeBatch: padToMultipleOf must be a positive integer, got ${padToMultipleOf}`);
    }
    // HF: num_tokens_to_remove = len(ids) + num_special_tokens_to_add - max_length, cut from the right.
    const budget = maxLength - this.numSpecialTokens;
    const rows = texts.map((t) => this.truncatedContentIds(t, budget));
    let longest = 0;
    for (const r of rows) longest = Math.max(longest, r.length + this.numSpecialTokens);
    const seqLen = padToMultipleOf ? Math.ceil(longest / padToMultipleOf) * padToMultipleOf : longest;

    const batchSize = texts.length;
    const inputIds = new BigInt64Array(batchSize * seqLen).fill(BigInt(this.padTokenId));
    const attentionMask = new BigInt64Array(batchSize * seqLen);
    const tokenTypeIds = new BigInt64Array(batchSize * seqLen);
    const lengths = new Int32Array(batchSize);
    rows.forEach((content, i) => {
      let j = i * seqLen;
      const put = (id: number, type: number) => {
        inputIds[j] = BigInt(id);
        attentionMask[j] = 1n;
        tokenTypeIds[j] = BigInt(type);
        j++;
      };
      this.prefixIds.forEach((id, k) => put(id, this.prefixTypes[k] ?? 0));
      for (const id of content) put(id, this.sequenceType);
      this.suffixIds.forEach((id, k) => put(id, this.suffixTypes[k] ?? 0));
      lengths[i] = j - i * seqLen;
    });
    return { inputIds, attentionMask, tokenTypeIds, batchSize, seqLen, lengths };
  }

  /** The effective tokenizer.json as HF would write it (the file's own bytes when loaded unchanged). */
  toTokenizerJson(): string {
    return this.jsonText ?? serializeTokenizerJson(this.json);
  }

  /**
   * Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and vocab.txt into `dir` (created
   * if needed). mirrors transformers PreTrainedTokenizerFast.save_pretrained for BertTokenizerFast (see
   * hf_json.ts); `modelMaxLength` sets tokenizer_config.json `model_max_length` (else the loaded value is
   * kept).
   */
  save(dir: string, opts: { modelMaxLength?: number } = {}): string[] {
    mkdirSync(dir, { recursive: true });
    const files: [string, string][] = [
      ["tokenizer.json", this.toTokenizerJson()],
      ["tokenizer_config.json", tokenizerConfigText(this, opts)],
      ["special_tokens_map.json", specialTokensMapText(this.specialTokens, this.maskTokenId !== null)],
    ];
    const vocab = this.vocabTxt();
    if (vocab !== null) files.push(["vocab.txt", vocab]);
    return files.map(([name, text]) => {
      writeFileAtomic(join(dir, name), text);
      return join(dir, name);
    });
  }

  /**
   * vocab.txt text: the model vocabulary in id order, one token per line, each line ending in "\n". mirrors
   * tokenizers WordPiece::save (models/wordpiece/mod.rs). Null for models without a token→id map.
   */
  vocabTxt(): string | null {
    const entries = vocabEntries(this.json);
    return entries === null ? null : entries.map(([t]) => `${t}\n`).join("");
  }

  private contentIds(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * The first `budget` content ids of `text`, equal to tokenizing it whole and cutting (HF truncation), but
   * without tokenizing all of a huge text: one 50 MB text took 52 s and 2.9 GB that way. A prefix is
   * tokenized instead, cut at an ASCII whitespace, where the normalizer (char by char) and the pre-tokenizer
   * (which splits there) make the prefix's tokens the full text's first tokens; when the prefix gives at
   * least budget + PREFIX_MARGIN_TOKENS tokens, the first `budget` are exact (the margin keeps tokenizers that
   * look across a space away from the kept tokens), else the prefix grows ×4 up to the whole text.
   */
  private truncatedContentIds(text: string, budget: number): number[] {
    let chars = (budget + PREFIX_MARGIN_TOKENS) * PREFIX_CHARS_PER_TOKEN;
    for (;;) {
      const cut = text.length <= chars ? text.length : whitespaceCut(text, chars);
      const ids = this.contentIds(cut === text.length ? text : text.slice(0, cut));
      if (cut === text.length || ids.length >= budget + PREFIX_MARGIN_TOKENS)
        return ids.length > budget ? ids.slice(0, budget) : ids;
      chars *= 4;
    }
  }
}
