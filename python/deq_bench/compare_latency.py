"""Combines deq's and PyTorch's bert_latency JSON files into one Markdown table with ratios.

Ratio = PyTorch median / deq median (> 1: deq is faster). Refuses to compare shapes whose input-id
checksums differ (the two sides did not measure the same inputs).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("deq_json")
    ap.add_argument("torch_json")
    ap.add_argument("--out", help="Markdown file to write")
    ap.add_argument("--blas-note", default="", help="How the BLAS ran (e.g. the OpenBLAS core type), added to the header")
    a = ap.parse_args(argv)
    with open(a.deq_json, encoding="utf-8") as f:
        deq = json.load(f)
    with open(a.torch_json, encoding="utf-8") as f:
        torch = json.load(f)
    if deq["threads"] != torch["threads"]:
        sys.exit(f"thread counts differ: deq {deq['threads']}, torch {torch['threads']}")
    peers = {}
    for r in torch["results"]:
        peers.setdefault((r["batch"], r["length"]), {})[r["mode"]] = r
    blas = f", {a.blas_note}" if a.blas_note else ""
    lines = [f"Threads: {deq['threads']} (deq: deq::exec::threads + OpenBLAS{blas}; PyTorch {torch['torch_version']}: "
             "torch.set_num_threads). Median of the timed forward passes (p10–p90 in brackets), ms.", "",
             "| shape B×L | deq mode | deq ms | " + " | ".join(f"{m} ms | {m} / deq" for m in sorted({r['mode'] for r in torch['results']})) + " |",
             "|---|---|---|" + "---|---|" * len({r['mode'] for r in torch['results']})]
    ok = True
    for r in deq["results"]:
        key = (r["batch"], r["length"])
        row = f"| {key[0]}×{key[1]} | {r['mode']} | {r['median_ms']:.2f} [{r['p10_ms']:.2f}–{r['p90_ms']:.2f}] |"
        for m in sorted({x['mode'] for x in torch['results']}):
            p = peers.get(key, {}).get(m)
            if p is None:
                row += " – | – |"
                continue
            if p["ids_checksum"] != r["ids_checksum"]:
                sys.exit(f"shape {key}: input ids differ between deq and PyTorch (checksums {r['ids_checksum']} / {p['ids_checksum']})")
            ratio = p["median_ms"] / r["median_ms"]
            if r["mode"] == "dense" and ratio < 1.0:
                ok = False
            row += f" {p['median_ms']:.2f} [{p['p10_ms']:.2f}–{p['p90_ms']:.2f}] | {ratio:.2f} |"
        lines.append(row)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    if not ok:
        print("note: deq's dense path is slower than PyTorch on at least one shape", file=sys.stderr)


if __name__ == "__main__":
    main()
