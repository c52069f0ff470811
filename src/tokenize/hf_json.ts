// The JSON files of a Hugging Face tokenizer folder: their shapes, the BERT tokenizer.json built from a bare
// vocab.txt, and writers that reproduce the bytes Hugging Face itself writes (Rust serde for tokenizer.json,
// Python `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)` for the two config files), so that a
// saved folder diffs cleanly against one written by transformers.

import { type ReadKind, jsonSyntaxDetail, readRegularText } from "../util/read-file.ts";

/** One entry of tokenizer.json `added_tokens`, keys in the order HF serializes them. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** A tokenizer.json object. Only the fields this module reads or writes are typed; the rest pass through. */
export interface TokenizerJson {
  version?: string;
  truncation?: { max_length?: number; [key: string]: unknown } | null;
  padding?: { pad_id?: number; pad_token?: string; [key: string]: unknown } | null;
  added_tokens?: AddedTokenJson[];
  normalizer?: { type: string; [key: string]: unknown } | null;
  pre_tokenizer?: { type: string; [key: string]: unknown } | null;
  post_processor?: { type: string; [key: string]: unknown } | null;
  decoder?: { type: string; [key: string]: unknown } | null;
  model: { type?: string; vocab?: unknown; unk_token?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** tokenizer_config.json / special_tokens_map.json: free-form, read through the helpers below. */
export type TokenizerConfigJson = Record<string, unknown>;

/** The five BERT special tokens, by their tokenizer_config.json key. */
export const SPECIAL_TOKEN_KEYS = ["unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] as const;
export type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];
export type SpecialTokens = Record<SpecialTokenKey, string>;

/** BertTokenizer's constructor defaults (transformers models/bert/tokenization_bert.py). */
export const BERT_SPECIAL_TOKENS: SpecialTokens = {
  unk_token: "[UNK]",
  sep_token: "[SEP]",
  pad_token: "[PAD]",
  cls_token: "[CLS]",
  mask_token: "[MASK]",
};

/** transformers' VERY_LARGE_INTEGER = int(1e30): `model_max_length` of a tokenizer with no known limit. */
export const VERY_LARGE_INTEGER = 1e30;

/** A special token as written in a config: a plain string, or an AddedToken dict `{ content, ... }`. */
export function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { content?: unknown }).content === "string"
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** The special-token strings a config names, BERT defaults for those it leaves out. */
export function specialTokensOf(config: TokenizerConfigJson): SpecialTokens {
  const out = { ...BERT_SPECIAL_TOKENS };
  for (const key of SPECIAL_TOKEN_KEYS) out[key] = specialTokenContent(config[key]) ?? out[key];
  return out;
}

/**
 * Reads a file and parses it as a JSON object (errors name the file and never quote it); returns the text too.
 * The file must be a regular file within the size bound of `kind` (src/util/read-file.ts).
 */
export function readJsonObject(
  path: string,
  kind: ReadKind = "config",
): { text: string; value: Record<string, unknown> } {
  const text = readRegularText(path, kind);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`Malformed JSON in ${path}: ${jsonSyntaxDetail(e, text)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`Malformed JSON in ${path}: expected an object at the top level`);
  }
  return { text, value: value as Record<string, unknown> };
}

/**
 * Splits vocab.txt into tokens, line i (0-based) being id i. mirrors transformers
 * models/bert/tokenization_bert.py load_vocab: Python text mode reads with universal newlines (\r\n, \r and
 * \n all end a line) and `rstrip("\n")` keeps everything else, blank lines included.
 */
export function parseVocabTxt(text: string): string[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Options of the BERT tokenizer built from vocab.txt, as BertTokenizer reads tokenizer_config.json. */
export interface BertVocabOptions {
  doLowerCase: boolean;
  stripAccents: boolean | null;
  tokenizeChineseChars: boolean;
  specialTokens: SpecialTokens;
}

/** BertTokenizer's reading of tokenizer_config.json (its constructor defaults where a key is absent). */
export function bertVocabOptions(config: TokenizerConfigJson): BertVocabOptions {
  // Without a basic tokenizer BertConverter passes lowercase/strip/chinese = False
  // (convert_slow_tokenizer.py).
  const basic = config.do_basic_tokenize !== false;
  const stripAccents = config.strip_accents;
  return {
    doLowerCase: basic && config.do_lower_case !== false,
    stripAccents: basic ? (typeof stripAccents === "boolean" ? stripAccents : null) : false,
    tokenizeChineseChars: basic && config.tokenize_chinese_chars !== false,
    specialTokens: specialTokensOf(config),
  };
}

/**
 * The tokenizer.json that transformers builds for a BERT vocab.txt and saves. mirrors transformers
 * convert_slow_tokenizer.py BertConverter.converted (WordPiece with "##" and 100 chars per word,
 * BertNormalizer, BertPreTokenizer, TemplateProcessing "[CLS] $A [SEP]" / "... $B:1 [SEP]:1", WordPiece
 * decoder), plus the special tokens that PreTrainedTokenizerFast registers as added tokens (normalized false,
 * special true; HF serializes them sorted by id). No truncation or padding, as converted.
 */
export function bertTokenizerJson(
  vocab: readonly string[],
  opts: BertVocabOptions,
  source: string,
): TokenizerJson {
  // Duplicate lines: the later id wins, as in load_vocab's `vocab[token] = index`.
  const ids = new Map<string, number>();
  vocab.forEach((token, i) => ids.set(token, i));
  const idOf = (key: SpecialTokenKey): number | undefined => ids.get(opts.specialTokens[key]);
  for (const key of ["unk_token", "cls_token", "sep_token", "pad_token"] as const) {
    if (idOf(key) === undefined) {
      throw new Error(`${source}: ${key} "${opts.specialTokens[key]}" is not in the vocabulary`);
    }
  }
  const added: AddedTokenJson[] = [];
  const seen = new Set<string>();
  for (const key of SPECIAL_TOKEN_KEYS) {
    const content = opts.specialTokens[key];
    const id = idOf(key);
    if (id === undefined || seen.has(content)) continue; // a missing [MASK] is simply not registered
    seen.add(content);
    added.push({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
  }
  added.sort((a, b) => a.id - b.id);
  const cls = opts.specialTokens.cls_token;
  const sep = opts.specialTokens.sep_token;
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
  for (const t of [cls, sep].sort()) specialTokens[t] = { id: t, ids: [ids.get(t) as number], tokens: [t] };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: opts.tokenizeChineseChars,
      strip_accents: opts.stripAccents,
      lowercase: opts.doLowerCase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [special(cls, 0), sequence("A", 0), special(sep, 0)],
      pair: [special(cls, 0), sequence("A", 0), special(sep, 0), sequence("B", 1), special(sep, 1)],
      special_tokens: specialTokens,
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: opts.specialTokens.unk_token,
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      // fromEntries makes own data properties, so a token such as "__proto__" stays an ordinary key.
      vocab: Object.fromEntries(ids),
    },
  };
}

/** `model.vocab` of a WordPiece/BPE tokenizer.json as [token, id] sorted by id; null for other shapes. */
export function vocabEntries(json: TokenizerJson): [string, number][] | null {
  const vocab = json.model.vocab;
  if (vocab === null || typeof vocab !== "object" || Array.isArray(vocab)) return null;
  const entries = Object.entries(vocab as Record<string, unknown>).filter(
    (e): e is [string, number] => typeof e[1] === "number",
  );
  return entries.sort((a, b) => a[1] - b[1]);
}

const VOCAB_SENTINEL = "\u0000ragtune:model.vocab\u0000";

/**
 * tokenizer.json text as HF writes it: serde_json's pretty printer (2-space indent, `"key": value`, no
 * trailing newline) with `model.vocab` in id order. JSON.stringify matches serde's layout except that JS
 * objects list integer-like keys ("0", "1", ...) first, so the vocab map is written by hand. Byte-identical
 * to HF for BERT files (floats, which serde prints as `-1.0`, do not occur in them).
 */
export function serializeTokenizerJson(json: TokenizerJson): string {
  const entries = vocabEntries(json);
  if (entries === null) return JSON.stringify(json, null, 2);
  const text = JSON.stringify({ ...json, model: { ...json.model, vocab: VOCAB_SENTINEL } }, null, 2);
  const body =
    entries.length === 0
      ? "{}"
      : `{\n${entries.map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`).join(",\n")}\n    }`;
  return text.replace(JSON.stringify(VOCAB_SENTINEL), () => body);
}

/**
 * Python `json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)`: the writer transformers uses for
 * tokenizer_config.json and special_tokens_map.json (it then appends "\n"). Integers beyond 2^53 are written
 * as exact integers (BigInt), so VERY_LARGE_INTEGER comes out as Python's 1000000000000000019884624838656
 * rather than JS's "1e+30", which Python would read back as a float.
 */
export function pyJsonDumps(value: unknown, indent = ""): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) return BigInt(value).toString();
    return JSON.stringify(value);
  }
  if (typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + pyJsonDumps(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (typeof value === "object") {
    const keys = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (keys.length === 0) return "{}";
    const items = keys.map(
      (k) => `${inner}${JSON.stringify(k)}: ${pyJsonDumps((value as Record<string, unknown>)[k], inner)}`,
    );
    return `{\n${items.join(",\n")}\n${indent}}`;
  }
  throw new Error(`pyJsonDumps: cannot serialize a ${typeof value}`);
}

/**
 * transformers' BertTokenizerFast.__init__ rebuilds the backend normalizer when tokenizer_config.json
 * disagrees with tokenizer.json on lowercase / strip_accents / handle_chinese_chars: the config wins, with
 * BertTokenizerFast's defaults (True / None / True) for absent keys. Applied to the JSON object in place;
 * returns true when it changed something. Only when the config names BertTokenizer(Fast) and the normalizer
 * is a top-level BertNormalizer. (AutoTokenizer also picks BertTokenizerFast from config.json's model_type
 * when tokenizer_config.json is missing, and then forces lowercase on; we do not follow it there.)
 */
export function reconcileBertNormalizer(json: TokenizerJson, config: TokenizerConfigJson): boolean {
  const n = json.normalizer;
  if (!n || n.type !== "BertNormalizer") return false;
  if (config.tokenizer_class !== "BertTokenizer" && config.tokenizer_class !== "BertTokenizerFast")
    return false;
  const want = {
    lowercase: config.do_lower_case !== undefined ? config.do_lower_case !== false : true,
    strip_accents: typeof config.strip_accents === "boolean" ? config.strip_accents : null,
    handle_chinese_chars:
      config.tokenize_chinese_chars !== undefined ? config.tokenize_chinese_chars !== false : true,
  };
  // Python: `normalizer_state.get(key, wanted) != wanted`, i.e. an absent key agrees.
  const differs = (key: keyof typeof want) => key in n && (n[key] ?? null) !== want[key];
  if (!differs("lowercase") && !differs("strip_accents") && !differs("handle_chinese_chars")) return false;
  Object.assign(n, want);
  return true;
}

/** What the tokenizer_config.json writer needs to know about a loaded tokenizer. */
export interface TokenizerConfigSource {
  json: TokenizerJson;
  config: TokenizerConfigJson;
  specialTokens: SpecialTokens;
  maskTokenId: number | null;
  doLowerCase: boolean;
  stripAccents: boolean | null;
  tokenizeChineseChars: boolean;
}

/**
 * tokenizer_config.json text. mirrors transformers PreTrainedTokenizerBase.save_pretrained (4.3x–4.5x) for
 * BertTokenizerFast: the init kwargs it was loaded with, minus the file pointers it pops (name_or_path,
 * special_tokens_map_file, tokenizer_file), plus `added_tokens_decoder` (id → AddedToken dict), the special
 * tokens, and tokenizer_class without its "Fast" suffix; sorted keys, indent 2, trailing newline.
 */
export function tokenizerConfigText(
  t: TokenizerConfigSource,
  opts: { modelMaxLength?: number } = {},
): string {
  const cfg: Record<string, unknown> = { ...t.config };
  for (const key of ["name_or_path", "special_tokens_map_file", "tokenizer_file"]) delete cfg[key];
  const decoder: Record<string, unknown> = {};
  for (const a of t.json.added_tokens ?? []) {
    const { content, lstrip, normalized, rstrip, single_word, special } = a;
    decoder[String(a.id)] = { content, lstrip, normalized, rstrip, single_word, special };
  }
  cfg.added_tokens_decoder = decoder;
  for (const key of SPECIAL_TOKEN_KEYS) cfg[key] = t.specialTokens[key];
  if (t.maskTokenId === null) delete cfg.mask_token;
  cfg.clean_up_tokenization_spaces =
    typeof cfg.clean_up_tokenization_spaces === "boolean" ? cfg.clean_up_tokenization_spaces : true;
  const loaded = typeof cfg.model_max_length === "number" ? cfg.model_max_length : VERY_LARGE_INTEGER;
  cfg.model_max_length = opts.modelMaxLength ?? loaded;
  cfg.tokenizer_class =
    typeof cfg.tokenizer_class === "string" ? cfg.tokenizer_class.replace(/Fast$/, "") : "BertTokenizer";
  if (cfg.tokenizer_class === "BertTokenizer") {
    // BertTokenizer's kwargs, written with their defaults as transformers does; the normalizer flags come
    // from the effective tokenizer.json so that the two files cannot disagree on reload.
    cfg.do_basic_tokenize = cfg.do_basic_tokenize !== false;
    cfg.never_split = Array.isArray(cfg.never_split) ? cfg.never_split : null;
    cfg.do_lower_case = t.doLowerCase;
    cfg.strip_accents = t.stripAccents;
    cfg.tokenize_chinese_chars = t.tokenizeChineseChars;
  }
  return pyJsonDumps(cfg) + "\n";
}

/**
 * special_tokens_map.json text: the special tokens as plain strings, sorted keys, trailing newline, as in
 * all-MiniLM-L6-v2 and bge (newer transformers write AddedToken dicts instead; both forms load everywhere).
 */
export function specialTokensMapText(specialTokens: SpecialTokens, hasMask: boolean): string {
  const map: Record<string, string> = { ...specialTokens };
  if (!hasMask) delete map.mask_token;
  return pyJsonDumps(map) + "\n";
}
