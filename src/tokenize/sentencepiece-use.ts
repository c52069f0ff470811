// The SentencePiece tokenizer of Universal Sentence Encoder lite, over its `vocab.json` ([piece, score] pairs).
//
// This is a re-implementation of the `Tokenizer` class of @tensorflow-models/universal-sentence-encoder@1.3.3
// (tfjs-models, universal-sentence-encoder/src/tokenizer/index.ts and trie.ts), written to give the same ids
// for every input, its quirks included, because the USE lite weights were trained and are served with exactly
// those ids (test/models/use-lite.test.ts checks it against the package itself). It is not SentencePiece's own
// unigram Viterbi, and a maintained unigram implementation (e.g. @huggingface/tokenizers' Unigram) differs from
// it on unknown characters and on ties, so it cannot stand in. The behaviours to keep:
//
// - Input: NFKC, then (for a non-empty string) "▁" prepended and every ASCII space replaced by "▁". Nothing is
//   lowercased, nothing stripped, runs of spaces are kept (each "▁" is a piece).
// - Symbols are UTF-16 code units, not code points: the package splits with an ES5-compiled `for…of`, which walks
//   code units, so an astral character is two unknown symbols.
// - The first 6 vocabulary entries (unknown "�", <s>, </s>, 3 extra ids) are reserved: never matched.
// - Lattice: at each position every vocabulary piece that starts there is an edge with the piece's score; a
//   position with no piece at all gets one edge of length 1 to id 0 (unknown) with score 0.
// - Best path: positions left to right, edges by ascending start; an edge wins when the position's best is
//   still exactly 0 (the package's "unset" marker, which a path of unknown edges also has) or when its score is
//   `>=` the best so far (ties go to the later edge). Scores are log probabilities (< 0), so a score-0 unknown
//   edge beats any real piece where both exist.
// - Backtrack by the UTF-16 length of the vocabulary entry of the chosen id (for id 0 that is the length of "�",
//   i.e. 1, the length of an unknown edge), then merge runs of consecutive unknown ids into one.
// - The empty string has no tokens.
import { readJsonFile } from "../util/read-file.ts";

/**
 * One vocabulary entry as vocab.json stores it: the piece and its log probability. A few user-defined pieces
 * (":", "://", "▁:)", …) have a null score, which the package adds as 0 (`null + x === x` in JavaScript).
 */
export type UsePiece = readonly [piece: string, score: number | null];

/** Id of the unknown piece; every character outside the vocabulary becomes one (runs merged). */
export const USE_UNK_ID = 0;

/** The package's RESERVED_SYMBOLS_COUNT: unknown, <s>, </s> and three extra ids are never matched. */
export const USE_RESERVED_SYMBOLS = 6;

/** SentencePiece's word-boundary mark, U+2581 LOWER ONE EIGHTH BLOCK. */
const SEPARATOR = "\u2581";

/** A trie node over UTF-16 code units; `id` >= 0 where a vocabulary piece ends. */
interface TrieNode {
  readonly children: Map<string, TrieNode>;
  id: number;
  score: number;
}

const newNode = (): TrieNode => ({ children: new Map(), id: -1, score: 0 });

/** An edge of the lattice: `length` code units from its start to `id`. */
interface Edge {
  readonly length: number;
  readonly id: number;
  readonly score: number;
}

export class UseSentencePieceTokenizer {
  readonly #root = newNode();
  /** UTF-16 length of each vocabulary entry, the backtracking step. */
  readonly #lengths: Int32Array;

  constructor(readonly vocabulary: readonly UsePiece[]) {
    if (vocabulary.length <= USE_RESERVED_SYMBOLS)
      throw new RangeError(`USE tokenizer: vocabulary has only ${vocabulary.length} entries`);
    this.#lengths = Int32Array.from(vocabulary, ([piece]) => piece.length);
    for (let id = USE_RESERVED_SYMBOLS; id < vocabulary.length; id++) {
      const [piece, score] = vocabulary[id]!;
      if (piece.length === 0) continue; // the package's Trie.insert never marks an empty piece
      let node = this.#root;
      for (let i = 0; i < piece.length; i++) {
        const unit = piece[i]!;
        let child = node.children.get(unit);
        if (child === undefined) {
          child = newNode();
          node.children.set(unit, child);
        }
        node = child;
      }
      // A duplicate piece takes the later id and score, as the package's insert overwrites.
      node.id = id;
      node.score = score ?? 0;
    }
  }

  /** Reads a vocab.json file (an array of [piece, score]). */
  static fromFile(path: string): UseSentencePieceTokenizer {
    const json = readJsonFile(path, "tokenizer"); // regular file, bounded, errors never quote it
    if (!Array.isArray(json) || !json.every(isPiece))
      throw new TypeError(`${path}: expected a JSON array of [piece, score] pairs`);
    return new UseSentencePieceTokenizer(json as UsePiece[]);
  }

  get vocabSize(): number {
    return this.vocabulary.length;
  }

  /** The normalized symbol string the lattice is built over. */
  static preprocess(text: string): string {
    const normalized = text.normalize("NFKC");
    return normalized.length > 0 ? SEPARATOR + normalized.replaceAll(" ", SEPARATOR) : normalized;
  }

  /** Every piece starting at `start`, shortest first; an unknown edge when there is none. */
  #edgesAt(s: string, start: number): Edge[] {
    const out: Edge[] = [];
    let node = this.#root.children.get(s[start]!);
    for (let i = start; node !== undefined;) {
      if (node.id >= 0) out.push({ length: i - start + 1, id: node.id, score: node.score });
      i++;
      if (i >= s.length) break;
      node = node.children.get(s[i]!);
    }
    if (out.length === 0) out.push({ length: 1, id: USE_UNK_ID, score: 0 });
    return out;
  }

  /** Token ids of one text (no special tokens, no truncation). */
  encode(text: string): number[] {
    const s = UseSentencePieceTokenizer.preprocess(text);
    const n = s.length;
    // Edges grouped by end position. The package keys them by start in an object, so it visits them by
    // ascending start; pushing starts in ascending order keeps that order.
    const ending: { start: number; edge: Edge }[][] = Array.from({ length: n + 1 }, () => []);
    for (let i = 0; i < n; i++)
      for (const edge of this.#edgesAt(s, i)) ending[i + edge.length]!.push({ start: i, edge });
    const best = new Float64Array(n + 1);
    const words = new Int32Array(n + 1);
    for (let end = 1; end <= n; end++) {
      for (const { start, edge } of ending[end]!) {
        const score = edge.score + best[start]!;
        if (best[end] === 0 || score >= best[end]!) {
          best[end] = score;
          words[end] = edge.id;
        }
      }
    }
    const reversed: number[] = [];
    for (let pos = n; pos > 0; pos -= this.#lengths[words[pos]!]!) reversed.push(words[pos]!);
    const ids: number[] = [];
    let previousUnk = false;
    for (const id of reversed) {
      if (!(previousUnk && id === USE_UNK_ID)) ids.push(id);
      previousUnk = id === USE_UNK_ID;
    }
    return ids.reverse();
  }

  /** The pieces of the given ids (for inspection and tests). */
  pieces(ids: readonly number[]): string[] {
    return ids.map((id) => this.vocabulary[id]?.[0] ?? "");
  }
}

function isPiece(x: unknown): boolean {
  return Array.isArray(x) && typeof x[0] === "string" && (typeof x[1] === "number" || x[1] === null);
}
