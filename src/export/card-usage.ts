// The usage snippets of a model card, each written to work as printed: sentence-transformers (Python) for a folder
// it loads, transformers.js for a folder with ONNX files, and ragtune's CLI. The transformers.js one is its own
// exported function so that a test can run exactly the code the card prints.
//
// transformers.js facts the snippet relies on (@huggingface/transformers 3.x / 4.x, src/utils/hub.js): a model id
// that is not of hub syntax ("./folder", "../x/y") is read as a path (from the working directory in Node, from the
// page's URL in a browser), while a bare "folder" is taken for a hub repo; `dtype: "fp32"` loads
// onnx/model.onnx and `dtype: "q8"` (the browser's default) onnx/model_quantized.onnx.

/** What the transformers.js snippet needs to know about the folder. */
export interface TransformersJsSnippetInput {
  /** The folder as the snippet loads it: a relative path, "./"-prefixed here if it is not. */
  folder: string;
  /** The ONNX files in the folder, relative to it (e.g. ["onnx/model.onnx", "onnx/model_quantized.onnx"]). */
  onnxFiles: readonly string[];
  /** The pooling and normalization transformers.js applies to reproduce the model's embeddings. */
  pooling: "mean" | "cls";
  normalize: boolean;
  /** Matryoshka dims smaller than the full size (the recipe shows the smallest). */
  dims: readonly number[];
  fullDim: number;
  /** The query prompt to prepend (the model's `query` prompt), if any. */
  queryPrompt?: string;
  /** Example texts (the first is used as a query when there is a prompt). */
  texts: readonly string[];
  /** The model's maximum sequence length (tokens), for the note on how transformers.js truncates. */
  maxSeqLength?: number;
}

/** "folder" → "./folder": transformers.js reads only a path-looking id as local. */
export function localModelPath(folder: string): string {
  const f = folder.replace(/\\/g, "/").replace(/\/+$/, "");
  return f.startsWith("./") || f.startsWith("../") || f.startsWith("/") ? f : `./${f}`;
}

/**
 * The transformers.js snippet (JavaScript, an ES module): load with the dtype whose file the folder has (q8 when
 * onnx/model_quantized.onnx is there, else fp32), embed with the model's pooling, and the Matryoshka recipe —
 * pool without normalizing, keep the first d dims, then L2-normalize — which is what ragtune's and
 * sentence-transformers' `truncate_dim` compute for a cosine model. Null when the folder has no ONNX file.
 */
export function transformersJsSnippet(c: TransformersJsSnippetInput): string | null {
  const hasQ8 = c.onnxFiles.includes("onnx/model_quantized.onnx");
  const hasFp32 = c.onnxFiles.includes("onnx/model.onnx");
  if (!hasQ8 && !hasFp32) return null;
  const dtype = hasQ8 ? "q8" : "fp32";
  const dtypeNote = hasQ8
    ? hasFp32
      ? `// q8 loads onnx/model_quantized.onnx (int8 weights, the browser's default); { dtype: "fp32" } loads onnx/model.onnx`
      : "// q8 loads onnx/model_quantized.onnx (int8 weights, the browser's default)"
    : "// fp32 loads onnx/model.onnx; this folder has no onnx/model_quantized.onnx, which the browser's default q8 would need";
  const prompt = c.queryPrompt ?? "";
  const texts = c.texts.map((t, i) => JSON.stringify(i === 0 && prompt ? prompt + t : t));
  const smallest = c.dims.filter((d) => d < c.fullDim).at(-1);
  const lines = [
    'import { pipeline } from "@huggingface/transformers";',
    "",
    "// A local folder: the ./ matters (a bare name is looked up on the Hugging Face hub).",
    dtypeNote,
    `const extractor = await pipeline("feature-extraction", ${JSON.stringify(localModelPath(c.folder))}, { dtype: ${JSON.stringify(dtype)} });`,
    ...(prompt ? [`// queries get the model's query prompt ${JSON.stringify(prompt)}; passages none`] : []),
    `const texts = [${texts.join(", ")}];`,
    `const embeddings = await extractor(texts, { pooling: ${JSON.stringify(c.pooling)}, normalize: ${c.normalize} });`,
    `console.log(embeddings.dims); // [${c.texts.length}, ${c.fullDim}]`,
  ];
  if (c.maxSeqLength !== undefined)
    lines.push(
      `// transformers.js cuts a text longer than ${c.maxSeqLength} tokens at the end, its final special token included, where`,
      "// sentence-transformers and ragtune keep it: such texts embed slightly differently (shorter ones identically).",
    );
  if (smallest !== undefined)
    lines.push(
      "",
      `// Matryoshka: pool, keep the first ${smallest} dimensions, then L2-normalize (normalizing before slicing would not do)`,
      `const pooled = await extractor(texts, { pooling: ${JSON.stringify(c.pooling)}, normalize: false });`,
      `const small = pooled.slice(null, [0, ${smallest}]).normalize(2, -1);`,
      `console.log(small.dims); // [${c.texts.length}, ${smallest}]`,
    );
  return lines.join("\n");
}

/**
 * The sentence-transformers (Python) snippet for the local folder; `truncateDim` shows Matryoshka truncation at
 * load. With prompts it uses encode_query / encode_document (sentence-transformers ≥ 5.0), which apply them.
 */
export function pythonSnippet(c: {
  folder: string;
  hasPrompts: boolean;
  truncateDim: number | null;
  texts: readonly string[];
}): string {
  const id = localModelPath(c.folder);
  const load = c.truncateDim
    ? `model = SentenceTransformer(${JSON.stringify(id)}, truncate_dim=${c.truncateDim})`
    : `model = SentenceTransformer(${JSON.stringify(id)})`;
  const [query = "", ...docs] = c.texts;
  const encode = c.hasPrompts
    ? [
        "# encode_query / encode_document apply the model's query and document prompts",
        `query_embeddings = model.encode_query([${JSON.stringify(query)}])`,
        `document_embeddings = model.encode_document([${docs.map((d) => JSON.stringify(d)).join(", ")}])`,
        "print(model.similarity(query_embeddings, document_embeddings))",
      ]
    : [
        `sentences = [${c.texts.map((t) => JSON.stringify(t)).join(", ")}]`,
        "embeddings = model.encode(sentences)",
        "print(embeddings.shape)",
        "print(model.similarity(embeddings, embeddings))",
      ];
  return ["from sentence_transformers import SentenceTransformer", "", load, ...encode].join("\n");
}
