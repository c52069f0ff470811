// XLM-RoBERTa, MPNet and ModernBERT through SentenceTransformer: loading the folders ragtune saved around the golden tiny
// models (test/fixtures/<arch>/st/, made by test/fixtures/make-encoder-st-folders.ts), encode = tokenizer →
// golden-checked encoder → mean pooling → Normalize, sentence-transformers' own embeddings of the same folder
// (st-golden.json, made by test/fixtures/make_st_golden.py where sentence-transformers is installed), two training
// steps with MatryoshkaLoss(MNRL) and with the cached loss, and save → load giving the same embeddings.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { noGrad, setNumThreads, tensor, tidy } from "../../src/engine/index.ts";
import { ModernBertModel } from "../../src/models/modernbert.ts";
import { MpnetModel } from "../../src/models/mpnet.ts";
import { Pooling } from "../../src/models/pooling.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { XlmRobertaModel } from "../../src/models/xlm-roberta.ts";
import { resolveTrainingArguments } from "../../src/train/args.ts";
import { train } from "../../src/train/trainer.ts";

setNumThreads(1);

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-encoders-st-"));
after(() => rmSync(work, { recursive: true, force: true }));

const CASES = [
  {
    arch: "xlm-roberta",
    cls: XlmRobertaModel,
    texts: ["Hello world", "Hello, world.", "Größe café", "Привет мир", "日本語のテキスト", "a 123 world"],
  },
  {
    arch: "mpnet",
    cls: MpnetModel,
    texts: ["The quick brown fox jumps over the lazy dog.", "Hello, World!", "Café CAFE", "unaffable", "abc"],
  },
  {
    arch: "modernbert",
    cls: ModernBertModel,
    texts: ["Hello world", "Hello the world", "café", "日本", "the"],
  },
] as const;

const maxAbs = (a: Float32Array, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

for (const c of CASES) {
  const folder = join(FIXTURES, c.arch, "st");

  describe(`${c.arch} as a SentenceTransformer`, () => {
    test("loads by model_type; encode = tokenizer → encoder → mean pooling → normalize", () => {
      const model = SentenceTransformer.fromDir(folder);
      assert.ok(model.encoder instanceof c.cls, `encoder is ${model.encoder.constructor.name}`);
      assert.equal(model.maxSeqLength, 32);
      assert.equal(model.embeddingDim, 32);
      const e = model.encode(c.texts, { batchSize: 4 });
      // The same by hand, one text at a time (no padding at all).
      const want = tidy(() =>
        noGrad(() => {
          const rows = c.texts.map((t) => {
            const ids = model.tokenizer.tokenIds(t);
            const inputIds = tensor([ids], { dtype: "int64" });
            const attentionMask = tensor([ids.map(() => 1)], { dtype: "int64" });
            const h = model.encoder.forward({ inputIds, attentionMask }); // (1, L, 32)
            const pooled = new Pooling({
              embeddingDimension: 32,
              modes: ["mean"],
              includePrompt: true,
            }).forward(h, attentionMask);
            return Array.from(pooled.normalize(-1).toArray() as Float32Array);
          });
          return rows.flat();
        }),
      );
      const d = maxAbs(e.data, want);
      console.log(`${c.arch} encode vs unpadded forward: maxdiff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-6, `maxdiff ${d}`);
      model.dispose();
    });

    test("embeddings equal sentence-transformers' on the same folder (st-golden.json)", (t) => {
      const file = join(FIXTURES, c.arch, "st-golden.json");
      if (!existsSync(file)) return t.skip("st-golden.json not made yet (test/fixtures/make_st_golden.py)");
      const golden = JSON.parse(readFileSync(file, "utf8")) as {
        about: string;
        texts: string[];
        input_ids: number[][];
        embeddings: number[][];
      };
      const model = SentenceTransformer.fromDir(folder);
      assert.deepEqual(golden.texts, [...c.texts]);
      golden.texts.forEach((text, i) =>
        assert.deepEqual(model.tokenizer.tokenIds(text), golden.input_ids[i], text),
      );
      const d = maxAbs(model.encode(golden.texts).data, golden.embeddings.flat());
      console.log(`${c.arch} encode vs ${golden.about}: maxdiff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `maxdiff ${d}`);
      model.dispose();
    });

    for (const loss of ["mnrl", "cached-mnrl"] as const) {
      test(`two training steps (${loss} in MatryoshkaLoss) change every parameter; save → load keeps the embeddings`, () => {
        const model = SentenceTransformer.fromDir(folder);
        const before = new Map(
          model.namedParameters().map(([n, p]) => [n, p.detach().toArray() as Float32Array]),
        );
        const pairs = c.texts.map((anchor, i) => ({
          id: i,
          anchor,
          positive: c.texts[(i + 1) % c.texts.length]!,
        }));
        const result = train({
          model,
          train: [
            ...pairs,
            ...pairs.map((p) => ({ ...p, id: p.id + 100, anchor: `${p.anchor} ${p.anchor}` })),
          ],
          args: resolveTrainingArguments({
            outputDir: mkdtempSync(join(work, `${c.arch}-${loss}-`)),
            maxSteps: 2,
            perDeviceTrainBatchSize: 4,
            gradientAccumulationSteps: 1,
            learningRate: 1e-3,
            matryoshkaDims: [32, 16],
            loss,
            miniBatchSize: 2,
            batchSampler: "batch_sampler",
            evalStrategy: "no",
            saveStrategy: "no",
            loadBestModelAtEnd: false,
            loggingSteps: 1,
          }),
          verbose: false,
        });
        assert.equal(result.globalStep, 2);
        for (const e of result.logHistory.filter((x) => "loss" in x))
          assert.ok(Number.isFinite(e.loss), "loss");
        for (const [name, p] of model.namedParameters()) {
          const w = before.get(name)!;
          assert.ok(
            (p.detach().toArray() as Float32Array).some((x, i) => x !== w[i]),
            `${name} did not change`,
          );
        }
        const dir = mkdtempSync(join(work, `${c.arch}-saved-`));
        model.save(dir);
        const again = SentenceTransformer.fromDir(dir);
        assert.ok(again.encoder instanceof c.cls);
        assert.equal(maxAbs(again.encode(c.texts).data, model.encode(c.texts).data), 0);
        model.dispose();
        again.dispose();
      });
    }
  });
}
