// A USE-lite run as users start it (`node bin/ragtune.mjs` in child processes): `ragtune train --model use-lite`
// writes tfjs/ beside the safetensors with the trained weights and the USE-lite card (not a sentence-transformers
// one); `--no-onnx` writes no tfjs/ and the card says how to add it; `ragtune export-tfjs` adds it to that folder
// and refuses folders that are not USE-lite. The tfjs runtime itself is tested in test/export/use-lite-tfjs.test.ts;
// here the exported weights are compared with the folder's own.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { setNumThreads, tidy } from "../../src/engine/index.ts";
import { tfjsSource, UseLite } from "../../src/models/use-lite.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";
import { BERT_VOCAB, freshDir, TINY_CONFIG } from "../helpers/tiny-model.ts";
import { ragtune as runCli, type CliRun as Run } from "../helpers/run-cli.ts";

setNumThreads(1);

const ragtune = (args: string[]) => runCli(args, { threads: "preload" });

function assertExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

/** Every parameter of the folder's safetensors equals the one tfjs/ holds (after the layout change). */
function assertTfjsHoldsFolderWeights(dir: string): void {
  const model = UseLite.fromPretrained(dir);
  const source = tfjsSource(join(dir, "tfjs"));
  try {
    for (const [name, p] of model.namedParameters()) {
      const equal = tidy(() => {
        const t = source.get(name);
        assert.ok(t, `tfjs/ has no ${name}`);
        const bytes = (x: typeof t) => Buffer.from((x.float().toArray() as Float32Array).buffer);
        return bytes(t).equals(bytes(p.detach()));
      });
      assert.ok(equal, `tfjs/ differs from model.safetensors at ${name}`);
    }
  } finally {
    model.dispose();
  }
}

const lines = (name: string, n: number) =>
  readFileSync(fileURLToPath(new URL(`../../data/financial/${name}`, import.meta.url)), "utf8")
    .trim()
    .split("\n")
    .slice(0, n)
    .join("\n") + "\n";

const work = freshDir("use-lite-export-cli");
const trainFile = join(work, "pairs.jsonl");
const evalFile = join(work, "eval.jsonl");
writeFileSync(trainFile, lines("train.jsonl", 16));
writeFileSync(evalFile, lines("test.jsonl", 8));
const bertDir = join(work, "bert");
const bert = SentenceTransformer.create({
  config: TINY_CONFIG,
  tokenizer: HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB }),
  pooling: "mean",
  maxSeqLength: 32,
  seed: 42,
});
bert.save(bertDir);
bert.dispose();

const common = ["--model", "use-lite", "--train", trainFile, "--batch-size", "4", "--max-steps", "2"];
const out = join(work, "out");
const bare = join(work, "bare");
// One after the other: two USE-lite trainings at once would only compete for the cores.
const trained = ragtune([
  "train",
  ...common,
  ...["--eval", evalFile, "--out", out, "--matryoshka-dims", "512,256", "--learning-rate", "1e-3"],
  ...["--no-baseline", "--device", "cpu"],
]);
const trainedBare = trained.then(() =>
  ragtune(["train", ...common, "--out", bare, "--eval-strategy", "no", "--no-onnx", "--device", "cpu"]),
);

describe("USE-lite exports from the CLI", () => {
  test("train --model use-lite writes tfjs/ with the trained weights and the USE-lite card", async () => {
    const r = await trained;
    assertExit(r, 0);
    assert.match(r.stderr, /wrote .*tfjs .* for @tensorflow-models\/universal-sentence-encoder/);
    for (const f of ["model.json", "vocab.json", "group1-shard1of7.bin"])
      assert.ok(existsSync(join(out, "final", "tfjs", f)), `no tfjs/${f}`);
    assertTfjsHoldsFolderWeights(join(out, "final"));
    const card = readFileSync(join(out, "final", "README.md"), "utf8");
    assert.match(card, /It is not a sentence-transformers model/);
    assert.doesNotMatch(card, /SentenceTransformer\(|library_name: sentence-transformers|huggingface\.co/);
    assert.match(card, /use\.load\(/);
    assert.match(card, /on pairs\.jsonl\./, "the dataset is named, not given as a path");
    assert.match(card, /\| cosine_ndcg@10 \| \d\.\d{4} \| \d\.\d{4} \|/);
    assert.match(card, /title={Matryoshka Representation Learning}/);
    assert.doesNotMatch(card, /Sentence-BERT/);
  });

  test("--no-onnx writes no tfjs/ and the card says how to add it; export-tfjs then adds it", async () => {
    assertExit(await trainedBare, 0);
    assert.ok(!existsSync(join(bare, "final", "tfjs")));
    const card = readFileSync(join(bare, "final", "README.md"), "utf8");
    assert.match(card, /This folder has no `tfjs\/` export\. `npx ragtune export-tfjs --model/);
    assert.doesNotMatch(card, /use\.load\(/);
    const r = await ragtune(["export-tfjs", "--model", join(bare, "final")]);
    assertExit(r, 0);
    assert.match(r.stderr, /wrote 9 files in .*tfjs/);
    assertTfjsHoldsFolderWeights(join(bare, "final"));
  });

  test("export-tfjs refuses a BERT folder, a missing folder and a missing --model", async () => {
    const [onBert, missing, none] = await Promise.all([
      ragtune(["export-tfjs", "--model", bertDir]),
      ragtune(["export-tfjs", "--model", join(work, "nope")]),
      ragtune(["export-tfjs"]),
    ]);
    assertExit(onBert, 2);
    assert.match(onBert.stderr, /does not name UseLite: export-tfjs takes a USE-lite folder/);
    assertExit(missing, 2);
    assert.match(missing.stderr, /nope is not a model folder \(no config\.json\)/);
    assertExit(none, 2);
    assert.match(none.stderr, /--model/);
  });
});
