// Which repo files to fetch. huggingface_hub filters `snapshot_download`'s file list with Python's `fnmatch`
// (utils/_paths.py:filter_repo_objects); we port fnmatch.translate so that the same allow/ignore patterns select the
// same files in both languages. Note the fnmatch semantics, unlike shell globs: `*` also matches "/", so "*.json"
// matches "1_Pooling/config.json", and "*/config.json" matches any config.json below the root (but not the root one).

/** Files a sentence-transformers BERT-style model needs, as `allowPatterns` (safetensors weights only). */
export const SENTENCE_TRANSFORMERS_ALLOW_PATTERNS: readonly string[] = Object.freeze([
  // Module list and the model-level configs.
  "modules.json",
  "config_sentence_transformers.json",
  "sentence_bert_config.json",
  "config.json",
  // Tokenizer (fast tokenizer.json, plus the files older repos rely on).
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.txt",
  // Transformer weights: single file, or shards with their index.
  "model.safetensors",
  "model.safetensors.index.json",
  "model-*.safetensors",
  // Module folders: 1_Pooling/config.json, 2_Dense/{config.json,model.safetensors}, 2_Normalize/..., and the
  // transformer itself when an old repo keeps it in 0_Transformer/.
  "*/config.json",
  "*/model.safetensors",
  "*/sentence_bert_config.json",
  "*/tokenizer.json",
  "*/tokenizer_config.json",
  "*/special_tokens_map.json",
  "*/vocab.txt",
  // The model card: license and intended use travel with the weights.
  "README.md",
]);

/**
 * Vetoes applied with the default allow list: exported-runtime folders and training checkpoints also hold
 * config.json / model.safetensors files that the `*` patterns above would otherwise pick up.
 */
export const SENTENCE_TRANSFORMERS_IGNORE_PATTERNS: readonly string[] = Object.freeze([
  "onnx/*",
  "openvino/*",
  "coreml/*",
  "checkpoint-*/*",
]);

/** Escape a character for use outside a character class. */
function escapeRegex(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

/**
 * Python's fnmatch.translate: `*` → any run of characters (including "/"), `?` → one character, `[seq]` and
 * `[!seq]` → character classes; a "[" with no closing "]" is literal. Matching is case-sensitive (POSIX normcase).
 */
export function fnmatchToRegExp(pattern: string): RegExp {
  let re = "";
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern.charAt(i++);
    if (c === "*") {
      if (!re.endsWith(".*")) re += ".*";
    } else if (c === "?") {
      re += ".";
    } else if (c === "[") {
      let j = i;
      if (j < n && pattern.charAt(j) === "!") j++;
      if (j < n && pattern.charAt(j) === "]") j++;
      while (j < n && pattern.charAt(j) !== "]") j++;
      if (j >= n) {
        re += "\\[";
        continue;
      }
      let stuff = pattern.slice(i, j);
      i = j + 1;
      let negate = false;
      if (stuff.startsWith("!")) {
        negate = true;
        stuff = stuff.slice(1);
      }
      // Inside a class only "\", "]", "[" and a leading "^" are special in JS; a leading "]" is a literal in
      // Python's classes but would close an empty class in JS, so escape it.
      stuff = stuff.replace(/[\\\]\[]/g, (m) => `\\${m}`);
      if (!negate && stuff.startsWith("^")) stuff = `\\${stuff}`;
      re += negate ? `[^${stuff}]` : `[${stuff}]`;
    } else {
      re += escapeRegex(c);
    }
  }
  // fnmatch.translate wraps in (?s:...)\Z: "." also matches newlines, and the whole name must match.
  return new RegExp(`^(?:${re})$`, "s");
}

const cache = new Map<string, RegExp>();

/** fnmatch.fnmatch(name, pattern) on POSIX. */
export function fnmatch(name: string, pattern: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = fnmatchToRegExp(pattern);
    cache.set(pattern, re);
  }
  return re.test(name);
}

/** utils/_paths.py:_add_wildcard_to_directories: "folder/" means everything in it. */
function addWildcardToDirectories(pattern: string): string {
  return pattern.endsWith("/") ? `${pattern}*` : pattern;
}

function asList(p: string | readonly string[] | undefined): string[] | undefined {
  if (p === undefined) return undefined;
  return (typeof p === "string" ? [p] : [...p]).map(addWildcardToDirectories);
}

/**
 * utils/_paths.py:filter_repo_objects: keep the paths that match at least one allow pattern (when an allow list is
 * given) and none of the ignore patterns. Order is preserved.
 */
export function filterRepoObjects(
  paths: Iterable<string>,
  allowPatterns?: string | readonly string[],
  ignorePatterns?: string | readonly string[],
): string[] {
  const allow = asList(allowPatterns);
  const ignore = asList(ignorePatterns);
  const out: string[] = [];
  for (const path of paths) {
    if (allow !== undefined && !allow.some((p) => fnmatch(path, p))) continue;
    if (ignore !== undefined && ignore.some((p) => fnmatch(path, p))) continue;
    out.push(path);
  }
  return out;
}

/**
 * The patterns snapshotDownload applies. Without `allowPatterns` it fetches a sentence-transformers model: the
 * default allow list, with the default vetoes plus the caller's `ignorePatterns`. With `allowPatterns` the caller's
 * lists are used as given, like Python (pass `allowPatterns: ["*"]` to fetch a whole repo).
 */
export function effectivePatterns(
  allowPatterns: string | readonly string[] | undefined,
  ignorePatterns: string | readonly string[] | undefined,
): { allow: readonly string[]; ignore: readonly string[] } {
  const ignore =
    ignorePatterns === undefined
      ? []
      : typeof ignorePatterns === "string"
        ? [ignorePatterns]
        : ignorePatterns;
  if (allowPatterns === undefined) {
    return {
      allow: SENTENCE_TRANSFORMERS_ALLOW_PATTERNS,
      ignore: [...SENTENCE_TRANSFORMERS_IGNORE_PATTERNS, ...ignore],
    };
  }
  return { allow: typeof allowPatterns === "string" ? [allowPatterns] : allowPatterns, ignore };
}
