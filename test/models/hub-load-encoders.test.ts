// XLM-RoBERTa, MPNet and ModernBERT folders from the hub: the golden tiny folders (test/fixtures/<arch>/st)
// served by the fake hub (test/hub/fake-hub.ts, 127.0.0.1), downloaded into a fresh Hugging Face cache and loaded
// by model_type, then loaded again offline from the cache; embeddings equal those of the local folder.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { FakeHub, type FakeFile, type FakeRepo } from "../hub/fake-hub.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const ARCHS = ["xlm-roberta", "mpnet", "modernbert"] as const;
const SHA = "d".repeat(8) + "0123456789abcdef0123456789abcdef";
const TEXTS = ["Hello world", "café", "the"];

function repo(arch: string): FakeRepo {
  const files: FakeFile[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = `${prefix}${e.name}`;
      if (e.isDirectory()) walk(join(dir, e.name), `${path}/`);
      else
        files.push({ path, content: readFileSync(join(dir, e.name)), lfs: e.name.endsWith(".safetensors") });
    }
  };
  walk(join(FIXTURES, arch, "st"), "");
  return { id: `ragtune-test/tiny-${arch}`, refs: { main: SHA }, commits: { [SHA]: files } };
}

const ENV_VARS = [
  "HF_ENDPOINT",
  "HF_HUB_OFFLINE",
  "TRANSFORMERS_OFFLINE",
  "HF_TOKEN",
  "HF_TOKEN_PATH",
] as const;
const saved = new Map(ENV_VARS.map((v) => [v, process.env[v]]));
let hub: FakeHub;
let tmp: string;

before(async () => {
  for (const v of ENV_VARS) delete process.env[v];
  hub = await FakeHub.start(ARCHS.map(repo));
  tmp = await mkdtemp(join(tmpdir(), "ragtune-hub-encoders-"));
  process.env.HF_ENDPOINT = hub.endpoint;
  process.env.HF_TOKEN_PATH = join(tmp, "no-token-file");
});
after(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
  for (const [k, v] of saved) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("non-BERT encoders from the hub cache", () => {
  for (const arch of ARCHS)
    test(`${arch}: download, load by model_type, reload offline; same embeddings as the local folder`, async () => {
      const local = SentenceTransformer.fromDir(join(FIXTURES, arch, "st"));
      const want = local.encode(TEXTS).data;
      const name = local.encoder.constructor.name;
      local.dispose();
      const cacheDir = join(tmp, "hub");
      for (const localFilesOnly of [false, true]) {
        const m = await SentenceTransformer.load(`ragtune-test/tiny-${arch}`, {
          cacheDir,
          progress: false,
          localFilesOnly,
        });
        assert.equal(m.encoder.constructor.name, name);
        assert.deepEqual(m.encode(TEXTS).data, want);
        m.dispose();
      }
    });
});
