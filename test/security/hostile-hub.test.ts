// A hostile hub on 127.0.0.1 (issue #16 items 3 and 7): huge announced sizes, drip-fed bodies, endless JSON and
// error bodies, planted `.incomplete` symlinks, odd file names, https→http redirects, unreadable local folders.
// Each case must end with a clear error in bounded time and memory (every test here takes a few seconds at most).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { tokenMayFollow } from "../../src/hub/download.ts";
import { hfHubDownload, resolveModelPath, snapshotDownload } from "../../src/hub/index.ts";

const COMMIT = "c".repeat(40);
const ETAG = "e".repeat(40); // a git-sha1 etag: no sha256 check, the size check still applies
const REPO = "evil/model";

const scratch = mkdtempSync(join(tmpdir(), "ragtune-hostile-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const freshCache = () => join(scratch, `cache-${n++}`);

/** Serves `handler` on 127.0.0.1; closes at the end of the test file. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** HEAD of a resolve URL: the hub's metadata headers for a file of `size` bytes. */
function head(res: ServerResponse, size: number | bigint): void {
  res.writeHead(200, {
    "x-repo-commit": COMMIT,
    etag: `"${ETAG}"`,
    "content-length": String(size),
  });
  res.end();
}

const opts = (endpoint: string, extra: object = {}) => ({
  endpoint,
  cacheDir: freshCache(),
  token: false as const,
  progress: false,
  ...extra,
});

async function rejectsWithin(p: Promise<unknown>, re: RegExp, ms: number): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(p, re);
  assert.ok(Date.now() - t0 < ms, `took ${Date.now() - t0} ms`);
}

const blobDir = (cacheDir: string) => join(cacheDir, "models--evil--model", "blobs");

describe("announced size", () => {
  test("2^50 bytes is refused by the download bound before any byte is written", async () => {
    let gets = 0;
    const endpoint = await serve((req, res) => {
      if (req.method === "HEAD") return head(res, 2n ** 50n);
      gets++;
      res.writeHead(200);
      res.end();
    });
    const o = opts(endpoint);
    await rejectsWithin(
      hfHubDownload(REPO, "model.safetensors", o),
      /announced as 1125899906842624 bytes, more than the 68719476736-byte download bound; nothing was written/,
      5000,
    );
    assert.equal(gets, 0);
    assert.equal(existsSync(join(blobDir(o.cacheDir), `${ETAG}.incomplete`)), false);
  });
  test("a size over the free disk space is refused before any byte is written", async () => {
    const endpoint = await serve((req, res) => {
      if (req.method === "HEAD") return head(res, 2n ** 50n);
      res.writeHead(200);
      res.end();
    });
    const o = opts(endpoint, { maxFileBytes: 2 ** 52 });
    await rejectsWithin(
      hfHubDownload(REPO, "model.safetensors", o),
      /Not enough disk space for "model\.safetensors" of evil\/model: 1125899906842624 more bytes are needed but only \d+ are free/,
      5000,
    );
    assert.equal(existsSync(join(blobDir(o.cacheDir), `${ETAG}.incomplete`)), false);
  });
  test("a bad RAGTUNE_HUB_MAX_FILE_BYTES is an error", async () => {
    process.env.RAGTUNE_HUB_MAX_FILE_BYTES = "lots";
    try {
      await assert.rejects(
        hfHubDownload(REPO, "x", opts("http://127.0.0.1:1")),
        /RAGTUNE_HUB_MAX_FILE_BYTES must be a positive integer/,
      );
    } finally {
      delete process.env.RAGTUNE_HUB_MAX_FILE_BYTES;
    }
  });
});

describe("slow and endless bodies", () => {
  test("a 1-byte drip never trips the idle timer but hits the per-file deadline; the partial file is kept", async () => {
    const endpoint = await serve((req, res) => {
      if (req.method === "HEAD") return head(res, 1000);
      res.writeHead(200, { "content-length": "1000" });
      const t = setInterval(() => res.write("x"), 100);
      res.on("close", () => clearInterval(t));
    });
    const o = opts(endpoint, { fileTimeoutMs: 1500 });
    await rejectsWithin(
      hfHubDownload(REPO, "model.safetensors", o),
      /did not finish within 2 s \(the overall deadline per file; raise fileTimeoutMs \/ RAGTUNE_HUB_FILE_TIMEOUT.*kept in .*\.incomplete and the next call resumes/,
      8000,
    );
    const partial = join(blobDir(o.cacheDir), `${ETAG}.incomplete`);
    assert.ok(lstatSync(partial).size > 0 && lstatSync(partial).size < 1000);
  });
  test("an endless repo-info JSON is cut at the JSON bound", async () => {
    const endpoint = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"sha": "' + COMMIT + '", "siblings": [');
      const chunk = '{"rfilename": "a"},'.repeat(1000);
      const pump = () => {
        while (res.write(chunk));
      };
      res.on("drain", pump);
      pump();
    });
    const before = process.memoryUsage().rss;
    await rejectsWithin(
      snapshotDownload(REPO, opts(endpoint, { maxJsonBytes: 4 * 2 ** 20 })),
      /The repo info at .* is larger than 4194304 bytes: not a Hugging Face hub answer \(raise RAGTUNE_HUB_MAX_JSON_BYTES/,
      8000,
    );
    assert.ok(process.memoryUsage().rss - before < 512 * 2 ** 20);
  });
  test("an endless 403 body is read only up to a bound", async () => {
    const endpoint = await serve((_req, res) => {
      res.writeHead(403, { "content-type": "text/plain" });
      const chunk = "denied ".repeat(10_000);
      const pump = () => {
        while (res.write(chunk));
      };
      res.on("drain", pump);
      pump();
    });
    await rejectsWithin(snapshotDownload(REPO, opts(endpoint)), /forbidden.*HTTP 403/s, 5000);
  });
});

describe("cache and names", () => {
  test("a planted blobs/<etag>.incomplete symlink is not followed", async () => {
    const content = Buffer.from("the real file\n");
    const endpoint = await serve((req, res) => {
      if (req.method === "HEAD") return head(res, content.length);
      res.writeHead(200, { "content-length": String(content.length) });
      res.end(content);
    });
    const o = opts(endpoint);
    const victim = join(scratch, `victim-${n++}`);
    writeFileSync(victim, "precious\n");
    mkdirSync(blobDir(o.cacheDir), { recursive: true });
    symlinkSync(victim, join(blobDir(o.cacheDir), `${ETAG}.incomplete`));
    const path = await hfHubDownload(REPO, "config.json", o);
    assert.equal(readFileSync(victim, "utf8"), "precious\n");
    assert.deepEqual(readFileSync(path), content);
  });
  test("a FIFO planted as refs/main in a shared cache is no ref, not a hang", async () => {
    const o = opts("http://127.0.0.1:1", { localFilesOnly: true });
    const refs = join(o.cacheDir, "models--evil--model", "refs");
    mkdirSync(refs, { recursive: true });
    execFileSync("mkfifo", [join(refs, "main")]);
    await rejectsWithin(hfHubDownload(REPO, "config.json", o), /is not in the cache at/, 5000);
  });
  test("a NUL in a file name is a clear validation error", async () => {
    await assert.rejects(
      hfHubDownload(REPO, "conf\0ig.json", opts("http://127.0.0.1:1")),
      /Invalid file name "conf\\u0000ig\.json" in repo evil\/model: it contains the control character U\+0000/,
    );
  });
  test("a NUL in a repo listing's file name is a clear validation error", async () => {
    const endpoint = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ sha: COMMIT, siblings: [{ rfilename: "modules.json\u0000x" }] }));
    });
    await assert.rejects(
      snapshotDownload(REPO, opts(endpoint, { allowPatterns: ["*"] })),
      /contains the control character U\+0000/,
    );
  });
  test("the token never follows a downgrade to http, even on the same host", () => {
    assert.equal(tokenMayFollow("https://hub.example/a", "http://hub.example/b"), false);
    assert.equal(tokenMayFollow("https://hub.example/a", "https://cdn.example/b"), false);
    assert.equal(tokenMayFollow("https://hub.example/a", "https://hub.example/b"), true);
    assert.equal(tokenMayFollow("http://127.0.0.1:8/a", "https://127.0.0.1:8/b"), true);
  });
  test("a local folder that cannot be read is reported, never retried as a hub id", async () => {
    let requests = 0;
    const endpoint = await serve((_req, res) => {
      requests++;
      res.writeHead(500);
      res.end();
    });
    const loop = join(scratch, "loop");
    symlinkSync("loop", loop);
    await assert.rejects(
      resolveModelPath(loop, opts(endpoint)),
      /The model folder ".*loop" cannot be read: too many levels of symbolic links \(ELOOP\)/,
    );
    // A relative name that also parses as a repo id ("org/name") is not sent to the hub either.
    const cwd = process.cwd();
    process.chdir(scratch);
    try {
      mkdirSync("org", { recursive: true });
      symlinkSync("name", join("org", "name"));
      await assert.rejects(resolveModelPath("org/name", opts(endpoint)), /cannot be read: too many levels/);
    } finally {
      process.chdir(cwd);
    }
    assert.equal(requests, 0);
  });
});
