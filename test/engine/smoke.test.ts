import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, matmul, TorchError, liveTensors, tidy, randn } from "../../src/engine/index.ts";

test("matmul of known values", () => {
  const a = tensor([
    [1, 2],
    [3, 4],
  ]);
  const c = matmul(a, a);
  assert.deepEqual(c.toNumbers(), [7, 10, 15, 22]);
  assert.deepEqual(c.shape, [2, 2]);
  assert.equal(c.dtype, "float32");
});

test("mismatched matmul raises a TorchError naming both shapes", () => {
  tidy(() => {
    const a = randn([3, 4]);
    const b = randn([5, 6]);
    assert.throws(
      () => matmul(a, b),
      (e: unknown) => e instanceof TorchError && /3x4/.test(e.message) && /5x6/.test(e.message),
    );
  });
  assert.ok(liveTensors() >= 0);
});
