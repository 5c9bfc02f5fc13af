"""GLUE readers on the real dev sets (../shared/data) and on malformed files, and the GLUE metrics."""

import os

import numpy as np
import pytest

from deq_train import glue

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("DEQ_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))

DEV_COUNTS = {"cola": 1043, "sst2": 872, "mrpc": 408, "stsb": 1500, "rte": 277}
# label counts from ../shared/data/README.md
DEV_LABELS = {"cola": {1.0: 721, 0.0: 322}, "sst2": {1.0: 444, 0.0: 428}, "mrpc": {1.0: 279, 0.0: 129},
              "rte": {0.0: 146, 1.0: 131}}


@pytest.mark.parametrize("task", sorted(DEV_COUNTS))
def test_dev_sets_parse_every_row(task):
    path = glue.task_file(DATA, task, "dev")
    assert os.path.isfile(path), f"GLUE data missing at {path} (set DEQ_DATA_DIR)"
    examples = glue.read_examples(path, task)
    assert len(examples) == DEV_COUNTS[task]
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip("\n").split("\n")
    header = 0 if task == "cola" else 1
    assert len(examples) == len(lines) - header  # every data line became one example
    if task in DEV_LABELS:
        counts = {}
        for e in examples:
            counts[e.label] = counts.get(e.label, 0) + 1
        assert counts == DEV_LABELS[task]
    else:
        assert all(0.0 <= e.label <= 5.0 for e in examples)
    pair = task in ("mrpc", "stsb", "rte")
    assert all((e.text_b is not None) == pair for e in examples)


def test_specific_rows():
    mrpc = glue.read_examples(glue.task_file(DATA, "mrpc", "dev"), "mrpc")
    assert mrpc[0].text_a.startswith("He said the foodservice pie business")
    assert mrpc[0].label == 1.0
    stsb = glue.read_examples(glue.task_file(DATA, "stsb", "dev"), "stsb")
    assert stsb[0].text_a == "A man with a hard hat is dancing." and stsb[0].label == 5.0
    cola = glue.read_examples(glue.task_file(DATA, "cola", "dev"), "cola")
    assert cola[0].text_a == "The sailors rode the breeze clear of the rocks." and cola[0].label == 1.0


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return str(p)


def test_malformed_row_names_file_and_line(tmp_path):
    p = write(tmp_path, "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\n")
    with pytest.raises(glue.GlueFormatError, match=r"rte\.tsv:3: expected 4 tab-separated fields for RTE, got 2"):
        glue.read_examples(p, "rte")


def test_bad_label_and_score(tmp_path):
    p = write(tmp_path, "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(glue.GlueFormatError, match=r"rte\.tsv:2: label \"maybe\""):
        glue.read_examples(p, "rte")
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    p = write(tmp_path, "stsb.tsv", header + "0\tg\tf\ty\to\ts\ts\ta\tb\t4.5\n1\tg\tf\ty\to\ts\ts\ta\tb\tx\n")
    with pytest.raises(glue.GlueFormatError, match=r"stsb\.tsv:3: score \"x\" is not a number"):
        glue.read_examples(p, "stsb")
    p = write(tmp_path, "cola.tsv", "src\t1\t\tgood sentence\nsrc\t2\t*\tbad label\n")
    with pytest.raises(glue.GlueFormatError, match=r"cola\.tsv:2: label \"2\""):
        glue.read_examples(p, "cola")


def test_header_bom_empty_and_missing(tmp_path):
    bom = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n"
    assert len(glue.read_examples(write(tmp_path, "mrpc.tsv", bom), "mrpc")) == 1
    with pytest.raises(glue.GlueFormatError, match=r"sst\.tsv:1: header"):
        glue.read_examples(write(tmp_path, "sst.tsv", "text\tlabel\nx\t1\n"), "sst2")
    with pytest.raises(glue.GlueFormatError, match=r"empty\.tsv:1: empty file"):
        glue.read_examples(write(tmp_path, "empty.tsv", ""), "cola")
    with pytest.raises(glue.GlueFormatError, match=r"e2\.tsv:2: empty sentence"):
        glue.read_examples(write(tmp_path, "e2.tsv", "sentence\tlabel\n \t1\n"), "sst2")
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        glue.read_examples(str(tmp_path / "nope.tsv"), "rte")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        glue.task_spec("qnli")


def test_metrics_hand_computed():
    preds = [1, 1, 0, 0, 1, 0]
    labels = [1, 0, 0, 0, 1, 1]
    # tp 2, fp 1, tn 2, fn 1
    assert glue.accuracy(preds, labels) == pytest.approx(4 / 6)
    assert glue.f1_binary(preds, labels) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert glue.matthews_corrcoef(preds, labels) == pytest.approx((2 * 2 - 1 * 1) / np.sqrt(3 * 3 * 3 * 3))
    assert glue.matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0  # empty marginal
    assert glue.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert glue.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties: ranks of x = (1.5, 1.5, 3), y = (1, 2, 3) -> pearson of ranks
    assert glue.spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1])
    assert glue.spearman([1, 4, 9, 16], [1, 2, 3, 4]) == pytest.approx(1.0)
    m = glue.glue_metrics("mrpc", preds, labels)
    assert set(m) == {"accuracy", "f1"}
    assert set(glue.glue_metrics("stsb", [0.1, 0.5, 0.2], [1, 3, 2])) == {"pearson", "spearmanr"}
    with pytest.raises(ValueError, match="differ in length"):
        glue.accuracy([1], [1, 0])


def test_metrics_match_sklearn_and_scipy():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    p = rng.integers(0, 2, 200)
    y = rng.integers(0, 2, 200)
    assert glue.matthews_corrcoef(p, y) == pytest.approx(sklearn_metrics.matthews_corrcoef(y, p), abs=1e-12)
    assert glue.f1_binary(p, y) == pytest.approx(sklearn_metrics.f1_score(y, p), abs=1e-12)
    a = rng.normal(size=100)
    b = np.round(a + rng.normal(size=100), 1)
    assert glue.pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert glue.spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
