// The OpenMP / OpenBLAS wait policy (src/engine/native.ts): set before the addon loads where the user set
// nothing, because both libraries read it only once, at load. A child process checks what a fresh load sees.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { THREAD_WAIT_DEFAULTS, applyThreadWaitDefaults } from "../../src/engine/native.ts";

const ENGINE = fileURLToPath(new URL("../../src/engine/index.ts", import.meta.url));

test("applyThreadWaitDefaults sets passive waiting where the environment has nothing", () => {
  const env: NodeJS.ProcessEnv = {};
  const used = applyThreadWaitDefaults(env);
  assert.deepEqual(used, { OMP_WAIT_POLICY: "PASSIVE", OPENBLAS_THREAD_TIMEOUT: "4" });
  assert.equal(env.OMP_WAIT_POLICY, "PASSIVE");
  assert.equal(env.OPENBLAS_THREAD_TIMEOUT, "4");
  // An empty value counts as unset (as libgomp treats it).
  const empty: NodeJS.ProcessEnv = { OMP_WAIT_POLICY: "" };
  applyThreadWaitDefaults(empty);
  assert.equal(empty.OMP_WAIT_POLICY, "PASSIVE");
});

test("applyThreadWaitDefaults keeps the user's values and RAGTUNE_THREAD_WAIT=library keeps the libraries'", () => {
  const env: NodeJS.ProcessEnv = { OMP_WAIT_POLICY: "ACTIVE" };
  assert.deepEqual(applyThreadWaitDefaults(env), { OMP_WAIT_POLICY: "ACTIVE", OPENBLAS_THREAD_TIMEOUT: "4" });
  assert.equal(env.OMP_WAIT_POLICY, "ACTIVE");
  const lib: NodeJS.ProcessEnv = { RAGTUNE_THREAD_WAIT: "library" };
  assert.deepEqual(applyThreadWaitDefaults(lib), {
    OMP_WAIT_POLICY: "(library default)",
    OPENBLAS_THREAD_TIMEOUT: "(library default)",
  });
  assert.equal(lib.OMP_WAIT_POLICY, undefined);
  assert.equal(lib.OPENBLAS_THREAD_TIMEOUT, undefined);
  assert.throws(
    () => applyThreadWaitDefaults({ RAGTUNE_THREAD_WAIT: "spin" }),
    /RAGTUNE_THREAD_WAIT must be/,
  );
});

test("loading the engine sets the wait policy before the addon loads, and children inherit it", () => {
  const env = { ...process.env };
  for (const k of [...Object.keys(THREAD_WAIT_DEFAULTS), "RAGTUNE_THREAD_WAIT"]) delete env[k];
  const script =
    `const m = await import(${JSON.stringify(ENGINE)});` +
    "console.log(JSON.stringify({ settings: m.threadWaitSettings, omp: process.env.OMP_WAIT_POLICY, " +
    "blas: process.env.OPENBLAS_THREAD_TIMEOUT, threads: m.getNumThreads() }));";
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
  assert.deepEqual(out.settings, { OMP_WAIT_POLICY: "PASSIVE", OPENBLAS_THREAD_TIMEOUT: "4" });
  assert.equal(out.omp, "PASSIVE");
  assert.equal(out.blas, "4");
  assert.ok(typeof out.threads === "number" && out.threads >= 1);
});
