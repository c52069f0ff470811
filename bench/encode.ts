// Encode benchmark: texts per second to embed the financial passages (the recipe's corpus: the positives of
// data/financial/train.jsonl and test.jsonl, 7,000 texts) with a random bge-small-shaped model, batch 32,
// ragtune's length-sorted batching — against the same work in PyTorch (bench/reference/encode.py) in the same
// run: the same weights (ragtune saves the model, the reference loads its model.safetensors) and the same batches
// of the same token ids (ragtune's tokenizer writes them to a file the reference reads).
//
//   npm run bench:encode                                   # CPU: the first 256 passages (a few minutes here)
//   npm run bench:encode -- --device cuda                  # all 7,000 passages, float32
//   npm run bench:encode -- --device cuda --dtype bfloat16 # bfloat16 weights on both sides
//   npm run bench:encode -- --json                         # one JSON object on stdout
//
// Lines (each timed in alternating ragtune / PyTorch blocks, bench/util.ts runInterleaved):
//   encode   ragtune: model.encodeTensor(texts, {batchSize}) — tokenization (token counts, sort, per-batch
//            padding) included, as users call it; PyTorch: the same sorted batches from token ids (building the
//            tensors per batch included, tokenization not: plain torch has no tokenizer), forward, CLS pooling,
//            normalize, concatenation, input order restored.
//            ragtune's encode runs packed (padding-free) forward passes, its default; --packing off for padded.
//   forward  the same minus tokenization on both sides: the batches' tensors are built beforehand (padded
//            batches on both sides: the engine's own speed, without the packing gain).
// Also printed: the padding that length-sorted batching saves against batching in input order.
import { cat, keep, noGrad, tensor, tidy, type Tensor } from "../src/engine/index.ts";
import type { Features } from "../src/models/sentence-transformer.ts";
import {
  BGE_SMALL,
  SHAPE_HELP,
  SHAPE_OPTIONS,
  applyDeviceDefaults,
  createBenchModel,
  cutBatches,
  fmtS,
  lengthSortedOrder,
  padding,
  pct,
  printLines,
  readPairs,
  shapeFrom,
  shapeName,
  tokenBatch,
  withTarget,
  writeJsonFile,
  type Padding,
} from "./models.ts";
import {
  emitJson,
  intOption,
  loadedBlas,
  log,
  machineContext,
  parseCli,
  printContext,
  runInterleaved,
  usageError,
  type BenchCase,
  type ReferenceOutcome,
} from "./util.ts";

/** ragtune's time at most 5% above PyTorch's. */
const TARGET = 1.05;
const CPU_DEFAULT_LIMIT = 256;

const USAGE = `npm run bench:encode -- [options]
Encode options:
  --limit N        embed the first N of the 7,000 passages (default: all on CUDA, ${CPU_DEFAULT_LIMIT} on the CPU)
  --batch-size N   texts per batch (default 32)
  --cases LIST     encode,forward (default: both on CUDA; encode on the CPU, where tokenization is noise)
  --packing on|off ragtune's encode line: packed forward passes (on, the default) or padded (off)
${SHAPE_HELP}`;

const { common, values } = parseCli(
  {
    ...SHAPE_OPTIONS,
    limit: { type: "string" },
    "batch-size": { type: "string" },
    cases: { type: "string" },
    packing: { type: "string" },
  },
  { repeat: 2, warmup: 0 },
  USAGE,
);
applyDeviceDefaults(common, values, { cpu: { repeat: 2, warmup: 0 }, cuda: { repeat: 8, warmup: 2 } });
const onCuda = common.device.startsWith("cuda");
if (values.packing !== undefined && values.packing !== "on" && values.packing !== "off")
  usageError(`--packing must be on or off, got "${String(values.packing)}"`);
const packing = values.packing !== "off";
const shape = shapeFrom(values, BGE_SMALL);
const batchSize = intOption(values["batch-size"], "batch-size", 32, 1);
const caseNames = String(values.cases ?? (onCuda ? "encode,forward" : "encode")).split(",");
for (const c of caseNames) if (c !== "encode" && c !== "forward") usageError(`--cases: unknown case ${c}`);

interface Check {
  maxAbsDiff: number;
  absSum: { ragtune: number; torch: number };
  tolerance: number;
  match: boolean;
}

function compareCheck(rows: number[][], absSum: number, ref: ReferenceOutcome): Check | null {
  if (!ref.ran) return null;
  const theirs = ref.output.check as { rows: number[][]; absSum: number } | undefined;
  if (!theirs) return null;
  let maxAbsDiff = 0;
  rows.forEach((r, i) =>
    r.forEach((x, j) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x - (theirs.rows[i]?.[j] ?? NaN))))),
  );
  if (theirs.rows.length !== rows.length) maxAbsDiff = NaN;
  const tolerance = common.dtype === "float32" || common.dtype === "float64" ? (onCuda ? 1e-3 : 1e-4) : 5e-2;
  return {
    maxAbsDiff,
    absSum: { ragtune: absSum, torch: theirs.absSum },
    tolerance,
    match: maxAbsDiff <= tolerance,
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const ctx = machineContext(common.device);
  const texts = [...readPairs("train"), ...readPairs("test")].map((p) => p.positive);
  const limit = Math.min(
    texts.length,
    intOption(values.limit, "limit", onCuda ? texts.length : CPU_DEFAULT_LIMIT, 1),
  );
  const subset = texts.slice(0, limit);

  log(`[ragtune] creating a random model (${shapeName(shape)}) …`);
  const bench = createBenchModel(shape, { device: common.device, dtype: common.dtype, seed: common.seed });
  const { model } = bench;
  model.eval();
  const maxLen = model.maxSeqLength;
  try {
    // Padding of the whole corpus and of the measured texts: length-sorted batches vs input order.
    const tc = performance.now();
    const counts = texts.map((t) => model.tokenizer.countTokens(t));
    const countMs = performance.now() - tc;
    const lengths = counts.map((n) => Math.min(n, maxLen));
    const pad = (n: number) => {
      const idx = Array.from({ length: n }, (_, i) => i);
      return {
        sorted: padding(cutBatches(lengthSortedOrder(counts.slice(0, n)), batchSize), lengths),
        inputOrder: padding(cutBatches(idx, batchSize), lengths),
      };
    };
    const padAll = pad(texts.length);
    const padSubset = limit === texts.length ? padAll : pad(limit);

    // The batches both sides encode, and the file the reference reads.
    const order = lengthSortedOrder(counts.slice(0, limit));
    const batches = cutBatches(order, batchSize);
    const tb = performance.now();
    const tokenBatches = batches.map((b) =>
      tokenBatch(
        model,
        b.map((i) => subset[i]!),
      ),
    );
    const batchMs = performance.now() - tb;
    const tokenizeMs = (countMs * limit) / texts.length + batchMs; // what encodeTensor spends tokenizing
    const file = writeJsonFile(bench.dir, "encode-batches.json", { order, batches: tokenBatches });

    const prebuilt: Features[] = keep(batches.map((b) => model.tokenize(b.map((i) => subset[i]!))));
    const inverse = new BigInt64Array(order.length);
    order.forEach((orig, pos) => (inverse[orig] = BigInt(pos)));
    const inverseT = keep(tensor(inverse, { device: common.device }));
    const forwardAll = (): Tensor =>
      noGrad(() =>
        tidy(() => {
          const blocks = prebuilt.map((f) => model.forward(f).float()); // each (b, D)
          return cat(blocks, 0).indexSelect(0, inverseT); // (N, D) in input order
        }),
      );
    const label = `${limit.toLocaleString("en-US")} passages, batch ${batchSize}`;
    const cases: BenchCase[] = [];
    if (caseNames.includes("encode"))
      cases.push({
        id: "encode",
        label: `encode ${label} (ragtune incl. tokenization)`,
        run: () => tidy(() => void model.encodeTensor(subset, { batchSize, packing })),
      });
    if (caseNames.includes("forward"))
      cases.push({
        id: "forward",
        label: `forward ${label} (pre-tokenized)`,
        run: () => tidy(() => void forwardAll()),
      });

    const refArgs = [
      ["--device", common.device],
      ["--dtype", common.dtype],
      ["--repeat", common.repeat],
      ["--warmup", common.warmup],
      ["--threads", common.threads],
      ["--seed", common.seed],
      ["--model", bench.dir],
      ["--batches", file],
      ["--cases", caseNames.join(",")],
    ].flatMap(([k, v]) => [String(k), String(v)]);
    log(
      `[ragtune] ${limit} texts in ${batches.length} batches; timing ${cases.map((c) => c.id).join(", ")}: ` +
        `${common.warmup} warm-up + ${common.repeat} timed calls per side`,
    );
    const run = await runInterleaved("encode.py", refArgs, cases, { ...common });
    const results = withTarget(run.results, TARGET);
    const ref = run.reference;
    ctx.blasLoaded = loadedBlas();

    // Check: the embeddings of both sides (ragtune's own encode path) agree.
    const { rows, absSum } = tidy(() => {
      const e = model.encodeTensor(subset, { batchSize }).to("float64");
      const n = Math.min(4, limit);
      const flat = e.narrow(0, 0, n).contiguous().toArray() as Float64Array;
      const dim = e.size(1);
      return {
        rows: Array.from({ length: n }, (_, i) => Array.from(flat.subarray(i * dim, (i + 1) * dim))),
        absSum: e.abs().sum().item(),
      };
    });
    const check = compareCheck(rows, absSum, ref);
    for (const f of prebuilt) [f.inputIds, f.attentionMask, f.tokenTypeIds].forEach((t) => t.dispose());
    inverseT.dispose();

    const rate = (ms: number | undefined) => (ms === undefined ? null : limit / (ms / 1000));
    const throughput = results.map((r) => ({
      id: r.id,
      ragtuneTextsPerSecond: rate(r.ragtune.medianMs),
      torchTextsPerSecond: r.torch ? rate(r.torch.medianMs) : null,
    }));
    const encodeLine = results.find((r) => r.id === "encode");
    const totalSeconds = (performance.now() - t0) / 1000;
    const paddingJson = (p: { sorted: Padding; inputOrder: Padding }) => ({
      ...p,
      tokensSaved: 1 - p.sorted.slots / p.inputOrder.slots,
    });

    if (common.json) {
      emitJson({
        benchmark: "encode",
        target: TARGET,
        options: { ...common, ...shape, limit, batchSize, cases: caseNames },
        model: { shape, parameters: bench.parameters, createSeconds: bench.seconds, maxSeqLength: maxLen },
        data: {
          texts: texts.length,
          encoded: limit,
          batches: batches.length,
          realTokens: padSubset.sorted.real,
          meanTokens: padSubset.sorted.real / limit,
        },
        padding: { all: paddingJson(padAll), measured: paddingJson(padSubset) },
        context: ctx,
        reference: ref.ran
          ? { ran: true, python: ref.python, context: ref.context }
          : { ran: false, reason: ref.reason },
        results,
        throughput,
        ragtuneTokenizationMs: tokenizeMs,
        check,
        totalSeconds,
      });
      return;
    }

    console.log(
      `ragtune encode benchmark — ${common.device}, ${common.dtype}; random model (${shapeName(shape)}, ` +
        `${(bench.parameters / 1e6).toFixed(1)}M parameters, CLS pooling, normalized), max_seq_length ${maxLen}; ` +
        `per line and side ${common.warmup} warm-up + ${common.repeat} timed calls, alternating ragtune and PyTorch`,
    );
    printContext(ctx, ref);
    if (limit < texts.length)
      console.log(
        `NOTE: ${limit.toLocaleString("en-US")} of the ${texts.length.toLocaleString("en-US")} passages (the first ` +
          `ones, in file order)${onCuda ? "" : ", the CPU default to keep the run to a few minutes"}; ` +
          `--limit ${texts.length} for all`,
      );
    console.log(
      `texts: ${limit.toLocaleString("en-US")} passages, ${padSubset.sorted.real.toLocaleString("en-US")} tokens ` +
        `(mean ${(padSubset.sorted.real / limit).toFixed(1)}, longest ${Math.max(...lengths.slice(0, limit))} after ` +
        `truncation to ${maxLen}), ${batches.length} length-sorted batches of ${batchSize}; PyTorch attention: ` +
        `${ref.ran ? (ref.context.fusedAttention ? "F.scaled_dot_product_attention" : "explicit softmax(QKᵀ/√d + mask)V") : "—"}`,
    );
    console.log("");
    printLines(results, TARGET);
    console.log("");
    for (const t of throughput) {
      console.log(
        `${t.id.padEnd(8)} ragtune ${t.ragtuneTextsPerSecond?.toFixed(1) ?? "—"} texts/s, PyTorch ` +
          `${t.torchTextsPerSecond?.toFixed(1) ?? "—"} texts/s`,
      );
    }
    if (encodeLine)
      console.log(
        `ragtune's tokenization (token counts for the sort + per-batch encoding, measured once outside the ` +
          `timed calls): ${fmtS(tokenizeMs / 1000)} s = ${pct(tokenizeMs / encodeLine.ragtune.medianMs)} of its ` +
          `encode time; the PyTorch side starts from token ids`,
      );
    const padLine = (name: string, p: { sorted: Padding; inputOrder: Padding }) =>
      console.log(
        `padding (${name}): length-sorted batches ${(100 * p.sorted.paddedPerReal).toFixed(1)} padded per 100 real ` +
          `tokens (${pct(p.sorted.fraction)} of slots) vs input order ${(100 * p.inputOrder.paddedPerReal).toFixed(1)} ` +
          `per 100 (${pct(p.inputOrder.fraction)}): sorting processes ` +
          `${pct(1 - p.sorted.slots / p.inputOrder.slots)} fewer token slots ` +
          `(${p.sorted.slots.toLocaleString("en-US")} vs ${p.inputOrder.slots.toLocaleString("en-US")})`,
      );
    padLine(`all ${texts.length.toLocaleString("en-US")} passages`, padAll);
    if (limit < texts.length) padLine(`the ${limit} measured`, padSubset);
    if (check) {
      console.log(
        `check (embeddings of the first ${rows.length} texts, ragtune encode vs PyTorch): ` +
          `${check.match ? "match" : "MISMATCH"} — max |diff| ${check.maxAbsDiff.toExponential(1)} ` +
          `(tolerance ${check.tolerance}); Σ|e| ragtune ${check.absSum.ragtune.toFixed(4)}, ` +
          `PyTorch ${check.absSum.torch.toFixed(4)}`,
      );
    }
    if (!ref.ran) console.log(`\nThe PyTorch reference was NOT run: ${ref.reason}`);
    else {
      const over = results.filter((r) => r.pass === false);
      console.log(
        over.length === 0
          ? `\nall ${results.length} line(s) within the target ratio ≤ ${TARGET.toFixed(2)}`
          : `\n${over.length} line(s) over the target ratio ${TARGET.toFixed(2)}: ${over.map((r) => r.id).join(", ")}`,
      );
    }
    console.log(
      `total ${totalSeconds.toFixed(0)} s (model created, saved and loaded in ${bench.seconds.toFixed(1)} s; ` +
        `median ragtune encode ${encodeLine ? fmtS(encodeLine.ragtune.medianMs / 1000) : "—"} s)`,
    );
  } finally {
    bench.dispose();
  }
}

await main();
