"""Mode and rule grammar (Python mirror of deq::parse_mask_rule) and patching errors."""

import pytest
import torch
from transformers import BertConfig, BertModel

from deq_train import modes


@pytest.mark.parametrize("text,expected", [
    ("adamax_nb80", modes.Rule("adaptive_maximum", 0.8, granularity="sequence", before_softmax=True)),
    ("bert_base_adamax_nh70", modes.Rule("adaptive_maximum", 0.7, granularity="head", before_softmax=True)),
    ("adamax_ns90", modes.Rule("adaptive_maximum", 0.9, granularity="row", before_softmax=True)),
    ("adamax_s80", modes.Rule("adaptive_maximum", 0.8, granularity="row", before_softmax=False)),
    ("adamax_b80", modes.Rule("adaptive_maximum", 0.8, granularity="sequence", before_softmax=False)),
    ("refine_2e-2", modes.Rule("probability", 0.02)),
    ("refine_2e1", modes.Rule("probability", 1.0)),
    ("refine_inv_2e-3", modes.Rule("inverse_probability", 0.002)),
    ("sanger_2e-3", modes.Rule("probability", 0.002)),
    ("sanger:0.02", modes.Rule("probability", 0.02)),
    ("prob:0.1", modes.Rule("probability", 0.1)),
    ("invprob:0.1", modes.Rule("inverse_probability", 0.1)),
    ("adamax:0.8", modes.Rule("adaptive_maximum", 0.8, granularity="sequence", before_softmax=True)),
    ("ADAMAX:0.5:probs:head", modes.Rule("adaptive_maximum", 0.5, granularity="head", before_softmax=False)),
    ("invadamax:0.8", modes.Rule("inverse_adaptive_maximum", 0.8, granularity="sequence", before_softmax=False)),
    ("topk:8", modes.Rule("top_k", k=8)),
    ("cumprob:0.9", modes.Rule("cumulative_probability", 0.9)),
    ("  none ", modes.Rule("none")),
    ("all", modes.Rule("all")),
])
def test_rule_parsing(text, expected):
    rule = modes.parse_rule(text)
    assert rule == expected
    assert modes.parse_rule(rule.spec()) == rule


@pytest.mark.parametrize("text", ["adamax_nx80", "adamax_nb", "refine_abc", "prob:1.5", "prob:+0.5", "prob:x",
                                  "adamax:0.8:sequence:head", "adamax:2", "topk:0", "topk:1.5", "cumprob:0",
                                  "all:1", "foo", ""])
def test_rule_errors(text):
    with pytest.raises(modes.ModeError):
        modes.parse_rule(text)


def test_mode_parsing_and_spec():
    cases = {
        "dense": ("dense", None, None, None),
        "Longformer": ("static", "longformer", None, None),
        "bigbird": ("static", "bigbird", None, None),
        "fixed": ("static", "fixed", None, None),
        "sanger:0.02": ("sanger", None, modes.Rule("probability", 0.02), None),
        "sanger:topk:16": ("sanger", None, modes.Rule("top_k", k=16), None),
        "deq:adamax_nb80": ("deq", None, None, modes.Rule("adaptive_maximum", 0.8)),
        "three:sanger:0.002+adamax_nb80": ("three", None, modes.Rule("probability", 0.002),
                                           modes.Rule("adaptive_maximum", 0.8)),
        "three:0.002+refine_2e-2": ("three", None, modes.Rule("probability", 0.002), modes.Rule("probability", 0.02)),
    }
    for text, (kind, pattern, prune, refine) in cases.items():
        m = modes.parse_mode(text)
        assert (m.kind, m.pattern, m.prune, m.refine) == (kind, pattern, prune, refine), text
        assert modes.parse_mode(m.spec()) == m
    assert modes.parse_mode("sanger:0.02").spec() == "sanger:0.02"
    assert modes.parse_mode("deq:adamax_nb80").spec() == "deq:adamax:0.8:sequence:logits"
    assert modes.parse_mode("three:sanger:0.002+adamax_nb80").spec() == "three:prob:0.002+adamax:0.8:sequence:logits"
    assert modes.parse_mode("deq:adamax_nb80").uses_predictor and not modes.parse_mode("fixed").uses_predictor


@pytest.mark.parametrize("text,match", [
    ("sparse", "unknown attention mode"), ("sanger", "unknown attention mode"), ("sanger:1.5", "theta = 1.5"),
    ("deq:adamax:0.8:foo", "unknown mask rule"), ("three:sanger:0.1", "unknown attention mode"),
    ("three:+adamax_nb80", "unknown attention mode"), ("deq:", "unknown attention mode")])
def test_mode_errors_name_the_text(text, match):
    with pytest.raises(modes.ModeError, match=match) as e:
        modes.parse_mode(text)
    assert "grammar" in str(e.value) or "must be" in str(e.value)


def test_patch_model_errors():
    cfg = BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64,
                     vocab_size=50, attn_implementation="eager")
    model = BertModel(cfg)
    patched = modes.patch_model(model, "sanger:0.02")
    assert [m.layer_index for m in patched] == [0, 1]
    assert model.encoder.layer[1].attention.self.query is patched[1].query  # weights kept
    with pytest.raises(ValueError, match="no transformers BertSelfAttention"):
        modes.patch_model(model, "dense")
    decoder = BertModel(BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1, intermediate_size=64,
                                   vocab_size=50, is_decoder=True))
    with pytest.raises(ValueError, match="is_decoder"):
        modes.patch_model(decoder, "dense")
    with pytest.raises(modes.ModeError):
        modes.static_mask("longformer", 513)


def test_static_pattern_densities():
    # research notes §1.7: densities over the full L x L square
    assert modes.static_mask("longformer", 128).float().mean().item() == pytest.approx(0.531, abs=1e-3)
    assert modes.static_mask("fixed", 128).float().mean().item() == pytest.approx(0.625, abs=1e-3)
    assert modes.static_mask("longformer", 512).float().mean().item() == pytest.approx(0.150, abs=1e-3)
    assert modes.static_mask("fixed", 384).float().mean().item() == pytest.approx(0.375, abs=1e-3)
