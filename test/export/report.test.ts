// The HTML report from tiny synthetic run folders: every plot rendered as inline SVG, nothing external
// (no script, no http(s) src/href), every string from the run escaped (names, config values — also inside
// the SVG legends), several runs side by side, clear errors for unreadable folders; rendered in headless
// Chromium when /usr/bin/chromium exists (skipped otherwise).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, statSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { reportCommand } from "../../src/cli/report.ts";
import { buildReportHtml, escapeHtml, writeRunReport } from "../../src/export/report-html.ts";
import { loadRun } from "../../src/export/report-run.ts";
import { freshDir } from "../helpers/tiny-model.ts";

const EVIL = `<script>alert("x")</script>"'&`;

/** A run folder like `ragtune train --out` writes, 2 epochs of 4 steps, dims 64 and 32. */
function makeRun(
  dir: string,
  opts: { quantized?: boolean; evilName?: boolean; perQuery?: boolean } = {},
): string {
  const root = join(dir, opts.evilName ? `run <b>${"&"}` : "run");
  const ckpt = join(root, "checkpoint-8");
  mkdirSync(ckpt, { recursive: true });
  const metrics = (base: number) => ({
    "dim_64_cosine_ndcg@10": base,
    "dim_64_cosine_mrr@10": base - 0.05,
    "dim_64_cosine_recall@10": base + 0.1,
    "dim_32_cosine_ndcg@10": base - 0.1,
    "dim_32_cosine_mrr@10": base - 0.15,
    "dim_32_cosine_recall@10": base,
  });
  const eval_ = (m: Record<string, number>) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [`eval_${k}`, v]));
  const log: Array<Record<string, unknown>> = [];
  for (let step = 1; step <= 8; step++)
    log.push({ loss: 2 / step, grad_norm: 1, learning_rate: 2e-5 * (1 - step / 8), epoch: step / 4, step });
  log.splice(4, 0, { ...eval_(metrics(0.6)), epoch: 1, step: 4 });
  log.push({ ...eval_(metrics(0.7)), epoch: 2, step: 8 });
  log.push({ train_runtime: 12.5, train_loss: 0.9, epoch: 2, step: 8 });
  writeFileSync(join(root, "training_log.jsonl"), log.map((e) => JSON.stringify(e)).join("\n") + "\n");
  writeFileSync(join(root, "baseline_results.json"), JSON.stringify(eval_(metrics(0.5))));
  writeFileSync(join(root, "eval_results.json"), JSON.stringify(eval_(metrics(0.7))));
  writeFileSync(
    join(ckpt, "training_args.json"),
    JSON.stringify({ learningRate: 2e-5, matryoshkaDims: [64, 32], queryPrompt: EVIL }),
  );
  writeFileSync(
    join(ckpt, "trainer_state.json"),
    JSON.stringify({ global_step: 8, epoch: 2, log_history: [] }),
  );
  if (opts.perQuery) {
    // q1 gains (rank 3 → 1), q2 loses (1 → 2), q3 stays
    const rec = (id: string, query: string, ndcg: number, top: string[]) => ({
      queryId: id,
      query,
      dim: 64,
      score: "cosine",
      "ndcg@10": ndcg,
      firstRelevantRank: null,
      top: top.map((t, i) => ({
        corpusId: t,
        text: `passage ${t}`,
        score: 0.9 - i / 10,
        relevant: t === "rel",
      })),
    });
    const jsonl = (rows: object[]) => rows.map((x) => JSON.stringify(x)).join("\n") + "\n";
    writeFileSync(
      join(root, "baseline_per_query.jsonl"),
      jsonl([
        rec("q1", EVIL, 0.5, ["a", "b", "rel"]),
        rec("q2", "second query", 1, ["rel", "c", "d"]),
        rec("q3", "third", 1, ["rel"]),
      ]),
    );
    writeFileSync(
      join(root, "per_query.jsonl"),
      jsonl([
        rec("q1", EVIL, 1, ["rel", "a", "b"]),
        rec("q2", "second query", 0.63, ["c", "rel", "d"]),
        rec("q3", "third", 1, ["rel"]),
      ]),
    );
  }
  if (opts.quantized) {
    const rows = [
      { name: "dim_64", dim: 64, precision: "float32", rescore: null, bytesPerVector: 256 },
      { name: "dim_64_binary", dim: 64, precision: "binary", rescore: null, bytesPerVector: 8 },
      { name: "dim_64_binary_rescore4", dim: 64, precision: "binary", rescore: 4, bytesPerVector: 8 },
      { name: "dim_32", dim: 32, precision: "float32", rescore: null, bytesPerVector: 128 },
      { name: "dim_32_binary", dim: 32, precision: "binary", rescore: null, bytesPerVector: 4 },
      { name: "dim_32_binary_rescore4", dim: 32, precision: "binary", rescore: 4, bytesPerVector: 4 },
    ];
    const quantized = (floatBase: number, shift: number) => ({
      metrics: metrics(floatBase),
      quantized: {
        rows,
        rescoreCorpus: "quantized",
        calibration: null,
        metrics: {
          "dim_64_binary_cosine_ndcg@10": 0.55 - shift,
          "dim_64_binary_rescore4_cosine_ndcg@10": 0.68 - shift,
          "dim_32_binary_cosine_ndcg@10": 0.4 - shift,
          "dim_32_binary_rescore4_cosine_ndcg@10": 0.57 - shift,
        },
      },
    });
    writeFileSync(join(root, "quantized_results.json"), JSON.stringify(quantized(0.7, 0)));
    writeFileSync(join(root, "baseline_quantized_results.json"), JSON.stringify(quantized(0.5, 0.25)));
  }
  return root;
}

/** Asserts the page loads nothing from outside and runs no script. */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\(/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
}

describe("ragtune report", () => {
  test("one run: every section, SVG plots, escaped strings, nothing external", async () => {
    const run = makeRun(freshDir("report"), { quantized: true, evilName: true, perQuery: true });
    const html = await buildReportHtml([loadRun(run)], { generatedAt: new Date(0) });
    assertSelfContained(html);
    // loss, learning rate, metrics per dim, retention, precision: five plots
    const svgs = html.match(/<svg[\s>][\s\S]*?<\/svg>/g) ?? [];
    assert.equal(svgs.length, 5);
    // every plot has data: line or bar marks, not only axes
    svgs.forEach((svg, i) =>
      assert.match(svg, /aria-roledescription="(line mark|bar)"/, `plot ${i} has no marks`),
    );
    assert.equal(html.match(/aria-roledescription="bar"/g)?.length, 3 * 2 * 4); // metrics × dims × (base, 2 evals, final)
    for (const h of [
      "Runs",
      "Training",
      "Retrieval metrics per Matryoshka dim",
      "Retention vs dim",
      "Dim × precision",
      "Per-query examples",
    ])
      assert.ok(html.includes(`<h2>${h}</h2>`), h);
    assert.ok(html.includes(escapeHtml(EVIL)), "the config value is shown escaped");
    assert.ok(html.includes("run &#60;b&#62;&#38;"), "the run name is escaped");
    assert.doesNotMatch(html, /run <b>&/); // nor raw in the SVG legends or titles
    // the metrics table: dim 64 nDCG@10 baseline 0.5 → final 0.7
    assert.match(
      html,
      /<td>64<\/td><td class="num">0\.5000<\/td><td class="num">0\.7000<\/td><td class="num">\+0\.2000<\/td>/,
    );
    // the dim × precision table: 256 bytes at 64 dims is 1×, binary 8 bytes is 32×; nDCG@10 of the base
    // model 0.30, fine-tuned 0.55, which is 0.55 / 0.70 = 78.6% of float32 at that dim
    assert.match(
      html,
      /<td>64<\/td><td>binary<\/td><td class="num">8<\/td><td class="num">32×<\/td><td class="num">0\.3000<\/td><td class="num">0\.5500<\/td>.*78\.6%/,
    );
    // per-query examples: q1 gained +0.5, q2 lost -0.37, q3 unchanged; the query text is escaped
    assert.match(html, /3 queries at dim 64: 1 gained, 1 lost, 1 unchanged/);
    assert.ok(html.includes(`<b>${escapeHtml(EVIL)}</b> — nDCG@10 0.500 → 1.000 (+0.500)`));
    assert.match(html, /<b>second query<\/b> — nDCG@10 1\.000 → 0\.630 \(-0\.370\)/);
    assert.match(html, /<li class="rel">✓ passage rel <span class="score">0\.900<\/span><\/li>/);
  });

  test("several runs side by side; a run without quantized results says how to get them", async () => {
    const a = makeRun(freshDir("a"), { quantized: true });
    const b = makeRun(freshDir("b"));
    const out = join(freshDir("out"), "cmp.html");
    const write = process.stdout.write;
    let printed = "";
    process.stdout.write = ((s: string) => ((printed += s), true)) as typeof process.stdout.write;
    try {
      await reportCommand.run({ out }, [a, b]);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(printed.trim(), out);
    const html = readFileSync(out, "utf8");
    assertSelfContained(html);
    // both folders are named "run": the report labels them by path
    assert.ok(html.includes(escapeHtml(a)) && html.includes(escapeHtml(b)));
    assert.equal(html.match(/<div class="run">/g)?.length, 4 * 2); // runs, per-dim, precision, per-query
    assert.match(html, /no quantized_results\.json in this run/);
    assert.match(html, /not available: needs per_query\.jsonl and baseline_per_query\.jsonl/);
    // what `ragtune train` calls at the end: <run>/report.html
    assert.equal(await writeRunReport(b), join(b, "report.html"));
    assert.match(readFileSync(join(b, "report.html"), "utf8"), /^<!DOCTYPE html>/);
  });

  test("unreadable run folders are errors naming the file", () => {
    assert.throws(() => loadRun(freshDir("empty")), /no run files/);
    const run = makeRun(freshDir("bad"));
    writeFileSync(join(run, "training_log.jsonl"), '{"loss": 1, "step": 1}\nnot json\n');
    assert.throws(() => loadRun(run), /training_log\.jsonl:2: not JSON/);
  });

  test("renders in headless Chromium (skipped without /usr/bin/chromium)", async (t) => {
    if (!existsSync("/usr/bin/chromium")) {
      t.skip("/usr/bin/chromium is not installed");
      return;
    }
    const dir = freshDir("chromium");
    const file = join(dir, "report.html");
    writeFileSync(file, await buildReportHtml([loadRun(makeRun(dir, { quantized: true }))]));
    const shot = join(dir, "report.png");
    const r = spawnSync(
      "/usr/bin/chromium",
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        `--user-data-dir=${join(dir, "profile")}`,
        "--enable-logging=stderr",
        "--v=0",
        `--screenshot=${shot}`,
        "--window-size=1400,3000",
        `file://${file}`,
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(shot), "screenshot written");
    // The page's console (CSP violations, failed loads) is logged as CONSOLE lines with --enable-logging.
    const consoleLines = r.stderr.split("\n").filter((l) => /CONSOLE|Refused to|net::ERR_/.test(l));
    assert.deepEqual(consoleLines, [], "no console errors or blocked loads");
    assert.ok(statSync(shot).size > 20_000, "the screenshot has content");
  });
});
