// Sharded safetensors checkpoints (`model.safetensors.index.json`) behind the same read API as one file.
//
// The index is what transformers' `save_pretrained(max_shard_size=...)` and huggingface_hub's
// `split_torch_state_dict_into_shards` write: `{"metadata": {"total_size": ...}, "weight_map": {"<key>":
// "model-00001-of-00002.safetensors", ...}}`. transformers' `load_sharded_checkpoint` trusts the map and
// only notices a mismatch when a key goes missing at load time; here the whole checkpoint is checked at open
// (every shard exists, stays inside the index's folder, and holds exactly the keys mapped to it) so a broken
// download fails fast with the index and the shard named, before any tensor is materialised.

import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";

import { checkJsonStrictness, refusePickle, SafetensorsError, SafetensorsFile } from "./safetensors.ts";
import type { TensorInfo, TensorReader } from "./safetensors.ts";
import { isPlainObject } from "../util/index.ts";
import { jsonSyntaxDetail, readRegularText } from "../util/read-file.ts";

/** File names the Hub uses for single-file and sharded safetensors checkpoints. */
export const SAFETENSORS_WEIGHTS_NAME = "model.safetensors";
export const SAFETENSORS_INDEX_NAME = "model.safetensors.index.json";
/** Pickle checkpoints that may sit in a model folder instead; only ever named in errors, never opened. */
const PICKLE_WEIGHTS_NAMES = ["pytorch_model.bin", "pytorch_model.bin.index.json"];

export interface SafetensorsIndex {
  /** The index's free-form "metadata" (e.g. `total_size`); not the shards' `__metadata__`. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Tensor key → shard file name relative to the index's folder. */
  readonly weightMap: ReadonlyMap<string, string>;
}

/** Parses and validates the index JSON (not the shards); `indexPath` is only used in error messages. */
export function parseSafetensorsIndex(text: string, indexPath: string): SafetensorsIndex {
  const bad = (detail: string, key?: string) => new SafetensorsError(indexPath, key, detail);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`index is not valid JSON (${jsonSyntaxDetail(e, text)})`);
  }
  if (!isPlainObject(json)) throw bad("index JSON is not an object");
  // Duplicate keys in weight_map would let one tensor silently map to two shards; metadata may hold floats.
  checkJsonStrictness(
    text,
    (detail) => {
      throw bad(`index: ${detail}`);
    },
    false,
  );
  const { metadata = {}, weight_map: weightMap } = json;
  if (!isPlainObject(metadata)) throw bad(`"metadata" must be an object`);
  if (!isPlainObject(weightMap)) throw bad(`"weight_map" must be an object of tensor name -> shard file`);
  const map = new Map<string, string>();
  for (const [key, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard === "")
      throw bad(`weight_map value must be a shard file name`, key);
    const norm = normalize(shard);
    if (isAbsolute(shard) || norm === ".." || norm.startsWith(`..${sep}`)) {
      throw bad(`shard ${JSON.stringify(shard)} is not a path inside the index's folder`, key);
    }
    map.set(key, shard);
  }
  if (map.size === 0) throw bad(`"weight_map" is empty`);
  return { metadata: Object.freeze({ ...metadata }), weightMap: map };
}

/** A sharded checkpoint: one `SafetensorsFile` per shard, opened (headers only) and cross-checked at open. */
export class ShardedSafetensors implements TensorReader {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly index: SafetensorsIndex,
    /** Shard file name → open file, in file-name order. */
    private readonly shards: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  static open(indexPath: string): ShardedSafetensors {
    if (indexPath.toLowerCase().endsWith(".bin.index.json"))
      refusePickle(indexPath.slice(0, -".index.json".length));
    const index = parseSafetensorsIndex(readRegularText(indexPath, "config"), indexPath);
    const dir = dirname(indexPath);
    const shardNames = [...new Set(index.weightMap.values())].sort();
    for (const name of shardNames) refusePickle(join(dir, name));
    const missing = shardNames.filter((name) => !existsSync(join(dir, name)));
    if (missing.length > 0) {
      throw new SafetensorsError(
        indexPath,
        undefined,
        `missing shard file(s) ${missing.map((m) => JSON.stringify(m)).join(", ")} (looked in ${resolve(dir)})`,
      );
    }
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const name of shardNames) shards.set(name, SafetensorsFile.open(join(dir, name)));
      checkShardKeys(indexPath, index.weightMap, shards);
    } catch (e) {
      for (const f of shards.values()) f.close();
      throw e;
    }
    return new ShardedSafetensors(indexPath, index, shards);
  }

  /**
   * The first shard's `__metadata__` (transformers writes the same `{"format": "pt"}` into every shard); the
   * index's own "metadata" is `index.metadata`.
   */
  get metadata(): Readonly<Record<string, string>> | undefined {
    return this.shards.values().next().value?.metadata;
  }

  /** Shard file names, relative to the index's folder. */
  shardFiles(): string[] {
    return [...this.shards.keys()];
  }

  /** Keys shard by shard (file-name order), each shard in byte-buffer order, so reads walk files forward. */
  keys(): string[] {
    return [...this.shards.values()].flatMap((f) => f.keys());
  }

  has(key: string): boolean {
    return this.index.weightMap.has(key);
  }

  info(key: string): TensorInfo {
    return this.shardOf(key).info(key);
  }

  read(key: string): Buffer {
    return this.shardOf(key).read(key);
  }

  close(): void {
    for (const f of this.shards.values()) f.close();
    this.closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private shardOf(key: string): SafetensorsFile {
    const name = this.index.weightMap.get(key);
    if (name === undefined) throw new SafetensorsError(this.path, key, "no such tensor in the weight_map");
    const shard = this.shards.get(name);
    if (shard === undefined || this.closed) throw new SafetensorsError(this.path, key, "read after close()");
    return shard;
  }
}

/** Each shard must hold exactly the keys the index maps to it: no missing key and no stray one. */
function checkShardKeys(
  indexPath: string,
  weightMap: ReadonlyMap<string, string>,
  shards: ReadonlyMap<string, SafetensorsFile>,
): void {
  for (const [key, name] of weightMap) {
    if (!shards.get(name)?.has(key)) {
      throw new SafetensorsError(
        indexPath,
        key,
        `weight_map puts it in shard "${name}", which has no such tensor`,
      );
    }
  }
  for (const [name, shard] of shards) {
    for (const key of shard.keys()) {
      const mapped = weightMap.get(key);
      if (mapped !== name) {
        const where = mapped === undefined ? "is not in the weight_map" : `is mapped to shard "${mapped}"`;
        throw new SafetensorsError(indexPath, key, `found in shard "${name}" but ${where}`);
      }
    }
  }
}

/**
 * Opens a checkpoint given a `.safetensors` file, a `*.safetensors.index.json`, or a model folder holding
 * `model.safetensors` or `model.safetensors.index.json` (single file preferred, as transformers does).
 * Pickle checkpoints are refused with conversion instructions rather than reported as "not found".
 */
export function openSafetensors(path: string): TensorReader {
  if (existsSync(path) && statSync(path).isDirectory()) {
    const single = join(path, SAFETENSORS_WEIGHTS_NAME);
    if (existsSync(single)) return SafetensorsFile.open(single);
    const index = join(path, SAFETENSORS_INDEX_NAME);
    if (existsSync(index)) return ShardedSafetensors.open(index);
    for (const name of PICKLE_WEIGHTS_NAMES) {
      // refusePickle refuses by extension, so name the .bin even when only its index is present.
      if (existsSync(join(path, name))) refusePickle(join(path, name.replace(/\.index\.json$/, "")));
    }
    throw new SafetensorsError(
      path,
      undefined,
      `no ${SAFETENSORS_WEIGHTS_NAME} or ${SAFETENSORS_INDEX_NAME} in folder`,
    );
  }
  if (path.endsWith(".index.json")) return ShardedSafetensors.open(path);
  refusePickle(path);
  return SafetensorsFile.open(path);
}
