// End-to-end tests of src/hub against the fake hub of fake-hub.ts (127.0.0.1 only, random ports): cache layout
// identical to huggingface_hub's, cache reuse, revisions, auth and errors, offline mode, resumed and verified
// downloads, resolveModelPath.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";

import {
  EntryNotFoundError,
  hfHubDownload,
  HubIntegrityError,
  HubValidationError,
  LocalEntryNotFoundError,
  RepositoryNotFoundError,
  resolveModelPath,
  RevisionNotFoundError,
  snapshotDownload,
} from "../../src/hub/index.ts";
import {
  FakeHub,
  MODEL_BYTES,
  SHA_MAIN,
  SHA_V1,
  sha1Git,
  sha256,
  tinyModelFiles,
  tinyRepo,
} from "./fake-hub.ts";

const REPO = "ragtune-test/tiny-model";
const PRIVATE = "ragtune-test/private-model";
const STORAGE = "models--ragtune-test--tiny-model";
const MODEL_SHA = sha256(MODEL_BYTES);

let hub: FakeHub;
let cacheDir: string;
let tmp: string;
/** Options every call gets: our fake endpoint and a fresh cache; no token unless a test passes one. */
let base: { endpoint: string; cacheDir: string; token: false; progress: false };

// The developer's shell may be offline (HF_HUB_OFFLINE=1): these tests decide that per call, so hide those variables.
const OFFLINE_VARS = ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"] as const;
const savedEnv = new Map<string, string | undefined>();
before(() => {
  for (const v of OFFLINE_VARS) {
    savedEnv.set(v, process.env[v]);
    delete process.env[v];
  }
});
after(() => {
  for (const [k, v] of savedEnv) if (v !== undefined) process.env[k] = v;
});

beforeEach(async () => {
  hub = await FakeHub.start([tinyRepo(), tinyRepo(PRIVATE, true)]);
  tmp = await mkdtemp(join(tmpdir(), "ragtune-hub-"));
  cacheDir = join(tmp, "hub");
  base = { endpoint: hub.endpoint, cacheDir, token: false, progress: false };
});

afterEach(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

const storage = (...p: string[]) => join(cacheDir, STORAGE, ...p);
const isResolve = (r: { server: string; url: string }) =>
  r.server === "hub" && !r.url.startsWith("/api/models/");

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

const ST_FILES = [
  "1_Pooling/config.json",
  "README.md",
  "config.json",
  "config_sentence_transformers.json",
  "model.safetensors",
  "modules.json",
  "sentence_bert_config.json",
  "special_tokens_map.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.txt",
];

describe("snapshotDownload", () => {
  test("lays out blobs, relative symlinks and refs/main like huggingface_hub", async () => {
    const dir = await snapshotDownload(REPO, base);
    assert.equal(dir, storage("snapshots", SHA_MAIN));
    assert.deepEqual(await listFiles(dir), ST_FILES);

    // Snapshot entries are relative symlinks into blobs/, named by sha256 (LFS) or git sha1 (small files).
    assert.ok((await lstat(join(dir, "model.safetensors"))).isSymbolicLink());
    assert.equal(await readlink(join(dir, "model.safetensors")), join("..", "..", "blobs", MODEL_SHA));
    const pooling = tinyModelFiles("main").find((f) => f.path === "1_Pooling/config.json")!;
    assert.equal(
      await readlink(join(dir, "1_Pooling", "config.json")),
      join("..", "..", "..", "blobs", sha1Git(pooling.content)),
    );
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
    assert.deepEqual(await readFile(storage("blobs", MODEL_SHA)), MODEL_BYTES);
    assert.equal(await readFile(storage("refs", "main"), "utf8"), SHA_MAIN); // no trailing newline, as Python
    assert.ok(!(await readdir(storage("blobs"))).some((f) => f.endsWith(".incomplete")));

    // Never asked for: PyTorch/ONNX weights, the onnx config, .gitattributes.
    for (const f of ["pytorch_model.bin", "onnx", ".gitattributes"]) {
      assert.equal(
        hub.count((r) => r.url.includes(f)),
        0,
        f,
      );
    }
    assert.equal(
      hub.count((r) => r.server === "cdn"),
      1,
    );
  });

  test("a second call is served from the cache: one repo-info request, no file requests", async () => {
    await snapshotDownload(REPO, base);
    const before = hub.requests.length;
    const dir = await snapshotDownload(REPO, base);
    assert.equal(dir, storage("snapshots", SHA_MAIN));
    const again = hub.requests.slice(before);
    assert.deepEqual(
      again.map((r) => `${r.method} ${r.url}`),
      [`GET /api/models/${REPO}/revision/main`],
    );
  });

  test("concurrent calls download each blob once", async () => {
    const [a, b] = await Promise.all([snapshotDownload(REPO, base), snapshotDownload(REPO, base)]);
    assert.equal(a, b);
    assert.equal(
      hub.count((r) => r.server === "cdn"),
      1,
    );
    assert.deepEqual(await readFile(join(a, "model.safetensors")), MODEL_BYTES);
  });

  test("a tag resolves to its commit and is recorded in refs/", async () => {
    const dir = await snapshotDownload(REPO, { ...base, revision: "v1" });
    assert.equal(dir, storage("snapshots", SHA_V1));
    assert.equal(await readFile(storage("refs", "v1"), "utf8"), SHA_V1);
    assert.equal(JSON.parse(await readFile(join(dir, "config.json"), "utf8")).version, "v1");
    assert.ok(!existsSync(storage("refs", "main")));
  });

  test("a revision with a slash is URL-encoded and nests under refs/", async () => {
    const dir = await snapshotDownload(REPO, { ...base, revision: "refs/pr/1" });
    assert.equal(dir, storage("snapshots", SHA_V1));
    assert.equal(
      hub.count((r) => r.url === `/api/models/${REPO}/revision/refs%2Fpr%2F1`),
      1,
    );
    assert.equal(await readFile(storage("refs", "refs", "pr", "1"), "utf8"), SHA_V1);
  });

  test("a commit sha is used as is and writes no ref", async () => {
    const dir = await snapshotDownload(REPO, { ...base, revision: SHA_MAIN });
    assert.equal(dir, storage("snapshots", SHA_MAIN));
    assert.ok(!existsSync(storage("refs")));
    assert.ok(hub.requests.filter(isResolve).every((r) => r.url.includes(SHA_MAIN)));
  });

  test("allowPatterns/ignorePatterns select files with fnmatch semantics", async () => {
    const dir = await snapshotDownload(REPO, {
      ...base,
      allowPatterns: ["*.json"],
      ignorePatterns: ["onnx/"],
    });
    const files = await listFiles(dir);
    assert.ok(files.includes("1_Pooling/config.json")); // fnmatch's * crosses "/"
    assert.ok(!files.some((f) => f.startsWith("onnx/")));
    assert.ok(!files.includes("model.safetensors"));
  });
});

describe("hfHubDownload", () => {
  test("downloads one file; later calls only HEAD it (branch) or ask nothing (commit sha)", async () => {
    const p = await hfHubDownload(REPO, "config.json", base);
    assert.equal(p, storage("snapshots", SHA_MAIN, "config.json"));
    assert.equal(JSON.parse(await readFile(p, "utf8")).version, "main");
    // The small file went through the hub's relative redirect to /api/resolve-cache/.
    assert.ok(hub.count((r) => r.url.startsWith("/api/resolve-cache/")) >= 1);

    const before = hub.requests.length;
    assert.equal(await hfHubDownload(REPO, "config.json", base), p);
    assert.ok(hub.requests.slice(before).every((r) => r.method === "HEAD"));

    const n = hub.requests.length;
    assert.equal(await hfHubDownload(REPO, "config.json", { ...base, revision: SHA_MAIN }), p);
    assert.equal(hub.requests.length, n);
  });

  test("a missing file is an EntryNotFoundError naming file, repo and revision, cached in .no_exist", async () => {
    await assert.rejects(hfHubDownload(REPO, "missing.json", base), (e: Error) => {
      assert.ok(e instanceof EntryNotFoundError);
      assert.match(e.message, /missing\.json/);
      assert.match(e.message, /ragtune-test\/tiny-model/);
      assert.match(e.message, /"main"/);
      return true;
    });
    assert.ok(existsSync(storage(".no_exist", SHA_MAIN, "missing.json")));
  });

  test("forceDownload fetches again and replaces the blob", async () => {
    const p = await hfHubDownload(REPO, "model.safetensors", base);
    assert.equal(
      hub.count((r) => r.server === "cdn"),
      1,
    );
    assert.equal(await hfHubDownload(REPO, "model.safetensors", { ...base, forceDownload: true }), p);
    assert.equal(
      hub.count((r) => r.server === "cdn"),
      2,
    );
    assert.deepEqual(await readFile(p), MODEL_BYTES);
    await assert.rejects(
      hfHubDownload(REPO, "model.safetensors", { ...base, forceDownload: true, localFilesOnly: true }),
      /forceDownload cannot be used while localFilesOnly/,
    );
  });

  test("rejects file names that would escape the snapshot", async () => {
    await assert.rejects(hfHubDownload(REPO, "../../etc/passwd", base), HubValidationError);
    await assert.rejects(hfHubDownload(REPO, "/etc/passwd", base), HubValidationError);
    assert.equal(hub.requests.length, 0);
  });
});

describe("auth and errors", () => {
  test("the token goes to the hub as a Bearer header, never to the CDN", async () => {
    const dir = await snapshotDownload(PRIVATE, { ...base, token: hub.validToken });
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
    const hubReqs = hub.requests.filter((r) => r.server === "hub");
    assert.ok(hubReqs.length > 0);
    assert.ok(hubReqs.every((r) => r.headers.authorization === `Bearer ${hub.validToken}`));
    const cdnReqs = hub.requests.filter((r) => r.server === "cdn");
    assert.equal(cdnReqs.length, 1);
    assert.equal(cdnReqs[0]?.headers.authorization, undefined);
  });

  test("401 on a private repo without token → RepositoryNotFoundError telling to set HF_TOKEN", async () => {
    for (const call of [
      () => snapshotDownload(PRIVATE, base),
      () => hfHubDownload(PRIVATE, "config.json", base),
    ]) {
      await assert.rejects(call(), (e: Error) => {
        assert.ok(e instanceof RepositoryNotFoundError, String(e));
        assert.match(e.message, /HF_TOKEN/);
        assert.match(e.message, /ragtune-test\/private-model/);
        return true;
      });
    }
  });

  test("an invalid token is reported as rejected", async () => {
    await assert.rejects(
      snapshotDownload(PRIVATE, { ...base, token: "hf_wrong" }),
      /rejected the token.*HF_TOKEN/s,
    );
  });

  test("404 repo (with a token) and unknown revision", async () => {
    await assert.rejects(
      snapshotDownload("ragtune-test/nope", { ...base, token: hub.validToken }),
      (e: Error) => {
        assert.ok(e instanceof RepositoryNotFoundError);
        assert.equal((e as RepositoryNotFoundError).status, 404);
        assert.match(e.message, /ragtune-test\/nope/);
        return true;
      },
    );
    await assert.rejects(snapshotDownload(REPO, { ...base, revision: "no-such-branch" }), (e: Error) => {
      assert.ok(e instanceof RevisionNotFoundError);
      assert.match(e.message, /no-such-branch/);
      return true;
    });
  });

  test("invalid repo ids are refused before any request", async () => {
    await assert.rejects(snapshotDownload("a/b/c", base), HubValidationError);
    await assert.rejects(snapshotDownload("org--x/y", base), HubValidationError);
    assert.equal(hub.requests.length, 0);
  });
});

describe("offline and unreachable hub", () => {
  test("localFilesOnly serves a cached snapshot and file without any request", async () => {
    const online = await snapshotDownload(REPO, base);
    const n = hub.requests.length;
    assert.equal(await snapshotDownload(REPO, { ...base, localFilesOnly: true }), online);
    assert.equal(
      await hfHubDownload(REPO, "config.json", { ...base, localFilesOnly: true }),
      join(online, "config.json"),
    );
    assert.equal(hub.requests.length, n);
  });

  test("HF_HUB_OFFLINE=1 is read at call time; a missing cache is a clear error", async () => {
    process.env.HF_HUB_OFFLINE = "1";
    try {
      await assert.rejects(snapshotDownload(REPO, base), (e: Error) => {
        assert.ok(e instanceof LocalEntryNotFoundError);
        assert.match(e.message, /is not in the cache at/);
        assert.ok(e.message.includes(join(cacheDir, STORAGE)));
        assert.match(e.message, /HF_HUB_OFFLINE=1/);
        return true;
      });
      await assert.rejects(
        hfHubDownload(REPO, "config.json", base),
        /"config\.json".*not in the cache.*HF_HUB_OFFLINE=1/s,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    assert.equal(hub.requests.length, 0);
  });

  test("an unreachable hub falls back to the cache, else says it could not fetch", async () => {
    await snapshotDownload(REPO, base);
    await hub.close(); // afterEach closes again: harmless
    const dir = await snapshotDownload(REPO, base);
    assert.equal(dir, storage("snapshots", SHA_MAIN));
    await assert.rejects(snapshotDownload(REPO, { ...base, revision: "v1" }), (e: Error) => {
      assert.ok(e instanceof LocalEntryNotFoundError);
      assert.match(e.message, /could not be fetched/);
      return true;
    });
  });
});

describe("resumable, verified downloads", () => {
  const incomplete = () => storage("blobs", `${MODEL_SHA}.incomplete`);

  test("a partial .incomplete file is resumed with a Range request", async () => {
    await mkdir(storage("blobs"), { recursive: true });
    await writeFile(incomplete(), MODEL_BYTES.subarray(0, 1000));
    const dir = await snapshotDownload(REPO, base);
    const cdn = hub.requests.filter((r) => r.server === "cdn");
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0]?.headers.range, "bytes=1000-");
    assert.equal(cdn[0]?.status, 206);
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
    assert.ok(!existsSync(incomplete()));
  });

  test("a server that ignores Range (200) makes the download restart from zero", async () => {
    hub.honourRange = false;
    await mkdir(storage("blobs"), { recursive: true });
    await writeFile(incomplete(), Buffer.alloc(1000, 0x55)); // garbage: would corrupt the file if appended to
    const dir = await snapshotDownload(REPO, base);
    const cdn = hub.requests.filter((r) => r.server === "cdn");
    assert.equal(cdn[0]?.headers.range, "bytes=1000-");
    assert.equal(cdn[0]?.status, 200);
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
  });

  test("a dropped connection is resumed where it stopped", async () => {
    hub.dropOnceAfter = 1500;
    const dir = await snapshotDownload(REPO, base);
    const cdn = hub.requests.filter((r) => r.server === "cdn");
    assert.equal(cdn.length, 2);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]?.headers.range ?? "")?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 1500, `resumed at ${resumedAt}`);
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
  });

  test("a lock left by a dead process (and Python's leftover .lock file) does not block", async () => {
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
    const locks = join(cacheDir, ".locks", STORAGE);
    await mkdir(locks, { recursive: true });
    await writeFile(
      join(locks, `${MODEL_SHA}.ragtune.lock`),
      JSON.stringify({ pid: deadPid, host: hostname() }),
    );
    await writeFile(join(locks, `${MODEL_SHA}.lock`), ""); // huggingface_hub's flock file, left behind by design
    const dir = await snapshotDownload(REPO, base);
    assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
    assert.ok(!existsSync(join(locks, `${MODEL_SHA}.ragtune.lock`)));
  });

  for (const corrupt of ["bytes", "short"] as const) {
    test(`a ${corrupt === "bytes" ? "sha256" : "size"} mismatch is refused and leaves no blob`, async () => {
      hub.corrupt = corrupt;
      await assert.rejects(snapshotDownload(REPO, base), (e: Error) => {
        assert.ok(e instanceof HubIntegrityError, String(e));
        assert.match(e.message, corrupt === "bytes" ? /sha256/ : /should be 4096 bytes/);
        assert.match(e.message, /model\.safetensors/);
        return true;
      });
      assert.ok(!existsSync(storage("blobs", MODEL_SHA)));
      assert.ok(!existsSync(incomplete()));
      assert.ok(!existsSync(storage("snapshots", SHA_MAIN, "model.safetensors")));
      // Fixed server: the next call succeeds.
      hub.corrupt = undefined;
      const dir = await snapshotDownload(REPO, base);
      assert.deepEqual(await readFile(join(dir, "model.safetensors")), MODEL_BYTES);
    });
  }
});

describe("resolveModelPath", () => {
  test("an existing local folder is returned untouched", async () => {
    const local = join(tmp, "my-model");
    await mkdir(local);
    assert.equal(await resolveModelPath(local, base), local);
    assert.equal(hub.requests.length, 0);
  });

  test("a repo id is downloaded to its snapshot", async () => {
    assert.equal(await resolveModelPath(REPO, base), storage("snapshots", SHA_MAIN));
  });

  test("a missing folder that is not a repo id says both", async () => {
    for (const bad of ["./no/such/model", join(tmp, "nope"), "a/b/c", "bad--name"]) {
      await assert.rejects(resolveModelPath(bad, base), (e: Error) => {
        assert.ok(e instanceof HubValidationError, bad);
        assert.match(e.message, /does not exist/);
        assert.match(e.message, /not a valid Hugging Face repo id/);
        return true;
      });
    }
    assert.equal(hub.requests.length, 0);
  });

  test("an unknown repo id also mentions the missing local folder", async () => {
    await assert.rejects(resolveModelPath("ragtune-test/nope", base), /HF_TOKEN.*no local folder/s);
  });
});
