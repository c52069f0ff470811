// Writes the sentence-transformers folder description in the 3.x-5.x layout, which every version reads (6.x maps
// the old module paths through util/deprecated_import.py). Configuration only: weights and tokenizer files are
// written by their own modules. The reading side, and the types, are in st-folder.ts.
//
// ports sentence_transformers@dfcbbd93 (v5.1 branch): SentenceTransformer.py save, models/Pooling.py config_keys,
// models/Module.py save_config.
import { lstatSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildInfo } from "../engine/index.ts";
import { writeFileAtomic } from "../util/index.ts";
import {
  ACTIVATION_FULLNAME,
  CLASS_OF_KIND,
  LEGACY_POOLING_FLAGS,
  POOLING_MODES,
  ST5_POOLING_KEYS,
  SIMILARITY_FN_NAMES,
  ST_MODULE_TYPES,
  StFolderError,
  type StFolderSpec,
} from "./st-folder.ts";

// ---------------------------------------------------------------------------------------------------------
// Writing

/**
 * `__version__` of config_sentence_transformers.json is a compatibility floor, not a record of who wrote the
 * folder (ragtune did; see RagtuneStamp). sentence-transformers reads `__version__.sentence_transformers` only to
 * warn when it is newer than the installed version (SentenceTransformer._load_sbert_model: "You try to use a model
 * that was created with version …"), so the value written is the oldest release whose loader reads every key of
 * the folder: 3.0.0 added `similarity_fn_name` (2.4 – 2.7 read prompts and include_prompt but would score a `dot`
 * model by cosine), and 3.0.0's setup.py requires transformers ≥ 4.34.0 and torch ≥ 1.11.0 (which load the
 * safetensors weights and tokenizer.json written here). An older sentence-transformers warns; 3.0 – 6.x load it.
 */
export const ST_VERSION_FLOOR = Object.freeze({
  sentence_transformers: "3.0.0",
  transformers: "4.34.0",
  pytorch: "1.11.0",
});

/** What wrote the folder, under config_sentence_transformers.json's own `ragtune` key. */
export interface RagtuneStamp {
  /** ragtune's version (package.json). */
  version: string;
  /** The libtorch that ran (engine buildInfo().torchVersion). */
  libtorch: string;
}

export interface WriteStFolderOptions {
  /** Overrides of the `ragtune` stamp (default: package.json's version and the linked libtorch's). */
  ragtune?: Partial<RagtuneStamp>;
}

/** ragtune's version from its package.json ("unknown" when it cannot be read). */
export function ragtuneVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** The stamp of this process: ragtune's version and the libtorch it runs on. */
export function ragtuneStamp(overrides: Partial<RagtuneStamp> = {}): RagtuneStamp {
  return {
    version: overrides.version ?? ragtuneVersion(),
    libtorch: overrides.libtorch ?? buildInfo().torchVersion,
  };
}

/** `json.dump(value, f, indent=n)` byte for byte: ensure_ascii escapes, ", "/": " separators, no final newline. */
export function pythonJson(value: unknown, indent: number): string {
  return JSON.stringify(value, null, indent).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Creates the folder `path` inside a model folder, refusing a symbolic link there: writeFileAtomic replaces a
 * link at a file's path, but a linked folder (1_Pooling → elsewhere) would take the files out of the model.
 */
export function ensureRealFolder(path: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(path).isSymbolicLink();
  } catch {
    // absent: created below
  }
  if (isLink)
    throw new Error(`${path} is a symbolic link; ragtune does not write through links (remove it first)`);
  mkdirSync(path, { recursive: true });
}

/** Checks a spec before writing; `where` names it in errors (there is no file yet). */
function checkSpec(spec: StFolderSpec, where: string): void {
  const bad = (key: string, detail: string) => new StFolderError(where, key, detail);
  const kinds = spec.modules.map((m) => m.kind);
  if (
    kinds[0] !== "transformer" ||
    kinds[1] !== "pooling" ||
    kinds.slice(2).some((k) => k !== "dense" && k !== "normalize")
  )
    throw bad("modules", `expected transformer, pooling, then dense / normalize; got ${kinds.join(", ")}`);
  const posInt = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
  spec.modules.forEach((m, i) => {
    if (m.kind === "pooling") {
      const { embeddingDimension, modes } = m.config;
      if (!posInt(embeddingDimension))
        throw bad(`modules[${i}].embeddingDimension`, `bad value ${embeddingDimension}`);
      // The flags can only say "these modes, in the fixed order cls, max, mean, …, each once".
      const order = modes.map((mode) => POOLING_MODES.indexOf(mode));
      if (modes.length === 0 || order.some((o, j) => o < 0 || (j > 0 && o <= order[j - 1]!)))
        throw bad(
          `modules[${i}].modes`,
          `[${modes.join(", ")}] cannot be written as pooling_mode_* flags: use distinct modes in the order ${POOLING_MODES.join(", ")}`,
        );
    } else if (m.kind === "dense") {
      if (!posInt(m.config.inFeatures) || !posInt(m.config.outFeatures))
        throw bad(`modules[${i}]`, "Dense inFeatures / outFeatures must be positive integers");
      if (m.config.useResidual)
        throw bad(
          `modules[${i}].useResidual`,
          "a residual Dense needs sentence-transformers ≥ 5.7 and is not written",
        );
      if (!(m.config.activation in ACTIVATION_FULLNAME))
        throw bad(`modules[${i}].activation`, `unknown activation "${String(m.config.activation)}"`);
    }
  });
  let width = 0;
  spec.modules.forEach((m, i) => {
    if (m.kind === "pooling") width = m.config.modes.length * m.config.embeddingDimension;
    if (m.kind === "dense") {
      if (m.config.inFeatures !== width)
        throw bad(
          `modules[${i}].inFeatures`,
          `${m.config.inFeatures}, but the module before it outputs ${width}`,
        );
      width = m.config.outFeatures;
    }
  });
  if (spec.maxSeqLength !== null && !posInt(spec.maxSeqLength))
    throw bad("maxSeqLength", `expected a positive integer or null, got ${spec.maxSeqLength}`);
  if (!SIMILARITY_FN_NAMES.includes(spec.similarityFnName))
    throw bad(
      "similarityFnName",
      `expected one of ${SIMILARITY_FN_NAMES.join(", ")}, got "${spec.similarityFnName}"`,
    );
  if (spec.defaultPromptName !== null && !(spec.defaultPromptName in spec.prompts))
    throw bad("defaultPromptName", `"${spec.defaultPromptName}" is not one of the prompts`);
  if (spec.truncateDim !== null && !posInt(spec.truncateDim))
    throw bad("truncateDim", `expected a positive integer or null, got ${spec.truncateDim}`);
}

/**
 * Writes the folder description as sentence-transformers 5.1 `save()` does: config_sentence_transformers.json,
 * sentence_bert_config.json (root), `1_Pooling/config.json` with every `pooling_mode_*` key, `<i>_Dense/config.json`
 * per Dense, an empty `<i>_Normalize/` per Normalize, and modules.json last (so a folder with modules.json is
 * complete). Module types are the 3.x-5.x names: 6.x still loads them, because `import_from_string` imports
 * e.g. `sentence_transformers.models.Pooling` through its DEPRECATED_MODULE_PATHS redirect (util/deprecated_import.py:
 * "sentence_transformers.models.Pooling" -> "sentence_transformers.sentence_transformer.modules.pooling") and
 * Pooling.load_config converts the flags. Checked on sentence-transformers 6.0.1: it loads such a folder without a
 * warning, with the modules, max_seq_length, prompts, similarity, multi-mode pooling and Dense as written.
 * Weights, config.json, tokenizer files and README.md are other modules'.
 * Every file is written atomically. Returns the files written, relative to `dir`, in write order.
 */
export function writeStFolder(dir: string, spec: StFolderSpec, options: WriteStFolderOptions = {}): string[] {
  checkSpec(spec, dir);
  const written: string[] = [];
  const write = (rel: string, value: unknown, indent: number) => {
    if (rel.includes("/")) ensureRealFolder(join(dir, rel.slice(0, rel.lastIndexOf("/"))));
    writeFileAtomic(join(dir, rel), pythonJson(value, indent));
    written.push(rel);
  };
  mkdirSync(dir, { recursive: true });

  // Key order of a model built by 5.x (`_model_config = {"model_type": …}` in __init__, then save() adds
  // __version__, prompts, default_prompt_name, similarity_fn_name). A model loaded from a folder keeps that
  // folder's order instead (e.g. __version__ first); loaders read keys, not order. `ragtune` (last) says what
  // wrote the folder; sentence-transformers ignores keys it does not know.
  const modelConfig: Record<string, unknown> = {
    model_type: "SentenceTransformer",
    __version__: { ...ST_VERSION_FLOOR },
    prompts: { query: "", document: "", ...spec.prompts },
    default_prompt_name: spec.defaultPromptName,
    similarity_fn_name: spec.similarityFnName,
  };
  if (spec.truncateDim !== null) modelConfig.truncate_dim = spec.truncateDim;
  modelConfig.ragtune = ragtuneStamp(options.ragtune);
  write("config_sentence_transformers.json", modelConfig, 2);

  const entries: { idx: number; name: string; path: string; type: string }[] = [];
  spec.modules.forEach((m, idx) => {
    const path = m.kind === "transformer" ? "" : `${idx}_${CLASS_OF_KIND[m.kind]}`;
    const rel = (file: string) => (path === "" ? file : `${path}/${file}`);
    switch (m.kind) {
      case "transformer":
        write(
          rel("sentence_bert_config.json"),
          { max_seq_length: spec.maxSeqLength, do_lower_case: spec.doLowerCase },
          4,
        );
        break;
      case "pooling": {
        const c: Record<string, unknown> = { word_embedding_dimension: m.config.embeddingDimension };
        for (const key of ST5_POOLING_KEYS.slice(1, -1)) {
          const mode = LEGACY_POOLING_FLAGS.find(([k]) => k === key)![1];
          c[key] = m.config.modes.includes(mode);
        }
        c.include_prompt = m.config.includePrompt;
        write(rel("config.json"), c, 4);
        break;
      }
      case "dense":
        write(
          rel("config.json"),
          {
            in_features: m.config.inFeatures,
            out_features: m.config.outFeatures,
            bias: m.config.bias,
            activation_function: ACTIVATION_FULLNAME[m.config.activation],
          },
          4,
        );
        break;
      case "normalize":
        ensureRealFolder(join(dir, path));
        break;
    }
    entries.push({ idx, name: String(idx), path, type: ST_MODULE_TYPES[m.kind] });
  });
  write("modules.json", entries, 2);
  return written;
}
