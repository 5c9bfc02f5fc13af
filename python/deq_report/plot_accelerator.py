"""Bar chart of examples/accelerator_report's JSON: speedup and energy ratio of Sanger and DEQ v1/v2/v3
over the dense systolic array, per task / sequence length and model geometry.

Usage: python3 python/deq_report/plot_accelerator.py REPORT.json [--out FILE.png]
(default output: the JSON's path with the suffix .png). Needs matplotlib.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_rows(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"plot_accelerator: cannot read {path}: {e}")
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise SystemExit(f"plot_accelerator: {path}: no 'rows' array")
    required = {"task", "length", "geometry", "design", "speedup_vs_dense", "energy_ratio_vs_dense"}
    for i, r in enumerate(rows):
        missing = required - set(r)
        if missing:
            raise SystemExit(f"plot_accelerator: {path}: rows[{i}] lacks {sorted(missing)}")
    return rows


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    designs = [d for d in ["sanger", "deq_v1", "deq_v2", "deq_v3"] if any(r["design"] == d for r in rows)]
    geometries = list(dict.fromkeys(r["geometry"] for r in rows))
    groups = list(dict.fromkeys((r["task"], r["length"]) for r in rows))
    fig, axes = plt.subplots(len(geometries), 2, figsize=(12, 3.6 * len(geometries)), squeeze=False)
    width = 0.8 / max(1, len(designs))
    for gi, geo in enumerate(geometries):
        for mi, (metric, title) in enumerate([("speedup_vs_dense", "speedup over dense array"),
                                               ("energy_ratio_vs_dense", "energy saving over dense array (×)")]):
            ax = axes[gi][mi]
            for di, design in enumerate(designs):
                values = []
                for task, length in groups:
                    match = [r for r in rows if r["geometry"] == geo and r["task"] == task and r["length"] == length
                             and r["design"] == design]
                    values.append(match[0][metric] if match else 0.0)
                xs = [g + (di - (len(designs) - 1) / 2) * width for g in range(len(groups))]
                bars = ax.bar(xs, values, width, label=design)
                ax.bar_label(bars, fmt="%.2f", fontsize=7)
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([f"{t}\nL={l}" if l else t for t, l in groups])
            ax.set_title(f"{geo}: {title}", fontsize=9)
            if gi == 0 and mi == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="accelerator_report.json")
    parser.add_argument("--out", type=Path, default=None, help="PNG file (default: REPORT with .png)")
    args = parser.parse_args(argv)
    out = args.out or args.report.with_suffix(".png")
    plot(load_rows(args.report), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
