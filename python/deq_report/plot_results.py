"""Results table and plot of one GLUE task from the outputs of examples/glue.sh.

Reads, under OUT (glue.sh's output folder):

* ``OUT/eval/<task>_<mode>/bert_glue_<task>.json``: bert_glue on each fine-tuned checkpoint in its own mode
  (with the agreement with PyTorch),
* ``OUT/sweep/<task>_<mode>/bert_glue_<task>.json``: bert_glue threshold sweeps on a checkpoint (optional),
* ``FINETUNE/<task>_<mode>/results.json``: finetune_glue.py's PyTorch metrics and timing (optional; the folder
  is the checkpoint folder's parent, as recorded in the bert_glue JSON),

and writes ``OUT/results/<task>.md`` (tables), ``OUT/results/<task>.json`` (the combined rows) and
``OUT/results/<task>.png`` (main metric versus kept density for Sanger modes and versus refinement ratio for
DEQ / three-level modes, dense as a horizontal line).

Usage: python3 python/deq_report/plot_results.py --task mrpc --out build/glue-results [--no-plot]
Needs matplotlib for the plot.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"plot_results: cannot read {path}: {e}")


def _rows(files: list[Path], task: str, kind: str) -> list[dict]:
    rows = []
    for f in files:
        doc = _load(f)
        if doc.get("task") != task or not isinstance(doc.get("modes"), list):
            raise SystemExit(f"plot_results: {f}: not a bert_glue result of task {task}")
        torch = {}
        results = Path(doc["model"]).parent / "results.json"
        if results.is_file():
            torch = _load(results)
        for m in doc["modes"]:
            for key in ("spec", "metrics", "density", "refinement_ratio", "empty_row_fraction", "latency_ms_per_example"):
                if key not in m:
                    raise SystemExit(f"plot_results: {f}: a mode entry lacks '{key}'")
            row = {
                "kind": kind,
                "checkpoint": doc["model"],
                "checkpoint_mode": doc.get("checkpoint_mode"),
                "mode": m["spec"],
                "metrics": m["metrics"],
                "main_metric": doc["main_metric"],
                "density": m["density"],
                "refinement_ratio": m["refinement_ratio"],
                "empty_row_fraction": m["empty_row_fraction"],
                "unrefined_row_fraction": m.get("unrefined_row_fraction"),
                "cpp_ms_per_example": m["latency_ms_per_example"],
                "examples": doc["examples"],
                "skipped_rows": doc.get("skipped_rows", 0),
                "threads": doc.get("threads"),
                "trace": m.get("trace"),
                "agreement": m.get("agreement"),
                "torch_metrics": torch.get("metrics") if kind == "eval" else None,
                "torch_ms_per_example": torch.get("eval_ms_per_example") if kind == "eval" else None,
                "torch_threads": torch.get("threads") if kind == "eval" else None,
                "train_examples": torch.get("train_examples"),
            }
            rows.append(row)
    return rows


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100.0 * v:.2f}"


def markdown(task: str, rows: list[dict]) -> str:
    main = [r for r in rows if r["kind"] == "eval"]
    sweep = [r for r in rows if r["kind"] == "sweep"]
    names = list(rows[0]["metrics"]) if rows else []
    out = [f"## GLUE {task} dev: fine-tuned all-MiniLM-L6-v2, evaluated in C++ (deq::bert) and PyTorch\n"]
    if main:
        out.append("| mode | " + " | ".join(f"{n} ×100" for n in names) + " | PyTorch " + " | PyTorch ".join(f"{n} ×100" for n in names)
                   + " | density | refinement ratio | empty rows | C++ ms / example | PyTorch ms / example | agreement | max |Δ logit| |")
        out.append("|---" * (1 + 2 * len(names) + 7) + "|")
        for r in main:
            tm = r["torch_metrics"] or {}
            a = r["agreement"]
            agree = f"{100.0 * a['agreement']:.2f}% ({a['agree']}/{a['compared']})" if a else "-"
            diff = f"{a['max_abs_logit_diff']:.3g}" if a else "-"
            tms = f"{r['torch_ms_per_example']:.2f}" if r["torch_ms_per_example"] is not None else "-"
            out.append(f"| {r['mode']} | " + " | ".join(_pct(r["metrics"].get(n)) for n in names) + " | "
                       + " | ".join(_pct(tm.get(n)) for n in names)
                       + f" | {r['density']:.3f} | {r['refinement_ratio']:.3f} | {100.0 * r['empty_row_fraction']:.2f}% | "
                       f"{r['cpp_ms_per_example']:.2f} | {tms} | {agree} | {diff} |")
        out.append("")
        r0 = main[0]
        out.append(f"{r0['examples']} dev examples ({r0['skipped_rows']} rows skipped); C++ with {r0['threads']} threads, "
                   f"PyTorch with {r0['torch_threads']} threads (finetune_glue.py's evaluation). Agreement: same predicted "
                   "label (classification) or |Δ score| <= 1e-3·max(1, |score|) (STS-B).\n")
    if sweep:
        out.append("### Threshold sweep (C++ only: each checkpoint evaluated at several thresholds, its training threshold included)\n")
        out.append("| checkpoint mode | mode | " + " | ".join(f"{n} ×100" for n in names) + " | density | refinement ratio | empty rows | ms / example |")
        out.append("|---" * (2 + len(names) + 4) + "|")
        for r in sweep:
            out.append(f"| {r['checkpoint_mode']} | {r['mode']} | " + " | ".join(_pct(r["metrics"].get(n)) for n in names)
                       + f" | {r['density']:.3f} | {r['refinement_ratio']:.3f} | {100.0 * r['empty_row_fraction']:.2f}% | "
                       f"{r['cpp_ms_per_example']:.2f} |")
        out.append("")
    return "\n".join(out) + "\n"


def plot(task: str, rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main_metric = rows[0]["main_metric"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    dense = [r for r in rows if r["mode"] == "dense"]
    panels = [("sanger", "density", "kept density"), ("deq", "refinement_ratio", "refinement ratio")]
    for ax, (family, key, label) in zip(axes, panels):
        pts = [r for r in rows if r["mode"].startswith(family) or (family == "deq" and r["mode"].startswith("three"))]
        for ckpt in dict.fromkeys(r["checkpoint_mode"] for r in pts):
            sel = sorted((r for r in pts if r["checkpoint_mode"] == ckpt), key=lambda r: r[key])
            ax.plot([r[key] for r in sel], [100.0 * r["metrics"][main_metric] for r in sel], "o-", label=f"checkpoint {ckpt}")
            for r in sel:
                parts = r["mode"].split(":")
                tag = parts[2] if family == "deq" and len(parts) > 2 and parts[1] in ("adamax", "invadamax") else parts[-1]
                ax.annotate(tag, (r[key], 100.0 * r["metrics"][main_metric]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
        for r in dense[:1]:
            ax.axhline(100.0 * r["metrics"][main_metric], color="gray", linestyle="--", label="dense")
        ax.set_xlabel(label)
        ax.set_ylabel(f"{main_metric} ×100")
        ax.set_title(f"{task}: {family}")
        ax.grid(True, alpha=0.3)
        if pts or dense:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Results table and plot of one GLUE task from examples/glue.sh outputs")
    p.add_argument("--task", required=True)
    p.add_argument("--out", required=True, type=Path, help="glue.sh's output folder")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    name = f"bert_glue_{args.task}.json"
    evals = sorted((args.out / "eval").glob(f"{args.task}_*/{name}"))
    sweeps = sorted((args.out / "sweep").glob(f"{args.task}_*/{name}"))
    if not evals and not sweeps:
        raise SystemExit(f"plot_results: no {name} under {args.out}/eval or {args.out}/sweep")
    rows = _rows(evals, args.task, "eval") + _rows(sweeps, args.task, "sweep")
    results = args.out / "results"
    results.mkdir(parents=True, exist_ok=True)
    md = markdown(args.task, rows)
    (results / f"{args.task}.md").write_text(md, encoding="utf-8")
    (results / f"{args.task}.json").write_text(json.dumps({"task": args.task, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    written = [results / f"{args.task}.md", results / f"{args.task}.json"]
    if not args.no_plot:
        plot(args.task, rows, results / f"{args.task}.png")
        written.append(results / f"{args.task}.png")
    sys.stdout.write(md)
    print("wrote " + ", ".join(str(w) for w in written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
