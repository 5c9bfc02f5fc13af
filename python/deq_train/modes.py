"""Attention modes of deq in the training loop of a Hugging Face BERT model.

The mode grammar (the same text the C++ evaluator accepts):

    dense                                   full-precision softmax attention
    longformer | bigbird | fixed | hugebird static block-sparse pattern (Sanger's configs/sparse_attn/*.json)
    sanger:THETA | sanger:RULE              Sanger: keep = RULE on the 4-bit predicted scores (THETA = prob:THETA)
    deq:RULE                                DEQ: refine = RULE; un-refined scores use the 4-bit estimate
    three:PRUNE+REFINE                      three-level: prune with PRUNE (pruned / kept), refine kept entries
                                            with REFINE (kept entries not refined use the 4-bit estimate)

RULE follows ``deq::parse_mask_rule`` (include/deq/mask/mask_rule.hpp): ``all``, ``none``, ``prob:θ``,
``sanger:θ``, ``invprob:θ``, ``adamax:α[:sequence|head|row][:logits|probs]``,
``invadamax:α[:sequence|head|row][:probs|logits]``, ``topk:K``, ``cumprob:P`` and the reference config
names ``adamax_nb80`` (α = 0.8 per sequence on the logits), ``adamax_nh80``, ``adamax_ns70``, ``adamax_b80``,
``refine_2e-2``, ``refine_inv_2e-3``, ``sanger_2e-3`` (optionally prefixed ``bert_base_``, ``bart_base_``,
``gpt2_``).  Text is case-insensitive; THETA above 1 in reference names means 1.

Training semantics (research notes algorithm.md §1.1-§1.4, §3.2), implemented by :class:`DeqSelfAttention`:

* ``S = QKᵀ/√d`` in full precision.
* Predictor (Sanger, DEQ, three-level): ``Ŝ = FQ(q/‖q‖) · FQ(k/‖k‖)ᵀ · ‖q‖‖k‖ / √d`` with 4-bit symmetric
  per-tensor fake quantization ``FQ``; its two thresholds per layer (buffers ``quant_matmul.input_x_thresh``
  and ``input_y_thresh``) are EMA abs-max values: the first training step sets them, then
  ``thresh -= (1 - 0.9999)(thresh - max|x|)``, updated only in training mode (``QuantizedMatMul`` of
  hatsu3/Sanger ``quant_utils.py``).  Backward through ``FQ`` is the straight-through estimator.
* Masks are computed from step 0, from the predicted scores, under ``torch.no_grad`` (detached): no
  gradient flows through a mask.
* Sanger: ``S += (1 - keep)·(-10000)``; the predictor is used for the mask only, so it gets no gradient.
* DEQ: ``S[R == 0] = Ŝ[R == 0]`` (``torch.where``); the gradient of the un-refined entries flows through Ŝ
  (STE, normalisation and norms) into Q and K.
* Three-level: refine on Ŝ, intersect with the kept set, substitute Ŝ for un-refined entries, then add the
  pruning penalty (deq's documented convention, docs/semantics.md).
* Static: ``S += (1 - pattern[:L, :L])·(-10000)``.
* ``S += pad`` (-10000 on padded keys), softmax, attention-probability dropout (training only), ``P V``.

The masks and the quantizer arithmetic reuse python/deq_reference/reference.py, the independent PyTorch
reference of the inference semantics; this module adds what training needs (EMA calibration, the STE,
gradients through Ŝ, dropout) and the Hugging Face plumbing.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # python/ on sys.path (tests, `python -m deq_train...` from python/)
    from deq_reference import reference as ref
except ImportError:  # pragma: no cover - run as a script from elsewhere
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from deq_reference import reference as ref

PENALTY = ref.PENALTY
MAX_POSITION = ref.MAX_POSITION
DEFAULT_BITS = 4
DEFAULT_EMA_DECAY = 0.9999


class ModeError(ValueError):
    """An attention mode or mask rule text that does not parse, or a parameter out of range."""


# --------------------------------------------------------------------------------------------------------
# Mask rules (Python mirror of deq::parse_mask_rule)
# --------------------------------------------------------------------------------------------------------
RULE_GRAMMAR = (
    "all | none | prob:THETA | sanger:THETA | invprob:THETA | adamax:ALPHA[:sequence|head|row][:logits|probs] "
    "(default sequence, logits) | invadamax:ALPHA[:sequence|head|row][:probs|logits] (default sequence, probs) | "
    "topk:K | cumprob:P | reference config names [bert_base_|bart_base_|gpt2_]adamax_[n]{b,h,s}NN (alpha = NN/100; "
    "n = logits, b/h/s = sequence/head/row), refine_THETA, refine_inv_THETA, sanger_THETA (THETA > 1 means 1)"
)

MODE_GRAMMAR = (
    "dense | longformer | bigbird | fixed | hugebird | sanger:THETA | sanger:RULE | deq:RULE | "
    "three:PRUNE_RULE+REFINE_RULE, where RULE is " + RULE_GRAMMAR
)

_NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$|^-?(?:inf|infinity|nan)$")
_INTEGER = re.compile(r"^-?\d+$")
_GRANULARITIES = ("sequence", "head", "row")


def _number(name: str, text: str) -> float:
    if not _NUMBER.match(text):
        raise ModeError(f'{name} = "{text}" is not a number; grammar: {RULE_GRAMMAR}')
    return float(text)


def _format_number(value: float) -> str:
    """Shortest round-trip text, like std::to_chars in rule_format_number."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Rule:
    """One element-selection rule over the predicted scores (deq::mask_rule)."""

    kind: str  # all | none | probability | inverse_probability | adaptive_maximum | inverse_adaptive_maximum | top_k | cumulative_probability
    value: float = 0.0
    k: int = 0
    granularity: str = "sequence"
    before_softmax: bool = True

    def __post_init__(self):
        kind = self.kind
        if kind in ("all", "none"):
            return
        if kind in ("probability", "inverse_probability"):
            if not (0.0 <= self.value <= 1.0):
                raise ModeError(f"theta = {self.value} must be in [0, 1]")
        elif kind in ("adaptive_maximum", "inverse_adaptive_maximum"):
            if not (0.0 <= self.value <= 1.0):
                raise ModeError(f"alpha = {self.value} must be in [0, 1]")
            if self.granularity not in _GRANULARITIES:
                raise ModeError(f"granularity = {self.granularity!r} must be sequence, head or row")
        elif kind == "top_k":
            if self.k < 1:
                raise ModeError(f"k = {self.k} must be >= 1")
        elif kind == "cumulative_probability":
            if not (0.0 < self.value <= 1.0):
                raise ModeError(f"p = {self.value} must be in (0, 1]")
        else:
            raise ModeError(f"unknown rule kind {kind!r}")

    def spec(self) -> str:
        """Canonical text, the same as deq::mask_rule::spec() (parse_rule(spec()) == self)."""
        num = _format_number
        if self.kind in ("all", "none"):
            return self.kind
        if self.kind == "probability":
            return "prob:" + num(self.value)
        if self.kind == "inverse_probability":
            return "invprob:" + num(self.value)
        if self.kind in ("adaptive_maximum", "inverse_adaptive_maximum"):
            head = "adamax:" if self.kind == "adaptive_maximum" else "invadamax:"
            return head + num(self.value) + ":" + self.granularity + ":" + ("logits" if self.before_softmax else "probs")
        if self.kind == "top_k":
            return f"topk:{self.k}"
        return "cumprob:" + num(self.value)

    def to_reference(self) -> dict:
        """The rule dict that deq_reference.reference.apply_rule evaluates."""
        return {"kind": self.kind, "value": self.value, "k": self.k, "granularity": self.granularity,
                "before_softmax": self.before_softmax}


def _parse_reference_name(name: str) -> Optional[Rule]:
    for prefix in ("bert_base_", "bart_base_", "gpt2_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("adamax_"):
        name = name[len("adamax_"):]
        logits = name.startswith("n")
        if logits:
            name = name[1:]
        if not name or name[0] not in "bhs":
            return None
        granularity = {"b": "sequence", "h": "head", "s": "row"}[name[0]]
        digits = name[1:]
        if not digits or not digits.isdigit():
            return None
        return Rule("adaptive_maximum", int(digits) / 100.0, granularity=granularity, before_softmax=logits)
    inverse = False
    if name.startswith("refine_inv_"):
        inverse, name = True, name[len("refine_inv_"):]
    elif name.startswith("refine_"):
        name = name[len("refine_"):]
    elif name.startswith("sanger_"):
        name = name[len("sanger_"):]
    else:
        return None
    if not _NUMBER.match(name) or name.startswith("-"):
        return None
    theta = min(float(name), 1.0)
    return Rule("inverse_probability" if inverse else "probability", theta)


def parse_rule(text: str) -> Rule:
    """Parses a mask rule (deq::parse_mask_rule grammar); raises ModeError listing the grammar."""
    if not isinstance(text, str):
        raise ModeError(f"mask rule must be a string, got {type(text).__name__}")
    spec = text.strip().lower()
    parts = spec.split(":")
    head, n = parts[0], len(parts)

    def unknown():
        return ModeError(f'unknown mask rule "{text}"; grammar: {RULE_GRAMMAR}')

    if head in ("all", "none"):
        if n != 1:
            raise unknown()
        return Rule(head)
    if head in ("prob", "sanger", "probability", "invprob"):
        if n != 2:
            raise unknown()
        theta = _number("theta", parts[1])
        return Rule("inverse_probability" if head == "invprob" else "probability", theta)
    if head in ("adamax", "invadamax"):
        if n < 2 or n > 4:
            raise unknown()
        inverse = head == "invadamax"
        alpha = _number("alpha", parts[1])
        granularity, before = None, None
        for opt in parts[2:]:
            if granularity is None and opt in _GRANULARITIES:
                granularity = opt
            elif before is None and opt in ("logits", "probs"):
                before = opt == "logits"
            else:
                raise unknown()
        granularity = granularity or "sequence"
        if before is None:
            before = not inverse
        return Rule("inverse_adaptive_maximum" if inverse else "adaptive_maximum", alpha,
                    granularity=granularity, before_softmax=before)
    if head == "topk":
        if n != 2:
            raise unknown()
        if not _INTEGER.match(parts[1]):
            raise ModeError(f'k = "{parts[1]}" is not an integer; grammar: {RULE_GRAMMAR}')
        return Rule("top_k", k=int(parts[1]))
    if head == "cumprob":
        if n != 2:
            raise unknown()
        return Rule("cumulative_probability", _number("p", parts[1]))
    if n == 1:
        rule = _parse_reference_name(head)
        if rule is not None:
            return rule
    raise unknown()


# --------------------------------------------------------------------------------------------------------
# Attention modes
# --------------------------------------------------------------------------------------------------------
STATIC_PATTERNS = ("longformer", "bigbird", "fixed", "hugebird")


@dataclass(frozen=True)
class AttentionMode:
    """A parsed attention mode: kind in dense | static | sanger | deq | three."""

    kind: str
    pattern: Optional[str] = None
    prune: Optional[Rule] = None
    refine: Optional[Rule] = None

    @property
    def uses_predictor(self) -> bool:
        """Whether the mode runs the 4-bit predictor (and so has quantizer thresholds)."""
        return self.kind in ("sanger", "deq", "three")

    def spec(self) -> str:
        """Canonical mode text; parse_mode(spec()) == self."""
        if self.kind == "dense":
            return "dense"
        if self.kind == "static":
            return self.pattern
        if self.kind == "sanger":
            if self.prune.kind == "probability":
                return "sanger:" + _format_number(self.prune.value)
            return "sanger:" + self.prune.spec()
        if self.kind == "deq":
            return "deq:" + self.refine.spec()
        return "three:" + self.prune.spec() + "+" + self.refine.spec()

    def describe(self) -> dict:
        """JSON-friendly description (the "deq" section of an exported config.json uses it)."""
        return {
            "attention_mode": self.spec(),
            "kind": self.kind,
            "static_pattern": self.pattern,
            "prune_rule": self.prune.spec() if self.prune else None,
            "refine_rule": self.refine.spec() if self.refine else None,
        }


def _rule_or_theta(text: str) -> Rule:
    body = text.strip().lower()
    if _NUMBER.match(body):
        return Rule("probability", float(body))
    return parse_rule(body)


def parse_mode(text: str) -> AttentionMode:
    """Parses an attention mode string; raises ModeError naming the text and listing the grammar."""
    if not isinstance(text, str):
        raise ModeError(f"attention mode must be a string, got {type(text).__name__}")
    spec = text.strip().lower()
    try:
        if spec == "dense":
            return AttentionMode("dense")
        if spec in STATIC_PATTERNS:
            return AttentionMode("static", pattern=spec)
        head, sep, rest = spec.partition(":")
        if sep and rest:
            if head == "sanger":
                return AttentionMode("sanger", prune=_rule_or_theta(rest))
            if head == "deq":
                return AttentionMode("deq", refine=parse_rule(rest))
            if head == "three":
                prune, plus, refine = rest.partition("+")
                if plus and prune and refine:
                    return AttentionMode("three", prune=_rule_or_theta(prune), refine=parse_rule(refine))
    except ModeError as e:
        raise ModeError(f'attention mode "{text}": {e}') from None
    raise ModeError(f'unknown attention mode "{text}"; grammar: {MODE_GRAMMAR}')


# --------------------------------------------------------------------------------------------------------
# Static patterns (DeepSpeed layouts as in deq/mask/static_pattern.hpp)
# --------------------------------------------------------------------------------------------------------
_M64 = (1 << 64) - 1


class SplitMix64:
    """deq::detail::splitmix64: the generator of deq's BigBird random blocks (bit-identical port)."""

    def __init__(self, seed: int):
        self.state = seed & _M64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        threshold = ((1 << 64) - n) % n
        while True:
            r = self.next()
            if r >= threshold:
                return r % n

    def sample(self, n: int, k: int) -> list:
        pool = list(range(n))
        for t in range(k):
            j = t + self.below(n - t)
            pool[t], pool[j] = pool[j], pool[t]
        return pool[:k]


def _sliding_window(layout: torch.Tensor, window_blocks: int) -> None:
    nb = layout.shape[0]
    w = window_blocks // 2
    for row in range(nb):
        layout[row, max(0, row - w): min(row + w + 1, nb)] = 1


def bigbird_layout(max_position=MAX_POSITION, block=16, num_random_blocks=1, num_sliding_window_blocks=3,
                   num_global_blocks=1, seed=42):
    """BigBird token layout [max_position, max_position] with deq's random-block generator (one layout for
    all heads, as deq::make_static_mask with heads = 1): random blocks, sliding window, leading global
    block rows and columns."""
    nb = max_position // block
    layout = torch.zeros(nb, nb, dtype=torch.int64)
    rng = SplitMix64(seed)
    for row in range(nb):
        for c in rng.sample(nb, num_random_blocks):
            layout[row, c] = 1
    _sliding_window(layout, num_sliding_window_blocks)
    layout[:num_global_blocks, :] = 1
    layout[:, :num_global_blocks] = 1
    return ref._expand_layout(layout, block)


def static_mask(name: str, length: int) -> torch.Tensor:
    """The 0/1 token mask [length, length] of a static pattern, built for 512 positions and sliced."""
    if name == "longformer":
        layout = ref.longformer_layout()
    elif name == "fixed":
        layout = ref.fixed_layout()
    elif name == "bigbird":
        layout = bigbird_layout()
    elif name == "hugebird":
        layout = bigbird_layout(block=32, num_random_blocks=3, num_sliding_window_blocks=3, num_global_blocks=2)
    else:
        raise ModeError(f'unknown static pattern "{name}"; known: {", ".join(STATIC_PATTERNS)}')
    if not (1 <= length <= layout.shape[0]):
        raise ModeError(f"sequence length {length} must be in [1, {layout.shape[0]}] for static pattern {name}")
    return layout[:length, :length].clone()


# --------------------------------------------------------------------------------------------------------
# Quantizer with EMA calibration and the straight-through estimator
# --------------------------------------------------------------------------------------------------------
class FakeQuantSTE(torch.autograd.Function):
    """dequantize(quantize(x)) forward; straight-through (identity) backward, as the reference's
    FakeLinearQuantizationWithSTE."""

    @staticmethod
    def forward(ctx, x, scale, bits):
        return ref.fake_quantize(x, scale, bits)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None


class QuantizedMatMul(nn.Module):
    """``QuantizedMatMul('sym', bits)`` of the reference: per-tensor symmetric fake quantization of both
    operands with EMA abs-max thresholds (buffers ``input_x_thresh``, ``input_y_thresh``, shape [1])."""

    def __init__(self, bits: int = DEFAULT_BITS, ema_decay: float = DEFAULT_EMA_DECAY, layer_index: int = -1):
        super().__init__()
        if bits not in (2, 4, 6, 8):
            raise ModeError(f"quantizer bits = {bits} must be 2, 4, 6 or 8 (the reference's QuantizedMatMul)")
        self.bits = bits
        self.ema_decay = ema_decay
        self.layer_index = layer_index
        self.register_buffer("_step", torch.zeros(1))
        self.register_buffer("input_x_thresh", torch.zeros(1))
        self.register_buffer("input_y_thresh", torch.zeros(1))

    @property
    def calibrated(self) -> bool:
        return bool(self._step.item() > 0)

    def _update_ema(self, ema: torch.Tensor, x: torch.Tensor) -> None:
        absmax = x.detach().abs().max()
        if self._step.item() == 0:
            ema.fill_(absmax)
        else:
            ema.sub_((1 - self.ema_decay) * (ema - absmax))

    def set_thresholds(self, x_thresh: float, y_thresh: float) -> None:
        """Loads thresholds (e.g. from a checkpoint); later training steps continue the EMA from them."""
        self.input_x_thresh.fill_(float(x_thresh))
        self.input_y_thresh.fill_(float(y_thresh))
        self._step.fill_(max(1.0, float(self._step.item())))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self._update_ema(self.input_x_thresh, x)
                self._update_ema(self.input_y_thresh, y)
                self._step += 1
        elif not self.calibrated:
            raise RuntimeError(
                f"quantizer thresholds of attention layer {self.layer_index} are not calibrated: run at least "
                "one training step, load them from a checkpoint (export.load_exported) or call "
                "modes.calibrate_thresholds before evaluating a predictor mode")
        for name, t in (("input_x_thresh", self.input_x_thresh), ("input_y_thresh", self.input_y_thresh)):
            if not (torch.isfinite(t).all() and (t > 0).all()):
                raise RuntimeError(f"quantizer threshold {name} of attention layer {self.layer_index} is "
                                   f"{t.item()}; it must be finite and > 0")
        x_scale = ref.get_scale(self.bits, self.input_x_thresh)
        y_scale = ref.get_scale(self.bits, self.input_y_thresh)
        return torch.matmul(FakeQuantSTE.apply(x, x_scale, self.bits), FakeQuantSTE.apply(y, y_scale, self.bits))


def predicted_scores(query_layer: torch.Tensor, key_layer: torch.Tensor, quant_matmul: QuantizedMatMul) -> torch.Tensor:
    """Ŝ = quant_qk_matmul(q, kᵀ) / √d with normalize_qk = inner_product, autograd-friendly.

    q, k are [B, H, L, d].  The operations and their order are those of the reference (and of
    deq_reference.reference.quant_qk_matmul), so the values are bit-identical; a zero-norm row is divided by
    1 instead of 0 (its normalised value is 0, deq's convention, with no NaN in the backward pass).
    """
    d = query_layer.shape[-1]
    key_t = key_layer.transpose(-1, -2)
    query_norm = query_layer.norm(dim=-1, keepdim=True)
    key_norm = key_t.norm(dim=-2, keepdim=True)
    normed_query = query_layer / torch.where(query_norm == 0, torch.ones_like(query_norm), query_norm)
    normed_key = key_t / torch.where(key_norm == 0, torch.ones_like(key_norm), key_norm)
    scores = quant_matmul(normed_query, normed_key)
    scores = scores * (query_norm * key_norm)
    return scores / math.sqrt(d)


# --------------------------------------------------------------------------------------------------------
# Statistics (reference formulas: _eval_overall_sparsity / _eval_refinement)
# --------------------------------------------------------------------------------------------------------
class AttentionStats:
    """Collects, per attention call, the kept density (Sanger, static, three-level) and the refinement ratio
    (DEQ, three-level) with the reference formula: mean over the batch of kept-valid / (H · valid pairs).
    Enabled only while ``enabled`` is true and the module is in eval mode (the reference logs at evaluation)."""

    def __init__(self):
        self.enabled = False
        self.reset()

    def reset(self):
        self.calls = {"kept": [], "refined": []}
        self.sequences = {"kept": [], "refined": []}
        self.pairs = {"kept": [0, 0], "refined": [0, 0]}  # selected valid pairs, valid pairs (all heads)
        self.empty_rows = {"kept": [0, 0], "refined": [0, 0]}  # empty real rows, real rows (all heads)

    @torch.no_grad()
    def record(self, what: str, mask: torch.Tensor, valid: torch.Tensor, heads: int) -> None:
        mask = mask.bool()
        if mask.dim() == 2:
            mask = mask[None, None]
        mask = mask.expand(valid.shape[0], heads, mask.shape[-2], mask.shape[-1])
        self.calls[what].append(ref.eval_ratio(mask, valid, valid))
        pair_valid = valid[:, None, :, None].bool() & valid[:, None, None, :].bool()
        per_seq_valid = pair_valid.sum(dim=(1, 2, 3)).double() * heads
        per_seq_sel = (mask & pair_valid).sum(dim=(1, 2, 3)).double()
        ok = per_seq_valid > 0
        self.sequences[what].extend((per_seq_sel[ok] / per_seq_valid[ok]).tolist())
        total, selected, empty, rows = ref.pair_counts(mask, valid, valid, heads)
        self.pairs[what][0] += selected
        self.pairs[what][1] += total
        self.empty_rows[what][0] += empty
        self.empty_rows[what][1] += rows

    def summary(self) -> dict:
        out = {}
        for what, name in (("kept", "density"), ("refined", "refinement_ratio")):
            if not self.calls[what]:
                continue
            calls = self.calls[what]
            seqs = self.sequences[what]
            sel, tot = self.pairs[what]
            empty, rows = self.empty_rows[what]
            out[name] = {
                "mean_over_calls": sum(calls) / len(calls),
                "mean_over_sequences": sum(seqs) / len(seqs) if seqs else 0.0,
                "pair_weighted": sel / tot if tot else 0.0,
                "calls": len(calls),
                "empty_row_fraction": empty / rows if rows else 0.0,
                "empty_rows": empty,
                "real_rows": rows,
            }
        return out


# --------------------------------------------------------------------------------------------------------
# The replacement of BertSelfAttention
# --------------------------------------------------------------------------------------------------------
def key_padding(attention_mask, batch: int, length: int) -> torch.Tensor:
    """Key validity [B, L] (True = real token) from whatever mask Hugging Face passes to self-attention:
    None (no padding), a 2-D [B, L] mask, or an additive float / boolean 4-D [B, 1, Lq|1, L] mask.  Float
    masks follow the reference: valid = mask > -1.  Masks that differ across query rows (causal) are
    rejected: these modes are defined for bidirectional encoders with key padding only."""
    if attention_mask is None:
        return torch.ones(batch, length, dtype=torch.bool)
    valid = attention_mask if attention_mask.dtype == torch.bool else attention_mask > -1
    if valid.dim() == 4:
        if valid.shape[1] != 1 or valid.shape[-1] != length:
            raise ValueError(f"attention mask of shape {tuple(attention_mask.shape)} is not a key-padding mask "
                             f"[B, 1, L or 1, {length}]")
        first = valid[:, :, :1, :]
        if valid.shape[2] != 1 and not torch.equal(valid, first.expand_as(valid)):
            raise ValueError("attention mask differs across query rows (causal or custom mask); deq attention "
                             "modes support key padding only")
        valid = first[:, 0, 0, :]
    elif valid.dim() != 2 or valid.shape[-1] != length:
        raise ValueError(f"attention mask of shape {tuple(attention_mask.shape)} is not [B, {length}] or "
                         f"[B, 1, L, {length}]")
    return valid.expand(batch, length)


class DeqSelfAttention(nn.Module):
    """Drop-in replacement of transformers' ``BertSelfAttention`` that runs one deq attention mode.

    It takes over the original module's ``query``, ``key``, ``value`` linear layers and its dropout (same
    parameter objects, same state-dict names), and adds ``quant_matmul`` (the predictor's quantizer, whose
    buffers are the reference's ``...attention.self.quant_matmul.input_x_thresh`` / ``input_y_thresh``) for
    predictor modes.  ``forward(hidden_states, attention_mask, ...)`` returns ``(context, probs)`` like the
    original (context [B, L, H·d]).
    """

    def __init__(self, original: nn.Module, mode: AttentionMode, layer_index: int = -1,
                 stats: Optional[AttentionStats] = None, static_penalty: Optional[torch.Tensor] = None):
        super().__init__()
        self.mode = mode
        self.layer_index = layer_index
        self.num_attention_heads = original.num_attention_heads
        self.attention_head_size = original.attention_head_size
        self.all_head_size = original.all_head_size
        self.query = original.query
        self.key = original.key
        self.value = original.value
        self.dropout = original.dropout
        self.stats = stats
        if mode.uses_predictor:
            self.quant_matmul = QuantizedMatMul(layer_index=layer_index)
        if mode.kind == "static":
            if static_penalty is None:
                static_penalty = (1.0 - static_mask(mode.pattern, MAX_POSITION).float()) * PENALTY
            self.register_buffer("static_penalty", static_penalty, persistent=False)

    def attention(self, query_layer, key_layer, value_layer, valid):
        """The mode's attention on projected [B, H, L, d] tensors; returns (context [B,H,L,dv], probs, info)."""
        mode = self.mode
        d = query_layer.shape[-1]
        pad = ref.extended_attention_mask(valid, query_layer.dtype)
        scores = torch.matmul(query_layer, key_layer.transpose(-1, -2)) / math.sqrt(d)
        predicted = kept = refined = None
        if mode.kind == "sanger":
            with torch.no_grad():  # Sanger's predictor only feeds the (detached) mask
                predicted = predicted_scores(query_layer, key_layer, self.quant_matmul)
        elif mode.uses_predictor:
            predicted = predicted_scores(query_layer, key_layer, self.quant_matmul)
        with torch.no_grad():
            if mode.prune is not None:
                kept = ref.apply_rule(mode.prune.to_reference(), predicted.detach(), pad, valid)
            if mode.refine is not None:
                refined = ref.apply_rule(mode.refine.to_reference(), predicted.detach(), pad, valid)
                if kept is not None:
                    refined = refined & kept
        if refined is not None:
            scores = torch.where(refined, scores, predicted)
        if kept is not None:
            scores = scores + (~kept).to(scores.dtype) * PENALTY
        if mode.kind == "static":
            length_q, length_k = scores.shape[-2], scores.shape[-1]
            if max(length_q, length_k) > self.static_penalty.shape[0]:
                raise ValueError(f"sequence length {max(length_q, length_k)} exceeds the static pattern's "
                                 f"{self.static_penalty.shape[0]} positions")
            scores = scores + self.static_penalty[:length_q, :length_k].to(scores.dtype)
        scores = scores + pad
        probs = F.softmax(scores, dim=-1)
        probs = self.dropout(probs)
        context = torch.matmul(probs, value_layer)
        if self.stats is not None and self.stats.enabled and not self.training:
            heads = query_layer.shape[1]
            if kept is not None:
                self.stats.record("kept", kept, valid, heads)
            elif mode.kind == "static":
                self.stats.record("kept", self.static_penalty[:scores.shape[-2], :scores.shape[-1]] == 0, valid, heads)
            if refined is not None:
                self.stats.record("refined", refined, valid, heads)
        return context, probs, {"predicted": predicted, "kept": kept, "refined": refined}

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        for name in ("encoder_hidden_states", "cache", "past_key_value", "past_key_values"):
            if kwargs.get(name) is not None:
                raise ValueError(f"DeqSelfAttention: {name} is not supported (encoder self-attention only)")
        batch, length = hidden_states.shape[:2]
        shape = (batch, length, self.num_attention_heads, self.attention_head_size)
        query_layer = self.query(hidden_states).view(shape).transpose(1, 2)
        key_layer = self.key(hidden_states).view(shape).transpose(1, 2)
        value_layer = self.value(hidden_states).view(shape).transpose(1, 2)
        valid = key_padding(attention_mask, batch, length).to(hidden_states.device)
        context, probs, _ = self.attention(query_layer, key_layer, value_layer, valid)
        context = context.transpose(1, 2).reshape(batch, length, self.all_head_size)
        return context, probs


def _bert_self_attention_class():
    from transformers.models.bert import modeling_bert
    return modeling_bert.BertSelfAttention


def patch_model(model: nn.Module, mode, stats: Optional[AttentionStats] = None) -> list:
    """Replaces every ``BertSelfAttention`` of ``model`` by a :class:`DeqSelfAttention` running ``mode``
    (a string or AttentionMode).  Weights are kept (the same parameter objects).  Returns the new modules,
    in layer order.  Raises for decoder (causal) models and for models without BERT self-attention."""
    if isinstance(mode, str):
        mode = parse_mode(mode)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "is_decoder", False):
        raise ValueError("deq attention modes are defined for bidirectional encoders; config.is_decoder is true")
    cls = _bert_self_attention_class()
    targets = []
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, cls):
                targets.append((parent, child_name, child))
    if not targets:
        raise ValueError("model has no transformers BertSelfAttention module to patch (already patched?)")
    static_penalty = None
    if mode.kind == "static":
        static_penalty = (1.0 - static_mask(mode.pattern, MAX_POSITION).float()) * PENALTY
    new_modules = []
    for index, (parent, child_name, child) in enumerate(targets):
        replacement = DeqSelfAttention(child, mode, layer_index=index, stats=stats, static_penalty=static_penalty)
        replacement.train(child.training)
        setattr(parent, child_name, replacement)
        new_modules.append(replacement)
    model.deq_mode = mode
    return new_modules


def deq_modules(model: nn.Module) -> list:
    """The DeqSelfAttention modules of a patched model, in layer order."""
    return [m for m in model.modules() if isinstance(m, DeqSelfAttention)]


@torch.no_grad()
def calibrate_thresholds(model: nn.Module, batches) -> int:
    """Calibration pass without weight updates: runs ``batches`` (dicts of model inputs) in training mode
    with gradients off so the EMA quantizer thresholds are set (first batch) and updated (later batches);
    dropout is disabled during the pass.  Returns the number of batches run."""
    modules = [m for m in deq_modules(model) if hasattr(m, "quant_matmul")]
    if not modules:
        raise ValueError("calibrate_thresholds: the model has no predictor mode attention to calibrate")
    was_training = model.training
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    saved = [m.p for m in dropouts]
    for m in dropouts:
        m.p = 0.0
    model.train()
    count = 0
    try:
        for batch in batches:
            model(**batch)
            count += 1
    finally:
        for m, p in zip(dropouts, saved):
            m.p = p
        model.train(was_training)
    if count == 0:
        raise ValueError("calibrate_thresholds: no batch given")
    return count
