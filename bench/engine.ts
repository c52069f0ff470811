// Engine benchmark: raw matmul throughput and one BERT encoder layer (forward, forward+backward) in ragtune,
// against the same work in PyTorch (bench/reference/engine.py, run in the same invocation).
//
//   npm run bench:engine                       # table on stdout (progress on stderr)
//   npm run -s bench:engine -- --json          # one JSON object on stdout (-s: without npm's banner line)
//   npm run bench:engine -- --device cuda --dtype bfloat16 --hidden 768
//
// Both sides run at once: the reference stays alive (--serve) and the driver alternates single timed calls of
// ragtune and PyTorch (bench/util.ts: runInterleaved), so load from other processes weighs on both alike.
//
// The layer is transformers' BertLayer in functional form: Q/K/V projections, scaled dot-product attention with
// an additive padding mask (B,1,1,L) of 0 / finfo(dtype).min (sequence lengths drawn from a seeded LCG, the
// same on both sides), output projection + residual + LayerNorm(eps 1e-12), erf-GELU FFN + residual +
// LayerNorm. Dropout runs in train mode with p = 0 by default (--dropout to change it), so both sides do
// deterministic, identical work; the inputs come from the same libtorch CPU generator with the same seed, so
// checksums of the output and gradients are compared as well.
import {
  arange,
  dropout,
  layerNorm,
  linear,
  manualSeed,
  native,
  noGrad,
  randn,
  scaledDotProductAttention,
  tensor,
  tidy,
  zeros,
  type DType,
  type Tensor,
} from "../src/engine/index.ts";
import {
  emitJson,
  intOption,
  lcgLengths,
  loadedBlas,
  machineContext,
  parseCli,
  printComparison,
  printContext,
  runInterleaved,
  usageError,
  TARGET_RATIO,
  type BenchCase,
  type CommonArgs,
  type ReferenceOutcome,
} from "./util.ts";

const USAGE = `npm run bench:engine -- [options]
Engine options:
  --hidden N     layer hidden size (default 384; 768 = BERT-base)
  --heads N      attention heads (default 12)
  --ffn N        FFN size (default 4 × hidden)
  --batch N      sequences per batch (default 32)
  --seq N        padded sequence length (default 128)
  --min-len N    shortest random sequence length (default 20)
  --dropout P    dropout probability in the train-mode passes (default 0: deterministic, comparable)
  --cases LIST   matmul,layer (default both)`;

const { common, values } = parseCli(
  {
    hidden: { type: "string" },
    heads: { type: "string" },
    ffn: { type: "string" },
    batch: { type: "string" },
    seq: { type: "string" },
    "min-len": { type: "string" },
    dropout: { type: "string" },
    cases: { type: "string", default: "matmul,layer" },
  },
  { repeat: 15, warmup: 1 },
  USAGE,
);

const hidden = intOption(values.hidden, "hidden", 384, 1);
const cfg = {
  hidden,
  heads: intOption(values.heads, "heads", 12, 1),
  ffn: intOption(values.ffn, "ffn", 4 * hidden, 1),
  batch: intOption(values.batch, "batch", 32, 1),
  seq: intOption(values.seq, "seq", 128, 1),
  minLen: intOption(values["min-len"], "min-len", 20, 1),
  dropout: values.dropout === undefined ? 0 : Number(values.dropout),
};
if (cfg.hidden % cfg.heads !== 0)
  usageError(`--hidden ${cfg.hidden} is not a multiple of --heads ${cfg.heads}`);
if (cfg.minLen > cfg.seq) usageError(`--min-len ${cfg.minLen} exceeds --seq ${cfg.seq}`);
if (!(cfg.dropout >= 0 && cfg.dropout < 1))
  usageError(`--dropout: expected 0 ≤ p < 1, got ${values.dropout}`);
const cases = new Set(String(values.cases).split(","));
for (const c of cases) if (c !== "matmul" && c !== "layer") usageError(`--cases: unknown case ${c}`);

// ---------------------------------------------------------------------------------------------------------
// Matmuls (the shapes of bench/reference/engine.py's MATMULS)

interface MatmulCase {
  id: string;
  label: string;
  a: number[];
  b: number[];
  flops: number;
}
const MATMULS: MatmulCase[] = [
  { id: "matmul_4096x768x768", label: "matmul [4096×768]@[768×768]", a: [4096, 768], b: [768, 768] },
  { id: "matmul_4096x768x3072", label: "matmul [4096×768]@[768×3072]", a: [4096, 768], b: [768, 3072] },
  { id: "bmm_384x128x64x128", label: "bmm [384,128,64]@[384,64,128]", a: [384, 128, 64], b: [384, 64, 128] },
].map((c) => {
  const batch = c.a.length === 3 ? c.a[0]! : 1;
  const [m, k] = c.a.slice(-2) as [number, number];
  const n = c.b[c.b.length - 1]!;
  return { ...c, flops: 2 * batch * m * k * n };
});

/** A float32 draw from the default CPU generator, moved to the benchmark's dtype and device. */
function draw(shape: number[], args: CommonArgs, scale = 1, shift = 0): Tensor {
  return tidy(() => {
    let t = randn(shape);
    if (scale !== 1) t = t.mul(scale);
    if (shift !== 0) t = t.add(shift);
    return t.to(args.dtype).to(args.device);
  });
}

function matmulCases(args: CommonArgs): { cases: BenchCase[]; dispose: () => void } {
  const inputs = MATMULS.map((c) => ({ c, a: draw(c.a, args), b: draw(c.b, args) }));
  return {
    cases: inputs.map(({ c, a, b }) => ({
      id: c.id,
      label: c.label,
      flops: c.flops,
      run: () => tidy(() => void a.matmul(b)),
    })),
    dispose: () => inputs.forEach(({ a, b }) => (a.dispose(), b.dispose())),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The BERT layer

interface LayerParams {
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  wo: Tensor;
  wi: Tensor;
  wo2: Tensor;
  bq: Tensor;
  bk: Tensor;
  bv: Tensor;
  bo: Tensor;
  bi: Tensor;
  bo2: Tensor;
  ln1w: Tensor;
  ln1b: Tensor;
  ln2w: Tensor;
  ln2b: Tensor;
}

/** transformers' BertLayer (BertSelfAttention → BertSelfOutput → BertIntermediate → BertOutput), functional. */
function bertLayer(p: LayerParams, x: Tensor, mask: Tensor, heads: number, pDrop: number, training: boolean) {
  const [b, l, h] = x.shape as [number, number, number];
  const split = (t: Tensor): Tensor => t.view([b, l, heads, h / heads]).transpose(1, 2);
  const q = split(linear(x, p.wq, p.bq));
  const k = split(linear(x, p.wk, p.bk));
  const v = split(linear(x, p.wv, p.bv));
  const attn = scaledDotProductAttention(q, k, v, { mask, dropoutP: training ? pDrop : 0 });
  const ctx = attn.transpose(1, 2).reshape([b, l, h]);
  const a = layerNorm(dropout(linear(ctx, p.wo, p.bo), pDrop, training).add(x), [h], p.ln1w, p.ln1b, 1e-12);
  const inter = linear(a, p.wi, p.bi).gelu();
  const o = dropout(linear(inter, p.wo2, p.bo2), pDrop, training);
  return layerNorm(o.add(a), [h], p.ln2w, p.ln2b, 1e-12);
}

/** Finite minimum of a float dtype (transformers fills the padding mask with it). */
const FINFO_MIN: Partial<Record<DType, number>> = {
  float32: -3.4028234663852886e38,
  float64: -1.7976931348623157e308,
  bfloat16: -3.3895313892515355e38,
  float16: -65504,
};

/** Same draws in the same order as engine.py's layer_inputs. */
function layerInputs(args: CommonArgs) {
  manualSeed(args.seed);
  const { hidden: h, ffn: f } = cfg;
  const param = (t: Tensor): Tensor => t.requiresGrad_(true);
  const x = param(draw([cfg.batch, cfg.seq, h], args));
  const w = (shape: number[]): Tensor => param(draw(shape, args, 0.02));
  const p = {} as LayerParams;
  p.wq = w([h, h]);
  p.wk = w([h, h]);
  p.wv = w([h, h]);
  p.wo = w([h, h]);
  p.wi = w([f, h]);
  p.wo2 = w([h, f]);
  p.bq = w([h]);
  p.bk = w([h]);
  p.bv = w([h]);
  p.bo = w([h]);
  p.bi = w([f]);
  p.bo2 = w([h]);
  p.ln1w = param(draw([h], args, 0.1, 1));
  p.ln1b = w([h]);
  p.ln2w = param(draw([h], args, 0.1, 1));
  p.ln2b = w([h]);
  const lengths = lcgLengths(args.seed, cfg.batch, cfg.minLen, cfg.seq);
  const mask = tidy(() => {
    const keepPos = arange(0, cfg.seq)
      .unsqueeze(0)
      .lt(tensor(lengths, { dtype: "int64" }).unsqueeze(1)); // (B, L) true = token
    const m = zeros([cfg.batch, 1, 1, cfg.seq]).maskedFill(
      keepPos.logicalNot().view([cfg.batch, 1, 1, cfg.seq]),
      FINFO_MIN[args.dtype] ?? -1e9,
    );
    return m.to(args.dtype).to(args.device);
  });
  return { x, p, mask, lengths };
}

interface LayerCheck {
  outAbsSum: number;
  wqGradNorm: number;
  xGradNorm: number;
}

function layerCases(args: CommonArgs, label: string) {
  const { x, p, mask, lengths } = layerInputs(args);
  const params = Object.values(p);
  const handles = [...params, x].map((t) => t.handle);
  const run = (pDrop: number) => bertLayer(p, x, mask, cfg.heads, pDrop, true);
  const cases: BenchCase[] = [
    {
      id: "layer_fwd",
      label: `${label} fwd (noGrad)`,
      run: () => noGrad(() => tidy(() => void run(cfg.dropout))),
    },
    {
      id: "layer_fwd_bwd",
      label: `${label} fwd+bwd`,
      run: () =>
        tidy(() => {
          run(cfg.dropout).sum().backward();
          native.zeroGrad(handles, true);
        }),
    },
  ];
  // Checksums (dropout off), compared with the reference's.
  const check = (): LayerCheck =>
    tidy(() => {
      const out = run(0);
      out.sum().backward();
      const r: LayerCheck = {
        outAbsSum: out.detach().to("float64").abs().sum().item(),
        wqGradNorm: p.wq.grad!.to("float64").norm().item(),
        xGradNorm: x.grad!.to("float64").norm().item(),
      };
      native.zeroGrad(handles, true);
      return r;
    });
  const dispose = () => [...params, x, mask].forEach((t) => t.dispose());
  return { cases, check, dispose, lengths };
}

// ---------------------------------------------------------------------------------------------------------

function referenceArgs(args: CommonArgs): string[] {
  return [
    ["--device", args.device],
    ["--dtype", args.dtype],
    ["--repeat", args.repeat],
    ["--warmup", args.warmup],
    ["--threads", args.threads],
    ["--seed", args.seed],
    ["--hidden", cfg.hidden],
    ["--heads", cfg.heads],
    ["--ffn", cfg.ffn],
    ["--batch", cfg.batch],
    ["--seq", cfg.seq],
    ["--min-len", cfg.minLen],
    ["--dropout", cfg.dropout],
    ["--cases", [...cases].join(",")],
  ].flatMap(([k, v]) => [String(k), String(v)]);
}

/** Relative differences of the checksums; tolerance by dtype (same libtorch ⇒ near-identical in float32). */
function compareChecks(mine: LayerCheck, ref: ReferenceOutcome, dtype: DType, lengths: number[]) {
  if (!ref.ran) return null;
  const theirs = ref.output.check as LayerCheck | null | undefined;
  const theirLengths = ref.output.lengths as number[] | null | undefined;
  if (!theirs) return null;
  const tol = dtype === "float32" || dtype === "float64" ? 1e-3 : 5e-2;
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
  const diffs = {
    outAbsSum: rel(mine.outAbsSum, theirs.outAbsSum),
    wqGradNorm: rel(mine.wqGradNorm, theirs.wqGradNorm),
    xGradNorm: rel(mine.xGradNorm, theirs.xGradNorm),
  };
  const sameLengths = JSON.stringify(theirLengths) === JSON.stringify(lengths);
  const match = sameLengths && Object.values(diffs).every((d) => d <= tol);
  return { ragtune: mine, torch: theirs, relDiff: diffs, tolerance: tol, sameLengths, match };
}

async function main(): Promise<void> {
  const args = common;
  const t0 = performance.now();
  const ctx = machineContext(args.device);
  const layerLabel = `BERT layer B${cfg.batch}×L${cfg.seq} H${cfg.hidden}/FFN${cfg.ffn}/${cfg.heads}h`;

  const mm = cases.has("matmul") ? matmulCases(args) : null;
  const layer = cases.has("layer") ? layerCases(args, layerLabel) : null;
  const { results, reference: ref } = await runInterleaved(
    "engine.py",
    referenceArgs(args),
    [...(mm?.cases ?? []), ...(layer?.cases ?? [])],
    args,
  );
  ctx.blasLoaded = loadedBlas(); // now that BLAS has run
  const layerCheck = layer?.check() ?? null;
  mm?.dispose();
  layer?.dispose();
  const check = layer && layerCheck ? compareChecks(layerCheck, ref, args.dtype, layer.lengths) : null;
  const totalS = (performance.now() - t0) / 1e3;

  if (args.json) {
    emitJson({
      benchmark: "engine",
      target: TARGET_RATIO,
      options: { ...args, ...cfg, cases: [...cases] },
      context: ctx,
      reference: ref.ran
        ? { ran: true, python: ref.python, context: ref.context }
        : { ran: false, reason: ref.reason },
      results,
      check,
      layer: layer ? { lengths: layer.lengths, check: layerCheck } : null,
      totalSeconds: totalS,
    });
    return;
  }

  console.log(
    `ragtune engine benchmark — ${args.device}, ${args.dtype}; per line and side ${args.warmup} warm-up + ` +
      `${args.repeat} timed calls, in ${args.rounds} rounds alternating ragtune and PyTorch (ABBA)`,
  );
  printContext(ctx, ref);
  if (layer) {
    const mean = layer.lengths.reduce((a, b) => a + b, 0) / layer.lengths.length;
    console.log(
      `layer: padding mask from seeded lengths ${cfg.minLen}..${cfg.seq} (mean ${mean.toFixed(1)}), ` +
        `erf-GELU, LayerNorm eps 1e-12, dropout p=${cfg.dropout} in train mode` +
        (cfg.dropout === 0 ? " (deterministic, identical work on both sides)" : "") +
        `; fwd+bwd = sum(out).backward() then grads set to none; attention: ` +
        `${ctx.libtorch.startsWith("1.") ? "explicit softmax(QKᵀ/√d + mask)V (libtorch 1.13 has no fused SDPA)" : "fused SDPA"}` +
        (ref.ran
          ? ` vs ${ref.context.fusedAttention ? "F.scaled_dot_product_attention" : "the same explicit path"}`
          : ""),
    );
  }
  console.log("");
  printComparison(results);
  if (check) {
    const d = check.relDiff;
    console.log(
      `check (same seeded inputs on both sides): ${check.match ? "outputs and gradients match" : "MISMATCH"} — ` +
        `rel. diff Σ|out| ${d.outAbsSum.toExponential(1)}, ‖∂Wq‖ ${d.wqGradNorm.toExponential(1)}, ` +
        `‖∂x‖ ${d.xGradNorm.toExponential(1)} (tolerance ${check.tolerance}` +
        `${check.sameLengths ? "" : "; the padding lengths differ"})`,
    );
  }
  if (!ref.ran) {
    console.log(`\nThe PyTorch reference was NOT run: ${ref.reason}`);
  } else {
    const over = results.filter((r) => r.pass === false);
    console.log(
      over.length === 0
        ? `\nall ${results.length} lines within the target ratio ≤ ${TARGET_RATIO.toFixed(2)}`
        : `\n${over.length} line(s) over the target ratio ${TARGET_RATIO.toFixed(2)}: ${over.map((r) => r.label).join("; ")}`,
    );
  }
  console.log(`total ${totalS.toFixed(0)} s`);
}

await main();
