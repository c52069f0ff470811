// Training machinery: AdamW against the textbook formulas and PyTorch, gradient clipping, a small attention
// model that learns a toy task, RNG state, CPU autocast, threads and build info.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AdamW,
  autocast,
  buildInfo,
  clipGradNorm,
  crossEntropy,
  cudaAvailable,
  cudaMemory,
  defaultDevice,
  embedding,
  forkRng,
  getNumThreads,
  getRngState,
  gradNorm,
  keep,
  layerNorm,
  linear,
  manualSeed,
  matmul,
  native,
  noGrad,
  ones,
  randn,
  scaledDotProductAttention,
  setNumThreads,
  setRngState,
  setTf32,
  synchronize,
  tensor,
  tidy,
  zeros,
  type Device,
  type Tensor,
} from "../../src/engine/index.ts";
import { forEachDevice } from "./devices.ts";
import { assertAllClose, assertMatches, decode, loadGolden, num } from "./golden.ts";
import { prng } from "./gradcheck-util.ts";

const golden = loadGolden();
const dv = (d: Device): Device | undefined => (d === "cpu" ? undefined : d);
const f64 = (values: number[], d: Device): Tensor => tensor(Float64Array.from(values), { device: dv(d) });

// ---------------------------------------------------------------------------------------------------------
// (a) AdamW

forEachDevice(
  "AdamW: 3 steps equal the textbook formulas (decoupled weight decay, bias correction)",
  (device) => {
    tidy(() => {
      const lr = 0.05;
      const [b1, b2] = [0.9, 0.999];
      const eps = 1e-8;
      const wd = 0.01;
      const p0 = [0.5, -1.25, 2, 0.001];
      const grads = [
        [0.1, -0.2, 0.3, -0.4],
        [-0.5, 0.25, 0.0, 1.5],
        [0.05, 0.05, -2, 0.3],
      ];
      const p = f64(p0, device).requiresGrad_();
      const opt = new AdamW([p], { lr, betas: [b1, b2], eps, weightDecay: wd });
      // the reference, element by element
      const ref = [...p0];
      const m = p0.map(() => 0);
      const v = p0.map(() => 0);
      for (let t = 1; t <= 3; t++) {
        const g = grads[t - 1]!;
        for (let i = 0; i < ref.length; i++) {
          ref[i]! -= lr * wd * ref[i]!; // decoupled weight decay: θ ← θ − lr·λ·θ
          m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
          v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
          const mHat = m[i]! / (1 - b1 ** t);
          const vHat = v[i]! / (1 - b2 ** t);
          ref[i]! -= (lr * mHat) / (Math.sqrt(vHat) + eps);
        }
        p.grad = f64(g, device);
        opt.step();
        assert.equal(opt.stepCount, t);
        assertAllClose(p.toNumbers(), ref, { rtol: 1e-12, atol: 1e-14 }, `step ${t}`);
        const sd = opt.stateDict();
        assertAllClose(sd.expAvg[0]!.toNumbers(), m, { rtol: 1e-12, atol: 1e-15 }, `exp_avg ${t}`);
        assertAllClose(sd.expAvgSq[0]!.toNumbers(), v, { rtol: 1e-12, atol: 1e-15 }, `exp_avg_sq ${t}`);
      }
      opt.dispose();
    });
  },
);

forEachDevice(
  "AdamW: equals torch.optim.AdamW(foreach=False) for a parameter with gradients every step",
  (device) => {
    tidy(() => {
      const g = golden.adamw;
      const p1 = decode(g.p1, device).requiresGrad_();
      const p2 = decode(g.p2, device).requiresGrad_();
      const opt = new AdamW([{ params: [p1] }, { params: [p2], weightDecay: 0 }], {
        lr: g.lr,
        betas: g.betas,
        eps: g.eps,
        weightDecay: g.weightDecay,
      });
      g.steps.forEach((want, s) => {
        p1.grad = decode(g.grads1[s]!, device);
        const g2 = g.grads2[s];
        p2.grad = g2 ? decode(g2, device) : null;
        opt.step();
        assertMatches(p1, want.p1, `p1 after step ${s + 1}`);
        const sd = opt.stateDict();
        assertMatches(sd.expAvg[0]!, want.expAvg1, `exp_avg p1 step ${s + 1}`);
        assertMatches(sd.expAvgSq[0]!, want.expAvgSq1, `exp_avg_sq p1 step ${s + 1}`);
        if (want.expAvg2) assertMatches(sd.expAvg[1]!, want.expAvg2, `exp_avg p2 step ${s + 1}`);
        else assert.equal(sd.expAvg[1], null, "p2 has no state before its first gradient");
      });
      opt.dispose();
    });
  },
);

test("AdamW: a parameter above 1M elements (updated in slices) steps as the same values laid out otherwise", () => {
  // native/training.cc updates large contiguous parameters in slices of 2^20 elements; a non-contiguous leaf with
  // the same values takes the whole-tensor path. 2.5M elements: two full slices and a partial one.
  tidy(() => {
    manualSeed(3);
    const n = 1_250_000;
    const values = randn([2, n]);
    const sliced = values.clone().requiresGrad_(); // contiguous (2, n)
    const whole = values.transpose(0, 1).contiguous().transpose(0, 1).detach().requiresGrad_(); // (2, n) with strides (1, 2)
    assert.ok(sliced.isContiguous && !whole.isContiguous);
    for (const weightDecay of [0, 0.01]) {
      const a = new AdamW([sliced], { lr: 1e-3, weightDecay });
      const b = new AdamW([whole], { lr: 1e-3, weightDecay });
      for (let t = 0; t < 3; t++) {
        const g = randn([2, n]);
        sliced.grad = g.clone();
        whole.grad = g.clone();
        a.step();
        b.step();
      }
      const diff = sliced.sub(whole).abs().max().item();
      assert.ok(diff <= 1e-6, `weight decay ${weightDecay}: max |difference| ${diff}`);
      assert.ok(sliced.sub(values).abs().max().item() > 1e-4, "the steps moved the parameter");
      a.dispose();
      b.dispose();
    }
  });
});

test("AdamW: a parameter whose first gradient comes late is bias-corrected by its own step count, like PyTorch", () => {
  tidy(() => {
    const g = golden.adamw;
    const p1 = decode(g.p1).requiresGrad_();
    const p2 = decode(g.p2).requiresGrad_();
    const opt = new AdamW([{ params: [p1] }, { params: [p2], weightDecay: 0 }], {
      lr: g.lr,
      betas: g.betas,
      eps: g.eps,
      weightDecay: g.weightDecay,
    });
    g.steps.forEach((want, s) => {
      p1.grad = decode(g.grads1[s]!);
      const g2 = g.grads2[s];
      p2.grad = g2 ? decode(g2) : null;
      opt.step();
      assertMatches(p2, want.p2, `p2 after step ${s + 1}`);
    });
    opt.dispose();
  });
});

test("AdamW: zeroGrad, per-group weight decay, stateDict / loadStateDict resume the same trajectory", () => {
  tidy(() => {
    const run = (steps: number, resumeFrom?: { p: number[]; state: ReturnType<AdamW["stateDict"]> }) => {
      const p = f64(resumeFrom?.p ?? [1, -2, 3], "cpu").requiresGrad_();
      const q = f64([0.5, 0.5], "cpu").requiresGrad_();
      const opt = new AdamW([{ params: [p] }, { params: [q], weightDecay: 0 }], {
        lr: 0.1,
        weightDecay: 0.5,
      });
      if (resumeFrom) opt.loadStateDict(resumeFrom.state);
      for (let i = 0; i < steps; i++) {
        p.mul(p).sum().add(q.sum()).backward();
        opt.step();
        opt.zeroGrad();
        assert.equal(p.grad, null);
      }
      return { p, q, opt };
    };
    const straight = run(4);
    const first = run(2);
    const resumed = run(2, { p: first.p.toNumbers(), state: first.opt.stateDict() });
    assert.equal(resumed.opt.stepCount, 4);
    assertAllClose(resumed.p.toNumbers(), straight.p.toNumbers(), { rtol: 1e-15, atol: 0 }, "resumed");
    // weight decay 0 on q: a constant gradient of 1 moves it by exactly lr per step (Adam's m̂/√v̂ = 1)
    assertAllClose(straight.q.toNumbers(), [0.5 - 0.4, 0.5 - 0.4], { rtol: 1e-6, atol: 0 }, "q");
    // zeroGrad(false) keeps zero-filled gradients
    const p = f64([1, 2], "cpu").requiresGrad_();
    p.sum().backward();
    new AdamW([p]).zeroGrad(false);
    assert.deepEqual(p.grad!.toNumbers(), [0, 0]);
    for (const o of [straight.opt, first.opt, resumed.opt]) o.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// (b) gradient clipping

forEachDevice(
  "clipGradNorm returns the pre-clip norm and scales gradients like torch's clip_grad_norm_",
  (device) => {
    for (const c of golden.clipGradNorm) {
      tidy(() => {
        const normType = num(c.normType);
        const params = c.grads.map((g) =>
          zeros(g.shape, { dtype: "float64", device: dv(device) }).requiresGrad_(),
        );
        params.forEach((p, i) => (p.grad = decode(c.grads[i]!, device)));
        const pre = gradNorm(params, normType);
        const total = clipGradNorm(params, c.maxNorm, normType);
        const label = `maxNorm ${c.maxNorm}, p ${c.normType}`;
        assert.ok(
          Math.abs(total - c.totalNorm) <= 1e-12 * c.totalNorm,
          `${label}: total ${total} vs ${c.totalNorm}`,
        );
        // gradNorm computes in float32 (native/training.cc): agreement to single precision only
        assert.ok(Math.abs(pre - c.totalNorm) <= 1e-6 * c.totalNorm, `${label}: gradNorm ${pre}`);
        params.forEach((p, i) => assertMatches(p.grad!, c.clipped[i]!, `${label}: grad ${i}`));
        if (c.totalNorm > c.maxNorm) {
          const after = gradNorm(params, normType);
          assert.ok(Math.abs(after - c.maxNorm) < 1e-5 * c.maxNorm, `${label}: norm after clipping ${after}`);
        }
      });
    }
  },
);

test("clipGradNorm and gradNorm skip parameters without gradients; none at all gives 0", () => {
  tidy(() => {
    const a = zeros([2]).requiresGrad_();
    const b = zeros([2]).requiresGrad_();
    assert.equal(clipGradNorm([a, b], 1), 0);
    assert.equal(gradNorm([a, b]), 0);
    a.grad = tensor([3, 4]);
    assert.equal(gradNorm([a, b]), 5);
    const norm = clipGradNorm([a, b], 1);
    assert.ok(Math.abs(norm - 5) < 1e-6, `norm ${norm}`);
    assertAllClose(a.grad!.toNumbers(), [0.6, 0.8], { rtol: 1e-5, atol: 0 }, "clipped");
    assert.equal(b.grad, null);
  });
});

// ---------------------------------------------------------------------------------------------------------
// (c) a small attention + MLP model learns a toy task

const VOCAB = 16;
const DIM = 32;
const HEADS = 2;
const SEQ = 8;
const PAD = 0;
const NEEDLE = 3;

interface Batch {
  tokens: Tensor; // (B, L) int64
  mask: Tensor; // (B, 1, 1, L) bool: true = a real token
  weights: Tensor; // (B, L, 1) float: 1 for real tokens
  labels: Tensor; // (B) int64: does NEEDLE appear?
}

/** Sequences of 3..8 tokens from 1..15 padded with 0; half of them contain token 3. */
function makeBatch(r: () => number, n: number, device: Device): Batch {
  const tokens: number[] = [];
  const mask: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = 3 + Math.floor(r() * (SEQ - 2));
    const label = r() < 0.5 ? 1 : 0;
    const row = Array.from({ length: SEQ }, (_, j) => {
      if (j >= len) return PAD;
      let t = NEEDLE;
      while (t === NEEDLE) t = 1 + Math.floor(r() * (VOCAB - 1));
      return t;
    });
    if (label) row[Math.floor(r() * len)] = NEEDLE;
    tokens.push(...row);
    mask.push(...row.map((t) => (t === PAD ? 0 : 1)));
    labels.push(label);
  }
  const d = dv(device);
  return {
    tokens: tensor(tokens, { dtype: "int64", shape: [n, SEQ], device: d }),
    mask: tensor(mask, { dtype: "bool", shape: [n, 1, 1, SEQ], device: d }),
    weights: tensor(mask, { shape: [n, SEQ, 1], device: d }),
    labels: tensor(labels, { dtype: "int64", device: d }),
  };
}

function initModel(device: Device): Record<string, Tensor> {
  const d = dv(device);
  const w = (shape: number[], scale: number) => randn(shape, { device: d }).mul(scale).requiresGrad_();
  return tidy(() => ({
    emb: w([VOCAB, DIM], 0.5),
    wq: w([DIM, DIM], 1 / Math.sqrt(DIM)),
    wk: w([DIM, DIM], 1 / Math.sqrt(DIM)),
    wv: w([DIM, DIM], 1 / Math.sqrt(DIM)),
    wo: w([DIM, DIM], 1 / Math.sqrt(DIM)),
    ln1w: ones([DIM], { device: d, requiresGrad: true }),
    ln1b: zeros([DIM], { device: d, requiresGrad: true }),
    w1: w([2 * DIM, DIM], 1 / Math.sqrt(DIM)),
    b1: zeros([2 * DIM], { device: d, requiresGrad: true }),
    w2: w([DIM, 2 * DIM], 1 / Math.sqrt(2 * DIM)),
    b2: zeros([DIM], { device: d, requiresGrad: true }),
    ln2w: ones([DIM], { device: d, requiresGrad: true }),
    ln2b: zeros([DIM], { device: d, requiresGrad: true }),
    wc: w([2, DIM], 1 / Math.sqrt(DIM)),
    bc: zeros([2], { device: d, requiresGrad: true }),
  }));
}

/** embedding → one multi-head self-attention layer (padding masked) → LayerNorm → GELU MLP → LayerNorm →
 * mean over real tokens → linear classifier. */
function forward(m: Record<string, Tensor>, b: Batch): Tensor {
  const n = b.tokens.size(0);
  const x = embedding(m.emb!, b.tokens, PAD); // (B, L, D)
  const heads = (w: Tensor) =>
    linear(x, w)
      .reshape([n, SEQ, HEADS, DIM / HEADS])
      .transpose(1, 2);
  const a = scaledDotProductAttention(heads(m.wq!), heads(m.wk!), heads(m.wv!), { mask: b.mask })
    .transpose(1, 2)
    .reshape([n, SEQ, DIM]);
  const h = layerNorm(x.add(linear(a, m.wo!)), [DIM], m.ln1w, m.ln1b);
  const mlp = linear(linear(h, m.w1!, m.b1).gelu(), m.w2!, m.b2);
  const h2 = layerNorm(h.add(mlp), [DIM], m.ln2w, m.ln2b);
  const pooled = h2.mul(b.weights).sum(1).div(b.weights.sum(1)); // (B, D)
  return linear(pooled, m.wc!, m.bc);
}

function accuracy(m: Record<string, Tensor>, b: Batch): number {
  return tidy(() => noGrad(() => forward(m, b).argmax(-1).eq(b.labels).float().mean().item()));
}

forEachDevice("an attention + MLP model learns 'does token 3 appear' to ≥ 95% with AdamW", (device) => {
  trainToyModel(device);
});

function trainToyModel(device: Device): void {
  manualSeed(0);
  const model = initModel(device);
  const params = Object.values(model);
  const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.01 });
  const r = prng(2024);
  const heldOut = keep(makeBatch(r, 512, device));
  const before = accuracy(model, heldOut);
  assert.ok(before < 0.75, `untrained accuracy ${before}`);
  let loss = Infinity;
  let steps = 0;
  for (; steps < 400; steps++) {
    loss = tidy(() => {
      const batch = makeBatch(r, 64, device);
      const l = crossEntropy(forward(model, batch), batch.labels);
      l.backward();
      clipGradNorm(params, 1.0);
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
    if (steps % 50 === 49 && accuracy(model, heldOut) >= 0.98) break;
  }
  const after = accuracy(model, heldOut);
  assert.ok(after >= 0.95, `accuracy ${before} → ${after} after ${steps + 1} steps (loss ${loss})`);
  opt.dispose();
  for (const t of [...params, ...Object.values(heldOut)]) t.dispose();
}

// ---------------------------------------------------------------------------------------------------------
// (d) random number generators

forEachDevice(
  "manualSeed reproduces; getRngState / setRngState replay; forkRng leaves the outer sequence",
  (device) => {
    tidy(() => {
      const d = dv(device);
      const rngDevice: Device = device === "cpu" ? "cpu" : "cuda";
      const draw = () => randn([6], { device: d }).toNumbers();
      manualSeed(123);
      const a = draw();
      manualSeed(123);
      assert.deepEqual(draw(), a);
      manualSeed(124);
      assert.notDeepEqual(draw(), a);

      const state = getRngState(rngDevice);
      assert.equal(state.dtype, "uint8");
      const x = draw();
      const y = draw();
      setRngState(state, rngDevice);
      assert.deepEqual(draw(), x);
      assert.deepEqual(draw(), y);

      manualSeed(7);
      const expected = [draw(), draw()];
      manualSeed(7);
      const first = draw();
      const inner = forkRng(() => {
        randn([1000], { device: d });
        return draw();
      }, [rngDevice]);
      assert.deepEqual(first, expected[0]);
      assert.deepEqual(draw(), expected[1]); // as if the fork never drew
      assert.notDeepEqual(inner, expected[1]);
      // restored even when fn throws
      manualSeed(7);
      assert.throws(() =>
        forkRng(() => {
          draw();
          throw new Error("boom");
        }, [rngDevice]),
      );
      assert.deepEqual(draw(), expected[0]);
      assert.throws(() => manualSeed(-1), RangeError);
      assert.throws(() => manualSeed(1.5), RangeError);
    });
  },
);

// ---------------------------------------------------------------------------------------------------------
// (e) autocast, threads, build info

test("autocast on the CPU runs matmul in bfloat16 inside and float32 outside", () => {
  tidy(() => {
    manualSeed(11);
    const a = randn([3, 4]);
    const b = randn([4, 2]);
    const inside = autocast(() => matmul(a, b), { deviceType: "cpu" });
    assert.equal(inside.dtype, "bfloat16");
    assert.equal(matmul(a, b).dtype, "float32");
    // linear too; softmax (not on the lower-precision list) keeps its input's dtype
    const [lin, sm] = autocast(() => [linear(a, randn([5, 4])), a.softmax(-1)], { deviceType: "cpu" });
    assert.equal(lin!.dtype, "bfloat16");
    assert.equal(sm!.dtype, "float32");
    // the values are close to the product of the bfloat16-rounded inputs: within 2^-6 of Σ|a||b| (libtorch 1.13's
    // CPU bfloat16 gemm is measured at ≈ 6e-3 of Σ|a||b| for K = 4, less for larger K)
    const [ab, bb] = [a.to("bfloat16").float(), b.to("bfloat16").float()];
    const ref = matmul(ab, bb).toNumbers();
    const scale = matmul(ab.abs(), bb.abs()).toNumbers();
    inside.toNumbers().forEach((v, i) => {
      const e = ref[i]!;
      assert.ok(Math.abs(v - e) <= 2 ** -6 * scale[i]! + 1e-6, `bfloat16 matmul element ${i}: ${v} vs ${e}`);
    });
    // nested regions restore the outer state; enabled: false is a pass-through
    autocast(
      () => {
        autocast(() => assert.equal(matmul(a, b).dtype, "bfloat16"), { deviceType: "cpu" });
        assert.equal(matmul(a, b).dtype, "bfloat16");
      },
      { deviceType: "cpu" },
    );
    assert.equal(autocast(() => matmul(a, b), { deviceType: "cpu", enabled: false }).dtype, "float32");
    assert.throws(() =>
      autocast(
        () => {
          throw new Error("boom");
        },
        { deviceType: "cpu" },
      ),
    );
    assert.equal(matmul(a, b).dtype, "float32");
    // gradients flow back to float32 leaves through the bfloat16 matmul
    const w = randn([4, 2]).requiresGrad_();
    autocast(() => matmul(a, w), { deviceType: "cpu" })
      .float()
      .sum()
      .backward();
    assert.equal(w.grad!.dtype, "float32");
  });
});

test("autocast on CUDA runs matmul in bfloat16", { skip: !cudaAvailable() && "no CUDA here" }, () => {
  tidy(() => {
    const a = randn([3, 4], { device: "cuda" });
    const b = randn([4, 2], { device: "cuda" });
    assert.equal(autocast(() => matmul(a, b)).dtype, "bfloat16");
    assert.equal(autocast(() => matmul(a, b), { dtype: "float16" }).dtype, "float16");
    assert.equal(matmul(a, b).dtype, "float32");
  });
});

test(
  "nested autocast regions with different dtypes restore the outer dtype",
  {
    skip: !cudaAvailable() && "no CUDA here (libtorch 1.13's CPU autocast only takes bfloat16)",
  },
  () => {
    tidy(() => {
      const a = randn([3, 4], { device: "cuda" });
      autocast(() => {
        assert.equal(autocast(() => matmul(a, a.mT), { dtype: "float16" }).dtype, "float16");
        assert.equal(matmul(a, a.mT).dtype, "bfloat16");
      });
    });
  },
);

test("gradNorm of float64 gradients is exact in float64", () => {
  tidy(() => {
    const p = zeros([2], { dtype: "float64" }).requiresGrad_();
    p.grad = f64([1e-3, 1 + 1e-9], "cpu");
    const want = Math.hypot(1e-3, 1 + 1e-9);
    const got = gradNorm([p]);
    assert.ok(Math.abs(got - want) <= 1e-12 * want, `gradNorm ${got} vs ${want}`);
  });
});

test("setNumThreads / getNumThreads round trip", () => {
  const original = getNumThreads();
  assert.ok(original >= 1, `${original} threads`);
  try {
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    setNumThreads(2);
    assert.equal(getNumThreads(), 2);
    assert.throws(() => setNumThreads(0), /at least 1/);
  } finally {
    setNumThreads(original);
  }
  assert.equal(getNumThreads(), original);
});

test("buildInfo fields and the device helpers", () => {
  const info = buildInfo();
  assert.match(info.torchVersion, /^\d+\.\d+\.\d+/);
  assert.equal(typeof info.cudaBuild, "boolean");
  assert.equal(typeof info.cudaAvailable, "boolean");
  assert.equal(info.cudaAvailable, cudaAvailable());
  if (!info.cudaBuild) assert.equal(info.cudaAvailable, false);
  assert.ok(Number.isInteger(info.cudaDeviceCount) && info.cudaDeviceCount >= 0, `${info.cudaDeviceCount}`);
  assert.equal(info.cudaAvailable, info.cudaDeviceCount > 0);
  assert.equal(typeof info.cudaStats, "boolean");
  assert.ok(info.hardwareConcurrency >= 1, `${info.hardwareConcurrency}`);
  assert.equal(info.fusedAttention, Number(info.torchVersion.split(".")[0]) >= 2);
  assert.match(info.parallelInfo, /ATen/);
  assert.equal(defaultDevice(), info.cudaAvailable ? "cuda" : "cpu");
  synchronize(); // a no-op without CUDA
  const mem = cudaMemory();
  for (const k of ["allocated", "peakAllocated", "reserved", "peakReserved"] as const) {
    assert.equal(typeof mem[k], "number");
    if (!info.cudaStats) assert.equal(mem[k], 0);
  }
  const prev = setTf32(true);
  assert.equal(setTf32(prev), true);
});

// Last in the file: a failure here can leave CPU autocast switched on for the rest of the process.
test("autocast with a dtype the CPU may not support either works or throws and leaves autocast off", () => {
  tidy(() => {
    const a = randn([2, 2]);
    let inside: string | undefined;
    try {
      inside = autocast(() => matmul(a, a).dtype, { deviceType: "cpu", dtype: "float16" });
    } catch (e) {
      assert.match((e as Error).message, /Bfloat16|float16/i);
    }
    if (inside !== undefined) assert.equal(inside, "float16");
    try {
      assert.equal(matmul(a, a).dtype, "float32", "autocast is off again");
    } finally {
      native.setAutocast("cpu", false);
    }
  });
});
