// ONNX export of USE-lite (src/export/use-lite-onnx.ts) run in onnxruntime-web (wasm backend, in Node) against
// ragtune's embeddings of a fine-tuned USE-lite (three AdamW steps of MNRL on financial pairs, so no weight is the
// base model's), the way a JS user runs it: the saved folder's vocab.json through the USE npm package's own
// Tokenizer, ids and mask padded on the right, one session.run. Texts: an empty string, one word, a text longer
// than the 128 positions the graph keeps, and financial texts of different lengths. Padding must not change a
// row: each text alone, and with extra padding columns, gives the same row. Opset 17 and 14. Each parity test
// prints its maxdiff.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Tokenizer as UseTokenizer } from "@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js";
import * as ort from "onnxruntime-web";

import { enableGrad, liveTensors, noGrad, tidy } from "../../src/engine/index.ts";
import { AdamW } from "../../src/engine/optim.ts";
import {
  exportUseLiteOnnx,
  USAGE_DIR,
  USE_LITE_ONNX_INPUTS,
  USE_LITE_ONNX_OUTPUT,
  useLiteOnnxReadme,
} from "../../src/export/use-lite-onnx.ts";
import type { OnnxOpset } from "../../src/export/onnx.ts";
import { MultipleNegativesRankingLoss } from "../../src/losses/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { UseLite } from "../../src/models/use-lite.ts";

ort.env.wasm.numThreads = 1; // no worker threads in the test process
ort.env.logLevel = "error";

const DATA = fileURLToPath(new URL("../../data/financial/", import.meta.url));
const TOL = 1e-5;

const pairs = readFileSync(join(DATA, "train.jsonl"), "utf8")
  .trim()
  .split("\n")
  .slice(0, 24)
  .map((l) => JSON.parse(l) as { anchor: string; positive: string });
const LONG = pairs.map((p) => p.positive).join(" "); // well over 128 pieces
const TEXTS = [
  "What was the total revenue in 2023?",
  "",
  "revenue",
  LONG,
  pairs[0]!.positive,
  "Operating expenses increased by 7% year over year.",
  "",
];

const work = mkdtempSync(join(tmpdir(), "ragtune-use-onnx-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A right-padded batch of id rows: width = longest row + extra (at least 1), padding ids = padId. */
function batchOf(rows: readonly (readonly number[])[], extra = 0, padId = 0) {
  const seq = Math.max(1, ...rows.map((r) => r.length)) + extra;
  const ids = new BigInt64Array(rows.length * seq).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * seq);
  rows.forEach((r, i) =>
    r.forEach((id, j) => {
      ids[i * seq + j] = BigInt(id);
      mask[i * seq + j] = 1n;
    }),
  );
  return {
    input_ids: new ort.Tensor("int64", ids, [rows.length, seq]),
    attention_mask: new ort.Tensor("int64", mask, [rows.length, seq]),
  };
}

async function run(session: ort.InferenceSession, feeds: ReturnType<typeof batchOf>): Promise<Float32Array> {
  const out = (await session.run(feeds))[USE_LITE_ONNX_OUTPUT];
  assert.ok(out, `no ${USE_LITE_ONNX_OUTPUT} output`);
  assert.deepEqual(out.dims, [feeds.input_ids.dims[0], 512]);
  return out.data as Float32Array;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = TOL): void {
  const d = maxDiff(a, b);
  console.log(`maxdiff ${what}: ${d.toExponential(2)}`);
  assert.ok(d <= tol, `${what}: maxdiff ${d} > ${tol}`);
}

/** ModelProto.metadata_props (field 14: StringStringEntryProto key = 1, value = 2) of an .onnx file. */
function metadataProps(buf: Uint8Array): Record<string, string> {
  let at = 0;
  const varint = (b: Uint8Array) => {
    let v = 0;
    for (let mul = 1; ; mul *= 128) {
      const byte = b[at++]!;
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
    }
  };
  const fields = (b: Uint8Array) => {
    const out: [number, Uint8Array | number][] = [];
    const saved = at;
    at = 0;
    while (at < b.length) {
      const key = varint(b);
      if ((key & 7) === 0) out.push([key >> 3, varint(b)]);
      else if ((key & 7) === 2) {
        const len = varint(b);
        out.push([key >> 3, b.subarray(at, at + len)]);
        at += len;
      } else throw new Error(`wire type ${key & 7}`);
    }
    at = saved;
    return out;
  };
  const text = (v: Uint8Array | number | undefined) => new TextDecoder().decode(v as Uint8Array);
  const props: Record<string, string> = {};
  for (const [field, value] of fields(buf)) {
    if (field !== 14) continue;
    const kv = new Map(fields(value as Uint8Array));
    props[text(kv.get(1))] = text(kv.get(2));
  }
  return props;
}

describe("USE-lite ONNX export of a fine-tuned model", () => {
  const dir = join(work, "fine-tuned");
  let model: SentenceTransformer; // the saved folder, loaded back
  let tokenizer: UseTokenizer; // the USE package's, over the saved vocab.json
  let ids: number[][];
  let expected: Float32Array; // ragtune's encode(TEXTS)

  before(() => {
    // Fine-tune: three AdamW steps of MNRL on 8 pairs each, lr 1e-3, so every weight moves off the base.
    const tuned = SentenceTransformer.fromUseLite(UseLite.fromNpm());
    const base = UseLite.fromNpm();
    const loss = new MultipleNegativesRankingLoss();
    const opt = new AdamW(tuned.parameters(), { lr: 1e-3, weightDecay: 0 });
    tuned.train();
    for (let step = 0; step < 3; step++) {
      const batch = pairs.slice(step * 8, step * 8 + 8);
      enableGrad(() =>
        tidy(() => {
          const use = tuned.useLite!;
          const l = loss.lossFromEmbeddings([
            use.embed(batch.map((p) => p.anchor)),
            use.embed(batch.map((p) => p.positive)),
          ]); // ()
          l.backward();
        }),
      );
      opt.step();
      for (const p of tuned.parameters()) p.grad?.zero_();
    }
    tuned.eval();
    const baseParams = new Map(base.namedParameters());
    const unchanged = noGrad(() =>
      tuned
        .useLite!.namedParameters()
        .filter(([n, t]) => tidy(() => t.sub(baseParams.get(n)!).abs().max().item() === 0)),
    );
    assert.deepEqual(
      unchanged.map(([n]) => n),
      [],
      "fine-tuning left parameters at the base values",
    );
    base.dispose();
    tuned.save(dir);
    tuned.dispose();
    model = SentenceTransformer.fromDir(dir);
    tokenizer = new UseTokenizer(JSON.parse(readFileSync(join(dir, "vocab.json"), "utf8")));
    ids = TEXTS.map((t) => tokenizer.encode(t));
    expected = model.encode(TEXTS).data;
  });
  after(() => model?.dispose());

  test("the USE package's Tokenizer over the folder's vocab.json gives ragtune's ids", () => {
    assert.deepEqual(
      ids,
      TEXTS.map((t) => model.useLite!.tokenizer.encode(t)),
    );
    assert.deepEqual(ids[1], []);
    assert.equal(ids[2]!.length, 1);
    assert.ok(ids[3]!.length > 128, `long text has ${ids[3]!.length} ids`);
  });

  for (const opset of [17, 14] as OnnxOpset[]) {
    test(`opset ${opset}: onnxruntime-web reproduces encode(), padding and batching change nothing`, async () => {
      const file = `model-${opset}.onnx`;
      const before = liveTensors();
      const r = exportUseLiteOnnx(model.useLite!, dir, { opset, fileName: file });
      assert.equal(liveTensors(), before, "export leaked tensors");
      assert.deepEqual(r.files, [join("onnx", file)]);
      assert.equal(r.bytes, statSync(join(dir, "onnx", file)).size);
      assert.equal(r.opset, opset);
      assert.deepEqual(r.warnings, []);

      const session = await ort.InferenceSession.create(readFileSync(join(dir, "onnx", file)), {
        executionProviders: ["wasm"],
      });
      assert.deepEqual(session.inputNames, [...USE_LITE_ONNX_INPUTS]);
      assert.deepEqual(session.outputNames, [USE_LITE_ONNX_OUTPUT]);

      // One batch of different lengths (the long one uncut: the graph drops positions >= 128).
      const batched = await run(session, batchOf(ids));
      assertClose(batched, expected, `opset ${opset} batch vs encode`);
      // Extra padding columns with a non-zero padding id.
      assertClose(await run(session, batchOf(ids, 5, 17)), batched, `opset ${opset} extra padding`);
      // Each text alone, no padding at all (the empty text as one masked column).
      for (let i = 0; i < ids.length; i++) {
        const alone = await run(session, batchOf([ids[i]!]));
        assertClose(alone, batched.subarray(i * 512, (i + 1) * 512), `opset ${opset} text ${i} alone`);
      }
      // The long text cut to 128 by the caller is the same as uncut.
      const cut = await run(session, batchOf([ids[3]!.slice(0, 128)]));
      assertClose(cut, batched.subarray(3 * 512, 4 * 512), `opset ${opset} long text cut by the caller`, 0);
      // Unit length rows.
      for (let i = 0; i < ids.length; i++) {
        const row = batched.subarray(i * 512, (i + 1) * 512);
        const norm = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
        assert.ok(Math.abs(norm - 1) < 1e-5, `row ${i} norm ${norm}`);
      }
      await session.release();
    });
  }

  test("onnx/model.onnx + onnx/README.md by default; the README's snippet runs as written in plain node", async () => {
    const r = exportUseLiteOnnx(model.useLite!, dir);
    assert.deepEqual(r.files, [join("onnx", "model.onnx"), join("onnx", "README.md")]);
    assert.equal(r.opset, 17);
    const readme = readFileSync(join(dir, "onnx", "README.md"), "utf8");
    assert.equal(readme, useLiteOnnxReadme(model.useLite!));
    // The graph documents its inputs itself (ModelProto.metadata_props, shown by Netron).
    const props = metadataProps(readFileSync(join(dir, "onnx", "model.onnx")));
    assert.deepEqual(Object.keys(props), ["model_type", "tokenizer", "max_length", "padding", "output"]);
    assert.equal(props.model_type, "use-lite");
    assert.equal(props.max_length, "128");
    const snippet = /```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    assert.ok(snippet.includes(`const dir = "${USAGE_DIR}";`), "no snippet reading USAGE_DIR");
    // The snippet as a user saves it (next to node_modules), pointed at the folder, printing embed(TEXTS) too.
    const app = join(work, "app");
    mkdirSync(app);
    symlinkSync(fileURLToPath(new URL("../../node_modules", import.meta.url)), join(app, "node_modules"));
    writeFileSync(
      join(app, "snippet.mjs"),
      snippet.replace(`const dir = "${USAGE_DIR}";`, `const dir = ${JSON.stringify(dir)};`) +
        `console.log(JSON.stringify(Array.from((await embed(${JSON.stringify(TEXTS)})).data)));\n`,
    );
    const child = spawnSync(process.execPath, [join(app, "snippet.mjs")], { encoding: "utf8", cwd: app });
    assert.equal(child.status, 0, child.stderr);
    const [dims, json] = child.stdout.trim().split("\n");
    assert.equal(dims, "[ 2, 512 ]");
    assertClose(JSON.parse(json!) as number[], expected, "README snippet (onnxruntime-node) vs encode");
  });

  test("the project README shows the same snippet", () => {
    const snippet = /```js\n([\s\S]*?)```/.exec(useLiteOnnxReadme(model.useLite!))![1]!;
    const projectReadme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
    assert.ok(
      projectReadme.includes(snippet),
      "README.md's USE-lite ONNX snippet differs from useLiteOnnxReadme's",
    );
  });
});
