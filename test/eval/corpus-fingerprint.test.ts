// The corpus record of results files: the same passages in any order give the same fingerprint; another
// passage, a duplicate, or texts that concatenate alike do not; a malformed record fails naming the file.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  corpusFingerprint,
  corpusMismatch,
  readCorpusFingerprint,
} from "../../src/eval/corpus-fingerprint.ts";

test("corpusFingerprint: order-free, sensitive to content, duplicates and boundaries", () => {
  const a = corpusFingerprint(["revenue was 3", "net income fell", "risk factors"]);
  assert.equal(a.size, 3);
  assert.match(a.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(corpusFingerprint(["risk factors", "revenue was 3", "net income fell"]), a);
  assert.notEqual(corpusFingerprint(["revenue was 4", "net income fell", "risk factors"]).sha256, a.sha256);
  assert.notEqual(corpusFingerprint(["ab", "c"]).sha256, corpusFingerprint(["a", "bc"]).sha256);
  const dup = corpusFingerprint(["x", "x"]);
  assert.equal(dup.size, 2);
  assert.notEqual(dup.sha256, corpusFingerprint(["x"]).sha256);
});

test("readCorpusFingerprint and corpusMismatch", () => {
  const c = corpusFingerprint(["p"]);
  assert.deepEqual(readCorpusFingerprint({ metrics: {}, corpusFingerprint: c }, "r.json"), c);
  assert.equal(readCorpusFingerprint({ eval_x: 1 }, "r.json"), null);
  assert.throws(
    () => readCorpusFingerprint({ corpusFingerprint: { size: 1, sha256: "abc" } }, "r.json"),
    /^Error: r\.json: corpusFingerprint: expected \{ size: integer, sha256: 64 hex digits \}/,
  );
  assert.equal(corpusMismatch({ file: "a", corpus: c }, { file: "b", corpus: { ...c } }), null);
  const other = corpusFingerprint(["p", "q"]);
  assert.match(
    corpusMismatch({ file: "a.json", corpus: c }, { file: "b.json", corpus: other })!,
    /different corpora \(a\.json: 1 documents .*; b\.json: 2 documents/,
  );
});
