// The model card (README.md) of a fine-tuned model, in the shape and with the sections of sentence-transformers'
// model cards (model_card_template.md): YAML front matter (languages and license only when known, base_model only
// when it is a hub id, tags, datasets, the widget's examples, metrics, a model-index with one
// information-retrieval result per Matryoshka dim), model details with the full architecture, usage
// (sentence-transformers, transformers.js, ragtune), evaluation per truncate_dim, training details (dataset
// columns and length statistics, losses, the hyperparameters as they ran, logs), framework versions and citations.
// Every statement comes from the run: nothing is a default that might not hold.
//
// ports sentence_transformers@dfcbbd93 model_card_template.md (section list) and model_card.py (tags, widget,
// dataset statistics, non-default hyperparameters, citations per loss).
import { irMetricSuffixes, matryoshkaEvaluatorName, metricKey } from "../eval/metric-names.ts";
import {
  metricValue,
  modelIndexTaskLines,
  statsTable,
  widgetYaml,
  yamlScalar,
  type DatasetStats,
  type WidgetExample,
} from "./card-data.ts";
import type { BaseModelFacts } from "./card-facts.ts";
import { pythonSnippet, transformersJsSnippet, type TransformersJsSnippetInput } from "./card-usage.ts";

export interface ModelCardInput {
  /** e.g. "BGE base Financial Matryoshka". */
  modelName: string;
  baseModel: BaseModelFacts;
  /** Languages; empty = unknown (left out, never guessed). */
  languages: readonly string[];
  /** License id; null = unknown (left out). */
  license: string | null;
  /** The training data: its file name (never a path), the hub dataset id when given, samples, statistics. */
  dataset: {
    name: string;
    hubId: string | null;
    size: number;
    columns: readonly string[];
    stats: DatasetStats | null;
  };
  evalQueries?: number;
  evalCorpus?: number;
  embeddingDim: number;
  maxSeqLength: number;
  similarityFnName: string;
  /** The module list as sentence-transformers prints the model; null when it is not a ST model. */
  architecture: string | null;
  /** The folder as the usage snippets load it (relative, e.g. "bge-financial/final"). */
  folder: string;
  /** True when sentence-transformers loads the folder (the Python snippet is shown only then). */
  sentenceTransformers: boolean;
  /** transformers.js snippet inputs (null: no ONNX in the folder, or pooling transformers.js cannot apply). */
  transformersJs: Omit<
    TransformersJsSnippetInput,
    "folder" | "dims" | "fullDim" | "texts" | "queryPrompt"
  > | null;
  /** The model's prompts (config_sentence_transformers.json), e.g. { query: "query: ", document: "passage: " }. */
  prompts?: Record<string, string>;
  defaultPromptName?: string | null;
  /** Loss names for tags and their settings for the training section. */
  losses: Array<{ name: string; config: Record<string, unknown> }>;
  /** Hyperparameters as the HF Trainer names them (snake_case), as the run used them; `nonDefault` ⊆ `all`. */
  hyperparameters: { nonDefault: Record<string, unknown>; all: Record<string, unknown> };
  /** Final metrics with sentence-transformers keys (eval_ prefix optional). */
  metrics: Record<string, number>;
  dims: readonly number[];
  /** Training log rows (epoch, step, loss and the primary metric per dim). */
  trainingLogs?: Array<Record<string, number | string>>;
  /** The widget's examples (from the evaluation queries); also the usage snippets' texts. */
  widget: readonly WidgetExample[];
  /** What ran: ragtune, libtorch, Node.js. */
  versions: Record<string, string>;
  /** BibTeX per heading: sentence-transformers, then each loss used. */
  citations: Record<string, string>;
}

/** The YAML front matter: what is known of language and license, tags, datasets, widget, model-index. */
function frontMatter(c: ModelCardInput): string {
  const suffixes = irMetricSuffixes();
  const lines = ["---"];
  if (c.languages.length > 0) lines.push("language:", ...c.languages.map((l) => `- ${yamlScalar(l)}`));
  if (c.license) lines.push(`license: ${yamlScalar(c.license)}`);
  lines.push(
    "tags:",
    ...(c.sentenceTransformers ? ["- sentence-transformers"] : []),
    "- sentence-similarity",
    "- feature-extraction",
    "- generated_from_trainer",
    `- dataset_size:${c.dataset.size}`,
    ...c.losses.map((l) => `- loss:${l.name}`),
    "- ragtune",
  );
  if (c.baseModel.hubId) lines.push(`base_model: ${yamlScalar(c.baseModel.hubId)}`);
  if (c.dataset.hubId) lines.push("datasets:", `- ${yamlScalar(c.dataset.hubId)}`);
  lines.push(...widgetYaml(c.widget));
  lines.push("pipeline_tag: sentence-similarity");
  if (c.sentenceTransformers) lines.push("library_name: sentence-transformers");
  const measured = c.dims.some((d) =>
    suffixes.some(
      (s) => metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s)) !== undefined,
    ),
  );
  if (measured) {
    lines.push(
      "metrics:",
      ...suffixes.map((s) => `- cosine_${s}`),
      "model-index:",
      `- name: ${yamlScalar(c.modelName)}`,
      "  results:",
    );
    for (const d of c.dims) {
      lines.push(...modelIndexTaskLines(d));
      for (const s of suffixes) {
        const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
        if (v === undefined) continue;
        lines.push(`    - type: cosine_${s}`, `      value: ${v}`, `      name: Cosine ${s}`);
      }
    }
  }
  lines.push("---");
  return lines.join("\n");
}

/** The evaluation: one InformationRetrievalEvaluator per Matryoshka dim (its truncate_dim), one table. */
function evaluationSection(c: ModelCardInput): string {
  const suffixes = irMetricSuffixes();
  const has = (d: number) =>
    suffixes.some(
      (s) => metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s)) !== undefined,
    );
  const dims = c.dims.filter(has);
  if (dims.length === 0) return "";
  const header = `| Metric | ${dims.map((d) => `dim_${d}`).join(" | ")} |`;
  const sep = `|:--|${dims.map(() => "--:").join("|")}|`;
  const rows = suffixes.map((s) => {
    const cells = dims.map((d) => {
      const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
      return v === undefined ? "" : s === "ndcg@10" ? `**${v.toFixed(4)}**` : v.toFixed(4);
    });
    return `| cosine_${s} | ${cells.join(" | ")} |`;
  });
  const perDim = dims.map((d) => `\`dim_${d}\` (\`{"truncate_dim": ${d}}\`)`).join(", ");
  return `## Evaluation

### Metrics

#### Information Retrieval

* Datasets: ${dims.map((d) => `\`dim_${d}\``).join(", ")}
* Evaluated with \`InformationRetrievalEvaluator\` (${c.evalQueries ?? "?"} queries, ${c.evalCorpus ?? "?"} documents) at each Matryoshka dimension, with these parameters: ${perDim}

${[header, sep, ...rows].join("\n")}

`;
}

/** What the Matryoshka training buys (nothing to say when no smaller dim was trained). */
function matryoshkaSentence(c: ModelCardInput): string {
  const smaller = c.dims.filter((d) => d < c.embeddingDim);
  if (smaller.length === 0) return "It was trained with MatryoshkaLoss at its full dimension only.";
  return `It was trained with Matryoshka Representation Learning, so its embeddings can be truncated to ${smaller.join(", ")} dimensions with little loss.`;
}

/** The prompts in the model details (nothing without prompts): ST applies them in encode_query / encode_document. */
function promptLines(c: ModelCardInput): string {
  const entries = Object.entries(c.prompts ?? {});
  if (entries.length === 0) return "";
  const list = entries.map(([name, text]) => `\`${name}\`: ${JSON.stringify(text)}`).join(", ");
  const fallback = c.defaultPromptName ? `; default prompt: \`${c.defaultPromptName}\`` : "";
  return (
    `- **Prompts:** ${list}${fallback} (saved in config_sentence_transformers.json; sentence-transformers' ` +
    "`encode_query` / `encode_document` and `ragtune eval` / `encode --as` apply them)\n"
  );
}

/** A hub id as a link; anything else as the words the facts give. */
function baseModelText(b: BaseModelFacts): string {
  return b.hubId ? `[${b.hubId}](https://huggingface.co/${b.hubId})` : b.description;
}

function datasetText(c: ModelCardInput): string {
  return c.dataset.hubId
    ? `[${c.dataset.hubId}](https://huggingface.co/datasets/${c.dataset.hubId}) (\`${c.dataset.name}\`)`
    : `\`${c.dataset.name}\``;
}

const hpValue = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

function usageSection(c: ModelCardInput): string {
  const texts = c.widget[0]
    ? [c.widget[0].source_sentence, ...c.widget[0].sentences.slice(0, 2)]
    : ["What was the total revenue?", "Revenue was $26.97 billion."];
  const smallest = c.dims.filter((d) => d < c.embeddingDim).at(-1) ?? null;
  const parts = ["## Usage", ""];
  if (c.sentenceTransformers)
    parts.push(
      "### Direct Usage (Sentence Transformers)",
      "",
      "```bash",
      "pip install -U sentence-transformers",
      "```",
      "",
      "```python",
      pythonSnippet({
        folder: c.folder,
        hasPrompts: Object.keys(c.prompts ?? {}).length > 0,
        truncateDim: smallest,
        texts,
      }),
      "```",
      "",
    );
  const js = c.transformersJs
    ? transformersJsSnippet({
        ...c.transformersJs,
        folder: c.folder,
        dims: c.dims,
        fullDim: c.embeddingDim,
        texts,
        maxSeqLength: c.maxSeqLength,
        ...(c.prompts?.query ? { queryPrompt: c.prompts.query } : {}),
      })
    : null;
  if (js)
    parts.push(
      "### transformers.js (JavaScript, Node or browser)",
      "",
      "```bash",
      "npm install @huggingface/transformers",
      "```",
      "",
      "```js",
      js,
      "```",
      "",
    );
  parts.push(
    "### ragtune (TypeScript / CLI)",
    "",
    "```sh",
    `echo ${JSON.stringify(texts[0])} | npx ragtune encode --model ${c.folder} --dim ${smallest ?? c.embeddingDim}`,
    "```",
    "",
  );
  return parts.join("\n");
}

function trainingLogs(c: ModelCardInput): string {
  if (!c.trainingLogs?.length) return "";
  const keys = Object.keys(c.trainingLogs[0]!);
  return [
    "### Training Logs",
    "",
    `| ${keys.join(" | ")} |`,
    `|${keys.map(() => ":--").join("|")}|`,
    ...c.trainingLogs.map(
      (r) =>
        `| ${Object.values(r)
          .map((v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v))
          .join(" | ")} |`,
    ),
    "",
    "",
  ].join("\n");
}

/** Renders README.md. */
export function renderModelCard(c: ModelCardInput): string {
  const hp = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `- \`${k}\`: ${hpValue(v)}`)
      .join("\n");
  const losses = c.losses
    .map(
      (l) =>
        `[\`${l.name}\`](https://sbert.net/docs/package_reference/sentence_transformer/losses.html#${l.name.toLowerCase()}) with these parameters:\n\n\`\`\`json\n${JSON.stringify(l.config, null, 4)}\n\`\`\``,
    )
    .join("\n\n");
  const stats = c.dataset.stats;
  const statsBlock = stats
    ? `* Approximate statistics based on the first ${stats.samples.toLocaleString("en-US")} samples (${stats.unit === "tokens" ? "tokens of the model's tokenizer, special tokens included, truncated at its maximum sequence length" : "characters"}):\n\n${statsTable(stats)}\n`
    : "";
  const nonDefault = Object.keys(c.hyperparameters.nonDefault).length
    ? `#### Non-Default Hyperparameters\n\n${hp(c.hyperparameters.nonDefault)}\n\n`
    : "";
  const versions = Object.entries(c.versions)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
  const citations = Object.entries(c.citations)
    .map(([name, bib]) => `#### ${name}\n\n\`\`\`bibtex\n${bib.trim()}\n\`\`\``)
    .join("\n\n");
  const what = c.sentenceTransformers
    ? "a [sentence-transformers](https://www.SBERT.net) model"
    : "a text-embedding model";
  return `${frontMatter(c)}

# ${c.modelName}

This is ${what} fine-tuned from ${baseModelText(c.baseModel)} on ${datasetText(c)} with ragtune (TypeScript on libtorch). It maps sentences and paragraphs to a ${c.embeddingDim}-dimensional dense vector space and can be used for retrieval, semantic search and clustering. ${matryoshkaSentence(c)}

## Model Details

### Model Description

- **Model Type:** ${c.sentenceTransformers ? "Sentence Transformer" : "Text embedding model"}
- **Base model:** ${baseModelText(c.baseModel)}
- **Maximum Sequence Length:** ${c.maxSeqLength} tokens
- **Output Dimensionality:** ${c.embeddingDim} dimensions
- **Similarity Function:** ${c.similarityFnName}
${promptLines(c)}- **Training Dataset:** ${datasetText(c)} (${c.dataset.size.toLocaleString("en-US")} pairs)
${c.languages.length ? `- **Language${c.languages.length > 1 ? "s" : ""}:** ${c.languages.join(", ")}\n` : ""}${c.license ? `- **License:** ${c.license}\n` : ""}${c.architecture ? `\n### Full Model Architecture\n\n\`\`\`\n${c.architecture}\n\`\`\`\n` : ""}
${usageSection(c)}
${evaluationSection(c)}## Training Details

### Training Dataset

#### ${c.dataset.name}

* Dataset: ${datasetText(c)}
* Size: ${c.dataset.size.toLocaleString("en-US")} training samples
* Columns: ${c.dataset.columns.map((n) => `<code>${n}</code>`).join(", ")}
${statsBlock}* Loss: ${losses}

### Training Hyperparameters

${nonDefault}#### All Hyperparameters

<details><summary>Click to expand</summary>

${hp(c.hyperparameters.all)}

</details>

${trainingLogs(c)}### Framework Versions

${versions}

## Citation

### BibTeX

${citations}
`;
}

export const SBERT_CITATION = `@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}`;

export const MATRYOSHKA_CITATION = `@misc{kusupati2024matryoshka,
    title={Matryoshka Representation Learning},
    author={Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and Ali Farhadi},
    year={2024},
    eprint={2205.13147},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}`;

export const MNRL_CITATION = `@misc{henderson2017efficient,
    title={Efficient Natural Language Response Suggestion for Smart Reply},
    author={Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-hsuan Sung and Laszlo Lukacs and Ruiqi Guo and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
    year={2017},
    eprint={1705.00652},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}`;
