"""PyTorch reference of bench/engine.ts: the same matmuls and the same BERT encoder layer, timed the same way.

Run by `npm run bench:engine` (which passes its options); standalone:
    /usr/bin/python3 bench/reference/engine.py --threads 2
Prints one JSON object on stdout.
"""

import math
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in bench/reference
from common import base_parser, dtype_of, lcg_lengths, run_cases, setup  # noqa: E402

# The shapes of bench/engine.ts (MATMULS there): (id, a shape, b shape).
MATMULS = [
    ("matmul_4096x768x768", (4096, 768), (768, 768)),
    ("matmul_4096x768x3072", (4096, 768), (768, 3072)),
    ("bmm_384x128x64x128", (384, 128, 64), (384, 64, 128)),
]

FUSED_SDPA = hasattr(F, "scaled_dot_product_attention")


def attention(q, k, v, mask, p_drop, training):
    if FUSED_SDPA:
        # HF BertSdpaSelfAttention (torch >= 2.x).
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop if training else 0.0)
    # HF BertSelfAttention's eager path (torch 1.13); ragtune's 1.13 fallback computes the same math.
    scores = torch.matmul(q, k.transpose(-1, -2))
    scores = scores / math.sqrt(q.size(-1))
    scores = scores + mask
    probs = F.softmax(scores, dim=-1)
    probs = F.dropout(probs, p_drop, training)
    return torch.matmul(probs, v)


def bert_layer(p, x, mask, heads, p_drop, training):
    """transformers' BertLayer (self-attention, BertSelfOutput, BertIntermediate, BertOutput) in functional form."""
    b, l, h = x.shape
    dh = h // heads

    def split(t):
        return t.view(b, l, heads, dh).transpose(1, 2)

    q = split(F.linear(x, p["wq"], p["bq"]))
    k = split(F.linear(x, p["wk"], p["bk"]))
    v = split(F.linear(x, p["wv"], p["bv"]))
    ctx = attention(q, k, v, mask, p_drop, training).transpose(1, 2).reshape(b, l, h)
    a = F.dropout(F.linear(ctx, p["wo"], p["bo"]), p_drop, training)
    a = F.layer_norm(a + x, (h,), p["ln1w"], p["ln1b"], 1e-12)
    inter = F.gelu(F.linear(a, p["wi"], p["bi"]))
    o = F.dropout(F.linear(inter, p["wo2"], p["bo2"]), p_drop, training)
    return F.layer_norm(o + a, (h,), p["ln2w"], p["ln2b"], 1e-12)


def layer_inputs(args, device, dtype):
    """Same draws, same order as bench/engine.ts's layerInputs (one libtorch CPU generator on both sides)."""
    torch.manual_seed(args.seed)
    h, f = args.hidden, args.ffn

    def put(t, grad=True):
        return t.to(dtype).to(device).requires_grad_(grad)

    x = put(torch.randn(args.batch, args.seq, h))
    p = {}
    for name, shape in [("wq", (h, h)), ("wk", (h, h)), ("wv", (h, h)), ("wo", (h, h)), ("wi", (f, h)), ("wo2", (h, f))]:
        p[name] = put(torch.randn(*shape) * 0.02)
    for name, n in [("bq", h), ("bk", h), ("bv", h), ("bo", h), ("bi", f), ("bo2", h)]:
        p[name] = put(torch.randn(n) * 0.02)
    for ln in ("ln1", "ln2"):
        p[ln + "w"] = put(torch.randn(h) * 0.1 + 1)
        p[ln + "b"] = put(torch.randn(h) * 0.02)
    lengths = lcg_lengths(args.seed, args.batch, args.min_len, args.seq)
    keep = torch.arange(args.seq)[None, :] < torch.tensor(lengths)[:, None]
    mask = torch.zeros(args.batch, 1, 1, args.seq).masked_fill(~keep[:, None, None, :], torch.finfo(dtype).min)
    return x, p, mask.to(dtype).to(device), lengths


def main():
    ap = base_parser(__doc__)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--ffn", type=int, default=0, help="0 = 4 x hidden")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--min-len", type=int, default=20)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--cases", default="matmul,layer")
    args = ap.parse_args()
    if args.ffn <= 0:
        args.ffn = 4 * args.hidden
    setup(args)
    device = torch.device(args.device)
    dtype = dtype_of(args.dtype)
    groups = set(args.cases.split(","))
    cases = {}

    if "matmul" in groups:
        for case_id, sa, sb in MATMULS:
            a = torch.randn(*sa).to(dtype).to(device)
            b = torch.randn(*sb).to(dtype).to(device)
            cases[case_id] = lambda a=a, b=b: torch.matmul(a, b)

    final = {"lengths": None, "check": None}
    if "layer" in groups:
        x, p, mask, lengths = layer_inputs(args, device, dtype)
        params = list(p.values())
        final["lengths"] = lengths

        def fwd():
            with torch.no_grad():
                bert_layer(p, x, mask, args.heads, args.dropout, True)

        def fwd_bwd():
            out = bert_layer(p, x, mask, args.heads, args.dropout, True)
            out.sum().backward()
            for t in params:
                t.grad = None
            x.grad = None

        cases["layer_fwd"] = fwd
        cases["layer_fwd_bwd"] = fwd_bwd

    def closing():
        if "layer" in groups:
            # Checksums that bench/engine.ts compares with its own (same inputs => same numbers, up to rounding).
            out = bert_layer(p, x, mask, args.heads, 0.0, True)
            out.sum().backward()
            final["check"] = {
                "outAbsSum": out.detach().double().abs().sum().item(),
                "wqGradNorm": p["wq"].grad.double().norm().item(),
                "xGradNorm": x.grad.double().norm().item(),
            }
        return final

    run_cases(args, device, cases, closing)


if __name__ == "__main__":
    main()
