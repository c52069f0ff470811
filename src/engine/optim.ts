// Optimizers over parameter lists; the per-element math runs in native code (native/training.cc).
import { native } from "./native.ts";
import { op, Tensor } from "./tensor.ts";
import { keep } from "./scope.ts";

export interface AdamWConfig {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** PyTorch's AdamW defaults (the recipe sets weight decay 0 through the HF Trainer). */
export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };

export interface ParamGroup {
  params: Tensor[];
  /** Overrides the optimizer's weight decay for this group (e.g. 0 for biases and LayerNorm weights). */
  weightDecay?: number;
}

interface ParamState {
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** Updates this parameter received: its own bias correction, as torch.optim keeps `state["step"]` per parameter. */
  step: number;
}

/** Serializable optimizer state: step count and the two moment tensors per parameter (same order). */
export interface AdamWState {
  step: number;
  expAvg: (Tensor | null)[];
  expAvgSq: (Tensor | null)[];
  /** Per-parameter update counts (absent in old states: then every parameter took `step` updates). */
  paramSteps?: (number | null)[];
}

/**
 * AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments. Mirrors torch.optim.AdamW; on
 * CUDA with libtorch 2.x the step runs the fused kernel (`fused=True`, as the recipe asks).
 * The learning rate is a field so a scheduler can set it before each step.
 */
export class AdamW {
  lr: number;
  readonly config: AdamWConfig;
  readonly groups: ParamGroup[];
  private readonly state = new Map<Tensor, ParamState>();
  private steps = 0;

  constructor(params: Tensor[] | ParamGroup[], config: Partial<AdamWConfig> = {}) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    this.lr = this.config.lr;
    this.groups =
      params.length > 0 && params[0] instanceof Tensor
        ? [{ params: params as Tensor[] }]
        : (params as ParamGroup[]);
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.steps;
  }

  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    this.steps++;
    const [beta1, beta2] = this.config.betas;
    for (const group of this.groups) {
      // Parameters are bucketed by their own step count (usually one bucket): one native call per bucket.
      const buckets = new Map<number, { ps: Tensor[]; states: ParamState[] }>();
      for (const p of group.params) {
        if (!native.hasGrad(p.handle)) continue;
        const st = this.stateOf(p);
        st.step++;
        const b = buckets.get(st.step) ?? { ps: [], states: [] };
        b.ps.push(p);
        b.states.push(st);
        buckets.set(st.step, b);
      }
      for (const [step, { ps, states }] of buckets) {
        native.adamwStep(
          ps.map((p) => p.handle),
          states.map((s) => s.expAvg.handle),
          states.map((s) => s.expAvgSq.handle),
          {
            lr: this.lr,
            beta1,
            beta2,
            eps: this.config.eps,
            weightDecay: group.weightDecay ?? this.config.weightDecay,
            step,
          },
        );
      }
    }
  }

  private stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      // Lazily created like torch.optim: zeros with the parameter's dtype and device.
      s = { ...keep({ expAvg: op("zeros_like", p), expAvgSq: op("zeros_like", p) }), step: 0 };
      this.state.set(p, s);
    }
    return s;
  }

  /** Clears gradients (set to none by default, like PyTorch 2.x). */
  zeroGrad(setToNone = true): void {
    native.zeroGrad(
      this.params.map((p) => p.handle),
      setToNone,
    );
  }

  /** The state to checkpoint (tensors are the optimizer's own: do not dispose them). */
  stateDict(): AdamWState {
    const params = this.params;
    return {
      step: this.steps,
      expAvg: params.map((p) => this.state.get(p)?.expAvg ?? null),
      expAvgSq: params.map((p) => this.state.get(p)?.expAvgSq ?? null),
      paramSteps: params.map((p) => this.state.get(p)?.step ?? null),
    };
  }

  /** Restores a checkpointed state; the tensors are copied into the optimizer. */
  loadStateDict(sd: AdamWState): void {
    const params = this.params;
    if (sd.expAvg.length !== params.length || sd.expAvgSq.length !== params.length) {
      throw new Error(
        `AdamW.loadStateDict: state has ${sd.expAvg.length} entries, the optimizer ${params.length} parameters`,
      );
    }
    this.dispose();
    this.steps = sd.step;
    params.forEach((p, i) => {
      const m = sd.expAvg[i];
      const v = sd.expAvgSq[i];
      if (!m || !v) return;
      const s = this.stateOf(p);
      s.expAvg.copy_(m);
      s.expAvgSq.copy_(v);
      s.step = sd.paramSteps?.[i] ?? sd.step;
    });
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const s of this.state.values()) {
      s.expAvg.dispose();
      s.expAvgSq.dispose();
    }
    this.state.clear();
  }
}

/** Scales gradients so their total norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2): number {
  return native.clipGradNorm(
    params.map((p) => p.handle),
    maxNorm,
    normType,
  );
}

/** Total gradient norm of params (no clipping). */
export function gradNorm(params: readonly Tensor[], normType = 2): number {
  return native.gradNorm(
    params.map((p) => p.handle),
    normType,
  );
}
