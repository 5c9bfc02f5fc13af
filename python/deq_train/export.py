"""Export of a fine-tuned (patched) BertForSequenceClassification as a Hugging Face model directory, and
loading it back with its attention mode.

The directory holds:

* ``config.json``: the BERT config with the task head (``architectures``, ``num_labels``, ``id2label`` /
  ``label2id``, ``problem_type`` = ``single_label_classification`` or ``regression``, ``finetuning_task``)
  and a ``"deq"`` section: the attention mode string (``attention_mode``, canonical form) and its parsed
  parts, the quantizer settings (4-bit symmetric, inner-product normalisation, EMA decay), the sequence
  length and the padding used in training and evaluation, and the names of the threshold tensors.
* ``vocab.txt`` (and ``tokenizer_config.json`` / ``special_tokens_map.json`` when the source has them),
  copied from the source model.
* ``model.safetensors``: every weight under its Hugging Face name (``bert.embeddings...``,
  ``bert.encoder.layer.N...``, ``bert.pooler...``, ``classifier.weight`` / ``classifier.bias``) plus, in
  predictor modes, the per-layer quantizer thresholds
  ``bert.encoder.layer.N.attention.self.quant_matmul.input_x_thresh`` and ``...input_y_thresh`` (float32,
  shape [1]): the reference's names, which the C++ loader reads.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Optional

import torch

from . import modes

THRESHOLD_SUFFIXES = ("attention.self.quant_matmul.input_x_thresh", "attention.self.quant_matmul.input_y_thresh")
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def threshold_names(num_layers: int) -> list:
    """The threshold tensor names of a model with ``num_layers`` encoder layers."""
    return [f"bert.encoder.layer.{n}.{suffix}" for n in range(num_layers) for suffix in THRESHOLD_SUFFIXES]


def export_tensors(model: torch.nn.Module, heads: tuple = ("classifier.",), skip: tuple = ()) -> dict:
    """The tensors written to model.safetensors: the state dict with HF names, without the quantizer step
    counters, each a contiguous CPU copy.  Raises when a predictor mode's thresholds are not calibrated.
    ``heads``: name prefixes of the task head besides ``bert.`` (``classifier.`` for GLUE, ``qa_outputs.``
    for SQuAD, ``cls.predictions.`` for masked LM); ``skip``: names left out (weights tied to others)."""
    mode = getattr(model, "deq_mode", None)
    tensors = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("quant_matmul._step") or name in skip:
            continue
        if not (name.startswith("bert.") or any(name.startswith(h) for h in heads)):
            expected = ", ".join(["bert.*"] + [h + "*" for h in heads])
            raise ValueError(f"unexpected tensor name {name!r}: expected {expected}")
        tensors[name] = tensor.detach().to("cpu").clone().contiguous()
    if mode is not None and mode.uses_predictor:
        for m in modes.deq_modules(model):
            if not m.quant_matmul.calibrated:
                raise ValueError(f"attention layer {m.layer_index}: quantizer thresholds were never calibrated; "
                                 "train (or calibrate) before exporting")
        expected = threshold_names(model.config.num_hidden_layers)
        missing = [n for n in expected if n not in tensors]
        if missing:
            raise ValueError(f"threshold tensors missing from the state dict: {missing}")
        for n in expected:
            tensors[n] = tensors[n].to(torch.float32).reshape(1)
    return tensors


def export_model(model: torch.nn.Module, source_dir: str, out_dir: str, task: str,
                 extra: Optional[dict] = None) -> dict:
    """Writes the HF directory ``out_dir`` for a fine-tuned, patched model; ``source_dir`` is the model
    directory the tokenizer files are copied from; ``extra`` adds fields to the "deq" section.
    Returns {"config": path, "weights": path, "tensors": count}."""
    from safetensors.torch import save_file

    from . import glue

    spec = glue.task_spec(task)
    mode = getattr(model, "deq_mode", None) or modes.parse_mode("dense")
    os.makedirs(out_dir, exist_ok=True)
    vocab = os.path.join(source_dir, "vocab.txt")
    if not os.path.isfile(vocab):
        raise FileNotFoundError(f"{vocab}: vocabulary of the source model not found")
    for name in TOKENIZER_FILES:
        src = os.path.join(source_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out_dir, name))

    tensors = export_tensors(model)
    weights = os.path.join(out_dir, "model.safetensors")
    save_file(tensors, weights, metadata={"format": "pt"})

    config = model.config.to_dict()
    for key in ("_attn_implementation", "_attn_implementation_autoset", "_name_or_path", "torch_dtype",
                "transformers_version", "dtype"):
        config.pop(key, None)
    config["architectures"] = ["BertForSequenceClassification"]
    config["model_type"] = "bert"
    config["finetuning_task"] = spec.name
    config["num_labels"] = spec.num_labels
    config["problem_type"] = "regression" if spec.is_regression else "single_label_classification"
    labels = ["score"] if spec.is_regression else spec.labels
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    config["deq"] = deq_section(model, mode, extra)
    config_path = os.path.join(out_dir, "config.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return {"config": config_path, "weights": weights, "tensors": len(tensors)}


def deq_section(model: torch.nn.Module, mode, extra: Optional[dict] = None) -> dict:
    """The "deq" section of config.json: the mode, predictor settings and threshold names, plus ``extra``."""
    deq = mode.describe()
    deq.update({
        "predictor": {"bits": modes.DEFAULT_BITS, "method": "sym", "normalize_qk": "inner_product",
                      "ema_decay": modes.DEFAULT_EMA_DECAY} if mode.uses_predictor else None,
        "threshold_tensors": threshold_names(model.config.num_hidden_layers) if mode.uses_predictor else [],
        "padding_penalty": modes.PENALTY,
        "static_max_position": modes.MAX_POSITION if mode.kind == "static" else None,
        "bigbird_seed": 42 if mode.pattern in ("bigbird", "hugebird") else None,
    })
    if extra:
        deq.update(extra)
    return deq


def export_task_model(model: torch.nn.Module, source_dir: str, out_dir: str, architecture: str, task: str,
                      heads: tuple, skip: tuple = (), extra: Optional[dict] = None) -> dict:
    """export_model for other task heads (SQuAD's ``BertForQuestionAnswering``, CLOTH's ``BertForMaskedLM``):
    the same directory layout and "deq" section, ``architectures = [architecture]``, ``finetuning_task =
    task``; ``heads`` / ``skip`` as in export_tensors.  Returns {"config", "weights", "tensors"}."""
    from safetensors.torch import save_file

    mode = getattr(model, "deq_mode", None) or modes.parse_mode("dense")
    os.makedirs(out_dir, exist_ok=True)
    vocab = os.path.join(source_dir, "vocab.txt")
    if not os.path.isfile(vocab):
        raise FileNotFoundError(f"{vocab}: vocabulary of the source model not found")
    for name in TOKENIZER_FILES:
        src = os.path.join(source_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out_dir, name))
    tensors = export_tensors(model, heads=heads, skip=skip)
    weights = os.path.join(out_dir, "model.safetensors")
    save_file(tensors, weights, metadata={"format": "pt"})
    config = model.config.to_dict()
    for key in ("_attn_implementation", "_attn_implementation_autoset", "_name_or_path", "torch_dtype",
                "transformers_version", "dtype", "id2label", "label2id", "problem_type", "num_labels"):
        config.pop(key, None)
    config["architectures"] = [architecture]
    config["model_type"] = "bert"
    config["finetuning_task"] = task
    config["deq"] = deq_section(model, mode, extra)
    config_path = os.path.join(out_dir, "config.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return {"config": config_path, "weights": weights, "tensors": len(tensors)}


THRESHOLDS_FORMAT = "deq-bert-predictor-thresholds"


def read_thresholds_file(path: str) -> list:
    """Reads a deq::bert::predictor_thresholds JSON file (include/deq/bert/thresholds.hpp; e.g. the
    ``<task>_thresholds.json`` bert_glue writes after calibrating) and returns ``[(input_x_thresh,
    input_y_thresh), ...]``, one pair per layer.  Raises ValueError naming the file and the field."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read predictor thresholds: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != THRESHOLDS_FORMAT:
        raise ValueError(f"{path}: \"format\" is not \"{THRESHOLDS_FORMAT}\"")
    if doc.get("bits", 4) != 4:
        raise ValueError(f"{path}: bits = {doc.get('bits')}; the PyTorch predictor is the reference's 4-bit one")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{path}: \"layers\" must be a non-empty list")
    out = []
    for i, layer in enumerate(layers):
        pair = []
        for key in ("input_x_thresh", "input_y_thresh"):
            v = layer.get(key) if isinstance(layer, dict) else None
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{path}: layers[{i}].{key} = {v!r} is not a positive finite number")
            pair.append(float(v))
        out.append(tuple(pair))
    return out


def load_exported(path: str, stats: Optional[modes.AttentionStats] = None, device: str = "cpu",
                  model_class=None, mode_override=None, thresholds=None):
    """Loads an exported directory: BertForSequenceClassification (or ``model_class``, e.g.
    BertForQuestionAnswering) with the weights, patched with the attention mode of config.json's "deq"
    section (or ``mode_override``, a mode string or AttentionMode: the checkpoint evaluated in another mode)
    and the checkpoint's quantizer thresholds, which a predictor mode needs, or ``thresholds`` (pairs per
    layer, read_thresholds_file()) instead.  Returns (model in eval mode, AttentionMode, config dict)."""
    from safetensors import safe_open
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    config_path = os.path.join(path, "config.json")
    weights = os.path.join(path, "model.safetensors")
    for p in (config_path, weights):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p}: not found (an exported deq model directory needs config.json and "
                                    "model.safetensors)")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if "deq" not in config or "attention_mode" not in config["deq"]:
        raise ValueError(f"{config_path}: no \"deq\" section with \"attention_mode\"")
    mode = modes.parse_mode(config["deq"]["attention_mode"])
    if mode_override is not None:
        mode = modes.parse_mode(mode_override) if isinstance(mode_override, str) else mode_override
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the thresholds are "unexpected" keys for plain BERT; loaded below
    try:
        model = (model_class or BertForSequenceClassification).from_pretrained(path, attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)
    modes.patch_model(model, mode, stats)
    if mode.uses_predictor and thresholds is not None:
        layers = modes.deq_modules(model)
        if len(thresholds) != len(layers):
            raise ValueError(f"{len(thresholds)} layers of predictor thresholds for a model with {len(layers)} layers "
                             f"({path})")
        for m, (x, y) in zip(layers, thresholds):
            m.quant_matmul.set_thresholds(x, y)
    elif mode.uses_predictor:
        with safe_open(weights, "pt") as f:
            names = set(f.keys())
            for m in modes.deq_modules(model):
                x_name, y_name = (f"bert.encoder.layer.{m.layer_index}.{s}" for s in THRESHOLD_SUFFIXES)
                for n in (x_name, y_name):
                    if n not in names:
                        raise KeyError(f"{weights}: tensor {n} missing (mode {mode.spec()} needs the quantizer "
                                       "thresholds; a checkpoint trained without a predictor has none)")
                m.quant_matmul.set_thresholds(f.get_tensor(x_name).item(), f.get_tensor(y_name).item())
    model.to(device)
    model.eval()
    return model, mode, config
