// The bundled financial dataset (see data/financial/SOURCE.md): the report must show what is known about it.
// Looks for the repo's copy in data/financial/ first, then the shared copy; skips when neither exists.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { loadDataset, prepareDataset, readPairs, splitOverlap } from "../../src/data/index.ts";
import type { DatasetReport, PairRecord } from "../../src/data/index.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const dataDir = [join(repoRoot, "data", "financial"), "/work/shared/data/financial"].find((d) =>
  existsSync(join(d, "train.jsonl")),
);
const skip = dataDir === undefined ? "financial data not found (data/financial/ or /work/shared/data/financial/)" : false;
const trainFile = join(dataDir ?? "", "train.jsonl");
const testFile = join(dataDir ?? "", "test.jsonl");
const columns = { anchor: "anchor", positive: "positive", id: "id" };

describe("financial dataset report", { skip }, () => {
  let cached: Promise<{ records: PairRecord[]; report: DatasetReport }> | undefined;
  const both = (): Promise<{ records: PairRecord[]; report: DatasetReport }> =>
    (cached ??= loadDataset([trainFile, testFile], { columns }));

  test("7,000 rows: 6,300 train + 700 test", async () => {
    const { report } = await both();
    assert.equal(report.rowsRead, 7000);
    assert.equal(report.rowsKept, 7000);
    assert.deepEqual(
      report.files.map((f) => [f.format, f.rows]),
      [
        ["jsonl", 6300],
        ["jsonl", 700],
      ],
    );
  });

  test("empty texts: train id 1733 (anchor), test id 2731 (anchor and positive)", async () => {
    const { report } = await both();
    const [anchor, positive] = report.texts;
    assert.deepEqual(anchor?.emptyRows, [
      { id: 1733, where: `${trainFile}:4606` },
      { id: 2731, where: `${testFile}:181` },
    ]);
    assert.deepEqual(positive?.emptyRows, [{ id: 2731, where: `${testFile}:181` }]);
  });

  test("exact duplicate (anchor, positive) pairs: 8 groups, 17 rows, 9 extra copies", async () => {
    const { report } = await both();
    const { examples, ...counts } = report.duplicatePairs;
    assert.deepEqual(counts, { groups: 8, rowsInGroups: 17, extraCopies: 9, largestGroup: 3 });
    assert.equal(examples.length, 8);
    assert.match(report.format(), /8 groups .* covering 17 rows = 8 first occurrences \+ 9 extra copies/);
  });

  test("6,757 distinct positives, 6,933 distinct anchors, passage sharing", async () => {
    const { report } = await both();
    assert.deepEqual(report.positives, {
      unique: 6757,
      repeated: 141,
      rowsWithRepeated: 384,
      maxRows: 15, // the 10-K boilerplate sentence SOURCE.md mentions
      sharedByDistinctAnchors: 136,
      maxDistinctAnchors: 14,
    });
    assert.deepEqual(report.anchors, { unique: 6933, repeated: 53, rowsWithRepeated: 120, maxRows: 6 });
    assert.equal(report.texts[1]?.maxChars, 5585);
  });

  test("the shipped split leaks 31 test rows' positives (29 passages) and 11 anchors into train", async () => {
    const train = (await readPairs(trainFile)).records;
    const held = (await readPairs(testFile)).records;
    assert.deepEqual(splitOverlap(train, held), { testRowsWithPositiveInTrain: 31, testRowsWithAnchorInTrain: 11 });
  });
});

describe("financial dataset prepare", { skip }, () => {
  const outDir = mkdtempSync(join(tmpdir(), "ragtune-financial-"));
  after(() => rmSync(outDir, { recursive: true, force: true }));

  test("prepare both files with seed 42: 6,300 / 700, reproducible, ids preserved", async () => {
    const first = await prepareDataset({ input: [trainFile, testFile], columns, testSize: 0.1, seed: 42, outDir });
    assert.equal(first.train, 6300);
    assert.equal(first.test, 700);
    const train = (await readPairs(first.trainPath)).records;
    const held = (await readPairs(first.testPath)).records;
    const ids = new Set([...train, ...held].map((r) => r.id));
    assert.equal(ids.size, 7000);
    assert.ok([...ids].every((id) => typeof id === "number" && id >= 0 && id < 7000));

    const again = await prepareDataset({
      input: [trainFile, testFile],
      columns,
      seed: 42,
      outDir: join(outDir, "again"),
    });
    assert.equal(readFileSync(again.testPath, "utf8"), readFileSync(first.testPath, "utf8"));
    assert.equal(readFileSync(again.trainPath, "utf8"), readFileSync(first.trainPath, "utf8"));
  });

  test("dropInvalid removes the 2 degenerate rows before splitting (6,998 → 6,298 / 700)", async () => {
    const result = await prepareDataset({
      input: [trainFile, testFile],
      columns,
      dropInvalid: true,
      outDir: join(outDir, "dropped"),
    });
    assert.equal(result.report.dropped?.count, 2);
    assert.deepEqual(
      result.report.dropped?.rows.map((r) => [r.id, r.reason]),
      [
        [1733, "empty anchor"],
        [2731, "empty anchor and positive"],
      ],
    );
    assert.equal(result.train, 6298);
    assert.equal(result.test, 700);
  });
});
