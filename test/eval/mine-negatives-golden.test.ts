// Hard-negative mining against sentence-transformers' mine_hard_negatives in PyTorch:
// test/fixtures/mining/make_mining_golden.py (torch 1.13, ST@85ec6455 util/hard_negatives.py ported line by line)
// wrote mining_golden.json — fixed vectors for 40 anchors, their 40 positives and 80 extra passages, and per case
// (rank window, margins, score bounds) the negatives upstream chooses for every anchor and whether its n-tuple
// row is kept. A lookup embedder serves the same vectors, so only the mining itself is compared.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { tensor, type Tensor } from "../../src/engine/index.ts";
import type { PairRecord } from "../../src/data/index.ts";
import {
  mineHardNegatives,
  type MineNegativesOptions,
  type MiningEmbedder,
} from "../../src/eval/mine-negatives.ts";
import { minedRows } from "../../src/eval/mine-negatives-output.ts";

interface Golden {
  torch: string;
  sentence_transformers: string;
  pairs: PairRecord[];
  corpus: string[];
  vectors: Record<string, number[]>;
  cases: Array<{
    name: string;
    options: Partial<MineNegativesOptions>;
    rows: Array<{ negatives: string[]; kept: boolean }>;
  }>;
}

const golden = JSON.parse(
  readFileSync(new URL("../fixtures/mining/mining_golden.json", import.meta.url), "utf8"),
) as Golden;

/** Texts → the fixture's vectors; corpus chunks of 7 and anchor chunks of 9 exercise the block merge. */
const lookup: MiningEmbedder = {
  embeddingDim: 16,
  encodeTensor(texts: readonly string[]): Tensor {
    const data = new Float32Array(texts.length * 16);
    texts.forEach((t, i) => data.set(golden.vectors[t] ?? assert.fail(`no vector for ${t}`), i * 16));
    return tensor(data, { shape: [texts.length, 16] }); // (N, 16)
  },
};

describe(`mine-negatives vs sentence-transformers@${golden.sentence_transformers.slice(0, 8)} in torch ${golden.torch}`, () => {
  test("the fixture holds every case, some dropping anchors", () => {
    assert.equal(golden.cases.length, 8);
    assert.ok(golden.cases.some((c) => c.rows.some((r) => !r.kept)));
  });

  for (const c of golden.cases) {
    test(`${c.name}: the same negatives for every anchor, the same n-tuple rows`, () => {
      const result = mineHardNegatives(lookup, {
        pairs: golden.pairs,
        corpus: golden.corpus,
        ...c.options,
        corpusChunkSize: 7,
        queryChunkSize: 9,
      });
      result.pairs.forEach((p, i) => {
        assert.deepEqual(
          p.negatives.map((n) => n.text),
          c.rows[i]!.negatives,
          `${c.name}: anchor ${p.record.anchor}`,
        );
      });
      const kept = [...minedRows(result, "n-tuple")].map((r) => r.anchor);
      assert.deepEqual(
        kept,
        golden.pairs.filter((_, i) => c.rows[i]!.kept).map((p) => p.anchor),
      );
    });
  }
});
