// What corpus a result was scored on: its size and a fingerprint, recorded in every results file
// (eval --json, eval_results.json, baseline_results.json) so that `ragtune compare` can tell when two results
// are not comparable. nDCG@10 over 7,000 passages and over 3,000 are different measurements: a run trained on
// a smaller (mined) file scores against a smaller corpus and looks better than it is.
import { createHash } from "node:crypto";
import { isPlainObject } from "../util/index.ts";

export interface CorpusFingerprint {
  /** Documents in the corpus. */
  size: number;
  /** sha256 (hex) of the corpus texts, sorted: the same set of passages gives the same value. */
  sha256: string;
}

/**
 * The fingerprint of a corpus: sha256 over its texts in sorted order, each length-prefixed (so no two lists
 * hash alike by concatenation). Texts, not ids: ids may be made from content or given in a file, and the same
 * passages under another id scheme are the same corpus for retrieval; duplicate texts count as often as they occur.
 */
export function corpusFingerprint(texts: readonly string[]): CorpusFingerprint {
  const hash = createHash("sha256");
  for (const text of [...texts].sort()) hash.update(`${Buffer.byteLength(text)}:`).update(text);
  return { size: texts.length, sha256: hash.digest("hex") };
}

/** The `corpusFingerprint` of a results file's JSON; null when it has none (older files, flat metric maps). */
export function readCorpusFingerprint(json: unknown, file: string): CorpusFingerprint | null {
  if (!isPlainObject(json) || json.corpusFingerprint === undefined) return null;
  const c = json.corpusFingerprint;
  if (
    !isPlainObject(c) ||
    typeof c.size !== "number" ||
    !Number.isInteger(c.size) ||
    typeof c.sha256 !== "string" ||
    !/^[0-9a-f]{64}$/.test(c.sha256)
  )
    throw new Error(
      `${file}: corpusFingerprint: expected { size: integer, sha256: 64 hex digits }, got ${JSON.stringify(c)}`,
    );
  return { size: c.size, sha256: c.sha256 };
}

/** Why two results are not comparable (different corpora), or null when they were scored on the same one. */
export function corpusMismatch(
  a: { file: string; corpus: CorpusFingerprint },
  b: { file: string; corpus: CorpusFingerprint },
): string | null {
  if (a.corpus.size === b.corpus.size && a.corpus.sha256 === b.corpus.sha256) return null;
  const describe = (x: { file: string; corpus: CorpusFingerprint }) =>
    `${x.file}: ${x.corpus.size.toLocaleString("en-US")} documents (sha256 ${x.corpus.sha256.slice(0, 12)}…)`;
  return (
    `the two results were scored on different corpora (${describe(a)}; ${describe(b)}), so their metrics are ` +
    `not comparable: a smaller corpus has fewer distractors and scores higher. Evaluate both models with ` +
    `ragtune eval on the same --corpus files`
  );
}
