// One rank of a data-parallel training test: `node --import tsx train-worker.ts <scenario> <out> <results>`
// under the torchrun variables. Trains the fixture (train-fixture.ts) with the group, then writes its parameters
// and the losses it saw logged to <results>/rank<r>.{f32,json}.
//   ddp       — 2 ranks × 8 pairs, 3 steps
//   fail      — rank 1 throws at its second micro-batch (the launcher must stop rank 0 and exit non-zero)
//   mismatch  — rank 1 has one pair fewer (assertSameOnRanks must stop both at the start)
//   stop      — the ddp run stopped after step 2 (its checkpoint-2 written), as if killed there
//   resume    — resumes that run from --resume latest on both ranks and finishes it
//   nan       — rank 1's weights turn NaN before step 2: both ranks must stop at step 2 (each writes
//               rank<r>.error.txt and exits 0, so the launcher does not stop the other rank first)
//   gather-mnrl, gather-cached, gather-gist, nogather-mnrl, …
//             — one step of 2 ranks × 16 pairs, MatryoshkaLoss over MNRL, cached MNRL or GIST, with or without
//               --gather-across-devices (GATHER_ARGS)
//   gstop     — 2 ranks × 8 pairs gathered (= one process × 16), stopped after step 2; rank 1 draws from its
//               generator at each micro-batch, so the ranks' random states differ; each writes rank<r>.rng
//   gresume   — resumes the folder (from any world size) with the gather; each writes its random state at its
//               first micro-batch to rank<r>.rng
//   rank<r>.json also lists the rows of every micro-batch the rank trained ("rows").

import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { ProcessGroup } from "../../src/distributed/index.ts";
import { getRngState, noGrad, randn, setNumThreads } from "../../src/engine/index.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { ddpArgs, GATHER_ARGS, RESUME_ARGS, ROWS, tinyModel, writeParams } from "./train-fixture.ts";

setNumThreads(1);
const [scenario, outDir, results] = process.argv.slice(2) as [string, string, string];
const pg = ProcessGroup.fromEnv({ backend: "gloo" })!;
const model = tinyModel();
const losses: number[] = [];
const trained: number[][] = [];
let micro = 0;
let rngAtStart: Uint8Array | null = null;
const cpuRng = () => {
  using s = getRngState("cpu");
  return (s.toArray() as Uint8Array).slice();
};
try {
  const rows = scenario === "mismatch" && pg.rank === 1 ? ROWS.slice(1) : ROWS;
  const result = train({
    model,
    train: rows,
    args: ddpArgs(outDir, {
      ...(scenario === "resume" ? { resumeFromCheckpoint: "latest" } : {}),
      ...(GATHER_ARGS[scenario] ?? {}),
      ...(scenario === "gstop" || scenario === "gresume" ? RESUME_ARGS : {}),
      ...(scenario === "gresume" ? { resumeFromCheckpoint: "latest" } : {}),
    }),
    ...(scenario === "stop" || scenario === "gstop" ? { stopAfterSteps: 2 } : {}),
    processGroup: pg,
    ...(GATHER_ARGS[scenario]?.loss === "gist" ? { guide: tinyModel() } : {}),
    verbose: pg.rank === 0,
    onLog: (e: LogEntry) => {
      if (typeof e.loss === "number") losses.push(e.loss);
    },
    onMicroBatch: (batch) => {
      trained.push([...batch]);
      rngAtStart ??= cpuRng();
      if (scenario === "gstop" && pg.rank === 1) randn([3]).dispose();
      micro++;
      if (scenario === "fail" && pg.rank === 1 && micro === 2) throw new Error("rank 1 fails on purpose");
      if (scenario === "nan" && pg.rank === 1 && micro === 2)
        noGrad(() => model.trainableParameters()[0]!.fill_(NaN));
    },
  });
  writeParams(join(results, `rank${pg.rank}.f32`), model);
  if (scenario === "gstop") writeFileSync(join(results, `rank${pg.rank}.rng`), cpuRng());
  if (scenario === "gresume") writeFileSync(join(results, `rank${pg.rank}.rng`), rngAtStart!);
  writeFileSync(
    join(results, `rank${pg.rank}.json`),
    JSON.stringify({
      losses,
      globalStep: result.globalStep,
      logged: result.logHistory.length,
      rows: trained,
    }),
  );
} catch (e) {
  if (scenario !== "nan") throw e;
  writeFileSync(join(results, `rank${pg.rank}.error.txt`), (e as Error).message);
} finally {
  pg.destroy();
}
