import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  FileWriteError,
  appendFileNoFollow,
  formatDuration,
  isPlainObject,
  writeFileAtomic,
  writeJsonAtomic,
} from "../../src/util/index.ts";

const fresh = (): string => mkdtempSync(join(tmpdir(), "ragtune-util-"));

test("writeFileAtomic writes, replaces and leaves no temporary file", () => {
  const dir = fresh();
  const p = join(dir, "sub", "a.json");
  writeJsonAtomic(p, { a: 1 });
  assert.equal(readFileSync(p, "utf8"), '{\n  "a": 1\n}\n');
  writeFileAtomic(p, new Uint8Array([104, 105]));
  assert.equal(readFileSync(p, "utf8"), "hi");
  assert.deepEqual(readdirSync(join(dir, "sub")), ["a.json"]);
});

test("writeFileAtomic replaces a planted symlink instead of writing through it", () => {
  const dir = fresh();
  const target = join(dir, "victim.txt");
  writeFileSync(target, "precious");
  symlinkSync(target, join(dir, "config.json"));
  writeFileAtomic(join(dir, "config.json"), "new");
  assert.equal(readFileSync(target, "utf8"), "precious");
  assert.equal(readFileSync(join(dir, "config.json"), "utf8"), "new");
});

test("a writer that throws leaves the old file and no temporary", () => {
  const dir = fresh();
  const p = join(dir, "w.bin");
  writeFileAtomic(p, "old");
  assert.throws(
    () =>
      writeFileAtomic(p, () => {
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.equal(readFileSync(p, "utf8"), "old");
  assert.deepEqual(readdirSync(dir), ["w.bin"]);
});

test("errors name the file", () => {
  const dir = fresh();
  writeFileSync(join(dir, "file"), "x");
  assert.throws(
    () => writeFileAtomic(join(dir, "file", "under-a-file.json"), "x"),
    (e: unknown) => e instanceof FileWriteError && e.message.includes(join(dir, "file")),
  );
});

test("appendFileNoFollow appends, and refuses a symlink", () => {
  const dir = fresh();
  const log = join(dir, "training_log.jsonl");
  appendFileNoFollow(log, "a\n");
  appendFileNoFollow(log, "b\n");
  assert.equal(readFileSync(log, "utf8"), "a\nb\n");
  const target = join(dir, "victim");
  writeFileSync(target, "precious");
  symlinkSync(target, join(dir, "link.jsonl"));
  assert.throws(() => appendFileNoFollow(join(dir, "link.jsonl"), "x\n"), /symbolic link/);
  assert.equal(readFileSync(target, "utf8"), "precious");
  assert.ok(existsSync(log));
});

test("isPlainObject and formatDuration", () => {
  assert.equal(isPlainObject({}), true);
  assert.equal(isPlainObject(Object.create(null)), true);
  assert.equal(isPlainObject([]), false);
  assert.equal(isPlainObject(null), false);
  assert.equal(isPlainObject(new Date()), false);
  assert.equal(formatDuration(7.4), "7s");
  assert.equal(formatDuration(245), "4:05");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(NaN), "?");
});
