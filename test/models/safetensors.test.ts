// Tests for the byte-level safetensors reader/writer. No Python safetensors is available here, so byte
// layout is pinned by hand-built expected buffers (and by the vectors of upstream's own Rust unit tests in
// safetensors/src/tensor.rs: test_empty, test_serialization_forced_alignement).
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import {
  DTYPE_SIZES,
  LOADABLE_DTYPES,
  MAX_HEADER_SIZE,
  PT_FORMAT_METADATA,
  SafetensorsError,
  SafetensorsFile,
  parseSafetensors,
  readSafetensors,
  refusePickle,
  serializeSafetensors,
  writeSafetensors,
} from "../../src/models/safetensors.ts";
import type { Dtype } from "../../src/models/safetensors.ts";
import { ShardedSafetensors, openSafetensors } from "../../src/models/safetensors-index.ts";

const root = mkdtempSync(join(tmpdir(), "ragtune-safetensors-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const tmp = (name = "t.safetensors") => join(root, `${counter++}-${name}`);

/** Deterministic pseudo-random bytes (no Math.random, so failures reproduce). */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A raw file: u64 LE header length, the header text unpadded, then `data`. For malformed-input tests. */
function raw(header: string, data: Buffer = Buffer.alloc(0), n = Buffer.byteLength(header)): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([len, Buffer.from(header, "utf8"), data]);
}

/** Asserts that both the eager and the lazy reader reject `buf`, naming the file (and key when given). */
function rejects(buf: Buffer, pattern: RegExp, key?: string): void {
  const path = tmp("bad.safetensors");
  writeFileSync(path, buf);
  const check = (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, String(e));
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    if (key !== undefined) {
      assert.equal(e.key, key);
      assert.ok(e.message.includes(`tensor ${JSON.stringify(key)}`), e.message);
    }
    assert.match(e.message, pattern);
    return true;
  };
  assert.throws(() => parseSafetensors(buf, path), check);
  assert.throws(() => SafetensorsFile.open(path), check);
}

describe("round trip", () => {
  test("every dtype, through the eager and the lazy reader", () => {
    const dtypes = Object.keys(DTYPE_SIZES) as Dtype[];
    const tensors = dtypes.map((dtype, i) => ({
      name: `t.${dtype.toLowerCase()}`,
      dtype,
      shape: [2, 3],
      data: bytes(6 * DTYPE_SIZES[dtype], i + 1),
    }));
    const path = tmp();
    writeSafetensors(path, tensors);
    const eager = readSafetensors(path);
    using lazy = SafetensorsFile.open(path);
    assert.equal(eager.tensors.size, dtypes.length);
    for (const t of tensors) {
      const got = eager.tensors.get(t.name);
      assert.ok(got !== undefined, t.name);
      assert.equal(got.dtype, t.dtype);
      assert.deepEqual(got.shape, [2, 3]);
      assert.deepEqual(got.data, t.data);
      assert.deepEqual(lazy.read(t.name), t.data);
      assert.deepEqual(lazy.info(t.name).byteLength, t.data.length);
    }
    // Every tensor starts at a multiple of its element size, as upstream's dtype-descending order promises.
    for (const k of lazy.keys()) {
      const info = lazy.info(k);
      assert.equal(info.dataOffsets[0] % DTYPE_SIZES[info.dtype], 0, k);
    }
    assert.equal(eager.metadata, undefined);
    assert.ok(LOADABLE_DTYPES.has("BF16") && !LOADABLE_DTYPES.has("U16"));
  });

  test("BF16/F16 raw bits, scalars, zero-size and 0-dim tensors", () => {
    // 1.0 is 0x3F80 in bfloat16 and 0x3C00 in IEEE half; -2.0 is 0xC000 in both.
    const bf16 = new Uint16Array([0x3f80, 0xc000]);
    const f16 = new Uint16Array([0x3c00, 0xc000]);
    const path = tmp();
    writeSafetensors(path, {
      bf16: { dtype: "BF16", shape: [2], data: bf16 },
      f16: { dtype: "F16", shape: [2], data: f16 },
      scalar: { dtype: "F64", shape: [], data: new Float64Array([Math.PI]) },
      empty: { dtype: "F32", shape: [0], data: new Float32Array(0) },
      empty2d: { dtype: "I64", shape: [3, 0], data: new BigInt64Array(0) },
    });
    const { tensors } = readSafetensors(path);
    assert.deepEqual([...(tensors.get("bf16")?.data ?? [])], [0x80, 0x3f, 0x00, 0xc0]);
    assert.deepEqual([...(tensors.get("f16")?.data ?? [])], [0x00, 0x3c, 0x00, 0xc0]);
    const scalar = tensors.get("scalar");
    assert.deepEqual(scalar?.shape, []);
    assert.equal(scalar?.data.readDoubleLE(0), Math.PI);
    assert.deepEqual(tensors.get("empty")?.shape, [0]);
    assert.equal(tensors.get("empty")?.data.length, 0);
    assert.deepEqual(tensors.get("empty2d")?.shape, [3, 0]);
    using f = SafetensorsFile.open(path);
    assert.equal(f.read("empty2d").length, 0);
    assert.equal(f.read("scalar").readDoubleLE(0), Math.PI);
  });

  test("metadata: absent, empty and transformers' {format: pt}", () => {
    const t = { x: { dtype: "U8" as const, shape: [1], data: Buffer.from([7]) } };
    assert.equal(parseSafetensors(serializeSafetensors(t)).metadata, undefined);
    assert.deepEqual(parseSafetensors(serializeSafetensors(t, {})).metadata, {});
    const path = tmp();
    writeSafetensors(path, t, PT_FORMAT_METADATA);
    assert.deepEqual(readSafetensors(path).metadata, { format: "pt" });
    using f = SafetensorsFile.open(path);
    assert.deepEqual(f.metadata, { format: "pt" });
    const multi = { b: "2", a: "1", ünï: 'ç\n"' };
    assert.deepEqual(parseSafetensors(serializeSafetensors(t, multi)).metadata, multi);
  });

  test("atomic write replaces the file and leaves no temp file behind", () => {
    const dir = join(root, `atomic-${counter++}`);
    mkdirSync(dir);
    const path = join(dir, "model.safetensors");
    writeFileSync(path, "old");
    writeSafetensors(path, [{ name: "w", dtype: "I32", shape: [1], data: new Int32Array([5]) }]);
    assert.deepEqual(readdirSync(dir), ["model.safetensors"]);
    assert.equal(readSafetensors(path).tensors.get("w")?.data.readInt32LE(0), 5);
  });
});

describe("byte-exact output", () => {
  test("hand-built header: metadata first, dtype rank descending then name, compact, space-padded", () => {
    const out = serializeSafetensors(
      [
        { name: "z", dtype: "BOOL", shape: [2, 1], data: Buffer.from([1, 0]) },
        { name: "m", dtype: "I8", shape: [3], data: new Int8Array([-1, 0, 1]) },
        { name: "b", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
        { name: "h", dtype: "BF16", shape: [], data: new Uint16Array([0x3f80]) },
        { name: "a", dtype: "F32", shape: [1], data: new Float32Array([3]) },
      ],
      { format: "pt" },
    );
    // Why this order: upstream `prepare` sorts by the Rust `enum Dtype` declaration order descending (F32 >
    // BF16 > I8 > BOOL), ties by name, so a,b (F32) come before h (BF16), m (I8), z (BOOL); `__metadata__` is
    // serialized first (`impl Serialize for Metadata`); serde_json::to_string writes no spaces; and the header
    // is padded with b' ' to a multiple of 8 (306 bytes of JSON + 6 spaces = 312).
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},' +
      '"h":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},' +
      '"m":{"dtype":"I8","shape":[3],"data_offsets":[14,17]},' +
      '"z":{"dtype":"BOOL","shape":[2,1],"data_offsets":[17,19]}}';
    assert.equal(json.length, 306);
    const expected = Buffer.concat([
      Buffer.from([56, 1, 0, 0, 0, 0, 0, 0]), // N = 312 = 0x138, little-endian u64
      Buffer.from(json + "      ", "ascii"),
      Buffer.from([0x00, 0x00, 0x40, 0x40]), // a = 3.0f
      Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]), // b = [1.0f, 2.0f]
      Buffer.from([0x80, 0x3f]), // h = bf16 1.0
      Buffer.from([0xff, 0x00, 0x01]), // m
      Buffer.from([1, 0]), // z
    ]);
    assert.deepEqual(out, expected);
  });

  test("matches the vectors of upstream's Rust unit tests", () => {
    // test_empty: no tensors, no metadata -> "{}" padded to 8.
    assert.deepEqual(serializeSafetensors([]), Buffer.from("\x08\0\0\0\0\0\0\0{}      ", "latin1"));
    // test_empty with metadata {"framework": "pt"}: 35 bytes of JSON padded to N = 40.
    assert.deepEqual(
      serializeSafetensors([], { framework: "pt" }),
      Buffer.from('(\0\0\0\0\0\0\0{"__metadata__":{"framework":"pt"}}     ', "latin1"),
    );
    // test_serialization_forced_alignement: "attn0" F32 [1,1,2,3] = 0..5, 65 bytes of JSON padded to 72.
    const out = serializeSafetensors({
      attn0: { dtype: "F32", shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
    });
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    assert.equal(out.readBigUInt64LE(0), 72n);
    assert.equal(out.subarray(8, 80).toString("latin1"), json + " ".repeat(7));
    assert.deepEqual(out.subarray(80), Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer));
  });

  test("names sort by UTF-8 bytes like Rust String, not by UTF-16 units", () => {
    // U+FF61 is 0xEF 0xBD 0xA1 in UTF-8 and U+1F600 is 0xF0 ...: bytes put U+FF61 first, while JS `<` on
    // UTF-16 units (0xFF61 vs 0xD83D) would put the emoji first.
    const a = "\uff61";
    const b = "\u{1f600}";
    const one = { dtype: "U8" as const, shape: [1], data: Buffer.from([0]) };
    const { tensors } = parseSafetensors(serializeSafetensors({ [b]: one, [a]: one }));
    assert.deepEqual([...tensors.keys()], [a, b]);
  });
});

describe("lazy reader", () => {
  const path = tmp();
  const w = new Float32Array([1.5, -2, 3.25, 4]);
  writeSafetensors(path, {
    w: { dtype: "F32", shape: [2, 2], data: w },
    ids: { dtype: "I64", shape: [2], data: new BigInt64Array([7n, -9n]) },
  });

  test("keys, info and read", () => {
    using f = SafetensorsFile.open(path);
    assert.deepEqual(f.keys(), ["ids", "w"]); // I64 ranks above F32 in upstream's order
    assert.deepEqual(f.info("w"), { dtype: "F32", shape: [2, 2], byteLength: 16, dataOffsets: [16, 32] });
    const got = f.read("w");
    assert.equal(got.byteOffset, 0);
    assert.deepEqual(new Float32Array(got.buffer, 0, 4), w);
    assert.deepEqual([...new BigInt64Array(f.read("ids").buffer, 0, 2)], [7n, -9n]);
  });

  test("unknown key and read after close name the file and key", () => {
    const f = SafetensorsFile.open(path);
    assert.throws(
      () => f.info("nope"),
      (e: Error) => e.message === `${path}: tensor "nope": no such tensor in this file`,
    );
    f.close();
    assert.throws(() => f.read("w"), /read after close/);
  });
});

describe("validation", () => {
  const ok = (offsets = "[0,4]", shape = "[1]", dtype = "F32") =>
    `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;
  const four = Buffer.alloc(4);

  test("file shorter than 8 bytes", () =>
    rejects(Buffer.from([1, 0, 0]), /3 bytes, shorter than the 8-byte/));
  test("header length above the 100 MB bound", () => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(BigInt(MAX_HEADER_SIZE + 1));
    rejects(b, /exceeds the 100000000-byte limit/);
  });
  test("header length beyond the file", () =>
    rejects(raw("{}", Buffer.alloc(0), 50), /runs past the end of the 10-byte/));
  test("header not UTF-8", () => {
    const b = raw("{}  ");
    b[10] = 0xff;
    rejects(b, /not valid UTF-8/);
  });
  test("header not starting with '{' (leading space, BOM)", () => {
    rejects(raw(" {}"), /must start with '\{'/);
    rejects(raw("\ufeff{}"), /must start with '\{'/);
  });
  test("header not JSON", () => rejects(raw('{"a":'), /not valid JSON/));
  test("trailing space padding is accepted", () => {
    assert.equal(parseSafetensors(raw(`{"a":${ok()}}   `, four)).tensors.get("a")?.dtype, "F32");
  });
  test("entry not an object", () => rejects(raw('{"a":[1,2]}'), /entry must be an object/, "a"));
  test("unknown dtype", () =>
    rejects(raw(`{"a":${ok("[0,4]", "[1]", "F31")}}`, four), /unknown dtype "F31"/, "a"));
  test("shape not an array of non-negative integers", () => {
    rejects(raw(`{"a":${ok("[0,4]", '"1"')}}`, four), /shape must be an array/, "a");
    rejects(raw(`{"a":${ok("[0,4]", "[-1]")}}`, four), /number -1 is not a plain non-negative integer/, "a");
    rejects(raw(`{"a":${ok("[0,4]", "[1.0]")}}`, four), /number 1.0 is not a plain/, "a");
    rejects(raw(`{"a":${ok("[0,4]", "[9007199254740993]")}}`, four), /shape must be an array/, "a");
  });
  test("data_offsets malformed or begin > end", () => {
    rejects(raw(`{"a":${ok("[0]")}}`, four), /data_offsets must be \[begin, end\]/, "a");
    rejects(raw(`{"a":${ok("[4,0]")}}`, four), /begin 4 > end 0/, "a");
  });
  test("byte length disagrees with shape x dtype size", () => {
    rejects(raw(`{"a":${ok("[0,4]", "[2]")}}`, four), /span 4 bytes but F32\[2\] needs 8/, "a");
    rejects(raw(`{"a":${ok("[0,4]", "[]", "F64")}}`, four), /span 4 bytes but F64\[\] needs 8/, "a");
  });
  test("offsets beyond the byte buffer", () =>
    rejects(raw(`{"a":${ok("[0,4]")}}`, Buffer.alloc(2)), /run past the 2-byte/, "a"));
  test("overlapping entries", () => {
    rejects(
      raw(`{"a":${ok("[0,4]")},"b":${ok("[2,6]")}}`, Buffer.alloc(6)),
      /overlaps the previous tensor/,
      "b",
    );
  });
  test("hole between entries and hole at the start", () => {
    rejects(
      raw(`{"a":${ok("[0,4]")},"b":${ok("[6,10]")}}`, Buffer.alloc(10)),
      /leaves a hole after byte 4/,
      "b",
    );
    rejects(raw(`{"a":${ok("[2,6]")}}`, Buffer.alloc(6)), /leaves a hole after byte 0/, "a");
  });
  test("unindexed bytes after the last tensor", () => {
    rejects(raw(`{"a":${ok()}}`, Buffer.alloc(5)), /tensors cover 4 bytes but the byte buffer has 5/, "a");
  });
  test("__metadata__ must map strings to strings", () => {
    rejects(raw('{"__metadata__":{"format":1}}'), /__metadata__\["format"\] must be a string/);
    rejects(raw('{"__metadata__":["pt"]}'), /__metadata__ must be an object/);
  });
  test("duplicate keys, which JSON.parse would silently collapse", () => {
    rejects(raw(`{"a":${ok()},"a":${ok()}}`, four), /duplicate JSON key "a"/, "a");
  });
  test("writer rejects inconsistent input, naming the tensor", () => {
    const path = tmp();
    const t = (name: string, dtype: Dtype, shape: number[], data: Uint8Array | Float32Array) => ({
      name,
      dtype,
      shape,
      data,
    });
    assert.throws(
      () => writeSafetensors(path, [t("x", "F32", [2], new Float32Array(1))]),
      /tensor "x": data is 4 bytes but F32\[2\] needs 8/,
    );
    assert.throws(
      () => writeSafetensors(path, [t("x", "F16", [2], new Float32Array(1))]),
      /tensor "x": Float32Array data cannot hold dtype F16/,
    );
    assert.throws(
      () => writeSafetensors(path, [t("x", "U8", [1], Buffer.alloc(1)), t("x", "U8", [1], Buffer.alloc(1))]),
      /tensor "x": duplicate/,
    );
    assert.throws(() => writeSafetensors(path, [t("__metadata__", "U8", [1], Buffer.alloc(1))]), /reserved/);
    assert.ok(!existsSync(path));
  });
});

describe("pickle refusal", () => {
  const hint = /never unpickles weights[\s\S]*save_file[\s\S]*safe_serialization=True/;

  test("pickle protocol magic 0x80 0x02", () => {
    // What legacy torch.save writes: PROTO 2, then the pickled magic number as a LONG1.
    const path = tmp("weights.safetensors");
    writeFileSync(
      path,
      Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]),
    );
    assert.throws(() => refusePickle(path), hint);
    assert.throws(
      () => SafetensorsFile.open(path),
      (e: Error) => e.message.startsWith(`${path}: refusing`) && hint.test(e.message),
    );
  });

  test("zip archive magic PK\\x03\\x04 (torch.save since 1.6)", () => {
    const path = tmp("weights.safetensors");
    writeFileSync(path, Buffer.from("PK\x03\x04\x14\x00\x00\x00\x00\x00archive/data.pkl", "latin1"));
    assert.throws(() => refusePickle(path), /zip archive magic[\s\S]*never unpickles/);
    assert.throws(() => readSafetensors(path), hint);
  });

  test("pickle extensions are refused by name, even before the file exists", () => {
    for (const name of ["pytorch_model.bin", "model.pt", "x.PTH", "last.ckpt"]) {
      assert.throws(() => refusePickle(join(root, name)), hint, name);
    }
  });

  test("a real safetensors file whose header length starts with 0x80 0x02 is not mistaken for pickle", () => {
    const path = tmp();
    const header = `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`.padEnd(640, " "); // N = 0x280
    writeFileSync(path, raw(header, Buffer.from([9])));
    assert.deepEqual([...readFileSync(path).subarray(0, 2)], [0x80, 0x02]);
    refusePickle(path);
    assert.equal(readSafetensors(path).tensors.get("a")?.data[0], 9);
  });
});

describe("sharded checkpoints", () => {
  function sharded(
    weightMap: Record<string, string>,
    shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
  ) {
    const dir = join(root, `sharded-${counter++}`);
    mkdirSync(dir);
    const [s1 = "", s2 = ""] = shardNames;
    writeSafetensors(
      join(dir, s1),
      {
        "enc.w": { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
        "enc.b": { dtype: "F32", shape: [1], data: new Float32Array([3]) },
      },
      PT_FORMAT_METADATA,
    );
    writeSafetensors(
      join(dir, s2),
      { "head.w": { dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) } },
      PT_FORMAT_METADATA,
    );
    const index = join(dir, "model.safetensors.index.json");
    writeFileSync(index, JSON.stringify({ metadata: { total_size: 14 }, weight_map: weightMap }));
    return { dir, index };
  }
  const good = {
    "enc.w": "model-00001-of-00002.safetensors",
    "enc.b": "model-00001-of-00002.safetensors",
    "head.w": "model-00002-of-00002.safetensors",
  };

  test("reads through the index, by index path and by folder", () => {
    const { dir, index } = sharded(good);
    using st = ShardedSafetensors.open(index);
    assert.deepEqual(st.keys(), ["enc.b", "enc.w", "head.w"]);
    assert.deepEqual(st.shardFiles(), [
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    assert.deepEqual(st.index.metadata, { total_size: 14 });
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(st.info("head.w"), { dtype: "BF16", shape: [1], byteLength: 2, dataOffsets: [0, 2] });
    assert.deepEqual(new Float32Array(st.read("enc.w").buffer, 0, 2), new Float32Array([1, 2]));
    using viaDir = openSafetensors(dir);
    assert.deepEqual([...viaDir.read("head.w")], [0x80, 0x3f]);
    assert.throws(
      () => st.read("nope"),
      (e: Error) => e.message === `${index}: tensor "nope": no such tensor in the weight_map`,
    );
  });

  test("missing shard names the index and the shard", () => {
    const { index } = sharded({ ...good, "head.w": "model-00003-of-00003.safetensors" });
    assert.throws(
      () => ShardedSafetensors.open(index),
      (e: Error) =>
        e.message.startsWith(`${index}: missing shard`) &&
        e.message.includes('"model-00003-of-00003.safetensors"'),
    );
  });

  test("key mapped to a shard that lacks it names both", () => {
    const { index } = sharded({
      ...good,
      "head.w": "model-00001-of-00002.safetensors",
      ghost: "model-00002-of-00002.safetensors",
    });
    assert.throws(
      () => ShardedSafetensors.open(index),
      (e: Error) =>
        e.message ===
        `${index}: tensor "head.w": weight_map puts it in shard "model-00001-of-00002.safetensors", which has no such tensor`,
    );
  });

  test("key in a shard but not in the weight_map", () => {
    const { "enc.b": _drop, ...rest } = good;
    const { index } = sharded(rest);
    assert.throws(
      () => ShardedSafetensors.open(index),
      /tensor "enc.b": found in shard "model-00001-of-00002.safetensors" but is not in the weight_map/,
    );
  });

  test("shard paths must stay inside the index's folder; pickle shards are refused", () => {
    const { index } = sharded({ ...good, "head.w": "../model-00002-of-00002.safetensors" });
    assert.throws(
      () => ShardedSafetensors.open(index),
      /tensor "head.w": shard "..\/model-00002-of-00002.safetensors" is not a path inside/,
    );
    const { index: index2 } = sharded({ ...good, "head.w": "pytorch_model-00002-of-00002.bin" });
    assert.throws(() => ShardedSafetensors.open(index2), /never unpickles/);
  });

  test("a folder with only pytorch_model.bin is refused with the hint", () => {
    const dir = join(root, `pickle-dir-${counter++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "pytorch_model.bin"), Buffer.from([0x80, 0x02]));
    assert.throws(() => openSafetensors(dir), /pytorch_model\.bin[\s\S]*never unpickles weights/);
  });
});
