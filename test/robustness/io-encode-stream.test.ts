// `ragtune encode` streams (issue #10 item 5): output is written per chunk while later chunks are still to be
// embedded, the writer waits for "drain" when the stream says its buffer is full, and the result equals one
// model.encode over all texts. Before, the whole output was joined into one string after encoding everything
// (30,000 texts × 1,024 dims: "Invalid string length", nothing written).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";

import { encodeLines, type TextEncoder } from "../../src/cli/encode-stream.ts";
import { textLines } from "../../src/data/index.ts";
import type { EmbeddingMatrix, EncodeOptions } from "../../src/models/sentence-transformer.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { tinyModelDir } from "../helpers/tiny-model.ts";

/** A fake model: text "t<i>" → [i, i+0.5, …] over `dim` values; counts its encode calls. */
class FakeEncoder implements TextEncoder {
  calls = 0;
  constructor(readonly dim: number) {}
  encode(texts: readonly string[], _options: EncodeOptions): EmbeddingMatrix {
    this.calls++;
    const data = new Float32Array(texts.length * this.dim);
    texts.forEach((t, r) => {
      const i = Number(t.slice(1));
      for (let k = 0; k < this.dim; k++) data[r * this.dim + k] = i + k / 2;
    });
    return { data, rows: texts.length, dim: this.dim };
  }
}

/**
 * A slow sink with a small buffer: write() returns false past 64 KiB, and each chunk is taken 1 ms later. It
 * records how many encode calls had happened at each write and the most bytes ever buffered.
 */
class SlowSink extends Writable {
  text = "";
  writesAtCall: number[] = [];
  maxBuffered = 0;
  falseReturns = 0;
  constructor(readonly model: FakeEncoder | null) {
    super({ highWaterMark: 64 * 1024, decodeStrings: false });
  }
  override write(chunk: string): boolean {
    this.writesAtCall.push(this.model?.calls ?? 0);
    const ok = super.write(chunk);
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    if (!ok) this.falseReturns++;
    return ok;
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += String(chunk);
    setTimeout(done, 1);
  }
}

async function* linesOf(texts: readonly string[]): AsyncGenerator<{ text: string; line: number }> {
  for (let i = 0; i < texts.length; i++) yield { text: texts[i]!, line: i + 1 };
}

describe("encode streams its output", () => {
  test("30,000 texts: every line arrives in order, written chunk by chunk, back-pressure honoured", async () => {
    const n = 30_000;
    const texts = Array.from({ length: n }, (_, i) => `t${i}`);
    const model = new FakeEncoder(8);
    const sink = new SlowSink(model);
    const count = await encodeLines(model, linesOf(texts), sink, "<test>", {
      chunkSize: 1000,
      writeSize: 16 * 1024,
    });
    await new Promise<void>((resolve) => sink.end(resolve));
    assert.equal(count, n);
    const lines = sink.text.split("\n");
    assert.equal(lines.pop(), "", "the output ends with a newline");
    assert.equal(lines.length, n);
    for (const i of [0, 1, 999, 1000, 29_999])
      assert.deepEqual(
        JSON.parse(lines[i]!),
        [0, 1, 2, 3].flatMap((k) => [i + k, i + k + 0.5]),
      );
    assert.equal(model.calls, 30, "one encode call per chunk of 1,000 texts");
    // Written while encoding: the first write came after the first chunk, long before the last one.
    assert.equal(sink.writesAtCall[0], 1);
    // Back-pressure: the sink said "full" and the writer waited, so the buffer never grew past one write.
    assert.ok(sink.falseReturns > 0, "the sink refused at least once");
    assert.ok(sink.maxBuffered < 64 * 1024 + 32 * 1024, `buffered at most ${sink.maxBuffered} bytes`);
  });

  test("with the tiny model: the same vectors as one encode call, with a small chunk and batch size", async () => {
    const model = SentenceTransformer.fromDir(tinyModelDir());
    try {
      const texts = Array.from({ length: 150 }, (_, i) => `text ${i} ${"word ".repeat(i % 13)}`);
      const sink = new SlowSink(null);
      await encodeLines(model, linesOf(texts), sink, "<test>", { batchSize: 4, chunkSize: 32 });
      await new Promise<void>((resolve) => sink.end(resolve));
      const rows = sink.text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as number[]);
      const want = model.encode(texts, { batchSize: 4 });
      assert.equal(rows.length, texts.length);
      rows.forEach((row, i) => {
        const expect = Array.from(want.data.subarray(i * want.dim, (i + 1) * want.dim));
        row.forEach((v, k) =>
          assert.ok(Math.abs(v - expect[k]!) < 1e-5, `row ${i}[${k}]: ${v} vs ${expect[k]}`),
        );
      });
      assert.ok(sink.writesAtCall.length >= 5, "one write per chunk at least");
    } finally {
      model.dispose();
    }
  });

  test("input is strict UTF-8 text: invalid bytes and NUL bytes stop with the line number", async () => {
    const model = new FakeEncoder(2);
    const bytes = (b: Buffer) =>
      (async function* () {
        yield b;
      })();
    const run = (b: Buffer) =>
      encodeLines(model, textLines(bytes(b), "in.txt"), new SlowSink(null), "in.txt");
    await assert.rejects(
      run(Buffer.from("t1\nt2\nt\xff3\n", "latin1")),
      /^DatasetError: in\.txt:3: not valid UTF-8$/,
    );
    await assert.rejects(
      run(Buffer.from("t1\nt2\0\n")),
      /in\.txt:2: contains a NUL byte: this looks like binary data/,
    );
    assert.equal(await run(Buffer.from("t1\r\nt2\n")), 2, "CRLF line ends are fine");
  });
});
