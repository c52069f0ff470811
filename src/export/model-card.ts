// The model card (README.md) of a fine-tuned model, in the shape sentence-transformers' model card generator
// writes: YAML front matter (base model, tags, metrics, model-index with one information-retrieval result per
// Matryoshka dim), then usage, evaluation, training details and citations. The Hugging Face hub reads the front
// matter; people read the rest.
import { irMetricSuffixes, matryoshkaEvaluatorName, metricKey } from "../eval/metric-names.ts";

export interface ModelCardInput {
  /** e.g. "BGE base Financial Matryoshka". */
  modelName: string;
  baseModel: string;
  language?: string;
  license?: string;
  datasetName: string;
  trainExamples: number;
  evalQueries?: number;
  evalCorpus?: number;
  embeddingDim: number;
  maxSeqLength: number;
  similarityFnName: string;
  /** The pooling transformers.js should apply (mean or cls). */
  pooling?: string;
  /** The model's prompts (config_sentence_transformers.json), e.g. { query: "query: ", document: "passage: " }. */
  prompts?: Record<string, string>;
  defaultPromptName?: string | null;
  /** Loss names for tags and their settings for the training section. */
  losses: Array<{ name: string; config: Record<string, unknown> }>;
  /** Hyperparameters as the HF Trainer names them (snake_case). */
  hyperparameters: Record<string, unknown>;
  /** Final metrics with sentence-transformers keys (eval_ prefix optional). */
  metrics: Record<string, number>;
  dims: readonly number[];
  /** Training log rows (epoch, step, loss and the primary metric per dim). */
  trainingLogs?: Array<Record<string, number | string>>;
  versions: Record<string, string>;
  citations?: string[];
}

const yamlString = (s: string): string => (/^[\w .@/:-]+$/.test(s) && !/^\d/.test(s) ? s : JSON.stringify(s));

function metricValue(m: Record<string, number>, key: string): number | undefined {
  return m[key] ?? m[`eval_${key}`];
}

/** The YAML front matter: tags, metrics and the model-index (one result per dim). */
function frontMatter(c: ModelCardInput): string {
  const suffixes = irMetricSuffixes();
  const lines = [
    "---",
    `language:\n- ${c.language ?? "en"}`,
    `license: ${c.license ?? "apache-2.0"}`,
    "tags:",
    "- sentence-transformers",
    "- sentence-similarity",
    "- feature-extraction",
    "- generated_from_trainer",
    `- dataset_size:${c.trainExamples}`,
    ...c.losses.map((l) => `- loss:${l.name}`),
    "- ragtune",
    `base_model: ${yamlString(c.baseModel)}`,
    "pipeline_tag: sentence-similarity",
    "library_name: sentence-transformers",
    "metrics:",
    ...suffixes.map((s) => `- cosine_${s}`),
    "model-index:",
    `- name: ${yamlString(c.modelName)}`,
    "  results:",
  ];
  for (const d of c.dims) {
    lines.push(
      "  - task:",
      "      type: information-retrieval",
      "      name: Information Retrieval",
      "    dataset:",
      `      name: dim ${d}`,
      `      type: dim_${d}`,
      "    metrics:",
    );
    for (const s of suffixes) {
      const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
      if (v === undefined) continue;
      lines.push(`    - type: cosine_${s}`, `      value: ${v}`, `      name: Cosine ${s.replace("@", "@")}`);
    }
  }
  lines.push("---");
  return lines.join("\n");
}

function metricsTable(c: ModelCardInput): string {
  const suffixes = irMetricSuffixes();
  const header = `| Metric | ${c.dims.map((d) => `dim_${d}`).join(" | ")} |`;
  const sep = `|:--|${c.dims.map(() => "--:").join("|")}|`;
  const rows = suffixes.map((s) => {
    const cells = c.dims.map((d) => {
      const v = metricValue(c.metrics, metricKey(matryoshkaEvaluatorName(d), "cosine", s));
      return v === undefined ? "" : s === "ndcg@10" ? `**${v.toFixed(4)}**` : v.toFixed(4);
    });
    return `| cosine_${s} | ${cells.join(" | ")} |`;
  });
  return [header, sep, ...rows].join("\n");
}

/** What the Matryoshka training buys (nothing to say when no smaller dim was trained). */
function matryoshkaSentence(c: ModelCardInput): string {
  const smaller = c.dims.filter((d) => d < c.embeddingDim);
  if (smaller.length === 0) return "It was trained with MatryoshkaLoss at its full dimension only.";
  return `It was trained with Matryoshka Representation Learning, so its embeddings can be truncated to ${smaller.join(", ")} dimensions with little loss.`;
}

/** The transformers.js usage section (the folder carries onnx/model.onnx). */
function transformersJsUsage(pooling: string): string {
  return `### transformers.js

\`\`\`js
import { pipeline } from "@huggingface/transformers";

const extractor = await pipeline("feature-extraction", "path/to/this/model", { dtype: "fp32" });
const embeddings = await extractor(["What was the total revenue?"], { pooling: "${pooling}", normalize: true });
\`\`\`

`;
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

/** The Python usage lines: encode_query / encode_document when the model has prompts (they apply them). */
function pythonEncode(c: ModelCardInput): string {
  if (Object.keys(c.prompts ?? {}).length === 0)
    return [
      'embeddings = model.encode(["What was the total revenue?", "Revenue was $26.97 billion."])',
      "print(model.similarity(embeddings, embeddings))",
    ].join("\n");
  return [
    "# encode_query / encode_document apply the model's query and document prompts",
    'query_embeddings = model.encode_query(["What was the total revenue?"])',
    'document_embeddings = model.encode_document(["Revenue was $26.97 billion."])',
    "print(model.similarity(query_embeddings, document_embeddings))",
  ].join("\n");
}

/** Renders README.md. */
export function renderModelCard(c: ModelCardInput): string {
  const hp = Object.entries(c.hyperparameters)
    .map(([k, v]) => `- \`${k}\`: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("\n");
  const losses = c.losses
    .map(
      (l) =>
        `**${l.name}** with these parameters:\n\n\`\`\`json\n${JSON.stringify(l.config, null, 4)}\n\`\`\``,
    )
    .join("\n\n");
  const logs = c.trainingLogs?.length
    ? [
        "### Training Logs",
        "",
        `| ${Object.keys(c.trainingLogs[0]!).join(" | ")} |`,
        `|${Object.keys(c.trainingLogs[0]!)
          .map(() => ":--")
          .join("|")}|`,
        ...c.trainingLogs.map(
          (r) =>
            `| ${Object.values(r)
              .map((v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v))
              .join(" | ")} |`,
        ),
        "",
      ].join("\n")
    : "";
  const versions = Object.entries(c.versions)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
  return `${frontMatter(c)}

# ${c.modelName}

This is a [sentence-transformers](https://www.SBERT.net) model fine-tuned from [${c.baseModel}](https://huggingface.co/${c.baseModel}) on ${c.datasetName} with ragtune (TypeScript on libtorch). It maps sentences and paragraphs to a ${c.embeddingDim}-dimensional dense vector space and can be used for retrieval, semantic search and clustering. ${matryoshkaSentence(c)}

## Model Details

- **Model Type:** Sentence Transformer
- **Base model:** ${c.baseModel}
- **Maximum Sequence Length:** ${c.maxSeqLength} tokens
- **Output Dimensionality:** ${c.embeddingDim} dimensions
- **Similarity Function:** ${c.similarityFnName}
${promptLines(c)}- **Training Dataset:** ${c.datasetName} (${c.trainExamples.toLocaleString("en-US")} pairs)
- **Language:** ${c.language ?? "en"}
- **License:** ${c.license ?? "apache-2.0"}

## Usage

### sentence-transformers (Python)

\`\`\`python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/this/model", truncate_dim=${c.dims[c.dims.length - 1] ?? c.embeddingDim})
${pythonEncode(c)}
\`\`\`

${c.pooling ? transformersJsUsage(c.pooling) : ""}### ragtune (TypeScript / CLI)

\`\`\`sh
echo "What was the total revenue?" | npx ragtune encode --model path/to/this/model --dim ${c.dims[c.dims.length - 1] ?? c.embeddingDim}
\`\`\`

## Evaluation

Information retrieval (${c.evalQueries ?? "?"} queries, ${c.evalCorpus ?? "?"} documents), evaluated at every Matryoshka dimension:

${metricsTable(c)}

## Training Details

### Training Dataset

${c.datasetName}: ${c.trainExamples.toLocaleString("en-US")} (anchor, positive) pairs.

### Loss

${losses}

### Training Hyperparameters

${hp}

${logs}
### Framework Versions

${versions}

## Citation

${(c.citations ?? [SBERT_CITATION, MATRYOSHKA_CITATION, MNRL_CITATION]).map((b) => `\`\`\`bibtex\n${b}\n\`\`\``).join("\n\n")}
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
