// The q8 ONNX file (src/export/onnx-quantize.ts, onnx/model_quantized.onnx next to onnx/model.onnx):
// - its arithmetic (onnxruntime's symmetric int8 / asymmetric uint8 per-tensor rules, numpy's half-to-even);
// - its graph and every initializer byte against onnxruntime 1.30's own quantizer run with transformers.js'
//   quantize_q8 settings (test/fixtures/onnx-q8/golden.json) on the st-tiny and XLM-R fixtures;
// - the interop check of issue 12: a folder saved by ragtune runs in onnxruntime-web (wasm, as in a browser) and
//   in transformers.js (Node: onnxruntime-node), model.onnx within 1e-4 of ragtune's embeddings and
//   model_quantized.onnx within the q8 tolerance below; transformers.js' default dtype in Node loads model.onnx
//   and `dtype: "q8"` loads model_quantized.onnx, through a `./` path and through env.localModelPath.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as ort from "onnxruntime-web";

import { exportOnnxCommand } from "../../src/cli/export.ts";
import { tidy } from "../../src/engine/index.ts";
import { bertToOnnx, exportOnnx } from "../../src/export/onnx.ts";
import { concatChunks, encodeModel } from "../../src/export/onnx-proto.ts";
import {
  quantizeDynamicQ8,
  quantizeInt8Symmetric,
  quantizeUint8Asymmetric,
} from "../../src/export/onnx-quantize.ts";
import { BertConfig, BertModel } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { XlmRobertaModel } from "../../src/models/xlm-roberta.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";

ort.env.wasm.numThreads = 1; // no worker threads in the test process
ort.env.logLevel = "error";

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-onnx-q8-"));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * The q8 tolerance, per text against ragtune's float32 embedding (unit vectors): cosine similarity at least
 * Q8_MIN_COSINE and no coordinate off by more than Q8_MAX_DIFF. Measured on the two models below (printed as
 * "q8 …"): the st-tiny fixture (hidden 16) and a random BERT with hidden 64 and weights ~ N(0, 0.2²), the harder
 * case (large weights make attention far from uniform); see the README's q8 table for a trained model.
 */
const Q8_MIN_COSINE = 0.998;
const Q8_MAX_DIFF = 0.03;
/** model.onnx against ragtune: the float32 tolerance of test/export/onnx.test.ts. */
const FP32_MAX_DIFF = 1e-4;

// At most 24 tokens (st-tiny's max_seq_length): past it, transformers.js 4.3's truncation drops the final [SEP]
// that HF tokenizers (and ragtune) keep, a tokenizer difference outside the ONNX graph (see the README).
const TEXTS = [
  "What was the total revenue in 2023?",
  "a",
  "",
  "The company reported a net loss of $12.5 million for the third quarter.",
  "Operating expenses increased by 7% year over year.",
];

// ---------------------------------------------------------------------------------------------------------
// Helpers

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The smallest cosine similarity between row i of a and row i of b (rows of length dim). */
function minCosine(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): number {
  let min = 1;
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = r * dim; j < (r + 1) * dim; j++) {
      dot += a[j]! * b[j]!;
      na += a[j]! * a[j]!;
      nb += b[j]! * b[j]!;
    }
    min = Math.min(min, dot / Math.sqrt(na * nb));
  }
  return min;
}

function assertFp32(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const d = maxDiff(got, want);
  console.log(`fp32 ${what}: maxdiff ${d.toExponential(2)}`);
  assert.ok(d <= FP32_MAX_DIFF, `${what}: maxdiff ${d} > ${FP32_MAX_DIFF}`);
}

function assertQ8(got: ArrayLike<number>, want: ArrayLike<number>, dim: number, what: string): void {
  const d = maxDiff(got, want);
  const c = minCosine(got, want, dim);
  console.log(`q8 ${what}: min cosine ${c.toFixed(5)}, maxdiff ${d.toExponential(2)}`);
  assert.ok(c >= Q8_MIN_COSINE, `${what}: cosine ${c} < ${Q8_MIN_COSINE}`);
  assert.ok(d <= Q8_MAX_DIFF, `${what}: maxdiff ${d} > ${Q8_MAX_DIFF}`);
  // Quantized, not a copy of the float32 model.
  assert.ok(d > 0, `${what}: identical to float32`);
}

/** transformers.js' feature-extraction on a folder: pooled, L2-normalized embeddings (B·H). */
async function onnxWebEmbeddings(
  model: SentenceTransformer,
  file: string,
  pooling: "mean" | "cls",
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(readFileSync(file), { executionProviders: ["wasm"] });
  try {
    const f = tidy(() => {
      const t = model.tokenize(TEXTS);
      const [batch, seq] = t.inputIds.shape as [number, number];
      return {
        batch,
        seq,
        ids: t.inputIds.toNumbers(),
        mask: t.attentionMask.toNumbers(),
        types: t.tokenTypeIds.toNumbers(),
      };
    });
    const t = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), [f.batch, f.seq]);
    const out = await session.run({
      input_ids: t(f.ids),
      attention_mask: t(f.mask),
      token_type_ids: t(f.types),
    });
    const hidden = out.last_hidden_state!.data as Float32Array; // (B, L, H)
    const dim = hidden.length / (f.batch * f.seq);
    const emb = new Float32Array(f.batch * dim);
    for (let i = 0; i < f.batch; i++) {
      const row = emb.subarray(i * dim, (i + 1) * dim);
      if (pooling === "cls") row.set(hidden.subarray(i * f.seq * dim, i * f.seq * dim + dim));
      else {
        let n = 0;
        for (let s = 0; s < f.seq; s++) {
          if (f.mask[i * f.seq + s] === 0) continue;
          n++;
          for (let j = 0; j < dim; j++) row[j]! += hidden[(i * f.seq + s) * dim + j]!;
        }
        for (let j = 0; j < dim; j++) row[j]! /= n;
      }
      const norm = Math.hypot(...row);
      for (let j = 0; j < dim; j++) row[j]! /= Math.max(norm, 1e-12);
    }
    return emb;
  } finally {
    await session.release();
  }
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// ---------------------------------------------------------------------------------------------------------

describe("q8 arithmetic (onnxruntime quant_utils)", () => {
  test("int8 weights: symmetric, scale max|x|/127, zero point 0, halves to even", () => {
    // max |x| = 127 makes the scale exactly 1: q = round(x), numpy.round(-2.5) = -2, (3.5) = 4, (0.5) = 0.
    const r = quantizeInt8Symmetric("w", Float32Array.of(127, -2.5, 3.5, 0.5, -0.5, 1.5, -127));
    assert.equal(r.scale, 1);
    assert.equal(r.zeroPoint, 0);
    assert.deepEqual([...r.data], [127, -2, 4, 0, 0, 2, -127]);
    // A negative extreme sets the scale too: 2·0.635/254 in float32.
    const s = quantizeInt8Symmetric("w", Float32Array.of(-0.635, 0.1));
    assert.equal(s.scale, Math.fround(Math.fround(1.27) / 254));
    assert.equal(s.data[0], -127);
  });

  test("uint8 tables: asymmetric over [min, max] holding 0, zero point round(-min/scale)", () => {
    // min -51, max 204: scale (204 + 51) / 255 = 1, zero point 51; q = round(x) + 51 clipped to [0, 255].
    const r = quantizeUint8Asymmetric("t", Float32Array.of(-51, 204, 0.5, 1.5, -50.5));
    assert.equal(r.scale, 1);
    assert.equal(r.zeroPoint, 51);
    assert.deepEqual([...r.data], [0, 255, 51, 53, 1]);
    // All positive: the range is widened to hold 0, so the zero point is 0.
    assert.equal(quantizeUint8Asymmetric("t", Float32Array.of(1, 2)).zeroPoint, 0);
  });

  test("an all-zero tensor gets scale 1 (compute_scale_zp's empty range); NaN is refused by name", () => {
    const z = quantizeInt8Symmetric("w", new Float32Array(4));
    assert.deepEqual([z.scale, z.zeroPoint, [...z.data]], [1, 0, [0, 0, 0, 0]]);
    assert.throws(
      () => quantizeInt8Symmetric("encoder.layer.0.output.dense.weight.T", Float32Array.of(1, NaN)),
      /"encoder\.layer\.0\.output\.dense\.weight\.T" holds NaN at flat index 1/,
    );
  });
});

describe("model_quantized.onnx is what onnxruntime's quantizer makes (transformers.js quantize_q8)", () => {
  const golden = JSON.parse(readFileSync(fixture("onnx-q8/golden.json"), "utf8")) as Record<
    string,
    { nodes: [string, string, string[], string[]][]; initializers: [string, number, number[], string][] }
  >;

  for (const name of ["st-tiny/model", "xlm-roberta/st"]) {
    test(`${name}: the same nodes, and every initializer byte for byte`, () => {
      const model = SentenceTransformer.fromDir(fixture(name));
      try {
        const encoder = model.encoder;
        assert.ok(encoder instanceof BertModel || encoder instanceof XlmRobertaModel);
        const { model: q, stats } = quantizeDynamicQ8(bertToOnnx(encoder));
        const want = golden[name]!;
        const nodes = q.graph.nodes
          .map((n) => [n.opType, n.name ?? "", [...n.inputs], [...n.outputs]] as const)
          .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
        assert.deepEqual(
          nodes.map((n) => JSON.stringify(n)),
          want.nodes.map((n) => JSON.stringify(n)).sort(),
        );
        const inits = q.graph.initializers
          .map((t) => [t.name, t.dataType, [...t.dims], sha256(t.rawData)] as const)
          .sort((a, b) => (a[0] < b[0] ? -1 : 1));
        assert.deepEqual(
          inits,
          [...want.initializers].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
        );
        // 6 Linear layers per encoder layer; q·kᵀ and probs·v stay float; word + token type (+ XLM-R position)
        // embedding tables are uint8.
        const layers = encoder.config.numHiddenLayers;
        assert.deepEqual(stats, {
          matMuls: 6 * layers,
          floatMatMuls: 2 * layers,
          gathers: encoder instanceof XlmRobertaModel ? 3 : 2,
        });
      } finally {
        model.dispose();
      }
    });
  }
});

describe("a saved folder runs in onnxruntime-web and transformers.js (fp32 and q8)", () => {
  const tokenizer = HfTokenizer.fromDir(fixture("tokenizers/bert-base-uncased"));
  const cases: { name: string; dir: string; pooling: "mean" | "cls"; dim: number; expected: Float32Array }[] =
    [];

  before(() => {
    const random = SentenceTransformer.create({
      config: BertConfig.with({
        vocabSize: tokenizer.vocabSize,
        hiddenSize: 64,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        intermediateSize: 128,
        maxPositionEmbeddings: 64,
        initializerRange: 0.2,
      }),
      tokenizer,
      pooling: "mean",
      normalize: true,
      seed: 5,
    });
    const stTiny = SentenceTransformer.fromDir(fixture("st-tiny/model"));
    for (const [name, model, pooling] of [
      ["random-bert-64", random, "mean"],
      ["st-tiny", stTiny, "cls"],
    ] as const) {
      const dir = join(work, name);
      model.save(dir);
      const r = exportOnnx(model, dir);
      assert.deepEqual(r.files, [join("onnx", "model.onnx"), join("onnx", "model_quantized.onnx")]);
      assert.deepEqual(r.transformersJs, { pooling, normalize: true });
      const q = readFileSync(join(dir, "onnx", "model_quantized.onnx"));
      assert.equal(r.quantized!.bytes, q.length);
      console.log(`${name}: model.onnx ${r.bytes} bytes, model_quantized.onnx ${q.length} bytes`);
      const expected = tidy(() => model.encode(TEXTS).data as Float32Array);
      cases.push({ name, dir, pooling, dim: expected.length / TEXTS.length, expected });
      model.dispose();
    }
  });

  test("onnxruntime-web (wasm): model.onnx within 1e-4, model_quantized.onnx within the q8 tolerance", async () => {
    for (const c of cases) {
      const model = SentenceTransformer.fromDir(c.dir);
      try {
        const fp32 = await onnxWebEmbeddings(model, join(c.dir, "onnx", "model.onnx"), c.pooling);
        assertFp32(fp32, c.expected, `onnxruntime-web ${c.name}`);
        const q8 = await onnxWebEmbeddings(model, join(c.dir, "onnx", "model_quantized.onnx"), c.pooling);
        assertQ8(q8, c.expected, c.dim, `onnxruntime-web ${c.name}`);
      } finally {
        model.dispose();
      }
    }
  });

  test("transformers.js in Node: default dtype → model.onnx, dtype q8 → model_quantized.onnx", async () => {
    const { env, pipeline } = await import("@huggingface/transformers");
    env.allowRemoteModels = false; // no network: a wrong path fails with "not found locally", not a fetch
    for (const c of cases) {
      // A path starting with ./ is a folder (a bare name is taken for a hub id).
      const path = `./${relative(process.cwd(), c.dir)}`;
      const fp32 = await pipeline("feature-extraction", path);
      const e32 = await fp32(TEXTS, { pooling: c.pooling, normalize: true });
      assert.deepEqual(e32.dims, [TEXTS.length, c.dim]);
      assertFp32(e32.data as Float32Array, c.expected, `transformers.js default dtype ${c.name}`);
      await fp32.dispose();

      const q8 = await pipeline("feature-extraction", path, { dtype: "q8" });
      const e8 = await q8(TEXTS, { pooling: c.pooling, normalize: true });
      assertQ8(e8.data as Float32Array, c.expected, c.dim, `transformers.js dtype q8 ${c.name}`);
      await q8.dispose();
    }
  });

  test("transformers.js: env.localModelPath + a bare folder name; Matryoshka = pool, slice, normalize", async () => {
    const { env, pipeline } = await import("@huggingface/transformers");
    env.allowRemoteModels = false;
    const c = cases[0]!;
    const previous = env.localModelPath;
    env.localModelPath = dirname(c.dir);
    try {
      const extractor = await pipeline("feature-extraction", basename(c.dir), { dtype: "q8" });
      const pooled = await extractor(TEXTS, { pooling: c.pooling });
      const dim = c.dim / 2;
      const truncated = pooled.slice(null, [0, dim]).normalize(2, -1); // (B, dim)
      assert.deepEqual(truncated.dims, [TEXTS.length, dim]);
      // ragtune's truncation: the first dim coordinates of the unnormalized pooled vector, renormalized.
      const want = new Float32Array(TEXTS.length * dim);
      for (let i = 0; i < TEXTS.length; i++) {
        const row = c.expected.subarray(i * c.dim, i * c.dim + dim);
        const n = Math.hypot(...row);
        want.set(
          row.map((x) => x / n),
          i * dim,
        );
      }
      assertQ8(truncated.data as Float32Array, want, dim, `transformers.js q8 Matryoshka ${dim} ${c.name}`);
      await extractor.dispose();
    } finally {
      env.localModelPath = previous;
    }
  });
});

describe("exportOnnx options", () => {
  test('quantize "none" writes model.onnx only and removes a stale model_quantized.onnx', () => {
    const model = SentenceTransformer.fromDir(fixture("st-tiny/model"));
    try {
      const dir = join(work, "none");
      model.save(dir);
      const q8 = exportOnnx(model, dir);
      const file = join(dir, q8.quantized!.file);
      // The file written is encodeModel of quantizeDynamicQ8 of the float32 graph.
      const expected = concatChunks(encodeModel(quantizeDynamicQ8(bertToOnnx(model.bert)).model));
      assert.equal(sha256(readFileSync(file)), sha256(expected));
      const r = exportOnnx(model, dir, { quantize: "none" });
      assert.deepEqual(r.files, [join("onnx", "model.onnx")]);
      assert.equal(r.quantized, null);
      assert.equal(existsSync(file), false);
      assert.ok(r.warnings.some((w) => /removed .*model_quantized\.onnx/.test(w)));
      // A custom file name gets transformers.js' suffix.
      const custom = exportOnnx(model, dir, { fileName: "encoder.onnx" });
      assert.deepEqual(custom.files, [join("onnx", "encoder.onnx"), join("onnx", "encoder_quantized.onnx")]);
      assert.throws(() => exportOnnx(model, dir, { fileName: "../x.onnx" }), /plain name ending in \.onnx/);
      assert.throws(
        () => exportOnnx(model, dir, { quantize: "q4" as "q8" }),
        /quantize must be q8 or none, got "q4"/,
      );
    } finally {
      model.dispose();
    }
  });

  test("ragtune export-onnx --quantize q8|none", async () => {
    const dir = join(work, "cli");
    cpSync(fixture("st-tiny/model"), dir, { recursive: true });
    const run = (quantize: string) => exportOnnxCommand.run({ model: dir, opset: "17", quantize }, []);
    await run("q8");
    assert.ok(existsSync(join(dir, "onnx", "model_quantized.onnx")));
    await run("none");
    assert.ok(existsSync(join(dir, "onnx", "model.onnx")));
    assert.equal(existsSync(join(dir, "onnx", "model_quantized.onnx")), false);
    await assert.rejects(run("int8"), /--quantize must be q8 or none, got "int8"/);
  });

  test("the opset-14 graph quantizes too (DynamicQuantizeLinear needs opset 11)", async () => {
    const model = SentenceTransformer.fromDir(fixture("st-tiny/model"));
    try {
      const dir = join(work, "opset14");
      mkdirSync(dir, { recursive: true });
      cpSync(fixture("st-tiny/model"), dir, { recursive: true });
      exportOnnx(model, dir, { opset: 14 });
      const expected = tidy(() => model.encode(TEXTS).data as Float32Array);
      const q8 = await onnxWebEmbeddings(model, join(dir, "onnx", "model_quantized.onnx"), "cls");
      assertQ8(q8, expected, expected.length / TEXTS.length, "onnxruntime-web opset 14 st-tiny");
      const old = bertToOnnx(model.bert);
      assert.throws(
        () => quantizeDynamicQ8({ ...old, opsetImports: [{ domain: "", version: 10 }] }),
        /opset 10 has no DynamicQuantizeLinear/,
      );
    } finally {
      model.dispose();
    }
  });
});
