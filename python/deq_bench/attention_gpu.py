"""GPU attention benchmark: deq (dense, Sanger, DEQ, block-sparse, predictor) side by side with PyTorch
SDPA (flash and efficient back ends) and FlexAttention fed deq's own predicted block mask, on the same
inputs, on FlashAttention's benchmark shapes (hidden 2048, heads = 2048 / d, batch = 16k / L).

For every (dtype, d, L) the script writes q, k, v to a safetensors file, runs deq's CUDA benchmark on it
(benchmarks/attention_cuda.cu, --inputs: deq's times, densities, outputs and the Sanger mask's tile
occupancy), then times PyTorch on the GPU with CUDA events (medians of --repeats after warm-ups) and
computes every output's accuracy against dense FP32 attention (cosine, max abs error). It writes
results.json, results.md (the table and each target met or missed) and results.png under --out.

    python3 python/deq_bench/attention_gpu.py --deq-binary build/gpu/benchmarks/attention_cuda --out build/attention_gpu

--dry-run checks the script on a machine without a GPU: one tiny shape, the inputs written, deq's binary
asked for its plan (--dry-run), the FP32 reference and the table built from what ran on the CPU; no time
is measured and no target is judged.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch


def make_qkv(b, h, length, d, dtype, seed):
    """Rows with a shared direction per head (peaked attention, as in trained models) plus noise."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(3):
        direction = torch.randn(1, h, 1, d, generator=g)
        out.append((0.8 * direction + torch.randn(b, h, length, d, generator=g)).to(dtype))
    return out


def median_cuda_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def accuracy(out, ref):
    o, r = out.double().flatten(), ref.double().flatten()
    cos = float(torch.dot(o, r) / (o.norm() * r.norm()))
    return cos, float((o - r).abs().max())


def flex_block_mask(occupancy, length, block):
    from torch.nn.attention.flex_attention import create_block_mask

    occ = occupancy.to(torch.bool).cuda()

    def mask_mod(b, h, q_idx, kv_idx):
        return occ[b, h, q_idx // block, kv_idx // block]

    b, h = occ.shape[0], occ.shape[1]
    return create_block_mask(mask_mod, b, h, length, length, device="cuda", BLOCK_SIZE=block)


def run_shape(a, dtype_name, d, length, rows):
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    b = max(1, a.tokens // length) if not a.dry_run else 1
    h = a.hidden // d if not a.dry_run else 2
    q, k, v = make_qkv(b, h, length, d, dtype, seed=length * 7 + d)
    from safetensors.torch import save_file, load_file

    tag = f"{dtype_name}_d{d}_L{length}"
    inputs = os.path.join(a.out, f"inputs_{tag}.safetensors")
    save_file({"q": q.contiguous(), "k": k.contiguous(), "v": v.contiguous()}, inputs)
    deq_json, deq_out = os.path.join(a.out, f"deq_{tag}.json"), os.path.join(a.out, f"deq_{tag}.safetensors")
    cmd = [a.deq_binary, "--inputs", inputs, "--json", deq_json, "--outputs", deq_out, "--theta", str(a.theta), "--block",
           str(a.block), "--repeats", str(a.repeats)] + (["--dry-run"] if a.dry_run else [])
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)

    device = "cpu" if a.dry_run else "cuda"
    qd, kd, vd = (x.to(device) for x in (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(qd.float(), kd.float(), vd.float())
    flops = 4.0 * b * h * length * length * d
    base = {"dtype": dtype_name, "d": d, "L": length, "B": b, "H": h}

    def add(method, ms, density=1.0, out=None, extra=None):
        r = dict(base, method=method, ms=ms, density=density)
        r["tflops"] = flops / (ms * 1e-3) / 1e12 if ms else None
        if out is not None:
            r["cos"], r["max_abs"] = accuracy(out.to(ref.device), ref)
        r.update(extra or {})
        rows.append(r)

    if a.dry_run:
        add("fp32 reference (cpu)", None, out=ref)
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for name, backend in (("sdpa-flash", SDPBackend.FLASH_ATTENTION), ("sdpa-efficient", SDPBackend.EFFICIENT_ATTENTION)):
        with sdpa_kernel(backend):
            out = torch.nn.functional.scaled_dot_product_attention(qd, kd, vd)
            add(name, median_cuda_ms(lambda: torch.nn.functional.scaled_dot_product_attention(qd, kd, vd), a.repeats), out=out)
    deq = json.load(open(deq_json))
    outs = load_file(deq_out)
    for mode in ("dense", "sanger", "block-sparse", "deq"):
        m = deq["modes"][mode]
        extra = {k: m[k] for k in ("mask_ms", "attention_ms") if k in m}
        add("deq " + mode, m["ms"], m["density"], outs[mode], extra)
    add("deq predictor", deq["modes"]["predictor"]["ms"])
    try:
        from torch.nn.attention.flex_attention import flex_attention

        bm = flex_block_mask(outs["block_occupancy"], length, a.block)
        flex = torch.compile(flex_attention)
        out = flex(qd, kd, vd, block_mask=bm)
        occ = outs["block_occupancy"].float().mean().item()
        add("flex (deq block mask)", median_cuda_ms(lambda: flex(qd, kd, vd, block_mask=bm), a.repeats), occ, out)
    except Exception as e:  # recorded, not hidden
        add("flex (deq block mask)", None, extra={"error": repr(e)})


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def targets(rows):
    """Issue 14's targets, each met / missed / not measured."""
    by = {}
    for r in rows:
        by[(r["dtype"], r["d"], r["L"], r["method"])] = r
    lines = []

    def judge(name, cases):
        cases = [c for c in cases if c is not None]
        if not cases:
            lines.append(f"- {name}: not measured")
            return
        met = sum(1 for ok, _ in cases if ok)
        lines.append(f"- {name}: {'met' if met == len(cases) else 'missed'} ({met}/{len(cases)}: " +
                     "; ".join(desc for _, desc in cases) + ")")

    keys = sorted({(r["dtype"], r["d"], r["L"]) for r in rows})

    def ms(dt, d, length, method):
        r = by.get((dt, d, length, method))
        return r["ms"] if r and r.get("ms") else None

    c1, c2, c3, c4, c5 = [], [], [], [], []
    for dt, d, length in keys:
        dense, flash, pred = ms(dt, d, length, "deq dense"), ms(dt, d, length, "sdpa-flash"), ms(dt, d, length, "deq predictor")
        if dt == "fp16" and length >= 2048 and dense and flash:
            c1.append((dense <= 1.1 * flash, f"d={d} L={length}: {flash / dense:.2f}x of flash"))
        if length >= 2048 and dense and pred:
            c2.append((pred <= 0.15 * dense, f"{dt} d={d} L={length}: {100 * pred / dense:.0f}%"))
        for mode in ("deq sanger", "deq block-sparse"):
            r = by.get((dt, d, length, mode))
            if length >= 4096 and r and r.get("ms") and r["density"] <= 0.25 and flash:
                c3.append((flash / r["ms"] >= 2.5, f"{mode} {dt} d={d} L={length}: {flash / r['ms']:.2f}x flash"))
                fl = ms(dt, d, length, "flex (deq block mask)")
                if fl:
                    c4.append((r["ms"] < fl, f"{mode} {dt} d={d} L={length}: {fl / r['ms']:.2f}x flex"))
        dq = ms(dt, d, length, "deq deq")
        if length >= 4096 and dq and dense:
            c5.append((dq < dense, f"{dt} d={d} L={length}: {dense / dq:.2f}x dense"))
    judge("dense FP16 within 10% of SDPA-flash at L >= 2048", c1)
    judge("predictor <= 15% of dense at L >= 2048", c2)
    judge("Sanger / block-sparse at density <= 0.25 >= 2.5x SDPA-flash at L >= 4096", c3)
    judge("Sanger / block-sparse faster than FlexAttention on the same block mask", c4)
    judge("DEQ (adamax_nb80) faster than deq dense at L >= 4096", c5)
    return lines


def markdown(rows, header):
    out = [header, "", "| dtype | d | L | B×H | method | ms | TFLOP/s | density | cos vs FP32 | max abs |", "|" + "---|" * 10]
    for r in rows:
        out.append(f"| {r['dtype']} | {r['d']} | {r['L']} | {r['B']}×{r['H']} | {r['method']} | {fmt(r.get('ms'))} | "
                   f"{fmt(r.get('tflops'), 1)} | {fmt(r.get('density'), 3)} | {fmt(r.get('cos'), 6)} | {fmt(r.get('max_abs'), 4)} |")
    return out


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = sorted({(r["dtype"], r["d"]) for r in rows})
    fig, axes = plt.subplots(1, len(combos), figsize=(6 * len(combos), 4), squeeze=False)
    for ax, (dt, d) in zip(axes[0], combos):
        for method in sorted({r["method"] for r in rows if r.get("tflops")}):
            pts = sorted((r["L"], r["tflops"]) for r in rows if r["dtype"] == dt and r["d"] == d and r["method"] == method and r.get("tflops"))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("L")
        ax.set_ylabel("effective TFLOP/s (dense count)")
        ax.set_title(f"{dt}, d = {d}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deq-binary", required=True, help="deq's CUDA benchmark (build/.../benchmarks/attention_cuda)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--theta", type=float, default=0.02)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dry-run", action="store_true", help="check the script without a GPU (one tiny shape; nothing timed)")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    if not a.dry_run and not torch.cuda.is_available():
        sys.exit("attention_gpu: no CUDA device (use --dry-run to check the script)")
    lengths = [128] if a.dry_run else [int(x) for x in a.lengths.split(",")]
    dims = [64] if a.dry_run else [int(x) for x in a.dims.split(",")]
    dtypes = ["fp16"] if a.dry_run else a.dtypes.split(",")
    rows = []
    t0 = time.time()
    total = len(lengths) * len(dims) * len(dtypes)
    done = 0
    for dt in dtypes:
        for d in dims:
            for length in lengths:
                run_shape(a, dt, d, length, rows)
                done += 1
                print(f"[{done}/{total}] {dt} d={d} L={length} ({time.time() - t0:.0f} s)", flush=True)
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "dry_run": a.dry_run,
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}
    json.dump({"environment": env, "rows": rows}, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    header = f"GPU attention benchmark ({env['device']}, torch {env['torch']}, CUDA {env['cuda']}{', DRY RUN' if a.dry_run else ''})"
    lines = markdown(rows, header) + ["", "Targets (issue 14):"] + (["- dry run: nothing timed, no target judged"] if a.dry_run else targets(rows))
    open(os.path.join(a.out, "results.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not a.dry_run:
        plot(rows, os.path.join(a.out, "results.png"))


if __name__ == "__main__":
    main()
