// The Unigram tokenizer.json of XLM-RoBERTa (bge-m3, multilingual-e5) through HfTokenizer: a tiny hand-made
// vocabulary in XLM-R's layout (test/fixtures/tokenizers/unigram-tiny/make_unigram_fixture.py). The expected
// ids are derived by hand from the piece scores; hf-ids.json, when present, holds the ids that Hugging Face's
// `tokenizers` and `transformers` gave for the same samples (written by the script's --golden mode).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { HfTokenizer } from "../../src/tokenize/index.ts";

const DIR = fileURLToPath(new URL("../fixtures/tokenizers/unigram-tiny/", import.meta.url));
const tok = HfTokenizer.fromDir(DIR);

// [text, ids with <s> = 0 and </s> = 2, why]
const HAND: [string, number[], string][] = [
  ["Hello world", [0, 7, 8, 2], "▁Hello (-5) ▁world (-5.5) beat ▁H ello, ▁wor ld"],
  ["Hello, world.", [0, 7, 5, 8, 6, 2], "punctuation pieces"],
  ["Größe café", [0, 13, 14, 15, 2], "▁Gr öße ▁café (-6 beats ▁caf é, -12)"],
  ["Gro\u0308ße cafe\u0301", [0, 13, 14, 15, 2], "NFKC composes o + U+0308 and e + U+0301"],
  ["Привет мир", [0, 18, 19, 20, 2], "Cyrillic"],
  ["日本語のテキスト", [0, 21, 22, 23, 24, 2], "no spaces: one word"],
  ["\ufb01le", [0, 25, 26, 2], "NFKC turns the ligature ﬁ into fi"],
  ["Hello   world", [0, 7, 8, 2], 'Replace(" {2,}", " ") folds runs of spaces'],
  ["Hello 🙂🙂 world", [0, 7, 4, 3, 8, 2], "unknown characters: one fused <unk> (id 3) after a bare ▁"],
  ["a 123 world", [0, 34, 37, 8, 2], "▁123 (-6.5) beats ▁ 1 23 (-13)"],
  ["", [0, 2], "empty text: specials only"],
];

describe("Unigram tokenizer.json (XLM-R layout)", () => {
  test("special ids come from tokenizer_config.json and the template", () => {
    assert.equal(tok.clsTokenId, 0);
    assert.equal(tok.padTokenId, 1);
    assert.equal(tok.sepTokenId, 2);
    assert.equal(tok.unkTokenId, 3);
    assert.equal(tok.maskTokenId, 38);
    assert.equal(tok.vocabSize, 39);
    assert.equal(tok.numSpecialTokens, 2);
  });

  for (const [text, ids, why] of HAND)
    test(`ids of ${JSON.stringify(text)} (${why})`, () => assert.deepEqual(tok.tokenIds(text), ids));

  test("ids equal Hugging Face's (hf-ids.json from tokenizers and transformers)", (t) => {
    const file = join(DIR, "hf-ids.json");
    if (!existsSync(file)) return t.skip("hf-ids.json not made yet (make_unigram_fixture.py --golden)");
    const hf = JSON.parse(readFileSync(file, "utf8")) as {
      samples: string[];
      tokenizers: number[][];
      transformers: number[][];
    };
    assert.deepEqual(
      hf.samples,
      HAND.map(([s]) => s),
    );
    hf.samples.forEach((s, i) => {
      assert.deepEqual(tok.tokenIds(s), hf.tokenizers[i], `tokenizers: ${JSON.stringify(s)}`);
      assert.deepEqual(tok.tokenIds(s), hf.transformers[i], `transformers: ${JSON.stringify(s)}`);
    });
  });

  test("encodeBatch pads with <pad> = 1 and truncates before </s>", () => {
    const b = tok.encodeBatch(["Hello world", "Привет мир", "Hello, world."], { maxLength: 5 });
    assert.equal(b.seqLen, 5);
    assert.deepEqual(Array.from(b.inputIds, Number), [0, 7, 8, 2, 1, 0, 18, 19, 20, 2, 0, 7, 5, 8, 2]);
    assert.deepEqual(Array.from(b.attentionMask, Number), [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(Array.from(b.tokenTypeIds, Number), Array(15).fill(0));
  });

  test("save and reload: same ids, tokenizer.json byte for byte, no vocab.txt", () => {
    const dir = mkdtempSync(join(tmpdir(), "ragtune-unigram-"));
    try {
      const files = tok.save(dir).map((p) => p.slice(dir.length + 1));
      assert.deepEqual(files.sort(), ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]);
      assert.equal(
        readFileSync(join(dir, "tokenizer.json"), "utf8"),
        readFileSync(join(DIR, "tokenizer.json"), "utf8"),
      );
      const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<
        string,
        unknown
      >;
      assert.equal(config.tokenizer_class, "XLMRobertaTokenizer");
      const again = HfTokenizer.fromDir(dir);
      for (const [text, ids] of HAND) assert.deepEqual(again.tokenIds(text), ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
