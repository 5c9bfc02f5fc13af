"""GLUE task readers (CoLA, SST-2, MRPC, STS-B, RTE) and the GLUE metrics.

The files are the GLUE distribution's TSVs (../shared/data/README.md): tab-separated, no quoting (as the
Hugging Face / GLUE processors read them, ``quotechar=None``), LF line endings.  CoLA has no header; MRPC's
header starts with a UTF-8 BOM.  Every data row must parse: a row with the wrong number of fields, an empty
text or a bad label raises :class:`GlueFormatError` naming the file and the 1-based line number.  Nothing is
skipped silently.

Metrics follow ``datasets.load_metric("glue", task)`` (which uses scikit-learn and SciPy): Matthews
correlation for CoLA, accuracy for SST-2 and RTE, accuracy and F1 (positive class 1) for MRPC, Pearson and
Spearman correlation for STS-B.  They are implemented here with numpy so that no extra package is needed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np


class GlueFormatError(ValueError):
    """A malformed GLUE TSV row or file; the message names the file and the line."""


@dataclass(frozen=True)
class Example:
    """One GLUE example: text_a, optional text_b, and a label (class index, or float score for STS-B)."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: float


@dataclass(frozen=True)
class TaskSpec:
    """How to read one GLUE task's TSV files."""

    name: str  # cola | sst2 | mrpc | stsb | rte
    folder: str
    header: Optional[List[str]]  # expected header fields (None = no header line)
    num_fields: int
    text_a: int
    text_b: Optional[int]
    label: int
    labels: Optional[List[str]]  # label strings in class order; None for regression
    metric_names: List[str]
    main_metric: str

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)


TASKS = {
    "cola": TaskSpec("cola", "CoLA", None, 4, 3, None, 1, ["0", "1"], ["mcc"], "mcc"),
    "sst2": TaskSpec("sst2", "SST-2", ["sentence", "label"], 2, 0, None, 1, ["0", "1"], ["accuracy"], "accuracy"),
    "mrpc": TaskSpec("mrpc", "MRPC", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], 5, 3, 4, 0,
                     ["0", "1"], ["accuracy", "f1"], "f1"),
    "stsb": TaskSpec("stsb", "STS-B", ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                                       "sentence1", "sentence2", "score"], 10, 7, 8, 9, None,
                     ["pearson", "spearmanr"], "pearson"),
    "rte": TaskSpec("rte", "RTE", ["index", "sentence1", "sentence2", "label"], 4, 1, 2, 3,
                    ["entailment", "not_entailment"], ["accuracy"], "accuracy"),
}


def task_spec(task: str) -> TaskSpec:
    key = task.strip().lower().replace("-", "")
    if key not in TASKS:
        raise ValueError(f'unknown GLUE task "{task}"; known: {", ".join(TASKS)}')
    return TASKS[key]


def task_file(data_dir: str, task: str, split: str) -> str:
    """Path of a split's TSV: DATA_DIR/glue/<Folder>/<split>.tsv."""
    if split not in ("train", "dev"):
        raise ValueError(f'split "{split}" must be train or dev')
    return os.path.join(data_dir, "glue", task_spec(task).folder, f"{split}.tsv")


def read_examples(path: str, task: str) -> List[Example]:
    """Reads every row of a GLUE TSV; raises GlueFormatError (file:line: reason) on any malformed row,
    FileNotFoundError when the file is missing."""
    spec = task_spec(task)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: GLUE {spec.folder} file not found")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise GlueFormatError(f"{path}:{line}: invalid UTF-8 ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline (CoLA's dev.tsv has none)
    if not lines:
        raise GlueFormatError(f"{path}:1: empty file")
    examples: List[Example] = []
    first = 0
    if spec.header is not None:
        header = lines[0].lstrip("\ufeff").rstrip("\r").split("\t")
        if header != spec.header:
            raise GlueFormatError(f"{path}:1: header {header} is not the {spec.folder} header {spec.header}")
        first = 1
    for index in range(first, len(lines)):
        lineno = index + 1
        fields = lines[index].rstrip("\r").split("\t")
        if len(fields) != spec.num_fields:
            raise GlueFormatError(f"{path}:{lineno}: expected {spec.num_fields} tab-separated fields for "
                                  f"{spec.folder}, got {len(fields)}")
        text_a = fields[spec.text_a]
        text_b = fields[spec.text_b] if spec.text_b is not None else None
        if not text_a.strip() or (text_b is not None and not text_b.strip()):
            raise GlueFormatError(f"{path}:{lineno}: empty sentence")
        raw_label = fields[spec.label].strip()
        if spec.is_regression:
            try:
                label = float(raw_label)
            except ValueError:
                raise GlueFormatError(f"{path}:{lineno}: score \"{raw_label}\" is not a number") from None
            if not (0.0 <= label <= 5.0):
                raise GlueFormatError(f"{path}:{lineno}: score {label} is outside [0, 5]")
        else:
            if raw_label not in spec.labels:
                raise GlueFormatError(f"{path}:{lineno}: label \"{raw_label}\" is not one of {spec.labels}")
            label = float(spec.labels.index(raw_label))
        examples.append(Example(f"{spec.name}-{lineno}", text_a, text_b, label))
    if not examples:
        raise GlueFormatError(f"{path}:{len(lines)}: no data rows")
    return examples


# --------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------
def accuracy(preds, labels) -> float:
    preds, labels = np.asarray(preds), np.asarray(labels)
    _check_lengths(preds, labels)
    return float((preds == labels).mean())


def f1_binary(preds, labels) -> float:
    """F1 of the positive class 1 (sklearn f1_score, zero_division = 0)."""
    preds, labels = np.asarray(preds).astype(int), np.asarray(labels).astype(int)
    _check_lengths(preds, labels)
    tp = int(((preds == 1) & (labels == 1)).sum())
    fp = int(((preds == 1) & (labels == 0)).sum())
    fn = int(((preds == 0) & (labels == 1)).sum())
    denom = 2 * tp + fp + fn
    return 2.0 * tp / denom if denom else 0.0


def matthews_corrcoef(preds, labels) -> float:
    """Binary Matthews correlation coefficient; 0 when a marginal is empty (as sklearn)."""
    preds, labels = np.asarray(preds).astype(int), np.asarray(labels).astype(int)
    _check_lengths(preds, labels)
    tp = float(((preds == 1) & (labels == 1)).sum())
    tn = float(((preds == 0) & (labels == 0)).sum())
    fp = float(((preds == 1) & (labels == 0)).sum())
    fn = float(((preds == 0) & (labels == 1)).sum())
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_lengths(x, y)
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    return float((xc * yc).sum()) / denom if denom else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation with average ranks for ties (scipy.stats.spearmanr)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_lengths(x, y)
    return pearson(_average_ranks(x), _average_ranks(y))


def _check_lengths(a, b):
    if len(a) != len(b):
        raise ValueError(f"predictions ({len(a)}) and labels ({len(b)}) differ in length")
    if len(a) == 0:
        raise ValueError("no predictions to score")


def glue_metrics(task: str, predictions, labels) -> dict:
    """The GLUE metrics of a task from predictions (class indices, or scores for STS-B) and labels."""
    spec = task_spec(task)
    if spec.name == "cola":
        return {"mcc": matthews_corrcoef(predictions, labels)}
    if spec.name in ("sst2", "rte"):
        return {"accuracy": accuracy(predictions, labels)}
    if spec.name == "mrpc":
        return {"accuracy": accuracy(predictions, labels), "f1": f1_binary(predictions, labels)}
    return {"pearson": pearson(predictions, labels), "spearmanr": spearman(predictions, labels)}
