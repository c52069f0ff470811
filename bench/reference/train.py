"""PyTorch reference of bench/train.ts: the recipe's training micro-batch in a plain-PyTorch loop with the same
random model and the same batches of the same token ids, timed the same way.

Run by `npm run bench:train` (which writes the model folder and the token file and passes their paths);
standalone:
    /usr/bin/python3 bench/reference/train.py --model DIR --data FILE.json --threads 2
Prints one JSON object on stdout (or serves timing commands with --serve; see common.py).

One micro-batch = what sentence-transformers' trainer does per batch: embed the anchors, embed the positives
(one model pass per column: BertModel -> CLS pooling -> Normalize), MatryoshkaLoss over
MultipleNegativesRankingLoss (scale 20, cosine), backward. Cases:
  step_random / step_grouped    a micro-batch + clip_grad_norm_(1.0) + AdamW step + zero_grad(set_to_none)
  micro_random / micro_grouped  a micro-batch only, loss scaled by 1/accumulation (gradients accumulate)
  optimizer                     clip_grad_norm_(1.0) + AdamW step on the accumulated gradients
The model is in train mode (dropout 0.1, as the recipe trains). On CUDA: bf16 autocast around the forward
passes and the loss (--autocast), TF32 on, fused AdamW (torch >= 2.0).
"""

import contextlib
import json

import torch
import torch.nn.functional as F

from common import base_parser, log, run_cases, setup
from encode import FUSED_SDPA, collate, embed, load_bench_model


# --- the loss: copies of test/fixtures/losses/make_loss_golden.py (sentence_transformers@85ec6455) -------------
def cos_sim(a, b):  # util/similarity.py#L29-45
    return torch.mm(F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1).transpose(0, 1))


def mnrl(embeddings, scale=20.0):  # losses/MultipleNegativesRankingLoss.py#L117-156
    anchors = embeddings[0]
    candidates = torch.cat(embeddings[1:], dim=0)
    range_labels = torch.arange(0, anchors.size(0), device=anchors.device)
    scores = cos_sim(anchors, candidates) * scale
    return F.cross_entropy(scores, range_labels)


def shrink(tensor, dim):  # losses/MatryoshkaLoss.py#L22-30
    return F.normalize(tensor[..., :dim], p=2, dim=-1)


def matryoshka(embeddings, inner, dims):  # losses/MatryoshkaLoss.py#L235-270 (weights 1, dims descending)
    cache = list(embeddings)
    loss = 0.0
    for dim in sorted(dims, reverse=True):
        cache = [shrink(e, dim) for e in cache]
        loss += inner(cache)
    return loss


def main():
    ap = base_parser(__doc__)
    ap.add_argument("--model", required=True, help="model folder written by ragtune")
    ap.add_argument("--data", required=True, help="token file written by bench/train.ts")
    ap.add_argument("--cases", default="step_random,step_grouped")
    ap.add_argument("--dims", default="384,256,128,64")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--accumulation", type=int, default=16, help="the micro cases scale the loss by 1/this")
    ap.add_argument("--autocast", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--eval-mode", action="store_true", help="no dropout")
    args = ap.parse_args()
    setup(args)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dims = [int(d) for d in args.dims.split(",")]
    model, _ = load_bench_model(args.model, device, torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = False
    kwargs = dict(lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    if on_cuda:
        try:
            opt = torch.optim.AdamW(params, fused=True, **kwargs)
            fused = True
        except (TypeError, RuntimeError, ValueError):
            opt = torch.optim.AdamW(params, **kwargs)
    else:
        opt = torch.optim.AdamW(params, **kwargs)

    with open(args.data) as f:
        data = json.load(f)

    def amp():
        if args.autocast:
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batch_loss(b):
        with amp():
            embeddings = [embed(model, *collate(b[col], device)) for col in ("anchors", "positives")]
            return matryoshka(embeddings, mnrl, dims)

    # Check before any update: the loss of one batch without dropout and without gradients.
    model.eval()
    with torch.no_grad():
        check_loss = batch_loss(data["check"]).item()
    model.train(not args.eval_mode)
    log(
        f"[torch] check loss {check_loss:.6f}; attention: "
        f"{'F.scaled_dot_product_attention' if FUSED_SDPA else 'explicit softmax(QK^T/sqrt(d) + mask)V'}; "
        f"AdamW fused: {fused}; autocast: {args.autocast}"
    )

    losses = {}
    cursors = {}

    def micro(case, kind, scale):
        i = cursors.get(case, 0)
        cursors[case] = i + 1
        batches = data[kind]
        loss = batch_loss(batches[i % len(batches)])
        (loss if scale == 1 else loss * scale).backward()
        losses.setdefault(case, []).append(loss.item())

    def optimizer_step():
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()

    def step_case(case, kind):
        def fn():
            micro(case, kind, 1)
            optimizer_step()
            opt.zero_grad(set_to_none=True)

        return fn

    def micro_case(case, kind):
        return lambda: micro(case, kind, 1.0 / args.accumulation)

    def group_case(case, kind):  # one optimizer step of the recipe: `accumulation` sequential micro-batches
        def fn():
            opt.zero_grad(set_to_none=True)  # the micro cases before it in a round leave gradients behind
            for _ in range(args.accumulation):
                micro(case, kind, 1.0 / args.accumulation)
            optimizer_step()
            opt.zero_grad(set_to_none=True)

        return fn

    all_cases = {
        "step_random": step_case("step_random", "random"),
        "step_grouped": step_case("step_grouped", "grouped"),
        "micro_random": micro_case("micro_random", "random"),
        "micro_grouped": micro_case("micro_grouped", "grouped"),
        "optimizer": optimizer_step,
        # ragtune's packed lines run on the random batches; their reference is PyTorch's padded step on the
        # same batches (PyTorch and sentence-transformers have no padding-free path), timed interleaved.
        "step_packed": step_case("step_packed", "random"),
        "micro_packed": micro_case("micro_packed", "random"),
        # ragtune's fused group (one packed forward + backward over the whole accumulation group) against the
        # sequential accumulation sentence-transformers does.
        "group_fused": group_case("group_fused", "random"),
    }
    cases = {name: all_cases[name] for name in args.cases.split(",")}

    def closing():
        return {"checkLoss": check_loss, "fusedAdamW": fused, "losses": losses}

    run_cases(args, device, cases, closing)


if __name__ == "__main__":
    main()
