// GPU-machine check against the reference oracle (sentence-transformers 6.x there): ragtune loads the tiny
// fixture model, saves it with its own writer, and encodes the fixture texts on the CPU and on CUDA; then
// bench/gpu/st_oracle.py loads the saved folder with sentence-transformers and compares ids and embeddings.
// Usage: node --import tsx bench/gpu/st-oracle.ts OUTDIR
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cudaAvailable } from "../../src/engine/index.ts";
import { SentenceTransformer } from "../../src/models/sentence-transformer.ts";

const out = process.argv[2] ?? "gpu-out";
mkdirSync(out, { recursive: true });
const fixture = "test/fixtures/st-tiny";
const { texts } = JSON.parse(readFileSync(join(fixture, "token-ids.json"), "utf8")) as { texts: string[] };
const saved = join(out, "st-tiny-saved");
const cpu = SentenceTransformer.fromDir(join(fixture, "model"));
cpu.save(saved);
const result: Record<string, unknown> = {
  texts,
  ids: texts.map((t) => cpu.tokenizer.tokenIds(t).slice(0, cpu.maxSeqLength)),
  cpu: Array.from(cpu.encode(texts).data),
  cpu_dim8: Array.from(cpu.encode(texts, { truncateDim: 8 }).data),
};
if (cudaAvailable()) {
  const gpu = SentenceTransformer.fromDir(saved, { device: "cuda" });
  result.cuda = Array.from(gpu.encode(texts).data);
}
writeFileSync(join(out, "ragtune-embeddings.json"), JSON.stringify(result));
console.log(
  `saved ${saved}; encoded ${texts.length} texts${cudaAvailable() ? " on cpu and cuda" : " on cpu"}`,
);
