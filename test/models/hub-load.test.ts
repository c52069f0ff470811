// SentenceTransformer.load from the hub: the tiny model served by the fake hub (test/hub/fake-hub.ts, 127.0.0.1,
// random ports) under the hub's URL scheme, downloaded into a fresh Hugging Face cache, then loaded again offline
// from that cache; unknown repos give a clear error.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";

import { LocalEntryNotFoundError, RepositoryNotFoundError } from "../../src/hub/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { FakeHub, type FakeFile, type FakeRepo } from "../hub/fake-hub.ts";
import { loadTinyModel, tinyModelDir } from "../helpers/tiny-model.ts";

const REPO = "ragtune-test/tiny-st";
const SHA = "c".repeat(8) + "0123456789abcdef0123456789abcdef";
const TEXTS = ["What was the total revenue in 2023?", "", "Hello NVIDIA revenue"];

/** The tiny model's files as a hub repo (weights as an LFS file, as on the hub), plus a README to skip. */
function tinyStRepo(): FakeRepo {
  const files: FakeFile[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = `${prefix}${e.name}`;
      if (e.isDirectory()) walk(join(dir, e.name), `${path}/`);
      else
        files.push({ path, content: readFileSync(join(dir, e.name)), lfs: e.name.endsWith(".safetensors") });
    }
  };
  walk(tinyModelDir(), "");
  files.push({ path: "README.md", content: Buffer.from("# tiny-st\n"), lfs: false });
  return { id: REPO, refs: { main: SHA }, commits: { [SHA]: files } };
}

// The endpoint, token and offline mode come from the environment here (LoadOptions has no endpoint), so the
// developer's own HF_* variables are hidden during these tests and restored after.
const ENV_VARS = [
  "HF_ENDPOINT",
  "HF_HUB_OFFLINE",
  "TRANSFORMERS_OFFLINE",
  "HF_TOKEN",
  "HUGGING_FACE_HUB_TOKEN",
  "HF_TOKEN_PATH",
  "HF_HUB_DISABLE_PROGRESS_BARS",
] as const;
const saved = new Map<string, string | undefined>();
before(() => {
  for (const v of ENV_VARS) saved.set(v, process.env[v]);
});
after(() => {
  for (const [k, v] of saved) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

let hub: FakeHub;
let tmp: string;
let cacheDir: string;
let expected: Float32Array;

before(() => {
  const m = loadTinyModel();
  expected = m.encode(TEXTS).data;
  m.dispose();
});

beforeEach(async () => {
  for (const v of ENV_VARS) delete process.env[v];
  hub = await FakeHub.start([tinyStRepo()]);
  tmp = await mkdtemp(join(tmpdir(), "ragtune-hub-load-"));
  cacheDir = join(tmp, "hub");
  process.env.HF_ENDPOINT = hub.endpoint;
  process.env.HF_TOKEN_PATH = join(tmp, "no-token-file");
});

afterEach(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

function assertSameEmbeddings(m: SentenceTransformer): void {
  const got = m.encode(TEXTS).data;
  assert.equal(got.length, expected.length);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], expected[i], `element ${i}`);
}

describe("SentenceTransformer.load from the hub", () => {
  test("downloads the model's files into the HF cache layout and loads them", async () => {
    const m = await SentenceTransformer.load(REPO, { cacheDir, progress: false });
    try {
      assertSameEmbeddings(m);
    } finally {
      m.dispose();
    }
    const storage = join(cacheDir, "models--ragtune-test--tiny-st");
    assert.equal(readFileSync(join(storage, "refs", "main"), "utf8"), SHA);
    const snapshot = join(storage, "snapshots", SHA);
    for (const f of ["modules.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"])
      assert.ok(existsSync(join(snapshot, f)), `${f} is in the snapshot`);
    // The weights came from the CDN, once; every request went to 127.0.0.1.
    assert.equal(
      hub.count((r) => r.server === "cdn" && r.method === "GET"),
      1,
    );
    assert.ok(hub.requests.every((r) => r.headers.host?.startsWith("127.0.0.1:")));
  });

  test("token: false sends no token, even when HF_TOKEN is set", async () => {
    process.env.HF_TOKEN = "hf_not_valid_here"; // the fake hub answers 401 to a wrong token
    const m = await SentenceTransformer.load(REPO, { cacheDir, token: false, progress: false });
    m.dispose();
    assert.ok(hub.requests.length > 0);
    assert.ok(hub.requests.every((r) => r.headers.authorization === undefined));
  });

  test("offline afterwards (HF_HUB_OFFLINE=1, localFilesOnly, hub down) loads from the cache", async () => {
    (await SentenceTransformer.load(REPO, { cacheDir, progress: false })).dispose();
    const requests = hub.requests.length;

    process.env.HF_HUB_OFFLINE = "1";
    const offline = await SentenceTransformer.load(REPO, { cacheDir, progress: false });
    try {
      assertSameEmbeddings(offline);
    } finally {
      offline.dispose();
    }
    delete process.env.HF_HUB_OFFLINE;
    const local = await SentenceTransformer.load(REPO, { cacheDir, localFilesOnly: true, progress: false });
    local.dispose();
    assert.equal(hub.requests.length, requests, "offline loads send no request");

    await hub.close(); // the hub unreachable: the cached snapshot of refs/main is used
    const down = await SentenceTransformer.load(REPO, { cacheDir, progress: false });
    try {
      assertSameEmbeddings(down);
    } finally {
      down.dispose();
    }
    hub = await FakeHub.start([]); // for afterEach
  });

  test("an unknown repo is a clear error naming it", async () => {
    await assert.rejects(
      SentenceTransformer.load("ragtune-test/no-such-model", { cacheDir, progress: false }),
      (e: Error) => {
        assert.ok(e instanceof RepositoryNotFoundError, e.name);
        assert.match(e.message, /Repository ragtune-test\/no-such-model not found/);
        assert.match(e.message, /no local folder/);
        return true;
      },
    );
    assert.ok(!existsSync(join(cacheDir, "models--ragtune-test--no-such-model", "snapshots")));
  });

  test("offline with nothing cached says so", async () => {
    process.env.HF_HUB_OFFLINE = "1";
    await assert.rejects(SentenceTransformer.load(REPO, { cacheDir, progress: false }), (e: Error) => {
      assert.ok(e instanceof LocalEntryNotFoundError, e.name);
      assert.match(e.message, /ragtune-test\/tiny-st \(revision "main"\) is not in the cache/);
      assert.match(e.message, /HF_HUB_OFFLINE=1/);
      return true;
    });
    assert.equal(hub.requests.length, 0);
  });
});
