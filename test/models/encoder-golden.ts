// Golden parity tests shared by the non-BERT encoders: a fixture folder made by test/fixtures/<arch>/make_*.py
// (config.json, model.safetensors, golden.json in test/fixtures/encoder_golden.py's layout) against the model
// loaded by ragtune. Each test prints its max diff.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { noGrad, tensor, tidy, type Tensor } from "../../src/engine/index.ts";
import type { PretrainedEncoder } from "../../src/models/encoder-common.ts";
import { Pooling } from "../../src/models/pooling.ts";

interface Dumped {
  shape: number[];
  data: number[];
}
export interface EncoderGolden {
  about: string;
  input_ids: number[][];
  attention_mask: number[][];
  last_hidden_state: Dumped;
  mean_pooled: Dumped;
  cls_pooled: Dumped;
  loss_weights: Dumped;
  pooled_loss_weights: Dumped;
  loss: number;
  grads: Record<string, Dumped>;
  grad_norms: Record<string, number>;
}

const TOL = 1e-5;

export function readGolden(fixture: string): EncoderGolden {
  return JSON.parse(readFileSync(join(fixture, "golden.json"), "utf8")) as EncoderGolden;
}

/** Max |a − b|; with `keep`, only over (B, L, H) positions whose mask is `keep` (1 token, 0 padding). */
function maxDiff(t: Tensor, want: Dumped, mask?: number[][], keep?: 0 | 1): number {
  assert.deepEqual(t.shape, want.shape);
  const got = t.toNumbers();
  const [, l = 1, h = 1] = want.shape;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const b = Math.floor(i / (l * h));
    const pos = Math.floor(i / h) % l;
    if (keep !== undefined && mask?.[b]?.[pos] !== keep) continue;
    m = Math.max(m, Math.abs((got[i] ?? NaN) - (want.data[i] ?? NaN)));
  }
  return m;
}

/**
 * Registers the parity tests: forward (tokens and padding), mean / cls pooling, the loss and every gradient,
 * the padding rows' zero gradient, dropout in train mode, and savePretrained → fromPretrained bit-identity.
 * `padRows` names embedding tables and their padding row.
 */
export function encoderParityTests<M extends PretrainedEncoder>(o: {
  name: string;
  golden: EncoderGolden;
  load: () => M;
  fromPretrained: (dir: string) => M;
  padRows: [string, number][];
}): void {
  const { golden } = o;
  const inputs = () => ({
    inputIds: tensor(golden.input_ids, { dtype: "int64" }),
    attentionMask: tensor(golden.attention_mask, { dtype: "int64" }),
  });
  const work = mkdtempSync(join(tmpdir(), `ragtune-${o.name}-`));
  after(() => rmSync(work, { recursive: true, force: true }));

  test(`${o.name}: eval forward and pooled embeddings match the reference within ${TOL}`, () => {
    const model = o.load();
    tidy(() =>
      noGrad(() => {
        const x = inputs();
        const h = model.forward(x); // (B, L, H)
        const tokens = maxDiff(h, golden.last_hidden_state, golden.attention_mask, 1);
        const padding = maxDiff(h, golden.last_hidden_state, golden.attention_mask, 0);
        const dim = h.size(2);
        const pool = (mode: "mean" | "cls") =>
          new Pooling({ embeddingDimension: dim, modes: [mode], includePrompt: true }).forward(
            h,
            x.attentionMask,
          );
        const mean = maxDiff(pool("mean"), golden.mean_pooled);
        const cls = maxDiff(pool("cls"), golden.cls_pooled);
        console.log(
          `${o.name} maxdiff (${golden.about}): last_hidden_state tokens ${tokens.toExponential(2)} padding ` +
            `${padding.toExponential(2)} | mean ${mean.toExponential(2)} cls ${cls.toExponential(2)}`,
        );
        for (const [what, d] of [
          ["tokens", tokens],
          ["padding", padding],
          ["mean", mean],
          ["cls", cls],
        ] as const)
          assert.ok(d <= TOL, `${what} maxdiff ${d}`);
      }),
    );
    model.dispose();
  });

  test(`${o.name}: loss and gradients of every parameter match the reference within ${TOL}`, () => {
    const model = o.load();
    tidy(() => {
      const x = inputs();
      const h = model.forward(x); // (B, L, H)
      const w = tensor(golden.loss_weights.data, { shape: golden.loss_weights.shape });
      const wp = tensor(golden.pooled_loss_weights.data, { shape: golden.pooled_loss_weights.shape });
      const pooling = new Pooling({ embeddingDimension: h.size(2), modes: ["mean"], includePrompt: true });
      const mean = pooling.forward(h, x.attentionMask); // (B, H)
      const loss = h.mul(w).sum().add(mean.normalize(-1).mul(wp).sum());
      const lossDiff = Math.abs(loss.item() - golden.loss);
      loss.backward();
      const params = new Map(model.namedParameters());
      const lines = [`loss ${lossDiff.toExponential(2)}`];
      for (const [name, want] of Object.entries(golden.grads)) {
        const g = params.get(name)?.grad;
        assert.ok(g, `no gradient for ${name}`);
        const d = maxDiff(g, want);
        lines.push(`${name} ${d.toExponential(2)}`);
        assert.ok(d <= TOL, `${name}: grad maxdiff ${d}`);
      }
      for (const [name, row] of o.padRows) {
        const padRow = params.get(name)?.grad?.select(0, row);
        assert.deepEqual(new Set(padRow?.toNumbers()), new Set([0]), `${name} row ${row} got gradient`);
      }
      let worst = 0;
      for (const [name, want] of Object.entries(golden.grad_norms)) {
        const g = params.get(name)?.grad;
        assert.ok(g, `no gradient for ${name}`);
        const diff = Math.abs(g.norm().item() - want);
        worst = Math.max(worst, diff);
        assert.ok(diff <= TOL + TOL * want, `${name}: grad norm ${g.norm().item()} vs ${want}`);
      }
      assert.equal(params.size, Object.keys(golden.grad_norms).length, "parameter count differs from HF's");
      console.log(
        `${o.name} maxdiff grads: ${lines.join(" | ")} | norms of all ${params.size} ${worst.toExponential(2)}`,
      );
      assert.ok(lossDiff <= 1e-4 * Math.abs(golden.loss), `loss ${loss.item()} vs ${golden.loss}`);
    });
    model.dispose();
  });

  test(`${o.name}: train mode applies dropout, eval mode is deterministic`, () => {
    const model = o.load();
    tidy(() =>
      noGrad(() => {
        model.train();
        const a = model.forward(inputs());
        assert.ok(maxDiff(a, golden.last_hidden_state, golden.attention_mask, 1) > 1e-3, "no dropout");
        model.eval();
        assert.ok(maxDiff(model.forward(inputs()), golden.last_hidden_state) <= TOL);
      }),
    );
    model.dispose();
  });

  test(`${o.name}: savePretrained -> fromPretrained gives bit-identical outputs`, () => {
    const model = o.load();
    const dir = mkdtempSync(join(work, "saved-"));
    model.savePretrained(dir);
    const again = o.fromPretrained(dir);
    tidy(() =>
      noGrad(() => {
        const a = model.forward(inputs());
        const b = again.forward(inputs());
        assert.equal(a.sub(b).abs().max().item(), 0);
      }),
    );
    model.dispose();
    again.dispose();
  });
}
