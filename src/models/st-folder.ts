// The sentence-transformers folder description: which modules run in which order (modules.json), the model-level
// settings (config_sentence_transformers.json), the transformer's length limit (sentence_bert_config.json, else the
// tokenizer and model configs) and each module's own config.json. Configuration only: no weights, no tokenizer.
//
// Read: the layouts of sentence-transformers 3.x-5.x (types `sentence_transformers.models.*`, boolean
// `pooling_mode_*` flags, `max_seq_length` in sentence_bert_config.json), of 6.x (types under
// `sentence_transformers.base.modules` / `sentence_transformer.modules`, `pooling_mode: "mean"`, no max_seq_length)
// and older 2.x hub folders, all normalized to one StFolderSpec. A folder without modules.json (plain transformers)
// gets Transformer + mean pooling, as sentence-transformers does.
// Write: st-folder-write.ts (the 3.x-5.x layout, which every version reads).
//
// ports sentence_transformers@cad21198 (6.1.0.dev0): base/model.py (_load_modules, _load_config_modules,
// _parse_model_config, save, _get_model_config), base/modules/transformer.py (load_config, __init__ length cap),
// sentence_transformer/modules/pooling.py (_convert_legacy_pooling_kwargs, __init__), base/modules/dense.py
// (load), sentence_transformer/model.py (_load_default_modules, _parse_model_config), util/deprecated_import.py.
// ports sentence_transformers@dfcbbd93 (v5.1 branch): SentenceTransformer.py save / _load_sbert_model,
// models/Pooling.py config_keys, models/Transformer.py max_seq_length, models/Module.py save_config.
import { join, posix } from "node:path";

import { parseVocabTxt } from "../tokenize/hf_json.ts";
import {
  FileReadError,
  isPresentRegularFile,
  type ReadKind,
  readJsonFile,
  readRegularText,
} from "../util/read-file.ts";
import { isPlainObject } from "../util/plain-object.ts";

// ---------------------------------------------------------------------------------------------------------
// Types

export type ModuleKind = "transformer" | "pooling" | "normalize" | "dense";

/** Pooling.POOLING_MODES of ST 6, in the order the legacy flags concatenate (cls, max, mean, …). */
export const POOLING_MODES = [
  "cls",
  "max",
  "mean",
  "mean_sqrt_len_tokens",
  "weightedmean",
  "lasttoken",
] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];

/** SentenceTransformer.SUPPORTED_SIMILARITY_FN_NAMES. */
export const SIMILARITY_FN_NAMES = ["cosine", "dot", "euclidean", "manhattan"] as const;
export type SimilarityFnName = (typeof SIMILARITY_FN_NAMES)[number];

export interface PoolingConfig {
  /** Hidden size of the token embeddings (`embedding_dimension`, 3.x-5.x `word_embedding_dimension`). */
  embeddingDimension: number;
  /** Concatenated in this order; the output has modes.length × embeddingDimension values. */
  modes: readonly PoolingMode[];
  /** false: the prompt's tokens are left out of the pooling (INSTRUCTOR-style). */
  includePrompt: boolean;
}

/** Activations a Dense config may name (torch.nn classes), as ragtune's Dense applies them. */
export type DenseActivation = "identity" | "tanh" | "relu" | "gelu" | "sigmoid";

export interface DenseConfig {
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  activation: DenseActivation;
  /** ST ≥ 5.7: out = act(linear(x)) + x (or + residual(x), a bias-free Linear, when in ≠ out). */
  useResidual: boolean;
}

/** One entry of modules.json with its parsed config; `path` is relative to the folder ("" = the root). */
export type StModule =
  | { kind: "transformer"; path: string }
  | { kind: "pooling"; path: string; config: PoolingConfig }
  | { kind: "normalize"; path: string }
  | { kind: "dense"; path: string; config: DenseConfig };

/** What a saved model folder says, independent of the sentence-transformers version that wrote it. */
export interface StFolderSpec {
  /** In pipeline order: a transformer, a pooling, then dense / normalize modules. */
  modules: StModule[];
  /** Tokens kept per text (truncation), or null when nothing in the folder sets a limit. */
  maxSeqLength: number | null;
  /** sentence_bert_config.json `do_lower_case`: lowercase texts before tokenizing (rarely true). */
  doLowerCase: boolean;
  /** Prompt name -> text prepended at encode time. Empty / null prompts (ST's defaults) are left out. */
  prompts: Record<string, string>;
  /** The prompt used when none is given; null when unset or when it names an empty prompt. */
  defaultPromptName: string | null;
  similarityFnName: SimilarityFnName;
  /** ST 6 `truncate_dim`: embeddings are cut to this many dimensions at encode time. */
  truncateDim: number | null;
}

/** Which file gave `maxSeqLength` (see resolveMaxSeqLength). */
export type MaxSeqLengthSource =
  "sentence_bert_config.json" | "tokenizer_config.json" | "config.json" | "tokenizer.json";

/** Where a spec came from: facts about the files, not about the model. */
export interface StFolderSource {
  dir: string;
  /** "sentence-transformers": modules.json present; "transformers": a plain model folder. */
  layout: "sentence-transformers" | "transformers";
  /** modules.json `type` of each module, as written (empty for a plain folder). */
  moduleTypes: string[];
  /** config_sentence_transformers.json `__version__` (string entries only); {} when absent. */
  versions: Record<string, string>;
  /** config_sentence_transformers.json `model_type` (default "SentenceTransformer"). */
  modelType: string;
  maxSeqLengthFrom: MaxSeqLengthSource | null;
}

export interface StFolder extends StFolderSpec {
  source: StFolderSource;
  /** Things sentence-transformers would log (fallbacks taken, values ignored); each names its file. */
  warnings: string[];
}

/** A bad or missing file or value; `file` is the path and `key` (when one is at fault) the JSON key. */
export class StFolderError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    detail: string,
  ) {
    super(key === undefined ? `${file}: ${detail}` : `${file}: "${key}": ${detail}`);
    this.name = "StFolderError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Module types

/** The 3.x-5.x type names, which writeStFolder writes. */
export const ST_MODULE_TYPES: Readonly<Record<ModuleKind, string>> = {
  transformer: "sentence_transformers.models.Transformer",
  pooling: "sentence_transformers.models.Pooling",
  normalize: "sentence_transformers.models.Normalize",
  dense: "sentence_transformers.models.Dense",
};

/** The 6.x type names (`type(module).__module__ + "." + name`, base/model.py save). */
export const ST6_MODULE_TYPES: Readonly<Record<ModuleKind, string>> = {
  transformer: "sentence_transformers.base.modules.transformer.Transformer",
  pooling: "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
  normalize: "sentence_transformers.base.modules.normalize.Normalize",
  dense: "sentence_transformers.base.modules.dense.Dense",
};

const KIND_OF_CLASS: Readonly<Record<string, ModuleKind>> = {
  Transformer: "transformer",
  Pooling: "pooling",
  Normalize: "normalize",
  Dense: "dense",
};
export const CLASS_OF_KIND: Readonly<Record<ModuleKind, string>> = {
  transformer: "Transformer",
  pooling: "Pooling",
  normalize: "Normalize",
  dense: "Dense",
};

/**
 * The kind of a modules.json `type`: any dotted path inside the `sentence_transformers` package whose last
 * segment is Transformer, Pooling, Normalize or Dense. That covers 3.x-5.3 (`…models.Pooling`), 5.4-5.x
 * (`…sentence_transformer.modules.normalize.Normalize`) and 6.x (`…base.modules.dense.Dense`); ST resolves all of
 * them to the same classes (util/deprecated_import.py). Other types (Router, StaticEmbedding, custom code) → undefined.
 */
export function moduleKindOf(type: string): ModuleKind | undefined {
  if (!/^sentence_transformers(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(type)) return undefined;
  return KIND_OF_CLASS[type.slice(type.lastIndexOf(".") + 1)];
}

// ---------------------------------------------------------------------------------------------------------
// JSON helpers: every error names the file, and the key when one is at fault

type Json = Record<string, unknown>;

/** Throws the StFolderError for `file` (and `key`); usable as an expression. */
function fail(file: string, key: string | undefined, detail: string): never {
  throw new StFolderError(file, key, detail);
}

const isObject = isPlainObject;
const describe = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v);

/** Runs a read of `file`, turning a FileReadError (not regular, too large, unreadable, bad JSON) into ours. */
function reading<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FileReadError) fail(file, undefined, e.detail);
    throw e;
  }
}

/** A config file: regular, within the bound of `kind` (src/util/read-file.ts), parsed; errors never quote it. */
const readJson = (file: string, kind: ReadKind = "config"): unknown =>
  reading(file, () => readJsonFile(file, kind));

function readJsonObject(file: string, kind: ReadKind = "config"): Json {
  const v = readJson(file, kind);
  if (!isObject(v)) fail(file, undefined, `expected a JSON object, got ${describe(v)}`);
  return v;
}

/** Absent → false; a regular file → true; a FIFO, device, folder or unreadable path → an error naming it. */
const isFile = (p: string): boolean => reading(p, () => isPresentRegularFile(p));
const readJsonObjectIfFile = (file: string, kind: ReadKind = "config"): Json | undefined =>
  isFile(file) ? readJsonObject(file, kind) : undefined;

/** A present, non-null value (Python passes None as "use the default" for every key read here). */
const given = (o: Json, key: string): boolean => o[key] !== undefined && o[key] !== null;

function intOf(file: string, o: Json, key: string, min = 1): number | undefined {
  if (!given(o, key)) return undefined;
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    fail(file, key, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function boolOf(file: string, o: Json, key: string): boolean | undefined {
  if (!given(o, key)) return undefined;
  const v = o[key];
  if (typeof v !== "boolean") fail(file, key, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function stringOf(file: string, o: Json, key: string): string | undefined {
  if (!given(o, key)) return undefined;
  const v = o[key];
  if (typeof v !== "string") fail(file, key, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function warnUnknownKeys(file: string, o: Json, known: readonly string[], warnings: string[]): void {
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0)
    warnings.push(`${file}: ignoring unknown key(s) ${extra.map((k) => `"${k}"`).join(", ")}`);
}

// ---------------------------------------------------------------------------------------------------------
// Pooling config (1_Pooling/config.json)

/** The 3.x-5.x flags in ST 6's `_LEGACY_POOLING_MODE_KWARGS` order, which is also 5.x's concatenation order. */
export const LEGACY_POOLING_FLAGS: readonly (readonly [string, PoolingMode])[] = [
  ["pooling_mode_cls_token", "cls"],
  ["pooling_mode_max_tokens", "max"],
  ["pooling_mode_mean_tokens", "mean"],
  ["pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"],
  ["pooling_mode_weightedmean_tokens", "weightedmean"],
  ["pooling_mode_lasttoken", "lasttoken"],
];

/** 5.x Pooling.config_keys: the keys (and their order) of the config.json writeStFolder writes. */
export const ST5_POOLING_KEYS = [
  "word_embedding_dimension",
  "pooling_mode_cls_token",
  "pooling_mode_mean_tokens",
  "pooling_mode_max_tokens",
  "pooling_mode_mean_sqrt_len_tokens",
  "pooling_mode_weightedmean_tokens",
  "pooling_mode_lasttoken",
  "include_prompt",
] as const;

const isPoolingMode = (s: unknown): s is PoolingMode => POOLING_MODES.includes(s as PoolingMode);

/**
 * Parses a pooling config of either layout (ST 6 `Pooling.load_config` + `__init__`): `embedding_dimension`
 * (or the 3.x-5.x `word_embedding_dimension`, renamed when the new key is absent); `pooling_mode` (a mode or a
 * list of them) wins over the legacy `pooling_mode_*` flags; flags present but all false give "mean" (ST 6;
 * 5.x would produce an empty embedding); neither → "mean" (both versions' default).
 */
export function parsePoolingConfig(raw: unknown, file: string, warnings: string[] = []): PoolingConfig {
  if (!isObject(raw)) fail(file, undefined, `expected a JSON object, got ${describe(raw)}`);
  const dimKey = given(raw, "embedding_dimension") ? "embedding_dimension" : "word_embedding_dimension";
  const embeddingDimension = intOf(file, raw, dimKey);
  if (embeddingDimension === undefined)
    fail(file, "embedding_dimension", "missing (nor word_embedding_dimension)");

  let modes: PoolingMode[];
  if (given(raw, "pooling_mode")) {
    const pm = raw.pooling_mode;
    const list: unknown[] = Array.isArray(pm) ? pm : [pm];
    if (list.length === 0) fail(file, "pooling_mode", "empty list of pooling modes");
    for (const m of list) {
      if (!isPoolingMode(m))
        fail(
          file,
          "pooling_mode",
          `invalid pooling mode ${JSON.stringify(m)}; valid modes are ${POOLING_MODES.join(", ")}`,
        );
    }
    const seen = new Set<unknown>();
    for (const m of list) {
      // Each mode adds embedding_dimension values: a repeated one only widens the embedding (100,000 × "mean"
      // made 6.4M-wide vectors), so a list is at most the six known modes, each once.
      if (seen.has(m))
        fail(file, "pooling_mode", `duplicate pooling mode ${JSON.stringify(m)}; list each mode once`);
      seen.add(m);
    }
    modes = list as PoolingMode[];
  } else {
    const present = LEGACY_POOLING_FLAGS.filter(([key]) => given(raw, key));
    modes = present.filter(([key]) => boolOf(file, raw, key) === true).map(([, mode]) => mode);
    if (modes.length === 0) {
      if (present.length > 0)
        warnings.push(
          `${file}: every pooling_mode_* flag is false; using mean pooling, as sentence-transformers 6 does`,
        );
      modes = ["mean"];
    }
  }
  const includePrompt = boolOf(file, raw, "include_prompt") ?? true;
  warnUnknownKeys(
    file,
    raw,
    [
      "embedding_dimension",
      "word_embedding_dimension",
      "pooling_mode",
      "include_prompt",
      ...ST5_POOLING_KEYS,
    ],
    warnings,
  );
  return { embeddingDimension, modes, includePrompt };
}

// ---------------------------------------------------------------------------------------------------------
// Dense config (2_Dense/config.json)

/** `fullname(activation)` as ST writes it (module + qualname of the torch.nn class). */
export const ACTIVATION_FULLNAME: Readonly<Record<DenseActivation, string>> = {
  identity: "torch.nn.modules.linear.Identity",
  tanh: "torch.nn.modules.activation.Tanh",
  relu: "torch.nn.modules.activation.ReLU",
  gelu: "torch.nn.modules.activation.GELU",
  sigmoid: "torch.nn.modules.activation.Sigmoid",
};
const ACTIVATION_OF_CLASS: Readonly<Record<string, DenseActivation>> = {
  Identity: "identity",
  Tanh: "tanh",
  ReLU: "relu",
  GELU: "gelu",
  Sigmoid: "sigmoid",
};

const DENSE_KEYS = [
  "in_features",
  "out_features",
  "bias",
  "activation_function",
  "module_input_name",
  "module_output_name",
  "use_residual",
] as const;

/**
 * Parses a Dense config (ST 6 `Dense.load`): `in_features`, `out_features`, `bias` (default true),
 * `activation_function` a `torch.*` class path (default Tanh, the constructor's; any `torch.` path loads in ST,
 * e.g. `torch.nn.Tanh` or `torch.nn.modules.activation.Tanh`), `use_residual` (default false).
 */
export function parseDenseConfig(raw: unknown, file: string, warnings: string[] = []): DenseConfig {
  if (!isObject(raw)) fail(file, undefined, `expected a JSON object, got ${describe(raw)}`);
  const inFeatures = intOf(file, raw, "in_features");
  if (inFeatures === undefined) fail(file, "in_features", "missing");
  const outFeatures = intOf(file, raw, "out_features");
  if (outFeatures === undefined) fail(file, "out_features", "missing");
  const bias = boolOf(file, raw, "bias") ?? true;
  let activation: DenseActivation = "tanh";
  if (raw.activation_function !== undefined) {
    const name = raw.activation_function;
    if (typeof name !== "string")
      fail(file, "activation_function", `expected a class path, got ${JSON.stringify(name)}`);
    const cls = name.slice(name.lastIndexOf(".") + 1);
    const act = ACTIVATION_OF_CLASS[cls];
    if (!name.startsWith("torch.") || act === undefined) {
      fail(
        file,
        "activation_function",
        `unsupported activation ${JSON.stringify(name)}; ragtune supports torch.nn ${Object.keys(ACTIVATION_OF_CLASS).join(", ")}`,
      );
    }
    activation = act;
  }
  for (const key of ["module_input_name", "module_output_name"]) {
    const v = stringOf(file, raw, key);
    if (v !== undefined && v !== "sentence_embedding")
      fail(file, key, `only "sentence_embedding" is supported, got ${JSON.stringify(v)}`);
  }
  const useResidual = boolOf(file, raw, "use_residual") ?? false;
  warnUnknownKeys(file, raw, DENSE_KEYS, warnings);
  return { inFeatures, outFeatures, bias, activation, useResidual };
}

// ---------------------------------------------------------------------------------------------------------
// Sequence length

export interface MaxSeqLengthInputs {
  /** sentence_bert_config.json `max_seq_length` (3.x-5.x); null/undefined when absent. */
  sentenceBertMaxSeqLength?: number | null | undefined;
  /** tokenizer_config.json `model_max_length`. */
  tokenizerModelMaxLength?: number | null | undefined;
  /** config.json `max_position_embeddings` (-1 = none, as XLNet). */
  maxPositionEmbeddings?: number | null | undefined;
  /** tokenizer.json `truncation.max_length`. */
  tokenizerJsonMaxLength?: number | null | undefined;
}

const usableLength = (v: number | null | undefined): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/**
 * The length limit sentence-transformers applies:
 * 1. `max_seq_length` of sentence_bert_config.json when set (3.x-5.x folders; 6.x passes it on as the
 *    tokenizer's model_max_length, uncapped);
 * 2. else min(tokenizer_config `model_max_length`, config `max_position_embeddings`) (5.x Transformer.__init__,
 *    6.x's cap), where the 1e30 sentinel (and anything above 2^53) means "unset" and -1 positions mean "none";
 * 3. else the tokenizer.json truncation block's max_length. transformers itself never turns that block into
 *    model_max_length (it only seeds the `max_length` call default), so this step is ragtune's last resort for
 *    folders where ST would not truncate at all.
 */
export function resolveMaxSeqLength(i: MaxSeqLengthInputs): {
  value: number | null;
  from: MaxSeqLengthSource | null;
} {
  if (usableLength(i.sentenceBertMaxSeqLength))
    return { value: i.sentenceBertMaxSeqLength, from: "sentence_bert_config.json" };
  const tok = usableLength(i.tokenizerModelMaxLength) ? i.tokenizerModelMaxLength : undefined;
  const pos = usableLength(i.maxPositionEmbeddings) ? i.maxPositionEmbeddings : undefined;
  if (tok !== undefined && (pos === undefined || tok <= pos))
    return { value: tok, from: "tokenizer_config.json" };
  if (pos !== undefined) return { value: pos, from: "config.json" };
  if (usableLength(i.tokenizerJsonMaxLength))
    return { value: i.tokenizerJsonMaxLength, from: "tokenizer.json" };
  return { value: null, from: null };
}

/** Reads what resolveMaxSeqLength needs from the transformer's folder (tokenizer.json only if still needed). */
function maxSeqLengthFromFolder(
  transformerDir: string,
  sentenceBertMaxSeqLength: number | undefined,
  warnings: string[],
): { value: number | null; from: MaxSeqLengthSource | null } {
  const inputs: MaxSeqLengthInputs = { sentenceBertMaxSeqLength };
  if (sentenceBertMaxSeqLength === undefined) {
    const tcFile = join(transformerDir, "tokenizer_config.json");
    const tc = readJsonObjectIfFile(tcFile);
    if (tc !== undefined && given(tc, "model_max_length")) {
      const v = tc.model_max_length;
      if (typeof v !== "number" || !(v > 0))
        fail(tcFile, "model_max_length", `expected a positive number, got ${JSON.stringify(v)}`);
      inputs.tokenizerModelMaxLength = v;
    }
    const cFile = join(transformerDir, "config.json");
    const c = readJsonObjectIfFile(cFile);
    if (c !== undefined && given(c, "max_position_embeddings")) {
      const v = c.max_position_embeddings;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || (v < 1 && v !== -1))
        fail(cFile, "max_position_embeddings", `expected an integer ≥ 1 or -1, got ${JSON.stringify(v)}`);
      inputs.maxPositionEmbeddings = v;
    }
  }
  let r = resolveMaxSeqLength(inputs);
  if (r.value === null) {
    const tjFile = join(transformerDir, "tokenizer.json");
    const tj = readJsonObjectIfFile(tjFile, "tokenizer"); // tokenizer.json: the tokenizer bound, not the config one
    const trunc = tj?.truncation;
    if (isObject(trunc) && given(trunc, "max_length")) {
      inputs.tokenizerJsonMaxLength = intOf(tjFile, trunc, "max_length");
      r = resolveMaxSeqLength(inputs);
      if (r.value !== null)
        warnings.push(
          `${tjFile}: no max_seq_length, model_max_length or max_position_embeddings; using the truncation block's max_length ${r.value}`,
        );
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Transformer config (sentence_bert_config.json)

/** Transformer.load_config tries these names in order and takes the first non-empty one. */
const SENTENCE_CONFIG_NAMES = [
  "sentence_bert_config.json",
  "sentence_roberta_config.json",
  "sentence_distilbert_config.json",
  "sentence_camembert_config.json",
  "sentence_albert_config.json",
  "sentence_xlm-roberta_config.json",
  "sentence_xlnet_config.json",
];

interface TransformerSettings {
  maxSeqLength: number | undefined;
  doLowerCase: boolean;
}

function readTransformerSettings(transformerDir: string): TransformerSettings {
  for (const name of SENTENCE_CONFIG_NAMES) {
    const file = join(transformerDir, name);
    const o = readJsonObjectIfFile(file);
    if (o === undefined || Object.keys(o).length === 0) continue;
    // 6.x keys: only the plain text encoder ragtune runs is accepted.
    const task = stringOf(file, o, "transformer_task");
    if (task !== undefined && task !== "feature-extraction")
      fail(file, "transformer_task", `only "feature-extraction" is supported, got "${task}"`);
    const out = stringOf(file, o, "module_output_name");
    if (out !== undefined && out !== "token_embeddings")
      fail(file, "module_output_name", `only "token_embeddings" is supported, got "${out}"`);
    if (given(o, "modality_config")) {
      const mc = o.modality_config;
      const text = isObject(mc) ? mc.text : undefined;
      if (!isObject(text)) fail(file, "modality_config", 'expected an object with a "text" entry');
      if (
        (text.method ?? "forward") !== "forward" ||
        (text.method_output_name ?? "last_hidden_state") !== "last_hidden_state"
      )
        fail(
          file,
          "modality_config",
          `text must map to forward / last_hidden_state, got ${JSON.stringify(text)}`,
        );
    }
    return {
      maxSeqLength: intOf(file, o, "max_seq_length"),
      doLowerCase: boolOf(file, o, "do_lower_case") ?? false,
    };
  }
  return { maxSeqLength: undefined, doLowerCase: false };
}

// ---------------------------------------------------------------------------------------------------------
// Model-level config (config_sentence_transformers.json)

interface ModelSettings {
  prompts: Record<string, string>;
  defaultPromptName: string | null;
  similarityFnName: SimilarityFnName;
  truncateDim: number | null;
  modelType: string;
  versions: Record<string, string>;
}

/** SentenceTransformer's built-in prompt names (5.x: "", 6.x: None), so a default may name them. */
const DEFAULT_PROMPT_NAMES = ["query", "document"];

function readModelSettings(file: string, warnings: string[]): ModelSettings {
  const o = readJsonObjectIfFile(file) ?? {};
  const rawPrompts = given(o, "prompts") ? o.prompts : {};
  if (!isObject(rawPrompts))
    fail(file, "prompts", `expected an object of name -> text, got ${describe(rawPrompts)}`);
  const prompts: Record<string, string> = {};
  for (const [name, text] of Object.entries(rawPrompts)) {
    if (text !== null && typeof text !== "string")
      fail(file, `prompts.${name}`, `expected a string or null, got ${JSON.stringify(text)}`);
    if (text) prompts[name] = text;
  }
  let defaultPromptName = stringOf(file, o, "default_prompt_name") ?? null;
  if (defaultPromptName !== null) {
    if (!(defaultPromptName in rawPrompts) && !DEFAULT_PROMPT_NAMES.includes(defaultPromptName))
      fail(
        file,
        "default_prompt_name",
        `"${defaultPromptName}" is not one of the prompts (${Object.keys(rawPrompts).join(", ") || "none"})`,
      );
    if (!(defaultPromptName in prompts)) defaultPromptName = null; // an empty prompt: the same as none
  }
  let similarityFnName: SimilarityFnName = "cosine";
  const sim = stringOf(file, o, "similarity_fn_name");
  if (sim !== undefined) {
    if ((SIMILARITY_FN_NAMES as readonly string[]).includes(sim)) similarityFnName = sim as SimilarityFnName;
    else
      warnings.push(
        `${file}: "similarity_fn_name": unsupported "${sim}", using cosine as sentence-transformers 6 does`,
      );
  }
  const truncateDim = intOf(file, o, "truncate_dim") ?? null;
  const modelType = stringOf(file, o, "model_type") ?? "SentenceTransformer";
  if (modelType !== "SentenceTransformer")
    warnings.push(`${file}: "model_type" is "${modelType}"; reading it as a SentenceTransformer`);
  const versions: Record<string, string> = {};
  if (given(o, "__version__")) {
    if (!isObject(o.__version__))
      fail(file, "__version__", `expected an object, got ${describe(o.__version__)}`);
    for (const [k, v] of Object.entries(o.__version__)) if (typeof v === "string") versions[k] = v;
  }
  return { prompts, defaultPromptName, similarityFnName, truncateDim, modelType, versions };
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/** A modules.json path must stay inside the folder. */
function checkModulePath(file: string, key: string, path: string): void {
  const norm = posix.normalize(path.replace(/\\/g, "/"));
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || norm === ".." || norm.startsWith("../"))
    fail(file, key, `path ${JSON.stringify(path)} leaves the model folder`);
}

/**
 * Reads the folder description of a saved sentence-transformers model (any of 2.x-6.x) or of a plain
 * transformers model folder. Files that ST treats as optional (config_sentence_transformers.json, the
 * Normalize folder, sentence_bert_config.json) may be absent; a module's required config (pooling, dense) may not.
 */
export function readStFolder(dir: string): StFolder {
  const warnings: string[] = [];
  const modulesFile = join(dir, "modules.json");
  if (!isFile(modulesFile)) return readPlainTransformers(dir, warnings);

  const raw = readJson(modulesFile);
  if (!Array.isArray(raw) || raw.length === 0)
    fail(modulesFile, undefined, "expected a non-empty list of {idx, name, path, type}");
  const modules: StModule[] = [];
  const moduleTypes: string[] = [];
  let transformerSettings: TransformerSettings = { maxSeqLength: undefined, doLowerCase: false };
  let maxSeq: { value: number | null; from: MaxSeqLengthSource | null } = { value: null, from: null };

  raw.forEach((entry: unknown, i) => {
    const at = (key: string) => `[${i}].${key}`;
    if (!isObject(entry)) fail(modulesFile, `[${i}]`, `expected an object, got ${describe(entry)}`);
    const type = entry.type;
    if (typeof type !== "string") fail(modulesFile, at("type"), "missing or not a string");
    const path = entry.path;
    if (typeof path !== "string") fail(modulesFile, at("path"), "missing or not a string");
    if (entry.idx !== undefined && !Number.isSafeInteger(entry.idx))
      fail(modulesFile, at("idx"), `expected an integer, got ${JSON.stringify(entry.idx)}`);
    checkModulePath(modulesFile, at("path"), path);
    const kind = moduleKindOf(type);
    if (kind === undefined)
      fail(
        modulesFile,
        at("type"),
        `unknown module type "${type}"; ragtune supports sentence_transformers Transformer, Pooling, Normalize and Dense`,
      );
    const expected: ModuleKind[] = i === 0 ? ["transformer"] : i === 1 ? ["pooling"] : ["dense", "normalize"];
    if (!expected.includes(kind))
      fail(
        modulesFile,
        at("type"),
        `a ${CLASS_OF_KIND[kind]} at position ${i} is not supported: ragtune runs Transformer, Pooling, then Dense / Normalize modules`,
      );
    moduleTypes.push(type);
    const moduleDir = join(dir, path);
    switch (kind) {
      case "transformer":
        transformerSettings = readTransformerSettings(moduleDir);
        maxSeq = maxSeqLengthFromFolder(moduleDir, transformerSettings.maxSeqLength, warnings);
        modules.push({ kind, path });
        break;
      case "pooling": {
        const file = join(moduleDir, "config.json");
        if (!isFile(file)) fail(file, undefined, "missing pooling config (listed in modules.json)");
        modules.push({ kind, path, config: parsePoolingConfig(readJson(file), file, warnings) });
        break;
      }
      case "dense": {
        const file = join(moduleDir, "config.json");
        if (!isFile(file)) fail(file, undefined, "missing Dense config (listed in modules.json)");
        modules.push({ kind, path, config: parseDenseConfig(readJson(file), file, warnings) });
        break;
      }
      case "normalize": {
        // 3.x-5.x save nothing (hub copies often lack the empty folder); 6.x saves module_input/output_name.
        const file = join(moduleDir, "config.json");
        const o = readJsonObjectIfFile(file);
        for (const key of ["module_input_name", "module_output_name"]) {
          const v = o === undefined ? undefined : stringOf(file, o, key);
          if (v !== undefined && v !== "sentence_embedding")
            fail(file, key, `only "sentence_embedding" is supported, got "${v}"`);
        }
        modules.push({ kind, path });
        break;
      }
    }
  });
  if (modules.length < 2)
    fail(modulesFile, undefined, "no Pooling module after the Transformer: no sentence embedding");
  checkDimensions(modules, join(dir, modules[0]!.path, "config.json"), (m) =>
    join(dir, m.path, "config.json"),
  );
  checkVocabularySize(join(dir, modules[0]!.path));

  const settings = readModelSettings(join(dir, "config_sentence_transformers.json"), warnings);
  return {
    modules,
    maxSeqLength: maxSeq.value,
    doLowerCase: transformerSettings.doLowerCase,
    prompts: settings.prompts,
    defaultPromptName: settings.defaultPromptName,
    similarityFnName: settings.similarityFnName,
    truncateDim: settings.truncateDim,
    source: {
      dir,
      layout: "sentence-transformers",
      moduleTypes,
      versions: settings.versions,
      modelType: settings.modelType,
      maxSeqLengthFrom: maxSeq.from,
    },
    warnings,
  };
}

/**
 * Checks the embedding width through the pipeline: pooling emits modes × dimension values and each Dense must
 * take what the module before it emits. The pooling dimension must equal config.json's hidden_size, the width
 * the transformer outputs (stricter than ST, which never compares them: a wrong value there would set the
 * `--dim` limit and the model card's dimension while the pooled width stays the hidden size).
 */
function checkDimensions(
  modules: readonly StModule[],
  configFile: string,
  fileOf: (m: StModule) => string,
): void {
  let width = 0;
  for (const m of modules) {
    if (m.kind === "pooling") {
      const hidden = readJsonObjectIfFile(configFile)?.hidden_size;
      if (typeof hidden === "number" && hidden !== m.config.embeddingDimension)
        fail(
          fileOf(m),
          "embedding_dimension",
          `${m.config.embeddingDimension}, but the transformer outputs hidden_size ${hidden} values (${configFile})`,
        );
      width = m.config.modes.length * m.config.embeddingDimension;
    } else if (m.kind === "dense") {
      if (m.config.inFeatures !== width)
        fail(
          fileOf(m),
          "in_features",
          `${m.config.inFeatures}, but the module before it outputs ${width} values`,
        );
      width = m.config.outFeatures;
    }
  }
}

/** ST's fallback for a folder without modules.json (sentence_transformer/model.py `_load_default_modules`). */
function readPlainTransformers(dir: string, warnings: string[]): StFolder {
  const configFile = join(dir, "config.json");
  if (!isFile(configFile))
    fail(
      dir,
      undefined,
      "neither modules.json nor config.json: not a sentence-transformers or transformers model folder",
    );
  const config = readJsonObject(configFile);
  const hidden = intOf(configFile, config, "hidden_size");
  if (hidden === undefined) fail(configFile, "hidden_size", "missing");
  // A model designed for causal LM (and not marked bidirectional) gets last-token pooling, any other mean.
  const arch = Array.isArray(config.architectures) ? config.architectures[0] : undefined;
  const causal = typeof arch === "string" && arch.endsWith("ForCausalLM") && config.is_causal !== false;
  const mode: PoolingMode = causal ? "lasttoken" : "mean";
  warnings.push(
    `${dir}: no modules.json, so not a sentence-transformers model; using the transformer with ${mode} pooling, as sentence-transformers does`,
  );
  const maxSeq = maxSeqLengthFromFolder(dir, undefined, warnings);
  checkVocabularySize(dir);
  return {
    modules: [
      { kind: "transformer", path: "" },
      {
        kind: "pooling",
        path: "1_Pooling",
        config: { embeddingDimension: hidden, modes: [mode], includePrompt: true },
      },
    ],
    maxSeqLength: maxSeq.value,
    doLowerCase: false,
    prompts: {},
    defaultPromptName: null,
    similarityFnName: "cosine",
    truncateDim: null,
    source: {
      dir,
      layout: "transformers",
      moduleTypes: [],
      versions: {},
      modelType: "SentenceTransformer",
      maxSeqLengthFrom: maxSeq.from,
    },
    warnings,
  };
}

/**
 * A bare vocab.txt must fit the embedding matrix (config.json `vocab_size` rows, which the weights loader checks
 * against the checkpoint): token ids are line numbers, so more lines than rows would index past the matrix. Checked
 * here, before the tokenizer is built from it; the file is read within its size bound (RAGTUNE_MAX_VOCAB_BYTES),
 * so a 10-million-line vocab.txt fails at once. A tokenizer.json is checked after it is built (sentence-transformer.ts).
 */
function checkVocabularySize(transformerDir: string): void {
  const configFile = join(transformerDir, "config.json");
  const vocabFile = join(transformerDir, "vocab.txt");
  if (isFile(join(transformerDir, "tokenizer.json")) || !isFile(vocabFile)) return;
  const config = readJsonObjectIfFile(configFile);
  const rows = config === undefined ? undefined : intOf(configFile, config, "vocab_size");
  if (rows === undefined) return;
  const tokens = parseVocabTxt(reading(vocabFile, () => readRegularText(vocabFile, "vocab"))).length;
  if (tokens > rows)
    fail(
      vocabFile,
      undefined,
      `${tokens} tokens, but the embedding matrix has ${rows} rows (vocab_size in ${configFile}); ids past ${rows - 1} have no embedding`,
    );
}

/** The embedding width the pipeline outputs (after the last Dense, else the pooling). */
export function outputDimension(spec: Pick<StFolderSpec, "modules">): number {
  let width = 0;
  for (const m of spec.modules) {
    if (m.kind === "pooling") width = m.config.modes.length * m.config.embeddingDimension;
    else if (m.kind === "dense") width = m.config.outFeatures;
  }
  return width;
}
