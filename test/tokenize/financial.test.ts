// Cross-check on real text: every anchor and positive of the financial RAG data set (7,000 records, 14,000
// texts, shared/data/financial) must get the same ids from the tokenizer.json path (all-MiniLM-L6-v2) and the
// vocab.txt path (bert-base-uncased), both unpadded and through encodeBatch at max_seq_length 256. Outside
// this repo the same texts were run through HF's Rust implementation (npm tokenizers@0.23.2): identical.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { HfTokenizer } from "../../src/tokenize/tokenizer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test/fixtures/tokenizers");
// shared/ sits beside the checkout (../shared) on developer machines and in CI, or inside it in some setups.
const DATA = [join(ROOT, "../shared/data/financial"), join(ROOT, "shared/data/financial")].find((d) =>
  existsSync(join(d, "train.jsonl")),
);

function loadTexts(dir: string): string[] {
  const texts: string[] = [];
  for (const split of ["train", "test"]) {
    for (const line of readFileSync(join(dir, `${split}.jsonl`), "utf8").split("\n")) {
      if (line.trim() === "") continue;
      const r = JSON.parse(line) as { anchor: string; positive: string };
      texts.push(r.anchor, r.positive);
    }
  }
  return texts;
}

test(
  "financial data set: both loaders give identical ids for all 14,000 texts",
  { skip: DATA ? false : "shared/data/financial not found" },
  () => {
    const texts = loadTexts(DATA!);
    assert.equal(texts.length, 14000);
    const a = HfTokenizer.fromDir(join(FIXTURES, "all-MiniLM-L6-v2"));
    const b = HfTokenizer.fromDir(join(FIXTURES, "bert-base-uncased"));
    let tokens = 0;
    let longest = 0;
    for (const text of texts) {
      const ids = a.tokenIds(text);
      assert.deepEqual(b.tokenIds(text), ids, text);
      tokens += ids.length;
      longest = Math.max(longest, ids.length);
    }
    // Sanity on the counts (mean ~33 tokens; the longest passage, 5,585 characters, is well over 512).
    assert.ok(tokens > 14000 * 20 && tokens < 14000 * 60, `total ${tokens}`);
    assert.ok(longest > 512, `longest ${longest}`);

    // Batches as the trainer builds them: identical matrices from both loaders.
    for (let s = 0; s < texts.length; s += 64) {
      const batch = texts.slice(s, s + 64);
      const x = a.encodeBatch(batch, { maxLength: 256 });
      const y = b.encodeBatch(batch, { maxLength: 256 });
      assert.equal(x.seqLen, y.seqLen);
      assert.ok(x.seqLen <= 256);
      assert.deepEqual(x.inputIds, y.inputIds);
      assert.deepEqual(x.attentionMask, y.attentionMask);
    }
  },
);
