// Issue #10, as a hostile user tries it through the CLI (items 2 and 10): pair files without ids must not be
// matched by row position across files, a corpus holding none of the queries' passages is an error, and bad
// inputs (a ragged CSV row, a float16 model on the CPU, invalid UTF-8 or a missing file for encode) stop with a
// message naming the file and line in the user's terms. Every run is a child process, all started up front.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { readMetricsFile } from "../../src/cli/compare.ts";
import { TorchError } from "../../src/engine/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { freshDir, tinyModelDir } from "../helpers/tiny-model.ts";
import { BIN, ragtune as runCli, type CliRun as Run } from "../helpers/run-cli.ts";

const DATA = fileURLToPath(new URL("../../data/financial/", import.meta.url));

const ragtune = (args: string[], input = "") => runCli(args, { input, threads: "env" });

function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

// Pair files in ragtune's layout but without an id column: rows 0, 1, … in each file.
const work = freshDir("io-cli");
const model = tinyModelDir();
const withoutId = (file: string, from: number, count: number) =>
  readFileSync(join(DATA, file), "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(from, from + count)
    .map((l) => {
      const { anchor, positive } = JSON.parse(l) as { anchor: string; positive: string };
      return JSON.stringify({ anchor, positive });
    })
    .join("\n") + "\n";
const q = join(work, "q.jsonl");
const other = join(work, "other.jsonl");
const unrelated = join(work, "unrelated.jsonl");
writeFileSync(q, withoutId("test.jsonl", 0, 30));
writeFileSync(other, withoutId("train.jsonl", 0, 90));
writeFileSync(unrelated, withoutId("train.jsonl", 100, 40));
const ragged = join(work, "ragged2.csv");
writeFileSync(ragged, "anchor,positive,id\na,b,1\nc,d,2\ne,f,3\ng,h\ni,j,5\n");
const badUtf8 = join(work, "bad.txt");
writeFileSync(
  badUtf8,
  Buffer.concat([Buffer.from("one\ntwo\nth"), Buffer.from([0xff, 0xfe]), Buffer.from("ree\n")]),
);

const evalArgs = (corpus: string, json: string) => [
  "eval",
  ...["--model", model, "--queries", q, "--corpus", corpus, "--dims", "32,16", "--json", join(work, json)],
];

/** Runs `ragtune encode` and closes its stdout after the first bytes, as `| head -c 100` does. */
function encodeIntoClosedPipe(input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "encode", "--model", model, "--input", input], {
      env: { ...process.env, RAGTUNE_DEBUG: "", RAGTUNE_NUM_THREADS: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stdout.once("data", () => child.stdout.destroy());
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout: "", stderr }));
  });
}
const manyTexts = join(work, "many.txt");
writeFileSync(manyTexts, Array.from({ length: 3000 }, (_, i) => `text number ${i}`).join("\n") + "\n");

const runs = {
  closedPipe: encodeIntoClosedPipe(manyTexts),
  qFirst: ragtune(evalArgs(`${q},${other}`, "q-first.json")),
  otherFirst: ragtune(evalArgs(`${other},${q}`, "other-first.json")),
  noneMatch: ragtune(evalArgs(`${other},${unrelated}`, "none.json")),
  ragged: ragtune(["prepare", ragged, "--out", join(work, "prep")]),
  half: ragtune(["encode", "--model", model, "--device", "cpu", "--dtype", "float16"], "hello\n"),
  halfEval: ragtune(["eval", ...evalArgs(q, "half.json").slice(1), "--dtype", "float16", "--device", "cpu"]),
  badUtf8: ragtune(["encode", "--model", model, "--input", badUtf8]),
  missing: ragtune(["encode", "--model", model, "--input", join(work, "nope.txt")]),
};
for (const p of Object.values(runs)) p.catch(() => {});

describe("eval ids (issue #10 item 2)", () => {
  test("files without an id column: the corpus order does not change the scores", async () => {
    const [a, b] = await Promise.all([runs.qFirst, runs.otherFirst]);
    assertExit(a, 0);
    assertExit(b, 0);
    assert.match(a.stderr, /has no id column: documents are identified by their text/);
    const metrics = (f: string) =>
      JSON.parse(readFileSync(join(work, f), "utf8")) as { metrics: Record<string, number>; queries: number };
    const [ma, mb] = [metrics("q-first.json"), metrics("other-first.json")];
    assert.equal(ma.queries, 30);
    assert.deepEqual(ma.metrics, mb.metrics);
    // Each query's own passage is in the corpus: a positional match with other.jsonl (the bug) scored ~0.
    assert.ok(ma.metrics["dim_32_cosine_ndcg@10"]! > 0.1, JSON.stringify(ma.metrics));
  });

  test("a corpus holding none of the queries' passages is an error, not metrics", async () => {
    const r = await runs.noneMatch;
    assertExit(r, 1);
    assert.match(r.stderr, /none of the 30 queries has a relevant document in the corpus/);
  });
});

describe("clear errors (issue #10 item 10)", () => {
  test("a ragged CSV row names its line and the header's field count", async () => {
    const r = await runs.ragged;
    assertExit(r, 1);
    assert.match(r.stderr, /ragged2\.csv:5: row has 2 fields, the header has 3/);
  });

  test("--dtype float16 on the CPU is refused in the user's terms (encode and eval)", async () => {
    for (const r of await Promise.all([runs.half, runs.halfEval])) {
      assertExit(r, 2);
      assert.match(r.stderr, /float16 is not supported on the CPU; use float32 or bfloat16/);
      assert.doesNotMatch(r.stderr, /Half|KernelImpl/);
    }
  });

  test("encode into a pipe its reader closed (`| head`): stops quietly with exit 0", async () => {
    const r = await runs.closedPipe;
    assertExit(r, 0);
    assert.match(r.stderr, /note: the reader closed the output \(EPIPE\); stopped encoding/);
  });

  test("encode --input: invalid UTF-8 names the line; a missing file names itself", async () => {
    const bad = await runs.badUtf8;
    assertExit(bad, 1);
    assert.match(bad.stderr, /bad\.txt:3: not valid UTF-8/);
    assert.equal(bad.stdout, "", "nothing is embedded from a file that is not text");
    const missing = await runs.missing;
    assertExit(missing, 1);
    assert.match(missing.stderr, /nope\.txt: no such file/);
  });
});

describe("libtorch's dtype errors in the user's terms", () => {
  test("a missing Half / BFloat16 kernel names the dtype and what to use instead", () => {
    const half = new TorchError(`"LayerNormKernelImpl" not implemented for 'Half'`, "layer_norm");
    assert.match(half.message, /in float16 on this device: use float32, or bfloat16 on the CPU/);
    const bf16 = new TorchError(`"addmm_impl_cpu_" not implemented for 'BFloat16'`, "addmm");
    assert.match(bf16.message, /in bfloat16 on this device: use float32, or a CUDA device/);
    assert.equal(new TorchError("shape mismatch", "mm").message, "mm: shape mismatch");
  });

  test("a float16 model on the CPU, used from the library: the error (if this libtorch has none) says so", () => {
    const m = SentenceTransformer.fromDir(model, { dtype: "float16", device: "cpu" });
    try {
      m.encode(["hello"]);
    } catch (e) {
      assert.match((e as Error).message, /float16 on this device: use float32/);
    } finally {
      m.dispose();
    }
  });
});

describe("compare's inputs", () => {
  test("a JSON file that is not an object of metrics is named in the error", () => {
    const file = join(work, "null.json");
    writeFileSync(file, "null\n");
    assert.throws(
      () => readMetricsFile(file),
      new RegExp(`^Error: ${file}: expected a JSON object of metrics$`),
    );
    writeFileSync(file, '{"metrics": {"dim_64_cosine_ndcg@10": 0.5}}\n');
    assert.deepEqual(readMetricsFile(file), { "dim_64_cosine_ndcg@10": 0.5 });
  });
});
