"""The reference recipe (sentence-transformers blog "Fine-tune Embedding models for RAG") in
sentence-transformers, timed end to end: 4 epochs of MatryoshkaLoss(MultipleNegativesRankingLoss) over the
bundled financial pairs, batch 32 x accumulation 16, lr 2e-5 cosine with 10% warmup, fused AdamW, bf16 + TF32,
no-duplicates batches, evaluation (700 queries x 7,000 passages at every Matryoshka dim) and a checkpoint every
epoch, the best model by eval_dim_128_cosine_ndcg@10. The timing covers trainer.train() (evaluations and
checkpoints included), which is what `ragtune train --no-baseline` does.
Usage: python3 bench/gpu/st_recipe.py MODEL_DIR OUT_DIR [EPOCHS]"""
import json
import sys
import time

import torch
from datasets import Dataset
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.evaluation import InformationRetrievalEvaluator, SequentialEvaluator
from sentence_transformers.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
from sentence_transformers.training_args import BatchSamplers
from sentence_transformers.util import cos_sim

model_dir, out_dir = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 4


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


train_rows = read("data/financial/train.jsonl")
test_rows = read("data/financial/test.jsonl")
t_load = time.perf_counter()
model = SentenceTransformer(model_dir, device="cuda")
dims = [d for d in [768, 512, 256, 128, 64] if d <= model.get_sentence_embedding_dimension()]
corpus = {str(r["id"]): r["positive"] for r in train_rows + test_rows}
queries = {str(r["id"]): r["anchor"] for r in test_rows}
relevant = {str(r["id"]): {str(r["id"])} for r in test_rows}
evaluator = SequentialEvaluator(
    [
        InformationRetrievalEvaluator(
            queries=queries,
            corpus=corpus,
            relevant_docs=relevant,
            name=f"dim_{d}",
            truncate_dim=d,
            score_functions={"cosine": cos_sim},
        )
        for d in dims
    ]
)
train_dataset = Dataset.from_list([{"anchor": r["anchor"], "positive": r["positive"]} for r in train_rows])
loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=dims)
args = SentenceTransformerTrainingArguments(
    output_dir=out_dir,
    num_train_epochs=epochs,
    per_device_train_batch_size=32,
    gradient_accumulation_steps=16,
    per_device_eval_batch_size=16,
    warmup_ratio=0.1,
    learning_rate=2e-5,
    lr_scheduler_type="cosine",
    optim="adamw_torch_fused",
    tf32=True,
    bf16=True,
    batch_sampler=BatchSamplers.NO_DUPLICATES,
    eval_strategy="epoch",
    save_strategy="epoch",
    logging_steps=10,
    save_total_limit=3,
    load_best_model_at_end=True,
    metric_for_best_model="eval_dim_128_cosine_ndcg@10",
    report_to="none",
)
trainer = SentenceTransformerTrainer(
    model=model, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator
)
torch.cuda.synchronize()
t0 = time.perf_counter()
trainer.train()
torch.cuda.synchronize()
seconds = time.perf_counter() - t0
final = evaluator(model)
print(
    json.dumps(
        {
            "seconds": seconds,
            "epochs": epochs,
            "torch": torch.__version__,
            "ndcg@10": {d: final[f"dim_{d}_cosine_ndcg@10"] for d in dims},
        }
    )
)
