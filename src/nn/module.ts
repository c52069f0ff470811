// The Module base class: a node of the model tree with a train/eval flag, its parameters found through its
// ParamPath in the VarStore (so names are exactly the checkpoint's), freezing, and AdamW parameter groups.
//
// Children are found like PyTorch's `_modules`, without registration: any own field that holds a Module or an
// array of Modules. Parameters are not fields of the tree but entries of the store under the module's path, so
// `namedParameters()` of the root yields the same dotted names as `state_dict()` in PyTorch.
import type { ParamGroup, Tensor } from "../engine/index.ts";
import { NO_DECAY, type ParamPath, type Variable } from "./var-store.ts";

export abstract class Module {
  /** Training mode (dropout active). Models start in eval mode, as after HF `from_pretrained`. */
  training = false;

  /** Where this module's parameters live; null for parameter-free modules (Dropout). */
  readonly path: ParamPath | null;

  constructor(path: ParamPath | null) {
    this.path = path;
  }

  /** Direct sub-modules: own fields holding a Module or an array of Modules, in field order. */
  children(): Module[] {
    const out: Module[] = [];
    for (const v of Object.values(this)) {
      if (v instanceof Module) out.push(v);
      else if (Array.isArray(v)) for (const m of v) if (m instanceof Module) out.push(m);
    }
    return out;
  }

  /** This module and every descendant, depth first (each once). */
  modules(): Module[] {
    const seen = new Set<Module>();
    const visit = (m: Module): void => {
      if (seen.has(m)) return;
      seen.add(m);
      for (const c of m.children()) visit(c);
    };
    visit(this);
    return [...seen];
  }

  /** Sets training mode here and in every descendant (torch `Module.train(mode)`). Returns this. */
  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  /** Evaluation mode: dropout off (torch `Module.eval()`). Returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * The store's variables under this module's path (for a parameter-free module: its children's), with the
   * full dotted names of the store.
   */
  variables(): Variable[] {
    if (this.path !== null) return this.path.store.variablesUnder(this.path.prefix);
    return [...new Set(this.children().flatMap((c) => c.variables()))];
  }

  /**
   * [name, tensor] pairs with names relative to this module's path, like torch `named_parameters()`: for a
   * model at the root they are the checkpoint names (`encoder.layer.0.attention.self.query.weight`).
   */
  namedParameters(): [string, Tensor][] {
    return this.variables().map((v) => [this.#relative(v.name), v.tensor]);
  }

  #relative(name: string): string {
    const prefix = this.path?.prefix ?? "";
    return prefix === "" ? name : name.slice(prefix.length + 1);
  }

  parameters(): Tensor[] {
    return this.variables().map((v) => v.tensor);
  }

  /** Parameters that require grad (not frozen). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad);
  }

  /** Number of scalar parameters. */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    const ps = options.trainableOnly ? this.trainableParameters() : this.parameters();
    return ps.reduce((n, t) => n + t.numel, 0);
  }

  /** Stops gradients to every parameter of this module (e.g. train only an adapter or a head). */
  freeze(): this {
    for (const t of this.parameters()) t.requiresGrad_(false);
    return this;
  }

  unfreeze(): this {
    for (const t of this.parameters()) t.requiresGrad_(true);
    return this;
  }

  /**
   * Names of the parameters that weight decay applies to: all but those tagged noDecay (biases, LayerNorm
   * weights), as HF Trainer's `get_decay_parameter_names`.
   */
  decayParameterNames(): string[] {
    return this.variables()
      .filter((v) => !v.tags.has(NO_DECAY))
      .map((v) => this.#relative(v.name));
  }

  /**
   * AdamW parameter groups as HF Trainer's `create_optimizer` builds them: trainable parameters with decay,
   * then trainable noDecay parameters with weight decay 0.
   */
  paramGroups(weightDecay: number): ParamGroup[] {
    const trainable = this.variables().filter((v) => v.tensor.requiresGrad);
    return [
      { params: trainable.filter((v) => !v.tags.has(NO_DECAY)).map((v) => v.tensor), weightDecay },
      { params: trainable.filter((v) => v.tags.has(NO_DECAY)).map((v) => v.tensor), weightDecay: 0 },
    ];
  }

  /** Frees this module's parameters (they leave the store). The module must not be used afterwards. */
  dispose(): void {
    if (this.path !== null) this.path.store.disposeUnder(this.path.prefix);
    else for (const c of this.children()) c.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
