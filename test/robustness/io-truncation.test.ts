// Truncation before tokenization (issue #10 item 11): one 50 MB text used to be tokenized whole before being cut
// to max_seq_length (52 s, 2.9 GB). Now a prefix cut at a whitespace is tokenized, grown only when it holds too
// few tokens. Checked here: the ids equal full tokenization then truncation (dense, sparse, no-space and CJK
// texts, every budget), and the characters handed to the tokenizer for a multi-MB text stay bounded.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB } from "../helpers/tiny-model.ts";

const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });

/** Records the length of every text handed to the tokenizer library (the private `tok` of HfTokenizer). */
function spyOnLengths(t: HfTokenizer): { lengths: number[]; restore: () => void } {
  const lib = t["tok"] as { encode: (text: string, o: unknown) => { ids: number[] } };
  const original = lib.encode;
  const lengths: number[] = [];
  lib.encode = function (this: unknown, text: string, o: unknown) {
    lengths.push(text.length);
    return original.call(this, text, o);
  };
  return { lengths, restore: () => (lib.encode = original) };
}

/** The reference: tokenize whole, then keep the first maxLength − 2 content tokens between [CLS] and [SEP]. */
function fullThenCut(text: string, maxLength: number): number[] {
  const ids = tokenizer.tokenIds(text);
  if (ids.length <= maxLength) return ids;
  return [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
}

function rowOf(text: string, maxLength: number): number[] {
  const e = tokenizer.encodeBatch([text], { maxLength });
  return Array.from(e.inputIds.subarray(0, e.lengths[0]!), Number);
}

const PARA =
  "Net income rose 12% in 2023, driven by higher margins; revenue was $4.2 billion (up from $3.9B). " +
  "Café owners' résumés — naïve? ";

describe("truncation before tokenization", () => {
  test("the same ids as tokenizing whole then cutting, for dense, sparse, unspaced and CJK texts", () => {
    const texts = {
      english: PARA.repeat(60), // ~8,000 characters, ≈ 2,000 tokens
      oneLongWord: "x".repeat(20_000) + " tail words here", // a 20,000-character word is one [UNK]
      longWords: ("a".repeat(150) + " ").repeat(200), // 1 token per 151 characters: the prefix must grow
      unspaced: "1,2;3.4!".repeat(3_000), // punctuation only, no whitespace to cut at
      cjk: "財務報告書の収益は増加した。".repeat(600), // one token per character
      newlines: "line one\r\nline two\t tabbed\n".repeat(500),
    };
    for (const [name, text] of Object.entries(texts)) {
      for (const maxLength of [2, 3, 16, 128, 512, 4096]) {
        assert.deepEqual(
          rowOf(text, maxLength),
          fullThenCut(text, maxLength),
          `${name}, maxLength ${maxLength}`,
        );
        assert.equal(
          tokenizer.countTokens(text, maxLength),
          Math.min(tokenizer.countTokens(text), maxLength),
          `${name}: countTokens(text, ${maxLength})`,
        );
      }
    }
  });

  test("a multi-MB text: only a bounded prefix reaches the tokenizer", () => {
    const big = PARA.repeat(Math.ceil(8e6 / PARA.length)); // 8 MB
    const spy = spyOnLengths(tokenizer);
    try {
      const e = tokenizer.encodeBatch([big, "short text"], { maxLength: 512 });
      assert.deepEqual([e.seqLen, e.lengths[0], e.lengths[1]], [512, 512, 4]);
      assert.equal(tokenizer.countTokens(big, 128), 128);
    } finally {
      spy.restore();
    }
    assert.ok(
      Math.max(...spy.lengths) <= (510 + 8) * 16,
      `characters tokenized per call: ${spy.lengths.join(", ")} (the text has ${big.length})`,
    );
    // The ids are those of a moderately long prefix tokenized whole.
    const prefix = big.slice(0, 20_000);
    assert.deepEqual(rowOf(big, 512), fullThenCut(prefix, 512));
  });
});
