// `ragtune export-onnx`: adds onnx/model.onnx (float32) and onnx/model_quantized.onnx (q8) to a model folder so
// transformers.js (and ONNX Runtime) load it; for a USE-lite folder, the whole encoder (pooling and normalization
// included) for onnxruntime.
import { exportOnnx, ONNX_QUANTIZE, type OnnxQuantize } from "../export/onnx.ts";
import { exportUseLiteOnnx, USE_LITE_ONNX_INPUTS, USE_LITE_ONNX_OUTPUT } from "../export/use-lite-onnx.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { required, UsageError, type Command } from "./args.ts";

export const exportOnnxCommand: Command = {
  name: "export-onnx",
  summary:
    "write onnx/model.onnx and onnx/model_quantized.onnx into a model folder (for transformers.js and ONNX Runtime)",
  usage: "ragtune export-onnx --model DIR [--opset 17|14] [--quantize q8|none]",
  options: {
    model: {
      type: "string",
      arg: "DIR",
      help: "a local model folder, BERT-family or USE-lite (the ONNX files are written into it)",
    },
    opset: { type: "string", arg: "N", help: "ONNX opset: 17 (LayerNormalization) or 14", default: "17" },
    quantize: {
      type: "string",
      arg: "q8|none",
      help:
        "q8 also writes onnx/model_quantized.onnx: int8 weights for MatMul (MatMulInteger, activations quantized\n" +
        "at run time) and uint8 embedding tables, per-tensor scales, as transformers.js' own quantize script /\n" +
        "onnxruntime quantize_dynamic make it; transformers.js loads it for dtype 'q8', its browser default.\n" +
        "none writes model.onnx only (and removes a model_quantized.onnx of an earlier export)",
      default: "q8",
    },
  },
  notes:
    "transformers.js (Node): pipeline('feature-extraction', './DIR') loads onnx/model.onnx (dtype fp32, Node's\n" +
    "default); { dtype: 'q8' } loads onnx/model_quantized.onnx (the browser's default). Pass a path that starts\n" +
    "with ./ or /: a bare folder name is taken for a hub id. Then extractor(texts, { pooling, normalize: true })\n" +
    "with the pooling printed below. It reads config.json, tokenizer.json and tokenizer_config.json too.\n" +
    'USE-lite (a folder with config.json architectures ["UseLite"]): the graph takes input_ids and attention_mask\n' +
    "(int64 [batch, seq], ids from the USE package's Tokenizer over the folder's vocab.json, right-padded) and\n" +
    "returns sentence_embedding (float32 [batch, 512], unit length): run it with onnxruntime-node or -web (no q8).",
  async run(values) {
    const dir = required(values, "model");
    const opset = Number(values.opset);
    if (opset !== 17 && opset !== 14)
      throw new UsageError(`--opset must be 17 or 14, got "${String(values.opset)}"`);
    const quantize = String(values.quantize) as OnnxQuantize;
    if (!ONNX_QUANTIZE.includes(quantize))
      throw new UsageError(
        `--quantize must be ${ONNX_QUANTIZE.join(" or ")}, got "${String(values.quantize)}"`,
      );
    const model = SentenceTransformer.fromDir(dir);
    try {
      const use = model.useLite;
      const r = use ? exportUseLiteOnnx(use, dir, { opset }) : exportOnnx(model, dir, { opset, quantize });
      const quantized = r.quantized;
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stderr.write(
        `wrote ${r.files[0]} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${r.opset})` +
          (quantized ? ` and ${quantized.file} (${(quantized.bytes / 1e6).toFixed(1)} MB, q8)` : "") +
          ` in ${dir}` +
          (r.transformersJs
            ? `; transformers.js options: { pooling: "${r.transformersJs.pooling}", normalize: ${r.transformersJs.normalize} }`
            : "") +
          (use
            ? `; onnxruntime: inputs ${USE_LITE_ONNX_INPUTS.join(", ")} (int64 [batch, seq]), output ${USE_LITE_ONNX_OUTPUT} (float32 [batch, ${use.embeddingDim}])`
            : "") +
          "\n",
      );
    } finally {
      model.dispose();
    }
  },
};
