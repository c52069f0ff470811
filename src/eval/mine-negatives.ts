// Hard-negative mining: for every (anchor, positive) pair, the passages of the corpus that the model ranks close to
// the anchor but that are not its positive. Exact top-k with the engine, in (query chunk × corpus chunk) blocks.
//
// ports sentence_transformers@85ec6455 util/hard_negatives.py#mine_hard_negatives (without the cross-encoder
// rescoring, FAISS, the embedding cache and multi-process encoding), with these deliberate differences:
//   - the margin threshold is the query's smallest positive score, as upstream's comment says; upstream's loop
//     advances by the previous query's positive count (`n_positives[q_idx - 1]`), which mixes up queries;
//   - a candidate is counted under the first filter that removes it (upstream counts already-removed ones again
//     under min_score), and the report also counts the positives and the rank window;
//   - output rows keep the input order and ids (upstream regroups them by unique query);
//   - scores are ordered score-descending then corpus-position-ascending, so the result does not depend on the
//     chunk sizes (only exact float ties at a chunk's k-th place are left to libtorch's top-k).
import { keep, noGrad, tensor, tidy, type Tensor } from "../engine/index.ts";
import type { PairRecord } from "../data/index.ts";
import { ProgressBar } from "../hub/progress.ts";
import { Pcg32 } from "../util/index.ts";

/** What mining needs of a model: texts in, pooled embeddings (N, D) out (SentenceTransformer fits). */
export interface MiningEmbedder {
  readonly embeddingDim: number;
  encodeTensor(
    texts: readonly string[],
    options: { batchSize: number; prompt?: string; progress?: boolean | string },
  ): Tensor;
}

export type SamplingStrategy = "top" | "random";
export const SAMPLING_STRATEGIES: readonly SamplingStrategy[] = ["top", "random"];

export interface MineNegativesOptions {
  /** The (anchor, positive) pairs; any negatives they carry are ignored. */
  pairs: readonly PairRecord[];
  /** Extra candidate passages, besides the positives of `pairs` (ST's `corpus`). */
  corpus?: readonly string[];
  /** Negatives per anchor (default 3). */
  numNegatives?: number;
  /** Skip the first `rangeMin` remaining candidates (0-based rank after positives and filters; default 0). */
  rangeMin?: number;
  /** Consider remaining candidates up to this rank (exclusive). Default: ST's rule, see {@link defaultRangeMax}. */
  rangeMax?: number;
  /** Drop candidates scoring above this. */
  maxScore?: number;
  /** Drop candidates scoring below this. */
  minScore?: number;
  /** Drop candidates with score + absoluteMargin > the anchor's positive score. */
  absoluteMargin?: number;
  /** Drop candidates with score > positive score × (1 − relativeMargin). */
  relativeMargin?: number;
  /** "top" (default): the best remaining candidates; "random": a seeded draw from the window. */
  samplingStrategy?: SamplingStrategy;
  /** Prepended to every anchor / every passage before encoding. */
  queryPrompt?: string;
  corpusPrompt?: string;
  /** Texts per forward pass (default 32). */
  batchSize?: number;
  /** Passages scored per block (default 16,384): a block holds queryChunkSize × corpusChunkSize float32 scores. */
  corpusChunkSize?: number;
  /** Anchors scored per block (default 1,024). */
  queryChunkSize?: number;
  /** Seed of the "random" sampling and of fillRandom (default 42). */
  seed?: number;
  /**
   * ragtune's extension (not in sentence-transformers): an anchor with fewer than numNegatives qualifying
   * candidates gets the rest drawn at random from the passages ranked below every retrieved candidate (easy
   * negatives, like in-batch ones) that pass the same positive, margin and score filters, so no pair is lost.
   */
  fillRandom?: boolean;
  /** Progress bars on stderr. */
  progress?: boolean;
}

/** One chosen negative: its passage and its score with the anchor. */
export interface MinedNegative {
  text: string;
  score: number;
  /** Drawn at random by fillRandom rather than mined from the rank window. */
  random: boolean;
}

/** One input pair with its positive score and the negatives chosen for its anchor (best first). */
export interface MinedPair {
  record: PairRecord;
  positiveScore: number;
  negatives: MinedNegative[];
}

/** How many retrieved candidates each step removed (each counted once, under the first step that removed it). */
export interface FilterCounts {
  /** Candidates that are a positive of the anchor (of any pair with the same anchor text). */
  positive: number;
  absoluteMargin: number;
  relativeMargin: number;
  maxScore: number;
  minScore: number;
  /** Remaining candidates ranked before rangeMin or from rangeMax on. */
  rankWindow: number;
  /** Candidates in the window that were not chosen (more than numNegatives qualified). */
  notChosen: number;
}

export interface MiningResult {
  /** One entry per input pair, in input order. */
  pairs: MinedPair[];
  /** Distinct anchor texts (pairs sharing one share their negatives, and each other's positives are excluded). */
  uniqueAnchors: number;
  /** Distinct passages scored (the de-duplicated extra corpus plus positives). */
  corpusSize: number;
  /** Candidates retrieved per anchor (rangeMax + the most positives any anchor has, capped at the corpus). */
  candidatesPerAnchor: number;
  /** The options as resolved (defaults filled in). */
  settings: ResolvedMiningSettings;
  filtered: FilterCounts;
  /** Negatives drawn at random by fillRandom. */
  filledRandom: number;
  /** Retrieved candidates in all (the sum of filtered counts plus the chosen negatives). */
  candidates: number;
  seconds: { encode: number; search: number };
}

export interface ResolvedMiningSettings {
  numNegatives: number;
  rangeMin: number;
  rangeMax: number;
  maxScore: number | null;
  minScore: number | null;
  absoluteMargin: number | null;
  relativeMargin: number | null;
  samplingStrategy: SamplingStrategy;
  queryPrompt: string;
  corpusPrompt: string;
  seed: number;
  fillRandom: boolean;
}

// ports sentence_transformers@85ec6455 util/hard_negatives.py#L263-L275 (range_max = None)
/**
 * sentence-transformers' default rank limit: rangeMin + numNegatives + the most positives any anchor has, or
 * 10 × numNegatives instead of numNegatives when a margin or maxScore will discard candidates.
 */
export function defaultRangeMax(
  o: Pick<
    MineNegativesOptions,
    "rangeMin" | "numNegatives" | "absoluteMargin" | "relativeMargin" | "maxScore"
  >,
  maxPositives: number,
): number {
  const rangeMin = o.rangeMin ?? 0;
  const numNegatives = o.numNegatives ?? 3;
  const filtering =
    o.absoluteMargin !== undefined || o.relativeMargin !== undefined || o.maxScore !== undefined;
  return rangeMin + (filtering ? numNegatives * 10 : numNegatives) + maxPositives;
}

function checkOptional(name: string, v: number | undefined): number | null {
  if (v === undefined) return null;
  if (!Number.isFinite(v)) throw new RangeError(`mine-negatives: ${name} must be a finite number, got ${v}`);
  return v;
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new RangeError(`mine-negatives: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** Checks the options and fills in the defaults. */
export function resolveMiningSettings(o: MineNegativesOptions, maxPositives: number): ResolvedMiningSettings {
  const numNegatives = checkCount("numNegatives", o.numNegatives ?? 3, 1);
  const rangeMin = checkCount("rangeMin", o.rangeMin ?? 0, 0);
  const rangeMax = checkCount("rangeMax", o.rangeMax ?? defaultRangeMax(o, maxPositives), 1);
  if (rangeMax <= rangeMin)
    throw new RangeError(`mine-negatives: rangeMax (${rangeMax}) must be larger than rangeMin (${rangeMin})`);
  const samplingStrategy = o.samplingStrategy ?? "top";
  if (!SAMPLING_STRATEGIES.includes(samplingStrategy))
    throw new RangeError(
      `mine-negatives: samplingStrategy must be "top" or "random", got "${samplingStrategy}"`,
    );
  const relativeMargin = checkOptional("relativeMargin", o.relativeMargin);
  if (relativeMargin !== null && (relativeMargin < 0 || relativeMargin >= 1))
    throw new RangeError(`mine-negatives: relativeMargin must be in [0, 1), got ${relativeMargin}`);
  const absoluteMargin = checkOptional("absoluteMargin", o.absoluteMargin);
  const maxScore = checkOptional("maxScore", o.maxScore);
  const minScore = checkOptional("minScore", o.minScore);
  if (maxScore !== null && minScore !== null && minScore > maxScore)
    throw new RangeError(`mine-negatives: minScore (${minScore}) is larger than maxScore (${maxScore})`);
  return {
    numNegatives,
    rangeMin,
    rangeMax,
    maxScore,
    minScore,
    absoluteMargin,
    relativeMargin,
    samplingStrategy,
    queryPrompt: o.queryPrompt ?? "",
    corpusPrompt: o.corpusPrompt ?? "",
    seed: checkCount("seed", o.seed ?? 42, 0),
    fillRandom: o.fillRandom ?? false,
  };
}

/** The de-duplicated search problem built from the pairs: texts to encode and who is whose positive. */
export interface MiningIndex {
  /** Distinct anchor texts, in order of first occurrence. */
  queries: string[];
  /** Distinct passages: the extra corpus first, then the positives, each text once. */
  corpus: string[];
  /** For each distinct anchor, the corpus positions of every positive given for it (ascending, no repeats). */
  positivesOf: number[][];
  /** For each pair, its anchor's position in `queries` and its positive's position in `corpus`. */
  queryOf: Int32Array;
  positiveOf: Int32Array;
}

// ports sentence_transformers@85ec6455 util/hard_negatives.py#L282-L300, L429-L446 (de-duplication)
/**
 * Texts are compared exactly: a passage identical to a positive IS that positive (one corpus entry), so it is
 * never a negative of that anchor, and duplicate passages cannot fill two negative slots. Pairs with the same
 * anchor text form one query whose positives are all of theirs.
 */
export function buildMiningIndex(
  pairs: readonly PairRecord[],
  extraCorpus: readonly string[] = [],
): MiningIndex {
  if (pairs.length === 0) throw new RangeError("mine-negatives: there are no pairs");
  const corpusPos = new Map<string, number>();
  const corpus: string[] = [];
  const addPassage = (text: string): number => {
    let at = corpusPos.get(text);
    if (at === undefined) {
      at = corpus.length;
      corpus.push(text);
      corpusPos.set(text, at);
    }
    return at;
  };
  for (const text of extraCorpus) addPassage(text);
  const queryPos = new Map<string, number>();
  const queries: string[] = [];
  const positives: Set<number>[] = [];
  const queryOf = new Int32Array(pairs.length);
  const positiveOf = new Int32Array(pairs.length);
  pairs.forEach((r, i) => {
    let q = queryPos.get(r.anchor);
    if (q === undefined) {
      q = queries.length;
      queries.push(r.anchor);
      queryPos.set(r.anchor, q);
      positives.push(new Set());
    }
    const p = addPassage(r.positive);
    positives[q]!.add(p);
    queryOf[i] = q;
    positiveOf[i] = p;
  });
  return {
    queries,
    corpus,
    positivesOf: positives.map((s) => [...s].sort((a, b) => a - b)),
    queryOf,
    positiveOf,
  };
}

/** The top candidates of every query: corpus positions and scores, row-major (queries × k), best first. */
export interface Candidates {
  k: number;
  index: Int32Array;
  score: Float32Array;
}

/** Extra candidates taken from libtorch's top-k per block, so that ties at the k-th place are seen (as the IR evaluator). */
const TIE_MARGIN = 32;

/** Orders candidates score-descending, then by corpus position (deterministic whatever the chunking). */
function better(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/**
 * Exact top-k by inner product of L2-normalized rows (= cosine), computed block by block: a
 * (queryChunk × corpusChunk) score block on the engine, its top-k there, then a merge with the running top-k per
 * query in JS. Peak memory beyond the embeddings: one float32 score block plus (queries × k) candidates.
 */
export function exactTopK(
  queryEmb: Tensor,
  corpusEmb: Tensor,
  k: number,
  o: { queryChunkSize?: number; corpusChunkSize?: number; onBlock?: (queries: number) => void } = {},
): Candidates {
  const nq = queryEmb.size(0);
  const nc = corpusEmb.size(0);
  if (k < 1 || k > nc) throw new RangeError(`top-k: k must be in 1..${nc}, got ${k}`);
  const qChunk = checkCount("queryChunkSize", o.queryChunkSize ?? 1024, 1);
  const cChunk = checkCount("corpusChunkSize", o.corpusChunkSize ?? 16_384, 1);
  const index = new Int32Array(nq * k).fill(-1);
  const score = new Float32Array(nq * k).fill(-Infinity);
  const mergedIx = new Int32Array(k);
  const mergedSc = new Float32Array(k);
  for (let qs = 0; qs < nq; qs += qChunk) {
    const qLen = Math.min(qChunk, nq - qs);
    for (let cs = 0; cs < nc; cs += cChunk) {
      const cLen = Math.min(cChunk, nc - cs);
      const take = Math.min(k + TIE_MARGIN, cLen);
      tidy(() => {
        const q = queryEmb.narrow(0, qs, qLen); // (q, D)
        const c = corpusEmb.narrow(0, cs, cLen); // (c, D)
        const block = q.matmul(c.mT); // (q, c)
        const [values, indices] = block.topk(take, 1, true, true); // (q, take)
        const v = values.float().toArray() as Float32Array;
        const ix = indices.toArray() as BigInt64Array;
        let all: Float32Array | undefined; // the block's scores, read only when a tie reaches the margin
        for (let qi = 0; qi < qLen; qi++) {
          // The block's candidates in the exact order; libtorch breaks ties arbitrarily, so when the k-th score
          // ties with the last one taken, every passage of the block scoring at least that much is taken.
          let found: Array<{ s: number; i: number }>;
          const kth = v[qi * take + Math.min(k, take) - 1]!;
          if (take < cLen && v[qi * take + take - 1] === kth) {
            all ??= block.float().toArray() as Float32Array; // (q * c)
            found = [];
            for (let j = 0; j < cLen; j++) {
              const sj = all[qi * cLen + j]!;
              if (sj >= kth) found.push({ s: sj, i: cs + j });
            }
          } else {
            found = Array.from({ length: take }, (_, j) => ({
              s: v[qi * take + j]!,
              i: cs + Number(ix[qi * take + j]!),
            }));
          }
          found.sort((x, y) => y.s - x.s || x.i - y.i);
          mergeInto(qs + qi, found);
        }
      });
      o.onBlock?.(qLen * (cLen / nc));
    }
  }
  return { k, index, score };

  /** Merges a query's sorted block candidates into its running top-k. */
  function mergeInto(query: number, found: ReadonlyArray<{ s: number; i: number }>): void {
    const row = query * k;
    let a = 0;
    let b = 0;
    for (let out = 0; out < k; out++) {
      const sa = score[row + a]!;
      const ia = index[row + a]!;
      const next = found[b];
      if (next !== undefined && (ia < 0 || better(next.s, next.i, sa, ia))) {
        mergedIx[out] = next.i;
        mergedSc[out] = next.s;
        b++;
      } else {
        mergedIx[out] = ia;
        mergedSc[out] = sa;
        a++;
      }
    }
    index.set(mergedIx, row);
    score.set(mergedSc, row);
  }
}

/** What {@link selectNegatives} returns: per query, the chosen corpus positions and scores (best first). */
export interface Selection {
  negatives: Array<{ index: number[]; score: number[]; random: boolean[] }>;
  filtered: FilterCounts;
  /** Negatives drawn by fillRandom. */
  filledRandom: number;
}

/** What fillRandom needs: the corpus size and the scores of some passages with one query. */
export interface RandomFill {
  corpusSize: number;
  scoreOf(query: number, passages: readonly number[]): Float32Array;
}

type FilterName = "absoluteMargin" | "relativeMargin" | "maxScore" | "minScore";

/** The first filter that removes a (non-positive) candidate, or null when it qualifies. */
function rejectedBy(score: number, positiveScore: number, s: ResolvedMiningSettings): FilterName | null {
  if (s.absoluteMargin !== null && score + s.absoluteMargin > positiveScore) return "absoluteMargin";
  if (s.relativeMargin !== null && score > positiveScore * (1 - s.relativeMargin)) return "relativeMargin";
  if (s.maxScore !== null && score > s.maxScore) return "maxScore";
  if (s.minScore !== null && score < s.minScore) return "minScore";
  return null;
}

/** Draw rounds of fillRandom per anchor; each scores up to 4 × the missing count of passages. */
const FILL_ROUNDS = 8;

/**
 * fillRandom for one query: distinct passages outside `excluded` (its retrieved candidates and positives),
 * drawn with `rng`, scored, and kept in draw order when no filter rejects them, until `needed` are found; when
 * FILL_ROUNDS of draws leave it short, a seeded draw among all the qualifying passages not tried yet.
 */
function drawRandomNegatives(
  query: number,
  needed: number,
  excluded: Set<number>,
  positiveScore: number,
  s: ResolvedMiningSettings,
  fill: RandomFill,
  rng: Pcg32,
): Array<{ index: number; score: number }> {
  const out: Array<{ index: number; score: number }> = [];
  const tried = new Set(excluded);
  for (let round = 0; round < FILL_ROUNDS && out.length < needed; round++) {
    const left = fill.corpusSize - tried.size;
    if (left <= 0) break;
    const want = Math.min(left, 4 * (needed - out.length));
    const draw: number[] = [];
    if (left <= 4 * want) {
      // Few passages left: a partial Fisher–Yates over all of them.
      const pool: number[] = [];
      for (let i = 0; i < fill.corpusSize; i++) if (!tried.has(i)) pool.push(i);
      for (let i = 0; i < want; i++) {
        const j = i + rng.nextBelow(pool.length - i);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
        draw.push(pool[i]!);
      }
    } else {
      while (draw.length < want) {
        const i = rng.nextBelow(fill.corpusSize);
        if (!tried.has(i)) {
          tried.add(i);
          draw.push(i);
        }
      }
    }
    for (const i of draw) tried.add(i);
    const scores = fill.scoreOf(query, draw);
    draw.forEach((index, j) => {
      const score = scores[j]!;
      if (out.length < needed && rejectedBy(score, positiveScore, s) === null) out.push({ index, score });
    });
  }
  if (out.length < needed && tried.size < fill.corpusSize) {
    // The draws kept missing: qualifying passages are rare for this anchor (e.g. an empty anchor whose positive
    // scores near 0, under a relative margin). Score every passage not tried yet and draw the rest from those
    // that pass the filters, so that a pair is left out only when no passage of the corpus qualifies.
    const pool: number[] = [];
    for (let i = 0; i < fill.corpusSize; i++) if (!tried.has(i)) pool.push(i);
    const scores = fill.scoreOf(query, pool);
    const ok = pool
      .map((index, j) => ({ index, score: scores[j]! }))
      .filter((c) => rejectedBy(c.score, positiveScore, s) === null);
    for (let i = 0; i < ok.length && out.length < needed; i++) {
      const j = i + rng.nextBelow(ok.length - i);
      [ok[i], ok[j]] = [ok[j]!, ok[i]!];
      out.push(ok[i]!);
    }
  }
  return out;
}

// ports sentence_transformers@85ec6455 util/hard_negatives.py#L473-L578 (masking, margins, scores, window,
// sampling)
/**
 * Chooses the negatives of every query from its retrieved candidates: drop its positives, then (in this order)
 * candidates within the absolute margin, within the relative margin, above maxScore, below minScore; rank what
 * remains, keep ranks [rangeMin, rangeMax), and take the first numNegatives ("top") or a seeded draw of them
 * ("random", re-sorted best first). The margin is measured against the query's smallest positive score.
 */
export function selectNegatives(
  candidates: Candidates,
  positivesOf: readonly (readonly number[])[],
  minPositiveScore: Float32Array,
  s: ResolvedMiningSettings,
  fill?: RandomFill,
): Selection {
  if (s.fillRandom && !fill) throw new Error("mine-negatives: fillRandom needs the corpus and its scores");
  const filtered: FilterCounts = {
    positive: 0,
    absoluteMargin: 0,
    relativeMargin: 0,
    maxScore: 0,
    minScore: 0,
    rankWindow: 0,
    notChosen: 0,
  };
  const rng = new Pcg32(s.seed);
  const negatives: Selection["negatives"] = [];
  let filledRandom = 0;
  const { k } = candidates;
  for (let q = 0; q < positivesOf.length; q++) {
    const positives = new Set(positivesOf[q]);
    const threshold = minPositiveScore[q]!;
    const remaining: Array<{ index: number; score: number }> = [];
    for (let j = 0; j < k; j++) {
      const index = candidates.index[q * k + j]!;
      const score = candidates.score[q * k + j]!;
      if (index < 0) continue;
      if (positives.has(index)) {
        filtered.positive++;
        continue;
      }
      const rejection = rejectedBy(score, threshold, s);
      if (rejection !== null) filtered[rejection]++;
      else remaining.push({ index, score });
    }
    const window = remaining.slice(s.rangeMin, s.rangeMax);
    filtered.rankWindow += remaining.length - window.length;
    let chosen = window;
    if (window.length > s.numNegatives) {
      if (s.samplingStrategy === "top") chosen = window.slice(0, s.numNegatives);
      else {
        // A partial Fisher–Yates draw of numNegatives window positions, then best first again.
        const pos = window.map((_, i) => i);
        for (let i = 0; i < s.numNegatives; i++) {
          const j = i + rng.nextBelow(pos.length - i);
          [pos[i], pos[j]] = [pos[j]!, pos[i]!];
        }
        chosen = pos
          .slice(0, s.numNegatives)
          .sort((a, b) => a - b)
          .map((i) => window[i]!);
      }
    }
    filtered.notChosen += window.length - chosen.length;
    let extra: Array<{ index: number; score: number }> = [];
    if (s.fillRandom && chosen.length < s.numNegatives) {
      const excluded = new Set(positives);
      for (let j = 0; j < k; j++) excluded.add(candidates.index[q * k + j]!);
      extra = drawRandomNegatives(q, s.numNegatives - chosen.length, excluded, threshold, s, fill!, rng);
      extra.sort((a, b) => b.score - a.score || a.index - b.index);
      filledRandom += extra.length;
    }
    const all = [...chosen, ...extra];
    negatives.push({
      index: all.map((c) => c.index),
      score: all.map((c) => c.score),
      random: all.map((_, i) => i >= chosen.length),
    });
  }
  return { negatives, filtered, filledRandom };
}

/** Encodes, searches and selects: the whole of `ragtune mine-negatives` except reading and writing files. */
export function mineHardNegatives(model: MiningEmbedder, o: MineNegativesOptions): MiningResult {
  const idx = buildMiningIndex(o.pairs, o.corpus ?? []);
  const maxPositives = Math.max(...idx.positivesOf.map((p) => p.length));
  const settings = resolveMiningSettings(o, maxPositives);
  const batchSize = checkCount("batchSize", o.batchSize ?? 32, 1);
  const progress = o.progress ?? false;
  const k = Math.min(settings.rangeMax + maxPositives, idx.corpus.length);

  const t0 = performance.now();
  const [corpusEmb, queryEmb] = noGrad(() =>
    tidy(() => {
      // ST encodes with normalize_embeddings=True, so every score is a cosine whatever the model's similarity.
      const c = model.encodeTensor(idx.corpus, {
        batchSize,
        prompt: settings.corpusPrompt,
        ...(progress ? { progress: "corpus" } : {}),
      }); // (C, D)
      const q = model.encodeTensor(idx.queries, {
        batchSize,
        prompt: settings.queryPrompt,
        ...(progress ? { progress: "anchors" } : {}),
      }); // (Q, D)
      return [keep(c.float().normalize(-1)), keep(q.float().normalize(-1))]; // (C, D), (Q, D)
    }),
  );
  const t1 = performance.now();
  try {
    // Positive scores of every pair, from the same normalized embeddings.
    const positiveScores = tidy(() => {
      const rows = (ix: Int32Array) =>
        tensor(
          BigInt64Array.from(ix, (v) => BigInt(v)),
          { device: queryEmb.device },
        );
      const a = queryEmb.indexSelect(0, rows(idx.queryOf)); // (P, D)
      const p = corpusEmb.indexSelect(0, rows(idx.positiveOf)); // (P, D)
      return a.mul(p).sum(-1).toArray() as Float32Array; // (P)
    });
    const minPositive = new Float32Array(idx.queries.length).fill(Infinity);
    idx.queryOf.forEach((q, i) => (minPositive[q] = Math.min(minPositive[q]!, positiveScores[i]!)));

    const bar = progress
      ? new ProgressBar({ total: idx.queries.length, label: "search", unit: "anchors" })
      : null;
    const candidates = exactTopK(queryEmb, corpusEmb, k, {
      ...(o.queryChunkSize !== undefined ? { queryChunkSize: o.queryChunkSize } : {}),
      ...(o.corpusChunkSize !== undefined ? { corpusChunkSize: o.corpusChunkSize } : {}),
      onBlock: (n) => bar?.update(n),
    });
    bar?.done();
    const fill: RandomFill = {
      corpusSize: idx.corpus.length,
      scoreOf: (query, passages) =>
        tidy(() => {
          const rows = tensor(
            BigInt64Array.from(passages, (v) => BigInt(v)),
            { device: corpusEmb.device },
          );
          const c = corpusEmb.indexSelect(0, rows); // (m, D)
          return c
            .matmul(queryEmb.narrow(0, query, 1).mT)
            .flatten()
            .toArray() as Float32Array; // (m)
        }),
    };
    const selection = selectNegatives(candidates, idx.positivesOf, minPositive, settings, fill);
    const t2 = performance.now();

    const pairs: MinedPair[] = o.pairs.map((record, i) => {
      const chosen = selection.negatives[idx.queryOf[i]!]!;
      return {
        record,
        positiveScore: positiveScores[i]!,
        negatives: chosen.index.map((c, j) => ({
          text: idx.corpus[c]!,
          score: chosen.score[j]!,
          random: chosen.random[j]!,
        })),
      };
    });
    return {
      pairs,
      uniqueAnchors: idx.queries.length,
      corpusSize: idx.corpus.length,
      candidatesPerAnchor: k,
      settings,
      filtered: selection.filtered,
      filledRandom: selection.filledRandom,
      candidates: idx.queries.length * k,
      seconds: { encode: (t1 - t0) / 1000, search: (t2 - t1) / 1000 },
    };
  } finally {
    queryEmb.dispose();
    corpusEmb.dispose();
  }
}
