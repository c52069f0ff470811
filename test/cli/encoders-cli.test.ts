// `ragtune create-model --architecture` and `ragtune encode` for the non-BERT encoders: a random XLM-RoBERTa
// (Unigram tokenizer) and ModernBERT (byte-level BPE) made by the CLI, and `encode` on the golden MPNet folder,
// whose vectors must be what SentenceTransformer.encode gives in process.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { ragtune as runCli } from "../helpers/run-cli.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-encoders-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

const ragtune = (args: string[], input = "") => runCli(args, { input, threads: "env" });

/** `ragtune encode --model dir` of texts vs SentenceTransformer.fromDir(dir).encode. */
async function encodeMatches(dir: string, texts: string[]): Promise<void> {
  const r = await ragtune(["encode", "--model", dir], texts.join("\n") + "\n");
  assert.equal(r.code, 0, r.stderr);
  const got = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as number[]);
  const m = SentenceTransformer.fromDir(dir);
  const want = m.encode(texts);
  m.dispose();
  assert.equal(got.length, texts.length);
  got.forEach((row, i) =>
    row.forEach((v, j) =>
      assert.ok(Math.abs(v - want.data[i * want.dim + j]!) <= 1e-6, `text ${i} dim ${j}`),
    ),
  );
}

describe("create-model --architecture and encode", () => {
  for (const [arch, vocab, name, texts] of [
    ["xlm-roberta", "unigram-tiny", "XLM-RoBERTa", ["Hello world", "Привет мир"]],
    ["modernbert", "bpe-tiny", "ModernBERT", ["Hello the world", "café"]],
  ] as const) {
    test(`${arch}: create-model writes a folder that loads as ${name} and encodes`, async () => {
      const out = join(work, arch);
      const r = await ragtune([
        "create-model",
        "--architecture",
        arch,
        "--layers",
        "1",
        "--hidden",
        "16",
        "--heads",
        "2",
        "--intermediate",
        "32",
        "--max-position",
        "66",
        "--vocab",
        join(FIXTURES, "tokenizers", vocab),
        "--pooling",
        "mean",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`created .*${name} 1×16, 2 heads`));
      const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
      assert.equal(config.model_type, arch);
      const m = SentenceTransformer.fromDir(out);
      // XLM-R counts positions from padding_idx + 1 = 2: 66 rows hold 64 tokens; ModernBERT (RoPE) all 66.
      assert.equal(m.maxSeqLength, arch === "xlm-roberta" ? 64 : 66);
      m.dispose();
      await encodeMatches(out, [...texts]);
    });
  }

  test("mpnet: create-model refuses a tokenizer that does not pad with id 1", async () => {
    const r = await ragtune([
      "create-model",
      "--architecture",
      "mpnet",
      "--vocab",
      join(FIXTURES, "tokenizers", "bpe-tiny"),
      "--out",
      join(work, "bad"),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /MPNet pads with id 1/);
  });

  test("encode on the golden MPNet folder gives SentenceTransformer.encode's vectors", async () => {
    await encodeMatches(join(FIXTURES, "mpnet", "st"), ["Hello, World!", "unaffable"]);
  });
});
