"""CLOTH for deq_train: passage reader, masked-LM inputs with [MASK] at the blanks (windows for long
passages), option scoring by the first word-piece's logit, accuracy.

The same rules as the C++ evaluator (include/deq/eval/cloth.hpp):

* A split is ``<root>/<split>/{high,middle}/*.json`` in sorted path order; a passage has ``article`` (blanks
  ``_``), ``options`` (4 strings per blank), ``answers`` ("A".."D") and optional ``source``.
* The article is tokenized; every ``_`` token becomes [MASK]; the blank count must equal the number of
  questions.  An article of at most 510 tokens is one input ``[CLS] article [SEP]``; a longer one is cut into
  windows of 510 tokens whose starts advance by 255 (the last window ends at the article's end), and each
  blank is scored in the window where min(tokens before, tokens after) is largest (ties: earlier window).
  The reference instead cuts at 512 tokens (its blanks beyond the cut are not scored correctly).
* Each option is its first word-piece; the prediction is the option whose first word-piece has the largest
  masked-LM logit at the blank (ties: the earlier option); accuracy = correct / questions.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np

LEVELS = ("high", "middle")


class ClothFormatError(ValueError):
    """A malformed CLOTH passage; the message names the file and the field."""


@dataclass
class Passage:
    file: str       # path relative to the CLOTH root, e.g. valid/high/high0001.json
    article: str
    options: list   # [[4 strings], ...]
    answers: list   # [0..3, ...]
    source: str = ""


def read_passage(path: str, name: str) -> Passage:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ClothFormatError(f"{path}: {e}") from None
    if not isinstance(doc, dict):
        raise ClothFormatError(f"{path}: expected an object")
    for key, kind in (("article", str), ("options", list), ("answers", list)):
        if key not in doc:
            raise ClothFormatError(f"{path}: missing field '{key}'")
        if not isinstance(doc[key], kind):
            raise ClothFormatError(f"{path}: field '{key}': expected {kind.__name__}")
    options = []
    for i, o in enumerate(doc["options"]):
        if not isinstance(o, list) or len(o) != 4 or not all(isinstance(w, str) for w in o):
            raise ClothFormatError(f"{path}: field 'options[{i}]': expected 4 option strings")
        options.append(list(o))
    answers = []
    for i, a in enumerate(doc["answers"]):
        if a not in ("A", "B", "C", "D"):
            raise ClothFormatError(f"{path}: field 'answers[{i}]': expected one of \"A\", \"B\", \"C\", \"D\", got {a!r}")
        answers.append("ABCD".index(a))
    if len(answers) != len(options):
        raise ClothFormatError(f"{path}: field 'answers': has {len(answers)} answers but 'options' has {len(options)} blanks")
    if not answers:
        raise ClothFormatError(f"{path}: field 'answers': no question in the passage")
    return Passage(name, doc["article"], options, answers, doc.get("source") or "")


def read_split(root: str, split: str) -> tuple:
    """The passages of ``root/split`` (sorted paths) and the unreadable files [(file, reason)], which are
    counted and reported, never silently dropped (as read_cloth_split in C++; train/high/high515.json has no
    question and is one of them)."""
    files = []
    for level in LEVELS:
        files += glob.glob(os.path.join(root, split, level, "*.json"))
    if not files:
        raise ClothFormatError(f"{os.path.join(root, split)}: no high/*.json or middle/*.json file")
    passages, skipped = [], []
    for f in sorted(files):
        try:
            passages.append(read_passage(f, os.path.relpath(f, root)))
        except ClothFormatError as e:
            skipped.append((os.path.relpath(f, root), str(e)))
    return passages, skipped


@dataclass
class Window:
    input_ids: list
    positions: list  # positions of the scored blanks in input_ids
    questions: list  # their question indices


def make_inputs(tokenizer, passage: Passage, max_length=512) -> tuple:
    """(windows, option first word-piece ids [[4 ids], ...]) of a passage (see the module documentation)."""
    blank = tokenizer("_", add_special_tokens=False)["input_ids"]
    if len(blank) != 1:
        raise ValueError("the blank '_' must tokenize to one token")
    ids = tokenizer(passage.article, add_special_tokens=False)["input_ids"]
    blanks = [i for i, t in enumerate(ids) if t == blank[0]]
    if len(blanks) != len(passage.answers):
        raise ClothFormatError(f"{passage.file}: field 'article': has {len(blanks)} blanks '_' but the passage has "
                               f"{len(passage.answers)} questions")
    for i in blanks:
        ids[i] = tokenizer.mask_token_id
    option_ids = []
    for q, opts in enumerate(passage.options):
        first = []
        for j, o in enumerate(opts):
            t = tokenizer(o, add_special_tokens=False)["input_ids"]
            if not t:
                raise ClothFormatError(f"{passage.file}: field 'options[{q}][{j}]': option {o!r} has no token")
            first.append(t[0])
        option_ids.append(first)
    body = max_length - 2
    if len(ids) <= body:
        ranges = [(0, len(ids))]
    else:
        ranges, start = [], 0
        while True:
            s = min(start, len(ids) - body)
            ranges.append((s, s + body))
            if s + body >= len(ids):
                break
            start += body // 2
    assigned = [[] for _ in ranges]
    for q, b in enumerate(blanks):
        best, best_ctx = None, -1
        for w, (s, e) in enumerate(ranges):
            if s <= b < e and min(b - s, e - 1 - b) > best_ctx:
                best, best_ctx = w, min(b - s, e - 1 - b)
        assigned[best].append((b - ranges[best][0] + 1, q))
    windows = []
    for (s, e), pos in zip(ranges, assigned):
        if pos:
            windows.append(Window([tokenizer.cls_token_id] + ids[s:e] + [tokenizer.sep_token_id],
                                  [p for p, _ in pos], [q for _, q in pos]))
    return windows, option_ids


def choose(logits, option_ids) -> int:
    """Index of the option whose first word-piece has the largest logit (ties: the earlier option)."""
    return int(np.argmax(np.asarray([logits[i] for i in option_ids], dtype=np.float32)))


def accuracy(predictions: dict, passages: list) -> dict:
    """Accuracy over the passages' questions; predictions {file: [option per question]}."""
    correct = total = missing = 0
    for p in passages:
        pred = predictions.get(p.file)
        total += len(p.answers)
        if pred is None:
            missing += len(p.answers)
            continue
        correct += sum(int(a == b) for a, b in zip(pred, p.answers))
    if total == 0:
        raise ValueError("no question to score")
    return {"accuracy": 100.0 * correct / total, "correct": correct, "questions": total, "passages": len(passages),
            "unanswered": missing}
