// One rank of a data-parallel training test: `node --import tsx train-worker.ts <scenario> <out> <results>`
// under the torchrun variables. Trains the fixture (train-fixture.ts) with the group, then writes its parameters
// and the losses it saw logged to <results>/rank<r>.{f32,json}.
//   ddp       — 2 ranks × 8 pairs, 3 steps
//   fail      — rank 1 throws at its second micro-batch (the launcher must stop rank 0 and exit non-zero)
//   mismatch  — rank 1 has one pair fewer (assertSameOnRanks must stop both at the start)

import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { ProcessGroup } from "../../src/distributed/index.ts";
import { setNumThreads } from "../../src/engine/index.ts";
import type { LogEntry } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { ddpArgs, ROWS, tinyModel, writeParams } from "./train-fixture.ts";

setNumThreads(1);
const [scenario, outDir, results] = process.argv.slice(2) as [string, string, string];
const pg = ProcessGroup.fromEnv({ backend: "gloo" })!;
const model = tinyModel();
const losses: number[] = [];
let micro = 0;
try {
  const rows = scenario === "mismatch" && pg.rank === 1 ? ROWS.slice(1) : ROWS;
  const result = train({
    model,
    train: rows,
    args: ddpArgs(outDir),
    processGroup: pg,
    verbose: pg.rank === 0,
    onLog: (e: LogEntry) => {
      if (typeof e.loss === "number") losses.push(e.loss);
    },
    onMicroBatch: () => {
      micro++;
      if (scenario === "fail" && pg.rank === 1 && micro === 2) throw new Error("rank 1 fails on purpose");
    },
  });
  writeParams(join(results, `rank${pg.rank}.f32`), model);
  writeFileSync(
    join(results, `rank${pg.rank}.json`),
    JSON.stringify({ losses, globalStep: result.globalStep, logged: result.logHistory.length }),
  );
} finally {
  pg.destroy();
}
