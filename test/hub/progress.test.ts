// Tests of the reusable ProgressBar: in-place redraws on a TTY (throttled), occasional plain lines elsewhere, byte
// and count formatting, restarts (negative updates) and resumed work (skip) that must not inflate the rate.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { formatBytes, formatDuration, ProgressBar, progressEnabled } from "../../src/hub/index.ts";

/** A stream double that records writes, and a clock the test moves by hand. */
function harness(isTTY: boolean, columns = 200) {
  const writes: string[] = [];
  let t = 0;
  const stream = { isTTY, columns, write: (s: string) => writes.push(s) };
  return { writes, stream, now: () => t, tick: (ms: number) => (t += ms) };
}

describe("ProgressBar", () => {
  test("on a TTY: redraws one line in place, throttled, and ends it on done()", () => {
    const h = harness(true);
    const bar = new ProgressBar({
      label: "model.safetensors",
      unit: "B",
      total: 4000,
      stream: h.stream,
      now: h.now,
    });
    h.tick(1000);
    bar.update(1000);
    bar.update(500); // same instant: throttled
    assert.equal(h.writes.length, 1);
    assert.ok(
      h.writes[0]?.startsWith("\rmodel.safetensors  25% |#####...............| 1.0 kB/4.0 kB 1.0 kB/s"),
    );
    assert.ok(h.writes[0]?.endsWith("\x1b[K"));
    h.tick(1000);
    bar.update(500);
    assert.match(h.writes[1] ?? "", / 50% .*2\.0 kB\/4\.0 kB 1\.0 kB\/s eta 2s/);
    bar.update(2000);
    bar.done();
    bar.update(1); // after done: ignored
    const last = h.writes.at(-1) ?? "";
    assert.match(last, /100% \|#{20}\| 4\.0 kB\/4\.0 kB .* 2s\x1b\[K\n$/);
    assert.equal(h.writes.length, 3);
  });

  test("not a TTY: no carriage returns, at most one line per interval, then a summary", () => {
    const h = harness(false);
    const bar = new ProgressBar({
      label: "encode",
      unit: "ex",
      total: 100,
      stream: h.stream,
      now: h.now,
      plainIntervalMs: 5000,
    });
    for (let i = 0; i < 10; i++) {
      h.tick(1000);
      bar.update(10);
    }
    bar.done();
    assert.ok(h.writes.every((w) => !w.includes("\r") && w.endsWith("\n")));
    assert.equal(h.writes.length, 3); // at 5 s, at 10 s, summary
    assert.match(h.writes[0] ?? "", /^encode  50% .* 50\/100 10\.0 ex\/s eta 5s\n$/);
    assert.equal(h.writes[2], "encode: 100 in 10s (10.0 ex/s)\n");
  });

  test("unknown total shows the count and rate only; setTotal adds the bar", () => {
    const h = harness(true);
    const bar = new ProgressBar({ unit: "B", stream: h.stream, now: h.now });
    h.tick(2000);
    bar.update(3_000_000);
    assert.equal(h.writes[0], "\r3.0 MB 1.5 MB/s\x1b[K");
    h.tick(1000);
    bar.setTotal(6_000_000);
    assert.match(h.writes[1] ?? "", / 50% /);
  });

  test("negative updates (a restarted download) clamp at zero; skip() is not part of the rate", () => {
    const h = harness(true);
    const bar = new ProgressBar({ unit: "B", total: 1000, stream: h.stream, now: h.now, minIntervalMs: 0 });
    bar.skip(600);
    h.tick(1000);
    bar.update(100);
    assert.equal(bar.value, 700);
    assert.match(h.writes.at(-1) ?? "", /700 B\/1\.0 kB 100 B\/s/);
    bar.update(-5000);
    assert.equal(bar.value, 0);
  });

  test("a TTY line is cut to the terminal width", () => {
    const h = harness(true, 30);
    const bar = new ProgressBar({ label: "x".repeat(50), total: 10, stream: h.stream, now: h.now });
    h.tick(1000);
    bar.update(1);
    const line = (h.writes[0] ?? "").replace(/^\r|\x1b\[K$/g, "");
    assert.equal(line.length, 29);
    assert.ok(line.endsWith("…"));
  });
});

describe("formatting and enabling", () => {
  test("formatBytes / formatDuration", () => {
    assert.equal(formatBytes(999), "999 B");
    assert.equal(formatBytes(1500), "1.5 kB");
    assert.equal(formatBytes(438_000_000), "438 MB");
    assert.equal(formatBytes(2.5e9), "2.5 GB");
    assert.equal(formatDuration(42), "42s");
    assert.equal(formatDuration(125), "2:05");
    assert.equal(formatDuration(3723), "1:02:03");
    assert.equal(formatDuration(Infinity), "?");
  });

  test("progressEnabled: option > HF_HUB_DISABLE_PROGRESS_BARS > isTTY", () => {
    const tty = { isTTY: true, write: () => true };
    const pipe = { isTTY: false, write: () => true };
    assert.equal(progressEnabled(undefined, tty, {}), true);
    assert.equal(progressEnabled(undefined, pipe, {}), false);
    assert.equal(progressEnabled(true, pipe, {}), true);
    assert.equal(progressEnabled(false, tty, {}), false);
    assert.equal(progressEnabled(undefined, tty, { HF_HUB_DISABLE_PROGRESS_BARS: "1" }), false);
  });
});
