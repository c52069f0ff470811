// Column mapping, strict errors with file:line, the validation report, dropInvalid, and the pair-file
// writer/reader round trip.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  DatasetError,
  DatasetReport,
  detectPairColumns,
  loadDataset,
  loadRecords,
  prepareDataset,
  readPairs,
  validateColumnMapping,
  writeJsonl,
} from "../../src/data/index.ts";
import type { PairRecord } from "../../src/data/index.ts";
import { buildParquet } from "./parquet-fixture.ts";

const dir = mkdtempSync(join(tmpdir(), "ragtune-records-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function fixture(name: string, content: string | Uint8Array): string {
  const path = join(dir, `${fileCounter++}-${name}`);
  writeFileSync(path, content);
  return path;
}
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    for (const p of patterns) assert.match(error.message, p);
    return true;
  });
}

const qa = { anchor: "question", positive: "context" };

describe("column mapping", () => {
  test("renames columns; id = 0-based row index over all files when no id column is named", async () => {
    const a = fixture("a.jsonl", jsonl([{ question: "q0", context: "c0", extra: 1 }]));
    const b = fixture("b.csv", "context,question\nc1,q1\nc2,q2\n");
    const { records } = await loadDataset([a, b], { columns: qa });
    assert.deepEqual(records, [
      { id: 0, anchor: "q0", positive: "c0" },
      { id: 1, anchor: "q1", positive: "c1" },
      { id: 2, anchor: "q2", positive: "c2" },
    ]);
  });

  test("negatives in mapping order; ids keep the id column's value (number or string)", async () => {
    const path = fixture(
      "n.jsonl",
      jsonl([
        { key: 7, q: "a", p: "b", n1: "x", n2: "y" },
        { key: "doc-8", q: "c", p: "d", n1: "z", n2: "w" },
      ]),
    );
    const { records } = await loadDataset(path, {
      columns: { anchor: "q", positive: "p", negatives: ["n2", "n1"], id: "key" },
    });
    assert.deepEqual(records, [
      { id: 7, anchor: "a", positive: "b", negatives: ["y", "x"] },
      { id: "doc-8", anchor: "c", positive: "d", negatives: ["w", "z"] },
    ]);
  });

  test("Parquet: INT64 ids become numbers; a null text is an error naming the row and column", async () => {
    const ok = fixture(
      "ok.parquet",
      buildParquet([
        { name: "id", type: "int64", values: [5n, 6n] },
        { name: "question", type: "string", values: ["q5", "q6"] },
        { name: "context", type: "string", values: ["c5", "c6"] },
      ]),
    );
    const { records } = await loadDataset(ok, { columns: { ...qa, id: "id" } });
    assert.deepEqual(records, [
      { id: 5, anchor: "q5", positive: "c5" },
      { id: 6, anchor: "q6", positive: "c6" },
    ]);
    const withNull = fixture(
      "null.parquet",
      buildParquet([
        { name: "question", type: "string", values: ["q", "q"] },
        { name: "context", type: "string", optional: true, values: ["c", null] },
      ]),
    );
    await rejectsWith(loadDataset(withNull, { columns: qa }), /:row 2: column "context": expected a string, found null/);
  });

  test("a missing column names file:line, the column and the columns present", async () => {
    const path = fixture("m.jsonl", jsonl([{ question: "q", context: "c" }, { question: "q", ctx: "c" }]));
    await rejectsWith(
      loadDataset(path, { columns: qa }),
      new RegExp(`${path}:2: missing column "context" \\(columns present: question, ctx\\)`),
    );
    const csv = fixture("m.csv", "id,query,context\n1,q,c\n");
    await rejectsWith(loadDataset(csv, { columns: qa }), /:2: missing column "question" \(columns present: id, query, context\)/);
  });

  test("non-string texts are errors that say what was found (no stringifying)", async () => {
    const cases: [unknown, RegExp][] = [
      [null, /found null/],
      [42, /found number 42/],
      [{ a: 1 }, /found object \{"a":1\}/],
      [["x"], /found array \["x"\]/],
      [true, /found boolean true/],
    ];
    for (const [value, found] of cases) {
      const path = fixture("t.jsonl", jsonl([{ question: "q", context: "c" }, { question: "q", context: value }]));
      await rejectsWith(loadDataset(path, { columns: qa }), new RegExp(`${path}:2: column "context": expected a string`), found);
    }
  });

  test("duplicate ids are an error naming both places, also across files and for 1 vs \"1\"", async () => {
    const a = fixture("a.jsonl", jsonl([{ id: 1, question: "q", context: "c" }]));
    const b = fixture("b.jsonl", jsonl([{ id: 2, question: "q", context: "c" }, { id: "1", question: "q", context: "c" }]));
    await rejectsWith(
      loadDataset([a, b], { columns: { ...qa, id: "id" } }),
      new RegExp(`${b}:2: duplicate id "1" \\(first seen at ${a}:1\\)`),
    );
    const bad = fixture("bad.jsonl", jsonl([{ id: 1.5, question: "q", context: "c" }]));
    await rejectsWith(loadDataset(bad, { columns: { ...qa, id: "id" } }), /id column "id": expected an integer or a non-empty string, found number 1.5/);
  });

  test("mapping validation and detection of ragtune's pair-file layout", () => {
    assert.throws(() => validateColumnMapping({ anchor: "q", positive: "q" }), /anchor and positive both name column "q"/);
    assert.throws(() => validateColumnMapping({ anchor: "", positive: "p" }), /anchor must name a column/);
    assert.deepEqual(detectPairColumns(["id", "anchor", "positive", "negative_2", "negative"]), {
      anchor: "anchor",
      positive: "positive",
      negatives: ["negative", "negative_2"],
      id: "id",
    });
    assert.deepEqual(detectPairColumns(["anchor", "positive"]), { anchor: "anchor", positive: "positive" });
    assert.throws(() => detectPairColumns(["negative", "negative_1"]), /ambiguous negative columns/);
  });
});

describe("validation report", () => {
  const rows = [
    { id: 10, q: "what?", c: "passage A" }, // line 1
    { id: 11, q: "   ", c: "passage B" }, // line 2: blank anchor
    { id: 12, q: "what?", c: "passage A" }, // line 3: duplicate pair of line 1
    { id: 13, q: "why?", c: "passage A" }, // line 4: passage A shared by a second anchor
    { id: 14, q: "what?", c: "passage A" }, // line 5: third copy of the pair
    { id: 15, q: "how?", c: "" }, // line 6: empty positive
    { id: 16, q: "how?", c: "passage C" }, // line 7: repeated anchor
  ];
  const columns = { anchor: "q", positive: "c", id: "id" };

  test("counts empties with file:line, duplicate groups, sharing, lengths; keeps everything by default", async () => {
    const path = fixture("r.jsonl", jsonl(rows));
    const { records, report } = await loadDataset(path, { columns });
    assert.equal(records.length, 7);
    assert.equal(report.rowsRead, 7);
    assert.equal(report.rowsKept, 7);
    assert.equal(report.dropped, null);
    const [anchor, positive] = report.texts;
    assert.equal(anchor?.empty, 1);
    assert.deepEqual(anchor?.emptyRows, [{ id: 11, where: `${path}:2` }]);
    assert.deepEqual(positive?.emptyRows, [{ id: 15, where: `${path}:6` }]);
    assert.equal(positive?.maxChars, 9);
    assert.deepEqual(
      { ...report.duplicatePairs, examples: undefined },
      { groups: 1, rowsInGroups: 3, extraCopies: 2, largestGroup: 3, examples: undefined },
    );
    assert.deepEqual(
      report.duplicatePairs.examples[0]?.map((r) => r.id),
      [10, 12, 14],
    );
    assert.deepEqual(report.anchors, { unique: 4, repeated: 2, rowsWithRepeated: 5, maxRows: 3 });
    assert.deepEqual(report.positives, {
      unique: 4,
      repeated: 1,
      rowsWithRepeated: 4,
      maxRows: 4,
      sharedByDistinctAnchors: 1,
      maxDistinctAnchors: 2,
    });
    const text = report.format();
    assert.match(text, /rows read: 7; kept: 7; dropped: 0/);
    assert.match(text, /anchor: 1 row: .*:2 \(id 11\)/);
    assert.match(text, /1 group \(distinct pairs that occur more than once\) covering 3 rows = 1 first occurrence \+ 2 extra copies/);
    assert.match(text, /Kept rows with an empty anchor or positive/);
  });

  test("dropInvalid drops blank anchors/positives and says which", async () => {
    const path = fixture("r.jsonl", jsonl(rows));
    const { records, report } = await loadDataset(path, { columns, dropInvalid: true });
    assert.deepEqual(
      records.map((r) => r.id),
      [10, 12, 13, 14, 16],
    );
    assert.equal(report.rowsKept, 5);
    assert.deepEqual(report.dropped, {
      count: 2,
      rows: [
        { id: 11, where: `${path}:2`, reason: "empty anchor" },
        { id: 15, where: `${path}:6`, reason: "empty positive" },
      ],
    });
    assert.match(report.format(), /Dropped \(dropInvalid: empty anchor or positive\): 2 rows/);
  });

  test("token lengths against maxSeqLength; the report survives JSON", async () => {
    const path = fixture("r.jsonl", jsonl(rows));
    const countTokens = (t: string): number => t.length;
    const { report } = await loadDataset(path, { columns, countTokens, maxSeqLength: 5 });
    assert.deepEqual(report.tokens?.columns[1], {
      field: "positive",
      overLimit: 6,
      meanTokens: 54 / 7,
      longest: { id: 10, where: `${path}:1`, tokens: 9 },
    });
    assert.equal(report.tokens?.columns[0]?.overLimit, 0);
    assert.match(report.format(), /positive: 6 over the limit/);
    const json = JSON.parse(JSON.stringify(report)) as DatasetReport;
    assert.deepEqual(json.tokens, report.tokens);
    assert.equal(DatasetReport.fromJSON(json).format(), report.format());
    await assert.rejects(loadDataset(path, { columns, maxSeqLength: 5 }), /maxSeqLength needs a countTokens/);
  });

  test("per-file counts and the resolved format", async () => {
    const a = fixture("a.json", jsonl([{ q: "a", c: "b" }]));
    const loaded = await loadRecords(a, { columns: { anchor: "q", positive: "c" } });
    assert.deepEqual(loaded.files, [{ file: a, format: "jsonl", rows: 1 }]);
  });
});

describe("writer and pair files", () => {
  const records: PairRecord[] = [
    { id: 0, anchor: "a0", positive: "p0", negatives: ["n0a", "n0b"] },
    { id: "x1", anchor: 'quote " and\nnewline', positive: "p1", negatives: ["n1a", "n1b"] },
  ];

  test("writeJsonl writes one object per line in key order and leaves no temp file", async () => {
    const out = join(dir, "w", "pairs.jsonl");
    assert.equal(await writeJsonl(out, records), 2);
    const lines = readFileSync(out, "utf8").split("\n");
    assert.equal(lines.length, 3);
    assert.equal(lines[0], '{"id":0,"anchor":"a0","positive":"p0","negative_1":"n0a","negative_2":"n0b"}');
    assert.deepEqual(readdirSync(join(dir, "w")), ["pairs.jsonl"]);
  });

  test("a failed write keeps the previous file and removes the temp file", async () => {
    const out = join(dir, "w2", "pairs.jsonl");
    await writeJsonl(out, records);
    function* failing(): Generator<PairRecord> {
      yield records[0]!;
      throw new Error("boom");
    }
    await assert.rejects(writeJsonl(out, failing()), /boom/);
    assert.equal(readFileSync(out, "utf8").split("\n").length, 3);
    assert.deepEqual(readdirSync(join(dir, "w2")), ["pairs.jsonl"]);
  });

  test("readPairs reads them back, negatives included", async () => {
    const out = join(dir, "w3", "pairs.jsonl");
    await writeJsonl(out, records);
    const { records: back, report } = await readPairs(out);
    assert.deepEqual(back, records);
    assert.deepEqual(report.columns, {
      anchor: "anchor",
      positive: "positive",
      negatives: ["negative_1", "negative_2"],
      id: "id",
    });
  });

  test("prepareDataset writes train.jsonl and test.jsonl (input order kept) and reports the split", async () => {
    const input = fixture(
      "in.csv",
      "question,context\n" + Array.from({ length: 20 }, (_, i) => `q${i},c${i % 15}`).join("\n") + "\n",
    );
    const outDir = join(dir, "prepared");
    const result = await prepareDataset({ input, columns: qa, testSize: 0.25, seed: 7, outDir });
    assert.equal(result.train, 15);
    assert.equal(result.test, 5);
    const train = (await readPairs(join(outDir, "train.jsonl"))).records;
    const test = (await readPairs(join(outDir, "test.jsonl"))).records;
    const ids = (rs: PairRecord[]): number[] => rs.map((r) => r.id as number);
    assert.deepEqual([...ids(train), ...ids(test)].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual(ids(train), [...ids(train)].sort((x, y) => x - y));
    assert.deepEqual(ids(test), [...ids(test)].sort((x, y) => x - y));
    assert.equal(result.report.split?.train, 15);
    assert.match(result.report.format(), /Split \(seed 7, testSize 0.25\): train 15 rows, test 5 rows/);
    assert.ok(existsSync(result.trainPath) && existsSync(result.testPath));
  });
});
