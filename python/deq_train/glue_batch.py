#!/usr/bin/env python3
"""Runs the GLUE fine-tune + C++ evaluation flow of ``examples/glue.sh`` for many (task, mode, seed) jobs in
parallel on one machine (e.g. a GPU for the fine-tuning and its CPU cores for ``bert_glue``), then writes the
per-task tables and plots (``python/deq_report/plot_results.py``) and one summary over tasks and seeds.

Usage (from the repository root):

    python3 python/deq_train/glue_batch.py --device cuda --workers 6 \\
        --bert-glue build/examples/examples/bert_glue --out build/glue-batch \\
        --tasks cola sst2 mrpc stsb rte --modes dense sanger:0.02 deq:adamax_nb80 \\
        --seeds 42 --extra-seeds mrpc:1,2 rte:1,2 --extra-jobs stsb:sanger:0.05 sst2:sanger:0.05

Each job runs ``finetune_glue.py`` (skipped when its checkpoint exists: ``OUT/finetune/<name>/model`` and
``dev_predictions.tsv``), then ``bert_glue`` on the checkpoint in its own mode with the agreement against
PyTorch's predictions of the same checkpoint, and, for seed-42 predictor checkpoints, the threshold sweeps of
``glue.sh``.  Layout (the one of glue.sh, so ``plot_results.py`` reads it):

* ``OUT/finetune/<task>_<mode>[_seed<N>]/``: checkpoint, ``results.json``, ``dev_predictions.tsv``
* ``OUT/eval/<task>_<mode>/``: bert_glue of the seed-42 checkpoints; other seeds under ``OUT/seeds/eval/``
* ``OUT/sweep/<task>_<mode>/``: threshold sweeps;  ``OUT/logs/<name>.log``: each job's output
* ``OUT/eval_as/<name>__<mode>/``: with ``--eval-as TRAINED=EVAL``, every checkpoint trained in mode TRAINED
  (as written in ``--modes`` / ``--extra-jobs``) also scored in mode EVAL, by PyTorch
  (``finetune_glue.py --eval-only --eval-mode``, in ``torch/``) and by ``bert_glue`` with the agreement
  (``--torch-mode``); e.g. ``--eval-as deq:adamax_nb50=deq:adamax_nb80`` trains with more refinement and
  scores at the reference threshold, ``--eval-as dense=deq:adamax_nb80`` applies DEQ after dense fine-tuning
  (the checkpoint has no quantizer thresholds: bert_glue calibrates them on the task's train split, in
  ``calibration/``, and both sides use them)
* ``OUT/results/<task>.{md,json,png}`` and ``OUT/results/glue_summary.{md,json}``

``--deadline-seconds`` stops starting new jobs after that many seconds (a job already running finishes); jobs
not run are listed in the summary, never silently dropped.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a script: make python/ importable (deq_train.modes, imported lazily)
    sys.path.insert(0, str(REPO_ROOT / "python"))
FINETUNE = REPO_ROOT / "python" / "deq_train" / "finetune_glue.py"
PLOT = REPO_ROOT / "python" / "deq_report" / "plot_results.py"
MAIN_SEED = 42
# Relative training cost (examples) used only to start the longest jobs first.
TRAIN_SIZE = {"cola": 8551, "sst2": 67349, "mrpc": 3668, "stsb": 5749, "rte": 2490}
MAIN_METRIC = {"cola": "mcc", "sst2": "accuracy", "mrpc": "f1", "stsb": "pearson", "rte": "accuracy"}


def sanitize(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


class Job:
    def __init__(self, task: str, mode: str, seed: int):
        self.task, self.mode, self.seed = task, mode, seed
        self.name = f"{task}_{sanitize(mode)}" + ("" if seed == MAIN_SEED else f"_seed{seed}")
        self.status = "pending"
        self.error = ""
        self.seconds = 0.0

    @property
    def cost(self) -> float:
        return TRAIN_SIZE[self.task] * (1.0 if self.mode == "dense" else 2.0)


def parse_eval_as(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        trained, sep, evaluated = item.partition("=")
        if not sep or not trained or not evaluated:
            raise SystemExit(f"glue_batch: --eval-as entry '{item}' is not TRAINED_MODE=EVAL_MODE")
        out.append((trained, evaluated))
    return out


def needs_calibration(model_dir: Path, mode: str) -> bool:
    """True when ``mode`` uses the low-bit predictor and the exported checkpoint stores no quantizer
    thresholds (it was fine-tuned dense or with a static pattern)."""
    from deq_train import modes  # torch-heavy: imported only where a mode is examined

    if not modes.parse_mode(mode).uses_predictor:
        return False
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return not config.get("deq", {}).get("threshold_tensors")


def eval_as_dir(out: Path, job: "Job", mode: str) -> Path:
    return out / "eval_as" / f"{job.name}__{sanitize(mode)}"


def parse_task_list(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        task, sep, rest = item.partition(":")
        if not sep or task not in TRAIN_SIZE or not rest:
            raise SystemExit(f"glue_batch: {what} entry '{item}' is not TASK:VALUE with TASK in {sorted(TRAIN_SIZE)}")
        out.append((task, rest))
    return out


def run(cmd: list[str], log, env=None) -> None:
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {' '.join(cmd[:4])} ...")


def run_job(job: Job, args, out: Path) -> None:
    ckpt = out / "finetune" / job.name
    log_path = out / "logs" / f"{job.name}.log"
    with open(log_path, "a", encoding="utf-8") as log:
        if (ckpt / "model" / "model.safetensors").is_file() and (ckpt / "dev_predictions.tsv").is_file():
            log.write(f"checkpoint {ckpt} exists: not fine-tuning again\n")
        else:
            cmd = [sys.executable, str(FINETUNE), "--task", job.task, "--mode", job.mode, "--seed", str(job.seed),
                   "--epochs", str(args.epochs), "--lr", str(args.lr), "--device", args.device,
                   "--threads", str(args.torch_threads), "--data-dir", str(args.data_dir), "--out", str(ckpt)]
            if args.model:
                cmd += ["--model", str(args.model)]
            if args.max_train_examples:
                cmd += ["--max-train-examples", str(args.max_train_examples)]
            if args.max_eval_examples:
                cmd += ["--max-eval-examples", str(args.max_eval_examples)]
            run(cmd, log)
        if not args.bert_glue:
            return
        eval_dir = out / ("eval" if job.seed == MAIN_SEED else "seeds/eval") / job.name
        common = [str(args.bert_glue), "--model", str(ckpt / "model"), "--task", job.task, "--data-dir",
                  str(args.data_dir), "--threads", str(args.cpp_threads), "--no-progress"]
        if args.max_eval_examples:
            common += ["--max-examples", str(args.max_eval_examples)]
        run(common + ["--torch-predictions", str(ckpt / "dev_predictions.tsv"), "--out-dir", str(eval_dir)], log)
        for trained, evaluated in args.eval_as_pairs:
            if trained != job.mode:
                continue
            target = eval_as_dir(out, job, evaluated)
            cmd = [sys.executable, str(FINETUNE), "--task", job.task, "--eval-only", "--model", str(ckpt / "model"),
                   "--eval-mode", evaluated, "--device", args.device, "--threads", str(args.torch_threads),
                   "--data-dir", str(args.data_dir), "--out", str(target / "torch")]
            if args.max_eval_examples:
                cmd += ["--max-eval-examples", str(args.max_eval_examples)]
            thresholds = []
            if needs_calibration(ckpt / "model", evaluated):
                # bert_glue calibrates on the task's train split (one dev example scored); both sides then use
                # the saved thresholds, so PyTorch evaluates the same predictor.
                calib = target / "calibration"
                run(common + ["--mode", evaluated, "--max-examples", "1", "--out-dir", str(calib)], log)
                thresholds = ["--thresholds", str(calib / f"{job.task}_thresholds.json")]
            run(cmd + thresholds, log)
            run(common + ["--mode", evaluated, "--torch-predictions", str(target / "torch" / "dev_predictions.tsv"),
                          "--torch-mode", evaluated, "--out-dir", str(target)] + thresholds, log)
        if job.seed != MAIN_SEED or args.no_sweep:
            return
        sweep = []
        if job.mode.startswith("sanger:"):
            sweep = [f"sanger:{t}" for t in args.sanger_sweep]
        elif job.mode.startswith("deq:"):
            sweep = [f"deq:adamax:{a}:sequence:logits" for a in args.deq_sweep]
        if sweep:
            cmd = list(common)
            for m in sweep:
                cmd += ["--mode", m]
            run(cmd + ["--out-dir", str(out / "sweep" / job.name)], log)


def load_eval(path: Path) -> dict | None:
    files = list(path.glob("bert_glue_*.json"))
    if not files:
        return None
    return json.loads(files[0].read_text(encoding="utf-8"))


def summarize(jobs: list[Job], out: Path, args) -> dict:
    rows = []
    scored = [(job, None, out / ("eval" if job.seed == MAIN_SEED else "seeds/eval") / job.name) for job in jobs]
    for job in jobs:
        scored += [(job, e, eval_as_dir(out, job, e)) for t, e in args.eval_as_pairs if t == job.mode]
    for job, evaluated, eval_dir in scored:
        doc = load_eval(eval_dir) if job.status == "done" else None
        row = {"task": job.task, "mode": job.mode if evaluated is None else f"{job.mode} → {evaluated}",
               "trained_mode": job.mode, "evaluated_mode": evaluated or job.mode, "seed": job.seed,
               "status": job.status, "error": job.error, "seconds": round(job.seconds, 1)}
        results_json = (out / "finetune" / job.name if evaluated is None
                        else eval_as_dir(out, job, evaluated) / "torch") / "results.json"
        if results_json.is_file():
            res = json.loads(results_json.read_text(encoding="utf-8"))
            row["torch_metrics"] = res.get("metrics")
            row["train_seconds"] = res.get("train_seconds")
            row["train_examples"] = res.get("train_examples")
        if doc:
            m = doc["modes"][0]
            row.update({"metrics": m["metrics"], "density": m["density"], "refinement_ratio": m["refinement_ratio"],
                        "empty_row_fraction": m["empty_row_fraction"], "examples": doc["examples"],
                        "skipped_rows": doc["skipped_rows"], "agreement": (m.get("agreement") or {}).get("agreement"),
                        "cpp_ms_per_example": m["latency_ms_per_example"]})
        rows.append(row)

    def fmt(v):
        return "—" if v is None else f"{100 * v:.2f}"

    lines = ["# GLUE: every task, every mode, scored in C++ (bert_glue)", "",
             f"Fine-tuning: {args.epochs} epochs, lr {args.lr:g}, batch 32, L = 128, device {args.device}; "
             "C++ scores with the agreement against PyTorch's predictions of the same checkpoint in the same mode "
             "(\"A → B\": trained in mode A, scored in mode B).", "",
             "| task | mode | seed | metrics ×100 (C++) | density | refinement ratio | agreement | status |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        metrics = ", ".join(f"{k} {fmt(v)}" for k, v in (r.get("metrics") or {}).items())
        agree = "—" if r.get("agreement") is None else f"{100 * r['agreement']:.2f} %"
        dens = "—" if "density" not in r else f"{r['density']:.3f}"
        ratio = "—" if "refinement_ratio" not in r else f"{r['refinement_ratio']:.4f}"
        status = r["status"] + (f" ({r['error']})" if r["error"] else "")
        lines.append(f"| {r['task']} | {r['mode']} | {r['seed']} | {metrics} | {dens} | {ratio} | {agree} | {status} |")

    # Mean and sample standard deviation over seeds, where a (task, mode) has more than one scored seed.
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("metrics"):
            groups.setdefault((r["task"], r["mode"]), []).append(r)
    seed_rows = []
    for (task, mode), rs in groups.items():
        if len(rs) < 2:
            continue
        entry = {"task": task, "mode": mode, "seeds": sorted(r["seed"] for r in rs)}
        for k in rs[0]["metrics"]:
            vals = [r["metrics"][k] for r in rs]
            entry[k] = {"mean": statistics.fmean(vals), "stdev": statistics.stdev(vals), "values": vals}
        seed_rows.append(entry)
    if seed_rows:
        lines += ["", "## Over seeds (mean ± sample standard deviation, ×100)", "",
                  "| task | mode | seeds | first metric | second metric |", "|---|---|---|---|---|"]
        for e in seed_rows:
            keys = [k for k in e if k not in ("task", "mode", "seeds")]
            cells = [f"{k} {100 * e[k]['mean']:.2f} ± {100 * e[k]['stdev']:.2f}" for k in keys]
            cells += [""] * (2 - len(cells))
            lines.append(f"| {e['task']} | {e['mode']} | {','.join(map(str, e['seeds']))} | " + " | ".join(cells[:2]) + " |")
    summary = {"rows": rows, "over_seeds": seed_rows,
               "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / "glue_summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results" / "glue_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["cola", "sst2", "mrpc", "stsb", "rte"], choices=sorted(TRAIN_SIZE))
    p.add_argument("--modes", nargs="+", default=["dense", "sanger:0.02", "deq:adamax_nb80"])
    p.add_argument("--seeds", nargs="+", type=int, default=[MAIN_SEED])
    p.add_argument("--extra-seeds", nargs="*", default=[], metavar="TASK:S1,S2",
                   help="more seeds of every mode for a task")
    p.add_argument("--extra-jobs", nargs="*", default=[], metavar="TASK:MODE", help="more (task, mode) jobs, seed 42")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1, help="jobs run at the same time")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads per fine-tuning job")
    p.add_argument("--cpp-threads", type=int, default=2, help="bert_glue threads per job")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-train-examples", type=int, default=None)
    p.add_argument("--max-eval-examples", type=int, default=None)
    p.add_argument("--model", type=Path, default=None, help="base model directory (default: finetune_glue.py's)")
    p.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    p.add_argument("--bert-glue", type=Path, default=None, help="bert_glue executable (no C++ scoring without it)")
    p.add_argument("--sanger-sweep", nargs="*", default=["0.005", "0.01", "0.02", "0.05", "0.1"])
    p.add_argument("--deq-sweep", nargs="*", default=["0.5", "0.8", "0.9", "0.95"])
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--eval-as", nargs="*", default=[], metavar="TRAINED=EVAL",
                   help="also score every checkpoint trained in mode TRAINED in mode EVAL (PyTorch and C++)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--deadline-seconds", type=float, default=None)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "glue-batch")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be >= 1")
    if args.bert_glue is not None and not os.access(args.bert_glue, os.X_OK):
        p.error(f"--bert-glue {args.bert_glue}: not an executable file")
    args.eval_as_pairs = parse_eval_as(args.eval_as)
    if not (args.data_dir / "glue").is_dir():
        p.error(f"--data-dir {args.data_dir}: has no glue/ folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    args.data_dir = args.data_dir.resolve()
    for sub in ("logs", "results"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs, seen = [], set()

    def add(task, mode, seed):
        key = (task, mode, seed)
        if key not in seen:
            seen.add(key)
            jobs.append(Job(task, mode, seed))

    for task in args.tasks:
        for mode in args.modes:
            for seed in args.seeds:
                add(task, mode, seed)
    for task, seeds in parse_task_list(args.extra_seeds, "--extra-seeds"):
        for s in seeds.split(","):
            for mode in args.modes:
                add(task, mode, int(s))
    for task, mode in parse_task_list(args.extra_jobs, "--extra-jobs"):
        add(task, mode, MAIN_SEED)
    for trained, _ in args.eval_as_pairs:
        if not any(j.mode == trained for j in jobs):
            raise SystemExit(f"glue_batch: --eval-as {trained}=...: no job is trained in mode '{trained}' "
                             f"(modes: {sorted({j.mode for j in jobs})})")
    order = sorted(jobs, key=lambda j: (j.seed != MAIN_SEED, -j.cost))  # seed 42 first, longest first
    start = time.time()
    lock = threading.Lock()
    done = [0]

    def work(job: Job):
        if args.deadline_seconds is not None and time.time() - start > args.deadline_seconds:
            job.status, job.error = "not run", "deadline"
        else:
            t0 = time.time()
            job.status = "running"
            try:
                run_job(job, args, out)
                job.status = "done"
            except Exception as e:  # noqa: BLE001 - reported per job, the others go on
                job.status, job.error = "failed", str(e)
            job.seconds = time.time() - t0
        with lock:
            done[0] += 1
            print(f"[{done[0]}/{len(jobs)}] {time.time() - start:6.0f} s  {job.name}: {job.status}"
                  f"{' ' + job.error if job.error else ''} ({job.seconds:.0f} s)", flush=True)

    print(f"glue_batch: {len(jobs)} jobs, {args.workers} at a time, device {args.device}", flush=True)
    with futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(work, order))
    if args.bert_glue and not args.no_plot:
        for task in args.tasks:
            if any(j.task == task and j.status == "done" and j.seed == MAIN_SEED for j in jobs):
                subprocess.run([sys.executable, str(PLOT), "--task", task, "--out", str(out)], cwd=REPO_ROOT)
    summarize(jobs, out, args)
    failed = [j for j in jobs if j.status != "done"]
    print(f"glue_batch: {len(jobs) - len(failed)} of {len(jobs)} jobs done in {time.time() - start:.0f} s; "
          f"summary in {out / 'results' / 'glue_summary.md'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
