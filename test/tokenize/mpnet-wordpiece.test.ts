// MPNet's WordPiece tokenizer.json (all-mpnet-base-v2 layout: <s> … </s> around BERT's uncased WordPiece, <pad> = 1)
// through HfTokenizer: a tiny hand-made vocabulary (test/fixtures/tokenizers/mpnet-tiny/
// make_mpnet_tokenizer_fixture.py). Expected ids derived by hand; hf-ids.json, when present, holds Hugging Face's.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { HfTokenizer } from "../../src/tokenize/index.ts";

const DIR = fileURLToPath(new URL("../fixtures/tokenizers/mpnet-tiny/", import.meta.url));
const tok = HfTokenizer.fromDir(DIR);

// [text, ids with <s> = 0 and </s> = 2, why]
const HAND: [string, number[], string][] = [
  [
    "The quick brown fox jumps over the lazy dog.",
    [0, 9, 10, 11, 12, 13, 14, 15, 9, 16, 17, 18, 2],
    "jump ##s",
  ],
  ["Hello, World!", [0, 21, 19, 22, 20, 2], "lowercased; punctuation split"],
  ["Café CAFE", [0, 23, 23, 2], "accents stripped with lowercase"],
  ["unaffable", [0, 24, 25, 26, 2], "greedy longest-match-first"],
  ["日本語", [0, 27, 28, 29, 2], "CJK characters split one by one"],
  ["xyz hello", [0, 5, 21, 2], "unknown word: [UNK] (id 5), not <unk>"],
  ["abc", [0, 30, 31, 32, 2], "a ##b ##c"],
  ["", [0, 2], "specials only"],
];

describe("MPNet WordPiece tokenizer.json", () => {
  test("special ids: <s> 0, <pad> 1, </s> 2, [UNK] 5, <mask> last", () => {
    assert.deepEqual(
      [tok.clsTokenId, tok.padTokenId, tok.sepTokenId, tok.unkTokenId, tok.maskTokenId, tok.vocabSize],
      [0, 1, 2, 5, 33, 34],
    );
    assert.equal(tok.doLowerCase, true);
  });

  for (const [text, ids, why] of HAND)
    test(`ids of ${JSON.stringify(text)} (${why})`, () => assert.deepEqual(tok.tokenIds(text), ids));

  test("ids equal Hugging Face's (hf-ids.json from tokenizers and transformers)", (t) => {
    const file = join(DIR, "hf-ids.json");
    if (!existsSync(file))
      return t.skip("hf-ids.json not made yet (make_mpnet_tokenizer_fixture.py --golden)");
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

  test("the RobertaProcessing post-processor (older MPNet files) gives the same ids", () => {
    const json = JSON.parse(readFileSync(join(DIR, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    json.post_processor = {
      type: "RobertaProcessing",
      sep: ["</s>", 2],
      cls: ["<s>", 0],
      trim_offsets: true,
      add_prefix_space: true,
    };
    const config = JSON.parse(readFileSync(join(DIR, "tokenizer_config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const roberta = HfTokenizer.fromTokenizerJson(JSON.stringify(json), config);
    for (const [text, ids] of HAND) assert.deepEqual(roberta.tokenIds(text), ids, text);
  });

  test("encodeBatch pads with <pad> = 1", () => {
    const b = tok.encodeBatch(["hello world", "abc"], { maxLength: 16 });
    assert.deepEqual(Array.from(b.inputIds, Number), [0, 21, 22, 2, 1, 0, 30, 31, 32, 2]);
  });

  test("save and reload: same ids; tokenizer_config keeps MPNetTokenizer", () => {
    const dir = mkdtempSync(join(tmpdir(), "ragtune-mpnet-tok-"));
    try {
      tok.save(dir);
      const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<
        string,
        unknown
      >;
      assert.equal(config.tokenizer_class, "MPNetTokenizer");
      const again = HfTokenizer.fromDir(dir);
      for (const [text, ids] of HAND) assert.deepEqual(again.tokenIds(text), ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
