// The local launcher: torchrun variables that really form a group, rank-prefixed output, and a failing worker
// stopping the others with its exit code and error output shown.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { launchWorkers } from "../../src/distributed/launcher.ts";
import { Collect } from "./launch-ranks.ts";

const worker = fileURLToPath(new URL("./worker.ts", import.meta.url));
const bin = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));

const each = { timeout: 30_000 }; // per test, not per suite

describe("launchWorkers", () => {
  it(
    "gives each worker the torchrun variables: 2 workers form a gloo group and prefix their output",
    each,
    async () => {
      const out = new Collect();
      const err = new Collect();
      const r = await launchWorkers({
        nproc: 2,
        command: [process.execPath, "--import", "tsx", worker, "collectives"],
        env: { ...process.env, RAGTUNE_DIST_TIMEOUT: "10" },
        stdout: out,
        stderr: err,
      });
      assert.deepEqual(r, { exitCode: 0, failedRank: null }, err.text);
      assert.match(out.text, /^\[rank 0\] \{"ok":true,"rank":0\}$/m);
      assert.match(out.text, /^\[rank 1\] \{"ok":true,"rank":1\}$/m);
    },
  );

  it(
    "stops the other workers when one fails and exits with its code, showing its error output",
    each,
    async () => {
      const err = new Collect();
      const script =
        'if (process.env.RANK === "1") { console.error("boom on rank " + process.env.WORLD_SIZE); process.exit(7); }' +
        " setTimeout(() => {}, 60000);";
      const start = Date.now();
      const r = await launchWorkers({
        nproc: 2,
        command: [process.execPath, "-e", script],
        stdout: new Collect(),
        stderr: err,
        graceMs: 5_000,
      });
      assert.deepEqual(r, { exitCode: 7, failedRank: 1 });
      assert.ok(Date.now() - start < 15_000, "rank 0 was not stopped");
      assert.match(err.text, /rank 1 of 2 failed \(exit code 7\); the other ranks were stopped/);
      assert.match(err.text, /last error output:\n {2}boom on rank 2/);
    },
  );
});

describe("ragtune launch (CLI)", () => {
  it("runs the command on every rank and reports the failing rank's exit code", each, () => {
    const r = spawnSync(process.execPath, [bin, "launch", "--nproc-per-node", "2", "--", "no-such-command"], {
      encoding: "utf8",
      timeout: 28_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\[rank [01]\] ragtune: unknown command "no-such-command"/);
    assert.match(r.stderr, /ragtune launch: rank [01] of 2 failed \(exit code 2\)/);
  });

  it("refuses a missing command", each, () => {
    const r = spawnSync(process.execPath, [bin, "launch", "--nproc-per-node", "2"], { encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing the command to run after --/);
  });
});
