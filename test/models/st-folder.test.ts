// Tests for reading and writing the sentence-transformers folder description. Fixtures (test/fixtures/st-folders,
// provenance in its SOURCE.md): the same model saved by different ST versions must read to the same spec, and
// what writeStFolder writes must match, key for key (and byte for byte where the values agree), what ST wrote.
import assert from "node:assert/strict";
import {
  cpSync,
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
  moduleKindOf,
  outputDimension,
  parseDenseConfig,
  parsePoolingConfig,
  readStFolder,
  resolveMaxSeqLength,
  ST_MODULE_TYPES,
  StFolderError,
  type StFolder,
  type StFolderSpec,
} from "../../src/models/st-folder.ts";
import { pythonJson, ST_VERSION_FLOOR, writeStFolder } from "../../src/models/st-folder-write.ts";
import { buildInfo } from "../../src/engine/index.ts";

const FIXTURES = new URL("../fixtures/st-folders/", import.meta.url).pathname;
const fixture = (name: string) => join(FIXTURES, name);

const root = mkdtempSync(join(tmpdir(), "ragtune-st-folder-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const tmp = (name = "model") => join(root, `${counter++}-${name}`);

/** The spec alone: what the model is, without where it came from. */
function specOf(f: StFolder): StFolderSpec {
  const { source: _source, warnings: _warnings, ...spec } = f;
  return spec;
}

/** A copy of a fixture to corrupt. */
function copyFixture(name: string): string {
  const dir = tmp(name);
  cpSync(fixture(name), dir, { recursive: true });
  return dir;
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

/** assert.throws for an StFolderError whose message names `file` (and `key`) and matches `detail`. */
function throwsNaming(fn: () => unknown, file: string, key: string | undefined, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StFolderError, `expected StFolderError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.equal(e.key, key);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    if (key !== undefined) assert.ok(e.message.includes(key), `message names the key: ${e.message}`);
    assert.match(e.message, detail);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------

const BGE_BASE: StFolderSpec = {
  modules: [
    { kind: "transformer", path: "" },
    {
      kind: "pooling",
      path: "1_Pooling",
      config: { embeddingDimension: 768, modes: ["cls"], includePrompt: true },
    },
    { kind: "normalize", path: "2_Normalize" },
  ],
  maxSeqLength: 512,
  doLowerCase: true,
  prompts: {},
  defaultPromptName: null,
  similarityFnName: "cosine",
  truncateDim: null,
};

const MINILM_L6: StFolderSpec = {
  modules: [
    { kind: "transformer", path: "" },
    {
      kind: "pooling",
      path: "1_Pooling",
      config: { embeddingDimension: 384, modes: ["mean"], includePrompt: true },
    },
    { kind: "normalize", path: "2_Normalize" },
  ],
  maxSeqLength: 256,
  doLowerCase: false,
  prompts: {},
  defaultPromptName: null,
  similarityFnName: "cosine",
  truncateDim: null,
};

describe("readStFolder on fixtures", () => {
  test("bge-base: the 2.x hub files and a 5.1 save read to the same spec", () => {
    const hub = readStFolder(fixture("st2-bge-base-en-v1.5"));
    const st5 = readStFolder(fixture("st5-bge-like"));
    assert.deepEqual(specOf(hub), BGE_BASE);
    assert.deepEqual(specOf(st5), BGE_BASE);
    assert.deepEqual(hub.warnings, []);
    assert.deepEqual(st5.warnings, []);
    assert.equal(st5.source.layout, "sentence-transformers");
    assert.deepEqual(st5.source.moduleTypes, [
      "sentence_transformers.models.Transformer",
      "sentence_transformers.models.Pooling",
      "sentence_transformers.models.Normalize",
    ]);
    assert.deepEqual(hub.source.versions, {
      sentence_transformers: "2.2.2",
      transformers: "4.28.1",
      pytorch: "1.13.0+cu117",
    });
    assert.equal(st5.source.versions.sentence_transformers, "5.1.0");
    assert.equal(st5.source.maxSeqLengthFrom, "sentence_bert_config.json");
    // The 2_Normalize folder is absent in both (empty folders do not survive git / the hub): still a Normalize.
    assert.equal(existsSync(join(fixture("st5-bge-like"), "2_Normalize")), false);
  });

  test("all-MiniLM-L6-v2: the 2.x hub files and a 6.x save read to the same spec", () => {
    const hub = readStFolder(fixture("st2-all-minilm-l6-v2"));
    const st6 = readStFolder(fixture("st6-minilm-like"));
    assert.deepEqual(specOf(hub), MINILM_L6);
    assert.deepEqual(specOf(st6), MINILM_L6);
    assert.deepEqual(st6.warnings, []);
    // 2.x: max_seq_length 256 in sentence_bert_config.json (the tokenizer says 512). 6.x: no max_seq_length;
    // tokenizer_config.json model_max_length 256, under config.json max_position_embeddings 512.
    assert.equal(hub.source.maxSeqLengthFrom, "sentence_bert_config.json");
    assert.equal(st6.source.maxSeqLengthFrom, "tokenizer_config.json");
    assert.deepEqual(st6.source.moduleTypes, [
      "sentence_transformers.base.modules.transformer.Transformer",
      "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
      "sentence_transformers.base.modules.normalize.Normalize",
    ]);
    assert.equal(st6.source.versions.sentence_transformers, "6.0.1");
  });

  test("a verbatim sentence-transformers 6.0.1 save (tiny BERT + Dense + Normalize)", () => {
    const f = readStFolder(fixture("st6-tiny-bert-dense"));
    assert.deepEqual(specOf(f), {
      modules: [
        { kind: "transformer", path: "" },
        {
          kind: "pooling",
          path: "1_Pooling",
          config: { embeddingDimension: 8, modes: ["mean"], includePrompt: true },
        },
        {
          kind: "dense",
          path: "2_Dense",
          config: { inFeatures: 8, outFeatures: 4, bias: true, activation: "tanh", useResidual: false },
        },
        { kind: "normalize", path: "3_Normalize" },
      ],
      maxSeqLength: 128, // Transformer(max_seq_length=128) -> tokenizer_config.json model_max_length
      doLowerCase: false,
      prompts: {},
      defaultPromptName: null,
      similarityFnName: "cosine",
      truncateDim: null,
    });
    assert.equal(f.source.maxSeqLengthFrom, "tokenizer_config.json");
    assert.deepEqual(f.source.versions, {
      pytorch: "2.11.0+cu130",
      sentence_transformers: "6.0.1",
      transformers: "5.17.0",
    });
    assert.deepEqual(f.warnings, []);
  });

  test("6.1 default prompts are null: read as no prompt; a default naming one is none", () => {
    const dir = copyFixture("st6-minilm-like");
    writeJson(join(dir, "config_sentence_transformers.json"), {
      prompts: { document: null, query: null, web: "web: " },
      default_prompt_name: "query",
    });
    const f = readStFolder(dir);
    assert.deepEqual(f.prompts, { web: "web: " });
    assert.equal(f.defaultPromptName, null);
  });

  test("a plain transformers folder gets the transformer + mean pooling, with a warning", () => {
    const dir = fixture("plain-transformers");
    const f = readStFolder(dir);
    assert.deepEqual(specOf(f), {
      modules: [
        { kind: "transformer", path: "" },
        {
          kind: "pooling",
          path: "1_Pooling",
          config: { embeddingDimension: 384, modes: ["mean"], includePrompt: true },
        },
      ],
      maxSeqLength: 512, // min(model_max_length 512, max_position_embeddings 512)
      doLowerCase: false,
      prompts: {},
      defaultPromptName: null,
      similarityFnName: "cosine",
      truncateDim: null,
    });
    assert.equal(f.source.layout, "transformers");
    assert.equal(f.warnings.length, 1);
    assert.match(f.warnings[0]!, /no modules\.json.*mean pooling/);
    assert.ok(f.warnings[0]!.includes(dir));
  });

  test("a plain causal-LM folder gets last-token pooling (ST 6 _load_default_modules)", () => {
    const dir = tmp("causal");
    writeJson(join(dir, "config.json"), { architectures: ["Qwen3ForCausalLM"], hidden_size: 8 });
    assert.deepEqual(readStFolder(dir).modules[1], {
      kind: "pooling",
      path: "1_Pooling",
      config: { embeddingDimension: 8, modes: ["lasttoken"], includePrompt: true },
    });
    writeJson(join(dir, "config.json"), {
      architectures: ["Qwen3ForCausalLM"],
      hidden_size: 8,
      is_causal: false,
    });
    const pooling = readStFolder(dir).modules[1];
    assert.ok(pooling?.kind === "pooling");
    assert.deepEqual(pooling.config.modes, ["mean"]);
  });

  test("embeddinggemma-300m (verbatim 5.1.2 save): two Dense modules, prompts, 4_Normalize", () => {
    const f = readStFolder(fixture("st5-embeddinggemma-300m"));
    assert.deepEqual(f.modules.slice(2), [
      {
        kind: "dense",
        path: "2_Dense",
        config: {
          inFeatures: 768,
          outFeatures: 3072,
          bias: false,
          activation: "identity",
          useResidual: false,
        },
      },
      {
        kind: "dense",
        path: "3_Dense",
        config: {
          inFeatures: 3072,
          outFeatures: 768,
          bias: false,
          activation: "identity",
          useResidual: false,
        },
      },
      { kind: "normalize", path: "4_Normalize" },
    ]);
    assert.equal(f.maxSeqLength, 2048);
    assert.equal(f.prompts.query, "task: search result | query: ");
    assert.equal(f.prompts.document, "title: none | text: ");
    assert.equal(Object.keys(f.prompts).length, 14);
    assert.equal(outputDimension(f), 768);
    assert.deepEqual(f.warnings, []);
  });
});

describe("module types", () => {
  test("3.x-5.x, 5.4+ and 6.x names map to the same kinds", () => {
    const cases: [string, string | undefined][] = [
      ["sentence_transformers.models.Transformer", "transformer"],
      ["sentence_transformers.models.Pooling", "pooling"],
      ["sentence_transformers.models.Normalize", "normalize"],
      ["sentence_transformers.models.Dense", "dense"],
      ["sentence_transformers.base.modules.transformer.Transformer", "transformer"],
      ["sentence_transformers.base.modules.Transformer", "transformer"],
      ["sentence_transformers.sentence_transformer.modules.pooling.Pooling", "pooling"],
      ["sentence_transformers.base.modules.normalize.Normalize", "normalize"],
      ["sentence_transformers.sentence_transformer.modules.normalize.Normalize", "normalize"],
      ["sentence_transformers.base.modules.dense.Dense", "dense"],
      ["sentence_transformers.models.Router", undefined],
      ["sentence_transformers.models.BERT", undefined],
      ["sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling", undefined],
      ["modeling_custom.Dense", undefined],
      ["Pooling", undefined],
    ];
    for (const [type, kind] of cases) assert.equal(moduleKindOf(type), kind, type);
  });
});

describe("max sequence length", () => {
  test("resolveMaxSeqLength: sentence_bert_config wins, uncapped (ST passes it as model_max_length)", () => {
    assert.deepEqual(
      resolveMaxSeqLength({
        sentenceBertMaxSeqLength: 1024,
        tokenizerModelMaxLength: 512,
        maxPositionEmbeddings: 512,
      }),
      { value: 1024, from: "sentence_bert_config.json" },
    );
  });

  test("resolveMaxSeqLength: 6.x takes model_max_length capped by max_position_embeddings", () => {
    assert.deepEqual(resolveMaxSeqLength({ tokenizerModelMaxLength: 8192, maxPositionEmbeddings: 512 }), {
      value: 512,
      from: "config.json",
    });
    assert.deepEqual(resolveMaxSeqLength({ tokenizerModelMaxLength: 256, maxPositionEmbeddings: 512 }), {
      value: 256,
      from: "tokenizer_config.json",
    });
    // XLM-R: 512 tokens, 514 positions (2 reserved for the padding offset).
    assert.deepEqual(resolveMaxSeqLength({ tokenizerModelMaxLength: 512, maxPositionEmbeddings: 514 }), {
      value: 512,
      from: "tokenizer_config.json",
    });
    assert.deepEqual(resolveMaxSeqLength({ sentenceBertMaxSeqLength: null, tokenizerModelMaxLength: 512 }), {
      value: 512,
      from: "tokenizer_config.json",
    });
  });

  test("resolveMaxSeqLength: the 1e30 sentinel and -1 positions count as unset; tokenizer.json is the last resort", () => {
    // JSON.parse("1000000000000000019884624838656") is int(1e30) as transformers writes it.
    const sentinel = JSON.parse("1000000000000000019884624838656") as number;
    assert.deepEqual(resolveMaxSeqLength({ tokenizerModelMaxLength: sentinel, maxPositionEmbeddings: 514 }), {
      value: 514,
      from: "config.json",
    });
    assert.deepEqual(resolveMaxSeqLength({ tokenizerModelMaxLength: 1e30, maxPositionEmbeddings: -1 }), {
      value: null,
      from: null,
    });
    assert.deepEqual(
      resolveMaxSeqLength({
        tokenizerModelMaxLength: 1e30,
        maxPositionEmbeddings: -1,
        tokenizerJsonMaxLength: 128,
      }),
      { value: 128, from: "tokenizer.json" },
    );
    // The truncation block never overrides a real limit (transformers only uses it as the call's max_length).
    assert.deepEqual(resolveMaxSeqLength({ maxPositionEmbeddings: 512, tokenizerJsonMaxLength: 128 }), {
      value: 512,
      from: "config.json",
    });
  });

  test("6.x folder: sentinel model_max_length, capped by config.json", () => {
    const dir = copyFixture("st6-minilm-like");
    writeJson(join(dir, "tokenizer_config.json"), '{"model_max_length": 1000000000000000019884624838656}');
    const f = readStFolder(dir);
    assert.equal(f.maxSeqLength, 512);
    assert.equal(f.source.maxSeqLengthFrom, "config.json");
  });

  test("6.x folder: a tokenizer model_max_length above max_position_embeddings is capped", () => {
    const dir = copyFixture("st6-minilm-like");
    writeJson(join(dir, "tokenizer_config.json"), { model_max_length: 8192 });
    assert.equal(readStFolder(dir).maxSeqLength, 512);
  });

  test("3.x-5.x folder: sentence_bert_config's max_seq_length, even above the tokenizer's", () => {
    const dir = copyFixture("st5-bge-like");
    writeJson(join(dir, "sentence_bert_config.json"), { max_seq_length: 128, do_lower_case: true });
    assert.equal(readStFolder(dir).maxSeqLength, 128);
    // null falls back to the tokenizer / config rule (5.x Transformer.__init__).
    writeJson(join(dir, "sentence_bert_config.json"), { max_seq_length: null, do_lower_case: true });
    const f = readStFolder(dir);
    assert.equal(f.maxSeqLength, 512);
    assert.equal(f.source.maxSeqLengthFrom, "tokenizer_config.json");
  });

  test("only a tokenizer.json truncation block: used, with a warning naming tokenizer.json", () => {
    const dir = tmp("trunc-only");
    writeJson(join(dir, "config.json"), { hidden_size: 8, max_position_embeddings: -1 });
    writeJson(join(dir, "tokenizer.json"), { version: "1.0", truncation: { max_length: 128, stride: 0 } });
    const f = readStFolder(dir);
    assert.equal(f.maxSeqLength, 128);
    assert.equal(f.source.maxSeqLengthFrom, "tokenizer.json");
    assert.ok(f.warnings.some((w) => w.includes(join(dir, "tokenizer.json"))));
  });

  test("nothing sets a limit: null", () => {
    const dir = tmp("no-limit");
    writeJson(join(dir, "config.json"), { hidden_size: 8 });
    const f = readStFolder(dir);
    assert.equal(f.maxSeqLength, null);
    assert.equal(f.source.maxSeqLengthFrom, null);
  });
});

describe("pooling and dense configs", () => {
  test("6.x pooling_mode: a string or a list (kept in order); include_prompt", () => {
    assert.deepEqual(
      parsePoolingConfig(
        { embedding_dimension: 4, pooling_mode: ["mean", "cls"], include_prompt: false },
        "p.json",
      ),
      { embeddingDimension: 4, modes: ["mean", "cls"], includePrompt: false },
    );
    assert.deepEqual(parsePoolingConfig({ embedding_dimension: 4, pooling_mode: "lasttoken" }, "p.json"), {
      embeddingDimension: 4,
      modes: ["lasttoken"],
      includePrompt: true,
    });
  });

  test("3.x-5.x flags concatenate in ST's fixed order; pooling_mode wins over flags", () => {
    const flags = {
      word_embedding_dimension: 4,
      pooling_mode_cls_token: true,
      pooling_mode_mean_tokens: true,
      pooling_mode_max_tokens: true,
      pooling_mode_mean_sqrt_len_tokens: false,
      pooling_mode_weightedmean_tokens: false,
      pooling_mode_lasttoken: true,
    };
    assert.deepEqual(parsePoolingConfig(flags, "p.json").modes, ["cls", "max", "mean", "lasttoken"]);
    assert.deepEqual(parsePoolingConfig({ ...flags, pooling_mode: "max" }, "p.json").modes, ["max"]);
    // embedding_dimension wins over word_embedding_dimension (config_key_renames only fills an absent key).
    assert.equal(parsePoolingConfig({ ...flags, embedding_dimension: 8 }, "p.json").embeddingDimension, 8);
  });

  test("all flags false: mean with a warning (ST 6); no mode at all: mean silently (the default)", () => {
    const warnings: string[] = [];
    const c = parsePoolingConfig(
      { word_embedding_dimension: 4, pooling_mode_cls_token: false },
      "p.json",
      warnings,
    );
    assert.deepEqual(c.modes, ["mean"]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^p\.json: every pooling_mode_\* flag is false/);
    const quiet: string[] = [];
    assert.deepEqual(parsePoolingConfig({ embedding_dimension: 4 }, "p.json", quiet).modes, ["mean"]);
    assert.deepEqual(quiet, []);
  });

  test("Dense: ST's activation paths, defaults, and unsupported values named", () => {
    assert.deepEqual(
      parseDenseConfig(
        {
          in_features: 4,
          out_features: 2,
          bias: true,
          activation_function: "torch.nn.modules.activation.Tanh",
        },
        "d.json",
      ),
      { inFeatures: 4, outFeatures: 2, bias: true, activation: "tanh", useResidual: false },
    );
    assert.equal(
      parseDenseConfig({ in_features: 4, out_features: 2, activation_function: "torch.nn.GELU" }, "d.json")
        .activation,
      "gelu",
    );
    // No activation_function: the constructor's default, Tanh.
    assert.equal(parseDenseConfig({ in_features: 4, out_features: 2 }, "d.json").activation, "tanh");
    throwsNaming(
      () =>
        parseDenseConfig({ in_features: 4, out_features: 2, activation_function: "my_pkg.Swish" }, "d.json"),
      "d.json",
      "activation_function",
      /unsupported activation/,
    );
    throwsNaming(() => parseDenseConfig({ out_features: 2 }, "d.json"), "d.json", "in_features", /missing/);
    throwsNaming(
      () =>
        parseDenseConfig(
          { in_features: 4, out_features: 2, module_input_name: "token_embeddings" },
          "d.json",
        ),
      "d.json",
      "module_input_name",
      /only "sentence_embedding"/,
    );
  });
});

describe("readStFolder errors name the file and key", () => {
  test("malformed JSON in each file", () => {
    for (const rel of [
      "modules.json",
      "1_Pooling/config.json",
      "config_sentence_transformers.json",
      "sentence_bert_config.json",
    ]) {
      const dir = copyFixture("st5-bge-like");
      writeFileSync(join(dir, rel), '{"oops": ');
      throwsNaming(() => readStFolder(dir), join(dir, rel), undefined, /invalid JSON/);
    }
  });

  test("an unknown module type names modules.json and the type", () => {
    const dir = copyFixture("st5-bge-like");
    const modules = JSON.parse(readFileSync(join(dir, "modules.json"), "utf8")) as { type: string }[];
    modules[2]!.type = "sentence_transformers.models.WeightedLayerPooling";
    writeJson(join(dir, "modules.json"), modules);
    throwsNaming(
      () => readStFolder(dir),
      join(dir, "modules.json"),
      "[2].type",
      /unknown module type "sentence_transformers\.models\.WeightedLayerPooling"/,
    );
  });

  test("a missing pooling config", () => {
    const dir = copyFixture("st5-bge-like");
    rmSync(join(dir, "1_Pooling"), { recursive: true });
    throwsNaming(
      () => readStFolder(dir),
      join(dir, "1_Pooling", "config.json"),
      undefined,
      /missing pooling config/,
    );
  });

  test("a bad pooling mode, a non-boolean flag, a missing dimension", () => {
    const dir = copyFixture("st6-minilm-like");
    const file = join(dir, "1_Pooling", "config.json");
    writeJson(file, { embedding_dimension: 384, pooling_mode: "avg" });
    throwsNaming(() => readStFolder(dir), file, "pooling_mode", /invalid pooling mode "avg"/);
    writeJson(file, { embedding_dimension: 384, pooling_mode: [] });
    throwsNaming(() => readStFolder(dir), file, "pooling_mode", /empty/);
    writeJson(file, { word_embedding_dimension: 384, pooling_mode_mean_tokens: "yes" });
    throwsNaming(() => readStFolder(dir), file, "pooling_mode_mean_tokens", /true or false/);
    writeJson(file, { pooling_mode: "mean" });
    throwsNaming(() => readStFolder(dir), file, "embedding_dimension", /missing/);
  });

  test("bad values in sentence_bert_config.json and config_sentence_transformers.json", () => {
    let dir = copyFixture("st5-bge-like");
    writeJson(join(dir, "sentence_bert_config.json"), { max_seq_length: "512" });
    throwsNaming(
      () => readStFolder(dir),
      join(dir, "sentence_bert_config.json"),
      "max_seq_length",
      /integer/,
    );

    dir = copyFixture("st6-minilm-like");
    writeJson(join(dir, "sentence_bert_config.json"), { transformer_task: "sequence-classification" });
    throwsNaming(
      () => readStFolder(dir),
      join(dir, "sentence_bert_config.json"),
      "transformer_task",
      /feature-extraction/,
    );

    dir = copyFixture("st5-bge-like");
    const cst = join(dir, "config_sentence_transformers.json");
    writeJson(cst, { prompts: { query: "q: " }, default_prompt_name: "passage" });
    throwsNaming(() => readStFolder(dir), cst, "default_prompt_name", /not one of the prompts/);
    writeJson(cst, { prompts: { query: 3 } });
    throwsNaming(() => readStFolder(dir), cst, "prompts.query", /string or null/);
    writeJson(cst, { similarity_fn_name: 2 });
    throwsNaming(() => readStFolder(dir), cst, "similarity_fn_name", /string/);
  });

  test("an unknown similarity_fn_name falls back to cosine with a warning (ST 6)", () => {
    const dir = copyFixture("st5-bge-like");
    const cst = join(dir, "config_sentence_transformers.json");
    writeJson(cst, { similarity_fn_name: "maxsim" });
    const f = readStFolder(dir);
    assert.equal(f.similarityFnName, "cosine");
    assert.ok(f.warnings.some((w) => w.includes(cst) && w.includes("maxsim")));
    writeJson(cst, { similarity_fn_name: null }); // 3.x saves null
    assert.equal(readStFolder(dir).similarityFnName, "cosine");
    writeJson(cst, { similarity_fn_name: "dot" });
    assert.equal(readStFolder(dir).similarityFnName, "dot");
  });

  test("module order, a path leaving the folder, a Dense width mismatch", () => {
    let dir = copyFixture("st5-bge-like");
    const mj = join(dir, "modules.json");
    const modules = JSON.parse(readFileSync(mj, "utf8")) as { path: string; type: string }[];
    writeJson(mj, [modules[1], modules[0], modules[2]]);
    throwsNaming(() => readStFolder(dir), mj, "[0].type", /Pooling at position 0/);
    writeJson(mj, [modules[0], { ...modules[1], path: "../elsewhere" }, modules[2]]);
    throwsNaming(() => readStFolder(dir), mj, "[1].path", /leaves the model folder/);
    writeJson(mj, [modules[0]]);
    throwsNaming(() => readStFolder(dir), mj, undefined, /no Pooling module/);

    dir = copyFixture("st5-embeddinggemma-300m");
    const dense = join(dir, "3_Dense", "config.json");
    writeJson(dense, {
      in_features: 1024,
      out_features: 768,
      bias: false,
      activation_function: "torch.nn.modules.linear.Identity",
    });
    throwsNaming(() => readStFolder(dir), dense, "in_features", /outputs 3072/);
  });

  test("a folder with neither modules.json nor config.json", () => {
    const dir = tmp("empty");
    mkdirSync(dir);
    throwsNaming(() => readStFolder(dir), dir, undefined, /neither modules\.json nor config\.json/);
  });
});

// ---------------------------------------------------------------------------------------------------------

const ALL_FIXTURES = [
  "st2-bge-base-en-v1.5",
  "st5-bge-like",
  "st2-all-minilm-l6-v2",
  "st6-minilm-like",
  "st6-tiny-bert-dense",
  "plain-transformers",
  "st5-embeddinggemma-300m",
];

/** Every file under dir, relative, sorted. */
function listFiles(dir: string, rel = ""): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, join(rel, e.name)) : [join(rel, e.name)]))
    .sort();
}

const readText = (dir: string, rel: string) => readFileSync(join(dir, rel), "utf8");
const readObj = (dir: string, rel: string) => JSON.parse(readText(dir, rel)) as Record<string, unknown>;

describe("writeStFolder", () => {
  test("write -> read round trip for every fixture", () => {
    for (const name of ALL_FIXTURES) {
      const spec = specOf(readStFolder(fixture(name)));
      const dir = tmp(name);
      writeStFolder(dir, spec, { ragtune: { libtorch: "1.13.0" } });
      const back = readStFolder(dir);
      assert.deepEqual(specOf(back), spec, name);
      assert.deepEqual(back.warnings, [], name);
      assert.deepEqual(
        back.source.moduleTypes,
        spec.modules.map((m) => ST_MODULE_TYPES[m.kind]),
        name,
      );
    }
  });

  test("round trip of prompts, a default prompt, dot similarity, truncate_dim, include_prompt=false", () => {
    const spec: StFolderSpec = {
      ...BGE_BASE,
      modules: [
        { kind: "transformer", path: "" },
        {
          kind: "pooling",
          path: "1_Pooling",
          config: { embeddingDimension: 8, modes: ["cls", "max", "mean"], includePrompt: false },
        },
        {
          kind: "dense",
          path: "2_Dense",
          config: { inFeatures: 24, outFeatures: 4, bias: true, activation: "tanh", useResidual: false },
        },
        { kind: "normalize", path: "3_Normalize" },
      ],
      maxSeqLength: null,
      prompts: {
        query: "Represent this sentence for searching relevant passages: ",
        中文: "为这个句子生成表示以用于检索相关文章：",
      },
      defaultPromptName: "query",
      similarityFnName: "dot",
      truncateDim: 2,
    };
    const dir = tmp("custom");
    writeStFolder(dir, spec);
    const back = readStFolder(dir);
    assert.deepEqual(specOf(back), spec);
    // ensure_ascii, as Python's json.dump writes it.
    assert.ok(
      readText(dir, "config_sentence_transformers.json").includes('"\\u4e2d\\u6587": "\\u4e3a\\u8fd9'),
    );
  });

  test("the files written, in order, atomically, with an empty Normalize folder", () => {
    const dir = tmp("files");
    const files = writeStFolder(dir, specOf(readStFolder(fixture("st5-embeddinggemma-300m"))));
    assert.deepEqual(files, [
      "config_sentence_transformers.json",
      "sentence_bert_config.json",
      "1_Pooling/config.json",
      "2_Dense/config.json",
      "3_Dense/config.json",
      "modules.json",
    ]);
    assert.deepEqual(listFiles(dir), [...files].sort());
    assert.deepEqual(readdirSync(join(dir, "4_Normalize")), []);
  });

  test("golden: same files and keys as the sentence-transformers 5.1 save of bge-base (st5-bge-like)", () => {
    const golden = fixture("st5-bge-like");
    const dir = tmp("golden-bge");
    const files = writeStFolder(dir, specOf(readStFolder(golden)), { ragtune: { libtorch: "1.13.0" } });
    const stFiles = [
      "config_sentence_transformers.json",
      "modules.json",
      "sentence_bert_config.json",
      "1_Pooling/config.json",
    ];
    assert.deepEqual([...files].sort(), [...stFiles].sort());
    for (const rel of stFiles) {
      const want = readObj(golden, rel);
      const got = readObj(dir, rel);
      if (rel === "config_sentence_transformers.json") delete got.ragtune; // ragtune's own key, checked below
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), rel);
    }
    // Same values, same formatting: byte for byte.
    for (const rel of ["modules.json", "sentence_bert_config.json", "1_Pooling/config.json"])
      assert.equal(readText(dir, rel), readText(golden, rel), rel);
    assert.deepEqual(
      Object.keys(readObj(dir, "1_Pooling/config.json")),
      Object.keys(readObj(golden, "1_Pooling/config.json")),
      "pooling keys in 5.x config_keys order",
    );
    // __version__ is the documented compatibility floor (no claim that sentence-transformers wrote the folder);
    // what wrote it is under ragtune's own key: package.json's version and the libtorch that ran.
    const config = readObj(dir, "config_sentence_transformers.json");
    assert.deepEqual(config.__version__, {
      sentence_transformers: "3.0.0",
      transformers: "4.34.0",
      pytorch: "1.11.0",
    });
    assert.deepEqual(config.__version__, { ...ST_VERSION_FLOOR });
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    assert.deepEqual(config.ragtune, { version: pkg.version, libtorch: "1.13.0" });
    const unpinned = tmp("golden-bge-unpinned");
    writeStFolder(unpinned, specOf(readStFolder(golden)));
    assert.deepEqual(readObj(unpinned, "config_sentence_transformers.json").ragtune, {
      version: pkg.version,
      libtorch: buildInfo().torchVersion,
    });
  });

  test("golden: byte-identical to the verbatim sentence-transformers 5.1.2 save of embeddinggemma-300m", () => {
    const golden = fixture("st5-embeddinggemma-300m");
    const dir = tmp("golden-gemma");
    writeStFolder(dir, specOf(readStFolder(golden)));
    for (const rel of [
      "modules.json",
      "sentence_bert_config.json",
      "2_Dense/config.json",
      "3_Dense/config.json",
      "1_Pooling/config.json",
    ])
      assert.equal(readText(dir, rel), readText(golden, rel), rel);
    // config_sentence_transformers.json: identical once the __version__ entries (ours name ragtune) agree.
    const got = readObj(dir, "config_sentence_transformers.json");
    got.__version__ = readObj(golden, "config_sentence_transformers.json").__version__;
    delete got.ragtune;
    assert.equal(pythonJson(got, 2), readText(golden, "config_sentence_transformers.json"));
  });

  test("pythonJson escapes like json.dump(ensure_ascii=True)", () => {
    // json.dumps({"a": "é\u007f😀", "b": [1, None]}, indent=2)
    assert.equal(
      pythonJson({ a: "é\u007f😀", b: [1, null] }, 2),
      '{\n  "a": "\\u00e9\\u007f\\ud83d\\ude00",\n  "b": [\n    1,\n    null\n  ]\n}',
    );
  });

  test("refuses what the 3.x-5.x layout cannot say, before writing anything", () => {
    const pooling = (modes: StFolderSpec["modules"][number] & { kind: "pooling" }) => modes;
    const cases: [StFolderSpec, string, RegExp][] = [
      [
        {
          ...MINILM_L6,
          modules: [
            MINILM_L6.modules[0]!,
            pooling({
              kind: "pooling",
              path: "1_Pooling",
              config: { embeddingDimension: 4, modes: ["mean", "cls"], includePrompt: true },
            }),
          ],
        },
        "modules[1].modes",
        /cannot be written as pooling_mode_\* flags/,
      ],
      [
        {
          ...MINILM_L6,
          modules: [
            ...MINILM_L6.modules,
            {
              kind: "dense",
              path: "3_Dense",
              config: {
                inFeatures: 384,
                outFeatures: 384,
                bias: true,
                activation: "tanh",
                useResidual: true,
              },
            },
          ],
        },
        "modules[3].useResidual",
        /residual/,
      ],
      [
        {
          ...MINILM_L6,
          modules: [
            ...MINILM_L6.modules,
            {
              kind: "dense",
              path: "3_Dense",
              config: { inFeatures: 768, outFeatures: 4, bias: true, activation: "tanh", useResidual: false },
            },
          ],
        },
        "modules[3].inFeatures",
        /outputs 384/,
      ],
      [{ ...MINILM_L6, defaultPromptName: "query" }, "defaultPromptName", /not one of the prompts/],
      [{ ...MINILM_L6, modules: MINILM_L6.modules.slice(1) }, "modules", /expected transformer, pooling/],
    ];
    for (const [spec, key, detail] of cases) {
      const dir = tmp("refused");
      throwsNaming(() => writeStFolder(dir, spec), dir, key, detail);
      assert.equal(existsSync(dir), false, "nothing written");
    }
  });
});
