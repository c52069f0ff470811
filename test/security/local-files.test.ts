// Untrusted local model folders (issue #16 items 4, 5, 7): every model file must be a regular file within its
// size bound (FIFOs, devices, folders fail at once, naming the file), errors never quote a file, and config
// sanity checks (pooling modes, embedding_dimension, vocabulary size) fail before anything large is built.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { BertConfig } from "../../src/models/bert.ts";
import { SafetensorsFile } from "../../src/models/safetensors.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { readStFolder } from "../../src/models/st-folder.ts";
import { HfTokenizer } from "../../src/tokenize/tokenizer.ts";
import { editJson, tinyModelCopy } from "../helpers/tiny-model.ts";

/** Replaces `file` with a FIFO (nobody ever writes to it: a blocking open would hang the test). */
function fifoAt(file: string): void {
  rmSync(file, { force: true, recursive: true });
  execFileSync("mkfifo", [file]);
}

/** Runs `f` with environment variables set, restoring them after. */
function withEnv<T>(vars: Record<string, string>, f: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return f();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const quick = (f: () => unknown, re: RegExp) => {
  const t0 = Date.now();
  assert.throws(f, re);
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
};

describe("special files in a model folder", () => {
  for (const name of ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]) {
    test(`a FIFO as ${name} is an error naming it, not a hang`, () => {
      const dir = tinyModelCopy();
      fifoAt(join(dir, name));
      quick(
        () => HfTokenizer.fromDir(dir),
        new RegExp(`${name.replace(".", "\\.")}: is a FIFO \\(named pipe\\), not a regular file`),
      );
    });
  }
  test("tokenizer.json → /dev/zero is refused before reading a byte", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "tokenizer.json"));
    symlinkSync("/dev/zero", join(dir, "tokenizer.json"));
    quick(() => HfTokenizer.fromDir(dir), /tokenizer\.json: is a character device, not a regular file/);
  });
  test("a FIFO as model.safetensors is an error naming it", () => {
    const dir = tinyModelCopy();
    fifoAt(join(dir, "model.safetensors"));
    quick(() => SafetensorsFile.open(join(dir, "model.safetensors")), /model\.safetensors: is a FIFO/);
    quick(() => SentenceTransformer.fromDir(dir), /model\.safetensors: is a FIFO/);
  });
  test("a non-regular modules.json is an error, not a silent plain-transformers fallback", () => {
    const dir = tinyModelCopy();
    fifoAt(join(dir, "modules.json"));
    quick(() => readStFolder(dir), /modules\.json: is a FIFO/);
    rmSync(join(dir, "modules.json"));
    mkdirSync(join(dir, "modules.json"));
    quick(() => readStFolder(dir), /modules\.json: is a directory, not a regular file/);
  });
  test("a modules.json that loops (symlink to itself) is reported as such", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "modules.json"));
    symlinkSync("modules.json", join(dir, "modules.json"));
    quick(
      () => readStFolder(dir),
      /modules\.json: cannot be read: too many levels of symbolic links \(ELOOP\)/,
    );
  });
  test("ragtune encode on a folder without modules.json prints which pooling it assumed", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "modules.json"));
    const bin = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));
    const r = spawnSync(process.execPath, [bin, "encode", "--model", dir], {
      input: "hello\n",
      encoding: "utf8",
      env: { ...process.env, RAGTUNE_DEBUG: "" },
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: .*: no modules\.json, so not a sentence-transformers model; using the transformer with mean pooling/,
    );
  });
  test("a folder without modules.json warns which pooling it assumed", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "modules.json"));
    const spec = readStFolder(dir);
    assert.ok(
      spec.warnings.some((w) => /no modules\.json.*with mean pooling/.test(w)),
      spec.warnings.join("\n"),
    );
  });
});

describe("size bounds (per file type, overridable)", () => {
  test("a config over RAGTUNE_MAX_CONFIG_BYTES names the file, its size and the variable", () => {
    const dir = tinyModelCopy();
    withEnv({ RAGTUNE_MAX_CONFIG_BYTES: "64" }, () =>
      quick(
        () => readStFolder(dir),
        /modules\.json: \d+ bytes is larger than the 64-byte bound for a JSON config file; if the file is genuine, raise RAGTUNE_MAX_CONFIG_BYTES/,
      ),
    );
  });
  test("a huge vocab.txt fails fast on its size bound (default 16 MiB)", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "tokenizer.json"));
    writeFileSync(join(dir, "vocab.txt"), "tok\n".repeat(4_500_000)); // 18 MB, 4.5M lines
    quick(
      () => HfTokenizer.fromDir(dir),
      /vocab\.txt: 18000000 bytes is larger than the 16777216-byte bound .*RAGTUNE_MAX_VOCAB_BYTES/,
    );
    quick(() => readStFolder(dir), /vocab\.txt: 18000000 bytes is larger/);
  });
  test("an oversized tokenizer.json and weights file are refused by their bounds", () => {
    const dir = tinyModelCopy();
    withEnv({ RAGTUNE_MAX_TOKENIZER_BYTES: "1000", RAGTUNE_MAX_WEIGHTS_BYTES: "1000" }, () => {
      quick(
        () => HfTokenizer.fromDir(dir),
        /tokenizer\.json: \d+ bytes is larger than the 1000-byte bound.*RAGTUNE_MAX_TOKENIZER_BYTES/,
      );
      quick(() => SafetensorsFile.open(join(dir, "model.safetensors")), /RAGTUNE_MAX_WEIGHTS_BYTES/);
    });
  });
  test("tokenizer.json read for its truncation length gets the tokenizer bound, not the config one", () => {
    const dir = tinyModelCopy();
    for (const f of ["sentence_bert_config.json", "tokenizer_config.json"])
      rmSync(join(dir, f), { force: true });
    editJson(join(dir, "config.json"), (o) => {
      delete o.max_position_embeddings;
    });
    editJson(join(dir, "tokenizer.json"), (o) => {
      o.truncation = { direction: "Right", max_length: 77, strategy: "LongestFirst", stride: 0 };
    });
    const spec = withEnv({ RAGTUNE_MAX_CONFIG_BYTES: "100000" }, () => readStFolder(dir));
    assert.equal(spec.maxSeqLength, 77);
  });
  test("a bad bound value is an error", () => {
    const dir = tinyModelCopy();
    withEnv({ RAGTUNE_MAX_CONFIG_BYTES: "-1" }, () =>
      assert.throws(() => readStFolder(dir), /RAGTUNE_MAX_CONFIG_BYTES must be a positive integer/),
    );
  });
});

describe("errors never quote a file", () => {
  const secret = "root:x:0:0:root:/root:/bin/bash\n";
  for (const rel of [
    "modules.json",
    "1_Pooling/config.json",
    "config.json",
    "tokenizer_config.json",
    "tokenizer.json",
  ]) {
    test(rel, () => {
      const dir = tinyModelCopy();
      writeFileSync(join(dir, rel), secret);
      const loaders = [
        () => readStFolder(dir),
        () => HfTokenizer.fromDir(dir),
        () => BertConfig.load(join(dir, "config.json")),
      ];
      let failed = 0;
      for (const load of loaders) {
        try {
          load();
        } catch (e) {
          failed++;
          const msg = (e as Error).message;
          assert.ok(!msg.includes("root:x"), msg);
          assert.ok(msg.includes(join(dir, rel)) || msg.includes(rel), msg);
        }
      }
      assert.ok(failed > 0);
    });
  }
});

test("safetensors header and index errors never quote the file", () => {
  const dir = tinyModelCopy();
  const secret = Buffer.from("root:x:0:0:root:/root:/bin/bash\n");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(secret.length));
  writeFileSync(join(dir, "model.safetensors"), Buffer.concat([len, secret]));
  assert.throws(
    () => SafetensorsFile.open(join(dir, "model.safetensors")),
    (e: Error) =>
      /header must start with '\{', got character U\+0072/.test(e.message) && !e.message.includes("root:x"),
  );
  const brace = Buffer.from("{root:x:0:0:root:/root:/bin/sh}\n");
  writeFileSync(join(dir, "model.safetensors"), Buffer.concat([len, brace]));
  assert.throws(
    () => SafetensorsFile.open(join(dir, "model.safetensors")),
    (e: Error) => /header is not valid JSON/.test(e.message) && !e.message.includes("root:x"),
  );
  rmSync(join(dir, "model.safetensors"));
  writeFileSync(join(dir, "model.safetensors.index.json"), secret);
  assert.throws(
    () => SentenceTransformer.fromDir(dir),
    (e: Error) => /index is not valid JSON/.test(e.message) && !e.message.includes("root:x"),
  );
});

describe("config sanity", () => {
  test("pooling_mode: a repeated mode is refused (no 100,000 × mean amplification)", () => {
    const dir = tinyModelCopy();
    const file = join(dir, "1_Pooling", "config.json");
    writeFileSync(
      file,
      JSON.stringify({ embedding_dimension: 32, pooling_mode: Array(100_000).fill("mean") }),
    );
    quick(() => readStFolder(dir), /1_Pooling\/config\.json: "pooling_mode": duplicate pooling mode "mean"/);
    writeFileSync(file, JSON.stringify({ embedding_dimension: 32, pooling_mode: ["mean", "cls", "mean"] }));
    assert.throws(() => readStFolder(dir), /duplicate pooling mode "mean"/);
  });
  test("embedding_dimension must equal the transformer's hidden_size", () => {
    const dir = tinyModelCopy();
    editJson(join(dir, "1_Pooling", "config.json"), (o) => {
      o.word_embedding_dimension = 4096;
    });
    assert.throws(
      () => readStFolder(dir),
      /1_Pooling\/config\.json: "embedding_dimension": 4096, but the transformer outputs hidden_size 32 values/,
    );
  });
  test("a vocab.txt with more tokens than embedding rows fails before the tokenizer is built", () => {
    const dir = tinyModelCopy();
    rmSync(join(dir, "tokenizer.json"));
    editJson(join(dir, "config.json"), (o) => {
      o.vocab_size = 1000;
    });
    assert.throws(
      () => readStFolder(dir),
      /vocab\.txt: 30522 tokens, but the embedding matrix has 1000 rows \(vocab_size in/,
    );
  });
  test("a tokenizer.json with ids past the embedding matrix is refused at load", () => {
    const dir = tinyModelCopy();
    editJson(join(dir, "tokenizer.json"), (o) => {
      (o.added_tokens as unknown[]).push({
        id: 40000,
        content: "[NEW]",
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      });
    });
    assert.throws(
      () => SentenceTransformer.fromDir(dir),
      /tokenizer\.json: 40001 token ids, but the embedding matrix has 30522 rows/,
    );
  });
});

describe("Pooling module config", () => {
  test("duplicate or unknown modes and a bad dimension are refused", async () => {
    const { Pooling } = await import("../../src/models/pooling.ts");
    assert.throws(
      () => new Pooling({ embeddingDimension: 4, modes: ["mean", "mean"], includePrompt: true }),
      /duplicate pooling mode "mean"/,
    );
    assert.throws(
      () => new Pooling({ embeddingDimension: 4, modes: ["avg" as "mean"], includePrompt: true }),
      /unknown pooling mode "avg"/,
    );
    assert.throws(
      () => new Pooling({ embeddingDimension: 0, modes: ["mean"], includePrompt: true }),
      /positive integer/,
    );
  });
});
