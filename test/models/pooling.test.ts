// Tests for Pooling, Normalize and Dense on a small hand-made batch, every expected value worked out below.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { liveTensors, tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import { Dense, DENSE_WEIGHTS_NAME } from "../../src/models/dense.ts";
import { excludePromptFromMask, Normalize, Pooling, poolOne } from "../../src/models/pooling.ts";
import { PT_FORMAT_METADATA, readSafetensors, writeSafetensors } from "../../src/models/safetensors.ts";
import type { DenseConfig, PoolingMode } from "../../src/models/st-folder.ts";

const root = mkdtempSync(join(tmpdir(), "ragtune-pooling-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

function assertClose(actual: Tensor | number[], expected: number[], tol = 1e-5): void {
  const got = Array.isArray(actual) ? actual : actual.toNumbers();
  assert.equal(got.length, expected.length, `length: got [${got.join(", ")}]`);
  got.forEach((v, i) => {
    const want = expected[i]!;
    const ok = v === want || Math.abs(v - want) <= tol * Math.max(1, Math.abs(want));
    assert.ok(ok, `index ${i}: got ${v}, want ${want} (got [${got.join(", ")}])`);
  });
}

// The batch: B=2 texts, L=4 positions, H=3.
// Row 0 is right-padded: tokens t0..t2 real, t3 padding (with large values, so max/mean leaks would show).
// Row 1 is left-padded: t0, t1 padding (large / mixed-sign values), t2 and t3 real.
const TOKENS = [
  [
    [1, 2, 3], //     t0 real
    [4, 5, 6], //     t1 real
    [7, 8, 9], //     t2 real
    [10, 11, 12], //  t3 padding
  ],
  [
    [20, -30, 40], // t0 padding
    [3, -4, 5], //    t1 padding
    [6, 7, -8], //    t2 real
    [9, 10, -11], //  t3 real
  ],
];
const MASK = [
  [1, 1, 1, 0],
  [0, 0, 1, 1],
];
const embeddings = () => tensor(TOKENS); // (2, 4, 3) float32
const mask = () => tensor(MASK, { dtype: "int64" }); // (2, 4)

// Expected values per mode, [row 0..., row 1...]. sentence-transformers 6.0.1's Pooling (torch 2.11) returned
// exactly these for this batch, as it did for the multi-mode, include_prompt=false and empty-row cases below.
const EXPECTED: Record<PoolingMode, number[]> = {
  // First attended token: row 0 position 0, row 1 position 2 (ST 6 skips left padding).
  cls: [1, 2, 3, 6, 7, -8],
  // Elementwise max over attended tokens: row 0 = t2; row 1 = max(t2, t3) = [9, 10, -8].
  max: [7, 8, 9, 9, 10, -8],
  // Row 0: (t0+t1+t2)/3 = [12,15,18]/3; row 1: (t2+t3)/2 = [15,17,-19]/2.
  mean: [4, 5, 6, 7.5, 8.5, -9.5],
  // Sums divided by sqrt(count): [12,15,18]/√3, [15,17,-19]/√2.
  mean_sqrt_len_tokens: [
    12 / Math.sqrt(3),
    15 / Math.sqrt(3),
    18 / Math.sqrt(3),
    15 / Math.SQRT2,
    17 / Math.SQRT2,
    -19 / Math.SQRT2,
  ],
  // Position weights 1..4. Row 0: (1·t0 + 2·t1 + 3·t2)/6 = [30,36,42]/6.
  // Row 1: (3·t2 + 4·t3)/7 = [18+36, 21+40, -24-44]/7 = [54, 61, -68]/7.
  weightedmean: [5, 6, 7, 54 / 7, 61 / 7, -68 / 7],
  // Last attended token: row 0 = t2, row 1 = t3.
  lasttoken: [7, 8, 9, 9, 10, -11],
};

const pooling = (modes: PoolingMode[], includePrompt = true) =>
  new Pooling({ embeddingDimension: 3, modes, includePrompt });

describe("Pooling", () => {
  for (const mode of Object.keys(EXPECTED) as PoolingMode[]) {
    test(`${mode} on a right- and a left-padded row`, () => {
      tidy(() => {
        const out = pooling([mode]).forward(embeddings(), mask()); // (2, 3)
        assert.deepEqual(out.shape, [2, 3]);
        assertClose(out, EXPECTED[mode]);
      });
    });
  }

  test("every mode at once: concatenated in the configured order", () => {
    tidy(() => {
      const modes: PoolingMode[] = [
        "cls",
        "max",
        "mean",
        "mean_sqrt_len_tokens",
        "weightedmean",
        "lasttoken",
      ];
      const p = pooling(modes);
      assert.equal(p.outputDimension, 18);
      const out = p.forward(embeddings(), mask()); // (2, 18)
      assert.deepEqual(out.shape, [2, 18]);
      const want = [0, 1].flatMap((row) => modes.flatMap((m) => EXPECTED[m].slice(row * 3, row * 3 + 3)));
      assertClose(out, want);
      // ST 6 keeps a list's order: mean before cls.
      assertClose(
        pooling(["mean", "cls"]).forward(embeddings(), mask()),
        [4, 5, 6, 1, 2, 3, 7.5, 8.5, -9.5, 6, 7, -8],
      );
    });
  });

  test("the mask may be bool or float; no mask means every token counts", () => {
    tidy(() => {
      assertClose(pooling(["mean"]).forward(embeddings(), tensor(MASK, { dtype: "bool" })), EXPECTED.mean);
      assertClose(pooling(["mean"]).forward(embeddings(), tensor(MASK)), EXPECTED.mean);
      // All 4 tokens: row 0 = [22,26,30]/4, row 1 = [38,-17,26]/4.
      assertClose(pooling(["mean"]).forward(embeddings()), [5.5, 6.5, 7.5, 9.5, -4.25, 6.5]);
    });
  });

  test("include_prompt=false drops the prompt after any left padding (ST 6 _exclude_prompt_from_mask)", () => {
    tidy(() => {
      // promptLength 1. Row 0 (right-padded): position 0 drops, mask [0,1,1,0]. Row 1 (left-padded, first real
      // token at 2): positions < 3 drop, mask [0,0,0,1].
      assert.deepEqual(excludePromptFromMask(mask(), 1).toNumbers(), [0, 1, 1, 0, 0, 0, 0, 1]);
      const p = pooling(["mean", "cls", "lasttoken"], false);
      // mean: row 0 (t1+t2)/2 = [5.5,6.5,7.5]; row 1 t3. cls: the first token left (t1; t3). lasttoken unchanged.
      assertClose(
        p.forward(embeddings(), mask(), { promptLength: 1 }),
        [5.5, 6.5, 7.5, 4, 5, 6, 7, 8, 9, 9, 10, -11, 9, 10, -11, 9, 10, -11],
      );
      // include_prompt=true ignores promptLength; no promptLength means nothing to exclude.
      assertClose(pooling(["mean"]).forward(embeddings(), mask(), { promptLength: 1 }), EXPECTED.mean);
      assertClose(pooling(["mean"], false).forward(embeddings(), mask()), EXPECTED.mean);
      // The caller's mask is not modified.
      const m = mask();
      p.forward(embeddings(), m, { promptLength: 1 });
      assert.deepEqual(m.toNumbers(), MASK.flat());
    });
  });

  test("a row with no attended token: mean 0, lasttoken 0, max -inf (as ST 6)", () => {
    tidy(() => {
      const m = tensor(
        [
          [0, 0, 0, 0],
          [0, 0, 1, 1],
        ],
        { dtype: "int64" },
      );
      assertClose(poolOne("mean", embeddings(), m), [0, 0, 0, 7.5, 8.5, -9.5]);
      assertClose(poolOne("lasttoken", embeddings(), m), [0, 0, 0, 9, 10, -11]);
      assertClose(poolOne("max", embeddings(), m), [-Infinity, -Infinity, -Infinity, 9, 10, -8]);
      assertClose(poolOne("cls", embeddings(), m), [1, 2, 3, 6, 7, -8]); // argmax of an all-zero row is 0
    });
  });

  test("gradients reach attended tokens only", () => {
    tidy(() => {
      const x = tensor(TOKENS, { requiresGrad: true });
      pooling(["mean", "max"]).forward(x, mask()).sum().backward();
      // mean: 1/3 to each real token of row 0, 1/2 of row 1; max: +1 to the argmax token per column.
      // Row 0: t0, t1 get 1/3; t2 gets 1/3 + 1; t3 (padding) 0. Row 1: t2 col 2 is the max (-8); t3 cols 0, 1.
      const g = x.grad!;
      const third = 1 / 3;
      assertClose(g, [
        third,
        third,
        third,
        third,
        third,
        third,
        1 + third,
        1 + third,
        1 + third,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0.5,
        0.5,
        1.5,
        1.5,
        1.5,
        0.5,
      ]);
    });
  });

  test("shape errors name both shapes; no tensors leak", () => {
    const before = liveTensors();
    tidy(() => {
      assert.throws(
        () => pooling(["mean"]).forward(embeddings(), tensor([[1, 1, 1]])),
        /\[2, 4, 3\] and \[1, 3\]/,
      );
    });
    tidy(
      () =>
        void pooling(["cls", "max", "mean", "weightedmean", "lasttoken"], false).forward(
          embeddings(),
          mask(),
          { promptLength: 2 },
        ),
    );
    assert.equal(liveTensors(), before);
  });
});

describe("Normalize", () => {
  test("L2 along the last dim, eps 1e-12 keeps zero rows at zero", () => {
    tidy(() => {
      const out = new Normalize().forward(
        tensor([
          [3, 4, 0],
          [0, 0, 0],
          [1e-13, 0, 0],
        ]),
      );
      // [3,4,0]/5; the zero row stays 0; 1e-13 / max(1e-13, 1e-12) = 0.1 (F.normalize clamps the norm).
      assertClose(out, [0.6, 0.8, 0, 0, 0, 0, 0.1, 0, 0], 1e-6);
    });
  });
});

describe("Dense", () => {
  // W (2, 3) and b (2): W·[1,2,3] = [0.1+0.4+0.9, -0.5+1+3] = [1.4, 3.5]; + b = [1.4, 2.5].
  const W = [0.1, 0.2, 0.3, -0.5, 0.5, 1.0];
  const B = [0.0, -1.0];
  const config = (over: Partial<DenseConfig> = {}): DenseConfig => ({
    inFeatures: 3,
    outFeatures: 2,
    bias: true,
    activation: "tanh",
    useResidual: false,
    ...over,
  });

  function denseDir(tensors: Record<string, { shape: number[]; values: number[] }>): string {
    const dir = join(root, `${counter++}-2_Dense`);
    mkdirSync(dir);
    const entries = Object.fromEntries(
      Object.entries(tensors).map(([k, t]) => [
        k,
        { dtype: "F32" as const, shape: t.shape, data: Float32Array.from(t.values) },
      ]),
    );
    writeSafetensors(join(dir, DENSE_WEIGHTS_NAME), entries, PT_FORMAT_METADATA);
    return dir;
  }

  test("Linear + Tanh from 2_Dense/model.safetensors (linear.weight, linear.bias)", () => {
    const dir = denseDir({
      "linear.weight": { shape: [2, 3], values: W },
      "linear.bias": { shape: [2], values: B },
    });
    const dense = Dense.load(dir, config());
    try {
      tidy(() => {
        // tanh(1.4) = 0.8853516482, tanh(2.5) = 0.9866142982
        assertClose(dense.forward(tensor([[1, 2, 3]])), [0.8853516482, 0.9866142982], 1e-6);
      });
      // Identity (torch.nn.modules.linear.Identity): the affine values themselves.
      const id = Dense.load(dir, config({ activation: "identity" }));
      tidy(() => assertClose(id.forward(tensor([[1, 2, 3]])), [1.4, 2.5], 1e-6));
      id.dispose();
      assert.deepEqual(
        dense.namedParameters().map(([n, t]) => [n, t.requiresGrad]),
        [
          ["linear.weight", true],
          ["linear.bias", true],
        ],
      );
    } finally {
      dense.dispose();
    }
  });

  test("bias=false reads no bias; a residual adds the input", () => {
    const dir = denseDir({ "linear.weight": { shape: [3, 3], values: [1, 0, 0, 0, 2, 0, 0, 0, 3] } });
    const dense = Dense.load(
      dir,
      config({ outFeatures: 3, bias: false, activation: "relu", useResidual: true }),
    );
    try {
      // relu(diag(1,2,3)·[1,-2,3]) + [1,-2,3] = [1, 0, 9] + [1, -2, 3] = [2, -2, 12]
      tidy(() => assertClose(dense.forward(tensor([[1, -2, 3]])), [2, -2, 12]));
    } finally {
      dense.dispose();
    }
  });

  test("a missing key or a wrong shape names the file and the key", () => {
    const noBias = denseDir({ "linear.weight": { shape: [2, 3], values: W } });
    assert.throws(
      () => Dense.load(noBias, config()),
      (e: Error) => e.message.includes("linear.bias") && e.message.includes(join(noBias, DENSE_WEIGHTS_NAME)),
    );
    const wrong = denseDir({
      "linear.weight": { shape: [3, 2], values: W },
      "linear.bias": { shape: [2], values: B },
    });
    assert.throws(() => Dense.load(wrong, config()), /linear\.weight.*\[3, 2\].*\[2, 3\]/);
  });

  test("saveWeights writes what load reads (ST's keys, pt metadata)", () => {
    const dense = Dense.create(config());
    const dir = join(root, `${counter++}-saved`);
    mkdirSync(dir);
    try {
      const path = dense.saveWeights(dir);
      const file = readSafetensors(path);
      assert.deepEqual([...file.tensors.keys()].sort(), ["linear.bias", "linear.weight"]);
      assert.deepEqual(file.metadata, { format: "pt" });
      const again = Dense.load(dir, config());
      try {
        tidy(() => {
          const x = tensor([[0.5, -1, 2]]);
          assert.ok(again.forward(x).allclose(dense.forward(x)));
        });
      } finally {
        again.dispose();
      }
    } finally {
      dense.dispose();
    }
  });
});
