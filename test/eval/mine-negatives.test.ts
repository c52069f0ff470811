// Hard-negative mining: a fake embedder whose cosine scores are set by hand (passage vectors hold their score
// with each anchor), so the rank window, margins, score bounds, de-duplication, prompts and sampling can be
// checked exactly; the chunked top-k against one block; the output formats through the pair-file reader `train`
// uses; the tiny model end to end; and `ragtune mine-negatives` as a user runs it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { tensor, type Tensor } from "../../src/engine/index.ts";
import { readPairs, type PairRecord } from "../../src/data/index.ts";
import {
  buildMiningIndex,
  defaultRangeMax,
  exactTopK,
  mineHardNegatives,
  type MineNegativesOptions,
  type MiningEmbedder,
  type MiningResult,
} from "../../src/eval/mine-negatives.ts";
import {
  buildMiningReport,
  formatMiningReport,
  minedRows,
  scoreStats,
  writeJsonlRows,
} from "../../src/eval/mine-negatives-output.ts";
import { readCorpusFile, resolveSidePrompt } from "../../src/cli/mine-negatives.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { freshDir, tinyModelDir } from "../helpers/tiny-model.ts";

// ---------------------------------------------------------------------------------------------------------
// A hand-set embedder: anchor i is the unit vector e_i; a passage is [s_0, …, s_{Q-1}, rest] with rest filling
// the norm to 1, so its cosine with anchor i is exactly s_i (up to float32 rounding).

const ANCHORS = ["qa", "qb"];
/** Each passage's score with qa and qb. */
const SCORES: Record<string, [number, number]> = {
  pa: [0.9, 0.1],
  pa2: [0.85, 0.1],
  n1: [0.89, 0.0],
  n2: [0.8, 0.0],
  n3: [0.7, 0.2],
  n4: [0.6, 0.3],
  n5: [0.5, 0.0],
  n6: [0.4, 0.0],
  pb: [0.3, 0.8],
  m1: [0.0, 0.7],
  m2: [0.0, 0.6],
};

class FakeEmbedder implements MiningEmbedder {
  readonly embeddingDim = ANCHORS.length + 1;
  readonly calls: Array<{ texts: readonly string[]; prompt: string | undefined }> = [];

  encodeTensor(texts: readonly string[], options: { batchSize: number; prompt?: string }): Tensor {
    this.calls.push({ texts: [...texts], prompt: options.prompt });
    const data = new Float32Array(texts.length * this.embeddingDim);
    texts.forEach((t, row) => {
      const q = ANCHORS.indexOf(t);
      const v = new Array<number>(this.embeddingDim).fill(0);
      if (q >= 0) v[q] = 1;
      else {
        const s = SCORES[t];
        if (!s) throw new Error(`fake embedder: no vector for "${t}"`);
        s.forEach((x, i) => (v[i] = x));
        v[ANCHORS.length] = Math.sqrt(Math.max(0, 1 - s.reduce((a, x) => a + x * x, 0)));
      }
      data.set(v, row * this.embeddingDim);
    });
    return tensor(data, { shape: [texts.length, this.embeddingDim] }); // (N, D)
  }
}

const PAIRS: PairRecord[] = [
  { id: 10, anchor: "qa", positive: "pa" },
  { id: 11, anchor: "qb", positive: "pb" },
];
const CORPUS = ["n1", "n2", "n3", "n4", "n5", "n6", "m1", "m2"];

function mine(o: Partial<MineNegativesOptions> = {}): MiningResult {
  return mineHardNegatives(new FakeEmbedder(), { pairs: PAIRS, corpus: CORPUS, ...o });
}

const negativesOf = (r: MiningResult, i: number) => r.pairs[i]!.negatives.map((n) => n.text);

describe("mineHardNegatives on hand-set scores", () => {
  test("top strategy: the best non-positive candidates, best first, with their scores", () => {
    const r = mine({ numNegatives: 3, rangeMax: 20 });
    // qa ranks pa .9 (its positive), n1 .89, n2 .8, n3 .7, n4 .6, …
    assert.deepEqual(negativesOf(r, 0), ["n1", "n2", "n3"]);
    // qb ranks pb .8 (its positive), m1 .7, m2 .6, n4 .3, n3 .2, …
    assert.deepEqual(negativesOf(r, 1), ["m1", "m2", "n4"]);
    const scores = r.pairs[0]!.negatives.map((n) => n.score);
    scores.forEach((s, i) => assert.ok(Math.abs(s - [0.89, 0.8, 0.7][i]!) < 1e-6, `score ${s}`));
    assert.ok(Math.abs(r.pairs[0]!.positiveScore - 0.9) < 1e-6);
    assert.ok(Math.abs(r.pairs[1]!.positiveScore - 0.8) < 1e-6);
    assert.equal(r.uniqueAnchors, 2);
    assert.equal(r.corpusSize, CORPUS.length + 2);
  });

  test("the rank window counts ranks after the positives are removed: [rangeMin, rangeMax)", () => {
    const r = mine({ numNegatives: 2, rangeMin: 1, rangeMax: 4 });
    // qa without pa: n1 n2 n3 n4 … → ranks 1..3 = n2 n3 n4 → the top 2.
    assert.deepEqual(negativesOf(r, 0), ["n2", "n3"]);
    assert.deepEqual(negativesOf(r, 1), ["m2", "n4"]);
    // 5 candidates per anchor (rangeMax 4 + 1 positive); per anchor: 1 positive, 1 before rangeMin, 1 window
    // candidate not chosen, 2 chosen.
    assert.equal(r.candidatesPerAnchor, 5);
    assert.deepEqual(r.filtered, {
      positive: 2,
      absoluteMargin: 0,
      relativeMargin: 0,
      maxScore: 0,
      minScore: 0,
      rankWindow: 2,
      notChosen: 2,
    });
  });

  test("the default rangeMax is sentence-transformers' (×10 negatives when a margin is set)", () => {
    assert.equal(mine({ numNegatives: 2 }).candidatesPerAnchor, 2 + 1 + 1);
    assert.equal(defaultRangeMax({ numNegatives: 1, rangeMin: 1, relativeMargin: 0.1 }, 2), 1 + 10 + 2);
    assert.equal(defaultRangeMax({ numNegatives: 4, maxScore: 0.9 }, 1), 41);
    // Capped at the corpus (10 distinct passages).
    assert.equal(mine({ numNegatives: 1, relativeMargin: 0.1 }).candidatesPerAnchor, 10);
  });

  test("absolute margin: drops candidates with score + margin > positive score", () => {
    // qa: pa .9 → n1 .89 + .05 > .9 is dropped, n2 .8 + .05 = .85 stays.
    const r = mine({ numNegatives: 2, absoluteMargin: 0.05, rangeMax: 20 });
    assert.deepEqual(negativesOf(r, 0), ["n2", "n3"]);
    // qb: pb .8 → m1 .7 + .05 = .75 stays.
    assert.deepEqual(negativesOf(r, 1), ["m1", "m2"]);
    assert.equal(r.filtered.absoluteMargin, 1);
  });

  test("relative margin: drops candidates with score > positive × (1 − margin)", () => {
    // qa: .9 × .8 = .72 → n1 .89 and n2 .8 dropped; qb: .8 × .8 = .64 → m1 .7 dropped.
    const r = mine({ numNegatives: 2, relativeMargin: 0.2, rangeMax: 20 });
    assert.deepEqual(negativesOf(r, 0), ["n3", "n4"]);
    assert.deepEqual(negativesOf(r, 1), ["m2", "n4"]);
    assert.equal(r.filtered.relativeMargin, 3);
  });

  test("the margin is measured against the anchor's lowest positive score", () => {
    // qa has positives pa .9 and pa2 .85: absolute margin 0 drops everything above .85, i.e. n1 .89.
    const pairs = [...PAIRS, { id: 12, anchor: "qa", positive: "pa2" }];
    const r = mineHardNegatives(new FakeEmbedder(), {
      pairs,
      corpus: CORPUS,
      numNegatives: 1,
      absoluteMargin: 0,
    });
    assert.deepEqual(negativesOf(r, 0), ["n2"]);
    assert.equal(r.filtered.absoluteMargin, 1);
  });

  test("max and min score bound the candidates", () => {
    const r = mine({ numNegatives: 5, maxScore: 0.75, minScore: 0.55, rangeMax: 20 });
    assert.deepEqual(negativesOf(r, 0), ["n3", "n4"]);
    // qb: pb .8 is its positive; m1 .7 and m2 .6 are within the bounds, n4 .3 is below.
    assert.deepEqual(negativesOf(r, 1), ["m1", "m2"]);
    // maxScore drops qa's n1 n2; minScore drops qa's n5 n6 pb m1 m2 and qb's n4 n3 pa n1 n2 n5 n6.
    assert.equal(r.filtered.maxScore, 2);
    assert.equal(r.filtered.minScore, 5 + 7);
  });

  test("identical and duplicate passages never become negatives; same-anchor positives are excluded", () => {
    // The extra corpus repeats n2 and holds a copy of qa's positive; a second pair for qa has pa2.
    const pairs = [...PAIRS, { id: 12, anchor: "qa", positive: "pa2" }];
    const r = mineHardNegatives(new FakeEmbedder(), {
      pairs,
      corpus: ["pa", "n2", "n2", ...CORPUS],
      numNegatives: 4,
      rangeMax: 30,
    });
    for (const i of [0, 2]) {
      const negs = negativesOf(r, i);
      assert.deepEqual(negs, ["n1", "n2", "n3", "n4"]);
      assert.equal(new Set(negs).size, negs.length);
      assert.ok(!negs.includes("pa") && !negs.includes("pa2"));
    }
    // Another anchor's positive is a legitimate negative: qb's list may hold pa (.1) only below better ones, and
    // qa's positives count as qb candidates.
    assert.equal(r.uniqueAnchors, 2);
    assert.equal(r.corpusSize, 11);
    const idx = buildMiningIndex(pairs, ["pa", "n2", "n2"]);
    assert.deepEqual(idx.corpus, ["pa", "n2", "pb", "pa2"]);
    assert.deepEqual(idx.positivesOf, [[0, 3], [2]]);
  });

  test("prompts: anchors get the query prompt, passages the corpus prompt", () => {
    const model = new FakeEmbedder();
    mineHardNegatives(model, {
      pairs: PAIRS,
      corpus: CORPUS,
      queryPrompt: "query: ",
      corpusPrompt: "passage: ",
    });
    const byPrompt = new Map(model.calls.map((c) => [c.prompt, c.texts]));
    assert.deepEqual(byPrompt.get("query: "), ["qa", "qb"]);
    assert.deepEqual(new Set(byPrompt.get("passage: ")), new Set([...CORPUS, "pa", "pb"]));
    assert.equal(model.calls.length, 2);
  });

  test("resolveSidePrompt follows encode_query / encode_document", () => {
    const fake = (prompts: Record<string, string>, defaultPromptName: string | null = null) => ({
      spec: { prompts, defaultPromptName } as SentenceTransformer["spec"],
      promptText(o: { prompt?: string; promptName?: string }) {
        if (o.prompt !== undefined) return o.prompt;
        const name = o.promptName ?? defaultPromptName;
        return name === null ? "" : (prompts[name] ?? assert.fail(`unknown prompt ${name}`));
      },
      // The real resolution, over this fake's spec and promptText.
      sidePrompt(side: "query" | "document", o: { prompt?: string; promptName?: string }): string {
        return SentenceTransformer.prototype.sidePrompt.call(this as unknown as SentenceTransformer, side, o);
      },
    });
    const m = fake({ query: "q: ", passage: "p: ", other: "o: " }, "other");
    assert.equal(resolveSidePrompt(m, "query", undefined, undefined), "q: ");
    assert.equal(resolveSidePrompt(m, "corpus", undefined, undefined), "p: ");
    assert.equal(resolveSidePrompt(m, "corpus", "given: ", undefined), "given: ");
    assert.equal(resolveSidePrompt(m, "query", undefined, "other"), "o: ");
    assert.equal(resolveSidePrompt(fake({ x: "x: " }, "x"), "query", undefined, undefined), "x: ");
    assert.equal(resolveSidePrompt(fake({}), "corpus", undefined, undefined), "");
  });

  test("random sampling: seeded, reproducible, drawn from the window and re-sorted best first", () => {
    const o = { numNegatives: 2, rangeMin: 1, rangeMax: 6, samplingStrategy: "random" as const };
    const a = mine({ ...o, seed: 7 });
    const b = mine({ ...o, seed: 7 });
    assert.deepEqual(a.pairs, b.pairs);
    const window = ["n2", "n3", "n4", "n5", "n6"]; // qa's ranks 1..5 without pa
    const draws = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const negs = mine({ ...o, seed }).pairs[0]!.negatives;
      assert.equal(negs.length, 2);
      for (const n of negs) assert.ok(window.includes(n.text), `${n.text} outside the window`);
      assert.ok(negs[0]!.score >= negs[1]!.score);
      draws.add(negs.map((n) => n.text).join(","));
    }
    assert.ok(draws.size > 3, `only ${draws.size} distinct draws in 20 seeds`);
  });

  test("fillRandom completes short anchors with passages below the retrieved ones that pass the filters", () => {
    const o = { numNegatives: 3, rangeMax: 3, maxScore: 0.75, minScore: 0.35, fillRandom: true };
    // qa retrieves pa n1 n2 n3; max score drops n1 n2, so n3 is mined and 2 more are drawn from the passages
    // ranked lower that pass the min score: n4 .6, n5 .5, n6 .4 (not pb .3, m1 0, m2 0).
    const draws = new Set<string>();
    for (let seed = 0; seed < 12; seed++) {
      const r = mine({ ...o, seed });
      const negs = r.pairs[0]!.negatives;
      assert.deepEqual(
        negs.map((n) => n.random),
        [false, true, true],
      );
      assert.equal(negs[0]!.text, "n3");
      for (const n of negs.slice(1)) assert.ok(["n4", "n5", "n6"].includes(n.text), n.text);
      assert.ok(negs[1]!.score > negs[2]!.score);
      draws.add(negs.map((n) => n.text).join(","));
      // qb retrieves pb m1 m2 n4; n4 .3 is below the min score and nothing ranked lower passes it.
      assert.deepEqual(negativesOf(r, 1), ["m1", "m2"]);
      assert.equal(r.filledRandom, 2);
    }
    assert.ok(draws.size > 1, "every seed drew the same passages");
    assert.deepEqual(mine({ ...o, seed: 3 }).pairs, mine({ ...o, seed: 3 }).pairs);
    const report = buildMiningReport(mine(o), "n-tuple", 1);
    assert.deepEqual(report.random, { negatives: 2, pairs: 1, meanScore: report.random.meanScore });
    // qa mined 1 (2 more drawn), qb mined 2.
    assert.deepEqual(report.pairsByNegatives, [0, 1, 1, 0]);
    assert.equal(report.pairsDropped, 1);
    assert.match(formatMiningReport(report), /2 negatives of 1 pairs were drawn at random/);
  });

  test("fillRandom keeps a pair whose few qualifying passages the random draws miss (regression)", () => {
    // Found on the financial data: the empty anchor (train id 1733) scores its positive near 0, so under a
    // relative margin almost no passage qualifies; 8 rounds of draws missed the few that do and the pair was left
    // out of the n-tuple file despite --fill-random. Here 1 passage of 2,001 qualifies (score .1 ≤ .5 × .95).
    const scores: Record<string, number> = { pos: 0.5, lo: 0.1 };
    const corpus = ["lo"];
    for (let i = 0; i < 2000; i++) {
      scores[`hi${i}`] = 0.9;
      corpus.push(`hi${i}`);
    }
    const embedder: MiningEmbedder = {
      embeddingDim: 2,
      encodeTensor: (texts) =>
        tensor(
          Float32Array.from(
            texts.flatMap((t) => {
              if (t === "q") return [1, 0];
              const x = scores[t];
              if (x === undefined) throw new Error(`no vector for "${t}"`);
              return [x, Math.sqrt(1 - x * x)];
            }),
          ),
          { shape: [texts.length, 2] },
        ), // (N, 2)
    };
    const o = { numNegatives: 1, rangeMax: 3, relativeMargin: 0.05, fillRandom: true };
    const pairs = [{ id: 1, anchor: "q", positive: "pos" }];
    for (let seed = 0; seed < 5; seed++) {
      const r = mineHardNegatives(embedder, { pairs, corpus, ...o, seed });
      assert.deepEqual(
        r.pairs[0]!.negatives.map((n) => [n.text, n.random]),
        [["lo", true]],
        `seed ${seed}`,
      );
      assert.equal(buildMiningReport(r, "n-tuple", 1).pairsDropped, 0);
    }
    // When no passage at all qualifies, the pair is left out, and the report does not suggest --fill-random.
    const none = mineHardNegatives(embedder, { pairs, corpus: corpus.slice(1), ...o });
    assert.equal(none.pairs[0]!.negatives.length, 0);
    const text = formatMiningReport(buildMiningReport(none, "n-tuple", 0));
    assert.match(text, /1 pairs \(100\.00%\) got fewer than 1 negatives .* even --fill-random found too few/);
    assert.doesNotMatch(text, /pass --fill-random/);
  });

  test("bad settings are refused with the option's name", () => {
    assert.throws(
      () => mine({ rangeMin: 3, rangeMax: 3 }),
      /rangeMax \(3\) must be larger than rangeMin \(3\)/,
    );
    assert.throws(() => mine({ relativeMargin: 1 }), /relativeMargin must be in \[0, 1\)/);
    assert.throws(() => mine({ numNegatives: 0 }), /numNegatives must be an integer ≥ 1/);
    assert.throws(() => mine({ minScore: 0.9, maxScore: 0.1 }), /minScore \(0.9\) is larger than maxScore/);
    assert.throws(() => mineHardNegatives(new FakeEmbedder(), { pairs: [] }), /there are no pairs/);
  });
});

describe("exactTopK", () => {
  test("any chunking gives the one-block result, ties broken by corpus position", () => {
    // 7 queries × 23 passages with many exact ties (values on a coarse grid).
    const q = tensor(
      Float32Array.from({ length: 7 * 4 }, (_, i) => ((i * 7) % 5) - 2),
      { shape: [7, 4] },
    );
    const c = tensor(
      Float32Array.from({ length: 23 * 4 }, (_, i) => ((i * 3) % 4) - 1),
      { shape: [23, 4] },
    );
    const whole = exactTopK(q, c, 9, { queryChunkSize: 100, corpusChunkSize: 100 });
    for (const [qc, cc] of [
      [1, 1],
      [2, 5],
      [3, 9],
      [7, 22],
    ] as const) {
      const part = exactTopK(q, c, 9, { queryChunkSize: qc, corpusChunkSize: cc });
      assert.deepEqual(part.index, whole.index, `chunks ${qc}×${cc}`);
      assert.deepEqual(part.score, whole.score, `chunks ${qc}×${cc}`);
    }
    // Scores descending and equal scores in ascending corpus position.
    for (let row = 0; row < 7; row++) {
      for (let j = 1; j < 9; j++) {
        const [s0, s1] = [whole.score[row * 9 + j - 1]!, whole.score[row * 9 + j]!];
        assert.ok(s0 > s1 || (s0 === s1 && whole.index[row * 9 + j - 1]! < whole.index[row * 9 + j]!));
      }
    }
  });
});

describe("output formats and the report", () => {
  const result = mine({ numNegatives: 2, rangeMin: 1, rangeMax: 4 });

  test("n-tuple rows load with the pair reader train uses, ids and all", async () => {
    const dir = freshDir("mine");
    const file = join(dir, "hn.jsonl");
    assert.equal(writeJsonlRows(file, minedRows(result, "n-tuple", true)), 2);
    const loaded = await readPairs(file);
    assert.deepEqual(
      loaded.records.map((r) => [r.id, r.anchor, r.positive, r.negatives]),
      [
        [10, "qa", "pa", ["n2", "n3"]],
        [11, "qb", "pb", ["m2", "n4"]],
      ],
    );
    const first = JSON.parse(readFileSync(file, "utf8").split("\n")[0]!) as { score: number[] };
    assert.deepEqual(
      first.score.map((s) => s.toFixed(4)),
      ["0.9000", "0.8000", "0.7000"],
    );
  });

  test("n-tuple leaves out anchors with too few negatives; triplet keeps one row per negative", async () => {
    const short = mine({ numNegatives: 2, maxScore: 0.65, minScore: 0.55, rangeMax: 20 });
    // qa keeps only n4 (.6); qb keeps m2 (.6) and n4 (.3)? no: n4 .3 < .55 → qb keeps m2 only.
    assert.deepEqual(negativesOf(short, 0), ["n4"]);
    assert.deepEqual(negativesOf(short, 1), ["m2"]);
    assert.equal([...minedRows(short, "n-tuple")].length, 0);
    const dir = freshDir("mine");
    const file = join(dir, "triplets.jsonl");
    assert.equal(writeJsonlRows(file, minedRows(short, "triplet")), 2);
    const loaded = await readPairs(file);
    assert.deepEqual(
      loaded.records.map((r) => [r.anchor, r.positive, r.negatives]),
      [
        ["qa", "pa", ["n4"]],
        ["qb", "pb", ["m2"]],
      ],
    );
    const report = buildMiningReport(short, "n-tuple", 0);
    assert.equal(report.pairsDropped, 2);
    assert.deepEqual(report.pairsByNegatives, [0, 2, 0]);
    assert.match(formatMiningReport(report), /2 pairs \(100.00%\) got fewer than 2 negatives/);
  });

  test("labeled-pair: label 1 for each positive, 0 for each negative, under `passage` (train refuses it)", async () => {
    const rows = [...minedRows(result, "labeled-pair")];
    assert.deepEqual(rows, [
      { anchor: "qa", passage: "pa", label: 1 },
      { anchor: "qa", passage: "n2", label: 0 },
      { anchor: "qa", passage: "n3", label: 0 },
      { anchor: "qb", passage: "pb", label: 1 },
      { anchor: "qb", passage: "m2", label: 0 },
      { anchor: "qb", passage: "n4", label: 0 },
    ]);
    const file = join(freshDir("mine"), "labeled.jsonl");
    writeJsonlRows(file, rows);
    await assert.rejects(readPairs(file), /missing column "positive"/);
  });

  test("the report: counts add up to the candidates, score statistics as torch computes them", () => {
    const report = buildMiningReport(result, "n-tuple", 2);
    const f = report.filtered;
    const chosen = result.pairs.reduce((s, p) => s + p.negatives.length, 0);
    assert.equal(
      f.positive +
        f.absoluteMargin +
        f.relativeMargin +
        f.maxScore +
        f.minScore +
        f.rankWindow +
        f.notChosen +
        chosen,
      report.candidates,
    );
    assert.equal(report.scores.negative.count, 4);
    assert.equal(report.scores.difference.count, 4);
    // torch.tensor([1., 2., 3., 4.]): median 2 (the lower middle), quantile(.25) 1.75, std 1.2910.
    const s = scoreStats([4, 1, 3, 2]);
    assert.equal(s.median, 2);
    assert.equal(s.q25, 1.75);
    assert.equal(s.std.toFixed(4), "1.2910");
    assert.match(formatMiningReport(report), /Metric\s+Positive\s+Negative\s+Difference/);
  });

  test("readCorpusFile: .txt lines and a data file's column", async () => {
    const dir = freshDir("corpus");
    writeFileSync(join(dir, "c.txt"), "first passage\n\n  \nsecond passage\n");
    assert.deepEqual(await readCorpusFile(join(dir, "c.txt")), ["first passage", "second passage"]);
    writeFileSync(join(dir, "c.jsonl"), '{"text": "a"}\n{"text": "b"}\n');
    assert.deepEqual(await readCorpusFile(join(dir, "c.jsonl")), ["a", "b"]);
    writeFileSync(join(dir, "bad.jsonl"), '{"body": "a"}\n');
    await assert.rejects(
      readCorpusFile(join(dir, "bad.jsonl")),
      /bad\.jsonl:1: no "text" or "positive" column/,
    );
  });
});

describe("with a real model", () => {
  const pairs: PairRecord[] = [
    { id: 0, anchor: "what was the revenue in 2023", positive: "revenue grew to 5 billion dollars in 2023" },
    { id: 1, anchor: "who is the chief executive", positive: "the chief executive officer is jane doe" },
    { id: 2, anchor: "what was the revenue in 2023", positive: "total net sales were 5 billion" },
    { id: 3, anchor: "how many employees", positive: "we had 12,000 employees at year end" },
    { id: 4, anchor: "where is the headquarters", positive: "our headquarters are in austin texas" },
  ];
  const corpus = [
    "revenue grew to 5 billion dollars in 2023",
    "the board met twice",
    "dividends were paid",
    "net income fell",
  ];

  test("the tiny model: deterministic, no positive or duplicate among the negatives", () => {
    const model = SentenceTransformer.fromDir(tinyModelDir());
    try {
      const run = () => mineHardNegatives(model, { pairs, corpus, numNegatives: 3, queryPrompt: "query: " });
      const a = run();
      assert.deepEqual(run().pairs, a.pairs);
      const positivesByAnchor = new Map<string, Set<string>>();
      for (const p of pairs)
        positivesByAnchor.set(p.anchor, (positivesByAnchor.get(p.anchor) ?? new Set()).add(p.positive));
      for (const p of a.pairs) {
        const negs = p.negatives.map((n) => n.text);
        assert.equal(negs.length, 3);
        assert.equal(new Set(negs).size, 3);
        for (const n of negs)
          assert.ok(!positivesByAnchor.get(p.record.anchor)!.has(n), `${n} is a positive`);
        for (let j = 1; j < negs.length; j++) assert.ok(p.negatives[j - 1]!.score >= p.negatives[j]!.score);
      }
      // Pairs 0 and 2 share their anchor, so they share their negatives.
      assert.deepEqual(a.pairs[0]!.negatives, a.pairs[2]!.negatives);
    } finally {
      model.dispose();
    }
  });

  test("ragtune mine-negatives writes a file train reads, and the report", async () => {
    const dir = freshDir("mine-cli");
    const pairsFile = join(dir, "pairs.jsonl");
    writeFileSync(pairsFile, pairs.map((p) => JSON.stringify(p)).join("\n") + "\n");
    writeFileSync(join(dir, "extra.txt"), corpus.join("\n") + "\n");
    const out = join(dir, "hn.jsonl");
    const bin = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));
    const args = [
      ...["mine-negatives", "--model", tinyModelDir(), "--pairs", pairsFile, "--out", out],
      ...["--corpus", join(dir, "extra.txt"), "--num-negatives", "2", "--report", join(dir, "report.json")],
    ];
    const ragtune = (argv: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [bin, ...argv], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stderr }));
      });
    const [run, bad] = await Promise.all([
      ragtune(args),
      ragtune([...args.slice(0, 7), "--sampling-strategy", "best"]),
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--sampling-strategy must be top or random, got "best"/);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /5 pairs, 4 distinct anchors, 8 distinct passages/);
    assert.match(run.stderr, /5 rows written \(n-tuple\)/);
    const loaded = await readPairs(out);
    assert.deepEqual(
      loaded.records.map((r) => [r.id, r.negatives?.length]),
      pairs.map((p) => [p.id, 2]),
    );
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { rowsWritten: number };
    assert.equal(report.rowsWritten, 5);
  });
});
