// Collectives over Gloo between 2 processes on 127.0.0.1 (worker.ts holds the per-rank code): exact results,
// the autograd all-gather against a single-process reference, and every failure mode ending in a TorchError
// within the configured timeout (launch-ranks.ts SIGKILLs a rank that outlives its deadline, so a hang fails).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { native, tensor, TorchError } from "../../src/engine/index.ts";
import { ProcessGroup, readDistributedEnv } from "../../src/distributed/index.ts";
import { freePort, launchRanks, type RankResult } from "./launch-ranks.ts";

const gloo = native.distributedInfo().gloo;
const skip = gloo ? false : `gloo not compiled in: ${native.distributedInfo().missing}`;

function show(rs: RankResult[]): string {
  return rs
    .map(
      (r) =>
        `rank ${r.rank}: code ${r.code} ${r.signal ?? ""} ${JSON.stringify(r.json)} ${r.stderr.slice(-800)}`,
    )
    .join("\n");
}

function assertOk(rs: RankResult[]): Record<string, unknown>[] {
  for (const r of rs) assert.ok(r.code === 0 && r.json?.ok === true, show(rs));
  return rs.map((r) => r.json!);
}

/** The rank failed cleanly: exit 3 after a TorchError whose message matches, within the timeout (+ grace). */
function assertCleanFailure(r: RankResult, message: RegExp, withinMs: number, all: RankResult[]): void {
  assert.equal(r.hung, false, `rank ${r.rank} hung\n${show(all)}`);
  assert.equal(r.code, 3, show(all));
  assert.match(String(r.json?.error), message);
  assert.ok(Number(r.json?.ms) < withinMs, `rank ${r.rank} failed only after ${String(r.json?.ms)} ms`);
}

// Each test is bounded on its own (the suite as a whole is not).
const each = { timeout: 30_000 };

describe("distributed collectives (gloo, 2 processes)", { skip }, () => {
  it(
    "all-reduce (sum, avg; one and several buckets), broadcast, all-gather, meanOverRanks, barrier are exact",
    each,
    async () => {
      assertOk(await launchRanks("collectives"));
    },
  );

  it(
    "allGatherWithGrad + per-rank MNRL + averaged gradients equal single-process MNRL over the global batch",
    each,
    async () => {
      const out = assertOk(await launchRanks("gatherGrad"));
      for (const o of out) {
        assert.ok(Number(o.lossDiff) < 1e-12, `mean loss over ranks differs by ${String(o.lossDiff)}`);
        assert.ok(Number(o.gradDiff) < 1e-10, `gradient differs by ${String(o.gradDiff)}`);
        // The local-rows-only gather (no reduce-scatter in backward) is measurably wrong: the check can fail.
        assert.ok(Number(o.localOnlyDiff) > 1e-3, `local-only gather gave ${String(o.localOnlyDiff)}`);
      }
    },
  );

  it("a killed peer makes the other rank's collective fail with a TorchError, not hang", each, async () => {
    const rs = await launchRanks("killPeer", { timeoutS: 10 });
    assert.equal(rs[1]!.signal, "SIGKILL", show(rs));
    assertCleanFailure(
      rs[0]!,
      /allReduce \(gloo, rank 0 of 2\) failed: .*(closed|reset|Timed out)/,
      12_000,
      rs,
    );
  });

  it("a peer that never joins the collective: TorchError at the timeout", each, async () => {
    const rs = await launchRanks("silentPeer", { timeoutS: 3 });
    assertCleanFailure(rs[0]!, /allReduce \(gloo, rank 0 of 2\) failed: .*Timed out/, 3_000 + 1_500, rs);
    assert.ok(Number(rs[0]!.json?.ms) >= 3_000, `failed before the timeout: ${String(rs[0]!.json?.ms)} ms`);
  });

  it("mismatched shapes: both ranks fail with a message naming both shapes", each, async () => {
    const rs = await launchRanks("mismatch");
    for (const r of rs)
      assertCleanFailure(r, /ranks disagree: .*4 elements.*5 elements|5 elements.*4 elements/, 10_000, rs);
  });

  it("a WORLD_SIZE larger than the ranks started: joining fails at the timeout", each, async () => {
    const rs = await launchRanks("join", { worldSize: 3, timeoutS: 3 });
    for (const r of rs)
      assertCleanFailure(r, /rendezvous|connecting the gloo group|Socket Timeout/, 12_000, rs);
  });
});

describe("the torchrun environment contract", () => {
  const base = { WORLD_SIZE: "2", RANK: "1", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "29500" };
  it("reads every variable and defaults LOCAL_* to the single-machine values", () => {
    assert.deepEqual(readDistributedEnv(base), {
      rank: 1,
      localRank: 1,
      worldSize: 2,
      localWorldSize: 2,
      masterAddr: "10.0.0.1",
      masterPort: 29500,
    });
    assert.equal(readDistributedEnv({}), null);
  });
  it("refuses a partial or inconsistent environment, naming the variable", () => {
    assert.throws(() => readDistributedEnv({ ...base, RANK: "2" }), /RANK must be an integer in \[0, 1\]/);
    assert.throws(() => readDistributedEnv({ ...base, MASTER_PORT: "x" }), /MASTER_PORT/);
    assert.throws(() => readDistributedEnv({ ...base, MASTER_ADDR: "" }), /MASTER_ADDR/);
    assert.throws(() => readDistributedEnv({ RANK: "0" }), /WORLD_SIZE is not/);
    assert.throws(
      () => readDistributedEnv({ ...base, LOCAL_RANK: "3", LOCAL_WORLD_SIZE: "2" }),
      /LOCAL_RANK/,
    );
  });
});

describe("a process group of one (in this process)", { skip }, () => {
  it("collectives are identities, the autograd gather passes the gradient through, destroy() is final", async () => {
    const pg = ProcessGroup.init({
      rank: 0,
      localRank: 0,
      worldSize: 1,
      localWorldSize: 1,
      masterAddr: "127.0.0.1",
      masterPort: await freePort(),
      timeoutMs: 10_000,
    });
    const x = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: "float64" },
    ).requiresGrad_(true); // (2, 2)
    const all = pg.allGatherWithGrad(x); // (2, 2)
    assert.deepEqual(all.toNumbers(), [1, 2, 3, 4]);
    all
      .mul(
        tensor(
          [
            [1, 10],
            [100, 1000],
          ],
          { dtype: "float64" },
        ),
      )
      .sum()
      .backward();
    assert.deepEqual(x.grad!.toNumbers(), [1, 10, 100, 1000]);
    pg.allReduceGradients([x]);
    assert.deepEqual(x.grad!.toNumbers(), [1, 10, 100, 1000]);
    const t = tensor([5, 6]);
    pg.allReduce([t], { op: "avg" });
    assert.deepEqual(t.toNumbers(), [5, 6]);
    assert.deepEqual(pg.meanOverRanks([0.25]), [0.25]);
    pg.barrier();
    pg.destroy();
    pg.destroy(); // idempotent
    assert.throws(
      () => pg.barrier(),
      (e: unknown) => e instanceof TorchError && /destroyed/.test(e.message),
    );
  });

  it("an unknown backend or a bad rank is refused before any network work", () => {
    const base = { localRank: 0, localWorldSize: 2, masterAddr: "127.0.0.1", masterPort: 1 };
    assert.throws(
      () => ProcessGroup.init({ ...base, rank: 2, worldSize: 2 }),
      (e: unknown) => e instanceof TorchError && /rank must be in \[0, worldSize\)/.test(e.message),
    );
    assert.throws(
      () => ProcessGroup.init({ ...base, rank: 0, worldSize: 2, backend: "mpi" as "gloo" }),
      /backend/,
    );
  });
});
