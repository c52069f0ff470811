// Prompts end to end: a model given "query" / "document" prompts saves them in config_sentence_transformers.json
// (default_prompt_name null), loads them back, and `ragtune eval` / `ragtune encode --as` use them without flags
// (sentence-transformers' encode_query / encode_document); a flag overrides them, and a missing prompt name
// fails naming the flag.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import type { PairRecord } from "../../src/data/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import { InformationRetrievalEvaluator } from "../../src/eval/ir-evaluator.ts";
import { corpusFingerprint } from "../../src/eval/corpus-fingerprint.ts";
import { buildRetrievalTask } from "../../src/eval/retrieval-task.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";
import { ragtune as runCli } from "../helpers/run-cli.ts";

setNumThreads(1);

const ragtune = (args: string[]) => runCli(args, { threads: "preload" });

const PAIRS: PairRecord[] = readFileSync(
  fileURLToPath(new URL("../../data/financial/test.jsonl", import.meta.url)),
  "utf8",
)
  .trim()
  .split("\n")
  .slice(0, 24)
  .map((line) => JSON.parse(line) as PairRecord);

const work = freshDir("prompts");
const pairsFile = join(work, "pairs.jsonl");
writeFileSync(pairsFile, PAIRS.map((r) => JSON.stringify(r)).join("\n") + "\n");
const textsFile = join(work, "texts.txt");
writeFileSync(textsFile, "What was the revenue?\nRevenue was $26.97 billion.\n");
const modelDir = join(work, "model");
{
  const model = SentenceTransformer.create({
    config: TINY_CONFIG,
    tokenizer: HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB }),
    pooling: "mean",
    maxSeqLength: 32,
    seed: 42,
  });
  model.setPrompts({ query: "query: ", document: "passage: " });
  model.save(modelDir);
  model.dispose();
}
const DIMS = [32, 16];

const runs = {
  eval: ragtune([
    ...["eval", "--model", modelDir, "--queries", pairsFile, "--corpus", pairsFile],
    ...["--dims", "32,16", "--json", join(work, "eval.json"), "--device", "cpu"],
  ]),
  evalOverride: ragtune([
    ...["eval", "--model", modelDir, "--queries", pairsFile, "--corpus", pairsFile],
    ...["--dims", "32,16", "--query-prompt", "", "--corpus-prompt-name", "query"],
    ...["--json", join(work, "override.json"), "--device", "cpu"],
  ]),
  badName: ragtune([
    ...["eval", "--model", modelDir, "--queries", pairsFile, "--corpus", pairsFile],
    ...["--query-prompt-name", "instruction", "--device", "cpu"],
  ]),
  encodeQuery: ragtune([
    "encode",
    "--model",
    modelDir,
    "--input",
    textsFile,
    "--as",
    "query",
    "--device",
    "cpu",
  ]),
  encodeDocument: ragtune([
    ...["encode", "--model", modelDir, "--input", textsFile, "--as", "document", "--device", "cpu"],
  ]),
};

const json = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

/** In-process evaluation of the saved model with the given prompts. */
function evaluate(queryPrompt: string, corpusPrompt: string): Record<string, number> {
  const model = SentenceTransformer.fromDir(modelDir);
  const task = buildRetrievalTask(PAIRS, PAIRS);
  const evaluator = new InformationRetrievalEvaluator({
    ...task,
    dims: DIMS,
    ...(queryPrompt ? { queryPrompt } : {}),
    ...(corpusPrompt ? { corpusPrompt } : {}),
  });
  const metrics = evaluator.evaluate(model).metrics;
  model.dispose();
  return metrics;
}

describe("prompts saved with a model and used when it is loaded", () => {
  test("save → load round-trip: config_sentence_transformers.json prompts, default_prompt_name null", () => {
    const config = json(join(modelDir, "config_sentence_transformers.json"));
    assert.deepEqual(config.prompts, { query: "query: ", document: "passage: " });
    assert.equal(config.default_prompt_name, null);
    const loaded = SentenceTransformer.fromDir(modelDir);
    assert.deepEqual(loaded.spec.prompts, { query: "query: ", document: "passage: " });
    assert.equal(loaded.spec.defaultPromptName, null);
    assert.equal(loaded.sidePrompt("query"), "query: ");
    assert.equal(loaded.sidePrompt("document"), "passage: ");
    assert.equal(loaded.sidePrompt("query", { prompt: "" }), "");
    assert.equal(loaded.promptText({}), "", "no default prompt: plain encode adds none");
    // An empty text removes a prompt; a default must name one.
    loaded.setPrompts({ query: "" }, "document");
    assert.deepEqual(loaded.spec.prompts, { document: "passage: " });
    assert.equal(loaded.sidePrompt("query"), "passage: ", "no query prompt: the default prompt");
    assert.throws(
      () => loaded.setPrompts({}, "query"),
      /default prompt name "query" is not one of the prompts/,
    );
    loaded.dispose();
  });

  test("ragtune eval uses the saved prompts without flags; flags override them", async () => {
    const r = await runs.eval;
    assert.equal(r.code, 0, r.stderr);
    const out = json(join(work, "eval.json"));
    assert.equal(out.queryPrompt, "query: ");
    assert.equal(out.corpusPrompt, "passage: ");
    // The corpus it was scored on is recorded (compare checks it).
    assert.deepEqual(
      out.corpusFingerprint,
      corpusFingerprint([...buildRetrievalTask(PAIRS, PAIRS).corpus.values()]),
    );
    const withPrompts = evaluate("query: ", "passage: ");
    const without = evaluate("", "");
    const metrics = out.metrics as Record<string, number>;
    const key = "dim_32_cosine_ndcg@10";
    assert.ok(Math.abs(metrics[key]! - withPrompts[key]!) < 1e-9, `${metrics[key]} vs ${withPrompts[key]}`);
    // The prompts change the embeddings, so the check above can tell them apart.
    assert.notEqual(
      JSON.stringify(Object.values(withPrompts)),
      JSON.stringify(Object.values(without)),
      "the prompts change the scores",
    );

    const o = await runs.evalOverride;
    assert.equal(o.code, 0, o.stderr);
    const override = json(join(work, "override.json"));
    assert.equal(override.queryPrompt, null);
    assert.equal(override.corpusPrompt, "query: ");
    const expected = evaluate("", "query: ");
    const got = override.metrics as Record<string, number>;
    assert.ok(Math.abs(got[key]! - expected[key]!) < 1e-9);

    const bad = await runs.badName;
    assert.equal(bad.code, 2, bad.stderr); // a usage error
    assert.match(
      bad.stderr,
      /--query-prompt-name: prompt name "instruction" is not one of the model's prompts \(query, document\)/,
    );
  });

  test("ragtune encode --as query|document applies the model's query / document prompt", async () => {
    const [q, d] = await Promise.all([runs.encodeQuery, runs.encodeDocument]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(d.code, 0, d.stderr);
    const model = SentenceTransformer.fromDir(modelDir);
    const texts = ["What was the revenue?", "Revenue was $26.97 billion."];
    const rows = (s: string) =>
      s
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as number[]);
    for (const [out, prompt] of [
      [q.stdout, "query: "],
      [d.stdout, "passage: "],
    ] as const) {
      const expected = model.encode(texts, { prompt });
      rows(out).forEach((row, i) =>
        row.forEach((v, j) =>
          assert.ok(Math.abs(v - expected.data[i * expected.dim + j]!) < 1e-5, `${prompt} row ${i}`),
        ),
      );
    }
    model.dispose();
  });
});
