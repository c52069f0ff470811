// Tests of embedding quantization (quantize.ts) and the dim × precision evaluation (quantized-eval.ts):
// golden values from sentence-transformers' quantize_embeddings expressions in numpy
// (test/fixtures/quantize/make_quantize_golden.py), and small cases worked out by hand in the comments.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  bytesPerVector,
  calibrationRanges,
  floatMatrix,
  forEachQueryScores,
  hammingDistance,
  packSignBits,
  parsePrecisions,
  quantizeEmbeddings,
  rescoreDot,
  rescoreVector,
  truncateRows,
  unpackBits,
  type FloatMatrix,
  type Precision,
} from "../../src/eval/quantize.ts";
import {
  evaluateQuantized,
  formatPrecisionTable,
  precisionEvaluatorName,
  precisionRows,
} from "../../src/eval/quantized-eval.ts";
import { perQueryResults } from "../../src/eval/per-query.ts";
import { torchQueryScores } from "../../src/eval/quantized-scorer-torch.ts";

const golden = JSON.parse(
  readFileSync(new URL("../fixtures/quantize/golden.json", import.meta.url), "utf8"),
) as Record<string, number[][]>;

const mat = (rows: number[][]): FloatMatrix =>
  floatMatrix(Float32Array.from(rows.flat()), rows.length, rows[0]!.length);
const asRows = (data: ArrayLike<number>, width: number): number[][] => {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += width) out.push(Array.from(data).slice(i, i + width));
  return out;
};

describe("quantizeEmbeddings matches sentence-transformers' quantize_embeddings", () => {
  const emb = mat(golden.embeddings!);
  const calib = mat(golden.calibration!);
  for (const [key, precision, ranges] of [
    ["int8_self", "int8", () => calibrationRanges(emb)],
    ["uint8_self", "uint8", () => calibrationRanges(emb)],
    ["int8_calib", "int8", () => calibrationRanges(calib)],
    ["uint8_calib", "uint8", () => calibrationRanges(calib)],
    ["binary", "binary", () => undefined],
    ["ubinary", "ubinary", () => undefined],
  ] as const) {
    it(`${key}: every value equal`, () => {
      const q = quantizeEmbeddings(emb, precision as Precision, ranges());
      assert.deepEqual(asRows(q.data, q.width), golden[key]);
    });
  }
});

describe("packbits bit order and int8 ranges, by hand", () => {
  it("the first component goes to the high bit (numpy packbits, bitorder='big')", () => {
    // signs 1 0 0 0 0 0 0 1 | 0 1 0 0 0 0 0 0 → 0b10000001 = 129, 0b01000000 = 64; 0 is not > 0
    const m = mat([[0.5, -1, 0, 0, -0.1, 0, -3, 2, 0, 1e-9, 0, 0, 0, 0, 0, -2]]);
    assert.deepEqual(Array.from(packSignBits(m)), [129, 64]);
    assert.deepEqual(Array.from(quantizeEmbeddings(m, "binary").data), [1, -64]); // minus 128
    assert.deepEqual(Array.from(unpackBits(Uint8Array.from([129]))), [1, 0, 0, 0, 0, 0, 0, 1]);
    assert.throws(() => packSignBits(mat([[1, 2, 3]])), /divisible by 8/);
  });

  it("int8 / uint8 buckets: (x - min) / ((max - min) / 255), truncated, saturated outside the range", () => {
    // range [-1, 1], step = float32(2/255): x = 1 → 254.99998 in float32 → 254 (uint8) / 126 (int8), as numpy
    // gives; x = -1 → 0 / -128; x = 0 → 127.49999 → 127 (uint8); 127.49999 - 128 = -0.50001 → 0 (int8:
    // truncation toward zero, like the C cast); x = 2 → 382.49997 → saturates at 255 / 127 (numpy wraps to
    // 126 / -2); x = -3 → -254.99998 → 0 / -128 (numpy: 2 / -127).
    const ranges = { min: Float32Array.of(-1), max: Float32Array.of(1) };
    const m = mat([[1], [-1], [0], [2], [-3]]);
    assert.deepEqual(Array.from(quantizeEmbeddings(m, "uint8", ranges).data), [254, 0, 127, 255, 0]);
    assert.deepEqual(Array.from(quantizeEmbeddings(m, "int8", ranges).data), [126, -128, 0, 127, -128]);
    // an empty range (min == max) maps everything to the lowest bucket instead of dividing by zero
    const flat = { min: Float32Array.of(0.5), max: Float32Array.of(0.5) };
    assert.deepEqual(Array.from(quantizeEmbeddings(mat([[0.5], [3]]), "int8", flat).data), [-128, -128]);
    assert.throws(() => quantizeEmbeddings(m, "int8"), /ranges are required/);
  });

  it("calibration ranges are the per-dimension min and max", () => {
    const r = calibrationRanges(
      mat([
        [1, -2],
        [3, 0],
        [-1, 5],
      ]),
    );
    assert.deepEqual(
      [Array.from(r.min), Array.from(r.max)],
      [
        [-1, -2],
        [3, 5],
      ],
    );
  });

  it("bytes per vector", () => {
    assert.deepEqual(
      (["float32", "int8", "uint8", "binary", "ubinary"] as const).map((p) => bytesPerVector(768, p)),
      [3072, 768, 768, 96, 96],
    );
    assert.deepEqual(parsePrecisions("float32, binary"), ["float32", "binary"]);
    assert.throws(() => parsePrecisions("int4"), /unknown precision "int4"/);
    assert.throws(() => parsePrecisions("int8,int8"), /twice/);
  });

  it("truncation re-normalizes for cosine", () => {
    const t = truncateRows(mat([[3, 4, 12]]), 2, true);
    assert.deepEqual(Array.from(t.data), [Math.fround(0.6), Math.fround(0.8)]);
    assert.deepEqual(Array.from(truncateRows(mat([[3, 4, 12]]), 2, false).data), [3, 4]);
  });
});

describe("scores on quantized vectors", () => {
  it("Hamming distance ranks crafted bit vectors; binary and ubinary agree", () => {
    // query bits 11110000; docs: 11110000 (d=0), 11100000 (d=1), 00001111 (d=8), 11000000 (d=2)
    const row = (bits: string) => [...bits].map((b) => (b === "1" ? 1 : -1));
    const q = mat([row("11110000")]);
    const c = mat([row("11110000"), row("11100000"), row("00001111"), row("11000000")]);
    assert.equal(hammingDistance(Uint8Array.of(0xf0), 0, Uint8Array.of(0x0f), 0, 1), 8);
    for (const p of ["binary", "ubinary"] as const) {
      const got: number[] = [];
      forEachQueryScores(quantizeEmbeddings(q, p), quantizeEmbeddings(c, p), (_, s) => got.push(...s));
      assert.deepEqual(got, [-0, -1, -8, -2], p);
    }
  });

  it("int8 scores are dot products of the stored integers", () => {
    const ranges = { min: Float32Array.of(-1, -1), max: Float32Array.of(1, 1) };
    // q = [1, -1] → [126, -128]; docs [1, 1] → [126, 126]; [-1, 1] → [-128, 126] (see the buckets test)
    const q = quantizeEmbeddings(mat([[1, -1]]), "int8", ranges);
    const c = quantizeEmbeddings(
      mat([
        [1, 1],
        [-1, 1],
      ]),
      "int8",
      ranges,
    );
    const got: number[] = [];
    forEachQueryScores(q, c, (_, s) => got.push(...s));
    assert.deepEqual(got, [126 * 126 - 128 * 126, -128 * 126 - 128 * 126]);
  });

  it("rescoring multiplies with the bits (binary) or the stored integers (int8), as ST's einsum", () => {
    const c = quantizeEmbeddings(mat([[1, -1, 1, -1, -1, -1, -1, 1]]), "binary");
    assert.deepEqual(Array.from(rescoreVector(c, 0)), [1, 0, 1, 0, 0, 0, 0, 1]);
    // rescoreDot = float query · that vector, without building it: 0.5 + 0.25 + 2 (bits 0, 2 and 7)
    const q = mat([[0.5, 8, 0.25, 8, 8, 8, 8, 2]]);
    assert.equal(rescoreDot(q, 0, c, 0), 2.75);
    assert.equal(
      rescoreDot(q, 0, quantizeEmbeddings(mat([[1, -1, 1, -1, -1, -1, -1, 1]]), "ubinary"), 0),
      2.75,
    );
    const ranges = { min: new Float32Array(8).fill(-1), max: new Float32Array(8).fill(1) };
    const i8 = quantizeEmbeddings(mat([[1, -1, 0, 0, 0, 0, 0, 0]]), "int8", ranges); // [126, -128, 0, …]
    assert.equal(rescoreDot(q, 0, i8, 0), 0.5 * 126 - 8 * 128);
  });
});

describe("evaluateQuantized", () => {
  // 8 dims, query signs ++++----. d1 flips the sign of dimension 0, d2 that of dimension 1: both at Hamming
  // distance 1, so binary ranks d1 first (id order). ST's rescoring, float query · bits: d1's bits 01110000
  // give 0.1 + 0.1 + 0.1 = 0.3 (before normalization), d2's 10110000 give 0.9 + 0.1 + 0.1 = 1.1 → d2 first.
  const queries = mat([[0.9, 0.1, 0.1, 0.1, -0.1, -0.1, -0.1, -0.1]]);
  const corpus = mat([
    [-0.1, 0.9, 0.1, 0.1, -0.1, -0.1, -0.1, -0.1], // d1
    [0.9, -0.1, 0.1, 0.1, -0.1, -0.1, -0.1, -0.1], // d2 (relevant)
    [-0.5, -0.5, -0.5, -0.5, 0.5, 0.5, 0.5, 0.5], // d3: every sign differs
  ]);
  const base = {
    queries,
    corpus,
    queryIds: ["q"],
    corpusIds: ["d1", "d2", "d3"],
    relevantDocs: new Map([["q", new Set(["d2"])]]),
    dims: [8],
  };

  it("binary ties break by id; rescore ×1 reorders by the float query; keys extend ST's", () => {
    const r = evaluateQuantized({ ...base, precisions: ["float32", "binary"], rescore: 1 });
    // float32: d2 first → MRR 1; binary: d1 and d2 tie at Hamming 1, d1 first by id → MRR 1/2
    assert.equal(r.metrics["dim_8_cosine_mrr@10"], 1);
    assert.equal(r.metrics["dim_8_binary_cosine_mrr@10"], 0.5);
    assert.equal(r.metrics["dim_8_binary_rescore1_cosine_mrr@10"], 1);
    // nDCG@10 with the relevant doc at rank 2: 1 / log2(3)
    assert.equal(r.metrics["dim_8_binary_cosine_ndcg@10"], 1 / Math.log2(3));
    assert.deepEqual(
      r.rows.map((x) => [x.name, x.bytesPerVector]),
      [
        ["dim_8", 32],
        ["dim_8_binary", 1],
        ["dim_8_binary_rescore1", 1],
      ],
    );
    assert.equal(r.calibration, null); // no int8/uint8: no ranges
    const f = evaluateQuantized({ ...base, precisions: ["binary"], rescore: 1, rescoreCorpus: "float" });
    assert.equal(f.metrics["dim_8_binary_rescore1_cosine_mrr@10"], 1);
    const table = formatPrecisionTable(r.metrics, r.rows, 8);
    assert.match(table, /binary \+rescore×1/);
    assert.match(table, / 8 +binary +1 +32× +0\.6309 +0\.5000 +1\.0000 +63\.1%/); // nDCG 1/log2(3) of 1
  });

  it("int8 stores the corpus calibration ranges per dim, and uses a given calibration set", () => {
    const r = evaluateQuantized({ ...base, dims: [8, 4], precisions: ["int8", "uint8"] });
    assert.deepEqual(
      r.calibration?.ranges.map((x) => [x.dim, x.min.length]),
      [
        [8, 8],
        [4, 4],
      ],
    );
    assert.equal(r.calibration?.source, "corpus");
    assert.ok(r.metrics["dim_4_uint8_cosine_ndcg@10"] !== undefined);
    const calibration = mat([
      [-1, -1, -1, -1, -1, -1, -1, -1],
      [1, 1, 1, 1, 1, 1, 1, 1],
    ]);
    const r2 = evaluateQuantized({ ...base, precisions: ["int8"], calibration, calibrationSource: "c.npy" });
    // the set is re-normalized at dim 8 like the corpus: ±1/√8 in every dimension
    assert.equal(r2.calibration?.ranges[0]?.max[0], Math.fround(1 / Math.sqrt(8)));
    assert.equal(r2.calibration?.source, "c.npy");
  });

  it("per-query results: nDCG@10, first relevant rank and the top passages with their texts", () => {
    const [r] = perQueryResults({
      ...base,
      queryTexts: ["the query"],
      corpusTexts: ["one", "two", "three"],
      dim: 8,
      top: 2,
    });
    // float cosine: d2 (relevant) is nearest, then d1; d3 points the other way
    assert.deepEqual(
      [
        r!.queryId,
        r!.query,
        r!["ndcg@10"],
        r!.firstRelevantRank,
        r!.top.map((p) => [p.corpusId, p.text, p.relevant]),
      ],
      [
        "q",
        "the query",
        1,
        1,
        [
          ["d2", "two", true],
          ["d1", "one", false],
        ],
      ],
    );
  });

  it("rejects bad input with the reason", () => {
    assert.throws(() => evaluateQuantized({ ...base, dims: [16], precisions: ["int8"] }), /dim 16 is larger/);
    assert.throws(() => evaluateQuantized({ ...base, dims: [4], precisions: ["binary"] }), /divisible by 8/);
    assert.throws(
      () => evaluateQuantized({ ...base, precisions: ["binary"], rescore: 0 }),
      /positive integer/,
    );
    assert.equal(precisionEvaluatorName(128, "int8", 4), "dim_128_int8_rescore4");
    assert.equal(precisionRows([64], ["float32"], 2).length, 1); // float32 is never rescored
  });
});

describe("libtorch scorer", () => {
  // 300 queries (two blocks of 256) × 40 documents × 64 dims of seeded pseudo-random values
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const m = (rows: number) => floatMatrix(Float32Array.from({ length: rows * 64 }, rand), rows, 64);
  const queries = m(300);
  const corpus = m(40);

  it("gives the JS scorer's scores exactly for int8 and uint8 (and passes bits to it)", () => {
    const ranges = calibrationRanges(corpus);
    for (const p of ["int8", "uint8", "binary", "ubinary"] as const) {
      const q = quantizeEmbeddings(queries, p, ranges);
      const c = quantizeEmbeddings(corpus, p, ranges);
      const js: number[] = [];
      const torch: number[] = [];
      forEachQueryScores(q, c, (_, s) => js.push(...s));
      torchQueryScores(q, c, (_, s) => torch.push(...s));
      assert.equal(torch.length, 300 * 40);
      assert.ok(
        js.every((v, i) => v === torch[i]),
        p,
      );
    }
  });

  it("the same metrics through evaluateQuantized", () => {
    const ids = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}`);
    const o = {
      queries,
      corpus,
      queryIds: ids(300, "q"),
      corpusIds: ids(40, "d"),
      relevantDocs: new Map(ids(300, "q").map((q, i) => [q, new Set([`d${i % 40}`])])),
      dims: [64, 32],
      precisions: ["int8", "binary"] as Precision[],
      rescore: 2,
    };
    assert.deepEqual(
      evaluateQuantized({ ...o, scorer: torchQueryScores }).metrics,
      evaluateQuantized(o).metrics,
    );
  });
});
