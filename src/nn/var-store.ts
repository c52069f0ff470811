// Parameters addressed by Hugging Face names. A `VarStore` holds every parameter of a model under its dotted name
// (tch-rs `nn::VarStore`); a `ParamPath` is a cursor into it (candle's `VarBuilder`): `p.pp("encoder").pp("layer.0")`.
// `p.get("weight", shape, init)` either reads the named tensor from the store's weight source, checking its
// shape, or creates a fresh one with the initializer, so the same model code loads a checkpoint or starts anew.
//
// Ownership: the store owns its parameters (dispose() frees them). A weight source given as a Map or a function
// is borrowed: its tensors are copied, never aliased or disposed. A `WeightSource` object that says `owned: true`
// (a file reader) hands each tensor it returns to the store, which casts it and frees the original.
import {
  empty,
  FLOAT_DTYPES,
  noGrad,
  type Device,
  type DType,
  type Shape,
  type Tensor,
} from "../engine/index.ts";

// ---------------------------------------------------------------------------------------------------------
// Initializers (torch.nn.init)

/** Fills a freshly created parameter in place; called with autograd off. */
export type Init = (t: Tensor) => void;

export const init = {
  zeros: ((t) => void t.zero_()) as Init,
  ones: ((t) => void t.fill_(1)) as Init,
  constant:
    (value: number): Init =>
    (t) =>
      void t.fill_(value),
  /** N(mean, std²), e.g. HF `_init_weights`: normal(0, initializer_range). */
  normal:
    (mean = 0, std = 1): Init =>
    (t) =>
      void t.normal_(mean, std),
  uniform:
    (low: number, high: number): Init =>
    (t) =>
      void t.uniform_(low, high),
  /**
   * PyTorch's default for nn.Linear weight and bias: U(−1/√fanIn, 1/√fanIn), which is what
   * `kaiming_uniform_(w, a=√5)` and the bias rule of `Linear.reset_parameters` both reduce to.
   */
  linearDefault: (fanIn: number): Init => {
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    return (t) => void t.uniform_(-bound, bound);
  },
};

// ---------------------------------------------------------------------------------------------------------
// Weight sources

/** Named tensors to read parameters from. A `Map<string, Tensor>` is one as it stands. */
export interface WeightSource {
  has(key: string): boolean;
  get(key: string): Tensor | undefined;
  /** Every key, so the store can report the ones no parameter used; sources that cannot list omit it. */
  keys?(): Iterable<string>;
  /** True when `get` returns a fresh tensor that the store takes over; false (default) for borrowed ones. */
  readonly owned?: boolean;
  /** Named in error messages (e.g. the checkpoint's path). */
  readonly name?: string;
}

/** A weight source, or a function from key to tensor (borrowed, like a Map; it cannot list its keys). */
export type WeightSourceLike = WeightSource | ((key: string) => Tensor | undefined);

export function toWeightSource(w: WeightSourceLike): WeightSource {
  if (typeof w !== "function") return w;
  return { has: (k) => w(k) !== undefined, get: (k) => w(k), owned: false };
}

/** A missing weight, a shape mismatch, a duplicate or badly formed name: `key` names the tensor at fault. */
export class WeightError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = "WeightError";
  }
}

const fmtShape = (s: Shape): string => `[${s.join(", ")}]`;

// ---------------------------------------------------------------------------------------------------------
// The store

export interface VarStoreOptions {
  /** Where `get` reads parameters from; without one every parameter is created with its initializer. */
  source?: WeightSourceLike;
  /** Prepended to every name to form the source key: "bert." reads `bert.embeddings...` as `embeddings...`. */
  sourcePrefix?: string;
  /** With a source: "error" (default) when a key is missing, or "init" to create it (HF's "newly initialized"). */
  onMissing?: "error" | "init";
  /** Parameter dtype (floating tensors read from the source are cast to it). Default float32. */
  dtype?: DType;
  device?: Device;
  /** Whether floating parameters require grad (default true, like torch.nn.Parameter). */
  requiresGrad?: boolean;
}

export interface Variable {
  /** Full dotted name, e.g. `encoder.layer.0.attention.self.query.weight`. */
  readonly name: string;
  readonly tensor: Tensor;
  /** Group tags, e.g. "noDecay" for biases and LayerNorm weights. */
  readonly tags: ReadonlySet<string>;
  /** Read from the source (true) or created with an initializer (false). */
  readonly loaded: boolean;
}

/** Tag of parameters AdamW must not decay (HF Trainer's `get_decay_parameter_names` leaves them out). */
export const NO_DECAY = "noDecay";

export class VarStore {
  readonly dtype: DType;
  readonly device: Device;
  readonly requiresGrad: boolean;
  readonly sourcePrefix: string;
  readonly onMissing: "error" | "init";
  readonly #source: WeightSource | undefined;
  readonly #vars = new Map<string, Variable>();
  readonly #usedKeys = new Set<string>();

  constructor(options: VarStoreOptions = {}) {
    this.dtype = options.dtype ?? "float32";
    this.device = options.device ?? "cpu";
    this.requiresGrad = options.requiresGrad ?? true;
    this.sourcePrefix = options.sourcePrefix ?? "";
    this.onMissing = options.onMissing ?? "error";
    this.#source = options.source === undefined ? undefined : toWeightSource(options.source);
  }

  /** The path at the root of the name tree. */
  root(): ParamPath {
    return new ParamPath(this, "");
  }

  get hasSource(): boolean {
    return this.#source !== undefined;
  }

  /** Whether the source holds `name` (under the source prefix); false without a source. */
  sourceHas(name: string): boolean {
    return this.#source?.has(this.sourcePrefix + name) ?? false;
  }

  /** Every variable, in creation order (which is the module-definition order, as in PyTorch). */
  variables(): Variable[] {
    return [...this.#vars.values()];
  }

  /** Variables whose names lie under `prefix` ("" = all), e.g. "encoder.layer.0". */
  variablesUnder(prefix: string): Variable[] {
    if (prefix === "") return this.variables();
    const dotted = `${prefix}.`;
    return this.variables().filter((v) => v.name === prefix || v.name.startsWith(dotted));
  }

  variable(name: string): Variable | undefined {
    return this.#vars.get(name);
  }

  /** Source keys no parameter read (e.g. `pooler.dense.weight`); [] when the source cannot list its keys. */
  unusedKeys(): string[] {
    const keys = this.#source?.keys?.();
    return keys === undefined ? [] : [...keys].filter((k) => !this.#usedKeys.has(k));
  }

  /** Parameters created with their initializer although a source was given (onMissing: "init"). */
  initializedKeys(): string[] {
    return this.hasSource ? this.variables().flatMap((v) => (v.loaded ? [] : [v.name])) : [];
  }

  /** Reads `name` from the source or creates it; the tensor is a leaf owned by the store. */
  getOrCreate(name: string, shape: Shape, initFn: Init | undefined, tags: ReadonlySet<string>): Tensor {
    if (this.#vars.has(name)) throw new WeightError(name, `parameter "${name}" is defined twice`);
    let tensor = this.#source === undefined ? undefined : this.#read(this.#source, name, shape);
    const loaded = tensor !== undefined;
    if (tensor === undefined) {
      if (this.#source !== undefined && this.onMissing === "error") {
        const key = this.sourcePrefix + name;
        const where = this.#source.name === undefined ? "the weight source" : this.#source.name;
        throw new WeightError(
          name,
          `missing weight "${key}" in ${where} (expected shape ${fmtShape(shape)})`,
        );
      }
      if (initFn === undefined) {
        throw new WeightError(name, `parameter "${name}" has no initializer and there is no weight to load`);
      }
      tensor = this.#create(shape, initFn);
    }
    if (this.requiresGrad && FLOAT_DTYPES.has(tensor.dtype)) tensor.requiresGrad_(true);
    this.#vars.set(name, { name, tensor, tags, loaded });
    return tensor;
  }

  #create(shape: Shape, initFn: Init): Tensor {
    const t = empty(shape, { dtype: this.dtype, device: this.device });
    try {
      noGrad(() => initFn(t));
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  #read(source: WeightSource, name: string, shape: Shape): Tensor | undefined {
    const key = this.sourcePrefix + name;
    if (!source.has(key)) return undefined;
    const src = source.get(key);
    if (src === undefined) return undefined;
    this.#usedKeys.add(key);
    try {
      const got = src.shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        const where = source.name === undefined ? "" : ` in ${source.name}`;
        throw new WeightError(
          name,
          `weight "${key}"${where} has shape ${fmtShape(got)}, but the model expects ${fmtShape(shape)}`,
        );
      }
      return noGrad(() => this.#adopt(src, source.owned === true));
    } finally {
      if (source.owned === true) src.dispose();
    }
  }

  /** A new leaf tensor with the store's dtype/device that never aliases a borrowed source tensor. */
  #adopt(src: Tensor, owned: boolean): Tensor {
    let t = src.detach(); // a new leaf sharing src's storage
    let copied = false;
    const step = (next: Tensor) => {
      t.dispose();
      t = next;
      copied = true;
    };
    if (FLOAT_DTYPES.has(t.dtype) && t.dtype !== this.dtype) step(t.to(this.dtype));
    if (t.device !== this.device) step(t.to(this.device));
    if (!copied && !owned) step(t.clone());
    return t;
  }

  /** Frees and forgets the variables under `prefix` ("" = all). */
  disposeUnder(prefix: string): void {
    for (const v of this.variablesUnder(prefix)) {
      v.tensor.dispose();
      this.#vars.delete(v.name);
    }
  }

  dispose(): void {
    this.disposeUnder("");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Paths

export interface GetOptions {
  /** Extra group tags for this parameter (added to the path's own). */
  tags?: readonly string[];
}

/** A position in the name tree of a VarStore, plus the group tags that parameters created below it get. */
export class ParamPath {
  constructor(
    readonly store: VarStore,
    /** Dotted prefix ("" at the root). */
    readonly prefix: string,
    readonly tags: readonly string[] = [],
  ) {}

  /** The sub-path `name`, which may itself be dotted ("layer.0") or a number (a list index). */
  pp(name: string | number): ParamPath {
    return new ParamPath(this.store, this.name(String(name)), this.tags);
  }

  /** The same path, tagging every parameter created below it (e.g. `p.group(NO_DECAY)`). */
  group(tag: string): ParamPath {
    return new ParamPath(this.store, this.prefix, [...this.tags, tag]);
  }

  /** The full name of `local` under this path. */
  name(local: string): string {
    if (local === "" || local.split(".").some((s) => s === "")) {
      throw new WeightError(local, `bad parameter name "${local}" under "${this.prefix}"`);
    }
    return this.prefix === "" ? local : `${this.prefix}.${local}`;
  }

  /** Whether the store's source holds `local` under this path. */
  has(local: string): boolean {
    return this.store.sourceHas(this.name(local));
  }

  /**
   * The parameter `local` of the given shape: read from the store's source (shape-checked, cast to the store's
   * dtype/device) or created and filled by `initFn`.
   */
  get(local: string, shape: Shape, initFn?: Init, options: GetOptions = {}): Tensor {
    const tags = new Set([...this.tags, ...(options.tags ?? [])]);
    return this.store.getOrCreate(this.name(local), shape, initFn, tags);
  }
}
