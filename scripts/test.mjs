#!/usr/bin/env node
// The one test command (`npm test`): build the addon if it is missing or stale, type-check, lint, then run
// every test file under test/ with node's built-in runner (its summary is what CI reads).
// Flags: --no-lint (skip eslint/prettier), --slow (also run tests tagged slow via RAGTUNE_SLOW=1),
// any other argument is a test-file filter (substring of the path).
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { bootstrap } from "./bootstrap.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const lint = !args.includes("--no-lint");
const filters = args.filter((a) => !a.startsWith("--"));
const env = { ...process.env };
if (args.includes("--slow")) env.RAGTUNE_SLOW = "1";

function run(cmd, cmdArgs) {
  console.error(`$ ${cmd} ${cmdArgs.join(" ")}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: "inherit", env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith(".test.ts")) out.push(relative(root, p));
  }
  return out;
}

try {
  bootstrap(); // libtorch (apt), node_modules (npm ci), the native addon: whatever is missing
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
run(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--noEmit"]);
if (lint && filters.length === 0) {
  run(process.execPath, ["node_modules/eslint/bin/eslint.js", "."]);
  run(process.execPath, ["node_modules/prettier/bin/prettier.cjs", "--check", "."]);
}
const files = testFiles(join(root, "test")).filter(
  (f) => filters.length === 0 || filters.some((s) => f.includes(s)),
);
run(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files]);
