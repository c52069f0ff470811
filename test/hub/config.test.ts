// Unit tests of the pure parts of src/hub: environment resolution (constants.py / _auth.py precedence), repo id
// validation, URL building (urllib.parse.quote), fnmatch filtering and the default sentence-transformers file set.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { hubFileUrl, pyQuote, repoInfoUrl } from "../../src/hub/config.ts";
import {
  filterRepoObjects,
  fnmatch,
  isRepoId,
  repoFolderName,
  resolveHubConfig,
  SENTENCE_TRANSFORMERS_ALLOW_PATTERNS,
  SENTENCE_TRANSFORMERS_IGNORE_PATTERNS,
} from "../../src/hub/index.ts";
import { effectivePatterns } from "../../src/hub/patterns.ts";

describe("resolveHubConfig", () => {
  test("defaults: huggingface.co, ~/.cache/huggingface/hub, online, 10 s timeouts", () => {
    const cfg = resolveHubConfig({}, { HF_TOKEN_PATH: "/nonexistent/token" });
    assert.equal(cfg.endpoint, "https://huggingface.co");
    assert.equal(cfg.cacheDir, join(homedir(), ".cache", "huggingface", "hub"));
    assert.equal(cfg.token, undefined);
    assert.equal(cfg.offline, false);
    assert.equal(cfg.etagTimeoutMs, 10_000);
    assert.equal(cfg.downloadTimeoutMs, 10_000);
  });

  test("cache dir precedence: option > HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > HF_HOME/hub > XDG_CACHE_HOME", () => {
    const env = { XDG_CACHE_HOME: "/xdg", HF_TOKEN_PATH: "/nonexistent" };
    assert.equal(resolveHubConfig({}, env).cacheDir, "/xdg/huggingface/hub");
    assert.equal(resolveHubConfig({}, { ...env, HF_HOME: "/hfhome" }).cacheDir, "/hfhome/hub");
    assert.equal(resolveHubConfig({}, { ...env, HF_HOME: "~/hf" }).cacheDir, join(homedir(), "hf", "hub"));
    assert.equal(
      resolveHubConfig({}, { ...env, HF_HOME: "/h", HUGGINGFACE_HUB_CACHE: "/legacy" }).cacheDir,
      "/legacy",
    );
    assert.equal(
      resolveHubConfig({}, { ...env, HUGGINGFACE_HUB_CACHE: "/legacy", HF_HUB_CACHE: "/c" }).cacheDir,
      "/c",
    );
    assert.equal(resolveHubConfig({ cacheDir: "/opt" }, { ...env, HF_HUB_CACHE: "/c" }).cacheDir, "/opt");
  });

  test("HF_ENDPOINT loses its trailing slash; the option wins", () => {
    assert.equal(
      resolveHubConfig({}, { HF_ENDPOINT: "https://hf-mirror.com/" }).endpoint,
      "https://hf-mirror.com",
    );
    assert.equal(
      resolveHubConfig({ endpoint: "http://x" }, { HF_ENDPOINT: "http://y" }).endpoint,
      "http://x",
    );
  });

  test("token precedence: option > HF_TOKEN > HUGGING_FACE_HUB_TOKEN > token file; false sends none", async () => {
    const home = await mkdtemp(join(tmpdir(), "ragtune-hfhome-"));
    try {
      await writeFile(join(home, "token"), "  hf_from_file\n");
      const env = { HF_HOME: home };
      assert.equal(resolveHubConfig({}, env).token, "hf_from_file");
      assert.match(resolveHubConfig({}, env).tokenSource ?? "", /token file/);
      assert.equal(resolveHubConfig({}, { ...env, HUGGING_FACE_HUB_TOKEN: "hf_legacy" }).token, "hf_legacy");
      const both = { ...env, HUGGING_FACE_HUB_TOKEN: "hf_legacy", HF_TOKEN: "hf_env" };
      assert.equal(resolveHubConfig({}, both).token, "hf_env");
      assert.equal(resolveHubConfig({}, both).tokenSource, "HF_TOKEN");
      assert.equal(resolveHubConfig({ token: "hf_opt" }, both).token, "hf_opt");
      assert.equal(resolveHubConfig({ token: false }, both).token, undefined);
      // get_token_to_send: HF_HUB_DISABLE_IMPLICIT_TOKEN stops the implicit token, not an explicit one.
      assert.equal(resolveHubConfig({}, { ...both, HF_HUB_DISABLE_IMPLICIT_TOKEN: "1" }).token, undefined);
      assert.equal(
        resolveHubConfig({ token: "t" }, { ...both, HF_HUB_DISABLE_IMPLICIT_TOKEN: "1" }).token,
        "t",
      );
      // An empty HF_TOKEN falls through, as Python's `or` does.
      assert.equal(resolveHubConfig({}, { ...env, HF_TOKEN: "" }).token, "hf_from_file");
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test("offline: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE (1/ON/YES/TRUE), or localFilesOnly", () => {
    for (const v of ["1", "true", "ON", "yes"]) {
      const cfg = resolveHubConfig({}, { HF_HUB_OFFLINE: v });
      assert.equal(cfg.offline, true, v);
      assert.equal(cfg.offlineReason, `HF_HUB_OFFLINE=${v}`);
    }
    assert.equal(resolveHubConfig({}, { HF_HUB_OFFLINE: "0" }).offline, false);
    assert.equal(resolveHubConfig({}, { TRANSFORMERS_OFFLINE: "1" }).offlineReason, "TRANSFORMERS_OFFLINE=1");
    // constants.py: `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE` — a set HF_HUB_OFFLINE=0 shadows the other one.
    assert.equal(resolveHubConfig({}, { HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" }).offline, false);
    assert.equal(resolveHubConfig({ localFilesOnly: true }, {}).offlineReason, "localFilesOnly: true");
  });

  test("timeouts from HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT (seconds)", () => {
    const cfg = resolveHubConfig({}, { HF_HUB_ETAG_TIMEOUT: "3", HF_HUB_DOWNLOAD_TIMEOUT: "0.5" });
    assert.equal(cfg.etagTimeoutMs, 3000);
    assert.equal(cfg.downloadTimeoutMs, 500);
  });
});

describe("names and URLs", () => {
  test("isRepoId follows validate_repo_id", () => {
    for (const ok of [
      "bert-base-uncased",
      "org/name",
      "sentence-transformers/all-MiniLM-L6-v2",
      "a/b.c_d",
      "123",
    ]) {
      assert.ok(isRepoId(ok), ok);
    }
    const bad = [
      "a/b/c",
      ".hidden",
      "name-",
      "-name",
      "org/na--me",
      "org/a..b",
      "org/x.git",
      "",
      "a b",
      "./x",
      "x/",
    ];
    for (const b of bad) assert.ok(!isRepoId(b), b);
    assert.ok(!isRepoId("x".repeat(97)));
  });

  test("repoFolderName and URLs match huggingface_hub", () => {
    assert.equal(repoFolderName("org/name"), "models--org--name");
    assert.equal(repoFolderName("gpt2"), "models--gpt2");
    assert.equal(
      hubFileUrl("https://huggingface.co", "org/m", "refs/pr/1", "1_Pooling/config.json"),
      "https://huggingface.co/org/m/resolve/refs%2Fpr%2F1/1_Pooling/config.json",
    );
    assert.equal(repoInfoUrl("https://h", "org/m", "v1.0"), "https://h/api/models/org/m/revision/v1.0");
    // urllib.parse.quote encodes what encodeURIComponent leaves alone, and UTF-8 bytes.
    assert.equal(pyQuote("a b(1)!*'~.json"), "a%20b%281%29%21%2A%27~.json");
    assert.equal(pyQuote("é/x"), "%C3%A9/x");
    assert.equal(pyQuote("a/b", ""), "a%2Fb");
  });
});

describe("fnmatch and file selection", () => {
  test("fnmatch semantics: * crosses '/', ?, [seq], [!seq], literal specials", () => {
    const cases: [string, string, boolean][] = [
      ["1_Pooling/config.json", "*/config.json", true],
      ["a/b/config.json", "*/config.json", true],
      ["config.json", "*/config.json", false],
      ["onnx/x.json", "*.json", true],
      ["model-00001-of-00002.safetensors", "model-*.safetensors", true],
      ["model.safetensors", "model-*.safetensors", false],
      ["modelXsafetensors", "model.safetensors", false],
      ["v1.txt", "v?.txt", true],
      ["b.txt", "[abc].txt", true],
      ["d.txt", "[!abc].txt", true],
      ["a.txt", "[!abc].txt", false],
      ["].txt", "[]].txt", true],
      ["[x", "[x", true],
      ["^", "[^]", true],
      ["a+b(c)", "a+b(c)", true],
      ["Config.json", "config.json", false],
    ];
    for (const [name, pat, want] of cases) assert.equal(fnmatch(name, pat), want, `${name} ~ ${pat}`);
  });

  test("filterRepoObjects: allow, then ignore; 'dir/' means 'dir/*'", () => {
    const files = ["a.json", "onnx/a.json", "b.bin", "onnx/m.onnx"];
    assert.deepEqual(filterRepoObjects(files, ["*.json"]), ["a.json", "onnx/a.json"]);
    assert.deepEqual(filterRepoObjects(files, "*.json", "onnx/"), ["a.json"]);
    assert.deepEqual(filterRepoObjects(files, undefined, ["*.bin"]), [
      "a.json",
      "onnx/a.json",
      "onnx/m.onnx",
    ]);
    assert.deepEqual(filterRepoObjects(files), files);
  });

  test("the default patterns pick a sentence-transformers model out of a real repo listing", () => {
    // The file list of sentence-transformers/all-MiniLM-L6-v2, plus a Dense module, shards and a checkpoint.
    const repo = [
      ".gitattributes",
      "1_Pooling/config.json",
      "2_Dense/config.json",
      "2_Dense/model.safetensors",
      "2_Dense/pytorch_model.bin",
      "README.md",
      "checkpoint-500/config.json",
      "checkpoint-500/model.safetensors",
      "config.json",
      "config_sentence_transformers.json",
      "data_config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "modules.json",
      "onnx/config.json",
      "onnx/model.onnx",
      "onnx/model_qint8_avx512.onnx",
      "openvino/openvino_model.bin",
      "openvino/openvino_model.xml",
      "pytorch_model.bin",
      "rust_model.ot",
      "sentence_bert_config.json",
      "special_tokens_map.json",
      "tf_model.h5",
      "flax_model.msgpack",
      "tokenizer.json",
      "tokenizer_config.json",
      "train_script.py",
      "vocab.txt",
    ];
    const { allow, ignore } = effectivePatterns(undefined, undefined);
    assert.deepEqual(filterRepoObjects(repo, allow, ignore), [
      "1_Pooling/config.json",
      "2_Dense/config.json",
      "2_Dense/model.safetensors",
      "README.md",
      "config.json",
      "config_sentence_transformers.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "modules.json",
      "sentence_bert_config.json",
      "special_tokens_map.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "vocab.txt",
    ]);
  });

  test("effectivePatterns: the caller's ignore list adds to the default vetoes; an allow list replaces all", () => {
    const d = effectivePatterns(undefined, ["README.md"]);
    assert.deepEqual(d.allow, SENTENCE_TRANSFORMERS_ALLOW_PATTERNS);
    assert.deepEqual(d.ignore, [...SENTENCE_TRANSFORMERS_IGNORE_PATTERNS, "README.md"]);
    assert.deepEqual(effectivePatterns("*", undefined), { allow: ["*"], ignore: [] });
  });
});
