"""PyTorch reference of bench/encode.ts: the same random bge-shaped model, the same length-sorted batches of the
same token ids, timed the same way.

Run by `npm run bench:encode` (which creates the model folder and the token file and passes their paths);
standalone:
    /usr/bin/python3 bench/reference/encode.py --model DIR --batches FILE.json --threads 2
Prints one JSON object on stdout (or serves timing commands with --serve; see common.py).

This file also holds what bench/reference/train.py and eval.py share: the plain-PyTorch BERT (imported from
test/fixtures/bert/make_bert_golden.py, a port of transformers' BertModel whose parameter names are HF's, with
its self-attention switched to F.scaled_dot_product_attention where torch has it, as transformers' SDPA
attention), a safetensors reader, the collate step and the sentence-transformers head (CLS pooling, Normalize).
"""

import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

from common import base_parser, dtype_of, log, run_cases, setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "fixtures", "bert"))
_threads = torch.get_num_threads()
import make_bert_golden as golden  # noqa: E402  (sets 2 threads at import: put the count back)

torch.set_num_threads(_threads)

FUSED_SDPA = hasattr(F, "scaled_dot_product_attention")


def _sdpa_self_attention(self, hidden_states, attention_mask):
    # transformers' BertSdpaSelfAttention (torch >= 2.0): the same math as the eager port it replaces, in one
    # fused call with the additive (B, 1, 1, L) mask; attention dropout only in training.
    query_layer = self.transpose_for_scores(self.query(hidden_states))
    key_layer = self.transpose_for_scores(self.key(hidden_states))
    value_layer = self.transpose_for_scores(self.value(hidden_states))
    attn_output = F.scaled_dot_product_attention(
        query_layer,
        key_layer,
        value_layer,
        attn_mask=attention_mask,
        dropout_p=self.dropout.p if self.training else 0.0,
    )
    bsz, tgt_len = hidden_states.shape[:2]
    return attn_output.transpose(1, 2).reshape(bsz, tgt_len, self.all_head_size)


if FUSED_SDPA:
    golden.BertSelfAttention.forward = _sdpa_self_attention
# The weights are loaded from the file: skip the random init (it costs seconds at bge-base size).
golden.BertModel._init_weights = lambda self, module: None

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def read_safetensors(path):
    """name -> tensor (CPU) of a .safetensors file: 8-byte little-endian header length, JSON header, data."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = ST_DTYPES[entry["dtype"]]
        start, end = entry["data_offsets"]
        size = torch.empty((), dtype=dtype).element_size()
        t = torch.frombuffer(data, dtype=dtype, count=(end - start) // size, offset=base + start)
        out[name] = t.reshape(entry["shape"])
    return out


def load_bench_model(model_dir, device, dtype):
    """The BertModel of a folder ragtune saved (config.json + model.safetensors), on device in dtype."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    model = golden.BertModel(golden.Cfg(config))
    del model.pooler  # ragtune saves no pooler (sentence-transformers does not use it)
    state = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    # HF BertModel's pooler is saved by ragtune (for transformers) but not part of the encoder compared here.
    state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
    model.load_state_dict(state, strict=True)
    return model.to(device=device, dtype=dtype), config


def embed(model, ids, mask, types):
    """The sentence-transformers modules of the folder: BertModel -> Pooling (CLS) -> Normalize."""
    _, last_hidden_state = model(ids, mask, types)
    return F.normalize(last_hidden_state[:, 0], p=2, dim=1)


def collate(batch, device):
    """A TokenBatch of bench/models.ts -> (input_ids, attention_mask, token_type_ids) on device."""
    seq_len = batch["seqLen"]
    lengths = torch.tensor(batch["lengths"])
    ids = torch.tensor(batch["ids"], dtype=torch.long).view(-1, seq_len)
    mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
    types = torch.zeros_like(ids)
    return ids.to(device), mask.to(device), types.to(device)


def encode_batches(model, batches, inverse, device, prebuilt=None):
    """encodeTensor's loop: each sorted batch through the model, concatenated, put back in input order."""
    with torch.no_grad():
        blocks = []
        for i, b in enumerate(batches):
            features = prebuilt[i] if prebuilt is not None else collate(b, device)
            blocks.append(embed(model, *features).float())
        return torch.cat(blocks, 0).index_select(0, inverse)


def inverse_of(order, device):
    inv = [0] * len(order)
    for pos, orig in enumerate(order):
        inv[orig] = pos
    return torch.tensor(inv, dtype=torch.long, device=device)


def main():
    ap = base_parser(__doc__)
    ap.add_argument("--model", required=True, help="model folder written by ragtune")
    ap.add_argument("--batches", required=True, help="token file written by bench/encode.ts")
    ap.add_argument("--cases", default="encode,forward")
    args = ap.parse_args()
    setup(args)
    device = torch.device(args.device)
    dtype = dtype_of(args.dtype)
    model, _ = load_bench_model(args.model, device, dtype)
    model.eval()
    with open(args.batches) as f:
        data = json.load(f)
    batches = data["batches"]
    inverse = inverse_of(data["order"], device)
    log(f"[torch] {len(data['order'])} texts in {len(batches)} batches, attention: "
        f"{'F.scaled_dot_product_attention' if FUSED_SDPA else 'explicit softmax(QK^T/sqrt(d) + mask)V'}")
    prebuilt = [collate(b, device) for b in batches]
    wanted = args.cases.split(",")
    cases = {}
    if "encode" in wanted:
        cases["encode"] = lambda: encode_batches(model, batches, inverse, device)
    if "forward" in wanted:
        cases["forward"] = lambda: encode_batches(model, batches, inverse, device, prebuilt)

    def closing():
        emb = encode_batches(model, batches, inverse, device)
        rows = min(4, emb.shape[0])
        return {"check": {"rows": emb[:rows].double().cpu().tolist(), "absSum": emb.double().abs().sum().item()}}

    run_cases(args, device, cases, closing)


if __name__ == "__main__":
    main()
