// Tokenizer ids, batching and errors. Two loaders are exercised everywhere: the all-MiniLM-L6-v2
// tokenizer.json and the bare bert-base-uncased vocab.txt (same 30,522-token vocabulary, same order), which
// must agree. Ground truth: ids pinned here were derived by hand from vocab.txt (line number − 1 = id) or,
// for the tricky texts, follow the HF `tokenizers` rules quoted next to each case
// (shared/reference/semantics.md). All pinned ids were also checked, outside this repo, against HF's Rust
// implementation (npm `tokenizers@0.23.2`).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  HF_CONTROL,
  HF_MN,
  HF_PUNCT,
  bertNormalize,
  bertPreTokenize,
  isChineseChar,
} from "../../src/tokenize/rust_bert.ts";
import { HfTokenizer } from "../../src/tokenize/tokenizer.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/tokenizers/", import.meta.url));
const MINILM_DIR = join(FIXTURES, "all-MiniLM-L6-v2");
const BERT_DIR = join(FIXTURES, "bert-base-uncased");

const fromJson = HfTokenizer.fromDir(MINILM_DIR);
const fromVocab = HfTokenizer.fromDir(BERT_DIR);
const both = [
  ["tokenizer.json", fromJson],
  ["vocab.txt", fromVocab],
] as const;

const scratch = mkdtempSync(join(tmpdir(), "ragtune-tok-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Row i of a flat [batchSize, seqLen] matrix, as numbers. */
function row(m: BigInt64Array, seqLen: number, i: number): number[] {
  return Array.from(m.subarray(i * seqLen, (i + 1) * seqLen), Number);
}

describe("loading", () => {
  test("fromDir picks tokenizer.json when present, vocab.txt otherwise", () => {
    assert.equal(fromJson.origin, "tokenizer.json");
    assert.equal(fromVocab.origin, "vocab.txt");
  });

  test("special ids, vocabulary size and lowercasing", () => {
    for (const [, t] of both) {
      assert.deepEqual(
        [
          t.vocabSize,
          t.padTokenId,
          t.unkTokenId,
          t.clsTokenId,
          t.sepTokenId,
          t.maskTokenId,
          t.numSpecialTokens,
        ],
        [30522, 0, 100, 101, 102, 103, 2],
      );
      assert.equal(t.doLowerCase, true);
      assert.equal(t.stripAccents, null);
      assert.equal(t.tokenizeChineseChars, true);
    }
  });

  test("length limits: model_max_length and the tokenizer.json truncation block are reported, not applied", () => {
    assert.equal(fromJson.modelMaxLength, 512);
    assert.equal(fromJson.truncationMaxLength, 128);
    assert.equal(fromVocab.modelMaxLength, null);
    assert.equal(fromVocab.truncationMaxLength, null);
    // transformers writes int(1e30) when the limit is unknown: > 1e6 reads as unknown.
    const vocab = readFileSync(join(BERT_DIR, "vocab.txt"), "utf8");
    assert.equal(HfTokenizer.fromVocab(vocab, { model_max_length: 1e30 }).modelMaxLength, null);
    assert.equal(HfTokenizer.fromVocab(vocab, { model_max_length: 256 }).modelMaxLength, 256);
    // 200 words > 128: the Fixed(128) padding / max_length 128 truncation of the file must not kick in.
    const long = "revenue ".repeat(200);
    assert.equal(fromJson.countTokens(long), 202);
    const b = fromJson.encodeBatch(["short", long], { maxLength: 512 });
    assert.equal(b.seqLen, 202);
    assert.deepEqual(Array.from(b.lengths), [3, 202]);
  });

  test("do_lower_case false in tokenizer_config.json (vocab.txt path) keeps case", () => {
    const vocab = readFileSync(join(BERT_DIR, "vocab.txt"), "utf8");
    const cased = HfTokenizer.fromVocab(vocab, { do_lower_case: false });
    assert.equal(cased.doLowerCase, false);
    // "Hello" keeps its capital and "café" its accent (strip_accents null follows lowercase): neither is in
    // the uncased vocabulary, while the uncased tokenizer finds "hello" and "cafe".
    assert.deepEqual(cased.tokenize("Hello café world"), ["[UNK]", "[UNK]", "world"]);
    assert.deepEqual(fromVocab.tokenize("Hello café world"), ["hello", "cafe", "world"]);
  });

  test("fromFiles: special_tokens_map.json overrides the config's special tokens (transformers order)", () => {
    const map = join(scratch, "special_tokens_map.json");
    writeFileSync(map, JSON.stringify({ pad_token: { content: "[MASK]", lstrip: false } }));
    const t = HfTokenizer.fromFiles({
      vocabTxt: join(BERT_DIR, "vocab.txt"),
      tokenizerConfig: join(MINILM_DIR, "tokenizer_config.json"),
      specialTokensMap: map,
    });
    assert.equal(t.padTokenId, 103);
    assert.equal(t.modelMaxLength, 512);
    assert.equal(t.encodeBatch(["a", ""], { maxLength: 8 }).inputIds[5], 103n);
    assert.throws(() => HfTokenizer.fromFiles({}), /give tokenizerJson or vocabTxt/);
  });

  test("tokenizer_config.json overrides the BertNormalizer of tokenizer.json, as BertTokenizerFast does", () => {
    const json = readFileSync(join(MINILM_DIR, "tokenizer.json"), "utf8");
    const t = HfTokenizer.fromTokenizerJson(json, { tokenizer_class: "BertTokenizer", do_lower_case: false });
    assert.equal(t.doLowerCase, false);
    assert.notEqual(t.toTokenizerJson(), json); // the effective (changed) normalizer is what gets saved
    assert.match(t.toTokenizerJson(), /"lowercase": false/);
    // Only when the config names BertTokenizer, which is when transformers runs BertTokenizerFast.__init__.
    assert.equal(HfTokenizer.fromTokenizerJson(json, { do_lower_case: false }).doLowerCase, true);
    // Agreeing configs leave the file untouched, byte for byte.
    assert.equal(fromJson.toTokenizerJson(), json);
  });
});

describe("ids", () => {
  test('"Hello NVIDIA revenue" → [101, 7592, 1050, 17258, 2401, 6599, 102] via both paths', () => {
    for (const [name, t] of both) {
      assert.deepEqual(t.tokenIds("Hello NVIDIA revenue"), [101, 7592, 1050, 17258, 2401, 6599, 102], name);
      assert.deepEqual(t.tokenize("Hello NVIDIA revenue"), ["hello", "n", "##vid", "##ia", "revenue"], name);
    }
  });

  test("hand-derived from vocab.txt (line − 1 = id), independent of the library", () => {
    const lines = readFileSync(join(BERT_DIR, "vocab.txt"), "utf8").split("\n");
    const id = (token: string) => {
      const i = lines.indexOf(token);
      assert.ok(i >= 0, `${token} in vocab.txt`);
      return i;
    };
    // Tokens worked out by hand: lowercase, split off punctuation, greedy longest-match WordPiece. "nvidia":
    // nvidia/nvidi/nvid/nvi/nv are absent, "n" is present; then ##vidia/##vidi absent, ##vid, ##ia.
    const cases: [string, string[], number[]][] = [
      ["The quick brown fox.", ["the", "quick", "brown", "fox", "."], [1996, 4248, 2829, 4419, 1012]],
      ["Revenue increased 12%.", ["revenue", "increased", "12", "%", "."], [6599, 3445, 2260, 1003, 1012]],
      ["I can't.", ["i", "can", "'", "t", "."], [1045, 2064, 1005, 1056, 1012]],
      ["NVIDIA", ["n", "##vid", "##ia"], [1050, 17258, 2401]],
    ];
    for (const [text, tokens, ids] of cases) {
      assert.deepEqual(tokens.map(id), ids, text);
      for (const [name, t] of both)
        assert.deepEqual(t.tokenIds(text), [101, ...ids, 102], `${name}: ${text}`);
    }
  });

  // [text, expected ids without [CLS]/[SEP], the HF rule it checks]
  const tricky: [string, number[], string][] = [
    ["Café Déjà vu", [7668, 2139, 3900, 24728], "accents stripped by NFD + drop Mn: cafe de ##ja vu"],
    ["ÉCOLE", [12431], "uppercase accent: ecole"],
    ["ΟΔΟΣ", [1169, 29722, 29730, 29733], "final Σ lowercases to σ (per char), not ς: ο ##δ ##ο ##σ"],
    ["中文", [1746, 1861], "each CJK ideograph is a word"],
    ["a\u{20000}b", [1037, 100, 1038], "extension B (outside the BMP) is split off too"],
    ["a\u{2B820}b", [100], "U+2B820..2B91F are not in HF's table: one word, one [UNK]"],
    ["a\u{2B920}b", [1037, 100, 1038], "HF's extension range starts at U+2B920"],
    ["foo\u200Bbar", [29379, 8237], "zero-width space (Cf) is deleted, not a space: foo ##bar"],
    ["a\fb", [11113], "form feed (Cc) is deleted: ab"],
    ["x\u00A0y", [1060, 1061], "no-break space is whitespace"],
    ["\uFEFFhi", [7632], "BOM (Cf) is deleted"],
    ["\u0080\u0099", [], "C1 controls are deleted"],
    ["\uFFFD", [], "U+FFFD is deleted"],
    [
      "Hello, world! (a-b) a_b $5",
      [7592, 1010, 2088, 999, 1006, 1037, 1011, 1038, 1007, 1037, 1035, 1038, 1002, 1019],
      "ASCII punctuation isolated",
    ],
    ["¿Qué? «ok» …", [1094, 10861, 1029, 1077, 7929, 1090, 1529], "Unicode P* punctuation isolated"],
    ["“quoted” ‘x’", [1523, 9339, 1524, 1520, 1060, 1521], "curly quotes are punctuation"],
    ["242,290", [22431, 1010, 17222], "number with a comma"],
    ["a".repeat(101), [100], "a word over 100 characters is [UNK]"],
    ["a [SEP] b", [1037, 102, 1038], "literal [SEP] is the special token"],
    ["a[SEP]b", [1037, 102, 1038], "…even inside a word"],
    ["[sep]", [1031, 19802, 1033], "…but only with its exact spelling (not normalized)"],
    ["I 😀 you", [1045, 100, 2017], "emoji is not in the vocabulary"],
    ["I😀you", [100], "emoji is not punctuation: the whole word is [UNK]"],
    ["a\u2E52b", [100], "U+2E52 is Po only since Unicode 13: not punctuation for HF, one word"],
    ["a\u0D00b", [100], "U+0D00 is Mn only since Unicode 10: HF keeps it, one word"],
    ["x\u{13430}y", [100], "U+13430 is Cf only since Unicode 12: HF keeps it"],
    ["", [], "empty text → [CLS] [SEP]"],
    [" \n\t ", [], "whitespace only → [CLS] [SEP]"],
  ];

  test("tricky texts: pinned ids, identical through both paths", () => {
    for (const [text, ids, why] of tricky) {
      for (const [name, t] of both) assert.deepEqual(t.tokenIds(text), [101, ...ids, 102], `${name}: ${why}`);
    }
  });

  test("a word of exactly 100 characters is still split into pieces", () => {
    const ids = fromJson.tokenIds("a".repeat(100));
    assert.ok(!ids.includes(100));
    assert.deepEqual(ids, fromVocab.tokenIds("a".repeat(100)));
  });

  test("countTokens is the untruncated length including specials", () => {
    for (const [text] of tricky) assert.equal(fromJson.countTokens(text), fromJson.tokenIds(text).length);
    assert.equal(fromJson.countTokens("Hello NVIDIA revenue"), 7);
  });

  test("decode and id/token lookups", () => {
    assert.equal(fromJson.decode(fromJson.tokenIds("Hello NVIDIA revenue")), "hello nvidia revenue");
    assert.equal(fromJson.decode([101, 7592, 102], { skipSpecialTokens: false }), "[CLS] hello [SEP]");
    assert.equal(fromJson.decode([]), "");
    assert.equal(fromVocab.idToToken(17258), "##vid");
    assert.equal(fromVocab.tokenToId("[MASK]"), 103);
  });
});

describe("normalizer (ports tokenizers normalizers/bert.rs)", () => {
  const uncased = { clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true };

  test("lowercases char by char: Σ → σ everywhere, ς kept as written", () => {
    assert.equal(bertNormalize("ΟΔΟΣ ΣΑ", uncased), "οδοσ σα");
    assert.equal(bertNormalize("οδος", uncased), "οδος");
    assert.equal(bertNormalize("İ", uncased), "i"); // NFD → I + U+0307, mark dropped, then lowercased
  });

  test("clean_text: controls and format chars deleted, every White_Space char becomes a space", () => {
    assert.equal(bertNormalize("a\u200Bb\fc\u0000d\uFFFDe\u00ADf", uncased), "abcdef");
    assert.equal(bertNormalize("a\tb\nc\rd\u00A0e\u3000f\u2028g", uncased), "a b c d e f g");
    assert.equal(bertNormalize("\uE000x", uncased), "x"); // private use (Co)
  });

  test("CJK table of bert.rs, code point by code point", () => {
    assert.equal(bertNormalize("中\u{20000}", uncased), " 中  \u{20000} ");
    for (const [cp, want] of [
      [0x4e00, true],
      [0x9fff, true],
      [0x3400, true],
      [0x4dbf, true],
      [0x20000, true],
      [0x2a6df, true],
      [0x2a700, true],
      [0x2b81f, true],
      [0x2b820, false],
      [0x2b91f, false],
      [0x2b920, true],
      [0x2ceaf, true],
      [0xf900, true],
      [0xfaff, true],
      [0x2f800, true],
      [0x2fa1f, true],
      [0x3041, false],
      [0xac00, false],
    ] as const) {
      assert.equal(isChineseChar(String.fromCodePoint(cp)), want, `U+${cp.toString(16)}`);
    }
  });

  test("HF's Unicode 8.0 category tables: well-formed, within today's categories but for 4 recategorized", () => {
    const codePoints = (table: readonly string[]) =>
      table
        .join(" ")
        .split(" ")
        .flatMap((r) => {
          const [a = NaN, b = a] = r.split("-").map((h) => parseInt(h, 16));
          assert.ok(b >= a, r);
          return Array.from({ length: b - a + 1 }, (_, i) => a + i);
        });
    const outside = (table: readonly string[], re: RegExp) => {
      const cps = codePoints(table);
      for (let i = 1; i < cps.length; i++) assert.ok(cps[i]! > cps[i - 1]!, "sorted, no overlap");
      return cps.filter((cp) => !re.test(String.fromCodePoint(cp)));
    };
    assert.deepEqual(outside(HF_CONTROL, /^[\0\uFFFD\p{Cc}\p{Cf}\p{Co}]$/u), []);
    // U+1734 and U+1171E became Mc in Unicode 14: HF still strips them as accents.
    assert.deepEqual(outside(HF_MN, /^\p{Mn}$/u), [0x1734, 0x1171e]);
    // U+166D became So (Unicode 12) and U+111C9 Mn (Unicode 11): HF still isolates them as punctuation.
    assert.deepEqual(outside(HF_PUNCT, /^[\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E]$/u), [0x166d, 0x111c9]);
  });

  test("pre-tokenizer: split on White_Space, isolate HF punctuation", () => {
    assert.deepEqual(bertPreTokenize(" Hey friend!  How are you?!?"), [
      "Hey",
      "friend",
      "!",
      "How",
      "are",
      "you",
      "?",
      "!",
      "?",
    ]);
    assert.deepEqual(bertPreTokenize("a\u2E52b a\u2E3Bb"), ["a\u2E52b", "a", "\u2E3B", "b"]);
    assert.deepEqual(bertPreTokenize("$5 a\u0085b"), ["$", "5", "a", "b"]);
  });

  test("strip_accents follows lowercase when null; explicit values win", () => {
    assert.equal(bertNormalize("Déjà", { ...uncased, lowercase: false }), "Déjà");
    assert.equal(bertNormalize("Déjà", { ...uncased, lowercase: false, strip_accents: true }), "Deja");
    assert.equal(bertNormalize("Déjà", { ...uncased, strip_accents: false }), "déjà");
  });
});

describe("encodeBatch", () => {
  const texts = ["Hello NVIDIA revenue", "", "The quick brown fox."];

  test("pads to the longest row, with masks, token types and lengths", () => {
    for (const [name, t] of both) {
      const b = t.encodeBatch(texts, { maxLength: 128 });
      assert.equal(b.batchSize, 3);
      assert.equal(b.seqLen, 7, name);
      assert.ok(b.inputIds instanceof BigInt64Array);
      assert.deepEqual(row(b.inputIds, 7, 0), [101, 7592, 1050, 17258, 2401, 6599, 102]);
      assert.deepEqual(row(b.inputIds, 7, 1), [101, 102, 0, 0, 0, 0, 0]);
      assert.deepEqual(row(b.inputIds, 7, 2), [101, 1996, 4248, 2829, 4419, 1012, 102]);
      assert.deepEqual(row(b.attentionMask, 7, 1), [1, 1, 0, 0, 0, 0, 0]);
      assert.deepEqual(row(b.attentionMask, 7, 2), [1, 1, 1, 1, 1, 1, 1]);
      assert.deepEqual(Array.from(b.tokenTypeIds, Number), new Array(21).fill(0));
      assert.deepEqual(Array.from(b.lengths), [7, 2, 7]);
    }
  });

  test("truncation keeps [CLS] … [SEP] and the first maxLength − 2 content tokens", () => {
    const b = fromJson.encodeBatch(texts, { maxLength: 5 });
    assert.equal(b.seqLen, 5);
    assert.deepEqual(row(b.inputIds, 5, 0), [101, 7592, 1050, 17258, 102]);
    assert.deepEqual(row(b.inputIds, 5, 1), [101, 102, 0, 0, 0]);
    assert.deepEqual(row(b.inputIds, 5, 2), [101, 1996, 4248, 2829, 102]);
    assert.deepEqual(Array.from(b.lengths), [5, 2, 5]);
    // maxLength = exact length: nothing is cut. maxLength = 2: only the specials remain.
    assert.deepEqual(
      row(fromJson.encodeBatch([texts[0]!], { maxLength: 7 }).inputIds, 7, 0),
      fromJson.tokenIds(texts[0]!),
    );
    assert.deepEqual(
      Array.from(fromJson.encodeBatch([texts[0]!], { maxLength: 2 }).inputIds, Number),
      [101, 102],
    );
  });

  test("the truncation rule, for every length: HF `truncation=True, max_length=L`", () => {
    const text = "Revenue increased 12% to $26.97 billion, driven by data center growth.";
    const full = fromJson.tokenIds(text);
    for (let L = 2; L <= full.length + 2; L++) {
      const b = fromJson.encodeBatch([text], { maxLength: L });
      const want = full.length <= L ? full : [...full.slice(0, L - 1), 102];
      assert.deepEqual(Array.from(b.inputIds, Number), want, `L=${L}`);
    }
  });

  test("padToMultipleOf rounds the padded length up (like HF pad_to_multiple_of)", () => {
    const b = fromJson.encodeBatch(texts, { maxLength: 128, padToMultipleOf: 8 });
    assert.equal(b.seqLen, 8);
    assert.deepEqual(row(b.inputIds, 8, 0), [101, 7592, 1050, 17258, 2401, 6599, 102, 0]);
    assert.deepEqual(row(b.attentionMask, 8, 0), [1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(fromJson.encodeBatch(["hi"], { maxLength: 128, padToMultipleOf: 3 }).seqLen, 3);
  });

  test("empty batch and bad options", () => {
    const e = fromJson.encodeBatch([], { maxLength: 16 });
    assert.deepEqual([e.batchSize, e.seqLen, e.inputIds.length], [0, 0, 0]);
    assert.throws(
      () => fromJson.encodeBatch(["x"], { maxLength: 1 }),
      /maxLength must be an integer >= 2, got 1/,
    );
    assert.throws(() => fromJson.encodeBatch(["x"], { maxLength: 8.5 }), /maxLength/);
    assert.throws(() => fromJson.encodeBatch(["x"], { maxLength: 8, padToMultipleOf: 0 }), /padToMultipleOf/);
  });
});

describe("errors", () => {
  test("a folder with neither tokenizer.json nor vocab.txt", () => {
    const dir = join(scratch, "empty");
    assert.throws(() => HfTokenizer.fromDir(dir), {
      message: `No tokenizer in ${dir}: looked for tokenizer.json and vocab.txt (the folder does not exist)`,
    });
    writeFileSync(join(scratch, "README.md"), "");
    assert.throws(() => HfTokenizer.fromDir(scratch), {
      message: `No tokenizer in ${scratch}: looked for tokenizer.json and vocab.txt (neither exists)`,
    });
  });

  test("malformed JSON names the file", () => {
    const dir = join(scratch, "bad-json");
    HfTokenizer.fromDir(BERT_DIR).save(dir);
    writeFileSync(join(dir, "tokenizer.json"), '{"model": ');
    assert.throws(
      () => HfTokenizer.fromDir(dir),
      (e: Error) => e.message.startsWith(`Malformed JSON in ${join(dir, "tokenizer.json")}:`),
    );
    writeFileSync(join(dir, "tokenizer.json"), "[1, 2]");
    assert.throws(
      () => HfTokenizer.fromDir(dir),
      /tokenizer\.json: not a tokenizer\.json \(no "model" object\)/,
    );
    writeFileSync(join(dir, "tokenizer.json"), '{"version": "1.0"}');
    assert.throws(
      () => HfTokenizer.fromDir(dir),
      /tokenizer\.json: not a tokenizer\.json \(no "model" object\)/,
    );
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(MINILM_DIR, "tokenizer.json")));
    writeFileSync(join(dir, "tokenizer_config.json"), "{ do_lower_case: true }");
    assert.throws(
      () => HfTokenizer.fromDir(dir),
      (e: Error) => e.message.startsWith(`Malformed JSON in ${join(dir, "tokenizer_config.json")}:`),
    );
  });

  test("a vocab.txt without the special tokens", () => {
    assert.throws(() => HfTokenizer.fromVocab("hello\nworld\n", {}, "x/vocab.txt"), {
      message: 'x/vocab.txt: unk_token "[UNK]" is not in the vocabulary',
    });
    assert.throws(() => HfTokenizer.fromVocab("", {}, "x/vocab.txt"), {
      message: "x/vocab.txt: empty vocabulary",
    });
    // Present but renamed in the config: found under the new name.
    const t = HfTokenizer.fromVocab("<pad>\n[UNK]\n[CLS]\n[SEP]\nhi\n", { pad_token: "<pad>" });
    assert.equal(t.padTokenId, 0);
    assert.equal(t.maskTokenId, null);
    assert.deepEqual(t.tokenIds("hi"), [2, 4, 3]);
  });
});
