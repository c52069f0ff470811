// Builds the retrieval task of the recipe from pair records: queries = the anchors of the query files, corpus =
// the positives of the corpus files, relevance = same id (the recipe's rule), or same passage text.
//
// Ids are only trusted when the files carry them (an `id` column). Pair files without one used to get row
// indexes as ids, so query i was scored against corpus row i of whichever file came first: a positional match
// across unrelated files. Without explicit ids every identity comes from content instead (`ids: "content"`):
// a document is its passage text (identical passages are one document, keyed by a hash of the text, so the
// order of the corpus files cannot matter), and a query's relevant document is the one holding its positive.
import { createHash } from "node:crypto";
import type { PairRecord } from "../data/index.ts";

export type RelevanceRule = "id" | "text";

/** Where ids come from: the records' own (explicit id columns) or their texts. */
export type IdSource = "explicit" | "content";

export interface RetrievalTask {
  queries: Map<string, string>;
  corpus: Map<string, string>;
  relevantDocs: Map<string, Set<string>>;
  /** Queries left out, with the reason (no relevant document in the corpus). */
  skipped: Array<{ id: string; reason: string }>;
  /** How ids were assigned. */
  ids: IdSource;
}

export interface RetrievalTaskOptions {
  /**
   * "explicit" (default): the records' ids are the files' own id column. "content": the files had no id column
   * (their ids are row indexes, meaningless across files), so documents are identified by their text.
   */
  ids?: IdSource;
}

export const NO_RELEVANT_DOCUMENT = "no relevant document in the corpus";

/** A document id derived from its text: stable across runs and file orders. */
function contentId(text: string): string {
  return "doc-" + createHash("sha256").update(text, "utf8").digest("hex").slice(0, 20);
}

/**
 * `relevance: "id"`: the relevant document of query i is document i (ids are shared between a pair's anchor and
 * positive), as in the recipe. `"text"`: additionally, every corpus document whose text equals the query's own
 * positive is relevant — the financial data has passages shared by several queries, which the id rule counts
 * as misses. With `ids: "content"` both rules are the text rule (there are no ids to share).
 *
 * A query without a relevant document is left out and listed in `skipped`, as sentence-transformers'
 * InformationRetrievalEvaluator leaves out queries absent from relevant_docs; when every query is left out
 * this throws (there would be nothing to measure).
 */
export function buildRetrievalTask(
  queryRecords: readonly PairRecord[],
  corpusRecords: readonly PairRecord[],
  relevance: RelevanceRule = "id",
  options: RetrievalTaskOptions = {},
): RetrievalTask {
  const ids = options.ids ?? "explicit";
  const task =
    ids === "content" ? byContent(queryRecords, corpusRecords) : byId(queryRecords, corpusRecords, relevance);
  if (task.queries.size === 0 && queryRecords.length > 0) {
    throw new Error(
      `none of the ${queryRecords.length} queries has a relevant document in the corpus ` +
        (ids === "content"
          ? "(no query's positive passage occurs in the corpus files): check that the corpus files hold the queries' passages"
          : "(no query id occurs among the corpus ids): check that the corpus files include the queries' own pairs"),
    );
  }
  return task;
}

function byId(
  queryRecords: readonly PairRecord[],
  corpusRecords: readonly PairRecord[],
  relevance: RelevanceRule,
): RetrievalTask {
  const corpus = new Map<string, string>();
  const idsByText = new Map<string, string[]>();
  for (const r of corpusRecords) {
    const id = String(r.id);
    if (corpus.has(id))
      throw new Error(`corpus id "${id}" occurs twice (ids must be unique across the corpus files)`);
    corpus.set(id, r.positive);
    const list = idsByText.get(r.positive);
    if (list) list.push(id);
    else idsByText.set(r.positive, [id]);
  }
  const queries = new Map<string, string>();
  const relevantDocs = new Map<string, Set<string>>();
  const skipped: RetrievalTask["skipped"] = [];
  for (const r of queryRecords) {
    const id = String(r.id);
    const rel = new Set<string>();
    if (corpus.has(id)) rel.add(id);
    if (relevance === "text") for (const cid of idsByText.get(r.positive) ?? []) rel.add(cid);
    if (rel.size === 0) {
      skipped.push({ id, reason: NO_RELEVANT_DOCUMENT });
      continue;
    }
    if (queries.has(id)) throw new Error(`query id "${id}" occurs twice`);
    queries.set(id, r.anchor);
    relevantDocs.set(id, rel);
  }
  return { queries, corpus, relevantDocs, skipped, ids: "explicit" };
}

function byContent(queryRecords: readonly PairRecord[], corpusRecords: readonly PairRecord[]): RetrievalTask {
  const byIdText = new Map<string, string>();
  for (const r of corpusRecords) {
    const id = contentId(r.positive);
    const other = byIdText.get(id);
    if (other !== undefined && other !== r.positive)
      throw new Error(`two different corpus passages hash to ${id}; give the files an id column`);
    byIdText.set(id, r.positive);
  }
  // Sorted by id: the corpus (and so any tie order) does not depend on the order of the corpus files.
  const corpus = new Map([...byIdText].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const queries = new Map<string, string>();
  const relevantDocs = new Map<string, Set<string>>();
  const skipped: RetrievalTask["skipped"] = [];
  queryRecords.forEach((r, i) => {
    // The query file's row index: it names the query in messages and never meets a corpus id.
    const id = `query-${i}`;
    const doc = contentId(r.positive);
    if (byIdText.get(doc) !== r.positive) {
      skipped.push({ id, reason: NO_RELEVANT_DOCUMENT });
      return;
    }
    queries.set(id, r.anchor);
    relevantDocs.set(id, new Set([doc]));
  });
  return { queries, corpus, relevantDocs, skipped, ids: "content" };
}

/**
 * The warning for skipped queries (undefined when none was): how many, and that they are excluded as
 * sentence-transformers does.
 */
export function skippedWarning(task: RetrievalTask, total: number): string | undefined {
  const n = task.skipped.length;
  if (n === 0) return undefined;
  const examples = task.skipped
    .slice(0, 5)
    .map((s) => s.id)
    .join(", ");
  return (
    `${n} of ${total} queries have no relevant document in the corpus (their passage is not in the corpus files) ` +
    `and are excluded, as sentence-transformers' InformationRetrievalEvaluator excludes them: ${examples}` +
    (n > 5 ? ", …" : "")
  );
}
