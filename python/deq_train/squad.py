"""SQuAD v1.1 for deq_train: reader, article-level split, features (question + sliding context windows),
training labels, n-best span decoding and the official EM / F1 metric.

The same rules as the C++ evaluator (include/deq/eval/squad.hpp), so that both sides predict the same spans:

* Features follow transformers' ``run_qa.py`` (``prepare_validation_features``, what the reference's
  ``run_squad.py --dataset_name squad`` runs) plus the legacy ``max_query_length``: the question is cut to
  64 tokens; each feature is ``[CLS] question [SEP] window [SEP]`` of at most 384 tokens; windows of
  ``w = 384 - len(question) - 3`` context tokens overlap by ``doc_stride = 128`` (window k starts at
  ``k (w - 128)``; the last is the first to reach the end).  For questions of at most 64 tokens these are
  exactly the features of ``tokenizer(question, context, truncation="only_second", max_length=384,
  stride=128, return_overflowing_tokens=True)`` (tested).  Features are not padded here.
* Decoding: ``postprocess_qa_predictions`` of ``utils_qa.py`` (n_best 20, max_answer_length 30), with a
  stable argsort (ties: the later position first) so that ties are deterministic.
* Metric: the functions of the official ``evaluate-v1.1.py``.

Split: dev-v1.1.json is the only SQuAD file here.  Fine-tuning uses its first 24 articles (5,696 questions)
and evaluation the other 24 (4,874 questions), in file order: an article-level split, so no paragraph is
seen on both sides (``--train-articles`` / ``--eval-articles`` change it).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

DEFAULT_TRAIN_ARTICLES = (0, 24)
DEFAULT_EVAL_ARTICLES = (24, 48)


class SquadFormatError(ValueError):
    """A malformed SQuAD file; the message names the file and the field."""


@dataclass
class Example:
    id: str
    title: str
    question: str
    context: str
    article: int
    paragraph: int
    answers: list
    answer_starts: list


def _get(obj, key, kind, where, path):
    if not isinstance(obj, dict):
        raise SquadFormatError(f"{where}: field '{path}': expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise SquadFormatError(f"{where}: missing field '{path + '.' if path else ''}{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SquadFormatError(f"{where}: field '{path + '.' if path else ''}{key}': expected {kind.__name__}, "
                               f"got {type(value).__name__}")
    return value


def read_squad(path: str) -> tuple:
    """Reads a SQuAD v1.1 file; returns (examples in file order, number of articles)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SquadFormatError(f"{path}: {e}") from None
    data = _get(doc, "data", list, path, "")
    examples, ids = [], set()
    for a, article in enumerate(data):
        title = _get(article, "title", str, path, f"data[{a}]")
        for p, par in enumerate(_get(article, "paragraphs", list, path, f"data[{a}]")):
            base = f"data[{a}].paragraphs[{p}]"
            context = _get(par, "context", str, path, base)
            for q, qa in enumerate(_get(par, "qas", list, path, base)):
                qbase = f"{base}.qas[{q}]"
                qid = _get(qa, "id", str, path, qbase)
                if qid in ids:
                    raise SquadFormatError(f"{path}: field '{qbase}.id': duplicate question id '{qid}'")
                ids.add(qid)
                answers = _get(qa, "answers", list, path, qbase)
                if not answers:
                    raise SquadFormatError(f"{path}: field '{qbase}.answers': expected at least one gold answer")
                texts, starts = [], []
                for k, ans in enumerate(answers):
                    texts.append(_get(ans, "text", str, path, f"{qbase}.answers[{k}]"))
                    start = _get(ans, "answer_start", int, path, f"{qbase}.answers[{k}]")
                    if start < 0 or start > len(context):
                        raise SquadFormatError(f"{path}: field '{qbase}.answers[{k}].answer_start': {start} is outside "
                                               f"the context of {len(context)} characters")
                    starts.append(start)
                examples.append(Example(qid, title, _get(qa, "question", str, path, qbase), context, a, p, texts, starts))
    if not examples:
        raise SquadFormatError(f"{path}: field 'data': no question in the file")
    return examples, len(data)


def select_articles(examples: list, first: int, last: int, articles: int) -> list:
    """The questions of the articles [first, last)."""
    if not (0 <= first < last <= articles):
        raise ValueError(f"article range [{first}, {last}) must lie inside [0, {articles}) and be non-empty")
    return [e for e in examples if first <= e.article < last]


def parse_range(text: str) -> tuple:
    """'A:B' -> (A, B)."""
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise ValueError(f"article range {text!r} must be FIRST:LAST (e.g. 0:24)") from None


# --------------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------------
@dataclass
class Feature:
    example: int
    window: int
    input_ids: list
    token_type_ids: list
    offsets: list  # (start, end) character offsets in the context; None outside the context
    context_begin: int
    context_end: int
    start_position: int = 0  # training labels (0 = [CLS] when the answer is not inside the window)
    end_position: int = 0
    extra: dict = field(default_factory=dict)


def make_features(tokenizer, examples: list, max_length=384, doc_stride=128, max_query_length=64,
                  with_labels=False) -> list:
    """Features of every example (see the module documentation); with_labels adds the run_qa.py training
    labels (the first gold answer; [CLS] when it is not fully inside the window)."""
    questions = tokenizer([e.question for e in examples], add_special_tokens=False)["input_ids"]
    contexts = tokenizer([e.context for e in examples], add_special_tokens=False, return_offsets_mapping=True)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    features = []
    for i, e in enumerate(examples):
        q = questions[i][:max_query_length]
        ids, offs = contexts["input_ids"][i], contexts["offset_mapping"][i]
        window = max_length - len(q) - 3
        if window <= doc_stride:
            raise ValueError(f"max_length = {max_length} leaves no context window longer than doc_stride = {doc_stride} "
                             f"(question id {e.id!r})")
        step = window - doc_stride
        start, w = 0, 0
        while True:
            stop = min(start + window, len(ids))
            input_ids = [cls] + q + [sep] + ids[start:stop] + [sep]
            types = [0] * (len(q) + 2) + [1] * (stop - start + 1)
            offsets = [None] * (len(q) + 2) + [tuple(o) for o in offs[start:stop]] + [None]
            f = Feature(i, w, input_ids, types, offsets, len(q) + 2, len(q) + 2 + stop - start)
            if with_labels:
                s_char = e.answer_starts[0]
                e_char = s_char + len(e.answers[0])
                if stop > start and offs[start][0] <= s_char and offs[stop - 1][1] >= e_char:
                    ts = f.context_begin
                    while ts < f.context_end and offsets[ts][0] <= s_char:
                        ts += 1
                    te = f.context_end - 1
                    while te >= f.context_begin and offsets[te][1] >= e_char:
                        te -= 1
                    f.start_position, f.end_position = ts - 1, te + 1
            features.append(f)
            w += 1
            if stop >= len(ids):
                break
            start += step
    return features


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------
def _top(values, n):
    order = np.argsort(np.asarray(values), kind="stable")  # ascending, ties by position
    return order[-1: -n - 1: -1].tolist()


def decode(example: Example, features: list, start_logits: list, end_logits: list, n_best=20,
           max_answer_length=30) -> dict:
    """utils_qa.postprocess_qa_predictions for one question: returns {"text", "score", "window"}."""
    cands = []
    for f, sl, el in zip(features, start_logits, end_logits):
        sl = np.asarray(sl, dtype=np.float32)
        el = np.asarray(el, dtype=np.float32)
        for s in _top(sl, n_best):
            for e in _top(el, n_best):
                if f.offsets[s] is None or f.offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                cands.append({"score": sl[s] + el[e], "range": (f.offsets[s][0], f.offsets[e][1]), "window": f.window})
    cands = sorted(cands, key=lambda c: c["score"], reverse=True)[:n_best]
    if not cands:
        return {"text": "empty", "score": 0.0, "window": 0}
    best = cands[0]
    return {"text": example.context[best["range"][0]: best["range"][1]], "score": float(best["score"]),
            "window": best["window"]}


# --------------------------------------------------------------------------------------------------------
# The official metric (evaluate-v1.1.py)
# --------------------------------------------------------------------------------------------------------
def normalize_answer(s: str) -> str:
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def evaluate(examples: list, predictions: dict) -> dict:
    """EM / F1 x100 (max over gold answers; a missing prediction scores 0 and is counted)."""
    if not examples:
        raise ValueError("no question to evaluate")
    em = f1 = 0.0
    missing = 0
    for e in examples:
        if e.id not in predictions:
            missing += 1
            continue
        p = predictions[e.id]
        em += max(exact_match_score(p, g) for g in e.answers)
        f1 += max(f1_score(p, g) for g in e.answers)
    return {"exact_match": 100.0 * em / len(examples), "f1": 100.0 * f1 / len(examples),
            "questions": len(examples), "unanswered": missing}


def agreement(a: dict, b: dict) -> Optional[dict]:
    """Identical predicted texts between two {id: text} maps, over the ids they share."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    same = sum(1 for k in shared if a[k] == b[k])
    return {"compared": len(shared), "identical": same, "percent": 100.0 * same / len(shared)}
