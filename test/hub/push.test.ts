// pushToHub against the write side of the fake hub (fake-write-hub.ts, 127.0.0.1): what is uploaded (byte for byte,
// LFS single and multipart, inline small files), what never leaves the machine, --private, --revision, token
// resolution, and the errors a user meets (no token, 401, 403, 409, hub down, a file changed mid-upload). The
// pushed repo is then served by the download fake (fake-hub.ts) and loaded back with snapshotDownload.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";

import {
  HubAuthError,
  HubConflictError,
  HubConnectionError,
  HubForbiddenError,
  PushFolderError,
  snapshotDownload,
} from "../../src/hub/index.ts";
import { planPush } from "../../src/hub/push-files.ts";
import { pushToHub, type PushOptions } from "../../src/hub/push.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { freshDir, tinyModelCopy } from "../helpers/tiny-model.ts";
import { bytes, FakeHub } from "./fake-hub.ts";
import { FakeWriteHub, LFS_THRESHOLD } from "./fake-write-hub.ts";

const TOKEN = "hf_write_token";
/** A string that only the files push must not upload contain. */
const MARKER = "NOT-A-MODEL-FILE-7f3a";
/** Larger than the hub's LFS threshold and the fake's multipart threshold (3 parts of 5 MiB). */
const BIG = LFS_THRESHOLD + 2_000_000;

let hub: FakeWriteHub;
beforeEach(async () => {
  hub = await FakeWriteHub.start();
});
afterEach(async () => {
  await hub.close();
});

/** Options with the fake endpoint and an explicit environment (never the developer's token or HF_HOME). */
function opts(repo: string, extra: Partial<PushOptions> = {}, env: NodeJS.ProcessEnv = { HF_TOKEN: TOKEN }) {
  return { repo, endpoint: hub.endpoint, env: { HF_HOME: freshDir("hfhome"), ...env }, ...extra };
}

/** The tiny model saved by ragtune, plus an ONNX graph with external data, plus what a training run leaves. */
function modelWithJunk(): string {
  const dir = tinyModelCopy();
  writeFileSync(join(dir, "README.md"), "---\nlibrary_name: sentence-transformers\n---\n# tiny\n");
  mkdirSync(join(dir, "onnx"));
  writeFileSync(join(dir, "onnx", "model.onnx"), bytes(3000, 5));
  writeFileSync(join(dir, "onnx", "model.onnx_data"), bytes(BIG, 9));
  writeFileSync(join(dir, "onnx", "notes.txt"), MARKER);
  for (const f of [
    "trainer_state.json",
    "training_args.json",
    "eval_results.json",
    "report.html",
    "train.log",
  ]) {
    writeFileSync(join(dir, f), `{"x": "${MARKER}"}`);
  }
  writeFileSync(join(dir, "optimizer.pt"), MARKER);
  writeFileSync(join(dir, "training_log.jsonl"), `{"loss": 1, "m": "${MARKER}"}\n`);
  writeFileSync(join(dir, ".config.json.tmp-123-abcd"), MARKER);
  writeFileSync(join(dir, "push.lock"), MARKER);
  mkdirSync(join(dir, "runs"));
  writeFileSync(join(dir, "runs", "events.out.tfevents.1"), MARKER);
  return dir;
}

function sentMarker(): boolean {
  return hub.requests.some(
    (r) => r.body.includes(MARKER) || r.body.includes(Buffer.from(MARKER).toString("base64")),
  );
}

describe("ragtune push: what is uploaded", () => {
  test("a saved model folder: model files byte for byte (inline, LFS, multipart LFS), nothing else", async () => {
    const dir = modelWithJunk();
    const plan = await planPush(dir);
    const r = await pushToHub(dir, opts("alice/tiny"));
    assert.equal(r.repoId, "alice/tiny");
    assert.ok(r.createdRepo);
    assert.equal(r.url, `${hub.endpoint}/alice/tiny`);
    assert.equal(hub.repos.get("alice/tiny")?.refs.main, r.commitOid);

    const files = hub.files("alice/tiny");
    const pushed = [...files.keys()].filter((p) => p !== ".gitattributes").sort();
    assert.deepEqual(pushed, plan.files.map((f) => f.path).sort());
    for (const must of [
      "config.json",
      "modules.json",
      "model.safetensors",
      "tokenizer.json",
      "1_Pooling/config.json",
      "README.md",
      "onnx/model.onnx",
      "onnx/model.onnx_data",
    ]) {
      assert.ok(files.has(must), `${must} was not pushed`);
    }
    for (const f of plan.files) {
      assert.ok(files.get(f.path)?.content.equals(readFileSync(f.localPath)), `${f.path} differs`);
    }
    // The hub chose LFS for the weights and the graph, inline for the JSON; the 12 MB file went in 3 parts.
    assert.equal(files.get("model.safetensors")?.lfs, true);
    assert.equal(files.get("onnx/model.onnx_data")?.lfs, true);
    assert.equal(files.get("config.json")?.lfs, false);
    assert.equal(
      hub.count((q) => q.server === "storage" && q.url.startsWith("/part/")),
      3,
    );
    assert.equal(
      hub.count((q) => q.server === "storage" && q.url.startsWith("/complete/")),
      1,
    );
    assert.equal(
      hub.count((q) => q.server === "storage" && q.url.startsWith("/put/")),
      2,
    );

    // The token goes to the hub only, never to the upload storage.
    assert.ok(
      hub.requests.filter((q) => q.server === "storage").every((q) => q.headers.authorization === undefined),
    );
    // Nothing of the run's files left the machine, not even their names.
    assert.equal(sentMarker(), false);
    const named = hub.requests.map((q) => q.body.toString("latin1")).join("\n");
    for (const junk of [
      "trainer_state.json",
      "optimizer.pt",
      "training_log.jsonl",
      "report.html",
      "push.lock",
      "notes.txt",
      "tfevents",
    ]) {
      assert.ok(!named.includes(junk), `${junk} was named in a request`);
    }
    const reasons = Object.fromEntries(plan.skipped.map((s) => [s.path, s.reason]));
    assert.equal(reasons["trainer_state.json"], "trainer state");
    assert.equal(reasons["optimizer.pt"], "trainer state");
    assert.equal(reasons["training_log.jsonl"], "training/evaluation log");
    assert.equal(reasons["eval_results.json"], "evaluation report");
    assert.equal(reasons["push.lock"], "lock file");
    assert.equal(reasons[".config.json.tmp-123-abcd"], "temporary file");
    assert.equal(reasons["runs/"], "training logs");
    assert.equal(reasons["onnx/notes.txt"], "not a model file");
  });

  test("the pushed repo downloads and loads back into the same model", async () => {
    const dir = tinyModelCopy();
    await pushToHub(dir, opts("alice/roundtrip"));
    const reader = await FakeHub.start([hub.toFakeRepo("alice/roundtrip")]);
    try {
      const snap = await snapshotDownload("alice/roundtrip", {
        endpoint: reader.endpoint,
        cacheDir: join(freshDir("cache"), "hub"),
        token: false,
        progress: false,
      });
      const texts = ["what was the net revenue in 2023?", "hello"];
      const a = SentenceTransformer.fromDir(dir);
      const b = SentenceTransformer.fromDir(snap);
      try {
        assert.deepEqual(Array.from(b.encode(texts).data), Array.from(a.encode(texts).data));
      } finally {
        a.dispose();
        b.dispose();
      }
    } finally {
      await reader.close();
    }
  });

  test("pushing again uploads no LFS object the hub already holds, and makes a new commit", async () => {
    const dir = tinyModelCopy();
    const first = await pushToHub(dir, opts("alice/again"));
    const puts = hub.count((q) => q.server === "storage");
    const second = await pushToHub(dir, opts("alice/again", { commitMessage: "second" }));
    assert.equal(second.createdRepo, false);
    assert.notEqual(second.commitOid, first.commitOid);
    assert.equal(
      hub.count((q) => q.server === "storage"),
      puts,
    );
    assert.equal(hub.repos.get("alice/again")?.commits[second.commitOid]?.title, "second");
  });

  test("a token from the token file ($HF_TOKEN_PATH) when no variable is set", async () => {
    const tokenFile = join(freshDir("tok"), "token");
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const r = await pushToHub(tinyModelCopy(), opts("alice/from-file", {}, { HF_TOKEN_PATH: tokenFile }));
    assert.ok(r.commitOid);
    assert.equal(hub.requests[0]?.headers.authorization, `Bearer ${TOKEN}`);
  });

  test("a bare repo name goes under the token's user", async () => {
    const r = await pushToHub(tinyModelCopy(), opts("bare-name"));
    assert.equal(r.repoId, "alice/bare-name");
    assert.ok(hub.repos.has("alice/bare-name"));
  });
});

describe("ragtune push: --private and --revision", () => {
  test("--private creates a private repo that anonymous users cannot see", async () => {
    const r = await pushToHub(tinyModelCopy(), opts("alice/secret", { private: true }));
    assert.equal(r.private, true);
    assert.equal(hub.repos.get("alice/secret")?.private, true);
    const create = hub.requests.find((q) => q.url === "/api/repos/create");
    assert.equal(JSON.parse(create?.body.toString() ?? "{}").visibility, "private");
    const anon = await fetch(`${hub.endpoint}/api/models/alice/secret/revision/main`);
    assert.equal(anon.status, 401);
  });

  test("without --private the visibility is left to the hub (the namespace's default)", async () => {
    await pushToHub(tinyModelCopy(), opts("alice/open"));
    const create = hub.requests.find((q) => q.url === "/api/repos/create");
    assert.equal(JSON.parse(create?.body.toString() ?? "{}").visibility, undefined);
    assert.equal(hub.repos.get("alice/open")?.private, false);
  });

  test("--private on an existing public repo is refused before any upload", async () => {
    hub.addRepo("alice/public");
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/public", { private: true })), (e: Error) => {
      assert.ok(e instanceof HubConflictError);
      assert.match(e.message, /already exists and is public: nothing was uploaded/);
      return true;
    });
    assert.equal(
      hub.count((q) => /preupload|commit|lfs/.test(q.url) || q.server === "storage"),
      0,
    );
  });

  test("--revision on a new repo creates the branch; main keeps only the initial commit", async () => {
    const r = await pushToHub(tinyModelCopy(), opts("alice/branchy", { revision: "dev" }));
    assert.ok(r.createdBranch);
    assert.equal(r.url, `${hub.endpoint}/alice/branchy/tree/dev`);
    assert.ok(hub.files("alice/branchy", "dev").has("model.safetensors"));
    assert.deepEqual([...hub.files("alice/branchy", "main").keys()], [".gitattributes"]);
    assert.ok(hub.requests.some((q) => q.url.startsWith("/api/models/alice/branchy/commit/dev")));
  });

  test("--revision on an existing repo: a missing branch is created, an existing one committed to", async () => {
    hub.addRepo("alice/existing");
    const a = await pushToHub(tinyModelCopy(), opts("alice/existing", { revision: "v2" }));
    assert.equal(a.createdBranch, true);
    const b = await pushToHub(tinyModelCopy(), opts("alice/existing", { revision: "v2" }));
    assert.equal(b.createdBranch, false);
    assert.equal(hub.repos.get("alice/existing")?.refs.v2, b.commitOid);
  });

  test("a commit sha is no --revision", async () => {
    await assert.rejects(
      pushToHub(tinyModelCopy(), opts("alice/x", { revision: "a".repeat(40) })),
      /not a branch name/,
    );
    assert.equal(hub.count(), 0);
  });
});

describe("ragtune push: errors", () => {
  test("no token: says where it looked, sends nothing", async () => {
    const home = freshDir("hfhome");
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/x", {}, { HF_HOME: home })), (e: Error) => {
      assert.ok(e instanceof HubAuthError);
      assert.match(e.message, /No Hugging Face token found/);
      assert.ok(e.message.includes(join(home, "token")), e.message);
      assert.match(e.message, /\$HF_TOKEN, \$HUGGING_FACE_HUB_TOKEN/);
      return true;
    });
    assert.equal(hub.count(), 0);
  });

  test("401: a bad token is named by its source, never printed", async () => {
    await assert.rejects(
      pushToHub(tinyModelCopy(), opts("alice/x", {}, { HF_TOKEN: "hf_revoked_123" })),
      (e: Error) => {
        assert.ok(e instanceof HubAuthError);
        assert.match(e.message, /rejected the token from HF_TOKEN: it is invalid, expired or revoked/);
        assert.ok(!e.message.includes("hf_revoked_123"));
        return true;
      },
    );
    assert.equal(
      hub.count((q) => q.url !== "/api/whoami-v2"),
      0,
    );
  });

  test("403: a read-only token, a namespace of someone else, a repo of someone else", async () => {
    await assert.rejects(
      pushToHub(tinyModelCopy(), opts("alice/x", {}, { HF_TOKEN: "hf_read_token" })),
      (e: Error) => {
        assert.ok(e instanceof HubForbiddenError);
        assert.match(e.message, /read-only/);
        return true;
      },
    );
    await assert.rejects(pushToHub(tinyModelCopy(), opts("bob/new-model")), (e: Error) => {
      assert.ok(e instanceof HubForbiddenError);
      assert.match(e.message, /may not create repos under "bob"/);
      return true;
    });
    hub.addRepo("bob/model");
    await assert.rejects(pushToHub(tinyModelCopy(), opts("bob/model")), (e: Error) => {
      assert.ok(e instanceof HubForbiddenError);
      assert.match(e.message, /has no write access to bob\/model/);
      assert.equal((e as HubForbiddenError).status, 403);
      return true;
    });
    assert.equal(
      hub.repos.get("bob/model")?.commits[hub.repos.get("bob/model")?.refs.main ?? ""]?.files.size,
      1,
    );
  });

  test("409: a name taken by a repo the token cannot see; a concurrent commit on the branch", async () => {
    hub.takenNames.add("alice/taken");
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/taken")), (e: Error) => {
      assert.ok(e instanceof HubConflictError);
      assert.match(e.message, /the name alice\/taken is taken/);
      return true;
    });
    hub.conflictOnCommit = true;
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/busy")), (e: Error) => {
      assert.ok(e instanceof HubConflictError);
      assert.match(e.message, /revision "main" of alice\/busy changed while pushing/);
      return true;
    });
  });

  test("a 403 from the upload storage is an expired signed URL, not a token without write access", async () => {
    hub.storageStatus = 403;
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/expired")), (e: Error) => {
      assert.ok(!(e instanceof HubForbiddenError), e.message);
      assert.match(
        e.message,
        /upload storage of .* refused a file of alice\/expired; a signed upload URL may have expired/,
      );
      return true;
    });
    assert.equal(
      hub.count((q) => q.url.includes("/commit/")),
      0,
    );
  });

  test("hub down: a connection error naming the endpoint", async () => {
    const server = createServer();
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise<void>((ok) => server.close(() => ok()));
    await assert.rejects(pushToHub(tinyModelCopy(), { ...opts("alice/x"), endpoint }), (e: Error) => {
      assert.ok(e instanceof HubConnectionError);
      assert.ok(e.message.includes(`Cannot reach the hub at ${endpoint}: ECONNREFUSED`), e.message);
      return true;
    });
  });

  test("the hub token never goes to another origin, even where an LFS answer points the xet token refresh", async () => {
    hub.lfsTransfer = "xet";
    await assert.rejects(pushToHub(tinyModelCopy(), opts("alice/xet")));
    const refresh = hub.requests.filter((q) => q.server === "storage");
    assert.ok(
      refresh.some((q) => q.url === "/xet-write-token"),
      "the library did not ask for a xet token",
    );
    assert.ok(refresh.every((q) => q.headers.authorization === undefined));
    assert.equal(
      hub.count((q) => q.url.includes("/commit/")),
      0,
    );
  });

  test("a file rewritten during the upload stops the push before the commit", async () => {
    const dir = tinyModelCopy();
    hub.onStorageRequest = () => appendFileSync(join(dir, "model.safetensors"), "x");
    await assert.rejects(pushToHub(dir, opts("alice/moving")), (e: Error) => {
      assert.ok(e instanceof PushFolderError);
      assert.match(
        e.message,
        /model\.safetensors changed while it was being uploaded; nothing was committed/,
      );
      return true;
    });
    assert.equal(
      hub.count((q) => q.url.includes("/commit/")),
      0,
    );
  });
});

describe("ragtune push: folders refused before anything is sent", () => {
  test("a training run folder points at its final/ folder", async () => {
    const run = freshDir("run");
    mkdirSync(join(run, "final"));
    mkdirSync(join(run, "checkpoint-100"));
    await assert.rejects(pushToHub(run, opts("alice/x")), (e: Error) => {
      assert.ok(e instanceof PushFolderError);
      assert.match(e.message, /looks like a training run folder \(it has checkpoint-100\/, final\/\)/);
      assert.ok(e.message.includes(`ragtune push ${join(run, "final")}`));
      return true;
    });
    assert.equal(hub.count(), 0);
  });

  test("a model file that is a symlink or a FIFO", async () => {
    const linked = tinyModelCopy();
    const elsewhere = join(freshDir("outside"), "config.json");
    writeFileSync(elsewhere, readFileSync(join(linked, "config.json")));
    execFileSync("rm", [join(linked, "config.json")]);
    symlinkSync(elsewhere, join(linked, "config.json"));
    await assert.rejects(
      planPush(linked),
      /refusing to push model files that are not regular files.*config\.json \(a symbolic link\)/,
    );

    const fifo = tinyModelCopy();
    execFileSync("rm", [join(fifo, "vocab.txt")]);
    execFileSync("mkfifo", [join(fifo, "vocab.txt")]);
    await assert.rejects(planPush(fifo), /vocab\.txt \(a FIFO\)/);

    // A link among the skipped files is listed, not followed, not fatal.
    const junkLink = tinyModelCopy();
    symlinkSync("/etc/passwd", join(junkLink, "notes.txt"));
    const plan = await planPush(junkLink);
    assert.deepEqual(plan.skipped, [{ path: "notes.txt", reason: "not a model file; a symbolic link" }]);
  });

  test("other layouts: USE-lite with tfjs/ and onnx/, sharded weights, a Dense module, ST folders of old", async () => {
    const dir = freshDir("layouts");
    const put = (rel: string, content = "{}") => {
      mkdirSync(join(dir, rel, ".."), { recursive: true });
      writeFileSync(join(dir, rel), content);
    };
    for (const f of [
      "config.json",
      "vocab.json",
      "README.md",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "sentencepiece.bpe.model",
      "sentence_xlm-roberta_config.json",
    ])
      put(f);
    for (const f of [
      "tfjs/model.json",
      "tfjs/group1-shard1of2.bin",
      "tfjs/group1-shard2of2.bin",
      "tfjs/vocab.json",
      "tfjs/README.txt",
    ])
      put(f);
    for (const f of [
      "onnx/model.onnx",
      "onnx/model_quantized.onnx",
      "onnx/model.onnx_data",
      "onnx/sub/model.onnx",
    ])
      put(f);
    for (const f of [
      "2_Dense/config.json",
      "2_Dense/model.safetensors",
      "2_Dense/optimizer.pt",
      "0_Transformer/config.json",
    ])
      put(f);
    for (const f of [
      "optimizer.safetensors",
      "rng_state.safetensors",
      "scheduler.pt",
      "pytorch_model.bin",
      "baseline_results.json",
      "ragtune_run.json",
      "comparison.md",
    ])
      put(f);
    const plan = await planPush(dir);
    assert.deepEqual(
      plan.files.map((f) => `${f.path}:${f.kind}`),
      [
        "0_Transformer/config.json:config",
        "2_Dense/config.json:config",
        "2_Dense/model.safetensors:weights",
        "README.md:card",
        "config.json:config",
        "model-00001-of-00002.safetensors:weights",
        "model-00002-of-00002.safetensors:weights",
        "model.safetensors.index.json:weights",
        "onnx/model.onnx:onnx",
        "onnx/model.onnx_data:onnx",
        "onnx/model_quantized.onnx:onnx",
        "sentence_xlm-roberta_config.json:config",
        "sentencepiece.bpe.model:tokenizer",
        "tfjs/group1-shard1of2.bin:tfjs",
        "tfjs/group1-shard2of2.bin:tfjs",
        "tfjs/model.json:tfjs",
        "tfjs/vocab.json:tfjs",
        "vocab.json:tokenizer",
      ],
    );
    assert.deepEqual(plan.skipped, [
      { path: "2_Dense/optimizer.pt", reason: "trainer state" },
      { path: "baseline_results.json", reason: "evaluation report" },
      { path: "comparison.md", reason: "evaluation report" },
      { path: "onnx/sub/", reason: "nested folder" },
      { path: "optimizer.safetensors", reason: "trainer state" },
      { path: "pytorch_model.bin", reason: "pickle weights (ragtune uploads safetensors only)" },
      { path: "ragtune_run.json", reason: "run record" },
      { path: "rng_state.safetensors", reason: "trainer state" },
      { path: "scheduler.pt", reason: "trainer state" },
      { path: "tfjs/README.txt", reason: "not a model file" },
    ]);
  });

  test("a folder without weights or config", async () => {
    const empty = freshDir("empty");
    writeFileSync(join(empty, "README.md"), "# hi\n");
    await assert.rejects(planPush(empty), /is not a model folder: it has no config\.json/);
    writeFileSync(join(empty, "config.json"), "{}");
    await assert.rejects(planPush(empty), /it has no weights/);
  });
});
