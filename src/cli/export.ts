// `ragtune export-onnx`: adds onnx/model.onnx to a model folder so transformers.js (and ONNX Runtime) load it;
// for a USE-lite folder, the whole encoder (pooling and normalization included) for onnxruntime.
import { exportOnnx } from "../export/onnx.ts";
import { exportUseLiteOnnx, USE_LITE_ONNX_INPUTS, USE_LITE_ONNX_OUTPUT } from "../export/use-lite-onnx.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { required, UsageError, type Command } from "./args.ts";

export const exportOnnxCommand: Command = {
  name: "export-onnx",
  summary: "write onnx/model.onnx into a model folder (for transformers.js and ONNX Runtime)",
  usage: "ragtune export-onnx --model DIR [--opset 17|14]",
  options: {
    model: {
      type: "string",
      arg: "DIR",
      help: "a local model folder, BERT-family or USE-lite (the ONNX file is written into it)",
    },
    opset: { type: "string", arg: "N", help: "ONNX opset: 17 (LayerNormalization) or 14", default: "17" },
  },
  notes:
    "transformers.js: pipeline('feature-extraction', DIR) then extractor(texts, { pooling, normalize: true }) with the\n" +
    "pooling printed below; it reads config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx.\n" +
    'USE-lite (a folder with config.json architectures ["UseLite"]): the graph takes input_ids and attention_mask\n' +
    "(int64 [batch, seq], ids from the USE package's Tokenizer over the folder's vocab.json, right-padded) and\n" +
    "returns sentence_embedding (float32 [batch, 512], unit length): run it with onnxruntime-node or -web.",
  async run(values) {
    const dir = required(values, "model");
    const opset = Number(values.opset);
    if (opset !== 17 && opset !== 14)
      throw new UsageError(`--opset must be 17 or 14, got "${String(values.opset)}"`);
    const model = SentenceTransformer.fromDir(dir);
    try {
      const use = model.useLite;
      const r = use ? exportUseLiteOnnx(use, dir, { opset }) : exportOnnx(model, dir, { opset });
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stderr.write(
        `wrote ${r.files.join(", ")} in ${dir} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${r.opset})` +
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
