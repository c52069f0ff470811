// Data-parallel training throughput on this machine: the trainer's train() over the same global batches as
// 1 process × T threads and as N processes × T/N threads (Gloo on 127.0.0.1, gradients averaged once per step),
// in pairs per second over the steps after the first (the first pays for connections and allocator warm-up).
// The model: random weights of a BERT shape (default bge-small, 33M parameters) at --max-seq tokens; the data:
// the first --pairs pairs of data/financial/train.jsonl; no evaluation, no checkpoints.
//
//   npm run bench:ddp -- [--nproc 2] [--threads 2] [--pairs 192] [--batch 16] [--max-seq 128] [--layers 12 …]
//                         [--gather]
//
// --gather adds a third run: the data-parallel one with --gather-across-devices (every anchor ranks the global
// batch's candidates, as the single process does), whose extra cost is the embeddings' all-gathers.
//
// --batch is per process in the data-parallel run; the single process trains batch × nproc pairs per step, so
// both take the same optimizer steps over the same global batches. On a machine whose cores are shared with
// other work the numbers move with that load: compare the two lines of one run, not across runs.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import type { PairRecord } from "../src/data/index.ts";
import { launchWorkers, ProcessGroup } from "../src/distributed/index.ts";
import { resolveTrainingArguments } from "../src/train/args.ts";
import { train } from "../src/train/trainer.ts";
import { BGE_SMALL, createBenchModel, readPairs, shapeFrom, SHAPE_OPTIONS } from "./models.ts";

const { values } = parseArgs({
  options: {
    nproc: { type: "string", default: "2" },
    threads: { type: "string", default: "2" },
    pairs: { type: "string", default: "192" },
    batch: { type: "string", default: "16" },
    "max-seq": { type: "string", default: "128" },
    single: { type: "boolean" },
    gather: { type: "boolean" },
    "gather-run": { type: "boolean" },
    ...SHAPE_OPTIONS,
  },
});
const nproc = Number(values.nproc);
const threads = Number(values.threads);
const pairs = Number(values.pairs);
const batch = Number(values.batch);
for (const [k, v] of Object.entries({ nproc, threads, pairs, batch }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
if (threads % nproc !== 0) throw new Error(`--threads ${threads} does not split over --nproc ${nproc}`);
const self = fileURLToPath(import.meta.url);

interface Measured {
  mode: string;
  pairsPerSecond: number;
  secondsPerStep: number;
  steps: number;
  parameters: number;
}

class Collect extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** One run of train(): as the only process (--single), or as a rank of the launched group. */
function worker(): void {
  const pg = ProcessGroup.fromEnv({ backend: "gloo" });
  const world = pg?.worldSize ?? 1;
  const bench = createBenchModel(shapeFrom(values, BGE_SMALL), {
    device: "cpu",
    dtype: "float32",
    seed: 42,
    maxSeqLength: Number(values["max-seq"]),
  });
  const rows: PairRecord[] = readPairs("train").slice(0, pairs);
  const out = mkdtempSync(join(tmpdir(), "ragtune-bench-ddp-"));
  try {
    const stepStarts: number[] = [];
    const perStep = pg ? batch : batch * nproc;
    const result = train({
      model: bench.model,
      train: rows,
      args: resolveTrainingArguments({
        outputDir: out,
        numTrainEpochs: 1,
        perDeviceTrainBatchSize: perStep,
        gradientAccumulationSteps: 1,
        matryoshkaDims: [shapeFrom(values, BGE_SMALL).hidden],
        batchSampler: "batch_sampler",
        evalStrategy: "no",
        saveStrategy: "no",
        loadBestModelAtEnd: false,
        loggingSteps: 1_000_000,
        gatherAcrossDevices: Boolean(pg && values["gather-run"]),
      }),
      verbose: false,
      onMicroBatch: () => stepStarts.push(performance.now()),
      ...(pg ? { processGroup: pg } : {}),
    });
    const end = performance.now();
    const steps = result.globalStep;
    if (steps < 2) throw new Error(`only ${steps} step: raise --pairs`);
    const seconds = (end - stepStarts[1]!) / 1000;
    const m: Measured = {
      mode:
        `${world} process${world > 1 ? "es" : ""} × ${pg ? threads / nproc : threads} thread(s)` +
        (pg && values["gather-run"] ? ", gather" : ""),
      pairsPerSecond: ((steps - 1) * perStep * world) / seconds,
      secondsPerStep: seconds / (steps - 1),
      steps,
      parameters: bench.parameters,
    };
    if (!pg || pg.isMain) process.stdout.write(JSON.stringify(m) + "\n");
  } finally {
    pg?.destroy();
    bench.dispose();
    rmSync(out, { recursive: true, force: true });
  }
}

function lastJson(text: string): Measured {
  const line = text
    .trim()
    .split("\n")
    .reverse()
    .find((l) => l.includes("{"));
  if (!line) throw new Error(`no result in:\n${text}`);
  return JSON.parse(line.slice(line.indexOf("{"))) as Measured;
}

async function single(): Promise<Measured> {
  const child = spawn(process.execPath, ["--import", "tsx", self, ...process.argv.slice(2), "--single"], {
    env: { ...process.env, RAGTUNE_NUM_THREADS: String(threads) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`the single-process run exited with ${code}`);
  return lastJson(stdout);
}

async function parallel(gather = false): Promise<Measured> {
  const out = new Collect();
  const argv = process.argv.slice(2).filter((a) => a !== "--gather");
  const r = await launchWorkers({
    nproc,
    command: [process.execPath, "--import", "tsx", self, ...argv, ...(gather ? ["--gather-run"] : [])],
    threadsPerProc: threads / nproc,
    stdout: out,
  });
  if (r.exitCode !== 0)
    throw new Error(`the data-parallel run failed (rank ${r.failedRank}, exit ${r.exitCode})`);
  return lastJson(out.text);
}

if (values.single || process.env.RANK !== undefined) worker();
else {
  const a = await single();
  const b = await parallel();
  const c = values.gather ? await parallel(true) : null;
  const shape = shapeFrom(values, BGE_SMALL);
  process.stdout.write(
    `train() on ${pairs} financial pairs, global batch ${batch * nproc}, ${a.steps} steps, ` +
      `BERT ${shape.layers}×${shape.hidden} (${(a.parameters / 1e6).toFixed(1)}M params), max ${values["max-seq"]} tokens, CPU\n`,
  );
  for (const m of c ? [a, b, c] : [a, b])
    process.stdout.write(
      `${m.mode.padEnd(34)} ${m.pairsPerSecond.toFixed(2).padStart(8)} pairs/s  ${m.secondsPerStep.toFixed(2).padStart(7)} s/step\n`,
    );
  process.stdout.write(
    `data parallel / single process: ${(b.pairsPerSecond / a.pairsPerSecond).toFixed(2)}×\n`,
  );
  if (c)
    process.stdout.write(
      `gather-across-devices / plain data parallel: ${(c.pairsPerSecond / b.pairsPerSecond).toFixed(2)}×\n`,
    );
}
