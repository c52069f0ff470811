// End to end with the tiny random model: the dim × precision evaluation reuses the float evaluator's encode
// (in process: float32 scored in JS equals the libtorch evaluator), `ragtune eval --precision` prints the
// table and stores metrics, bytes and calibration ranges in --json, and `ragtune encode --precision` writes
// JSONL and .npy files that numpy can load (checked with python3 + numpy when present).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { readPairs } from "../../src/data/index.ts";
import { CapturingEmbedder } from "../../src/eval/embedding-capture.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { decodeNpy, encodeNpy, readEmbeddingMatrix } from "../../src/eval/npy.ts";
import { evaluateQuantized } from "../../src/eval/quantized-eval.ts";
import { floatMatrix, packSignBits } from "../../src/eval/quantize.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { freshDir, tinyModelDir } from "../helpers/tiny-model.ts";
import { EvalExtras } from "../../src/cli/eval-extras.ts";
import { writeEncodedOutput } from "../../src/cli/encode-output.ts";
import { ragtune as runCli } from "../helpers/run-cli.ts";

const DATA = fileURLToPath(new URL("../../data/financial/", import.meta.url));

const ragtune = (args: string[], input = "") => runCli(args, { input, threads: "inherit" });

const work = freshDir("quant");
const lines = (file: string) => readFileSync(join(DATA, file), "utf8").split("\n").filter(Boolean);
const queries = join(work, "queries.jsonl");
const corpus = join(work, "corpus.jsonl");
writeFileSync(queries, lines("test.jsonl").slice(0, 20).join("\n") + "\n");
writeFileSync(corpus, lines("train.jsonl").slice(0, 60).join("\n") + "\n");
const model = tinyModelDir(); // 32 dims, normalized (cosine)
const TEXTS = ["What was the revenue?", "Net income rose 12% in 2023.", "Total assets"];
const jsonOut = join(work, "eval.json");
const npyOut = join(work, "v.npy");
const perQueryOut = join(work, "per_query.jsonl");

// Child processes start now, in parallel with the in-process test.
const evalRun = ragtune([
  "eval",
  ...["--model", model, "--queries", queries, "--corpus", `${corpus},${queries}`, "--dims", "32,16"],
  ...["--precision", "float32,int8,binary", "--rescore", "2", "--json", jsonOut, "--per-query", perQueryOut],
]);
const encodeRun = ragtune(
  ["encode", "--model", model, "--precision", "ubinary", "--format", "npy", "--out", npyOut],
  TEXTS.join("\n") + "\n",
);

describe("quantized evaluation with the tiny model", () => {
  test("one encode: the captured embeddings are the model's, and float32 scored in JS agrees", async () => {
    const task = buildRetrievalTask((await readPairs(queries)).records, [
      ...(await readPairs(corpus)).records,
      ...(await readPairs(queries)).records,
    ]);
    const evaluator = new InformationRetrievalEvaluator({ ...task, dims: [32, 16] });
    const st = await SentenceTransformer.load(model);
    try {
      const capture = new CapturingEmbedder(st);
      const result = evaluator.evaluate(capture);
      assert.equal(capture.captured.length, 2); // queries and corpus, once each
      const qe = capture.embeddingsOf(evaluator.queryTexts, "queries");
      assert.deepEqual(qe.data, st.encode(evaluator.queryTexts).data); // the same vectors, bit for bit
      const q = evaluateQuantized({
        queries: qe,
        corpus: capture.embeddingsOf(evaluator.corpusTexts, "corpus"),
        queryIds: evaluator.queryIds,
        corpusIds: evaluator.corpusIds,
        relevantDocs: evaluator.relevantDocs,
        dims: [32, 16],
        precisions: ["float32"],
      });
      // The random model's embeddings are nearly collinear, so libtorch's float32 sums and the float64 sums
      // here can swap near-ties: allow one query (of 20) to move per metric, not more.
      for (const [k, v] of Object.entries(result.metrics))
        assert.ok(Math.abs(v - q.metrics[k]!) <= 0.05 + 1e-12, `${k}: libtorch ${v}, JS ${q.metrics[k]}`);
    } finally {
      st.dispose();
    }
  });

  test("ragtune eval --precision prints the dim × precision table and stores it in --json", async () => {
    const r = await evalRun;
    assert.equal(r.code, 0, r.stderr);
    const table = r.stdout.split("\n").filter((l) => /^\s*(32|16)\s+(float32|int8|binary)/.test(l));
    // per dim: float32, int8, int8 +rescore, binary, binary +rescore
    assert.equal(table.length, 10, r.stdout);
    assert.match(r.stdout, /32\s+binary \+rescore×2\s+4\s+32×/); // 32 dims → 4 bytes, 128/4 = 32× smaller
    const out = JSON.parse(readFileSync(jsonOut, "utf8")) as {
      metrics: Record<string, number>;
      quantized: {
        rows: Array<{ name: string; bytesPerVector: number }>;
        metrics: Record<string, number>;
        calibration: { source: string; rows: number; ranges: Array<{ dim: number; min: number[] }> };
      };
    };
    assert.deepEqual(
      out.quantized.rows.map((x) => `${x.name}:${x.bytesPerVector}`),
      [
        "dim_32:128",
        "dim_32_int8:32",
        "dim_32_int8_rescore2:32",
        "dim_32_binary:4",
        "dim_32_binary_rescore2:4",
        "dim_16:64",
        "dim_16_int8:16",
        "dim_16_int8_rescore2:16",
        "dim_16_binary:2",
        "dim_16_binary_rescore2:2",
      ],
    );
    for (const key of ["dim_16_int8_cosine_ndcg@10", "dim_32_binary_rescore2_cosine_map@100"]) {
      const v = out.quantized.metrics[key];
      assert.ok(typeof v === "number" && v >= 0 && v <= 1, key);
    }
    assert.ok(typeof out.metrics["dim_32_cosine_ndcg@10"] === "number"); // the float keys stay ST's
    // --per-query: one line per query at the first dim, top-3 passages; their mean nDCG@10 is the metric's
    // (up to the near-ties of the random model between libtorch's float32 and JS' float64 sums)
    const pq = readFileSync(perQueryOut, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(pq.length, 20);
    assert.deepEqual([pq[0]!.dim, (pq[0]!.top as unknown[]).length], [32, 3]);
    const mean = pq.reduce((s, r) => s + (r["ndcg@10"] as number), 0) / pq.length;
    assert.ok(Math.abs(mean - out.metrics["dim_32_cosine_ndcg@10"]!) <= 0.05, `${mean}`);
    assert.equal(out.quantized.calibration.source, "corpus");
    assert.equal(out.quantized.calibration.rows, 80); // 60 + 20 passages
    assert.deepEqual(
      out.quantized.calibration.ranges.map((x) => [x.dim, x.min.length]),
      [
        [32, 32],
        [16, 16],
      ],
    );
  });

  test("ragtune encode --precision ubinary --format npy: numpy's packbits of the float vectors", async () => {
    const r = await encodeRun;
    assert.equal(r.code, 0, r.stderr);
    const { data, shape, descr } = decodeNpy(readFileSync(npyOut), npyOut);
    assert.deepEqual([shape, descr], [[3, 4], "|u1"]);
    const st = await SentenceTransformer.load(model);
    try {
      const e = st.encode(TEXTS);
      assert.deepEqual(Array.from(data), Array.from(packSignBits(floatMatrix(e.data, e.rows, e.dim))));
    } finally {
      st.dispose();
    }
  });
});

describe("npy", () => {
  test("version 1.0 header aligned to 64 bytes; round trip; numpy reads it", () => {
    const data = Int8Array.from([1, -2, 3, -4, 5, -6]);
    const buf = encodeNpy(data, [2, 3]);
    const headerLen = buf.readUInt16LE(8);
    assert.equal((10 + headerLen) % 64, 0);
    assert.match(
      buf.subarray(10, 10 + headerLen).toString("latin1"),
      /^\{'descr': '\|i1', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/,
    );
    assert.deepEqual(Array.from(decodeNpy(buf).data), Array.from(data));
    assert.throws(() => decodeNpy(buf.subarray(0, buf.length - 1), "x.npy"), /x\.npy: 5 data bytes/);
    const file = join(work, "f.npy");
    writeFileSync(file, encodeNpy(Float32Array.from([0.5, -1.25]), [1, 2]));
    assert.deepEqual(readEmbeddingMatrix(file), { data: Float32Array.from([0.5, -1.25]), rows: 1, dim: 2 });
    const py = spawnSync(
      "python3",
      ["-c", `import numpy as np; a = np.load("${file}"); print(a.dtype, a.shape, a.tolist())`],
      {
        encoding: "utf8",
      },
    );
    if (py.status !== 0) {
      process.stderr.write(
        `note: python3 with numpy not available, skipping np.load (${py.stderr.trim().split("\n").pop()})\n`,
      );
      return;
    }
    assert.equal(py.stdout.trim(), "float32 (1, 2) [[0.5, -1.25]]");
  });
});

describe("options", () => {
  test("--rescore and --calibration need --precision; bad values name the flag", () => {
    assert.equal(EvalExtras.fromOptions({}), null);
    assert.throws(() => EvalExtras.fromOptions({ rescore: "4" }), /--rescore needs --precision/);
    assert.throws(
      () => EvalExtras.fromOptions({ precision: "int4" }),
      /--precision: unknown precision "int4"/,
    );
    assert.throws(() => EvalExtras.fromOptions({ precision: "int8", rescore: "0" }), /--rescore/);
    assert.throws(
      () => EvalExtras.fromOptions({ precision: "int8", "rescore-corpus": "dequantized" }),
      /--rescore-corpus must be quantized or float/,
    );
  });

  test("encode --precision int8 --calibration: buckets from the given embeddings", async () => {
    const calibration = join(work, "calib.jsonl");
    writeFileSync(calibration, "[-1, -1]\n[1, 1]\n");
    const out = join(work, "int8.jsonl");
    // range [-1, 1] per dim: 1 → 126 (float32 254.99998 - 128, truncated), -1 → -128, 0 → 0 (see quantize.test.ts)
    const e = { data: Float32Array.from([1, -1, 0, 0]), rows: 2, dim: 2 };
    await writeEncodedOutput(e, { precision: "int8", calibration, out }, { fullDim: 2, renormalized: false });
    assert.equal(readFileSync(out, "utf8"), "[126,-128]\n[0,0]\n");
    await assert.rejects(
      writeEncodedOutput(e, { precision: "binary", format: "jsonl" }, { fullDim: 2, renormalized: false }),
      /divisible by 8/,
    );
    await assert.rejects(
      writeEncodedOutput(e, { precision: "int8", format: "npy" }, { fullDim: 2, renormalized: false }),
      /--format npy needs --out FILE/,
    );
  });
});
