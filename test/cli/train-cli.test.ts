// `ragtune train` and `ragtune compare` as users run them (`node bin/ragtune.mjs` in child processes): the help
// (flags, and that accumulation adds no negatives while the cached loss does), an end-to-end run on a tiny
// model (model folder, model card with YAML front matter and a model-index per dim, eval_results.json,
// baseline_results.json, comparison.md, the printed table; a config file with HF names merged under the
// flags), a bad argument, and compare in text and Markdown. The runs that need no training output start
// together; compare starts once training is done.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { corpusFingerprint } from "../../src/eval/corpus-fingerprint.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";
import { ragtune as runCli, runNode, type CliRun as Run } from "../helpers/run-cli.ts";

setNumThreads(1);

const ragtune = (args: string[]) => runCli(args, { threads: "preload" });

function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------------------
// Inputs: a tiny mean-pooling model, 48 training pairs, 16 evaluation pairs.

const readJsonl = (name: string): PairRecord[] =>
  readFileSync(fileURLToPath(new URL(`../../data/financial/${name}`, import.meta.url)), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as PairRecord);
const TRAIN = readJsonl("train.jsonl").slice(0, 48);
const EVAL = readJsonl("test.jsonl").slice(0, 16);

const work = freshDir("train-cli");
const modelDir = join(work, "base");
const base = SentenceTransformer.create({
  config: TINY_CONFIG,
  tokenizer: HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB }),
  pooling: "mean",
  maxSeqLength: 32,
  seed: 42,
});
base.save(modelDir);
base.dispose();
// The base model's card declares a license and languages: a fine-tune's card takes them over (and only them).
writeFileSync(
  join(modelDir, "README.md"),
  "---\nlicense: mit\nlanguage:\n- en\n- de\ntags:\n- test\n---\n\n# tiny base\n",
);
const trainFile = join(work, "train.jsonl");
const evalFile = join(work, "test.jsonl");
writeFileSync(trainFile, TRAIN.map((r) => JSON.stringify(r)).join("\n") + "\n");
writeFileSync(evalFile, EVAL.map((r) => JSON.stringify(r)).join("\n") + "\n");
// HF TrainingArguments names, as a sentence-transformers user would carry them over; flags override them.
const configFile = join(work, "args.json");
writeFileSync(
  configFile,
  JSON.stringify({
    num_train_epochs: 2,
    per_device_train_batch_size: 8,
    gradient_accumulation_steps: 1,
    learning_rate: 1e-5,
    logging_steps: 2,
    warmup_ratio: 0.1,
  }),
);
const out = join(work, "out");
const DIMS = [32, 16];

const runs = {
  help: ragtune(["train", "--help"]),
  badArgument: ragtune([
    ...["train", "--model", modelDir, "--train", trainFile, "--eval", evalFile, "--out", join(work, "bad")],
    ...["--lr-scheduler", "cosin", "--device", "cpu"],
  ]),
  train: ragtune([
    ...["train", "--model", modelDir, "--train", trainFile, "--eval", evalFile, "--out", out],
    ...["--config", configFile, "--learning-rate", "2e-3", "--matryoshka-dims", "32,16"],
    ...["--model-name", "ragtune tiny test", "--device", "cpu"],
  ]),
  // GISTEmbedLoss with the base model as its own guide, 2 steps, no evaluation; e5-style prompts.
  gist: ragtune([
    ...["train", "--model", modelDir, "--train", trainFile, "--out", join(work, "gist")],
    ...["--loss", "gist", "--guide-model", modelDir],
    ...["--gist-margin", "0.05", "--gist-contrast-anchors", "off"],
    ...["--batch-size", "8", "--gradient-accumulation-steps", "1"],
    ...["--max-steps", "2", "--matryoshka-dims", "32,16"],
    ...["--eval-strategy", "no", "--save-strategy", "steps", "--save-steps", "2"],
    ...["--no-onnx", "--device", "cpu"],
    ...["--query-prompt", "query: ", "--corpus-prompt", "passage: "],
    // The card's metadata flags override what the base model declares.
    ...["--license", "apache-2.0", "--language", "fr", "--language", "it,es"],
    ...["--base-model", "BAAI/bge-small-en-v1.5", "--dataset-name", "someone/financial-pairs"],
  ]),
  badBaseModel: ragtune([
    ...["train", "--model", modelDir, "--train", trainFile, "--out", join(work, "bad-base")],
    ...["--base-model", "/tmp/some/folder", "--eval-strategy", "no", "--device", "cpu"],
  ]),
  gistWithoutGuide: ragtune([
    ...["train", "--model", modelDir, "--train", trainFile, "--out", join(work, "gist-bad")],
    ...["--loss", "cached-gist", "--eval-strategy", "no", "--device", "cpu"],
  ]),
};
const compared = runs.train.then(() =>
  Promise.all([
    ragtune(["compare", join(out, "baseline_results.json"), join(out, "eval_results.json")]),
    ragtune(["compare", join(out, "baseline_results.json"), join(out, "eval_results.json"), "--markdown"]),
  ]),
);
// The same results as if scored on another corpus (a run trained on a smaller file), and without a record.
const otherCorpus = join(work, "other-corpus.json");
const noRecord = join(work, "no-record.json");
const comparedCorpora = runs.train.then(() => {
  const results = JSON.parse(readFileSync(join(out, "eval_results.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(
    otherCorpus,
    JSON.stringify({ ...results, corpusFingerprint: { size: 40, sha256: "0".repeat(64) } }),
  );
  const { corpusFingerprint: _, ...flat } = results;
  writeFileSync(noRecord, JSON.stringify(flat));
  const baseline = join(out, "baseline_results.json");
  return Promise.all([
    ragtune(["compare", baseline, otherCorpus]),
    // The recipe's flow: the base model's `ragtune eval --json` against the run's results, same corpus files.
    ragtune([
      ...["eval", "--model", modelDir, "--queries", evalFile, "--corpus", `${trainFile},${evalFile}`],
      ...["--dims", "32,16", "--json", join(work, "base-eval.json"), "--device", "cpu"],
    ]).then(() => ragtune(["compare", join(work, "base-eval.json"), join(out, "eval_results.json")])),
    ragtune(["compare", baseline, otherCorpus, "--force"]),
    ragtune(["compare", baseline, noRecord]),
  ]);
});

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const json = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

/** The recipe's evaluation of `dir` in this process: queries = --eval anchors, corpus = all positives. */
function evaluate(model: SentenceTransformer): Record<string, number> {
  const task = buildRetrievalTask(EVAL, [...TRAIN, ...EVAL]);
  const evaluator = new InformationRetrievalEvaluator({ ...task, dims: DIMS });
  return evaluator.evaluate(model).metrics;
}

describe("ragtune train", () => {
  test("--help lists the flags and says what accumulation and the cached loss do to negatives", async () => {
    const r = await runs.help;
    assertExit(r, 0);
    for (const flag of [
      "--model",
      "--train",
      "--eval",
      "--out",
      "--config",
      "--epochs",
      "--batch-size",
      "--gradient-accumulation-steps",
      "--learning-rate",
      "--warmup-ratio",
      "--lr-scheduler",
      "--matryoshka-dims",
      "--loss",
      "--mini-batch-size",
      "--batch-sampler",
      "--eval-strategy",
      "--save-total-limit",
      "--metric-for-best-model",
      "--max-steps",
      "--bf16",
      "--seed",
      "--resume",
      "--guide-model",
      "--gist-margin",
      "--gist-margin-strategy",
      "--gist-temperature",
      "--query-prompt",
      "--corpus-prompt",
      "--query-prompt-name",
      "--default-prompt-name",
    ])
      assert.match(r.stdout, new RegExp(`${flag}\\b`), `${flag} is not in the help`);
    assert.match(r.stdout, /does NOT add negatives/);
    assert.match(r.stdout, /Gradient accumulation does not add in-batch negatives/);
    assert.match(r.stdout, /cached-mnrl .*every pair of the large batch is a negative/s);
  });

  test("a bad argument fails before training, naming it", async () => {
    const r = await runs.badArgument;
    assertExit(r, 1);
    assert.match(
      r.stderr,
      /lrSchedulerType: must be one of linear, cosine, constant, constant_with_warmup, got "cosin"/,
    );
    assert.ok(!existsSync(join(work, "bad", "training_log.jsonl")));
  });

  test("end to end: model folder, model card, results, comparison table", async () => {
    const r = await runs.train;
    assertExit(r, 0);
    const final = join(out, "final");
    assert.match(
      r.stderr,
      new RegExp(
        `saved the final model to ${escapeRe(final)} \\(the weights of the best checkpoint, checkpoint-\\d+\\)`,
      ),
    );
    // The final model folder holds model files only; the run's files stay beside it.
    for (const f of [
      "modules.json",
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "config_sentence_transformers.json",
      "1_Pooling/config.json",
      "README.md",
      "onnx/model.onnx",
    ])
      assert.ok(existsSync(join(final, f)), `final/${f} is missing`);
    const modelFiles =
      /^(config\.json|config_sentence_transformers\.json|modules\.json|sentence_bert_config\.json|model\.safetensors|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|vocab\.txt|README\.md|\d+_(Pooling|Dense|Normalize)|onnx)$/;
    for (const f of readdirSync(final)) assert.match(f, modelFiles, `final/ holds ${f}, not a model file`);
    for (const f of [
      "eval_results.json",
      "baseline_results.json",
      "comparison.md",
      "training_log.jsonl",
      "checkpoint-6/trainer_state.json", // 48 pairs / batch 8 = 6 steps per epoch (the config file's batch)
      "checkpoint-12/trainer_state.json",
    ])
      assert.ok(existsSync(join(out, f)), `${f} is missing`);
    // The config file's values under the flags': batch 8 and 2 epochs from the file, lr from the flag.
    const args = json(join(out, "checkpoint-6", "training_args.json"));
    assert.equal(args.perDeviceTrainBatchSize, 8);
    assert.equal(args.numTrainEpochs, 2);
    assert.equal(args.loggingSteps, 2);
    assert.equal(args.learningRate, 2e-3);
    assert.deepEqual(args.matryoshkaDims, DIMS);
    assert.equal(args.metricForBestModel, "eval_dim_16_cosine_ndcg@10"); // no 128 among the dims

    // The results are what the saved model and the base model score on the recipe's task.
    const results = json(join(out, "eval_results.json")) as Record<string, number>;
    const baseline = json(join(out, "baseline_results.json")) as Record<string, number>;
    const saved = SentenceTransformer.fromDir(final);
    const again = evaluate(saved);
    saved.dispose();
    const original = SentenceTransformer.fromDir(modelDir);
    const before = evaluate(original);
    original.dispose();
    for (const d of DIMS) {
      const key = `dim_${d}_cosine_ndcg@10`;
      assert.ok(
        Math.abs(results[`eval_${key}`]! - again[key]!) < 1e-6,
        `${key}: ${results[`eval_${key}`]} vs ${again[key]}`,
      );
      assert.ok(Math.abs(baseline[`eval_${key}`]! - before[key]!) < 1e-6, `baseline ${key}`);
    }

    // Model card: YAML front matter with the model-index (one information-retrieval result per dim).
    const card = readFileSync(join(final, "README.md"), "utf8");
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card)?.[1];
    assert.ok(front, "README.md starts with YAML front matter");
    // A local base folder is no hub id: no base_model (the hub would link it), no path anywhere in the card.
    assert.doesNotMatch(front, /^base_model:/m);
    assert.match(card, /fine-tuned from a local folder \(`base`\) on `train\.jsonl`/);
    assert.ok(!card.includes(work), "the card holds no absolute path");
    // License and languages: the base model's README.md front matter's.
    assert.match(front, /^license: mit$/m);
    assert.match(front, /^language:\n- en\n- de$/m);
    // Precision as it ran: float32 on the CPU.
    for (const flag of ["fp16", "bf16", "tf32"])
      assert.match(card, new RegExp(`^- \`${flag}\`: false$`, "m"));
    // The widget: the first evaluation query, its passage first.
    const task = buildRetrievalTask(EVAL, [...TRAIN, ...EVAL]);
    const [q0, q0text] = [...task.queries][0]!;
    const q0doc = task.corpus.get([...task.relevantDocs.get(q0)!][0]!)!;
    assert.ok(
      front.includes(
        `widget:\n- source_sentence: ${JSON.stringify(q0text)}\n  sentences:\n  - ${JSON.stringify(q0doc)}\n`,
      ),
      "widget from the evaluation queries",
    );
    // Dataset columns and their token statistics over the 48 training pairs.
    const tok = SentenceTransformer.fromDir(final);
    const lengths = (texts: string[]) => texts.map((t) => tok.countTokens(t, tok.maxSeqLength));
    for (const [name, texts] of [
      ["anchor", TRAIN.map((p) => p.anchor)],
      ["positive", TRAIN.map((p) => p.positive)],
    ] as const) {
      const l = lengths([...texts]);
      const mean = (l.reduce((a, b) => a + b, 0) / l.length).toFixed(2);
      assert.ok(
        card.includes(
          `<li>min: ${Math.min(...l)} tokens</li><li>mean: ${mean} tokens</li><li>max: ${Math.max(...l)} tokens</li>`,
        ),
        `${name} statistics`,
      );
    }
    tok.dispose();
    assert.match(card, /^\* Columns: <code>anchor<\/code>, <code>positive<\/code>$/m);
    // Architecture as sentence-transformers prints it; citations of each loss used.
    assert.match(
      card,
      /^ {2}\(0\): Transformer\(\{'max_seq_length': 32, 'do_lower_case': False, 'architecture': 'BertModel'\}\)$/m,
    );
    assert.match(
      card,
      /^ {2}\(1\): Pooling\(\{'word_embedding_dimension': 32, 'pooling_mode_cls_token': False, 'pooling_mode_mean_tokens': True,/m,
    );
    assert.deepEqual(
      [...card.matchAll(/^#### (.+)\n\n```bibtex$/gm)].map((m) => m[1]),
      ["Sentence Transformers", "MatryoshkaLoss", "MultipleNegativesRankingLoss"],
    );
    assert.match(card, /^- ragtune: \d+\.\d+\.\d+/m);
    assert.match(card, /^- libtorch: /m);
    // config_sentence_transformers.json: the compatibility floor, and what wrote it.
    const stConfig = json(join(final, "config_sentence_transformers.json"));
    assert.equal((stConfig.__version__ as Record<string, string>).sentence_transformers, "3.0.0");
    assert.equal(typeof (stConfig.ragtune as Record<string, string>).version, "string");
    assert.match(front, /^library_name: sentence-transformers$/m);
    assert.match(front, /^- dataset_size:48$/m);
    assert.match(front, /^- loss:MatryoshkaLoss$/m);
    assert.match(front, /^- loss:MultipleNegativesRankingLoss$/m);
    assert.match(front, /^model-index:\n- name: ragtune tiny test\n {2}results:$/m);
    for (const d of DIMS) {
      const at = front.indexOf(`      type: dim_${d}\n`);
      assert.ok(at > 0, `no model-index result for dim ${d}`);
      const block = front.slice(
        at,
        front.indexOf("  - task:", at) > 0 ? front.indexOf("  - task:", at) : undefined,
      );
      assert.match(
        block,
        new RegExp(`- type: cosine_ndcg@10\\n {6}value: ${results[`eval_dim_${d}_cosine_ndcg@10`]}\\n`),
      );
    }
    assert.match(card, /^# ragtune tiny test$/m);
    assert.match(card, /embeddings can be truncated to 16 dimensions/);
    assert.match(card, /- `per_device_train_batch_size`: 8/);
    assert.match(card, /- `learning_rate`: 0\.002/);
    assert.match(card, /"matryoshka_dims": \[\s*32,\s*16\s*\]/);
    assert.match(
      card,
      new RegExp(`\\| cosine_ndcg@10 \\| \\*\\*${results["eval_dim_32_cosine_ndcg@10"]!.toFixed(4)}\\*\\*`),
    );

    // The before/after table: printed, and as comparison.md.
    const table = r.stdout.trim().split("\n");
    assert.match(table[0]!, /dim +baseline ndcg@10 +fine-tuned ndcg@10 +change +retention/);
    for (const [i, d] of DIMS.entries()) {
      const row = table[2 + i]!.trim().split(/ +/);
      assert.equal(row[0], String(d));
      assert.equal(row[1], baseline[`eval_dim_${d}_cosine_ndcg@10`]!.toFixed(4));
      assert.equal(row[2], results[`eval_dim_${d}_cosine_ndcg@10`]!.toFixed(4));
    }
    const md = readFileSync(join(out, "comparison.md"), "utf8");
    assert.match(md, /^\| dim \| baseline ndcg@10 \| fine-tuned ndcg@10 \| change \| retention \|$/m);
    assert.match(md, /^\| 16 \| /m);
  });

  test("--loss gist --guide-model: trains, the card lists GISTEmbedLoss with its guide; no guide: exit 1", async () => {
    const r = await runs.gist;
    assertExit(r, 0);
    const run = join(work, "gist");
    const dir = join(run, "final");
    const args = json(join(run, "checkpoint-2", "training_args.json"));
    assert.equal(args.loss, "gist");
    assert.equal(args.guideModel, modelDir);
    assert.equal(args.gistMargin, 0.05);
    assert.equal(args.gistContrastAnchors, false);
    const card = readFileSync(join(dir, "README.md"), "utf8");
    assert.match(card, /^- loss:MatryoshkaLoss$/m);
    assert.match(card, /^- loss:GISTEmbedLoss$/m);
    assert.match(card, /"guide": "a local folder \(`base`\)"/); // the guide is named, not its path
    assert.ok(!card.includes(work), "the card holds no absolute path");
    // The flags: license and languages over the base model's, base_model and datasets as given.
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card)![1]!;
    assert.match(front, /^license: apache-2.0$/m);
    assert.match(front, /^language:\n- fr\n- it\n- es$/m);
    assert.match(front, /^base_model: BAAI\/bge-small-en-v1.5$/m);
    assert.match(front, /^datasets:\n- someone\/financial-pairs$/m);
    assert.match(
      card,
      /fine-tuned from \[BAAI\/bge-small-en-v1.5\]\(https:\/\/huggingface.co\/BAAI\/bge-small-en-v1.5\)/,
    );
    assert.doesNotMatch(front, /^widget:/m, "no evaluation, no widget");
    assert.match(card, /^#### GISTEmbedLoss\n\n```bibtex$/m);
    assert.doesNotMatch(card, /^#### MultipleNegativesRankingLoss$/m);
    assert.match(card, /"contrast_anchors": false/);
    assert.match(card, /solatorio2024gistembed/);
    // The prompts it trained with: in the arguments, saved with the model, shown in the card.
    assert.equal(args.queryPrompt, "query: ");
    assert.equal(args.corpusPrompt, "passage: ");
    const st = json(join(dir, "config_sentence_transformers.json"));
    assert.deepEqual(st.prompts, { query: "query: ", document: "passage: " });
    assert.equal(st.default_prompt_name, null);
    assert.match(card, /- \*\*Prompts:\*\* `query`: "query: ", `document`: "passage: "/);
    assert.match(card, /query_embeddings = model\.encode_query\(/);
    const badBase = await runs.badBaseModel;
    assertExit(badBase, 2);
    assert.match(
      badBase.stderr,
      /--base-model must be a Hugging Face hub id \(owner\/name\), got "\/tmp\/some\/folder"/,
    );
    const bad = await runs.gistWithoutGuide;
    assertExit(bad, 1);
    assert.match(bad.stderr, /guideModel: --loss cached-gist needs a guide model \(--guide-model G/);
  });

  test("the card's transformers.js snippet runs as printed and gives the saved model's embeddings", async () => {
    assertExit(await runs.train, 0);
    const final = join(out, "final");
    const card = readFileSync(join(final, "README.md"), "utf8");
    const snippet = /^```js\n([\s\S]*?)\n```$/m.exec(card)?.[1];
    assert.ok(snippet, "the card has a transformers.js snippet");
    assert.match(snippet, /pipeline\("feature-extraction", "\.\/out\/final", \{ dtype: "(fp32|q8)" \}\)/);
    // As printed, but for the import specifier: a script outside the repository resolves the installed package by
    // its URL. Run from the folder `out` is in (the snippet's path is relative to where train ran).
    const script = join(work, "snippet.mjs");
    writeFileSync(
      script,
      snippet.replace(
        '"@huggingface/transformers"',
        JSON.stringify(import.meta.resolve("@huggingface/transformers")),
      ) + "\nconsole.log(JSON.stringify({ texts, full: embeddings.tolist(), small: small.tolist() }));\n",
    );
    const r = await runNode([script], { cwd: work });
    assertExit(r, 0);
    const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      texts: string[];
      full: number[][];
      small: number[][];
    };
    const model = SentenceTransformer.fromDir(final);
    const full = model.encode(got.texts);
    const small = model.encode(got.texts, { truncateDim: 16 });
    // transformers.js truncates a long text by cutting its end ([SEP] included; the card says so): compare the
    // texts within the model's 32 tokens, which both tokenize alike.
    const fits = got.texts.map((t) => model.countTokens(t) <= model.maxSeqLength);
    model.dispose();
    assert.ok(fits[0], "the query fits");
    assert.equal(got.small[0]!.length, 16);
    let diff = 0;
    got.texts.forEach((_, i) => {
      if (!fits[i]) return;
      got.full[i]!.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - full.data[i * 32 + j]!))));
      got.small[i]!.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - small.data[i * 16 + j]!))));
    });
    // fp32 agrees within float rounding; q8 (int8 weights) within its quantization error.
    const tolerance = snippet.includes('dtype: "q8"') ? 0.05 : 1e-5;
    assert.ok(diff <= tolerance, `transformers.js vs ragtune: max |diff| ${diff}`);
    assert.match(snippet, /transformers\.js cuts a text longer than 32 tokens at the end/);
  });

  test("ragtune compare baseline.json eval_results.json: text and --markdown", async () => {
    const [text, markdown] = await compared;
    assertExit(text, 0);
    assertExit(markdown, 0);
    const trained = await runs.train;
    assert.equal(text.stdout.trim(), trained.stdout.trim(), "the table train printed");
    assert.equal(markdown.stdout.trim(), readFileSync(join(out, "comparison.md"), "utf8").trim());
    const rows = markdown.stdout.trim().split("\n").slice(2);
    assert.deepEqual(
      rows.map((row) => row.split("|")[1]!.trim()),
      ["32", "16"],
    );
    assert.match(rows[0]!, /\| 100\.0% \|$/); // retention of the full dim
    assert.equal(text.stderr, "", "same corpus: no warning");
  });

  test("results record their corpus; compare refuses different corpora unless --force", async () => {
    await runs.train;
    // Both files of the run record the corpus they were scored on: the positives of --train and --eval.
    const expected = corpusFingerprint([...buildRetrievalTask(EVAL, [...TRAIN, ...EVAL]).corpus.values()]);
    assert.equal(expected.size, 64);
    for (const f of ["baseline_results.json", "eval_results.json"])
      assert.deepEqual(json(join(out, f)).corpusFingerprint, expected, f);

    const [refused, recipe, forced, unknown] = await comparedCorpora;
    assertExit(recipe, 0);
    assert.equal(recipe.stderr, "", "eval --json on --train,--eval files: the corpus train scored on");
    assert.deepEqual(json(join(work, "base-eval.json")).corpusFingerprint, expected);
    assertExit(refused, 1);
    assert.match(
      refused.stderr,
      /scored on different corpora \(.*baseline_results\.json: 64 documents .*other-corpus\.json: 40 documents/s,
    );
    assert.match(refused.stderr, /or pass --force/);
    assert.equal(refused.stdout, "");
    assertExit(forced, 0);
    assert.match(forced.stderr, /^WARNING: the two results were scored on different corpora/m);
    assert.match(forced.stdout, /baseline ndcg@10/);
    assertExit(unknown, 0);
    assert.match(unknown.stderr, /no-record\.json records no corpus fingerprint: cannot check/);
  });
});
