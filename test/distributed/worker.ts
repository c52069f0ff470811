// One rank of a test/distributed scenario: `node --import tsx worker.ts <scenario>` under the torchrun variables
// (set by launch-ranks.ts). Prints one JSON line {"ok":true,...} on success; on a TorchError it prints
// {"error": message, "ms": elapsed} and exits 3, so the tests can tell "failed cleanly" from a crash or a hang.
import assert from "node:assert/strict";
import {
  arange,
  cat,
  crossEntropy,
  manualSeed,
  matmul,
  randn,
  tensor,
  Tensor,
  TorchError,
} from "../../src/engine/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";

const scenario = process.argv[2] ?? "";
let t0 = Date.now(); // reset once joined: the failure tests time the collective, not the start-up

function values(t: Tensor): number[] {
  return Array.from(t.toArray() as Float64Array | Float32Array, Number);
}

// The tensors rank r contributes: three shapes so that a small bucket cap gives several buckets.
function contribution(r: number): Tensor[] {
  return [
    tensor([1 + r, 2 * r, -3], { dtype: "float64" }),
    arange(0, 6, 1, { dtype: "float64" })
      .reshape([2, 3])
      .mul(r + 1), // (2, 3)
    tensor([[0.5 * r]], { dtype: "float64" }),
  ];
}

// MNRL-style loss of anchors against candidates with the diagonal as positives.
function mnrl(anchors: Tensor, candidates: Tensor, offset: number): Tensor {
  const scores = matmul(anchors, candidates.transpose(0, 1)).mul(20); // (B, N)
  const labels = arange(offset, offset + anchors.size(0)); // (B)
  return crossEntropy(scores, labels);
}

const scenarios: Record<string, (pg: ProcessGroup) => Record<string, unknown>> = {
  collectives(pg) {
    const n = pg.worldSize;
    for (const bucketBytes of [16, 1 << 20]) {
      for (const op of ["sum", "avg"] as const) {
        const mine = contribution(pg.rank);
        pg.allReduce(mine, { op, bucketBytes });
        const expected = contribution(0).map((t, i) => {
          let acc = t;
          for (let r = 1; r < n; r++) acc = acc.add(contribution(r)[i]!);
          return op === "avg" ? acc.div(n) : acc;
        });
        mine.forEach((t, i) =>
          assert.deepEqual(values(t), values(expected[i]!), `${op} bucket ${bucketBytes}`),
        );
      }
    }
    const b = contribution(pg.rank);
    pg.broadcast(b, n - 1, 8);
    b.forEach((t, i) => assert.deepEqual(values(t), values(contribution(n - 1)[i]!), "broadcast"));
    const gathered = pg.allGather(contribution(pg.rank)[1]!);
    assert.equal(gathered.length, n);
    gathered.forEach((t, r) => assert.deepEqual(values(t), values(contribution(r)[1]!), "allGather"));
    assert.deepEqual(pg.meanOverRanks([pg.rank, 1]), [(n - 1) / 2, 1]);
    assert.equal(pg.anyRank(pg.rank === n - 1), true);
    assert.equal(pg.anyRank(false), false);
    assert.deepEqual(
      pg.allGatherNumbers([pg.rank, 0.5]),
      Array.from({ length: n }, (_, r) => [r, 0.5]),
    );
    pg.assertSameOnRanks("the seed", [42, 3]);
    assert.throws(
      () => pg.assertSameOnRanks("the data size", [pg.rank === 0 ? 10 : 11]),
      (e: unknown) => {
        return (
          e instanceof TorchError &&
          /ranks disagree on the data size: rank 0 has \[10\], rank 1 has \[11\]/.test(e.message)
        );
      },
    );
    pg.barrier();
    return {};
  },

  // Per-rank MNRL over gathered candidates + averaged gradients == single-process MNRL over the global batch.
  gatherGrad(pg) {
    const rows = 4;
    manualSeed(7);
    const x = randn([pg.worldSize * rows, 5], { dtype: "float64" }); // (N, 5) the global batch
    const w0 = randn([5, 5], { dtype: "float64" }); // (5, 5) the shared "model"

    const wRef = w0.clone().requiresGrad_(true);
    const eAll = matmul(x, wRef); // (N, 5)
    const refLoss = mnrl(eAll, eAll, 0);
    refLoss.backward();

    const w = w0.clone().requiresGrad_(true);
    const e = matmul(x.narrow(0, pg.rank * rows, rows), w); // (rows, 5) this rank's shard
    const all = pg.allGatherWithGrad(e); // (N, 5)
    const loss = mnrl(e, all, pg.rank * rows);
    loss.backward();
    pg.allReduceGradients([w]);
    const [meanLoss] = pg.meanOverRanks([loss.item()]);
    const gradDiff = w.grad!.sub(wRef.grad!).abs().max().item();
    // Without the reduce-scatter backward (local rows only) the gradient differs: check the test can fail.
    const wLocal = w0.clone().requiresGrad_(true);
    const eLocal = matmul(x.narrow(0, pg.rank * rows, rows), wLocal); // (rows, 5)
    const parts = pg.allGather(eLocal);
    parts[pg.rank] = eLocal;
    mnrl(eLocal, cat(parts), pg.rank * rows).backward();
    pg.allReduceGradients([wLocal]);
    const localOnlyDiff = wLocal.grad!.sub(wRef.grad!).abs().max().item();
    return { lossDiff: Math.abs(meanLoss! - refLoss.item()), gradDiff, localOnlyDiff };
  },

  // Rank 1 dies (SIGKILL) right after joining; rank 0's next collective must fail, not hang.
  killPeer(pg) {
    if (pg.rank === 1) process.kill(process.pid, "SIGKILL");
    pg.allReduce([tensor([1, 2, 3])]);
    return {};
  },

  // Rank 1 stays alive but never joins the collective: rank 0 fails at the timeout.
  silentPeer(pg) {
    if (pg.rank === 1) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 8_000); // past rank 0's timeout
      return {};
    }
    pg.allReduce([tensor([1, 2, 3])]);
    return {};
  },

  // Ranks pass different shapes: both fail with a message naming both.
  mismatch(pg) {
    pg.allReduce([tensor(pg.rank === 0 ? [1, 2, 3, 4] : [1, 2, 3, 4, 5])]);
    return {};
  },

  // Only used with a WORLD_SIZE larger than the number of processes: joining must fail at the timeout.
  join() {
    return {};
  },
};

const run = scenarios[scenario];
if (!run) {
  process.stderr.write(`unknown scenario "${scenario}"\n`);
  process.exit(2);
}
let pg: ProcessGroup | null = null;
try {
  pg = ProcessGroup.fromEnv();
  if (!pg) throw new Error("the torchrun variables are not set");
  t0 = Date.now();
  const result = run(pg);
  process.stdout.write(JSON.stringify({ ok: true, rank: pg.rank, ...result }) + "\n");
  pg.destroy();
  process.exit(0);
} catch (e) {
  if (!(e instanceof TorchError)) throw e;
  process.stdout.write(JSON.stringify({ error: e.message, ms: Date.now() - t0 }) + "\n");
  process.exit(3);
}
