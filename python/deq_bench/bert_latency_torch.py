"""End-to-end latency of transformers' BertModel on the inputs deq's ``bert_latency`` benchmark uses.

Inputs: the first B question/context pairs of SQuAD v1.1 dev, tokenized as a pair with
``truncation="only_second"``, ``padding="max_length"``, ``max_length=L`` (the same ids as the C++
side; both print a checksum of the ids). Per shape and attention implementation ("sdpa": PyTorch's
scaled_dot_product_attention, transformers' default; "eager": matmul + softmax): ``--warmup`` untimed
forward passes, then ``--repeats`` timed ones under ``torch.inference_mode()``; median, 10th and 90th
percentile of one forward pass. Output: JSON on stdout (and ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def percentile(values, p):
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def checksum(ids):
    c = 0
    for row in ids:
        for i in row:
            c = (c * 1000003 + int(i)) % (1 << 64)
    return str(c)


def read_pairs(path, n):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for article in doc["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append((qa["question"], para["context"]))
                if len(out) == n:
                    return out
    raise ValueError(f"{path}: fewer than {n} questions")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Hugging Face BERT folder")
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
    ap.add_argument("--shapes", default="1x128,8x128,1x384")
    ap.add_argument("--implementations", default="sdpa,eager")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args(argv)

    import torch
    from transformers import AutoTokenizer, BertModel

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    shapes = [tuple(int(x) for x in s.split("x")) for s in a.shapes.split(",")]
    pairs = read_pairs(os.path.join(a.data_dir, "squad", "dev-v1.1.json"), max(64, max(b for b, _ in shapes)))
    results = []
    for impl in a.implementations.split(","):
        model = BertModel.from_pretrained(a.model, attn_implementation=impl, add_pooling_layer=False).eval()
        for batch, length in shapes:
            enc = tok([q for q, _ in pairs[:batch]], [c for _, c in pairs[:batch]], truncation="only_second",
                      max_length=length, padding="max_length", return_tensors="pt")
            if enc["input_ids"].shape != (batch, length):
                raise ValueError(f"tokenizer gave shape {tuple(enc['input_ids'].shape)} for {batch}x{length}")
            with torch.inference_mode():
                for _ in range(a.warmup):
                    model(**enc)
                ms = []
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    model(**enc)
                    ms.append((time.perf_counter() - t0) * 1e3)
            row = {"batch": batch, "length": length, "mode": f"torch-{impl}", "median_ms": statistics.median(ms),
                   "p10_ms": percentile(ms, 0.1), "p90_ms": percentile(ms, 0.9), "repeats": a.repeats,
                   "ids_checksum": checksum(enc["input_ids"].tolist())}
            print(f"torch {batch}x{length} {impl}: median {row['median_ms']:.2f} ms", file=sys.stderr)
            results.append(row)
    doc = {"implementation": "pytorch", "torch_version": torch.__version__, "threads": a.threads,
           "model": a.model, "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
