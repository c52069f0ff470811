// Packed (padding-free) forward passes against the padded reference path: BERT's last hidden states at every
// real token, the pooled embeddings of every pooling mode (with and without prompt exclusion) and the gradient
// of every parameter, for USE-lite the embeddings and gradients; empty strings, length-1 texts and texts at
// max_seq_length included. f32, tolerance 1e-5. Then the chunk planner and the layout itself.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { liveTensors, manualSeed, noGrad, randn, tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import { BertConfig, BertModel } from "../../src/models/bert.ts";
import { packRows, planChunks, unpack } from "../../src/models/packed.ts";
import { HEAP_BLOCK_BYTES } from "../../src/engine/index.ts";
import { Pooling } from "../../src/models/pooling.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { POOLING_MODES, type PoolingMode } from "../../src/models/st-folder.ts";
import { UseLite } from "../../src/models/use-lite.ts";
import type { Module } from "../../src/nn/index.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB } from "../helpers/tiny-model.ts";

const MAX_SEQ = 16;
const CONFIG = BertConfig.with({
  vocabSize: 30522,
  hiddenSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  intermediateSize: 64,
  maxPositionEmbeddings: 64,
  hiddenDropoutProb: 0,
  attentionProbsDropoutProb: 0,
});

const LONG =
  "The company reported a net loss of $12.5 million for the third quarter, compared to a profit a year " +
  "earlier, as revenue fell sharply across every segment.";
const TEXTS = [
  "What was the total revenue in 2023?",
  "a", // one content token
  "", // [CLS] [SEP] only
  LONG, // truncated to max_seq_length
  "dividends",
  "Operating expenses increased by 7% year over year.",
  LONG.slice(0, 60),
  "net income",
];

function maxDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

/** The gradient of every trainable parameter after `loss()`'s backward, as copies; the grads are reset. */
function grads(module: Module, loss: () => Tensor): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const params = module.namedParameters().filter(([, p]) => p.requiresGrad);
  for (const [, p] of params) p.grad = null;
  tidy(() => loss().backward());
  for (const [name, p] of params) {
    const g = p.grad;
    out.set(name, g ? (g.toArray() as Float32Array).slice() : new Float32Array(p.numel));
    g?.dispose();
    p.grad = null;
  }
  return out;
}

/**
 * The largest difference between two gradient sets, each parameter's relative to its largest entry when that
 * is above 1: a gradient summed over hundreds of tokens (token_type_embeddings' single row is the sum over
 * every token of the batch) reaches a few hundred, where one float32 ulp is already 3e-5, and the packed and
 * padded paths add the same terms in another order.
 */
function worstGradDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): [string, number] {
  let worst: [string, number] = ["", 0];
  for (const [name, ga] of a) {
    const gb = b.get(name)!;
    let d = 0;
    let scale = 1;
    for (let i = 0; i < ga.length; i++) {
      d = Math.max(d, Math.abs(ga[i]! - gb[i]!));
      scale = Math.max(scale, Math.abs(ga[i]!));
    }
    if (d / scale > worst[1]) worst = [name, d / scale];
  }
  return worst;
}

function tinyModel(pooling: PoolingMode = "cls"): SentenceTransformer {
  return SentenceTransformer.create({
    config: CONFIG,
    tokenizer: HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB }),
    pooling,
    normalize: true,
    maxSeqLength: MAX_SEQ,
    seed: 7,
  });
}

describe("packed BERT vs padded", () => {
  test("the texts cover empty, length-1 and max_seq_length rows", () => {
    const model = tinyModel();
    const lengths = TEXTS.map((t) => Math.min(model.countTokens(t), MAX_SEQ));
    assert.ok(lengths.includes(2) && lengths.includes(3) && lengths.includes(MAX_SEQ), `${lengths}`);
    model.dispose();
  });

  test("last hidden states equal at every real token (train mode, dropout 0)", () => {
    const model = tinyModel();
    model.train();
    const before = liveTensors();
    tidy(() => {
      const padded = model.bert.forward(model.tokenize(TEXTS)); // (B, L, H)
      const packed = model.tokenizePacked(TEXTS);
      const tokens = model.bert.forwardPacked(packed); // (T, H)
      assert.deepEqual(tokens.shape, [packed.totalTokens, CONFIG.hiddenSize]);
      const mask = model.tokenize(TEXTS).attentionMask.to("float32").unsqueeze(2); // (B, L, 1)
      const d = maxDiff(unpack(tokens, packed, padded.size(1)), padded.mul(mask));
      console.log(`last hidden state maxdiff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `maxdiff ${d}`);
    });
    assert.equal(liveTensors(), before, "tensors leaked");
    model.dispose();
  });

  const configs: {
    modes: PoolingMode[];
    includePrompt: boolean;
    promptLength?: number;
    chunkOverhead?: number;
  }[] = [
    ...POOLING_MODES.map((m) => ({ modes: [m], includePrompt: true })),
    ...POOLING_MODES.map((m) => ({ modes: [m], includePrompt: false, promptLength: 3 })),
    { modes: ["cls", "max", "mean"], includePrompt: true },
    // Attention in many small chunks instead of the tiny model's default single block.
    { modes: ["cls", "max", "mean"], includePrompt: true, chunkOverhead: 1 },
    { modes: ["weightedmean", "lasttoken"], includePrompt: false, promptLength: 3, chunkOverhead: 1 },
    // A prompt as long as the short rows: every token of "" and "a" is excluded.
    ...POOLING_MODES.map((m) => ({ modes: [m], includePrompt: false, promptLength: 4 })),
  ];
  for (const c of configs) {
    const label =
      `${c.modes.join("+")}${c.includePrompt ? "" : `, prompt ${c.promptLength} excluded`}` +
      (c.chunkOverhead === undefined ? "" : `, chunk overhead ${c.chunkOverhead}`);
    test(`pooled embeddings and every parameter's gradient equal: ${label}`, () => {
      const model = tinyModel();
      model.train();
      const pooling = new Pooling({
        embeddingDimension: CONFIG.hiddenSize,
        modes: c.modes,
        includePrompt: c.includePrompt,
      });
      const opts = c.promptLength === undefined ? {} : { promptLength: c.promptLength };
      manualSeed(3);
      const w = randn([TEXTS.length, pooling.outputDimension]);
      // max pooling of a row with no token left is −inf (as ST 6): compare and weight finite entries only.
      const finite = (e: Tensor) => e.maskedFill(e.eq(-Infinity), 0);
      const padded = () => {
        const f = model.tokenize(TEXTS);
        return pooling.forward(model.bert.forward(f), f.attentionMask, opts); // (B, P)
      };
      const packed = () => {
        const p = model.tokenizePacked(TEXTS, { chunkOverhead: c.chunkOverhead });
        if (c.chunkOverhead !== undefined) assert.ok(p.chunks.length >= 3, `${p.chunks.length} chunks`);
        return pooling.forwardPacked(model.bert.forwardPacked(p), p, opts); // (B, P)
      };
      tidy(() => {
        const a = padded();
        const b = packed();
        assert.deepEqual(
          (a.eq(-Infinity).toArray() as Uint8Array).join(""),
          (b.eq(-Infinity).toArray() as Uint8Array).join(""),
          "−inf entries differ",
        );
        const d = maxDiff(finite(a), finite(b));
        assert.ok(d <= 1e-5, `pooled maxdiff ${d}`);
      });
      const ga = grads(model, () => finite(padded()).mul(w).sum());
      const gb = grads(model, () => finite(packed()).mul(w).sum());
      const [name, d] = worstGradDiff(ga, gb);
      console.log(`${label}: worst gradient maxdiff ${d.toExponential(2)} (${name})`);
      assert.ok(d <= 1e-5, `${name}: gradient maxdiff ${d}`);
      w.dispose();
      model.dispose();
    });
  }

  test("SentenceTransformer.embed / encode: packing on equals packing off", () => {
    const model = tinyModel("mean");
    const on = model.encode(TEXTS, { batchSize: 3 });
    const off = model.encode(TEXTS, { batchSize: 3, packing: false });
    let d = 0;
    for (let i = 0; i < on.data.length; i++) d = Math.max(d, Math.abs(on.data[i]! - off.data[i]!));
    assert.ok(d <= 1e-5, `encode maxdiff ${d}`);
    noGrad(() =>
      tidy(() => {
        const a = model.embed(TEXTS, { packing: true });
        const b = model.embed(TEXTS, { packing: false });
        assert.ok(maxDiff(a, b) <= 1e-5);
      }),
    );
    model.dispose();
  });

  test("a row longer than max_position_embeddings is refused", () => {
    const model = BertModel.init(BertConfig.with({ ...CONFIG, maxPositionEmbeddings: 4 }));
    tidy(() => {
      const p = packRows([{ ids: [1, 2, 3, 4, 5] }]);
      assert.throws(() => model.forwardPacked(p), /sequence length 5 exceeds max_position_embeddings 4/);
    });
    model.dispose();
  });
});

describe("packed USE-lite vs padded", () => {
  const texts = ["net income rose", "", "a", LONG + " " + LONG + " " + LONG + " " + LONG, "revenue fell", ""];

  test("embeddings and every parameter's gradient equal, empty texts and a row at max length included", () => {
    const model = UseLite.fromNpm();
    model.train();
    assert.ok(
      model.tokenizer.encode(texts[3]!).length > model.config.maxLength,
      "the long text is truncated",
    );
    tidy(() => {
      const d = maxDiff(
        model.forward(model.tokenize(texts)),
        model.forwardPacked(model.tokenizePacked(texts)),
      );
      console.log(`USE-lite embedding maxdiff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `maxdiff ${d}`);
      const chunked = model.tokenizePacked(texts, { chunkOverhead: 1 });
      assert.ok(chunked.chunks.length >= 3);
      const dc = maxDiff(model.forward(model.tokenize(texts)), model.forwardPacked(chunked));
      assert.ok(dc <= 1e-5, `maxdiff with small chunks ${dc}`);
    });
    manualSeed(5);
    const w = randn([texts.length, model.embeddingDim]);
    const ga = grads(model, () => model.embed(texts, { packing: false }).mul(w).sum());
    const gb = grads(model, () => model.embed(texts, { packing: true }).mul(w).sum());
    const [name, d] = worstGradDiff(ga, gb);
    console.log(`USE-lite worst gradient maxdiff ${d.toExponential(2)} (${name})`);
    assert.ok(d <= 1e-5, `${name}: gradient maxdiff ${d}`);
    w.dispose();
    model.dispose();
  });

  test("a batch of empty texts gives l2_normalize(tanh(b)) as the padded path", () => {
    const model = UseLite.fromNpm();
    noGrad(() =>
      tidy(() => {
        const d = maxDiff(
          model.forward(model.tokenize(["", ""])),
          model.forwardPacked(model.tokenizePacked(["", ""])),
        );
        assert.ok(d <= 1e-6, `maxdiff ${d}`);
      }),
    );
    model.dispose();
  });
});

describe("packed layout", () => {
  test("rows longest first, positions per segment, segment ids in input order", () => {
    tidy(() => {
      const p = packRows([
        { ids: [5, 6] },
        { ids: [] },
        { ids: [7, 8, 9], typeIds: [0, 1, 1] },
        { ids: [4] },
      ]);
      assert.deepEqual(Array.from(p.order), [2, 0, 3, 1]);
      assert.deepEqual(Array.from(p.cuSeqlens), [0, 3, 5, 6, 6]);
      assert.deepEqual(Array.from(p.starts), [3, 6, 0, 5]);
      assert.deepEqual(p.inputIds.toNumbers(), [7, 8, 9, 5, 6, 4]);
      assert.deepEqual(p.tokenTypeIds.toNumbers(), [0, 1, 1, 0, 0, 0]);
      assert.deepEqual(p.positionIds.toNumbers(), [0, 1, 2, 0, 1, 0]);
      assert.deepEqual(p.segmentIds.toNumbers(), [2, 2, 2, 0, 0, 3]);
      assert.equal(p.maxLength, 3);
      const covered = p.chunks.reduce((n, c) => n + c.tokens, 0);
      assert.equal(covered, 6);
    });
  });

  test("planChunks: one chunk when overhead dominates, one per length when it is free", () => {
    const lengths = [40, 30, 30, 10, 10, 10, 2];
    assert.deepEqual(planChunks(lengths, 1e12), [7]);
    assert.deepEqual(planChunks(lengths, 1), [1, 3, 6, 7]);
    assert.deepEqual(planChunks([], 5), []);
    // Chunks are consecutive and cover every segment.
    const ends = planChunks(lengths, 3000);
    assert.equal(ends[ends.length - 1], lengths.length);
    for (let i = 1; i < ends.length; i++) assert.ok(ends[i]! > ends[i - 1]!);
  });

  test("planChunks keeps each chunk within maxRows of its longest length; packRows caps score blocks on the CPU", () => {
    const lengths = [40, 30, 30, 10, 10, 10, 2];
    // Overhead dominates (one chunk without a cap), but at most 2 rows where L > 20 and 3 elsewhere.
    const ends = planChunks(lengths, 1e12, (L) => (L > 20 ? 2 : 3));
    let first = 0;
    for (const end of ends) {
      assert.ok(end - first <= (lengths[first]! > 20 ? 2 : 3), `chunk [${first}, ${end})`);
      first = end;
    }
    assert.equal(first, lengths.length);
    // A length whose single row exceeds the cap still gets a chunk of one row.
    assert.deepEqual(
      planChunks([9, 9], 1e12, () => 0),
      [1, 2],
    );
    tidy(() => {
      // 40 rows of 300 tokens, 12 heads: 40·12·300²·4 bytes = 173 MB of scores in one block; capped at 16 MiB.
      const rows = Array.from({ length: 40 }, () => ({ ids: Array.from({ length: 300 }, (_, j) => j + 1) }));
      const p = packRows(rows, { chunkOverhead: 1e12, numHeads: 12 });
      for (const c of p.chunks)
        assert.ok(c.rows * 12 * c.length ** 2 * 4 <= HEAP_BLOCK_BYTES, `${c.rows} rows`);
      assert.equal(
        p.chunks.reduce((n, c) => n + c.rows, 0),
        40,
      );
      assert.equal(packRows(rows, { chunkOverhead: 1e12 }).chunks.length, 1); // no heads given: no cap
    });
  });

  test("padded and equal-length chunks give the same attention as one padded block", () => {
    manualSeed(1);
    const rows = [{ ids: [1, 2, 3, 4, 5] }, { ids: [1, 2, 3] }, { ids: [1, 2, 3] }, { ids: [9] }];
    tidy(() => {
      const model = BertModel.init(CONFIG, { seed: 2 });
      const ids = tensor([[1, 2, 3, 4, 5]], { dtype: "int64" });
      const one = noGrad(() => model.forwardPacked(packRows(rows, { chunkOverhead: 1e12 })));
      const many = noGrad(() => model.forwardPacked(packRows(rows, { chunkOverhead: 0 })));
      assert.ok(maxDiff(one, many) <= 1e-6);
      ids.dispose();
      model.dispose();
    });
  });
});
