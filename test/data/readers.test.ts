// Row readers: every format, physical line numbers (CSV records spanning lines, blank lines, CRLF, BOM),
// and errors that name file:line.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DatasetError, formatFromPath, openRows, readRows } from "../../src/data/index.ts";
import type { ReadRowsOptions, SourceRow } from "../../src/data/index.ts";
import { buildParquet } from "./parquet-fixture.ts";

const dir = mkdtempSync(join(tmpdir(), "ragtune-readers-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function fixture(name: string, content: string | Uint8Array): string {
  const path = join(dir, `${fileCounter++}-${name}`);
  writeFileSync(path, content);
  return path;
}

async function collect(path: string, options?: ReadRowsOptions): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const row of readRows(path, options)) out.push(row);
  return out;
}

async function rejectsAt(promise: Promise<unknown>, where: RegExp, detail?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    assert.match(error.message, where);
    if (detail) assert.match(error.message, detail);
    return true;
  });
}

describe("format detection", () => {
  test("by extension, case-insensitive", () => {
    assert.equal(formatFromPath("a/b.JSONL"), "jsonl");
    assert.equal(formatFromPath("x.ndjson"), "jsonl");
    assert.equal(formatFromPath("x.json"), "json");
    assert.equal(formatFromPath("x.csv"), "csv");
    assert.equal(formatFromPath("x.tsv"), "tsv");
    assert.equal(formatFromPath("x.parquet"), "parquet");
  });

  test("unknown extension asks for a format; the override works", async () => {
    assert.throws(() => formatFromPath("data.txt"), /cannot tell the dataset format.*"\.txt"/);
    const path = fixture("pairs.txt", '{"a":"x"}\n');
    assert.deepEqual(await collect(path, { format: "jsonl" }), [{ row: { a: "x" }, line: 1 }]);
  });
});

describe("JSON Lines", () => {
  test("streams objects with physical line numbers; blank lines, CRLF and a BOM are handled", async () => {
    const path = fixture("a.jsonl", '\ufeff{"q":"one"}\r\n\r\n   \n{"q":"two\\nlines"}\n{"q":"three"}');
    assert.deepEqual(await collect(path), [
      { row: { q: "one" }, line: 1 },
      { row: { q: "two\nlines" }, line: 4 },
      { row: { q: "three" }, line: 5 },
    ]);
  });

  test("bad JSON names file:line", async () => {
    const path = fixture("bad.jsonl", '{"q":"a"}\n\n{"q": tru}\n');
    await rejectsAt(collect(path), new RegExp(`${path}:3: invalid JSON`));
  });

  test("a line that is not an object names file:line and what it found", async () => {
    const path = fixture("arr.jsonl", '{"q":"a"}\n[1,2]\n');
    await rejectsAt(collect(path), new RegExp(`${path}:2: expected a JSON object, found array`));
  });

  test("invalid UTF-8 is an error, not replaced silently", async () => {
    const path = fixture("latin1.jsonl", Buffer.concat([Buffer.from('{"q":"a"}\n{"q":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    await rejectsAt(collect(path), new RegExp(`${path}:2: not valid UTF-8`));
  });

  test("multi-byte characters split across read chunks survive", async () => {
    const long = "é".repeat(70_000); // > 64 KiB of UTF-8, so the stream delivers it in several chunks
    const path = fixture("big.jsonl", `${JSON.stringify({ q: long })}\n${JSON.stringify({ q: "b" })}\n`);
    const rows = await collect(path);
    assert.equal(rows[0]?.row.q, long);
    assert.equal(rows[1]?.line, 2);
  });
});

describe("JSON documents", () => {
  test("a top-level array: rows numbered from 1", async () => {
    const source = await openRows(fixture("arr.json", '[\n {"q":"a"},\n {"q":"b"}\n]'));
    assert.equal(source.format, "json");
    assert.equal(source.unit, "row");
    const rows: SourceRow[] = [];
    for await (const r of source.rows) rows.push(r);
    assert.deepEqual(rows, [
      { row: { q: "a" }, line: 1 },
      { row: { q: "b" }, line: 2 },
    ]);
  });

  test('an object with a single array field ({"data": [...]}), pretty-printed or on one line', async () => {
    const pretty = fixture("wrap.json", '{\n  "version": 2,\n  "data": [{"q":"a"}, {"q":"b"}]\n}\n');
    assert.deepEqual(
      (await collect(pretty)).map((r) => r.row.q),
      ["a", "b"],
    );
    const oneLine = fixture("wrap1.json", '{"data": [{"q":"a"}]}\n');
    assert.deepEqual(await collect(oneLine), [{ row: { q: "a" }, line: 1 }]);
  });

  test("a .json file holding JSON Lines (HF Dataset.to_json) is streamed as JSON Lines", async () => {
    const source = await openRows(fixture("hf.json", '{"q":"a"}\n{"q":"b"}\n'));
    assert.equal(source.format, "jsonl");
    assert.equal(source.unit, "line");
  });

  test("errors: syntax error with its line, non-object element with its row, ambiguous wrapper", async () => {
    const bad = fixture("bad.json", '[\n {"q":"a"},\n {"q": }\n]');
    await rejectsAt(collect(bad), new RegExp(`${bad}:3: invalid JSON`));
    const notObject = fixture("num.json", '[{"q":"a"}, 5]');
    await rejectsAt(collect(notObject), new RegExp(`${notObject}:row 2: expected a JSON object, found number 5`));
    const twoArrays = fixture("two.json", '{\n"a": [], "b": []}');
    await rejectsAt(collect(twoArrays), /exactly one array field; found an object with fields a, b/);
  });
});

describe("CSV and TSV", () => {
  test("header, BOM, quoted fields with embedded newlines, quotes and commas; lines are record starts", async () => {
    const csv =
      "\ufeffquestion,context\n" +
      'plain,"one ""quoted"" word, and a comma"\n' +
      '"multi\nline\nquestion","ctx"\n' +
      "\n" +
      "last,row\n";
    assert.deepEqual(await collect(fixture("a.csv", csv)), [
      { row: { question: "plain", context: 'one "quoted" word, and a comma' }, line: 2 },
      { row: { question: "multi\nline\nquestion", context: "ctx" }, line: 3 },
      { row: { question: "last", context: "row" }, line: 7 },
    ]);
  });

  test("CRLF files, CRLF inside quotes, blank lines: start lines stay exact", async () => {
    const csv = 'a,b\r\n1,"x\r\ny"\r\n\r\n\r\n2,"q"\r\n3,z';
    assert.deepEqual(
      (await collect(fixture("crlf.csv", csv))).map((r) => [r.row.a, r.row.b, r.line]),
      [
        ["1", "x\r\ny", 2],
        ["2", "q", 6],
        ["3", "z", 7],
      ],
    );
  });

  test("start lines match a reference on random CSVs (LF and CRLF, multi-line fields, blank lines)", async () => {
    // Deterministic LCG so the test is reproducible.
    let s = 12345;
    const rand = (n: number): number => ((s = (s * 1103515245 + 12345) % 2 ** 31), s % n);
    const pieces = ["a", "b c", "x,y", 'say "hi"', "l1\nl2", "p\r\nq", "", "é"];
    for (const eol of ["\n", "\r\n"]) {
      const expected: [string, string, number][] = [];
      let text = `h1,h2${eol}`;
      let line = 2;
      for (let r = 0; r < 60; r++) {
        while (rand(4) === 0) {
          text += eol;
          line++;
        }
        const f1 = `${pieces[rand(pieces.length)]}${r}`;
        const f2 = pieces[rand(pieces.length)]!;
        const quote = (f: string): string => `"${f.replaceAll('"', '""')}"`;
        const record = `${quote(f1)},${f2 === "" ? "" : quote(f2)}`;
        expected.push([f1, f2, line]);
        text += record + eol;
        line += (record.match(/\r\n|\r|\n/g) ?? []).length + 1;
      }
      const rows = await collect(fixture("random.csv", text));
      assert.deepEqual(
        rows.map((x) => [x.row.h1, x.row.h2, x.line]),
        expected,
        `eol ${JSON.stringify(eol)}`,
      );
    }
  });

  test("TSV: tabs inside quotes, stray quotes inside unquoted fields taken literally", async () => {
    const tsv = 'anchor\tpositive\nhe said "hi"\tplain\n"a\tb"\t"multi\nline"\nx\ty\n';
    assert.deepEqual(await collect(fixture("a.tsv", tsv)), [
      { row: { anchor: 'he said "hi"', positive: "plain" }, line: 2 },
      { row: { anchor: "a\tb", positive: "multi\nline" }, line: 3 },
      { row: { anchor: "x", positive: "y" }, line: 5 },
    ]);
  });

  test("malformed records name the line where the record starts", async () => {
    const extraField = fixture("extra.csv", 'a,b\n1,2\n"3\n3",4,5\n');
    await rejectsAt(collect(extraField), new RegExp(`${extraField}:3: row has 3 fields, the header has 2`));
    const unclosed = fixture("unclosed.csv", 'a,b\n1,2\n3,"open\nstill open\n');
    await rejectsAt(collect(unclosed), new RegExp(`${unclosed}:3: malformed record: a quoted field is not closed`));
    const badQuote = fixture("badquote.csv", 'a,b\n1,"x"y\n');
    await rejectsAt(collect(badQuote), new RegExp(`${badQuote}:2: malformed record`));
  });

  test("a ragged row names its own line and the header's field count, also past csv-parse's read-ahead", async () => {
    const ragged = fixture("ragged2.csv", "anchor,positive,id\na,b,1\nc,d,2\ne,f,3\ng,h\ni,j,5\n");
    await rejectsAt(collect(ragged), new RegExp(`${ragged}:5: row has 2 fields, the header has 3$`));
  });

  test("--format csv on a JSON Lines file names the file and says what it looks like", async () => {
    const path = fixture("pairs.jsonl", '{"anchor":"a","positive":"b"}\n');
    await rejectsAt(collect(path, { format: "csv" }), new RegExp(`${path}:1: malformed record: .*looks like JSON`));
  });

  test("a missing path or a folder is an error naming it, before any reader opens it", async () => {
    const missing = join(dir, "nope.csv");
    await rejectsAt(collect(missing), new RegExp(`^${missing}: no such file$`));
    for (const format of ["csv", "jsonl", "json", "parquet"] as const)
      await rejectsAt(collect(dir, { format }), new RegExp(`^${dir}: is a folder`));
  });

  test("invalid UTF-8 (e.g. a Windows-1252 export) is an error naming the file", async () => {
    const path = fixture("cp1252.csv", Buffer.concat([Buffer.from("a,b\ncaf"), Buffer.from([0xe9]), Buffer.from(",x\n")]));
    await rejectsAt(collect(path), new RegExp(`${path}: not valid UTF-8`));
  });

  test("duplicate header names are an error", async () => {
    const path = fixture("dup.csv", "a,a\n1,2\n");
    await rejectsAt(collect(path), new RegExp(`${path}:1: duplicate column "a"`));
  });

  test("a header-only file has no rows", async () => {
    assert.deepEqual(await collect(fixture("empty.csv", "a,b\n")), []);
  });
});

describe("Parquet (fixtures built by test/data/parquet-fixture.ts)", () => {
  const columns = [
    { name: "id", type: "int64" as const, values: [10n, 11n, 12n, 13n, 14n] },
    { name: "question", type: "string" as const, values: ["q0", "q1\nnext", "q2", "", "q4 é"] },
    { name: "context", type: "string" as const, optional: true, values: ["c0", "c1", null, "c3", "c4"] },
  ];

  for (const codec of ["uncompressed", "snappy"] as const) {
    test(`${codec} pages, several row groups: 1-based row numbers across groups`, async () => {
      const path = fixture(`p-${codec}.parquet`, buildParquet(columns, { rowGroupSize: 2, codec }));
      const source = await openRows(path);
      assert.equal(source.unit, "row");
      const rows: SourceRow[] = [];
      for await (const r of source.rows) rows.push(r);
      assert.deepEqual(
        rows.map((r) => r.line),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(rows[1]?.row, { id: 11n, question: "q1\nnext", context: "c1" });
      assert.equal(rows[2]?.row.context, null);
      assert.equal(rows[4]?.row.question, "q4 é");
    });
  }

  test("reads only the requested columns when they all exist, all columns otherwise", async () => {
    const path = fixture("cols.parquet", buildParquet(columns));
    const some = await collect(path, { columns: ["question", "context"] });
    assert.deepEqual(Object.keys(some[0]!.row), ["question", "context"]);
    const all = await collect(path, { columns: ["question", "nope"] });
    assert.deepEqual(Object.keys(all[0]!.row), ["id", "question", "context"]);
  });

  test("a file that is not Parquet names the file", async () => {
    const path = fixture("junk.parquet", "not parquet at all");
    await rejectsAt(collect(path), new RegExp(`${path}: cannot read Parquet`));
  });
});
