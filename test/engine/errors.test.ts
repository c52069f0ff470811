// libtorch and argument errors surface as TorchError (never a crash), with messages that say what went wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import "./devices.ts"; // one CPU thread for the engine tests
import {
  cat,
  crossEntropy,
  cudaAvailable,
  fromBytes,
  matmul,
  native,
  randn,
  tensor,
  tidy,
  zeros,
  TorchError,
  type DType,
} from "../../src/engine/index.ts";

/** Asserts fn throws a TorchError whose message matches every pattern; returns it. */
function throwsTorch(fn: () => unknown, ...patterns: RegExp[]): TorchError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TorchError, `expected a TorchError, got ${String(caught)}`);
  assert.equal(caught.name, "TorchError");
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

test("mismatched matmul: a TorchError naming both shapes and the op", () => {
  tidy(() => {
    const e = throwsTorch(() => matmul(randn([3, 4]), randn([5, 6])), /3x4/, /5x6/, /matmul/);
    assert.match(e.op, /^matmul/);
    assert.ok(e instanceof Error, "a TorchError is an Error");
    throwsTorch(() => randn([2, 3]).mm(randn([2, 3])), /2x3/, /^mm/);
    throwsTorch(() => randn([2, 3, 4]).bmm(randn([2, 5, 4])), /bmm/);
  });
});

test("moving to CUDA without CUDA: a TorchError saying CUDA is not available", (t) => {
  if (cudaAvailable()) {
    t.skip("CUDA is available here");
    return;
  }
  tidy(() => {
    throwsTorch(() => randn([2]).to("cuda"), /CUDA is not available/);
    throwsTorch(() => zeros([2], { device: "cuda:0" }), /CUDA is not available/);
    throwsTorch(() => randn([2], { device: "cuda" }), /CUDA is not available/);
  });
});

test("a device string that is not a device", () => {
  tidy(() => {
    throwsTorch(() => zeros([2], { device: "tpu" as "cpu" }), /tpu/);
    if (cudaAvailable()) throwsTorch(() => randn([2]).to("cuda:99"), /does not exist/);
  });
});

test("use after dispose: the JS path and a disposed handle passed to an op", () => {
  const t = randn([2, 2]);
  const h = t.handle;
  t.dispose();
  throwsTorch(() => t.handle, /dispose/);
  throwsTorch(() => t.shape, /dispose/);
  throwsTorch(() => t.toNumbers(), /dispose/);
  tidy(() => {
    const ok = randn([2, 2]);
    throwsTorch(() => ok.add(t), /dispose/);
    throwsTorch(() => matmul(ok, t), /dispose/);
    throwsTorch(() => cat([ok, t]), /dispose/);
  });
  // The native path: a stale handle reaching the addon is refused there too, naming the op and argument.
  const neg = native.opNames().indexOf("neg");
  const add = native.opNames().indexOf("add");
  throwsTorch(() => native.op(neg, h), /neg/, /argument 0/, /dispose/);
  tidy(() => {
    const ok = randn([2, 2]);
    throwsTorch(() => native.op(add, ok.handle, h, 1), /add/, /argument 1/, /dispose/);
  });
  throwsTorch(() => native.toBytes(h), /dispose/);
  throwsTorch(() => native.item(h), /dispose/);
  assert.equal(native.isAlive(h), false);
  native.dispose(h); // disposing a disposed handle is a no-op
});

test("a value that is not a tensor where a tensor is expected", () => {
  const neg = native.opNames().indexOf("neg");
  throwsTorch(() => native.op(neg, 42), /expected a Tensor/);
  throwsTorch(() => native.op(neg, {} as never), /expected a Tensor/);
  throwsTorch(() => native.op(9999), /out of range/);
});

test("a bad dtype string", () => {
  tidy(() => {
    throwsTorch(() => zeros([2], { dtype: "float8" as DType }), /unknown dtype 'float8'/, /float32/);
    throwsTorch(() => fromBytes(new Uint8Array(4), "complex64" as DType, [1]), /unknown dtype/);
    // Tensor.to() treats anything that is not a dtype as a device: the message is about the device string
    throwsTorch(() => randn([2]).to("float8" as DType), /float8/);
  });
});

test("fromBytes with a shape that does not fit the bytes", () => {
  const e = throwsTorch(
    () => fromBytes(new Float32Array(5), "float32", [2, 3]),
    /\[2, 3\]/,
    /24 bytes/,
    /got 20/,
  );
  assert.match(e.op, /fromBytes/);
  throwsTorch(() => fromBytes(new Uint8Array(3), "bfloat16", [2]), /4 bytes/);
  throwsTorch(() => tensor(new Float64Array(6), { shape: [4, 2] }), /bytes/);
  assert.throws(() => tensor([1, 2, 3], { shape: [2, 2] }), /do not fill/);
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
});

test("item() on a multi-element tensor", () => {
  tidy(() => {
    throwsTorch(() => randn([3]).item(), /3 elements/, /expected 1/);
    throwsTorch(() => zeros([0]).item(), /0 elements/);
    assert.equal(zeros([1, 1]).item(), 0);
  });
});

test("view on a non-contiguous tensor: libtorch's error, pointing at reshape", () => {
  tidy(() => {
    const t = randn([3, 4]).transpose(0, 1);
    throwsTorch(() => t.view([12]), /view/, /reshape/);
    assert.deepEqual(t.reshape([12]).shape, [12]);
  });
});

test("cat of mismatched shapes; shape errors of other ops", () => {
  tidy(() => {
    throwsTorch(() => cat([randn([3, 4]), randn([3, 5])], 0), /cat/, /Sizes of tensors must match/);
    throwsTorch(() => cat([]), /cat/);
    throwsTorch(() => randn([2, 3]).add(randn([4])), /size/);
    throwsTorch(() => randn([2, 3]).reshape([4, 2]), /shape/);
    throwsTorch(() => randn([2, 3]).select(0, 5), /out of range|index/);
    throwsTorch(() => randn([2, 3]).sum(3), /Dimension out of range/);
  });
});

test("cross_entropy with an out-of-range target", () => {
  tidy(() => {
    throwsTorch(
      () => crossEntropy(randn([2, 3]), tensor([0, 5], { dtype: "int64" })),
      /cross_entropy/,
      /out of bounds/,
    );
    throwsTorch(
      () => crossEntropy(randn([2, 3]), tensor([0, 1], { dtype: "int64" }), { reduction: "avg" as "mean" }),
      /reduction/,
    );
  });
});

test("argument kinds are checked: integers, booleans, strings", () => {
  tidy(() => {
    throwsTorch(() => randn([2, 3]).softmax(0.5), /expected an integer/);
    throwsTorch(() => randn([2, 3]).sum([0], "yes" as unknown as boolean), /expected a boolean/);
    throwsTorch(() => randn([2, 3]).reshape([2.5, 2]), /integers/);
  });
});

test("after all these errors a normal op still works", () => {
  tidy(() => {
    const c = matmul(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      tensor([[1], [1]]),
    );
    assert.deepEqual(c.toNumbers(), [3, 7]);
  });
});

test("a child process that triggers 100 errors in a loop exits 0", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const code = `
    const E = await import("./src/engine/index.ts");
    let caught = 0;
    for (let i = 0; i < 100; i++) {
      try {
        E.tidy(() => {
          const k = i % 5;
          if (k === 0) E.matmul(E.randn([3, 4]), E.randn([5, 6]));
          else if (k === 1) E.randn([3]).item();
          else if (k === 2) E.cat([E.randn([2, 2]), E.randn([2, 3])], 0);
          else if (k === 3) E.crossEntropy(E.randn([2, 3]), E.tensor([0, 9], { dtype: "int64" }));
          else { const t = E.randn([2]); t.dispose(); t.add(1); }
        });
      } catch (e) {
        if (e instanceof E.TorchError) caught++;
      }
    }
    const ok = E.matmul(E.tensor([[2]]), E.tensor([[3]])).item();
    console.log(JSON.stringify({ caught, ok, live: E.liveTensors() }));
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `child exited ${r.status} (${r.signal}): ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { caught: number; ok: number; live: number };
  assert.equal(out.caught, 100);
  assert.equal(out.ok, 6);
  assert.equal(out.live, 3); // the last two inputs and their product, which are not in a tidy
});

test("error messages name the failing function once", () => {
  tidy(() => {
    for (const fn of [
      () => native.item(randn([3]).handle),
      () => fromBytes(new Uint8Array(3), "float32", [1]),
    ]) {
      const e = throwsTorch(fn);
      assert.doesNotMatch(e.message, /^(\w+): \1:/);
    }
  });
});
