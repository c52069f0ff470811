// What `ragtune mine-negatives` writes: the mined rows in one of sentence-transformers' output formats (streamed
// into an atomically renamed JSON Lines file), and the report — anchors by number of negatives, positive vs
// negative score distributions, and what each filter removed.
import { pairToJson } from "../data/index.ts";
import { writeFileAtomic, writeFully } from "../util/index.ts";
import { formatFixedTable } from "./report.ts";
import type { FilterCounts, MiningResult, ResolvedMiningSettings } from "./mine-negatives.ts";

/**
 * - "n-tuple": {id, anchor, positive, negative_1 … negative_n} per pair; pairs whose anchor got fewer than n
 *   negatives are left out (as in sentence-transformers), since `train` needs the same columns in every row.
 * - "triplet": {anchor, positive, negative}, one row per chosen negative.
 * - "labeled-pair": {anchor, passage, label}: label 1 for each positive, 0 for each negative of the anchor. The
 *   text column is `passage`, not `positive`, so that `train` (which reads anchor/positive) refuses the file
 *   instead of learning the negatives as positives.
 */
export type MiningOutputFormat = "n-tuple" | "triplet" | "labeled-pair";
export const MINING_OUTPUT_FORMATS: readonly MiningOutputFormat[] = ["n-tuple", "triplet", "labeled-pair"];

/** Rounds a float32 score for output (float32 carries ~7 significant digits; more would be noise). */
const round = (x: number) => Number(x.toPrecision(7));

// ports sentence_transformers@85ec6455 util/hard_negatives.py#L580-L686 (output formats); scores as in its
// "n-tuple-scores" format: [positive, negative_1, …] under `score`.
/** The output rows, in input order; with `includeScores` each row also carries its anchor's scores. */
export function* minedRows(
  result: MiningResult,
  format: MiningOutputFormat,
  includeScores = false,
): Generator<Record<string, unknown>> {
  const n = result.settings.numNegatives;
  if (format === "n-tuple") {
    for (const p of result.pairs) {
      if (p.negatives.length < n) continue;
      const row = pairToJson({ ...p.record, negatives: p.negatives.map((x) => x.text) });
      if (includeScores) row.score = [p.positiveScore, ...p.negatives.map((x) => x.score)].map(round);
      yield row;
    }
  } else if (format === "triplet") {
    for (const p of result.pairs) {
      for (const neg of p.negatives) {
        const row: Record<string, unknown> = {
          anchor: p.record.anchor,
          positive: p.record.positive,
          negative: neg.text,
        };
        if (includeScores) row.score = [round(p.positiveScore), round(neg.score)];
        yield row;
      }
    }
  } else {
    // One block per distinct anchor, at its first pair: every positive given for it, then its negatives.
    const byAnchor = new Map<string, MiningResult["pairs"]>();
    for (const p of result.pairs) {
      const list = byAnchor.get(p.record.anchor);
      if (list) list.push(p);
      else byAnchor.set(p.record.anchor, [p]);
    }
    for (const [anchor, pairs] of byAnchor) {
      const seen = new Set<string>();
      for (const p of pairs) {
        if (seen.has(p.record.positive)) continue;
        seen.add(p.record.positive);
        yield {
          anchor,
          passage: p.record.positive,
          label: 1,
          ...(includeScores ? { score: round(p.positiveScore) } : {}),
        };
      }
      for (const neg of pairs[0]!.negatives) {
        yield { anchor, passage: neg.text, label: 0, ...(includeScores ? { score: round(neg.score) } : {}) };
      }
    }
  }
}

/**
 * Writes rows as JSON Lines, atomically (a temporary file renamed over `path`), through a 1 MiB buffer: rows
 * are produced one at a time and never held as one string. Returns the number of rows written.
 */
export function writeJsonlRows(path: string, rows: Iterable<Record<string, unknown>>): number {
  let count = 0;
  writeFileAtomic(path, (fd) => {
    const limit = 1 << 20;
    let parts: string[] = [];
    let size = 0;
    const flush = () => {
      if (parts.length > 0) writeFully(fd, Buffer.from(parts.join(""), "utf8"));
      parts = [];
      size = 0;
    };
    for (const row of rows) {
      const line = JSON.stringify(row) + "\n";
      parts.push(line);
      size += line.length;
      count++;
      if (size >= limit) flush();
    }
    flush();
  });
  return count;
}

/** count, mean, median, std (unbiased, as torch.std), min, quartiles (linear, as torch.quantile), max. */
export interface ScoreStats {
  count: number;
  mean: number;
  median: number;
  std: number;
  min: number;
  q25: number;
  q50: number;
  q75: number;
  max: number;
}

export function scoreStats(values: readonly number[]): ScoreStats {
  const n = values.length;
  if (n === 0)
    return { count: 0, mean: NaN, median: NaN, std: NaN, min: NaN, q25: NaN, q50: NaN, q75: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : NaN;
  const quantile = (q: number) => {
    const pos = q * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
  };
  return {
    count: n,
    mean,
    // torch.median returns the lower of the two middle values.
    median: sorted[Math.floor((n - 1) / 2)]!,
    std: Math.sqrt(variance),
    min: sorted[0]!,
    q25: quantile(0.25),
    q50: quantile(0.5),
    q75: quantile(0.75),
    max: sorted[n - 1]!,
  };
}

export interface MiningReport {
  settings: ResolvedMiningSettings;
  format: MiningOutputFormat;
  pairs: number;
  uniqueAnchors: number;
  corpusSize: number;
  candidatesPerAnchor: number;
  /** pairsByNegatives[i] = pairs whose anchor got exactly i mined negatives (i = 0 … numNegatives), before fillRandom. */
  pairsByNegatives: number[];
  /** The same per distinct anchor text. */
  anchorsByNegatives: number[];
  rowsWritten: number;
  /** Pairs left out of an n-tuple file (fewer than numNegatives negatives). */
  pairsDropped: number;
  scores: { positive: ScoreStats; negative: ScoreStats; difference: ScoreStats };
  candidates: number;
  filtered: FilterCounts;
  /** Negatives drawn at random by fillRandom (included in the negative scores), and the pairs that got some. */
  random: { negatives: number; pairs: number; meanScore: number };
  seconds: { encode: number; search: number };
}

/** Sums up a mining run; `rowsWritten` is what {@link writeJsonlRows} returned. */
export function buildMiningReport(
  result: MiningResult,
  format: MiningOutputFormat,
  rowsWritten: number,
): MiningReport {
  const n = result.settings.numNegatives;
  const pairsByNegatives = new Array<number>(n + 1).fill(0);
  const anchorsByNegatives = new Array<number>(n + 1).fill(0);
  const seenAnchor = new Set<string>();
  const positive: number[] = [];
  const negative: number[] = [];
  const difference: number[] = [];
  let pairsDropped = 0;
  const random = { negatives: 0, pairs: 0, meanScore: NaN };
  let randomSum = 0;
  for (const p of result.pairs) {
    const drawn = p.negatives.filter((x) => x.random);
    if (drawn.length > 0) {
      random.pairs++;
      random.negatives += drawn.length;
      randomSum += drawn.reduce((sum, x) => sum + x.score, 0);
    }
    const found = p.negatives.length;
    const mined = found - drawn.length;
    pairsByNegatives[mined]!++;
    if (!seenAnchor.has(p.record.anchor)) {
      seenAnchor.add(p.record.anchor);
      anchorsByNegatives[mined]!++;
    }
    // Like sentence-transformers, statistics cover what the output holds.
    const kept = format !== "n-tuple" || found === n;
    if (!kept) pairsDropped++;
    positive.push(p.positiveScore);
    if (!kept) continue;
    for (const neg of p.negatives) {
      negative.push(neg.score);
      difference.push(p.positiveScore - neg.score);
    }
  }
  return {
    settings: result.settings,
    format,
    pairs: result.pairs.length,
    uniqueAnchors: result.uniqueAnchors,
    corpusSize: result.corpusSize,
    candidatesPerAnchor: result.candidatesPerAnchor,
    pairsByNegatives,
    anchorsByNegatives,
    rowsWritten,
    pairsDropped,
    scores: {
      positive: scoreStats(positive),
      negative: scoreStats(negative),
      difference: scoreStats(difference),
    },
    candidates: result.candidates,
    filtered: result.filtered,
    random: { ...random, meanScore: random.negatives > 0 ? randomSum / random.negatives : NaN },
    seconds: result.seconds,
  };
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : "—");
const count = (x: number) => x.toLocaleString("en-US");

/** The report as text: sentence-transformers' score table, then the counts. */
export function formatMiningReport(r: MiningReport): string {
  const s = r.settings;
  const stat = (x: ScoreStats, key: keyof ScoreStats) =>
    key === "count" ? count(x.count) : x.count ? x[key].toFixed(4) : "—";
  const keys: Array<[keyof ScoreStats, string]> = [
    ["count", "Count"],
    ["mean", "Mean"],
    ["median", "Median"],
    ["std", "Std"],
    ["min", "Min"],
    ["q25", "25%"],
    ["q50", "50%"],
    ["q75", "75%"],
    ["max", "Max"],
  ];
  const table = formatFixedTable(
    ["Metric", "Positive", "Negative", "Difference"],
    keys.map(([key, label]) => [
      label,
      stat(r.scores.positive, key),
      stat(r.scores.negative, key),
      key === "count" ? "" : stat(r.scores.difference, key),
    ]),
  );
  const lines = [
    `${count(r.pairs)} pairs, ${count(r.uniqueAnchors)} distinct anchors, ${count(r.corpusSize)} distinct passages; ` +
      `${count(r.candidatesPerAnchor)} candidates retrieved per anchor (ranks ${s.rangeMin}–${s.rangeMax - 1} kept)`,
    "",
    table,
    "",
    "Candidates removed:",
  ];
  const f = r.filtered;
  const rows: Array<[string, number, string]> = [
    ["positives of the anchor", f.positive, ""],
    ["absolute margin", f.absoluteMargin, s.absoluteMargin === null ? "off" : String(s.absoluteMargin)],
    ["relative margin", f.relativeMargin, s.relativeMargin === null ? "off" : String(s.relativeMargin)],
    ["max score", f.maxScore, s.maxScore === null ? "off" : String(s.maxScore)],
    ["min score", f.minScore, s.minScore === null ? "off" : String(s.minScore)],
    ["outside the rank window", f.rankWindow, `[${s.rangeMin}, ${s.rangeMax})`],
    [`not chosen (${s.samplingStrategy})`, f.notChosen, `${s.numNegatives} per anchor`],
  ];
  for (const [label, n, setting] of rows) {
    lines.push(
      `  ${label.padEnd(26)} ${count(n).padStart(10)}  ${pct(n, r.candidates).padStart(7)}  ${setting}`,
    );
  }
  lines.push(
    "",
    `Pairs by number of negatives mined${r.random.negatives > 0 ? " (before --fill-random)" : ""}:`,
  );
  r.pairsByNegatives.forEach((n, i) => {
    lines.push(
      `  ${String(i).padStart(3)}: ${count(n).padStart(8)} pairs (${pct(n, r.pairs)}), ${count(r.anchorsByNegatives[i]!)} anchors`,
    );
  });
  if (r.random.negatives > 0) {
    lines.push(
      "",
      `${count(r.random.negatives)} negatives of ${count(r.random.pairs)} pairs were drawn at random (--fill-random; ` +
        `mean score ${r.random.meanScore.toFixed(4)}): easy negatives where too few hard ones qualified.`,
    );
  }
  if (r.pairsDropped > 0) {
    lines.push(
      "",
      `${count(r.pairsDropped)} pairs (${pct(r.pairsDropped, r.pairs)}) got fewer than ${s.numNegatives} negatives and are ` +
        `not in the ${r.format} file; ` +
        (s.fillRandom
          ? "even --fill-random found too few passages in the whole corpus that pass the filters for them (a " +
            "relative margin on an anchor whose positive scores near or below 0 rejects every passage): loosen " +
            "the margins, --max-score or --min-score, or ask for fewer --num-negatives."
          : "to keep them, raise --range-max, lower --range-min or loosen the margins and --max-score, ask for " +
            "fewer --num-negatives, or pass --fill-random."),
    );
  }
  lines.push(`${count(r.rowsWritten)} rows written (${r.format}).`);
  return lines.join("\n");
}
