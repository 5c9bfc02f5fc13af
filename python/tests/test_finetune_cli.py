"""End-to-end run of the fine-tuning CLI on a tiny random BERT (real RTE rows, a few steps): trains with a
predictor mode in the loop, writes results.json, dev predictions and the export; --eval-only on the export
reproduces the predictions."""

import json
import os
import re

import pytest
import torch
from transformers import BertConfig, BertModel

from deq_train import finetune_glue, glue

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("DEQ_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))


def tiny_model_dir(tmp_path):
    words = {}
    for e in glue.read_examples(glue.task_file(DATA, "rte", "train"), "rte")[:200]:
        for w in re.findall(r"[a-z]+", (e.text_a + " " + e.text_b).lower()):
            words[w] = words.get(w, 0) + 1
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz.,'\"-0123456789")
    vocab += sorted(w for w, c in words.items() if c >= 3 and w not in vocab)
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}))
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64,
                     vocab_size=len(vocab), max_position_embeddings=512)
    BertModel(cfg).save_pretrained(str(d))
    return str(d)


def test_cli_train_export_and_eval_only(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    out = tmp_path / "run"
    common = ["--task", "rte", "--data-dir", DATA, "--threads", "1", "--max-eval-examples", "12"]
    res = finetune_glue.main(common + ["--mode", "deq:adamax_nb80", "--epochs", "1", "--batch-size", "8",
                                       "--max-train-examples", "24", "--max-length", "64", "--model", model_dir,
                                       "--out", str(out)])
    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == "deq:adamax:0.8:sequence:logits"
    assert saved["train_examples"] == 24 and saved["dev_examples"] == 12
    assert saved["train"]["steps"] == 3
    assert set(saved["metrics"]) == {"accuracy"}
    ratio = saved["attention"]["refinement_ratio"]
    assert ratio["calls"] == 12 * 2  # one call per example and layer (eval one example at a time)
    assert 0.0 <= ratio["mean_over_calls"] <= 1.0
    assert len(saved["thresholds"]) == 2 and all(t["input_x_thresh"] > 0 for t in saved["thresholds"])
    assert res["metrics"] == saved["metrics"]
    rows = (out / "dev_predictions.tsv").read_text().strip().split("\n")
    assert len(rows) == 13
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["deq"]["train_padding"] == "batch" and config["deq"]["eval_padding"] == "none"

    again = tmp_path / "again"
    res2 = finetune_glue.main(common + ["--eval-only", "--model", str(out / "model"), "--out", str(again)])
    assert res2["metrics"] == saved["metrics"]
    assert (again / "dev_predictions.tsv").read_text() == (out / "dev_predictions.tsv").read_text()

    # the same export in double precision (model.double()): recorded as such, logits equal to rounding
    wide = tmp_path / "f64"
    finetune_glue.main(common + ["--eval-only", "--model", str(out / "model"), "--eval-dtype", "float64", "--out", str(wide)])
    assert json.loads((wide / "results.json").read_text())["eval_dtype"] == "float64"
    assert saved.get("eval_dtype") == "float32"

    def logits(path):
        return [[float(v) for v in r.split("\t")[3].split()] for r in path.read_text().strip().split("\n")[1:]]

    for a, b in zip(logits(out / "dev_predictions.tsv"), logits(wide / "dev_predictions.tsv")):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    with pytest.raises(SystemExit):  # training is float32
        finetune_glue.main(common + ["--eval-dtype", "float64", "--model", model_dir, "--out", str(tmp_path / "x")])


def test_cli_rejects_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        finetune_glue.main(["--task", "rte", "--mode", "sanger:7"])
    assert "theta = 7" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune_glue.main(["--task", "rte", "--eval-only"])
    with pytest.raises(SystemExit):
        finetune_glue.main(["--task", "rte", "--max-length", "1000"])


def test_cli_eval_only_rejects_a_different_mode(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    out = tmp_path / "run"
    finetune_glue.main(["--task", "rte", "--data-dir", DATA, "--threads", "1", "--max-eval-examples", "4",
                        "--mode", "sanger:0.02", "--epochs", "1", "--batch-size", "8", "--max-train-examples", "8",
                        "--max-length", "32", "--model", model_dir, "--out", str(out)])
    with pytest.raises(SystemExit, match="differs from the exported model's mode sanger:0.02"):
        finetune_glue.main(["--task", "rte", "--data-dir", DATA, "--eval-only", "--model", str(out / "model"),
                            "--mode", "dense", "--out", str(tmp_path / "x")])


def test_cli_eval_mode_scores_a_checkpoint_in_another_mode(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    common = ["--task", "rte", "--data-dir", DATA, "--threads", "1", "--max-eval-examples", "6"]
    train = ["--epochs", "1", "--batch-size", "8", "--max-train-examples", "8", "--max-length", "48",
             "--model", model_dir]
    sanger = tmp_path / "sanger"
    finetune_glue.main(common + ["--mode", "sanger:0.02", "--out", str(sanger)] + train)
    as_deq = tmp_path / "as_deq"
    res = finetune_glue.main(common + ["--eval-only", "--model", str(sanger / "model"),
                                       "--eval-mode", "deq:adamax_nb50", "--out", str(as_deq)])
    saved = json.loads((as_deq / "results.json").read_text())
    assert saved["mode"] == "deq:adamax:0.5:sequence:logits" and saved["trained_mode"] == "sanger:0.02"
    assert "refinement_ratio" in saved["attention"] and res["metrics"] == saved["metrics"]
    # the quantizer thresholds are the checkpoint's, not re-calibrated
    trained = json.loads((sanger / "results.json").read_text())["thresholds"]
    assert saved["thresholds"] == trained
    with pytest.raises(SystemExit):  # --eval-mode without --eval-only
        finetune_glue.main(common + ["--eval-mode", "dense", "--out", str(tmp_path / "x")])
    dense = tmp_path / "dense"
    finetune_glue.main(common + ["--mode", "dense", "--out", str(dense)] + train)
    with pytest.raises(KeyError, match="input_x_thresh missing .*a checkpoint trained without a predictor"):
        finetune_glue.main(common + ["--eval-only", "--model", str(dense / "model"), "--eval-mode", "sanger:0.02",
                                     "--out", str(tmp_path / "y")])
    # ... unless thresholds are given (the file format of deq::bert::predictor_thresholds, as bert_glue saves it)
    good = {"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4, "origin": "test",
            "layers": [{"input_x_thresh": 0.5, "input_y_thresh": 0.625}, {"input_x_thresh": 0.75, "input_y_thresh": 1}]}
    tfile = tmp_path / "thresholds.json"
    tfile.write_text(json.dumps(good))
    finetune_glue.main(common + ["--eval-only", "--model", str(dense / "model"), "--eval-mode", "sanger:0.02",
                                 "--thresholds", str(tfile), "--out", str(tmp_path / "z")])
    saved = json.loads((tmp_path / "z" / "results.json").read_text())
    assert saved["mode"] == "sanger:0.02" and saved["trained_mode"] == "dense"
    assert [(t["input_x_thresh"], t["input_y_thresh"]) for t in saved["thresholds"]] == [(0.5, 0.625), (0.75, 1.0)]
    with pytest.raises(SystemExit):  # --thresholds without --eval-only
        finetune_glue.main(common + ["--thresholds", str(tfile), "--out", str(tmp_path / "w")])
    for bad, message in ((dict(good, format="other"), "format"), (dict(good, bits=8), "bits = 8"),
                         (dict(good, layers=[{"input_x_thresh": 0.5, "input_y_thresh": -1}] * 2),
                          r"layers\[0\].input_y_thresh = -1"),
                         (dict(good, layers=good["layers"][:1]), "1 layers of predictor thresholds for a model with 2")):
        tfile.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            finetune_glue.main(common + ["--eval-only", "--model", str(dense / "model"), "--eval-mode", "sanger:0.02",
                                         "--thresholds", str(tfile), "--out", str(tmp_path / "v")])
    tfile.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read predictor thresholds"):
        finetune_glue.main(common + ["--eval-only", "--model", str(dense / "model"), "--eval-mode", "sanger:0.02",
                                     "--thresholds", str(tfile), "--out", str(tmp_path / "u")])
