// The BERT normalizer and pre-tokenizer, made to match Hugging Face `tokenizers` (Rust) instead of the JS
// port.
//
// @huggingface/tokenizers 0.2.0 (the tokenizer code of transformers.js) runs the WordPiece model, the
// added-token matching and the post-processor for us, and those reproduce the Rust crate. Its BertNormalizer
// and BertPreTokenizer do not, in ways that change ids on real text:
//
//   1. Lowercasing: JS `String.prototype.toLowerCase` applies Unicode's context-dependent Final_Sigma rule,
//      so "ΟΔΟΣ" becomes "οδος" (final ς, U+03C2). Rust lowercases char by char (`char::to_lowercase`), which
//      always maps Σ to σ (U+03C3): "οδοσ". Different word pieces.
//   2. CJK splitting walks UTF-16 code units, so ideographs outside the BMP (extension B and later, U+20000+)
//      are never isolated: "a𠀀b" stays one word (→ a single [UNK]) where Rust yields "a", [UNK], "b".
//   3. Its CJK table starts the extension-C..F range at U+2B820 (the Python BERT value); the Rust crate
//      starts it at U+2B920, so U+2B820..U+2B91F are words of their own in JS and not in Rust.
//   4. Categories: it uses \p{Cc}/\p{Cf}/\p{Co}, \p{Mn} and \p{P} of current Unicode, where HF uses the
//      Unicode 8.0 tables of the unicode_categories crate (HF's own tables and the why are below).
//   5. Order: it lowercases before stripping accents; Rust strips accents (NFD, drop Mn) first, then
//      lowercases. No difference found over all code points, but we keep the Rust order regardless.
//
// So we keep the library for everything else and swap its normalizer and pre-tokenizer objects for the
// subclasses below after the `Tokenizer` is built (`installRustBert`). These are character-level fixes, not a
// second tokenizer: the WordPiece model, the added-token splitting and the post-processor stay the library's.
//
// ports huggingface/tokenizers@c600ccca tokenizers/src/normalizers/bert.rs (BertNormalizer::normalize)
// ports huggingface/tokenizers@104fe0cb tokenizers/src/pre_tokenizers/bert.rs (BertPreTokenizer)

import {
  BertNormalizer,
  BertPreTokenizer,
  type LibNormalizer,
  type LibTokenizer,
  sequenceMembers,
} from "./lib.ts";

// ---- Character tables of HF `tokenizers` (Rust) for the BERT normalizer and pre-tokenizer ----
//
// Why tables instead of \p{...}: the Rust crate takes its categories from the unicode_categories crate
// (0.1.1), whose data is Unicode 8.0, while Node ships current Unicode (17.0 in Node 20.20). Every code point
// assigned or re-categorized since then would tokenize differently: e.g. U+2E52 (Po since Unicode 13) is
// isolated as punctuation by \p{P} but is part of a word in HF; U+0D00 (Mn since Unicode 10) would be
// stripped as an accent by \p{Mn} but is kept by HF; U+13430..U+1343F (Cf since Unicode 12) would be deleted.
// With these tables the result does not depend on the Node version either.
//
// Each table lists hex code-point ranges ("a-b" or a single "c"). They were made by probing every code point
// U+0000..U+10FFFF (surrogates excluded) through HF's own Rust implementation, npm `tokenizers@0.23.2` (the
// Node binding of huggingface/tokenizers, native library bundled), with
//   clean = bertNormalizer({ cleanText: true, ... }) and strip = bertNormalizer({ stripAccents: true, ... }),
//   every other flag (cleanText, handleChineseChars, stripAccents, lowercase) false:
//   HF_CONTROL:    clean.normalizeString(c) === ""
//   HF_WHITESPACE: clean.normalizeString(c) === " "
//   HF_MN:         strip.normalizeString(c) === "" && c.normalize("NFD") === c
//   HF_PUNCT:      bertPreTokenizer().preTokenizeString("a" + c + "b").length === 3, c not in HF_WHITESPACE
// The same probe found no difference from JS for lowercasing and the CJK ranges (code below). NFD differs
// for 21 code points only: letters of Vithkuqi, Tulu-Tigalari, Gurung Khema and Kirat Rai whose canonical
// decompositions came with Unicode 16, which JS applies and HF does not. No BERT vocabulary we know of holds
// these scripts, so either way the word is [UNK] and the ids come out the same.

/** bert.rs `is_control` (Cc, Cf, Co of unicode_categories; tab, LF, CR excluded), plus NUL and U+FFFD. */
export const HF_CONTROL = [
  "0-8 b-c e-1f 7f-9f ad 600-605 61c 6dd 70f 180e 200b-200f 202a-202e 2060-2064 2066-206f e000-f8ff",
  "feff fff9-fffb fffd 110bd 1bca0-1bca3 1d173-1d17a e0001 e0020-e007f f0000-ffffd 100000-10fffd",
];

/** What clean_text turns into a space: bert.rs `is_whitespace` minus the controls above. */
export const HF_WHITESPACE = ["9-a d 20 a0 1680 2000-200a 2028-2029 202f 205f 3000"];

/** Rust `char::is_whitespace` (Unicode White_Space), which the BERT pre-tokenizer splits on. */
export const RUST_WHITESPACE = ["9-d 20 85 a0 1680 2000-200a 2028-2029 202f 205f 3000"];

/** unicode_categories `is_mark_nonspacing` (Mn): what strip_accents drops after NFD. */
export const HF_MN = [
  "300-33f 342 345-36f 483-487 591-5bd 5bf 5c1-5c2 5c4-5c5 5c7 610-61a 64b-65f 670 6d6-6dc 6df-6e4",
  "6e7-6e8 6ea-6ed 711 730-74a 7a6-7b0 7eb-7f3 816-819 81b-823 825-827 829-82d 859-85b 8e3-902 93a 93c",
  "941-948 94d 951-957 962-963 981 9bc 9c1-9c4 9cd 9e2-9e3 a01-a02 a3c a41-a42 a47-a48 a4b-a4d a51",
  "a70-a71 a75 a81-a82 abc ac1-ac5 ac7-ac8 acd ae2-ae3 b01 b3c b3f b41-b44 b4d b56 b62-b63 b82 bc0 bcd",
  "c00 c3e-c40 c46-c47 c4a-c4d c55-c56 c62-c63 c81 cbc cbf cc6 ccc-ccd ce2-ce3 d01 d41-d44 d4d d62-d63",
  "dca dd2-dd4 dd6 e31 e34-e3a e47-e4e eb1 eb4-eb9 ebb-ebc ec8-ecd f18-f19 f35 f37 f39 f71-f72 f74 f77",
  "f79-f7e f80 f82-f84 f86-f87 f8d-f92 f94-f97 f99-f9c f9e-fa1 fa3-fa6 fa8-fab fad-fb8 fba-fbc fc6",
  "102d-1030 1032-1037 1039-103a 103d-103e 1058-1059 105e-1060 1071-1074 1082 1085-1086 108d 109d",
  "135d-135f 1712-1714 1732-1734 1752-1753 1772-1773 17b4-17b5 17b7-17bd 17c6 17c9-17d3 17dd 180b-180d",
  "18a9 1920-1922 1927-1928 1932 1939-193b 1a17-1a18 1a1b 1a56 1a58-1a5e 1a60 1a62 1a65-1a6c 1a73-1a7c",
  "1a7f 1ab0-1abd 1b00-1b03 1b34 1b36-1b3a 1b3c 1b42 1b6b-1b73 1b80-1b81 1ba2-1ba5 1ba8-1ba9 1bab-1bad",
  "1be6 1be8-1be9 1bed 1bef-1bf1 1c2c-1c33 1c36-1c37 1cd0-1cd2 1cd4-1ce0 1ce2-1ce8 1ced 1cf4 1cf8-1cf9",
  "1dc0-1df5 1dfc-1dff 20d0-20dc 20e1 20e5-20f0 2cef-2cf1 2d7f 2de0-2dff 302a-302d 3099-309a a66f",
  "a674-a67d a69e-a69f a6f0-a6f1 a802 a806 a80b a825-a826 a8c4 a8e0-a8f1 a926-a92d a947-a951 a980-a982",
  "a9b3 a9b6-a9b9 a9bc a9e5 aa29-aa2e aa31-aa32 aa35-aa36 aa43 aa4c aa7c aab0 aab2-aab4 aab7-aab8",
  "aabe-aabf aac1 aaec-aaed aaf6 abe5 abe8 abed fb1e fe00-fe0f fe20-fe2f 101fd 102e0 10376-1037a",
  "10a01-10a03 10a05-10a06 10a0c-10a0f 10a38-10a3a 10a3f 10ae5-10ae6 11001 11038-11046 1107f-11081",
  "110b3-110b6 110b9-110ba 11100-11102 11127-1112b 1112d 11130-11134 11173 11180-11181 111b6-111be",
  "111ca-111cc 1122f-11231 11234 11236-11237 112df 112e3-112ea 11300-11301 1133c 11340 11366-1136c",
  "11370-11374 114b3-114b8 114ba 114bf-114c0 114c2-114c3 115b2-115b5 115bc-115bd 115bf-115c0",
  "115dc-115dd 11633-1163a 1163d 1163f-11640 116ab 116ad 116b0-116b5 116b7 1171d-1171f 11722-11725",
  "11727-1172b 16af0-16af4 16b30-16b36 16f8f-16f92 1bc9d-1bc9e 1d167-1d169 1d17b-1d182 1d185-1d18b",
  "1d1aa-1d1ad 1d242-1d244 1da00-1da36 1da3b-1da6c 1da75 1da84 1da9b-1da9f 1daa1-1daaf 1e8d0-1e8d6",
  "e0100-e01ef",
];

/** pre_tokenizers/bert.rs `is_bert_punc`: ASCII punctuation or unicode_categories `is_punctuation` (P*). */
export const HF_PUNCT = [
  "21-2f 3a-40 5b-60 7b-7e a1 a7 ab b6-b7 bb bf 37e 387 55a-55f 589-58a 5be 5c0 5c3 5c6 5f3-5f4 609-60a",
  "60c-60d 61b 61e-61f 66a-66d 6d4 700-70d 7f7-7f9 830-83e 85e 964-965 970 af0 df4 e4f e5a-e5b f04-f12",
  "f14 f3a-f3d f85 fd0-fd4 fd9-fda 104a-104f 10fb 1360-1368 1400 166d-166e 169b-169c 16eb-16ed",
  "1735-1736 17d4-17d6 17d8-17da 1800-180a 1944-1945 1a1e-1a1f 1aa0-1aa6 1aa8-1aad 1b5a-1b60 1bfc-1bff",
  "1c3b-1c3f 1c7e-1c7f 1cc0-1cc7 1cd3 2010-2027 2030-2043 2045-2051 2053-205e 207d-207e 208d-208e",
  "2308-230b 2329-232a 2768-2775 27c5-27c6 27e6-27ef 2983-2998 29d8-29db 29fc-29fd 2cf9-2cfc 2cfe-2cff",
  "2d70 2e00-2e2e 2e30-2e42 3001-3003 3008-3011 3014-301f 3030 303d 30a0 30fb a4fe-a4ff a60d-a60f a673",
  "a67e a6f2-a6f7 a874-a877 a8ce-a8cf a8f8-a8fa a8fc a92e-a92f a95f a9c1-a9cd a9de-a9df aa5c-aa5f",
  "aade-aadf aaf0-aaf1 abeb fd3e-fd3f fe10-fe19 fe30-fe52 fe54-fe61 fe63 fe68 fe6a-fe6b ff01-ff03",
  "ff05-ff0a ff0c-ff0f ff1a-ff1b ff1f-ff20 ff3b-ff3d ff3f ff5b ff5d ff5f-ff65 10100-10102 1039f 103d0",
  "1056f 10857 1091f 1093f 10a50-10a58 10a7f 10af0-10af6 10b39-10b3f 10b99-10b9c 11047-1104d",
  "110bb-110bc 110be-110c1 11140-11143 11174-11175 111c5-111c9 111cd 111db 111dd-111df 11238-1123d",
  "112a9 114c6 115c1-115d7 11641-11643 1173c-1173e 12470-12474 16a6e-16a6f 16af5 16b37-16b3b 16b44",
  "1bc9f 1da87-1da8b",
];

/** The body of a regex character class (for the `u` flag) matching the code points of a table. */
export function charClass(table: readonly string[]): string {
  return table
    .join(" ")
    .split(" ")
    .filter((r) => r !== "")
    .map((r) =>
      r
        .split("-")
        .map((h) => `\\u{${h}}`)
        .join("-"),
    )
    .join("");
}

// ---- The normalizer and the pre-tokenizer ----

/** The `normalizer` block of a tokenizer.json whose type is BertNormalizer (fields as HF serializes them). */
export interface BertNormalizerJson {
  type: "BertNormalizer";
  clean_text: boolean;
  handle_chinese_chars: boolean;
  /** null = "follow lowercase" (HF: `strip_accents.unwrap_or(lowercase)`). */
  strip_accents: boolean | null;
  lowercase: boolean;
}

// clean_text drops HF's controls. A lone surrogate (\p{Cs}) cannot occur in a Rust `char` at all (the Python
// binding rejects such strings); we drop it rather than hand half a character to WordPiece.
const CONTROL_RE = new RegExp(`[${charClass(HF_CONTROL)}\\p{Cs}]`, "gu");
const CLEAN_WHITESPACE_RE = new RegExp(`[${charClass(HF_WHITESPACE)}]`, "gu");

// `is_chinese_char` in bert.rs, range for range (note 0x2B920, not the 0x2B820 of Python BERT and the JS
// port).
const CJK_CLASS =
  "[\\u4E00-\\u9FFF\\u3400-\\u4DBF\\u{20000}-\\u{2A6DF}\\u{2A700}-\\u{2B73F}\\u{2B740}-\\u{2B81F}" +
  "\\u{2B920}-\\u{2CEAF}\\uF900-\\uFAFF\\u{2F800}-\\u{2FA1F}]";
const CJK_RE = new RegExp(CJK_CLASS, "gu");
const ONE_CJK_RE = new RegExp(`^${CJK_CLASS}$`, "u");

// `do_strip_accents`: NFD, then drop nonspacing marks (HF's Mn table; Mc and Me stay).
const NONSPACING_MARK_RE = new RegExp(`[${charClass(HF_MN)}]`, "gu");

// pre_tokenizers/bert.rs: split on `char::is_whitespace` (removed), then on `is_bert_punc` (isolated). As one
// regex: runs of neither, or a single punctuation character.
const PUNCT = charClass(HF_PUNCT);
const PRE_TOKEN_RE = new RegExp(`[^${charClass(RUST_WHITESPACE)}${PUNCT}]+|[${PUNCT}]`, "gu");

/** True when `ch` (one code point) is one of the ideographs that BERT makes a word of its own. */
export function isChineseChar(ch: string): boolean {
  return ONE_CJK_RE.test(ch);
}

/**
 * Lowercase code point by code point, like Rust's `NormalizedString::lowercase` (`char::to_lowercase` per
 * char). A lone code point never meets the Final_Sigma condition, so `ch.toLowerCase()` is the context-free
 * mapping, and Final_Sigma is the only context-dependent rule JS applies (the other conditional SpecialCasing
 * rules are language-specific and only `toLocaleLowerCase` uses them). So whole-string lowercasing is exact
 * unless the text holds a capital sigma, and only then do we pay for the per-character walk.
 */
export function lowercasePerChar(text: string): string {
  if (!text.includes("Σ")) return text.toLowerCase();
  let out = "";
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

/** The BERT normalization of bert.rs as a plain function (exported for tests and for debugging). */
export function bertNormalize(text: string, cfg: Omit<BertNormalizerJson, "type">): string {
  if (cfg.clean_text) {
    text = text.replace(CONTROL_RE, "").replace(CLEAN_WHITESPACE_RE, " ");
  }
  if (cfg.handle_chinese_chars) {
    text = text.replace(CJK_RE, " $& ");
  }
  // bert.rs: `let strip_accents = self.strip_accents.unwrap_or(self.lowercase)`, applied before lowercasing.
  if (cfg.strip_accents ?? cfg.lowercase) {
    text = text.normalize("NFD").replace(NONSPACING_MARK_RE, "");
  }
  if (cfg.lowercase) {
    text = lowercasePerChar(text);
  }
  return text;
}

/** The BERT pre-tokenization of pre_tokenizers/bert.rs: words and single punctuation characters. */
export function bertPreTokenize(text: string): string[] {
  return text.match(PRE_TOKEN_RE) ?? [];
}

/** Reads the four BertNormalizer flags with HF's serde defaults (all true, strip_accents None). */
export function bertNormalizerFlags(cfg: Partial<BertNormalizerJson>): Omit<BertNormalizerJson, "type"> {
  return {
    clean_text: cfg.clean_text ?? true,
    handle_chinese_chars: cfg.handle_chinese_chars ?? true,
    strip_accents: cfg.strip_accents ?? null,
    lowercase: cfg.lowercase ?? true,
  };
}

/**
 * The library's BertNormalizer with `normalize` replaced by the Rust algorithm. Subclassing (rather than a
 * fresh Normalizer) keeps `instanceof BertNormalizer` true and the callable-object machinery of the library.
 */
export class RustBertNormalizer extends BertNormalizer {
  private readonly flags: Omit<BertNormalizerJson, "type">;

  constructor(config: Partial<BertNormalizerJson>) {
    super({ type: "BertNormalizer", ...config });
    this.flags = bertNormalizerFlags(config);
  }

  override normalize(text: string): string {
    return bertNormalize(text, this.flags);
  }
}

/** The library's BertPreTokenizer with HF's whitespace and punctuation tables. */
export class RustBertPreTokenizer extends BertPreTokenizer {
  override pre_tokenize_text(text: string): string[] {
    return bertPreTokenize(text);
  }
}

function replaceNormalizer(n: LibNormalizer | null): LibNormalizer | null {
  if (n === null || n instanceof RustBertNormalizer) return n;
  if (n instanceof BertNormalizer) return new RustBertNormalizer(n.config as Partial<BertNormalizerJson>);
  const members = sequenceMembers(n);
  if (members !== null) members.forEach((m, i) => (members[i] = replaceNormalizer(m)));
  return n;
}

/**
 * Swaps the BertNormalizer (top level or inside a Sequence) and a top-level BertPreTokenizer of a built
 * `Tokenizer` for the Rust-faithful subclasses. Added tokens marked `normalized: true` were matched against
 * the library's normalization at construction time; BERT's special tokens are `normalized: false`, so
 * unaffected.
 */
export function installRustBert(tokenizer: LibTokenizer): void {
  tokenizer.normalizer = replaceNormalizer(tokenizer.normalizer);
  if (
    tokenizer.pre_tokenizer instanceof BertPreTokenizer &&
    !(tokenizer.pre_tokenizer instanceof RustBertPreTokenizer)
  ) {
    tokenizer.pre_tokenizer = new RustBertPreTokenizer();
  }
}
