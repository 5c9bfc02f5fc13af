"""Training-time semantics: EMA calibration of the quantizer, detached masks, and the DEQ straight-through
estimator (gradients through Ŝ into Q and K)."""

import math

import numpy as np
import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertSelfAttention

from deq_reference import reference as ref
from deq_train import modes


def test_ema_calibration_sequence():
    qm = modes.QuantizedMatMul(bits=4)
    qm.train()
    y = torch.ones(1, 1, 2, 1)
    seq = [torch.tensor([[0.5, -2.0]]), torch.tensor([[1.0, 0.25]]), torch.tensor([[-3.0, 0.0]])]
    expected, t = [], None
    for x in seq:
        m = float(x.abs().max())
        t = m if t is None else t - (1 - 0.9999) * (t - m)  # first step sets, then EMA with decay 0.9999
        expected.append(t)
        qm(x[None, None], y)
        assert qm.input_x_thresh.shape == (1,) and qm.input_x_thresh.dtype == torch.float32
        assert qm.input_x_thresh.item() == pytest.approx(t, rel=1e-6)
        assert qm.input_y_thresh.item() == pytest.approx(1.0)
    assert expected[0] == 2.0
    assert expected[1] == pytest.approx(2.0 - 1e-4 * (2.0 - 1.0))
    assert qm._step.item() == 3
    # evaluation mode uses the stored thresholds and never updates them
    qm.eval()
    before = qm.input_x_thresh.clone()
    qm(torch.full((1, 1, 1, 2), 100.0), torch.ones(1, 1, 2, 1))
    assert torch.equal(qm.input_x_thresh, before) and qm._step.item() == 3


def test_uncalibrated_quantizer_refuses_to_evaluate():
    qm = modes.QuantizedMatMul(layer_index=4)
    qm.eval()
    with pytest.raises(RuntimeError, match="layer 4 are not calibrated"):
        qm(torch.ones(1, 1, 1, 2), torch.ones(1, 1, 2, 1))


def small_attention(mode_text, seed=0, hidden=32, heads=4):
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=hidden, num_attention_heads=heads, attention_probs_dropout_prob=0.0,
                     attn_implementation="eager")
    original = BertSelfAttention(cfg)
    return modes.DeqSelfAttention(original, modes.parse_mode(mode_text), layer_index=0)


def qkv(seed, b=2, h=4, l=12, d=8, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    t = [(torch.randn(b, h, l, d, generator=g) * scale).requires_grad_() for _ in range(3)]
    valid = torch.ones(b, l, dtype=torch.bool)
    valid[1, 8:] = False
    return t, valid


def test_first_training_step_sets_thresholds_to_normalised_abs_max():
    attn = small_attention("sanger:0.02")
    attn.train()
    (q, k, v), valid = qkv(1)
    attn.attention(q, k, v, valid)
    x_t, y_t = ref.calibrate_thresholds(q.detach(), k.detach().transpose(-1, -2))
    assert attn.quant_matmul.input_x_thresh.item() == pytest.approx(x_t, rel=1e-7)
    assert attn.quant_matmul.input_y_thresh.item() == pytest.approx(y_t, rel=1e-7)


def test_sanger_mask_is_detached():
    attn = small_attention("sanger:0.05")
    attn.train()
    (q, k, v), valid = qkv(2)
    out, _, info = attn.attention(q, k, v, valid)
    assert not info["kept"].requires_grad and not info["predicted"].requires_grad
    frac = info["kept"].float().mean().item()
    assert 0.05 < frac < 0.95  # the mask does prune and keep
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), (q, k, v))
    # the same attention with the mask as a constant
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    pad = ref.extended_attention_mask(valid, q.dtype)
    scores = q2 @ k2.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores + (1.0 - info["kept"].float()) * ref.PENALTY + pad
    out2 = torch.softmax(scores, -1) @ v2
    grads2 = torch.autograd.grad((out2 * g).sum(), (q2, k2, v2))
    assert torch.equal(out.detach(), out2.detach())
    for a, b in zip(grads, grads2):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


def test_predictor_gradient_is_the_straight_through_estimate():
    """Ŝ = FQ(q/|q|)·FQ(k/|k|) |q||k| / sqrt(d), hand-computed example with d = 3.
    q = (3, 4, 0): |q| = 5, n = (0.6, 0.8, 0), 7n = (4.2, 5.6, 0) -> a = (4, 6, 0)/7.
    k = (1, 2, 2): |k| = 3, m = (1, 2, 2)/3, 7m = (2.33, 4.67, 4.67) -> b = (2, 5, 5)/7.
    STE: dŜ/dq = |k|/sqrt(d) [(I - n nᵀ) b + (a·b) n], dŜ/dk = |q|/sqrt(d) [(I - m mᵀ) a + (a·b) m]."""
    q = torch.tensor([[[[3.0, 4.0, 0.0]]]], requires_grad=True)
    k = torch.tensor([[[[1.0, 2.0, 2.0]]]], requires_grad=True)
    qm = modes.QuantizedMatMul(bits=4)
    qm.set_thresholds(1.0, 1.0)
    qm.eval()
    s = modes.predicted_scores(q, k, qm)
    a = np.array([4.0, 6.0, 0.0]) / 7
    b = np.array([2.0, 5.0, 5.0]) / 7
    n = np.array([0.6, 0.8, 0.0])
    m = np.array([1.0, 2.0, 2.0]) / 3
    ab = a @ b
    assert s.item() == pytest.approx(ab * 5 * 3 / math.sqrt(3), rel=1e-6)
    s.sum().backward()
    dq = 3 / math.sqrt(3) * ((np.eye(3) - np.outer(n, n)) @ b + ab * n)
    dk = 5 / math.sqrt(3) * ((np.eye(3) - np.outer(m, m)) @ a + ab * m)
    assert np.allclose(q.grad.reshape(3).numpy(), dq, atol=1e-6)
    assert np.allclose(k.grad.reshape(3).numpy(), dk, atol=1e-6)
    # the true derivative of the quantized function would be different (round() has zero gradient)
    assert not np.allclose(dq, 3 / math.sqrt(3) * ab * n)


def ste_reference_scores(q, k, x_t, y_t, bits=4):
    """Independent STE composition: n + stopgrad(FQ(n) - n)."""
    d = q.shape[-1]
    qn = q.norm(dim=-1, keepdim=True)
    kn = k.norm(dim=-1, keepdim=True)
    nq, nk = q / qn, k / kn
    fq = nq + (ref.fake_quantize(nq, ref.get_scale(bits, torch.tensor([x_t])), bits) - nq).detach()
    fk = nk + (ref.fake_quantize(nk, ref.get_scale(bits, torch.tensor([y_t])), bits) - nk).detach()
    return (fq @ fk.transpose(-1, -2)) * (qn * kn.transpose(-1, -2)) / math.sqrt(d)


@pytest.mark.parametrize("mode_text", ["deq:adamax:0.6:row:logits", "deq:none", "three:sanger:0.01+refine_5e-2"])
def test_deq_gradients_flow_through_predicted_scores(mode_text):
    attn = small_attention(mode_text)
    attn.train()
    (q, k, v), valid = qkv(3)
    out, _, info = attn.attention(q, k, v, valid)
    refined = info["refined"]
    assert not refined.requires_grad
    assert info["predicted"].requires_grad  # Ŝ is in the graph
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), (q, k, v))
    # independent composition of the same function with the STE
    x_t = attn.quant_matmul.input_x_thresh.item()
    y_t = attn.quant_matmul.input_y_thresh.item()
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    s_hat = ste_reference_scores(q2, k2, x_t, y_t)
    assert torch.allclose(s_hat.detach(), info["predicted"].detach(), rtol=0, atol=1e-5)
    scores = torch.where(refined, q2 @ k2.transpose(-1, -2) / math.sqrt(q.shape[-1]), s_hat)
    if info["kept"] is not None:
        scores = scores + (~info["kept"]).float() * ref.PENALTY
    out2 = torch.softmax(scores + ref.extended_attention_mask(valid, q.dtype), -1) @ v2
    grads2 = torch.autograd.grad((out2 * g).sum(), (q2, k2, v2))
    for a, b in zip(grads, grads2):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (a - b).abs().max()
    # and the Ŝ path does carry gradient: without it (Ŝ detached) the Q gradient changes
    q3, k3, v3 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    scores3 = torch.where(refined, q3 @ k3.transpose(-1, -2) / math.sqrt(q.shape[-1]), s_hat.detach())
    if info["kept"] is not None:
        scores3 = scores3 + (~info["kept"]).float() * ref.PENALTY
    out3 = torch.softmax(scores3 + ref.extended_attention_mask(valid, q.dtype), -1) @ v3
    gq3 = torch.autograd.grad((out3 * g).sum(), q3)[0]
    assert (grads[0] - gq3).abs().max() > 1e-3


def test_deq_all_low_precision_gradient_is_nonzero_through_predictor_only():
    """deq:none uses Ŝ for every score: all of Q's gradient comes through the STE path."""
    attn = small_attention("deq:none")
    attn.train()
    (q, k, v), valid = qkv(4)
    out, _, info = attn.attention(q, k, v, valid)
    assert not info["refined"].any()
    gq, gk = torch.autograd.grad(out.pow(2).sum(), (q, k))
    assert gq.abs().sum() > 0 and gk.abs().sum() > 0


def test_attention_probability_dropout_only_in_training():
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_attention_heads=4, attention_probs_dropout_prob=0.5, attn_implementation="eager")
    attn = modes.DeqSelfAttention(BertSelfAttention(cfg), modes.parse_mode("sanger:0.02"), layer_index=0)
    (q, k, v), valid = qkv(5)
    attn.train()
    _, probs_train, _ = attn.attention(q, k, v, valid)
    attn.eval()
    _, probs_eval, _ = attn.attention(q, k, v, valid)
    assert (probs_train == 0).float().mean() > 0.3  # dropped after masking
    assert torch.allclose(probs_eval.sum(-1), torch.ones_like(probs_eval.sum(-1)), atol=1e-5)
