#!/usr/bin/env node
// `npm run demo`: the reference recipe end to end on the bundled financial data —
//   prepare (split + report) → baseline evaluation → fine-tune (MatryoshkaLoss(MNRL)) → evaluation → the
//   before/after table per Matryoshka dim.
// Model: BAAI/bge-base-en-v1.5 from the Hugging Face hub when it is reachable (the recipe's model and values; a
// GPU is advised). Offline, it says so and fine-tunes a small model made by `ragtune create-model` (random
// weights: the pipeline and the table are real, the gains are those of training from scratch, not of adapting a
// pretrained model). `--quick` trains the small model on a slice for one epoch: a few minutes on 2 cores.
// Bootstraps what is missing first (libtorch, npm dependencies, the native addon). Node built-ins only here.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootstrap } from "./bootstrap.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
};
if (flag("help")) {
  console.log(`usage: npm run demo [-- --quick] [-- --model M] [-- --out DIR] [-- --offline]
  --quick    small model, a slice of the data, one epoch (a few minutes on 2 CPU cores)
  --model M  fine-tune this model (folder or hub id) instead of bge-base / the offline model
  --out DIR  where everything goes (default .demo/)
  --offline  do not try the hub`);
  process.exit(0);
}
const quick = flag("quick");
const out = option("out", join(root, ".demo"));
const HUB_MODEL = "BAAI/bge-base-en-v1.5";

function step(title) {
  console.error(`\n=== ${title} ${"=".repeat(Math.max(0, 70 - title.length))}`);
}

function ragtune(args) {
  console.error(`$ ragtune ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [join(root, "bin/ragtune.mjs"), ...args], {
    stdio: "inherit",
    cwd: root,
  });
  if (r.status !== 0) {
    console.error(`demo: ragtune ${args[0]} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

/** True when the hub answers for the model within a few seconds (HF_HUB_OFFLINE=1 means no). */
async function hubReachable(model) {
  if (flag("offline") || process.env.HF_HUB_OFFLINE === "1") return false;
  const endpoint = process.env.HF_ENDPOINT ?? "https://huggingface.co";
  try {
    const res = await fetch(`${endpoint}/api/models/${model}/revision/main`, {
      signal: AbortSignal.timeout(5000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/** Writes the first n lines of a JSONL file to dest. */
function slice(src, dest, n) {
  const lines = readFileSync(src, "utf8").split("\n").filter(Boolean).slice(0, n);
  writeFileSync(dest, lines.join("\n") + "\n");
}

async function main() {
  const t0 = Date.now();
  step("0. bootstrap (libtorch, npm dependencies, native addon)");
  bootstrap();
  mkdirSync(out, { recursive: true });

  step("1. prepare the financial pairs (7,000 → 6,300 train / 700 test, seed 42)");
  const data = join(out, "data");
  ragtune([
    "prepare",
    "data/financial/train.jsonl",
    "data/financial/test.jsonl",
    "--id",
    "id",
    "--test-size",
    "700",
    "--seed",
    "42",
    "--out",
    data,
  ]);

  step("2. the model");
  let model = option("model", null);
  let recipe = true;
  if (!model && !quick && (await hubReachable(HUB_MODEL))) {
    model = HUB_MODEL;
    console.error(`the Hugging Face hub is reachable: fine-tuning ${HUB_MODEL} with the recipe's values`);
  } else if (!model) {
    recipe = false;
    console.error(
      quick
        ? "--quick: using a small randomly initialized model (made by ragtune create-model)"
        : `the Hugging Face hub is not reachable, so ${HUB_MODEL} cannot be downloaded.\n` +
            "Using a small randomly initialized model made by `ragtune create-model` instead: the pipeline and the\n" +
            "table are real, but a random model learns retrieval from scratch rather than adapting a pretrained one.",
    );
    model = join(out, "small-model");
    if (!existsSync(join(model, "modules.json"))) {
      ragtune([
        "create-model",
        "--layers",
        "2",
        "--hidden",
        "128",
        "--heads",
        "4",
        "--intermediate",
        "512",
        "--max-position",
        "256",
        "--max-seq-length",
        "256",
        "--vocab",
        "test/fixtures/tokenizers/bert-base-uncased/vocab.txt",
        "--pooling",
        "mean",
        "--seed",
        "42",
        "--out",
        model,
      ]);
    }
  }

  let trainFile = join(data, "train.jsonl");
  let testFile = join(data, "test.jsonl");
  if (quick) {
    slice(trainFile, join(data, "train-quick.jsonl"), 2000);
    slice(testFile, join(data, "test-quick.jsonl"), 200);
    trainFile = join(data, "train-quick.jsonl");
    testFile = join(data, "test-quick.jsonl");
  }

  step("3–5. baseline evaluation → fine-tuning → evaluation every epoch → comparison");
  const run = join(out, "model-finetuned");
  const common = ["train", "--model", model, "--train", trainFile, "--eval", testFile, "--out", run];
  if (recipe) {
    ragtune([...common, "--model-name", "BGE base Financial Matryoshka"]);
  } else {
    // A random model needs a larger learning rate and no accumulation to learn anything in minutes; the recipe's
    // other choices stay (Matryoshka dims up to the model's size, no-duplicates batches, cosine schedule).
    ragtune([
      ...common,
      "--epochs",
      quick ? "1" : "3",
      "--batch-size",
      "32",
      "--gradient-accumulation-steps",
      "1",
      "--learning-rate",
      "5e-4",
      "--length-grouped",
      "8",
      "--logging-steps",
      "10",
      "--model-name",
      "ragtune demo (random init) Financial Matryoshka",
    ]);
  }
  console.error(`\nmodel, model card (README.md), checkpoints and logs: ${run}`);
  console.error(`demo finished in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
