// The seeded split: PCG32 against its published reference output, the sklearn/HF size rule, reproducibility,
// and the documented output order (each side keeps the input order).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Pcg32, seededPermutation, splitOverlap, splitTrainTest, testCount } from "../../src/data/index.ts";

describe("PCG32", () => {
  test("reproduces the reference pcg32-demo (seed 42, stream 54): numbers, coins, rolls", () => {
    // From the PCG C library's pcg32-demo output, "Round 1" (pcg-random.org, "Using the Basic C Implementation").
    const rng = new Pcg32(42, 54);
    const first = Array.from({ length: 6 }, () => rng.next().toString(16).padStart(8, "0"));
    assert.deepEqual(first, ["a15c02b7", "7b47f409", "ba1d3330", "83d2f293", "bfa4784b", "cbed606e"]);
    const coins = Array.from({ length: 65 }, () => (rng.nextBelow(2) ? "H" : "T")).join("");
    assert.equal(coins, "HHTTTHTHHHTHTTTHHHHHTTTHHHTHTHTHTTHTTTHHHHHHTTTTHHTTTTTHTTTTTTTHT");
    const rolls = Array.from({ length: 33 }, () => rng.nextBelow(6) + 1).join(" ");
    assert.equal(rolls, "3 4 1 1 2 2 3 2 4 3 2 4 3 3 5 2 3 1 3 1 5 1 4 1 5 6 4 6 6 2 6 3 3");
  });

  test("the default stream is the demo's, so new Pcg32(42) gives the same numbers", () => {
    assert.equal(new Pcg32(42).next(), 0xa15c02b7);
  });

  test("bounded draws stay in range and are roughly uniform", () => {
    const rng = new Pcg32(1);
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[rng.nextBelow(7)]!++;
    for (const c of counts) assert.ok(Math.abs(c - 10_000) < 400, `count ${c}`);
    assert.throws(() => rng.nextBelow(0), /bad bound/);
  });

  test("a permutation is a permutation, reproducible, seed-dependent", () => {
    const p = seededPermutation(1000, 42);
    assert.deepEqual(
      [...p].sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.deepEqual(seededPermutation(1000, 42), p);
    assert.notDeepEqual(seededPermutation(1000, 43), p);
    // Pinned, so an accidental change of the algorithm (PCG32 + Fisher–Yates from the top) shows up here.
    assert.deepEqual(seededPermutation(10, 42), [8, 2, 6, 4, 5, 1, 7, 0, 9, 3]);
    assert.deepEqual(seededPermutation(0, 42), []);
    assert.deepEqual(seededPermutation(1, 42), [0]);
  });
});

describe("test size (sklearn / HF train_test_split rule)", () => {
  test("ceil for a fraction, exact for an integer", () => {
    assert.equal(testCount(7000, 0.1), 700);
    assert.equal(testCount(6998, 0.1), 700); // ceil(699.8)
    assert.equal(testCount(10, 0.25), 3); // ceil(2.5)
    assert.equal(testCount(100, 0.07), 8); // 0.07 × 100 = 7.000000000000001 in floating point, as in Python
    assert.equal(testCount(100, 30), 30);
    assert.equal(testCount(100, 0), 0);
  });

  test("rejects sizes that leave no training rows or make no sense", () => {
    assert.throws(() => testCount(10, 10), /leaves no rows for training/);
    assert.throws(() => testCount(10, 11), /only 10/);
    assert.throws(() => testCount(10, 1.5), /fraction below 1 or an integer/);
    assert.throws(() => testCount(10, -0.1), /≥ 0/);
  });
});

describe("splitTrainTest", () => {
  const records = Array.from({ length: 7000 }, (_, i) => ({ id: i, anchor: `a${i}`, positive: `p${i}` }));

  test("7,000 rows → 6,300 train / 700 test, disjoint and complete", () => {
    const { train, test: held } = splitTrainTest(records, { testSize: 0.1, seed: 42 });
    assert.equal(train.length, 6300);
    assert.equal(held.length, 700);
    const ids = new Set([...train, ...held].map((r) => r.id));
    assert.equal(ids.size, 7000);
  });

  test("same seed → same split; different seed → different split", () => {
    const a = splitTrainTest(records, { seed: 42 });
    const b = splitTrainTest(records, { seed: 42 });
    const c = splitTrainTest(records, { seed: 43 });
    assert.deepEqual(
      a.test.map((r) => r.id),
      b.test.map((r) => r.id),
    );
    assert.notDeepEqual(
      a.test.map((r) => r.id),
      c.test.map((r) => r.id),
    );
  });

  test("test = the first ceil(testSize × n) indices of the seeded permutation; both sides keep input order", () => {
    const small = records.slice(0, 50);
    const { train, test: held } = splitTrainTest(small, { testSize: 0.2, seed: 9 });
    const expectedTest = seededPermutation(50, 9)
      .slice(0, 10)
      .sort((x, y) => x - y);
    assert.deepEqual(
      held.map((r) => r.id),
      expectedTest,
    );
    assert.deepEqual(
      train.map((r) => r.id),
      small.map((r) => r.id).filter((id) => !expectedTest.includes(id)),
    );
  });

  test("defaults: testSize 0.1, seed 42; the chosen rows are pinned", () => {
    const { test: held } = splitTrainTest(records);
    assert.deepEqual(held, splitTrainTest(records, { testSize: 0.1, seed: 42 }).test);
    assert.deepEqual(
      held.slice(0, 10).map((r) => r.id),
      [9, 18, 23, 31, 33, 37, 43, 66, 68, 85],
    );
  });

  test("splitOverlap counts test rows whose texts also occur in train", () => {
    const train = [
      { anchor: "a", positive: "p" },
      { anchor: "b", positive: "q" },
    ];
    const held = [
      { anchor: "a", positive: "x" },
      { anchor: "c", positive: "q" },
      { anchor: "d", positive: "q" },
    ];
    assert.deepEqual(splitOverlap(train, held), { testRowsWithPositiveInTrain: 2, testRowsWithAnchorInTrain: 1 });
  });
});
