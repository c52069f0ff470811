"""PyTorch reference of bench/eval.ts: the recipe's information-retrieval evaluation at every Matryoshka dim with
the same random model and the same length-sorted batches of the same token ids, timed the same way.

Run by `npm run bench:eval` (which writes the model folder and the token file and passes their paths);
standalone:
    /usr/bin/python3 bench/reference/eval.py --model DIR --data FILE.json --threads 2
Prints one JSON object on stdout (or serves timing commands with --serve; see common.py).

Cases:
  evaluate          encode queries and corpus once, then score every dim by slicing + re-normalizing (ragtune's
                    way, which sentence-transformers' per-dim evaluators do not take)
  score             only the scoring of every dim, on embeddings computed before
  evaluate_per_dim  sentence-transformers' way: for each dim, encode queries and corpus again (truncate_dim),
                    then score that dim

Scoring and metrics copy sentence-transformers' InformationRetrievalEvaluator (compute_metrices /
compute_metrics): cos_sim per corpus chunk, torch.topk(sorted=False), a heap per query, then accuracy@k,
precision@k, recall@k, MRR@10, nDCG@10, MAP@100 in Python.
"""

import heapq
import json
import math

import torch
import torch.nn.functional as F

from common import base_parser, dtype_of, log, run_cases, setup
from encode import FUSED_SDPA, encode_batches, inverse_of, load_bench_model

ACCURACY_AT_K = [1, 3, 5, 10]
PRECISION_RECALL_AT_K = [1, 3, 5, 10]
MRR_AT_K = [10]
NDCG_AT_K = [10]
MAP_AT_K = [100]
MAX_K = max(ACCURACY_AT_K + PRECISION_RECALL_AT_K + MRR_AT_K + NDCG_AT_K + MAP_AT_K)


def top_k(query_emb, corpus_emb, dim, chunk_size):
    """Per query, the MAX_K best (score, corpus index) pairs, best first (compute_metrices)."""
    q = F.normalize(query_emb[:, :dim], p=2, dim=1)
    n_corpus = corpus_emb.shape[0]
    k = min(MAX_K, n_corpus)
    heaps = [[] for _ in range(q.shape[0])]
    for start in range(0, n_corpus, chunk_size):
        c = F.normalize(corpus_emb[start : start + chunk_size, :dim], p=2, dim=1)
        scores = q @ c.T
        values, indices = torch.topk(scores, min(k, c.shape[0]), dim=1, largest=True, sorted=False)
        values = values.cpu().tolist()
        indices = indices.cpu().tolist()
        for qi in range(len(heaps)):
            heap = heaps[qi]
            for s, ci in zip(values[qi], indices[qi]):
                if len(heap) < k:
                    heapq.heappush(heap, (s, start + ci))
                else:
                    heapq.heappushpop(heap, (s, start + ci))
    return [sorted(h, key=lambda x: x[0], reverse=True) for h in heaps]


def dcg_at_k(relevances, k):
    return sum(r / math.log2(i + 2) for i, r in enumerate(relevances[:k]))


def ir_metrics(tops, relevant):
    """compute_metrics: the means over queries of sentence-transformers' metrics."""
    n = len(tops)
    acc = {k: 0.0 for k in ACCURACY_AT_K}
    prec = {k: 0.0 for k in PRECISION_RECALL_AT_K}
    rec = {k: 0.0 for k in PRECISION_RECALL_AT_K}
    mrr = {k: 0.0 for k in MRR_AT_K}
    ndcg = {k: 0.0 for k in NDCG_AT_K}
    ap = {k: 0.0 for k in MAP_AT_K}
    for top, rel in zip(tops, relevant):
        hits = [1 if cid in rel else 0 for _, cid in top]
        for k in ACCURACY_AT_K:
            acc[k] += 1.0 if any(hits[:k]) else 0.0
        for k in PRECISION_RECALL_AT_K:
            correct = sum(hits[:k])
            prec[k] += correct / k
            rec[k] += correct / len(rel)
        for k in MRR_AT_K:
            for rank, h in enumerate(hits[:k]):
                if h:
                    mrr[k] += 1.0 / (rank + 1)
                    break
        for k in NDCG_AT_K:
            ndcg[k] += dcg_at_k(hits, k) / dcg_at_k([1] * len(rel), k)
        for k in MAP_AT_K:
            correct, total = 0, 0.0
            for rank, h in enumerate(hits[:k]):
                if h:
                    correct += 1
                    total += correct / (rank + 1)
            ap[k] += total / min(k, len(rel))
    out = {}
    out.update({f"accuracy@{k}": v / n for k, v in acc.items()})
    out.update({f"precision@{k}": v / n for k, v in prec.items()})
    out.update({f"recall@{k}": v / n for k, v in rec.items()})
    out.update({f"mrr@{k}": v / n for k, v in mrr.items()})
    out.update({f"ndcg@{k}": v / n for k, v in ndcg.items()})
    out.update({f"map@{k}": v / n for k, v in ap.items()})
    return out


def main():
    ap = base_parser(__doc__)
    ap.add_argument("--model", required=True, help="model folder written by ragtune")
    ap.add_argument("--data", required=True, help="token file written by bench/eval.ts")
    ap.add_argument("--cases", default="evaluate,score")
    ap.add_argument("--chunk", type=int, default=50000, help="corpus chunk size (sentence-transformers' default)")
    args = ap.parse_args()
    setup(args)
    device = torch.device(args.device)
    model, _ = load_bench_model(args.model, device, dtype_of(args.dtype))
    model.eval()
    with open(args.data) as f:
        data = json.load(f)
    dims = data["dims"]
    relevant = [set(r) for r in data["relevant"]]
    q_batches, c_batches = data["queries"]["batches"], data["corpus"]["batches"]
    q_inv = inverse_of(data["queries"]["order"], device)
    c_inv = inverse_of(data["corpus"]["order"], device)
    log(
        f"[torch] {len(relevant)} queries, {len(data['corpus']['order'])} passages, dims {dims}; attention: "
        f"{'F.scaled_dot_product_attention' if FUSED_SDPA else 'explicit softmax(QK^T/sqrt(d) + mask)V'}"
    )
    cache = {}

    def encode_all():
        q = encode_batches(model, q_batches, q_inv, device)
        c = encode_batches(model, c_batches, c_inv, device)
        cache["emb"] = (q, c)
        return q, c

    def score(q, c, only=None):
        return {d: ir_metrics(top_k(q, c, d, args.chunk), relevant) for d in (only or dims)}

    def evaluate():
        q, c = encode_all()
        return score(q, c)

    def score_cached():
        if "emb" not in cache:
            encode_all()
        return score(*cache["emb"])

    def evaluate_per_dim():
        out = {}
        for d in dims:
            q, c = encode_all()
            out.update(score(q, c, [d]))
        return out

    # evaluate_padded: the same PyTorch evaluation, the reference of ragtune's padded (--packing off) line.
    all_cases = {
        "evaluate": evaluate,
        "evaluate_padded": evaluate,
        "score": score_cached,
        "evaluate_per_dim": evaluate_per_dim,
    }
    cases = {name: all_cases[name] for name in args.cases.split(",")}

    def closing():
        metrics = score_cached() if "emb" in cache else evaluate()
        return {"metrics": {str(d): m for d, m in metrics.items()}}

    run_cases(args, device, cases, closing)


if __name__ == "__main__":
    main()
