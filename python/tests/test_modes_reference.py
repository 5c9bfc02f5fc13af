"""The patched attention in eval mode equals deq_reference.reference (the independent inference reference)
on random inputs, for every mode; dense mode equals Hugging Face's own BertSelfAttention."""

import math

import pytest
import torch
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertSelfAttention

from deq_reference import reference as ref
from deq_train import modes

HIDDEN, HEADS, LENGTH, BATCH = 64, 4, 40, 3


def tiny_config(**kw):
    cfg = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=2, intermediate_size=128,
               vocab_size=120, max_position_embeddings=512, attn_implementation="eager")
    cfg.update(kw)
    return BertConfig(**cfg)


def make_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(BATCH, LENGTH, HIDDEN, generator=g) * 1.5
    valid = torch.ones(BATCH, LENGTH, dtype=torch.bool)
    valid[1, 29:] = False
    valid[2, 11:] = False
    return hidden, valid


def hf_mask(valid):
    """Hugging Face's eager 4-D additive mask [B, 1, L, L] (0 / finfo.min)."""
    m = torch.zeros(valid.shape[0], 1, valid.shape[1], valid.shape[1])
    return m.masked_fill(~valid[:, None, None, :], torch.finfo(torch.float32).min)


def projected(attn, hidden):
    b, l, _ = hidden.shape
    shape = (b, l, attn.num_attention_heads, attn.attention_head_size)
    return [lin(hidden).view(shape).transpose(1, 2) for lin in (attn.query, attn.key, attn.value)]


REFERENCE_ARGS = {
    "sanger:0.02": dict(prune={"kind": "probability", "value": 0.02, "k": 0, "granularity": "sequence", "before_softmax": True}),
    "deq:adamax_nb80": dict(refine={"kind": "adaptive_maximum", "value": 0.8, "k": 0, "granularity": "sequence", "before_softmax": True}),
    "deq:adamax:0.5:row:probs": dict(refine={"kind": "adaptive_maximum", "value": 0.5, "k": 0, "granularity": "row", "before_softmax": False}),
    "deq:refine_2e-2": dict(refine={"kind": "probability", "value": 0.02, "k": 0, "granularity": "sequence", "before_softmax": True}),
    "three:sanger:0.002+adamax_nb80": dict(
        prune={"kind": "probability", "value": 0.002, "k": 0, "granularity": "sequence", "before_softmax": True},
        refine={"kind": "adaptive_maximum", "value": 0.8, "k": 0, "granularity": "sequence", "before_softmax": True}),
    "longformer": dict(static="longformer"),
    "fixed": dict(static="fixed"),
    "dense": dict(),
}


@pytest.mark.parametrize("mode_text", sorted(REFERENCE_ARGS))
def test_eval_mode_equals_reference(mode_text):
    torch.manual_seed(3)
    original = BertSelfAttention(tiny_config())
    hidden, valid = make_inputs(7)
    with torch.no_grad():
        q, k, v = projected(original, hidden)
    args = dict(REFERENCE_ARGS[mode_text])
    mode = modes.parse_mode(mode_text)
    patched = modes.DeqSelfAttention(original, mode, layer_index=0)
    quant = None
    if mode.uses_predictor:
        x_t, y_t = ref.calibrate_thresholds(q, k.transpose(-1, -2))
        patched.quant_matmul.set_thresholds(x_t, y_t)
        quant = ref.QuantizedMatMul(4, x_t, y_t)
    if "static" in args:
        args["static"] = ref.static_mask(args["static"], LENGTH)
    patched.eval()
    with torch.no_grad():
        out, _ = patched(hidden, hf_mask(valid))
        expect, info = ref.bert_self_attention(q, k, v, valid, quant_matmul=quant, **args)
        _, _, mine = patched.attention(q, k, v, valid)
    expect = expect.transpose(1, 2).reshape(BATCH, LENGTH, HIDDEN)
    # Outputs agree with the reference (rows of padded queries included).
    assert torch.allclose(out, expect, rtol=0, atol=1e-6), (out - expect).abs().max()
    if mode.uses_predictor:
        assert torch.equal(mine["predicted"], info["predicted"])  # bit-identical predictor
    for name in ("kept", "refined"):
        if info[name] is not None:
            assert torch.equal(mine[name].bool(), info[name].bool())


def test_masks_are_nontrivial_in_the_reference_comparison():
    """Guards the comparison above against vacuous masks: each rule selects some but not all entries."""
    torch.manual_seed(3)
    original = BertSelfAttention(tiny_config())
    hidden, valid = make_inputs(7)
    with torch.no_grad():
        q, k, v = projected(original, hidden)
    for mode_text in ("sanger:0.02", "deq:adamax_nb80", "deq:refine_2e-2"):
        mode = modes.parse_mode(mode_text)
        patched = modes.DeqSelfAttention(original, mode, layer_index=0)
        patched.quant_matmul.set_thresholds(*ref.calibrate_thresholds(q, k.transpose(-1, -2)))
        patched.eval()
        with torch.no_grad():
            _, _, info = patched.attention(q, k, v, valid)
        mask = info["kept"] if info["kept"] is not None else info["refined"]
        frac = mask.float().mean().item()
        assert 0.0 < frac < 1.0, (mode_text, frac)


def test_bigbird_uses_deq_generator_layout():
    """BigBird: window, global block 0 and exactly the random blocks of deq's SplitMix64 draw."""
    mask = modes.static_mask("bigbird", 512)
    rng = modes.SplitMix64(42)
    for row in range(32):
        picks = rng.sample(32, 1)
        block = mask[row * 16, ::16]
        expected = torch.zeros(32, dtype=torch.int64)
        expected[max(0, row - 1): row + 2] = 1
        expected[0] = 1
        expected[picks] = 1
        if row == 0:
            expected[:] = 1
        assert torch.equal(block, expected), row
    # density over the 128 x 128 GLUE square is in the reference's range (≈0.53)
    d = modes.static_mask("bigbird", 128).float().mean().item()
    assert 0.45 < d < 0.65


def test_splitmix64_matches_known_values():
    """SplitMix64 with seed 0: first outputs of the published reference generator."""
    rng = modes.SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_dense_mode_equals_hugging_face_model():
    torch.manual_seed(5)
    model = BertModel(tiny_config())
    model.eval()
    ids = torch.randint(1, 120, (BATCH, LENGTH))
    _, valid = make_inputs(1)
    with torch.no_grad():
        expect = model(input_ids=ids, attention_mask=valid.long()).last_hidden_state
        modes.patch_model(model, "dense")
        got = model(input_ids=ids, attention_mask=valid.long()).last_hidden_state
    assert isinstance(model.encoder.layer[0].attention.self, modes.DeqSelfAttention)
    real = valid[:, :, None].expand_as(got)
    assert torch.allclose(got[real], expect[real], rtol=0, atol=2e-6), (got - expect)[real].abs().max()


def test_dense_module_equals_hugging_face_self_attention_sdpa_and_eager():
    torch.manual_seed(6)
    hidden, valid = make_inputs(2)
    for impl in ("eager", "sdpa"):
        original = BertSelfAttention(tiny_config(attn_implementation=impl))
        original.eval()
        with torch.no_grad():
            expect = original(hidden, attention_mask=hf_mask(valid))[0]
            got = modes.DeqSelfAttention(original, modes.parse_mode("dense")).eval()(hidden, hf_mask(valid))[0]
            bool_mask = valid[:, None, None, :].expand(BATCH, 1, LENGTH, LENGTH)
            got_bool = modes.DeqSelfAttention(original, modes.parse_mode("dense")).eval()(hidden, bool_mask)[0]
        assert torch.allclose(got, expect, rtol=0, atol=1e-6), impl
        assert torch.equal(got, got_bool)


def test_causal_masks_are_rejected():
    original = BertSelfAttention(tiny_config())
    hidden, _ = make_inputs(2)
    causal = torch.tril(torch.ones(LENGTH, LENGTH, dtype=torch.bool))[None, None].expand(BATCH, 1, LENGTH, LENGTH)
    with pytest.raises(ValueError, match="differs across query rows"):
        modes.DeqSelfAttention(original, modes.parse_mode("dense"))(hidden, causal)


# SHA-256 of the 512 x 512 token masks printed (row-major '0'/'1' text) by the C++ library:
# deq::make_static_mask(deq::exec::serial{}, deq::parse_static_pattern(name), 512) (heads = 1), i.e.
# the exact patterns the C++ evaluator applies, BigBird's random blocks included.
CPP_STATIC_MASK_SHA256 = {
    "bigbird": "52472a9801bd2718d87ea076e69387eb69c04a998bdcf6f8df7738038a13216d",
    "hugebird": "b0e4864d57dc6790927be17ed7f71641506ee62e886f364bc4c3dbe94f784785",
    "longformer": "e66c166212cc2327e41481a7e95036080dfafcd1f31f37780d4328832a72c6f9",
    "fixed": "b201edde79b39da0cf4bf90f56e50dc5eb3dee594f2164b53d413d934882fece",
}


@pytest.mark.parametrize("name", sorted(CPP_STATIC_MASK_SHA256))
def test_static_masks_are_the_cpp_library_masks(name):
    import hashlib

    mask = modes.static_mask(name, 512)
    text = "".join("".join("1" if x else "0" for x in row) for row in mask.tolist())
    assert hashlib.sha256(text.encode()).hexdigest() == CPP_STATIC_MASK_SHA256[name]
