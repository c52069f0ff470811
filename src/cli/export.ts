// `ragtune export-onnx`: adds onnx/model.onnx to a model folder so transformers.js (and ONNX Runtime) load it.
import { exportOnnx } from "../export/onnx.ts";
import { SentenceTransformer } from "../models/sentence-transformer.ts";
import { required, UsageError, type Command } from "./args.ts";

export const exportOnnxCommand: Command = {
  name: "export-onnx",
  summary: "write onnx/model.onnx into a model folder (for transformers.js and ONNX Runtime)",
  usage: "ragtune export-onnx --model DIR [--opset 17|14]",
  options: {
    model: { type: "string", arg: "DIR", help: "a local model folder (the ONNX file is written into it)" },
    opset: { type: "string", arg: "N", help: "ONNX opset: 17 (LayerNormalization) or 14", default: "17" },
  },
  notes:
    "transformers.js: pipeline('feature-extraction', DIR) then extractor(texts, { pooling, normalize: true }) with the\n" +
    "pooling printed below; it reads config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx.",
  async run(values) {
    const dir = required(values, "model");
    const opset = Number(values.opset);
    if (opset !== 17 && opset !== 14)
      throw new UsageError(`--opset must be 17 or 14, got "${String(values.opset)}"`);
    const model = SentenceTransformer.fromDir(dir);
    const r = exportOnnx(model, dir, { opset });
    for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stderr.write(
      `wrote ${r.files.join(", ")} in ${dir} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${r.opset})` +
        (r.transformersJs
          ? `; transformers.js options: { pooling: "${r.transformersJs.pooling}", normalize: ${r.transformersJs.normalize} }`
          : "") +
        "\n",
    );
    model.dispose();
  },
};
