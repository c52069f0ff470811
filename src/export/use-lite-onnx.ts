// ONNX export of Universal Sentence Encoder lite (models/use-lite.ts) for onnxruntime (onnxruntime-node,
// onnxruntime-web): writes `<dir>/onnx/model.onnx`, the whole encoder written out op by op, pooling, tanh layer
// and L2 normalization included, so the graph's output is exactly what ragtune's `encode()` returns (unlike the
// BERT export, whose pooling is left to transformers.js: transformers.js has no USE-lite architecture, so the
// graph is meant for onnxruntime directly).
//
// I/O (USE_LITE_ONNX_INPUTS / USE_LITE_ONNX_OUTPUT):
//   input_ids       int64 [batch_size, sequence_length]  the USE SentencePiece ids of each text (the USE npm
//                                                         package's Tokenizer.encode, or ragtune's identical
//                                                         UseSentencePieceTokenizer): no offset, no start/end
//                                                         tokens; right-padded with any valid id (use 0).
//   attention_mask  int64 [batch_size, sequence_length]  1 for the first len(ids) positions of a row, 0 after.
//   sentence_embedding float32 [batch_size, 512]        unit length (an empty text: l2_normalize(tanh(b))).
// The tfjs graph takes the same ids in sparse form (indices (N, 2) = (row, position), values (N)); the dense
// ids + mask here are that SparseToDense with the mask made explicit, the form onnxruntime users feed.
// Positions >= max_length (128) are dropped inside the graph (the tfjs graph's ClipToMaxLength), so a caller
// need not truncate. A batch needs at least one column: pad an all-empty batch to [batch, 1] with mask 0.
//
// Node by node (shapes: B batch, T = min(sequence_length, 128), E 256, H 512; see models/use-lite.ts):
//   ids, mask = Slice(·, 0:128 on axis 1)                             (B, T)
//   x = e + (e + timing[:T]), e = Gather(embeddings, ids)             (B, T, E)
//     the timing table (128, E) is an initializer computed with ragtune's own ops at export time, so the graph
//     adds bit-identical values (no Sin/Cos of the runtime).
//   per layer: h = attn(LN(x)) + (residual(x) | x); h = h + conv2(relu(conv1(LN(h))))
//     attn: qkv = LN(x)·W + b, Slice into q, k, v; heads; softmax(q·k^T/√hd + (1 − mask)·(−1e9)) · v
//   pooled = Σ_t h·mask / max(Σ_t mask, 1); y = tanh(pooled·W + b); y · 1/√max(Σy², 1e-12)   (B, H)
// Padded positions are computed but never reach a real one (their keys get −1e9) nor the mean (masked out),
// which is why padding does not change a row's embedding (test/export/use-lite-onnx.test.ts checks it).
import { existsSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";

import { arange, cat, noGrad, tensor, tidy } from "../engine/index.ts";
import { ensureRealFolder } from "../models/st-folder-write.ts";
import { invTimescales, type UseLite } from "../models/use-lite.ts";
import { writeFileAtomic, writeFully } from "../util/index.ts";
import {
  GraphBuilder,
  ONNX_IR_VERSION,
  parameterOps,
  type OnnxExportResult,
  type OnnxOpset,
} from "./onnx.ts";
import { attr, DataType, encodeModel, type GraphProto, type ModelProto } from "./onnx-proto.ts";

/** The graph's inputs (int64 [batch_size, sequence_length]) and output (float32 [batch_size, 512]). */
export const USE_LITE_ONNX_INPUTS = ["input_ids", "attention_mask"] as const;
export const USE_LITE_ONNX_OUTPUT = "sentence_embedding";

/** attention_bias_ignore_padding's value for a padded key (models/use-lite.ts uses the same). */
const MASKED_BIAS = -1e9;
/** Protobuf messages are limited to 2 GiB (USE-lite is ~25 MB; a larger config would need external data). */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface UseLiteOnnxOptions {
  /** 17 (default) uses LayerNormalization; 14 spells it out (ReduceMean/Sub/Mul/Add/Sqrt/Div). */
  opset?: OnnxOpset;
}

/**
 * The timing signal of every position < maxLength, (maxLength, E) float32, computed exactly as
 * UseLite.forward computes it (arange · inv_timescales in float32, then sin | cos).
 */
function timingTable(use: UseLite): Uint8Array {
  const cfg = use.config;
  return noGrad(() =>
    tidy(() => {
      const inv = tensor(invTimescales(cfg.embeddingSize / 2, cfg.maxTimescale)); // (E/2)
      const scaled = arange(0, cfg.maxLength, 1).to("float32").unsqueeze(1).mul(inv); // (L, E/2)
      const table = cat([scaled.sin(), scaled.cos()], 1).contiguous(); // (L, E)
      const buf = table.bytes();
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }),
  );
}

/** The ONNX model of UseLite.forward (eval mode): inputs USE_LITE_ONNX_INPUTS, output USE_LITE_ONNX_OUTPUT. */
export function useLiteToOnnx(use: UseLite, options: UseLiteOnnxOptions = {}): ModelProto {
  if (endianness() !== "LE") throw new Error("ONNX export: raw_data is little-endian; this host is not");
  const opset = options.opset ?? 17;
  if (opset !== 14 && opset !== 17) throw new RangeError(`ONNX export: opset must be 14 or 17, got ${opset}`);
  const cfg = use.config;
  const params = new Map(use.namedParameters());
  const g = new GraphBuilder();

  const { weight, linear, layerNorm } = parameterOps(g, params, {
    model: "the USE-lite model",
    opset,
    eps: cfg.layerNormEps,
  });

  const [inputIdsIn, attentionMaskIn] = USE_LITE_ONNX_INPUTS;

  // ClipToMaxLength: positions >= maxLength dropped (Slice clamps `end`, so shorter batches pass whole).
  const clip = (x: string) =>
    g.node(
      "Slice",
      [x, g.constInt64([0]), g.constInt64([cfg.maxLength]), g.constInt64([1])],
      {},
      { scope: "/clip" },
    );
  const ids = clip(inputIdsIn); // (B, T)
  const maskF = g.node("Cast", [clip(attentionMaskIn)], { to: attr.int(DataType.FLOAT) }, { scope: "/mask" }); // (B, T)

  // attention_bias_ignore_padding: (1 − mask)·(−1e9), (B, 1, 1, T).
  const bias = (() => {
    const scope = "/attention_bias";
    const inverted = g.node("Sub", [g.constFloat(1), maskF], {}, { scope });
    const additive = g.node("Mul", [inverted, g.constFloat(MASKED_BIAS)], {}, { scope });
    return g.node("Unsqueeze", [additive, g.constInt64([1, 2])], {}, { scope });
  })();

  // Layer_0/add = embedding + AddTimingSignal(embedding) = e + (e + timing), in the model's op order.
  let h = (() => {
    const scope = "/embeddings";
    const e = g.node("Gather", [weight("embeddings.weight"), ids], {}, { scope }); // (B, T, E)
    const table = g.initializer(
      "timing_signal",
      DataType.FLOAT,
      [cfg.maxLength, cfg.embeddingSize],
      timingTable(use),
      "tensor2tensor get_timing_signal_1d for positions 0 … max_length-1: [sin(p·inv), cos(p·inv)]",
    );
    const seqLen = g.node(
      "Gather",
      [g.node("Shape", [ids], {}, { scope }), g.constInt64([1])],
      { axis: attr.int(0) },
      { scope },
    ); // [T]
    const timing = g.node("Slice", [table, g.constInt64([0]), seqLen, g.constInt64([0])], {}, { scope }); // (T, E)
    return g.node("Add", [e, g.node("Add", [e, timing], {}, { scope })], {}, { scope }); // (B, T, E)
  })();

  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `layers.${i}`;
    const s = `/layers.${i}`;
    const dim = i === 0 ? cfg.embeddingSize : cfg.hiddenSize;
    const headSize = dim / cfg.numHeads;
    const sa = `${s}/attention`;
    const qkv = linear(
      layerNorm(h, `${p}.attention_norm`, `${s}/attention_norm`),
      `${p}.attention.qkv`,
      `${sa}/qkv`,
    ); // (B, T, 3d)
    const part = (k: number) =>
      g.node(
        "Slice",
        [qkv, g.constInt64([k * dim]), g.constInt64([(k + 1) * dim]), g.constInt64([2])],
        {},
        { scope: sa },
      ); // (B, T, d)
    const heads = (x: string, perm: number[]) =>
      g.node(
        "Transpose",
        [g.node("Reshape", [x, g.constInt64([0, 0, cfg.numHeads, headSize])], {}, { scope: sa })],
        { perm: attr.ints(perm) },
        { scope: sa },
      );
    const q = heads(part(0), [0, 2, 1, 3]); // (B, nh, T, hd)
    const kT = heads(part(1), [0, 2, 3, 1]); // (B, nh, hd, T)
    const v = heads(part(2), [0, 2, 1, 3]); // (B, nh, T, hd)
    const qScaled = g.node("Mul", [q, g.constFloat(1 / Math.sqrt(headSize))], {}, { scope: sa });
    const scores = g.node(
      "Add",
      [g.node("MatMul", [qScaled, kT], {}, { scope: sa }), bias],
      {},
      { scope: sa },
    ); // (B, nh, T, T)
    const probs = g.node("Softmax", [scores], { axis: attr.int(-1) }, { scope: sa });
    const context = g.node("MatMul", [probs, v], {}, { scope: sa }); // (B, nh, T, hd)
    const merged = g.node(
      "Reshape",
      [
        g.node("Transpose", [context], { perm: attr.ints([0, 2, 1, 3]) }, { scope: sa }),
        g.constInt64([0, 0, dim]),
      ],
      {},
      { scope: sa },
    ); // (B, T, d)
    const attn = linear(merged, `${p}.attention.output`, `${sa}/output`); // (B, T, H)
    // AdjustResidualInput: layer 0 projects its 256-wide input to 512; later layers add it as it is.
    const residual = params.has(`${p}.residual.weight`) ? linear(h, `${p}.residual`, `${s}/residual`) : h;
    const h1 = g.node("Add", [attn, residual], {}, { scope: s }); // (B, T, H)
    const inner = g.node(
      "Relu",
      [linear(layerNorm(h1, `${p}.ffn_norm`, `${s}/ffn_norm`), `${p}.ffn.conv1`, `${s}/ffn/conv1`)],
      {},
      { scope: `${s}/ffn` },
    ); // (B, T, I)
    h = g.node("Add", [h1, linear(inner, `${p}.ffn.conv2`, `${s}/ffn/conv2`)], {}, { scope: s }); // (B, T, H)
  }

  // Mean over the real positions (divided by max(len, 1)), tanh layer, l2_normalize.
  const embedding = (() => {
    const scope = "/pooling";
    const axis1 = g.constInt64([1]);
    const masked = g.node(
      "Mul",
      [h, g.node("Unsqueeze", [maskF, g.constInt64([2])], {}, { scope })],
      {},
      { scope },
    ); // (B, T, H)
    const sums = g.node("ReduceSum", [masked, axis1], { keepdims: attr.int(0) }, { scope }); // (B, H)
    const len = g.node(
      "Max",
      [g.node("ReduceSum", [maskF, axis1], { keepdims: attr.int(1) }, { scope }), g.constFloat(1)],
      {},
      { scope },
    ); // (B, 1)
    const pooled = g.node("Div", [sums, len], {}, { scope }); // (B, H)
    const y = g.node("Tanh", [linear(pooled, "pooler", "/pooler")], {}, { scope: "/pooler" }); // (B, H)
    const n = "/normalize";
    const sq = g.node(
      "ReduceSum",
      [g.node("Mul", [y, y], {}, { scope: n }), g.constInt64([-1])],
      { keepdims: attr.int(1) },
      { scope: n },
    ); // (B, 1)
    const inv = g.node(
      "Reciprocal",
      [g.node("Sqrt", [g.node("Max", [sq, g.constFloat(1e-12)], {}, { scope: n })], {}, { scope: n })],
      {},
      { scope: n },
    );
    return g.node("Mul", [y, inv], {}, { scope: n, output: USE_LITE_ONNX_OUTPUT }); // (B, H)
  })();

  const tokens = ["batch_size", "sequence_length"];
  const graph: GraphProto = {
    name: "use_lite",
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [
      {
        name: inputIdsIn,
        elemType: DataType.INT64,
        shape: tokens,
        docString:
          "USE SentencePiece ids (Tokenizer.encode of @tensorflow-models/universal-sentence-encoder), right-padded",
      },
      {
        name: attentionMaskIn,
        elemType: DataType.INT64,
        shape: tokens,
        docString: "1 for the real ids, 0 for padding",
      },
    ],
    outputs: [
      {
        name: embedding,
        elemType: DataType.FLOAT,
        shape: ["batch_size", cfg.hiddenSize],
        docString: "unit-length sentence embeddings",
      },
    ],
  };
  return {
    irVersion: ONNX_IR_VERSION,
    opsetImports: [{ domain: "", version: opset }],
    producerName: "ragtune",
    docString: `Universal Sentence Encoder lite (${cfg.numLayers} layers, hidden ${cfg.hiddenSize}): sentence_embedding, pooled and L2-normalized`,
    graph,
    // What a caller needs to make the inputs, readable with onnxruntime's session.handler metadata or Netron.
    metadata: {
      model_type: "use-lite",
      tokenizer:
        "USE SentencePiece over vocab.json (@tensorflow-models/universal-sentence-encoder Tokenizer.encode); ids as is, no special tokens",
      max_length: String(cfg.maxLength),
      padding: "right; attention_mask 1 for real ids, 0 after",
      output: "sentence_embedding: unit length; for a Matryoshka dim d slice [:d] then L2-normalize",
    },
  };
}

/** The folder name the usage snippet reads from; a test swaps it for a real folder and runs the snippet. */
export const USAGE_DIR = "./use-lite-finetuned";

/**
 * onnx/README.md: the graph's I/O and a Node snippet (onnxruntime-node + the USE package's Tokenizer over the
 * folder's vocab.json) that runs as written once USAGE_DIR names the folder (test/export/use-lite-onnx.test.ts
 * runs it in a plain `node` process). The project README's USE-lite section shows the same snippet.
 */
export function useLiteOnnxReadme(use: UseLite, fileName = "model.onnx"): string {
  const cfg = use.config;
  const [ids, mask] = USE_LITE_ONNX_INPUTS;
  return `# onnx/${fileName}: Universal Sentence Encoder lite

The whole encoder of this folder (written by ragtune): ids in, the sentence embedding out, with the same pooling,
tanh layer and L2 normalization as the Universal Sentence Encoder lite graph and ragtune's \`encode()\`. Run it
with onnxruntime-node or onnxruntime-web. It is not a transformers.js or sentence-transformers model.

| | name | dtype | shape |
|---|---|---|---|
| input | \`${ids}\` | int64 | [batch_size, sequence_length] |
| input | \`${mask}\` | int64 | [batch_size, sequence_length] |
| output | \`${USE_LITE_ONNX_OUTPUT}\` | float32 | [batch_size, ${cfg.hiddenSize}] |

- \`${ids}\`: \`Tokenizer.encode(text)\` of \`@tensorflow-models/universal-sentence-encoder\` (1.3.x) over this
  folder's \`vocab.json\`, as they come: no offset, no start or end token; an empty text has no ids. ragtune's
  \`UseSentencePieceTokenizer\` gives the same ids. Ids must lie in [0, ${cfg.vocabSize}).
- Padding on the right with any valid id (0); \`${mask}\` is 1 for a row's ids and 0 after them. A batch needs
  at least one column (an all-empty batch: [batch_size, 1] with mask 0). Padding does not change a row's embedding.
- Positions >= ${cfg.maxLength} are dropped inside the graph (USE's ClipToMaxLength): no need to truncate.
- The output has unit length (cosine similarity = dot product). For a Matryoshka dimension d, keep the first d
  values and L2-normalize them again.

\`\`\`js
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { Tokenizer } from "@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js";

const dir = "${USAGE_DIR}";
const tokenizer = new Tokenizer(JSON.parse(readFileSync(\`\${dir}/vocab.json\`, "utf8")));
const session = await ort.InferenceSession.create(\`\${dir}/onnx/${fileName}\`);

/** texts -> float32 [texts.length, ${cfg.hiddenSize}], unit-length rows. */
async function embed(texts) {
  const rows = texts.map((t) => tokenizer.encode(t));
  const seq = Math.max(1, ...rows.map((r) => r.length));
  const ${ids} = new BigInt64Array(texts.length * seq); // padding id 0
  const ${mask} = new BigInt64Array(texts.length * seq);
  rows.forEach((r, i) =>
    r.forEach((id, j) => {
      ${ids}[i * seq + j] = BigInt(id);
      ${mask}[i * seq + j] = 1n;
    }),
  );
  const dims = [texts.length, seq];
  const out = await session.run({
    ${ids}: new ort.Tensor("int64", ${ids}, dims),
    ${mask}: new ort.Tensor("int64", ${mask}, dims),
  });
  return out.${USE_LITE_ONNX_OUTPUT};
}

const e = await embed(["What was the total revenue in 2023?", "Revenue rose 12% to $4.1 billion."]);
console.log(e.dims); // [ 2, ${cfg.hiddenSize} ]
\`\`\`

In the browser: \`import * as ort from "onnxruntime-web"\`, \`import { loadTokenizer } from
"@tensorflow-models/universal-sentence-encoder"\`, then \`const tokenizer = await loadTokenizer(URL_OF_VOCAB_JSON)\`
and \`await ort.InferenceSession.create(URL_OF_MODEL_ONNX)\`; \`embed\` is the same. The package's tokenizer needs
its peer dependency \`@tensorflow/tfjs-core\`.
`;
}

/**
 * Writes `<dir>/onnx/model.onnx`: the USE-lite encoder with its pooling and normalization (see the header), and
 * `onnx/README.md` (useLiteOnnxReadme) beside it when the file is the default model.onnx.
 * Tokenization stays outside the graph: the folder's vocab.json (what `UseLite.savePretrained` writes) is the
 * tokenizer's vocabulary.
 */
export function exportUseLiteOnnx(
  use: UseLite,
  dir: string,
  options: UseLiteOnnxOptions & { fileName?: string } = {},
): OnnxExportResult {
  const onnxModel = useLiteToOnnx(use, options);
  const chunks = encodeModel(onnxModel);
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (bytes > PROTOBUF_LIMIT)
    throw new RangeError(
      `ONNX export: the model is ${bytes} bytes, over protobuf's 2 GiB limit (external data is not supported)`,
    );
  const fileName = options.fileName ?? "model.onnx";
  const onnxDir = join(dir, "onnx");
  ensureRealFolder(onnxDir);
  // Atomic with fsync, as the BERT export: a crash leaves the previous file or the new one.
  writeFileAtomic(join(onnxDir, fileName), (fd) => {
    for (const c of chunks) writeFully(fd, c);
  });
  // Beside the graph, what a caller needs to feed it (for the default file, the one train and export-onnx write).
  const readme = fileName === "model.onnx" ? [join("onnx", "README.md")] : [];
  for (const f of readme) writeFileAtomic(join(dir, f), useLiteOnnxReadme(use, fileName));
  const warnings = existsSync(join(dir, "vocab.json"))
    ? []
    : [`${join(dir, "vocab.json")} is missing: the tokenizer needs it`];
  return {
    files: [join("onnx", fileName), ...readme],
    bytes,
    opset: onnxModel.opsetImports[0]!.version as OnnxOpset,
    transformersJs: null,
    quantized: null, // no q8 graph for USE-lite (transformers.js does not load it)
    warnings,
  };
}
