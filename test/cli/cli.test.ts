// The `ragtune` command as users run it: `node bin/ragtune.mjs <command>` in a child process. Covers --help,
// an unknown command and bad flags (exit 2), create-model → encode (stdin → JSON lines, --dim), prepare on a CSV
// (report, reproducible split) and eval on a slice of the bundled financial data with --json. Each start costs
// 1-2 s of CPU (tsx + libtorch loading), so there are ten, all started up front; the runs that need the model
// made by create-model start as soon as it exists.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { BERT_VOCAB, freshDir } from "../helpers/tiny-model.ts";
import { ragtune as runCli, type CliRun as Run } from "../helpers/run-cli.ts";

const DATA = fileURLToPath(new URL("../../data/financial/", import.meta.url));

const ragtune = (args: string[], input = "") => runCli(args, { input, threads: "inherit" });

/** Asserts the exit code, showing stderr when it is not the expected one. */
function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// ---------------------------------------------------------------------------------------------------------
// Inputs

const work = freshDir("cli");
const model = join(work, "model");

const TEXTS = ["What was the revenue?", "", "Net income rose 12% in 2023."];
const TEXT_INPUT = TEXTS.join("\n") + "\n";

// prepare: 22 rows, one with a quoted comma and newline (so the file has 24 lines), one with an empty passage.
const csv = join(work, "pairs.csv");
const csvRows = ["qid,question,context"];
for (let i = 1; i <= 20; i++) csvRows.push(`q${i},What about item ${i}?,Passage number ${i}.`);
csvRows.push('q21,"A question, with a comma?","A passage\nover two lines"');
csvRows.push("q22,Empty passage?,");
writeFileSync(csv, csvRows.join("\n") + "\n");
const prepareArgs = (out: string) => [
  "prepare",
  csv,
  ...["--anchor", "question", "--positive", "context", "--id", "qid"],
  ...["--test-size", "0.25", "--seed", "7", "--out", join(work, out)],
];

// eval: the first 40 test rows are the queries; the corpus is their 40 passages + 160 train passages.
const lines = (file: string) => readFileSync(join(DATA, file), "utf8").split("\n").filter(Boolean);
const queries = join(work, "queries.jsonl");
const others = join(work, "corpus.jsonl");
writeFileSync(queries, lines("test.jsonl").slice(0, 40).join("\n") + "\n");
writeFileSync(others, lines("train.jsonl").slice(0, 160).join("\n") + "\n");
const metricsJson = join(work, "metrics.json");

// ---------------------------------------------------------------------------------------------------------
// The runs, all started now (test order does not matter; each test awaits what it checks)

const runs = (() => {
  const help = ragtune(["--help"]);
  const unknown = ragtune(["frobnicate"]);
  const prepareA = ragtune(prepareArgs("a"));
  const prepareB = ragtune(prepareArgs("b"));
  const evalNoModel = ragtune(["eval", "--queries", queries, "--corpus", queries]);
  const create = ragtune([
    "create-model",
    ...["--layers", "1", "--hidden", "16", "--heads", "2", "--intermediate", "32"],
    ...["--max-position", "64", "--max-seq-length", "64", "--vocab", BERT_VOCAB],
    ...["--pooling", "mean", "--seed", "5", "--out", model],
  ]);
  const withModel = <T>(f: () => Promise<T>) =>
    create.then((r) => (r.code === 0 ? f() : Promise.reject(new Error(`create-model failed: ${r.stderr}`))));
  const encode = withModel(() => ragtune(["encode", "--model", model], TEXT_INPUT));
  const encodeDim = withModel(() =>
    ragtune(["encode", "--model", model, "--dim", "8", "--batch-size", "2"], TEXT_INPUT),
  );
  const encodeBadDim = withModel(() => ragtune(["encode", "--model", model, "--dim", "eight"], TEXT_INPUT));
  const evaluate = withModel(() =>
    ragtune([
      "eval",
      ...["--model", model, "--queries", queries, "--corpus", `${others},${queries}`],
      ...["--dims", "16,8", "--json", metricsJson],
    ]),
  );
  const all = [
    help,
    unknown,
    prepareA,
    prepareB,
    evalNoModel,
    create,
    encode,
    encodeDim,
    encodeBadDim,
    evaluate,
  ];
  for (const p of all) p.catch(() => {}); // failures are reported by the test that awaits them
  return {
    help,
    unknown,
    prepareA,
    prepareB,
    evalNoModel,
    create,
    encode,
    encodeDim,
    encodeBadDim,
    evaluate,
  };
})();

// ---------------------------------------------------------------------------------------------------------

describe("ragtune", () => {
  test("--help lists the commands; an unknown command exits 2 with the usage", async () => {
    const [help, unknown] = await Promise.all([runs.help, runs.unknown]);
    assertExit(help, 0);
    for (const cmd of ["prepare", "eval", "encode", "create-model"])
      assert.match(help.stdout, new RegExp(`^  ${cmd} `, "m"));
    assertExit(unknown, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    assert.match(unknown.stderr, /usage: ragtune <command>/);
  });

  test("create-model writes a sentence-transformers folder with the asked shape", async () => {
    const r = await runs.create;
    assertExit(r, 0);
    assert.match(r.stderr, /created .*BERT 1×16, 2 heads, FFN 32, .* parameters, mean pooling, normalized/);
    for (const f of [
      "modules.json",
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "1_Pooling/config.json",
    ])
      assert.ok(existsSync(join(model, f)), `${f} exists`);
    const config = JSON.parse(readFileSync(join(model, "config.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(
      [config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size],
      [1, 16, 2, 32],
    );
    const pooling = JSON.parse(readFileSync(join(model, "1_Pooling/config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(pooling.pooling_mode_mean_tokens, true);
    const m = SentenceTransformer.fromDir(model);
    assert.deepEqual([m.embeddingDim, m.maxSeqLength], [16, 64]);
    m.dispose();
  });

  test("encode: one JSON array per input line from stdin; --dim truncates and re-normalizes", async () => {
    const [full, truncated] = await Promise.all([runs.encode, runs.encodeDim]);
    assertExit(full, 0);
    assertExit(truncated, 0);
    const parse = (r: Run) =>
      r.stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as number[]);
    const m = SentenceTransformer.fromDir(model);
    try {
      for (const [run, dim] of [
        [full, 16],
        [truncated, 8],
      ] as const) {
        const rows = parse(run);
        assert.equal(rows.length, TEXTS.length, "one line per input line, the empty one included");
        assert.ok(run.stdout.endsWith("\n"));
        const want = m.encode(TEXTS, dim === 16 ? {} : { truncateDim: dim });
        rows.forEach((v, i) => {
          assert.equal(v.length, dim);
          assert.ok(Math.abs(norm(v) - 1) < 1e-6, `row ${i} has norm ${norm(v)}`);
          // Printed float32 values read back exactly.
          assert.deepEqual(v, Array.from(want.data.subarray(i * dim, (i + 1) * dim)), `row ${i}`);
        });
      }
    } finally {
      m.dispose();
    }
  });

  test("bad flags exit 2 and name the flag: a non-numeric --dim, a missing --model", async () => {
    const [badDim, noModel] = await Promise.all([runs.encodeBadDim, runs.evalNoModel]);
    assertExit(badDim, 2);
    assert.match(badDim.stderr, /ragtune encode: --dim must be an integer between 1 and 16, got "eight"/);
    assert.equal(badDim.stdout, "");
    assertExit(noModel, 2);
    assert.match(noModel.stderr, /ragtune eval: missing --model/);
  });

  test("eval on a slice of the financial data (40 queries, 200 passages) writes the ST keys as JSON", async () => {
    const r = await runs.evaluate;
    assertExit(r, 0);
    // The table: header, rule, one row per dim.
    const table = r.stdout.trim().split("\n");
    assert.match(table[0]!, /^\s*dim\s+nDCG@10\s+MRR@10\s+MAP@100/);
    assert.deepEqual(
      table.slice(2).map((l) => l.trim().split(/\s+/)[0]),
      ["16", "8"],
    );
    assert.match(r.stderr, /40 queries, 200 documents/);
    const json = JSON.parse(readFileSync(metricsJson, "utf8")) as {
      model: string;
      dims: number[];
      queries: number;
      corpus: number;
      metrics: Record<string, number>;
      seconds: { total: number };
    };
    assert.equal(json.model, model);
    assert.deepEqual([json.dims, json.queries, json.corpus], [[16, 8], 40, 200]);
    assert.ok(json.seconds.total > 0);
    assert.equal(Object.keys(json.metrics).length, 2 * 15);
    for (const d of [16, 8]) {
      for (const s of [
        "accuracy@1",
        "accuracy@10",
        "precision@3",
        "recall@10",
        "ndcg@10",
        "mrr@10",
        "map@100",
      ]) {
        const v = json.metrics[`dim_${d}_cosine_${s}`];
        assert.ok(typeof v === "number" && v >= 0 && v <= 1, `dim_${d}_cosine_${s} = ${v}`);
      }
    }
    assert.ok(json.metrics["dim_16_cosine_accuracy@10"]! >= json.metrics["dim_16_cosine_accuracy@1"]!);
  });

  test("prepare: CSV → train/test JSONL with a report; the same seed gives the same split", async () => {
    const [a, b] = await Promise.all([runs.prepareA, runs.prepareB]);
    assertExit(a, 0);
    assertExit(b, 0);
    const read = (out: string, file: string) => readFileSync(join(work, out, file), "utf8");
    const parse = (text: string) =>
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; anchor: string; positive: string });
    const train = parse(read("a", "train.jsonl"));
    const testRows = parse(read("a", "test.jsonl"));
    assert.equal(testRows.length, 6); // ceil(0.25 × 22)
    assert.equal(train.length, 16);
    assert.deepEqual(
      [...train, ...testRows].map((r) => r.id).sort(),
      Array.from({ length: 22 }, (_, i) => `q${i + 1}`).sort(),
    );
    const q21 = [...train, ...testRows].find((r) => r.id === "q21");
    assert.deepEqual(q21, {
      id: "q21",
      anchor: "A question, with a comma?",
      positive: "A passage\nover two lines",
    });
    assert.ok(existsSync(join(work, "a", "report.json")));
    // The report: rows read, the empty passage by file:line (24: the quoted newline takes a line), the split.
    assert.match(a.stderr, /rows read: 22/);
    assert.match(a.stderr, new RegExp(`positive: 1 row: ${escape(csv)}:24 \\(id "q22"\\)`));
    assert.match(a.stderr, /train 16 rows, test 6 rows/);
    // Reproducible from the seed.
    for (const f of ["train.jsonl", "test.jsonl"]) assert.equal(read("b", f), read("a", f));
  });
});
