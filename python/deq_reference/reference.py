"""Independent PyTorch implementation of the Sanger / DEQ attention semantics.

This module implements the formulas of the research notes (algorithm.md §1.2-§1.4, §3.2 and §5) directly with
torch operations, in the style of the reference code (hatsu3/Sanger ``quant_utils.py``,
``modeling_sanger_spattn.py``, ``modeling_static_spattn.py`` and ACA-Lab/DEQ ``modeling_refine.py``,
``modeling_bert.py``).  It is deliberately written without looking at the deq C++ sources: it is the
independent side of the comparison in tests/reference.

Tensors use the reference layout: q, v are [B, H, L, d]; inside ``bert_self_attention`` the key is transposed
to [B, H, d, L] exactly as ``BertSelfAttention`` does.  Padding is given as ``valid`` [B, L] (1 = real token)
and turned into Hugging Face's extended additive mask ``(1 - valid) * -10000`` of shape [B, 1, 1, L].

Deviations from the reference, each one a documented deq convention:

* zero-norm q or k rows: the reference divides 0 by 0 (NaN).  Here the normalised row is set to 0, so the
  predicted score of such a row/column is 0 (deq's documented finite behaviour).
* ``top_k`` and ``cumulative_probability`` are deq extensions with no reference code; they are defined on the
  predicted probabilities over the real (non-padded) keys of each row.
* three-level: the reference cannot combine pruning and refinement (the assignment ``S[R == 0] = Ŝ``
  overwrites the pruning penalties).  deq's three-level map applies the refinement rule to Ŝ, intersects
  it with the kept set (refined ⊆ kept), substitutes Ŝ for the non-refined scores and *then* adds the pruning
  penalty.
"""

import math

import torch
import torch.nn.functional as F

PENALTY = -10000.0


# --------------------------------------------------------------------------------------------------------
# quant_utils.py: symmetric per-tensor fake quantization
# --------------------------------------------------------------------------------------------------------
def calc_max_quant_value(bits):
    """Largest symmetric quantized level, 2^(bits-1) - 1 (7 for 4 bits)."""
    return 2 ** (bits - 1) - 1


def get_scale(bits, threshold):
    """Quantization scale for a clipping threshold: max level / threshold."""
    return calc_max_quant_value(bits) / threshold


def quantize(input, scale, bits):
    """Linear quantization: round half to even (torch.round) and clamp to [-max, max]."""
    thresh = calc_max_quant_value(bits)
    return input.mul(scale).round().clamp(-thresh, thresh)


def dequantize(input, scale):
    """Linear dequantization."""
    return input.div(scale)


def fake_quantize(input, scale, bits):
    """dequantize(quantize(x)), the forward of FakeLinearQuantizationWithSTE."""
    return dequantize(quantize(input, scale, bits), scale)


class QuantizedMatMul:
    """Evaluation-mode ``QuantizedMatMul('sym', input_bits)`` with its two per-tensor threshold buffers."""

    def __init__(self, input_bits, input_x_thresh, input_y_thresh, dtype=torch.float32):
        self.input_bits = input_bits
        self.input_x_thresh = torch.tensor([input_x_thresh], dtype=dtype)
        self.input_y_thresh = torch.tensor([input_y_thresh], dtype=dtype)

    def __call__(self, x, y):
        x_scale = get_scale(self.input_bits, self.input_x_thresh)
        y_scale = get_scale(self.input_bits, self.input_y_thresh)
        return torch.matmul(
            fake_quantize(x, x_scale, self.input_bits),
            fake_quantize(y, y_scale, self.input_bits),
        )


def _normalize(layer, dim):
    norm = layer.norm(dim=dim, keepdim=True)
    normed = layer / norm
    # deq convention: a zero-norm row has the normalised value 0 (the reference would give NaN).
    normed = torch.where(norm == 0, torch.zeros_like(normed), normed)
    return norm, normed


def normalized_qk(query_layer, key_layer):
    """L2-normalised q (over the head dim) and transposed k (over dim -2), with their norms."""
    query_norm, normed_query_layer = _normalize(query_layer, -1)
    key_norm, normed_key_layer = _normalize(key_layer, -2)
    return query_norm, normed_query_layer, key_norm, normed_key_layer


def calibrate_thresholds(query_layer, key_layer):
    """First calibration step of the EMA quantizer: abs max of the normalised q and k tensors.

    ``key_layer`` is transposed ([B, H, d, L]) as in the reference.
    """
    _, nq, _, nk = normalized_qk(query_layer, key_layer)
    return nq.abs().max().item(), nk.abs().max().item()


def quant_qk_matmul(query_layer, key_layer, quant_matmul):
    """``quant_qk_matmul`` with ``normalize_qk == 'inner_product'`` (key_layer transposed)."""
    query_norm, normed_query_layer, key_norm, normed_key_layer = normalized_qk(query_layer, key_layer)
    quant_attention_scores = quant_matmul(normed_query_layer, normed_key_layer)
    quant_attention_scores *= query_norm * key_norm
    return quant_attention_scores


# --------------------------------------------------------------------------------------------------------
# Masks (modeling_sanger_spattn.py / modeling_refine.py, plus the deq extensions)
# --------------------------------------------------------------------------------------------------------
def extended_attention_mask(valid, dtype):
    """Hugging Face's additive padding mask [B, 1, 1, L]: 0 for real tokens, -10000 for padding."""
    extended = valid[:, None, None, :].to(dtype=dtype)
    return (1.0 - extended) * PENALTY


def gen_sparsity_mask(threshold, attention_scores, attn_mask):
    """Sanger: keep = softmax(Ŝ + mask) > θ.  Returns the 0/1 keep mask (float)."""
    attention_scores = F.softmax(attention_scores + attn_mask, dim=-1)
    sparsity_mask = attention_scores > threshold
    return sparsity_mask.type_as(attention_scores)


def gen_refinement_mask(threshold, attention_scores, attn_mask, inv=False):
    """DEQ probability threshold (and its inverse)."""
    attention_scores = F.softmax(attention_scores + attn_mask, dim=-1)
    refinement_mask = attention_scores > threshold if not inv else attention_scores <= threshold
    return refinement_mask.type_as(attention_scores)


def _adamax_max(x, granularity):
    b, h, s, _ = x.size()
    if granularity == "batch":
        return torch.max(x.reshape(b, -1), dim=1)[0][..., None, None, None]
    if granularity == "head":
        return torch.max(x.reshape(b, h, -1), dim=2)[0][..., None, None]
    if granularity == "seq":
        return torch.max(x, dim=3)[0][..., None]
    raise ValueError(f"Invalid granularity: {granularity}")


def gen_refinement_mask_adamax(max_pct, attention_scores, attn_mask, granularity="head", inv=False,
                               before_softmax=False):
    """DEQ adaptive maximum: X > max_pct * max_g(X), X = Ŝ (before softmax) or softmax(Ŝ + mask)."""
    if not before_softmax:
        attention_scores = F.softmax(attention_scores + attn_mask, dim=-1)
    bound = max_pct * _adamax_max(attention_scores, granularity)
    refinement_mask = attention_scores > bound if not inv else attention_scores <= bound
    return refinement_mask.type_as(attention_scores)


def _real_key_probs(attention_scores, attn_mask, valid_keys):
    probs = F.softmax(attention_scores + attn_mask, dim=-1)
    real = valid_keys[:, None, None, :].bool().expand_as(probs)
    return probs, real


def gen_topk_mask(k, attention_scores, attn_mask, valid_keys):
    """deq extension: the k largest predicted probabilities of each row among the real keys."""
    probs, real = _real_key_probs(attention_scores, attn_mask, valid_keys)
    ranked = torch.where(real, probs, torch.full_like(probs, -1.0))
    kk = min(k, probs.shape[-1])
    _, idx = torch.topk(ranked, kk, dim=-1)
    mask = torch.zeros_like(probs).scatter_(-1, idx, 1.0)
    return (mask.bool() & real).type_as(probs)


def gen_cumulative_mask(p, attention_scores, attn_mask, valid_keys):
    """deq extension: the smallest prefix of each row's real-key probabilities, sorted in descending order,
    whose mass reaches p (an element is kept when the mass of the elements before it is < p)."""
    probs, real = _real_key_probs(attention_scores, attn_mask, valid_keys)
    ranked = torch.where(real, probs, torch.full_like(probs, -1.0))
    sorted_p, order = torch.sort(ranked, dim=-1, descending=True, stable=True)
    mass = torch.where(sorted_p > 0, sorted_p, torch.zeros_like(sorted_p))
    before = torch.cumsum(mass, dim=-1) - mass
    keep_sorted = (before < p) & (sorted_p >= 0)
    mask = torch.zeros_like(probs).scatter_(-1, order, keep_sorted.type_as(probs))
    return (mask.bool() & real).type_as(probs)


_GRANULARITY = {"sequence": "batch", "head": "head", "row": "seq"}


def apply_rule(rule, attention_scores, attn_mask, valid_keys):
    """Evaluates one selection rule (a dict, see generate_cases.py) on Ŝ; returns a bool mask [B,H,L,L]."""
    kind = rule["kind"]
    if kind == "all":
        return torch.ones_like(attention_scores, dtype=torch.bool)
    if kind == "none":
        return torch.zeros_like(attention_scores, dtype=torch.bool)
    if kind == "probability":
        return gen_refinement_mask(rule["value"], attention_scores, attn_mask).bool()
    if kind == "inverse_probability":
        return gen_refinement_mask(rule["value"], attention_scores, attn_mask, inv=True).bool()
    if kind in ("adaptive_maximum", "inverse_adaptive_maximum"):
        return gen_refinement_mask_adamax(rule["value"], attention_scores, attn_mask,
                                          granularity=_GRANULARITY[rule["granularity"]],
                                          inv=kind.startswith("inverse"),
                                          before_softmax=rule["before_softmax"]).bool()
    if kind == "top_k":
        return gen_topk_mask(rule["k"], attention_scores, attn_mask, valid_keys).bool()
    if kind == "cumulative_probability":
        return gen_cumulative_mask(rule["value"], attention_scores, attn_mask, valid_keys).bool()
    raise ValueError(f"unknown rule kind {kind}")


def rule_ties(rule, attention_scores, attn_mask, valid_keys, rel=1e-6, cumulative_window=1e-5):
    """Elements whose selection could flip under rounding differences between two correct implementations:
    the compared value lies within ``rel`` (relative) of the rule's threshold; for top-k, elements whose
    probability is within ``rel`` of the k-th largest when more than one is; for the cumulative rule,
    elements where the preceding mass is within ``cumulative_window`` of p or whose probability equals a
    neighbour's across the cut."""
    kind = rule["kind"]
    zeros = torch.zeros_like(attention_scores, dtype=torch.bool)
    if kind in ("all", "none"):
        return zeros
    probs = F.softmax(attention_scores + attn_mask, dim=-1)
    if kind in ("probability", "inverse_probability"):
        thr = torch.tensor(rule["value"], dtype=probs.dtype)
        return (probs - thr).abs() <= rel * thr.abs()
    if kind in ("adaptive_maximum", "inverse_adaptive_maximum"):
        x = attention_scores if rule["before_softmax"] else probs
        bound = rule["value"] * _adamax_max(x, _GRANULARITY[rule["granularity"]])
        return (x - bound).abs() <= rel * bound.abs()
    real = valid_keys[:, None, None, :].bool().expand_as(probs)
    ranked = torch.where(real, probs, torch.full_like(probs, -1.0))
    sorted_p, order = torch.sort(ranked, dim=-1, descending=True, stable=True)
    if kind == "top_k":
        k = min(rule["k"], probs.shape[-1])
        kth = sorted_p[..., k - 1: k]
        near = ((ranked - kth).abs() <= rel * kth.abs()) & real
        ambiguous = near.sum(dim=-1, keepdim=True) > 1
        return near & ambiguous
    if kind == "cumulative_probability":
        p = rule["value"]
        mass = torch.where(sorted_p > 0, sorted_p, torch.zeros_like(sorted_p))
        before = torch.cumsum(mass.double(), dim=-1) - mass.double()
        near_cut = (before - p).abs() <= cumulative_window
        keep_sorted = (before < p) & (sorted_p >= 0)
        # the value of the last kept element of each row; equal values on both sides of the cut are ties
        last_kept = torch.where(keep_sorted, sorted_p, torch.full_like(sorted_p, 2.0)).min(dim=-1, keepdim=True)[0]
        same_value = ((sorted_p - last_kept).abs() <= rel * last_kept.abs()) & (sorted_p >= 0)
        crosses = (same_value & ~keep_sorted).any(dim=-1, keepdim=True)
        tie_sorted = near_cut | (same_value & crosses)
        ties = torch.zeros_like(probs).scatter_(-1, order, tie_sorted.type_as(probs)).bool()
        return ties & real
    raise ValueError(f"unknown rule kind {kind}")


# --------------------------------------------------------------------------------------------------------
# Static patterns (modeling_static_spattn.py, from DeepSpeed's sparsity_config.py)
# --------------------------------------------------------------------------------------------------------
MAX_POSITION = 512


def _expand_layout(layout, block):
    nb = layout.shape[0]
    full = layout[:, None, :, None].expand(nb, block, nb, block)
    return full.reshape(nb * block, nb * block)


def longformer_layout(max_position=MAX_POSITION, block=16, num_sliding_window_blocks=3, global_block_indices=(0,)):
    """DeepSpeed BSLongformer layout (one head): sliding window of blocks plus global block rows/columns."""
    nb = max_position // block
    layout = torch.zeros(nb, nb, dtype=torch.int64)
    w = num_sliding_window_blocks // 2
    for row in range(nb):
        layout[row, max(0, row - w): min(row + w + 1, nb)] = 1
    for idx in global_block_indices:
        if idx < nb:
            layout[idx, :] = 1
            layout[:, idx] = 1
    return _expand_layout(layout, block)


def fixed_layout(max_position=MAX_POSITION, block=16, num_local_blocks=4, num_global_blocks=1):
    """DeepSpeed Fixed layout (one head, bidirectional, no horizontal global, one global pattern)."""
    nb = max_position // block
    layout = torch.zeros(nb, nb, dtype=torch.int64)
    for start in range(0, nb, num_local_blocks):
        end = min(start + num_local_blocks, nb)
        layout[start:end, start:end] = 1
    first_global = num_local_blocks - num_global_blocks
    end = nb - (nb % num_local_blocks)
    for i in range(first_global, end, num_local_blocks):
        layout[:, i: i + num_global_blocks] = 1
    if end < nb:
        start = min(end + first_global, nb - num_global_blocks)
        layout[:, start: start + num_global_blocks] = 1
    return _expand_layout(layout, block)


def static_mask(name, length):
    """The reference's static mask sliced to [:L, :L] (built once for max_position = 512)."""
    layout = {"longformer": longformer_layout, "fixed": fixed_layout}[name]()
    return layout[:length, :length].clone()


# --------------------------------------------------------------------------------------------------------
# BertSelfAttention.forward (modeling_bert.py of Sanger / DEQ), from the projected q, k, v onwards
# --------------------------------------------------------------------------------------------------------
def bert_self_attention(query_layer, key_layer, value_layer, valid_keys, *, quant_matmul=None, prune=None,
                        refine=None, static=None, kept_override=None, refined_override=None,
                        predicted_override=None):
    """Reference attention.  ``key_layer`` is [B, H, Lk, d] and transposed here as in the reference.

    prune / refine: rule dicts (see apply_rule); static: a [Lq, Lk] 0/1 tensor.  The *_override arguments
    replace the computed Ŝ / masks (used to evaluate the attention with given masks).
    Returns (context [B, H, Lq, dv], info dict with 'predicted', 'kept', 'refined', 'scores').
    """
    attention_head_size = query_layer.shape[-1]
    key_t = key_layer.transpose(-1, -2)
    attention_mask = extended_attention_mask(valid_keys, query_layer.dtype)

    attention_scores = torch.matmul(query_layer, key_t)
    attention_scores = attention_scores / math.sqrt(attention_head_size)

    quant_attention_scores = None
    if quant_matmul is not None:
        quant_attention_scores = quant_qk_matmul(query_layer, key_t, quant_matmul)
        quant_attention_scores = quant_attention_scores / math.sqrt(attention_head_size)
    if predicted_override is not None:
        quant_attention_scores = predicted_override

    kept = None
    if prune is not None:
        kept = apply_rule(prune, quant_attention_scores, attention_mask, valid_keys)
    if kept_override is not None:
        kept = kept_override

    refined = None
    if refine is not None:
        refined = apply_rule(refine, quant_attention_scores, attention_mask, valid_keys)
        if kept is not None:
            refined = refined & kept
    if refined_override is not None:
        refined = refined_override

    if refined is not None:
        attention_scores[refined == 0] = quant_attention_scores[refined == 0]
    if kept is not None:
        sparsity_mask = (1.0 - kept.type_as(attention_scores)) * PENALTY
        attention_scores += sparsity_mask
    if static is not None:
        attention_scores = attention_scores + (1 - static.type_as(attention_scores)) * PENALTY

    attention_scores = attention_scores + attention_mask
    attention_probs = F.softmax(attention_scores, dim=-1)
    context_layer = torch.matmul(attention_probs, value_layer)
    return context_layer, {
        "predicted": quant_attention_scores,
        "kept": kept,
        "refined": refined,
        "scores": attention_scores,
    }


# --------------------------------------------------------------------------------------------------------
# Statistics (_eval_overall_sparsity / _eval_refinement)
# --------------------------------------------------------------------------------------------------------
def eval_ratio(mask, valid_queries, valid_keys):
    """Mean over the batch of sum(mask * valid) / sum(valid), averaged over heads (the reference's
    ``_eval_overall_sparsity`` and ``_eval_refinement``).  Sequences without a valid pair are skipped."""
    valid = valid_queries[:, None, :, None].double() * valid_keys[:, None, None, :].double()  # [B,1,Lq,Lk]
    per_seq_valid = valid.mean(dim=(1, 2, 3))
    per_seq = (mask.double() * valid).mean(dim=(1, 2, 3))
    ok = per_seq_valid > 0
    if not bool(ok.any()):
        return 0.0
    return (per_seq[ok] / per_seq_valid[ok]).mean().item()


def pair_counts(mask, valid_queries, valid_keys, heads):
    """(valid pairs over all heads, mask ∧ valid pairs, real query rows with no selected real key, real rows)."""
    valid = valid_queries[:, None, :, None].bool() & valid_keys[:, None, None, :].bool()
    valid = valid.expand(mask.shape[0], heads, mask.shape[2], mask.shape[3])
    selected = mask.bool().expand_as(valid) & valid
    rows_real = valid_queries[:, None, :].bool().expand(mask.shape[0], heads, mask.shape[2])
    empty = rows_real & ~selected.any(dim=-1)
    return int(valid.sum()), int(selected.sum()), int(empty.sum()), int(rows_real.sum())
