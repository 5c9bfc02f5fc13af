"""Export round trip: HF names and shapes in model.safetensors, the per-layer thresholds, config.json's
"deq" section, vocab copy, and loading the directory back gives the same predictions."""

import json
import os

import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertForSequenceClassification

from deq_train import export, modes


def tiny_model(num_labels=2, problem_type="single_label_classification"):
    torch.manual_seed(11)
    cfg = BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=3, intermediate_size=64, vocab_size=50,
                     num_labels=num_labels, problem_type=problem_type, attn_implementation="eager")
    return BertForSequenceClassification(cfg)


def train_one_step(model, labels):
    ids = torch.randint(1, 50, (4, 16))
    mask = torch.ones(4, 16, dtype=torch.long)
    mask[2, 10:] = 0
    model.train()
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    return ids, mask


def source_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    return str(src)


@pytest.mark.parametrize("mode_text,task", [("deq:adamax_nb80", "rte"), ("sanger:0.02", "stsb"), ("dense", "mrpc")])
def test_export_round_trip(tmp_path, mode_text, task):
    regression = task == "stsb"
    model = tiny_model(1 if regression else 2, "regression" if regression else "single_label_classification")
    modes.patch_model(model, mode_text)
    labels = torch.tensor([0.5, 2.0, 4.0, 1.0]) if regression else torch.tensor([0, 1, 1, 0])
    ids, mask = train_one_step(model, labels)
    out = tmp_path / "export"
    info = export.export_model(model, source_dir(tmp_path), str(out), task, extra={"max_seq_length": 128})

    mode = modes.parse_mode(mode_text)
    with safe_open(info["weights"], "pt") as f:
        names = set(f.keys())
        expected = {n for n in model.state_dict() if not n.endswith("_step")}
        assert names == expected
        assert all(n.startswith("bert.") or n.startswith("classifier.") for n in names)
        for layer in range(3):
            assert f"bert.encoder.layer.{layer}.attention.self.query.weight" in names
        assert "bert.pooler.dense.weight" in names
        assert tuple(f.get_tensor("classifier.weight").shape) == (1 if regression else 2, 32)
        assert tuple(f.get_tensor("classifier.bias").shape) == (1 if regression else 2,)
        thresholds = export.threshold_names(3)
        assert thresholds[0] == "bert.encoder.layer.0.attention.self.quant_matmul.input_x_thresh"
        assert thresholds[1] == "bert.encoder.layer.0.attention.self.quant_matmul.input_y_thresh"
        if mode.uses_predictor:
            for layer, m in enumerate(modes.deq_modules(model)):
                x = f.get_tensor(f"bert.encoder.layer.{layer}.attention.self.quant_matmul.input_x_thresh")
                y = f.get_tensor(f"bert.encoder.layer.{layer}.attention.self.quant_matmul.input_y_thresh")
                assert x.shape == (1,) and x.dtype == torch.float32 and y.shape == (1,) and y.dtype == torch.float32
                assert x.item() == m.quant_matmul.input_x_thresh.item() > 0
                assert y.item() == m.quant_matmul.input_y_thresh.item() > 0
        else:
            assert not any("quant_matmul" in n for n in names)
        for n in names:
            assert torch.equal(f.get_tensor(n), model.state_dict()[n])

    config = json.loads((out / "config.json").read_text())
    assert config["deq"]["attention_mode"] == mode.spec()
    assert config["deq"]["max_seq_length"] == 128
    assert config["num_labels"] == (1 if regression else 2)
    assert config["problem_type"] == ("regression" if regression else "single_label_classification")
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["deq"]["threshold_tensors"] == (export.threshold_names(3) if mode.uses_predictor else [])
    assert (out / "vocab.txt").read_bytes() == (tmp_path / "src" / "vocab.txt").read_bytes()

    loaded, loaded_mode, _ = export.load_exported(str(out))
    assert loaded_mode == mode
    model.eval()
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = loaded(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(a, b)


def test_export_refuses_uncalibrated_thresholds(tmp_path):
    model = tiny_model()
    modes.patch_model(model, "deq:adamax_nb80")
    with pytest.raises(ValueError, match="never calibrated"):
        export.export_model(model, source_dir(tmp_path), str(tmp_path / "out"), "rte")


def test_load_exported_names_missing_threshold(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_model()
    modes.patch_model(model, "deq:adamax_nb80")
    train_one_step(model, torch.tensor([0, 1, 1, 0]))
    out = tmp_path / "out"
    info = export.export_model(model, source_dir(tmp_path), str(out), "rte")
    tensors = load_file(info["weights"])
    del tensors["bert.encoder.layer.1.attention.self.quant_matmul.input_y_thresh"]
    save_file(tensors, info["weights"])
    with pytest.raises(KeyError, match="layer.1.attention.self.quant_matmul.input_y_thresh"):
        export.load_exported(str(out))


def test_load_exported_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        export.load_exported(str(tmp_path))
