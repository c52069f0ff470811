// Runs the Example of each loss's TSDoc, so the documentation cannot drift from the code. Each ```ts block
// is written to a temporary module (imports of ./src/ pointed at this checkout) and imported; a
// `console.log(…); // 0.000000` line must print what its comment says.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const SRC = fileURLToPath(new URL("../../src/losses/", import.meta.url));
const ROOT = pathToFileURL(fileURLToPath(new URL("../../", import.meta.url))).href;
const work = mkdtempSync(join(tmpdir(), "ragtune-loss-examples-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** The ```ts blocks of a source file's doc comments, without the leading " * ". */
function examples(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^ \* ```ts\n([\s\S]*?)^ \* ```$/gm)) {
    out.push((m[1] as string).replace(/^ \*( |$)/gm, ""));
  }
  return out;
}

describe("TSDoc examples of src/losses run", () => {
  const files = readdirSync(SRC).filter((f) => f.endsWith(".ts"));
  for (const file of files) {
    const blocks = examples(readFileSync(join(SRC, file), "utf8"));
    blocks.forEach((code, i) => {
      test(`${file} example ${i + 1}`, async () => {
        const path = join(work, `${file.replace(/\.ts$/, "")}-${i}.ts`);
        writeFileSync(path, code.replaceAll('"./src/', `"${ROOT}src/`));
        const printed: string[] = [];
        const log = console.log;
        console.log = (...args: unknown[]) => void printed.push(args.map(String).join(" "));
        try {
          await import(pathToFileURL(path).href);
        } finally {
          console.log = log;
        }
        const expected = [...code.matchAll(/console\.log\(.*\); \/\/ (-?\d+\.\d+)\b/g)].map((m) => m[1]);
        assert.ok(printed.length > 0, "the example prints nothing");
        assert.ok(
          expected.length > 0,
          "no `console.log(…); // <number>` line states what the example prints",
        );
        expected.forEach((want, k) => assert.equal(printed[k]?.split(" ")[0], want));
      });
    });
  }

  test("every loss file with a class has an example", () => {
    const withExample = files.filter((f) => examples(readFileSync(join(SRC, f), "utf8")).length > 0).sort();
    assert.deepEqual(withExample, [
      "CachedMultipleNegativesRankingLoss.ts",
      "MatryoshkaLoss.ts",
      "MultipleNegativesRankingLoss.ts",
      "gist-embed-loss.ts",
    ]);
  });
});
