// sentence-transformers' Dense module: y = act(x Wᵀ + b) on the sentence embedding, with its weights in its own
// folder (`2_Dense/model.safetensors`, keys `linear.weight` (out, in) and `linear.bias` (out)).
//
// ports sentence_transformers@cad21198 (6.1.0.dev0) base/modules/dense.py (Dense.__init__ / forward / save:
// `save_safetensors_model(self, …/model.safetensors)`, i.e. the module's state_dict with {"format": "pt"}).
import { join } from "node:path";

import type { Device, DType, Tensor } from "../engine/index.ts";
import { tidy } from "../engine/index.ts";
import { Linear, Module, VarStore, type ParamPath } from "../nn/index.ts";
import type { DenseActivation, DenseConfig } from "./st-folder.ts";
import { saveSafetensors, safetensorsSource } from "./weights.ts";

/** The weights file of a Dense folder (Module.save_torch_weights with safe_serialization). */
export const DENSE_WEIGHTS_NAME = "model.safetensors";

/** The activations of DenseActivation, as torch.nn applies them (GELU: the exact erf form, nn.GELU's default). */
export function applyActivation(activation: DenseActivation, x: Tensor): Tensor {
  switch (activation) {
    case "identity":
      return x.alias();
    case "tanh":
      return x.tanh();
    case "relu":
      return x.relu();
    case "gelu":
      return x.gelu("none");
    case "sigmoid":
      return x.sigmoid();
  }
}

export interface DenseLoadOptions {
  /** Parameter dtype (default float32). */
  dtype?: DType;
  device?: Device;
  /** Parameters require grad (default true). */
  requiresGrad?: boolean;
}

export class Dense extends Module {
  readonly linear: Linear;
  /** Only for useResidual with inFeatures ≠ outFeatures: a bias-free projection of the input. */
  readonly residual: Linear | null;

  /**
   * Builds the module under `p` (its parameters are `<p>.linear.weight`, `<p>.linear.bias` and, for a projected
   * residual, `<p>.residual.weight`): read from the store's source, or created with torch.nn.Linear's init.
   */
  constructor(
    p: ParamPath,
    readonly config: DenseConfig,
  ) {
    super(p);
    const { inFeatures, outFeatures, bias, useResidual } = config;
    this.linear = new Linear(p.pp("linear"), inFeatures, outFeatures, { bias });
    this.residual =
      useResidual && inFeatures !== outFeatures
        ? new Linear(p.pp("residual"), inFeatures, outFeatures, { bias: false })
        : null;
  }

  /**
   * Loads `<dir>/model.safetensors` (dir = the module's folder, e.g. `<model>/2_Dense`) into a store of its own,
   * so parameter names are the file's keys. A missing key or a shape mismatch names the file and the key.
   */
  static load(dir: string, config: DenseConfig, options: DenseLoadOptions = {}): Dense {
    const source = safetensorsSource(dir);
    try {
      const store = new VarStore({ source, ...options });
      return new Dense(store.root(), config);
    } finally {
      source.close();
    }
  }

  /** A freshly initialized Dense (torch.nn.Linear's U(−1/√in, 1/√in)) in a store of its own. */
  static create(config: DenseConfig, options: DenseLoadOptions = {}): Dense {
    return new Dense(new VarStore(options).root(), config);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const out = applyActivation(this.config.activation, this.linear.forward(x)); // (B, out)
      if (!this.config.useResidual) return out;
      return out.add(this.residual === null ? x : this.residual.forward(x)); // (B, out)
    });
  }

  /** Writes `<dir>/model.safetensors` with the keys ST saves (`linear.weight`, `linear.bias`, …). */
  saveWeights(dir: string): string {
    const path = join(dir, DENSE_WEIGHTS_NAME);
    saveSafetensors(path, this.namedParameters());
    return path;
  }
}
