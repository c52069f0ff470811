// ModernBERT's byte-level BPE tokenizer.json through HfTokenizer: a tiny hand-made vocabulary (the 256 byte
// symbols, id = byte value, then 13 merges; test/fixtures/tokenizers/bpe-tiny/make_bpe_fixture.py). Expected ids
// derived by hand; hf-ids.json, when present, holds Hugging Face's.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { HfTokenizer } from "../../src/tokenize/index.ts";

const DIR = fileURLToPath(new URL("../fixtures/tokenizers/bpe-tiny/", import.meta.url));
const tok = HfTokenizer.fromDir(DIR);
const [CLS, SEP] = [270, 271];

// Merge ids: He 256, ll 257, Hell 258, Hello 259, Ġw 260, or 261, Ġwor 262, ld 263, Ġworld 264, Ġt 265, he 266,
// Ġthe 267, Ã© (é) 268.
const HAND: [string, number[], string][] = [
  ["Hello world", [259, 264], "Hello Ġworld"],
  ["Hello the world", [259, 267, 264], "Ġthe"],
  ["café", [99, 97, 102, 268], "é is the bytes C3 A9, merged"],
  ["日本", [230, 151, 165, 230, 156, 172], "unmerged UTF-8 bytes (E6 97 A5, E6 9C AC)"],
  ["Hello  world", [259, 32, 264], "the GPT-2 regex leaves a lone space (byte 32, Ġ)"],
  ["the", [116, 266], "no prefix space: t he"],
  ["", [], "specials only"],
];

describe("byte-level BPE tokenizer.json (ModernBERT layout)", () => {
  test("special ids: [CLS] 270, [SEP] 271, [PAD] 272, [MASK] 273", () => {
    assert.deepEqual(
      [tok.clsTokenId, tok.sepTokenId, tok.padTokenId, tok.maskTokenId, tok.vocabSize],
      [270, 271, 272, 273, 274],
    );
  });

  for (const [text, ids, why] of HAND)
    test(`ids of ${JSON.stringify(text)} (${why})`, () =>
      assert.deepEqual(tok.tokenIds(text), [CLS, ...ids, SEP]));

  test("ids equal Hugging Face's (hf-ids.json from tokenizers and transformers)", (t) => {
    const file = join(DIR, "hf-ids.json");
    if (!existsSync(file)) return t.skip("hf-ids.json not made yet (make_bpe_fixture.py --golden)");
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

  test("save and reload: same ids", () => {
    const dir = mkdtempSync(join(tmpdir(), "ragtune-bpe-"));
    try {
      tok.save(dir);
      const again = HfTokenizer.fromDir(dir);
      for (const [text, ids] of HAND) assert.deepEqual(again.tokenIds(text), [CLS, ...ids, SEP]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
