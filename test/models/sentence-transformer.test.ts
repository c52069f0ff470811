// SentenceTransformer end to end on tiny random models: encode (order, batching, truncation, Matryoshka
// truncateDim, prompts, include_prompt), similarity, save → load, the folder layouts it must read (plain
// transformers, sentence-transformers 6.x), pickle refusal, tensor leaks, and golden parity against a plain
// PyTorch reference (test/fixtures/st-tiny/make_st_golden.py). Each parity test prints its maxdiff.
import assert from "node:assert/strict";
import { cpSync, copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { liveTensors, noGrad, tidy } from "../../src/engine/index.ts";
import { BertConfig } from "../../src/models/bert.ts";
import { Dense } from "../../src/models/dense.ts";
import {
  SentenceTransformer,
  similarity,
  type EmbeddingMatrix,
} from "../../src/models/sentence-transformer.ts";
import type { DenseConfig } from "../../src/models/st-folder.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import {
  BERT_VOCAB,
  freshDir,
  loadTinyModel,
  TINY_DIM,
  TINY_MAX_SEQ_LENGTH,
  tinyModelCopy,
  tinyModelDir,
  tinyModelVariant,
  variantOf,
} from "../helpers/tiny-model.ts";

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));

const TEXTS = [
  "What was the total revenue in 2023?",
  "a",
  "",
  "The company reported a net loss of $12.5 million for the third quarter, compared to a profit a year earlier.",
  "dividends",
  "Operating expenses increased by 7% year over year.",
  "Hello NVIDIA revenue",
];

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Row i of an embedding matrix as numbers. */
function row(e: EmbeddingMatrix, i: number): number[] {
  return Array.from(e.data.subarray(i * e.dim, (i + 1) * e.dim));
}

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: readonly number[]) => Math.sqrt(dot(a, a));
const unit = (a: readonly number[]) => a.map((x) => x / Math.max(norm(a), 1e-12));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): number {
  const d = maxDiff(a, b);
  assert.ok(d <= tol, `${what}: maxdiff ${d} > ${tol}`);
  return d;
}

/** Every element identical (===), as a save → load round trip must give. */
function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i}: ${a[i]} !== ${b[i]}`);
}

/**
 * Mean of the encoder's token embeddings of one text over positions [skip, L) (no padding: one text alone):
 * mean pooling computed by hand, skipping the first `skip` tokens (a prompt's, when include_prompt is false).
 */
function manualMean(model: SentenceTransformer, text: string, skip = 0): number[] {
  return noGrad(() =>
    tidy(() => {
      const features = model.tokenize([text]);
      const h = model.bert.forward(features); // (1, L, H)
      const [, len, hidden] = h.shape as [number, number, number];
      const data = h.toArray() as Float32Array;
      const out = new Array<number>(hidden).fill(0);
      for (let t = skip; t < len; t++) for (let j = 0; j < hidden; j++) out[j]! += data[t * hidden + j]!;
      return out.map((x) => x / (len - skip));
    }),
  );
}

/** Files under dir, relative, sorted (empty folders do not show). */
function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name), `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

let model: SentenceTransformer;
before(() => {
  model = loadTinyModel();
});
after(() => model.dispose());

// ---------------------------------------------------------------------------------------------------------

describe("encode", () => {
  test("the tiny model: 32-dim CLS pooling + Normalize, max_seq_length 128", () => {
    assert.equal(model.embeddingDim, TINY_DIM);
    assert.equal(model.maxSeqLength, TINY_MAX_SEQ_LENGTH);
    assert.deepEqual(model.pooling.config.modes, ["cls"]);
    assert.ok(model.normalizer !== null);
    assert.equal(model.similarityFnName, "cosine");
    assert.deepEqual(model.warnings, []);
  });

  test("rows come back in input order; batch sizes 1, 3 and 32 give the same vectors", () => {
    const b1 = model.encode(TEXTS, { batchSize: 1 });
    const b3 = model.encode(TEXTS, { batchSize: 3 });
    const b32 = model.encode(TEXTS, { batchSize: 32 });
    assert.equal(b32.rows, TEXTS.length);
    assert.equal(b32.dim, TINY_DIM);
    assert.equal(b32.data.length, TEXTS.length * TINY_DIM);
    const d3 = assertClose(b3.data, b1.data, 1e-5, "batch 3 vs 1");
    const d32 = assertClose(b32.data, b1.data, 1e-5, "batch 32 vs 1");
    console.log(`maxdiff batch 3 vs 1: ${d3.toExponential(2)}, batch 32 vs 1: ${d32.toExponential(2)}`);
    // Each row is that text's own embedding (encoded alone), so the length sort was undone.
    TEXTS.forEach((t, i) => assertClose(row(b32, i), model.encode([t]).data, 1e-5, `row ${i}`));
    // Distinct texts, distinct rows: a permutation would not go unnoticed.
    assert.ok(maxDiff(row(b32, 0), row(b32, 1)) > 1e-3);
  });

  test("no texts → a 0 × D matrix", () => {
    const e = model.encode([]);
    assert.deepEqual([e.rows, e.dim, e.data.length], [0, TINY_DIM, 0]);
  });

  test("an empty string is [CLS] [SEP] and embeds to a finite unit vector", () => {
    const f = model.tokenize([""]);
    assert.deepEqual(f.inputIds.shape, [1, 2]);
    assert.deepEqual(Array.from(f.inputIds.toArray() as BigInt64Array, Number), [101, 102]);
    for (const t of [f.inputIds, f.attentionMask, f.tokenTypeIds]) t.dispose();
    const v = row(model.encode([""]), 0);
    assert.ok(v.every(Number.isFinite));
    assert.ok(Math.abs(norm(v) - 1) < 1e-6);
  });

  test("texts longer than max_seq_length are truncated to it", () => {
    // "the" / "of" / "and" are one token each: 300 words are 302 ids, cut to [CLS] + 126 words + [SEP].
    const words = Array.from({ length: 300 }, (_, i) => ["the", "of", "and"][i % 3]!);
    const long = words.join(" ");
    assert.equal(model.tokenizer.countTokens(long), 302);
    const f = model.tokenize([long, "short"]);
    assert.deepEqual(f.inputIds.shape, [2, TINY_MAX_SEQ_LENGTH]);
    const ids = f.inputIds.toArray() as BigInt64Array;
    assert.equal(ids[TINY_MAX_SEQ_LENGTH - 1], 102n, "the truncated row still ends with [SEP]");
    for (const t of [f.inputIds, f.attentionMask, f.tokenTypeIds]) t.dispose();
    const cut = words.slice(0, TINY_MAX_SEQ_LENGTH - 2).join(" ");
    const e = model.encode([long, cut, "short"], { batchSize: 2 });
    assertClose(row(e, 0), row(e, 1), 1e-5, "long text vs its first 126 words");
    assert.ok(maxDiff(row(e, 0), model.encode([words.slice(0, 100).join(" ")]).data) > 1e-4);
  });
});

describe("Matryoshka truncateDim", () => {
  test("slices, then re-normalizes for a cosine model: the slice of the full embedding, unit length", () => {
    const full = model.encode(TEXTS);
    for (const d of [8, 16]) {
      const e = model.encode(TEXTS, { truncateDim: d });
      assert.equal(e.dim, d);
      for (let i = 0; i < TEXTS.length; i++) {
        const v = row(e, i);
        assert.ok(Math.abs(norm(v) - 1) < 1e-6, `row ${i} at ${d}: norm ${norm(v)}`);
        assertClose(v, unit(row(full, i).slice(0, d)), 1e-6, `row ${i} at ${d}`);
      }
    }
  });

  test("normalize: false keeps the raw slice; truncateDim = the full size changes nothing", () => {
    const full = model.encode(TEXTS);
    const raw = model.encode(TEXTS, { truncateDim: 8, normalize: false });
    for (let i = 0; i < TEXTS.length; i++) {
      assertBitEqual(new Float32Array(row(raw, i)), new Float32Array(row(full, i).slice(0, 8)), `row ${i}`);
      assert.ok(norm(row(raw, i)) < 0.999, "a slice of a unit vector is shorter");
    }
    assertBitEqual(model.encode(TEXTS, { truncateDim: TINY_DIM }).data, full.data, "truncateDim 32");
  });

  test("a dim outside 1..embeddingDim is a RangeError naming the range", () => {
    for (const d of [0, 33, 2.5])
      assert.throws(
        () => model.encode(["x"], { truncateDim: d }),
        /truncateDim must be an integer in 1\.\.32/,
      );
  });
});

describe("prompts", () => {
  test("a prompt text is prepended to every text", () => {
    const withPrompt = model.encode(TEXTS, { prompt: "query: " });
    const prepended = model.encode(TEXTS.map((t) => `query: ${t}`));
    assertBitEqual(withPrompt.data, prepended.data, "prompt vs prepended");
    assert.ok(maxDiff(withPrompt.data, model.encode(TEXTS).data) > 1e-3);
  });

  test("promptName picks the model's prompt; default_prompt_name applies when no prompt is given", () => {
    const m = SentenceTransformer.fromDir(
      tinyModelVariant({ prompts: { query: "query: ", passage: "passage: ", document: "" } }),
    );
    const d = SentenceTransformer.fromDir(
      tinyModelVariant({ prompts: { query: "query: " }, defaultPromptName: "query" }),
    );
    try {
      const byText = m.encode(TEXTS, { prompt: "query: " });
      assertBitEqual(m.encode(TEXTS, { promptName: "query" }).data, byText.data, "promptName query");
      assertBitEqual(d.encode(TEXTS).data, byText.data, "default prompt");
      // An explicit prompt (even "") wins over the default.
      assertBitEqual(d.encode(TEXTS, { prompt: "" }).data, m.encode(TEXTS).data, 'prompt ""');
    } finally {
      m.dispose();
      d.dispose();
    }
  });

  test("an unknown prompt name is an error listing the known ones", () => {
    const m = SentenceTransformer.fromDir(
      tinyModelVariant({ prompts: { query: "query: ", passage: "passage: ", document: "" } }),
    );
    try {
      assert.throws(
        () => m.encode(["x"], { promptName: "search" }),
        (e: Error) =>
          /prompt name "search"/.test(e.message) && /query, passage/.test(e.message) ? true : false,
      );
    } finally {
      m.dispose();
    }
    assert.throws(() => model.encode(["x"], { promptName: "query" }), /it has none/);
  });

  test("include_prompt=false: mean pooling leaves the prompt's tokens out (vs a hand computation)", () => {
    const prompt = "represent this: ";
    const m = SentenceTransformer.fromDir(tinyModelVariant({ mode: "mean", includePrompt: false }));
    const withPromptTokens = SentenceTransformer.fromDir(tinyModelVariant({ mode: "mean" }));
    try {
      const promptLength = m.promptLength(prompt)!;
      // ST's prompt_length: [CLS] + the prompt's tokens (its [SEP] is not part of the prefix).
      assert.equal(promptLength, 1 + m.tokenizer.tokenize(prompt).length);
      const e = m.encode(TEXTS, { prompt });
      let worst = 0;
      TEXTS.forEach((t, i) => {
        const expected = unit(manualMean(m, prompt + t, promptLength));
        worst = Math.max(worst, assertClose(row(e, i), expected, 1e-5, `text ${i}`));
      });
      console.log(`maxdiff include_prompt=false vs hand computation: ${worst.toExponential(2)}`);
      // Including the prompt gives other vectors; without a prompt the two models agree.
      assert.ok(maxDiff(e.data, withPromptTokens.encode(TEXTS, { prompt }).data) > 1e-3);
      assertBitEqual(m.encode(TEXTS).data, withPromptTokens.encode(TEXTS).data, "no prompt");
    } finally {
      m.dispose();
      withPromptTokens.dispose();
    }
  });
});

describe("similarity", () => {
  test("cosine and dot equal the dot products computed by hand", () => {
    const a = model.encode(TEXTS.slice(0, 3), { truncateDim: 12, normalize: false });
    const b = model.encode(TEXTS.slice(3, 5), { truncateDim: 12, normalize: false });
    const cos = model.similarity(a, b);
    const dp = similarity(a, b, "dot");
    assert.deepEqual([cos.rows, cos.dim, dp.rows, dp.dim], [3, 2, 3, 2]);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 2; j++) {
        const [x, y] = [row(a, i), row(b, j)];
        assert.ok(Math.abs(cos.data[i * 2 + j]! - dot(x, y) / (norm(x) * norm(y))) < 1e-6);
        assert.ok(Math.abs(dp.data[i * 2 + j]! - dot(x, y)) < 1e-6);
      }
    }
    // On the model's own unit vectors cosine is the dot product, and a text is most similar to itself.
    const u = model.encode(TEXTS);
    const self = model.similarity(u, u);
    for (let i = 0; i < TEXTS.length; i++) assert.ok(Math.abs(self.data[i * TEXTS.length + i]! - 1) < 1e-6);
    assertClose(self.data, similarity(u, u, "dot").data, 1e-6, "cosine vs dot on unit vectors");
    assert.throws(() => similarity(a, u), /dimensions differ \(12 vs 32\)/);
  });
});

describe("save and load", () => {
  const FILES = [
    "1_Pooling/config.json",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
  ];

  test("save → fromDir round-trips bit-exactly and writes the sentence-transformers files", () => {
    const dir = join(freshDir("save"), "model");
    const written = model.save(dir);
    assert.deepEqual([...written].sort(), FILES, "save() lists the files it wrote, relative to the folder");
    assert.deepEqual(listFiles(dir), FILES);
    const loaded = SentenceTransformer.fromDir(dir);
    try {
      assert.deepEqual(loaded.warnings, []);
      assert.equal(loaded.maxSeqLength, model.maxSeqLength);
      assert.deepEqual(loaded.spec, model.spec);
      assertBitEqual(loaded.encode(TEXTS).data, model.encode(TEXTS).data, "encode after save → load");
      // Saving the loaded model again writes the same bytes.
      const again = join(freshDir("save"), "model");
      loaded.save(again);
      for (const f of FILES)
        assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(again, f))), `${f} differs`);
    } finally {
      loaded.dispose();
    }
  });

  test("a folder with only pytorch_model.bin is refused with the conversion hint", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "model.safetensors"));
    // A torch.save zip header: it is never opened anyway.
    writeFileSync(join(dir, "pytorch_model.bin"), Buffer.from("PK\x03\x04 not really a zip archive"));
    assert.throws(
      () => SentenceTransformer.fromDir(dir),
      (e: Error) => {
        assert.match(e.message, /pytorch_model\.bin/);
        assert.match(e.message, /refusing to load a PyTorch pickle/);
        assert.match(e.message, /save_file/);
        return true;
      },
    );
  });

  test("a folder without weights at all says what it looked for", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "model.safetensors"));
    assert.throws(() => SentenceTransformer.fromDir(dir), /no model\.safetensors/);
  });

  test("a plain transformers folder (no modules.json) loads with mean pooling and no Normalize", () => {
    const dir = tinyModelCopy();
    for (const f of ["modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"])
      rmSync(join(dir, f));
    rmSync(join(dir, "1_Pooling"), { recursive: true });
    const m = SentenceTransformer.fromDir(dir);
    try {
      assert.deepEqual(m.pooling.config.modes, ["mean"]);
      assert.equal(m.normalizer, null);
      assert.equal(m.maxSeqLength, TINY_MAX_SEQ_LENGTH); // tokenizer_config model_max_length, ≤ positions
      assert.ok(m.warnings.some((w) => /no modules\.json/.test(w)));
      const e = m.encode(TEXTS);
      TEXTS.forEach((t, i) => assertClose(row(e, i), manualMean(m, t), 1e-5, `text ${i}`));
    } finally {
      m.dispose();
    }
  });

  test("a folder written by sentence-transformers 6.x (Transformer, Pooling, Dense, Normalize) loads", () => {
    // test/fixtures/st-folders/st6-tiny-bert-dense: every JSON file ST 6.0.1 wrote for a 1-layer BERT (hidden 8)
    // + mean pooling + Dense(8 → 4, tanh) + Normalize; the weights and tokenizer.json are ragtune's.
    const src = fixture("st-folders/st6-tiny-bert-dense");
    const config = BertConfig.load(join(src, "config.json"));
    const tokenizer = HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB });
    const encoder = SentenceTransformer.create({
      config,
      tokenizer,
      pooling: "mean",
      normalize: false,
      seed: 3,
    });
    const weights = freshDir("st6-weights");
    encoder.save(weights);
    const dir = freshDir("st6");
    cpSync(src, dir, { recursive: true });
    for (const f of ["model.safetensors", "tokenizer.json"]) copyFileSync(join(weights, f), join(dir, f));
    const denseConfig: DenseConfig = {
      inFeatures: 8,
      outFeatures: 4,
      bias: true,
      activation: "tanh",
      useResidual: false,
    };
    const dense = Dense.create(denseConfig);
    dense.saveWeights(join(dir, "2_Dense"));
    const w = dense.linear.weight.toArray() as Float32Array; // (4, 8)
    const b = dense.linear.bias!.toArray() as Float32Array; // (4)
    dense.dispose();

    const m = SentenceTransformer.fromDir(dir);
    try {
      assert.deepEqual(
        m.spec.modules.map((x) => x.kind),
        ["transformer", "pooling", "dense", "normalize"],
      );
      assert.equal(m.maxSeqLength, 128, "tokenizer_config.json model_max_length (6.x keeps it there)");
      assert.equal(m.embeddingDim, 4);
      const e = m.encode(TEXTS);
      const pooled = encoder.encode(TEXTS); // mean pooling, no Normalize: the Dense's input
      for (let i = 0; i < TEXTS.length; i++) {
        const x = row(pooled, i);
        const y = [0, 1, 2, 3].map((o) =>
          Math.tanh(dot(Array.from(w.subarray(o * 8, o * 8 + 8)), x) + b[o]!),
        );
        assertClose(row(e, i), unit(y), 1e-5, `text ${i}`);
      }
    } finally {
      m.dispose();
      encoder.dispose();
    }
  });

  test("a 6.x folder of all-MiniLM shape (pooling_mode, limit in tokenizer_config.json) loads", () => {
    // st6-minilm-like's files with the tiny model's config.json, weights and tokenizer, and its pooling width.
    const dir = freshDir("st6-minilm");
    cpSync(fixture("st-folders/st6-minilm-like"), dir, { recursive: true });
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
      copyFileSync(join(tinyModelDir(), f), join(dir, f));
    const poolingFile = join(dir, "1_Pooling", "config.json");
    const pooling = JSON.parse(readFileSync(poolingFile, "utf8")) as Record<string, unknown>;
    assert.equal(pooling.pooling_mode, "mean");
    writeFileSync(poolingFile, JSON.stringify({ ...pooling, embedding_dimension: TINY_DIM }, null, 4));
    const m = SentenceTransformer.fromDir(dir);
    const reference = SentenceTransformer.fromDir(tinyModelVariant({ mode: "mean" }));
    try {
      assert.deepEqual(m.warnings, []);
      // model_max_length 256 capped by the tiny model's 128 positions.
      assert.equal(m.maxSeqLength, TINY_MAX_SEQ_LENGTH);
      assertBitEqual(m.encode(TEXTS).data, reference.encode(TEXTS).data, "6.x folder vs 5.x folder");
    } finally {
      m.dispose();
      reference.dispose();
    }
  });
});

test("encode leaves no tensors behind", () => {
  model.encode(TEXTS, { truncateDim: 8 }); // warm-up (lazy state, caches)
  const before = liveTensors();
  for (let i = 0; i < 3; i++) {
    const e = model.encode(TEXTS, { batchSize: 2, truncateDim: 8 });
    model.similarity(e, e);
    model.encode(TEXTS, { prompt: "query: " });
    model.encodeTensor(TEXTS, { batchSize: 3 }).dispose();
  }
  assert.equal(liveTensors(), before);
});

// ---------------------------------------------------------------------------------------------------------
// Golden parity: test/fixtures/st-tiny (model/ made by `ragtune create-model`, token-ids.json by
// dump-token-ids.ts, golden.json by make_st_golden.py with torch 1.13; see the script's docstring).

interface Golden {
  texts: string[];
  prompt: string;
  cls: { shape: number[]; data: number[] };
  mean: { shape: number[]; data: number[] };
  mean_raw: { shape: number[]; data: number[] };
  mean_no_prompt: { shape: number[]; data: number[] };
}
interface TokenIds {
  max_seq_length: number;
  texts: string[];
  input_ids: number[][];
  prompt: string;
  prompt_length: number;
  prompted_input_ids: number[][];
}

describe("golden parity with the PyTorch reference (st-tiny, f32, 1e-5)", () => {
  const dir = fixture("st-tiny/model");
  const golden = JSON.parse(readFileSync(fixture("st-tiny/golden.json"), "utf8")) as Golden;
  const ids = JSON.parse(readFileSync(fixture("st-tiny/token-ids.json"), "utf8")) as TokenIds;

  function parity(m: SentenceTransformer, want: Golden["cls"], what: string, prompt?: string): void {
    for (const batchSize of [1, 3, 8]) {
      const e = m.encode(golden.texts, { batchSize, ...(prompt ? { prompt } : {}) });
      assert.deepEqual([e.rows, e.dim], want.shape);
      const d = assertClose(e.data, want.data, 1e-5, `${what}, batch ${batchSize}`);
      if (batchSize === 8) console.log(`maxdiff ${what}: ${d.toExponential(2)}`);
    }
  }

  test("the tokenizer still gives the ids the reference was fed", () => {
    const m = SentenceTransformer.fromDir(dir);
    try {
      assert.deepEqual(golden.texts, ids.texts);
      assert.equal(m.maxSeqLength, ids.max_seq_length);
      assert.equal(m.promptLength(ids.prompt), ids.prompt_length);
      const rows = (texts: string[]) => {
        const enc = m.tokenizer.encodeBatch(texts, { maxLength: m.maxSeqLength });
        return texts.map((_, i) =>
          Array.from(enc.inputIds.subarray(i * enc.seqLen, i * enc.seqLen + enc.lengths[i]!), Number),
        );
      };
      assert.deepEqual(rows(ids.texts), ids.input_ids);
      assert.deepEqual(rows(ids.texts.map((t) => ids.prompt + t)), ids.prompted_input_ids);
    } finally {
      m.dispose();
    }
  });

  test("CLS pooling + Normalize (the folder as committed)", () => {
    const m = SentenceTransformer.fromDir(dir);
    try {
      parity(m, golden.cls, "cls");
    } finally {
      m.dispose();
    }
  });

  test("mean pooling, with and without Normalize", () => {
    const m = SentenceTransformer.fromDir(variantOf(dir, { mode: "mean" }));
    const raw = SentenceTransformer.fromDir(variantOf(dir, { mode: "mean", normalize: false }));
    try {
      parity(m, golden.mean, "mean");
      parity(raw, golden.mean_raw, "mean_raw");
    } finally {
      m.dispose();
      raw.dispose();
    }
  });

  test("mean pooling with include_prompt=false behind a prompt", () => {
    const m = SentenceTransformer.fromDir(variantOf(dir, { mode: "mean", includePrompt: false }));
    try {
      parity(m, golden.mean_no_prompt, "mean_no_prompt", golden.prompt);
    } finally {
      m.dispose();
    }
  });
});
