// Batch samplers: reproducibility per (seed, epoch), every row once per epoch, the sentence-transformers
// no-duplicates loop (checked against a literal port of its 3.x dict-based loop), length grouping's padding cut,
// and exact mid-epoch resume.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { before, describe, test } from "node:test";
import { Pcg32, readPairs, seededPermutation } from "../../src/data/index.ts";
import type { PairRecord } from "../../src/data/index.ts";
import {
  BatchCursor,
  LengthGroupedBatchSampler,
  NoDuplicatesBatchSampler,
  ShuffledBatchSampler,
  pairTexts,
  paddingFraction,
} from "../../src/train/samplers.ts";
import type { BatchSampler, SamplerState } from "../../src/train/samplers.ts";

const FINANCIAL_TRAIN = fileURLToPath(new URL("../../data/financial/train.jsonl", import.meta.url));

/** Every row index in 0..n−1 exactly once over the epoch's batches. */
function assertPartition(batches: readonly (readonly number[])[], n: number, message = ""): void {
  const all = batches.flat().sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: n }, (_, i) => i),
    `not a partition ${message}`,
  );
}

/** The number of batches in which some text (any column) occurs in two different rows. */
function batchesWithRepeatedText(
  batches: readonly (readonly number[])[],
  texts: readonly (readonly string[])[],
): number {
  let count = 0;
  for (const batch of batches) {
    const seen = new Set<string>();
    let repeated = false;
    for (const i of batch) {
      const own = new Set(texts[i]);
      for (const t of own) if (seen.has(t)) repeated = true;
      for (const t of own) seen.add(t);
    }
    if (repeated) count++;
  }
  return count;
}

/**
 * A literal port of sentence-transformers 3.x NoDuplicatesBatchSampler.__iter__ after the shuffle
 * (`remaining_indices = dict.fromkeys(order)`; a JS Set iterates in insertion order like a Python dict):
 *   while remaining_indices:
 *       batch_values = set(); batch_indices = []
 *       for index in remaining_indices:
 *           sample_values = set(dataset[index].values())
 *           if sample_values & batch_values: continue
 *           batch_indices.append(index)
 *           if len(batch_indices) == batch_size: yield batch_indices; break
 *           batch_values.update(sample_values)
 *       else:
 *           if not drop_last: yield batch_indices
 *       for index in batch_indices: del remaining_indices[index]
 */
function stReference(
  order: readonly number[],
  texts: readonly (readonly string[])[],
  batchSize: number,
  dropLast: boolean,
): number[][] {
  const remaining = new Set(order);
  const out: number[][] = [];
  while (remaining.size > 0) {
    const batchValues = new Set<string>();
    const batch: number[] = [];
    let full = false;
    for (const index of remaining) {
      const values = new Set(texts[index]);
      if ([...values].some((v) => batchValues.has(v))) continue;
      batch.push(index);
      if (batch.length === batchSize) {
        out.push(batch);
        full = true;
        break;
      }
      for (const v of values) batchValues.add(v);
    }
    if (!full && !dropLast) out.push(batch);
    for (const index of batch) remaining.delete(index);
  }
  return out;
}

/** Synthetic pairs with many shared passages and some anchor/positive collisions across columns. */
function syntheticTexts(n: number, seed: number): string[][] {
  const rng = new Pcg32(seed);
  return Array.from({ length: n }, (_, i) => {
    const positive = `p${rng.nextBelow(Math.max(1, Math.floor(n / 3)))}`;
    // every 10th anchor equals some row's positive text (a cross-column duplicate)
    const anchor = i % 10 === 0 ? `p${rng.nextBelow(Math.max(1, Math.floor(n / 3)))}` : `a${i}`;
    return i % 7 === 0 ? [anchor, positive, `p${rng.nextBelow(50)}`] : [anchor, positive];
  });
}

describe("paddingFraction", () => {
  test("padding / padded total, each batch padded to its longest", () => {
    // [10, 5] → 20 padded, 15 real; [7] → 7, 7: (27 − 22) / 27
    assert.equal(paddingFraction([[0, 1], [2]], [10, 5, 7]), 5 / 27);
    assert.equal(paddingFraction([[0, 1]], [4, 4]), 0);
    assert.equal(paddingFraction([], []), 0);
    assert.throws(() => paddingFraction([[3]], [1]), /no length/);
  });
});

describe("ShuffledBatchSampler", () => {
  test("a seeded permutation cut into batches; pinned, so an algorithm change shows", () => {
    // seededPermutation(10, 42) = [8, 2, 6, 4, 5, 1, 7, 0, 9, 3] (pinned in test/data/split.test.ts)
    const sampler = new ShuffledBatchSampler(10, { batchSize: 4, seed: 42 });
    assert.deepEqual(sampler.batches(0), [
      [8, 2, 6, 4],
      [5, 1, 7, 0],
      [9, 3],
    ]);
    assert.equal(sampler.length, 3);
    const dropping = new ShuffledBatchSampler(10, { batchSize: 4, seed: 42, dropLast: true });
    assert.deepEqual(dropping.batches(0), [
      [8, 2, 6, 4],
      [5, 1, 7, 0],
    ]);
    assert.equal(dropping.length, 2);
  });

  test("reproducible per (seed, epoch), different across epochs and seeds, a partition every epoch", () => {
    const a = new ShuffledBatchSampler(1000, { batchSize: 32, seed: 42 });
    const b = new ShuffledBatchSampler(1000, { batchSize: 32, seed: 42 });
    for (let epoch = 0; epoch < 4; epoch++) {
      assert.deepEqual(a.batches(epoch), b.batches(epoch));
      assertPartition(a.batches(epoch), 1000);
      assert.equal(a.batches(epoch).length, a.length);
    }
    assert.notDeepEqual(a.batches(0), a.batches(1));
    assert.notDeepEqual(a.batches(0), new ShuffledBatchSampler(1000, { batchSize: 32, seed: 7 }).batches(0));
    // the epoch enters only through seed + epoch (sentence-transformers' rule)
    assert.deepEqual(a.batches(3), new ShuffledBatchSampler(1000, { batchSize: 32, seed: 45 }).batches(0));
    assert.deepEqual(a.config, { kind: "shuffled", size: 1000, batchSize: 32, seed: 42, dropLast: false });
  });

  test("validates its arguments", () => {
    assert.throws(() => new ShuffledBatchSampler(10, { batchSize: 0 }), /batchSize/);
    assert.throws(() => new ShuffledBatchSampler(-1, { batchSize: 2 }), /size/);
    assert.throws(() => new ShuffledBatchSampler(10, { batchSize: 2, seed: 1.5 }), /seed/);
    assert.throws(() => new ShuffledBatchSampler(10, { batchSize: 2 }).batches(-1), /epoch/);
    assert.deepEqual(new ShuffledBatchSampler(0, { batchSize: 2 }).batches(0), []);
  });
});

describe("NoDuplicatesBatchSampler (sentence-transformers' loop)", () => {
  test("a skipped row waits at the front of the pool for the next batch", () => {
    // Rows placed so that the shuffled positions 0 and 1 share a text: the scan takes position 0, skips 1,
    // takes 2; the next batch starts with the skipped row.
    const order = seededPermutation(6, 42);
    const texts: string[][] = Array.from({ length: 6 }, (_, i) => [`a${i}`, `p${i}`]);
    texts[order[1]!] = [`a${order[1]!}`, `p${order[0]!}`]; // same positive as the row at position 0
    const sampler = new NoDuplicatesBatchSampler(texts, { batchSize: 2, seed: 42 });
    assert.deepEqual(sampler.batches(0), [
      [order[0], order[2]],
      [order[1], order[3]],
      [order[4], order[5]],
    ]);
  });

  test("the tail: several short batches when rows conflict, all dropped (rows lost) with dropLast", () => {
    // Every row has the same positive: each scan can take one row only and never fills a batch of 2.
    const texts = Array.from({ length: 6 }, (_, i) => [`a${i}`, "same passage"]);
    const sampler = new NoDuplicatesBatchSampler(texts, { batchSize: 2, seed: 1 });
    const batches = sampler.batches(0);
    assert.equal(sampler.length, 3); // ST's __len__: ceil(6 / 2), not an upper bound here
    assert.equal(batches.length, 6);
    assert.ok(batches.every((b) => b.length === 1));
    assert.deepEqual(batches.flat(), seededPermutation(6, 1));
    const dropping = new NoDuplicatesBatchSampler(texts, { batchSize: 2, seed: 1, dropLast: true });
    assert.deepEqual(dropping.batches(0), []);
    assert.equal(dropping.length, 3);
  });

  test("a row whose own columns repeat a text does not conflict with itself", () => {
    const texts = [
      ["x", "x"],
      ["y", "z"],
    ];
    assert.deepEqual(new NoDuplicatesBatchSampler(texts, { batchSize: 2, seed: 0 }).batches(0).length, 1);
  });

  test("matches a literal port of the 3.x dict loop on duplicate-heavy synthetic data", () => {
    for (const [n, batchSize] of [
      [200, 8],
      [333, 32],
      [50, 64],
      [97, 5],
    ] as const) {
      const texts = syntheticTexts(n, n);
      for (const dropLast of [false, true]) {
        const sampler = new NoDuplicatesBatchSampler(texts, { batchSize, seed: 42, dropLast });
        for (let epoch = 0; epoch < 3; epoch++) {
          const expected = stReference(seededPermutation(n, 42 + epoch), texts, batchSize, dropLast);
          assert.deepEqual(
            sampler.batches(epoch),
            expected,
            `n ${n}, batch ${batchSize}, dropLast ${dropLast}`,
          );
        }
      }
    }
  });

  describe("on the financial training split (6,300 pairs, duplicated passages)", () => {
    let records: PairRecord[] = [];
    let texts: string[][] = [];
    before(async () => {
      records = (await readPairs(FINANCIAL_TRAIN)).records;
      texts = pairTexts(records);
    });

    test("the data does repeat passages, and random batches do catch them", () => {
      assert.equal(records.length, 6300);
      assert.ok(new Set(records.map((r) => r.positive)).size < 6200, "expected shared passages");
      const shuffled = new ShuffledBatchSampler(records.length, { batchSize: 32, seed: 42 });
      const conflicted = [0, 1, 2, 3].map((e) => batchesWithRepeatedText(shuffled.batches(e), texts));
      assert.ok(
        conflicted.some((c) => c > 0),
        `random batches with a repeated text per epoch: ${conflicted.join(", ")}`,
      );
    });

    test("batch 32, seed 42: 197 batches per epoch (196 full + 28), nothing lost, no repeated text", () => {
      const sampler = new NoDuplicatesBatchSampler(texts, { batchSize: 32, seed: 42 });
      assert.equal(sampler.length, 197); // ceil(6300 / 32), what the Trainer plans with
      const epochs = [0, 1, 2, 3].map((e) => sampler.batches(e));
      for (const [epoch, batches] of epochs.entries()) {
        assertPartition(batches, records.length, `epoch ${epoch}`);
        assert.equal(batchesWithRepeatedText(batches, texts), 0, `epoch ${epoch}`);
        // measured with this generator: the deferrals never leave more than one short batch here
        assert.equal(batches.length, 197, `epoch ${epoch}`);
        assert.deepEqual(
          batches.map((b) => b.length).filter((size) => size < 32),
          [28],
        );
      }
      assert.notDeepEqual(epochs[0], epochs[1]);
      assert.deepEqual(
        new NoDuplicatesBatchSampler(texts, { batchSize: 32, seed: 42 }).batches(2),
        epochs[2],
      );
    });

    test("equals the literal 3.x loop on the real data (one epoch)", () => {
      const sampler = new NoDuplicatesBatchSampler(texts, { batchSize: 32, seed: 42 });
      assert.deepEqual(
        sampler.batches(1),
        stReference(seededPermutation(texts.length, 43), texts, 32, false),
      );
    });

    test("dropLast drops the 28-row tail: 196 batches, 6,272 rows", () => {
      const sampler = new NoDuplicatesBatchSampler(texts, { batchSize: 32, seed: 42, dropLast: true });
      const batches = sampler.batches(0);
      assert.equal(sampler.length, 196);
      assert.equal(batches.length, 196);
      assert.equal(batches.flat().length, 6272);
      assert.equal(new Set(batches.flat()).size, 6272);
    });
  });
});

describe("LengthGroupedBatchSampler", () => {
  /**
   * A long-tailed synthetic length distribution shaped like the financial passages (log-normal, median 44,
   * σ 0.6, capped at 1,000: p50 45, p90 98, p99 182 for 4,000 rows, against 44 / 97 / 197 for the passages).
   */
  function longTailedLengths(n: number): number[] {
    const rng = new Pcg32(123);
    const uniform = (): number => (rng.next() + 0.5) / 2 ** 32;
    return Array.from({ length: n }, () => {
      const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()); // Box–Muller
      return Math.min(1000, Math.max(1, Math.round(Math.exp(Math.log(44) + 0.6 * z))));
    });
  }

  test("a partition every epoch, reproducible, different across epochs; full batches but one", () => {
    const lengths = longTailedLengths(1000);
    const sampler = new LengthGroupedBatchSampler(lengths, { batchSize: 32, seed: 42, groupBatches: 4 });
    for (let epoch = 0; epoch < 3; epoch++) {
      const batches = sampler.batches(epoch);
      assertPartition(batches, 1000);
      assert.equal(batches.length, sampler.length);
      assert.deepEqual(
        batches.map((b) => b.length).filter((s) => s < 32),
        [1000 % 32],
      );
      assert.deepEqual(
        batches,
        new LengthGroupedBatchSampler(lengths, { batchSize: 32, seed: 42, groupBatches: 4 }).batches(epoch),
      );
    }
    assert.notDeepEqual(sampler.batches(0), sampler.batches(1));
    const dropping = new LengthGroupedBatchSampler(lengths, { batchSize: 32, seed: 42, dropLast: true });
    assert.equal(dropping.batches(0).length, 31);
    assert.ok(dropping.batches(0).every((b) => b.length === 32));
  });

  test("cuts padding on a long-tailed distribution, more with larger groups", () => {
    const lengths = longTailedLengths(4000);
    const random = paddingFraction(
      new ShuffledBatchSampler(4000, { batchSize: 32, seed: 42 }).batches(0),
      lengths,
    );
    const grouped = (groupBatches: number): number =>
      paddingFraction(
        new LengthGroupedBatchSampler(lengths, { batchSize: 32, seed: 42, groupBatches }).batches(0),
        lengths,
      );
    // measured: random 0.674, groups of 1 0.674 (= random), of 2 0.552, of 8 0.295, one group (global sort) 0.056
    assert.equal(grouped(1), random); // a group of one batch sorts within the batch only
    const g8 = grouped(8);
    const all = grouped(125); // one group: a global sort
    assert.ok(grouped(2) < random);
    assert.ok(g8 < random * 0.5, `random ${random.toFixed(3)}, groups of 8 ${g8.toFixed(3)}`);
    assert.ok(all < g8, `groups of 8 ${g8.toFixed(3)}, global ${all.toFixed(3)}`);
  });

  test("batches are sorted within groups but come in shuffled order; longestFirst puts the peak first", () => {
    const lengths = longTailedLengths(1024);
    const batches = new LengthGroupedBatchSampler(lengths, { batchSize: 32, seed: 42 }).batches(0);
    const maxima = batches.map((b) => Math.max(...b.map((i) => lengths[i]!)));
    const sortedDesc = [...maxima].sort((a, b) => b - a);
    assert.notDeepEqual(maxima, sortedDesc, "batch order should be shuffled");
    for (const batch of batches) {
      const ls = batch.map((i) => lengths[i]!);
      assert.deepEqual(
        ls,
        [...ls].sort((a, b) => b - a),
        "rows within a batch come from a length-sorted group",
      );
    }
    const first = new LengthGroupedBatchSampler(lengths, {
      batchSize: 32,
      seed: 42,
      longestFirst: true,
    }).batches(0);
    assert.equal(Math.max(...first[0]!.map((i) => lengths[i]!)), Math.max(...lengths));
    assertPartition(first, 1024);
  });

  test("with texts: the no-duplicates rule inside each group, rows carried over, nothing lost", () => {
    const n = 700;
    const texts = syntheticTexts(n, 5);
    const lengths = longTailedLengths(n);
    for (const groupBatches of [1, 2, 8]) {
      const sampler = new LengthGroupedBatchSampler(lengths, {
        batchSize: 16,
        seed: 42,
        groupBatches,
        texts,
      });
      for (let epoch = 0; epoch < 2; epoch++) {
        const batches = sampler.batches(epoch);
        assertPartition(batches, n, `groups of ${groupBatches}`);
        assert.equal(batchesWithRepeatedText(batches, texts), 0);
      }
    }
    assert.equal(
      new LengthGroupedBatchSampler(lengths, { batchSize: 16, seed: 1, texts }).config.noDuplicates,
      true,
    );
    assert.throws(() => new LengthGroupedBatchSampler([1, 2], { batchSize: 2, texts: [["a"]] }), /rows/);
    assert.throws(() => new LengthGroupedBatchSampler([1, -2], { batchSize: 2 }), /lengths\[1\]/);
    assert.throws(
      () => new LengthGroupedBatchSampler([1, 2], { batchSize: 2, groupBatches: 0 }),
      /groupBatches/,
    );
  });

  test("financial data, lengths ≈ characters / 4 of the longer column: far less padding than random batches", async () => {
    const { records } = await readPairs(FINANCIAL_TRAIN);
    const texts = pairTexts(records);
    const lengths = records.map((r) => Math.ceil(Math.max(r.anchor.length, r.positive.length) / 4));
    const options = { batchSize: 32, seed: 42 };
    const random = paddingFraction(new ShuffledBatchSampler(records.length, options).batches(0), lengths);
    const noDup = paddingFraction(new NoDuplicatesBatchSampler(texts, options).batches(0), lengths);
    const grouped = new LengthGroupedBatchSampler(lengths, { ...options, groupBatches: 8, texts });
    const batches = grouped.batches(0);
    const groupedPadding = paddingFraction(batches, lengths);
    // measured: random ≈ 0.70, no-duplicates ≈ 0.70, length-grouped (8 batches, no-duplicates) ≈ 0.38
    assert.ok(random > 0.6 && noDup > 0.6, `random ${random.toFixed(3)}, no-duplicates ${noDup.toFixed(3)}`);
    assert.ok(
      groupedPadding < random * 0.6,
      `grouped ${groupedPadding.toFixed(3)} vs random ${random.toFixed(3)}`,
    );
    assertPartition(batches, records.length);
    assert.equal(batchesWithRepeatedText(batches, texts), 0);
    assert.equal(batches.length, 197);
  });
});

describe("BatchCursor (checkpoint / resume)", () => {
  const samplers = (): [string, BatchSampler][] => {
    const texts = syntheticTexts(500, 9);
    const lengths = texts.map((row) => row.join(" ").length);
    return [
      ["shuffled", new ShuffledBatchSampler(500, { batchSize: 16, seed: 3 })],
      ["no_duplicates", new NoDuplicatesBatchSampler(texts, { batchSize: 16, seed: 3 })],
      ["length_grouped", new LengthGroupedBatchSampler(lengths, { batchSize: 16, seed: 3, texts })],
    ];
  };

  test("resuming after k batches draws exactly what an uninterrupted run draws", () => {
    for (const [name, sampler] of samplers()) {
      // uninterrupted: epochs 0 and 1 in full
      const straight = new BatchCursor(sampler);
      const expected: number[][] = [];
      for (let epoch = 0; epoch < 2; epoch++) {
        for (let b = straight.next(); b; b = straight.next()) expected.push(b);
        straight.nextEpoch();
      }
      // interrupted in epoch 1 after 7 batches, state written as JSON, resumed on a fresh sampler object
      const first = new BatchCursor(sampler);
      const drawn: number[][] = [];
      for (let b = first.next(); b; b = first.next()) drawn.push(b);
      first.nextEpoch();
      for (let k = 0; k < 7; k++) drawn.push(first.next()!);
      const saved = JSON.parse(JSON.stringify(first.state())) as SamplerState;
      assert.equal(saved.epoch, 1);
      assert.equal(saved.batch, 7);
      const fresh = samplers().find(([n]) => n === name)![1];
      const resumed = BatchCursor.resume(fresh, saved);
      assert.equal(resumed.remaining(), sampler.batches(1).length - 7);
      for (let b = resumed.next(); b; b = resumed.next()) drawn.push(b);
      assert.deepEqual(drawn, expected, name);
      // and the skip is the plain slice of the epoch
      assert.deepEqual(
        new BatchCursor(sampler, { epoch: 1, batch: 7 }).epochBatches().slice(7),
        sampler.batches(1).slice(7),
      );
    }
  });

  test("refuses a different sampler or a position past the epoch", () => {
    const sampler = new ShuffledBatchSampler(100, { batchSize: 10, seed: 1 });
    const state = new BatchCursor(sampler, { epoch: 2, batch: 4 }).state();
    assert.deepEqual(state, {
      epoch: 2,
      batch: 4,
      sampler: { kind: "shuffled", size: 100, batchSize: 10, seed: 1, dropLast: false },
    });
    assert.throws(
      () => BatchCursor.resume(new ShuffledBatchSampler(100, { batchSize: 10, seed: 2 }), state),
      /seed: checkpoint 1, now 2/,
    );
    const texts = syntheticTexts(100, 1);
    const noDup = new BatchCursor(new NoDuplicatesBatchSampler(texts, { batchSize: 10 })).state();
    const changed = texts.map((row) => [...row]);
    changed[5]![0] = "edited";
    assert.throws(
      () => BatchCursor.resume(new NoDuplicatesBatchSampler(changed, { batchSize: 10 }), noDup),
      /fingerprint/,
    );
    assert.throws(() => new BatchCursor(sampler, { epoch: 0, batch: 11 }), /has 10 batches/);
    const end = new BatchCursor(sampler, { epoch: 0, batch: 10 });
    assert.equal(end.next(), undefined);
    end.nextEpoch();
    assert.deepEqual(end.position, { epoch: 1, batch: 0 });
    assert.deepEqual(end.next(), sampler.batches(1)[0]);
  });
});
