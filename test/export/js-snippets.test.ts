// The transformers.js snippets people copy run as written (issue 12: "The card's and README's transformers.js
// snippets work as written"): the ```js block of README.md's "In JavaScript" section and the ```js block of a
// model card rendered by src/export/model-card.ts are each written to a .mjs file and run by node in a folder
// where the path the snippet names holds a model folder saved and exported by ragtune. The snippet must import
// "@huggingface/transformers" and load the folder with pipeline("feature-extraction", "<path>", …); the test adds
// one line that prints the dims and values of the snippet's last embeddings variable, and checks them against
// ragtune's own embeddings (q8 tolerance, as test/export/onnx-quantized.test.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { tidy } from "../../src/engine/index.ts";
import { transformersJsSnippet } from "../../src/export/card-usage.ts";
import { exportOnnx } from "../../src/export/onnx.ts";
import { BertConfig } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-js-snippets-"));
after(() => rmSync(work, { recursive: true, force: true }));

const Q8_MIN_COSINE = 0.998;

/** The ```js blocks of a markdown text. */
function jsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The folder a snippet loads: the second argument of its pipeline("feature-extraction", …) call. */
function snippetPath(snippet: string): string {
  const m = /pipeline\(\s*"feature-extraction"\s*,\s*"([^"]+)"/.exec(snippet);
  assert.ok(m, `no pipeline("feature-extraction", "<path>") in the snippet:\n${snippet}`);
  return m[1]!;
}

/**
 * Runs a snippet in a fresh folder (node_modules linked to the repository's) with `model` saved and exported at
 * the path it names; `probe` is appended (a statement printing JSON). Returns the probe's output.
 */
function runSnippet(name: string, snippet: string, model: SentenceTransformer, probe: string): unknown {
  const cwd = join(work, name);
  mkdirSync(cwd, { recursive: true });
  symlinkSync(join(root, "node_modules"), join(cwd, "node_modules"));
  const folder = join(cwd, snippetPath(snippet));
  model.save(folder);
  exportOnnx(model, folder);
  const file = join(cwd, "snippet.mjs");
  writeFileSync(file, `${snippet}\n${probe}\n`);
  const r = spawnSync(process.execPath, [file], { cwd, encoding: "utf8", timeout: 300_000 });
  assert.equal(r.status, 0, `the snippet failed:\n${snippet}\n${r.stderr}`);
  const last = r.stdout.trim().split("\n").at(-1)!;
  return JSON.parse(last) as unknown;
}

/** Smallest cosine between rows of a (unit vectors from the snippet) and the unit rows of b, both (n, dim). */
function minCosine(a: readonly number[], b: Float32Array, dim: number): number {
  let min = 1;
  for (let i = 0; i < a.length / dim; i++) {
    const x = a.slice(i * dim, (i + 1) * dim);
    const y = b.subarray(i * dim, (i + 1) * dim);
    const ny = Math.hypot(...y);
    const nx = Math.hypot(...x);
    min = Math.min(min, x.reduce((s, v, j) => s + v * y[j]!, 0) / (nx * ny));
  }
  return min;
}

describe("transformers.js snippets run as written", () => {
  const tokenizer = HfTokenizer.fromDir(
    fileURLToPath(new URL("../fixtures/tokenizers/bert-base-uncased", import.meta.url)),
  );
  const makeModel = (pooling: "cls" | "mean") =>
    SentenceTransformer.create({
      config: BertConfig.with({
        vocabSize: tokenizer.vocabSize,
        hiddenSize: 256,
        numHiddenLayers: 1,
        numAttentionHeads: 4,
        intermediateSize: 256,
        maxPositionEmbeddings: 64,
      }),
      tokenizer,
      pooling,
      normalize: true,
      seed: 9,
    });

  test("README.md: the Node snippet (./ path, dtype q8, Matryoshka pool → slice → normalize)", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## In JavaScript"));
    const snippet = jsBlocks(section)[0];
    assert.ok(snippet, "README.md has no ```js block in its In JavaScript section");
    const texts = JSON.parse(/const texts = (\[[^\]]*\]);/.exec(snippet)![1]!) as string[];
    const model = makeModel("cls");
    try {
      const out = runSnippet(
        "readme",
        snippet,
        model,
        "console.log(JSON.stringify({ full: full.dims, dims: e128.dims, data: Array.from(e128.data) }));",
      ) as { full: number[]; dims: number[]; data: number[] };
      assert.deepEqual(out.full, [texts.length, 256]);
      assert.deepEqual(out.dims, [texts.length, 128]);
      // ragtune encode --dim 128: the first 128 coordinates of the pooled vector, renormalized.
      const want = tidy(() => model.encode(texts, { truncateDim: 128 }).data as Float32Array);
      const c = minCosine(out.data, want, 128);
      console.log(`README snippet (q8, dim 128) vs ragtune: min cosine ${c.toFixed(5)}`);
      assert.ok(c >= Q8_MIN_COSINE, `cosine ${c}`);
    } finally {
      model.dispose();
    }
  });

  test("the model card's transformers.js block (q8)", () => {
    // The card's transformers.js block (src/export/card-usage.ts) for a folder with both ONNX files: dtype q8.
    const snippet = transformersJsSnippet({
      folder: "tiny",
      onnxFiles: ["onnx/model.onnx", "onnx/model_quantized.onnx"],
      pooling: "mean",
      normalize: true,
      dims: [256, 128],
      fullDim: 256,
      texts: ["What was the total revenue?", "Total revenue was $26.97 billion."],
      maxSeqLength: 64,
    });
    assert.ok(snippet, "no transformers.js snippet for a folder with ONNX files");
    assert.match(snippet, /dtype: "q8"/);
    const model = makeModel("mean");
    try {
      // The card's snippet leaves its result in `embeddings` (a transformers.js Tensor of unit rows).
      const out = runSnippet(
        "card",
        snippet,
        model,
        "console.log(JSON.stringify({ dims: embeddings.dims, data: Array.from(embeddings.data) }));",
      ) as { dims: number[]; data: number[] };
      const [n, dim] = out.dims as [number, number];
      assert.ok(n >= 1 && [256, 128].includes(dim), `dims ${out.dims.join("×")}`);
      for (let i = 0; i < n; i++) {
        const norm = Math.hypot(...out.data.slice(i * dim, (i + 1) * dim));
        assert.ok(Math.abs(norm - 1) < 1e-4, `row ${i} has norm ${norm}`);
      }
    } finally {
      model.dispose();
    }
  });
});
