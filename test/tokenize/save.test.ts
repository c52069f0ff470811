// Saving a tokenizer folder the way transformers' BertTokenizerFast.save_pretrained does, and the
// tokenizer.json that a bare vocab.txt converts to. The strongest check: the JSON built from
// bert-base-uncased's vocab.txt is byte-identical to the all-MiniLM-L6-v2 tokenizer.json (written by HF) once
// its truncation/padding are null.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type TokenizerJson,
  VERY_LARGE_INTEGER,
  parseVocabTxt,
  pyJsonDumps,
  serializeTokenizerJson,
} from "../../src/tokenize/hf_json.ts";
import { HfTokenizer } from "../../src/tokenize/tokenizer.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/tokenizers/", import.meta.url));
const MINILM_DIR = join(FIXTURES, "all-MiniLM-L6-v2");
const BERT_DIR = join(FIXTURES, "bert-base-uncased");
const minilmText = readFileSync(join(MINILM_DIR, "tokenizer.json"), "utf8");
const vocabText = readFileSync(join(BERT_DIR, "vocab.txt"), "utf8");

const scratch = mkdtempSync(join(tmpdir(), "ragtune-tok-save-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const read = (dir: string, name: string) => readFileSync(join(dir, name), "utf8");
const readJson = (dir: string, name: string) => JSON.parse(read(dir, name)) as Record<string, unknown>;

describe("tokenizer.json from vocab.txt", () => {
  test("equals HF's own all-MiniLM-L6-v2 tokenizer.json with truncation and padding null, byte for byte", () => {
    const hf = JSON.parse(minilmText) as TokenizerJson;
    hf.truncation = null;
    hf.padding = null;
    const built = HfTokenizer.fromDir(BERT_DIR).toTokenizerJson();
    assert.equal(built, serializeTokenizerJson(hf));
    assert.deepEqual(JSON.parse(built), hf);
  });

  test("the serializer reproduces HF's file exactly (serde pretty print, vocab in id order)", () => {
    assert.equal(serializeTokenizerJson(JSON.parse(minilmText) as TokenizerJson), minilmText);
  });

  test("tokenizer_config.json options reach the normalizer (BertConverter)", () => {
    const t = HfTokenizer.fromVocab(vocabText, { do_lower_case: false, tokenize_chinese_chars: false });
    assert.deepEqual(t.json.normalizer, {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: false,
      strip_accents: null,
      lowercase: false,
    });
    const basicOff = HfTokenizer.fromVocab(vocabText, { do_basic_tokenize: false });
    assert.equal(basicOff.doLowerCase, false);
    assert.equal(basicOff.stripAccents, false);
  });
});

describe("save", () => {
  test("from tokenizer.json: tokenizer.json unchanged, vocab.txt and special_tokens_map.json as HF wrote them", () => {
    const dir = join(scratch, "from-json");
    const written = HfTokenizer.fromDir(MINILM_DIR).save(dir);
    assert.deepEqual(readdirSync(dir).sort(), [
      "special_tokens_map.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "vocab.txt",
    ]);
    assert.equal(written.length, 4);
    assert.equal(read(dir, "tokenizer.json"), minilmText);
    assert.equal(read(dir, "vocab.txt"), vocabText);
    assert.equal(read(dir, "special_tokens_map.json"), read(MINILM_DIR, "special_tokens_map.json"));
  });

  test("tokenizer_config.json: what transformers writes for BertTokenizerFast", () => {
    const dir = join(scratch, "config");
    HfTokenizer.fromDir(MINILM_DIR).save(dir);
    const text = read(dir, "tokenizer_config.json");
    assert.ok(text.endsWith("}\n"));
    const cfg = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfg), Object.keys(cfg).sort(), "sorted keys (json.dumps sort_keys=True)");
    const original = readJson(MINILM_DIR, "tokenizer_config.json");
    const { added_tokens_decoder: decoder, ...rest } = cfg;
    assert.deepEqual(rest, original, "every original key kept with its value");
    assert.deepEqual(Object.keys(decoder as object), ["0", "100", "101", "102", "103"]);
    assert.deepEqual((decoder as Record<string, unknown>)["101"], {
      content: "[CLS]",
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    });
  });

  test("from vocab.txt: synthesized tokenizer.json, unknown model_max_length as int(1e30)", () => {
    const dir = join(scratch, "from-vocab");
    const t = HfTokenizer.fromDir(BERT_DIR);
    t.save(dir);
    assert.equal(read(dir, "tokenizer.json"), t.toTokenizerJson());
    assert.equal(read(dir, "vocab.txt"), vocabText);
    const cfgText = read(dir, "tokenizer_config.json");
    assert.match(cfgText, /"model_max_length": 1000000000000000019884624838656,/);
    const cfg = JSON.parse(cfgText) as Record<string, unknown>;
    for (const [key, value] of Object.entries({
      tokenizer_class: "BertTokenizer",
      do_lower_case: true,
      strip_accents: null,
      tokenize_chinese_chars: true,
      clean_up_tokenization_spaces: true,
      cls_token: "[CLS]",
      sep_token: "[SEP]",
      pad_token: "[PAD]",
      unk_token: "[UNK]",
      mask_token: "[MASK]",
    })) {
      assert.equal(cfg[key], value, key);
    }
    // Reloading the saved folder takes the tokenizer.json road now, with the same ids and an unknown limit.
    const again = HfTokenizer.fromDir(dir);
    assert.equal(again.origin, "tokenizer.json");
    assert.equal(again.modelMaxLength, null);
    assert.deepEqual(again.tokenIds("Hello NVIDIA revenue"), [101, 7592, 1050, 17258, 2401, 6599, 102]);
  });

  test("modelMaxLength option sets model_max_length; a changed normalizer is saved re-serialized", () => {
    const dir = join(scratch, "options");
    const t = HfTokenizer.fromTokenizerJson(minilmText, {
      tokenizer_class: "BertTokenizer",
      do_lower_case: false,
      model_max_length: 512,
    });
    t.save(dir, { modelMaxLength: 256 });
    assert.equal(readJson(dir, "tokenizer_config.json").model_max_length, 256);
    assert.equal(readJson(dir, "tokenizer_config.json").do_lower_case, false);
    const saved = JSON.parse(read(dir, "tokenizer.json")) as TokenizerJson;
    assert.equal(saved.normalizer?.lowercase, false);
    assert.equal(saved.truncation?.max_length, 128, "truncation/padding kept as read");
    const again = HfTokenizer.fromDir(dir);
    assert.equal(again.doLowerCase, false);
    assert.equal(again.modelMaxLength, 256);
  });

  test("save creates missing parent folders", () => {
    const dir = join(scratch, "a", "b", "c");
    HfTokenizer.fromDir(BERT_DIR).save(dir);
    assert.ok(existsSync(join(dir, "vocab.txt")));
  });
});

describe("file formats", () => {
  test("pyJsonDumps matches Python json.dumps(indent=2, sort_keys=True, ensure_ascii=False)", () => {
    // python3 -c 'import json; print(json.dumps({"b": [1, {}], "a": None, "c": {"y": True, "x": "é\n"},
    //   "d": [], "e": int(1e30)}, indent=2, sort_keys=True, ensure_ascii=False))'
    const want = [
      "{",
      '  "a": null,',
      '  "b": [',
      "    1,",
      "    {}",
      "  ],",
      '  "c": {',
      '    "x": "é\\n",',
      '    "y": true',
      "  },",
      '  "d": [],',
      '  "e": 1000000000000000019884624838656',
      "}",
    ].join("\n");
    const got = pyJsonDumps({ b: [1, {}], a: null, c: { y: true, x: "é\n" }, d: [], e: VERY_LARGE_INTEGER });
    assert.equal(got, want);
  });

  test("vocab.txt lines: universal newlines, blank lines kept, final newline optional (load_vocab)", () => {
    assert.deepEqual(parseVocabTxt("a\r\nb\rc\n\nd"), ["a", "b", "c", "", "d"]);
    assert.deepEqual(parseVocabTxt("a\nb\n"), ["a", "b"]);
    assert.equal(parseVocabTxt(vocabText).length, 30522);
  });
});
