"""Loads the folder ragtune saved (bench/gpu/st-oracle.ts) with sentence-transformers and compares the token ids
and embeddings with ragtune's. Usage: python3 bench/gpu/st_oracle.py OUTDIR"""
import json
import sys

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

out = sys.argv[1] if len(sys.argv) > 1 else "gpu-out"
r = json.load(open(f"{out}/ragtune-embeddings.json"))
texts = r["texts"]
print(f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}")
for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
    model = SentenceTransformer(f"{out}/st-tiny-saved", device=device)
    print(f"[{device}] modules: {[type(m).__name__ for m in model]}, max_seq_length {model.max_seq_length}, "
          f"similarity {model.similarity_fn_name}")
    ids = [model.tokenizer(t, truncation=True, max_length=model.max_seq_length)["input_ids"] for t in texts]
    same_ids = ids == r["ids"]
    print(f"[{device}] token ids identical to ragtune's: {same_ids}")
    if not same_ids:
        for t, a, b in zip(texts, ids, r["ids"]):
            if a != b:
                print("  differs:", repr(t), a, b)
    emb = model.encode(texts, convert_to_numpy=True, batch_size=3)
    for name in ["cpu"] + (["cuda"] if "cuda" in r else []):
        ours = np.array(r[name], dtype=np.float32).reshape(emb.shape)
        print(f"[{device}] max |ST - ragtune({name})| = {np.abs(emb - ours).max():.3e}")
    t8 = SentenceTransformer(f"{out}/st-tiny-saved", device=device, truncate_dim=8)
    e8 = t8.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    ours8 = np.array(r["cpu_dim8"], dtype=np.float32).reshape(e8.shape)
    print(f"[{device}] truncate_dim=8 + normalize: max diff {np.abs(e8 - ours8).max():.3e}")
