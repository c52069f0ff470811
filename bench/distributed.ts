// All-reduce time per training step over Gloo for the gradient lists of bge-small and bge-base (every BERT
// parameter shape, float32), between worker processes on this machine; and what --gather-across-devices adds to
// a step: per Matryoshka dim and candidate column, one differentiable all-gather of the (batch, dim) embeddings
// and its backward (a reduce-scatter).
//   npm run bench:distributed -- [--nproc 2] [--iters 5] [--models small,base] [--bucket-mb MiB]
//                                [--gather-batch 32] [--gather-dims 768,512,256,128,64] [--gather-columns 1]
// Without RANK set it launches the workers itself (ragtune's launcher, 1 thread each) and prints rank 0's table.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { randn, tidy, zeros, type Tensor } from "../src/engine/index.ts";
import { DEFAULT_BUCKET_BYTES, launchWorkers, ProcessGroup } from "../src/distributed/index.ts";
import { formatBytes } from "../src/util/index.ts";

const { values } = parseArgs({
  options: {
    nproc: { type: "string", default: "2" },
    iters: { type: "string", default: "5" },
    models: { type: "string", default: "small,base" },
    "bucket-mb": { type: "string", default: String(DEFAULT_BUCKET_BYTES / 1024 / 1024) },
    "gather-batch": { type: "string", default: "32" },
    "gather-dims": { type: "string", default: "768,512,256,128,64" },
    "gather-columns": { type: "string", default: "1" },
  },
});

// BERT parameter shapes (HF BertModel names, incl. the pooler) for a hidden size, layer count and FFN size.
function bertShapes(hidden: number, layers: number, ffn: number, vocab = 30522, positions = 512): number[][] {
  const s: number[][] = [[vocab, hidden], [positions, hidden], [2, hidden], [hidden], [hidden]];
  for (let l = 0; l < layers; l++) {
    for (let k = 0; k < 4; k++) s.push([hidden, hidden], [hidden]); // q, k, v, attention output
    s.push([hidden], [hidden]); // attention LayerNorm
    s.push([ffn, hidden], [ffn], [hidden, ffn], [hidden], [hidden], [hidden]); // FFN + LayerNorm
  }
  s.push([hidden, hidden], [hidden]); // pooler
  return s;
}

const MODELS: Record<string, number[][]> = {
  small: bertShapes(384, 12, 1536), // BAAI/bge-small-en-v1.5
  base: bertShapes(768, 12, 3072), // BAAI/bge-base-en-v1.5
};

async function launcher(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const r = await launchWorkers({
    nproc: Number(values.nproc),
    command: [process.execPath, "--import", "tsx", self, ...process.argv.slice(2)],
    threadsPerProc: 1,
  });
  process.exitCode = r.exitCode;
}

function worker(): void {
  const pg = ProcessGroup.fromEnv()!;
  const iters = Number(values.iters);
  const bucketBytes = Number(values["bucket-mb"]) * 1024 * 1024;
  const rows: string[] = [];
  for (const name of String(values.models).split(",")) {
    const shapes = MODELS[name];
    if (!shapes) throw new Error(`--models: unknown model "${name}" (small, base)`);
    const grads: Tensor[] = shapes.map((s) => zeros(s).add(1)); // float32, like the gradients
    const numel = shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    pg.allReduce(grads, { op: "avg", bucketBytes }); // warm-up: connections, buffers
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      pg.barrier();
      const t = performance.now();
      pg.allReduce(grads, { op: "avg", bucketBytes });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    rows.push(
      `${("bge-" + name).padEnd(10)} ${String(shapes.length).padStart(4)} tensors ${(numel / 1e6).toFixed(1).padStart(6)} M params ` +
        `${formatBytes(numel * 4).padStart(9)} | all-reduce median ${median.toFixed(0).padStart(6)} ms ` +
        `(min ${times[0]!.toFixed(0)}, max ${times[times.length - 1]!.toFixed(0)}) | ` +
        `${((numel * 4) / (median / 1000) / 1e9).toFixed(2)} GB/s`,
    );
    for (const g of grads) g.dispose();
  }
  const gather = gatherCost(pg, iters);
  if (pg.isMain) {
    process.stdout.write(
      `gloo all-reduce (avg) over ${pg.worldSize} processes on 127.0.0.1, buckets of ${values["bucket-mb"]} MiB, ` +
        `${iters} iterations\n${rows.join("\n")}\n${gather}\n`,
    );
  }
  pg.barrier();
  pg.destroy();
}

/**
 * The gather of one training step with --gather-across-devices: MNRL inside Matryoshka gathers every candidate
 * column at every dim (forward) and reduce-scatters its gradient (backward), as sentence-transformers does.
 */
function gatherCost(pg: ProcessGroup, iters: number): string {
  const batch = Number(values["gather-batch"]);
  const dims = String(values["gather-dims"]).split(",").map(Number);
  const columns = Number(values["gather-columns"]);
  const step = () =>
    tidy(() => {
      for (const d of dims)
        for (let c = 0; c < columns; c++) {
          const e = randn([batch, d]).requiresGrad_(true); // (B, d): one candidate column at one dim
          pg.allGatherWithGrad(e).sum().backward(); // (W·B, d) forward, reduce-scatter backward
        }
    });
  step(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    pg.barrier();
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return (
    `gather-across-devices per step (batch ${batch} per rank, ${columns} candidate column(s), dims ${dims.join("/")}: ` +
    `${dims.length * columns} all-gathers + their backward): median ${median.toFixed(1)} ms ` +
    `(min ${times[0]!.toFixed(1)}, max ${times[times.length - 1]!.toFixed(1)})`
  );
}

if (process.env.RANK === undefined) await launcher();
else worker();
