// A tiny random sentence-transformers model for tests: BERT 2 layers × 32 hidden, 4 heads, FFN 64, 128
// positions, the real bert-base-uncased vocabulary, CLS pooling, Normalize. Built once per test process with
// SentenceTransformer.create and saved in a temp folder; tests load it, or take a copy when they change files.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { BertConfig } from "../../src/models/bert.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";
import { HfTokenizer } from "../../src/tokenize/index.ts";

/** bert-base-uncased's vocab.txt (30,522 tokens). */
export const BERT_VOCAB = fileURLToPath(
  new URL("../fixtures/tokenizers/bert-base-uncased/vocab.txt", import.meta.url),
);

/** The tiny model's encoder config. */
export const TINY_CONFIG: BertConfig = BertConfig.with({
  vocabSize: 30522,
  hiddenSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  intermediateSize: 64,
  maxPositionEmbeddings: 128,
  padTokenId: 0,
});

export const TINY_DIM = 32;
export const TINY_MAX_SEQ_LENGTH = 128;

let root: string | undefined;
let modelDir: string | undefined;

/** The process's scratch folder (removed at exit). */
export function scratchDir(): string {
  if (root === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "ragtune-tiny-"));
    root = dir;
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return root;
}

let counter = 0;
/** A fresh empty folder under the scratch folder. */
export function freshDir(prefix = "t"): string {
  return mkdtempSync(join(scratchDir(), `${prefix}-${counter++}-`));
}

/** The tiny model's folder, built on first use (seed 42). Read it, do not change it: use tinyModelCopy(). */
export function tinyModelDir(): string {
  if (modelDir === undefined) {
    const dir = join(scratchDir(), "tiny-model");
    const model = SentenceTransformer.create({
      config: TINY_CONFIG,
      tokenizer: HfTokenizer.fromFiles({ vocabTxt: BERT_VOCAB }),
      pooling: "cls",
      normalize: true,
      maxSeqLength: TINY_MAX_SEQ_LENGTH,
      seed: 42,
    });
    try {
      model.save(dir);
    } finally {
      model.dispose();
    }
    modelDir = dir;
  }
  return modelDir;
}

/** A copy of the tiny model's folder that the caller may change. */
export function tinyModelCopy(): string {
  const dir = freshDir("copy");
  cpSync(tinyModelDir(), dir, { recursive: true });
  return dir;
}

/** Reads, changes and writes back a JSON file of a model folder. */
export function editJson(file: string, edit: (value: Record<string, unknown>) => void): void {
  const value = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(value);
  writeFileSync(file, JSON.stringify(value, null, 2));
}

export interface VariantOptions {
  /** Pooling mode (default: cls). */
  mode?: "cls" | "mean";
  /** include_prompt of the pooling config (default true). */
  includePrompt?: boolean;
  /** false: drop the Normalize module from modules.json. */
  normalize?: boolean;
  /** config_sentence_transformers.json `prompts`. */
  prompts?: Record<string, string>;
  defaultPromptName?: string;
}

/** A copy of the model folder `src` with another pooling config, prompts, or no Normalize module. */
export function variantOf(src: string, o: VariantOptions): string {
  const dir = freshDir("variant");
  cpSync(src, dir, { recursive: true });
  editJson(join(dir, "1_Pooling", "config.json"), (c) => {
    for (const key of Object.keys(c)) if (key.startsWith("pooling_mode_")) c[key] = false;
    c[o.mode === "mean" ? "pooling_mode_mean_tokens" : "pooling_mode_cls_token"] = true;
    c.include_prompt = o.includePrompt ?? true;
  });
  if (o.normalize === false) {
    const file = join(dir, "modules.json");
    const modules = JSON.parse(readFileSync(file, "utf8")) as Array<{ type: string }>;
    writeFileSync(
      file,
      JSON.stringify(
        modules.filter((m) => !m.type.endsWith("Normalize")),
        null,
        2,
      ),
    );
  }
  editJson(join(dir, "config_sentence_transformers.json"), (c) => {
    if (o.prompts) c.prompts = o.prompts;
    if (o.defaultPromptName !== undefined) c.default_prompt_name = o.defaultPromptName;
  });
  return dir;
}

/** variantOf the tiny model. */
export function tinyModelVariant(o: VariantOptions): string {
  return variantOf(tinyModelDir(), o);
}

/** Loads the tiny model (a fresh instance; dispose it). */
export function loadTinyModel(): SentenceTransformer {
  return SentenceTransformer.fromDir(tinyModelDir());
}
