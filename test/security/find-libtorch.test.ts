// libtorch discovery must not trust the current folder (issue #16 item 6): a `torch/` package planted there, or a
// `python3` planted there and reachable through a relative PATH entry, is never used; only LIBTORCH / TORCH_DIR
// may name a library in the current folder.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

// @ts-expect-error: a plain .mjs script without type declarations
import { findLibtorch, whichAbsolute } from "../../scripts/find-libtorch.mjs";

const scratch = mkdtempSync(join(tmpdir(), "ragtune-find-torch-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder that passes find-libtorch's checks for a libtorch root. */
function plantTorch(root: string): void {
  const api = join(root, "include", "torch", "csrc", "api", "include", "torch");
  mkdirSync(api, { recursive: true });
  writeFileSync(join(api, "torch.h"), "");
  writeFileSync(
    join(api, "version.h"),
    "#define TORCH_VERSION_MAJOR 9\n#define TORCH_VERSION_MINOR 9\n#define TORCH_VERSION_PATCH 9\n",
  );
  mkdirSync(join(root, "lib"), { recursive: true });
  writeFileSync(join(root, "lib", "libtorch.so"), "");
  writeFileSync(join(root, "__init__.py"), "");
}

function inFolder<T>(dir: string, f: () => T): T {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return f();
  } finally {
    process.chdir(cwd);
  }
}

const hasPython = whichAbsolute("python3") !== undefined;

test("a torch/ package in the current folder is not picked up", { skip: !hasPython && "no python3" }, () => {
  const dir = join(scratch, "planted-torch");
  plantTorch(join(dir, "torch"));
  const found = inFolder(dir, () => {
    try {
      return findLibtorch({ PATH: process.env.PATH });
    } catch {
      return undefined; // no libtorch on this machine at all: fine, the planted one was not taken either
    }
  }) as { source: string; version: { string: string } } | undefined;
  assert.notEqual(found?.version.string, "9.9.9", JSON.stringify(found));
});

test("a python3 in the current folder is not run through a relative PATH entry", () => {
  const dir = join(scratch, "planted-python");
  mkdirSync(dir, { recursive: true });
  const marker = join(dir, "ran");
  writeFileSync(join(dir, "python3"), `#!/bin/sh\ntouch ${JSON.stringify(marker)}\n`);
  chmodSync(join(dir, "python3"), 0o755);
  inFolder(dir, () => {
    try {
      findLibtorch({ PATH: `.:${process.env.PATH ?? ""}`, RAGTUNE_PYTHON: "python3" });
    } catch {
      // no libtorch here: fine
    }
  });
  assert.equal(existsSync(marker), false);
  assert.equal(whichAbsolute("python3", { PATH: "." }), undefined);
});

test("LIBTORCH may still name a library in the current folder", () => {
  const dir = join(scratch, "explicit");
  plantTorch(join(dir, "libtorch"));
  const found = inFolder(dir, () => findLibtorch({ LIBTORCH: join(dir, "libtorch") })) as {
    version: { string: string };
  };
  assert.equal(found.version.string, "9.9.9");
});
