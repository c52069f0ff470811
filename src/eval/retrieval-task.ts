// Builds the retrieval task of the recipe from pair records: queries = the anchors of the query files, corpus =
// the positives of the corpus files, relevance = same id (the recipe's rule), or same passage text.
import type { PairRecord } from "../data/index.ts";

export type RelevanceRule = "id" | "text";

export interface RetrievalTask {
  queries: Map<string, string>;
  corpus: Map<string, string>;
  relevantDocs: Map<string, Set<string>>;
  /** Queries left out, with the reason (empty anchor, no relevant document). */
  skipped: Array<{ id: string; reason: string }>;
}

/**
 * `relevance: "id"`: the relevant document of query i is document i (ids are shared between a pair's anchor and
 * positive), as in the recipe. `"text"`: additionally, every corpus document whose text equals the query's own
 * positive is relevant — the financial data has passages shared by several queries, which the id rule counts
 * as misses.
 */
export function buildRetrievalTask(
  queryRecords: readonly PairRecord[],
  corpusRecords: readonly PairRecord[],
  relevance: RelevanceRule = "id",
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
      skipped.push({ id, reason: "no relevant document in the corpus" });
      continue;
    }
    if (queries.has(id)) throw new Error(`query id "${id}" occurs twice`);
    queries.set(id, r.anchor);
    relevantDocs.set(id, rel);
  }
  return { queries, corpus, relevantDocs, skipped };
}
