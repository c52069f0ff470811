// Universal Sentence Encoder lite: the tokenizer against the USE package's own Tokenizer (imported from the
// devDependency @tensorflow-models/universal-sentence-encoder, not copied), and the model against the original
// tfjs graph model's embeddings dumped by test/fixtures/use-lite/make-golden.ts. Then what fine-tuning needs:
// gradients to every parameter, save/load round trip, the evaluator's encodeTensor.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Tokenizer as ReferenceTokenizer } from "@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js";

import { enableGrad, noGrad, tidy, type Tensor } from "../../src/engine/index.ts";
import type { TextEmbedder } from "../../src/eval/ir-evaluator.ts";
import type { Embedder } from "../../src/losses/index.ts";
import {
  invTimescales,
  tfjsSource,
  UseLite,
  useLitePackageDir,
  USE_LITE_CONFIG,
} from "../../src/models/use-lite.ts";
import { UseSentencePieceTokenizer, type UsePiece } from "../../src/tokenize/sentencepiece-use.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/use-lite/", import.meta.url));
const FINANCIAL = fileURLToPath(new URL("../../data/financial/test.jsonl", import.meta.url));

interface Golden {
  texts: string[];
  ids: number[][];
  embeddings: number[][];
}
const golden = JSON.parse(readFileSync(join(FIXTURE, "golden.json"), "utf8")) as Golden;
const pkgDir = useLitePackageDir();
const vocab = JSON.parse(readFileSync(join(pkgDir, "vocab.json"), "utf8")) as UsePiece[];

const maxAbsDiff = (t: Tensor, rows: readonly (readonly number[])[]): number => {
  const a = t.toArray() as Float32Array;
  const dim = t.size(1);
  let d = 0;
  rows.forEach((r, i) => r.forEach((x, j) => (d = Math.max(d, Math.abs(a[i * dim + j]! - x)))));
  return d;
};

describe("USE SentencePiece tokenizer", () => {
  const mine = new UseSentencePieceTokenizer(vocab);
  const reference = new ReferenceTokenizer(vocab as [string, number][]);

  test("same ids as the USE package on the financial test texts", () => {
    const texts = readFileSync(FINANCIAL, "utf8")
      .trim()
      .split("\n")
      .flatMap((line) => {
        const row = JSON.parse(line) as { anchor: string; positive: string };
        return [row.anchor, row.positive];
      });
    let differing = 0;
    for (const t of texts)
      if (JSON.stringify(mine.encode(t)) !== JSON.stringify(reference.encode(t))) differing++;
    assert.equal(differing, 0, `${differing} of ${texts.length} texts tokenize differently`);
  });

  test("same ids on edge cases: empty, spaces, unknown and astral characters, NFKC, reserved pieces", () => {
    const cases = [
      "",
      " ",
      "   a  b ",
      "💰",
      "a💰b💰💰",
      "日本語",
      "\u0000x\ty\nz",
      "Ⅻ ﬃ ① µ",
      "▁▁",
      "�",
      "<s> </s> extra_token_id_1",
      ":) :( http://x.y",
    ];
    for (const t of cases) assert.deepEqual(mine.encode(t), reference.encode(t), JSON.stringify(t));
    assert.deepEqual(mine.encode(""), []);
    assert.deepEqual(mine.encode("日本語"), [30, 0], "a run of unknown characters is one unknown id");
  });

  test("golden ids are the ones the graph was fed", () => {
    assert.deepEqual(
      golden.texts.map((t) => mine.encode(t)),
      golden.ids,
    );
  });
});

describe("UseLite", () => {
  const model = UseLite.fromNpm();
  const dirs: string[] = [];
  after(() => {
    model.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("loads every parameter of the tfjs graph model (about 7.0M)", () => {
    assert.equal(model.numParameters(), 6_975_744);
    assert.equal(model.embeddingDim, 512);
    assert.deepEqual(model.config, USE_LITE_CONFIG);
    // What the evaluator and the cached loss take (checked by tsc).
    const asEvaluated: TextEmbedder = model;
    const asEmbedded: Embedder = model;
    assert.equal(asEvaluated.embeddingDim, 512);
    assert.equal(asEmbedded.device, "cpu");
  });

  test("timing signal constants equal the graph's stored inv_timescales", () => {
    const stored = tfjsSource(pkgDir).raw(
      "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1",
    );
    const mine = invTimescales(128, 1e4);
    for (let i = 0; i < 128; i++)
      assert.ok(Math.abs(mine[i]! - stored[i]!) <= 2e-7 * stored[i]!, `index ${i}`);
  });

  test("embeddings equal the tfjs graph model's within 1e-5 (empty, unknown, clipped, financial texts)", () => {
    const diff = noGrad(() =>
      tidy(() => maxAbsDiff(model.forward(model.tokenize(golden.texts)), golden.embeddings)),
    );
    console.log(`use-lite parity: max |diff| = ${diff.toExponential(2)} over ${golden.texts.length} texts`);
    assert.ok(diff < 1e-5, `max diff ${diff}`);
  });

  test("encodeTensor (length-sorted batches) gives the same rows in input order", () => {
    const diff = tidy(() =>
      maxAbsDiff(model.encodeTensor(golden.texts, { batchSize: 3 }), golden.embeddings),
    );
    assert.ok(diff < 1e-5, `max diff ${diff}`);
  });

  test("trainable: a loss reaches every parameter", () => {
    const grads = enableGrad(() =>
      tidy(() => {
        model.train();
        const e = model.embed(["net income rose", "revenue fell", ""]);
        e.mm(e.transpose(0, 1)).sum().backward();
        model.eval();
        return model.namedParameters().filter(([, t]) => t.grad === null);
      }),
    );
    assert.deepEqual(
      grads.map(([n]) => n),
      [],
    );
    for (const t of model.parameters()) t.grad?.zero_();
  });

  test("save / load round trip in ragtune's folder format", () => {
    const dir = mkdtempSync(join(tmpdir(), "use-lite-"));
    dirs.push(dir);
    model.savePretrained(dir);
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { architectures: string[] };
    assert.deepEqual(config.architectures, ["UseLite"]);
    const loaded = UseLite.fromPretrained(dir);
    try {
      const texts = golden.texts.slice(0, 4);
      const diff = noGrad(() =>
        tidy(() => maxAbsDiff(loaded.forward(loaded.tokenize(texts)), golden.embeddings.slice(0, 4))),
      );
      assert.ok(diff < 1e-5, `max diff ${diff}`);
    } finally {
      loaded.dispose();
    }
  });
});
