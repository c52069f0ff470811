// The browser check of issue 12 (skipped without /usr/bin/chromium, which CI lacks): a folder saved by ragtune,
// served from 127.0.0.1, in headless Chromium:
// - onnxruntime-web's wasm build (the devDependency's dist/ort.wasm.min.mjs) loads onnx/model_quantized.onnx and
//   gives the last_hidden_state onnxruntime-web gives in Node for the same file and ids;
// - transformers.js' browser build (dist/transformers.min.js, onnxruntime-web bundled) with its DEFAULT dtype
//   loads onnx/model_quantized.onnx (the browser's default device is wasm, whose default dtype is q8) — the server
//   sees that file requested and model.onnx not — and its feature-extraction embeddings are within the q8
//   tolerance of ragtune's.
// Nothing is fetched from the network: the page, the runtimes, their .wasm files and the model come from the
// test's own server, and a request for anything else is answered 404 and fails the test.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as ort from "onnxruntime-web";

import { tidy } from "../../src/engine/index.ts";
import { exportOnnx } from "../../src/export/onnx.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const CHROMIUM = "/usr/bin/chromium";
const root = fileURLToPath(new URL("../../", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ragtune-onnx-browser-"));
after(() => rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }));

/** The q8 tolerance of test/export/onnx-quantized.test.ts (cosine per text, max |diff| of unit vectors). */
const Q8_MIN_COSINE = 0.998;
const Q8_MAX_DIFF = 0.03;
const TEXTS = [
  "What was the total revenue in 2023?",
  "a",
  "Operating expenses increased by 7% year over year.",
];

/** URL prefix → folder served under it. */
function mounts(modelDir: string): [string, string][] {
  const tjs = join(root, "node_modules/@huggingface/transformers");
  return [
    ["/ort/", join(root, "node_modules/onnxruntime-web/dist")],
    ["/tjs/", join(tjs, "dist")],
    // transformers.min.js bundles onnxruntime-web's JS; its .wasm comes from the version it was built with.
    ["/tjs-ort/", join(tjs, "node_modules/onnxruntime-web/dist")],
    ["/models/m/", modelDir],
  ];
}

const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".onnx": "application/octet-stream",
};

function page(feeds: object, pooling: string): string {
  return `<!doctype html><meta charset="utf-8"><title>q8</title><script type="module">
const report = (o) => fetch("/result", { method: "POST", body: JSON.stringify(o) });
try {
  const F = ${JSON.stringify(feeds)};
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = 1;
  const t = (xs) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), F.dims);
  const s = await ort.InferenceSession.create("/models/m/onnx/model_quantized.onnx", { executionProviders: ["wasm"] });
  const out = await s.run({ input_ids: t(F.ids), attention_mask: t(F.mask), token_type_ids: t(F.types) });
  const hidden = Array.from(out.last_hidden_state.data);
  await s.release();
  const { pipeline, env } = await import("/tjs/transformers.min.js");
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = "/models/";
  env.useBrowserCache = false;
  env.backends.onnx.wasm.wasmPaths = "/tjs-ort/";
  env.backends.onnx.wasm.numThreads = 1;
  const extractor = await pipeline("feature-extraction", "m"); // the default device and dtype
  const e = await extractor(${JSON.stringify(TEXTS)}, { pooling: "${pooling}", normalize: true });
  await report({ hidden, embeddings: Array.from(e.data), dims: e.dims });
} catch (err) {
  await report({ error: String((err && err.stack) || err) });
}
</script>`;
}

describe("model_quantized.onnx in headless Chromium", () => {
  test("onnxruntime-web (wasm) and transformers.js' default dtype load it from 127.0.0.1", async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is not installed`);
      return;
    }
    const model = SentenceTransformer.fromDir(
      fileURLToPath(new URL("../fixtures/st-tiny/model", import.meta.url)),
    );
    const dir = join(work, "m");
    model.save(dir);
    exportOnnx(model, dir);
    const expected = tidy(() => model.encode(TEXTS).data as Float32Array);
    const feeds = tidy(() => {
      const f = model.tokenize(TEXTS);
      return {
        dims: f.inputIds.shape,
        ids: f.inputIds.toNumbers(),
        mask: f.attentionMask.toNumbers(),
        types: f.tokenTypeIds.toNumbers(),
      };
    });
    const dim = expected.length / TEXTS.length;
    model.dispose();

    // The same file and ids in onnxruntime-web in Node.
    const session = await ort.InferenceSession.create(
      readFileSync(join(dir, "onnx", "model_quantized.onnx")),
    );
    const tensor = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), feeds.dims);
    const nodeOut = await session.run({
      input_ids: tensor(feeds.ids),
      attention_mask: tensor(feeds.mask),
      token_type_ids: tensor(feeds.types),
    });
    const nodeHidden = nodeOut.last_hidden_state!.data as Float32Array;
    await session.release();

    const requested: string[] = [];
    const missing: string[] = [];
    let resolveResult!: (v: Record<string, unknown>) => void;
    const result = new Promise<Record<string, unknown>>((r) => (resolveResult = r));
    const served = mounts(dir);
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = decodeURIComponent((req.url ?? "/").split("?")[0]!);
      requested.push(url);
      if (req.method === "POST" && url === "/result") {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString("utf8")));
        req.on("end", () => {
          res.end("ok");
          resolveResult(JSON.parse(body) as Record<string, unknown>);
        });
        return;
      }
      if (url === "/") {
        res.writeHead(200, { "content-type": "text/html" }).end(page(feeds, "cls"));
        return;
      }
      for (const [prefix, folder] of served) {
        if (!url.startsWith(prefix)) continue;
        const file = normalize(join(folder, url.slice(prefix.length)));
        if (file.startsWith(folder + sep) && existsSync(file) && statSync(file).isFile()) {
          res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
          res.end(readFileSync(file));
          return;
        }
      }
      missing.push(url);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const chromium = spawn(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        `--user-data-dir=${join(work, "profile")}`,
        `http://127.0.0.1:${port}/`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    chromium.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => {
        const console_ = stderr.split("\n").filter((l) => /CONSOLE|Refused|net::ERR_/.test(l));
        reject(
          new Error(
            `no result from Chromium in 180 s; requested:\n${requested.join("\n")}\nconsole:\n${console_.join("\n")}`,
          ),
        );
      }, 180_000).unref(),
    );
    try {
      const r = await Promise.race([result, timeout]);
      assert.equal(r.error, undefined, String(r.error));
      // onnxruntime-web in the page = onnxruntime-web in Node (the same wasm kernels).
      const hidden = r.hidden as number[];
      let d = 0;
      for (let i = 0; i < hidden.length; i++) d = Math.max(d, Math.abs(hidden[i]! - nodeHidden[i]!));
      console.log(`browser vs Node onnxruntime-web, q8 last_hidden_state: maxdiff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `maxdiff ${d}`);
      // transformers.js chose the q8 file by itself.
      assert.ok(requested.includes("/models/m/onnx/model_quantized.onnx"), requested.join("\n"));
      assert.ok(!requested.includes("/models/m/onnx/model.onnx"), "the float32 file was requested");
      assert.deepEqual(r.dims, [TEXTS.length, dim]);
      const e = r.embeddings as number[];
      let maxDiff = 0;
      let minCos = 1;
      for (let i = 0; i < TEXTS.length; i++) {
        let dot = 0;
        for (let j = i * dim; j < (i + 1) * dim; j++) {
          dot += e[j]! * expected[j]!;
          maxDiff = Math.max(maxDiff, Math.abs(e[j]! - expected[j]!));
        }
        minCos = Math.min(minCos, dot);
      }
      console.log(
        `transformers.js (browser, default dtype) vs ragtune: min cosine ${minCos.toFixed(5)}, maxdiff ${maxDiff.toExponential(2)}`,
      );
      assert.ok(minCos >= Q8_MIN_COSINE && maxDiff <= Q8_MAX_DIFF, `cosine ${minCos}, maxdiff ${maxDiff}`);
      assert.deepEqual(
        missing.filter((u) => !u.endsWith(".map") && u !== "/favicon.ico"),
        [],
      );
    } finally {
      // Wait for Chromium to exit: it writes into its profile while shutting down, which would race the cleanup.
      const exited = new Promise((r) => chromium.once("exit", r));
      chromium.kill();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
      server.close();
    }
  });
});
