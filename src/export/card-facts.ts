// Facts about a fine-tune's origins that its model card may state, and only when they are known: whether the base
// model is a Hugging Face hub id (only then is it `base_model` in the YAML, which the hub turns into a link), the
// base model's own license and languages (read from its README.md front matter, never invented), and a dataset
// path reduced to its file name (a card is published; the trainer's absolute paths are nobody's business).
import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { readRegularText } from "../util/index.ts";

/** What the card says the base model was. */
export interface BaseModelFacts {
  /** A hub id (`owner/name`), recorded as `base_model` and linked; null when the base was not one. */
  hubId: string | null;
  /** The base model in words when it is not a hub id ("a local folder (`base`)", "Universal Sentence …"). */
  description: string;
}

/** What the base model's README.md front matter declares (each absent when it does not). */
export interface FrontMatterFacts {
  license?: string;
  languages?: string[];
}

// The hub's repo-name rules (huggingface_hub validate_repo_id): owner/name of letters, digits, "-", "_", ".", at
// most 96 characters each, no "--" or "..", not ending in ".git".
const HUB_ID = /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/;

/** True for a string of the hub's `owner/name` syntax. */
export function isHubIdSyntax(id: string): boolean {
  return HUB_ID.test(id) && !id.includes("--") && !id.includes("..") && !id.endsWith(".git");
}

/**
 * The base model as the card states it. `modelArg` is what --model got; `explicit` is --base-model (a hub id the
 * user vouches for, e.g. the repo a local folder was downloaded from). A `modelArg` of hub syntax that names an
 * existing local folder was loaded from that folder, so it is not recorded as a hub id.
 */
export function baseModelFacts(
  modelArg: string,
  explicit: string | null,
  useLiteDescription?: string,
): BaseModelFacts {
  if (explicit !== null) {
    if (!isHubIdSyntax(explicit))
      throw new Error(`--base-model must be a Hugging Face hub id (owner/name), got "${explicit}"`);
    return { hubId: explicit, description: explicit };
  }
  if (useLiteDescription !== undefined) return { hubId: null, description: useLiteDescription };
  const local = existsSync(modelArg);
  if (!local && isHubIdSyntax(modelArg)) return { hubId: modelArg, description: modelArg };
  const name = basename(modelArg.replace(/[\\/]+$/, ""));
  return {
    hubId: null,
    description: local && statSync(modelArg).isDirectory() ? `a local folder (\`${name}\`)` : `\`${name}\``,
  };
}

/** A dataset file as the card names it: its file name, never the folder it was read from. */
export function datasetFileName(path: string): string {
  return basename(path);
}

/** Removes matching quotes around a YAML scalar. */
function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t[t.length - 1] === t[0]) return t.slice(1, -1);
  return t;
}

/**
 * `license` and `language` from a model card's YAML front matter (the hub's metadata block). Reads the forms model
 * cards use — `license: mit`, `language: en`, `language: [en, de]`, and a block list of `- en` lines — and nothing
 * else of YAML; anything it cannot read is left out rather than guessed.
 */
export function parseFrontMatter(readme: string): FrontMatterFacts {
  const m = /^\uFEFF?---\r?\n([\s\S]*?)\r?\n---\s*(\r?\n|$)/.exec(readme);
  if (!m) return {};
  const lines = m[1]!.split(/\r?\n/);
  const out: FrontMatterFacts = {};
  for (let i = 0; i < lines.length; i++) {
    const kv = /^(license|language):\s*(.*?)\s*(#.*)?$/.exec(lines[i]!);
    if (!kv) continue;
    const [, key, rawValue] = kv;
    const value = rawValue ?? "";
    let values: string[];
    if (value === "") {
      values = [];
      while (i + 1 < lines.length && /^\s*-\s+/.test(lines[i + 1]!))
        values.push(unquote(lines[++i]!.replace(/^\s*-\s+/, "").replace(/\s+#.*$/, "")));
    } else if (value.startsWith("[") && value.endsWith("]")) {
      values = value.slice(1, -1).split(",").map(unquote);
    } else {
      values = [unquote(value)];
    }
    values = values.filter((v) => /^[\w.+-]+$/.test(v));
    if (values.length === 0) continue;
    if (key === "license") out.license = values[0]!;
    else out.languages = values;
  }
  return out;
}

/** The front matter facts of the README.md in `dir`, or {} when it has none (or it cannot be read). */
export function frontMatterOf(dir: string): FrontMatterFacts {
  const file = join(dir, "README.md");
  if (!existsSync(file)) return {};
  try {
    // Bounded, regular files only (a README of an untrusted hub repo, like its configs).
    return parseFrontMatter(readRegularText(file, "config"));
  } catch {
    return {}; // an unreadable README states nothing; the card then states nothing either
  }
}
