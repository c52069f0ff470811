// ONNX export (src/export/onnx.ts) checked with onnxruntime-web (wasm backend, in Node): the exported graph's
// last_hidden_state against ragtune's BertModel.forward on padded batches (erf GELU, tanh GELU, ReLU, opset 14
// and 17, sentence pairs with token_type_ids 1), and mean / cls pooling + L2 normalization of it, as
// transformers.js' feature-extraction pipeline computes, against SentenceTransformer.encode. Also the protobuf
// writer's encodings and the file's top-level structure. Each parity test prints its maxdiff.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as ort from "onnxruntime-web";

import { liveTensors, noGrad, tensor, tidy } from "../../src/engine/index.ts";
import { BertConfig, BertModel, type HiddenAct } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { exportOnnx, ONNX_INPUTS, ONNX_OUTPUT, type OnnxOpset } from "../../src/export/onnx.ts";
import { concatChunks, ProtoWriter } from "../../src/export/onnx-proto.ts";

ort.env.wasm.numThreads = 1; // no worker threads in the test process
ort.env.logLevel = "error";

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-onnx-"));
after(() => rmSync(work, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(work, `m${dirCount++}`);

const TOKENIZER = HfTokenizer.fromDir(fixture("tokenizers/bert-base-uncased"));
const TEXTS = [
  "What was the total revenue in 2023?",
  "a",
  "",
  "The company reported a net loss of $12.5 million for the third quarter, compared to a profit a year earlier.",
  "Operating expenses increased by 7% year over year.",
];

function tinyModel(pooling: "mean" | "cls", hiddenAct: HiddenAct, seed = 7): SentenceTransformer {
  return SentenceTransformer.create({
    config: BertConfig.with({
      vocabSize: TOKENIZER.vocabSize,
      hiddenSize: 32,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      intermediateSize: 64,
      maxPositionEmbeddings: 64,
      hiddenAct,
      // Larger weights than BERT's 0.02 so that attention is far from uniform and GELU's tails matter.
      initializerRange: 0.2,
    }),
    tokenizer: TOKENIZER,
    pooling,
    normalize: true,
    seed,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** A padded batch as plain arrays (row-major, int64 as numbers). */
interface Batch {
  batch: number;
  seq: number;
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

function batchOf(model: SentenceTransformer, texts: readonly string[]): Batch {
  return tidy(() => {
    const f = model.tokenize(texts);
    const [batch, seq] = f.inputIds.shape as [number, number];
    return {
      batch,
      seq,
      inputIds: f.inputIds.toNumbers(),
      attentionMask: f.attentionMask.toNumbers(),
      tokenTypeIds: f.tokenTypeIds.toNumbers(),
    };
  });
}

/** Sentence pairs [CLS] a [SEP] b [SEP] with token_type_ids 0 for the first segment and 1 for the second. */
function pairBatch(tokenizer: HfTokenizer, pairs: readonly [string, string][]): Batch {
  const rows = pairs.map(([a, b]) => {
    const ia = tokenizer.tokenIds(a); // [CLS] a [SEP]
    const ib = tokenizer.tokenIds(b).slice(1); // b [SEP]
    return { ids: [...ia, ...ib], types: [...ia.map(() => 0), ...ib.map(() => 1)] };
  });
  const seq = Math.max(...rows.map((r) => r.ids.length));
  const pad = <T>(xs: T[], v: T) => [...xs, ...Array<T>(seq - xs.length).fill(v)];
  return {
    batch: rows.length,
    seq,
    inputIds: rows.flatMap((r) => pad(r.ids, 0)),
    attentionMask: rows.flatMap((r) =>
      pad(
        r.ids.map(() => 1),
        0,
      ),
    ),
    tokenTypeIds: rows.flatMap((r) => pad(r.types, 0)),
  };
}

/** ragtune's last_hidden_state of a batch, (B·L·H) float32. */
function ragtuneHidden(bert: BertModel, b: Batch): Float32Array {
  return noGrad(() =>
    tidy(() => {
      const shape = [b.batch, b.seq];
      const t = (xs: number[]) => tensor(BigInt64Array.from(xs, BigInt), { shape });
      const h = bert.forward({
        inputIds: t(b.inputIds),
        attentionMask: t(b.attentionMask),
        tokenTypeIds: t(b.tokenTypeIds),
      });
      return h.contiguous().toArray() as Float32Array;
    }),
  );
}

async function openSession(file: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(readFileSync(file), { executionProviders: ["wasm"] });
}

/** onnxruntime's last_hidden_state of a batch, fed as transformers.js feeds it. */
async function onnxHidden(session: ort.InferenceSession, b: Batch): Promise<ort.Tensor> {
  const t = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), [b.batch, b.seq]);
  const out = await session.run({
    input_ids: t(b.inputIds),
    attention_mask: t(b.attentionMask),
    token_type_ids: t(b.tokenTypeIds),
  });
  const h = out[ONNX_OUTPUT];
  assert.ok(h, "no last_hidden_state output");
  return h;
}

/** transformers.js' feature-extraction post-processing: mean_pooling or cls (position 0), then L2 normalize. */
function poolAndNormalize(
  hidden: Float32Array,
  b: Batch,
  dim: number,
  pooling: "mean" | "cls",
): Float32Array {
  const out = new Float32Array(b.batch * dim);
  for (let i = 0; i < b.batch; i++) {
    const row = out.subarray(i * dim, (i + 1) * dim);
    if (pooling === "cls") {
      row.set(hidden.subarray(i * b.seq * dim, i * b.seq * dim + dim));
    } else {
      let count = 0;
      for (let t = 0; t < b.seq; t++) {
        if (b.attentionMask[i * b.seq + t] === 0) continue;
        count++;
        for (let j = 0; j < dim; j++) row[j]! += hidden[(i * b.seq + t) * dim + j]!;
      }
      for (let j = 0; j < dim; j++) row[j]! /= count;
    }
    const norm = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
    for (let j = 0; j < dim; j++) row[j]! /= Math.max(norm, 1e-12);
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): number {
  const d = maxDiff(a, b);
  assert.ok(d <= tol, `${what}: maxdiff ${d} > ${tol}`);
  console.log(`maxdiff ${what}: ${d.toExponential(2)}`);
  return d;
}

/** The top-level fields of a protobuf message: field number -> values (varints as bigint, LEN as bytes). */
function decodeFields(buf: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const fields = new Map<number, (bigint | Uint8Array)[]>();
  let at = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = buf[at++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return v;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    let value: bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = Number(varint());
      value = buf.subarray(at, at + len);
      at += len;
    } else if (wire === 5) {
      value = buf.subarray(at, at + 4);
      at += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const utf8 = (v: bigint | Uint8Array | undefined) => new TextDecoder().decode(v as Uint8Array);

// ---------------------------------------------------------------------------------------------------------

describe("protobuf writer", () => {
  const bytes = (w: ProtoWriter) => Array.from(concatChunks(w.finish()));

  test("varints, negative int64, floats, strings, packed ints, nested messages", () => {
    assert.deepEqual(bytes(new ProtoWriter().int(1, 150)), [0x08, 0x96, 0x01]);
    // int64 -1: ten bytes of two's complement.
    assert.deepEqual(bytes(new ProtoWriter().int(3, -1)), [0x18, ...Array(9).fill(0xff), 0x01]);
    assert.deepEqual(bytes(new ProtoWriter().float(2, 1)), [0x15, 0x00, 0x00, 0x80, 0x3f]);
    assert.deepEqual(bytes(new ProtoWriter().string(2, "hi")), [0x12, 0x02, 0x68, 0x69]);
    assert.deepEqual(bytes(new ProtoWriter().packedInts(1, [3, 270])), [0x0a, 0x03, 0x03, 0x8e, 0x02]);
    const inner = new ProtoWriter().int(1, 150);
    assert.deepEqual(bytes(new ProtoWriter().message(3, inner)), [0x1a, 0x03, 0x08, 0x96, 0x01]);
    // Field numbers above 15 take a two-byte key (AttributeProto.type = 20).
    assert.deepEqual(bytes(new ProtoWriter().int(20, 7)), [0xa0, 0x01, 0x07]);
  });

  test("large byte fields are referenced, not copied, and the length counts them", () => {
    const big = new Uint8Array(10_000).fill(7);
    const w = new ProtoWriter().int(1, 1).bytes(9, big);
    assert.equal(w.length, 2 + 3 + big.length);
    const chunks = w.finish();
    assert.ok(chunks.includes(big));
    assert.equal(concatChunks(chunks).length, w.length);
  });
});

describe("exportOnnx", () => {
  const models: SentenceTransformer[] = [];
  after(() => models.forEach((m) => m.dispose()));

  test("a saved folder gets onnx/model.onnx: a valid ModelProto that onnxruntime loads", async () => {
    const model = tinyModel("mean", "gelu");
    models.push(model);
    const dir = freshDir();
    model.save(dir);
    const before = liveTensors();
    const result = exportOnnx(model, dir);
    assert.equal(liveTensors(), before, "exportOnnx leaked tensors");
    const file = join(dir, "onnx", "model.onnx");
    assert.deepEqual(result.files, [join("onnx", "model.onnx"), join("onnx", "model_quantized.onnx")]);
    assert.equal(result.bytes, statSync(file).size);
    assert.equal(result.opset, 17);
    assert.deepEqual(result.transformersJs, { pooling: "mean", normalize: true });
    assert.deepEqual(result.warnings, []);
    console.log(`tiny model (vocab ${TOKENIZER.vocabSize}, hidden 32, 2 layers): ${result.bytes} bytes`);

    const buf = readFileSync(file);
    const top = decodeFields(buf);
    assert.deepEqual(top.get(1), [8n]); // ir_version
    assert.equal(utf8(top.get(2)?.[0]), "ragtune"); // producer_name
    const opset = decodeFields(top.get(8)![0] as Uint8Array); // opset_import
    assert.equal(utf8(opset.get(1)?.[0]), "");
    assert.deepEqual(opset.get(2), [17n]);
    const graph = decodeFields(top.get(7)![0] as Uint8Array);
    const names = (graph.get(5) ?? []).map((t) => utf8(decodeFields(t as Uint8Array).get(8)?.[0]));
    for (const n of [
      "embeddings.word_embeddings.weight",
      "embeddings.position_embeddings.weight",
      "embeddings.token_type_embeddings.weight",
      "embeddings.LayerNorm.weight",
      "encoder.layer.1.attention.self.query.weight.T",
      "encoder.layer.1.attention.self.query.bias",
      "encoder.layer.1.output.LayerNorm.bias",
    ])
      assert.ok(names.includes(n), `no initializer ${n}`);
    const io = (field: number) =>
      (graph.get(field) ?? []).map((v) => utf8(decodeFields(v as Uint8Array).get(1)?.[0]));
    assert.deepEqual(io(11), [...ONNX_INPUTS]);
    assert.deepEqual(io(12), [ONNX_OUTPUT]);

    const session = await openSession(file);
    assert.deepEqual([...session.inputNames], ["input_ids", "attention_mask", "token_type_ids"]);
    assert.deepEqual([...session.outputNames], ["last_hidden_state"]);
    await session.release();
  });

  for (const [hiddenAct, pooling, opset] of [
    ["gelu", "mean", 17],
    ["gelu_new", "cls", 17],
    ["gelu", "mean", 14],
    ["relu", "cls", 14],
  ] as const) {
    test(`${hiddenAct}, opset ${opset}: last_hidden_state and ${pooling} + normalize match ragtune`, async () => {
      const model = tinyModel(pooling, hiddenAct);
      models.push(model);
      const dir = freshDir();
      const result = exportOnnx(model, dir, { opset: opset as OnnxOpset });
      assert.equal(result.opset, opset);
      assert.deepEqual(result.transformersJs, { pooling, normalize: true });
      const session = await openSession(join(dir, "onnx", "model.onnx"));
      try {
        const b = batchOf(model, TEXTS);
        assert.ok(b.attentionMask.includes(0), "the batch is padded");
        const h = await onnxHidden(session, b);
        assert.deepEqual(h.dims, [b.batch, b.seq, 32]);
        assert.equal(h.type, "float32");
        const hidden = h.data as Float32Array;
        const what = `${hiddenAct}/opset ${opset}`;
        // Padding positions are computed too (their queries attend to the real tokens): compare everything.
        assertClose(hidden, ragtuneHidden(model.bert, b), 1e-4, `${what} last_hidden_state`);
        const expected = model.encode(TEXTS);
        assertClose(
          poolAndNormalize(hidden, b, 32, pooling),
          expected.data,
          1e-4,
          `${what} ${pooling} embeddings`,
        );
      } finally {
        await session.release();
      }
    });
  }

  test("sentence pairs: token_type_ids 1 on the second segment", async () => {
    const model = tinyModel("mean", "gelu", 11);
    models.push(model);
    const dir = freshDir();
    exportOnnx(model, dir);
    const session = await openSession(join(dir, "onnx", "model.onnx"));
    try {
      const b = pairBatch(TOKENIZER, [
        ["What was the revenue?", "Revenue was $4.2 billion in fiscal 2023."],
        ["dividends", "The board declared a quarterly dividend."],
        ["a", "b"],
      ]);
      assert.ok(b.tokenTypeIds.includes(1));
      const h = await onnxHidden(session, b);
      const d = assertClose(
        h.data as Float32Array,
        ragtuneHidden(model.bert, b),
        1e-4,
        "pair last_hidden_state",
      );
      // The segment ids matter: with zeros instead, the output changes.
      const zeros = await onnxHidden(session, { ...b, tokenTypeIds: b.tokenTypeIds.map(() => 0) });
      assert.ok(maxDiff(zeros.data as Float32Array, h.data as Float32Array) > 100 * Math.max(d, 1e-6));
    } finally {
      await session.release();
    }
  });

  test("the st-tiny fixture (loaded from its folder) and a bare BertModel", async () => {
    const model = SentenceTransformer.fromDir(fixture("st-tiny/model"));
    models.push(model);
    const dir = freshDir();
    model.save(dir);
    const result = exportOnnx(model, dir);
    assert.deepEqual(result.transformersJs, { pooling: "cls", normalize: true });
    const session = await openSession(join(dir, "onnx", "model.onnx"));
    try {
      const b = batchOf(model, TEXTS);
      const h = await onnxHidden(session, b);
      const dim = model.bert.config.hiddenSize;
      assertClose(h.data as Float32Array, ragtuneHidden(model.bert, b), 1e-4, "st-tiny last_hidden_state");
      const e = poolAndNormalize(h.data as Float32Array, b, dim, "cls");
      assertClose(e, model.encode(TEXTS).data, 1e-4, "st-tiny cls embeddings");
    } finally {
      await session.release();
    }

    // A BertModel alone: no pooling to report, and the folder lacks what transformers.js needs.
    const bare = freshDir();
    const r = exportOnnx(model.bert, bare, { fileName: "encoder.onnx" });
    assert.ok(existsSync(join(bare, "onnx", "encoder.onnx")));
    assert.equal(r.transformersJs, null);
    assert.equal(r.warnings.length, 3);
    assert.match(r.warnings[0]!, /config\.json is missing/);
  });
});
